/*
 * test_quant_iq2.c - the IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M quantizers
 * (core/quant_iq2.c, core/quant_iq1.c) and their grid search tables.
 *
 * (a) Tables: every grid point maps back to its own index; every off-grid
 *     pattern's neighbour list is sorted by (distance, index) and holds
 *     exactly the grid points at the nwant smallest distances (checked by
 *     brute force on every 5th pattern); the counts of neighbours and of
 *     off-grid patterns, and FNV-1a hashes of the whole map and neighbour
 *     arrays, equal those of ggml's iq2xs_init_impl (llama.cpp dc02e1f, its
 *     arrays hashed by a harness outside the repo).
 * (b) Bytes: seeded random rows (7 x 768: outliers, a near-zero row, a row
 *     with a zero group, a row of few distinct values) and a random
 *     importance vector with zero columns; the FNV-1a hash of the output
 *     equals that of ggml_quantize_chunk's output for the same data
 *     (weighted: all five; without weights: IQ2_S and IQ1_M, the two that
 *     llama.cpp quantizes without an importance matrix).
 * (c) Sanity: dequantized error on normal rows within each type's bound,
 *     weighted error lower with the weights than without (IQ2_S, IQ1_M);
 *     same bytes twice and from two threads at once (reentrant); odd row
 *     counts and lengths that are not a multiple of 256 refused; the
 *     dispatch of hearth_quantize_row / hearth_quantize_row_weighted.
 */
#include <pthread.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/dtype_iq.h"
#include "core/quant_iq2.h"
#include "core/quant_weighted.h"
#include "test.h"
#include "quant_test_data.h"

/* must stay identical to the generator the reference hashes were made with */
static void iq_make(float *x, float *w, int rows, int n, uint64_t seed) {
    test_rng_seed(seed);
    for (int j = 0; j < n; j++) {
        w[j] = 0.01f + 4.0f * test_rng_unif() * test_rng_unif() * (j % 7 == 0 ? 20.0f : 1.0f);
        if (j % 29 == 3) w[j] = 0.0f;
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            float v = (test_rng_unif() - 0.5f) * 2.0f * (1.0f + (float)(j % 5));
            if (test_rng_next() % 53 == 0) v *= 9.0f;
            if (r == 4 && j >= 64 && j < 96) v = 0.0f;
            if (r == 5 && j % 3 == 0) v = (float)(j % 4) * 0.5f;
            x[(size_t)r * n + j] = v * (r == 2 ? 0.001f : 1.0f);
        }
}

/* ---------------------------------------------------------------- (a) tables */

typedef struct {
    hearth_dtype t;
    int grid_size;
    int64_t n_neighbours, n_off_grid;
    uint64_t fnv_neighbours, fnv_map;
} table_ref;

/* ggml's iq2xs_init_impl (dc02e1f): num_neighbors, num_not_in_map and the
 * FNV-1a of kneighbors_q2xs (uint16) and kmap_q2xs (int32, 43692 entries) */
static const table_ref k_tables[] = {
    {HEARTH_IQ2_XXS, 256, 373964, 43436, 0x7c720d79ef2aee15ull, 0x9c0cac1ba33a3e09ull},
    {HEARTH_IQ2_XS, 512, 508542, 43180, 0x5874deae18afced9ull, 0x2b615902cece83b7ull},
    {HEARTH_IQ1_S, 2048, 1333695, 41644, 0x4b0077ab1a0e2454ull, 0xe67708600c6468e9ull},
    {HEARTH_IQ2_S, 1024, 166432, 42668, 0x27696319d3e98456ull, 0x03b7d61fdeded6f5ull},
};

static int dist2(const hearth_iq2_tables *t, int u, int gi) {
    int d2 = 0;
    for (int k = 0; k < 8; ++k) {
        const int diff = hearth_iq_grid8(t->grid[gi], k) - (2 * ((u >> 2 * k) & 3) + 1);
        d2 += diff * diff;
    }
    return d2;
}

static void check_tables(const table_ref *ref) {
    const hearth_iq2_tables *t = hearth_iq2_tables_for(ref->t);
    REQUIRE(t != NULL);
    CHECK(t == hearth_iq2_tables_for(ref->t)); /* built once */
    CHECK(t->grid_size == ref->grid_size);
    CHECKF(t->n_neighbours == ref->n_neighbours && t->n_off_grid == ref->n_off_grid,
           "%s: %lld neighbours for %lld patterns, ggml has %lld for %lld", hearth_dtype_name(ref->t),
           (long long)t->n_neighbours, (long long)t->n_off_grid, (long long)ref->n_neighbours,
           (long long)ref->n_off_grid);
    int on_grid = 0, self = 0;
    for (int k = 0; k < t->grid_size; ++k) {
        int u = 0;
        for (int j = 0; j < 8; ++j)
            u |= ((hearth_iq_grid8(t->grid[k], j) - 1) / 2) << 2 * j;
        self += u < HEARTH_IQ2_KMAP_SIZE && t->map[u] == k;
    }
    CHECKF(self == t->grid_size, "%s: %d of %d grid points map to themselves", hearth_dtype_name(ref->t),
           self, t->grid_size);
    int bad_order = 0, bad_set = 0;
    for (int u = 0; u < HEARTH_IQ2_KMAP_SIZE; ++u) {
        if (t->map[u] >= 0) {
            ++on_grid;
            continue;
        }
        const uint16_t *nb = t->neighbours - t->map[u] - 1;
        for (int j = 2; j <= nb[0]; ++j) {
            const int a = dist2(t, u, nb[j - 1]), b = dist2(t, u, nb[j]);
            bad_order += a > b || (a == b && nb[j - 1] >= nb[j]);
        }
        if (u % 5) continue;
        /* brute force: the nwant smallest distinct distances and who has them */
        int sel[3], nsel = 0, count = 0;
        for (int last = -1; nsel < t->nwant; last = sel[nsel++]) {
            int m = -1;
            for (int g = 0; g < t->grid_size; ++g) {
                const int d = dist2(t, u, g);
                if (d > last && (m < 0 || d < m)) m = d;
            }
            if (m < 0) break;
            sel[nsel] = m;
        }
        for (int g = 0; g < t->grid_size; ++g)
            count += dist2(t, u, g) <= sel[nsel - 1];
        bad_set += count != nb[0] || dist2(t, u, nb[nb[0]]) != sel[nsel - 1];
    }
    CHECKF(on_grid == t->grid_size, "%s: %d patterns on the grid", hearth_dtype_name(ref->t), on_grid);
    CHECKF(!bad_order && !bad_set, "%s: %d lists out of order, %d with the wrong set",
           hearth_dtype_name(ref->t), bad_order, bad_set);
    const uint64_t hn = test_fnv1a(
        t->neighbours, (size_t)(t->n_neighbours + t->n_off_grid) * sizeof(uint16_t), TEST_FNV_OFFSET);
    const uint64_t hm = test_fnv1a(t->map, (size_t)HEARTH_IQ2_KMAP_SIZE * sizeof(int32_t), TEST_FNV_OFFSET);
    CHECKF(hn == ref->fnv_neighbours && hm == ref->fnv_map, "%s: neighbours %016llx map %016llx",
           hearth_dtype_name(ref->t), (unsigned long long)hn, (unsigned long long)hm);
}

/* ---------------------------------------------------------------- (b) bytes */

enum { ROWS = 7, N = 768 };

typedef struct {
    hearth_dtype t;
    bool weighted;
    uint64_t fnv[2]; /* seeds 0x1234567 and 0xfeedbeef */
} bytes_ref;

/* ggml_quantize_chunk(type, x, out, 0, 7, 768, w or NULL), llama.cpp dc02e1f */
static const bytes_ref k_bytes[] = {
    {HEARTH_IQ2_XXS, true, {0xbf70b7aa94038efeull, 0x6e79c7d7f740b578ull}},
    {HEARTH_IQ2_XS, true, {0x4e1c345a83e57424ull, 0x222048e3e7ea9439ull}},
    {HEARTH_IQ2_S, true, {0x5fb68192ae602a00ull, 0x04b99fab927d502cull}},
    {HEARTH_IQ2_S, false, {0x45462307bc1e11bbull, 0x0afccc262b2f4b95ull}},
    {HEARTH_IQ1_S, true, {0x7b13b797f81d8658ull, 0x455bf652c846a264ull}},
    {HEARTH_IQ1_M, true, {0x23a8019cb80f260bull, 0x9697ac110757437aull}},
    {HEARTH_IQ1_M, false, {0xfdd282761dd24da3ull, 0xf91463947cfc4dbcull}},
};

static size_t quantize_rows(hearth_dtype t, const float *x, int rows, int n, uint8_t *out, const float *w) {
    const size_t rb = hearth_dtype_row_size(t, n);
    for (int r = 0; r < rows; r++)
        if (!hearth_quantize_row_weighted(t, x + (size_t)r * n, out + (size_t)r * rb, n, w)) return 0;
    return rb * (size_t)rows;
}

/* ---------------------------------------------------------------- (c) sanity */

static const hearth_dtype k_types[] = {HEARTH_IQ2_XXS, HEARTH_IQ2_XS, HEARTH_IQ2_S, HEARTH_IQ1_S,
                                       HEARTH_IQ1_M};

/* relative RMS error bound per type on normal rows (2.06..2.5 bits; ~1.6..1.8 bits) */
static double err_bound(hearth_dtype t) {
    return t == HEARTH_IQ1_S || t == HEARTH_IQ1_M ? 0.75 : 0.50;
}

static double rel_err(hearth_dtype t, const float *x, const uint8_t *q, int rows, int n, const float *w) {
    const size_t rb = hearth_dtype_row_size(t, n);
    float *back = malloc((size_t)n * sizeof *back);
    double e = 0, s = 0;
    for (int r = 0; r < rows; r++) {
        hearth_dequantize_row(t, q + (size_t)r * rb, back, n);
        for (int j = 0; j < n; j++) {
            const double v = x[(size_t)r * n + j], d = back[j] - v, wj = w ? w[j] : 1.0;
            e += wj * d * d;
            s += wj * v * v;
        }
    }
    free(back);
    return sqrt(e / s);
}

typedef struct {
    hearth_dtype t;
    const float *x, *w;
    uint8_t *out;
    size_t n;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->n = quantize_rows(j->t, j->x, ROWS, N, j->out, j->w);
    return NULL;
}

static void check_sanity(void) {
    static float x[ROWS * N], w[N];
    static uint8_t a[ROWS * N], b[ROWS * N], c[ROWS * N];
    test_rng_seed(77);
    for (int i = 0; i < ROWS * N; i++) { /* normal-ish rows: sum of uniforms */
        float v = 0;
        for (int k = 0; k < 4; k++)
            v += test_rng_unif() - 0.5f;
        x[i] = v * (1.0f + (float)(i % 3));
    }
    for (int j = 0; j < N; j++)
        w[j] = 0.05f + 3.0f * test_rng_unif() * test_rng_unif();
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++) {
        const hearth_dtype t = k_types[i];
        const char *name = hearth_dtype_name(t);
        CHECK(hearth_quant_weighted_kind(t) == 1);
        CHECK(hearth_dtype_info(t)->from_float != NULL);
        const size_t n = quantize_rows(t, x, ROWS, N, a, NULL);
        REQUIRE(n == hearth_dtype_row_size(t, N) * ROWS);
        const double ep = rel_err(t, x, a, ROWS, N, NULL);
        printf("%-8s relative RMS error %.3f (bound %.2f)\n", name, ep, err_bound(t));
        CHECKF(ep > 0.05 && ep < err_bound(t), "%s: relative error %.3f", name, ep);
        /* hearth_quantize_row is the unweighted path */
        const size_t rb = hearth_dtype_row_size(t, N);
        for (int r = 0; r < ROWS; r++)
            CHECK(hearth_quantize_row(t, x + (size_t)r * N, b + (size_t)r * rb, N));
        CHECKF(memcmp(a, b, n) == 0, "%s: hearth_quantize_row differs from the NULL-weight path", name);
        /* weighted: deterministic, and the same from two threads at once */
        quantize_rows(t, x, ROWS, N, a, w);
        CHECKF(memcmp(a, b, n) != 0, "%s: the importance changes nothing", name);
        job j1 = {t, x, w, b, 0}, j2 = {t, x, w, c, 0};
        pthread_t th1, th2;
        REQUIRE(pthread_create(&th1, NULL, run_job, &j1) == 0);
        REQUIRE(pthread_create(&th2, NULL, run_job, &j2) == 0);
        pthread_join(th1, NULL);
        pthread_join(th2, NULL);
        CHECKF(j1.n == n && j2.n == n && !memcmp(a, b, n) && !memcmp(a, c, n), "%s: not reproducible", name);
        const double ew = rel_err(t, x, a, ROWS, N, w);
        if (t == HEARTH_IQ2_S || t == HEARTH_IQ1_M) {
            quantize_rows(t, x, ROWS, N, c, NULL);
            const double eu = rel_err(t, x, c, ROWS, N, w);
            printf("%-8s importance-weighted error %.4f with the weights, %.4f without\n", name, ew, eu);
            CHECKF(ew < eu, "%s: weighted %.4f, plain %.4f", name, ew, eu);
        }
        /* odd shapes: one row of 3 blocks, lengths off the 256 grid refused */
        CHECK(hearth_quantize_row_weighted(t, x, a, 3 * 256, w));
        CHECK(hearth_quantize_row(t, x, a, 256));
        CHECK(!hearth_quantize_row(t, x, a, 100));
        CHECK(!hearth_quantize_row_weighted(t, x, a, 300, w));
        CHECK(!hearth_iq2_quantize_row(t, x, a, 257, NULL));
        /* an all-zero row gives an all-zero block */
        static const float zero[256];
        memset(b, 0xAA, rb);
        CHECK(hearth_quantize_row(t, zero, b, 256));
        int nz = 0;
        for (size_t k = 0; k < hearth_dtype_row_size(t, 256); k++)
            nz += b[k] != 0;
        CHECKF(nz == 0, "%s: zero row has %d non-zero bytes", name, nz);
    }
    CHECK(hearth_iq2_tables_for(HEARTH_IQ3_S) == NULL);
    CHECK(!hearth_iq2_quantize_row(HEARTH_Q4_0, x, a, 256, NULL));
    CHECK(hearth_iq2_tables_for(HEARTH_IQ1_M) == hearth_iq2_tables_for(HEARTH_IQ1_S));
}

int main(void) {
    for (size_t i = 0; i < sizeof k_tables / sizeof *k_tables; i++)
        check_tables(&k_tables[i]);
    static float x[ROWS * N], w[N];
    static uint8_t out[ROWS * N];
    const uint64_t seeds[2] = {0x1234567ull, 0xfeedbeefull};
    for (int s = 0; s < 2; s++) {
        iq_make(x, w, ROWS, N, seeds[s]);
        for (size_t i = 0; i < sizeof k_bytes / sizeof *k_bytes; i++) {
            const bytes_ref *r = &k_bytes[i];
            const size_t n = quantize_rows(r->t, x, ROWS, N, out, r->weighted ? w : NULL);
            CHECK(n == hearth_dtype_row_size(r->t, N) * ROWS);
            const uint64_t h = test_fnv1a(out, n, TEST_FNV_OFFSET);
            CHECKF(h == r->fnv[s], "%s %s seed %d: fnv %016llx, llama.cpp's %016llx", hearth_dtype_name(r->t),
                   r->weighted ? "weighted" : "plain", s, (unsigned long long)h,
                   (unsigned long long)r->fnv[s]);
        }
    }
    check_sanity();
    return test_summary("test_quant_iq2");
}
