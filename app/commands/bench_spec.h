/*
 * bench_spec.h - `hearth bench --spec ngram` / `--draft MODEL` in the pp/tg
 * mode: token generation through the engine with speculation off and on, in
 * one run, on the same prompt.
 *
 * The prompt is "quoting": a block of P/2 random normal tokens said twice
 * (BOS first), so n-gram lookup has earlier text to continue. Each side
 * generates N greedy tokens (end-of-generation ignored) from its own engine
 * (one sequence, no prefix cache), one warm-up then R timed repetitions,
 * alternating off / on so the machine's drift hits both. tg tok/s is (N - 1)
 * tokens over the time from the first generated token to the last (the
 * prompt is not timed). The two outputs are compared token by token.
 *
 * Ownership: plain functions; the caller owns the model and the options.
 */
#ifndef HEARTH_APP_BENCH_SPEC_H
#define HEARTH_APP_BENCH_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "app/cli/engine_opts.h"
#include "runtime/model/model.h"

typedef struct bench_spec_result {
    hearth_spec_mode mode; /* what the "on" side ran */
    int n_prompt, n_gen, reps;
    double off_mean, off_sd, on_mean, on_sd; /* tg tok/s through the engine */
    uint64_t drafted, accepted;              /* over the timed repetitions */
    uint64_t passes, pass_tokens;            /* verification passes, tokens they gave */
    bool same_tokens;                        /* every repetition's output equal to the off side's */
    /* the K policy of the "on" side and, for cost, what its model measured (engine.h) */
    hearth_spec_k_policy spec_k;
    uint64_t cost_skips;
    double pass_ms_fixed, pass_ms_per_pos, draft_pass_ms;
} bench_spec_result;

/* Run the comparison for model m (loaded by the caller with eo's backend);
 * eo's --spec / --draft pick the mode (the draft is loaded here, on m's
 * backend). false with a message in err on failure. */
bool bench_spec_tg(const app_engine_opts *eo, hearth_model *m, int n_prompt, int n_gen, int reps,
                   bench_spec_result *out, hearth_error *err);

#endif
