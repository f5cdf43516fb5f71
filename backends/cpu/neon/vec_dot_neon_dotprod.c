/*
 * vec_dot_neon_dotprod.c - the "neon-dotprod" kernel family: the integer
 * kernels and GEMM tiles of neon_int_kernels.h compiled with
 * -march=armv8.2-a+dotprod (CMake sets it on this file alone), so every
 * 16-byte block product is one SDOT. Its kernels may run only where the CPU
 * reports ASIMDDP (hearth_cpu_neon_level() == HEARTH_NEON_DOTPROD). Float
 * kernels and converters come from the "neon" family. No state.
 */
#if !defined(__ARM_FEATURE_DOTPROD)
#error "vec_dot_neon_dotprod.c must be compiled with -march=armv8.2-a+dotprod"
#endif

#include "neon_int_kernels.h"

hearth_vec_dot_fn hearth_cpu_vec_dot_neon_dotprod(hearth_dtype weight_type) {
    return neon_int_vec_dot(weight_type);
}

hearth_gemm_fn hearth_cpu_gemm_neon_dotprod(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    return neon_int_gemm(weight_type, max_rows, max_toks);
}
