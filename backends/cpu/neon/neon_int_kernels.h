/*
 * neon_int_kernels.h - the integer (quantized) dot kernels and GEMM tiles of
 * the arm64 families, written once and compiled twice: by vec_dot_neon.c for
 * plain Advanced SIMD and by vec_dot_neon_dotprod.c with +dotprod, where
 * __ARM_FEATURE_DOTPROD turns dot16() into one SDOT. Everything here is
 * static; each including file exposes it through its family's getters
 * (neon_kernels.h). Include from exactly those two files.
 *
 * Numerics (see cpu_quants_ref.c for the scalar kernels mirrored here):
 *   - every block's integer sum is exact (8-bit products widened before they
 *     are added), whatever instruction forms it;
 *   - the 32-element block types apply the scalar kernel's float operations
 *     per block, in block order, with no fused multiply-add, so results are
 *     bit-identical to the scalar kernels; the GEMM tiles run the same
 *     per-pair chains side by side in float lanes;
 *   - K-quants scale each sub-block's integer sum by its integer scale, add
 *     them in integers, and apply the block's float scales once per block
 *     (another float order than the scalar kernels' 8 lanes).
 */
#ifndef HEARTH_CPU_NEON_INT_KERNELS_H
#define HEARTH_CPU_NEON_INT_KERNELS_H

#include <arm_neon.h>
#include <string.h>

#include "neon_kernels.h"

// ---------------------------------------------------------------- building blocks

/* acc + the 16 products a[i]*b[i], spread over the 4 lanes (only the sum of
 * the lanes is defined). Exact: products are widened before any addition. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

static inline float f16_val(hearth_f16 h) {
    return hearth_f16_to_f32_inline(h);
}

static inline uint32_t load_le32(const uint8_t b[4]) {
    uint32_t v;
    memcpy(&v, b, sizeof v); /* AArch64 Linux is little-endian */
    return v;
}

/* 0x10 in byte i where bit i of the 16-bit `bits` is set, else 0 (the fifth
 * bit of a Q5_0/Q5_1 level). */
static inline uint8x16_t fifth_bits(uint32_t bits) {
    static const uint8_t k_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bytes = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vandq_u8(vtstq_u8(bytes, vld1q_u8(k_bit)), vdupq_n_u8(0x10));
}

/* Levels of one Q4_0 block as signed bytes: elements 0..15 and 16..31. */
static inline void q4_0_levels(const block_q4_0 *x, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t q = vld1q_u8(x->qs);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
}

static inline int q8_0_block_sum(const block_q8_0 *x, const block_q8_0 *y) {
    int32x4_t acc = dot16(vdupq_n_s32(0), vld1q_s8(x->qs), vld1q_s8(y->qs));
    return vaddvq_s32(dot16(acc, vld1q_s8(x->qs + 16), vld1q_s8(y->qs + 16)));
}

static inline int q4_0_block_sum(const block_q4_0 *x, const block_q8_0 *y) {
    int8x16_t lo, hi;
    q4_0_levels(x, &lo, &hi);
    return vaddvq_s32(dot16(dot16(vdupq_n_s32(0), lo, vld1q_s8(y->qs)), hi, vld1q_s8(y->qs + 16)));
}

// ---------------------------------------------------------------- 32-element blocks

static void neon_dot_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q8_0 *x = w, *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++)
        sumf += (float)q8_0_block_sum(&x[ib], &y[ib]) * (f16_val(x[ib].d) * f16_val(y[ib].d));
    *out = sumf;
}

static void neon_dot_q4_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++)
        sumf += (float)q4_0_block_sum(&x[ib], &y[ib]) * f16_val(x[ib].d) * f16_val(y[ib].d);
    *out = sumf;
}

static void neon_dot_q4_1(int64_t n, float *out, const void *w, const void *a) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        const uint8x16_t q = vld1q_u8(x[ib].qs);
        const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
        const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
        const int sumi =
            vaddvq_s32(dot16(dot16(vdupq_n_s32(0), lo, vld1q_s8(y[ib].qs)), hi, vld1q_s8(y[ib].qs + 16)));
        sumf += (f16_val(x[ib].d) * f16_val(y[ib].d)) * (float)sumi + f16_val(x[ib].m) * f16_val(y[ib].s);
    }
    *out = sumf;
}

/* Levels of a Q5 block: nibble | fifth bit, minus `offset` (16 for Q5_0, 0 for Q5_1). */
static inline int q5_block_sum(const uint8_t qs[16], const uint8_t qh[4], const int8_t *y, int8_t offset) {
    const uint32_t bits = load_le32(qh);
    const uint8x16_t q = vld1q_u8(qs);
    const uint8x16_t lo = vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), fifth_bits(bits & 0xFFFF));
    const uint8x16_t hi = vorrq_u8(vshrq_n_u8(q, 4), fifth_bits(bits >> 16));
    const int8x16_t l = vsubq_s8(vreinterpretq_s8_u8(lo), vdupq_n_s8(offset));
    const int8x16_t h = vsubq_s8(vreinterpretq_s8_u8(hi), vdupq_n_s8(offset));
    return vaddvq_s32(dot16(dot16(vdupq_n_s32(0), l, vld1q_s8(y)), h, vld1q_s8(y + 16)));
}

static void neon_dot_q5_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        const int sumi = q5_block_sum(x[ib].qs, x[ib].qh, y[ib].qs, 16);
        sumf += (f16_val(x[ib].d) * f16_val(y[ib].d)) * (float)sumi;
    }
    *out = sumf;
}

static void neon_dot_q5_1(int64_t n, float *out, const void *w, const void *a) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        const int sumi = q5_block_sum(x[ib].qs, x[ib].qh, y[ib].qs, 0);
        sumf += (f16_val(x[ib].d) * f16_val(y[ib].d)) * (float)sumi + f16_val(x[ib].m) * f16_val(y[ib].s);
    }
    *out = sumf;
}

// ---------------------------------------------------------------- K-quants against Q8_K

/* sum over 16-element groups g of scale[g] * dot(levels_g, q8_g), for 2
 * groups held in a and b (32 consecutive elements). */
static inline int32x4_t scaled_pair16(int32x4_t acc, int8x16_t a, int8x16_t b, const int8_t *q8, int sa,
                                      int sb) {
    acc = vmlaq_n_s32(acc, dot16(vdupq_n_s32(0), a, vld1q_s8(q8)), sa);
    return vmlaq_n_s32(acc, dot16(vdupq_n_s32(0), b, vld1q_s8(q8 + 16)), sb);
}

/* scale * dot(levels, q8) over 32 elements held in a and b. */
static inline int32x4_t scaled32(int32x4_t acc, int8x16_t a, int8x16_t b, const int8_t *q8, int scale) {
    const int32x4_t d = dot16(dot16(vdupq_n_s32(0), a, vld1q_s8(q8)), b, vld1q_s8(q8 + 16));
    return vmlaq_n_s32(acc, d, scale);
}

static void neon_dot_q2_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q2_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = x[i].scales;
        /* The mins multiply every activation of their 16-group: use bsums. */
        const uint8x16_t scv = vld1q_u8(sc);
        const int16x8_t mins_lo = vreinterpretq_s16_u16(vmovl_u8(vshr_n_u8(vget_low_u8(scv), 4)));
        const int16x8_t mins_hi = vreinterpretq_s16_u16(vmovl_u8(vshr_n_u8(vget_high_u8(scv), 4)));
        const int16x8_t bs_lo = vld1q_s16(y[i].bsums), bs_hi = vld1q_s16(y[i].bsums + 8);
        int32x4_t m = vmull_s16(vget_low_s16(bs_lo), vget_low_s16(mins_lo));
        m = vmlal_s16(m, vget_high_s16(bs_lo), vget_high_s16(mins_lo));
        m = vmlal_s16(m, vget_low_s16(bs_hi), vget_low_s16(mins_hi));
        m = vmlal_s16(m, vget_high_s16(bs_hi), vget_high_s16(mins_hi));
        const int summs = vaddvq_s32(m);
        const float dall = y[i].d * f16_val(x[i].d);
        const float dmin = y[i].d * f16_val(x[i].dmin);
        /* Element 128*h + 32*s + l is (q2[32*h + l] >> 2s) & 3, scale index 8h + 2s + (l >= 16). */
        const int8_t *q8 = y[i].qs;
        int32x4_t acc = vdupq_n_s32(0);
        int is = 0;
        for (int h = 0; h < QK_K / 128; h++) {
            const uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * h), b1 = vld1q_u8(x[i].qs + 32 * h + 16);
            for (int s = 0; s < 4; s++, q8 += 32, is += 2) {
                const uint8x16_t three = vdupq_n_u8(3);
                const int8x16_t v0 =
                    vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b0, vdupq_n_s8((int8_t)(-2 * s))), three));
                const int8x16_t v1 =
                    vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b1, vdupq_n_s8((int8_t)(-2 * s))), three));
                acc = scaled_pair16(acc, v0, v1, q8, sc[is] & 0xF, sc[is + 1] & 0xF);
            }
        }
        sumf += dall * (float)vaddvq_s32(acc) - dmin * (float)summs;
    }
    *out = sumf;
}

static void neon_dot_q3_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q3_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int scale[QK_K / 16];
        for (int j = 0; j < QK_K / 16; j++)
            scale[j] = hearth_q3k_scale(j, x[i].scales);
        /* Element 128*h + 32*s + l: ((q3[32*h + l] >> 2s) & 3) - 4 unless bit (4h + s) of hmask[l]. */
        const uint8x16_t hm0 = vld1q_u8(x[i].hmask), hm1 = vld1q_u8(x[i].hmask + 16);
        const int8_t *q8 = y[i].qs;
        int32x4_t acc = vdupq_n_s32(0);
        int is = 0;
        for (int h = 0; h < QK_K / 128; h++) {
            const uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * h), b1 = vld1q_u8(x[i].qs + 32 * h + 16);
            for (int s = 0; s < 4; s++, q8 += 32, is += 2) {
                const uint8x16_t three = vdupq_n_u8(3), four = vdupq_n_u8(4);
                const uint8x16_t m = vdupq_n_u8((uint8_t)(1u << (4 * h + s)));
                const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * s));
                const uint8x16_t l0 = vandq_u8(vshlq_u8(b0, shift), three);
                const uint8x16_t l1 = vandq_u8(vshlq_u8(b1, shift), three);
                const int8x16_t v0 = vreinterpretq_s8_u8(vsubq_u8(l0, vbicq_u8(four, vtstq_u8(hm0, m))));
                const int8x16_t v1 = vreinterpretq_s8_u8(vsubq_u8(l1, vbicq_u8(four, vtstq_u8(hm1, m))));
                acc = scaled_pair16(acc, v0, v1, q8, scale[is], scale[is + 1]);
            }
        }
        sumf += (f16_val(x[i].d) * y[i].d) * (float)vaddvq_s32(acc);
    }
    *out = sumf;
}

/* Q4_K/Q5_K: x = d*sc*q - dmin*m per 32-group; the min term comes from bsums. */
static inline int kquant_scales_mins(const block_q8_K *y, const uint8_t scales[K_SCALE_SIZE], int sc_out[8]) {
    int summ = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        hearth_kquant_scale_min(j, scales, &sc, &m);
        sc_out[j] = sc;
        summ += (y->bsums[2 * j] + y->bsums[2 * j + 1]) * m;
    }
    return summ;
}

static void neon_dot_q4_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q4_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sc[QK_K / 32];
        const int summ = kquant_scales_mins(&y[i], x[i].scales, sc);
        const int8_t *q8 = y[i].qs;
        int32x4_t acc = vdupq_n_s32(0);
        for (int j = 0; j < QK_K / 64; j++, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * j), b1 = vld1q_u8(x[i].qs + 32 * j + 16);
            const uint8x16_t lo = vdupq_n_u8(0x0F);
            acc = scaled32(acc, vreinterpretq_s8_u8(vandq_u8(b0, lo)), vreinterpretq_s8_u8(vandq_u8(b1, lo)),
                           q8, sc[2 * j]);
            acc = scaled32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)),
                           vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), q8 + 32, sc[2 * j + 1]);
        }
        sumf += (f16_val(x[i].d) * y[i].d) * (float)vaddvq_s32(acc);
        sumf -= (f16_val(x[i].dmin) * y[i].d) * (float)summ;
    }
    *out = sumf;
}

static void neon_dot_q5_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q5_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sc[QK_K / 32];
        const int summ = kquant_scales_mins(&y[i], x[i].scales, sc);
        const uint8x16_t hm0 = vld1q_u8(x[i].qh), hm1 = vld1q_u8(x[i].qh + 16);
        const int8_t *q8 = y[i].qs;
        int32x4_t acc = vdupq_n_s32(0);
        for (int j = 0; j < QK_K / 64; j++, q8 += 64) {
            const uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * j), b1 = vld1q_u8(x[i].qs + 32 * j + 16);
            const uint8x16_t lo = vdupq_n_u8(0x0F), sixteen = vdupq_n_u8(16);
            /* Bit 2j of qh[l] adds 16 to the low nibble's level, bit 2j+1 to the high one's. */
            const uint8x16_t m0 = vdupq_n_u8((uint8_t)(1u << (2 * j))),
                             m1 = vdupq_n_u8((uint8_t)(2u << (2 * j)));
            const uint8x16_t l0 = vorrq_u8(vandq_u8(b0, lo), vandq_u8(vtstq_u8(hm0, m0), sixteen));
            const uint8x16_t l1 = vorrq_u8(vandq_u8(b1, lo), vandq_u8(vtstq_u8(hm1, m0), sixteen));
            const uint8x16_t h0 = vorrq_u8(vshrq_n_u8(b0, 4), vandq_u8(vtstq_u8(hm0, m1), sixteen));
            const uint8x16_t h1 = vorrq_u8(vshrq_n_u8(b1, 4), vandq_u8(vtstq_u8(hm1, m1), sixteen));
            acc = scaled32(acc, vreinterpretq_s8_u8(l0), vreinterpretq_s8_u8(l1), q8, sc[2 * j]);
            acc = scaled32(acc, vreinterpretq_s8_u8(h0), vreinterpretq_s8_u8(h1), q8 + 32, sc[2 * j + 1]);
        }
        sumf += (f16_val(x[i].d) * y[i].d) * (float)vaddvq_s32(acc);
        sumf -= (f16_val(x[i].dmin) * y[i].d) * (float)summ;
    }
    *out = sumf;
}

static void neon_dot_q6_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q6_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        int32x4_t acc = vdupq_n_s32(0);
        /* Per 128 elements: 64 bytes of low nibbles, 32 bytes of 2-bit highs;
         * element 32*k + l takes nibble (k >> 1) of ql[l + 32*(k & 1)] and
         * bits 2k..2k+1 of qh[l], minus 32. */
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32, q8 += 128, sc += 8) {
            const uint8x16_t lo = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
            const int8x16_t bias = vdupq_n_s8(32);
            const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
            const uint8x16_t a0 = vld1q_u8(ql), a1 = vld1q_u8(ql + 16), b0 = vld1q_u8(ql + 32),
                             b1 = vld1q_u8(ql + 48);
#define Q6_LEVEL(nib, hb)                                                                                    \
    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8((nib), vshlq_n_u8(vandq_u8((hb), three), 4))), bias)
            acc = scaled_pair16(acc, Q6_LEVEL(vandq_u8(a0, lo), h0), Q6_LEVEL(vandq_u8(a1, lo), h1), q8,
                                sc[0], sc[1]);
            acc = scaled_pair16(acc, Q6_LEVEL(vandq_u8(b0, lo), vshrq_n_u8(h0, 2)),
                                Q6_LEVEL(vandq_u8(b1, lo), vshrq_n_u8(h1, 2)), q8 + 32, sc[2], sc[3]);
            acc = scaled_pair16(acc, Q6_LEVEL(vshrq_n_u8(a0, 4), vshrq_n_u8(h0, 4)),
                                Q6_LEVEL(vshrq_n_u8(a1, 4), vshrq_n_u8(h1, 4)), q8 + 64, sc[4], sc[5]);
            acc = scaled_pair16(acc, Q6_LEVEL(vshrq_n_u8(b0, 4), vshrq_n_u8(h0, 6)),
                                Q6_LEVEL(vshrq_n_u8(b1, 4), vshrq_n_u8(h1, 6)), q8 + 96, sc[6], sc[7]);
#undef Q6_LEVEL
        }
        sumf += (f16_val(x[i].d) * y[i].d) * (float)vaddvq_s32(acc);
    }
    *out = sumf;
}

static hearth_vec_dot_fn neon_int_vec_dot(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_Q8_0: return neon_dot_q8_0;
    case HEARTH_Q4_0: return neon_dot_q4_0;
    case HEARTH_Q4_1: return neon_dot_q4_1;
    case HEARTH_Q5_0: return neon_dot_q5_0;
    case HEARTH_Q5_1: return neon_dot_q5_1;
    case HEARTH_Q2_K: return neon_dot_q2_K;
    case HEARTH_Q3_K: return neon_dot_q3_K;
    case HEARTH_Q4_K: return neon_dot_q4_K;
    case HEARTH_Q5_K: return neon_dot_q5_K;
    case HEARTH_Q6_K: return neon_dot_q6_K;
    default: return NULL;
    }
}

// ---------------------------------------------------------------- GEMM tiles (Q8_0, Q4_0)

/* 4 weight rows x 4 tokens per inner tile: each block's 32 weight bytes of
 * a row are loaded (and for Q4_0 unpacked) once for 4 tokens. The 16 block
 * sums are reduced so that lane r of sums[t] is the sum of row r with token
 * t, then each lane applies the vec_dot kernel's float operations, so every
 * output equals neon_dot_q8_0/q4_0 of its pair bit for bit. Pairs outside
 * full tiles go through the vec_dot kernel itself. */
#define TILE 4
#define GEMM_MAX_ROWS 16
#define GEMM_MAX_TOKS 16

/* Lane k of the result = sum of the lanes of v[k]. */
static inline int32x4_t reduce4(const int32x4_t v[4]) {
    return vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3]));
}

static void gemm_tile_4x4(int is_q4, int64_t nb, const char *w, size_t w_stride, const char *a,
                          size_t a_stride, float *out, size_t out_stride) {
    float32x4_t sumf[TILE];
    for (int t = 0; t < TILE; t++)
        sumf[t] = vdupq_n_f32(0);
    for (int64_t ib = 0; ib < nb; ib++) {
        int8x16_t wl[TILE], wh[TILE];
        float dw[TILE];
        for (int r = 0; r < TILE; r++) {
            if (is_q4) {
                const block_q4_0 *x = (const block_q4_0 *)(w + (size_t)r * w_stride) + ib;
                q4_0_levels(x, &wl[r], &wh[r]);
                dw[r] = f16_val(x->d);
            } else {
                const block_q8_0 *x = (const block_q8_0 *)(w + (size_t)r * w_stride) + ib;
                wl[r] = vld1q_s8(x->qs);
                wh[r] = vld1q_s8(x->qs + 16);
                dw[r] = f16_val(x->d);
            }
        }
        const float32x4_t dx = vld1q_f32(dw);
        for (int t = 0; t < TILE; t++) {
            const block_q8_0 *y = (const block_q8_0 *)(a + (size_t)t * a_stride) + ib;
            const int8x16_t yl = vld1q_s8(y->qs), yh = vld1q_s8(y->qs + 16);
            int32x4_t p[TILE];
            for (int r = 0; r < TILE; r++)
                p[r] = dot16(dot16(vdupq_n_s32(0), wl[r], yl), wh[r], yh);
            const float32x4_t s = vcvtq_f32_s32(reduce4(p));
            const float32x4_t dy = vdupq_n_f32(f16_val(y->d));
            /* Q4_0: (sumi * dx) * dy; Q8_0: sumi * (dx * dy), as the vec_dot kernels. */
            const float32x4_t v = is_q4 ? vmulq_f32(vmulq_f32(s, dx), dy) : vmulq_f32(s, vmulq_f32(dx, dy));
            sumf[t] = vaddq_f32(sumf[t], v);
        }
    }
    for (int t = 0; t < TILE; t++)
        vst1q_f32(out + (size_t)t * out_stride, sumf[t]);
}

static void gemm_run(int is_q4, int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                     size_t a_stride, int nt, float *out, size_t out_stride) {
    const hearth_vec_dot_fn pair = is_q4 ? neon_dot_q4_0 : neon_dot_q8_0;
    const char *wb = w, *ab = a;
    const int nr4 = nr - nr % TILE, nt4 = nt - nt % TILE;
    for (int t = 0; t < nt4; t += TILE)
        for (int r = 0; r < nr4; r += TILE)
            gemm_tile_4x4(is_q4, n / QK8_0, wb + (size_t)r * w_stride, w_stride, ab + (size_t)t * a_stride,
                          a_stride, out + (size_t)t * out_stride + r, out_stride);
    for (int t = 0; t < nt; t++)
        for (int r = (t < nt4 ? nr4 : 0); r < nr; r++)
            pair(n, &out[(size_t)t * out_stride + r], wb + (size_t)r * w_stride, ab + (size_t)t * a_stride);
}

static void neon_gemm_q8_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                           int nt, float *out, size_t out_stride) {
    gemm_run(0, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void neon_gemm_q4_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                           int nt, float *out, size_t out_stride) {
    gemm_run(1, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static hearth_gemm_fn neon_int_gemm(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = weight_type == HEARTH_Q8_0   ? neon_gemm_q8_0
                       : weight_type == HEARTH_Q4_0 ? neon_gemm_q4_0
                                                    : NULL;
    if (f) {
        *max_rows = GEMM_MAX_ROWS;
        *max_toks = GEMM_MAX_TOKS;
    }
    return f;
}

#endif
