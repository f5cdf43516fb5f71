/*
 * gemm_kquant_avx2.c - register-tiled GEMM kernels (AVX2 + FMA + F16C) of the
 * CPU backend for the K-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K against Q8_K
 * activations: up to KQ_MAX_ROWS weight rows x KQ_MAX_TOKS activation rows
 * per call; 1-2 tokens (decode) go per pair through the family's dot.
 *
 * Owned by the GEMM kernels; compiled with -mavx2 -mfma -mf16c and reached
 * only through hearth_cpu_gemm_avx2 (gemm_avx2.c), hence hearth_cpu_gemm. No
 * state; thread-safe.
 *
 * How: per 256-element super-block, each of the call's weight rows is
 * unpacked ONCE (kq_row: the 256 levels as eight 32-byte chunks, the int16
 * scale vector of each chunk, the mins, d and dmin) and then serves every
 * token of the call; each token's block is read once per row pair. A micro
 * tile of KQ_MR rows x KQ_MT tokens keeps its KQ_MR * KQ_MT integer sums in
 * registers over the super-block's 8 chunks (per chunk and pair: one
 * maddubs, one madd with the chunk's scales, one add). The float part of
 * each pair lives in memory (acc, accm), touched once per super-block.
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is
 * BIT-IDENTICAL to this family's per-pair dot (dot_q2_K_q8_K etc. in
 * vec_dot_avx2.c), because per pair and super-block
 *   - int32 lane L holds the same exact integer as the dot's lane L: the sum
 *     of scale * level * activation over elements 32c + 4L .. 32c + 4L + 3 of
 *     every chunk c (integer order inside a lane is free: it is exact).
 *     Q3_K and Q6_K levels are signed, so the tile multiplies
 *     (activation + 128) as the unsigned maddubs operand with the signed
 *     level and takes off the row's 128 * sum(scale * level) per lane, which
 *     is exact as well;
 *   - the float operations are the dot's, in its order: d = y.d * f16(x.d),
 *     acc = fmadd(set1(d), cvt(sumi), acc); Q2_K/Q4_K/Q5_K also
 *     accm += (y.d * f16(x.dmin)) * (float)min_term; at the end
 *     hsum_f32x8(acc) - accm (Q3_K/Q6_K: hsum_f32x8(acc)), with the dot's own
 *     hsum (kquant_avx2.h).
 * The AVX-512 family has its own Q4_K/Q6_K dots with another float order, so
 * the dispatcher pairs these tiles only with this family's dots.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "gemm_kernels.h"
#include "kquant_avx2.h"
#include "simd_kernels.h"

enum { KQ_MAX_ROWS = 8, KQ_MAX_TOKS = 32, KQ_MR = 2, KQ_MT = 4, KQ_CHUNKS = QK_K / 32, KQ_FEW_TOKS = 2 };

/* One weight row's super-block, unpacked for the whole call. */
typedef struct {
    __m256i q[KQ_CHUNKS];  /* chunk c: levels of elements 32c..32c+31 (Q4_K/Q5_K u8, Q6_K s8) */
    __m256i sc[KQ_CHUNKS]; /* int16 multipliers of chunk c's 16 maddubs pairs */
    __m256i corr;          /* Q6_K: per lane 128 * sum(scale * level), taken off the sums */
    __m128i mins;          /* Q4_K/Q5_K: the 8 mins as int16 */
    __m256i mins16;        /* Q2_K: the 16 mins as int16 */
    float d, dmin;
} kq_row;

typedef enum { KQ_Q2_K, KQ_Q3_K, KQ_Q4_K, KQ_Q5_K, KQ_Q6_K } kq_kind;

/* Q3_K and Q6_K levels are signed (the tile takes off an offset term); Q2_K,
 * Q4_K and Q5_K have a min term (accm). */
#define KQ_SIGNED(kind) ((kind) == KQ_Q3_K || (kind) == KQ_Q6_K)

/* Scales, mins, d and dmin of a Q4_K/Q5_K super-block (as the dot reads them). */
static inline void unpack_scales_q45(const uint8_t scales[K_SCALE_SIZE], hearth_f16 d, hearth_f16 dmin,
                                     kq_row *row) {
    _Alignas(16) uint8_t sm[16];
    _mm_store_si128((__m128i *)sm, kquant_scales_mins(scales));
    for (int c = 0; c < KQ_CHUNKS; c++)
        row->sc[c] = _mm256_set1_epi16((short)sm[c]);
    row->mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
    row->d = _cvtsh_ss(d);
    row->dmin = _cvtsh_ss(dmin);
}

static inline void unpack_q4_K(const block_q4_K *x, kq_row *row) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int j = 0; j < QK_K / 64; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        row->q[2 * j] = _mm256_and_si256(q, m4);
        row->q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
    unpack_scales_q45(x->scales, x->d, x->dmin, row);
}

/* Bits 2j and 2j+1 of qh[l] are the fifth bits of chunks 2j and 2j+1. */
static inline void unpack_q5_K(const block_q5_K *x, kq_row *row) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    __m256i hb = _mm256_loadu_si256((const __m256i *)x->qh);
    for (int j = 0; j < QK_K / 64; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(hb, two), 3);
        hb = _mm256_srli_epi16(hb, 2);
        row->q[2 * j] = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
        row->q[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
    }
    unpack_scales_q45(x->scales, x->d, x->dmin, row);
}

/* Q6_K: level = (4 low bits | 2 high bits << 4) - 32, as signed bytes. */
static inline void unpack_q6_K(const block_q6_K *x, kq_row *row) {
    const __m256i m32 = _mm256_set1_epi8(32), u128 = _mm256_set1_epi8((char)0x80);
    const __m128i sc = _mm_loadu_si128((const __m128i *)x->scales);
    __m256i corr = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++) {
        __m256i q[4];
        q6_K_levels(x->ql + 64 * half, x->qh + 32 * half, q);
        for (int k = 0; k < 4; k++) {
            const int c = 4 * half + k;
            row->q[c] = _mm256_sub_epi8(q[k], m32);
            row->sc[c] = scale_pair_i16(sc, c);
            /* 128 * (level pair sums) <= 8192 in int16; times scale in int32 */
            corr =
                _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_maddubs_epi16(u128, row->q[c]), row->sc[c]));
        }
    }
    row->corr = corr;
    row->d = _cvtsh_ss(x->d);
    row->dmin = 0;
}

/* Q2_K: levels 0..3 (2 bits, 4 chunks per 32 packed bytes), 16 groups of
 * 16 with a 4-bit scale (low nibble) and a 4-bit min (high nibble). */
static inline void unpack_q2_K(const block_q2_K *x, kq_row *row) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i sc_mn = _mm_loadu_si128((const __m128i *)x->scales);
    const __m128i sc = _mm_and_si128(sc_mn, _mm_set1_epi8(0x0F));
    row->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc_mn, 4), _mm_set1_epi8(0x0F)));
    for (int half = 0; half < 2; half++) {
        const __m256i q2 = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * half));
        for (int k = 0; k < 4; k++) {
            const int c = 4 * half + k;
            row->q[c] = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
            row->sc[c] = scale_pair_i16(sc, c);
        }
    }
    row->d = _cvtsh_ss(x->d);
    row->dmin = _cvtsh_ss(x->dmin);
}

/* Q3_K: level = 2 low bits - (high bit clear ? 4 : 0), -4..3, as signed
 * bytes; 16 signed 6-bit scales. */
static inline void unpack_q3_K(const block_q3_K *x, kq_row *row) {
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4), u128 = _mm256_set1_epi8((char)0x80);
    const __m128i sc = q3_K_scales(x->scales);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)x->hmask);
    __m256i corr = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++) {
        const __m256i q3 = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * half));
        for (int k = 0; k < 4; k++) {
            const int c = 4 * half + k;
            const __m256i bit = _mm256_set1_epi8((char)(1u << c));
            const __m256i high = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
            const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q3, 2 * k), m3);
            row->q[c] = _mm256_sub_epi8(q, _mm256_andnot_si256(high, four));
            row->sc[c] = scale_pair_i16(sc, c);
            corr =
                _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_maddubs_epi16(u128, row->q[c]), row->sc[c]));
        }
    }
    row->corr = corr;
    row->d = _cvtsh_ss(x->d);
    row->dmin = 0;
}

/* The KQ_MR x mt integer sums of one super-block. w_unsigned: the levels are
 * maddubs' unsigned operand (Q4_K/Q5_K: 0..31 against activations in
 * -127..127, pairs <= 7874); otherwise the activations + 128 are (Q6_K:
 * 0..255 against -32..31, pairs within -16320..15810). No int16 saturation. */
static inline __attribute__((always_inline)) void micro_tile(const int w_unsigned, const int mt,
                                                             const kq_row *const rows[KQ_MR],
                                                             const uint8_t *const y[KQ_MT],
                                                             __m256i s[KQ_MR][KQ_MT]) {
    for (int r = 0; r < KQ_MR; r++)
        for (int t = 0; t < mt; t++)
            s[r][t] = _mm256_setzero_si256();
    for (int c = 0; c < KQ_CHUNKS; c++) {
        __m256i yv[KQ_MT];
        for (int t = 0; t < mt; t++)
            yv[t] = _mm256_loadu_si256((const __m256i *)(y[t] + 32 * c));
        for (int r = 0; r < KQ_MR; r++) {
            const __m256i wv = rows[r]->q[c], sc = rows[r]->sc[c];
            for (int t = 0; t < mt; t++) {
                const __m256i p =
                    w_unsigned ? _mm256_maddubs_epi16(wv, yv[t]) : _mm256_maddubs_epi16(yv[t], wv);
                s[r][t] = _mm256_add_epi32(s[r][t], _mm256_madd_epi16(p, sc));
            }
        }
    }
}

/* Per-call state: the float part of every pair, and the current super-block's
 * unpacked rows and token terms. */
typedef struct {
    __m256 acc[KQ_MAX_ROWS][KQ_MAX_TOKS];
    _Alignas(32) float accm[KQ_MAX_ROWS][KQ_MAX_TOKS];
    kq_row rows[KQ_MAX_ROWS];
    _Alignas(32) uint8_t yu[KQ_MAX_TOKS][QK_K]; /* Q3_K/Q6_K: activations + 128 */
    const uint8_t *yq[KQ_MAX_TOKS];             /* the bytes micro_tile reads per token */
    __m128i gsum[KQ_MAX_TOKS];                  /* Q4_K/Q5_K: the 8 group sums (0 past nt) */
    __m256i bsum[KQ_MAX_TOKS];                  /* Q2_K: the 16 bsums (0 past nt) */
    _Alignas(32) float yd[KQ_MAX_TOKS];         /* activation scales (0 past nt) */
    _Alignas(32) float dd[KQ_MAX_ROWS][KQ_MAX_TOKS]; /* per pair y.d * f16(x.d) */
} kq_state;

/* The per-pair float terms of the current super-block that need no integer
 * sums, 8 tokens per vector (lanes past nt are computed and never used):
 * d = y.d * f16(x.d) for every pair and, for Q2_K/Q4_K/Q5_K, the dot's
 * accm += (y.d * f16(x.dmin)) * (float)min_term, lane for lane the same IEEE
 * operations (separate mul and add, no FMA) as the dot's scalar code. */
static inline __attribute__((always_inline)) void pair_terms(const kq_kind kind, kq_state *st, int nr,
                                                             int nt) {
    for (int r = 0; r < nr; r++) {
        const kq_row *row = &st->rows[r];
        for (int t0 = 0; t0 < nt; t0 += 8) {
            const __m256 yd = _mm256_load_ps(&st->yd[t0]);
            _mm256_store_ps(&st->dd[r][t0], _mm256_mul_ps(yd, _mm256_set1_ps(row->d)));
            if (KQ_SIGNED(kind)) continue;
            __m128i p[8];
            for (int t = 0; t < 8; t++)
                if (kind == KQ_Q2_K) { /* the dot's hsum_i32x8(madd(mins, bsums)), exact in any order */
                    const __m256i m = _mm256_madd_epi16(row->mins16, st->bsum[t0 + t]);
                    p[t] = _mm_add_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
                } else {
                    p[t] = _mm_madd_epi16(row->mins, st->gsum[t0 + t]);
                }
            /* lane t = the 4 int32 of p[t] added (exact) */
            const __m128i lo = _mm_hadd_epi32(_mm_hadd_epi32(p[0], p[1]), _mm_hadd_epi32(p[2], p[3]));
            const __m128i hi = _mm_hadd_epi32(_mm_hadd_epi32(p[4], p[5]), _mm_hadd_epi32(p[6], p[7]));
            const __m256 mt = _mm256_cvtepi32_ps(_mm256_set_m128i(hi, lo));
            const __m256 dmin = _mm256_mul_ps(yd, _mm256_set1_ps(row->dmin));
            _mm256_storeu_ps(&st->accm[r][t0],
                             _mm256_add_ps(_mm256_loadu_ps(&st->accm[r][t0]), _mm256_mul_ps(dmin, mt)));
        }
    }
}

/* Rows r0.. (KQ_MR, the last repeated past nr) x tokens t0..t0+mt-1 of the
 * current super-block: integer sums, then the dot's float operations. */
static inline __attribute__((always_inline)) void run_micro(const kq_kind kind, const int mt, kq_state *st,
                                                            int r0, int nr, int t0) {
    const kq_row *rows[KQ_MR];
    for (int r = 0; r < KQ_MR; r++)
        rows[r] = &st->rows[r0 + r < nr ? r0 + r : nr - 1];
    const uint8_t *y[KQ_MT];
    for (int t = 0; t < KQ_MT; t++)
        y[t] = st->yq[t0 + (t < mt ? t : 0)];
    __m256i s[KQ_MR][KQ_MT];
    micro_tile(!KQ_SIGNED(kind), mt, rows, y, s);
    for (int r = 0; r < KQ_MR && r0 + r < nr; r++)
        for (int t = 0; t < mt; t++) {
            const int rr = r0 + r, tt = t0 + t;
            const __m256i sumi = KQ_SIGNED(kind) ? _mm256_sub_epi32(s[r][t], rows[r]->corr) : s[r][t];
            st->acc[rr][tt] = _mm256_fmadd_ps(_mm256_broadcast_ss(&st->dd[rr][tt]), _mm256_cvtepi32_ps(sumi),
                                              st->acc[rr][tt]);
        }
}

#define KQ_ROW(base, stride, i) ((const char *)(base) + (size_t)(i) * (stride))

static inline __attribute__((always_inline)) void gemm_kquant(const kq_kind kind, int64_t n, const void *w,
                                                              size_t w_stride, int nr, const void *a,
                                                              size_t a_stride, int nt, float *out,
                                                              size_t out_stride) {
    static const hearth_dtype k_type[] = {HEARTH_Q2_K, HEARTH_Q3_K, HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K};
    const hearth_dtype type = k_type[kind];
    /* decode: an unpacked row would serve too few dots (measured: per pair
     * wins at 1 and 2 tokens) */
    if (nt <= KQ_FEW_TOKS) {
        const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx2(type);
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++)
                dot(n, &out[(size_t)t * out_stride + r], KQ_ROW(w, w_stride, r), KQ_ROW(a, a_stride, t));
        return;
    }
    kq_state st;
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            st.acc[r][t] = _mm256_setzero_ps();
    memset(st.accm, 0, sizeof st.accm); /* pair_terms also adds into lanes past nt */
    memset(st.yd, 0, sizeof st.yd);
    for (int t = 0; t < KQ_MAX_TOKS; t++) {
        st.gsum[t] = _mm_setzero_si128();
        st.bsum[t] = _mm256_setzero_si256();
    }
    const int64_t nb = n / QK_K;
    const __m256i u128 = _mm256_set1_epi8((char)0x80);
    for (int64_t ib = 0; ib < nb; ib++) {
        for (int r = 0; r < nr; r++) {
            const char *row = KQ_ROW(w, w_stride, r);
            if (kind == KQ_Q2_K)
                unpack_q2_K((const block_q2_K *)row + ib, &st.rows[r]);
            else if (kind == KQ_Q3_K)
                unpack_q3_K((const block_q3_K *)row + ib, &st.rows[r]);
            else if (kind == KQ_Q4_K)
                unpack_q4_K((const block_q4_K *)row + ib, &st.rows[r]);
            else if (kind == KQ_Q5_K)
                unpack_q5_K((const block_q5_K *)row + ib, &st.rows[r]);
            else
                unpack_q6_K((const block_q6_K *)row + ib, &st.rows[r]);
        }
        for (int t = 0; t < nt; t++) {
            const block_q8_K *y = (const block_q8_K *)KQ_ROW(a, a_stride, t) + ib;
            st.yd[t] = y->d;
            if (KQ_SIGNED(kind)) {
                for (int c = 0; c < KQ_CHUNKS; c++)
                    _mm256_store_si256(
                        (__m256i *)(st.yu[t] + 32 * c),
                        _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(y->qs + 32 * c)), u128));
                st.yq[t] = st.yu[t];
            } else {
                st.yq[t] = (const uint8_t *)y->qs;
                if (kind == KQ_Q2_K)
                    st.bsum[t] = _mm256_loadu_si256((const __m256i *)y->bsums);
                else
                    st.gsum[t] = kquant_group_sums(y);
            }
        }
        pair_terms(kind, &st, nr, nt);
        for (int r0 = 0; r0 < nr; r0 += KQ_MR)
            for (int t0 = 0; t0 < nt; t0 += KQ_MT) {
                const int mt = nt - t0 < KQ_MT ? nt - t0 : KQ_MT;
                if (mt == 4)
                    run_micro(kind, 4, &st, r0, nr, t0);
                else if (mt == 3)
                    run_micro(kind, 3, &st, r0, nr, t0);
                else if (mt == 2)
                    run_micro(kind, 2, &st, r0, nr, t0);
                else
                    run_micro(kind, 1, &st, r0, nr, t0);
            }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float sum = hsum_f32x8(st.acc[r][t]);
            out[(size_t)t * out_stride + r] = KQ_SIGNED(kind) ? sum : sum - st.accm[r][t];
        }
}

static void gemm_q2_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(KQ_Q2_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q3_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(KQ_Q3_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q4_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(KQ_Q4_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q5_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(KQ_Q5_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q6_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(KQ_Q6_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

hearth_gemm_fn hearth_cpu_gemm_kquant_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
    switch (weight_type) {
    case HEARTH_Q2_K: f = gemm_q2_K; break;
    case HEARTH_Q3_K: f = gemm_q3_K; break;
    case HEARTH_Q4_K: f = gemm_q4_K; break;
    case HEARTH_Q5_K: f = gemm_q5_K; break;
    case HEARTH_Q6_K: f = gemm_q6_K; break;
    default: return NULL;
    }
    if (max_rows) *max_rows = KQ_MAX_ROWS;
    if (max_toks) *max_toks = KQ_MAX_TOKS;
    return f;
}
