/*
 * spec_cost.h - choosing the number of drafted tokens K by a cost model.
 *
 * A speculative step of one sequence with K drafts costs a target pass of
 * 1 + K positions plus K draft-model passes (none for n-gram lookup), and
 * yields E(K) tokens. With a per-token acceptance rate alpha (the chance that
 * the target keeps the next drafted token, given it kept the ones before),
 * E(K) = 1 + alpha + ... + alpha^K. Plain decoding (K = 0) yields 1 token for
 * a pass of 1 position. K is chosen to maximise E(K) / cost(K), and may be 0
 * (no draft: speculation would not pay for this sequence now).
 *
 * The costs are measured while the engine runs, not assumed:
 *  - target pass time t(n) = a + b n, fitted by least squares over a low
 *    quantile of the times of passes of each size n (1..HEARTH_SPEC_COST_MAX_N
 *    positions, a size counting from its third pass), so the fit stays
 *    determined once two sizes were seen, even when K then stays constant (on a CPU with a cache-resident
 * model b is large: a pass of 9 positions costs 4-7 decode steps; on a GPU b is near 0);
 *  - a draft-model pass's time (the same low quantile);
 *  - alpha per sequence from its own verifications (hearth_spec_acc).
 * With several sequences in a step the fixed part a and the draft passes are
 * shared: each sequence is charged a / n_seqs and draft / n_seqs.
 *
 * Ownership: plain values owned by the engine (the cost) and by each sequence
 * (the acceptance); no allocation, no threads, no clock (callers pass times).
 */
#ifndef HEARTH_SPEC_COST_H
#define HEARTH_SPEC_COST_H

#include <stdbool.h>

#define HEARTH_SPEC_COST_MAX_N 64

/* How the engine picks K: by this cost model (the default), or by the step
 * controller of spec.h alone (+1 when all drafts were kept, -1 when under
 * half were). */
typedef enum hearth_spec_k_policy {
    HEARTH_SPEC_K_COST = 0,
    HEARTH_SPEC_K_STEP,
} hearth_spec_k_policy;

/* "cost", "step". */
const char *hearth_spec_k_name(hearth_spec_k_policy k);
/* Parse "cost" / "step"; false for anything else. */
bool hearth_spec_k_parse(const char *s, hearth_spec_k_policy *out);

typedef struct hearth_spec_cost {
    double mean_ms[HEARTH_SPEC_COST_MAX_N + 1];  /* [n] time of a pass of n positions (a low quantile) */
    double first[HEARTH_SPEC_COST_MAX_N + 1][3]; /* [n] its first three samples */
    int count[HEARTH_SPEC_COST_MAX_N + 1];       /* passes seen of each size */
    double draft_ms;                             /* time of one draft-model pass (likewise) */
    double draft_first[3];
    int draft_count;
} hearth_spec_cost;

void hearth_spec_cost_init(hearth_spec_cost *c);

/* A target pass of n positions took ms. Sizes past HEARTH_SPEC_COST_MAX_N
 * are ignored. Each size keeps a running low quantile (spec_cost.c): the
 * stalls another process causes (a scheduler slice, often more than the
 * pass itself) do not move it, a lasting change of speed does, within some
 * dozens of passes. */
void hearth_spec_cost_pass(hearth_spec_cost *c, int n, double ms);

/* passes draft-model passes took ms in all (passes > 0). */
void hearth_spec_cost_draft(hearth_spec_cost *c, int passes, double ms);

/* A size (or the draft pass) counts once this many passes of it were timed:
 * the first pass of a size is often cold (pages, caches), and the minimum
 * of three keeps one stall out. */
#define HEARTH_SPEC_COST_MIN_SAMPLES 3

/* The fit t(n) = a + b n; false until two sizes were timed
 * HEARTH_SPEC_COST_MIN_SAMPLES times each (then *a and *b are untouched).
 * A size's estimate counts at most a larger size's (stalls inflate sizes
 * seen rarely); b is clamped at >= 0 and a at >= 0. */
bool hearth_spec_cost_fit(const hearth_spec_cost *c, double *a, double *b);

/* E(K) = sum of alpha^i for i = 0..k: the expected tokens of a verification
 * of k drafts at acceptance alpha. */
double hearth_spec_expected_tokens(double alpha, int k);

/* The K in {0} U [k_min, k_max] with the most expected tokens per unit of
 * cost for one of n_seqs speculating sequences (draft_passes: whether each
 * draft token costs a draft-model pass); K > 0 only when it beats plain
 * decoding by HEARTH_SPEC_COST_MIN_GAIN. -1 when the fit is not ready (the
 * caller keeps its own K; also while a draft model's pass has been timed
 * fewer than HEARTH_SPEC_COST_MIN_SAMPLES times). *gain (optional) receives the chosen K's tokens
 * per time over plain decoding's (1.0 for K = 0). */
int hearth_spec_cost_choose(const hearth_spec_cost *c, double alpha, int k_min, int k_max, int n_seqs,
                            bool draft_passes, double *gain);

/* The best K of [k_min, k_max] even when it does not pay (the caller probes
 * with it now and then, so that the cost of the passes it would need stays
 * measured); -1 when the fit is not ready. */
int hearth_spec_cost_best(const hearth_spec_cost *c, double alpha, int k_min, int k_max, int n_seqs,
                          bool draft_passes);

/* Below this gain over plain decoding a draft is not worth it: on a shared
 * machine a 1 % difference is noise. */
#define HEARTH_SPEC_COST_MIN_GAIN 1.01

/* A sequence's acceptance: each verified draft token is a trial that
 * succeeded (accepted) until the first failure (rejected); the counts decay
 * by 0.9 a verification so that alpha follows the text. alpha starts at 0.5
 * (one success and one failure of prior). */
typedef struct hearth_spec_acc {
    double ok, fail;
} hearth_spec_acc;

hearth_spec_acc hearth_spec_acc_init(void);
void hearth_spec_acc_update(hearth_spec_acc *s, int drafted, int accepted);
double hearth_spec_acc_alpha(const hearth_spec_acc *s);

#endif
