/*
 * awq_search.c - the kernels of awq_search.h: block and full moments,
 * clipping search, the block and whole-row rounding refinements, sample
 * output error, parallel-for.
 * Ownership: scratch is allocated and freed per call.
 */
#include "awq_search.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

float awq_dot(const float *a, const float *b, int64_t n) {
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

void awq_hblock_add(double *h, const float *x, int n_rows, int64_t ne) {
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)ne;
        for (int64_t b = 0; b < ne / AWQ_HB; b++) {
            const float *xb = row + b * AWQ_HB;
            double *hb = h + (size_t)b * AWQ_HB * AWQ_HB;
            for (int i = 0; i < AWQ_HB; i++) {
                const double xi = xb[i];
                if (xi == 0) continue;
                for (int j = 0; j < AWQ_HB; j++)
                    hb[i * AWQ_HB + j] += xi * xb[j];
            }
        }
    }
}

void awq_hblock_scale(const double *h, const float *s, int64_t ne, float *hs) {
    for (int64_t b = 0; b < ne / AWQ_HB; b++) {
        const double *hb = h + (size_t)b * AWQ_HB * AWQ_HB;
        float *ob = hs + (size_t)b * AWQ_HB * AWQ_HB;
        for (int i = 0; i < AWQ_HB; i++)
            for (int j = 0; j < AWQ_HB; j++)
                ob[i * AWQ_HB + j] =
                    (float)(s ? hb[i * AWQ_HB + j] / ((double)s[b * AWQ_HB + i] * s[b * AWQ_HB + j])
                              : hb[i * AWQ_HB + j]);
    }
}

double awq_hblock_err(const float *h, const float *e, int64_t ne) {
    double tot = 0;
    for (int64_t b = 0; b < ne / AWQ_HB; b++) {
        const float *hb = h + (size_t)b * AWQ_HB * AWQ_HB;
        const float *eb = e + b * AWQ_HB;
        float acc[AWQ_HB] = {0};
        for (int i = 0; i < AWQ_HB; i++) {
            const float ei = eb[i];
            for (int j = 0; j < AWQ_HB; j++)
                acc[j] += ei * hb[i * AWQ_HB + j];
        }
        double t = 0;
        for (int j = 0; j < AWQ_HB; j++)
            t += (double)acc[j] * eb[j];
        tot += t;
    }
    return tot;
}

typedef struct hfull_job {
    float *h;
    const float *x;
    int n_rows;
    int64_t n;
} hfull_job;

/* Rows [i0, i1) of the upper triangle; every element sums the rows in order. */
static void hfull_rows(void *ctx, int64_t i0, int64_t i1) {
    const hfull_job *j = ctx;
    const int64_t n = j->n;
    for (int r = 0; r < j->n_rows; r++) {
        const float *row = j->x + (size_t)r * (size_t)n;
        for (int64_t i = i0; i < i1; i++) {
            const float xi = row[i];
            if (xi == 0) continue;
            float *hi = j->h + (size_t)i * (size_t)n;
            for (int64_t c = i; c < n; c++)
                hi[c] += xi * row[c];
        }
    }
}

void awq_hfull_add_mt(float *h, const float *x, int n_rows, int64_t n, int nth) {
    hfull_job j = {h, x, n_rows, n};
    /* contiguous ranges: the first threads get the longer triangle rows (uneven, but simple) */
    awq_parallel(nth, n, hfull_rows, &j);
}

void awq_hfull_add(float *h, const float *x, int n_rows, int64_t n) {
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)n;
        for (int64_t i = 0; i < n; i++) {
            const float xi = row[i];
            if (xi == 0) continue;
            float *hi = h + (size_t)i * (size_t)n;
            for (int64_t j = i; j < n; j++)
                hi[j] += xi * row[j];
        }
    }
}

void awq_hfull_scale(const float *h, const float *s, int64_t n, float *hs) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
            const float v = s ? (float)(h[i * n + j] / ((double)s[i] * s[j])) : h[i * n + j];
            hs[i * n + j] = hs[j * n + i] = v;
        }
}

static double full_err(const float *hs, const float *e, int64_t n, float *g) {
    double tot = 0;
    for (int64_t i = 0; i < n; i++) {
        g[i] = awq_dot(hs + i * n, e, n);
        tot += (double)e[i] * g[i];
    }
    return tot;
}

bool awq_refine_row_full(hearth_dtype t, const float *w, float *v, int64_t n, const float *hs, double *e0,
                         double *e1) {
    const int nmax = t == HEARTH_Q4_0 ? 8 : t == HEARTH_Q5_0 ? 16 : 0;
    if (!nmax || n % AWQ_HB) return false;
    float *e = malloc((size_t)n * sizeof *e), *g = malloc((size_t)n * sizeof *g),
          *d = malloc((size_t)n * sizeof *d);
    int *q = malloc((size_t)n * sizeof *q);
    uint8_t blk[64];
    bool ok = e && g && d && q;
    for (int64_t b0 = 0; ok && b0 < n; b0 += AWQ_HB) { /* the codes the quantizer gives v */
        float deq[AWQ_HB];
        ok = hearth_quantize_row(t, v + b0, blk, AWQ_HB);
        hearth_dequantize_row(t, blk, deq, AWQ_HB);
        int imax = 0;
        for (int j = 1; j < AWQ_HB; j++)
            if (fabsf(v[b0 + j]) > fabsf(v[b0 + imax])) imax = j;
        const float db = deq[imax] / (float)-nmax; /* the block's level step, sign included */
        for (int j = 0; j < AWQ_HB; j++) {
            d[b0 + j] = db;
            q[b0 + j] = db != 0 ? (int)lrintf(deq[j] / db) + nmax : -1; /* -1: a zero block, left alone */
            v[b0 + j] = deq[j];
            e[b0 + j] = deq[j] - w[b0 + j];
        }
        if (db != 0) q[b0 + imax] = -2; /* pinned at code 0 */
    }
    if (ok) *e0 = *e1 = full_err(hs, e, n, g);
    for (int sweep = 0; ok && sweep < 4; sweep++) {
        bool moved = false;
        for (int64_t i = 0; i < n; i++) {
            if (q[i] < 0) continue;
            for (int dir = -1; dir <= 1; dir += 2) {
                const int nq = q[i] + dir;
                if (nq < 0 || nq > 2 * nmax - 1) continue;
                const float de = d[i] * (float)dir, gain = 2 * de * g[i] + de * de * hs[i * n + i];
                if (gain >= -1e-9f * fabsf(g[i] * de)) continue;
                q[i] = nq;
                e[i] += de;
                v[i] = d[i] * (float)(nq - nmax);
                const float *hi = hs + i * n;
                for (int64_t j = 0; j < n; j++)
                    g[j] += de * hi[j];
                moved = true;
                break;
            }
        }
        if (!moved) break;
    }
    if (ok) *e1 = full_err(hs, e, n, g);
    free(e);
    free(g);
    free(d);
    free(q);
    return ok;
}

int64_t awq_clip_group(hearth_dtype t) {
    const hearth_dtype_traits *tr = hearth_dtype_info(t);
    if (!tr->known || !tr->from_float || tr->block_size < 2) return 0;
    return tr->block_size;
}

static double block_err(const float *h, const float *e, int64_t n) {
    if (h) return awq_hblock_err(h, e, n);
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        s += (double)e[j] * e[j];
    return s;
}

/* Rounding refinement for the symmetric types (Q4_0: levels d * (q - 8),
 * q in 0..15; Q5_0: d * (q - 16), q in 0..31), d from the clipped block's
 * signed max. Starting from round-to-nearest codes, single-code steps of
 * +-1 that lower e^T H e are taken (greedy, at most 8 sweeps). The element that sets the scale
 * stays at code 0, so the plain quantizer, fed v = d16 * (q - nmax), finds
 * the same d (max / -nmax, exact) and the same codes (v / d + nmax + 0.5
 * truncates to q). Writes v into out; returns the error, or INFINITY when
 * the type or block has no such form. */
static double refine_block(hearth_dtype t, const float *wb, const float *cand, const float *hb, float *out) {
    const int nmax = t == HEARTH_Q4_0 ? 8 : t == HEARTH_Q5_0 ? 16 : 0;
    if (!nmax || !hb) return INFINITY;
    int imax = 0;
    for (int j = 1; j < AWQ_HB; j++)
        if (fabsf(cand[j]) > fabsf(cand[imax])) imax = j;
    const float d = hearth_f16_to_f32(hearth_f32_to_f16(cand[imax] / (float)-nmax));
    if (d == 0 || !isfinite(d)) return INFINITY;
    int q[AWQ_HB];
    float e[AWQ_HB], g[AWQ_HB];
    for (int j = 0; j < AWQ_HB; j++) {
        int v = (int)lrintf(wb[j] / d) + nmax;
        q[j] = j == imax ? 0 : v < 0 ? 0 : v > 2 * nmax - 1 ? 2 * nmax - 1 : v;
        e[j] = d * (float)(q[j] - nmax) - wb[j];
    }
    for (int i = 0; i < AWQ_HB; i++) {
        float acc = 0;
        for (int j = 0; j < AWQ_HB; j++)
            acc += hb[i * AWQ_HB + j] * e[j];
        g[i] = acc;
    }
    for (int sweep = 0; sweep < 8; sweep++) {
        bool moved = false;
        for (int i = 0; i < AWQ_HB; i++) {
            if (i == imax) continue;
            for (int dir = -1; dir <= 1; dir += 2) {
                const int nq = q[i] + dir;
                if (nq < 0 || nq > 2 * nmax - 1) continue;
                const float de = d * (float)dir, gain = 2 * de * g[i] + de * de * hb[i * AWQ_HB + i];
                if (gain >= -1e-12f * fabsf(g[i] * de)) continue;
                q[i] = nq;
                e[i] += de;
                for (int j = 0; j < AWQ_HB; j++)
                    g[j] += de * hb[j * AWQ_HB + i];
                moved = true;
                break;
            }
        }
        if (!moved) break;
    }
    for (int j = 0; j < AWQ_HB; j++) {
        out[j] = d * (float)(q[j] - nmax);
        e[j] = out[j] - wb[j];
    }
    return awq_hblock_err(hb, e, AWQ_HB);
}

bool awq_clip_row(hearth_dtype t, const float *w, int64_t n, const float *h, int step, bool refine,
                  float *out, double *e_plain, double *e_clip) {
    const int64_t G = awq_clip_group(t);
    if (!G || n % G || (h && G % AWQ_HB)) return false;
    refine = refine && h && G == AWQ_HB && (t == HEARTH_Q4_0 || t == HEARTH_Q5_0);
    float cand[256], deq[256], err[256];
    uint8_t q[512];
    *e_plain = *e_clip = 0;
    for (int64_t b0 = 0; b0 < n; b0 += G) {
        const float *wb = w + b0;
        const float *hb = h ? h + (size_t)(b0 / AWQ_HB) * AWQ_HB * AWQ_HB : NULL;
        float amax = 0;
        for (int64_t j = 0; j < G; j++)
            amax = fabsf(wb[j]) > amax ? fabsf(wb[j]) : amax;
        double best = INFINITY, best_ref = INFINITY;
        float best_r = 1.0f, ref[AWQ_HB];
        for (int i = 0; i<AWQ_CLIP_GRID; i += step> 0 ? step : 1) {
            const float r = 1.0f - 0.025f * (float)i, lim = r * amax;
            for (int64_t j = 0; j < G; j++)
                cand[j] = wb[j] > lim ? lim : wb[j] < -lim ? -lim : wb[j];
            if (!hearth_quantize_row(t, cand, q, G)) return false;
            hearth_dequantize_row(t, q, deq, G);
            for (int64_t j = 0; j < G; j++)
                err[j] = deq[j] - wb[j];
            const double e = block_err(hb, err, G);
            if (i == 0) *e_plain += e;
            if (e < best) {
                best = e;
                best_r = r;
            }
            if (refine && amax > 0) {
                const double er = refine_block(t, wb, cand, hb, deq);
                if (er < best_ref) {
                    best_ref = er;
                    memcpy(ref, deq, sizeof ref);
                }
            }
            if (amax == 0) break;
        }
        const float lim = best_r * amax;
        for (int64_t j = 0; j < G; j++)
            out[b0 + j] = best_r == 1.0f ? wb[j] : wb[j] > lim ? lim : wb[j] < -lim ? -lim : wb[j];
        if (best_ref < best) {
            memcpy(out + b0, ref, sizeof ref);
            best = best_ref;
        }
        *e_clip += best;
    }
    return true;
}

bool awq_rows_err(hearth_dtype t, const float *w, const float *s, int64_t n, int64_t n_out, const float *xs,
                  int n_rows, const float *yref, int64_t o0, int64_t o1, double *err_row) {
    float *row = malloc((size_t)n * sizeof *row), *deq = malloc((size_t)n * sizeof *deq);
    uint8_t *q = malloc(hearth_dtype_row_size(HEARTH_F32, n));
    bool ok = row && deq && q;
    for (int64_t o = o0; ok && o < o1; o++) {
        const float *wo = w + o * n;
        for (int64_t j = 0; j < n; j++)
            row[j] = s ? wo[j] * s[j] : wo[j];
        ok = hearth_quantize_row(t, row, q, n);
        if (!ok) break;
        hearth_dequantize_row(t, q, deq, n);
        double e = 0;
        for (int r = 0; r < n_rows; r++) {
            const double d =
                (double)awq_dot(xs + (size_t)r * (size_t)n, deq, n) - yref[(size_t)r * n_out + o];
            e += d * d;
        }
        err_row[o] = e;
    }
    free(row);
    free(deq);
    free(q);
    return ok;
}

typedef struct awq_job {
    awq_task_fn f;
    void *ctx;
    int64_t i0, i1;
} awq_job;

static void *awq_job_run(void *arg) {
    awq_job *j = arg;
    if (j->i1 > j->i0) j->f(j->ctx, j->i0, j->i1);
    return NULL;
}

void awq_parallel(int nth, int64_t n, awq_task_fn f, void *ctx) {
    if (nth > 64) nth = 64;
    if (nth > n) nth = n > 0 ? (int)n : 1;
    if (nth < 1) nth = 1;
    awq_job jobs[64];
    pthread_t th[64];
    bool started[64] = {false};
    for (int i = 0; i < nth; i++)
        jobs[i] = (awq_job){f, ctx, n * i / nth, n * (i + 1) / nth};
    for (int i = 1; i < nth; i++)
        started[i] = pthread_create(&th[i], NULL, awq_job_run, &jobs[i]) == 0;
    awq_job_run(&jobs[0]);
    for (int i = 1; i < nth; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            awq_job_run(&jobs[i]);
    }
}
