/*
 * quant_test_data.h - what the quantizer and IQ tests share: the FNV-1a 64
 * hash their stored reference hashes (tests/data, llama-quantize's outputs)
 * were taken with, and the xorshift generator of the weighted-quantizer
 * tests' inputs. Both must stay bit for bit as they are: the stored hashes
 * were made with them. Include after test.h; header-only, one generator state
 * per test binary.
 */
#ifndef HEARTH_TEST_QUANT_TEST_DATA_H
#define HEARTH_TEST_QUANT_TEST_DATA_H

#include <stddef.h>
#include <stdint.h>

#define TEST_FNV_OFFSET 1469598103934665603ull

/* FNV-1a 64 of n bytes, continuing from h (TEST_FNV_OFFSET to start). */
static inline uint64_t test_fnv1a(const void *data, size_t n, uint64_t h) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The generator's state (in a function, so a test using only the hash has no
 * unused variable). */
static inline uint64_t *test_rng_state(void) {
    static uint64_t s;
    return &s;
}
static inline void test_rng_seed(uint64_t seed) {
    *test_rng_state() = seed;
}
static inline uint32_t test_rng_next(void) {
    uint64_t *s = test_rng_state();
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 32);
}
/* Uniform in [0, 1) with 24 bits. */
static inline float test_rng_unif(void) {
    return (float)((test_rng_next() >> 8) * (1.0 / 16777216.0));
}

/* The weighted quantizers' test input: importance w[n] (every 7th large) and
 * rows x[rows][n] with outliers, row 2 scaled down by 1000. */
static inline void test_weighted_make(float *x, float *w, int rows, int n, uint64_t seed) {
    test_rng_seed(seed);
    for (int j = 0; j < n; j++)
        w[j] = 0.01f + 4.0f * test_rng_unif() * test_rng_unif() * (j % 7 == 0 ? 20.0f : 1.0f);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            float v = (test_rng_unif() - 0.5f) * 2.0f * (1.0f + (float)(j % 5));
            if (test_rng_next() % 53 == 0) v *= 9.0f;
            x[(size_t)r * n + j] = v * (r == 2 ? 0.001f : 1.0f);
        }
}

#endif
