/*
 * quantize_awq.c - the AWQ-style scale search, fold and clipping search of
 * quantize_awq.h.
 *
 * Flow: q_awq_run runs the model over the calibration text with a tap that
 * keeps, per layer and matmul input, mean|x| per channel, the block moments
 * of X^T X and an evenly spread sample of input rows, then frees the model.
 * q_awq_get searches one layer when the writer reaches it: read the layer's
 * weights from the (mmap'd) input as F32, search alpha per group on the
 * sample, fold the scales, clip every matrix, keep the result until the
 * next layer is asked for.
 * Ownership: the model and the calibration scratch are freed before
 * q_awq_run returns; the statistics and the current layer's tensors belong
 * to the q_awq.
 */
#include "quantize_awq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/common.h"
#include "app/commands/awq_search.h"
#include "app/commands/calib.h"
#include "core/grow.h"

/* ---------------------------------------------------------------- calibration statistics */

typedef struct awq_site {
    int64_t ne;      /* channels */
    double *sum_abs; /* [ne] */
    double *h;       /* [ne / AWQ_HB][AWQ_HB][AWQ_HB] block moments of X^T X */
    float *hf;       /* [ne][ne] upper triangle of X^T X (the whole-row refinement), or NULL */
    int64_t count;   /* rows seen */
    float *samp;     /* [R * ne] sampled rows */
    int n_samp;
} awq_site;

typedef struct awq_col {
    awq_site *s; /* [n_layer * Q_AWQ_GROUPS], indexed by hearth_tap_site */
    int n_layer, R, threads;
    int64_t stride;
    bool failed;
} awq_col;

struct q_awq_priv {
    q_awq_opts o;
    const hearth_gguf *g;
    hearth_hparams hp;
    q_awq_type_fn type_of;
    void *user;
    awq_col col;
};

static void awq_tap(void *user, hearth_tap_site site, int layer, const float *x, int n_rows, int64_t ne0) {
    awq_col *c = user;
    if (layer < 0 || layer >= c->n_layer || (int)site >= Q_AWQ_GROUPS) return;
    awq_site *s = &c->s[layer * Q_AWQ_GROUPS + (int)site];
    if (s->ne != ne0) {
        c->failed = true;
        return;
    }
    if (s->h) awq_hblock_add(s->h, x, n_rows, ne0);
    if (s->hf) awq_hfull_add_mt(s->hf, x, n_rows, ne0, c->threads);
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)ne0;
        for (int64_t j = 0; j < ne0; j++)
            s->sum_abs[j] += fabsf(row[j]);
        if (s->count % c->stride == 0 && s->n_samp < c->R)
            memcpy(s->samp + (size_t)s->n_samp++ * (size_t)ne0, row, (size_t)ne0 * sizeof *row);
        s->count++;
    }
}

/* The full moments cost ne^2 floats per input: kept when all of them fit in
 * this budget (else the refinement stays within blocks). */
#define AWQ_FULL_BUDGET ((size_t)512 << 20)

static bool col_init(awq_col *c, const hearth_model *m, int R, int64_t total_rows, bool full, int threads,
                     hearth_error *err) {
    const hearth_hparams *hp = &m->hp;
    c->n_layer = hp->n_layer;
    c->R = R;
    c->threads = threads;
    c->stride = total_rows / R > 1 ? total_rows / R : 1;
    c->s = calloc((size_t)hp->n_layer * Q_AWQ_GROUPS, sizeof *c->s);
    if (!c->s) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    const int64_t ne[Q_AWQ_GROUPS] = {[HEARTH_TAP_ATTN_IN] = hp->n_embd,
                                      [HEARTH_TAP_ATTN_OUT] = (int64_t)hp->n_head * hp->head_dim,
                                      [HEARTH_TAP_FFN_IN] = hp->n_embd,
                                      [HEARTH_TAP_FFN_DOWN] = hp->n_ff};
    for (int i = 0; i < hp->n_layer * Q_AWQ_GROUPS; i++) {
        awq_site *s = &c->s[i];
        s->ne = ne[i % Q_AWQ_GROUPS];
        if (s->ne <= 0)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: a matmul input of width %lld",
                                    (long long)s->ne),
                   false;
        s->sum_abs = calloc((size_t)s->ne, sizeof *s->sum_abs);
        /* no block moments for a width no quantizer block divides (nothing to clip there) */
        s->h = s->ne % AWQ_HB ? NULL : calloc((size_t)s->ne * AWQ_HB, sizeof *s->h);
        s->samp = malloc((size_t)R * (size_t)s->ne * sizeof *s->samp);
        if (full && s->h) s->hf = calloc((size_t)(s->ne * s->ne), sizeof *s->hf);
        if (!s->sum_abs || (!s->h && s->ne % AWQ_HB == 0) || !s->samp || (full && s->h && !s->hf))
            return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    }
    return true;
}

static void col_free(awq_col *c) {
    for (int i = 0; c->s && i < c->n_layer * Q_AWQ_GROUPS; i++) {
        free(c->s[i].sum_abs);
        free(c->s[i].h);
        free(c->s[i].hf);
        free(c->s[i].samp);
    }
    free(c->s);
    c->s = NULL;
}

/* ---------------------------------------------------------------- weights */

typedef struct awq_mat {
    char name[96];
    float *w; /* [n_out * n_in] */
    int64_t n_in, n_out;
    hearth_dtype type; /* planned */
    float *yref;       /* [R * n_out] float outputs on the sample */
    const float *rdiv; /* [n_out] rows divided by this in the fold (V, ffn_up), or NULL */
} awq_mat;

static const gguf_tensor *mat_check(const hearth_gguf *g, const char *name, int64_t n_in, hearth_error *err) {
    const gguf_tensor *t = hearth_gguf_find_tensor(g, name);
    if (!t || t->n_dims > 2 || (int64_t)t->ne[0] != n_in) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "--awq needs a llama/qwen-style model: %s is missing or not a [%lld x N] matrix",
                         name, (long long)n_in);
        return NULL;
    }
    if (t->type != HEARTH_F32 && t->type != HEARTH_F16 && t->type != HEARTH_BF16) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "--awq needs float weights: %s is %s (start from F32/F16/BF16)", name,
                         hearth_dtype_name(t->type));
        return NULL;
    }
    return t;
}

static bool mat_load(const q_awq_priv *p, const char *name, int64_t n_in, awq_mat *mt, bool planned,
                     hearth_error *err) {
    const size_t len = strlen(name) < sizeof mt->name ? strlen(name) : sizeof mt->name - 1;
    memcpy(mt->name, name, len);
    mt->name[len] = 0;
    const gguf_tensor *t = mat_check(p->g, mt->name, n_in, err);
    if (!t) return false;
    mt->n_in = n_in;
    mt->n_out = t->n_dims > 1 ? (int64_t)t->ne[1] : 1;
    mt->type = planned && p->type_of ? p->type_of(p->user, mt->name) : HEARTH_F32;
    mt->w = malloc((size_t)(mt->n_in * mt->n_out) * sizeof *mt->w);
    if (!mt->w) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    const size_t rb = hearth_dtype_row_size(t->type, n_in);
    for (int64_t r = 0; r < mt->n_out; r++)
        hearth_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, mt->w + r * n_in, n_in);
    return true;
}

static void mats_free(awq_mat *m, int n) {
    for (int i = 0; i < n; i++) {
        free(m[i].w);
        free(m[i].yref);
        m[i].w = m[i].yref = NULL;
    }
}

/* ---------------------------------------------------------------- parallel parts */

typedef struct awq_task {
    const awq_mat *mt;
    const float *s;  /* column scales applied on the fly, or NULL */
    const float *xs; /* [R * n_in] */
    const float *h;  /* block moments for the clip search (scaled) */
    const float *hf; /* full moments (scaled) for the whole-row refinement, or NULL */
    int R;
    double *err_row, *err_row2; /* [n_out] */
    bool refine;                /* the clip search also refines the rounding (Q4_0, Q5_0) */
} awq_task;

static void task_yref(void *ctx, int64_t o0, int64_t o1) {
    awq_task *t = ctx;
    const awq_mat *m = t->mt;
    for (int r = 0; r < t->R; r++)
        for (int64_t o = o0; o < o1; o++)
            m->yref[(size_t)r * m->n_out + o] =
                awq_dot(t->xs + (size_t)r * m->n_in, m->w + o * m->n_in, m->n_in);
}

static void task_err(void *ctx, int64_t o0, int64_t o1) {
    awq_task *t = ctx;
    const awq_mat *m = t->mt;
    if (!awq_rows_err(m->type, m->w, t->s, m->n_in, m->n_out, t->xs, t->R, m->yref, o0, o1, t->err_row))
        t->err_row[o0] = INFINITY;
}

static void task_clip(void *ctx, int64_t o0, int64_t o1) {
    awq_task *t = ctx;
    const awq_mat *m = t->mt;
    float *orig = t->hf ? malloc((size_t)m->n_in * sizeof *orig) : NULL;
    for (int64_t o = o0; o < o1; o++) {
        float *row = m->w + o * m->n_in;
        double f0, f1;
        if (orig) memcpy(orig, row, (size_t)m->n_in * sizeof *orig);
        if (!awq_clip_row(m->type, row, m->n_in, t->h, 1, t->refine, row, &t->err_row[o], &t->err_row2[o]) ||
            (t->hf && (!orig || !awq_refine_row_full(m->type, orig, row, m->n_in, t->hf, &f0, &f1))))
            t->err_row[o] = INFINITY;
    }
    free(orig);
}

/* Clipped block error of rows [o0, o1) scaled by t->s, on t->h (already
 * scaled by s): the search's measure when clipping is on. */
static void task_clip_err(void *ctx, int64_t o0, int64_t o1) {
    awq_task *t = ctx;
    const awq_mat *m = t->mt;
    float *row = malloc((size_t)m->n_in * sizeof *row);
    /* the whole grid for the 32-wide blocks; every 4th ratio for the K types' 256-wide
     * blocks, whose quantizer costs ~20x more (the final clip keeps the whole grid) */
    const int step = awq_clip_group(m->type) > AWQ_HB ? 4 : 1;
    for (int64_t o = o0; o < o1; o++) {
        for (int64_t j = 0; row && j < m->n_in; j++)
            row[j] = m->w[o * m->n_in + j] * t->s[j];
        double e0 = 0;
        if (!row || !awq_clip_row(m->type, row, m->n_in, t->h, step, false, row, &e0, &t->err_row[o]))
            t->err_row[o] = INFINITY;
    }
    free(row);
}

static double sum_rows(const double *e, int64_t n, const float *rdiv) {
    double s = 0;
    for (int64_t o = 0; o < n; o++)
        s += rdiv ? e[o] * (double)rdiv[o] * rdiv[o] : e[o];
    return s;
}

/* ---------------------------------------------------------------- search */

/* s_j = max(mean_j, 1e-4)^alpha, normalised so that max(s) * min(s) = 1 */
static void awq_scale(const double *mean, int64_t n, double alpha, float *s) {
    double mx = 0, mn = INFINITY;
    for (int64_t j = 0; j < n; j++) {
        double v = pow(mean[j] > 1e-4 ? mean[j] : 1e-4, alpha);
        s[j] = (float)v;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    const double norm = sqrt(mx * mn);
    for (int64_t j = 0; j < n; j++)
        s[j] = (float)(s[j] / norm);
}

typedef struct awq_layer {
    q_awq_priv *p;
    double *err_row, *err_row2; /* scratch [max n_out] */
    float *xs;                  /* scratch [R * max n_in] */
    float *hs;                  /* scratch [max n_in * AWQ_HB] */
} awq_layer;

static bool clippable(const awq_site *st, const awq_mat *m) {
    const int64_t G = awq_clip_group(m->type);
    return st->h && G && st->ne % G == 0 && G % AWQ_HB == 0;
}

/* The group's clipped error on all calibration rows (block moments) with
 * input scales s; matrices of a type without a clip group count as 0. */
static double group_clip_err(awq_layer *L, const awq_site *st, const float *s, awq_mat *mats, int nm) {
    const int64_t n = st->ne;
    awq_hblock_scale(st->h, s, n, L->hs);
    double e = 0;
    for (int k = 0; k < nm; k++) {
        if (!clippable(st, &mats[k])) continue;
        awq_task t = {&mats[k], s, NULL, L->hs, NULL, 0, L->err_row, NULL, false};
        awq_parallel(L->p->o.threads, mats[k].n_out, task_clip_err, &t);
        e += sum_rows(L->err_row, mats[k].n_out, NULL);
    }
    return e;
}

/* The group's sample error with input scales s (NULL: the weights as they are). */
static double group_err(awq_layer *L, const awq_site *st, const float *s, awq_mat *mats, int nm, bool final) {
    const int64_t n = st->ne;
    for (int r = 0; r < st->n_samp; r++)
        for (int64_t j = 0; j < n; j++)
            L->xs[(size_t)r * n + j] = s ? st->samp[(size_t)r * n + j] / s[j] : st->samp[(size_t)r * n + j];
    double e = 0;
    for (int k = 0; k < nm; k++) {
        awq_task t = {&mats[k], final ? NULL : s, L->xs, NULL, NULL, st->n_samp, L->err_row, NULL, false};
        awq_parallel(L->p->o.threads, mats[k].n_out, task_err, &t);
        e += sum_rows(L->err_row, mats[k].n_out, final ? mats[k].rdiv : NULL);
    }
    return e;
}

static bool yrefs(awq_layer *L, const awq_site *st, awq_mat *mats, int nm) {
    for (int k = 0; k < nm; k++) {
        free(mats[k].yref);
        mats[k].yref = malloc((size_t)st->n_samp * (size_t)mats[k].n_out * sizeof *mats[k].yref);
        if (!mats[k].yref) return false;
        awq_task t = {&mats[k], NULL, st->samp, NULL, NULL, st->n_samp, NULL, NULL, false};
        awq_parallel(L->p->o.threads, mats[k].n_out, task_yref, &t);
    }
    return true;
}

/* Best alpha on the grid (or the fixed one) for the group; s gets its scales. */
static bool awq_search(awq_layer *L, const awq_site *st, const double *mean, awq_mat *mats, int nm, float *s,
                       q_awq_stat *stat) {
    const int64_t n = st->ne;
    const double fixed = L->p->o.fixed_alpha;
    float *cand = malloc((size_t)n * sizeof *cand);
    bool ok = cand && yrefs(L, st, mats, nm);
    if (ok) {
        /* the measure: with clipping, the clipped error on all rows; without, the sample error */
        bool clip = false;
        for (int k = 0; k < nm; k++)
            clip = clip || (!L->p->o.no_clip && clippable(st, &mats[k]));
        awq_scale(mean, n, 0.0, s);
        stat->err_plain = group_err(L, st, s, mats, nm, false);
        double best = clip ? group_clip_err(L, st, s, mats, nm) : stat->err_plain;
        stat->alpha = 0.0;
        for (int i = 1; i <= 10 && fixed != 0; i++) {
            double a = fixed >= 0 ? fixed : i / 10.0;
            awq_scale(mean, n, a, cand);
            double e = clip ? group_clip_err(L, st, cand, mats, nm) : group_err(L, st, cand, mats, nm, false);
            if (e < best || fixed >= 0) {
                best = e;
                stat->alpha = a;
                memcpy(s, cand, (size_t)n * sizeof *s);
            }
            if (fixed >= 0) break;
        }
        stat->err_scaled = stat->alpha == 0 ? stat->err_plain : group_err(L, st, s, mats, nm, false);
        ok = isfinite(stat->err_plain) && isfinite(best) && isfinite(stat->err_scaled);
    }
    free(cand);
    return ok;
}

/* Clip every matrix of the group (weights already folded), then the final
 * sample error against the folded float outputs. */
static bool awq_clip(awq_layer *L, const awq_site *st, const float *s, awq_mat *mats, int nm,
                     q_awq_stat *stat) {
    const int64_t n = st->ne;
    float *hs = L->hs;
    bool ok = true;
    if (st->h) awq_hblock_scale(st->h, s, n, hs);
    float *hf = NULL; /* the whole-row refinement's scaled full moments */
    if (st->hf && !L->p->o.no_clip && !L->p->o.no_round && (hf = malloc((size_t)(n * n) * sizeof *hf)))
        awq_hfull_scale(st->hf, s, n, hf);
    if (st->hf && !L->p->o.no_clip && !L->p->o.no_round && !hf) ok = false;
    for (int k = 0; ok && k < nm && !L->p->o.no_clip; k++) {
        if (!clippable(st, &mats[k])) continue;
        const bool sym = mats[k].type == HEARTH_Q4_0 || mats[k].type == HEARTH_Q5_0;
        awq_task t = {&mats[k],         NULL, NULL, hs, sym ? hf : NULL, 0, L->err_row, L->err_row2,
                      !L->p->o.no_round};
        awq_parallel(L->p->o.threads, mats[k].n_out, task_clip, &t);
        ok = isfinite(sum_rows(L->err_row, mats[k].n_out, NULL));
    }
    free(hf);
    /* the reference is the folded float model's output: the original outputs / rdiv */
    for (int k = 0; ok && k < nm; k++)
        for (int r = 0; mats[k].rdiv && r < st->n_samp; r++)
            for (int64_t o = 0; o < mats[k].n_out; o++)
                mats[k].yref[(size_t)r * mats[k].n_out + o] /= mats[k].rdiv[o];
    stat->err_final = ok ? group_err(L, st, s, mats, nm, true) : INFINITY;
    stat->done = true;
    return ok && isfinite(stat->err_final);
}

/* ---------------------------------------------------------------- fold */

static bool keep(q_awq *a, const char *name, float *data, hearth_error *err) {
    if (!hearth_grow((void **)&a->t, &a->cap, a->n + 1, sizeof *a->t)) {
        free(data);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    }
    q_awq_tensor *t = &a->t[a->n++];
    const size_t len = strlen(name) < sizeof t->name ? strlen(name) : sizeof t->name - 1;
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->data = data;
    return true;
}

static bool keep_mats(q_awq *a, awq_mat *m, int n, hearth_error *err) {
    bool ok = true;
    for (int k = 0; k < n; k++) {
        if (ok)
            ok = keep(a, m[k].name, m[k].w, err);
        else
            free(m[k].w);
        m[k].w = NULL;
    }
    return ok;
}

static void scale_cols(awq_mat *mt, const float *s) {
    for (int64_t o = 0; o < mt->n_out; o++)
        for (int64_t j = 0; j < mt->n_in; j++)
            mt->w[o * mt->n_in + j] *= s[j];
}

static void div_rows(awq_mat *mt, const float *d) {
    for (int64_t o = 0; o < mt->n_out; o++)
        for (int64_t j = 0; j < mt->n_in; j++)
            mt->w[o * mt->n_in + j] /= d[o];
}

static double *mean_abs(const awq_site *st) {
    double *m = malloc((size_t)st->ne * sizeof *m);
    for (int64_t j = 0; m && j < st->ne; j++)
        m[j] = st->count ? st->sum_abs[j] / (double)st->count : 0.0;
    return m;
}

static bool layer_fail(hearth_error *err, int l) {
    if (!err->msg[0])
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "--awq: unexpected tensor shapes in layer %d (or out of memory)", l);
    return false;
}

/* GQA: the query heads of a group read the same V rows, so their
 * attention-output channels share one scale (their mean|x| averaged). */
static void gqa_share(double *mean, int64_t HKV, int64_t ngqa, int64_t D) {
    for (int64_t g = 0; g < HKV; g++)
        for (int64_t d = 0; d < D; d++) {
            double v = 0;
            for (int64_t h = g * ngqa; h < (g + 1) * ngqa; h++)
                v += mean[h * D + d];
            for (int64_t h = g * ngqa; h < (g + 1) * ngqa; h++)
                mean[h * D + d] = v / (double)ngqa;
        }
}

/* Attention: Q/K/V input scales into attn_norm; attn_output input scales
 * into V's rows (per KV head and dimension). */
static bool awq_attn(awq_layer *L, q_awq *a, int l, hearth_error *err) {
    q_awq_priv *p = L->p;
    const hearth_hparams *hp = &p->hp;
    const int64_t E = hp->n_embd, D = hp->head_dim, H = hp->n_head, HKV = hp->n_head_kv, ngqa = H / HKV;
    awq_mat m[5] = {0}; /* q, k, v, output, attn_norm (as a 1 x E matrix) */
    awq_site *in = &p->col.s[l * Q_AWQ_GROUPS + HEARTH_TAP_ATTN_IN];
    awq_site *ao = &p->col.s[l * Q_AWQ_GROUPS + HEARTH_TAP_ATTN_OUT];
    float *s1 = malloc((size_t)E * sizeof *s1), *s2 = malloc((size_t)(H * D) * sizeof *s2), *bv = NULL;
    float *vdiv = malloc((size_t)(HKV * D) * sizeof *vdiv);
    double *mean1 = mean_abs(in), *mean2 = mean_abs(ao);
    char nm[5][96];
    static const char *const what[5] = {"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm"};
    for (int k = 0; k < 5; k++)
        snprintf(nm[k], sizeof nm[k], "blk.%d.%s.weight", l, what[k]);
    bool ok = s1 && s2 && vdiv && mean1 && mean2;
    for (int k = 0; ok && k < 5; k++)
        ok = mat_load(p, nm[k], k == 3 ? H * D : E, &m[k], k < 4, err);
    ok = ok && m[2].n_out == HKV * D && m[3].n_out == E;
    if (ok) gqa_share(mean2, HKV, ngqa, D);
    q_awq_stat *st = a->stat + l * Q_AWQ_GROUPS;
    ok = ok && awq_search(L, in, mean1, m, 3, s1, &st[0]) && awq_search(L, ao, mean2, &m[3], 1, s2, &st[1]);
    char bn[96];
    snprintf(bn, sizeof bn, "blk.%d.attn_v.bias", l);
    const gguf_tensor *bt = hearth_gguf_find_tensor(p->g, bn);
    if (ok && bt && !(bt->type == HEARTH_F32 && (int64_t)bt->ne[0] == HKV * D))
        ok = !hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: %s is not an F32 vector of %lld", bn,
                               (long long)(HKV * D));
    if (ok) {
        for (int k = 0; k < 3; k++)
            scale_cols(&m[k], s1);
        for (int64_t j = 0; j < E; j++)
            m[4].w[j] /= s1[j];
        scale_cols(&m[3], s2);
        for (int64_t g = 0; g < HKV; g++)
            for (int64_t d = 0; d < D; d++)
                vdiv[g * D + d] = s2[g * ngqa * D + d];
        div_rows(&m[2], vdiv);
        m[2].rdiv = vdiv;
        if (bt && (bv = malloc((size_t)(HKV * D) * sizeof *bv))) {
            memcpy(bv, bt->data, (size_t)(HKV * D) * sizeof *bv);
            for (int64_t i = 0; i < HKV * D; i++)
                bv[i] /= vdiv[i];
        }
        ok = (!bt || bv || (hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false)) &&
             awq_clip(L, in, s1, m, 3, &st[0]) && awq_clip(L, ao, s2, &m[3], 1, &st[1]);
        if (ok && bv)
            ok = keep(a, bn, bv, err); /* keep frees it on a failure */
        else
            free(bv);
    }
    ok = ok && keep_mats(a, m, 5, err);
    mats_free(m, 5);
    free(s1);
    free(s2);
    free(vdiv);
    free(mean1);
    free(mean2);
    return ok || layer_fail(err, l);
}

/* FFN: gate/up input scales into ffn_norm; ffn_down input scales into
 * ffn_up's rows. */
static bool awq_ffn(awq_layer *L, q_awq *a, int l, hearth_error *err) {
    q_awq_priv *p = L->p;
    const int64_t E = p->hp.n_embd, F = p->hp.n_ff;
    awq_mat m[4] = {0}; /* gate, up, down, ffn_norm */
    awq_site *in = &p->col.s[l * Q_AWQ_GROUPS + HEARTH_TAP_FFN_IN];
    awq_site *dn = &p->col.s[l * Q_AWQ_GROUPS + HEARTH_TAP_FFN_DOWN];
    float *s3 = malloc((size_t)E * sizeof *s3), *s4 = malloc((size_t)F * sizeof *s4);
    double *mean3 = mean_abs(in), *mean4 = mean_abs(dn);
    char nm[4][96];
    static const char *const what[4] = {"ffn_gate", "ffn_up", "ffn_down", "ffn_norm"};
    for (int k = 0; k < 4; k++)
        snprintf(nm[k], sizeof nm[k], "blk.%d.%s.weight", l, what[k]);
    bool ok = s3 && s4 && mean3 && mean4;
    for (int k = 0; ok && k < 4; k++)
        ok = mat_load(p, nm[k], k == 2 ? F : E, &m[k], k < 3, err);
    ok = ok && m[1].n_out == F && m[0].n_out == F && m[2].n_out == E;
    q_awq_stat *st = a->stat + l * Q_AWQ_GROUPS;
    ok = ok && awq_search(L, in, mean3, m, 2, s3, &st[2]) && awq_search(L, dn, mean4, &m[2], 1, s4, &st[3]);
    if (ok) {
        scale_cols(&m[0], s3);
        scale_cols(&m[1], s3);
        for (int64_t j = 0; j < E; j++)
            m[3].w[j] /= s3[j];
        scale_cols(&m[2], s4);
        div_rows(&m[1], s4);
        m[1].rdiv = s4;
        ok = awq_clip(L, in, s3, m, 2, &st[2]) && awq_clip(L, dn, s4, &m[2], 1, &st[3]);
    }
    ok = ok && keep_mats(a, m, 4, err);
    mats_free(m, 4);
    free(s3);
    free(s4);
    free(mean3);
    free(mean4);
    return ok || layer_fail(err, l);
}

typedef struct embd_task {
    hearth_dtype type;
    float *w;
    int64_t n;
    double *e0, *e1;
} embd_task;

static void task_embd(void *ctx, int64_t r0, int64_t r1) {
    embd_task *t = ctx;
    for (int64_t r = r0; r < r1; r++)
        if (!awq_clip_row(t->type, t->w + r * t->n, t->n, NULL, 1, false, t->w + r * t->n, &t->e0[r],
                          &t->e1[r]))
            t->e0[r] = INFINITY;
}

/* token_embd: a lookup, so its error is the rows' own squared error. */
static bool awq_embd(q_awq *a, hearth_error *err) {
    q_awq_priv *p = a->priv;
    const gguf_tensor *t = hearth_gguf_find_tensor(p->g, "token_embd.weight");
    if (p->o.no_clip || !t || t->n_dims != 2) return true;
    const hearth_dtype ty = p->type_of ? p->type_of(p->user, "token_embd.weight") : HEARTH_F32;
    const int64_t n = (int64_t)t->ne[0], rows = (int64_t)t->ne[1], G = awq_clip_group(ty);
    if (!G || n % G || (t->type != HEARTH_F32 && t->type != HEARTH_F16 && t->type != HEARTH_BF16))
        return true;
    awq_mat m = {0};
    double *e0 = malloc((size_t)rows * sizeof *e0), *e1 = malloc((size_t)rows * sizeof *e1);
    bool ok = e0 && e1 && mat_load(p, "token_embd.weight", n, &m, true, err);
    if (ok) {
        embd_task et = {ty, m.w, n, e0, e1};
        awq_parallel(p->o.threads, rows, task_embd, &et);
        a->embd_err_plain = sum_rows(e0, rows, NULL);
        a->embd_err_clip = sum_rows(e1, rows, NULL);
        ok = isfinite(a->embd_err_plain) ||
             !hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: cannot quantize token_embd to %s",
                               hearth_dtype_name(ty));
        a->embd_clipped = ok;
    }
    ok = ok && keep(a, "token_embd.weight", m.w, err);
    if (!ok) free(m.w);
    free(e0);
    free(e1);
    return ok;
}

/* Search layer l (-1: token_embd), after freeing the current layer's tensors. */
static bool awq_layer_run(q_awq *a, int l, hearth_error *err) {
    for (size_t i = 0; i < a->n; i++)
        free(a->t[i].data);
    a->n = 0;
    a->cur_layer = l;
    const double t0 = hearth_now_ms();
    if (l < 0) {
        bool ok = awq_embd(a, err);
        a->search_seconds += (hearth_now_ms() - t0) / 1000.0;
        return ok;
    }
    q_awq_priv *p = a->priv;
    int64_t max_out = p->hp.n_ff > p->hp.n_embd ? p->hp.n_ff : p->hp.n_embd;
    if ((int64_t)p->hp.n_head * p->hp.head_dim > max_out) max_out = (int64_t)p->hp.n_head * p->hp.head_dim;
    awq_layer L = {p, malloc((size_t)max_out * sizeof(double)), malloc((size_t)max_out * sizeof(double)),
                   malloc((size_t)p->col.R * (size_t)max_out * sizeof(float)),
                   malloc((size_t)max_out * AWQ_HB * sizeof(float))};
    bool ok = (L.err_row && L.err_row2 && L.xs && L.hs) ||
              !hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    ok = ok && awq_attn(&L, a, l, err) && awq_ffn(&L, a, l, err);
    free(L.err_row);
    free(L.err_row2);
    free(L.xs);
    free(L.hs);
    a->search_seconds += (hearth_now_ms() - t0) / 1000.0;
    if (p->o.progress) {
        fprintf(stderr, "\rawq: layer %d/%d searched%s", l + 1, a->n_layer, l + 1 == a->n_layer ? "\n" : "");
        fflush(stderr);
    }
    return ok;
}

/* ---------------------------------------------------------------- driver */

static bool awq_full_fits(const q_awq_opts *o, const hearth_hparams *hp) {
    const int64_t ne[3] = {hp->n_embd, (int64_t)hp->n_head * hp->head_dim, hp->n_ff};
    size_t bytes = 0;
    for (int k = 0; k < 3; k++) {
        if (ne[k] > AWQ_FULL_MAX) return false;
        bytes += (size_t)(ne[k] * ne[k]) * sizeof(float) * (k == 0 ? 2 : 1);
    }
    return !o->no_round && bytes * (size_t)hp->n_layer <= AWQ_FULL_BUDGET;
}

static bool awq_calibrate(q_awq_priv *p, q_awq *a, hearth_error *err) {
    const q_awq_opts *o = &p->o;
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (app_open_model(o->model_path, "cpu", o->threads, HEARTH_GPU_LAYERS_ALL, 0, &be, &m, err))
        return false;
    bool ok = true;
    if (m->arch != HEARTH_ARCH_LLAMA && m->arch != HEARTH_ARCH_QWEN2 && m->arch != HEARTH_ARCH_QWEN3) {
        hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "--awq supports llama, qwen2 and qwen3 models (pre-norm blocks the scales fold into); "
            "%s is %s",
            o->model_path, m->arch_info->name);
        ok = false;
    }
    p->hp = m->hp;
    a->full_moments = awq_full_fits(o, &m->hp);
    hearth_tokens toks = {0};
    int n_chunk = 0;
    ok =
        ok && calib_tokens(m, o->calib, o->n_ctx, o->max_chunks, &toks, &n_chunk, err) &&
        col_init(&p->col, m, o->sample_rows, (int64_t)n_chunk * o->n_ctx, a->full_moments, o->threads, err) &&
        calib_run(m, be, &toks, o->n_ctx, n_chunk, awq_tap, NULL, &p->col, 0, NULL, o->progress,
                  "awq calibration", err);
    if (ok && p->col.failed)
        ok = !hearth_error_set(err, HEARTH_ERR_INTERNAL, "--awq: a tap input of unexpected width");
    a->n_chunk = n_chunk;
    hearth_tokens_free(&toks);
    hearth_model_free(m);
    hearth_backend_free(be);
    return ok;
}

/* Every tensor the search will read exists with its shape and a float type. */
static bool awq_check(const q_awq_priv *p, hearth_error *err) {
    const hearth_hparams *hp = &p->hp;
    const int64_t E = hp->n_embd, HD = (int64_t)hp->n_head * hp->head_dim, F = hp->n_ff;
    static const char *const what[9] = {"attn_q",   "attn_k", "attn_v",   "attn_output", "attn_norm",
                                        "ffn_gate", "ffn_up", "ffn_down", "ffn_norm"};
    const int64_t n_in[9] = {E, E, E, HD, E, E, E, F, E};
    char nm[96];
    for (int l = 0; l < hp->n_layer; l++)
        for (int k = 0; k < 9; k++) {
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, what[k]);
            if (!mat_check(p->g, nm, n_in[k], err)) return false;
        }
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv)
        return !hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: %d heads do not group over %d KV heads",
                                 hp->n_head, hp->n_head_kv);
    return true;
}

q_awq *q_awq_run(const q_awq_opts *o, const hearth_gguf *g, q_awq_type_fn type_of, void *user,
                 hearth_error *err) {
    q_awq *a = calloc(1, sizeof *a);
    if (a) a->priv = calloc(1, sizeof *a->priv);
    if (!a || !a->priv) {
        free(a);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), NULL;
    }
    q_awq_priv *p = a->priv;
    *p = (q_awq_priv){.o = *o, .g = g, .type_of = type_of, .user = user};
    if (p->o.threads < 1) p->o.threads = 1;
    a->cur_layer = -2;
    bool ok = awq_calibrate(p, a, err);
    if (ok) {
        a->n_layer = p->hp.n_layer;
        a->stat = calloc((size_t)a->n_layer * Q_AWQ_GROUPS, sizeof *a->stat);
        ok = a->stat || !hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    }
    ok = ok && awq_check(p, err);
    if (!ok) {
        q_awq_free(a);
        return NULL;
    }
    return a;
}

bool q_awq_get(q_awq *a, const char *name, const float **data, hearth_error *err) {
    *data = NULL;
    if (!a) return true;
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) {
        if (strcmp(name, "token_embd.weight")) return true;
        l = -1;
    }
    if (l >= a->n_layer) return true;
    if (l != a->cur_layer && !awq_layer_run(a, l, err)) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->t[i].name, name)) {
            *data = a->t[i].data;
            break;
        }
    return true;
}

void q_awq_free(q_awq *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++)
        free(a->t[i].data);
    free(a->t);
    free(a->stat);
    if (a->priv) col_free(&a->priv->col);
    free(a->priv);
    free(a);
}
