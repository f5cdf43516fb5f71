/*
 * dtype.c - element types: the traits table, exact f16/bf16 conversion, and
 * the reference (de)quantizers of every block format declared in dtype.h.
 *
 * Owns: the one static traits table (read-only, no other global state).
 * Invariants the rest of Hearth relies on:
 *   - block layouts and sizes are byte-exact with ggml (static asserts below);
 *   - hearth_f32_to_f16 / hearth_f32_to_bf16 round to nearest even and agree
 *     with ggml's conversions on every non-NaN input (NaN stays NaN, quiet);
 *   - to_float reproduces ggml's dequantize_row_* bit for bit (same float
 *     expressions in the same order);
 *   - from_float follows ggml's quantize_row_*_ref: Q8_0/Q8_1/Q8_K exactly (they
 *     quantize activations), and the same scale searches (make_qx_quants,
 *     make_q3_quants, make_qkx2_quants) for the K-quants, so a tensor quantized
 *     here matches `llama-quantize` without an importance matrix.
 * Nothing here prints, allocates or exits.
 */
#include "dtype.h"
#include "dtype_iq.h"
#include "quant_iq2.h"
#include "quant_iq3.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

static_assert(sizeof(hearth_f16) == 2, "f16 is 2 bytes");
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs layout");

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ggml treats a group whose largest magnitude is below this as all zeros. */
#define GROUP_MAX_EPS 1e-15f

// ---------------------------------------------------------------- scalar conversions

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float hearth_f16_to_f32(hearth_f16 h) { return hearth_f16_to_f32_inline(h); }

hearth_f16 hearth_f32_to_f16(float f) {
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return sign | 0x7E00; /* NaN -> quiet NaN (as ggml) */
    const int e = (int)(ax >> 23) - 127 + 15;   /* f16 biased exponent */
    const uint32_t mant = ax & 0x7FFFFF;
    if (e >= 31) return sign | 0x7C00; /* overflow (and inf) */
    if (e >= 1) {
        /* Normal: keep 10 mantissa bits, round the 13 dropped bits to nearest even.
         * A carry out of the mantissa correctly bumps the exponent (up to inf). */
        uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
        const uint32_t rest = mant & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    if (e < -10) return sign; /* below half the smallest subnormal: +-0 */
    /* Subnormal result: value / 2^-24 = m >> (14 - e), m with the implicit bit. */
    const uint32_t m = mant | 0x800000;
    const int shift = 14 - e;
    uint32_t h = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1))) h++;
    return sign | (uint16_t)h;
}

float hearth_bf16_to_f32(hearth_bf16 h) { return hearth_bf16_to_f32_inline(h); }

hearth_bf16 hearth_f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (hearth_bf16)((x >> 16) | 0x40); /* NaN: force quiet */
    /* Round to nearest even; subnormals are kept (as current ggml). */
    return (hearth_bf16)((x + 0x7FFFu + ((x >> 16) & 1)) >> 16);
}

/* Round to nearest, ties to even, exactly like ggml's nearest_int (valid for
 * |v| < 2^22, which every caller guarantees). */
static inline int nearest_int(float v) {
    const float biased = v + 12582912.f; /* 1.5 * 2^23 */
    return (int)(f32_bits(biased) & 0x007FFFFF) - 0x00400000;
}

// ---------------------------------------------------------------- plain floats

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const hearth_f16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hearth_f16_to_f32(s[i]);
}
static void f16_from_float(const float *src, void *dst, int64_t n) {
    hearth_f16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = hearth_f32_to_f16(src[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const hearth_bf16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hearth_bf16_to_f32(s[i]);
}
static void bf16_from_float(const float *src, void *dst, int64_t n) {
    hearth_bf16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = hearth_f32_to_bf16(src[i]);
}

// ---------------------------------------------------------------- 32-element blocks: dequantize

/* Element j of a 32-block sits in byte j%16, low nibble for j<16, high for j>=16. */

static void q4_0_to_float(const void *src, float *y, int64_t n) {
    const block_q4_0 *x = src;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = hearth_f16_to_f32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_1_to_float(const void *src, float *y, int64_t n) {
    const block_q4_1 *x = src;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = hearth_f16_to_f32(x[i].d), m = hearth_f16_to_f32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (x[i].qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The fifth bit of element j is bit j of the little-endian 32-bit qh. */
static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24);
}

static void q5_0_to_float(const void *src, float *y, int64_t n) {
    const block_q5_0 *x = src;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = hearth_f16_to_f32(x[i].d);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + QK5_0 / 2] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void q5_1_to_float(const void *src, float *y, int64_t n) {
    const block_q5_1 *x = src;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = hearth_f16_to_f32(x[i].d), m = hearth_f16_to_f32(x[i].m);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + QK5_1 / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void q8_0_to_float(const void *src, float *y, int64_t n) {
    const block_q8_0 *x = src;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = hearth_f16_to_f32(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = x[i].qs[j] * d;
    }
}

static void q8_1_to_float(const void *src, float *y, int64_t n) {
    const block_q8_1 *x = src;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = hearth_f16_to_f32(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = x[i].qs[j] * d;
    }
}

// ---------------------------------------------------------------- 32-element blocks: quantize (ggml *_ref)

/* Symmetric 4/5-bit: d = (signed value of largest magnitude) / -2^(bits-1), so
 * that value maps exactly to level 0; q = trunc(x/d + offset + 0.5). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void q4_0_from_float(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = MIN(15, (int)(x[j] * id + 8.5f));
            const int q1 = MIN(15, (int)(x[j + QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Asymmetric 4/5-bit: m = min, d = (max - min) / (2^bits - 1), q = trunc((x - m)/d + 0.5). */
static void min_max(const float *x, int n, float *min, float *max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

static void q4_1_from_float(const float *x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        y[i].m = hearth_f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = MIN(15, (int)((x[j] - min) * id + 0.5f));
            const int q1 = MIN(15, (int)((x[j + QK4_1 / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

static void q5_0_from_float(const float *x, void *dst, int64_t n) {
    block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = MIN(31, (int)(x[j] * id + 16.5f));
            const int q1 = MIN(31, (int)(x[j + QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_0 / 2);
        }
        store_qh(y[i].qh, qh);
    }
}

static void q5_1_from_float(const float *x, void *dst, int64_t n) {
    block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        y[i].m = hearth_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            /* ggml truncates to uint8 without clamping; the scale keeps it <= 31. */
            const int q0 = (uint8_t)(int)((x[j] - min) * id + 0.5f);
            const int q1 = (uint8_t)(int)((x[j + QK5_1 / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK5_1 / 2);
        }
        store_qh(y[i].qh, qh);
    }
}

static float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = MAX(amax, fabsf(x[j]));
    return amax;
}

/* Q8_0 (ggml quantize_row_q8_0_ref): d = amax/127, q = roundf(x * (1/d)),
 * rounding halves away from zero. */
static void q8_0_from_float(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = absmax(x, QK8_0) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* Q8_1 (ggml quantize_row_q8_1_ref): as Q8_0 plus s = d * sum(q). */
static void q8_1_from_float(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = absmax(x, QK8_1) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = hearth_f32_to_f16((float)sum * d);
    }
}

// ---------------------------------------------------------------- K-quants: scale searches (ggml)

/* Symmetric levels in [-nmax, nmax-1] (stored +nmax) with a weighted
 * least-squares scale, trying 18 perturbed inverse scales around nmax/max.
 * Weights are x^2 (ggml rmse_type 1). Returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = MAX(-nmax, MIN(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = MAX(-nmax, MIN(nmax - 1, nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = MAX(-nmax, MIN(nmax - 1, nearest_int(iscale * x[i])));
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's per-16 search: start from nmax/max, then greedily move single levels
 * while the x^2-weighted error drops (at most 5 passes). L is stored +nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = MAX(-nmax, MIN(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = MAX(-nmax, MIN(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric levels 0..nmax with x ~ scale*l - the_min: weighted least-squares
 * fit of (scale, min) over nstep+1 candidate inverse scales
 * (rmin + rdelta*is + nmax)/(max - min). The min is clamped to <= 0, so
 * *the_min >= 0. Returns the scale. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = MAX(0, MIN(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// ---------------------------------------------------------------- Q2_K

static void q2_K_to_float(const void *src, float *y, int64_t n) {
    const block_q2_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d), min = hearth_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        /* Each 128 elements use 32 bytes; shift selects which 2-bit plane. */
        for (int half = 0; half < QK_K / 128; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

static void q2_K_from_float(const float *x, void *dst, int64_t n) {
    block_q2_K *y = dst;
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = hearth_f32_to_f16(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = hearth_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = hearth_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = hearth_f32_to_f16(0.f);
        }
        /* Re-quantize against the rounded scales. */
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = hearth_f16_to_f32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = hearth_f16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)MAX(0, MIN(3, l));
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

// ---------------------------------------------------------------- Q3_K

static void q3_K_to_float(const void *src, float *y, int64_t n) {
    const block_q3_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = hearth_f16_to_f32(x[i].d);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < QK_K / 128; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int part = 0; part < 2; part++) {
                    const float dl = d_all * hearth_q3k_scale(is++, x[i].scales);
                    for (int l = 16 * part; l < 16 * part + 16; l++)
                        *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

static void q3_K_from_float(const float *x, void *dst, int64_t n) {
    block_q3_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int l = MAX(-32, MIN(31, nearest_int(iscale * scales[j]))) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y[i].d = hearth_f32_to_f16(1 / iscale);
        } else {
            y[i].d = hearth_f32_to_f16(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = hearth_f16_to_f32(y[i].d) * hearth_q3k_scale(j, y[i].scales);
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAX(-4, MIN(3, l)) + 4);
            }
        }
        /* High bit of element j goes to hmask[j % 32], bit j / 32. */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] -= 4;
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

// ---------------------------------------------------------------- Q4_K / Q5_K

static void q4_K_to_float(const void *src, float *y, int64_t n) {
    const block_q4_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d), min = hearth_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int is = 0; is < QK_K / 32; is += 2, q += 32) {
            uint8_t sc, m;
            hearth_kquant_scale_min(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            hearth_kquant_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void q5_K_to_float(const void *src, float *y, int64_t n) {
    const block_q5_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d), min = hearth_f16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < QK_K / 32; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            hearth_kquant_scale_min(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            hearth_kquant_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* Shared by Q4_K and Q5_K: per-32 (scale, min) search, then 6-bit super-scales,
 * then re-quantization of every element against the rounded scales. Fills
 * `scales`, d, dmin and L (levels 0..nmax). */
static void kquant_scales_mins(const float *x, int nmax, float rmin, int nstep, uint8_t packed[K_SCALE_SIZE],
                               hearth_f16 *d_out, hearth_f16 *dmin_out, uint8_t L[QK_K]) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        const uint8_t ls = (uint8_t)MIN(63, (uint8_t)nearest_int(inv_scale * scales[j]));
        const uint8_t lm = (uint8_t)MIN(63, (uint8_t)nearest_int(inv_min * mins[j]));
        if (j < 4) {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
            packed[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = hearth_f32_to_f16(max_scale / 63.f);
    *dmin_out = hearth_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        hearth_kquant_scale_min(j, packed, &sc, &m);
        const float d = hearth_f16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = hearth_f16_to_f32(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
        }
    }
}

static void q4_K_from_float(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kquant_scales_mins(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        /* 64 elements per 32 bytes: low nibbles first, then high nibbles. */
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void q5_K_from_float(const float *x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        kquant_scales_mins(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *ql = y[i].qs, *qh = y[i].qh;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= m2;
                }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

// ---------------------------------------------------------------- Q6_K

static void q6_K_to_float(const void *src, float *y, int64_t n) {
    const block_q6_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < QK_K / 128; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void q6_K_from_float(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = hearth_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = hearth_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
            }
        }
        /* Per 128 elements: ql holds low nibbles (elements l and l+64 share a
         * byte, as do l+32 and l+96), qh the 2 high bits of all four. */
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
                ql[l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
                ql[l + 32] = (uint8_t)((b & 0xF) | ((e & 0xF) << 4));
                qh[l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
            }
        }
    }
}

// ---------------------------------------------------------------- Q8_K

static void q8_K_to_float(const void *src, float *y, int64_t n) {
    const block_q8_K *x = src;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}

/* Q8_K (ggml quantize_row_q8_K_ref): iscale = -127/max with max the signed
 * value of largest magnitude, q = min(127, nearest_int(iscale*x)) (ties to
 * even), bsums = sums of 16 consecutive q, d = 1/iscale (kept in f32). */
static void q8_K_from_float(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]); /* ggml leaves bsums stale; zero is equivalent (d = 0) */
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

// ---------------------------------------------------------------- IQ4_NL / IQ4_XS

const int8_t hearth_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Index of the table level nearest to v (ties to the upper level, as ggml's
 * best_index_int8), by bisection of the ascending table. */
static int iq4_nearest_level(float v) {
    const int8_t *t = hearth_iq4nl_values;
    if (v <= t[0]) return 0;
    if (v >= t[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < t[mid]) hi = mid;
        else lo = mid;
    }
    return v - t[hi - 1] < t[hi] - v ? hi - 1 : hi;
}

/* Weighted least-squares scale of one 32-element group for the levels chosen
 * at inverse scale id: returns false when every weight is zero. */
static bool iq4_fit(const float *x, const float *w, float id, uint8_t *levels, float *sumqx, float *sumq2) {
    float sx = 0, s2 = 0;
    for (int j = 0; j < 32; j++) {
        const int l = iq4_nearest_level(id * x[j]);
        if (levels) levels[j] = (uint8_t)l;
        const float q = hearth_iq4nl_values[l];
        sx += w[j] * q * x[j];
        s2 += w[j] * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
    return s2 > 0;
}

/* ggml's quantize_row_iq4_nl_impl search without an importance matrix: weights
 * x^2, a first fit at the scale that maps the extreme value to the table's end,
 * then 15 trial scales around it, keeping the one of least weighted error.
 * Returns the group's scale; levels get its indices. */
static float iq4_group_scale(const float *x, uint8_t *levels) {
    float w[32], amax = 0, max = 0;
    for (int j = 0; j < 32; j++) {
        w[j] = x[j] * x[j];
        const float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(levels, 0, 32);
        return 0;
    }
    const float v0 = hearth_iq4nl_values[0];
    float sumqx, sumq2;
    float d = iq4_fit(x, w, 1 / (-max / v0), levels, &sumqx, &sumq2) ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        if (iq4_fit(x, w, (itry + v0) / max, NULL, &sumqx, &sumq2) && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void iq4_pack(const uint8_t *levels, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(levels[j] | (levels[j + 16] << 4));
}

static void iq4_nl_to_float(const void *src, float *y, int64_t n) {
    const block_iq4_nl *x = src;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
        const float d = hearth_f16_to_f32(x[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * hearth_iq4nl_values[x[i].qs[j] & 0xF];
            y[j + QK4_NL / 2] = d * hearth_iq4nl_values[x[i].qs[j] >> 4];
        }
    }
}

/* One group is its own super-block: the group scale is stored as is and the
 * levels re-chosen at that scale (ggml does so when it searched, ntry > 0). */
static void iq4_nl_from_float(const float *x, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    for (int64_t i = 0; i < n / QK4_NL; i++, x += QK4_NL) {
        uint8_t levels[32];
        const float d = iq4_group_scale(x, levels);
        y[i].d = hearth_f32_to_f16(d);
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < 32; j++) levels[j] = (uint8_t)iq4_nearest_level(id * x[j]);
        iq4_pack(levels, y[i].qs);
    }
}

static void iq4_xs_to_float(const void *src, float *y, int64_t n) {
    const block_iq4_xs *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32, qs += 16) {
            const float dl = d * (hearth_iq4xs_scale(&x[i], ib) - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * hearth_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * hearth_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

/* Eight group scales, then one f16 super-scale d = -max/32 (max: the group
 * scale of largest magnitude) and a 6-bit signed multiple of d per group; the
 * levels are re-chosen at each group's final scale. */
static void iq4_xs_from_float(const float *x, void *dst, int64_t n) {
    block_iq4_xs *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t levels[32];
        float scales[QK_K / 32], max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            scales[ib] = iq4_group_scale(x + 32 * ib, levels);
            if (fabsf(scales[ib]) > amax_scale) {
                amax_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        const float d = -max_scale / 32;
        y[i].d = hearth_f32_to_f16(d);
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int l = MAX(-32, MIN(31, nearest_int(id * scales[ib])));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++) levels[j] = (uint8_t)iq4_nearest_level(idl * x[32 * ib + j]);
            iq4_pack(levels, y[i].qs + 16 * ib);
            const int u = l + 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((u & 0xF) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((u >> 4) << (2 * ib));
        }
    }
}

// ---------------------------------------------------------------- traits table

/* Q8_1 and Q8_K are activation formats: they convert both ways but no GGUF
 * weight of those types can be multiplied, so they are not "known". */
static const hearth_dtype_traits k_traits[HEARTH_DTYPE_COUNT] = {
    [HEARTH_F32] = {"f32", true, 1, sizeof(float), f32_to_float, f32_from_float, HEARTH_F32},
    [HEARTH_F16] = {"f16", true, 1, sizeof(hearth_f16), f16_to_float, f16_from_float, HEARTH_F16},
    [HEARTH_BF16] = {"bf16", true, 1, sizeof(hearth_bf16), bf16_to_float, bf16_from_float, HEARTH_BF16},
    [HEARTH_Q4_0] = {"q4_0", true, QK4_0, sizeof(block_q4_0), q4_0_to_float, q4_0_from_float, HEARTH_Q8_0},
    [HEARTH_Q4_1] = {"q4_1", true, QK4_1, sizeof(block_q4_1), q4_1_to_float, q4_1_from_float, HEARTH_Q8_1},
    [HEARTH_Q5_0] = {"q5_0", true, QK5_0, sizeof(block_q5_0), q5_0_to_float, q5_0_from_float, HEARTH_Q8_0},
    [HEARTH_Q5_1] = {"q5_1", true, QK5_1, sizeof(block_q5_1), q5_1_to_float, q5_1_from_float, HEARTH_Q8_1},
    [HEARTH_Q8_0] = {"q8_0", true, QK8_0, sizeof(block_q8_0), q8_0_to_float, q8_0_from_float, HEARTH_Q8_0},
    [HEARTH_Q8_1] = {"q8_1", false, QK8_1, sizeof(block_q8_1), q8_1_to_float, q8_1_from_float, HEARTH_Q8_1},
    [HEARTH_Q2_K] = {"q2_K", true, QK_K, sizeof(block_q2_K), q2_K_to_float, q2_K_from_float, HEARTH_Q8_K},
    [HEARTH_Q3_K] = {"q3_K", true, QK_K, sizeof(block_q3_K), q3_K_to_float, q3_K_from_float, HEARTH_Q8_K},
    [HEARTH_Q4_K] = {"q4_K", true, QK_K, sizeof(block_q4_K), q4_K_to_float, q4_K_from_float, HEARTH_Q8_K},
    [HEARTH_Q5_K] = {"q5_K", true, QK_K, sizeof(block_q5_K), q5_K_to_float, q5_K_from_float, HEARTH_Q8_K},
    [HEARTH_Q6_K] = {"q6_K", true, QK_K, sizeof(block_q6_K), q6_K_to_float, q6_K_from_float, HEARTH_Q8_K},
    [HEARTH_Q8_K] = {"q8_K", false, QK_K, sizeof(block_q8_K), q8_K_to_float, q8_K_from_float, HEARTH_Q8_K},
    [HEARTH_IQ4_NL] = {"iq4_nl", true, QK4_NL, sizeof(block_iq4_nl), iq4_nl_to_float, iq4_nl_from_float, HEARTH_Q8_0},
    [HEARTH_IQ4_XS] = {"iq4_xs", true, QK_K, sizeof(block_iq4_xs), iq4_xs_to_float, iq4_xs_from_float, HEARTH_Q8_K},
    /* Grid types (dtype_iq.c): read and multiplied; quantized by core/quant_iq2.c
     * (IQ2/IQ1) and core/quant_iq3.c (IQ3). */
    [HEARTH_IQ2_XXS] = {"iq2_xxs", true, QK_K, sizeof(block_iq2_xxs), hearth_iq2_xxs_to_float, hearth_iq2_xxs_from_float, HEARTH_Q8_K},
    [HEARTH_IQ2_XS] = {"iq2_xs", true, QK_K, sizeof(block_iq2_xs), hearth_iq2_xs_to_float, hearth_iq2_xs_from_float, HEARTH_Q8_K},
    [HEARTH_IQ2_S] = {"iq2_s", true, QK_K, sizeof(block_iq2_s), hearth_iq2_s_to_float, hearth_iq2_s_from_float, HEARTH_Q8_K},
    [HEARTH_IQ3_XXS] = {"iq3_xxs", true, QK_K, sizeof(block_iq3_xxs), hearth_iq3_xxs_to_float, hearth_iq3_xxs_from_float, HEARTH_Q8_K},
    [HEARTH_IQ3_S] = {"iq3_s", true, QK_K, sizeof(block_iq3_s), hearth_iq3_s_to_float, hearth_iq3_s_from_float, HEARTH_Q8_K},
    [HEARTH_IQ1_S] = {"iq1_s", true, QK_K, sizeof(block_iq1_s), hearth_iq1_s_to_float, hearth_iq1_s_from_float, HEARTH_Q8_K},
    [HEARTH_IQ1_M] = {"iq1_m", true, QK_K, sizeof(block_iq1_m), hearth_iq1_m_to_float, hearth_iq1_m_from_float, HEARTH_Q8_K},
    /* ggml types this build cannot load, named so a refusal can say which one. */
    [34] = {"tq1_0", false, 0, 0, NULL, NULL, HEARTH_F32},
    [35] = {"tq2_0", false, 0, 0, NULL, NULL, HEARTH_F32},
};

static const hearth_dtype_traits k_unknown = {"?", false, 1, 0, NULL, NULL, HEARTH_F32};

const hearth_dtype_traits *hearth_dtype_info(hearth_dtype t) {
    if ((int)t < 0 || (int)t >= HEARTH_DTYPE_COUNT || !k_traits[t].name) return &k_unknown;
    return &k_traits[t];
}

const char *hearth_dtype_name(hearth_dtype t) { return hearth_dtype_info(t)->name; }

static bool name_eq_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        const char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        const char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb) return false;
    }
    return *a == *b;
}

bool hearth_dtype_from_name(const char *name, hearth_dtype *out) {
    if (!name) return false;
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++) {
        if (k_traits[t].known && name_eq_nocase(name, k_traits[t].name)) {
            if (out) *out = (hearth_dtype)t;
            return true;
        }
    }
    return false;
}

size_t hearth_dtype_row_size(hearth_dtype t, int64_t n) {
    const hearth_dtype_traits *tr = hearth_dtype_info(t);
    if (n < 0 || tr->type_size == 0 || n % tr->block_size != 0) return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

const char *hearth_dtype_supported_list(void) {
    /* Must list exactly the known types (checked by tests/unit/core/test_dtype.c). */
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, iq2_xxs, iq2_xs, iq3_xxs, iq1_s, iq4_nl, iq3_s, iq2_s, iq4_xs, iq1_m";
}

void hearth_dequantize_row(hearth_dtype t, const void *src, float *dst, int64_t n) {
    const hearth_dtype_traits *tr = hearth_dtype_info(t);
    if (!tr->to_float || n <= 0 || n % tr->block_size != 0) return;
    tr->to_float(src, dst, n);
}

bool hearth_quantize_row(hearth_dtype t, const float *src, void *dst, int64_t n) {
    const hearth_dtype_traits *tr = hearth_dtype_info(t);
    if (!tr->from_float || n < 0 || n % tr->block_size != 0) return false;
    if (n > 0) tr->from_float(src, dst, n);
    return true;
}
