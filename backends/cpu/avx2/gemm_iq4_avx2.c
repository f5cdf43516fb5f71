/*
 * gemm_iq4_avx2.c - register-tiled AVX2 GEMM kernels of the CPU backend for
 * the weight types made of 32-element groups that gemm_avx2.c has no tile
 * for: IQ4_NL and Q5_0 (against Q8_0 activations), Q4_1 and Q5_1 (Q8_1),
 * IQ4_XS (Q8_K; a 256-element super-block is eight IQ4_NL-like groups). Up
 * to 16 weight rows x 64 activation rows per call.
 *
 * Owned by the GEMM kernels; compiled with -mavx2 -mfma -mf16c and reached
 * only through hearth_cpu_gemm_avx2 (gemm_avx2.c's getter hands these types
 * to hearth_cpu_gemm_iq4_avx2). No state; thread-safe.
 *
 * How (the scheme of gemm_avx2.c's Q8_0/Q4_0 tiles): vector lanes are weight
 * rows. For each 32-element group, each of 8 rows is unpacked once into its
 * 32 int8 levels (natural element order), and an 8x8 transpose of 32-bit
 * words makes vector k hold elements 4k..4k+3 of every row; a token's bytes
 * 4k..4k+3 are broadcast to all lanes, and 8 multiply-adds give every lane
 * its row's exact group sum, with no horizontal reduction. The unpacked group
 * then serves every token of the tile, so a weight block is decoded once per
 * 64 tokens instead of once per (row, token) pair. One token of IQ4_NL /
 * IQ4_XS goes per pair (measured in test_gemm on a cache-resident tile: from
 * 2 tokens the tile wins, x1.3 to x1.9 over per-pair at 2 tokens; at 1 it
 * does not); Q4_1/Q5_0/Q5_1 take the tile at one token too (gemm_groups).
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is
 * bit-identical to hearth_cpu_vec_dot of the pair, i.e. to the scalar kernel
 * (cpu_quants_ref.c): the same exact integer group sum, then the scalar
 * kernel's float operations per group (separate multiplies and adds; the
 * build's ISO C mode keeps the compiler from fusing them), added to a running
 * sum that starts at 0, in group order:
 *   Q5_0:   (d_w * d_a) * sumi             IQ4_NL: sumi * (d_w * d_a)
 *   Q4_1, Q5_1: (d_w * d_a) * sumi + m_w * s_a
 *   IQ4_XS: ((d_w * d_a) * (scale - 32)) * sumi
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "gemm_kernels.h"
#include "tile_avx2.h"
#include "simd_kernels.h"

enum { LANES = 8, GROUPS = 2, MAX_ROWS = LANES * GROUPS, MAX_TOKS = 64, FEW_TOKS = 1 };

typedef enum { K_Q4_1, K_Q5_0, K_Q5_1, K_IQ4_NL, K_IQ4_XS } kind;

/* 16 packed bytes -> 32 nibbles (low nibbles elements 0..15, high 16..31). */
static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes: byte k = 0x10 when bit k is set, else 0. */
static inline __m256i bit4_bytes(uint32_t bits) {
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                          2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* Group g (32 elements) of a weight row as 32 int8 levels. Q5_0 gives its
 * unsigned level q + 16 (0..31; the -16 is taken off the sum exactly as
 * 16 * sum(y)); IQ4 types give the signed table values. */
static inline __m256i group_levels(const kind k, const char *row, int64_t g) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hearth_iq4nl_values));
    switch (k) {
    case K_Q4_1: return nibbles32(((const block_q4_1 *)row)[g].qs);
    case K_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)row + g;
        return _mm256_or_si256(nibbles32(x->qs), bit4_bytes(load_u32(x->qh)));
    }
    case K_Q5_1: {
        const block_q5_1 *x = (const block_q5_1 *)row + g;
        return _mm256_or_si256(nibbles32(x->qs), bit4_bytes(load_u32(x->qh)));
    }
    case K_IQ4_NL: return _mm256_shuffle_epi8(table, nibbles32(((const block_iq4_nl *)row)[g].qs));
    default:
        return _mm256_shuffle_epi8(table, nibbles32(((const block_iq4_xs *)row)[g / 8].qs + 16 * (g % 8)));
    }
}

/* v[r] = 8 words of row r -> o[k] lane r = word k of row r. */
static inline void transpose_8x8_i32(const __m256i v[8], __m256i o[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { /* rows 4h..4h+3 */
        const __m256i *th = t + 4 * h;
        u[4 * h + 0] = _mm256_unpacklo_epi64(th[0], th[2]);
        u[4 * h + 1] = _mm256_unpackhi_epi64(th[0], th[2]);
        u[4 * h + 2] = _mm256_unpacklo_epi64(th[1], th[3]);
        u[4 * h + 3] = _mm256_unpackhi_epi64(th[1], th[3]);
    }
    for (int k = 0; k < 4; k++) {
        o[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        o[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

/* The activation bytes of group g of token row `act`. */
static inline const int8_t *act_group(const kind k, const char *act, int64_t g) {
    switch (k) {
    case K_Q4_1:
    case K_Q5_1: return ((const block_q8_1 *)act)[g].qs;
    case K_IQ4_XS: return ((const block_q8_K *)act)[g / 8].qs + 32 * (g % 8);
    default: return ((const block_q8_0 *)act)[g].qs;
    }
}

/* Per token, for group g: the activation scale (and Q8_1's s, Q5_0's byte sum). */
static inline void token_terms(const kind k, const char *act, int64_t g, float *d, float *s, int32_t *bsum) {
    switch (k) {
    case K_Q4_1:
    case K_Q5_1: {
        const block_q8_1 *y = (const block_q8_1 *)act + g;
        *d = _cvtsh_ss(y->d);
        *s = _cvtsh_ss(y->s);
        break;
    }
    case K_IQ4_XS: *d = ((const block_q8_K *)act)[g / 8].d; break;
    case K_Q5_0: {
        const block_q8_0 *y = (const block_q8_0 *)act + g;
        int32_t sum = 0;
        for (int j = 0; j < QK8_0; j++)
            sum += y->qs[j];
        *bsum = sum;
        *d = _cvtsh_ss(y->d);
        break;
    }
    default: *d = _cvtsh_ss(((const block_q8_0 *)act)[g].d); break;
    }
}

/* Exact group sums of 8 rows (lanes) against one token's 32 bytes yq. xq:
 * transposed levels; xa: their magnitudes (IQ4). Bounds (|y| <= 127 as every
 * converter gives): Q4_1 levels <= 15 keep 8 maddubs steps inside int16
 * (16 * 15 * 127), Q5 levels <= 31 keep 4 (8 * 31 * 127); IQ4's signed levels
 * (|q| <= 127) widen after every step. */
static inline __m256i group_sums(const kind k, const __m256i xq[8], const __m256i xa[8], const int8_t *yq) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (k == K_IQ4_NL || k == K_IQ4_XS) {
        __m256i s = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i yj = _mm256_set1_epi32((int)load_u32(yq + 4 * j));
            s = _mm256_add_epi32(
                s, _mm256_madd_epi16(_mm256_maddubs_epi16(xa[j], _mm256_sign_epi8(yj, xq[j])), ones));
        }
        return s;
    }
    if (k == K_Q4_1) {
        __m256i s16 = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++)
            s16 = _mm256_add_epi16(s16,
                                   _mm256_maddubs_epi16(xq[j], _mm256_set1_epi32((int)load_u32(yq + 4 * j))));
        return _mm256_madd_epi16(s16, ones);
    }
    __m256i h[2];
    for (int half = 0; half < 2; half++) {
        __m256i s16 = _mm256_setzero_si256();
        for (int j = 4 * half; j < 4 * half + 4; j++)
            s16 = _mm256_add_epi16(s16,
                                   _mm256_maddubs_epi16(xq[j], _mm256_set1_epi32((int)load_u32(yq + 4 * j))));
        h[half] = _mm256_madd_epi16(s16, ones);
    }
    return _mm256_add_epi32(h[0], h[1]);
}

/* Per-row weight terms of group g for 8 rows: d (f16 or the super-block's),
 * m (Q4_1/Q5_1), scale - 32 (IQ4_XS). */
static inline void weight_terms(const kind k, const char *const rows[LANES], int64_t g, __m256 *dw,
                                __m256 *mw, __m256 *sc) {
    hearth_f16 d[LANES], m[LANES];
    int32_t s[LANES];
    for (int i = 0; i < LANES; i++) {
        switch (k) {
        case K_Q4_1:
            d[i] = ((const block_q4_1 *)rows[i])[g].d, m[i] = ((const block_q4_1 *)rows[i])[g].m;
            break;
        case K_Q5_1:
            d[i] = ((const block_q5_1 *)rows[i])[g].d, m[i] = ((const block_q5_1 *)rows[i])[g].m;
            break;
        case K_Q5_0: d[i] = ((const block_q5_0 *)rows[i])[g].d; break;
        case K_IQ4_NL: d[i] = ((const block_iq4_nl *)rows[i])[g].d; break;
        default: {
            const block_iq4_xs *x = (const block_iq4_xs *)rows[i] + g / 8;
            d[i] = x->d;
            s[i] = hearth_iq4xs_scale(x, (int)(g % 8)) - 32;
        }
        }
    }
    *dw = f16x8(d);
    if (k == K_Q4_1 || k == K_Q5_1) *mw = f16x8(m);
    if (k == K_IQ4_XS) *sc = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)s));
}

/* The scalar kernel's float value of a group (see the file header). */
static inline __m256 group_value(const kind k, __m256i sumi, __m256 dw, __m256 mw, __m256 sc, float da,
                                 float sa) {
    const __m256 sf = _mm256_cvtepi32_ps(sumi), dd = _mm256_mul_ps(dw, _mm256_set1_ps(da));
    switch (k) {
    case K_Q4_1:
    case K_Q5_1: return _mm256_add_ps(_mm256_mul_ps(dd, sf), _mm256_mul_ps(mw, _mm256_set1_ps(sa)));
    case K_IQ4_XS: return _mm256_mul_ps(_mm256_mul_ps(dd, sc), sf);
    default: return _mm256_mul_ps(dd, sf);
    }
}

static inline __attribute__((always_inline)) void gemm_groups(const kind k, hearth_dtype type, int64_t n,
                                                              const void *w, size_t w_stride, int nr,
                                                              const void *a, size_t a_stride, int nt,
                                                              float *out, size_t out_stride) {
    /* One token goes per pair, row by row (one sequential stream per row),
     * except Q4_1/Q5_0/Q5_1, where the tile's 8 rows in lanes beat the
     * per-pair dot's serial block chain at one token too (test_gemm in cache
     * 1.09-1.24x; qwen2.5-0.5b q4_K, mostly Q5_0, tg64 at 1 thread 32.4 ->
     * 36.1 tok/s); for IQ4_XS the tile was 0.8x there. */
    const int few = k == K_Q4_1 || k == K_Q5_0 || k == K_Q5_1 ? 0 : FEW_TOKS;
    if (nt <= few) {
        const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx2(type);
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++)
                dot(n, &out[(size_t)t * out_stride + r], (const char *)w + (size_t)r * w_stride,
                    (const char *)a + (size_t)t * a_stride);
        return;
    }
    _Alignas(32) float acc[GROUPS][MAX_TOKS][LANES];
    memset(acc, 0, sizeof acc);
    float da[MAX_TOKS], sa[MAX_TOKS];
    int32_t bsum[MAX_TOKS];
    const int ng = (nr + LANES - 1) / LANES;
    const int64_t nb = n / 32;
    const char *rows[GROUPS][LANES]; /* rows past nr repeat the last one and are not stored */
    for (int r = 0; r < MAX_ROWS; r++)
        rows[r / LANES][r % LANES] = (const char *)w + (size_t)(r < nr ? r : nr - 1) * w_stride;
    for (int64_t g = 0; g < nb; g++) {
        prefetch_next_tile((const char *)w + (size_t)nr * w_stride, (size_t)nr * w_stride, g, nb);
        for (int t = 0; t < nt; t++)
            token_terms(k, (const char *)a + (size_t)t * a_stride, g, &da[t], &sa[t], &bsum[t]);
        for (int gi = 0; gi < ng; gi++) {
            __m256i lv[LANES], xq[LANES], xa[LANES];
            for (int i = 0; i < LANES; i++)
                lv[i] = group_levels(k, rows[gi][i], g);
            transpose_8x8_i32(lv, xq);
            if (k == K_IQ4_NL || k == K_IQ4_XS)
                for (int j = 0; j < LANES; j++)
                    xa[j] = _mm256_abs_epi8(xq[j]);
            __m256 dw, mw = _mm256_setzero_ps(), sc = _mm256_setzero_ps();
            weight_terms(k, rows[gi], g, &dw, &mw, &sc);
            for (int t = 0; t < nt; t++) {
                __m256i s = group_sums(k, xq, xa, act_group(k, (const char *)a + (size_t)t * a_stride, g));
                if (k == K_Q5_0) /* sum((u - 16) * y) = sum(u * y) - 16 * sum(y), exactly */
                    s = _mm256_sub_epi32(s, _mm256_set1_epi32(16 * bsum[t]));
                const __m256 v = group_value(k, s, dw, mw, sc, da[t], sa[t]);
                _mm256_store_ps(acc[gi][t], _mm256_add_ps(_mm256_load_ps(acc[gi][t]), v));
            }
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * out_stride + r] = acc[r / LANES][t][r % LANES];
}

#define DEFINE_GEMM(name, K, TYPE)                                                                           \
    static void name(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,      \
                     int nt, float *out, size_t out_stride) {                                                \
        gemm_groups(K, TYPE, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);                          \
    }
DEFINE_GEMM(gemm_q4_1, K_Q4_1, HEARTH_Q4_1)
DEFINE_GEMM(gemm_q5_0, K_Q5_0, HEARTH_Q5_0)
DEFINE_GEMM(gemm_q5_1, K_Q5_1, HEARTH_Q5_1)
DEFINE_GEMM(gemm_iq4_nl, K_IQ4_NL, HEARTH_IQ4_NL)
DEFINE_GEMM(gemm_iq4_xs, K_IQ4_XS, HEARTH_IQ4_XS)

hearth_gemm_fn hearth_cpu_gemm_iq4_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
    switch (weight_type) {
    case HEARTH_Q4_1: f = gemm_q4_1; break;
    case HEARTH_Q5_0: f = gemm_q5_0; break;
    case HEARTH_Q5_1: f = gemm_q5_1; break;
    case HEARTH_IQ4_NL: f = gemm_iq4_nl; break;
    case HEARTH_IQ4_XS: f = gemm_iq4_xs; break;
    default: return NULL;
    }
    if (max_rows) *max_rows = MAX_ROWS;
    if (max_toks) *max_toks = MAX_TOKS;
    return f;
}
