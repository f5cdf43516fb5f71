/*
 * spec_draft.h - the draft model of speculative decoding: a small model with
 * the target's vocabulary proposes K tokens by greedy decoding, for several
 * sequences at once.
 *
 * The drafter owns its own paged KV pool and forward context on the draft
 * model's backend (which may differ from the target's). Each speculating
 * sequence has a draft slot: a draft KV sequence plus the tokens whose K/V
 * it holds. hearth_drafter_run brings every slot in step with its sequence's
 * tokens (keeps the longest common prefix, truncates the rest, catches up on
 * the tokens it has not seen, chunked to the forward's size), then runs K
 * draft steps, batched across the sequences: greedy (the argmax, chosen on
 * the device) unless the job gives a pick function, which gets the draft's
 * logits row on the host and chooses (a sampled draft: the engine samples
 * from the draft's distribution q and keeps q for the acceptance rule). After the target has
 * verified a draft, hearth_drafter_keep cuts the slot back to the tokens
 * the sequence kept.
 *
 * Ownership: the drafter borrows the draft model (which must outlive it) and
 * owns its KV pool, forward context and slots. One thread (the engine's
 * worker) uses it. The vocabulary check reads both models only.
 */
#ifndef HEARTH_SPEC_DRAFT_H
#define HEARTH_SPEC_DRAFT_H

#include <stdint.h>

#include "core/error.h"
#include "runtime/model/model.h"

/* Whether `draft` can draft for `target`: the same vocabulary size, the same
 * text of every token and the same special ids (BOS, EOS, EOT). A mismatch is
 * HEARTH_ERR_INVALID naming the first differing token. */
hearth_status hearth_spec_vocab_check(const hearth_model *target, const hearth_model *draft,
                                      hearth_error *err);

typedef struct hearth_drafter hearth_drafter;

/* n_slots draft sequences of up to n_ctx tokens each (plus the draft), KV of
 * kv_type in pages of page_size tokens, at most n_batch tokens per draft pass.
 * The pool holds at most max_tokens tokens in all (0: no cap) -- the target's
 * pool size, already cut to the memory it has, so a draft sized like the
 * target or smaller fits too; a slot whose KV cannot grow drafts nothing. */
hearth_drafter *hearth_drafter_create(hearth_model *draft, int n_slots, int n_ctx, int page_size, int n_batch,
                                      hearth_dtype kv_type, int64_t max_tokens, hearth_error *err);
void hearth_drafter_free(hearth_drafter *d);

/* A free slot, or -1 when every slot is taken. */
int hearth_drafter_slot_take(hearth_drafter *d);
/* Give a slot back (its KV pages are freed); -1 is ignored. */
void hearth_drafter_slot_free(hearth_drafter *d, int slot);

/* Choose draft token `step` (0-based) of a job from the draft model's logits
 * row (n_vocab floats); a negative id ends the job's draft there. */
typedef int32_t (*hearth_draft_pick_fn)(void *user, int step, const float *logits);

/* One sequence's request for a draft: its tokens toks[0..n) (the last one
 * not yet decoded by the target), the most tokens to draft; out[k] receives
 * the draft, n_out how many were drafted (0 when the draft KV pool had no
 * room). pick NULL: greedy; else it chooses each token (see above). */
typedef struct hearth_draft_job {
    int slot;
    const int32_t *toks;
    int n;
    int k;
    int32_t *out;
    int n_out;
    hearth_draft_pick_fn pick;
    void *user;
} hearth_draft_job;

/* Draft for every job (at most 64). Returns HEARTH_OK or the forward's error. */
hearth_status hearth_drafter_run(hearth_drafter *d, hearth_draft_job *jobs, int n_jobs, hearth_error *err);

/* The draft passes of one token per job (the K - 1 draft steps, and catch-up
 * passes of at most two tokens per job) since the last call, and their time
 * in ms; both reset. Longer catch-up passes (a prompt) are not counted: they
 * say nothing about the cost of drafting one token (spec_cost.h). */
void hearth_drafter_take_cost(hearth_drafter *d, int *passes, double *ms);

/* The sequence of `slot` now holds toks[0..n): drop the slot's K/V of tokens
 * past their common prefix (the rejected draft). */
void hearth_drafter_keep(hearth_drafter *d, int slot, const int32_t *toks, int n);

#endif
