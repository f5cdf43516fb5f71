/*
 * gemm_avx512.c - register-tiled GEMM kernels (AVX-512 F/BW/VL + VNNI) of the
 * CPU backend: up to 64 weight rows x 64 activation rows per call, Q8_0 and
 * Q4_0 weights against Q8_0 activations; F16 against F16 (see gemm_f16);
 * the getter at the end also hands out the Q4_K/Q6_K tiles of
 * gemm_kquant_avx512.c.
 *
 * Owned by the GEMM kernels; compiled with the AVX-512 flags and reached only
 * through hearth_cpu_gemm (cpu_quants_ref.c) on CPUs with avx512f+bw+vl+vnni.
 * No state; thread-safe.
 *
 * Same scheme as ../avx2/gemm_avx2.c with 16 rows per register: each block of
 * 16 rows is transposed once (vector k lane r = bytes 4k..4k+3 of row r) and
 * serves every token of the tile; an activation's 4-byte groups are
 * broadcast, and vpdpbusd (unsigned x signed bytes, exact int32 sums) gives
 * each lane its row's block sum. vpdpbusd wants unsigned weights, so Q8_0
 * weights are offset by +128 and Q4_0 nibbles used as 0..15, and the
 * activation's byte sum times the offset is subtracted again, exactly. A
 * single token (decode) uses the per-pair kernel instead (gemm_one_token).
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is bit-identical
 * to the per-pair kernels: exact integer block sums, the scalar kernel's float
 * operations per block (no FMA), one running sum per pair in block order.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/avx2/gemm_kernels.h"
#include "backends/cpu/avx2/simd_kernels.h"

enum { LANES = 16, GROUPS = 4, MAX_ROWS = LANES * GROUPS, MAX_TOKS = 64 };

/* Four 16-byte loads as one vector, in 128-bit lanes 0..3. */
static inline __m512i load_4x128(const void *p0, const void *p1, const void *p2, const void *p3) {
    const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                               _mm_loadu_si128((const __m128i *)p1), 1);
    const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p2)),
                                               _mm_loadu_si128((const __m128i *)p3), 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 bytes of each of 16 rows -> 4 vectors, vector k lane r = bytes
 * 4k..4k+3 of row r: rows i, i+4, i+8, i+12 share a load, and a 4x4 int32
 * transpose inside each 128-bit lane puts lanes in row order. */
static inline void transpose_16x16(const uint8_t *const p[LANES], __m512i out[4]) {
    const __m512i a0 = load_4x128(p[0], p[4], p[8], p[12]), a1 = load_4x128(p[1], p[5], p[9], p[13]);
    const __m512i a2 = load_4x128(p[2], p[6], p[10], p[14]), a3 = load_4x128(p[3], p[7], p[11], p[15]);
    const __m512i t0 = _mm512_unpacklo_epi32(a0, a1), t1 = _mm512_unpackhi_epi32(a0, a1);
    const __m512i t2 = _mm512_unpacklo_epi32(a2, a3), t3 = _mm512_unpackhi_epi32(a2, a3);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* 16 f16 scales to floats (built in registers: one 32-byte load of 16 just
 * stored 2-byte values would stall on store forwarding). */
static inline __m512 f16x16(const hearth_f16 d[LANES]) {
    return _mm512_cvtph_ps(_mm256_setr_epi16((short)d[0], (short)d[1], (short)d[2], (short)d[3], (short)d[4],
                                             (short)d[5], (short)d[6], (short)d[7], (short)d[8], (short)d[9],
                                             (short)d[10], (short)d[11], (short)d[12], (short)d[13],
                                             (short)d[14], (short)d[15]));
}

/* Sum of an activation block's 32 bytes. */
static inline int32_t byte_sum(const block_q8_0 *y) {
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1),
                                          _mm256_loadu_si256((const __m256i *)y->qs));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(h);
}

static inline uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc + dpbusd(x, the 4 bytes at p in every lane), with the broadcast folded
 * into the instruction's memory operand ({1to16}): GCC 12 emits a separate
 * vpbroadcastd for _mm512_set1_epi32 of a loaded value, one more uop in the
 * GEMM's innermost loop. */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i x, const void *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*(const uint32_t(*)[1])p));
    return acc;
}

/* Exact block sums of 16 rows (x, unsigned bytes) with one activation block:
 * two independent dpbusd chains over the 8 four-byte groups. */
static inline __m512i block_sums(const __m512i x[8], const block_q8_0 *y) {
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int k = 0; k < 8; k += 2) {
        s0 = dpbusd_bcast(s0, x[k], y->qs + 4 * k);
        s1 = dpbusd_bcast(s1, x[k + 1], y->qs + 4 * k + 4);
    }
    return _mm512_add_epi32(s0, s1);
}

/* The kernel reads its nr weight rows as nr interleaved streams, which the
 * hardware prefetchers do not follow, so without help every block would wait
 * on memory (decode, with one token, ran 4x slower). The rows of the caller's
 * next tile usually follow this tile's in memory: while working on block ib
 * of nb, request slice ib of the next tile (nr rows from `end`) into L1
 * (measured: better than L2), so that memory streams in the background like
 * the per-pair kernels' reads. Past the matrix's end this is harmless: x86
 * prefetches never fault. */
static inline void prefetch_next_tile(const char *end, size_t tile_bytes, int64_t ib, int64_t nb) {
    const size_t from = (size_t)ib * tile_bytes / (size_t)nb, to = (size_t)(ib + 1) * tile_bytes / (size_t)nb;
    /* inline asm: GCC 12 deletes a loop of nothing but _mm_prefetch here */
    for (size_t off = from & ~(size_t)63; off < to; off += 64)
        __asm__ volatile("prefetcht0 %0" : : "m"(end[off]));
}

#define BLOCK_AT(base, stride, i, type, ib)                                                                  \
    ((const type *)((const char *)(base) + (size_t)(i) * (stride)) + (ib))

/* One kernel per weight type; IS_Q8 selects the weight layout and the
 * scalar kernel's float expression. */
static inline __attribute__((always_inline)) void gemm_tile(const int is_q8, int64_t n, const void *w,
                                                            size_t w_stride, int nr, const void *a,
                                                            size_t a_stride, int nt, float *out,
                                                            size_t out_stride) {
    _Alignas(64) float acc[GROUPS][MAX_TOKS][LANES];
    int32_t corr[MAX_TOKS];
    float da[MAX_TOKS];
    const int ng = (nr + LANES - 1) / LANES;
    for (int g = 0; g < ng; g++)
        for (int t = 0; t < nt; t++)
            _mm512_store_ps(acc[g][t], _mm512_setzero_ps());
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        prefetch_next_tile((const char *)w + (size_t)nr * w_stride, (size_t)nr * w_stride, ib, n / QK8_0);
        for (int t = 0; t < nt; t++) {
            const block_q8_0 *y = BLOCK_AT(a, a_stride, t, block_q8_0, ib);
            corr[t] = (is_q8 ? 128 : 8) * byte_sum(y); /* the weight offset times sum(y) */
            da[t] = _cvtsh_ss(y->d);
        }
        for (int g = 0; g < ng; g++) {
            const uint8_t *lo[LANES], *hi[LANES];
            _Alignas(32) hearth_f16 dw16[LANES];
            for (int i = 0; i < LANES; i++) {
                const int r = g * LANES + i < nr ? g * LANES + i : nr - 1; /* pad with the last row */
                if (is_q8) {
                    const block_q8_0 *x = BLOCK_AT(w, w_stride, r, block_q8_0, ib);
                    lo[i] = (const uint8_t *)x->qs;
                    hi[i] = (const uint8_t *)x->qs + 16;
                    dw16[i] = x->d;
                } else {
                    const block_q4_0 *x = BLOCK_AT(w, w_stride, r, block_q4_0, ib);
                    lo[i] = hi[i] = x->qs;
                    dw16[i] = x->d;
                }
            }
            __m512i xu[8]; /* xu[k] pairs with activation bytes 4k..4k+3 */
            if (is_q8) {
                transpose_16x16(lo, xu);
                transpose_16x16(hi, xu + 4);
                for (int k = 0; k < 8; k++)
                    xu[k] = _mm512_xor_si512(xu[k], _mm512_set1_epi8((char)0x80)); /* q + 128 */
            } else {
                /* packed byte j: element j (low nibble), element j + 16 (high) */
                __m512i p[4];
                transpose_16x16(lo, p);
                const __m512i low4 = _mm512_set1_epi8(0x0F);
                for (int k = 0; k < 4; k++) {
                    xu[k] = _mm512_and_si512(p[k], low4);
                    xu[k + 4] = _mm512_and_si512(_mm512_srli_epi16(p[k], 4), low4);
                }
            }
            const __m512 dw = f16x16(dw16);
            for (int t = 0; t < nt; t++) {
                const block_q8_0 *y = BLOCK_AT(a, a_stride, t, block_q8_0, ib);
                const __m512i s = _mm512_sub_epi32(block_sums(xu, y), _mm512_set1_epi32(corr[t]));
                const __m512 sf = _mm512_cvtepi32_ps(s);
                const __m512 v =
                    is_q8 ? _mm512_mul_ps(sf, _mm512_mul_ps(dw, _mm512_set1_ps(da[t]))) /* sumi * (dw * da) */
                          : _mm512_mul_ps(_mm512_mul_ps(sf, dw), _mm512_set1_ps(da[t])); /* sumi * dw * da */
                _mm512_store_ps(acc[g][t], _mm512_add_ps(_mm512_load_ps(acc[g][t]), v));
            }
        }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * out_stride + r] = acc[r / LANES][t][r % LANES];
}

/* One token (decode): the transposed block would serve one dot per row, and
 * the per-pair kernel, reading the rows as one sequential stream, measured a
 * few percent faster; use it row by row. Bit-identical all the same: the
 * per-pair kernels of these types equal the scalar kernel, as the tiled path
 * does. (From 2 tokens on the tiled path wins.) */
static void gemm_one_token(hearth_dtype type, int64_t n, const void *w, size_t w_stride, int nr,
                           const void *a, float *out) {
    const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx512(type);
    for (int r = 0; r < nr; r++)
        dot(n, &out[r], (const char *)w + (size_t)r * w_stride, a);
}

/* 8 row vectors of 8 block values -> 8 running sums (lane r = row r),
 * the blocks added in order: one transpose, then one add per block. */
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

/* One token (decode) against Q4_0 rows. Everything that depends only on the
 * activation is prepared once for all nr rows: per 4 blocks, their first and
 * second 16 bytes packed into one register each (the order of a row's low and
 * high nibbles), 8 * sum(y) per block and the scales as floats. Per row and 8
 * blocks, two 16-bit permutes pull the 4+4 blocks' packed bytes out of the
 * 18-byte blocks and one more their 8 scales; vpdpbusd on the nibbles gives
 * 4 partial sums per block, reduced to the 8 exact block sums. The float side
 * is the per-pair kernel's (sumi * d_w * d_a, added in block order), so the
 * results are bit-identical to it. */
enum { Q4_DECODE_MAX_BLOCKS = 512 }; /* Q4_0 and Q8_0 decode kernels: n up to 16384 (~25 KB of stack) */

static void gemm_q4_0_one_token(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                                float *out) {
    const int64_t nb = n / QK8_0, n8 = nb / 8 * 8;
    const block_q8_0 *y = a;
    _Alignas(64) int8_t ylo[Q4_DECODE_MAX_BLOCKS / 4][64], yhi[Q4_DECODE_MAX_BLOCKS / 4][64];
    _Alignas(32) int32_t bs[Q4_DECODE_MAX_BLOCKS];
    _Alignas(32) float da[Q4_DECODE_MAX_BLOCKS];
    for (int64_t b = 0; b < nb; b++) {
        memcpy(&ylo[b / 4][16 * (b % 4)], y[b].qs, 16);
        memcpy(&yhi[b / 4][16 * (b % 4)], y[b].qs + 16, 16);
        bs[b] = 8 * byte_sum(&y[b]);
        da[b] = _cvtsh_ss(y[b].d);
    }
    /* 16-bit lanes of two loads covering 4 blocks from a block start: qs of
     * block k are halfwords 9k+1 .. 9k+8; the 8 scales are halfwords 9k */
    static const _Alignas(64)
        int16_t qs_lanes[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};
    static const _Alignas(64) int16_t d_lanes[32] = {0, 9, 18, 27, 36, 45, 54, 63};
    const __m512i idx_qs = _mm512_load_si512(qs_lanes), idx_d = _mm512_load_si512(d_lanes);
    const __m512i pick8 = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* 8 rows at a time: each row's 8 block values per step, transposed so
     * that lane r holds row r, are added to the 8 running sums in block
     * order (one vector add per block instead of 8 dependent scalar adds) */
    for (int r0 = 0; r0 < nr; r0 += 8) {
        const int nrr = nr - r0 < 8 ? nr - r0 : 8;
        const block_q4_0 *xr[8];
        for (int k = 0; k < 8; k++)
            xr[k] = (const block_q4_0 *)((const char *)w + (size_t)(r0 + (k < nrr ? k : nrr - 1)) * w_stride);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8) {
            /* 8 short interleaved streams defeat the hardware prefetchers:
             * request the next 8 rows (the caller's next tile after the
             * last group) a slice per step */
            prefetch_next_tile((const char *)w + (size_t)(r0 + nrr) * w_stride, (size_t)8 * w_stride, i / 8,
                               n8 / 8);
            __m256 vr[8];
            for (int k = 0; k < 8; k++) {
                const block_q4_0 *x = xr[k];
                const char *p = (const char *)&x[i];
                const __m512i l0 = _mm512_loadu_si512(p), l1 = _mm512_loadu_si512(p + 64);
                const __m512i l2 = _mm512_loadu_si512(p + 72);
                const __m512i l3 =
                    _mm512_maskz_loadu_epi8(0xFF, p + 136); /* the last 8 bytes; no read past them */
                const __m512i v0 = _mm512_permutex2var_epi16(l0, idx_qs, l1),
                              v1 = _mm512_permutex2var_epi16(l2, idx_qs, l3);
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v0, m4),
                                                 _mm512_load_si512(ylo[i / 4]));
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                                         _mm512_load_si512(yhi[i / 4]));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, m4),
                                                 _mm512_load_si512(ylo[i / 4 + 1]));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4),
                                         _mm512_load_si512(yhi[i / 4 + 1]));
                /* 128-bit lane k: [block k: two pair sums, block 4+k: two pair sums] */
                const __m512i t =
                    _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(s0),
                                                                           _mm512_castsi512_ps(s1), 0x88)),
                                     _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(s0),
                                                                           _mm512_castsi512_ps(s1), 0xDD)));
                const __m512i u = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_CDAB));
                const __m256i sumi =
                    _mm256_sub_epi32(_mm512_castsi512_si256(_mm512_permutexvar_epi32(pick8, u)),
                                     _mm256_load_si256((const __m256i *)&bs[i]));
                const __m256 dw =
                    _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(l0, idx_d, l1)));
                const __m256 v =
                    _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sumi), dw), _mm256_load_ps(&da[i]));
                vr[k] = v;
            }
            acc = add_blocks_8rows(acc, vr); /* column b = row r's block i + b, in block order */
        }
        _Alignas(32) float sums[8];
        _mm256_store_ps(sums, acc);
        for (int k = 0; k < nrr; k++) {
            const block_q4_0 *x = xr[k];
            float sumf = sums[k];
            for (int64_t i = n8; i < nb; i++) { /* the last nb % 8 blocks, one by one */
                const __m128i q = _mm_loadu_si128((const __m128i *)x[i].qs);
                const __m256i qq =
                    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
                const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qq,
                                                      _mm256_loadu_si256((const __m256i *)y[i].qs));
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
                sumf += (float)(_mm_cvtsi128_si32(h) - bs[i]) * _cvtsh_ss(x[i].d) * da[i];
            }
            out[r0 + k] = sumf;
        }
    }
}


/* One token (decode) against Q8_0 rows, in the manner of the Q4_0 kernel
 * above: the activation's blocks packed contiguously, 128 * sum(y) and the
 * scales as floats once per call; per row and 8 blocks, 4 vpdpbusd on the
 * weights offset by +128, the 8 exact block sums by a shuffle tree, the 8
 * scales by two 16-bit permutes; 8 rows at a time added in block order.
 * Float side: sumi * (d_w * d_a), as the per-pair kernel; bit-identical. */
static void gemm_q8_0_one_token(int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                                float *out) {
    const int64_t nb = n / QK8_0, n8 = nb / 8 * 8;
    const block_q8_0 *y = a;
    _Alignas(64) int8_t yq[Q4_DECODE_MAX_BLOCKS][32];
    _Alignas(32) int32_t bs[Q4_DECODE_MAX_BLOCKS];
    _Alignas(32) float da[Q4_DECODE_MAX_BLOCKS];
    for (int64_t b = 0; b < nb; b++) {
        memcpy(yq[b], y[b].qs, 32);
        bs[b] = 128 * byte_sum(&y[b]);
        da[b] = _cvtsh_ss(y[b].d);
    }
    /* scales of blocks 0..3 are halfwords 0, 17, 34, 51 from a block start */
    static const _Alignas(64) int16_t d_lo[32] = {0, 17, 34, 51};
    static const _Alignas(64) int16_t d_hi[32] = {0, 0, 0, 0, 0, 17, 34, 51};
    const __m512i idx_lo = _mm512_load_si512(d_lo), idx_hi = _mm512_load_si512(d_hi);
    const __m512i pick8 = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int r0 = 0; r0 < nr; r0 += 8) {
        const int nrr = nr - r0 < 8 ? nr - r0 : 8;
        const block_q8_0 *xr[8];
        for (int k = 0; k < 8; k++)
            xr[k] = (const block_q8_0 *)((const char *)w + (size_t)(r0 + (k < nrr ? k : nrr - 1)) * w_stride);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < n8; i += 8) {
            prefetch_next_tile((const char *)w + (size_t)(r0 + nrr) * w_stride, (size_t)8 * w_stride, i / 8,
                               n8 / 8);
            __m256 vr[8];
            for (int k = 0; k < 8; k++) {
                const block_q8_0 *x = xr[k] + i;
                __m512i s[4];
                for (int j = 0; j < 4; j++) {
                    const __m512i xq = _mm512_inserti64x4(
                        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[2 * j].qs)),
                        _mm256_loadu_si256((const __m256i *)x[2 * j + 1].qs), 1);
                    s[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(xq, flip),
                                               _mm512_load_si512(yq[i + 2 * j]));
                }
                /* 128-bit lane k: block k's 4 partials (from s0, s1), then blocks 4..7 */
                const __m512i q0 = _mm512_add_epi32(_mm512_shuffle_i32x4(s[0], s[1], 0x88),
                                                    _mm512_shuffle_i32x4(s[0], s[1], 0xDD));
                const __m512i q1 = _mm512_add_epi32(_mm512_shuffle_i32x4(s[2], s[3], 0x88),
                                                    _mm512_shuffle_i32x4(s[2], s[3], 0xDD));
                const __m512i t =
                    _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(q0),
                                                                           _mm512_castsi512_ps(q1), 0x88)),
                                     _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(q0),
                                                                           _mm512_castsi512_ps(q1), 0xDD)));
                const __m512i u = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_CDAB));
                const __m256i sumi =
                    _mm256_sub_epi32(_mm512_castsi512_si256(_mm512_permutexvar_epi32(pick8, u)),
                                     _mm256_load_si256((const __m256i *)&bs[i]));
                const char *p = (const char *)x;
                const __m512i dl =
                    _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx_lo, _mm512_loadu_si512(p + 64));
                const __m512i dh = _mm512_permutex2var_epi16(_mm512_loadu_si512(p + 136), idx_hi,
                                                             _mm512_loadu_si512(p + 200));
                const __m256 dw =
                    _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_blend_epi16(0xF0, dl, dh)));
                vr[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(dw, _mm256_load_ps(&da[i])));
            }
            acc = add_blocks_8rows(acc, vr);
        }
        _Alignas(32) float sums[8];
        _mm256_store_ps(sums, acc);
        for (int k = 0; k < nrr; k++) {
            const block_q8_0 *x = xr[k];
            float sumf = sums[k];
            for (int64_t i = n8; i < nb; i++) { /* the last nb % 8 blocks, one by one */
                const __m256i s =
                    _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                        _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                                         _mm256_set1_epi8((char)0x80)),
                                        _mm256_loadu_si256((const __m256i *)y[i].qs));
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
                sumf += (float)(_mm_cvtsi128_si32(h) - bs[i]) * (_cvtsh_ss(x[i].d) * da[i]);
            }
            out[r0 + k] = sumf;
        }
    }
}

/* A few tokens (a decode batch of several sequences): the tile above keeps
 * its 64 x 64 accumulators in memory, a load and a store per block and pair.
 * Here one group of 16 rows runs through all its blocks with the NT tokens'
 * accumulators in registers (tokens past nt repeat the last one and are not
 * stored), and each token's block terms (offset correction, scale) are
 * computed once per call instead of once per row group. Same per-pair
 * arithmetic as gemm_tile, so bit-identical all the same. */
enum { SMALL_MAX_BLOCKS = 512 };

static inline __attribute__((always_inline)) void gemm_small(const int is_q8, const int NT, int64_t n,
                                                             const void *w, size_t w_stride, int nr,
                                                             const void *a, size_t a_stride, int nt,
                                                             float *out, size_t out_stride) {
    const int64_t nb = n / QK8_0;
    _Alignas(64) int32_t corr[SMALL_MAX_BLOCKS][8];
    _Alignas(64) float da[SMALL_MAX_BLOCKS][8];
    const block_q8_0 *y[8];
    for (int t = 0; t < NT; t++)
        y[t] = (const block_q8_0 *)((const char *)a + (size_t)(t < nt ? t : nt - 1) * a_stride);
    for (int64_t ib = 0; ib < nb; ib++)
        for (int t = 0; t < NT; t++) {
            corr[ib][t] = (is_q8 ? 128 : 8) * byte_sum(&y[t][ib]);
            da[ib][t] = _cvtsh_ss(y[t][ib].d);
        }
    const int ng = (nr + LANES - 1) / LANES;
    for (int g = 0; g < ng; g++) {
        const int nrg = nr - g * LANES < LANES ? nr - g * LANES : LANES;
        const char *gw = (const char *)w + (size_t)g * LANES * w_stride;
        /* while on this group, stream in the next one (the next tile's first after the last) */
        const size_t next_bytes = (size_t)LANES * w_stride;
        __m512 acc[8];
        for (int t = 0; t < NT; t++)
            acc[t] = _mm512_setzero_ps();
        const char *row[LANES]; /* pad with the last row */
        for (int i = 0; i < LANES; i++)
            row[i] = gw + (size_t)(i < nrg ? i : nrg - 1) * w_stride;
        /* the 16 rows' scales in one gather of 4 bytes each (the f16 scale and
         * two bytes after it, inside the block), then narrowed to 16 bits */
        const __m512i scale_at = _mm512_mullo_epi32(
            _mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                             _mm512_set1_epi32(nrg - 1)),
            _mm512_set1_epi32((int)w_stride));
        const size_t bsz = is_q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
        for (int64_t ib = 0; ib < nb; ib++) {
            prefetch_next_tile((const char *)w + (size_t)(g * LANES + nrg) * w_stride, next_bytes, ib, nb);
            const uint8_t *lo[LANES], *hi[LANES];
            const size_t qoff = (size_t)ib * bsz + sizeof(hearth_f16);
            for (int i = 0; i < LANES; i++) {
                lo[i] = (const uint8_t *)row[i] + qoff;
                hi[i] = lo[i] + (is_q8 ? 16 : 0);
            }
            __m512i xu[8];
            if (is_q8) {
                transpose_16x16(lo, xu);
                transpose_16x16(hi, xu + 4);
                for (int k = 0; k < 8; k++)
                    xu[k] = _mm512_xor_si512(xu[k], _mm512_set1_epi8((char)0x80));
            } else {
                __m512i p[4];
                transpose_16x16(lo, p);
                const __m512i low4 = _mm512_set1_epi8(0x0F);
                for (int k = 0; k < 4; k++) {
                    xu[k] = _mm512_and_si512(p[k], low4);
                    xu[k + 4] = _mm512_and_si512(_mm512_srli_epi16(p[k], 4), low4);
                }
            }
            const __m512 dw = _mm512_cvtph_ps(
                _mm512_cvtepi32_epi16(_mm512_i32gather_epi32(scale_at, gw + (size_t)ib * bsz, 1)));
            for (int t = 0; t < NT; t++) {
                const __m512i sum =
                    _mm512_sub_epi32(block_sums(xu, &y[t][ib]), _mm512_set1_epi32(corr[ib][t]));
                const __m512 sf = _mm512_cvtepi32_ps(sum);
                const __m512 v = is_q8 ? _mm512_mul_ps(sf, _mm512_mul_ps(dw, _mm512_set1_ps(da[ib][t])))
                                       : _mm512_mul_ps(_mm512_mul_ps(sf, dw), _mm512_set1_ps(da[ib][t]));
                acc[t] = _mm512_add_ps(acc[t], v);
            }
        }
        for (int t = 0; t < nt; t++) {
            _Alignas(64) float o[LANES];
            _mm512_store_ps(o, acc[t]);
            memcpy(out + (size_t)t * out_stride + g * LANES, o, sizeof(float) * (size_t)nrg);
        }
    }
}

static void gemm_q8_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    if (nt == 1 && n / QK8_0 <= Q4_DECODE_MAX_BLOCKS)
        gemm_q8_0_one_token(n, w, w_stride, nr, a, out);
    else if (nt == 1)
        gemm_one_token(HEARTH_Q8_0, n, w, w_stride, nr, a, out);
    else if (nt <= 4 && n / QK8_0 <= SMALL_MAX_BLOCKS)
        gemm_small(1, 4, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
    else if (nt <= 8 && n / QK8_0 <= SMALL_MAX_BLOCKS)
        gemm_small(1, 8, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
    else
        gemm_tile(1, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q4_0(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    if (nt == 1 && n / QK8_0 <= Q4_DECODE_MAX_BLOCKS)
        gemm_q4_0_one_token(n, w, w_stride, nr, a, out);
    else if (nt == 1)
        gemm_one_token(HEARTH_Q4_0, n, w, w_stride, nr, a, out);
    else if (nt <= 4 && n / QK8_0 <= SMALL_MAX_BLOCKS)
        gemm_small(0, 4, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
    else if (nt <= 8 && n / QK8_0 <= SMALL_MAX_BLOCKS)
        gemm_small(0, 8, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
    else
        gemm_tile(0, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

// ---------------------------------------------------------------- F16

/* F16 weights against F16 activations, bit-identical to this family's F16
 * dot kernel (vec_dot_avx512.c), which keeps four 16-lane accumulators:
 * 16-element chunk c of each 64 goes into a[c], the leftover whole chunks
 * into a[0], a masked tail into a[1], and the result is
 * reduce_add((a0 + a1) + (a2 + a3)). Every accumulator is its own FMA chain,
 * so the tile runs one chain index k at a time over F16_ROWS x F16_TOKS pairs
 * (24 accumulators in registers), keeps the finished a[k] per pair, and
 * combines them exactly as the dot kernel does. Weights and tokens are widened
 * as they are read (F16C): measured faster than widening the rows into a
 * buffer first, and no stack buffer or length cap. */
enum { F16_ROWS = 8, F16_TOKS = 3, F16_MAX_TOKS = 64 };

static inline __m512 f16_at(const hearth_f16 *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __attribute__((always_inline)) void f16_tile(const int nt, int64_t n,
                                                           const hearth_f16 *const wr[F16_ROWS],
                                                           const hearth_f16 *const tok[F16_TOKS],
                                                           __m512 part[F16_ROWS][F16_TOKS][4]) {
    const int64_t n64 = n / 64 * 64, n16 = n / 16 * 16;
    for (int k = 0; k < 4; k++) {
        __m512 acc[F16_ROWS][F16_TOKS];
        for (int r = 0; r < F16_ROWS; r++)
            for (int t = 0; t < nt; t++)
                acc[r][t] = _mm512_setzero_ps();
        for (int64_t i = 16 * k; i < n64; i += 64) {
            __m512 y[F16_TOKS];
            for (int t = 0; t < nt; t++)
                y[t] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(tok[t] + i)));
            for (int r = 0; r < F16_ROWS; r++) {
                const __m512 x = f16_at(wr[r] + i);
                for (int t = 0; t < nt; t++)
                    acc[r][t] = _mm512_fmadd_ps(x, y[t], acc[r][t]);
            }
        }
        if (k == 0) /* leftover whole chunks */
            for (int64_t i = n64; i < n16; i += 16)
                for (int t = 0; t < nt; t++) {
                    const __m512 y = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(tok[t] + i)));
                    for (int r = 0; r < F16_ROWS; r++)
                        acc[r][t] = _mm512_fmadd_ps(f16_at(wr[r] + i), y, acc[r][t]);
                }
        if (k == 1 && n16 < n) { /* masked tail, zeros past n on both sides */
            const __mmask16 m = (__mmask16)((1u << (n - n16)) - 1);
            for (int t = 0; t < nt; t++) {
                const __m512 y = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, tok[t] + n16));
                for (int r = 0; r < F16_ROWS; r++)
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, wr[r] + n16)), y,
                                                acc[r][t]);
            }
        }
        for (int r = 0; r < F16_ROWS; r++)
            for (int t = 0; t < nt; t++)
                part[r][t][k] = acc[r][t];
    }
}

static void gemm_f16(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                     int nt, float *out, size_t out_stride) {
    if (nt == 1) { /* decode reads each row once: the per-pair kernel streams best */
        gemm_one_token(HEARTH_F16, n, w, w_stride, nr, a, out);
        return;
    }
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
            __m512 part[F16_ROWS][F16_TOKS][4];
            if (ntt == 3)
                f16_tile(3, n, wr, tok, part);
            else if (ntt == 2)
                f16_tile(2, n, wr, tok, part);
            else
                f16_tile(1, n, wr, tok, part);
            for (int t = 0; t < ntt; t++)
                for (int r = 0; r < nrr; r++)
                    out[(size_t)(t0 + t) * out_stride + r0 + r] =
                        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(part[r][t][0], part[r][t][1]),
                                                           _mm512_add_ps(part[r][t][2], part[r][t][3])));
        }
    }
}

hearth_gemm_fn hearth_cpu_gemm_avx512(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
    int rows = MAX_ROWS, toks = MAX_TOKS;
    switch (weight_type) {
    case HEARTH_Q8_0: f = gemm_q8_0; break;
    case HEARTH_Q4_0: f = gemm_q4_0; break;
    case HEARTH_Q4_K:
    case HEARTH_Q6_K: return hearth_cpu_gemm_kquant_avx512(weight_type, max_rows, max_toks);
    case HEARTH_F16:
        f = gemm_f16;
        rows = 2 * F16_ROWS;
        toks = F16_MAX_TOKS;
        break;
    default: return NULL;
    }
    if (max_rows) *max_rows = rows;
    if (max_toks) *max_toks = toks;
    return f;
}
