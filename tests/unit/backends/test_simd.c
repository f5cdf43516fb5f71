/*
 * test_simd.c - the SIMD kernel families of the CPU backend (backends/cpu/avx2/,
 * backends/cpu/avx512/) against the scalar reference (cpu_quants_ref.c).
 *
 * What is checked, for every weight type and every family this CPU can run:
 *   (a) activation converters (F32, F16, BF16, Q8_0, Q8_1, Q8_K) write the
 *       same bytes as the scalar converters (memcmp), on random rows, on rows
 *       built to hit rounding ties, equal +-max magnitudes, all-zero blocks,
 *       subnormals, and (for f16/bf16) inf/NaN/overflow;
 *   (b) dot kernels agree with the scalar kernel on seeded random rows of
 *       1, 2, 3, 7, 16 and 17 blocks (plain floats also on odd lengths, for
 *       the tails), with weights both quantized from floats and raw random
 *       bytes (full bit patterns, sane f16 scales): the 32-element block
 *       types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), IQ4_NL/IQ4_XS and the grid IQ
 *       types (IQ2_*, IQ3_*, IQ1_*; raw blocks only, they have no quantizer)
 *       bit-identical to the scalar kernel, the K-quants within 1e-5 * |w'| |a'| (w', a' the dequantized
 *       rows), float kernels (F32, F16, BF16) within 1e-4 * |w'| |a'|;
 *   (c) the dispatcher returns the widest usable family, and with
 *       HEARTH_CPU_ISA=scalar (a re-run of this binary) the *_ref functions.
 * It also prints each kernel's speed against the scalar one (informational;
 * nothing asserts on time). Owns nothing beyond its PRNG state.
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
#include "core/dtype_iq.h"
#include "core/os.h"
#include "scalar_child.h"
#include "test.h"

#if defined(__x86_64__)
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

// ---------------------------------------------------------------- helpers

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) {
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static float rng_normal(void) {
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void fill_normal(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * rng_normal();
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    return p;
}

static double norm_of(hearth_dtype t, const void *row, int64_t n) {
    float *f = xmalloc((size_t)n * sizeof(float));
    hearth_dequantize_row(t, row, f, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)f[i] * f[i];
    free(f);
    return sqrt(s);
}

// ---------------------------------------------------------------- families

typedef struct family {
    const char *name;
    hearth_vec_dot_fn (*vec_dot)(hearth_dtype);
    hearth_quantize_act_fn (*quantize_act)(hearth_dtype);
    int usable; /* this CPU can run it */
} family;

static hearth_vec_dot_fn ref_vec_dot(hearth_dtype t) {
    return hearth_cpu_vec_dot_ref(t);
}
static hearth_quantize_act_fn ref_quantize_act(hearth_dtype t) {
    return hearth_cpu_quantize_act_ref(t);
}

#if HAVE_NEON_FAMILIES
static hearth_quantize_act_fn no_quantize_act(hearth_dtype t) {
    return NULL;
} /* dotprod: neon's converters */
#endif

static family g_families[3];
static int g_n_families;

static void families_init(void) {
    const hearth_cpu_caps *c = hearth_cpu_caps_get();
    g_families[g_n_families++] = (family){"scalar", ref_vec_dot, ref_quantize_act, 1};
#if HAVE_X86_FAMILIES
    const int avx2 = c->avx2 && c->fma && c->f16c;
    g_families[g_n_families++] =
        (family){"avx2", hearth_cpu_vec_dot_avx2, hearth_cpu_quantize_act_avx2, avx2};
    g_families[g_n_families++] = (family){"avx512", hearth_cpu_vec_dot_avx512, hearth_cpu_quantize_act_avx512,
                                          avx2 && c->avx512f && c->avx512bw && c->avx512vl && c->avx512vnni};
#elif HAVE_NEON_FAMILIES
    (void)c;
    const hearth_neon_level nl = hearth_cpu_neon_level();
    printf("neon level: %s\n", nl >= HEARTH_NEON_DOTPROD ? "dotprod"
                               : nl >= HEARTH_NEON_PLAIN ? "neon"
                                                         : "off");
    g_families[g_n_families++] =
        (family){"neon", hearth_cpu_vec_dot_neon, hearth_cpu_quantize_act_neon, nl >= HEARTH_NEON_PLAIN};
    g_families[g_n_families++] =
        (family){"neon-dotprod", hearth_cpu_vec_dot_neon_dotprod, no_quantize_act, nl >= HEARTH_NEON_DOTPROD};
#else
    (void)c;
#endif
}

// ---------------------------------------------------------------- the types

typedef struct wtype {
    hearth_dtype t;
    size_t f16_fields[2]; /* offsets of f16 scale fields in a block (0 = none after the first) */
    int n_f16;
    int is_float;
    int exact; /* SIMD kernels must be bit-identical to the scalar one */
} wtype;

static const wtype k_types[] = {
    {HEARTH_F32, {0, 0}, 0, 1, 0},
    {HEARTH_F16, {0, 0}, 0, 1, 0},
    {HEARTH_BF16, {0, 0}, 0, 1, 0},
    {HEARTH_Q8_0, {offsetof(block_q8_0, d), 0}, 1, 0, 1},
    {HEARTH_Q4_0, {offsetof(block_q4_0, d), 0}, 1, 0, 1},
    {HEARTH_Q4_1, {offsetof(block_q4_1, d), offsetof(block_q4_1, m)}, 2, 0, 1},
    {HEARTH_Q5_0, {offsetof(block_q5_0, d), 0}, 1, 0, 1},
    {HEARTH_Q5_1, {offsetof(block_q5_1, d), offsetof(block_q5_1, m)}, 2, 0, 1},
    {HEARTH_Q2_K, {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)}, 2, 0, 0},
    {HEARTH_Q3_K, {offsetof(block_q3_K, d), 0}, 1, 0, 0},
    {HEARTH_Q4_K, {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)}, 2, 0, 0},
    {HEARTH_Q5_K, {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)}, 2, 0, 0},
    {HEARTH_Q6_K, {offsetof(block_q6_K, d), 0}, 1, 0, 0},
    {HEARTH_IQ4_NL, {offsetof(block_iq4_nl, d), 0}, 1, 0, 1},
    {HEARTH_IQ4_XS, {offsetof(block_iq4_xs, d), 0}, 1, 0, 1},
    /* grid IQ types (no quantizer: always raw random blocks; IQ1_M's scale is set apart) */
    {HEARTH_IQ2_XXS, {offsetof(block_iq2_xxs, d), 0}, 1, 0, 1},
    {HEARTH_IQ2_XS, {offsetof(block_iq2_xs, d), 0}, 1, 0, 1},
    {HEARTH_IQ2_S, {offsetof(block_iq2_s, d), 0}, 1, 0, 1},
    {HEARTH_IQ3_XXS, {offsetof(block_iq3_xxs, d), 0}, 1, 0, 1},
    {HEARTH_IQ3_S, {offsetof(block_iq3_s, d), 0}, 1, 0, 1},
    {HEARTH_IQ1_S, {offsetof(block_iq1_s, d), 0}, 1, 0, 1},
    {HEARTH_IQ1_M, {0, 0}, 0, 0, 1},
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static const hearth_dtype k_act_types[] = {HEARTH_F32,  HEARTH_F16,  HEARTH_BF16,
                                           HEARTH_Q8_0, HEARTH_Q8_1, HEARTH_Q8_K};

/* A weight row of n elements: quantized from normal floats (raw = 0) or raw
 * random bytes with every f16 scale replaced by a sane random value. */
static void make_weight_row(const wtype *wt, int64_t n, void *row, int raw) {
    const hearth_dtype_traits *info = hearth_dtype_info(wt->t);
    const size_t bytes = hearth_dtype_row_size(wt->t, n);
    if ((!raw && info->from_float) || wt->is_float) {
        float *f = xmalloc((size_t)n * sizeof(float));
        fill_normal(f, n, 0.05f);
        REQUIRE(hearth_quantize_row(wt->t, f, row, n));
        free(f);
        return;
    }
    uint8_t *b = row;
    for (size_t i = 0; i < bytes; i++)
        b[i] = (uint8_t)rng_next();
    for (int64_t blk = 0; blk < n / info->block_size; blk++) {
        uint8_t *base = b + (size_t)blk * info->type_size;
        for (int k = 0; k < wt->n_f16; k++) {
            const hearth_f16 h = hearth_f32_to_f16((float)(1e-3 + 0.01 * rng_uniform()));
            memcpy(base + wt->f16_fields[k], &h, sizeof h);
        }
        if (wt->t == HEARTH_IQ1_M) { /* its f16 scale is the top nibbles of the four scales u16 */
            const hearth_f16 h = hearth_f32_to_f16((float)(1e-3 + 0.01 * rng_uniform()));
            uint16_t sc[4];
            memcpy(sc, base + offsetof(block_iq1_m, scales), sizeof sc);
            for (int k = 0; k < 4; k++) sc[k] = (uint16_t)((sc[k] & 0x0FFF) | (((h >> (4 * k)) & 0xF) << 12));
            memcpy(base + offsetof(block_iq1_m, scales), sc, sizeof sc);
        }
    }
}

// ---------------------------------------------------------------- (a) activation converters

static void check_act_bytes(const family *fam, hearth_dtype vdt, const float *x, int64_t n,
                            const char *what) {
    const hearth_quantize_act_fn simd = fam->quantize_act(vdt), ref = hearth_cpu_quantize_act_ref(vdt);
    if (!simd) return;
    const size_t bytes = hearth_dtype_row_size(vdt, n);
    uint8_t *a = xmalloc(bytes), *b = xmalloc(bytes);
    memset(a, 0xA5, bytes);
    memset(b, 0x5A, bytes);
    ref(x, a, n);
    simd(x, b, n);
    size_t first = bytes;
    for (size_t i = 0; i < bytes; i++)
        if (a[i] != b[i]) {
            first = i;
            break;
        }
    CHECKF(first == bytes, "%s act %s %s n=%lld: bytes differ from byte %zu (ref %02x simd %02x)", fam->name,
           hearth_dtype_name(vdt), what, (long long)n, first, first < bytes ? a[first] : 0,
           first < bytes ? b[first] : 0);
    free(a);
    free(b);
}

/* Rows built to reach the corner cases of each converter. */
static void test_act_special(const family *fam) {
    enum { N = 2 * QK_K };
    float x[N];
    for (size_t ai = 0; ai < sizeof k_act_types / sizeof k_act_types[0]; ai++) {
        const hearth_dtype vdt = k_act_types[ai];
        const int64_t bs = hearth_dtype_info(vdt)->block_size;
        const int step = bs == QK_K ? QK_K : 32; /* a block (32 or 256), or 32 plain floats */
        /* All zeros, and one block zero next to a non-zero one. */
        memset(x, 0, sizeof x);
        check_act_bytes(fam, vdt, x, N, "zeros");
        fill_normal(x + N / 2, N / 2, 1.0f);
        check_act_bytes(fam, vdt, x, N, "half zeros");
        /* Scaled values landing exactly on .5 ties: amax 127 makes the scale 1. */
        for (int i = 0; i < N; i++)
            x[i] = (float)(((i / 2) % 254) - 127) + ((i & 1) ? 0.5f : 0.0f);
        for (int i = 0; i < N; i += 32)
            x[i] = 127.0f;
        check_act_bytes(fam, vdt, x, N, "ties");
        /* +-max of equal magnitude: Q8_K takes the sign of the first. */
        fill_normal(x, N, 1.0f);
        for (int i = 0; i + step <= N; i += step) {
            x[i + 5] = -9.0f;
            x[i + step - 3] = 9.0f;
        }
        check_act_bytes(fam, vdt, x, N, "+-max");
        for (int i = 0; i + step <= N; i += step) {
            x[i + 5] = 9.0f;
            x[i + step - 3] = -9.0f;
        }
        check_act_bytes(fam, vdt, x, N, "-+max");
        /* Tiny and huge magnitudes. */
        fill_normal(x, N, 1e-39f);
        check_act_bytes(fam, vdt, x, N, "subnormal");
        fill_normal(x, N, 3e4f);
        check_act_bytes(fam, vdt, x, N, "large");
        /* Every length 1..40 of plain-float conversions (tails). */
        if (bs == 1) {
            fill_normal(x, N, 1.0f);
            for (int64_t n = 1; n <= 40; n++)
                check_act_bytes(fam, vdt, x, n, "tail");
        }
    }
    /* f16/bf16 conversions are total: inf, NaN, overflow and rounding midpoints. */
    for (int i = 0; i < N; i++) {
        const uint32_t mids[] = {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00001u, 0x7F800001u,
                                 0x477FF000u, 0x477FEFFFu, 0x47800000u, 0x33800000u, 0x33000000u,
                                 0x3F801000u, 0x3F803000u, 0x3F808000u, 0x3F818000u, 0x7F7FFFFFu,
                                 0x00000001u, 0x80000000u, 0x387FE000u, 0x387FF000u};
        const uint32_t u = (i % 3) ? mids[(size_t)i % (sizeof mids / sizeof mids[0])] : (uint32_t)rng_next();
        memcpy(&x[i], &u, sizeof u);
    }
    check_act_bytes(fam, HEARTH_F16, x, N, "specials");
    check_act_bytes(fam, HEARTH_BF16, x, N, "specials");
    check_act_bytes(fam, HEARTH_F16, x, N - 3, "specials");
    check_act_bytes(fam, HEARTH_BF16, x, N - 5, "specials");
}

static void test_act_random(const family *fam) {
    static const int k_blocks[] = {1, 2, 3, 7, 16, 17};
    for (size_t ai = 0; ai < sizeof k_act_types / sizeof k_act_types[0]; ai++) {
        const hearth_dtype vdt = k_act_types[ai];
        const int64_t bs = hearth_dtype_info(vdt)->block_size == 1 ? 32 : hearth_dtype_info(vdt)->block_size;
        for (size_t bi = 0; bi < sizeof k_blocks / sizeof k_blocks[0]; bi++) {
            const int64_t n = k_blocks[bi] * bs;
            float *x = xmalloc((size_t)n * sizeof(float));
            for (int rep = 0; rep < 8; rep++) {
                fill_normal(x, n, rep < 4 ? 1.0f : 0.01f * (float)rep);
                check_act_bytes(fam, vdt, x, n, "random");
            }
            free(x);
        }
    }
}

// ---------------------------------------------------------------- (b) dot kernels

static double g_worst[N_TYPES][3]; /* worst error / tolerance unit, per type and family */

static void check_dot(const family *fam, int fi, size_t ti, int64_t n, int raw) {
    const wtype *wt = &k_types[ti];
    const hearth_vec_dot_fn simd = fam->vec_dot(wt->t), ref = hearth_cpu_vec_dot_ref(wt->t);
    if (!simd) return;
    const hearth_dtype vdt = hearth_dtype_info(wt->t)->vec_dot_type;
    void *w = xmalloc(hearth_dtype_row_size(wt->t, n));
    void *a = xmalloc(hearth_dtype_row_size(vdt, n));
    float *x = xmalloc((size_t)n * sizeof(float));
    make_weight_row(wt, n, w, raw);
    fill_normal(x, n, 1.0f);
    hearth_cpu_quantize_act_ref(vdt)(x, a, n);
    float r = 0, s = 0;
    ref(n, &r, w, a);
    simd(n, &s, w, a);
    const double unit = norm_of(wt->t, w, n) * norm_of(vdt, a, n);
    const double tol = (wt->is_float ? 1e-4 : 1e-5) * unit;
    const double err = fabs((double)r - (double)s);
    if (unit > 0 && err / unit > g_worst[ti][fi]) g_worst[ti][fi] = err / unit;
    CHECKF(err <= tol, "%s dot %s n=%lld raw=%d: ref %.9g simd %.9g (err %.3g, tol %.3g)", fam->name,
           hearth_dtype_name(wt->t), (long long)n, raw, r, s, err, tol);
    if (wt->exact)
        CHECKF(!memcmp(&r, &s, sizeof r), "%s dot %s n=%lld raw=%d: ref %a simd %a must be bit-identical",
               fam->name, hearth_dtype_name(wt->t), (long long)n, raw, r, s);
    free(w);
    free(a);
    free(x);
}

static void test_dots(const family *fam, int fi) {
    static const int k_blocks[] = {1, 2, 3, 7, 16, 17};
    static const int k_odd[] = {1, 2, 3, 7, 8, 9, 15, 17, 31, 33, 63, 65, 100, 1001};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const int64_t bs = hearth_dtype_info(k_types[ti].t)->block_size == 1
                               ? 32
                               : hearth_dtype_info(k_types[ti].t)->block_size;
        for (size_t bi = 0; bi < sizeof k_blocks / sizeof k_blocks[0]; bi++)
            for (int rep = 0; rep < 4; rep++)
                check_dot(fam, fi, ti, k_blocks[bi] * bs, rep & 1);
        if (k_types[ti].is_float)
            for (size_t oi = 0; oi < sizeof k_odd / sizeof k_odd[0]; oi++)
                check_dot(fam, fi, ti, k_odd[oi], 0);
    }
}

// ---------------------------------------------------------------- (c) dispatcher

static void test_dispatch(void) {
    const hearth_cpu_level level = hearth_cpu_level_get();
    printf("cpu: %s\n", hearth_cpu_features());
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti].t;
        hearth_vec_dot_fn want = NULL;
        /* Widest usable family that has the type; the level cap applies. */
#if HAVE_NEON_FAMILIES
        (void)level;
        if (g_families[2].usable) want = g_families[2].vec_dot(t);
        if (!want && g_families[1].usable) want = g_families[1].vec_dot(t);
#else
        if (level >= HEARTH_CPU_AVX512 && g_n_families > 2 && g_families[2].usable)
            want = g_families[2].vec_dot(t);
        if (!want && level >= HEARTH_CPU_AVX2 && g_n_families > 1 && g_families[1].usable)
            want = g_families[1].vec_dot(t);
#endif
        if (!want) want = hearth_cpu_vec_dot_ref(t);
        CHECKF(hearth_cpu_vec_dot(t) == want, "dispatch %s picks the widest family", hearth_dtype_name(t));
    }
    CHECK(hearth_cpu_vec_dot(HEARTH_Q8_K) == NULL);
    CHECK(hearth_cpu_vec_dot(HEARTH_Q8_1) == NULL);
    /* The dispatched converter writes the reference bytes too. */
    for (size_t ai = 0; ai < sizeof k_act_types / sizeof k_act_types[0]; ai++) {
        const hearth_dtype vdt = k_act_types[ai];
        const int64_t n = 3 * QK_K;
        float *x = xmalloc((size_t)n * sizeof(float));
        fill_normal(x, n, 1.0f);
        const size_t bytes = hearth_dtype_row_size(vdt, n);
        uint8_t *a = xmalloc(bytes), *b = xmalloc(bytes);
        hearth_cpu_quantize_act_ref(vdt)(x, a, n);
        hearth_cpu_quantize_act(vdt, x, b, n);
        CHECKF(!memcmp(a, b, bytes), "dispatched converter %s is byte-identical", hearth_dtype_name(vdt));
        free(x);
        free(a);
        free(b);
    }
}

/* Child mode: HEARTH_CPU_ISA=scalar must make the dispatcher return *_ref. */
static int scalar_child(void) {
    CHECK(hearth_cpu_level_get() == HEARTH_CPU_SCALAR);
    for (size_t ti = 0; ti < N_TYPES; ti++)
        CHECKF(hearth_cpu_vec_dot(k_types[ti].t) == hearth_cpu_vec_dot_ref(k_types[ti].t),
               "HEARTH_CPU_ISA=scalar gives the scalar %s kernel", hearth_dtype_name(k_types[ti].t));
    return test_summary("test_simd (HEARTH_CPU_ISA=scalar)");
}

// ---------------------------------------------------------------- speed (informational)

/* Elements per second of one kernel over a matrix of `rows` weight rows
 * (about 1.5 MB of weights, so it runs from cache), best of 3 runs. */
static double bench_dot(hearth_vec_dot_fn f, const void *w, size_t wrow, const void *a, int64_t n, int rows) {
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        int64_t elems = 0;
        const double t0 = 1e-3 * hearth_now_ms();
        double t1 = t0;
        while (t1 - t0 < 0.01) {
            for (int r = 0; r < rows; r++) {
                float s;
                f(n, &s, (const char *)w + (size_t)r * wrow, a);
                sink += s;
            }
            elems += (int64_t)rows * n;
            t1 = 1e-3 * hearth_now_ms();
        }
        const double rate = (double)elems / (t1 - t0);
        if (rate > best) best = rate;
    }
    (void)sink;
    return best;
}

static double bench_act(hearth_quantize_act_fn f, const float *x, void *dst, int64_t n) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        int64_t elems = 0;
        const double t0 = 1e-3 * hearth_now_ms();
        double t1 = t0;
        while (t1 - t0 < 0.005) {
            for (int k = 0; k < 16; k++)
                f(x, dst, n);
            elems += 16 * n;
            t1 = 1e-3 * hearth_now_ms();
        }
        if ((double)elems / (t1 - t0) > best) best = (double)elems / (t1 - t0);
    }
    return best;
}

static void print_speed(void) {
    const int64_t n = 4096;
    printf("\nspeed (Gelem/s, n=%lld, best of 3; x = speed-up over scalar):\n", (long long)n);
    printf("  %-6s", "kernel");
    for (int fi = 0; fi < g_n_families; fi++)
        if (g_families[fi].usable) printf(" %16s", g_families[fi].name);
    printf("\n");
    float *x = xmalloc((size_t)n * sizeof(float));
    fill_normal(x, n, 1.0f);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti].t;
        const hearth_dtype vdt = hearth_dtype_info(t)->vec_dot_type;
        const size_t wrow = hearth_dtype_row_size(t, n);
        const int rows = (int)(1536 * 1024 / wrow) + 1;
        void *w = xmalloc(wrow * (size_t)rows), *a = xmalloc(hearth_dtype_row_size(vdt, n));
        for (int r = 0; r < rows; r++)
            make_weight_row(&k_types[ti], n, (char *)w + (size_t)r * wrow, 1);
        hearth_cpu_quantize_act_ref(vdt)(x, a, n);
        printf("  %-6s", hearth_dtype_name(t));
        double base = 0;
        for (int fi = 0; fi < g_n_families; fi++) {
            if (!g_families[fi].usable) continue;
            const hearth_vec_dot_fn f = g_families[fi].vec_dot(t);
            if (!f) {
                printf(" %16s", "-");
                continue;
            }
            const double rate = bench_dot(f, w, wrow, a, n, rows);
            if (fi == 0) base = rate;
            printf("   %6.2f (%5.1fx)", rate * 1e-9, rate / base);
        }
        printf("\n");
        free(w);
        free(a);
    }
    for (size_t ai = 0; ai < sizeof k_act_types / sizeof k_act_types[0]; ai++) {
        const hearth_dtype vdt = k_act_types[ai];
        void *dst = xmalloc(hearth_dtype_row_size(vdt, n));
        printf("  act_%-2s", hearth_dtype_name(vdt));
        double base = 0;
        for (int fi = 0; fi < g_n_families; fi++) {
            if (!g_families[fi].usable) continue;
            const hearth_quantize_act_fn f = g_families[fi].quantize_act(vdt);
            if (!f) {
                printf(" %16s", "-");
                continue;
            }
            const double rate = bench_act(f, x, dst, n);
            if (fi == 0) base = rate;
            printf("   %6.2f (%5.1fx)", rate * 1e-9, rate / base);
        }
        printf("\n");
        free(dst);
    }
    free(x);
}

// ---------------------------------------------------------------- main

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--scalar-child")) return scalar_child();
    families_init();
    for (int fi = 1; fi < g_n_families; fi++) {
        const family *fam = &g_families[fi];
        if (!fam->usable) {
            printf("%s: not supported by this CPU, skipped\n", fam->name);
            continue;
        }
        test_act_special(fam);
        test_act_random(fam);
        test_dots(fam, fi);
        printf("%s: worst |simd - ref| / (|w'| |a'|) per type:", fam->name);
        for (size_t ti = 0; ti < N_TYPES; ti++)
            if (fam->vec_dot(k_types[ti].t))
                printf(" %s %.1e", hearth_dtype_name(k_types[ti].t), g_worst[ti][fi]);
        printf("\n");
    }
    test_dispatch();
    test_scalar_override(argv[0]);
    if (!getenv("HEARTH_TEST_NO_BENCH")) print_speed();
    return test_summary("test_simd");
}
