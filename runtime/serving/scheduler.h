/*
 * scheduler.h - the engine's scheduling policy as pure functions.
 *
 * Continuous batching decides, every step: which waiting requests to start
 * (a free slot among n_parallel, and KV pages for the whole prompt plus one
 * new token, counting pages the prefix cache could give back), how to split
 * the step's token budget (decode tokens first, then prefill chunks, each in
 * admission order), and which running sequence to give up when the KV pages
 * run out (the newest: it has the least work to redo). These functions hold
 * that policy over plain numbers: no threads, no model, no KV cache, so it
 * is testable by itself; the engine (engine.c) feeds them its state and acts
 * on the answers.
 *
 * Invariants the engine relies on: an idle engine (nothing running) always
 * admits the request at the head of the queue, even one larger than the pool
 * (its reservation then fails and it finishes with an error instead of
 * waiting forever); admission is first-come first-served (a request that
 * does not fit blocks those behind it); a plan never exceeds the budget and
 * never gives a sequence more than it has pending.
 */
#ifndef HEARTH_SCHEDULER_H
#define HEARTH_SCHEDULER_H

#include <stdbool.h>

typedef struct hearth_sched_limits {
    int n_parallel; /* sequences running at once */
    int n_batch;    /* tokens per step */
    int page_size;  /* tokens per KV page */
} hearth_sched_limits;

/* KV pages a sequence of n tokens occupies. */
int hearth_sched_pages_for(const hearth_sched_limits *lim, int n_tokens);

/* Whether a running slot is free for one more sequence. */
bool hearth_sched_has_slot(const hearth_sched_limits *lim, int n_running);

/* Whether a request of n_tokens tokens (prompt and anything generated before
 * a preemption), with attached_pages of them already taken from the prefix
 * cache, may start now: the pages for the rest plus the next token must be
 * available (free, or held only by the prefix cache), unless nothing runs. */
bool hearth_sched_pages_fit(const hearth_sched_limits *lim, int n_running, int n_tokens, int attached_pages,
                            int pages_available);

/* What to do with the request at the head of the waiting queue. */
typedef enum hearth_sched_admission {
    HEARTH_SCHED_WAIT = 0, /* leave it (and everything behind it) waiting */
    HEARTH_SCHED_TRY,      /* take it out and try to start it (pages_fit decides) */
    HEARTH_SCHED_DROP,     /* take it out without running it: it was cancelled */
} hearth_sched_admission;

/* Admission is first-come first-served: the head of the queue is dropped
 * when cancelled (no slot needed), tried when a slot is free, else waits. */
hearth_sched_admission hearth_sched_next(const hearth_sched_limits *lim, int n_running, bool head_cancelled);

/* Split the step's token budget over the running sequences, in admission
 * order: first one token for every sequence that is decoding (pending == 1),
 * then prefill chunks of at most what each has pending, while budget lasts.
 * pending[i]: tokens of sequence i not yet in the KV cache. Writes chunk[i]
 * (0: nothing this step); returns the tokens planned. */
int hearth_sched_plan_chunks(const hearth_sched_limits *lim, const int *pending, int n_running, int *chunk);

/* The running sequence to preempt when the KV pages for a step's plan cannot
 * be reserved: the newest (index n_running - 1), or -1 when only one runs
 * and there is nothing to give up (that sequence cannot fit the pool). */
int hearth_sched_preempt_victim(int n_running);

#endif
