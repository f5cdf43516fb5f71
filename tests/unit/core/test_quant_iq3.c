/*
 * test_quant_iq3.c - the IQ3_XXS / IQ3_S row quantizers (core/quant_iq3.c)
 * and the importance-weighted IQ4_NL / IQ4_XS searches (core/quant_weighted.c)
 * against llama.cpp's.
 *
 * (a) Bytes: seeded random rows (7 x 512: an odd row count, columns of
 *     different spread, outliers, a near-zero row, a row with one all-zero
 *     group of 32 and a row whose second block is all zero) with a random
 *     importance vector and without one; the FNV-1a hash of the output must
 *     equal the hash of ggml_quantize_chunk's output for the same data
 *     (llama.cpp dc02e1f, libggml-base, computed once by a harness outside
 *     the repo that uses this file's generator).
 * (b) Sanity: quantize -> dequantize (the reference decoders) gives a
 *     relative RMS error within each type's expected range, lower for more
 *     bits; the weights lower the weighted error; the dtype table's
 *     from_float is the unweighted search; bad lengths are refused.
 * (c) The lattice tables: built once (concurrent first use from 4 threads
 *     gives identical bytes), with the neighbour counts of ggml's tables.
 */
#include <pthread.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/quant_iq3.h"
#include "core/quant_weighted.h"
#include "test.h"
#include "quant_test_data.h"

/* the weighted quantizers' input (quant_test_data.h), which the reference
 * hashes were made with, plus */
static void wq_make(float *x, float *w, int rows, int n, uint64_t seed) {
    test_weighted_make(x, w, rows, n, seed);
    /* row 4: an all-zero group of 32 (IQ3_S's skip), row 5: one all-zero block of 256 */
    for (int j = 32; j < 64; j++)
        x[(size_t)4 * n + j] = 0;
    for (int j = 256; j < 512 && rows > 5; j++)
        x[(size_t)5 * n + j] = 0;
}

enum { ROWS = 7, N = 512 };

static size_t quantize_rows(hearth_dtype t, const float *x, uint8_t *out, const float *w) {
    size_t rb = hearth_dtype_row_size(t, N);
    for (int r = 0; r < ROWS; r++)
        if (!hearth_quantize_row_weighted(t, x + (size_t)r * N, out + (size_t)r * rb, N, w)) return 0;
    return rb * ROWS;
}

typedef struct {
    hearth_dtype t;
    size_t bytes;
    uint64_t fnv[4]; /* seed 1 with, without weights; seed 2 with, without */
} ref_t;

/* ggml_quantize_chunk(type, x, out, 0, 7, 512, w or NULL), llama.cpp dc02e1f */
static const ref_t k_ref[] = {
    {HEARTH_IQ3_XXS,
     1372,
     {0x16fb3b25ed7c6b8eull, 0x1617a8df4745ebe4ull, 0x92253188c9008d74ull, 0xb7956629efc508bcull}},
    {HEARTH_IQ3_S,
     1540,
     {0x0aba8c465817bc7dull, 0xc153841efcd44d28ull, 0x01bdb53f12adbd1cull, 0xc524c0977ca44f5bull}},
    {HEARTH_IQ4_NL,
     2016,
     {0xcb5408ef41b77fdaull, 0x2936981e498a55b7ull, 0xbd84c5d86d59d866ull, 0x73d4be6764da53ddull}},
    {HEARTH_IQ4_XS,
     1904,
     {0xe1d6b74dd62a19ddull, 0xf6e925b1f6629ae1ull, 0x1a4e8628a3d4f4faull, 0xa1d37c83b3a047a6ull}},
};

/* sum w (x - q)^2 over rows 0, 1, 3 (ordinary data), and the plain relative RMS error */
static double errs(hearth_dtype t, const float *x, const float *w, const uint8_t *q, double *rel) {
    size_t rb = hearth_dtype_row_size(t, N);
    float back[N];
    double e = 0, se = 0, sx = 0;
    const int rows[3] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        const int r = rows[k];
        hearth_dequantize_row(t, q + (size_t)r * rb, back, N);
        for (int j = 0; j < N; j++) {
            double d = back[j] - x[(size_t)r * N + j];
            e += w[j] * d * d;
            se += d * d;
            sx += (double)x[(size_t)r * N + j] * x[(size_t)r * N + j];
        }
    }
    *rel = sqrt(se / sx);
    return e;
}

typedef struct {
    const float *x;
    uint8_t *out;
    hearth_dtype t;
} th_job;

static void *th_run(void *arg) {
    th_job *j = arg;
    quantize_rows(j->t, j->x, j->out, NULL);
    return NULL;
}

int main(void) {
    static float x[ROWS * N], w[N];
    static uint8_t out[ROWS * N * 2], plain[ROWS * N * 2], thr[4][ROWS * N * 2];

    /* (c) first use from 4 threads at once: the tables are built once, same bytes */
    wq_make(x, w, ROWS, N, 1);
    pthread_t th[4];
    th_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (th_job){x, thr[i], i % 2 ? HEARTH_IQ3_S : HEARTH_IQ3_XXS};
        REQUIRE(pthread_create(&th[i], NULL, th_run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(memcmp(thr[0], thr[2], hearth_dtype_row_size(HEARTH_IQ3_XXS, N) * ROWS) == 0);
    CHECK(memcmp(thr[1], thr[3], hearth_dtype_row_size(HEARTH_IQ3_S, N) * ROWS) == 0);
    /* ggml's iq3xs_init_impl: 3840 / 3584 points off the grid, 2 / 3 nearest distances each */
    CHECKF(hearth_iq3_neighbour_count(256) == 22825, "%d", hearth_iq3_neighbour_count(256));
    CHECKF(hearth_iq3_neighbour_count(512) == 28317, "%d", hearth_iq3_neighbour_count(512));

    /* (a) bytes */
    for (int s = 1; s <= 2; s++) {
        wq_make(x, w, ROWS, N, (uint64_t)s);
        for (size_t k = 0; k < sizeof k_ref / sizeof k_ref[0]; k++) {
            const ref_t *r = &k_ref[k];
            CHECK(hearth_quant_weighted_kind(r->t) == 1);
            size_t n = quantize_rows(r->t, x, out, w);
            CHECKF(n == r->bytes, "%s: %zu bytes", hearth_dtype_name(r->t), n);
            uint64_t h = test_fnv1a(out, n, TEST_FNV_OFFSET);
            CHECKF(h == r->fnv[2 * (s - 1)], "%s seed %d weighted: fnv 0x%016llx, ggml's 0x%016llx",
                   hearth_dtype_name(r->t), s, (unsigned long long)h,
                   (unsigned long long)r->fnv[2 * (s - 1)]);
            n = quantize_rows(r->t, x, plain, NULL);
            h = test_fnv1a(plain, n, TEST_FNV_OFFSET);
            CHECKF(h == r->fnv[2 * (s - 1) + 1], "%s seed %d plain: fnv 0x%016llx, ggml's 0x%016llx",
                   hearth_dtype_name(r->t), s, (unsigned long long)h,
                   (unsigned long long)r->fnv[2 * (s - 1) + 1]);
            /* the dtype table's from_float is the unweighted search */
            size_t rb = hearth_dtype_row_size(r->t, N);
            for (int row = 0; row < ROWS; row++)
                CHECK(hearth_quantize_row(r->t, x + (size_t)row * N, out + (size_t)row * rb, N));
            CHECK(memcmp(out, plain, n) == 0);
        }
    }

    /* (b) error: relative RMS in the expected band, weights help, more bits help */
    wq_make(x, w, ROWS, N, 3);
    static const struct {
        hearth_dtype t;
        double lo, hi;
    } band[] = {{HEARTH_IQ3_XXS, 0.15, 0.45},
                {HEARTH_IQ3_S, 0.12, 0.35},
                {HEARTH_IQ4_XS, 0.06, 0.20},
                {HEARTH_IQ4_NL, 0.06, 0.20}};
    double rel_prev = 1;
    for (size_t k = 0; k < sizeof band / sizeof band[0]; k++) {
        double rel_w, rel_p;
        REQUIRE(quantize_rows(band[k].t, x, out, w) && quantize_rows(band[k].t, x, plain, NULL));
        double ew = errs(band[k].t, x, w, out, &rel_w), ep = errs(band[k].t, x, w, plain, &rel_p);
        printf("%-8s relative RMS error %.4f (plain), weighted error %.2f with the weights, %.2f without\n",
               hearth_dtype_name(band[k].t), rel_p, ew, ep);
        CHECKF(rel_p > band[k].lo && rel_p < band[k].hi, "%s: %.4f", hearth_dtype_name(band[k].t), rel_p);
        CHECKF(ew < ep, "%s: weighted %.3f vs %.3f", hearth_dtype_name(band[k].t), ew, ep);
        if (k < 3)
            CHECKF(rel_p < rel_prev, "%s not better than the type before", hearth_dtype_name(band[k].t));
        rel_prev = rel_p;
    }
    /* zero input: zero blocks that decode to zeros */
    float zero[256] = {0}, back[256];
    uint8_t zb[256];
    CHECK(hearth_iq3_s_quantize(zero, zb, 256, NULL) && hearth_iq3_xxs_quantize(zero, zb + 128, 256, w));
    hearth_dequantize_row(HEARTH_IQ3_S, zb, back, 256);
    CHECK(back[0] == 0 && back[255] == 0);
    /* lengths that are not a multiple of 256 */
    CHECK(!hearth_iq3_xxs_quantize(x, out, 100, NULL));
    CHECK(!hearth_quantize_row_weighted(HEARTH_IQ3_S, x, out, 300, w));
    CHECK(!hearth_quantize_row_weighted(HEARTH_IQ4_NL, x, out, 48, w));
    return test_summary("test_quant_iq3");
}
