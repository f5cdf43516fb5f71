/*
 * vec_dot_avx512.c - AVX-512 (F, BW, VL, VNNI) row kernels of the CPU
 * backend: F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K weights. Every other
 * type, and every activation converter, falls back to the AVX2 family (the
 * getters below return NULL for them).
 *
 * Owned by the SIMD kernels; compiled with -mavx512f/bw/vl/dq/vnni plus the
 * AVX2 flags and reached only through hearth_cpu_vec_dot_avx512 (see
 * ../avx2/simd_kernels.h), which the dispatcher calls only on CPUs with
 * avx512f+bw+vl+vnni. No state; every function is thread-safe.
 *
 * Invariants (checked by tests/unit/backends/test_simd.c against cpu_quants_ref.c):
 *   - Q8_0/Q4_0 are bit-identical to the scalar kernels, like the AVX2 ones:
 *     8 blocks' exact integer sums at a time (VNNI vpdpbusd on two blocks per
 *     512-bit register), the scalar kernel's float operations per block, and
 *     the block floats added to one running sum in block order;
 *   - Q4_K/Q6_K form the scalar kernels' integer sums and differ only in float
 *     summation order; F32/F16/BF16 accumulate in float lanes;
 *   - each kernel reads exactly hearth_dtype_row_size(type, n) bytes of each
 *     row (plain-float tails use masked loads).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/avx2/simd_kernels.h"
#include "backends/cpu/avx512/kquant_avx512.h"

// ---------------------------------------------------------------- helpers

static inline float f16_scalar(hearth_f16 h) { return _cvtsh_ss(h); }

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

static inline int32_t hsum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* Two 32-byte rows as one 512-bit register: a in bytes 0..31, b in 32..63. */
static inline __m512i load2x256(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(a)), loadu256(b), 1);
}

// ---------------------------------------------------------------- plain floats

static void dot_f32(int64_t n, float *out, const void *w, const void *a) {
    const float *x = w, *y = a;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), acc1);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

static inline __m512 load_f16x16(const hearth_f16 *p) { return _mm512_cvtph_ps(loadu256(p)); }

static void dot_f16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_f16 *x = w, *y = a;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(load_f16x16(x + i), load_f16x16(y + i), acc0);
        acc1 = _mm512_fmadd_ps(load_f16x16(x + i + 16), load_f16x16(y + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(load_f16x16(x + i + 32), load_f16x16(y + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(load_f16x16(x + i + 48), load_f16x16(y + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(load_f16x16(x + i), load_f16x16(y + i), acc0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
        const __m512 yv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i));
        acc1 = _mm512_fmadd_ps(xv, yv, acc1);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

static inline __m512 bf16x16_to_ps(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

static void dot_bf16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_bf16 *x = w, *y = a;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(bf16x16_to_ps(loadu256(x + i)), bf16x16_to_ps(loadu256(y + i)), acc0);
        acc1 = _mm512_fmadd_ps(bf16x16_to_ps(loadu256(x + i + 16)), bf16x16_to_ps(loadu256(y + i + 16)), acc1);
        acc2 = _mm512_fmadd_ps(bf16x16_to_ps(loadu256(x + i + 32)), bf16x16_to_ps(loadu256(y + i + 32)), acc2);
        acc3 = _mm512_fmadd_ps(bf16x16_to_ps(loadu256(x + i + 48)), bf16x16_to_ps(loadu256(y + i + 48)), acc3);
    }
    for (; i + 16 <= n; i += 16)
        acc0 = _mm512_fmadd_ps(bf16x16_to_ps(loadu256(x + i)), bf16x16_to_ps(loadu256(y + i)), acc0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 xv = bf16x16_to_ps(_mm256_maskz_loadu_epi16(m, x + i));
        const __m512 yv = bf16x16_to_ps(_mm256_maskz_loadu_epi16(m, y + i));
        acc1 = _mm512_fmadd_ps(xv, yv, acc1);
    }
    *out = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

// ---------------------------------------------------------------- Q8_0 and Q4_0 (bit-identical)

/* Pairwise lane sums of two 16-lane vectors: lane k of the result is
 * a[2k] + a[2k+1] for k < 8 and b[2(k-8)] + b[2(k-8)+1] after, so a vector
 * holding blocks in runs of equal length keeps them in order, runs halved. */
static inline __m512i pair_sums(__m512i a, __m512i b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
}

/* Totals of 8 blocks given as 4 registers of 2 blocks x 8 partial sums. */
static inline __m256i block_totals8(__m512i s01, __m512i s23, __m512i s45, __m512i s67) {
    const __m512i r = pair_sums(pair_sums(s01, s23), pair_sums(s45, s67)); /* 8 blocks x 2 */
    return _mm512_castsi512_si256(pair_sums(r, r));
}

/* Eight f16 fields, 'stride' bytes apart, widened to floats. */
static inline __m256 f16x8_strided(const void *first, size_t stride) {
    const uint8_t *p = first;
    uint16_t h[8];
    for (int k = 0; k < 8; k++) memcpy(&h[k], p + (size_t)k * stride, sizeof h[k]);
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], (short)h[4], (short)h[5],
                                          (short)h[6], (short)h[7]));
}

/* acc + v[0] + ... + v[7], left to right. */
static inline float add8_in_order(float acc, __m256 v) {
    const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    acc += _mm_cvtss_f32(lo);
    acc += _mm_cvtss_f32(_mm_movehdup_ps(lo));
    acc += _mm_cvtss_f32(_mm_movehl_ps(lo, lo));
    acc += _mm_cvtss_f32(_mm_shuffle_ps(lo, lo, _MM_SHUFFLE(3, 3, 3, 3)));
    acc += _mm_cvtss_f32(hi);
    acc += _mm_cvtss_f32(_mm_movehdup_ps(hi));
    acc += _mm_cvtss_f32(_mm_movehl_ps(hi, hi));
    acc += _mm_cvtss_f32(_mm_shuffle_ps(hi, hi, _MM_SHUFFLE(3, 3, 3, 3)));
    return acc;
}

/* Signed int8 dot of two 64-lane registers as 16 int32 partial sums (4
 * products each): vpdpbusd needs an unsigned left side, so x is flipped to
 * x + 128 (xor 0x80) and 128 * sum(y) is taken off again. */
static inline __m512i dot_i8x64(__m512i x, __m512i y) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(x, bias), y);
    return _mm512_sub_epi32(p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, y));
}

/* The same for one block in 256 bits (block tails). */
static inline __m256i dot_i8x32(__m256i x, __m256i y) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static void dot_q8_0_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0;
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        __m512i s[4];
        for (int k = 0; k < 4; k++)
            s[k] = dot_i8x64(load2x256(x[i + 2 * k].qs, x[i + 2 * k + 1].qs),
                             load2x256(y[i + 2 * k].qs, y[i + 2 * k + 1].qs));
        const __m256 sumi = _mm256_cvtepi32_ps(block_totals8(s[0], s[1], s[2], s[3]));
        /* scalar: sumi * (d_w * d_a) */
        const __m256 dd = _mm256_mul_ps(f16x8_strided(&x[i].d, sizeof *x), f16x8_strided(&y[i].d, sizeof *y));
        sumf = add8_in_order(sumf, _mm256_mul_ps(sumi, dd));
    }
    for (; i < nb; i++) {
        const int sumi = hsum_i32x8(dot_i8x32(loadu256(x[i].qs), loadu256(y[i].qs)));
        sumf += (float)sumi * (f16_scalar(x[i].d) * f16_scalar(y[i].d));
    }
    *out = sumf;
}

/* Two Q4_0 blocks' nibbles in the byte order of two consecutive Q8_0 blocks:
 * [lo(b0) hi(b0) lo(b1) hi(b1)], 16 bytes each. */
static inline __m512i q4_0_nibbles2(const block_q4_0 *b0, const block_q4_0 *b1) {
    const __m256i packed = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)b1->qs), _mm_loadu_si128((const __m128i *)b0->qs));
    const __m512i lo = _mm512_castsi256_si512(packed), hi = _mm512_castsi256_si512(_mm256_srli_epi16(packed, 4));
    const __m512i order = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    return _mm512_and_si512(_mm512_permutex2var_epi64(lo, order, hi), _mm512_set1_epi8(0x0F));
}

static void dot_q4_0_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    const __m512i eight = _mm512_set1_epi8(8);
    float sumf = 0;
    int64_t i = 0;
    for (; i + 8 <= nb; i += 8) {
        __m512i s[4];
        for (int k = 0; k < 4; k++) {
            /* sum((q - 8) * a) = sum(q * a) - sum(8 * a), q unsigned 0..15 */
            const __m512i q = q4_0_nibbles2(&x[i + 2 * k], &x[i + 2 * k + 1]);
            const __m512i y8 = load2x256(y[i + 2 * k].qs, y[i + 2 * k + 1].qs);
            s[k] = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y8),
                                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, y8));
        }
        const __m256 sumi = _mm256_cvtepi32_ps(block_totals8(s[0], s[1], s[2], s[3]));
        /* scalar: sumi * d_w * d_a */
        const __m256 v = _mm256_mul_ps(_mm256_mul_ps(sumi, f16x8_strided(&x[i].d, sizeof *x)),
                                       f16x8_strided(&y[i].d, sizeof *y));
        sumf = add8_in_order(sumf, v);
    }
    for (; i < nb; i++) {
        const __m128i b = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
        const int sumi = hsum_i32x8(dot_i8x32(_mm256_sub_epi8(q, _mm256_set1_epi8(8)), loadu256(y[i].qs)));
        sumf += (float)sumi * f16_scalar(x[i].d) * f16_scalar(y[i].d);
    }
    *out = sumf;
}

// ---------------------------------------------------------------- K-quants against Q8_K

/* Q4_K: per super-block, the weights are unpacked once (kquant_avx512.h)
 * and their 16 int32 lane sums with the activation scaled by d into 16 float
 * lanes (one FMA per block); the min term is a scalar running sum. The GEMM
 * tiles (gemm_kquant_avx512.c) repeat exactly these float operations. */
static void dot_q4_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q4_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    __m512 acc = _mm512_setzero_ps();
    float accm = 0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        const float dmin = y[i].d * f16_scalar(x[i].dmin);
        __m512i q[4], sc[4];
        const __m256i sm16 = kq512_q4_K_unpack(&x[i], q, sc);
        /* min term: sum over groups of m_g * (activation sum of group g) */
        accm += dmin * (float)kq512_q4_K_min_isum(sm16, y[i].bsums);
        const __m512i sumi = kq512_q4_K_sumi(q, sc, y[i].qs);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *out = _mm512_reduce_add_ps(acc) - accm;
}

/* Q6_K: the same scheme without a min term (levels are centred by -32). */
static void dot_q6_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q6_K *x = w;
    const block_q8_K *y = act;
    const int64_t nb = n / QK_K;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const float d = y[i].d * f16_scalar(x[i].d);
        __m512i q[4], sc[4];
        kq512_q6_K_unpack(&x[i], q, sc);
        const __m512i sumi = kq512_q6_K_sumi(q, sc, y[i].qs);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    *out = _mm512_reduce_add_ps(acc);
}

// ---------------------------------------------------------------- getters

hearth_vec_dot_fn hearth_cpu_vec_dot_avx512(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_F32: return dot_f32;
    case HEARTH_F16: return dot_f16;
    case HEARTH_BF16: return dot_bf16;
    case HEARTH_Q8_0: return dot_q8_0_q8_0;
    case HEARTH_Q4_0: return dot_q4_0_q8_0;
    case HEARTH_Q4_K: return dot_q4_K_q8_K;
    case HEARTH_Q6_K: return dot_q6_K_q8_K;
    default: return NULL; /* the AVX2 kernel serves */
    }
}

hearth_quantize_act_fn hearth_cpu_quantize_act_avx512(hearth_dtype vec_dot_type) {
    (void)vec_dot_type;
    return NULL; /* the AVX2 converters are byte-identical and not the bottleneck */
}
