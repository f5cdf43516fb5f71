/*
 * sampling.h - turning logits into the next token.
 *
 * Order of operations (as llama.cpp's default chain): repetition / presence /
 * frequency penalties over the last `penalty_last_n` tokens, then top-k,
 * top-p, min-p, temperature, and a draw from the seeded RNG. temperature <= 0
 * means greedy (argmax, lowest id on a tie) and ignores the filters.
 * Same seed + same settings + same logits = same tokens.
 *
 * Ownership: a sampler owns its scratch and history; one per sequence,
 * used by one thread at a time.
 */
#ifndef HEARTH_SAMPLING_H
#define HEARTH_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/argmax.h"
#include "core/error.h"

typedef struct hearth_sampling_params {
    float temperature;     /* <= 0: greedy */
    int top_k;             /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    float presence_penalty;
    float frequency_penalty;
    int penalty_last_n;    /* tokens of history the penalties look at; 0: off, -1: whole context */
    uint64_t seed;
} hearth_sampling_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off,
 * penalty_last_n 64, seed 0xC0FFEE. */
hearth_sampling_params hearth_sampling_defaults(void);

typedef struct hearth_sampler hearth_sampler;

hearth_sampler *hearth_sampler_create(const hearth_sampling_params *p, int n_vocab, hearth_error *err);
void hearth_sampler_free(hearth_sampler *s);
/* Record a token (prompt or generated) in the penalty history. */
void hearth_sampler_accept(hearth_sampler *s, int32_t token);
void hearth_sampler_reset(hearth_sampler *s);
/* Pick the next token from logits[n_vocab] (logits are not modified). */
int32_t hearth_sampler_sample(hearth_sampler *s, const float *logits);

/* Constrained sampling without a whole mask: returns exactly what
 * hearth_sampler_sample would return on logits with every token that
 * allowed() rejects set to -inf (the same token, the same random draw),
 * checking only the best candidates one by one. Returns -1, having changed
 * nothing (no random number drawn), when that cannot be decided from the
 * first 2 * top_k + HEARTH_ALLOWED_WALK candidates (greedy: the first
 * HEARTH_ALLOWED_WALK), or when the filters need every allowed token
 * (sampling with top_k off): the caller then masks the row and calls
 * hearth_sampler_sample. */
#define HEARTH_ALLOWED_WALK 32
typedef bool (*hearth_token_check)(void *ctx, int32_t token);
int32_t hearth_sampler_sample_allowed(hearth_sampler *s, const float *logits, hearth_token_check allowed,
                                      void *ctx);
/* True when sample() is a plain argmax of the raw logits (greedy, no
 * penalties), so the caller may pick the token on the device instead. */
bool hearth_sampler_is_greedy(const hearth_sampler *s);
/* Log-probabilities for a token the caller picked from these logits
 * (logprobs): the log-softmax, at temperature 1, of the logits with the
 * penalties over the history applied (call before accepting id), i.e. the
 * distribution the sampler's filters and temperature then work on; id's
 * and the n_top best (at most HEARTH_MAX_TOP_LOGPROBS, best first, lowest id
 * on a tie). */
#define HEARTH_MAX_TOP_LOGPROBS 20
typedef struct hearth_logprobs {
    int32_t id;
    float logprob;
    int n_top;
    int32_t top_id[HEARTH_MAX_TOP_LOGPROBS];
    float top_logprob[HEARTH_MAX_TOP_LOGPROBS];
} hearth_logprobs;
void hearth_sampler_logprobs(hearth_sampler *s, const float *logits, int32_t id, int n_top, hearth_logprobs *out);
/* Probability the last sample() gave its token (after filters; 1 for greedy). */
float hearth_sampler_last_prob(const hearth_sampler *s);

/* Speculative decoding (spec.h) needs the distribution itself:
 * hearth_sampler_probs writes into p_out[n_vocab] the probabilities sample()
 * would draw from for these logits and the current history (penalties,
 * top-k, top-p, min-p, temperature; a point mass on the argmax when greedy),
 * zero for filtered tokens. It draws nothing and records nothing.
 * hearth_sampler_uniform draws one uniform in [0, 1) from the sampler's
 * seeded RNG (the sequence's stream). hearth_sampler_copy_history makes dst's
 * penalty history equal to src's (samplers of the same settings and
 * vocabulary; otherwise nothing happens): the draft model's sampler starts
 * each draft from the sequence's history. hearth_sampler_params: the
 * settings it was made with. */
void hearth_sampler_probs(hearth_sampler *s, const float *logits, float *p_out);
double hearth_sampler_uniform(hearth_sampler *s);
void hearth_sampler_copy_history(hearth_sampler *dst, const hearth_sampler *src);
const hearth_sampling_params *hearth_sampler_params(const hearth_sampler *s);

/* hearth_argmax (greedy choice) lives in core/argmax.h, included above: the
 * forward pass uses it too. */

#endif
