/*
 * quant_weighted.c - importance-weighted block quantizers (see
 * quant_weighted.h): llama.cpp's quantize_row_*_impl searches with
 * quant_weights, so `hearth quantize --imatrix` writes the bytes
 * `llama-quantize --imatrix` writes.
 *
 * Invariants: every float expression keeps ggml's operand order (the file
 * is built without FMA contraction, as core/ is); rows are independent, so
 * any split of rows over threads gives the same bytes.
 * Nothing here prints, allocates or exits.
 */
#include "quant_weighted.h"

#include "quant_iq3.h"

#include <math.h>
#include <string.h>

#include "core/quant_iq2.h"

#define WMIN(a, b) ((a) < (b) ? (a) : (b))
#define WMAX(a, b) ((a) > (b) ? (a) : (b))
#define EPS 1e-15f /* ggml's GROUP_MAX_EPS */

/* ggml's nearest_int: round half to even through the float mantissa. */
static inline int nint(float v) {
    float b = v + 12582912.f;
    uint32_t u;
    memcpy(&u, &b, sizeof u);
    return (int)(u & 0x007FFFFF) - 0x00400000;
}

static inline hearth_f16 to16(float f) {
    return hearth_f32_to_f16(f);
}
static inline float from16(hearth_f16 h) {
    return hearth_f16_to_f32(h);
}

/* Symmetric levels in [-nmax, nmax-1] (stored + nmax) minimising the
 * qw-weighted squared error; 18 perturbed scales around nmax/max. */
static float qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nint(iscale * x[i]);
        l = WMAX(-nmax, WMIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = qw[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nint(iscale * x[i]);
            l = WMAX(-nmax, WMIN(nmax - 1, l));
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nint(iscale * x[i]);
                L[i] = (int8_t)(nmax + WMAX(-nmax, WMIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Asymmetric levels 0..nmax with a min (ggml make_qkx3_quants, weighted
 * squared error): a grid of nstep+1 scales, each refined by least squares
 * for scale and min together. Returns the scale; *the_min = -min. */
static float qkx3_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                         uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; ++i) {
        int l = nint(iscale * (x[i] - min));
        L[i] = (uint8_t)WMAX(0, WMIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_mad += w[i] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nint(iscale * (x[i] - min));
            l = WMAX(0, WMIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                mad += w[i] * diff;
            }
            if (mad < best_mad) {
                memcpy(L, Laux, (size_t)n);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Non-negative levels 0..nmax for the K-quants' sub-block scales (ggml
 * make_qp_quants): best of 9 scales, then up to 5 passes moving single
 * levels while the weighted fit improves. */
static float qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw) {
    float max = 0;
    for (int i = 0; i < n; ++i)
        max = WMAX(max, x[i]);
    if (max < EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; ++i)
        L[i] = (uint8_t)nint(iscale * x[i]);
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        float diff = x[i] - scale * L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            int l = WMIN(nmax, nint(iscale_is * x[i]));
            float diff = x[i] - scale_is * l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = WMIN(nmax, nint(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * l;
        suml2 += qw[i] * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = WMIN(nmax, nint(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

float hearth_quant_qp_levels(int n, int nmax, const float *x, uint8_t *L, const float *qw) {
    return qp_quants(n, nmax, x, L, qw);
}

/* mean x^2 over the row: the sigma2 the 32-blocks add to x^2 */
static float row_sigma2(const float *x, int64_t n) {
    float s = 0;
    for (int64_t j = 0; j < n; ++j)
        s += x[j] * x[j];
    return s / n;
}

static void q4_0_w(const float *x, block_q4_0 *y, int64_t n, const float *qw) {
    float weight[QK4_0], sigma2 = row_sigma2(x, n);
    int8_t L[QK4_0];
    for (int64_t ib = 0; ib < n / QK4_0; ++ib) {
        const float *xb = x + QK4_0 * ib, *q = qw + QK4_0 * ib;
        for (int j = 0; j < QK4_0; ++j)
            weight[j] = q[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        y[ib].d = to16(qx_quants(QK4_0, 8, xb, L, weight));
        for (int j = 0; j < 16; ++j)
            y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void q4_1_w(const float *x, block_q4_1 *y, int64_t n, const float *qw) {
    float weight[QK4_1], sigma2 = row_sigma2(x, n), min;
    uint8_t L[QK4_1], Laux[QK4_1];
    for (int64_t ib = 0; ib < n / QK4_1; ++ib) {
        const float *xb = x + QK4_1 * ib, *q = qw + QK4_1 * ib;
        for (int j = 0; j < QK4_1; ++j)
            weight[j] = q[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float d = qkx3_quants(QK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36);
        y[ib].d = to16(d);
        y[ib].m = to16(-min);
        for (int j = 0; j < 16; ++j)
            y[ib].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

/* the 5-bit types: low nibbles in qs, the fifth bits in qh */
static void pack5(const uint8_t *L, uint8_t qs[16], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t a = L[j], b = L[j + 16];
        qs[j] = (uint8_t)((a & 0x0F) | ((b & 0x0F) << 4));
        qh |= ((a & 0x10u) >> 4) << (j + 0);
        qh |= ((b & 0x10u) >> 4) << (j + 16);
    }
    memcpy(qh_out, &qh, sizeof qh);
}

static void q5_0_w(const float *x, block_q5_0 *y, int64_t n, const float *qw) {
    float weight[QK5_0], sigma2 = row_sigma2(x, n);
    int8_t L[QK5_0];
    for (int64_t ib = 0; ib < n / QK5_0; ++ib) {
        const float *xb = x + QK5_0 * ib, *q = qw + QK5_0 * ib;
        for (int j = 0; j < QK5_0; ++j)
            weight[j] = q[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        y[ib].d = to16(qx_quants(QK5_0, 16, xb, L, weight));
        pack5((const uint8_t *)L, y[ib].qs, y[ib].qh);
    }
}

static void q5_1_w(const float *x, block_q5_1 *y, int64_t n, const float *qw) {
    float weight[QK5_1], sigma2 = row_sigma2(x, n), min;
    uint8_t L[QK5_1], Laux[QK5_1];
    for (int64_t ib = 0; ib < n / QK5_1; ++ib) {
        const float *xb = x + QK5_1 * ib, *q = qw + QK5_1 * ib;
        for (int j = 0; j < QK5_1; ++j)
            weight[j] = q[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        float d = qkx3_quants(QK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36);
        y[ib].d = to16(d);
        y[ib].m = to16(-min);
        pack5(L, y[ib].qs, y[ib].qh);
    }
}

static void q2_K_w(const float *x, block_q2_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K], Laux[16], Ls[QK_K / 16], Lm[QK_K / 16];
    float mins[QK_K / 16], scales[QK_K / 16], sw[QK_K / 16], weight[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        memset(sw, 0, sizeof sw);
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j)
            sumx2 += x[j] * x[j];
        float sigma2 = sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            const float *q = qw + QK_K * i + 16 * j;
            for (int l = 0; l < 16; ++l)
                weight[l] = q[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            for (int l = 0; l < QK_K / 16; ++l)
                sw[j] += weight[l];
            scales[j] = qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
        }
        float dm = qp_quants(QK_K / 16, 15, scales, Ls, sw);
        float mm = qp_quants(QK_K / 16, 15, mins, Lm, sw);
        y[i].d = to16(dm);
        y[i].dmin = to16(mm);
        dm = from16(y[i].d);
        mm = from16(y[i].dmin);
        for (int j = 0; j < QK_K / 16; ++j)
            y[i].scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = dm * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float m = mm * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                int l = nint((x[16 * j + ii] + m) / d);
                L[16 * j + ii] = (uint8_t)WMAX(0, WMIN(3, l));
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

static void q3_K_w(const float *x, block_q3_K *y, int64_t n, const float *qw) {
    int8_t L[QK_K], Ls[QK_K / 16];
    float scales[QK_K / 16], weight[16], sw[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j)
            sumx2 += x[j] * x[j];
        float sigma2 = 2 * sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            const float *q = qw + QK_K * i + 16 * j;
            for (int l = 0; l < 16; ++l)
                weight[l] = q[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            float sumw = 0;
            for (int l = 0; l < 16; ++l)
                sumw += weight[l];
            sw[j] = sumw;
            scales[j] = qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
        }
        memset(y[i].scales, 0, 12);
        float d_block = qx_quants(QK_K / 16, 32, scales, Ls, sw);
        for (int j = 0; j < QK_K / 16; ++j) {
            int l = Ls[j];
            if (j < 8)
                y[i].scales[j] = (uint8_t)(l & 0xF);
            else
                y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
            l >>= 4;
            y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
        }
        y[i].d = to16(d_block);
        for (int j = 0; j < QK_K / 16; ++j) {
            int8_t sc = (int8_t)(j < 8 ? y[i].scales[j] & 0xF : y[i].scales[j - 8] >> 4);
            sc = (int8_t)((sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
            float d = from16(y[i].d) * sc;
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nint(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(WMAX(-4, WMIN(3, l)) + 4);
            }
        }
        memset(y[i].hmask, 0, QK_K / 8);
        int m = 0;
        uint8_t hm = 1;
        for (int j = 0; j < QK_K; ++j) {
            if (L[j] > 3) {
                y[i].hmask[m] |= hm;
                L[j] -= 4;
            }
            if (++m == QK_K / 8) {
                m = 0;
                hm <<= 1;
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* Q4_K / Q5_K share the sub-block search and the 6-bit scale packing;
 * nmax 15 or 31, clamp63 as Q5_K does. Fills L with the final levels. */
static void k45_block(const float *x, const float *qw, int nmax, bool clamp63,
                      uint8_t scales_out[K_SCALE_SIZE], hearth_f16 *d_out, hearth_f16 *dmin_out,
                      uint8_t L[QK_K]) {
    uint8_t Laux[32], Ls[QK_K / 32], Lm[QK_K / 32];
    float weights[32], sw[QK_K / 32], mins[QK_K / 32], scales[QK_K / 32];
    float sum_x2 = 0;
    for (int l = 0; l < QK_K; ++l)
        sum_x2 += x[l] * x[l];
    float sigma2 = 2 * sum_x2 / QK_K;
    for (int j = 0; j < QK_K / 32; ++j) {
        const float *q = qw + 32 * j;
        for (int l = 0; l < 32; ++l)
            weights[l] = q[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; ++l)
            sumw += weights[l];
        sw[j] = sumw;
        scales[j] = qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    float d_block = qp_quants(QK_K / 32, 63, scales, Ls, sw);
    float m_block = qp_quants(QK_K / 32, 63, mins, Lm, sw);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t ls = Ls[j], lm = Lm[j];
        if (clamp63) {
            ls = WMIN(63, ls);
            lm = WMIN(63, lm);
        }
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = to16(d_block);
    *dmin_out = to16(m_block);
    uint8_t sc, m;
    for (int j = 0; j < QK_K / 32; ++j) {
        scale_min_k4(j, scales_out, &sc, &m);
        const float d = from16(*d_out) * sc;
        if (!d) continue;
        const float dm = from16(*dmin_out) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nint((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)WMAX(0, WMIN(nmax, l));
        }
    }
}

static void q4_K_w(const float *x, block_q4_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k45_block(x, qw + QK_K * i, 15, false, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void q5_K_w(const float *x, block_q5_K *y, int64_t n, const float *qw) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k45_block(x, qw + QK_K * i, 31, true, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int b = 0; b < QK_K; b += 64, ql += 32) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[b + j], l2 = L[b + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }
}

static void q6_K_w(const float *x, block_q6_K *y, int64_t n, const float *qw) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            /* the raw importance, without sigma2 (as ggml) */
            float scale = qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw + QK_K * i + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = to16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            y[i].scales[ib] = (int8_t)WMIN(127, nint(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; ++j) {
            float d = from16(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nint(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(WMAX(-32, WMIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                              q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
    }
}

/* IQ4: ggml's best_index_int8 over the ascending non-linear table (ties to
 * the upper level). */
static int iq4_index(float v) {
    const int8_t *t = hearth_iq4nl_values;
    if (v <= t[0]) return 0;
    if (v >= t[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < t[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - t[hi - 1] < t[hi] - v ? hi - 1 : hi;
}

/* Weighted least squares of one group of 32 at inverse scale id. */
static void iq4_fit_w(const float *xb, const float *w, float id, uint8_t *Lb, float *sumqx, float *sumq2) {
    float sx = 0, s2 = 0;
    for (int j = 0; j < 32; ++j) {
        const int l = iq4_index(id * xb[j]);
        if (Lb) Lb[j] = (uint8_t)l;
        const float q = hearth_iq4nl_values[l];
        sx += w[j] * q * xb[j];
        s2 += w[j] * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/* ggml quantize_row_iq4_nl_impl's group search (ntry 7) with weights
 * qw * sqrt(sigma2 + x^2): the scale of least weighted error. */
static float iq4_group_w(const float *xb, const float *qw, float sigma2, uint8_t *Lb) {
    float weight[32], amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
        weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
    for (int j = 0; j < 32; ++j) {
        const float ax = fabsf(xb[j]);
        if (ax > amax) {
            amax = ax;
            max = xb[j];
        }
    }
    if (amax < EPS) return 0.f;
    const float v0 = hearth_iq4nl_values[0];
    float d = -max / v0, sumqx, sumq2;
    iq4_fit_w(xb, weight, 1 / d, Lb, &sumqx, &sumq2);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; ++itry) {
        iq4_fit_w(xb, weight, (itry + v0) / max, NULL, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static float sb_sigma2(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; ++j)
        s += x[j] * x[j];
    return s * (2.f / n);
}

static void iq4_pack_w(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; ++j)
        qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

/* IQ4_NL: each 32-block is its own super-block (sigma2 over the 32). */
static void iq4_nl_w(const float *x, block_iq4_nl *y, int64_t n, const float *qw) {
    uint8_t L[QK4_NL];
    for (int64_t ib = 0; ib < n / QK4_NL; ++ib, x += QK4_NL) {
        const float d = iq4_group_w(x, qw + QK4_NL * ib, sb_sigma2(x, QK4_NL), L);
        y[ib].d = to16(d);
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < QK4_NL; ++j)
            L[j] = (uint8_t)iq4_index(id * x[j]);
        iq4_pack_w(L, y[ib].qs);
    }
}

/* IQ4_XS: eight group scales, a super-scale -max/32 and 6-bit multiples. */
static void iq4_xs_w(const float *x, block_iq4_xs *y, int64_t n, const float *qw) {
    uint8_t L[32];
    float scales[QK_K / 32];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        const float sigma2 = sb_sigma2(x, QK_K);
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            scales[ib] = iq4_group_w(x + 32 * ib, qw + QK_K * i + 32 * ib, sigma2, L);
            const float a = fabsf(scales[ib]);
            if (a > amax_scale) {
                amax_scale = a;
                max_scale = scales[ib];
            }
        }
        const float d = -max_scale / 32;
        y[i].d = to16(d);
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            int l = nint(id * scales[ib]);
            l = WMAX(-32, WMIN(31, l));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; ++j)
                L[j] = (uint8_t)iq4_index(idl * x[32 * ib + j]);
            iq4_pack_w(L, y[i].qs + 16 * ib);
            l += 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((l & 0xF) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
    }
}

int hearth_quant_weighted_kind(hearth_dtype t) {
    switch (t) {
    case HEARTH_Q4_0:
    case HEARTH_Q4_1:
    case HEARTH_Q5_0:
    case HEARTH_Q5_1:
    case HEARTH_Q2_K:
    case HEARTH_Q3_K:
    case HEARTH_Q4_K:
    case HEARTH_Q5_K:
    case HEARTH_Q6_K:
    case HEARTH_IQ4_NL:
    case HEARTH_IQ4_XS:
    case HEARTH_IQ3_XXS:
    case HEARTH_IQ3_S:
    case HEARTH_IQ2_XXS: /* core/quant_iq2.c */
    case HEARTH_IQ2_XS:
    case HEARTH_IQ2_S:
    case HEARTH_IQ1_S:
    case HEARTH_IQ1_M: return 1;
    case HEARTH_F32:
    case HEARTH_F16:
    case HEARTH_BF16:
    case HEARTH_Q8_0: return 0;
    default: return -1;
    }
}

bool hearth_quantize_row_weighted(hearth_dtype t, const float *x, void *dst, int64_t n, const float *qw) {
    const int kind = hearth_quant_weighted_kind(t);
    if (kind < 0 && qw) return false;
    if (!qw || kind == 0) return hearth_quantize_row(t, x, dst, n);
    const int64_t blk = hearth_dtype_info(t)->block_size;
    if (n <= 0 || n % blk) return false;
    switch (t) {
    case HEARTH_Q4_0: q4_0_w(x, dst, n, qw); break;
    case HEARTH_Q4_1: q4_1_w(x, dst, n, qw); break;
    case HEARTH_Q5_0: q5_0_w(x, dst, n, qw); break;
    case HEARTH_Q5_1: q5_1_w(x, dst, n, qw); break;
    case HEARTH_Q2_K: q2_K_w(x, dst, n, qw); break;
    case HEARTH_Q3_K: q3_K_w(x, dst, n, qw); break;
    case HEARTH_Q4_K: q4_K_w(x, dst, n, qw); break;
    case HEARTH_Q5_K: q5_K_w(x, dst, n, qw); break;
    case HEARTH_Q6_K: q6_K_w(x, dst, n, qw); break;
    case HEARTH_IQ4_NL: iq4_nl_w(x, dst, n, qw); break;
    case HEARTH_IQ4_XS: iq4_xs_w(x, dst, n, qw); break;
    case HEARTH_IQ3_XXS: return hearth_iq3_xxs_quantize(x, dst, n, qw);
    case HEARTH_IQ3_S: return hearth_iq3_s_quantize(x, dst, n, qw);
    case HEARTH_IQ2_XXS:
    case HEARTH_IQ2_XS:
    case HEARTH_IQ2_S:
    case HEARTH_IQ1_S:
    case HEARTH_IQ1_M: return hearth_iq2_quantize_row(t, x, dst, n, qw);
    default: return false;
    }
    return true;
}
