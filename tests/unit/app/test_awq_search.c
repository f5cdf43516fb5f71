/*
 * test_awq_search.c - the kernels of `hearth quantize --awq`'s search
 * (app/commands/awq_search.h): the block moments give the direct output
 * error, the clipping search lowers the activation-weighted error where
 * clipping must help (an outlier weight on a channel with almost no
 * activation), never raises it, writes values the plain quantizer turns
 * into a block with exactly the reported error, the rounding refinement
 * is never worse and its values requantize to its codes, so does the
 * whole-row refinement on the full moments, works on the 256-wide K
 * blocks and leaves an all-zero block alone; the parallel-for covers every
 * index exactly once for any thread count.
 * Owns: nothing outside the process.
 */
#include <stdint.h>

#include "app/commands/awq_search.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

enum { R = 64, N = 64 };

/* Inputs with channel 5 almost silent: the weight there hardly matters. */
static void make_x(float *x) {
    for (int r = 0; r < R; r++)
        for (int j = 0; j < N; j++)
            x[r * N + j] = frand() * (j == 5 ? 1e-3f : 1.0f);
}

static double direct_err(const float *x, const float *e) {
    double tot = 0;
    for (int r = 0; r < R; r++)
        for (int b = 0; b < N / AWQ_HB; b++) {
            double d = 0;
            for (int j = 0; j < AWQ_HB; j++)
                d += (double)x[r * N + b * AWQ_HB + j] * e[b * AWQ_HB + j];
            tot += d * d;
        }
    return tot;
}

static void test_hblock(void) {
    static float x[R * N], e[N], hs[N * AWQ_HB], s[N];
    static double h[N * AWQ_HB];
    make_x(x);
    awq_hblock_add(h, x, R, N);
    for (int j = 0; j < N; j++) {
        e[j] = frand();
        s[j] = 0.5f + (float)j / N;
    }
    awq_hblock_scale(h, NULL, N, hs);
    const double a = awq_hblock_err(hs, e, N), b = direct_err(x, e);
    CHECKF(fabs(a - b) <= 1e-5 * b, "block moments %g vs direct %g", a, b);
    /* scaled moments = the moments of x / s */
    static float xs[R * N];
    static double h2[N * AWQ_HB];
    static float hs2[N * AWQ_HB];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < N; j++)
            xs[r * N + j] = x[r * N + j] / s[j];
    awq_hblock_add(h2, xs, R, N);
    awq_hblock_scale(h, s, N, hs);
    awq_hblock_scale(h2, NULL, N, hs2);
    const double c = awq_hblock_err(hs, e, N), d = awq_hblock_err(hs2, e, N);
    CHECKF(fabs(c - d) <= 1e-5 * d, "scaled moments %g vs moments of x/s %g", c, d);
}

static double quant_err(hearth_dtype t, const float *v, const float *w, int64_t n, const float *hs) {
    uint8_t q[1024];
    float deq[256], e[256];
    REQUIRE(hearth_quantize_row(t, v, q, n));
    hearth_dequantize_row(t, q, deq, n);
    for (int64_t j = 0; j < n; j++)
        e[j] = deq[j] - w[j];
    return awq_hblock_err(hs, e, n);
}

static void test_clip_helps(void) {
    static float x[R * N], hs[N * AWQ_HB], w[N], out[N];
    static double h[N * AWQ_HB];
    make_x(x);
    awq_hblock_add(h, x, R, N);
    awq_hblock_scale(h, NULL, N, hs);
    for (int j = 0; j < N; j++)
        w[j] = 0.1f * frand();
    w[5] = 1.0f; /* an outlier weight where the input is ~0: it sets the block's scale for nothing */
    double e0 = 0, e1 = 0;
    REQUIRE(awq_clip_row(HEARTH_Q4_0, w, N, hs, 1, false, out, &e0, &e1));
    CHECKF(e1 < 0.5 * e0, "clipping should at least halve the error here: %g -> %g", e0, e1);
    CHECK(out[5] < w[5]);
    /* the plain quantizer fed the clipped values gives exactly the reported error; unclipped gives e0 */
    const double q1 = quant_err(HEARTH_Q4_0, out, w, N, hs), q0 = quant_err(HEARTH_Q4_0, w, w, N, hs);
    CHECKF(fabs(q1 - e1) <= 1e-6 * e0, "reported %g, requantized %g", e1, q1);
    CHECKF(fabs(q0 - e0) <= 1e-6 * e0, "reported plain %g, requantized %g", e0, q0);
    /* the second block has no outlier: its values may be clipped a little but never made worse */
    for (int it = 0; it < 50; it++) {
        for (int j = 0; j < N; j++)
            w[j] = frand() * (it % 3 == 0 ? 1.0f : 0.2f);
        REQUIRE(awq_clip_row(it % 2 ? HEARTH_Q4_0 : HEARTH_Q5_0, w, N, it % 4 ? hs : NULL, 1, false, out, &e0,
                             &e1));
        CHECK(e1 <= e0);
    }
}

/* The rounding refinement: never worse than clipping alone, and the plain
 * quantizer fed its values reproduces its codes (same error, to rounding). */
static void test_refine(void) {
    static float x[R * N], hs[N * AWQ_HB], w[N], out[N], out2[N];
    static double h[N * AWQ_HB];
    for (int r = 0; r < R; r++) /* correlated channels, so rounding choices interact */
        for (int j = 0; j < N; j++)
            x[r * N + j] = frand() + (j % 2 ? 0.8f * x[r * N + j - 1] : 0.0f);
    awq_hblock_add(h, x, R, N);
    awq_hblock_scale(h, NULL, N, hs);
    int better = 0;
    for (int it = 0; it < 40; it++) {
        const hearth_dtype t = it % 2 ? HEARTH_Q4_0 : HEARTH_Q5_0;
        for (int j = 0; j < N; j++)
            w[j] = frand() * (j == it % N ? 3.0f : 1.0f);
        double p0, c1, p1, r1;
        REQUIRE(awq_clip_row(t, w, N, hs, 1, false, out, &p0, &c1));
        REQUIRE(awq_clip_row(t, w, N, hs, 1, true, out2, &p1, &r1));
        CHECKF(r1 <= c1 * (1 + 1e-9), "refined %g > clipped %g", r1, c1);
        better += r1 < 0.999 * c1;
        const double q = quant_err(t, out2, w, N, hs);
        CHECKF(fabs(q - r1) <= 1e-5 * p0, "%s: reported %g, requantized %g", hearth_dtype_name(t), r1, q);
    }
    CHECKF(better > 20, "the refinement helped on only %d of 40 rows", better);
}

/* The whole-row refinement on the full moments: never worse than its start
 * on the full measure, lowers it on correlated inputs, and the quantizer
 * reproduces its levels (the full error of requantized values is the same). */
static void test_refine_full(void) {
    enum { NF = 64 };
    static float x[R * NF], hf[NF * NF], hs[NF * NF], hb[NF * AWQ_HB], w[NF], v[NF], deq[NF];
    static double h[NF * AWQ_HB];
    for (int r = 0; r < R; r++) /* channel j + 32 follows channel j: cross-block correlation */
        for (int j = 0; j < NF; j++)
            x[r * NF + j] = j >= 32 ? 0.9f * x[r * NF + j - 32] + 0.3f * frand() : frand();
    awq_hfull_add(hf, x, R, NF);
    awq_hfull_scale(hf, NULL, NF, hs);
    awq_hblock_add(h, x, R, NF);
    awq_hblock_scale(h, NULL, NF, hb);
    int better = 0;
    for (int it = 0; it < 20; it++) {
        const hearth_dtype t = it % 2 ? HEARTH_Q4_0 : HEARTH_Q5_0;
        for (int j = 0; j < NF; j++)
            w[j] = frand();
        double p0, c1, f0, f1;
        REQUIRE(awq_clip_row(t, w, NF, hb, 1, true, v, &p0, &c1));
        REQUIRE(awq_refine_row_full(t, w, v, NF, hs, &f0, &f1));
        CHECKF(f1 <= f0 * (1 + 1e-6), "full refinement raised the error %g -> %g", f0, f1);
        better += f1 < 0.99 * f0;
        uint8_t q[64];
        REQUIRE(hearth_quantize_row(t, v, q, NF));
        hearth_dequantize_row(t, q, deq, NF);
        int same = 1;
        for (int j = 0; j < NF; j++)
            same &= deq[j] == v[j];
        CHECKF(same, "%s: the quantizer does not reproduce the refined levels", hearth_dtype_name(t));
    }
    CHECKF(better >= 10, "the full refinement helped on only %d of 20 rows", better);
    CHECK(!awq_refine_row_full(HEARTH_Q4_K, w, v, NF, hs, &(double){0}, &(double){0}));
}

static void test_clip_k_and_zero(void) {
    static float w[512], out[512];
    for (int j = 0; j < 512; j++)
        w[j] = frand() * (j % 97 == 0 ? 8.0f : 1.0f);
    double e0 = 0, e1 = 0;
    CHECK(awq_clip_group(HEARTH_Q4_K) == 256 && awq_clip_group(HEARTH_Q4_0) == 32);
    CHECK(awq_clip_group(HEARTH_F32) == 0 && awq_clip_group(HEARTH_F16) == 0);
    REQUIRE(awq_clip_row(HEARTH_Q4_K, w, 512, NULL, 1, false, out, &e0, &e1));
    CHECK(e1 <= e0 && e0 > 0);
    CHECK(!awq_clip_row(HEARTH_Q4_K, w, 96, NULL, 1, false, out, &e0, &e1)); /* not a block multiple */
    for (int j = 0; j < 32; j++)
        w[j] = 0;
    REQUIRE(awq_clip_row(HEARTH_Q4_0, w, 32, NULL, 1, true, out, &e0, &e1));
    int same = 1;
    for (int j = 0; j < 32; j++)
        same &= out[j] == 0;
    CHECK(same && e0 == 0 && e1 == 0);
}

static int hits[1000];
static void mark(void *ctx, int64_t i0, int64_t i1) {
    (void)ctx;
    for (int64_t i = i0; i < i1; i++)
        hits[i]++;
}

static void test_parallel(void) {
    const int nth[] = {1, 2, 3, 7, 64, 100};
    for (size_t k = 0; k < sizeof nth / sizeof *nth; k++) {
        memset(hits, 0, sizeof hits);
        awq_parallel(nth[k], 1000, mark, NULL);
        int all = 1;
        for (int i = 0; i < 1000; i++)
            all &= hits[i] == 1;
        CHECKF(all, "%d threads", nth[k]);
    }
    memset(hits, 0, sizeof hits);
    awq_parallel(4, 3, mark, NULL);
    CHECK(hits[0] == 1 && hits[1] == 1 && hits[2] == 1 && hits[3] == 0);
}

int main(void) {
    test_hblock();
    test_clip_helps();
    test_refine();
    test_refine_full();
    test_clip_k_and_zero();
    test_parallel();
    return test_summary("test_awq_search");
}
