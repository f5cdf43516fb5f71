/*
 * vec_dot_iq_avx2.c - AVX2 dot kernels of the grid IQ types (IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) against Q8_K.
 *
 * Per 32-value group the grid entries are gathered into one 256-bit vector of
 * magnitudes (IQ2/IQ3) or ternary values (IQ1), the sign bits are spread to
 * byte masks and applied to the activations, and maddubs/madd give 8 int32
 * partial sums: lanes 0-3 hold values 0..15, lanes 4-7 values 16..31, so a
 * per-half multiplier is one vector multiply. Each block's integer sums are
 * exactly the scalar kernel's (cpu_iq_ref.c); the float operations after them
 * are the same expressions in the same order, so every result is BIT-IDENTICAL
 * to the reference (tests/unit/backends/test_simd.c and test_iq_parity check).
 * Requires |activation| <= 127 (Q8_K guarantees it). Owns no state.
 */
#include <immintrin.h>
#include <string.h>

#include "backends/cpu/cpu_iq.h"
#include "core/dtype_iq.h"

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 32 bits (bit i: value i) to 32 byte masks (0xFF where the bit is set). */
static inline __m256i bits_to_bytes(uint32_t bits) {
    const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                         2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), idx);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, sel), sel);
}

/* 8 int32 partial sums of magnitude[j] * (sign bit j ? -a[j] : a[j]). */
static inline __m256i signed_dot(__m256i mag, uint32_t signs, const int8_t *a) {
    const __m256i q8 = _mm256_loadu_si256((const __m256i *)a);
    const __m256i s = _mm256_or_si256(bits_to_bytes(signs), _mm256_set1_epi8(1)); /* -1 or +1 */
    const __m256i p16 = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(q8, s));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Multipliers 2 s + 1 of the two halves, as lanes 0-3 and 4-7. */
static inline __m256i half_scales(int s1, int s2) {
    return _mm256_setr_epi32(2 * s1 + 1, 2 * s1 + 1, 2 * s1 + 1, 2 * s1 + 1, 2 * s2 + 1, 2 * s2 + 1,
                             2 * s2 + 1, 2 * s2 + 1);
}

static inline uint32_t signs4x7(uint32_t v) {
    return (uint32_t)hearth_iq_signs8(v) | (uint32_t)hearth_iq_signs8(v >> 7) << 8 |
           (uint32_t)hearth_iq_signs8(v >> 14) << 16 | (uint32_t)hearth_iq_signs8(v >> 21) << 24;
}

/* Group ib of one block: magnitudes, sign bits and raw scale fields. */
static inline __m256i group_iq2_xxs(const block_iq2_xxs *b, int ib, uint32_t *signs, int *s1, int *s2) {
    uint32_t aux[2];
    memcpy(aux, b->qs + 4 * ib, sizeof aux);
    *signs = signs4x7(aux[1]);
    *s1 = *s2 = (int)(aux[1] >> 28);
    const uint64_t *g = hearth_iq2xxs_grid;
    return _mm256_setr_epi64x((long long)g[aux[0] & 0xFF], (long long)g[(aux[0] >> 8) & 0xFF],
                              (long long)g[(aux[0] >> 16) & 0xFF], (long long)g[aux[0] >> 24]);
}

static inline __m256i group_iq2_xs(const block_iq2_xs *b, int ib, uint32_t *signs, int *s1, int *s2) {
    const uint16_t *q = b->qs + 4 * ib;
    *signs = (uint32_t)hearth_iq_signs8(q[0] >> 9) | (uint32_t)hearth_iq_signs8(q[1] >> 9) << 8 |
             (uint32_t)hearth_iq_signs8(q[2] >> 9) << 16 | (uint32_t)hearth_iq_signs8(q[3] >> 9) << 24;
    *s1 = b->scales[ib] & 0xF;
    *s2 = b->scales[ib] >> 4;
    const uint64_t *g = hearth_iq2xs_grid;
    return _mm256_setr_epi64x((long long)g[q[0] & 511], (long long)g[q[1] & 511], (long long)g[q[2] & 511],
                              (long long)g[q[3] & 511]);
}

static inline __m256i group_iq2_s(const block_iq2_s *b, int ib, uint32_t *signs, int *s1, int *s2) {
    const uint8_t *qs = b->qs + 4 * ib;
    const int qh = b->qh[ib];
    memcpy(signs, b->qs + QK_K / 8 + 4 * ib, sizeof *signs);
    *s1 = b->scales[ib] & 0xF;
    *s2 = b->scales[ib] >> 4;
    const uint64_t *g = hearth_iq2s_grid;
    return _mm256_setr_epi64x(
        (long long)g[qs[0] | ((qh << 8) & 0x300)], (long long)g[qs[1] | ((qh << 6) & 0x300)],
        (long long)g[qs[2] | ((qh << 4) & 0x300)], (long long)g[qs[3] | ((qh << 2) & 0x300)]);
}

static inline __m256i group_iq3_xxs(const block_iq3_xxs *b, int ib, uint32_t *signs, int *s1, int *s2) {
    const uint8_t *qs = b->qs + 8 * ib;
    uint32_t aux;
    memcpy(&aux, b->qs + QK_K / 4 + 4 * ib, sizeof aux);
    *signs = signs4x7(aux);
    *s1 = *s2 = (int)(aux >> 28);
    const uint32_t *g = hearth_iq3xxs_grid;
    return _mm256_setr_epi32((int)g[qs[0]], (int)g[qs[1]], (int)g[qs[2]], (int)g[qs[3]], (int)g[qs[4]],
                             (int)g[qs[5]], (int)g[qs[6]], (int)g[qs[7]]);
}

static inline __m256i group_iq3_s(const block_iq3_s *b, int ib, uint32_t *signs, int *s1, int *s2) {
    const uint8_t *qs = b->qs + 8 * ib;
    const int qh = b->qh[ib];
    memcpy(signs, b->signs + 4 * ib, sizeof *signs);
    *s1 = *s2 = (b->scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
    const uint32_t *g = hearth_iq3s_grid;
    return _mm256_setr_epi32((int)g[qs[0] | ((qh << 8) & 256)], (int)g[qs[1] | ((qh << 7) & 256)],
                             (int)g[qs[2] | ((qh << 6) & 256)], (int)g[qs[3] | ((qh << 5) & 256)],
                             (int)g[qs[4] | ((qh << 4) & 256)], (int)g[qs[5] | ((qh << 3) & 256)],
                             (int)g[qs[6] | ((qh << 2) & 256)], (int)g[qs[7] | ((qh << 1) & 256)]);
}

/* The IQ2/IQ3 kernel body for one type (GROUP: one of the group_* above). */
#define DEFINE_DOT_GRID(name, block_t, GROUP, factor)                                                        \
    static void name(int64_t n, float *out, const void *w, const void *act) {                                \
        const block_t *x = w;                                                                                \
        const block_q8_K *y = act;                                                                           \
        float sumf = 0.f;                                                                                    \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                             \
            const float d = _cvtsh_ss(x[i].d) * y[i].d;                                                      \
            __m256i acc = _mm256_setzero_si256();                                                            \
            for (int ib = 0; ib < QK_K / 32; ib++) {                                                         \
                uint32_t signs;                                                                              \
                int s1, s2;                                                                                  \
                const __m256i mag = GROUP(&x[i], ib, &signs, &s1, &s2);                                      \
                const __m256i p = signed_dot(mag, signs, y[i].qs + 32 * ib);                                 \
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p, half_scales(s1, s2)));                     \
            }                                                                                                \
            const int32_t bsum = hsum_i32(acc);                                                              \
            sumf += d * bsum;                                                                                \
        }                                                                                                    \
        *out = (factor)*sumf;                                                                                \
    }

DEFINE_DOT_GRID(dot_iq2_xxs, block_iq2_xxs, group_iq2_xxs, 0.125f)
DEFINE_DOT_GRID(dot_iq2_xs, block_iq2_xs, group_iq2_xs, 0.125f)
DEFINE_DOT_GRID(dot_iq2_s, block_iq2_s, group_iq2_s, 0.125f)
DEFINE_DOT_GRID(dot_iq3_xxs, block_iq3_xxs, group_iq3_xxs, 0.25f)
DEFINE_DOT_GRID(dot_iq3_s, block_iq3_s, group_iq3_s, 1.0f)

/* 8 int32 partial sums of t[j] * a[j] for ternary t (-1, 0, +1). */
static inline __m256i ternary_dot(__m256i t, __m256i q8) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_sign_epi8(q8, t)),
                             _mm256_set1_epi16(1));
}

static inline __m256i iq1_grid4(int i0, int i1, int i2, int i3) {
    const uint64_t *g = hearth_iq1s_grid;
    return _mm256_setr_epi64x((long long)g[i0], (long long)g[i1], (long long)g[i2], (long long)g[i3]);
}

static void dot_iq1_s(int64_t n, float *out, const void *w, const void *act) {
    const block_iq1_s *x = w;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        __m256i acc = _mm256_setzero_si256();
        int sumi1 = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint8_t *qs = x[i].qs + 4 * ib;
            const int qh = x[i].qh[ib], ls = 2 * ((qh >> 12) & 7) + 1;
            const __m256i t = iq1_grid4(qs[0] | ((qh << 8) & 0x700), qs[1] | ((qh << 5) & 0x700),
                                        qs[2] | ((qh << 2) & 0x700), qs[3] | ((qh >> 1) & 0x700));
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(ternary_dot(t, q8), _mm256_set1_epi32(ls)));
            sumi1 += ls * (qh & 0x8000 ? -1 : 1) * (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]);
        }
        const int sumi = hsum_i32(acc);
        sumf += _cvtsh_ss(x[i].d) * y[i].d * (sumi + HEARTH_IQ1_DELTA * sumi1);
    }
    *out = sumf;
}

static void dot_iq1_m(int64_t n, float *out, const void *w, const void *act) {
    const block_iq1_m *x = w;
    const block_q8_K *y = act;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint16_t sc[4];
        memcpy(sc, x[i].scales, sizeof sc);
        __m256i acc1 = _mm256_setzero_si256(), acc2 = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint8_t *qs = x[i].qs + 4 * ib, *qh = x[i].qh + 2 * ib;
            const __m256i t = iq1_grid4(qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                                        qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700));
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            /* shift signs: one bit per 8 values, spread to the 8 bytes */
            const int neg = hearth_iq1m_shift_signs(&x[i], ib);
            const uint32_t nb = (neg & 1 ? 0xFFu : 0) | (neg & 2 ? 0xFF00u : 0) | (neg & 4 ? 0xFF0000u : 0) |
                                (neg & 8 ? 0xFF000000u : 0);
            const __m256i dsign = _mm256_or_si256(bits_to_bytes(nb), _mm256_set1_epi8(1));
            const int s1 = (sc[ib / 2] >> (6 * (ib % 2))) & 7, s2 = (sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7;
            const __m256i ls = half_scales(s1, s2);
            acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(ternary_dot(t, q8), ls));
            acc2 = _mm256_add_epi32(acc2, _mm256_mullo_epi32(ternary_dot(dsign, q8), ls));
        }
        const int sumi1 = hsum_i32(acc1), sumi2 = hsum_i32(acc2);
        sumf += _cvtsh_ss(hearth_iq1m_d(&x[i])) * y[i].d * (sumi1 + HEARTH_IQ1_DELTA * sumi2);
    }
    *out = sumf;
}

hearth_vec_dot_fn hearth_cpu_vec_dot_iq_avx2(hearth_dtype weight_type) {
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
