/*
 * attn_avx2.c - AVX2+F16C helpers for the CPU attention: accumulate a row of
 * F16 values into a float accumulator (y += a * x), the inner loop of the
 * weighted sum of V rows. Tails handled scalar. Exact: the same float result
 * as the scalar loop (one FMA per element in both, converted values exact).
 */
#include <immintrin.h>
#include <math.h>

#include "../cpu_attn.h"
#include "dtype.h"

void hearth_axpy_f16_avx2(int n, float *y, float a, const uint16_t *x) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 yv = _mm256_loadu_ps(y + i);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, yv));
    }
    for (; i < n; i++) y[i] = fmaf(a, hearth_f16_to_f32(x[i]), y[i]);
}

void hearth_axpy_f32_avx2(int n, float *y, float a, const float *x) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}
