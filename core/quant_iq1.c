/*
 * quant_iq1.c - IQ1_S and IQ1_M row quantizers: llama.cpp's
 * quantize_row_iq1_s_impl / quantize_row_iq1_m_impl (ggml-quants.c, dc02e1f).
 *
 * Each group of 32 (IQ1_S) or 16 (IQ1_M) values takes the levels -1, 0, +1
 * (shifted by +-1/8) times a scale. With three levels the weighted least
 * squares fit can be searched exhaustively: sort the values, and every
 * split of the sorted order into three runs is one candidate. The chosen
 * levels are then snapped onto the 2048-point ternary grid through the
 * shared IQ1 tables of quant_iq2.c (hearth_iq2_tables_for(HEARTH_IQ1_S)).
 *
 * Owns: nothing (reentrant; the tables are read-only).
 * Invariants: float expressions in ggml's order; qsort sees the same
 * elements (8 bytes: value, index) and comparisons as ggml's, so equal
 * values end up in the same order with the same C library.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_iq_grid.h"

#define IQ1S_BLOCK 32
#define IQ1M_BLOCK 16

typedef struct iq1_pair {
    float x;
    int i;
} iq1_pair;

static int iq1_pair_cmp(const void *left, const void *right) {
    const float l = ((const iq1_pair *)left)->x, r = ((const iq1_pair *)right)->x;
    return l < r ? -1 : l > r ? 1 : 0;
}

/* Sorted (value, index) pairs of n values. */
static void iq1_sort(const float *xb, int n, iq1_pair *pairs) {
    for (int j = 0; j < n; ++j) {
        pairs[j].x = xb[j];
        pairs[j].i = j;
    }
    qsort(pairs, (size_t)n, sizeof *pairs, iq1_pair_cmp);
}

/* ggml's iq1_find_best_neighbour2: the neighbour of off-grid pattern u with
 * the least weighted squared error at `scale` (levels xg); levels go to L.
 * When no neighbour scores (NaN input) the whole grid is searched. */
static int iq1_best_neighbour(const hearth_iq2_tables *t, int u, const float *xval, const float *weight,
                              float scale, const float *xg, int8_t *L) {
    const uint16_t *nb = t->neighbours - t->map[u] - 1;
    float best_score = FLT_MAX;
    int gi = -1;
    for (int j = 1; j <= nb[0]; ++j) {
        const uint64_t g = t->grid[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 8; ++i) {
            float q = xg[(hearth_iq_grid8(g, i) - 1) / 2];
            float w = weight[i];
            float diff = scale * q - xval[i];
            d2 += w * diff * diff;
        }
        if (d2 < best_score) {
            best_score = d2;
            gi = nb[j];
        }
    }
    for (int k = 0; gi < 0 && k < t->grid_size; ++k) {
        float d2 = 0;
        for (int i = 0; i < 8; ++i) {
            float q = xg[(hearth_iq_grid8(t->grid[k], i) - 1) / 2];
            float diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_score) {
            best_score = d2;
            gi = k;
        }
    }
    if (gi < 0) gi = nb[1];
    for (int i = 0; i < 8; ++i)
        L[i] = (int8_t)((hearth_iq_grid8(t->grid[gi], i) - 1) / 2);
    return gi;
}

/* Grid index of the 8 levels L (0..2), the best neighbour when off-grid;
 * *on_grid is cleared when a neighbour was taken. */
static int iq1_index(const hearth_iq2_tables *t, const float *xb, const float *weight, float scale,
                     const float *xx, int8_t *L, bool *on_grid) {
    int u = 0;
    for (int j = 0; j < 8; ++j)
        u |= L[j] << 2 * j;
    const int gi = t->map[u];
    if (gi >= 0) return gi;
    *on_grid = false;
    return iq1_best_neighbour(t, u, xb, weight, scale, xx, L);
}

/* IQ1_S's split search for one group of 32: levels L (0..2), *shift (+-1) and
 * the scale; false when no split has a positive fit. */
static bool iq1_s_split(const float *xb, const float *weight, iq1_pair *pairs, int8_t *L, float *out_scale,
                        int *shift, float max) {
    const int bs = IQ1S_BLOCK;
    const float x_p[3] = {-1 + HEARTH_IQ1_DELTA, HEARTH_IQ1_DELTA, 1 + HEARTH_IQ1_DELTA};
    const float x_m[3] = {-1 - HEARTH_IQ1_DELTA, -HEARTH_IQ1_DELTA, 1 - HEARTH_IQ1_DELTA};
    float sumx[IQ1S_BLOCK + 1], sumw[IQ1S_BLOCK + 1];
    iq1_sort(xb, bs, pairs);
    sumx[0] = sumw[0] = 0;
    for (int j = 0; j < bs; ++j) {
        int i = pairs[j].i;
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
    }
    float best_score = -FLT_MAX, scale = max;
    int besti1 = -1, besti2 = -1, best_shift = 0;
    for (int i1 = 0; i1 <= bs; ++i1) {
        for (int i2 = i1; i2 <= bs; ++i2) {
            float sumqx = (sumx[i1] - sumx[0]) * x_p[0] + (sumx[i2] - sumx[i1]) * x_p[1] +
                          (sumx[bs] - sumx[i2]) * x_p[2];
            float sumq2 = (sumw[i1] - sumw[0]) * x_p[0] * x_p[0] + (sumw[i2] - sumw[i1]) * x_p[1] * x_p[1] +
                          (sumw[bs] - sumw[i2]) * x_p[2] * x_p[2];
            if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
                scale = sumqx / sumq2;
                best_score = scale * sumqx;
                besti1 = i1;
                besti2 = i2;
                best_shift = 1;
            }
            sumqx = (sumx[i1] - sumx[0]) * x_m[0] + (sumx[i2] - sumx[i1]) * x_m[1] +
                    (sumx[bs] - sumx[i2]) * x_m[2];
            sumq2 = (sumw[i1] - sumw[0]) * x_m[0] * x_m[0] + (sumw[i2] - sumw[i1]) * x_m[1] * x_m[1] +
                    (sumw[bs] - sumw[i2]) * x_m[2] * x_m[2];
            if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
                scale = sumqx / sumq2;
                best_score = scale * sumqx;
                besti1 = i1;
                besti2 = i2;
                best_shift = -1;
            }
        }
    }
    if (besti1 < 0 || besti2 < 0 || best_shift == 0) return false;
    for (int j = 0; j < besti1; ++j)
        L[pairs[j].i] = 0;
    for (int j = besti1; j < besti2; ++j)
        L[pairs[j].i] = 1;
    for (int j = besti2; j < bs; ++j)
        L[pairs[j].i] = 2;
    if (scale < 0) {
        for (int j = 0; j < bs; ++j)
            L[j] = (int8_t)(2 - L[j]);
        scale = -scale;
        best_shift = -best_shift;
    }
    *out_scale = scale;
    *shift = best_shift;
    return true;
}

void hearth_iq1_s_row(const hearth_iq2_tables *t, const float *x, block_iq1_s *y, int64_t n,
                      const float *qw) {
    const int bs = IQ1S_BLOCK;
    const float x_p[3] = {-1 + HEARTH_IQ1_DELTA, HEARTH_IQ1_DELTA, 1 + HEARTH_IQ1_DELTA};
    const float x_m[3] = {-1 - HEARTH_IQ1_DELTA, -HEARTH_IQ1_DELTA, 1 - HEARTH_IQ1_DELTA};
    float scales[QK_K / IQ1S_BLOCK], weight[IQ1S_BLOCK];
    int8_t L[IQ1S_BLOCK], shifts[QK_K / IQ1S_BLOCK];
    iq1_pair pairs[IQ1S_BLOCK];
    uint16_t index[IQ1S_BLOCK / 8];
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        y[ibl].d = hearth_f32_to_f16(0.f);
        memset(y[ibl].qs, 0, QK_K / 8);
        memset(y[ibl].qh, 0, QK_K / 16);
        float max_scale = 0;
        const float *xbl = x + QK_K * ibl;
        float sumx2 = 0;
        for (int i = 0; i < QK_K; ++i)
            sumx2 += xbl[i] * xbl[i];
        float sigma2 = 2 * sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / bs; ++ib) {
            const float *xb = xbl + bs * ib;
            for (int i = 0; i < bs; ++i)
                weight[i] = (qw ? qw[QK_K * ibl + bs * ib + i] : 1.0f) * sqrtf(sigma2 + xb[i] * xb[i]);
            float max = fabsf(xb[0]);
            for (int i = 1; i < bs; ++i)
                max = IQ_MAX(max, fabsf(xb[i]));
            float scale;
            int shift;
            if (max < IQ_EPS_IQ1_S || !iq1_s_split(xb, weight, pairs, L, &scale, &shift, max)) {
                scales[ib] = 0;
                shifts[ib] = 1;
                memset(L, 1, bs);
                continue;
            }
            bool all_on_grid = true;
            const float *xx = shift == 1 ? x_p : x_m;
            for (int k = 0; k < bs / 8; ++k)
                index[k] =
                    (uint16_t)iq1_index(t, xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k, &all_on_grid);
            if (!all_on_grid) {
                float sumqx = 0, sumq2 = 0;
                for (int k = 0; k < bs / 8; ++k) {
                    const uint64_t g = t->grid[index[k]];
                    for (int j = 0; j < 8; ++j) {
                        float w = weight[8 * k + j];
                        float q = xx[(hearth_iq_grid8(g, j) - 1) / 2];
                        sumqx += w * q * xb[8 * k + j];
                        sumq2 += w * q * q;
                    }
                }
                if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
            }
            uint16_t h = 0;
            for (int k = 0; k < bs / 8; ++k) {
                y[ibl].qs[(bs / 8) * ib + k] = (uint8_t)(index[k] & 255);
                h |= (uint16_t)((index[k] >> 8) << 3 * k);
            }
            y[ibl].qh[ib] = h;
            scales[ib] = scale;
            shifts[ib] = (int8_t)shift;
            max_scale = IQ_MAX(max_scale, scale);
        }
        if (!max_scale) continue;
        float d = max_scale / 15;
        y[ibl].d = hearth_f32_to_f16(d * 1.125f); /* ggml's factor */
        float id = 1 / d;
        for (int ib = 0; ib < QK_K / bs; ++ib) {
            int l = hearth_iq_nint(0.5f * (id * scales[ib] - 1));
            l = IQ_MAX(0, IQ_MIN(7, l));
            if (shifts[ib] == -1) l |= 8;
            y[ibl].qh[ib] |= (uint16_t)(l << 12);
        }
    }
}

/* ---------------------------------------------------------------- IQ1_M */

/* Add the sorted values j in [ja, jb) at level r to the four candidates of
 * IQ1_M's two half-group shifts (0: +,+  1: +,-  2: -,+  3: -,-). */
static void iq1_m_acc(const iq1_pair *pairs, int ja, int jb, int r, const float *weight, const float *xb,
                      const float *x_p, const float *x_m, float sumqx[4], float sumq2[4]) {
    for (int j = ja; j < jb; ++j) {
        int i = pairs[j].i;
        if (i < IQ1M_BLOCK / 2) {
            sumqx[0] += weight[i] * x_p[r] * xb[i];
            sumqx[1] += weight[i] * x_p[r] * xb[i];
            sumqx[2] += weight[i] * x_m[r] * xb[i];
            sumqx[3] += weight[i] * x_m[r] * xb[i];
            sumq2[0] += weight[i] * x_p[r] * x_p[r];
            sumq2[1] += weight[i] * x_p[r] * x_p[r];
            sumq2[2] += weight[i] * x_m[r] * x_m[r];
            sumq2[3] += weight[i] * x_m[r] * x_m[r];
        } else {
            sumqx[0] += weight[i] * x_p[r] * xb[i];
            sumqx[2] += weight[i] * x_p[r] * xb[i];
            sumqx[1] += weight[i] * x_m[r] * xb[i];
            sumqx[3] += weight[i] * x_m[r] * xb[i];
            sumq2[0] += weight[i] * x_p[r] * x_p[r];
            sumq2[2] += weight[i] * x_p[r] * x_p[r];
            sumq2[1] += weight[i] * x_m[r] * x_m[r];
            sumq2[3] += weight[i] * x_m[r] * x_m[r];
        }
    }
}

/* IQ1_M's split search for one group of 16: levels L, *best_k (0..3) and the
 * scale; false when no split has a positive fit. */
static bool iq1_m_split(const float *xb, const float *weight, iq1_pair *pairs, int8_t *L, float *out_scale,
                        int *out_k, float max) {
    const int bs = IQ1M_BLOCK;
    const float x_p[3] = {-1 + HEARTH_IQ1_DELTA, HEARTH_IQ1_DELTA, 1 + HEARTH_IQ1_DELTA};
    const float x_m[3] = {-1 - HEARTH_IQ1_DELTA, -HEARTH_IQ1_DELTA, 1 - HEARTH_IQ1_DELTA};
    float sumqx[4], sumq2[4];
    iq1_sort(xb, bs, pairs);
    float best_score = -FLT_MAX, scale = max;
    int besti1 = -1, besti2 = -1, best_k = -1;
    for (int i1 = 0; i1 <= bs; ++i1) {
        for (int i2 = i1; i2 <= bs; ++i2) {
            memset(sumqx, 0, sizeof sumqx);
            memset(sumq2, 0, sizeof sumq2);
            iq1_m_acc(pairs, 0, i1, 0, weight, xb, x_p, x_m, sumqx, sumq2);
            iq1_m_acc(pairs, i1, i2, 1, weight, xb, x_p, x_m, sumqx, sumq2);
            iq1_m_acc(pairs, i2, bs, 2, weight, xb, x_p, x_m, sumqx, sumq2);
            for (int k = 0; k < 4; ++k) {
                if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best_score * sumq2[k]) {
                    scale = sumqx[k] / sumq2[k];
                    best_score = scale * sumqx[k];
                    besti1 = i1;
                    besti2 = i2;
                    best_k = k;
                }
            }
        }
    }
    if (besti1 < 0 || besti2 < 0 || best_k < 0) return false;
    for (int j = 0; j < besti1; ++j)
        L[pairs[j].i] = 0;
    for (int j = besti1; j < besti2; ++j)
        L[pairs[j].i] = 1;
    for (int j = besti2; j < bs; ++j)
        L[pairs[j].i] = 2;
    if (scale < 0) {
        for (int j = 0; j < bs; ++j)
            L[j] = (int8_t)(2 - L[j]);
        scale = -scale;
        best_k = 3 - best_k; /* 0<->3, 1<->2 */
    }
    *out_scale = scale;
    *out_k = best_k;
    return true;
}

/* IQ1_M's weights of one group: importance-weighted, or x^2 without one. */
static void iq1_m_weights(const float *xb, const float *q, float sigma2, float *weight) {
    if (q) {
        for (int i = 0; i < IQ1M_BLOCK; ++i)
            weight[i] = q[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < IQ1M_BLOCK; ++i)
            weight[i] = xb[i] * xb[i];
    }
}

/* The levels of half k of a group with shift code sk (0..3). */
static const float *iq1_m_levels(int sk, int k, const float *x_p, const float *x_m) {
    if (k == 0) return sk < 2 ? x_p : x_m;
    return sk % 2 == 0 ? x_p : x_m;
}

/* The block's f16 super-scale: the least-squares fit of all groups at their
 * 3-bit scales (ggml), packed with those scales into y->scales. */
static void iq1_m_super(block_iq1_m *y, const hearth_iq2_tables *t, const float *xbl, const float *qwbl,
                        float sigma2, const float *scales, const int8_t *shifts, float max_scale) {
    const float x_p[3] = {-1 + HEARTH_IQ1_DELTA, HEARTH_IQ1_DELTA, 1 + HEARTH_IQ1_DELTA};
    const float x_m[3] = {-1 - HEARTH_IQ1_DELTA, -HEARTH_IQ1_DELTA, 1 - HEARTH_IQ1_DELTA};
    const uint8_t masks[4] = {0x00, 0x80, 0x08, 0x88};
    const int bs = IQ1M_BLOCK;
    uint16_t sc[4] = {0, 0, 0, 0};
    float weight[IQ1M_BLOCK];
    float d = max_scale / 15;
    float id = 1 / d;
    float sumqx_f = 0, sumq2_f = 0;
    for (int ib = 0; ib < QK_K / bs; ++ib) {
        int l = hearth_iq_nint(0.5f * (id * scales[ib + 0] - 1));
        l = IQ_MAX(0, IQ_MIN(7, l));
        sc[ib / 4] |= (uint16_t)(l << 3 * (ib % 4));
        y->qh[ib] |= masks[shifts[ib]];
        const float *xb = xbl + bs * ib;
        iq1_m_weights(xb, qwbl ? qwbl + bs * ib : NULL, sigma2, weight);
        for (int k = 0; k < bs / 8; ++k) {
            const float *xx = iq1_m_levels(shifts[ib], k, x_p, x_m);
            const uint64_t g = t->grid[y->qs[2 * ib + k] + ((y->qh[ib] << (8 - 4 * k)) & 0x700)];
            for (int j = 0; j < 8; ++j) {
                float w = weight[8 * k + j];
                float q = xx[(hearth_iq_grid8(g, j) - 1) / 2] * (2 * l + 1);
                sumqx_f += w * q * xb[8 * k + j];
                sumq2_f += w * q * q;
            }
        }
    }
    if (sumq2_f > 0) d = sumqx_f / sumq2_f;
    const hearth_f16 s = hearth_f32_to_f16(d * 1.1125f); /* ggml's factor */
    sc[0] |= (uint16_t)((s & 0x000f) << 12);
    sc[1] |= (uint16_t)((s & 0x00f0) << 8);
    sc[2] |= (uint16_t)((s & 0x0f00) << 4);
    sc[3] |= (uint16_t)((s & 0xf000) << 0);
    memcpy(y->scales, sc, sizeof sc);
}

void hearth_iq1_m_row(const hearth_iq2_tables *t, const float *x, block_iq1_m *y, int64_t n,
                      const float *qw) {
    const int bs = IQ1M_BLOCK;
    const float x_p[3] = {-1 + HEARTH_IQ1_DELTA, HEARTH_IQ1_DELTA, 1 + HEARTH_IQ1_DELTA};
    const float x_m[3] = {-1 - HEARTH_IQ1_DELTA, -HEARTH_IQ1_DELTA, 1 - HEARTH_IQ1_DELTA};
    float scales[QK_K / IQ1M_BLOCK], weight[IQ1M_BLOCK];
    int8_t L[IQ1M_BLOCK], shifts[QK_K / IQ1M_BLOCK];
    iq1_pair pairs[IQ1M_BLOCK];
    uint16_t index[IQ1M_BLOCK / 8];
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        memset(y[ibl].qs, 0, QK_K / 8);
        memset(y[ibl].qh, 0, QK_K / 16);
        memset(y[ibl].scales, 0, QK_K / 32);
        float max_scale = 0;
        const float *xbl = x + QK_K * ibl;
        const float *qwbl = qw ? qw + QK_K * ibl : NULL;
        float sumx2 = 0;
        for (int i = 0; i < QK_K; ++i)
            sumx2 += xbl[i] * xbl[i];
        float sigma2 = 2 * sumx2 / QK_K;
        for (int ib = 0; ib < QK_K / bs; ++ib) {
            const float *xb = xbl + bs * ib;
            iq1_m_weights(xb, qwbl ? qwbl + bs * ib : NULL, sigma2, weight);
            float max = fabsf(xb[0]);
            for (int i = 1; i < bs; ++i)
                max = IQ_MAX(max, fabsf(xb[i]));
            float scale;
            int best_k;
            if (max < IQ_EPS_IQ1_M || !iq1_m_split(xb, weight, pairs, L, &scale, &best_k, max)) {
                scales[ib] = 0;
                shifts[ib] = 0;
                memset(L, 1, bs);
                continue;
            }
            bool all_on_grid = true;
            for (int k = 0; k < bs / 8; ++k) {
                const float *xx = iq1_m_levels(best_k, k, x_p, x_m);
                index[k] =
                    (uint16_t)iq1_index(t, xb + 8 * k, weight + 8 * k, scale, xx, L + 8 * k, &all_on_grid);
            }
            if (!all_on_grid) {
                float sumqx_f = 0, sumq2_f = 0;
                for (int k = 0; k < bs / 8; ++k) {
                    const float *xx = iq1_m_levels(best_k, k, x_p, x_m);
                    const uint64_t g = t->grid[index[k]];
                    for (int j = 0; j < 8; ++j) {
                        float w = weight[8 * k + j];
                        float q = xx[(hearth_iq_grid8(g, j) - 1) / 2];
                        sumqx_f += w * q * xb[8 * k + j];
                        sumq2_f += w * q * q;
                    }
                }
                if (sumqx_f > 0 && sumq2_f > 0) scale = sumqx_f / sumq2_f;
            }
            y[ibl].qs[2 * ib + 0] = (uint8_t)(index[0] & 255);
            y[ibl].qs[2 * ib + 1] = (uint8_t)(index[1] & 255);
            y[ibl].qh[ib] = (uint8_t)((index[0] >> 8) | ((index[1] >> 8) << 4));
            scales[ib] = scale;
            shifts[ib] = (int8_t)best_k;
            max_scale = IQ_MAX(max_scale, scale);
        }
        if (!max_scale) continue;
        iq1_m_super(&y[ibl], t, xbl, qwbl, sigma2, scales, shifts, max_scale);
    }
}
