/*
 * kquant_avx2.h - helpers shared by the AVX2 K-quant per-pair dots
 * (vec_dot_avx2.c) and the AVX2 K-quant GEMM tiles (gemm_kquant_avx2.c).
 *
 * Owned by the AVX2 kernels; include only from files compiled with
 * -mavx2 -mfma -mf16c. Header-only static inline functions, no state.
 *
 * Invariant: the tiles are bit-identical to the dots only because both use
 * these very functions for the parts whose float order matters (the final
 * horizontal sum) and for the scale unpacking (Q3_K, Q4_K/Q5_K, Q6_K/Q2_K
 * scale pairs); change them here, for both.
 */
#ifndef HEARTH_CPU_AVX2_KQUANT_AVX2_H
#define HEARTH_CPU_AVX2_KQUANT_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"

/* Horizontal float sum of 8 lanes: (i + i+4), then (i + i+2), then 0 + 1. */
static inline float hsum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline uint32_t kquant_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v; /* x86 is little-endian */
}

/* Q4_K/Q5_K's 8 six-bit scales and 8 six-bit mins, as 16 uint8 in the order
 * sc0..sc7, m0..m7 (hearth_kquant_scale_min, done on 32-bit words). */
static inline __m128i kquant_scales_mins(const uint8_t scales[K_SCALE_SIZE]) {
    const uint32_t a0 = kquant_load_u32(scales), a1 = kquant_load_u32(scales + 4),
                   a2 = kquant_load_u32(scales + 8);
    const uint32_t six = 0x3F3F3F3Fu, lo = 0x0F0F0F0Fu, two = 0x03030303u;
    const uint32_t sc03 = a0 & six, mn03 = a1 & six;
    const uint32_t sc47 = (a2 & lo) | (((a0 >> 6) & two) << 4);
    const uint32_t mn47 = ((a2 >> 4) & lo) | (((a1 >> 6) & two) << 4);
    return _mm_setr_epi32((int)sc03, (int)sc47, (int)mn03, (int)mn47);
}

/* The 8 activation sums of a Q8_K super-block's 32-element groups, as int16
 * (pairwise sums of its 16 bsums; |sum| <= 32 * 127, no wrap). */
static inline __m128i kquant_group_sums(const block_q8_K *y) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    return _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
}

/* sum over the 8 groups of min[g] * group_sum[g] (mins16: the 8 mins as
 * int16), exact. */
static inline int32_t kquant_min_dot(__m128i mins16, __m128i group_sums) {
    const __m128i pm = _mm_madd_epi16(mins16, group_sums);
    return _mm_cvtsi128_si32(pm) + _mm_extract_epi32(pm, 1) + _mm_extract_epi32(pm, 2) +
           _mm_extract_epi32(pm, 3);
}

/* 16 per-16-element scales (int8) -> int16 vector holding scale 2k in lanes
 * 0..7 and scale 2k+1 in lanes 8..15, matching a 32-element chunk after
 * maddubs (chunk k covers elements 32k..32k+31). */
static inline __m256i scale_pair_i16(__m128i scales_i8, int k) {
    const __m128i pick = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(2 * k + 1)),
                                        (long long)(0x0101010101010101ull * (uint64_t)(2 * k)));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales_i8, pick));
}

/* Q3_K's 16 signed 6-bit scales (-32..31) as 16 int8, in group order. */
static inline __m128i q3_K_scales(const uint8_t scales[12]) {
    const uint32_t a0 = kquant_load_u32(scales), a1 = kquant_load_u32(scales + 4),
                   a2 = kquant_load_u32(scales + 8);
    const uint32_t lo = 0x0F0F0F0Fu, two = 0x03030303u;
    const uint32_t w0 = (a0 & lo) | ((a2 & two) << 4);
    const uint32_t w1 = (a1 & lo) | (((a2 >> 2) & two) << 4);
    const uint32_t w2 = ((a0 >> 4) & lo) | (((a2 >> 4) & two) << 4);
    const uint32_t w3 = ((a1 >> 4) & lo) | (((a2 >> 6) & two) << 4);
    return _mm_sub_epi8(_mm_setr_epi32((int)w0, (int)w1, (int)w2, (int)w3), _mm_set1_epi8(32));
}

/* Q6_K: the 128 levels (0..63, before the -32) of one half of a super-block,
 * from its 64 low-nibble bytes ql and 32 high-bit bytes qh, as 4 vectors of
 * 32 bytes in group order (the dot and the tile read them alike). */
static inline void q6_K_levels(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql),
                  l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                           _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x03)), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x0C)), 2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8((char)0xC0)), 2));
}

#endif
