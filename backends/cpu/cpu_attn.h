/*
 * cpu_attn.h - vector helpers of the CPU backend: the attention's weighted
 * sum of V rows (y += a * x over a row; every version does one fused
 * multiply-add per element, so all levels give identical results) and the
 * SwiGLU gate (silu(g) * u; the SIMD exp differs from expf by ~2e-7).
 */
#ifndef HEARTH_CPU_ATTN_H
#define HEARTH_CPU_ATTN_H

#include <stdint.h>

typedef void (*hearth_axpy_f16_fn)(int n, float *y, float a, const uint16_t *x);
typedef void (*hearth_axpy_f32_fn)(int n, float *y, float a, const float *x);

void hearth_axpy_f16_avx2(int n, float *y, float a, const uint16_t *x);
void hearth_axpy_f32_avx2(int n, float *y, float a, const float *x);

/* out = silu(g) * u with a vectorised exp (relative error ~2e-7 against expf). */
void hearth_silu_mul_avx2(int n, float *out, const float *g, const float *u);

#endif
