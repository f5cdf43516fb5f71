/*
 * kquant_avx512.h - the AVX-512 Q4_K and Q6_K building blocks shared by the
 * per-pair dots (vec_dot_avx512.c) and the GEMM tiles (gemm_kquant_avx512.c):
 * unpacking one weight super-block into registers, and the exact int32 sums of
 * an unpacked block with one Q8_K activation block.
 *
 * Owned by the AVX-512 kernels; include only from files compiled with the
 * AVX-512 flags (avx512f/bw/vl/vnni). Static inline, no state.
 *
 * Invariant: both files form every integer through these functions, so the
 * int32 lane partition of a block's sum (16 lanes: lane l of 64-element step
 * k holds bytes 4l..4l+3 of that step, weighted by their group's scale) is
 * one definition. The integer sums are exact (no saturation is reachable:
 * maddubs pairs stay within +-16128, scales within 0..63 / -128..127), so a
 * lane's terms may be added in any order; the float operations are the
 * callers' and must stay in the per-pair kernels' order.
 */
#ifndef HEARTH_CPU_KQUANT_AVX512_H
#define HEARTH_CPU_KQUANT_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/cpu_quants.h"
#include "core/dtype.h"

/* The Q4_K / Q6_K GEMM tiles of gemm_kquant_avx512.c (hearth_gemm_fn, bit-
 * identical to the per-pair dots of vec_dot_avx512.c) and the tile they
 * accept; NULL for other types. hearth_cpu_gemm_avx512 returns them. */
enum { KQ512_MAX_ROWS = 32, KQ512_MAX_TOKS = 64 };
hearth_gemm_fn hearth_cpu_gemm_kquant_avx512(hearth_dtype weight_type);

/* Q4_K/Q5_K's 8 six-bit scales and 8 six-bit mins, as 16 uint8: sc0..7, m0..7. */
static inline __m128i kq512_scales_mins(const uint8_t scales[K_SCALE_SIZE]) {
    uint32_t a[3];
    memcpy(a, scales, sizeof a);
    const uint32_t six = 0x3F3F3F3Fu, lo = 0x0F0F0F0Fu, two = 0x03030303u;
    const uint32_t sc47 = (a[2] & lo) | (((a[0] >> 6) & two) << 4);
    const uint32_t mn47 = ((a[2] >> 4) & lo) | (((a[1] >> 6) & two) << 4);
    return _mm_setr_epi32((int)(a[0] & six), (int)sc47, (int)(a[1] & six), (int)mn47);
}

/* One Q4_K super-block unpacked. q[j] covers elements 64j..64j+63 (the low
 * nibbles of 32 packed bytes, then their high nibbles), sc[j] the int16 scale
 * of each int16 lane of step j (lanes 0..15: scale 2j, 16..31: scale 2j + 1).
 * Returns sc0..7 | m0..7 as int16 (the mins are the upper 128 bits). */
static inline __m256i kq512_q4_K_unpack(const block_q4_K *x, __m512i q[4], __m512i sc[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i pick = _mm512_set_epi16(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* lanes 31..16 */
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i sm16 = _mm256_cvtepu8_epi16(kq512_scales_mins(x->scales));
    const __m512i s = _mm512_castsi256_si512(sm16);
    for (int j = 0; j < QK_K / 64; j++) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        q[j] =
            _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(b), _mm256_srli_epi16(b, 4), 1), m4);
        sc[j] = _mm512_permutexvar_epi16(_mm512_add_epi16(pick, _mm512_set1_epi16((short)(2 * j))), s);
    }
    return sm16;
}

/* The 16 exact int32 lane sums of an unpacked Q4_K block with activations a
 * (QK_K int8): lane l = sum over steps j of scale * (4 nibble x byte products). */
static inline __m512i kq512_q4_K_sumi(const __m512i q[4], const __m512i sc[4], const int8_t *a) {
    __m512i sumi = _mm512_setzero_si512();
    for (int j = 0; j < QK_K / 64; j++)
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q[j], _mm512_loadu_si512(a + 64 * j)), sc[j]);
    return sumi;
}

/* The Q4_K min term's integer: sum over the 8 groups of m_g * (sum of the
 * activation's 32 values of group g), from the mins (int16, as returned by
 * kq512_q4_K_unpack's upper half) and the activation's 16-value bsums. */
static inline int32_t kq512_q4_K_min_isum(__m256i sm16, const int16_t bsums[QK_K / 16]) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i g = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i pm = _mm_madd_epi16(_mm256_extracti128_si256(sm16, 1), g);
    return _mm_cvtsi128_si32(pm) + _mm_extract_epi32(pm, 1) + _mm_extract_epi32(pm, 2) +
           _mm_extract_epi32(pm, 3);
}

/* One Q6_K super-block unpacked: q[k] holds the 6-bit levels 0..63 of
 * elements 64k..64k+63 (per 128-element half h: 64 bytes of low nibbles ql
 * and 32 bytes of high bit pairs qh make [ql & 15 | qh bits 0-1, ql+32 & 15 |
 * bits 2-3] for step 2h and [ql >> 4 | bits 4-5, ql+32 >> 4 | bits 6-7] for
 * step 2h + 1); sc[k] the int16 scale of each int16 lane (lane l: scale
 * 4k + l / 8). */
static inline void kq512_q6_K_unpack(const block_q6_K *x, __m512i q[4], __m512i sc[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i mask_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
    const __m512i mask_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
    const __m512i shl_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pick = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, /* lanes 31..16 */
                                          1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i s =
        _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
    for (int half = 0; half < 2; half++) {
        const __m512i l = _mm512_loadu_si512(x->ql + 64 * half);
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * half)));
        q[2 * half] =
            _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, mask_a), shl_a));
        q[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                          _mm512_srlv_epi16(_mm512_and_si512(h, mask_b), shr_b));
    }
    for (int k = 0; k < 4; k++)
        sc[k] = _mm512_permutexvar_epi16(_mm512_add_epi16(pick, _mm512_set1_epi16((short)(4 * k))), s);
}

/* The 16 exact int32 lane sums of an unpacked Q6_K block with activations a:
 * level - 32 is applied as maddubs(q, a) - maddubs(32, a). */
static inline __m512i kq512_q6_K_sumi(const __m512i q[4], const __m512i sc[4], const int8_t *a) {
    const __m512i m32 = _mm512_set1_epi8(32);
    __m512i sumi = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        const __m512i a8 = _mm512_loadu_si512(a + 64 * k);
        const __m512i p16 = _mm512_sub_epi16(_mm512_maddubs_epi16(q[k], a8), _mm512_maddubs_epi16(m32, a8));
        sumi = _mm512_dpwssd_epi32(sumi, p16, sc[k]);
    }
    return sumi;
}

/* The same 16 lane sums in the form the GEMM tiles use, with the weights
 * signed and the activation unsigned: (q - 32) * a = (q - 32) * (a + 128) -
 * 128 * (q - 32). kq512_q6_K_signed turns an unpacked block into q - 32 and
 * the row-only term corr = sum_k madd(128 * (q - 32) pair sums, sc[k]);
 * kq512_q6_K_sumi_signed then needs per token only a byte flip (a ^ 0x80 =
 * a + 128), maddubs and dpwssd per step. Exact: maddubs pairs stay within
 * 255 * 32 * 2 = 16320, and the int32 lane values equal kq512_q6_K_sumi's. */
static inline __m512i kq512_q6_K_signed(__m512i q[4], const __m512i sc[4]) {
    const __m512i m32 = _mm512_set1_epi8(32), m128 = _mm512_set1_epi8((char)0x80);
    __m512i corr = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        q[k] = _mm512_sub_epi8(q[k], m32);
        corr = _mm512_dpwssd_epi32(corr, _mm512_maddubs_epi16(m128, q[k]), sc[k]);
    }
    return corr;
}

static inline __m512i kq512_q6_K_sumi_signed(const __m512i qs[4], const __m512i sc[4], __m512i corr,
                                             const int8_t *a) {
    const __m512i m128 = _mm512_set1_epi8((char)0x80);
    __m512i sumi = _mm512_setzero_si512();
    for (int k = 0; k < 4; k++) {
        const __m512i au = _mm512_xor_si512(_mm512_loadu_si512(a + 64 * k), m128);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(au, qs[k]), sc[k]);
    }
    return _mm512_sub_epi32(sumi, corr);
}

#endif
