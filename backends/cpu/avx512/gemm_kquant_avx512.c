/*
 * gemm_kquant_avx512.c - register-tiled GEMM kernels (AVX-512 F/BW/VL +
 * VNNI) of the CPU backend for Q4_K and Q6_K against Q8_K activations, the
 * two K-quants whose per-pair dots this family has (vec_dot_avx512.c): up to
 * KQ_MAX_ROWS weight rows x KQ_MAX_TOKS activation rows per call.
 *
 * Owned by the GEMM kernels; compiled with the AVX-512 flags and reached
 * only through hearth_cpu_gemm_avx512 (gemm_avx512.c), hence hearth_cpu_gemm,
 * which pairs it with this family's dots only. No state; thread-safe.
 *
 * Same scheme as ../avx2/gemm_kquant_avx2.c, on this family's chunking: per
 * 256-element super-block each row is unpacked once into four 64-element
 * chunks (the dot's register layout) with the int16 scale vector of each,
 * and serves every token of the call; a micro tile of KQ_MR rows x KQ_MT
 * tokens keeps its 16 integer sums in zmm registers (per chunk and pair one
 * vpmaddubsw and one vpdpwssd, which is the dot's madd + add in one exact
 * instruction).
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is
 * BIT-IDENTICAL to this family's per-pair dot: int32 lane L (of 16) holds the
 * dot's exact integer (elements 64c + 4L .. 64c + 4L + 3 of every chunk c,
 * times their scale; Q6_K as (activation + 128) x signed level minus the
 * row's 128 * sum(scale * level), exactly), and per super-block the dot's
 * float operations in its order: acc = fmadd(set1(y.d * f16(x.d)),
 * cvt(sumi), acc), Q4_K also accm += (y.d * f16(x.dmin)) * (float)min_term;
 * at the end _mm512_reduce_add_ps(acc) - accm (Q6_K: without accm).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/avx2/gemm_kernels.h"
#include "backends/cpu/avx2/kquant_avx2.h"
#include "backends/cpu/avx2/simd_kernels.h"

enum { KQ_MAX_ROWS = 8, KQ_MAX_TOKS = 16, KQ_MR = 4, KQ_MT = 4, KQ_CHUNKS = QK_K / 64, KQ_FEW_TOKS = 2 };

typedef struct {
    __m512i q[KQ_CHUNKS];  /* chunk c: levels of elements 64c..64c+63 (Q4_K u8, Q6_K s8) */
    __m512i sc[KQ_CHUNKS]; /* int16 multipliers of chunk c's 32 maddubs pairs */
    __m512i corr;          /* Q6_K: per lane 128 * sum(scale * level) */
    __m128i mins;          /* Q4_K: the 8 mins as int16 */
    float d, dmin;
} kq_row;

/* Q4_K chunk j: low nibbles of qs[32j..32j+31], then their high nibbles;
 * int16 lanes 0..15 take scale 2j, 16..31 scale 2j + 1. */
static inline void unpack_q4_K(const block_q4_K *x, kq_row *row) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    _Alignas(16) uint8_t sm[16];
    _mm_store_si128((__m128i *)sm, kquant_scales_mins(x->scales));
    for (int j = 0; j < KQ_CHUNKS; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        row->q[j] =
            _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
        row->sc[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)sm[2 * j])),
                                        _mm256_set1_epi16((short)sm[2 * j + 1]), 1);
    }
    row->mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
    row->d = _cvtsh_ss(x->d);
    row->dmin = _cvtsh_ss(x->dmin);
}

/* Q6_K chunk 2h + k: elements 128h + 64k .. +63, levels - 32 as signed
 * bytes; int16 lane l takes scale 4c + l / 8. */
static inline void unpack_q6_K(const block_q6_K *x, kq_row *row) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m32 = _mm512_set1_epi8(32),
                  u128 = _mm512_set1_epi8((char)0x80);
    const __m512i mask_a = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
    const __m512i mask_b = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
    const __m512i shl_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i pick = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
                                          1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i sc16 =
        _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
    __m512i corr = _mm512_setzero_si512();
    for (int half = 0; half < 2; half++) {
        const __m512i l = _mm512_loadu_si512(x->ql + 64 * half);
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * half)));
        __m512i q[2];
        q[0] =
            _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_sllv_epi16(_mm512_and_si512(h, mask_a), shl_a));
        q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                               _mm512_srlv_epi16(_mm512_and_si512(h, mask_b), shr_b));
        for (int k = 0; k < 2; k++) {
            const int c = 2 * half + k;
            row->q[c] = _mm512_sub_epi8(q[k], m32);
            row->sc[c] =
                _mm512_permutexvar_epi16(_mm512_add_epi16(pick, _mm512_set1_epi16((short)(4 * c))), sc16);
            corr = _mm512_dpwssd_epi32(corr, _mm512_maddubs_epi16(u128, row->q[c]), row->sc[c]);
        }
    }
    row->corr = corr;
    row->d = _cvtsh_ss(x->d);
    row->dmin = 0;
}

static inline __attribute__((always_inline)) void micro_tile(const int w_unsigned, const int mt,
                                                             const kq_row *const rows[KQ_MR],
                                                             const uint8_t *const y[KQ_MT],
                                                             __m512i s[KQ_MR][KQ_MT]) {
    for (int r = 0; r < KQ_MR; r++)
        for (int t = 0; t < mt; t++)
            s[r][t] = _mm512_setzero_si512();
    for (int c = 0; c < KQ_CHUNKS; c++) {
        __m512i yv[KQ_MT];
        for (int t = 0; t < mt; t++)
            yv[t] = _mm512_loadu_si512(y[t] + 64 * c);
        for (int r = 0; r < KQ_MR; r++) {
            const __m512i wv = rows[r]->q[c], sc = rows[r]->sc[c];
            for (int t = 0; t < mt; t++) {
                const __m512i p =
                    w_unsigned ? _mm512_maddubs_epi16(wv, yv[t]) : _mm512_maddubs_epi16(yv[t], wv);
                s[r][t] = _mm512_dpwssd_epi32(s[r][t], p, sc);
            }
        }
    }
}

typedef struct {
    __m512 acc[KQ_MAX_ROWS][KQ_MAX_TOKS];
    _Alignas(32) float accm[KQ_MAX_ROWS][KQ_MAX_TOKS];
    kq_row rows[KQ_MAX_ROWS];
    _Alignas(64) uint8_t yu[KQ_MAX_TOKS][QK_K]; /* Q6_K: activations + 128 */
    const uint8_t *yq[KQ_MAX_TOKS];
    __m128i gsum[KQ_MAX_TOKS];
    _Alignas(32) float yd[KQ_MAX_TOKS];
    _Alignas(32) float dd[KQ_MAX_ROWS][KQ_MAX_TOKS];
} kq_state;

/* d per pair, and Q4_K's accm += (y.d * f16(x.dmin)) * (float)min_term, 8
 * tokens per vector with the dot's scalar operations lane for lane. */
static inline void pair_terms(const int has_mins, kq_state *st, int nr, int nt) {
    for (int r = 0; r < nr; r++) {
        const kq_row *row = &st->rows[r];
        for (int t0 = 0; t0 < nt; t0 += 8) {
            const __m256 yd = _mm256_load_ps(&st->yd[t0]);
            _mm256_store_ps(&st->dd[r][t0], _mm256_mul_ps(yd, _mm256_set1_ps(row->d)));
            if (!has_mins) continue;
            __m128i p[8];
            for (int t = 0; t < 8; t++)
                p[t] = _mm_madd_epi16(row->mins, st->gsum[t0 + t]);
            const __m128i lo = _mm_hadd_epi32(_mm_hadd_epi32(p[0], p[1]), _mm_hadd_epi32(p[2], p[3]));
            const __m128i hi = _mm_hadd_epi32(_mm_hadd_epi32(p[4], p[5]), _mm_hadd_epi32(p[6], p[7]));
            const __m256 mt = _mm256_cvtepi32_ps(_mm256_set_m128i(hi, lo));
            const __m256 dmin = _mm256_mul_ps(yd, _mm256_set1_ps(row->dmin));
            _mm256_store_ps(&st->accm[r][t0],
                            _mm256_add_ps(_mm256_load_ps(&st->accm[r][t0]), _mm256_mul_ps(dmin, mt)));
        }
    }
}

static inline __attribute__((always_inline)) void run_micro(const int q6, const int mt, kq_state *st, int r0,
                                                            int nr, int t0) {
    const kq_row *rows[KQ_MR];
    for (int r = 0; r < KQ_MR; r++)
        rows[r] = &st->rows[r0 + r < nr ? r0 + r : nr - 1];
    const uint8_t *y[KQ_MT];
    for (int t = 0; t < KQ_MT; t++)
        y[t] = st->yq[t0 + (t < mt ? t : 0)];
    __m512i s[KQ_MR][KQ_MT];
    micro_tile(!q6, mt, rows, y, s);
    for (int r = 0; r < KQ_MR && r0 + r < nr; r++)
        for (int t = 0; t < mt; t++) {
            const int rr = r0 + r, tt = t0 + t;
            const __m512i sumi = q6 ? _mm512_sub_epi32(s[r][t], rows[r]->corr) : s[r][t];
            st->acc[rr][tt] =
                _mm512_fmadd_ps(_mm512_set1_ps(st->dd[rr][tt]), _mm512_cvtepi32_ps(sumi), st->acc[rr][tt]);
        }
}

#define KQ_ROW(base, stride, i) ((const char *)(base) + (size_t)(i) * (stride))

static inline __attribute__((always_inline)) void gemm_kquant(const int q6, int64_t n, const void *w,
                                                              size_t w_stride, int nr, const void *a,
                                                              size_t a_stride, int nt, float *out,
                                                              size_t out_stride) {
    if (nt <= KQ_FEW_TOKS) { /* decode: per pair (an unpacked row would serve too few dots) */
        const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx512(q6 ? HEARTH_Q6_K : HEARTH_Q4_K);
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++)
                dot(n, &out[(size_t)t * out_stride + r], KQ_ROW(w, w_stride, r), KQ_ROW(a, a_stride, t));
        return;
    }
    kq_state st;
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            st.acc[r][t] = _mm512_setzero_ps();
    memset(st.accm, 0, sizeof st.accm);
    memset(st.yd, 0, sizeof st.yd);
    for (int t = 0; t < KQ_MAX_TOKS; t++)
        st.gsum[t] = _mm_setzero_si128();
    const __m512i u128 = _mm512_set1_epi8((char)0x80);
    for (int64_t ib = 0; ib < n / QK_K; ib++) {
        for (int r = 0; r < nr; r++) {
            const char *row = KQ_ROW(w, w_stride, r);
            if (q6)
                unpack_q6_K((const block_q6_K *)row + ib, &st.rows[r]);
            else
                unpack_q4_K((const block_q4_K *)row + ib, &st.rows[r]);
        }
        for (int t = 0; t < nt; t++) {
            const block_q8_K *y = (const block_q8_K *)KQ_ROW(a, a_stride, t) + ib;
            st.yd[t] = y->d;
            if (q6) {
                for (int c = 0; c < KQ_CHUNKS; c++)
                    _mm512_store_si512((__m512i *)(st.yu[t] + 64 * c),
                                       _mm512_xor_si512(_mm512_loadu_si512(y->qs + 64 * c), u128));
                st.yq[t] = st.yu[t];
            } else {
                st.yq[t] = (const uint8_t *)y->qs;
                st.gsum[t] = kquant_group_sums(y);
            }
        }
        pair_terms(!q6, &st, nr, nt);
        for (int r0 = 0; r0 < nr; r0 += KQ_MR)
            for (int t0 = 0; t0 < nt; t0 += KQ_MT) {
                const int mt = nt - t0 < KQ_MT ? nt - t0 : KQ_MT;
                if (mt == 4)
                    run_micro(q6, 4, &st, r0, nr, t0);
                else if (mt == 3)
                    run_micro(q6, 3, &st, r0, nr, t0);
                else if (mt == 2)
                    run_micro(q6, 2, &st, r0, nr, t0);
                else
                    run_micro(q6, 1, &st, r0, nr, t0);
            }
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float sum = _mm512_reduce_add_ps(st.acc[r][t]);
            out[(size_t)t * out_stride + r] = q6 ? sum : sum - st.accm[r][t];
        }
}

static void gemm_q4_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(0, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

static void gemm_q6_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    gemm_kquant(1, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
}

hearth_gemm_fn hearth_cpu_gemm_kquant_avx512(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
    switch (weight_type) {
    case HEARTH_Q4_K: f = gemm_q4_K; break;
    case HEARTH_Q6_K: f = gemm_q6_K; break;
    default: return NULL;
    }
    if (max_rows) *max_rows = KQ_MAX_ROWS;
    if (max_toks) *max_toks = KQ_MAX_TOKS;
    return f;
}
