/*
 * test_cuda_quant.c - the CUDA backend's weight decoders (backends/cuda/cuda_quant.h)
 * against core/dtype.c, on the host: no GPU needed.
 *
 * The decoders are __host__ __device__; tests/unit/cuda_quant_host.cu runs them
 * on the CPU the way the kernels walk a row. For every type cuda_type_supported
 * names (and it must name every type the runtime can load), rows are made by
 * the reference quantizer (hearth_dtype_info(t)->from_float) from several kinds
 * of data, and also as random bytes (every bit pattern of scales, high bits and
 * signs, which the quantizer may never write), and decoded three ways:
 * hearth_dequantize_row, the kernels' chunk/element path (dq8 + dq1) and, for
 * the 32-element blocks, the matvec's whole-block path (cq_q32). They must
 * agree bit for bit (two NaNs count as equal: only their payloads may differ).
 * F16 and BF16 are checked over all 65536 bit patterns; plain-float rows also
 * at lengths that are not a multiple of 8 (the dq1 tail).
 * Without the CUDA backend (HEARTH_HAVE_CUDA unset) the test skips (77).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "test.h"

#ifndef HEARTH_HAVE_CUDA
int main(void) {
    printf("test_cuda_quant: skipped (built without the CUDA backend)\n");
    return 77;
}
#else

bool tcq_supported(int t);
bool tcq_decode_row(int t, const void *row, int64_t n, float *out);
bool tcq_decode_q32(int t, const void *blk, float out[32]);
bool tcq_is_q32(int t);

// ---------------------------------------------------------------- helpers

static uint64_t g_rng = 0xC0FFEE1234567ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_float(void) { return (float)((double)(rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Index of the first element where a and b differ (NaN == NaN), or -1. */
static int64_t first_diff(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (bits_of(a[i]) != bits_of(b[i]) && !(a[i] != a[i] && b[i] != b[i])) return i;
    return -1;
}

/* Decode `row` (n elements of t) every way and compare with dtype.c. */
static void check_row(hearth_dtype t, const void *row, int64_t n, const char *what) {
    float *want = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
    REQUIRE(want && got);
    hearth_dequantize_row(t, row, want, n);
    memset(got, 0xFF, (size_t)n * sizeof(float)); /* NaN: a chunk left unwritten shows */
    CHECKF(tcq_decode_row(t, row, n, got), "%s: the host helper has no case for this type", hearth_dtype_name(t));
    int64_t i = first_diff(want, got, n);
    CHECKF(i < 0, "%s %s n=%lld: dq8/dq1 element %lld is %.9g (0x%08x), dtype.c says %.9g (0x%08x)",
           hearth_dtype_name(t), what, (long long)n, (long long)i, i < 0 ? 0.0 : got[i], i < 0 ? 0 : bits_of(got[i]),
           i < 0 ? 0.0 : want[i], i < 0 ? 0 : bits_of(want[i]));
    if (tcq_is_q32(t)) {
        const size_t bs = hearth_dtype_info(t)->type_size;
        int64_t bad = -1;
        for (int64_t b = 0; b < n / 32 && bad < 0; b++) {
            float blk[32];
            memset(blk, 0xFF, sizeof blk);
            if (!tcq_decode_q32(t, (const uint8_t *)row + b * bs, blk)) bad = b * 32;
            const int64_t j = first_diff(want + b * 32, blk, 32);
            if (j >= 0) bad = b * 32 + j;
        }
        CHECKF(bad < 0, "%s %s n=%lld: cq_q32 element %lld differs from dtype.c", hearth_dtype_name(t), what,
               (long long)n, (long long)bad);
    }
    free(want);
    free(got);
}

// ---------------------------------------------------------------- cases

/* Kinds of input rows: each stresses a different part of the quantizers' range. */
enum { D_UNIFORM, D_WIDE, D_OUTLIER, D_CONST, D_ZERO, D_POSITIVE, D_COUNT };
static const char *const k_data_names[D_COUNT] = {"uniform", "wide", "outlier", "constant", "zero", "positive"};

static void fill(float *x, int64_t n, int kind) {
    const float c = rng_float();
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case D_UNIFORM: x[i] = rng_float(); break;
        case D_WIDE: x[i] = rng_float() * (float)(1 << (rng_next() % 12)) * 1e-2f; break; /* magnitudes 1e-2..20 */
        case D_OUTLIER: x[i] = i % 97 == 5 ? 100.0f * rng_float() : 0.01f * rng_float(); break;
        case D_CONST: x[i] = c; break;
        case D_ZERO: x[i] = 0.0f; break;
        default: x[i] = 0.5f + 0.5f * rng_float(); break; /* all positive: the min-carrying types */
        }
    }
}

/* Quantized with the reference quantizer, then as random bytes. */
static void test_type(hearth_dtype t) {
    const hearth_dtype_traits *tr = hearth_dtype_info(t);
    const int64_t bsz = tr->block_size;
    /* whole blocks for the quantized types (odd counts); any length for plain floats */
    const int64_t q_blocks[] = {1, 3, 7, 33};
    const int64_t f_lens[] = {1, 7, 8, 13, 100, 257, 1027};
    const int nlen = bsz == 1 ? (int)(sizeof f_lens / sizeof *f_lens) : (int)(sizeof q_blocks / sizeof *q_blocks);
    for (int li = 0; li < nlen; li++) {
        const int64_t n = bsz == 1 ? f_lens[li] : q_blocks[li] * bsz;
        const size_t bytes = hearth_dtype_row_size(t, n);
        REQUIRE(bytes > 0);
        float *x = malloc((size_t)n * sizeof(float));
        uint8_t *row = malloc(bytes);
        REQUIRE(x && row);
        for (int kind = 0; kind < D_COUNT; kind++) {
            fill(x, n, kind);
            REQUIRE(hearth_quantize_row(t, x, row, n));
            check_row(t, row, n, k_data_names[kind]);
        }
        for (int rep = 0; rep < 4; rep++) {
            for (size_t i = 0; i < bytes; i++) row[i] = (uint8_t)rng_next();
            check_row(t, row, n, "random bytes");
        }
        free(x);
        free(row);
    }
}

/* Every F16 / BF16 bit pattern, as one row (so also every chunk offset). */
static void test_all_halves(hearth_dtype t) {
    uint16_t *row = malloc(65536 * sizeof(uint16_t));
    REQUIRE(row);
    for (int i = 0; i < 65536; i++) row[i] = (uint16_t)i;
    check_row(t, row, 65536, "every bit pattern");
    check_row(t, row + 3, 65533, "every bit pattern, odd start"); /* the dq1 tail and unaligned chunks */
    free(row);
}

int main(void) {
    int ntypes = 0;
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++) {
        const hearth_dtype_traits *tr = hearth_dtype_info((hearth_dtype)t);
        /* the runtime can load it, so the GPU must decode it (else its layers fall back to the CPU) */
        /* the IQ grid types have no CUDA kernel yet: their layers are placed on the CPU */
        bool cpu_only = t == HEARTH_IQ2_XXS || t == HEARTH_IQ2_XS || t == HEARTH_IQ2_S || t == HEARTH_IQ3_XXS ||
                        t == HEARTH_IQ3_S || t == HEARTH_IQ1_S || t == HEARTH_IQ1_M;
        if (tr->known && !cpu_only) CHECKF(tcq_supported(t), "cuda_type_supported(%s) is false", tr->name);
        if (!tcq_supported(t)) continue;
        REQUIRE(tr->to_float && tr->from_float);
        test_type((hearth_dtype)t);
        ntypes++;
    }
    printf("  %d types checked against dtype.c\n", ntypes);
    test_all_halves(HEARTH_F16);
    test_all_halves(HEARTH_BF16);
    CHECK(!tcq_supported(HEARTH_Q8_1) && !tcq_supported(HEARTH_Q8_K)); /* activation formats, not weights */
    return test_summary("test_cuda_quant");
}

#endif
