/*
 * cpu_attn.h - vector helpers of the CPU attention (y += a * x over a row),
 * with a scalar reference and ISA-specific versions picked at run time. Every
 * version computes each element as one fused multiply-add, so all levels give
 * identical results.
 */
#ifndef HEARTH_CPU_ATTN_H
#define HEARTH_CPU_ATTN_H

#include <stdint.h>

typedef void (*hearth_axpy_f16_fn)(int n, float *y, float a, const uint16_t *x);
typedef void (*hearth_axpy_f32_fn)(int n, float *y, float a, const float *x);

void hearth_axpy_f16_avx2(int n, float *y, float a, const uint16_t *x);
void hearth_axpy_f32_avx2(int n, float *y, float a, const float *x);

#endif
