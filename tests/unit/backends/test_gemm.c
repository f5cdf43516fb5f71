/*
 * test_gemm.c - the register-tiled GEMM kernels (hearth_cpu_gemm and the
 * per-family getters of backends/cpu/avx2/gemm_kernels.h) against the
 * per-pair dot kernels.
 *
 * What is checked, for every type with a GEMM kernel and every family this
 * CPU can run:
 *   (a) on seeded random data (weights: raw random bytes with sane f16
 *       scales, so every quant level including -128 occurs; activations:
 *       random floats converted by hearth_cpu_quantize_act), for many
 *       (n, nr, nt) shapes with row/token tails and odd strides, every output
 *       out[t * out_stride + r] is memcmp-equal to the family's own per-pair
 *       kernel of the same pair (F16 differs between families), and nothing
 *       outside the nr x nt tile is written; the dispatcher's pair
 *       (hearth_cpu_gemm, hearth_cpu_vec_dot) is checked the same way, so the
 *       backend never mixes a gemm of one family with a dot of another. The
 *       K-quant tiles (Q2_K .. Q6_K) run on n = 256, 512, 768 and 2816,
 *       every nr of the tile and tails of the token count;
 *   (b) the getter reports a tile of at least 1 x 1, and the dispatcher
 *       returns a kernel exactly when a usable family has one whose dot is
 *       the one hearth_cpu_vec_dot returns, or the type's dots are the same
 *       on every family (on an AVX-512 machine without AVX-512 tiles for a
 *       K-quant that has an AVX-512 dot, the AVX2 tile must not be used);
 *   (c) with HEARTH_CPU_ISA=scalar (a re-run of this binary) hearth_cpu_gemm
 *       returns NULL for every type (the backend then uses vec_dot per pair).
 * It also prints the GEMM kernel's speed against per-pair vec_dot over one
 * cache-resident tile (informational; nothing asserts on time).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/cpu_quants.h"
#include "core/dtype.h"
#include "core/os.h"
#include "scalar_child.h"
#include "test.h"

#if defined(__x86_64__)
#include "backends/cpu/avx2/gemm_kernels.h"
#include "backends/cpu/avx2/simd_kernels.h"
#define HAVE_X86_FAMILIES 1
#else
#define HAVE_X86_FAMILIES 0
#endif
#if defined(__aarch64__)
#include "backends/cpu/neon/neon_kernels.h"
#define HAVE_NEON_FAMILIES 1
#else
#define HAVE_NEON_FAMILIES 0
#endif

static const hearth_dtype k_types[] = {HEARTH_Q8_0,   HEARTH_Q4_0,   HEARTH_Q4_1, HEARTH_Q5_0, HEARTH_Q5_1,
                                       HEARTH_Q2_K,   HEARTH_Q3_K,   HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K,
                                       HEARTH_IQ4_NL, HEARTH_IQ4_XS, HEARTH_F16,  HEARTH_F32};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

// ---------------------------------------------------------------- helpers

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(void) {
    return (float)((double)(rng_next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    return p;
}

/* Random bytes for `rows` weight rows of `row_bytes` (stride `stride`); the
 * leading f16 scale(s) of each 32-element block are made sane (no inf/NaN),
 * float types get values in [-1, 1). */
static void fill_weights(hearth_dtype t, uint8_t *w, int rows, size_t row_bytes, size_t stride) {
    for (size_t i = 0; i < (size_t)rows * stride; i++)
        w[i] = (uint8_t)rng_next();
    const hearth_dtype_traits *info = hearth_dtype_info(t);
    for (int r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * stride;
        if (t == HEARTH_F16 || t == HEARTH_F32) {
            const size_t es = t == HEARTH_F16 ? 2 : 4;
            for (size_t i = 0; i + es <= row_bytes; i += es) {
                const float f = rng_unit();
                const hearth_f16 h = hearth_f32_to_f16(f);
                memcpy(row + i, es == 2 ? (const void *)&h : (const void *)&f, es);
            }
        } else if (info->block_size == QK_K) {
            /* f16 d (and dmin) of each super-block: Q4_K/Q5_K lead with d, dmin; Q2_K ends with d, dmin;
             * Q3_K/Q6_K end with d */
            const int two = t != HEARTH_Q3_K && t != HEARTH_Q6_K;
            for (size_t b = 0; b + info->type_size <= row_bytes; b += info->type_size)
                for (int j = 0; j <= two; j++) {
                    const hearth_f16 h = hearth_f32_to_f16(0.001f + 0.05f * (rng_unit() + 1.0f));
                    const size_t at = t == HEARTH_Q4_K || t == HEARTH_Q5_K ? 2 * (size_t)j
                                      : t == HEARTH_Q2_K ? info->type_size - 4 + 2 * (size_t)j
                                                         : info->type_size - 2;
                    memcpy(row + b + at, &h, 2);
                }
        } else if (info->block_size == 32) {
            const int two = t == HEARTH_Q4_1 || t == HEARTH_Q5_1;
            for (size_t b = 0; b + info->type_size <= row_bytes; b += info->type_size)
                for (int j = 0; j <= two; j++) {
                    const hearth_f16 h = hearth_f32_to_f16(0.001f + 0.05f * (rng_unit() + 1.0f));
                    memcpy(row + b + 2 * (size_t)j, &h, 2);
                }
        } else if (t == HEARTH_Q4_K || t == HEARTH_Q6_K) { /* d (and dmin) of each super-block */
            const size_t d_at = t == HEARTH_Q4_K ? offsetof(block_q4_K, d) : offsetof(block_q6_K, d);
            const int nd = t == HEARTH_Q4_K ? 2 : 1; /* Q4_K: d, dmin */
            for (size_t b = 0; b + info->type_size <= row_bytes; b += info->type_size)
                for (int j = 0; j < nd; j++) {
                    const hearth_f16 h = hearth_f32_to_f16(0.001f + 0.02f * (rng_unit() + 1.0f));
                    memcpy(row + b + d_at + 2 * (size_t)j, &h, 2);
                }
        } else if (t == HEARTH_IQ4_XS) { /* d leads each super-block; scales stay random */
            for (size_t b = 0; b + info->type_size <= row_bytes; b += info->type_size) {
                const hearth_f16 h = hearth_f32_to_f16(0.001f + 0.05f * (rng_unit() + 1.0f));
                memcpy(row + b, &h, 2);
            }
        }
    }
}

/* Types whose per-pair dots are the same function of the input on every
 * family (the 32-element block types and IQ4_NL/IQ4_XS, as simd_kernels.h
 * documents): any family's gemm may pair with the dispatcher's dot. */
static int dots_isa_independent(hearth_dtype t) {
    return t == HEARTH_Q8_0 || t == HEARTH_Q4_0 || t == HEARTH_Q4_1 || t == HEARTH_Q5_0 || t == HEARTH_Q5_1 ||
           t == HEARTH_IQ4_NL || t == HEARTH_IQ4_XS;
}

// ---------------------------------------------------------------- (a) bit-identity

typedef struct family {
    const char *name;
    int usable;
    hearth_gemm_fn (*get)(hearth_dtype, int *, int *);
    hearth_vec_dot_fn (*dot)(hearth_dtype); /* the family's own per-pair kernels; NULL: the dispatcher's */
} family;

/* One (type, n) case: a matrix of rows_total weight rows and toks_total
 * activation rows; the kernel is run on many sub-tiles and every output is
 * compared bit for bit with the per-pair kernel. */
static void check_case(const family *fam, hearth_dtype t, int64_t n) {
    int max_rows = 0, max_toks = 0;
    const hearth_gemm_fn gemm = fam->get(t, &max_rows, &max_toks);
    if (!gemm) return;
    /* the family's own dot: F16 differs between families (Q8_0/Q4_0 do not) */
    hearth_vec_dot_fn dot = fam->dot ? fam->dot(t) : NULL;
    if (!dot) dot = hearth_cpu_vec_dot(t);
    REQUIRE(dot != NULL);
    const hearth_dtype vdt = hearth_dtype_info(t)->vec_dot_type;
    const int rows_total = max_rows + 5, toks_total = max_toks + 3;
    const size_t w_row = hearth_dtype_row_size(t, n) + 2 * (rng_next() & 1); /* odd strides sometimes */
    const size_t a_row = hearth_dtype_row_size(vdt, n);
    uint8_t *w = xmalloc(w_row * (size_t)rows_total);
    uint8_t *a = xmalloc(a_row * (size_t)toks_total);
    float *x = xmalloc((size_t)n * sizeof(float));
    fill_weights(t, w, rows_total, hearth_dtype_row_size(t, n), w_row);
    for (int i = 0; i < toks_total; i++) {
        const float scale = i % 5 == 0 ? 100.0f : 1.0f;
        for (int64_t k = 0; k < n; k++)
            x[k] = scale * rng_unit();
        if (i % 7 == 3) memset(x, 0, (size_t)n * sizeof(float)); /* all-zero activation row */
        hearth_cpu_quantize_act(vdt, x, a + (size_t)i * a_row, n);
    }
    /* Reference: every pair through the per-pair kernel. */
    float *ref = xmalloc(sizeof(float) * (size_t)rows_total * (size_t)toks_total);
    for (int tk = 0; tk < toks_total; tk++)
        for (int r = 0; r < rows_total; r++)
            dot(n, &ref[(size_t)tk * rows_total + r], w + (size_t)r * w_row, a + (size_t)tk * a_row);

    const size_t out_stride = (size_t)rows_total + 3;
    float *out = xmalloc(sizeof(float) * out_stride * (size_t)toks_total);
    int bad = 0, shapes = 0;
    for (int nr = 1; nr <= max_rows; nr++) {
        const int nts[] = {1, 2, 3, 4, 7, 8, 9, max_toks / 2 + 1, max_toks - 1, max_toks};
        for (size_t ni = 0; ni < sizeof nts / sizeof nts[0]; ni++) {
            const int nt = nts[ni] < 1 ? 1 : nts[ni] > max_toks ? max_toks : nts[ni];
            const int r0 = (int)(rng_next() % (uint64_t)(rows_total - nr + 1));
            const int t0 = (int)(rng_next() % (uint64_t)(toks_total - nt + 1));
            memset(out, 0xA5, sizeof(float) * out_stride * (size_t)toks_total);
            gemm(n, w + (size_t)r0 * w_row, w_row, nr, a + (size_t)t0 * a_row, a_row, nt, out + 1,
                 out_stride);
            shapes++;
            for (int tk = 0; tk < toks_total; tk++)
                for (size_t c = 0; c < out_stride; c++) {
                    const float *o = &out[(size_t)tk * out_stride + c];
                    const int r = (int)c - 1;
                    const int inside = tk < nt && r >= 0 && r < nr;
                    if (inside) {
                        const float *want = &ref[(size_t)(t0 + tk) * rows_total + r0 + r];
                        if (memcmp(o, want, sizeof(float)) != 0 && bad++ < 5)
                            fprintf(stderr, "%s %s n=%lld nr=%d nt=%d: (r=%d,t=%d) %.9g != vec_dot %.9g\n",
                                    fam->name, hearth_dtype_name(t), (long long)n, nr, nt, r, tk, *o, *want);
                    } else {
                        uint32_t bits;
                        memcpy(&bits, o, sizeof bits);
                        if (bits != 0xA5A5A5A5u && bad++ < 5)
                            fprintf(stderr,
                                    "%s %s n=%lld nr=%d nt=%d: wrote outside the tile at (c=%zu,t=%d)\n",
                                    fam->name, hearth_dtype_name(t), (long long)n, nr, nt, c, tk);
                    }
                }
        }
    }
    CHECKF(bad == 0, "%s gemm %s n=%lld: %d shapes bit-identical to vec_dot (%d mismatches)", fam->name,
           hearth_dtype_name(t), (long long)n, shapes, bad);
    free(w);
    free(a);
    free(x);
    free(ref);
    free(out);
}

// ---------------------------------------------------------------- speed (informational)

static void bench_case(const family *fam, hearth_dtype t) {
    int max_rows = 0, max_toks = 0;
    const hearth_gemm_fn gemm = fam->get(t, &max_rows, &max_toks);
    if (!gemm) return;
    hearth_vec_dot_fn dot = fam->dot ? fam->dot(t) : NULL;
    if (!dot) dot = hearth_cpu_vec_dot(t);
    const hearth_dtype vdt = hearth_dtype_info(t)->vec_dot_type;
    const int64_t n = 768;
    const int rows = 64, toks = 64;
    const size_t w_row = hearth_dtype_row_size(t, n), a_row = hearth_dtype_row_size(vdt, n);
    uint8_t *w = xmalloc(w_row * rows), *a = xmalloc(a_row * toks);
    float *x = xmalloc((size_t)n * sizeof(float)), *out = xmalloc(sizeof(float) * rows * toks);
    fill_weights(t, w, rows, w_row, w_row);
    for (int i = 0; i < toks; i++) {
        for (int64_t k = 0; k < n; k++)
            x[k] = rng_unit();
        hearth_cpu_quantize_act(vdt, x, a + (size_t)i * a_row, n);
    }
    const int tok_counts[] = {1, 2, 3, 8, 64};
    for (size_t ci = 0; ci < sizeof tok_counts / sizeof tok_counts[0]; ci++) {
        const int nt_all = tok_counts[ci];
        double best_pair = 1e30, best_gemm = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = 1e-3 * hearth_now_ms();
            for (int it = 0; it < 20; it++)
                for (int r = 0; r < rows; r++)
                    for (int tk = 0; tk < nt_all; tk++)
                        dot(n, &out[tk * rows + r], w + (size_t)r * w_row, a + (size_t)tk * a_row);
            double t1 = 1e-3 * hearth_now_ms();
            if (t1 - t0 < best_pair) best_pair = t1 - t0;
            t0 = 1e-3 * hearth_now_ms();
            for (int it = 0; it < 20; it++)
                for (int r0 = 0; r0 < rows; r0 += max_rows)
                    for (int tk0 = 0; tk0 < nt_all; tk0 += max_toks) {
                        const int nr = rows - r0 < max_rows ? rows - r0 : max_rows;
                        const int nt = nt_all - tk0 < max_toks ? nt_all - tk0 : max_toks;
                        gemm(n, w + (size_t)r0 * w_row, w_row, nr, a + (size_t)tk0 * a_row, a_row, nt,
                             out + tk0 * rows + r0, rows);
                    }
            t1 = 1e-3 * hearth_now_ms();
            if (t1 - t0 < best_gemm) best_gemm = t1 - t0;
        }
        const double pairs = 20.0 * rows * nt_all * (double)n;
        printf("  %-7s %-5s %2d tokens: vec_dot %6.2f GMAC/s, gemm %6.2f GMAC/s (x%.2f)\n", fam->name,
               hearth_dtype_name(t), nt_all, pairs / best_pair * 1e-9, pairs / best_gemm * 1e-9,
               best_pair / best_gemm);
    }
    free(w);
    free(a);
    free(x);
    free(out);
}

// ---------------------------------------------------------------- main

/* timings under a sanitizer mean nothing and cost much of its run */
static const int k_run_bench = !TEST_SANITIZED;

static int scalar_child(void) {
    CHECK(hearth_cpu_level_get() == HEARTH_CPU_SCALAR);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        int mr = -1, mt = -1;
        CHECKF(hearth_cpu_gemm(k_types[ti], &mr, &mt) == NULL, "HEARTH_CPU_ISA=scalar: no gemm for %s",
               hearth_dtype_name(k_types[ti]));
    }
    return test_summary("test_gemm (HEARTH_CPU_ISA=scalar)");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--scalar-child")) return scalar_child();
    printf("cpu: %s\n", hearth_cpu_features());

    family fams[3];
    int n_fams = 0;
#if HAVE_X86_FAMILIES
    const hearth_cpu_caps *caps = hearth_cpu_caps_get();
    const hearth_cpu_level level = hearth_cpu_level_get();
    fams[n_fams++] = (family){"avx2", level >= HEARTH_CPU_AVX2 && caps->avx2 && caps->fma && caps->f16c,
                              hearth_cpu_gemm_avx2, hearth_cpu_vec_dot_avx2};
    fams[n_fams++] = (family){"avx512",
                              level >= HEARTH_CPU_AVX512 && caps->avx512f && caps->avx512bw &&
                                  caps->avx512vl && caps->avx512vnni,
                              hearth_cpu_gemm_avx512, hearth_cpu_vec_dot_avx512};
#elif HAVE_NEON_FAMILIES
    const hearth_neon_level nl = hearth_cpu_neon_level();
    fams[n_fams++] = (family){"neon", nl >= HEARTH_NEON_PLAIN, hearth_cpu_gemm_neon, NULL};
    fams[n_fams++] = (family){"neon-dotprod", nl >= HEARTH_NEON_DOTPROD, hearth_cpu_gemm_neon_dotprod, NULL};
#endif

    /* (b) getters and dispatcher */
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti];
        int any = 0;
        for (int f = 0; f < n_fams; f++) {
            int mr = 0, mt = 0;
            if (fams[f].get(t, &mr, &mt)) {
                CHECKF(mr >= 1 && mt >= 1, "%s gemm %s tile %dx%d", fams[f].name, hearth_dtype_name(t), mr,
                       mt);
                /* a family's gemm matches only its own dot, unless every family's dot is the same */
                const int same_dot =
                    dots_isa_independent(t) || !fams[f].dot || fams[f].dot(t) == hearth_cpu_vec_dot(t);
                any |= fams[f].usable && same_dot;
            }
        }
        int mr = 0, mt = 0;
        const hearth_gemm_fn g = hearth_cpu_gemm(t, &mr, &mt);
        CHECKF((g != NULL) == any,
               "dispatcher has a gemm for %s exactly when a usable family has one whose dot it dispatches",
               hearth_dtype_name(t));
    }

    fams[n_fams++] = (family){"dispatch", 1, hearth_cpu_gemm, NULL}; /* what the backend pairs */

    /* (a) bit-identity, every family this CPU runs */
    static const int k_blocks[] = {1, 2, 3, 5, 8, 24, 33};
    /* K-quants: n = 256 .. 8448 (11 x 256 = 2816: a qwen2.5 FFN row) */
    static const int k_blocks_K[] = {1, 2, 3, 5, 11, 24, 33};
    for (int f = 0; f < n_fams; f++) {
        if (!fams[f].usable) {
            printf("  %s: not usable here, skipped\n", fams[f].name);
            continue;
        }
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            const int64_t bs = hearth_dtype_info(k_types[ti])->block_size;
            if (bs == QK_K)
                for (size_t bi = 0; bi < sizeof k_blocks_K / sizeof k_blocks_K[0]; bi++)
                    check_case(&fams[f], k_types[ti], k_blocks_K[bi] * bs);
            else
                for (size_t bi = 0; bi < sizeof k_blocks / sizeof k_blocks[0]; bi++)
                    check_case(&fams[f], k_types[ti], k_blocks[bi] * (bs < 32 ? 32 : bs));
        }
        /* 32-element blocks past the decode kernels' 512-block stack cap
         * (those rows take the per-pair path); only Q8_0 and Q4_0 have
         * decode kernels with that cap */
        for (size_t ti = 0; ti < N_TYPES; ti++)
            if (k_types[ti] == HEARTH_Q8_0 || k_types[ti] == HEARTH_Q4_0)
                check_case(&fams[f], k_types[ti], 520 * 32);
        static const int k_float_n[] = {7, 37, 1000 + 13, 4867,
                                        5121}; /* float rows of any length, past the F16 tile's cap */
        for (size_t ti = 0; ti < N_TYPES; ti++)
            if (hearth_dtype_info(k_types[ti])->block_size == 1)
                for (size_t ni = 0; ni < sizeof k_float_n / sizeof k_float_n[0]; ni++)
                    check_case(&fams[f], k_types[ti], k_float_n[ni]);
        for (size_t ti = 0; ti < N_TYPES && k_run_bench; ti++)
            bench_case(&fams[f], k_types[ti]);
    }

    /* (c) HEARTH_CPU_ISA=scalar */
    test_scalar_override(argv[0]);
    return test_summary("test_gemm");
}
