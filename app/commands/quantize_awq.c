/*
 * quantize_awq.c - the AWQ-style scale search and fold of quantize_awq.h.
 *
 * Flow: run the model over the calibration text (calib.h) with a tap that
 * keeps, per layer and matmul input, mean|x| per channel and an evenly
 * spread sample of input rows; then per layer and group search alpha on
 * the sample (quantize-dequantize the scaled weights with their planned
 * type, compare the outputs with the float ones) and fold the best scales
 * into the weights, which are kept as F32 for the writer.
 * Ownership: the model and all scratch are freed before q_awq_run returns;
 * the folded tensors belong to the q_awq.
 */
#include "quantize_awq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/common.h"
#include "app/commands/calib.h"
#include "core/grow.h"

/* ---------------------------------------------------------------- calibration statistics */

typedef struct awq_site {
    int64_t ne;      /* channels */
    double *sum_abs; /* [ne] */
    int64_t count;   /* rows seen */
    float *samp;     /* [R * ne] sampled rows */
    int n_samp;
} awq_site;

typedef struct awq_col {
    awq_site *s; /* [n_layer * Q_AWQ_GROUPS], indexed by hearth_tap_site */
    int n_layer, R;
    int64_t stride;
    bool failed;
} awq_col;

static void awq_tap(void *user, hearth_tap_site site, int layer, const float *x, int n_rows, int64_t ne0) {
    awq_col *c = user;
    if (layer < 0 || layer >= c->n_layer || (int)site >= Q_AWQ_GROUPS) return;
    awq_site *s = &c->s[layer * Q_AWQ_GROUPS + (int)site];
    if (s->ne != ne0) {
        c->failed = true;
        return;
    }
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)ne0;
        for (int64_t j = 0; j < ne0; j++)
            s->sum_abs[j] += fabsf(row[j]);
        if (s->count % c->stride == 0 && s->n_samp < c->R)
            memcpy(s->samp + (size_t)s->n_samp++ * (size_t)ne0, row, (size_t)ne0 * sizeof *row);
        s->count++;
    }
}

static bool col_init(awq_col *c, const hearth_model *m, int R, int64_t total_rows, hearth_error *err) {
    const hearth_hparams *hp = &m->hp;
    c->n_layer = hp->n_layer;
    c->R = R;
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
        s->sum_abs = calloc((size_t)s->ne, sizeof *s->sum_abs);
        s->samp = malloc((size_t)R * (size_t)s->ne * sizeof *s->samp);
        if (!s->sum_abs || !s->samp) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    }
    return true;
}

static void col_free(awq_col *c) {
    for (int i = 0; c->s && i < c->n_layer * Q_AWQ_GROUPS; i++) {
        free(c->s[i].sum_abs);
        free(c->s[i].samp);
    }
    free(c->s);
}

/* ---------------------------------------------------------------- weights */

typedef struct awq_mat {
    char name[96];
    float *w; /* [n_out * n_in] */
    int64_t n_in, n_out;
    hearth_dtype type; /* planned */
    float *yref;       /* [R * n_out] float outputs on the sample */
} awq_mat;

static bool mat_load(const hearth_gguf *g, int l, const char *what, int64_t n_in, awq_mat *mt,
                     q_awq_type_fn type_of, void *user, hearth_error *err) {
    snprintf(mt->name, sizeof mt->name, "blk.%d.%s", l, what);
    const gguf_tensor *t = hearth_gguf_find_tensor(g, mt->name);
    if (!t || t->n_dims > 2 || (int64_t)t->ne[0] != n_in) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "--awq needs a llama/qwen-style model: %s is missing or not a [%lld x N] matrix",
                         mt->name, (long long)n_in);
        return false;
    }
    if (t->type != HEARTH_F32 && t->type != HEARTH_F16 && t->type != HEARTH_BF16) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "--awq needs float weights: %s is %s (start from F32/F16/BF16)", mt->name,
                         hearth_dtype_name(t->type));
        return false;
    }
    mt->n_in = n_in;
    mt->n_out = t->n_dims > 1 ? (int64_t)t->ne[1] : 1;
    mt->type = type_of ? type_of(user, mt->name) : HEARTH_F32;
    mt->w = malloc((size_t)(mt->n_in * mt->n_out) * sizeof *mt->w);
    if (!mt->w) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    const size_t rb = hearth_dtype_row_size(t->type, n_in);
    for (int64_t r = 0; r < mt->n_out; r++)
        hearth_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * rb, mt->w + r * n_in, n_in);
    return true;
}

static float dotf(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[j + k] * b[j + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++)
        s += a[j] * b[j];
    return s;
}

static bool mat_yref(awq_mat *mt, const awq_site *st) {
    mt->yref = malloc((size_t)st->n_samp * (size_t)mt->n_out * sizeof *mt->yref);
    if (!mt->yref) return false;
    for (int r = 0; r < st->n_samp; r++)
        for (int64_t o = 0; o < mt->n_out; o++)
            mt->yref[(size_t)r * mt->n_out + o] =
                dotf(st->samp + (size_t)r * st->ne, mt->w + o * mt->n_in, mt->n_in);
    return true;
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

typedef struct awq_scratch {
    float *xs, *row, *deq;
    uint8_t *q;
} awq_scratch;

/* Output error of the group on the sample with input scales s. */
static double group_err(const awq_site *st, const float *s, awq_mat *mats, int nm, awq_scratch *sc) {
    const int64_t n = st->ne;
    for (int r = 0; r < st->n_samp; r++)
        for (int64_t j = 0; j < n; j++)
            sc->xs[(size_t)r * n + j] = st->samp[(size_t)r * n + j] / s[j];
    double e = 0;
    for (int k = 0; k < nm; k++) {
        const awq_mat *mt = &mats[k];
        for (int64_t o = 0; o < mt->n_out; o++) {
            const float *w = mt->w + o * n;
            for (int64_t j = 0; j < n; j++)
                sc->row[j] = w[j] * s[j];
            if (!hearth_quantize_row(mt->type, sc->row, sc->q, n)) return INFINITY;
            hearth_dequantize_row(mt->type, sc->q, sc->deq, n);
            for (int r = 0; r < st->n_samp; r++) {
                double d =
                    (double)dotf(sc->xs + (size_t)r * n, sc->deq, n) - mt->yref[(size_t)r * mt->n_out + o];
                e += d * d;
            }
        }
    }
    return e;
}

/* Best alpha on the grid (or the fixed one) for the group; s gets its scales. */
static bool awq_search(const awq_site *st, const double *mean, awq_mat *mats, int nm, double fixed, float *s,
                       double *alpha, double *err0, double *err_best) {
    const int64_t n = st->ne;
    awq_scratch sc = {malloc((size_t)st->n_samp * (size_t)n * sizeof(float)),
                      malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float)),
                      malloc(hearth_dtype_row_size(HEARTH_F32, n))};
    float *cand = malloc((size_t)n * sizeof *cand);
    bool ok = sc.xs && sc.row && sc.deq && sc.q && cand;
    for (int k = 0; k < nm && ok; k++)
        ok = mat_yref(&mats[k], st);
    if (ok) {
        awq_scale(mean, n, 0.0, s);
        *err0 = *err_best = group_err(st, s, mats, nm, &sc);
        *alpha = 0.0;
        for (int i = 1; i <= 10; i++) {
            double a = fixed >= 0 ? fixed : i / 10.0;
            awq_scale(mean, n, a, cand);
            double e = group_err(st, cand, mats, nm, &sc);
            if (e < *err_best || fixed >= 0) {
                *err_best = e;
                *alpha = a;
                memcpy(s, cand, (size_t)n * sizeof *s);
            }
            if (fixed >= 0) break;
        }
    }
    free(cand);
    free(sc.xs);
    free(sc.row);
    free(sc.deq);
    free(sc.q);
    return ok;
}

/* ---------------------------------------------------------------- fold */

static bool keep(q_awq *a, const char *name, float *data, hearth_error *err) {
    if (!hearth_grow((void **)&a->t, &a->cap, a->n + 1, sizeof *a->t)) {
        free(data);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    }
    q_awq_tensor *t = &a->t[a->n++];
    size_t len = strlen(name) < sizeof t->name ? strlen(name) : sizeof t->name - 1;
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->data = data;
    return true;
}

static void scale_cols(awq_mat *mt, const float *s) {
    for (int64_t o = 0; o < mt->n_out; o++)
        for (int64_t j = 0; j < mt->n_in; j++)
            mt->w[o * mt->n_in + j] *= s[j];
}

static void mats_free(awq_mat *m, int n) {
    for (int i = 0; i < n; i++) {
        free(m[i].w);
        free(m[i].yref);
    }
}

typedef struct awq_ctx {
    const q_awq_opts *o;
    const hearth_gguf *g;
    const hearth_hparams *hp;
    q_awq_type_fn type_of;
    void *user;
    awq_col *col;
    q_awq *a;
} awq_ctx;

static double *mean_abs(const awq_site *st) {
    double *m = malloc((size_t)st->ne * sizeof *m);
    for (int64_t j = 0; m && j < st->ne; j++)
        m[j] = st->count ? st->sum_abs[j] / (double)st->count : 0.0;
    return m;
}

/* Attention: Q/K/V input scales into attn_norm; attn_output input scales
 * into V's rows (per KV head and dimension). */
static bool awq_attn(awq_ctx *c, int l, hearth_error *err) {
    const hearth_hparams *hp = c->hp;
    const int64_t E = hp->n_embd, D = hp->head_dim, H = hp->n_head, HKV = hp->n_head_kv, ngqa = H / HKV;
    awq_mat m[5] = {0}; /* q, k, v, output, attn_norm (as a 1 x E matrix) */
    awq_site *in = &c->col->s[l * Q_AWQ_GROUPS + HEARTH_TAP_ATTN_IN];
    awq_site *ao = &c->col->s[l * Q_AWQ_GROUPS + HEARTH_TAP_ATTN_OUT];
    float *s1 = malloc((size_t)E * sizeof *s1), *s2 = malloc((size_t)(H * D) * sizeof *s2), *bv = NULL;
    double *mean1 = mean_abs(in), *mean2 = mean_abs(ao);
    bool ok = s1 && s2 && mean1 && mean2 &&
              mat_load(c->g, l, "attn_q.weight", E, &m[0], c->type_of, c->user, err) &&
              mat_load(c->g, l, "attn_k.weight", E, &m[1], c->type_of, c->user, err) &&
              mat_load(c->g, l, "attn_v.weight", E, &m[2], c->type_of, c->user, err) &&
              mat_load(c->g, l, "attn_output.weight", H * D, &m[3], c->type_of, c->user, err) &&
              mat_load(c->g, l, "attn_norm.weight", E, &m[4], NULL, NULL, err);
    ok = ok && m[2].n_out == HKV * D && m[3].n_out == E;
    if (ok) { /* GQA: the query heads of a group share their V rows, so they share one scale */
        for (int64_t g = 0; g < HKV; g++)
            for (int64_t d = 0; d < D; d++) {
                double v = 0;
                for (int64_t h = g * ngqa; h < (g + 1) * ngqa; h++)
                    v += mean2[h * D + d];
                for (int64_t h = g * ngqa; h < (g + 1) * ngqa; h++)
                    mean2[h * D + d] = v / (double)ngqa;
            }
    }
    double *al = c->a->alpha + l * Q_AWQ_GROUPS, *e0 = c->a->err_plain + l * Q_AWQ_GROUPS,
           *e1 = c->a->err + l * Q_AWQ_GROUPS;
    ok = ok && awq_search(in, mean1, m, 3, c->o->fixed_alpha, s1, &al[0], &e0[0], &e1[0]) &&
         awq_search(ao, mean2, &m[3], 1, c->o->fixed_alpha, s2, &al[1], &e0[1], &e1[1]);
    if (ok) {
        for (int k = 0; k < 3; k++)
            scale_cols(&m[k], s1);
        for (int64_t j = 0; j < E; j++)
            m[4].w[j] /= s1[j];
        scale_cols(&m[3], s2);
        char bn[96];
        snprintf(bn, sizeof bn, "blk.%d.attn_v.bias", l);
        const gguf_tensor *bt = hearth_gguf_find_tensor(c->g, bn);
        if (bt && bt->type == HEARTH_F32 && (int64_t)bt->ne[0] == HKV * D &&
            (bv = malloc((size_t)(HKV * D) * 4)))
            memcpy(bv, bt->data, (size_t)(HKV * D) * 4);
        for (int64_t g = 0; g < HKV; g++)
            for (int64_t d = 0; d < D; d++) {
                const float sv = s2[g * ngqa * D + d];
                for (int64_t j = 0; j < E; j++)
                    m[2].w[(g * D + d) * E + j] /= sv;
                if (bv) bv[g * D + d] /= sv;
            }
        ok = (!bt || bv ||
              (hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: %s is not F32", bn), false)) &&
             (!bv || keep(c->a, bn, bv, err));
        for (int k = 0; k < 5 && ok; k++) {
            ok = keep(c->a, m[k].name, m[k].w, err);
            m[k].w = NULL;
        }
    }
    if (!ok && !err->msg[0])
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "--awq: unexpected tensor shapes in layer %d (or out of memory)", l);
    mats_free(m, 5);
    free(s1);
    free(s2);
    free(mean1);
    free(mean2);
    return ok;
}

/* FFN: gate/up input scales into ffn_norm; ffn_down input scales into
 * ffn_up's rows. */
static bool awq_ffn(awq_ctx *c, int l, hearth_error *err) {
    const int64_t E = c->hp->n_embd, F = c->hp->n_ff;
    awq_mat m[4] = {0}; /* gate, up, down, ffn_norm */
    awq_site *in = &c->col->s[l * Q_AWQ_GROUPS + HEARTH_TAP_FFN_IN];
    awq_site *dn = &c->col->s[l * Q_AWQ_GROUPS + HEARTH_TAP_FFN_DOWN];
    float *s3 = malloc((size_t)E * sizeof *s3), *s4 = malloc((size_t)F * sizeof *s4);
    double *mean3 = mean_abs(in), *mean4 = mean_abs(dn);
    bool ok = s3 && s4 && mean3 && mean4 &&
              mat_load(c->g, l, "ffn_gate.weight", E, &m[0], c->type_of, c->user, err) &&
              mat_load(c->g, l, "ffn_up.weight", E, &m[1], c->type_of, c->user, err) &&
              mat_load(c->g, l, "ffn_down.weight", F, &m[2], c->type_of, c->user, err) &&
              mat_load(c->g, l, "ffn_norm.weight", E, &m[3], NULL, NULL, err);
    ok = ok && m[1].n_out == F && m[0].n_out == F;
    double *al = c->a->alpha + l * Q_AWQ_GROUPS, *e0 = c->a->err_plain + l * Q_AWQ_GROUPS,
           *e1 = c->a->err + l * Q_AWQ_GROUPS;
    ok = ok && awq_search(in, mean3, m, 2, c->o->fixed_alpha, s3, &al[2], &e0[2], &e1[2]) &&
         awq_search(dn, mean4, &m[2], 1, c->o->fixed_alpha, s4, &al[3], &e0[3], &e1[3]);
    if (ok) {
        scale_cols(&m[0], s3);
        scale_cols(&m[1], s3);
        for (int64_t j = 0; j < E; j++)
            m[3].w[j] /= s3[j];
        scale_cols(&m[2], s4);
        for (int64_t r = 0; r < F; r++)
            for (int64_t j = 0; j < E; j++)
                m[1].w[r * E + j] /= s4[r];
        for (int k = 0; k < 4 && ok; k++) {
            ok = keep(c->a, m[k].name, m[k].w, err);
            m[k].w = NULL;
        }
    }
    if (!ok && !err->msg[0])
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "--awq: unexpected tensor shapes in layer %d (or out of memory)", l);
    mats_free(m, 4);
    free(s3);
    free(s4);
    free(mean3);
    free(mean4);
    return ok;
}

/* ---------------------------------------------------------------- driver */

static bool awq_calibrate(const q_awq_opts *o, awq_col *col, q_awq *a, hearth_hparams *hp,
                          hearth_error *err) {
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (app_open_model(o->model_path, "cpu", o->threads, HEARTH_GPU_LAYERS_ALL, &be, &m, err)) return false;
    bool ok = true;
    if (m->arch != HEARTH_ARCH_LLAMA && m->arch != HEARTH_ARCH_QWEN2 && m->arch != HEARTH_ARCH_QWEN3) {
        hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "--awq supports llama, qwen2 and qwen3 models (pre-norm blocks the scales fold into); "
            "%s is %s",
            o->model_path, m->arch_info->name);
        ok = false;
    }
    *hp = m->hp;
    hearth_tokens toks = {0};
    int n_chunk = 0;
    ok = ok && calib_tokens(m, o->calib, o->n_ctx, o->max_chunks, &toks, &n_chunk, err) &&
         col_init(col, m, o->sample_rows, (int64_t)n_chunk * o->n_ctx, err) &&
         calib_run(m, be, &toks, o->n_ctx, n_chunk, awq_tap, col, o->progress, "awq calibration", err);
    if (ok && col->failed)
        ok = !hearth_error_set(err, HEARTH_ERR_INTERNAL, "--awq: a tap input of unexpected width");
    a->n_chunk = n_chunk;
    hearth_tokens_free(&toks);
    hearth_model_free(m);
    hearth_backend_free(be);
    return ok;
}

q_awq *q_awq_run(const q_awq_opts *o, const hearth_gguf *g, q_awq_type_fn type_of, void *user,
                 hearth_error *err) {
    q_awq *a = calloc(1, sizeof *a);
    awq_col col = {0};
    hearth_hparams hp = {0};
    if (!a) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), NULL;
    bool ok = awq_calibrate(o, &col, a, &hp, err);
    if (ok) {
        a->n_layer = hp.n_layer;
        size_t n = (size_t)hp.n_layer * Q_AWQ_GROUPS;
        a->alpha = calloc(n, sizeof *a->alpha);
        a->err_plain = calloc(n, sizeof *a->err_plain);
        a->err = calloc(n, sizeof *a->err);
        ok = a->alpha && a->err_plain && a->err;
        if (!ok) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    }
    if (ok && (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv))
        ok = !hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "--awq: %d heads do not group over %d KV heads",
                               hp.n_head, hp.n_head_kv);
    awq_ctx c = {o, g, &hp, type_of, user, &col, a};
    for (int l = 0; ok && l < hp.n_layer; l++) {
        ok = awq_attn(&c, l, err) && awq_ffn(&c, l, err);
        if (ok && o->progress) fprintf(stderr, "\rawq: layer %d/%d searched", l + 1, hp.n_layer);
    }
    if (o->progress) fprintf(stderr, "\r\033[K");
    col_free(&col);
    if (!ok) {
        q_awq_free(a);
        return NULL;
    }
    return a;
}

const float *q_awq_data(const q_awq *a, const char *name) {
    for (size_t i = 0; a && i < a->n; i++)
        if (!strcmp(a->t[i].name, name)) return a->t[i].data;
    return NULL;
}

void q_awq_free(q_awq *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++)
        free(a->t[i].data);
    free(a->t);
    free(a->alpha);
    free(a->err_plain);
    free(a->err);
    free(a);
}
