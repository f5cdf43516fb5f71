/*
 * vec_dot_avx2.c - AVX2 + FMA + F16C row kernels of the CPU backend: dot
 * products of every weight type with its activation type, and the activation
 * converters (F32, F16, BF16, Q8_0, Q8_1, Q8_K).
 *
 * Owned by the SIMD kernels; compiled with -mavx2 -mfma -mf16c and reached
 * only through hearth_cpu_vec_dot_avx2 / hearth_cpu_quantize_act_avx2 (see
 * simd_kernels.h), which the dispatcher calls only on CPUs that have all
 * three extensions. Nothing here holds state; every function is thread-safe.
 *
 * Invariants (checked by tests/unit/backends/test_simd.c against cpu_quants_ref.c):
 *   - integer kernels form exactly the integer block sums of the scalar
 *     kernels (int8 x int8 pair products stay inside int16 because
 *     activations are in -127..127, or the weight side is at most 6 bits);
 *     the 32-element block kernels also repeat the scalar float operations in
 *     order (bit-identical results), the K-quants add in another order;
 *   - activation converters write the same bytes as the scalar ones:
 *     Q8_0/Q8_1 use ggml's x86 rule q = round_half_even(x * (127/amax)),
 *     Q8_K uses q = min(127, round_half_even(x * (-127/max))), and the f16
 *     scales go through hearth_f32_to_f16 itself;
 *   - each kernel reads exactly hearth_dtype_row_size(type, n) bytes of each
 *     row (plain-float kernels handle any n, with a scalar tail).
 *
 * Common building block: an int8 x int8 dot of 32 lanes is done as
 * maddubs(|x|, sign(y, x)) (u8 x s8 -> pairs in s16) then madd with ones
 * (-> 8 x s32); when one side is known non-negative (nibbles, 6-bit levels)
 * maddubs takes it directly as the unsigned operand.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/cpu_iq.h"
#include "kquant_avx2.h"
#include "simd_kernels.h"

// ---------------------------------------------------------------- helpers

static inline float f16_scalar(hearth_f16 h) { return _cvtsh_ss(h); }

/* hsum_f32x8 and the Q4_K/Q5_K scale helpers: kquant_avx2.h (shared with the GEMM tiles) */

static inline int32_t hsum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Signed int8 dot of 32 lanes, as 8 int32 partial sums. |y| <= 127 required. */
static inline __m256i dot_i8x32(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Unsigned (0..127) x signed int8 dot of 32 lanes, as 8 int32 partial sums. */
static inline __m256i dot_u8i8x32(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* 16 packed bytes -> 32 nibbles: bytes 0..15 the low nibbles, 16..31 the high
 * ones (the element order of Q4_0/Q4_1/Q5_0/Q5_1 blocks). */
static inline __m256i unpack_nibbles32(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, byte k = 0xFF when bit k is set, else 0. */
static inline __m256i expand_bits32(uint32_t bits) {
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, /* lane 0: bytes 0,1 */
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3); /* lane 1: bytes 2,3 */
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v; /* x86 is little-endian: same as the reference's load_u32_le */
}

/* scale_pair_i16: kquant_avx2.h */

// ---------------------------------------------------------------- plain floats

/* Float kernels: 4 independent accumulators of 8 lanes, then a scalar tail. */
static void dot_f32(int64_t n, float *out, const void *w, const void *a) {
    const float *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *out = sum;
}

static inline __m256 load_f16x8(const hearth_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static void dot_f16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_f16 *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), load_f16x8(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), load_f16x8(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += f16_scalar(x[i]) * f16_scalar(y[i]);
    *out = sum;
}

static inline __m256 load_bf16x8(const hearth_bf16 *p) {
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

static void dot_bf16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_bf16 *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_bf16x8(x + i + 16), load_bf16x8(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_bf16x8(x + i + 24), load_bf16x8(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += hearth_bf16_to_f32_inline(x[i]) * hearth_bf16_to_f32_inline(y[i]);
    *out = sum;
}

// ---------------------------------------------------------------- 32-element blocks

/* The 32-element kernels are bit-identical to the scalar ones: the scalar
 * kernel adds one float per block to a single running sum, so these form the
 * exact integer sums of 4 blocks at once, turn them into the 4 per-block
 * floats with the scalar kernel's operations in its order (separate multiply
 * and add, no FMA), and add the 4 to the running sum in block order. The
 * serial add chain (one add per 32 elements) is the price of results that do
 * not depend on the ISA. */

/* Totals of 4 vectors of 8 int32 partial sums, as one vector of 4. */
static inline __m128i hsum4_i32x8(__m256i s0, __m256i s1, __m256i s2, __m256i s3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* Four f16 values widened to a float vector. */
static inline __m128 f16x4(hearth_f16 a, hearth_f16 b, hearth_f16 c, hearth_f16 d) {
    return _mm_cvtph_ps(_mm_setr_epi16((short)a, (short)b, (short)c, (short)d, 0, 0, 0, 0));
}

/* acc + v[0] + v[1] + v[2] + v[3], left to right. */
static inline float add4_in_order(float acc, __m128 v) {
    acc += _mm_cvtss_f32(v);
    acc += _mm_cvtss_f32(_mm_movehdup_ps(v));
    acc += _mm_cvtss_f32(_mm_movehl_ps(v, v));
    acc += _mm_cvtss_f32(_mm_shuffle_ps(v, v, _MM_SHUFFLE(3, 3, 3, 3)));
    return acc;
}

/* One kernel per type from three pieces: BLOCK_DOT(x, y) gives a block's 8
 * int32 partial sums, BLOCK_VALUES4(x, y, sumi_f) its 4 block floats from the
 * 4 exact block sums (as floats), BLOCK_VALUE1(x, y, sumi) one block's float. */
#define DEFINE_DOT_32(name, wtype, atype, BLOCK_DOT, BLOCK_VALUES4, BLOCK_VALUE1)              \
    static void name(int64_t n, float *out, const void *w, const void *a) {                    \
        const wtype *x = w;                                                                    \
        const atype *y = a;                                                                    \
        const int64_t nb = n / 32;                                                             \
        float sumf = 0;                                                                        \
        int64_t i = 0;                                                                         \
        for (; i + 4 <= nb; i += 4) {                                                          \
            const __m128i sumi = hsum4_i32x8(BLOCK_DOT(&x[i], &y[i]), BLOCK_DOT(&x[i + 1], &y[i + 1]), \
                                             BLOCK_DOT(&x[i + 2], &y[i + 2]), BLOCK_DOT(&x[i + 3], &y[i + 3])); \
            sumf = add4_in_order(sumf, BLOCK_VALUES4(&x[i], &y[i], _mm_cvtepi32_ps(sumi)));     \
        }                                                                                      \
        for (; i < nb; i++) sumf += BLOCK_VALUE1(&x[i], &y[i], hsum_i32x8(BLOCK_DOT(&x[i], &y[i]))); \
        *out = sumf;                                                                           \
    }

#define F16X4(p, field) f16x4((p)[0].field, (p)[1].field, (p)[2].field, (p)[3].field)

/* Q8_0: sumi * (d_w * d_a). */
static inline __m256i q8_0_block_dot(const block_q8_0 *x, const block_q8_0 *y) {
    return dot_i8x32(loadu256(x->qs), loadu256(y->qs));
}
static inline __m128 q8_0_values4(const block_q8_0 *x, const block_q8_0 *y, __m128 sumi) {
    return _mm_mul_ps(sumi, _mm_mul_ps(F16X4(x, d), F16X4(y, d)));
}
static inline float q8_0_value1(const block_q8_0 *x, const block_q8_0 *y, int sumi) {
    return (float)sumi * (f16_scalar(x->d) * f16_scalar(y->d));
}
DEFINE_DOT_32(dot_q8_0_q8_0, block_q8_0, block_q8_0, q8_0_block_dot, q8_0_values4, q8_0_value1)

/* Q4_0: levels nibble - 8; sumi * d_w * d_a. */
static inline __m256i q4_0_block_dot(const block_q4_0 *x, const block_q8_0 *y) {
    return dot_i8x32(_mm256_sub_epi8(unpack_nibbles32(x->qs), _mm256_set1_epi8(8)), loadu256(y->qs));
}
static inline __m128 q4_0_values4(const block_q4_0 *x, const block_q8_0 *y, __m128 sumi) {
    return _mm_mul_ps(_mm_mul_ps(sumi, F16X4(x, d)), F16X4(y, d));
}
static inline float q4_0_value1(const block_q4_0 *x, const block_q8_0 *y, int sumi) {
    return (float)sumi * f16_scalar(x->d) * f16_scalar(y->d);
}
DEFINE_DOT_32(dot_q4_0_q8_0, block_q4_0, block_q8_0, q4_0_block_dot, q4_0_values4, q4_0_value1)

/* Q4_1/Q5_1: unsigned levels plus a min m: (d_w * d_a) * sumi + m * s, with
 * s = d_a * sum(q_a) stored in the Q8_1 block. */
static inline __m256i q4_1_block_dot(const block_q4_1 *x, const block_q8_1 *y) {
    return dot_u8i8x32(unpack_nibbles32(x->qs), loadu256(y->qs));
}
static inline __m128 q4_1_values4(const block_q4_1 *x, const block_q8_1 *y, __m128 sumi) {
    const __m128 dd = _mm_mul_ps(F16X4(x, d), F16X4(y, d));
    return _mm_add_ps(_mm_mul_ps(dd, sumi), _mm_mul_ps(F16X4(x, m), F16X4(y, s)));
}
static inline float q4_1_value1(const block_q4_1 *x, const block_q8_1 *y, int sumi) {
    return (f16_scalar(x->d) * f16_scalar(y->d)) * (float)sumi + f16_scalar(x->m) * f16_scalar(y->s);
}
DEFINE_DOT_32(dot_q4_1_q8_1, block_q4_1, block_q8_1, q4_1_block_dot, q4_1_values4, q4_1_value1)

/* Q5_0: level = nibble | bit4 << 4, minus 16; as int8 that is the nibble
 * itself when bit 4 is set, else nibble | 0xF0. (d_w * d_a) * sumi. */
static inline __m256i q5_0_block_dot(const block_q5_0 *x, const block_q8_0 *y) {
    const __m256i hi = _mm256_andnot_si256(expand_bits32(load_u32(x->qh)), _mm256_set1_epi8((char)0xF0));
    return dot_i8x32(_mm256_or_si256(unpack_nibbles32(x->qs), hi), loadu256(y->qs));
}
static inline __m128 q5_0_values4(const block_q5_0 *x, const block_q8_0 *y, __m128 sumi) {
    return _mm_mul_ps(_mm_mul_ps(F16X4(x, d), F16X4(y, d)), sumi);
}
static inline float q5_0_value1(const block_q5_0 *x, const block_q8_0 *y, int sumi) {
    return (f16_scalar(x->d) * f16_scalar(y->d)) * (float)sumi;
}
DEFINE_DOT_32(dot_q5_0_q8_0, block_q5_0, block_q8_0, q5_0_block_dot, q5_0_values4, q5_0_value1)

/* Q5_1: level = nibble | bit4 << 4 (0..31). */
static inline __m256i q5_1_block_dot(const block_q5_1 *x, const block_q8_1 *y) {
    const __m256i hi = _mm256_and_si256(expand_bits32(load_u32(x->qh)), _mm256_set1_epi8(0x10));
    return dot_u8i8x32(_mm256_or_si256(unpack_nibbles32(x->qs), hi), loadu256(y->qs));
}
static inline __m128 q5_1_values4(const block_q5_1 *x, const block_q8_1 *y, __m128 sumi) {
    const __m128 dd = _mm_mul_ps(F16X4(x, d), F16X4(y, d));
    return _mm_add_ps(_mm_mul_ps(dd, sumi), _mm_mul_ps(F16X4(x, m), F16X4(y, s)));
}
static inline float q5_1_value1(const block_q5_1 *x, const block_q8_1 *y, int sumi) {
    return (f16_scalar(x->d) * f16_scalar(y->d)) * (float)sumi + f16_scalar(x->m) * f16_scalar(y->s);
}
DEFINE_DOT_32(dot_q5_1_q8_1, block_q5_1, block_q8_1, q5_1_block_dot, q5_1_values4, q5_1_value1)

/* IQ4_NL: each nibble indexes the 16 signed levels (one byte shuffle), then the
 * Q8_0 int8 dot; the floats are Q8_0's: sumi * (d_w * d_a). */
static inline __m256i iq4_levels32(const uint8_t *qs) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hearth_iq4nl_values));
    return _mm256_shuffle_epi8(table, unpack_nibbles32(qs));
}
static inline __m256i iq4_nl_block_dot(const block_iq4_nl *x, const block_q8_0 *y) {
    return dot_i8x32(iq4_levels32(x->qs), loadu256(y->qs));
}
static inline __m128 iq4_nl_values4(const block_iq4_nl *x, const block_q8_0 *y, __m128 sumi) {
    return _mm_mul_ps(sumi, _mm_mul_ps(F16X4(x, d), F16X4(y, d)));
}
static inline float iq4_nl_value1(const block_iq4_nl *x, const block_q8_0 *y, int sumi) {
    return (float)sumi * (f16_scalar(x->d) * f16_scalar(y->d));
}
DEFINE_DOT_32(dot_iq4_nl_q8_0, block_iq4_nl, block_q8_0, iq4_nl_block_dot, iq4_nl_values4, iq4_nl_value1)

// ---------------------------------------------------------------- K-quants against Q8_K

/* Q2_K: 2-bit levels, 16 groups of 16 with a 4-bit scale (low nibble) and a
 * 4-bit min (high nibble); dot = d_a*(d*sum(sc*q*qa) - dmin*sum(min*bsum)). */
static void dot_q2_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q2_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < nb; i++) {
        const float dall = y[i].d * f16_scalar(x[i].d);
        const float dmin = y[i].d * f16_scalar(x[i].dmin);
        const __m128i sc_mn = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i sc = _mm_and_si128(sc_mn, _mm_set1_epi8(0x0F));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc_mn, 4), _mm_set1_epi8(0x0F)));
        const __m256i bsums = loadu256(y[i].bsums);
        accm += dmin * (float)hsum_i32x8(_mm256_madd_epi16(mins, bsums));

        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q2 = loadu256(x[i].qs + 32 * half);
            for (int s = 0; s < 4; s++, q8 += 32) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * s), m3);
                const __m256i p16 = _mm256_maddubs_epi16(q, loadu256(q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, scale_pair_i16(sc, 4 * half + s)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum_f32x8(acc) - accm;
}

/* q3_K_scales: kquant_avx2.h */

/* Q3_K: level = 2 low bits - (high bit clear ? 4 : 0), i.e. -4..3. */
static void dot_q3_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q3_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        const __m128i sc = q3_K_scales(x[i].scales);
        const __m256i hm = loadu256(x[i].hmask);
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q3 = loadu256(x[i].qs + 32 * half);
            for (int s = 0; s < 4; s++, q8 += 32) {
                const __m256i bit = _mm256_set1_epi8((char)(1u << (4 * half + s)));
                const __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q3, 2 * s), m3);
                const __m256i sub = _mm256_andnot_si256(high, four);
                const __m256i y8 = loadu256(q8);
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y8), _mm256_maddubs_epi16(sub, y8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, scale_pair_i16(sc, 4 * half + s)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum_f32x8(acc);
}

/* Shared tail of a Q4_K/Q5_K super-block: the min term, and the int16
 * vector of the 8 scales repeated in both 128-bit lanes. */
static inline float kquant_min_term(const block_q8_K *y, __m128i sc_mn, __m256i *scales16) {
    const __m256i sm16 = _mm256_cvtepu8_epi16(sc_mn); /* sc0..7 | m0..7 */
    *scales16 = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    return (float)kquant_min_dot(_mm256_extracti128_si256(sm16, 1), kquant_group_sums(y));
}

/* Broadcast int16 lane j (0..7, same in both 128-bit lanes) to every lane. */
static inline __m256i bcast_i16(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * j) | ((2 * j + 1) << 8))));
}

static void dot_q4_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q4_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        const float dmin = y[i].d * f16_scalar(x[i].dmin);
        __m256i scales;
        accm += dmin * kquant_min_term(&y[i], kquant_scales_mins(x[i].scales), &scales);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = sumi0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i q = loadu256(q4);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i p0 = _mm256_maddubs_epi16(lo, loadu256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, loadu256(q8 + 32));
            sumi0 = _mm256_add_epi32(sumi0, _mm256_madd_epi16(p0, bcast_i16(scales, 2 * j)));
            sumi1 = _mm256_add_epi32(sumi1, _mm256_madd_epi16(p1, bcast_i16(scales, 2 * j + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
    }
    *out = hsum_f32x8(acc) - accm;
}

static void dot_q5_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q5_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        const float dmin = y[i].d * f16_scalar(x[i].dmin);
        __m256i scales;
        accm += dmin * kquant_min_term(&y[i], kquant_scales_mins(x[i].scales), &scales);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        /* Bits 2j and 2j+1 of qh[l] are the fifth bits of groups 2j and 2j+1;
         * shifting the 16-bit words right by 2 per step keeps each byte's own
         * bits in positions 0 and 1 (bits entering from the neighbour byte land
         * at 6 and 7 and are masked off). */
        __m256i hb = loadu256(x[i].qh);
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = sumi0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            const __m256i q = loadu256(q4);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(hb, two), 3);
            hb = _mm256_srli_epi16(hb, 2);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            const __m256i p0 = _mm256_maddubs_epi16(lo, loadu256(q8));
            const __m256i p1 = _mm256_maddubs_epi16(hi, loadu256(q8 + 32));
            sumi0 = _mm256_add_epi32(sumi0, _mm256_madd_epi16(p0, bcast_i16(scales, 2 * j)));
            sumi1 = _mm256_add_epi32(sumi1, _mm256_madd_epi16(p1, bcast_i16(scales, 2 * j + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
    }
    *out = hsum_f32x8(acc) - accm;
}

/* Q6_K: level = (4 low bits | 2 high bits << 4) - 32, 16 groups of 16 with
 * int8 scales. The -32 is applied as maddubs(q, a) - maddubs(32, a). */
static void dot_q6_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q6_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        const __m128i sc = _mm_loadu_si128((const __m128i *)x[i].scales);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        __m256i sumi0 = _mm256_setzero_si256(), sumi1 = sumi0;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
            __m256i q[4];
            q6_K_levels(ql, qh, q);
            for (int k = 0; k < 4; k++, q8 += 32) {
                const __m256i a8 = loadu256(q8);
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], a8), _mm256_maddubs_epi16(m32, a8));
                const __m256i s = _mm256_madd_epi16(p16, scale_pair_i16(sc, 4 * half + k));
                if (k & 1) sumi1 = _mm256_add_epi32(sumi1, s);
                else sumi0 = _mm256_add_epi32(sumi0, s);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_add_epi32(sumi0, sumi1)), acc);
    }
    *out = hsum_f32x8(acc);
}

/* IQ4_XS: the eight 32-groups of a super-block as exact integer sums, four at a
 * time; each becomes (d_w * d_a * (scale - 32)) * sumi and is added in group
 * order, as the scalar kernel does, so the result is bit-identical to it. */
static void dot_iq4_xs_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128 d4d8 = _mm_set1_ps(f16_scalar(x[i].d) * y[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i s[4];
            for (int g = 0; g < 4; g++) {
                const int ib = 4 * h + g;
                s[g] = dot_i8x32(iq4_levels32(x[i].qs + 16 * ib), loadu256(y[i].qs + 32 * ib));
            }
            const __m128 sumi = _mm_cvtepi32_ps(hsum4_i32x8(s[0], s[1], s[2], s[3]));
            const __m128 scale = _mm_cvtepi32_ps(_mm_setr_epi32(
                hearth_iq4xs_scale(&x[i], 4 * h) - 32, hearth_iq4xs_scale(&x[i], 4 * h + 1) - 32,
                hearth_iq4xs_scale(&x[i], 4 * h + 2) - 32, hearth_iq4xs_scale(&x[i], 4 * h + 3) - 32));
            sumf = add4_in_order(sumf, _mm_mul_ps(_mm_mul_ps(d4d8, scale), sumi));
        }
    }
    *out = sumf;
}

hearth_vec_dot_fn hearth_cpu_vec_dot_avx2(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_F32: return dot_f32;
    case HEARTH_F16: return dot_f16;
    case HEARTH_BF16: return dot_bf16;
    case HEARTH_Q4_0: return dot_q4_0_q8_0;
    case HEARTH_Q4_1: return dot_q4_1_q8_1;
    case HEARTH_Q5_0: return dot_q5_0_q8_0;
    case HEARTH_Q5_1: return dot_q5_1_q8_1;
    case HEARTH_Q8_0: return dot_q8_0_q8_0;
    case HEARTH_Q2_K: return dot_q2_K_q8_K;
    case HEARTH_Q3_K: return dot_q3_K_q8_K;
    case HEARTH_Q4_K: return dot_q4_K_q8_K;
    case HEARTH_Q5_K: return dot_q5_K_q8_K;
    case HEARTH_Q6_K: return dot_q6_K_q8_K;
    case HEARTH_IQ4_NL: return dot_iq4_nl_q8_0;
    case HEARTH_IQ4_XS: return dot_iq4_xs_q8_K;
    default: return hearth_cpu_vec_dot_iq_avx2(weight_type); /* IQ2/IQ3/IQ1: vec_dot_iq_avx2.c */
    }
}

// ---------------------------------------------------------------- activation converters

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static inline float hmax_f32x8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* round_half_even(v * scale) as int32 (exact: |v * scale| is at most ~127).
 * A product that is inf or NaN (a block so tiny that 127/amax overflows, or
 * an inf input) converts to INT32_MIN; it is mapped to 0, which is what the
 * scalar converters' float -> int8 casts give on x86. */
static inline __m256i round_scaled(__m256 v, __m256 scale) {
    const __m256i q =
        _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return _mm256_andnot_si256(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(INT32_MIN)), q);
}

/* 4 x 8 int32 (elements 0..31 in order) -> 32 int8 in order, saturating. */
static inline __m256i pack_i32_to_i8(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
    /* packs interleave 128-bit lanes; 32-bit groups come out as v0a v1a v2a v3a v0b v1b v2b v3b. */
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* One Q8_0/Q8_1 block: returns d and writes qs; *sum gets sum(qs) when asked. */
static inline float quantize_block32(const float *x, int8_t *qs, int *sum) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
                 v3 = _mm256_loadu_ps(x + 24);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3)));
    const float amax = hmax_f32x8(m);
    const float d = amax / 127.f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    const __m256i i0 = round_scaled(v0, id), i1 = round_scaled(v1, id), i2 = round_scaled(v2, id),
                  i3 = round_scaled(v3, id);
    _mm256_storeu_si256((__m256i *)qs, pack_i32_to_i8(i0, i1, i2, i3));
    if (sum) *sum = hsum_i32x8(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    return d;
}

static void act_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) y[i].d = hearth_f32_to_f16(quantize_block32(x, y[i].qs, NULL));
}

static void act_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        int sum;
        const float d = quantize_block32(x, y[i].qs, &sum);
        y[i].d = hearth_f32_to_f16(d);
        y[i].s = hearth_f32_to_f16(d * (float)sum);
    }
}

/* Q8_K: the scale comes from the signed value of largest magnitude (the first
 * one in element order, as the scalar loop keeps the first strict maximum). */
static void act_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax_f32x8(m);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m256 amax_v = _mm256_set1_ps(amax);
        float max = amax;
        for (int j = 0; j < QK_K; j += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), amax_v, _CMP_EQ_OQ));
            if (hit) {
                max = x[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        int32_t bs32[QK_K / 16];
        for (int j = 0; j < QK_K; j += 64) {
            __m256i v[8];
            for (int k = 0; k < 8; k++) v[k] = round_scaled(_mm256_loadu_ps(x + j + 8 * k), is);
            /* packs saturates the only out-of-range value (+128) to 127 = min(127, q). */
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack_i32_to_i8(v[0], v[1], v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j + 32), pack_i32_to_i8(v[4], v[5], v[6], v[7]));
            /* Clamp before summing so bsums see the stored values. */
            const __m256i c127 = _mm256_set1_epi32(127);
            __m256i g[4];
            for (int k = 0; k < 4; k++)
                g[k] = _mm256_add_epi32(_mm256_min_epi32(v[2 * k], c127), _mm256_min_epi32(v[2 * k + 1], c127));
            /* Transpose-reduce: 4 vectors of 8 partial sums -> 4 totals. */
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(g[0], g[1]), _mm256_hadd_epi32(g[2], g[3]));
            const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm_storeu_si128((__m128i *)(bs32 + j / 16), t);
        }
        for (int j = 0; j < QK_K / 16; j++) y[i].bsums[j] = (int16_t)bs32[j];
        y[i].d = 1 / iscale;
    }
}

static void act_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }

/* F16C rounds to nearest even exactly like hearth_f32_to_f16 (subnormals and
 * overflow to inf included); only NaN payloads differ, so 8-lane groups that
 * hold a NaN take the scalar path. */
static void act_f16(const float *x, void *dst, int64_t n) {
    hearth_f16 *y = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int k = 0; k < 8; k++) y[i + k] = hearth_f32_to_f16(x[i + k]);
        } else {
            _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
    }
    for (; i < n; i++) y[i] = hearth_f32_to_f16(x[i]);
}

/* hearth_f32_to_bf16 on 8 lanes: add 0x7FFF + lsb and truncate; NaN -> quiet. */
static void act_bf16(const float *x, void *dst, int64_t n) {
    hearth_bf16 *y = dst;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x40);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            const __m256i u = _mm256_loadu_si256((const __m256i *)(x + i + 8 * k));
            const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
            const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
            r[k] = _mm256_blendv_epi8(rounded, qnan, nan);
        }
        /* Values are 0..0xFFFF, so unsigned-saturating packs keep them. */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; i++) y[i] = hearth_f32_to_bf16(x[i]);
}

hearth_quantize_act_fn hearth_cpu_quantize_act_avx2(hearth_dtype vec_dot_type) {
    switch (vec_dot_type) {
    case HEARTH_F32: return act_f32;
    case HEARTH_F16: return act_f16;
    case HEARTH_BF16: return act_bf16;
    case HEARTH_Q8_0: return act_q8_0;
    case HEARTH_Q8_1: return act_q8_1;
    case HEARTH_Q8_K: return act_q8_K;
    default: return NULL;
    }
}
