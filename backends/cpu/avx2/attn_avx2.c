/*
 * attn_avx2.c - AVX2+FMA+F16C pieces of the CPU attention: the weighted sum
 * of V rows (y += a * x; exact: one FMA per element, as the scalar loop), the
 * SwiGLU gate, the encoders' GELU, and the flash-attention group kernel for an F16 K/V cache
 * (hearth_attn_f16_avx2, the AVX2 counterpart of avx512/attn_avx512.c).
 *
 * Owned by the SIMD kernels; compiled with -mavx2 -mfma -mf16c and called by
 * cpu_backend.c only on CPUs with avx2+fma+f16c. No state; thread-safe.
 *
 * Group kernel: keys go 8 at a time. Their K rows are widened to floats once
 * and every (query, head) pair takes its 8 dot products from them, two keys
 * side by side; the 8 partial-sum vectors are reduced together by a
 * transpose tree. V rows are widened once per 8 keys and added into each
 * head's accumulator, 8 vectors (64 elements) at a time in registers.
 *
 * Numerics: each score is bit-identical to the AVX2 F16 dot kernel
 * (vec_dot_avx2.c dot_f16: 8-element chunk c into accumulator c % 4, then
 * (a0 + a1) + (a2 + a3) and hsum_f32x8's pairing of the lanes), so it equals
 * the per-key path's score. Head sizes 32, 64 and 128. The softmax uses a vector exp (relative error
 * ~2e-7 against expf); the weighted V sum does one FMA per key and element in
 * key order. Tiles of HEARTH_ATTN_TILE keys start at absolute positions, so a
 * query's result does not depend on the batch around it.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "backends/cpu/cpu_attn.h"
#include "core/dtype.h"

void hearth_axpy_f16_avx2(int n, float *y, float a, const uint16_t *x) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 yv = _mm256_loadu_ps(y + i);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, yv));
    }
    for (; i < n; i++) y[i] = fmaf(a, hearth_f16_to_f32(x[i]), y[i]);
}

void hearth_axpy_f32_avx2(int n, float *y, float a, const float *x) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* e^x for 8 floats: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6
 * polynomial (relative error ~2e-7, near float rounding), 2^n through the
 * exponent bits. Inputs are clamped to [-87.3, 88.7] (the float range). */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void hearth_silu_mul_avx2(int n, float *out, const float *g, const float *u) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 den = _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), gv)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, den), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* GELU, tanh form: 0.5 x (1 + tanh u) = x / (1 + e^(-2u)); e^(-2u) clamps
 * at the float range, so large |x| give x and 0 as the scalar form does. */
void hearth_gelu_avx2(int n, float *out, const float *x) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(-2.0f * 0.79788456080286535588f),
                 a = _mm256_set1_ps(0.044715f);
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(a, xv), xv, one); /* 1 + a x^2 */
        __m256 den = _mm256_add_ps(one, exp8(_mm256_mul_ps(c, _mm256_mul_ps(xv, inner))));
        _mm256_storeu_ps(out + i, _mm256_div_ps(xv, den));
    }
    for (; i < n; i++) {
        const float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v)));
    }
}

/* GeGLU: gelu(g) * u, the GELU as hearth_gelu_avx2 computes it. */
void hearth_gelu_mul_avx2(int n, float *out, const float *g, const float *u) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(-2.0f * 0.79788456080286535588f),
                 a = _mm256_set1_ps(0.044715f);
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(g + i);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(a, xv), xv, one);
        __m256 den = _mm256_add_ps(one, exp8(_mm256_mul_ps(c, _mm256_mul_ps(xv, inner))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(xv, den), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float v = g[i];
        out[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v))) * u[i];
    }
}

/* cap * tanh(s x / cap) with tanh y = 1 - 2 / (1 + e^(2y)); exp8's clamp
 * keeps large |y| at +-1. */
void hearth_softcap_avx2(int n, float *out, const float *x, float s, float cap) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), k = _mm256_set1_ps(2.0f * s / cap),
                 vc = _mm256_set1_ps(cap);
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_mul_ps(k, _mm256_loadu_ps(x + i)));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, e)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(vc, t));
    }
    for (; i < n; i++)
        out[i] = cap * tanhf(s * x[i] / cap);
}

// ---------------------------------------------------------------- F16 group kernel

/* PREFETCH_CHUNKS: how far ahead (in 8-key chunks) rows are requested; 64
 * keys, the distance the AVX-512 kernel measured best. */
enum { TILE = HEARTH_ATTN_TILE, CHUNK = 8, PREFETCH_CHUNKS = 8 };

bool hearth_attn_f16_avx2_supports(int head_dim) {
    return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

size_t hearth_attn_f16_avx2_scratch(int group, int head_dim) {
    /* K and V chunks as floats; per (query, head): widened query, scores,
     * accumulator, max, sum */
    const size_t nq = (size_t)HEARTH_ATTN_MAX_Q * group;
    return sizeof(float) * (2 * (size_t)CHUNK * head_dim + nq * (TILE + 2 * (size_t)head_dim + 2)) + 32;
}

/* e^x on 8 lanes (x <= 0 here), as exp8 above; lanes below -87.3 (and -inf)
 * give 0. */
static inline __m256 exp8_neg(__m256 x) {
    const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    return _mm256_and_ps(live, exp8(x));
}

/* Lane j of the result = the 8-lane sum of p[j] in the pairing of
 * vec_dot_avx2.c's hsum_f32x8 (lane i + lane i+4, then i + i+2, then 0 + 1),
 * so each equals that function's result exactly. */
static inline __m256 reduce8x8(const __m256 p[8]) {
    __m256 w[4], x[2];
    for (int j = 0; j < 4; j++) /* key 2j: lanes 0..3 = p[i] + p[i+4]; key 2j+1: lanes 4..7 */
        w[j] = _mm256_add_ps(_mm256_permute2f128_ps(p[2 * j], p[2 * j + 1], 0x20),
                             _mm256_permute2f128_ps(p[2 * j], p[2 * j + 1], 0x31));
    for (int j = 0; j < 2; j++) /* 128-bit half k: keys 4j+k, 4j+2+k, two partials each */
        x[j] = _mm256_add_ps(_mm256_shuffle_ps(w[2 * j], w[2 * j + 1], 0x44),
                             _mm256_shuffle_ps(w[2 * j], w[2 * j + 1], 0xEE));
    /* half k, lane m: key 2m+k */
    const __m256 z = _mm256_add_ps(_mm256_shuffle_ps(x[0], x[1], 0x88), _mm256_shuffle_ps(x[0], x[1], 0xDD));
    return _mm256_permutevar8x32_ps(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline const char *slot_row(const hearth_attn_f16_args *a, const char *base, size_t stride, int pg,
                                   int off) {
    return base + ((size_t)a->page_table[pg] * a->page_size + off) * stride;
}

/* Rows of keys [p, p + nk) widened to floats in dst[i * hd], zeros past nk;
 * the rows PREFETCH_CHUNKS chunks ahead are requested meanwhile (a decode
 * step reads one head's slice of each slot, which the hardware prefetchers
 * do not follow well). */
static inline void widen_rows(const int nc, const hearth_attn_f16_args *a, const char *base, size_t stride,
                              int p, int nk, int n_kv, float *dst) {
    const int hd = 8 * nc;
    const int pn_from = p + PREFETCH_CHUNKS * CHUNK, pn_end = pn_from + CHUNK < n_kv ? pn_from + CHUNK : n_kv;
    if (pn_from < pn_end) {
        int pg = pn_from / a->page_size, off = pn_from % a->page_size;
        for (int pn = pn_from; pn < pn_end; pn++) {
            const char *row = slot_row(a, base, stride, pg, off);
            for (int b = 0; b < 2 * hd; b += 64)
                _mm_prefetch(row + b, _MM_HINT_T0);
            if (++off == a->page_size) off = 0, pg++;
        }
    }
    int pg = p / a->page_size, off = p % a->page_size;
    for (int i = 0; i < CHUNK; i++) {
        if (i < nk) {
            const uint16_t *row = (const uint16_t *)slot_row(a, base, stride, pg, off);
            for (int c = 0; c < nc; c++)
                _mm256_store_ps(dst + i * hd + 8 * c,
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 8 * c))));
            if (++off == a->page_size) off = 0, pg++;
        } else {
            for (int c = 0; c < nc; c++)
                _mm256_store_ps(dst + i * hd + 8 * c, _mm256_setzero_ps());
        }
    }
}

void hearth_attn_f16_avx2_prefetch(const hearth_attn_f16_args *a) {
    int n_kv = 0;
    for (int i = 0; i < a->n_q; i++)
        n_kv = a->n_kv[i] > n_kv ? a->n_kv[i] : n_kv;
    const int end = n_kv < PREFETCH_CHUNKS * CHUNK ? n_kv : PREFETCH_CHUNKS * CHUNK;
    int pg = 0, off = 0;
    for (int p = 0; p < end; p++) {
        const char *k = slot_row(a, a->k, a->k_stride, pg, off), *v = slot_row(a, a->v, a->v_stride, pg, off);
        for (int b = 0; b < 2 * a->head_dim; b += 64) {
            _mm_prefetch(k + b, _MM_HINT_T1);
            _mm_prefetch(v + b, _MM_HINT_T1);
        }
        if (++off == a->page_size) off = 0, pg++;
    }
}

/* Partial-sum vectors of keys i and i + 1 of the chunk for one query head
 * (kf rows hd floats apart), each chained exactly as dot_f16 chains one key. */
static inline __attribute__((always_inline)) void score_pair(const int nc, const float *k0, const float *qf,
                                                             __m256 *p0, __m256 *p1) {
    const int hd = 8 * nc;
    __m256 a[4], b[4];
    for (int u = 0; u < 4; u++)
        a[u] = b[u] = _mm256_setzero_ps();
    for (int c = 0; c < nc; c++) {
        const __m256 q = _mm256_load_ps(qf + 8 * c);
        a[c % 4] = _mm256_fmadd_ps(_mm256_load_ps(k0 + 8 * c), q, a[c % 4]);
        b[c % 4] = _mm256_fmadd_ps(_mm256_load_ps(k0 + hd + 8 * c), q, b[c % 4]);
    }
    *p0 = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    *p1 = _mm256_add_ps(_mm256_add_ps(b[0], b[1]), _mm256_add_ps(b[2], b[3]));
}

static inline __attribute__((always_inline)) void attn_group(const int nc, const hearth_attn_f16_args *a,
                                                             const uint16_t *const q16[], float *const out[],
                                                             float *scr, int n_kv_max) {
    const int G = a->group, hd = 8 * nc, NQ = a->n_q * G;          /* (query, head) pairs, qh = i * G + h */
    float *kf = (float *)(((uintptr_t)scr + 31) & ~(uintptr_t)31); /* [CHUNK][hd] */
    float *vf = kf + CHUNK * hd;                                   /* [CHUNK][hd] */
    float *qf = vf + CHUNK * hd;                                   /* [NQ][hd] */
    float *acc = qf + (size_t)NQ * hd;                             /* [NQ][hd] */
    float *s = acc + (size_t)NQ * hd;                              /* [NQ][TILE] */
    float *mx = s + (size_t)NQ * TILE, *l = mx + NQ;
    for (int qh = 0; qh < NQ; qh++) {
        mx[qh] = -INFINITY;
        l[qh] = 0;
        const uint16_t *q = q16[qh / G] + (qh % G) * hd;
        for (int c = 0; c < nc; c++) {
            _mm256_store_ps(qf + qh * hd + 8 * c,
                            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(q + 8 * c))));
            _mm256_store_ps(acc + qh * hd + 8 * c, _mm256_setzero_ps());
        }
    }
    const __m256 ninf = _mm256_set1_ps(-INFINITY), scale = _mm256_set1_ps(a->scale);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int p0 = 0; p0 < n_kv_max; p0 += TILE) {
        const int nt_max = n_kv_max - p0 < TILE ? n_kv_max - p0 : TILE;
        int nt_q[HEARTH_ATTN_MAX_Q]; /* keys of this tile each query sees (<= 0: none) */
        for (int i = 0; i < a->n_q; i++)
            nt_q[i] = a->n_kv[i] - p0 < TILE ? a->n_kv[i] - p0 : TILE;
        /* scores of the tile, 8 keys at a time, every query and head */
        for (int c0 = 0; c0 < nt_max; c0 += CHUNK) {
            widen_rows(nc, a, a->k, a->k_stride, p0 + c0, nt_max - c0 < CHUNK ? nt_max - c0 : CHUNK, n_kv_max,
                       kf);
            for (int qh = 0; qh < NQ; qh++) {
                const int nk = nt_q[qh / G] - c0 < CHUNK ? nt_q[qh / G] - c0 : CHUNK;
                if (nk <= 0) continue;
                __m256 part[CHUNK];
                for (int i = 0; i < CHUNK; i += 2)
                    score_pair(nc, kf + i * hd, qf + qh * hd, &part[i], &part[i + 1]);
                const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nk), lane));
                const __m256 sc = _mm256_mul_ps(reduce8x8(part), scale);
                _mm256_storeu_ps(s + qh * TILE + c0, _mm256_blendv_ps(ninf, sc, valid));
            }
        }
        /* online softmax update */
        for (int qh = 0; qh < NQ; qh++) {
            const int nt = nt_q[qh / G];
            if (nt <= 0) continue;
            const int nv = (nt + CHUNK - 1) / CHUNK; /* score vectors; lanes past nt hold -inf */
            float *sh = s + qh * TILE;
            __m256 m = _mm256_set1_ps(mx[qh]);
            for (int v = 0; v < nv; v++)
                m = _mm256_max_ps(m, _mm256_loadu_ps(sh + 8 * v));
            const float tmax = hmax8(m);
            const float c = expf(mx[qh] - tmax); /* 0 on the first tile (mx = -inf) */
            if (c != 1.0f) {
                for (int k = 0; k < nc; k++)
                    _mm256_store_ps(acc + qh * hd + 8 * k,
                                    _mm256_mul_ps(_mm256_load_ps(acc + qh * hd + 8 * k), _mm256_set1_ps(c)));
                l[qh] *= c;
            }
            mx[qh] = tmax;
            const __m256 tm = _mm256_set1_ps(tmax);
            __m256 sum = _mm256_setzero_ps();
            for (int v = 0; v < nv; v++) {
                const __m256 e = exp8_neg(_mm256_sub_ps(_mm256_loadu_ps(sh + 8 * v), tm));
                _mm256_storeu_ps(sh + 8 * v, e);
                sum = _mm256_add_ps(sum, e);
            }
            l[qh] += hsum8(sum);
        }
        /* weighted values: acc += w_i * v_i, key by key, 64 elements at a time */
        for (int c0 = 0; c0 < nt_max; c0 += CHUNK) {
            widen_rows(nc, a, a->v, a->v_stride, p0 + c0, nt_max - c0 < CHUNK ? nt_max - c0 : CHUNK, n_kv_max,
                       vf);
            for (int qh = 0; qh < NQ; qh++) {
                const int nk = nt_q[qh / G] - c0 < CHUNK ? nt_q[qh / G] - c0 : CHUNK;
                if (nk <= 0) continue;
                const float *wh = s + qh * TILE + c0;
                for (int c8 = 0; c8 < nc; c8 += 8) {
                    const int cw = nc - c8 < 8 ? nc - c8 : 8; /* head 32: one run of 4 vectors */
                    __m256 ac[8];
                    for (int c = 0; c < cw; c++)
                        ac[c] = _mm256_load_ps(acc + qh * hd + 8 * (c8 + c));
                    for (int i = 0; i < nk; i++) {
                        const __m256 w = _mm256_set1_ps(wh[i]);
                        for (int c = 0; c < cw; c++)
                            ac[c] = _mm256_fmadd_ps(w, _mm256_load_ps(vf + i * hd + 8 * (c8 + c)), ac[c]);
                    }
                    for (int c = 0; c < cw; c++)
                        _mm256_store_ps(acc + qh * hd + 8 * (c8 + c), ac[c]);
                }
            }
        }
    }
    for (int qh = 0; qh < NQ; qh++) {
        const __m256 inv = _mm256_set1_ps(1.0f / l[qh]);
        float *o = out[qh / G] + (qh % G) * hd;
        for (int c = 0; c < nc; c++)
            _mm256_storeu_ps(o + 8 * c, _mm256_mul_ps(_mm256_load_ps(acc + qh * hd + 8 * c), inv));
    }
}

void hearth_attn_f16_avx2(const hearth_attn_f16_args *a, const uint16_t *const q16[], float *const out[],
                          void *scratch) {
    int n_kv_max = 0;
    for (int i = 0; i < a->n_q; i++)
        n_kv_max = a->n_kv[i] > n_kv_max ? a->n_kv[i] : n_kv_max;
    if (a->head_dim == 32) /* small models (hearth-kjv): 4 vectors a row */
        attn_group(4, a, q16, out, scratch, n_kv_max);
    else if (a->head_dim == 64)
        attn_group(8, a, q16, out, scratch, n_kv_max);
    else
        attn_group(16, a, q16, out, scratch, n_kv_max);
}
