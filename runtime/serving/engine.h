/*
 * engine.h - the inference engine: many requests, one model, one worker.
 *
 * Clients (the TUI, the server, `run`, `bench`) submit requests from any
 * thread and receive their tokens as events through a callback. One worker
 * thread runs steps of continuous batching: every step combines the decode
 * token of each running sequence with chunks of waiting prompts (chunked
 * prefill, bounded by a token budget), admits new requests as soon as KV pages
 * allow, and preempts (frees, recomputes later) the newest sequence when the
 * pages run out instead of failing. Prompt prefixes are reused page by page
 * from the prefix cache (memory, then SQLite).
 *
 * Ownership: the engine borrows the model (and its backend) and the draft
 * model when one is configured, which must outlive it; it owns the KV cache, the prefix cache, the store connection,
 * the worker thread and every request's state.
 * Thread-safety: submit / cancel / stats may be called from any thread.
 * Callbacks run on the worker thread, without engine locks held; they must be
 * quick and must not call hearth_engine_free (they may call cancel/submit).
 */
#ifndef HEARTH_ENGINE_H
#define HEARTH_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "prefix_cache.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/model.h"
#include "grammar.h"
#include "sampling.h"
#include "spec.h"
#include "spec_cost.h"

typedef struct hearth_engine_config {
    int n_ctx;              /* max tokens per sequence (0: the model's trained context, cut to what one
                               sequence's KV cache fits in the free memory; see hearth_engine_note) */
    int n_parallel;         /* max sequences running at once (default 8) */
    int n_batch;            /* token budget per step (default 512) */
    int page_size;          /* tokens per KV page (default 16) */
    int n_pages;            /* KV pool size (0: n_parallel * n_ctx worth -- with n_ctx 0, one
                               full-context sequence or n_parallel * 4096 tokens, whichever is
                               more -- + prefix-cache room, cut to the free memory of the
                               backends holding it; see hearth_engine_note) */
    hearth_dtype kv_type;   /* default F16 */
    bool prefix_cache;      /* reuse prompt pages across requests */
    const char *cache_db;   /* SQLite file for the persistent prefix cache, NULL = memory only */
    uint64_t cache_db_max_bytes;
    int max_waiting;        /* submit fails with HEARTH_ERR_BUSY beyond this (default 256) */
    bool grammar_full_mask; /* constrained steps always mask the whole vocabulary instead of checking
                               the best candidates first (same tokens, slower: for tests and bench) */
    /* speculative decoding (spec.h); greedy and sampled sequences (not grammar or logprobs requests) */
    hearth_spec_mode spec;  /* default OFF */
    int draft_max;          /* most tokens drafted per step (default 8) */
    int draft_min;          /* adaptive K never goes below this (default 1) */
    int spec_max_batch;     /* off for a step running more sequences than this (default 4) */
    hearth_spec_k_policy spec_k; /* how K is chosen: COST (default; spec_cost.h, may draft nothing
                                    when speculation would not pay) or STEP (the +1/-1 controller) */
    hearth_model *draft;    /* HEARTH_SPEC_DRAFT: the draft model (borrowed, loaded by the caller on any
                               backend, must outlive the engine); checked at create to share the target's
                               vocabulary. Unused in the other modes. */
} hearth_engine_config;

hearth_engine_config hearth_engine_defaults(void);

typedef enum hearth_finish {
    HEARTH_FINISH_NONE = 0,
    HEARTH_FINISH_STOP,      /* end-of-generation token or a stop string */
    HEARTH_FINISH_LENGTH,    /* max_tokens or the context filled up */
    HEARTH_FINISH_CANCELLED,
    HEARTH_FINISH_ERROR,
} hearth_finish;

const char *hearth_finish_name(hearth_finish f); /* "stop", "length", ... */

typedef struct hearth_request_stats {
    int prompt_tokens;
    int cached_tokens;      /* prompt tokens taken from the prefix cache */
    int generated_tokens;
    int preemptions;
    double queue_ms;        /* submit -> admitted */
    double ttft_ms;         /* submit -> first token */
    double prompt_ms;       /* admitted -> first token */
    double gen_ms;          /* first token -> last token */
    double total_ms;
    double itl_ms_mean;     /* mean inter-token latency */
    int spec_drafted;       /* speculative tokens proposed / kept by the target */
    int spec_accepted;
    double grammar_ms;      /* constrained decoding: time choosing and recording tokens under the grammar */
    int grammar_masked;     /* tokens that needed a whole-vocabulary mask (the others: a candidate check) */
    /* the cached prefix at the first admission (part of queue_ms): time attaching
     * it in all (cache_ms), of which looking pages up in the store (SQLite, the
     * row check; hits are read straight into the pools on the CPU) and copying
     * staged pages into device pools */
    double cache_ms, cache_read_ms, cache_upload_ms;
} hearth_request_stats;

typedef enum hearth_event_kind { HEARTH_EVENT_TOKEN, HEARTH_EVENT_DONE } hearth_event_kind;

typedef struct hearth_event {
    hearth_event_kind kind;
    uint64_t id;
    int32_t token;           /* TOKEN: the sampled id */
    float prob;              /* TOKEN: its probability under the sampler */
    const char *text;        /* new complete text (may be empty: held back for UTF-8 or a stop string) */
    size_t text_len;
    hearth_finish finish;    /* DONE */
    hearth_status status;    /* DONE with FINISH_ERROR */
    const char *error;       /* DONE with FINISH_ERROR: message */
    const hearth_request_stats *stats; /* DONE: final; TOKEN: so far */
    double itl_ms;           /* TOKEN: time since the previous token (0 for the first) */
    const hearth_logprobs *logprobs; /* TOKEN, when the request asked: the token's log-probability
                                      * and the top alternatives (sampling.h says on which distribution) */
} hearth_event;

typedef void (*hearth_event_fn)(const hearth_event *ev, void *user);

typedef struct hearth_request {
    const int32_t *prompt;   /* token ids (copied) */
    int n_prompt;
    hearth_sampling_params sampling;
    int max_tokens;          /* <= 0: until the context is full */
    const char *const *stop; /* stop strings (copied); the text stops before them */
    int n_stop;
    bool ignore_eog;
    bool no_spec;            /* opt out of speculative decoding */
    bool logprobs;           /* deliver each token's log-probability (turns off the device argmax
                              * and speculation for this request) */
    int top_logprobs;        /* ... and this many best alternatives (0..HEARTH_MAX_TOP_LOGPROBS) */
    hearth_event_fn on_event;
    void *user;
    /* Constrained decoding (grammar.h, grammar_seq.h): NULL = none. The engine
     * takes its own reference. With n_grammar_triggers > 0 the grammar is lazy:
     * off until a trigger string appears in the output, then it matches from
     * the trigger's first byte. A grammar turns off the greedy device argmax. */
    hearth_grammar *grammar;
    const char *const *grammar_triggers;
    int n_grammar_triggers;
} hearth_request;

typedef struct hearth_engine_stats {
    int running, waiting;
    uint64_t requests_done, tokens_generated, prompt_tokens, cached_tokens, preemptions, steps;
    /* constrained decoding: tokens chosen by checking candidates, and by a whole-vocabulary mask */
    uint64_t grammar_checked, grammar_masked;
    hearth_kv_stats kv;
    hearth_prefix_stats prefix;
    bool prefix_enabled;
    /* speculative decoding: verification passes (steps where a sequence had a
     * draft) and the tokens they produced
     * (tokens per target pass = spec_tokens / spec_passes),
     * tokens drafted and accepted, steps run without it because of load */
    hearth_spec_mode spec;
    uint64_t spec_passes, spec_tokens, spec_drafted, spec_accepted, spec_off_load;
    /* the K cost model (spec_cost.h): sequence-steps it drafted nothing because a draft would not
     * pay, and what it measured: target pass time = pass_ms_fixed + pass_ms_per_pos * positions
     * (both 0 until fitted), one draft-model pass (0: none seen) */
    uint64_t spec_cost_skips;
    double spec_pass_ms_fixed, spec_pass_ms_per_pos, spec_draft_pass_ms;
} hearth_engine_stats;

typedef struct hearth_engine hearth_engine;

hearth_engine *hearth_engine_create(hearth_model *m, const hearth_engine_config *cfg, hearth_error *err);
/* Cancels everything in flight (each gets a DONE/CANCELLED event), joins. */
void hearth_engine_free(hearth_engine *e);

/* Queue a request; returns its id (> 0), or 0 with err set: empty prompt,
 * prompt that can never fit (HEARTH_ERR_CONTEXT, with the numbers), too many
 * waiting (HEARTH_ERR_BUSY). */
uint64_t hearth_engine_submit(hearth_engine *e, const hearth_request *r, hearth_error *err);
/* Ask to stop a request; its DONE event follows (CANCELLED). Unknown ids are ignored. */
void hearth_engine_cancel(hearth_engine *e, uint64_t id);
void hearth_engine_stats_get(hearth_engine *e, hearth_engine_stats *out);
/* What the engine decided on its own that a user should hear about (the KV
 * pool cut to fit a device's memory), or "" -- for the app to print. */
const char *hearth_engine_note(const hearth_engine *e);
const hearth_model *hearth_engine_model(const hearth_engine *e);
int hearth_engine_n_ctx(const hearth_engine *e);

/* Convenience for synchronous callers: submit and wait for DONE, collecting
 * generated ids and text. r->on_event, when set, still sees every event
 * first (e.g. to stream text), on the worker thread. */
typedef struct hearth_completion {
    hearth_tokens tokens;
    char *text;              /* malloc'd, NUL-terminated */
    size_t text_len;
    hearth_finish finish;
    hearth_request_stats stats;
    char error[HEARTH_ERROR_MSG_MAX];
} hearth_completion;

hearth_status hearth_engine_generate(hearth_engine *e, const hearth_request *r, hearth_completion *out,
                                     hearth_error *err);
void hearth_completion_free(hearth_completion *c);

#endif
