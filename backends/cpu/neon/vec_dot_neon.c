/*
 * vec_dot_neon.c - the "neon" kernel family (plain Advanced SIMD, which every
 * AArch64 CPU has): dot kernels for every weight type, the activation
 * converters, and the Q8_0/Q4_0 GEMM tiles. The integer kernels live in
 * neon_int_kernels.h (shared with the dotprod family); this file adds the
 * float kernels and the converters. Contract: neon_kernels.h. No state.
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "neon_int_kernels.h"

// ---------------------------------------------------------------- plain floats

/* Float lanes with fused multiply-add: another summation order than the
 * scalar kernels' double sum (within the float tolerance of the contract). */
static inline float sum_tail_f32(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3) {
    return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

static void neon_dot_f32(int64_t n, float *out, const void *w, const void *a) {
    const float *x = w, *y = a;
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
        s1 = vfmaq_f32(s1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(x + i), vld1q_f32(y + i));
    float sum = sum_tail_f32(s0, s1, s2, s3);
    for (; i < n; i++)
        sum += x[i] * y[i];
    *out = sum;
}

static inline float32x4_t f16x4_to_f32(const hearth_f16 *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}
static inline float32x4_t bf16x4_to_f32(const hearth_bf16 *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* Dot of two rows of 16-bit floats (F16 or BF16): widen 4 at a time, four
 * accumulators, then the scalar tail. */
#define NEON_DOT_HALF(name, T, widen4, widen1)                                              \
    static void name(int64_t n, float *out, const void *w, const void *a) {                 \
        const T *x = w, *y = a;                                                             \
        float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;                         \
        int64_t i = 0;                                                                      \
        for (; i + 16 <= n; i += 16) {                                                      \
            s0 = vfmaq_f32(s0, widen4(x + i), widen4(y + i));                               \
            s1 = vfmaq_f32(s1, widen4(x + i + 4), widen4(y + i + 4));                       \
            s2 = vfmaq_f32(s2, widen4(x + i + 8), widen4(y + i + 8));                       \
            s3 = vfmaq_f32(s3, widen4(x + i + 12), widen4(y + i + 12));                     \
        }                                                                                   \
        for (; i + 4 <= n; i += 4)                                                          \
            s0 = vfmaq_f32(s0, widen4(x + i), widen4(y + i));                               \
        float sum = sum_tail_f32(s0, s1, s2, s3);                                           \
        for (; i < n; i++)                                                                  \
            sum += widen1(x[i]) * widen1(y[i]);                                             \
        *out = sum;                                                                         \
    }
NEON_DOT_HALF(neon_dot_f16, hearth_f16, f16x4_to_f32, hearth_f16_to_f32_inline)
NEON_DOT_HALF(neon_dot_bf16, hearth_bf16, bf16x4_to_f32, hearth_bf16_to_f32_inline)

hearth_vec_dot_fn hearth_cpu_vec_dot_neon(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_F32: return neon_dot_f32;
    case HEARTH_F16: return neon_dot_f16;
    case HEARTH_BF16: return neon_dot_bf16;
    default: return neon_int_vec_dot(weight_type);
    }
}

hearth_gemm_fn hearth_cpu_gemm_neon(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    return neon_int_gemm(weight_type, max_rows, max_toks);
}

// ---------------------------------------------------------------- activation converters

/* Largest |x| of 8 vectors (32 floats). maxnm skips NaN like fmaxf, and the
 * zero start makes an all-NaN block 0, as the scalar loop from 0 does. */
static inline float absmax32(const float32x4_t v[8]) {
    float32x4_t m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++)
        m = vmaxnmq_f32(m, vabsq_f32(v[k]));
    return vmaxnmvq_f32(m);
}

/* rintf(v * id) to int8 for 32 values: round to nearest even (FCVTNS, which
 * saturates to int32 like the scalar conversion does), then keep the low
 * byte, as the scalar (int8_t) cast does. Also returns the sum of the bytes. */
static inline int round_store32(const float32x4_t v[8], float id, int8_t *q) {
    int sum = 0;
    for (int k = 0; k < 8; k += 4) {
        int16x8_t h0 = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k], id))),
                                    vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id))));
        int16x8_t h1 = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 2], id))),
                                    vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[k + 3], id))));
        const int8x16_t b = vcombine_s8(vmovn_s16(h0), vmovn_s16(h1));
        vst1q_s8(q + 4 * k, b);
        sum += vaddlvq_s8(b);
    }
    return sum;
}

static inline void load32(const float *x, float32x4_t v[8]) {
    for (int k = 0; k < 8; k++)
        v[k] = vld1q_f32(x + 4 * k);
}

/* One block of 32 floats the way ggml's x86 quantize_row_q8_0/q8_1 do it:
 * d = amax/127, q = rint(x * 127/amax); returns d, the sum of q in *sum. */
static inline float q8_block32(const float *x, int8_t *qs, int *sum) {
    float32x4_t v[8];
    load32(x, v);
    const float amax = absmax32(v);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    *sum = round_store32(v, id, qs);
    return amax / 127.f;
}

static void neon_act_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    int sum;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) y[i].d = hearth_f32_to_f16(q8_block32(x, y[i].qs, &sum));
}

/* Q8_1: the same blocks plus s = d * sum(q). */
static void neon_act_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        int sum;
        const float d = q8_block32(x, y[i].qs, &sum);
        y[i].d = hearth_f32_to_f16(d);
        y[i].s = hearth_f32_to_f16(d * (float)sum);
    }
}

/* Q8_K as dtype.c's q8_K_from_float: iscale = -127/max (max the first value
 * of largest magnitude), q = min(127, nearest_int(iscale * x)) with
 * nearest_int's own bit trick (so inf/NaN products give the same bytes),
 * bsums per 16, d = 1/iscale. */
static void neon_act_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0);
        for (int j = 0; j < QK_K; j += 4)
            m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxnmvq_f32(m);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        while (fabsf(x[first]) != amax)
            first++;
        const float iscale = -127.f / x[first];
        const float32x4_t magic = vdupq_n_f32(12582912.f); /* 1.5 * 2^23 */
        const int32x4_t mant = vdupq_n_s32(0x007FFFFF), half = vdupq_n_s32(0x00400000),
                        top = vdupq_n_s32(127);
        for (int j = 0; j < QK_K; j += 16) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++) {
                const float32x4_t biased = vaddq_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale), magic);
                q[k] = vminq_s32(vsubq_s32(vandq_s32(vreinterpretq_s32_f32(biased), mant), half), top);
            }
            const int16x8_t h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            const int16x8_t h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            const int8x16_t b = vcombine_s8(vmovn_s16(h0), vmovn_s16(h1));
            vst1q_s8(y[i].qs + j, b);
            y[i].bsums[j / 16] = (int16_t)vaddlvq_s8(b);
        }
        y[i].d = 1 / iscale;
    }
}

/* F16: FCVTN rounds to nearest even like hearth_f32_to_f16; only NaNs need
 * fixing, which the scalar conversion turns into sign | 0x7E00. */
static void neon_act_f16(const float *x, void *dst, int64_t n) {
    hearth_f16 *y = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
        const uint16x4_t sign = vand_u16(vshrn_n_u32(vreinterpretq_u32_f32(v), 16), vdup_n_u16(0x8000));
        const uint16x4_t qnan = vorr_u16(sign, vdup_n_u16(0x7E00));
        const uint16x4_t not_nan = vmovn_u32(vceqq_f32(v, v));
        vst1_u16(y + i, vbsl_u16(not_nan, h, qnan));
    }
    for (; i < n; i++)
        y[i] = hearth_f32_to_f16(x[i]);
}

/* BF16: the scalar conversion's integer rounding, four at a time. */
static void neon_act_bf16(const float *x, void *dst, int64_t n) {
    hearth_bf16 *y = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
        const uint16x4_t rounded = vshrn_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), odd), 16);
        const uint16x4_t qnan = vorr_u16(vshrn_n_u32(u, 16), vdup_n_u16(0x40));
        const uint16x4_t is_nan =
            vmovn_u32(vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7FFFFFFF)), vdupq_n_u32(0x7F800000)));
        vst1_u16(y + i, vbsl_u16(is_nan, qnan, rounded));
    }
    for (; i < n; i++)
        y[i] = hearth_f32_to_bf16(x[i]);
}

static void neon_act_f32(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

hearth_quantize_act_fn hearth_cpu_quantize_act_neon(hearth_dtype vec_dot_type) {
    switch (vec_dot_type) {
    case HEARTH_F32: return neon_act_f32;
    case HEARTH_F16: return neon_act_f16;
    case HEARTH_BF16: return neon_act_bf16;
    case HEARTH_Q8_0: return neon_act_q8_0;
    case HEARTH_Q8_1: return neon_act_q8_1;
    case HEARTH_Q8_K: return neon_act_q8_K;
    default: return NULL;
    }
}
