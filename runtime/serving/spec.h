/*
 * spec.h - speculative decoding: the drafter, the acceptance rule, adaptive K.
 *
 * A drafter proposes K tokens that likely follow a sequence; the target model
 * scores all of them in one pass (K+1 positions), and the engine keeps the
 * longest prefix the target agrees with, plus one token of its own. This file
 * holds the parts that need no model, so they are testable by themselves:
 *  - n-gram / prompt lookup: continue the most recent earlier occurrence of
 *    the sequence's last n tokens (n from ngram_max down to ngram_min);
 *  - the acceptance rule for sampling (accept draft x with min(1, p(x)/q(x)),
 *    on rejection draw from max(0, p - q) normalised), which keeps the output
 *    distribution equal to p; a deterministic drafter (n-gram) is the case
 *    where q is a point mass on x;
 *  - the adaptive K controller (shrink on low acceptance, grow on high).
 * The engine (engine.c) applies them; with greedy sampling the rule reduces
 * to "accept while the draft equals the target's argmax", which makes the
 * output token-identical to decoding without speculation.
 *
 * Ownership: plain functions over caller memory; the controller is a value
 * owned by its sequence. No allocation, no threads.
 */
#ifndef HEARTH_SPEC_H
#define HEARTH_SPEC_H

#include <stdbool.h>
#include <stdint.h>

typedef enum hearth_spec_mode {
    HEARTH_SPEC_OFF = 0,
    HEARTH_SPEC_NGRAM, /* prompt lookup: no draft model */
    HEARTH_SPEC_DRAFT, /* a draft model with the same vocabulary (spec_draft.h) */
} hearth_spec_mode;

/* "off", "ngram", "draft". */
const char *hearth_spec_mode_name(hearth_spec_mode m);

/* Parse "ngram" / "draft" / "off"; false for anything else. */
bool hearth_spec_mode_parse(const char *s, hearth_spec_mode *out);

/* N-gram lookup over toks[0..n): find the most recent earlier position where
 * the last g tokens occur (g from ngram_max down to ngram_min, longest match
 * first) and copy up to k_max tokens that followed it into out. Returns the
 * number of tokens drafted (0: no match). Deterministic. */
int hearth_spec_ngram_draft(const int32_t *toks, int n, int ngram_min, int ngram_max, int k_max,
                            int32_t *out);

/* The acceptance rule at one position. p[n_vocab]: the target's distribution
 * (as the request's sampler would draw from it), q[n_vocab]: the drafter's
 * (NULL: a deterministic drafter, q is a point mass on `draft`). u_accept and
 * u_resample are independent uniforms in [0, 1). Returns `draft` when it is
 * accepted, else the token drawn from norm(max(0, p - q)); *accepted says
 * which. */
int32_t hearth_spec_accept(const float *p, const float *q, int n_vocab, int32_t draft, double u_accept,
                           double u_resample, bool *accepted);

/* A draw from p[n_vocab] (weights, normalised here) with the uniform u in
 * [0, 1): the drafted token of a sampled draft. -1 when p is all zero. */
int32_t hearth_spec_draw(const float *p, int n_vocab, double u);

/* Adaptive K: after each verification with `drafted` tokens of which
 * `accepted` were kept, K grows by one when all were kept and shrinks by
 * one when under half were, within [k_min, k_max]. */
typedef struct hearth_spec_ctl {
    int k, k_min, k_max;
} hearth_spec_ctl;

hearth_spec_ctl hearth_spec_ctl_init(int k_min, int k_max);
void hearth_spec_ctl_update(hearth_spec_ctl *c, int drafted, int accepted);

#endif
