/*
 * neon_kernels.h - the arm64 (AArch64) SIMD kernel families of the CPU
 * backend, as the dispatcher (hearth_cpu_vec_dot / hearth_cpu_gemm /
 * hearth_cpu_quantize_act in cpu_quants_ref.c) and the SIMD unit tests see
 * them.
 *
 * Owned by backends/cpu/neon/. Two families:
 *   - "neon": Advanced SIMD as every AArch64 CPU has it (vec_dot_neon.c):
 *     every weight type's dot kernel, the activation converters, and the
 *     Q8_0/Q4_0 GEMM tiles;
 *   - "neon-dotprod": the integer kernels again, compiled with
 *     -march=armv8.2-a+dotprod so 8-bit products go through SDOT
 *     (vec_dot_neon_dotprod.c). It has no float kernels and no converters;
 *     the dispatcher takes those from "neon".
 * Both families compile the same kernel source (neon_int_kernels.h), so they
 * return identical results; only the instruction that forms the exact 8-bit
 * products differs.
 *
 * Invariants (the contract of cpu_quants.h, as for the x86 families):
 *   - a getter returns NULL for a type its family has no kernel for;
 *   - a getter may be called anywhere, but "neon-dotprod" kernels may be
 *     called only where hearth_cpu_neon_level() >= HEARTH_NEON_DOTPROD;
 *   - converters write the bytes of hearth_cpu_quantize_act_ref;
 *   - Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 dot kernels (and the GEMM tiles) are
 *     bit-identical to the scalar kernels; K-quants form the same integer
 *     sums and add them in another float order; float kernels accumulate in
 *     float lanes (tolerances as in avx2/simd_kernels.h).
 *
 * Compiled only when CMake targets aarch64 (HEARTH_HAVE_NEON_KERNELS=1).
 */
#ifndef HEARTH_CPU_NEON_KERNELS_H
#define HEARTH_CPU_NEON_KERNELS_H

#include "backends/cpu/cpu_quants.h"

typedef enum hearth_neon_level {
    HEARTH_NEON_OFF = 0,
    HEARTH_NEON_PLAIN = 1,
    HEARTH_NEON_DOTPROD = 2
} hearth_neon_level;

/* What this CPU runs, detected once (getauxval(AT_HWCAP): ASIMD, ASIMDDP)
 * and capped by HEARTH_CPU_ISA: "scalar" gives OFF (the *_ref kernels),
 * "neon" gives PLAIN (no SDOT). Thread-safe. */
hearth_neon_level hearth_cpu_neon_level(void);

/* Family "neon" (vec_dot_neon.c, gemm in neon_int_kernels.h). */
hearth_vec_dot_fn hearth_cpu_vec_dot_neon(hearth_dtype weight_type);
hearth_quantize_act_fn hearth_cpu_quantize_act_neon(hearth_dtype vec_dot_type);
hearth_gemm_fn hearth_cpu_gemm_neon(hearth_dtype weight_type, int *max_rows, int *max_toks);

/* Family "neon-dotprod" (vec_dot_neon_dotprod.c): integer kernels only. */
hearth_vec_dot_fn hearth_cpu_vec_dot_neon_dotprod(hearth_dtype weight_type);
hearth_gemm_fn hearth_cpu_gemm_neon_dotprod(hearth_dtype weight_type, int *max_rows, int *max_toks);

/* What the dispatcher calls: the best family at hearth_cpu_neon_level(),
 * NULL when that is OFF or the family lacks the type. */
hearth_vec_dot_fn hearth_cpu_vec_dot_neon_best(hearth_dtype weight_type);
hearth_quantize_act_fn hearth_cpu_quantize_act_neon_best(hearth_dtype vec_dot_type);
hearth_gemm_fn hearth_cpu_gemm_neon_best(hearth_dtype weight_type, int *max_rows, int *max_toks);

#endif
