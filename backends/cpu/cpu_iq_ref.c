/*
 * cpu_iq_ref.c - scalar dot kernels of the grid-based IQ types against Q8_K.
 *
 * Each follows ggml's generic vec_dot_iq*_q8_K: per 32-group an exact integer
 * sum of the signed grid values (core/dtype_iq.c's hearth_iq_group_q) times the
 * int8 activations, times the group's odd multiplier 2s+1, summed per block in
 * int32; then one float product per block, added in block order, and the type's
 * constant factor (1/8 for IQ2, 1/4 for IQ3_XXS) at the end. IQ1_S/IQ1_M add the
 * +-1/8 shift through the activation block sums. Owns no state; thread-safe.
 */
#include "backends/cpu/cpu_iq.h"

#include "core/dtype_iq.h"

/* Sum of q[j] * a[j] over n values. */
static int isum(const int8_t *q, const int8_t *a, int n) {
    int s = 0;
    for (int j = 0; j < n; j++)
        s += q[j] * a[j];
    return s;
}

/* The IQ2/IQ3 types: bsum = sum over groups of (2 s1 + 1) * dot(values 0..15)
 * + (2 s2 + 1) * dot(values 16..31); result factor * sum_i (d_w * d_a) * bsum. */
static void dot_grid(hearth_dtype t, size_t block_bytes, float factor, int64_t n, float *out, const void *w,
                     const void *act) {
    const uint8_t *x = w;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++, x += block_bytes) {
        hearth_f16 dh;
        __builtin_memcpy(&dh, x, sizeof dh);
        const float d = hearth_f16_to_f32_inline(dh) * y[i].d;
        int32_t bsum = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(t, x, ib, q, &s1, &s2);
            const int8_t *a = y[i].qs + 32 * ib;
            bsum += (2 * s1 + 1) * isum(q, a, 16) + (2 * s2 + 1) * isum(q + 16, a + 16, 16);
        }
        sumf += d * bsum;
    }
    *out = factor * sumf;
}

static void dot_iq2_xxs(int64_t n, float *out, const void *w, const void *a) {
    dot_grid(HEARTH_IQ2_XXS, sizeof(block_iq2_xxs), 0.125f, n, out, w, a);
}
static void dot_iq2_xs(int64_t n, float *out, const void *w, const void *a) {
    dot_grid(HEARTH_IQ2_XS, sizeof(block_iq2_xs), 0.125f, n, out, w, a);
}
static void dot_iq2_s(int64_t n, float *out, const void *w, const void *a) {
    dot_grid(HEARTH_IQ2_S, sizeof(block_iq2_s), 0.125f, n, out, w, a);
}
static void dot_iq3_xxs(int64_t n, float *out, const void *w, const void *a) {
    dot_grid(HEARTH_IQ3_XXS, sizeof(block_iq3_xxs), 0.25f, n, out, w, a);
}
static void dot_iq3_s(int64_t n, float *out, const void *w, const void *a) {
    dot_grid(HEARTH_IQ3_S, sizeof(block_iq3_s), 1.0f, n, out, w, a);
}

/* IQ1_S: sumi = sum (2s+1) * dot(ternary, a); sumi1 = sum (2s+1) * (+-1) * (sum of
 * the group's 32 activations); block value d_w * d_a * (sumi + 1/8 * sumi1). */
static void dot_iq1_s(int64_t n, float *out, const void *w, const void *act) {
    const block_iq1_s *x = w;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(HEARTH_IQ1_S, &x[i], ib, q, &s1, &s2);
            const int ls = 2 * s1 + 1, delta = x[i].qh[ib] & 0x8000 ? -1 : 1;
            sumi += ls * isum(q, y[i].qs + 32 * ib, 32);
            sumi1 += ls * delta * (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]);
        }
        sumf += hearth_f16_to_f32_inline(x[i].d) * y[i].d * (sumi + HEARTH_IQ1_DELTA * sumi1);
    }
    *out = sumf;
}

/* IQ1_M: as IQ1_S with a multiplier per 16 values and a shift sign per 8. */
static void dot_iq1_m(int64_t n, float *out, const void *w, const void *act) {
    const block_iq1_m *x = w;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi1 = 0, sumi2 = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(HEARTH_IQ1_M, &x[i], ib, q, &s1, &s2);
            const int neg = hearth_iq1m_shift_signs(&x[i], ib);
            const int8_t *a = y[i].qs + 32 * ib;
            int sum1[2] = {0, 0}, sum2[2] = {0, 0};
            for (int l = 0; l < 4; l++) {
                int asum = 0;
                for (int j = 0; j < 8; j++)
                    asum += a[8 * l + j];
                sum1[l / 2] += isum(q + 8 * l, a + 8 * l, 8);
                sum2[l / 2] += (neg >> l) & 1 ? -asum : asum;
            }
            const int ls1 = 2 * s1 + 1, ls2 = 2 * s2 + 1;
            sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
            sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
        }
        sumf += hearth_f16_to_f32_inline(hearth_iq1m_d(&x[i])) * y[i].d * (sumi1 + HEARTH_IQ1_DELTA * sumi2);
    }
    *out = sumf;
}

hearth_vec_dot_fn hearth_cpu_vec_dot_iq_ref(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_IQ2_XXS: return dot_iq2_xxs;
    case HEARTH_IQ2_XS: return dot_iq2_xs;
    case HEARTH_IQ2_S: return dot_iq2_s;
    case HEARTH_IQ3_XXS: return dot_iq3_xxs;
    case HEARTH_IQ3_S: return dot_iq3_s;
    case HEARTH_IQ1_S: return dot_iq1_s;
    case HEARTH_IQ1_M: return dot_iq1_m;
    default: return NULL;
    }
}
