/*
 * cpu_quants_ref.c - portable scalar row kernels for the CPU backend, the
 * activation converters, and the ISA dispatcher (end of file).
 *
 * Every dot kernel mirrors ggml's generic C kernel (ggml-cpu/quants.c and
 * vec.c) operation for operation: integer sums per block, then the same float
 * products in the same order, so results are bit-identical to a scalar ggml
 * build. Owns no state; every function is thread-safe.
 * See cpu_quants.h for the contract shared by all kernel families.
 */
#include "cpu_quants.h"

#include "cpu_iq.h"

#if HEARTH_HAVE_AVX2_KERNELS || HEARTH_HAVE_AVX512_KERNELS
#include "backends/cpu/avx2/gemm_kernels.h"
#include "backends/cpu/avx2/simd_kernels.h"
#endif
#include "cpu_features.h"
#if HEARTH_HAVE_NEON_KERNELS
#include "backends/cpu/neon/neon_kernels.h" /* aarch64 only: see the dispatch section */
#endif

#include <math.h>
#include <string.h>

// ---------------------------------------------------------------- plain floats

/* ggml_vec_dot_f32/f16/bf16 (scalar): products in float, sum in double. */
static void dot_f32(int64_t n, float *out, const void *w, const void *a) {
    const float *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *out = (float)sum;
}

static void dot_f16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_f16 *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(hearth_f16_to_f32_inline(x[i]) * hearth_f16_to_f32_inline(y[i]));
    *out = (float)sum;
}

static void dot_bf16(int64_t n, float *out, const void *w, const void *a) {
    const hearth_bf16 *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(hearth_bf16_to_f32_inline(x[i]) * hearth_bf16_to_f32_inline(y[i]));
    *out = (float)sum;
}

// ---------------------------------------------------------------- 32-element blocks

static inline uint32_t load_u32_le(const uint8_t b[4]) {
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

static void dot_q4_0_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            sumi += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK4_0 / 2];
        }
        sumf += sumi * hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d);
    }
    *out = sumf;
}

/* Q4_1/Q5_1 carry a min m: sum((q*d + m) * a) = d*da*sum(q*qa) + m * (da*sum(qa)) = ... + m*s. */
static void dot_q4_1_q8_1(int64_t n, float *out, const void *w, const void *a) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
            sumi += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK4_1 / 2];
        }
        sumf += (hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d)) * sumi +
                hearth_f16_to_f32_inline(x[ib].m) * hearth_f16_to_f32_inline(y[ib].s);
    }
    *out = sumf;
}

static void dot_q5_0_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        const uint32_t qh = load_u32_le(x[ib].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int x0 = ((x[ib].qs[j] & 0x0F) | (((qh >> j) & 1) << 4)) - 16;
            const int x1 = ((x[ib].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            sumi += x0 * y[ib].qs[j] + x1 * y[ib].qs[j + QK5_0 / 2];
        }
        sumf += (hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d)) * sumi;
    }
    *out = sumf;
}

static void dot_q5_1_q8_1(int64_t n, float *out, const void *w, const void *a) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        const uint32_t qh = load_u32_le(x[ib].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int x0 = (x[ib].qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
            const int x1 = (x[ib].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            sumi += x0 * y[ib].qs[j] + x1 * y[ib].qs[j + QK5_1 / 2];
        }
        sumf += (hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d)) * sumi +
                hearth_f16_to_f32_inline(x[ib].m) * hearth_f16_to_f32_inline(y[ib].s);
    }
    *out = sumf;
}

static void dot_q8_0_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d));
    }
    *out = sumf;
}

// ---------------------------------------------------------------- K-quants against Q8_K

/* The 6-bit K-quants (Q3_K..Q6_K) accumulate like ggml's generic kernels: the
 * 256 products of a super-block go into 8 integer lanes (element k into lane
 * k % 8), each lane is scaled by d_w*d_a into a float lane, and the 8 float
 * lanes are summed once at the end of the row. */
#define LANES 8

static void lanes_accumulate(float sums[LANES], const int32_t aux32[LANES], float d) {
    for (int l = 0; l < LANES; l++) sums[l] += d * aux32[l];
}

/* aux32[k % 8] += scale(k / sub) * a[k] * q8[k] over one super-block. */
static void lanes_scaled_products(int32_t aux32[LANES], const int8_t *a, const int8_t *q8, const int *scale, int sub) {
    memset(aux32, 0, LANES * sizeof(int32_t));
    for (int k = 0; k < QK_K; k += LANES) {
        const int s = scale[k / sub];
        for (int l = 0; l < LANES; l++) aux32[l] += s * (int16_t)(q8[k + l] * a[k + l]);
    }
}

static void dot_q2_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q2_K *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q2 = x[i].qs, *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        /* The mins multiply every activation of their 16-group: use bsums. */
        int summs = 0;
        for (int j = 0; j < QK_K / 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * hearth_f16_to_f32_inline(x[i].d);
        const float dmin = y[i].d * hearth_f16_to_f32_inline(x[i].dmin);
        int isum = 0, is = 0;
        for (int half = 0; half < QK_K / 128; half++, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
                for (int part = 0; part < 2; part++) {
                    const int d = sc[is++] & 0xF;
                    int isuml = 0;
                    for (int l = 16 * part; l < 16 * part + 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                }
            }
        }
        sumf += dall * isum - dmin * summs;
    }
    *out = sumf;
}

static void dot_q3_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q3_K *x = w;
    const block_q8_K *y = act;
    float sums[LANES] = {0};
    int8_t a[QK_K];
    int scale[QK_K / 16];
    int32_t aux32[LANES];
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* Unpack to signed levels -4..3 in element order. */
        const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
        int8_t *p = a;
        uint8_t m = 1;
        for (int half = 0; half < QK_K / 128; half++, q3 += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1, p += 32)
                for (int l = 0; l < 32; l++) p[l] = (int8_t)(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        for (int j = 0; j < QK_K / 16; j++) scale[j] = hearth_q3k_scale(j, x[i].scales);
        lanes_scaled_products(aux32, a, y[i].qs, scale, 16);
        lanes_accumulate(sums, aux32, hearth_f16_to_f32_inline(x[i].d) * y[i].d);
    }
    float sumf = 0;
    for (int l = 0; l < LANES; l++) sumf += sums[l];
    *out = sumf;
}

/* Q4_K/Q5_K: x = d*sc*q - dmin*m per 32-group, so
 * dot = d_a*(d*sum(sc*q*qa) - dmin*sum_groups(m * sum(qa))), the last sum from bsums. */
static int kquant_min_term(const block_q8_K *y, const uint8_t scales[K_SCALE_SIZE], int sc_out[QK_K / 32]) {
    int sumi = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        hearth_kquant_scale_min(j, scales, &sc, &m);
        sc_out[j] = sc;
        sumi += (y->bsums[2 * j] + y->bsums[2 * j + 1]) * m;
    }
    return sumi;
}

static void dot_q4_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q4_K *x = w;
    const block_q8_K *y = act;
    float sums[LANES] = {0};
    float sumf = 0;
    int8_t a[QK_K];
    int scale[QK_K / 32];
    int32_t aux32[LANES];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) a[64 * j + l] = (int8_t)(q4[l] & 0xF);
            for (int l = 0; l < 32; l++) a[64 * j + 32 + l] = (int8_t)(q4[l] >> 4);
        }
        const int sumi = kquant_min_term(&y[i], x[i].scales, scale);
        lanes_scaled_products(aux32, a, y[i].qs, scale, 32);
        lanes_accumulate(sums, aux32, hearth_f16_to_f32_inline(x[i].d) * y[i].d);
        const float dmin = hearth_f16_to_f32_inline(x[i].dmin) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < LANES; l++) sumf += sums[l];
    *out = sumf;
}

static void dot_q5_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q5_K *x = w;
    const block_q8_K *y = act;
    float sums[LANES] = {0};
    float sumf = 0;
    int8_t a[QK_K];
    int scale[QK_K / 32];
    int32_t aux32[LANES];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs, *hm = x[i].qh;
        uint8_t m = 1;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) a[64 * j + l] = (int8_t)((q4[l] & 0xF) + (hm[l] & m ? 16 : 0));
            m <<= 1;
            for (int l = 0; l < 32; l++) a[64 * j + 32 + l] = (int8_t)((q4[l] >> 4) + (hm[l] & m ? 16 : 0));
            m <<= 1;
        }
        const int sumi = kquant_min_term(&y[i], x[i].scales, scale);
        lanes_scaled_products(aux32, a, y[i].qs, scale, 32);
        lanes_accumulate(sums, aux32, hearth_f16_to_f32_inline(x[i].d) * y[i].d);
        const float dmin = hearth_f16_to_f32_inline(x[i].dmin) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < LANES; l++) sumf += sums[l];
    *out = sumf;
}

static void dot_q6_K_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_q6_K *x = w;
    const block_q8_K *y = act;
    float sums[LANES] = {0};
    int8_t a[QK_K];
    int scale[QK_K / 16];
    int32_t aux32[LANES];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                a[j + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                a[j + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[j + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[j + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (int j = 0; j < QK_K / 16; j++) scale[j] = x[i].scales[j];
        lanes_scaled_products(aux32, a, y[i].qs, scale, 16);
        lanes_accumulate(sums, aux32, hearth_f16_to_f32_inline(x[i].d) * y[i].d);
    }
    float sumf = 0;
    for (int l = 0; l < LANES; l++) sumf += sums[l];
    *out = sumf;
}

// ---------------------------------------------------------------- IQ4 (non-linear 4-bit levels)

/* Exact integer sum of one 32-element IQ4 group (16 packed bytes) against 32
 * int8 activations: level(low nibble j) * a[j] + level(high nibble j) * a[j+16]. */
static int iq4_group_sum(const uint8_t *qs, const int8_t *a) {
    int sumi = 0;
    for (int j = 0; j < 16; j++) {
        sumi += hearth_iq4nl_values[qs[j] & 0xF] * a[j];
        sumi += hearth_iq4nl_values[qs[j] >> 4] * a[j + 16];
    }
    return sumi;
}

/* IQ4_NL against Q8_0: like Q8_0, one float per block, sumi * (d_w * d_a),
 * added in block order (ggml's generic kernel's expression). */
static void dot_iq4_nl_q8_0(int64_t n, float *out, const void *w, const void *a) {
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK4_NL; ib++)
        sumf += (float)iq4_group_sum(x[ib].qs, y[ib].qs) * (hearth_f16_to_f32_inline(x[ib].d) * hearth_f16_to_f32_inline(y[ib].d));
    *out = sumf;
}

/* IQ4_XS against Q8_K: per 32-group, (d_w * d_a * (scale - 32)) * sumi added in
 * group order to one running sum (ggml's generic kernel). */
static void dot_iq4_xs_q8_K(int64_t n, float *out, const void *w, const void *act) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = act;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d4d8 = hearth_f16_to_f32_inline(x[i].d) * y[i].d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float dl = d4d8 * (float)(hearth_iq4xs_scale(&x[i], ib) - 32);
            sumf += dl * (float)iq4_group_sum(x[i].qs + 16 * ib, y[i].qs + 32 * ib);
        }
    }
    *out = sumf;
}

hearth_vec_dot_fn hearth_cpu_vec_dot_ref(hearth_dtype weight_type) {
    switch (weight_type) {
    case HEARTH_F32: return dot_f32;
    case HEARTH_F16: return dot_f16;
    case HEARTH_BF16: return dot_bf16;
    case HEARTH_Q4_0: return dot_q4_0_q8_0;
    case HEARTH_Q4_1: return dot_q4_1_q8_1;
    case HEARTH_Q5_0: return dot_q5_0_q8_0;
    case HEARTH_Q5_1: return dot_q5_1_q8_1;
    case HEARTH_Q8_0: return dot_q8_0_q8_0;
    case HEARTH_Q2_K: return dot_q2_K_q8_K;
    case HEARTH_Q3_K: return dot_q3_K_q8_K;
    case HEARTH_Q4_K: return dot_q4_K_q8_K;
    case HEARTH_Q5_K: return dot_q5_K_q8_K;
    case HEARTH_Q6_K: return dot_q6_K_q8_K;
    case HEARTH_IQ4_NL: return dot_iq4_nl_q8_0;
    case HEARTH_IQ4_XS: return dot_iq4_xs_q8_K;
    default: return hearth_cpu_vec_dot_iq_ref(weight_type); /* IQ2/IQ3/IQ1: cpu_iq_ref.c */
    }
}

// ---------------------------------------------------------------- activation converters

static float block_absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

/* ggml x86 quantize_row_q8_0: id = 127/amax (not 1/d), ties to even (rintf in
 * the default rounding mode = _mm256_round_ps(_MM_ROUND_NEAREST)). */
static void act_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float amax = block_absmax(x, QK8_0);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)rintf(x[j] * id);
    }
}

static void act_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float amax = block_absmax(x, QK8_1);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = hearth_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)rintf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = hearth_f32_to_f16(d * (float)sum);
    }
}

/* F32, F16, BF16 and Q8_K use the reference conversion in dtype.c. */
static void act_via_dtype(hearth_dtype t, const float *x, void *dst, int64_t n) {
    hearth_dtype_info(t)->from_float(x, dst, n);
}
static void act_f32(const float *x, void *dst, int64_t n) { act_via_dtype(HEARTH_F32, x, dst, n); }
static void act_f16(const float *x, void *dst, int64_t n) { act_via_dtype(HEARTH_F16, x, dst, n); }
static void act_bf16(const float *x, void *dst, int64_t n) { act_via_dtype(HEARTH_BF16, x, dst, n); }
static void act_q8_K(const float *x, void *dst, int64_t n) { act_via_dtype(HEARTH_Q8_K, x, dst, n); }

hearth_quantize_act_fn hearth_cpu_quantize_act_ref(hearth_dtype vec_dot_type) {
    switch (vec_dot_type) {
    case HEARTH_F32: return act_f32;
    case HEARTH_F16: return act_f16;
    case HEARTH_BF16: return act_bf16;
    case HEARTH_Q8_0: return act_q8_0;
    case HEARTH_Q8_1: return act_q8_1;
    case HEARTH_Q8_K: return act_q8_K;
    default: return NULL;
    }
}

// ---------------------------------------------------------------- dispatch
/*
 * DISPATCHER. Picks the widest kernel family this CPU can run, per type:
 * AVX-512 (backends/cpu/avx512/, needs avx512f+bw+vl+vnni), then AVX2
 * (backends/cpu/avx2/, needs avx2+fma+f16c), then the scalar kernels above.
 * A family getter returns NULL for a type it lacks, so each type falls back
 * independently. hearth_cpu_level_get() honours HEARTH_CPU_ISA, so
 * HEARTH_CPU_ISA=scalar makes both entry points return the *_ref functions.
 * The HEARTH_HAVE_*_KERNELS macros are set by CMake when those folders hold
 * sources (x86-64 only). This file is compiled without ISA flags, so it is
 * safe to run on any CPU; only the kernels it returns need the extensions.
 * SIMD converters are byte-identical to act_q8_0/act_q8_1/Q8_K above (see
 * avx2/simd_kernels.h), so dispatch never changes quantized activations.
 */

/* aarch64 (HEARTH_HAVE_NEON_KERNELS, backends/cpu/neon/): the *_neon_best
 * getters pick NEON+dotprod (SDOT, when getauxval reports ASIMDDP) or plain
 * NEON per type, and return NULL under HEARTH_CPU_ISA=scalar, so each entry
 * point below tries them first and falls back to the scalar kernels. */

#if HEARTH_HAVE_AVX512_KERNELS
static int avx512_family_usable(void) {
    return hearth_cpu_level_get() >= HEARTH_CPU_AVX512 && hearth_cpu_caps_get()->avx512vnni;
}
#endif

hearth_vec_dot_fn hearth_cpu_vec_dot(hearth_dtype weight_type) {
    hearth_vec_dot_fn f = NULL;
#if HEARTH_HAVE_NEON_KERNELS
    f = hearth_cpu_vec_dot_neon_best(weight_type);
#endif
#if HEARTH_HAVE_AVX512_KERNELS
    if (!f && avx512_family_usable()) f = hearth_cpu_vec_dot_avx512(weight_type);
#endif
#if HEARTH_HAVE_AVX2_KERNELS
    if (!f && hearth_cpu_level_get() >= HEARTH_CPU_AVX2) f = hearth_cpu_vec_dot_avx2(weight_type);
#endif
    return f ? f : hearth_cpu_vec_dot_ref(weight_type);
}

/* Q8_0/Q4_0 GEMM kernels (and AVX2's Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS ones)
 * match the scalar kernel, which every family's
 * per-pair kernel equals, so a gemm of one family matches hearth_cpu_vec_dot
 * whichever family that picked. A kernel for a type whose families differ
 * (F16) must come from the same family as hearth_cpu_vec_dot's pick: both
 * try AVX-512 first under the same condition, then AVX2, and each family's
 * F16 dot exists wherever its gemm does (tests/unit/backends/test_gemm.c checks the
 * dispatcher's pair). */
hearth_gemm_fn hearth_cpu_gemm(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    hearth_gemm_fn f = NULL;
#if HEARTH_HAVE_NEON_KERNELS
    f = hearth_cpu_gemm_neon_best(weight_type, max_rows, max_toks);
#endif
#if HEARTH_HAVE_AVX512_KERNELS
    if (!f && avx512_family_usable()) f = hearth_cpu_gemm_avx512(weight_type, max_rows, max_toks);
#endif
#if HEARTH_HAVE_AVX2_KERNELS
    if (!f && hearth_cpu_level_get() >= HEARTH_CPU_AVX2) f = hearth_cpu_gemm_avx2(weight_type, max_rows, max_toks);
#endif
    (void)weight_type, (void)max_rows, (void)max_toks;
    return f;
}

static hearth_quantize_act_fn quantize_act_best(hearth_dtype vec_dot_type) {
    hearth_quantize_act_fn f = NULL;
#if HEARTH_HAVE_NEON_KERNELS
    f = hearth_cpu_quantize_act_neon_best(vec_dot_type);
#endif
#if HEARTH_HAVE_AVX512_KERNELS
    if (!f && avx512_family_usable()) f = hearth_cpu_quantize_act_avx512(vec_dot_type);
#endif
#if HEARTH_HAVE_AVX2_KERNELS
    if (!f && hearth_cpu_level_get() >= HEARTH_CPU_AVX2) f = hearth_cpu_quantize_act_avx2(vec_dot_type);
#endif
    return f ? f : hearth_cpu_quantize_act_ref(vec_dot_type);
}

void hearth_cpu_quantize_act(hearth_dtype vec_dot_type, const float *x, void *dst, int64_t n) {
    const hearth_quantize_act_fn f = quantize_act_best(vec_dot_type);
    if (f && n > 0 && n % hearth_dtype_info(vec_dot_type)->block_size == 0) f(x, dst, n);
}
