/*
 * cpu_quants.h - the CPU backend's row kernels: dot product of one weight row
 * with one activation row, and the activation converter those kernels expect.
 *
 * Contract (same as ggml's CPU vec_dot):
 *   - a weight row of type T is multiplied with an activation row that was
 *     converted to hearth_dtype_info(T)->vec_dot_type by hearth_cpu_quantize_act;
 *   - n is the number of elements and a multiple of both types' block sizes;
 *   - kernels are pure functions of their inputs (no state, thread-safe), and
 *     read exactly hearth_dtype_row_size(type, n) bytes of each row.
 *
 * Kernel families. `*_ref` are the portable scalar kernels (cpu_quants_ref.c):
 * they follow ggml's generic C code operation for operation, so integer block
 * sums are exact and the float accumulation order matches ggml's scalar build.
 * ISA-specific kernels (backends/cpu/avx2/, backends/cpu/avx512/, ...) keep the
 * same function types; hearth_cpu_vec_dot / hearth_cpu_quantize_act are the
 * dispatchers the backend calls and return the best kernel this CPU can run.
 * Activation converters of every family must produce identical bytes (the
 * quantized activations are part of the numerics that must match llama.cpp);
 * dot kernels may differ only in float summation order.
 */
#ifndef HEARTH_CPU_QUANTS_H
#define HEARTH_CPU_QUANTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

/* *out = dot(w_row, act_row) over n elements. */
typedef void (*hearth_vec_dot_fn)(int64_t n, float *out, const void *w_row, const void *act_row);

/* Many dots at once: for r < nr and t < nt,
 *   out[t * out_stride + r] = dot(weight row r, activation row t),
 * weight row r at (char *)w + r * w_stride, activation row t at
 * (char *)a + t * a_stride (converted like a vec_dot's), strides in bytes
 * except out_stride (floats). nr/nt at most the max_rows/max_toks of the
 * getter. Every result is BIT-IDENTICAL to hearth_cpu_vec_dot(type) of the
 * same pair, so a sequence computes the same numbers alone or batched. */
typedef void (*hearth_gemm_fn)(int64_t n, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                               int nt, float *out, size_t out_stride);

/* Convert n floats (n a multiple of the type's block size) into dst. */
typedef void (*hearth_quantize_act_fn)(const float *x, void *dst, int64_t n);

// ---------------------------------------------------------------- portable scalar kernels

/* Scalar dot kernel for weights of `weight_type`; NULL if the CPU backend
 * cannot multiply that type (Q8_1, Q8_K and unknown types). */
hearth_vec_dot_fn hearth_cpu_vec_dot_ref(hearth_dtype weight_type);

/* Scalar activation converter to `vec_dot_type` (F32, F16, BF16, Q8_0, Q8_1,
 * Q8_K); NULL for other types.
 *   Q8_0/Q8_1 reproduce ggml's x86 CPU quantizer (quantize_row_q8_0/q8_1 in
 *   AVX/AVX2 builds, which produced the golden logits): d = amax/127,
 *   q = round_half_even(x * (127/amax)). ggml's portable quantize_row_q8_0_ref
 *   (dtype.c's from_float) uses 1/d and rounds halves away from zero; the two
 *   differ by one level on rare ties/ulp cases only.
 *   Q8_K is ggml's quantize_row_q8_K_ref (x86 uses it too). F16/BF16 round to
 *   nearest even. */
hearth_quantize_act_fn hearth_cpu_quantize_act_ref(hearth_dtype vec_dot_type);

// ---------------------------------------------------------------- dispatch (what the backend calls)

/* Best dot kernel for `weight_type` on this CPU; NULL when unsupported. */
hearth_vec_dot_fn hearth_cpu_vec_dot(hearth_dtype weight_type);

/* Register-tiled kernel for `weight_type` (see hearth_gemm_fn) and the tile
 * it accepts in *max_rows x *max_toks; NULL (and the outputs untouched) when
 * this CPU has none for the type: use hearth_cpu_vec_dot per pair then.
 * Today: Q8_0, Q4_0 and F16 on AVX2 and AVX-512 VNNI; Q2_K..Q6_K, Q4_1,
 * Q5_0, Q5_1, IQ4_NL and IQ4_XS on AVX2; Q4_K/Q6_K on AVX-512 (a family's
 * gemm is handed out only with that family's dot, unless the type's dots are
 * ISA-independent); none with
 * HEARTH_CPU_ISA=scalar. */
hearth_gemm_fn hearth_cpu_gemm(hearth_dtype weight_type, int *max_rows, int *max_toks);

/* Convert one activation row of n floats to `vec_dot_type` with the best
 * converter; does nothing for a type no kernel consumes. */
void hearth_cpu_quantize_act(hearth_dtype vec_dot_type, const float *x, void *dst, int64_t n);

#endif
