/*
 * sampling.c - see sampling.h. Candidates are (id, logit) pairs; filters
 * shrink the candidate list in place. The RNG is splitmix64-seeded
 * xoshiro256**, deterministic across platforms.
 */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float logit;
    float p;
} cand;

struct hearth_sampler {
    hearth_sampling_params p;
    int n_vocab;
    cand *c;
    float *work; /* penalised logits */
    int32_t *hist;
    int hist_cap, hist_n, hist_pos;
    uint32_t *counts;
    uint64_t rng[4];
    float last_prob;
};

hearth_sampling_params hearth_sampling_defaults(void) {
    return (hearth_sampling_params){.temperature = 0.8f,
                                    .top_k = 40,
                                    .top_p = 0.95f,
                                    .min_p = 0.05f,
                                    .repeat_penalty = 1.0f,
                                    .presence_penalty = 0.0f,
                                    .frequency_penalty = 0.0f,
                                    .penalty_last_n = 64,
                                    .seed = 0xC0FFEE};
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

void hearth_sampler_reset(hearth_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->hist_n = s->hist_pos = 0;
    if (s->counts) memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
}

hearth_sampler *hearth_sampler_create(const hearth_sampling_params *p, int n_vocab, hearth_error *err) {
    if (n_vocab <= 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "sampler: empty vocabulary");
        return NULL;
    }
    if (p->temperature < 0 || !isfinite(p->temperature) || p->top_p < 0 || p->min_p < 0 || p->min_p > 1 ||
        p->repeat_penalty <= 0) {
        hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "sampler: invalid settings (temperature >= 0, 0 <= top_p, 0 <= min_p <= 1, repeat_penalty > 0)");
        return NULL;
    }
    hearth_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->hist_cap = p->penalty_last_n < 0 ? 1 << 20 : p->penalty_last_n;
    s->hist = s->hist_cap ? malloc((size_t)s->hist_cap * sizeof *s->hist) : NULL;
    if (!s->c || !s->work || !s->counts || (s->hist_cap && !s->hist)) goto oom;
    hearth_sampler_reset(s);
    return s;
oom:
    hearth_sampler_free(s);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "sampler: out of memory");
    return NULL;
}

void hearth_sampler_free(hearth_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->work);
    free(s->hist);
    free(s->counts);
    free(s);
}

void hearth_sampler_accept(hearth_sampler *s, int32_t token) {
    if (!s->hist_cap || token < 0 || token >= s->n_vocab) return;
    if (s->hist_n == s->hist_cap) {
        s->counts[s->hist[s->hist_pos]]--; /* ring buffer: forget the oldest */
    } else {
        s->hist_n++;
    }
    s->hist[s->hist_pos] = token;
    s->counts[token]++;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
}

static int cmp_cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;
}

/* Partition so that c[0..k) are the k best candidates (any order): quickselect. */
static void select_top(cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cmp_cand_desc(&c[i], &pivot) < 0)
                i++;
            while (cmp_cand_desc(&c[j], &pivot) > 0)
                j--;
            if (i <= j) {
                cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

float hearth_sampler_last_prob(const hearth_sampler *s) {
    return s->last_prob;
}

bool hearth_sampler_is_greedy(const hearth_sampler *s) {
    const hearth_sampling_params *p = &s->p;
    return p->temperature <= 0.0f && p->repeat_penalty == 1.0f && p->presence_penalty == 0 &&
           p->frequency_penalty == 0;
}

/* The logits with the penalties over the current history applied (s->work),
 * or logits itself when no penalty applies. */
static const float *penalised(hearth_sampler *s, const float *logits) {
    const hearth_sampling_params *p = &s->p;
    const int nv = s->n_vocab;
    /* llama.cpp semantics: divide positive / multiply negative logits by
     * repeat_penalty; subtract count * frequency + presence */
    bool penalise =
        s->hist_n > 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0);
    if (!penalise) return logits;
    memcpy(s->work, logits, (size_t)nv * sizeof *s->work);
    /* Each distinct token in the history once; the top bit of its count
     * marks "already penalised" during this pass. */
    for (int i = 0; i < s->hist_n; i++) {
        int32_t t = s->hist[i];
        if (s->counts[t] & 0x80000000u) continue;
        float *l = &s->work[t];
        *l = *l > 0 ? *l / p->repeat_penalty : *l * p->repeat_penalty;
        *l -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
        s->counts[t] |= 0x80000000u;
    }
    for (int i = 0; i < s->hist_n; i++)
        s->counts[s->hist[i]] &= 0x7fffffffu;
    return s->work;
}

void hearth_sampler_logprobs(hearth_sampler *s, const float *logits, int32_t id, int n_top,
                             hearth_logprobs *out) {
    const int nv = s->n_vocab;
    const float *lg = penalised(s, logits);
    float mx = lg[hearth_argmax(lg, nv)];
    double sum = 0;
    for (int i = 0; i < nv; i++)
        sum += exp((double)lg[i] - mx);
    double lse = mx + log(sum);
    out->id = id;
    out->logprob = id >= 0 && id < nv ? (float)(lg[id] - lse) : -INFINITY;
    if (n_top > HEARTH_MAX_TOP_LOGPROBS) n_top = HEARTH_MAX_TOP_LOGPROBS;
    if (n_top > nv) n_top = nv;
    out->n_top = n_top > 0 ? n_top : 0;
    if (out->n_top == 0) return;
    cand *c = s->c;
    for (int i = 0; i < nv; i++)
        c[i] = (cand){i, lg[i], 0};
    select_top(c, nv, n_top);
    qsort(c, (size_t)n_top, sizeof *c, cmp_cand_desc);
    for (int i = 0; i < n_top; i++) {
        out->top_id[i] = c[i].id;
        out->top_logprob[i] = (float)(c[i].logit - lse);
    }
}

/* From candidates c[0..n) sorted best first (top-k already applied): the
 * softmax, top-p and min-p, then the temperature weights. Returns how many
 * candidates are kept, c[i].p their unnormalised weights, *sum_out their
 * total. sample() draws from exactly this and probs() writes it out, so both
 * see one distribution. */
static int filter_sorted(hearth_sampler *s, cand *c, int n, double *sum_out) {
    const hearth_sampling_params *p = &s->p;
    /* ---- softmax over candidates */
    float mx = c[0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - mx);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);
    /* ---- top-p: smallest prefix with cumulative probability >= top_p */
    if (p->top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    /* ---- min-p: drop candidates below min_p * p(best) */
    if (p->min_p > 0.0f) {
        float thr = p->min_p * c[0].p;
        int keep = 1;
        while (keep < n && c[keep].p >= thr)
            keep++;
        n = keep;
    }
    /* ---- temperature */
    mx = c[0].logit / p->temperature;
    sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit / p->temperature - mx);
        sum += c[i].p;
    }
    *sum_out = sum;
    return n;
}

/* The filters (filter_sorted), then the draw. */
static int32_t draw_sorted(hearth_sampler *s, cand *c, int n) {
    double sum;
    n = filter_sorted(s, c, n, &sum);
    double r = rng_uniform(s->rng) * sum, acc = 0;
    int pick = n - 1;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) {
            pick = i;
            break;
        }
    }
    s->last_prob = (float)(c[pick].p / sum);
    return c[pick].id;
}

/* Candidates from penalised logits lg, sorted by logit as far as top_k needs; returns how many. */
static int sorted_candidates(hearth_sampler *s, const float *lg) {
    const hearth_sampling_params *p = &s->p;
    const int nv = s->n_vocab;
    cand *c = s->c;
    for (int i = 0; i < nv; i++)
        c[i] = (cand){i, lg[i], 0};
    int n = nv;
    if (p->top_k > 0 && p->top_k < n) {
        select_top(c, n, p->top_k); /* the k best to the front, then sort just those */
        n = p->top_k;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_cand_desc);
    return n;
}

int32_t hearth_sampler_sample(hearth_sampler *s, const float *logits) {
    const float *lg = penalised(s, logits);
    if (s->p.temperature <= 0.0f) {
        int32_t best = hearth_argmax(lg, s->n_vocab);
        s->last_prob = 1.0f;
        return best;
    }
    int n = sorted_candidates(s, lg);
    return draw_sorted(s, s->c, n);
}

void hearth_sampler_probs(hearth_sampler *s, const float *logits, float *p_out) {
    const int nv = s->n_vocab;
    const float *lg = penalised(s, logits);
    memset(p_out, 0, (size_t)nv * sizeof *p_out);
    if (s->p.temperature <= 0.0f) {
        p_out[hearth_argmax(lg, nv)] = 1.0f;
        return;
    }
    double sum;
    int n = filter_sorted(s, s->c, sorted_candidates(s, lg), &sum);
    for (int i = 0; i < n; i++)
        p_out[s->c[i].id] = (float)(s->c[i].p / sum);
}

double hearth_sampler_uniform(hearth_sampler *s) {
    return rng_uniform(s->rng);
}

void hearth_sampler_copy_history(hearth_sampler *dst, const hearth_sampler *src) {
    if (dst->n_vocab != src->n_vocab || dst->hist_cap != src->hist_cap) return;
    dst->hist_n = src->hist_n;
    dst->hist_pos = src->hist_pos;
    /* the ring fills from slot 0, so its first hist_n slots are the ones in use */
    if (src->hist_n) memcpy(dst->hist, src->hist, (size_t)src->hist_n * sizeof *dst->hist);
    memcpy(dst->counts, src->counts, (size_t)src->n_vocab * sizeof *dst->counts);
}

const hearth_sampling_params *hearth_sampler_params(const hearth_sampler *s) {
    return &s->p;
}

int32_t hearth_sampler_sample_allowed(hearth_sampler *s, const float *logits, hearth_token_check allowed,
                                      void *ctx) {
    const hearth_sampling_params *p = &s->p;
    const int nv = s->n_vocab;
    bool greedy = p->temperature <= 0.0f;
    if (!greedy && (p->top_k <= 0 || p->top_k >= nv)) return -1; /* needs every allowed token */
    int need = greedy ? 1 : p->top_k;
    /* Both paths see the candidates in one total order (logit, then id):
     * the masked row's top `need` are the first `need` allowed ones here. */
    int span = greedy ? HEARTH_ALLOWED_WALK : 2 * need + HEARTH_ALLOWED_WALK;
    if (span > nv) span = nv;
    const float *lg = penalised(s, logits);
    cand *c = s->c;
    for (int i = 0; i < nv; i++)
        c[i] = (cand){i, lg[i], 0};
    select_top(c, nv, span);
    qsort(c, (size_t)span, sizeof *c, cmp_cand_desc);
    int got = 0;
    for (int i = 0; i < span && got < need; i++) {
        if (!(c[i].logit > -INFINITY)) break; /* the rest are masked out already */
        if (allowed(ctx, c[i].id)) c[got++] = c[i];
    }
    if (got < need) return -1; /* too few in reach: the caller masks the row */
    if (greedy) {
        s->last_prob = 1.0f;
        return c[0].id;
    }
    return draw_sorted(s, c, need);
}
