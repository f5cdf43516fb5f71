/*
 * vec_dot_avx512.c - AVX-512 kernels (work in progress: no type yet, so the
 * dispatcher uses the AVX2 family everywhere).
 */
#include <immintrin.h>

#include "cpu/avx2/simd_kernels.h"

hearth_vec_dot_fn hearth_cpu_vec_dot_avx512(hearth_dtype weight_type) {
    (void)weight_type;
    return NULL;
}

hearth_quantize_act_fn hearth_cpu_quantize_act_avx512(hearth_dtype vec_dot_type) {
    (void)vec_dot_type;
    return NULL;
}
