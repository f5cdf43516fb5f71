/*
 * test_quant_weighted.c - the importance-weighted block quantizers
 * (core/quant_weighted.c) against llama.cpp's.
 *
 * (a) Bytes: seeded random rows (6 x 512, columns of different spread, a
 *     few outliers, one near-zero row) and a random importance vector are
 *     quantized with every weighted type; the FNV-1a hash of the output must
 *     equal the hash of ggml_quantize_chunk's output for the same data and
 *     weights (llama.cpp dc02e1f, libggml-base, computed once by a harness
 *     outside the repo that uses this file's generator).
 * (b) Weights matter: for Q4_0 the importance-weighted squared error is
 *     lower with the weights than without, and a NULL weight vector gives
 *     exactly hearth_quantize_row's bytes; Q8_0 ignores weights; an IQ type
 *     with weights is refused.
 */
#include <stdint.h>

#include "core/dtype.h"
#include "core/quant_weighted.h"
#include "test.h"
#include "quant_test_data.h"

enum { ROWS = 6, N = 512 };

static size_t quantize_rows(hearth_dtype t, const float *x, uint8_t *out, const float *w) {
    size_t rb = hearth_dtype_row_size(t, N);
    for (int r = 0; r < ROWS; r++)
        if (!hearth_quantize_row_weighted(t, x + (size_t)r * N, out + (size_t)r * rb, N, w)) return 0;
    return rb * ROWS;
}

typedef struct {
    hearth_dtype t;
    size_t bytes;
    uint64_t fnv[2]; /* seeds 1 and 2 */
} ref_t;

/* ggml_quantize_chunk(type, x, out, 0, 6, 512, w), llama.cpp dc02e1f */
static const ref_t k_ref[] = {
    {HEARTH_Q4_0, 1728, {0xc2261651b8c73a1full, 0xb37b19758e643d45ull}},
    {HEARTH_Q4_1, 1920, {0xa4d8208bdb027dc9ull, 0x24cc668a7c3e1829ull}},
    {HEARTH_Q5_0, 2112, {0xa5ef8d3e7849e965ull, 0x20b20a170b7f1969ull}},
    {HEARTH_Q5_1, 2304, {0x54dcc96bdc282bb6ull, 0x21b662e635b206e7ull}},
    {HEARTH_Q2_K, 1008, {0xeb0ebe08b5fe6b1eull, 0x4520a422a054dbadull}},
    {HEARTH_Q3_K, 1320, {0x4541018d73e0d322ull, 0xdd0c836a71c4fd6eull}},
    {HEARTH_Q4_K, 1728, {0x591c86a2924f66b6ull, 0x61e014408dd654b4ull}},
    {HEARTH_Q5_K, 2112, {0x38e41af936c02705ull, 0xca09f29f04f0ee98ull}},
    {HEARTH_Q6_K, 2520, {0xbfd5e69248996de9ull, 0x9351a54ede38e623ull}},
};

static double weighted_err(hearth_dtype t, const float *x, const float *w, const uint8_t *q) {
    size_t rb = hearth_dtype_row_size(t, N);
    float back[N];
    double e = 0;
    for (int r = 0; r < ROWS; r++) {
        hearth_dequantize_row(t, q + (size_t)r * rb, back, N);
        for (int j = 0; j < N; j++) {
            double d = back[j] - x[(size_t)r * N + j];
            e += w[j] * d * d;
        }
    }
    return e;
}

int main(void) {
    static float x[ROWS * N], w[N];
    static uint8_t out[ROWS * N * 2], plain[ROWS * N * 2];
    for (int s = 1; s <= 2; s++) {
        test_weighted_make(x, w, ROWS, N, 0x9E3779B97F4A7C15ull * (uint64_t)s);
        for (size_t i = 0; i < sizeof k_ref / sizeof *k_ref; i++) {
            const ref_t *r = &k_ref[i];
            CHECK(hearth_quant_weighted_kind(r->t) == 1);
            size_t n = quantize_rows(r->t, x, out, w);
            CHECKF(n == r->bytes, "%s: %zu bytes, want %zu", hearth_dtype_name(r->t), n, r->bytes);
            uint64_t h = test_fnv1a(out, n, TEST_FNV_OFFSET);
            CHECKF(h == r->fnv[s - 1], "%s seed %d: fnv %016llx, llama.cpp's %016llx",
                   hearth_dtype_name(r->t), s, (unsigned long long)h, (unsigned long long)r->fnv[s - 1]);
        }
    }
    /* (b) the weights change the search toward the important columns */
    test_weighted_make(x, w, ROWS, N, 12345);
    size_t n = quantize_rows(HEARTH_Q4_0, x, out, w), np = quantize_rows(HEARTH_Q4_0, x, plain, NULL);
    REQUIRE(n && n == np);
    double ew = weighted_err(HEARTH_Q4_0, x, w, out), ep = weighted_err(HEARTH_Q4_0, x, w, plain);
    printf("Q4_0 importance-weighted error: %.4f with the weights, %.4f without\n", ew, ep);
    CHECK(ew < ep);
    size_t rb = hearth_dtype_row_size(HEARTH_Q4_0, N);
    for (int r = 0; r < ROWS; r++)
        CHECK(hearth_quantize_row(HEARTH_Q4_0, x + (size_t)r * N, out + (size_t)r * rb, N));
    CHECK(memcmp(out, plain, np) == 0);
    CHECK(hearth_quant_weighted_kind(HEARTH_Q8_0) == 0);
    quantize_rows(HEARTH_Q8_0, x, out, w);
    quantize_rows(HEARTH_Q8_0, x, plain, NULL);
    CHECK(memcmp(out, plain, hearth_dtype_row_size(HEARTH_Q8_0, N) * ROWS) == 0);
    CHECK(hearth_quant_weighted_kind(HEARTH_IQ4_NL) == 1); /* IQ4/IQ3: tests/unit/core/test_quant_iq3.c */
    CHECK(hearth_quant_weighted_kind(HEARTH_Q8_K) == -1);   /* an activation type: no weighted search */
    CHECK(!hearth_quantize_row_weighted(HEARTH_Q8_K, x, out, N, w));
    CHECK(!hearth_quantize_row_weighted(HEARTH_Q4_K, x, out, 100, w)); /* not a multiple of 256 */
    return test_summary("test_quant_weighted");
}
