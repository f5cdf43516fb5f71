/*
 * gemm_kquant_avx512.c - register-tiled GEMM kernels (AVX-512 F/BW/VL +
 * VNNI) for Q4_K and Q6_K weights against Q8_K activations: up to
 * KQ512_MAX_ROWS weight rows x KQ512_MAX_TOKS activation rows per call.
 *
 * Owned by the GEMM kernels; compiled with the AVX-512 flags and reached only
 * through hearth_cpu_gemm_avx512 (gemm_avx512.c), i.e. on CPUs with
 * avx512f+bw+vl+vnni. No state; thread-safe.
 *
 * Scheme: the per-pair dots (vec_dot_avx512.c) spend most of their time
 * unpacking a weight super-block (nibbles or 6-bit levels, the per-lane scale
 * vectors), work that depends only on the weight row. Here the tokens are
 * taken in chunks of up to 16; for each row of the tile and each super-block
 * the weights are unpacked once (kquant_avx512.h) and serve every token of
 * the chunk, whose 16-lane float accumulators stay in registers across the
 * row's blocks. Q4_K's min term, one scalar running sum per pair in the dot,
 * runs here with the chunk's tokens in the 16 lanes of one vector, from
 * per-token block terms (group sums, d) prepared once per chunk.
 *
 * Invariant (checked by tests/unit/backends/test_gemm.c): every output is
 * BIT-IDENTICAL to the per-pair dot of its type: the same exact int32 lane
 * sums (the header's helpers; Q6_K in its signed form, same lane values),
 * per lane the dot's float operations in its order (d = d_a * d_w;
 * acc = fma(d, sumi, acc); Q4_K: accm += (d_a * dmin_w) * isum), and the
 * dot's final reduction (reduce_add(acc) [- accm]). One token (decode), and
 * rows too long for the prepared terms, go through the dot (Q4_K: two
 * tokens too).
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/avx2/simd_kernels.h"
#include "backends/cpu/avx512/kquant_avx512.h"

enum {
    KQ_CHUNK = 16,       /* tokens per chunk: one vector lane each in the min term */
    KQ_MAX_BLOCKS = 128, /* super-blocks per row the chunk terms hold (n <= 32768) */
};

#define ROW_AT(base, stride, i) ((const char *)(base) + (size_t)(i) * (stride))

/* Per-pair dot for every pair (decode, and rows longer than KQ_MAX_BLOCKS). */
static void kq_per_pair(hearth_dtype type, int64_t n, const void *w, size_t w_stride, int nr, const void *a,
                        size_t a_stride, int nt, float *out, size_t out_stride) {
    const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_avx512(type);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            dot(n, &out[(size_t)t * out_stride + r], ROW_AT(w, w_stride, r), ROW_AT(a, a_stride, t));
}

// ---------------------------------------------------------------- Q4_K

/* The chunk's per-token block terms of Q4_K's min term, tokens in lanes:
 * g2[ib][k][t] = the int16 pair (group sum 2k, group sum 2k+1) of token t's
 * block ib (the operand kq512_q4_K_min_isum multiplies the mins with), and
 * d[ib][t] its d. Lanes past the chunk's tokens repeat its last token. */
typedef struct q4k_terms {
    _Alignas(64) int32_t g2[KQ_MAX_BLOCKS][4][KQ_CHUNK];
    _Alignas(64) float d[KQ_MAX_BLOCKS][KQ_CHUNK];
} q4k_terms;

static void q4k_terms_fill(q4k_terms *tm, int64_t nb, const block_q8_K *const y[KQ_CHUNK]) {
    for (int64_t ib = 0; ib < nb; ib++)
        for (int t = 0; t < KQ_CHUNK; t++) {
            const block_q8_K *b = &y[t][ib];
            const __m256i bs = _mm256_loadu_si256((const __m256i *)b->bsums);
            _Alignas(16) int32_t g[4];
            _mm_store_si128((__m128i *)g,
                            _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1)));
            for (int k = 0; k < 4; k++)
                tm->g2[ib][k][t] = g[k];
            tm->d[ib][t] = b->d;
        }
}

/* One Q4_K row against the chunk's NT tokens (y[t], t < NT; only t < nt are
 * stored). NT is a compile-time constant at each call, so acc[] lives in
 * registers. */
static inline __attribute__((always_inline)) void q4k_row(const int NT, int64_t nb, const block_q4_K *x,
                                                          const block_q8_K *const y[KQ_CHUNK],
                                                          const q4k_terms *tm, int nt, float *out,
                                                          size_t out_stride) {
    __m512 acc[KQ_CHUNK];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm512_setzero_ps();
    __m512 accm = _mm512_setzero_ps(); /* lane t: token t's min-term running sum */
    for (int64_t ib = 0; ib < nb; ib++) {
        const float dw = _cvtsh_ss(x[ib].d), dminw = _cvtsh_ss(x[ib].dmin);
        __m512i q[4], sc[4];
        const __m256i sm16 = kq512_q4_K_unpack(&x[ib], q, sc);
        /* isum[t] = sum_k madd((m_2k, m_2k+1), (g_2k, g_2k+1) of token t), exact */
        const __m128i mins = _mm256_extracti128_si256(sm16, 1);
        __m512i isum = _mm512_madd_epi16(_mm512_load_si512(tm->g2[ib][0]), _mm512_broadcastd_epi32(mins));
        isum = _mm512_dpwssd_epi32(isum, _mm512_load_si512(tm->g2[ib][1]),
                                   _mm512_broadcastd_epi32(_mm_shuffle_epi32(mins, 0x55)));
        isum = _mm512_dpwssd_epi32(isum, _mm512_load_si512(tm->g2[ib][2]),
                                   _mm512_broadcastd_epi32(_mm_shuffle_epi32(mins, 0xAA)));
        isum = _mm512_dpwssd_epi32(isum, _mm512_load_si512(tm->g2[ib][3]),
                                   _mm512_broadcastd_epi32(_mm_shuffle_epi32(mins, 0xFF)));
        /* dot: dmin = d_a * dmin_w; accm += dmin * (float)isum */
        const __m512 dmin = _mm512_mul_ps(_mm512_load_ps(tm->d[ib]), _mm512_set1_ps(dminw));
        accm = _mm512_add_ps(accm, _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(isum)));
#pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const block_q8_K *b = &y[t][ib];
            const __m512i sumi = kq512_q4_K_sumi(q, sc, b->qs);
            /* dot: d = d_a * d_w; acc = fma(d, sumi, acc) */
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(b->d * dw), _mm512_cvtepi32_ps(sumi), acc[t]);
        }
    }
    _Alignas(64) float m[KQ_CHUNK];
    _mm512_store_ps(m, accm);
    for (int t = 0; t < nt; t++)
        out[(size_t)t * out_stride] = _mm512_reduce_add_ps(acc[t]) - m[t];
}

static void gemm_q4_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    const int64_t nb = n / QK_K;
    /* 2 tokens: the tile measured 26 against the dot's 31 GMAC/s (test_gemm) */
    if (nt < 3 || nb > KQ_MAX_BLOCKS) {
        kq_per_pair(HEARTH_Q4_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
        return;
    }
    q4k_terms tm;
    for (int t0 = 0; t0 < nt; t0 += KQ_CHUNK) {
        const int ntc = nt - t0 < KQ_CHUNK ? nt - t0 : KQ_CHUNK;
        const block_q8_K *y[KQ_CHUNK]; /* tokens past ntc repeat the last one */
        for (int t = 0; t < KQ_CHUNK; t++)
            y[t] = (const block_q8_K *)ROW_AT(a, a_stride, t0 + (t < ntc ? t : ntc - 1));
        q4k_terms_fill(&tm, nb, y);
        float *o = out + (size_t)t0 * out_stride;
        for (int r = 0; r < nr; r++) {
            const block_q4_K *x = (const block_q4_K *)ROW_AT(w, w_stride, r);
            if (ntc > 8)
                q4k_row(16, nb, x, y, &tm, ntc, o + r, out_stride);
            else if (ntc > 4)
                q4k_row(8, nb, x, y, &tm, ntc, o + r, out_stride);
            else if (ntc > 2)
                q4k_row(4, nb, x, y, &tm, ntc, o + r, out_stride);
            else
                q4k_row(2, nb, x, y, &tm, ntc, o + r, out_stride);
        }
    }
}

// ---------------------------------------------------------------- Q6_K

/* One Q6_K row against the chunk's NT tokens (as q4k_row, no min term). The
 * levels are made signed once per block (kq512_q6_K_signed) so that a token
 * costs a byte flip, maddubs and dpwssd per step: measured 55 -> 66 GMAC/s
 * against the dot's form (two maddubs and a subtraction per step), and with
 * that, 16-token chunks no longer lose to 8 (72 GMAC/s). */
static inline __attribute__((always_inline)) void q6k_row(const int NT, int64_t nb, const block_q6_K *x,
                                                          const block_q8_K *const y[KQ_CHUNK], int nt,
                                                          float *out, size_t out_stride) {
    __m512 acc[KQ_CHUNK];
    for (int t = 0; t < NT; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t ib = 0; ib < nb; ib++) {
        const float dw = _cvtsh_ss(x[ib].d);
        __m512i q[4], sc[4];
        kq512_q6_K_unpack(&x[ib], q, sc);
        const __m512i corr = kq512_q6_K_signed(q, sc);
#pragma GCC unroll 16
        for (int t = 0; t < NT; t++) {
            const block_q8_K *b = &y[t][ib];
            const __m512i sumi = kq512_q6_K_sumi_signed(q, sc, corr, b->qs);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(b->d * dw), _mm512_cvtepi32_ps(sumi), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[(size_t)t * out_stride] = _mm512_reduce_add_ps(acc[t]);
}

static void gemm_q6_K(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                      int nt, float *out, size_t out_stride) {
    const int64_t nb = n / QK_K;
    if (nt < 2) {
        kq_per_pair(HEARTH_Q6_K, n, w, w_stride, nr, a, a_stride, nt, out, out_stride);
        return;
    }
    for (int t0 = 0; t0 < nt; t0 += KQ_CHUNK) {
        const int ntc = nt - t0 < KQ_CHUNK ? nt - t0 : KQ_CHUNK;
        const block_q8_K *y[KQ_CHUNK];
        for (int t = 0; t < KQ_CHUNK; t++)
            y[t] = (const block_q8_K *)ROW_AT(a, a_stride, t0 + (t < ntc ? t : ntc - 1));
        float *o = out + (size_t)t0 * out_stride;
        for (int r = 0; r < nr; r++) {
            const block_q6_K *x = (const block_q6_K *)ROW_AT(w, w_stride, r);
            if (ntc > 8)
                q6k_row(16, nb, x, y, ntc, o + r, out_stride);
            else if (ntc > 4)
                q6k_row(8, nb, x, y, ntc, o + r, out_stride);
            else if (ntc > 2)
                q6k_row(4, nb, x, y, ntc, o + r, out_stride);
            else
                q6k_row(2, nb, x, y, ntc, o + r, out_stride);
        }
    }
}

// ---------------------------------------------------------------- getter

hearth_gemm_fn hearth_cpu_gemm_kquant_avx512(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_Q4_K: return gemm_q4_K;
    case HEARTH_Q6_K: return gemm_q6_K;
    default: return NULL;
    }
}
