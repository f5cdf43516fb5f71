/*
 * simd_kernels.h - the x86-64 SIMD kernel families of the CPU backend, as the
 * dispatcher (hearth_cpu_vec_dot / hearth_cpu_quantize_act in
 * cpu_quants_ref.c) and the SIMD unit test see them.
 *
 * Owned by the SIMD kernels (backends/cpu/avx2/, backends/cpu/avx512/); this
 * header only names the entry points of each family.
 *
 * Invariants every family keeps (the contract of cpu_quants.h):
 *   - a getter returns NULL for a type its family has no kernel for; the
 *     caller then falls back to the next narrower family, finally to *_ref;
 *   - a getter may be called on any CPU (it only returns pointers), but the
 *     kernels it returns may be CALLED only when hearth_cpu_caps_get() reports
 *     the family's ISA: AVX2 needs avx2+fma+f16c; AVX-512 additionally needs
 *     avx512f+bw+vl+vnni (every such CPU also has DQ, which the compiler may use);
 *   - activation converters produce bytes identical to the scalar converters
 *     of hearth_cpu_quantize_act_ref for every finite input (f16/bf16 also for
 *     inf and NaN);
 *   - the 32-element block kernels (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) return
 *     bit-identical results to the scalar kernels (same integer block sums,
 *     same float operations in the same order), so logits of those types do
 *     not depend on the ISA;
 *   - the K-quant kernels compute the same integer sums but add them in a
 *     different float order (within 1e-5 * |w'| |a'| of the scalar result);
 *     float dot kernels (F32/F16/BF16) accumulate in float lanes instead of
 *     the scalar kernels' double (within 1e-4 * |w'| |a'|).
 *
 * The families are compiled only on x86-64 (see CMakeLists.txt); code outside
 * an `#if HEARTH_HAVE_AVX2_KERNELS` / `#if defined(__x86_64__)` guard must not
 * reference these symbols.
 */
#ifndef HEARTH_CPU_SIMD_KERNELS_H
#define HEARTH_CPU_SIMD_KERNELS_H

#include "backends/cpu/cpu_quants.h"

/* AVX2 + FMA + F16C (backends/cpu/avx2/vec_dot_avx2.c). */
hearth_vec_dot_fn hearth_cpu_vec_dot_avx2(hearth_dtype weight_type);
hearth_quantize_act_fn hearth_cpu_quantize_act_avx2(hearth_dtype vec_dot_type);

/* AVX-512 F/BW/VL + VNNI (backends/cpu/avx512/vec_dot_avx512.c). Types it
 * lacks return NULL (the dispatcher then uses the AVX2 kernel). */
hearth_vec_dot_fn hearth_cpu_vec_dot_avx512(hearth_dtype weight_type);
hearth_quantize_act_fn hearth_cpu_quantize_act_avx512(hearth_dtype vec_dot_type);

#endif
