/*
 * cpu_attn.h - vector helpers of the CPU backend: the attention's weighted
 * sum of V rows (y += a * x over a row; every version does one fused
 * multiply-add per element, so all levels give identical results) and the
 * SwiGLU gate (silu(g) * u; the SIMD exp differs from expf by ~2e-7), the
 * encoders' GELU, Gemma's GeGLU and logit soft-capping.
 */
#ifndef HEARTH_CPU_ATTN_H
#define HEARTH_CPU_ATTN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys per online-softmax tile; tiles start at absolute positions 0, TILE,
 * 2 TILE, ... in every implementation. */
#define HEARTH_ATTN_TILE 64

typedef void (*hearth_axpy_f16_fn)(int n, float *y, float a, const uint16_t *x);
typedef void (*hearth_axpy_f32_fn)(int n, float *y, float a, const float *x);

void hearth_axpy_f16_avx2(int n, float *y, float a, const uint16_t *x);
void hearth_axpy_f32_avx2(int n, float *y, float a, const float *x);

/* out = silu(g) * u with a vectorised exp (relative error ~2e-7 against expf). */
void hearth_silu_mul_avx2(int n, float *out, const float *g, const float *u);

/* out = gelu(x) = x * sigmoid(2 u), u = sqrt(2/pi) (x + 0.044715 x^3): the
 * tanh form of GELU with the vectorised exp (relative error ~1e-6 against
 * the scalar tanhf form). */
void hearth_gelu_avx2(int n, float *out, const float *x);

/* out = gelu(g) * u (GeGLU, Gemma's FFN), GELU as hearth_gelu_avx2. */
void hearth_gelu_mul_avx2(int n, float *out, const float *g, const float *u);

/* out = cap * tanh(s x / cap): logit soft-capping (absolute error a few
 * 1e-7 x cap against tanhf; exactly +-cap far out). */
void hearth_softcap_avx2(int n, float *out, const float *x, float s, float cap);

/* Up to HEARTH_ATTN_MAX_Q query tokens of one sequence (same page table),
 * each with the `group` query heads that share one KV head, against an F16
 * K/V cache (AVX-512: attn_avx512.c; AVX2+FMA+F16C: avx2/attn_avx2.c, the
 * same interface with _avx2 names; scores bit-identical to that family's F16
 * dot kernel). Query i sees keys 0 .. n_kv[i]-1
 * through the page table; k and v point at the KV head's part of slot 0,
 * slots k_stride / v_stride bytes apart. Each query's result is exactly what
 * it would be alone (n_q = 1): the tokens only share the widening of K and V. */
#define HEARTH_ATTN_MAX_Q 8

typedef struct hearth_attn_f16_args {
    int head_dim, group, n_q, page_size;
    int n_kv[HEARTH_ATTN_MAX_Q];
    const int32_t *page_table;
    const char *k, *v;
    size_t k_stride, v_stride;
    float scale;
} hearth_attn_f16_args;

/* Head sizes the kernel handles (64, 128). */
bool hearth_attn_f16_avx512_supports(int head_dim);
/* Scratch bytes one call needs (for n_q up to HEARTH_ATTN_MAX_Q). */
size_t hearth_attn_f16_avx512_scratch(int group, int head_dim);
/* Request (into L2) the rows of the first keys the call with these
 * arguments will read: a worker calls it for its next item before working on
 * the current one, so short sequences (decode batches) do not start cold. */
void hearth_attn_f16_avx512_prefetch(const hearth_attn_f16_args *a);
/* out[i][h * head_dim + d] for query i and the group's heads; q16[i] = query
 * i's heads rounded to F16 (as the K dot format wants), contiguous. */
void hearth_attn_f16_avx512(const hearth_attn_f16_args *a, const uint16_t *const q16[], float *const out[],
                            void *scratch);

/* The AVX2 family's group kernel (call only where avx2+fma+f16c are present). */
bool hearth_attn_f16_avx2_supports(int head_dim);
size_t hearth_attn_f16_avx2_scratch(int group, int head_dim);
void hearth_attn_f16_avx2_prefetch(const hearth_attn_f16_args *a);
void hearth_attn_f16_avx2(const hearth_attn_f16_args *a, const uint16_t *const q16[], float *const out[],
                          void *scratch);

typedef void (*hearth_attn_f16_fn)(const hearth_attn_f16_args *a, const uint16_t *const q16[],
                                   float *const out[], void *scratch);
typedef void (*hearth_attn_f16_prefetch_fn)(const hearth_attn_f16_args *a);

#endif
