/*
 * gemm_kernels.h - the x86-64 register-tiled GEMM kernels of the CPU backend
 * (many weight rows x many activation rows per call), as the dispatcher
 * (hearth_cpu_gemm in cpu_quants_ref.c) and tests/unit/backends/test_gemm.c see them.
 *
 * Owned by the GEMM kernels (avx2/gemm_avx2.c, avx2/gemm_kquant_avx2.c,
 * avx2/gemm_iq4_avx2.c, avx512/gemm_avx512.c, avx512/gemm_kquant_avx512.c).
 *
 * Contract of every kernel (see hearth_gemm_fn in cpu_quants.h):
 *   - out[t * out_stride + r] is BIT-IDENTICAL to hearth_cpu_vec_dot(type)
 *     of weight row r and activation row t. For Q8_0 and Q4_0 (and Q4_1,
 *     Q5_0, Q5_1, IQ4_NL, IQ4_XS, AVX2 only), whose per-pair
 *     kernels equal the scalar one on every ISA, they form the same exact
 *     integer block sums and apply the scalar kernel's float operations per
 *     block, adding the block values to one running sum in block order; speed
 *     comes from running the serial chains of many (row, token) pairs side by
 *     side in vector lanes. F16 (AVX2 and AVX-512 each) repeats its own
 *     family's F16 dot kernel chain for chain, so the dispatcher must (and
 *     does) take it from the same family as hearth_cpu_vec_dot's F16 kernel;
 *   - a getter returns NULL for types it lacks and sets *max_rows and
 *     *max_toks (the largest nr and nt one call accepts) otherwise;
 *   - kernels may be called only where the family's ISA is present (AVX2:
 *     avx2+fma+f16c; AVX-512: avx512f+bw+vl+vnni), and read exactly the row
 *     bytes of the nr weight rows and nt activation rows.
 */
#ifndef HEARTH_CPU_GEMM_KERNELS_H
#define HEARTH_CPU_GEMM_KERNELS_H

#include "backends/cpu/cpu_quants.h"

hearth_gemm_fn hearth_cpu_gemm_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks);
/* The AVX2 K-quant tiles (Q2_K .. Q6_K; avx2/gemm_kquant_avx2.c), which
 * hearth_cpu_gemm_avx2 hands out; bit-identical to the AVX2 family's own
 * per-pair K-quant dots only (not to the AVX-512 ones). */
hearth_gemm_fn hearth_cpu_gemm_kquant_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks);
/* The AVX2 tiles of Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS (avx2/gemm_iq4_avx2.c),
 * which hearth_cpu_gemm_avx2 hands out; bit-identical to the scalar kernels
 * (which every family's per-pair kernel of these types equals). */
hearth_gemm_fn hearth_cpu_gemm_iq4_avx2(hearth_dtype weight_type, int *max_rows, int *max_toks);
hearth_gemm_fn hearth_cpu_gemm_avx512(hearth_dtype weight_type, int *max_rows, int *max_toks);
/* (The AVX-512 K-quant tiles, Q4_K and Q6_K, are declared in
 * avx512/kquant_avx512.h beside the helpers they share with the dots.) */

#endif
