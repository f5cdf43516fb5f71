/*
 * spec_cost.c - see spec_cost.h. The fit is weighted least squares over the
 * per-size means (weight: passes seen of that size, at most 16), which keeps
 * a size seen once from moving the line as much as one seen a hundred times.
 */
#include "spec_cost.h"

#include <math.h>
#include <string.h>

/* A pass time on a shared machine is the pass's own cost plus, often, a
 * stall of a scheduler slice (another process ran: 20 ms where the pass
 * takes 1). A stall says nothing about the size of the pass, so each size
 * keeps a low quantile (0.3) of its times, not a mean or a median: the
 * first samples give their minimum, then each sample moves the estimate by
 * a fixed fraction, up by 0.3 of it or down by 0.7 (the fraction 1/16 while
 * young, 1/32 from 16 samples on), which settles where 30 % of the samples
 * fall below and follows a lasting change of speed within some dozens of
 * passes. */
enum { YOUNG = 16 };
#define QUANTILE 0.3

static void add_sample(double *est, double *first, int *count, double x) {
    if (*count < 3) {
        first[(*count)++] = x;
        if (*count == 1 || x < *est) *est = x;
        return;
    }
    if (*count < 1000000) (*count)++;
    const double step = *est / (*count < YOUNG ? 16 : 32);
    *est += x > *est ? step * QUANTILE : x < *est ? -step * (1 - QUANTILE) : 0;
}

const char *hearth_spec_k_name(hearth_spec_k_policy k) {
    return k == HEARTH_SPEC_K_STEP ? "step" : "cost";
}

bool hearth_spec_k_parse(const char *s, hearth_spec_k_policy *out) {
    if (s && !strcmp(s, "cost"))
        *out = HEARTH_SPEC_K_COST;
    else if (s && !strcmp(s, "step"))
        *out = HEARTH_SPEC_K_STEP;
    else
        return false;
    return true;
}

void hearth_spec_cost_init(hearth_spec_cost *c) {
    *c = (hearth_spec_cost){0};
}

void hearth_spec_cost_pass(hearth_spec_cost *c, int n, double ms) {
    if (n < 1 || n > HEARTH_SPEC_COST_MAX_N || !(ms >= 0)) return;
    add_sample(&c->mean_ms[n], c->first[n], &c->count[n], ms);
}

void hearth_spec_cost_draft(hearth_spec_cost *c, int passes, double ms) {
    if (passes <= 0 || !(ms >= 0)) return;
    add_sample(&c->draft_ms, c->draft_first, &c->draft_count, ms / passes);
}

bool hearth_spec_cost_fit(const hearth_spec_cost *c, double *a, double *b) {
    double s0 = 0, s1 = 0, s2 = 0, sy = 0, sny = 0;
    int sizes = 0;
    /* a pass never costs more than a larger one: a size whose estimate is
     * above a larger size's was hit by stalls more than its few samples
     * could shake off, and is taken at the larger size's (largest first) */
    double cap = INFINITY;
    for (int n = HEARTH_SPEC_COST_MAX_N; n >= 1; n--) {
        if (c->count[n] < HEARTH_SPEC_COST_MIN_SAMPLES) continue;
        const double w = c->count[n] < YOUNG ? c->count[n] : YOUNG;
        const double y = c->mean_ms[n] < cap ? c->mean_ms[n] : cap;
        cap = y;
        s0 += w;
        s1 += w * n;
        s2 += w * n * n;
        sy += w * y;
        sny += w * n * y;
        sizes++;
    }
    if (sizes < 2) return false;
    const double det = s0 * s2 - s1 * s1;
    if (det <= 0) return false;
    double bb = (s0 * sny - s1 * sy) / det, aa = (sy - bb * s1) / s0;
    if (bb < 0) { /* noise: passes do not get cheaper with more positions */
        bb = 0;
        aa = sy / s0;
    }
    if (aa < 0) { /* all cost per position: refit through the origin */
        aa = 0;
        bb = sny / s2;
    }
    *a = aa;
    *b = bb;
    return true;
}

double hearth_spec_expected_tokens(double alpha, int k) {
    double e = 0, p = 1;
    for (int i = 0; i <= k; i++) {
        e += p;
        p *= alpha;
    }
    return e;
}

/* The best K of [k_min, k_max] whose gain exceeds min_gain (0 when none). */
static int choose(const hearth_spec_cost *c, double alpha, int k_min, int k_max, int n_seqs,
                  bool draft_passes, double min_gain, double *gain) {
    double a, b;
    if (!hearth_spec_cost_fit(c, &a, &b) || (draft_passes && c->draft_count < HEARTH_SPEC_COST_MIN_SAMPLES))
        return -1;
    if (n_seqs < 1) n_seqs = 1;
    if (k_min < 1) k_min = 1;
    const double fixed = a / n_seqs, draft = draft_passes ? c->draft_ms / n_seqs : 0;
    const double t0 = fixed + b;
    int best = 0;
    double best_gain = 1.0;
    for (int k = k_min; k <= k_max; k++) {
        const double t = fixed + b * (1 + k) + draft * k;
        if (t <= 0) continue;
        const double g = hearth_spec_expected_tokens(alpha, k) * t0 / t;
        if (g > (best ? best_gain : min_gain)) {
            best = k;
            best_gain = g;
        }
    }
    if (gain) *gain = best ? best_gain : 1.0;
    return best;
}

int hearth_spec_cost_choose(const hearth_spec_cost *c, double alpha, int k_min, int k_max, int n_seqs,
                            bool draft_passes, double *gain) {
    return choose(c, alpha, k_min, k_max, n_seqs, draft_passes, HEARTH_SPEC_COST_MIN_GAIN, gain);
}

int hearth_spec_cost_best(const hearth_spec_cost *c, double alpha, int k_min, int k_max, int n_seqs,
                          bool draft_passes) {
    return choose(c, alpha, k_min, k_max, n_seqs, draft_passes, 0.0, NULL);
}

hearth_spec_acc hearth_spec_acc_init(void) {
    return (hearth_spec_acc){0, 0};
}

void hearth_spec_acc_update(hearth_spec_acc *s, int drafted, int accepted) {
    if (drafted <= 0) return;
    s->ok = 0.9 * s->ok + accepted;
    s->fail = 0.9 * s->fail + (accepted < drafted ? 1 : 0);
}

double hearth_spec_acc_alpha(const hearth_spec_acc *s) {
    return (s->ok + 1) / (s->ok + s->fail + 2);
}
