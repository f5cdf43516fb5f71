/*
 * cpu_iq.h - the CPU backend's dot kernels for the grid-based IQ weight types
 * (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) against Q8_K activations.
 *
 * Same contract as cpu_quants.h (hearth_vec_dot_fn): exact integer sums per
 * group, float combination as ggml's generic kernel. Families: the scalar
 * reference (cpu_iq_ref.c) and AVX2 (avx2/vec_dot_iq_avx2.c) where built; the
 * AVX2 kernels are bit-identical to the reference (same float expressions in
 * the same order, only the integer sums vectorised).
 */
#ifndef HEARTH_CPU_IQ_H
#define HEARTH_CPU_IQ_H

#include "backends/cpu/cpu_quants.h"

/* Scalar kernel for one of the seven types; NULL for any other type. */
hearth_vec_dot_fn hearth_cpu_vec_dot_iq_ref(hearth_dtype weight_type);

/* AVX2 kernels (x86-64 builds only; callable only where AVX2 is usable, as
 * every AVX2 kernel): NULL for any other type. Reached through
 * hearth_cpu_vec_dot_avx2. NEON has none: aarch64 uses the scalar kernels. */
hearth_vec_dot_fn hearth_cpu_vec_dot_iq_avx2(hearth_dtype weight_type);

#endif
