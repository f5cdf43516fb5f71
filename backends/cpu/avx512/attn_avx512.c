/*
 * attn_avx512.c - the CPU attention's inner loop for an F16 K/V cache with
 * AVX-512: one query group (the G query heads that share one KV head) against
 * all its keys, flash-style (online softmax over tiles, no score matrix).
 *
 * Owned by the SIMD kernels; compiled with the AVX-512 flags and called by
 * cpu_backend.c only on CPUs with avx512f+bw+vl+vnni, for head sizes 64 and
 * 128 (hearth_attn_f16_avx512_supports). No state; thread-safe.
 *
 * How: keys go 16 at a time. Their K rows are widened to floats once (F16C)
 * and every head of the group takes its 16 dot products from them; the 16
 * partial-sum vectors are reduced together by a transpose tree (no
 * horizontal sum per key). V rows are widened once per 16 keys and added into
 * each head's accumulator, kept in registers across the 16 keys.
 *
 * Numerics: each score is bit-identical to the AVX-512 F16 dot kernel
 * (vec_dot_avx512.c: four accumulators over 16-element chunks, then
 * (a0 + a1) + (a2 + a3) and the same pairwise reduction of the 16 lanes), so
 * the scores equal the per-key path's. The softmax uses a vector exp (relative
 * error ~2e-7 against expf) and sums the weights of 16 keys at a time; the
 * weighted V sum does one fused multiply-add per key and element in key order,
 * as the per-key path does. Tiles of ATT_TILE keys start at absolute
 * positions, so a query's result does not depend on the batch around it.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backends/cpu/cpu_attn.h"

/* PREFETCH_CHUNKS: how far ahead (in 16-key chunks) rows are requested */
enum { TILE = HEARTH_ATTN_TILE, CHUNK = 16, PREFETCH_CHUNKS = 4 };

bool hearth_attn_f16_avx512_supports(int head_dim) {
    return head_dim == 64 || head_dim == 128;
}

size_t hearth_attn_f16_avx512_scratch(int group, int head_dim) {
    /* K and V chunks as floats; per (query, head): scores, accumulator, max, sum */
    const size_t nq = (size_t)HEARTH_ATTN_MAX_Q * group;
    return sizeof(float) * (2 * (size_t)CHUNK * head_dim + nq * (TILE + head_dim + 2)) + 64;
}

/* e^x on 16 lanes (x <= 0 here): x = n ln2 + r, e^r by a degree-6 polynomial,
 * 2^n through the exponent bits; lanes below -87.3 (and -inf) give 0. */
static inline __m512 exp16(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(live, p, _mm512_castsi512_ps(e));
}

/* Lane j of the result = the 16-lane sum of p[j], reduced in the pairing of
 * _mm512_reduce_add_ps (lane i + lane i+8, then i + i+4, i + i+2, i + i+1),
 * so each equals that function's result exactly. */
static inline __m512 reduce16x16(__m512 p[16]) {
    __m512 w[8], x[4], y[2];
    for (int j = 0; j < 8; j++) /* key 2j in lanes 0..7, key 2j+1 in 8..15 */
        w[j] = _mm512_add_ps(_mm512_shuffle_f32x4(p[2 * j], p[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(p[2 * j], p[2 * j + 1], 0xEE));
    for (int j = 0; j < 4; j++) /* 128-bit lane k: key 4j+k, four partials */
        x[j] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * j], w[2 * j + 1], 0xDD));
    for (int j = 0; j < 2; j++) /* lane k: keys 8j+k and 8j+4+k, two partials each */
        y[j] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * j], x[2 * j + 1], 0x44),
                             _mm512_shuffle_ps(x[2 * j], x[2 * j + 1], 0xEE));
    /* lane 4k+m: key 4m+k */
    const __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, z);
}

/* Rows of keys [p, p + nk) widened to floats in dst[i * hd], zeros past nk.
 * The rows PREFETCH_CHUNKS chunks ahead are requested meanwhile: a decode
 * step reads the cache from memory, one head's slice of each slot, which the
 * hardware prefetchers do not follow well (4 chunks ahead measured ~7% less
 * CPU time than 1 for a stories110m tg128 at 512-640 positions). */
static inline void widen_rows(const int nc, const hearth_attn_f16_args *a, const char *base, size_t stride,
                              int p, int nk, int n_kv, float *dst) {
    const int hd = 16 * nc;
    const int pn_from = p + PREFETCH_CHUNKS * CHUNK, pn_end = pn_from + CHUNK < n_kv ? pn_from + CHUNK : n_kv;
    if (pn_from < pn_end) {
        int pg = pn_from / a->page_size, off = pn_from % a->page_size;
        for (int pn = pn_from; pn < pn_end; pn++) {
            const char *row = base + ((size_t)a->page_table[pg] * a->page_size + off) * stride;
            for (int b = 0; b < 2 * hd; b += 64)
                _mm_prefetch(row + b, _MM_HINT_T0);
            if (++off == a->page_size) off = 0, pg++;
        }
    }
    int pg = p / a->page_size, off = p % a->page_size;
    for (int i = 0; i < CHUNK; i++) {
        if (i < nk) {
            const uint16_t *row =
                (const uint16_t *)(base + ((size_t)a->page_table[pg] * a->page_size + off) * stride);
            for (int c = 0; c < nc; c++)
                _mm512_store_ps(dst + i * hd + 16 * c,
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * c))));
            if (++off == a->page_size) off = 0, pg++;
        } else {
            for (int c = 0; c < nc; c++)
                _mm512_store_ps(dst + i * hd + 16 * c, _mm512_setzero_ps());
        }
    }
}

void hearth_attn_f16_avx512_prefetch(const hearth_attn_f16_args *a) {
    int n_kv = 0;
    for (int i = 0; i < a->n_q; i++)
        n_kv = a->n_kv[i] > n_kv ? a->n_kv[i] : n_kv;
    const int end = n_kv < PREFETCH_CHUNKS * CHUNK ? n_kv : PREFETCH_CHUNKS * CHUNK;
    int pg = 0, off = 0;
    for (int p = 0; p < end; p++) {
        const size_t slot = (size_t)a->page_table[pg] * a->page_size + off;
        const char *k = a->k + slot * a->k_stride, *v = a->v + slot * a->v_stride;
        for (int b = 0; b < 2 * a->head_dim; b += 64) {
            _mm_prefetch(k + b, _MM_HINT_T1);
            _mm_prefetch(v + b, _MM_HINT_T1);
        }
        if (++off == a->page_size) off = 0, pg++;
    }
}

static inline __attribute__((always_inline)) void attn_group(const int nc, const hearth_attn_f16_args *a,
                                                             const uint16_t *const q16[], float *const out[],
                                                             float *scr, int n_kv_max) {
    const int G = a->group, hd = 16 * nc, NQ = a->n_q * G;         /* (query, head) pairs, qh = i * G + h */
    float *kf = (float *)(((uintptr_t)scr + 63) & ~(uintptr_t)63); /* [CHUNK][hd] */
    float *vf = kf + CHUNK * hd;                                   /* [CHUNK][hd] */
    float *s = vf + CHUNK * hd;                                    /* [NQ][TILE] */
    float *acc = s + (size_t)NQ * TILE;                            /* [NQ][hd] */
    float *mx = acc + (size_t)NQ * hd, *l = mx + NQ;
    for (int qh = 0; qh < NQ; qh++) {
        mx[qh] = -INFINITY;
        l[qh] = 0;
        for (int c = 0; c < nc; c++)
            _mm512_store_ps(acc + qh * hd + 16 * c, _mm512_setzero_ps());
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int p0 = 0; p0 < n_kv_max; p0 += TILE) {
        const int nt_max = n_kv_max - p0 < TILE ? n_kv_max - p0 : TILE;
        int nt_q[HEARTH_ATTN_MAX_Q]; /* keys of this tile each query sees (<= 0: none) */
        for (int i = 0; i < a->n_q; i++)
            nt_q[i] = a->n_kv[i] - p0 < TILE ? a->n_kv[i] - p0 : TILE;
        /* scores of the tile, 16 keys at a time, every query and head */
        for (int c0 = 0; c0 < nt_max; c0 += CHUNK) {
            widen_rows(nc, a, a->k, a->k_stride, p0 + c0, nt_max - c0 < CHUNK ? nt_max - c0 : CHUNK, n_kv_max,
                       kf);
            for (int qh = 0; qh < NQ; qh++) {
                const int qi = qh / G, h = qh % G, nk = nt_q[qi] - c0 < CHUNK ? nt_q[qi] - c0 : CHUNK;
                if (nk <= 0) continue;
                __m512 qv[8];
                for (int c = 0; c < nc; c++)
                    qv[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q16[qi] + h * hd + 16 * c)));
                __m512 part[CHUNK];
                for (int i = 0; i < CHUNK; i++) {
                    /* the F16 dot kernel's accumulators: chunk c into a[c % 4] */
                    __m512 a4[4] = {zero, zero, zero, zero};
                    for (int c = 0; c < nc; c++)
                        a4[c % 4] = _mm512_fmadd_ps(_mm512_load_ps(kf + i * hd + 16 * c), qv[c], a4[c % 4]);
                    part[i] = _mm512_add_ps(_mm512_add_ps(a4[0], a4[1]), _mm512_add_ps(a4[2], a4[3]));
                }
                const __mmask16 valid = (__mmask16)(nk == CHUNK ? 0xFFFF : (1u << nk) - 1);
                const __m512 sc = _mm512_mul_ps(reduce16x16(part), _mm512_set1_ps(a->scale));
                _mm512_storeu_ps(s + qh * TILE + c0,
                                 _mm512_mask_blend_ps(valid, _mm512_set1_ps(-INFINITY), sc));
            }
        }
        /* online softmax update */
        for (int qh = 0; qh < NQ; qh++) {
            const int nt = nt_q[qh / G];
            if (nt <= 0) continue;
            const int nv = (nt + CHUNK - 1) / CHUNK; /* score vectors; lanes past nt hold -inf */
            float *sh = s + qh * TILE;
            __m512 m = _mm512_set1_ps(mx[qh]);
            for (int v = 0; v < nv; v++)
                m = _mm512_max_ps(m, _mm512_loadu_ps(sh + 16 * v));
            const float tmax = _mm512_reduce_max_ps(m);
            const float c = expf(mx[qh] - tmax); /* 0 on the first tile (mx = -inf) */
            if (c != 1.0f) {
                for (int k = 0; k < nc; k++)
                    _mm512_store_ps(acc + qh * hd + 16 * k,
                                    _mm512_mul_ps(_mm512_load_ps(acc + qh * hd + 16 * k), _mm512_set1_ps(c)));
                l[qh] *= c;
            }
            mx[qh] = tmax;
            const __m512 tm = _mm512_set1_ps(tmax);
            __m512 sum = zero;
            for (int v = 0; v < nv; v++) {
                const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(sh + 16 * v), tm));
                _mm512_storeu_ps(sh + 16 * v, e);
                sum = _mm512_add_ps(sum, e);
            }
            l[qh] += _mm512_reduce_add_ps(sum);
        }
        /* weighted values: acc += w_i * v_i, key by key */
        for (int c0 = 0; c0 < nt_max; c0 += CHUNK) {
            widen_rows(nc, a, a->v, a->v_stride, p0 + c0, nt_max - c0 < CHUNK ? nt_max - c0 : CHUNK, n_kv_max,
                       vf);
            for (int qh = 0; qh < NQ; qh++) {
                const int nk = nt_q[qh / G] - c0 < CHUNK ? nt_q[qh / G] - c0 : CHUNK;
                if (nk <= 0) continue;
                __m512 ac[8];
                for (int c = 0; c < nc; c++)
                    ac[c] = _mm512_load_ps(acc + qh * hd + 16 * c);
                const float *wh = s + qh * TILE + c0;
                for (int i = 0; i < nk; i++) {
                    const __m512 w = _mm512_set1_ps(wh[i]);
                    for (int c = 0; c < nc; c++)
                        ac[c] = _mm512_fmadd_ps(w, _mm512_load_ps(vf + i * hd + 16 * c), ac[c]);
                }
                for (int c = 0; c < nc; c++)
                    _mm512_store_ps(acc + qh * hd + 16 * c, ac[c]);
            }
        }
    }
    for (int qh = 0; qh < NQ; qh++) {
        const __m512 inv = _mm512_set1_ps(1.0f / l[qh]);
        float *o = out[qh / G] + (qh % G) * hd;
        for (int c = 0; c < nc; c++)
            _mm512_storeu_ps(o + 16 * c, _mm512_mul_ps(_mm512_load_ps(acc + qh * hd + 16 * c), inv));
    }
}

void hearth_attn_f16_avx512(const hearth_attn_f16_args *a, const uint16_t *const q16[], float *const out[],
                            void *scratch) {
    int n_kv_max = 0;
    for (int i = 0; i < a->n_q; i++)
        n_kv_max = a->n_kv[i] > n_kv_max ? a->n_kv[i] : n_kv_max;
    if (a->head_dim == 64)
        attn_group(4, a, q16, out, scratch, n_kv_max);
    else
        attn_group(8, a, q16, out, scratch, n_kv_max);
}
