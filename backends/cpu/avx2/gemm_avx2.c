/*
 * gemm_avx2.c - register-tiled GEMM kernels (AVX2 + FMA + F16C) of the CPU
 * backend: up to 16 weight rows x 64 activation rows per call, Q8_0 and Q4_0
 * weights against Q8_0 activations, F16 weights against F16 activations
 * (the K-quant tiles, which the getter at the end also hands out, are in
 * gemm_kquant_avx2.c; the Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS ones in
 * gemm_iq4_avx2.c).
 *
 * Owned by the GEMM kernels; compiled with -mavx2 -mfma -mf16c and reached
 * only through hearth_cpu_gemm (cpu_quants_ref.c). No state; thread-safe.
 *
 * How: vector lanes are weight rows. For each 32-element block, 8 rows are
 * transposed so that vector k holds bytes 4k..4k+3 of every row; an
 * activation's bytes 4k..4k+3 are broadcast to all lanes, and 8 such products
 * give each lane its row's exact block sum, with no horizontal reduction. The
 * transposed block then serves every token of the tile. One token (decode)
 * has its own kernel (gemm_one_token: 8 rows at a time, the activation's
 * block terms prepared once per call), also run token by token for 2 (Q8_0)
 * or up to 3 (Q4_0) tokens; rows past its length cap go per pair (see
 * gemm_few_tokens).
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is bit-identical
 * to the per-pair kernels (scalar, AVX2, AVX-512 alike): per pair the exact
 * integer block sum, then the scalar kernel's float operations per block
 * (Q8_0: sumi * (d_w * d_a); Q4_0: sumi * d_w * d_a, no FMA), added to a
 * running sum that starts at 0 in block order.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "gemm_kernels.h"
#include "kquant_avx2.h" /* hsum_f32x8: the F16 dot's own reduction */
#include "tile_avx2.h"
#include "simd_kernels.h"

enum { LANES = 8, GROUPS = 2, MAX_ROWS = LANES * GROUPS, MAX_TOKS = 64 };

/* Two 16-byte loads as one vector: lo in lanes 0..3, hi in lanes 4..7. */
static inline __m256i load_2x128(const void *lo, const void *hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/* 4x4 transpose of int32 inside each 128-bit half: out[k] element i = a[i] element k. */
static inline void transpose4(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i out[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
    const __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* 16 bytes of each of 8 rows -> 4 vectors, vector k lane r = bytes 4k..4k+3
 * of row r (rows r and r+4 share a load, so lane order is row order). */
static inline void transpose_8x16(const uint8_t *const p[LANES], __m256i out[4]) {
    transpose4(load_2x128(p[0], p[4]), load_2x128(p[1], p[5]), load_2x128(p[2], p[6]), load_2x128(p[3], p[7]),
               out);
}

/* Per token of the tile, for the current block: sum of the 32 activation
 * bytes (Q4_0's offset correction) and the activation scale. */
static inline void token_terms(const block_q8_0 *y, int32_t *bsum, float *d) {
    const __m256i s = _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)y->qs)),
        _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    *bsum = _mm_cvtsi128_si32(h);
    *d = _cvtsh_ss(y->d);
}

/* Copy the finished tile out: lanes beyond nr are padding. */
static void store_tile(const float (*acc)[MAX_TOKS][LANES], int nr, int nt, float *out, size_t out_stride) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * out_stride + r] = acc[r / LANES][t][r % LANES];
}

#define BLOCK_AT(base, stride, i, type, ib)                                                                  \
    ((const type *)((const char *)(base) + (size_t)(i) * (stride)) + (ib))

/* Up to FEW_TOKS tokens (a decode batch of two): the transposed block would
 * serve too few dots to pay for itself (measured: slower than per-pair at 1
 * and 2 tokens), so use the family's per-pair kernel, row by row (the rows
 * are then one sequential stream). Bit-identical all the same: the per-pair
 * kernels of these types equal the scalar kernel, as the tiled path does. */
enum { FEW_TOKS = 2 };

static void gemm_few_tokens(hearth_dtype type, int64_t n, const void *w, size_t w_stride, int nr,
                            const void *a, size_t a_stride, int nt, float *out, size_t out_stride) {
    const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx2(type);
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            dot(n, &out[(size_t)t * out_stride + r], (const char *)w + (size_t)r * w_stride,
                (const char *)a + (size_t)t * a_stride);
}

/* One token (decode). The per-pair kernel adds each block's float to one
 * running sum, a serial chain of one add per block and row. Here 8 rows go
 * together: per row and 8 blocks the 8 exact block sums land in one vector
 * (lane b = block b) by an hadd tree, the scalar kernel's float operations
 * turn them into the 8 block values, and add_blocks_8rows transposes 8 rows'
 * values so that one vector add per block advances all 8 running sums in
 * block order. The activation's per-block terms (scale as a float, and for
 * Q4_0 8 * sum of its bytes) are prepared once per call. Results are
 * bit-identical to the per-pair kernels. */
enum { DECODE_MAX_BLOCKS = 512 }; /* n up to 16384 (4 KB of stack); longer rows go per pair */

/* Up to this many tokens run the one-token kernel once per token (the tile's
 * rows are in cache after the first): measured on a cache-resident tile
 * (test_gemm), Q4_0 at 2 and 3 tokens 23 and 34 GMAC/s per pair / tiled
 * against ~38 this way, Q8_0 at 2 tokens 33 against ~36; from 3 (Q8_0) or 4
 * (Q4_0) tokens the transposed tile below wins. */
enum { Q8_0_ONE_TOKEN_MAX = 2, Q4_0_ONE_TOKEN_MAX = 3 };

/* Lane b = the total of s[b]'s 8 int32 lanes (exact, any order). */
static inline __m256i sum_8x8_i32(const __m256i s[8]) {
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    /* h0: [s0..s3 low halves | s0..s3 high halves], h1 the same for s4..s7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* 8 row vectors of 8 block values -> 8 running sums (lane r = row r), the
 * blocks added in order: one transpose, then one add per block. */
static inline __m256 add_blocks_8rows(__m256 acc, const __m256 vr[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(vr[0], vr[1]), t1 = _mm256_unpackhi_ps(vr[0], vr[1]);
    const __m256 t2 = _mm256_unpacklo_ps(vr[2], vr[3]), t3 = _mm256_unpackhi_ps(vr[2], vr[3]);
    const __m256 t4 = _mm256_unpacklo_ps(vr[4], vr[5]), t5 = _mm256_unpackhi_ps(vr[4], vr[5]);
    const __m256 t6 = _mm256_unpacklo_ps(vr[6], vr[7]), t7 = _mm256_unpackhi_ps(vr[6], vr[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u0, u4, 0x20));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u1, u5, 0x20));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u2, u6, 0x20));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u3, u7, 0x20));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u0, u4, 0x31));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u1, u5, 0x31));
    acc = _mm256_add_ps(acc, _mm256_permute2f128_ps(u2, u6, 0x31));
    return _mm256_add_ps(acc, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Scales of 8 consecutive blocks `size` bytes apart (d first in each). */
static inline __m256 scales8(const char *p, size_t size) {
    hearth_f16 d[LANES];
    for (int b = 0; b < LANES; b++)
        memcpy(&d[b], p + (size_t)b * size, sizeof d[b]);
    return f16x8(d);
}

static inline int32_t hsum_i32x8(__m256i v) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

/* Q4_0 block: the 16 int16 partials of sum(nibble * y), each at most
 * 2 * 15 * 128 in magnitude (the -8 offset is taken off the total as
 * 8 * sum(y)). The packed bytes go to both halves; the high half shifts by 4. */
static inline __m256i q4_0_partials16(const block_q4_0 *x, const block_q8_0 *y) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x->qs));
    const __m256i q =
        _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
    return _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)y->qs));
}

static inline __m256i q4_0_partials(const block_q4_0 *x, const block_q8_0 *y) {
    return _mm256_madd_epi16(q4_0_partials16(x, y), _mm256_set1_epi16(1));
}

/* Lane b = the total of s[b]'s 16 int16 lanes, for 8 Q4_0 blocks: an hadd
 * tree in 16 bits (after three levels a lane holds 16 of the partials,
 * |sum| <= 30720, so nothing wraps), then the two 128-bit halves widened and
 * added. Exact. */
static inline __m256i sum_8x16_i16(const __m256i s[8]) {
    const __m256i h0 = _mm256_hadd_epi16(_mm256_hadd_epi16(s[0], s[1]), _mm256_hadd_epi16(s[2], s[3]));
    const __m256i h1 = _mm256_hadd_epi16(_mm256_hadd_epi16(s[4], s[5]), _mm256_hadd_epi16(s[6], s[7]));
    const __m256i h = _mm256_hadd_epi16(h0, h1); /* each half: blocks 0..7, one partial each */
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(h)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(h, 1)));
}

/* Q8_0 block: the 8 int32 partials of sum(x * y) (|y| <= 127). */
static inline __m256i q8_0_partials(const block_q8_0 *x, const block_q8_0 *y) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);
    const __m256i yv = _mm256_loadu_si256((const __m256i *)y->qs);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(yv, xv)),
                             _mm256_set1_epi16(1));
}

static inline __attribute__((always_inline)) void gemm_one_token(const int is_q8, int64_t n, const void *w,
                                                                 size_t w_stride, int nr, const void *a,
                                                                 float *out) {
    const int64_t nb = n / QK8_0, n8 = nb / LANES * LANES;
    const size_t bsize = is_q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const block_q8_0 *y = a;
    _Alignas(32) int32_t bs[DECODE_MAX_BLOCKS];
    _Alignas(32) float da[DECODE_MAX_BLOCKS];
    for (int64_t b = 0; b < nb; b++)
        token_terms(&y[b], &bs[b], &da[b]);
    for (int r0 = 0; r0 < nr; r0 += LANES) {
        const int nrr = nr - r0 < LANES ? nr - r0 : LANES;
        const char *xr[LANES]; /* rows past nr repeat the last one and are not stored */
        for (int k = 0; k < LANES; k++)
            xr[k] = (const char *)w + (size_t)(r0 + (k < nrr ? k : nrr - 1)) * w_stride;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += LANES) {
            /* 8 short interleaved streams defeat the hardware prefetchers:
             * request the next 8 rows (the caller's next tile after the
             * last group) a slice per step */
            prefetch_next_tile((const char *)w + (size_t)(r0 + nrr) * w_stride, (size_t)LANES * w_stride,
                               i / LANES, n8 / LANES);
            const __m256 db = _mm256_load_ps(&da[i]);
            __m256 vr[LANES];
            for (int k = 0; k < LANES; k++) {
                const char *p = xr[k] + (size_t)i * bsize;
                __m256i s[LANES];
                for (int b = 0; b < LANES; b++)
                    s[b] = is_q8 ? q8_0_partials((const block_q8_0 *)p + b, &y[i + b])
                                 : q4_0_partials16((const block_q4_0 *)p + b, &y[i + b]);
                const __m256 dw = scales8(p, bsize);
                if (is_q8) { /* sumi * (d_w * d_a) */
                    vr[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(sum_8x8_i32(s)), _mm256_mul_ps(dw, db));
                } else { /* (sumi - 8 sum(y)) * d_w * d_a */
                    const __m256i sumi = _mm256_sub_epi32(
                        sum_8x16_i16(s), _mm256_slli_epi32(_mm256_load_si256((const __m256i *)&bs[i]), 3));
                    vr[k] = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sumi), dw), db);
                }
            }
            acc = add_blocks_8rows(acc, vr); /* column b = row r's block i + b, in block order */
        }
        _Alignas(32) float sums[LANES];
        _mm256_store_ps(sums, acc);
        for (int k = 0; k < nrr; k++) {
            float sumf = sums[k];
            for (int64_t i = n8; i < nb; i++) { /* the last nb % 8 blocks, one by one */
                if (is_q8) {
                    const block_q8_0 *x = (const block_q8_0 *)xr[k] + i;
                    sumf += (float)hsum_i32x8(q8_0_partials(x, &y[i])) * (_cvtsh_ss(x->d) * da[i]);
                } else {
                    const block_q4_0 *x = (const block_q4_0 *)xr[k] + i;
                    sumf +=
                        (float)(hsum_i32x8(q4_0_partials(x, &y[i])) - 8 * bs[i]) * _cvtsh_ss(x->d) * da[i];
                }
            }
            out[r0 + k] = sumf;
        }
    }
}

static void gemm_q8_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    if (nt <= Q8_0_ONE_TOKEN_MAX && n / QK8_0 <= DECODE_MAX_BLOCKS) { /* the rows stay in cache */
        for (int t = 0; t < nt; t++)
            gemm_one_token(1, n, w, w_stride, nr, (const char *)a + (size_t)t * a_stride,
                           out + (size_t)t * out_stride);
        return;
    }
    if (nt <= FEW_TOKS) {
        gemm_few_tokens(HEARTH_Q8_0, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
        return;
    }
    _Alignas(32) float acc[GROUPS][MAX_TOKS][LANES];
    memset(acc, 0, sizeof acc);
    const int ng = (nr + LANES - 1) / LANES;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        prefetch_next_tile((const char *)w + (size_t)nr * w_stride, (size_t)nr * w_stride, ib, n / QK8_0);
        for (int g = 0; g < ng; g++) {
            const uint8_t *lo[LANES], *hi[LANES];
            hearth_f16 dw16[LANES];
            for (int i = 0; i < LANES; i++) {
                const int r = g * LANES + i < nr ? g * LANES + i : nr - 1; /* pad with the last row */
                const block_q8_0 *x = BLOCK_AT(w, w_stride, r, block_q8_0, ib);
                lo[i] = (const uint8_t *)x->qs;
                hi[i] = (const uint8_t *)x->qs + 16;
                dw16[i] = x->d;
            }
            __m256i xs[8], xa[8]; /* signed weights, and their magnitudes */
            transpose_8x16(lo, xs);
            transpose_8x16(hi, xs + 4);
            for (int k = 0; k < 8; k++)
                xa[k] = _mm256_sign_epi8(xs[k], xs[k]);
            const __m256 dw = f16x8(dw16);
            for (int t = 0; t < nt; t++) {
                const block_q8_0 *y = BLOCK_AT(a, a_stride, t, block_q8_0, ib);
                __m256i s = _mm256_setzero_si256();
                for (int k = 0; k < 8; k++) {
                    const __m256i yk = _mm256_set1_epi32((int)load_u32(y->qs + 4 * k));
                    s = _mm256_add_epi32(
                        s, _mm256_madd_epi16(_mm256_maddubs_epi16(xa[k], _mm256_sign_epi8(yk, xs[k])), ones));
                }
                const __m256 v =
                    _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(y->d))));
                _mm256_store_ps(acc[g][t], _mm256_add_ps(_mm256_load_ps(acc[g][t]), v));
            }
        }
    }
    store_tile((const float(*)[MAX_TOKS][LANES])acc, nr, nt, out, out_stride);
}

static void gemm_q4_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    if (nt <= Q4_0_ONE_TOKEN_MAX && n / QK8_0 <= DECODE_MAX_BLOCKS) { /* the rows stay in cache */
        for (int t = 0; t < nt; t++)
            gemm_one_token(0, n, w, w_stride, nr, (const char *)a + (size_t)t * a_stride,
                           out + (size_t)t * out_stride);
        return;
    }
    if (nt <= FEW_TOKS) {
        gemm_few_tokens(HEARTH_Q4_0, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
        return;
    }
    _Alignas(32) float acc[GROUPS][MAX_TOKS][LANES];
    memset(acc, 0, sizeof acc);
    int32_t bsum[MAX_TOKS];
    float da[MAX_TOKS];
    const int ng = (nr + LANES - 1) / LANES;
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0F);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        prefetch_next_tile((const char *)w + (size_t)nr * w_stride, (size_t)nr * w_stride, ib, n / QK8_0);
        for (int t = 0; t < nt; t++)
            token_terms(BLOCK_AT(a, a_stride, t, block_q8_0, ib), &bsum[t], &da[t]);
        for (int g = 0; g < ng; g++) {
            const uint8_t *qs[LANES];
            hearth_f16 dw16[LANES];
            for (int i = 0; i < LANES; i++) {
                const int r = g * LANES + i < nr ? g * LANES + i : nr - 1;
                const block_q4_0 *x = BLOCK_AT(w, w_stride, r, block_q4_0, ib);
                qs[i] = x->qs;
                dw16[i] = x->d;
            }
            /* packed byte j holds elements j (low nibble) and j + 16 (high):
             * xq[k] = elements 4k..4k+3, xq[k + 4] = elements 16+4k..16+4k+3,
             * i.e. xq[k] pairs with activation bytes 4k..4k+3 for all k. */
            __m256i p[4], xq[8];
            transpose_8x16(qs, p);
            for (int k = 0; k < 4; k++) {
                xq[k] = _mm256_and_si256(p[k], low4);
                xq[k + 4] = _mm256_and_si256(_mm256_srli_epi16(p[k], 4), low4);
            }
            const __m256 dw = f16x8(dw16);
            for (int t = 0; t < nt; t++) {
                const block_q8_0 *y = BLOCK_AT(a, a_stride, t, block_q8_0, ib);
                /* nibbles 0..15 times int8: 8 steps of <= 2*15*128 stay inside int16 */
                __m256i s16 = _mm256_setzero_si256();
                for (int k = 0; k < 8; k++)
                    s16 = _mm256_add_epi16(
                        s16, _mm256_maddubs_epi16(xq[k], _mm256_set1_epi32((int)load_u32(y->qs + 4 * k))));
                /* sum((q - 8) * y) = sum(q * y) - 8 * sum(y), exactly */
                const __m256i s =
                    _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(8 * bsum[t]));
                const __m256 v =
                    _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dw), _mm256_set1_ps(da[t]));
                _mm256_store_ps(acc[g][t], _mm256_add_ps(_mm256_load_ps(acc[g][t]), v));
            }
        }
    }
    store_tile((const float(*)[MAX_TOKS][LANES])acc, nr, nt, out, out_stride);
}

/* F16 weights against F16 activations, bit-identical to this family's F16
 * dot kernel (vec_dot_avx2.c dot_f16), which keeps four 8-lane accumulators:
 * 8-element chunk c of each 32 goes into a[c], the leftover whole chunks
 * into a[0]; the result is hsum((a0 + a1) + (a2 + a3)) (lanes i + i+4, then
 * i + i+2, then 0 + 1), and the last n % 8 elements are then added one by
 * one as float products. Every accumulator is its own FMA chain, so the tile
 * runs one chain index k at a time over F16_ROWS x F16_TOKS pairs (12
 * accumulators, 3 activation and 1 weight vector: AVX2's 16 registers),
 * keeps each pair's finished a[k], and combines them as the dot kernel does.
 * Weights and tokens are widened as they are read (F16C). One token goes
 * per pair: decode reads each row once, and the dot kernel streams best. */
enum { F16_ROWS = 4, F16_TOKS = 3, F16_MAX_ROWS = 16, F16_MAX_TOKS = 64 };

static inline __m256 f16_at(const hearth_f16 *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __attribute__((always_inline)) void f16_tile(const int nt, int64_t n,
                                                           const hearth_f16 *const wr[F16_ROWS],
                                                           const hearth_f16 *const tok[F16_TOKS],
                                                           __m256 part[F16_ROWS][F16_TOKS][4]) {
    const int64_t n32 = n / 32 * 32, n8 = n / 8 * 8;
    for (int k = 0; k < 4; k++) {
        __m256 acc[F16_ROWS][F16_TOKS];
        for (int r = 0; r < F16_ROWS; r++)
            for (int t = 0; t < nt; t++)
                acc[r][t] = _mm256_setzero_ps();
        for (int64_t i = 8 * k; i < n32; i += 32) {
            __m256 y[F16_TOKS];
            for (int t = 0; t < nt; t++)
                y[t] = f16_at(tok[t] + i);
            for (int r = 0; r < F16_ROWS; r++) {
                const __m256 x = f16_at(wr[r] + i);
                for (int t = 0; t < nt; t++)
                    acc[r][t] = _mm256_fmadd_ps(x, y[t], acc[r][t]);
            }
        }
        if (k == 0) /* leftover whole chunks */
            for (int64_t i = n32; i < n8; i += 8)
                for (int t = 0; t < nt; t++) {
                    const __m256 y = f16_at(tok[t] + i);
                    for (int r = 0; r < F16_ROWS; r++)
                        acc[r][t] = _mm256_fmadd_ps(f16_at(wr[r] + i), y, acc[r][t]);
                }
        for (int r = 0; r < F16_ROWS; r++)
            for (int t = 0; t < nt; t++)
                part[r][t][k] = acc[r][t];
    }
}

static void gemm_f16(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                     int nt, float *out, size_t out_stride) {
    if (nt == 1) {
        gemm_few_tokens(HEARTH_F16, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
        return;
    }
    const int64_t n8 = n / 8 * 8;
    for (int r0 = 0; r0 < nr; r0 += F16_ROWS) {
        const int nrr = nr - r0 < F16_ROWS ? nr - r0 : F16_ROWS;
        const hearth_f16 *wr[F16_ROWS]; /* rows past nr repeat the last one */
        for (int r = 0; r < F16_ROWS; r++)
            wr[r] = (const hearth_f16 *)((const char *)w + (size_t)(r0 + (r < nrr ? r : nrr - 1)) * w_stride);
        for (int t0 = 0; t0 < nt; t0 += F16_TOKS) {
            const int ntt = nt - t0 < F16_TOKS ? nt - t0 : F16_TOKS;
            const hearth_f16 *tok[F16_TOKS];
            for (int t = 0; t < F16_TOKS; t++)
                tok[t] = (const hearth_f16 *)((const char *)a + (size_t)(t0 + (t < ntt ? t : 0)) * a_stride);
            __m256 part[F16_ROWS][F16_TOKS][4];
            if (ntt == 3)
                f16_tile(3, n, wr, tok, part);
            else if (ntt == 2)
                f16_tile(2, n, wr, tok, part);
            else
                f16_tile(1, n, wr, tok, part);
            for (int t = 0; t < ntt; t++)
                for (int r = 0; r < nrr; r++) {
                    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(part[r][t][0], part[r][t][1]),
                                                         _mm256_add_ps(part[r][t][2], part[r][t][3])));
                    for (int64_t i = n8; i < n; i++)
                        sum += _cvtsh_ss(wr[r][i]) * _cvtsh_ss(tok[t][i]);
                    out[(size_t)(t0 + t) * out_stride + r0 + r] = sum;
                }
        }
    }
}

hearth_gemm_fn hearth_cpu_gemm_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
    int rows = MAX_ROWS, toks = MAX_TOKS;
    switch (weight_type) {
    case HEARTH_Q8_0: f = gemm_q8_0; break;
    case HEARTH_Q4_0: f = gemm_q4_0; break;
    case HEARTH_Q2_K:
    case HEARTH_Q3_K:
    case HEARTH_Q4_K:
    case HEARTH_Q5_K:
    case HEARTH_Q6_K: return hearth_cpu_gemm_kquant_avx2(weight_type, max_rows, max_toks);
    case HEARTH_Q4_1:
    case HEARTH_Q5_0:
    case HEARTH_Q5_1:
    case HEARTH_IQ4_NL:
    case HEARTH_IQ4_XS: return hearth_cpu_gemm_iq4_avx2(weight_type, max_rows, max_toks);
    case HEARTH_F16:
        f = gemm_f16;
        rows = F16_MAX_ROWS;
        toks = F16_MAX_TOKS;
        break;
    default: return NULL;
    }
    if (max_rows) *max_rows = rows;
    if (max_toks) *max_toks = toks;
    return f;
}
