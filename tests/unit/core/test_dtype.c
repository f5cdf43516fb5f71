/*
 * test_dtype.c - element types (core/dtype.c) and the CPU scalar row
 * kernels (backends/cpu/cpu_quants_ref.c).
 *
 * What is checked, and why it is enough to trust a type:
 *   (a) f16/bf16: all 65536 bit patterns round-trip; every rounding midpoint
 *       (and its two neighbouring floats) converts to the right neighbour with
 *       ties to even; overflow, subnormals, zeros, NaN.
 *   (b) quantize -> dequantize relative RMS error on seeded random data stays
 *       under a per-type bound (table k_types below).
 *   (c) every dot kernel equals the float dot of its dequantized inputs (same
 *       math, tolerance = float summation noise) and stays within the type's
 *       error budget of the exact dot of the original floats.
 *   (d) hand-built blocks decode to known values, and random blocks decode
 *       exactly as an element-by-element reading of the layout (written here
 *       independently of dtype.c).
 *   (e) real data: re-quantizing the f32 KJV model reproduces every tensor of
 *       llama.cpp's quantized files byte for byte (they were made with
 *       `llama-quantize --pure`, no imatrix), and dequantizing those files is
 *       within the expected error of the f32 weights.
 * The test owns nothing global beyond its PRNG state; it prints the measured
 * errors so regressions in quality are visible in the log.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_quants.h"
#include "core/dtype.h"
#include "runtime/format/gguf.h"
#include "test.h"

// ---------------------------------------------------------------- helpers

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0); } /* [0,1) */

static float rng_normal(void) { /* Box-Muller */
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Test data shapes: weights look like N(0, 0.02) with rare outliers;
 * activations like N(0,1); a shifted distribution exercises the min of the
 * asymmetric formats. */
enum { DATA_WEIGHTS, DATA_NORMAL, DATA_SHIFTED, DATA_KINDS };
static const char *k_data_names[DATA_KINDS] = {"weights", "normal", "shifted"};

static void fill(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float v = rng_normal();
        if (kind == DATA_WEIGHTS) {
            v *= 0.02f;
            if (rng_uniform() < 0.005) v *= 8.0f;
        } else if (kind == DATA_SHIFTED) {
            v = 0.5f + 0.3f * v;
        }
        x[i] = v;
    }
}

static double rel_rms(const float *ref, const float *got, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)ref[i] - got[i];
        e += d * d;
        s += (double)ref[i] * ref[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

static double dot_d(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double norm_d(const float *a, int64_t n) { return sqrt(dot_d(a, a, n)); }

// ---------------------------------------------------------------- the types under test

/* rms_bound: relative RMS error of quantize->dequantize on DATA_NORMAL, about
 * 1.3x what these quantizers measure (printed by the test). Other data shapes
 * get 1.5x that (outliers and shifted means cost a little more). */
typedef struct {
    hearth_dtype t;
    double rms_bound;
} type_case;

static const type_case k_types[] = {
    {HEARTH_F32, 0.0},      /* exact copy */
    {HEARTH_F16, 4e-4},     /* 11-bit significand: ~2.8e-4 */
    {HEARTH_BF16, 3e-3},    /* 8-bit significand: ~2.2e-3 */
    {HEARTH_Q8_0, 0.009},   /* ~0.0066 */
    {HEARTH_Q8_1, 0.009},   /* same levels as Q8_0 */
    {HEARTH_Q8_K, 0.013},   /* 256-wide absmax: ~0.0077, outliers in a 256-block cost ~0.018 */
    {HEARTH_Q6_K, 0.024},   /* ~0.018 */
    {HEARTH_Q5_0, 0.060},   /* ~0.046 */
    {HEARTH_Q5_1, 0.050},   /* ~0.038 */
    {HEARTH_Q5_K, 0.045},   /* ~0.034 */
    {HEARTH_Q4_0, 0.120},   /* ~0.093 */
    {HEARTH_Q4_1, 0.100},   /* ~0.077 */
    {HEARTH_Q4_K, 0.090},   /* ~0.069 */
    {HEARTH_IQ4_NL, 0.100}, /* ~0.077 */
    {HEARTH_IQ4_XS, 0.100}, /* ~0.078 */
    {HEARTH_Q3_K, 0.230},   /* ~0.17 */
    {HEARTH_Q2_K, 0.450},   /* ~0.35 */
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

// ---------------------------------------------------------------- (a) f16 / bf16

static bool f16_is_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF); }

/* The value of an f16 bit pattern, computed from the definition. */
static double f16_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    const double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_f16(void) {
    int bad_value = 0, bad_roundtrip = 0, bad_nan = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        const uint16_t h = (uint16_t)u;
        const float f = hearth_f16_to_f32(h);
        if (f16_is_nan(h)) {
            bad_nan += !isnan(f) || !f16_is_nan(hearth_f32_to_f16(f));
            continue;
        }
        if ((h & 0x7FFF) == 0x7C00) {
            bad_value += !isinf(f) || (signbit(f) != 0) != ((h >> 15) != 0);
        } else {
            bad_value += (double)f != f16_value(h) || (signbit(f) != 0) != ((h >> 15) != 0);
        }
        bad_roundtrip += hearth_f32_to_f16(f) != h;
    }
    CHECKF(bad_value == 0, "%d f16 patterns decode to the wrong value", bad_value);
    CHECKF(bad_roundtrip == 0, "%d f16 patterns do not round-trip", bad_roundtrip);
    CHECKF(bad_nan == 0, "%d f16 NaNs not preserved", bad_nan);

    /* Rounding: the midpoint between consecutive finite f16 values h and h+1
     * goes to the even one; one f32 ulp either side goes to the nearer. The
     * step above the largest finite value (65504) is inf, at virtual 65536. */
    int bad_round = 0;
    for (uint16_t h = 0; h < 0x7C00; h++) {
        const double lo = f16_value(h), hi = h == 0x7BFF ? 65536.0 : f16_value((uint16_t)(h + 1));
        const float mid = (float)((lo + hi) / 2); /* exact: 12 significant bits */
        for (int s = 0; s < 2; s++) {
            const uint16_t sign = s ? 0x8000 : 0;
            const float m = s ? -mid : mid;
            const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : h;
            bad_round += hearth_f32_to_f16(m) != (sign | even);
            bad_round += hearth_f32_to_f16(nextafterf(m, 0.0f)) != (sign | h);
            bad_round += hearth_f32_to_f16(nextafterf(m, s ? -INFINITY : INFINITY)) != (sign | (uint16_t)(h + 1));
        }
    }
    CHECKF(bad_round == 0, "%d f16 rounding cases wrong", bad_round);

    /* Known values. */
    CHECK(hearth_f32_to_f16(1.0f) == 0x3C00);
    CHECK(hearth_f32_to_f16(-2.0f) == 0xC000);
    CHECK(hearth_f32_to_f16(0.5f) == 0x3800);
    CHECK(hearth_f32_to_f16(0.1f) == 0x2E66);
    CHECK(hearth_f32_to_f16(1.0f / 3.0f) == 0x3555);
    CHECK(hearth_f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(hearth_f32_to_f16(65519.0f) == 0x7BFF);
    CHECK(hearth_f32_to_f16(65520.0f) == 0x7C00); /* tie with the virtual 65536 -> inf */
    CHECK(hearth_f32_to_f16(1e10f) == 0x7C00);
    CHECK(hearth_f32_to_f16(-INFINITY) == 0xFC00);
    CHECK(hearth_f32_to_f16(0.0f) == 0x0000);
    CHECK(hearth_f32_to_f16(-0.0f) == 0x8000);
    CHECK(hearth_f32_to_f16(ldexpf(1, -24)) == 0x0001);       /* smallest subnormal */
    CHECK(hearth_f32_to_f16(ldexpf(1, -25)) == 0x0000);       /* tie -> even (0) */
    CHECK(hearth_f32_to_f16(ldexpf(3, -26)) == 0x0001);       /* 0.75 ulp -> 1 */
    CHECK(hearth_f32_to_f16(ldexpf(1, -14)) == 0x0400);       /* smallest normal */
    CHECK(hearth_f32_to_f16(ldexpf(1023, -24)) == 0x03FF);    /* largest subnormal */
    CHECK(hearth_f32_to_f16(ldexpf(2047, -25)) == 0x0400);    /* rounds up into the normals */
    CHECK(hearth_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3C00); /* tie -> even */
    CHECK(hearth_f32_to_f16(1.0f + ldexpf(3, -11)) == 0x3C02); /* tie -> even (up) */
    CHECK(hearth_f32_to_f16(FLT_MIN) == 0x0000);
    CHECK(f16_is_nan(hearth_f32_to_f16(NAN)));
    CHECK(hearth_f16_to_f32(0x3C00) == 1.0f);
    CHECK(hearth_f16_to_f32(0xC100) == -2.5f);
    CHECK(hearth_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(isinf(hearth_f16_to_f32(0x7C00)));
}

static bool bf16_is_nan(uint16_t h) { return (h & 0x7F80) == 0x7F80 && (h & 0x7F); }

static void test_bf16(void) {
    int bad_roundtrip = 0, bad_nan = 0, bad_round = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        const uint16_t h = (uint16_t)u;
        const float f = hearth_bf16_to_f32(h);
        if (bits_of(f) != u << 16) bad_roundtrip++;
        if (bf16_is_nan(h)) {
            bad_nan += !isnan(f) || !bf16_is_nan(hearth_f32_to_bf16(f));
            continue;
        }
        bad_roundtrip += hearth_f32_to_bf16(f) != h;
    }
    /* Midpoints are the f32 patterns h<<16 | 0x8000 (subnormals included: ggml
     * no longer flushes them). */
    for (uint32_t h = 0; h < 0x7F80; h++) {
        for (uint32_t s = 0; s < 2; s++) {
            const uint32_t base = (s << 31) | (h << 16), sign = s << 15;
            const uint32_t even = (h & 1) ? h + 1 : h;
            bad_round += hearth_f32_to_bf16(float_of(base | 0x8000)) != (sign | even);
            bad_round += hearth_f32_to_bf16(float_of(base | 0x7FFF)) != (sign | h);
            bad_round += hearth_f32_to_bf16(float_of(base | 0x8001)) != (sign | (h + 1));
        }
    }
    CHECKF(bad_roundtrip == 0, "%d bf16 patterns do not round-trip", bad_roundtrip);
    CHECKF(bad_nan == 0, "%d bf16 NaNs not preserved", bad_nan);
    CHECKF(bad_round == 0, "%d bf16 rounding cases wrong", bad_round);

    CHECK(hearth_f32_to_bf16(1.0f) == 0x3F80);
    CHECK(hearth_f32_to_bf16(-2.0f) == 0xC000);
    CHECK(hearth_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3F80); /* tie -> even */
    CHECK(hearth_f32_to_bf16(1.0f + ldexpf(3, -8)) == 0x3F82); /* tie -> even (up) */
    CHECK(hearth_f32_to_bf16(FLT_MAX) == 0x7F80);                /* rounds to inf */
    CHECK(hearth_f32_to_bf16(float_of(0x7F800001)) == 0x7FC0);   /* signalling NaN -> quiet */
    CHECK(hearth_f32_to_bf16(float_of(0xFFC00000)) == 0xFFC0);
    CHECK(hearth_f32_to_bf16(float_of(0x00000001)) == 0x0000);   /* tiny subnormal -> +0 */
    CHECK(hearth_f32_to_bf16(float_of(0x00018000)) == 0x0002);   /* subnormal tie -> even */
    CHECK(hearth_bf16_to_f32(0x4049) == float_of(0x40490000));
}

// ---------------------------------------------------------------- traits

static void test_traits(void) {
    static const struct {
        hearth_dtype t;
        const char *name;
        int64_t bs;
        size_t ts;
        hearth_dtype vdt;
        bool known;
    } want[] = {
        {HEARTH_F32, "f32", 1, 4, HEARTH_F32, true},         {HEARTH_F16, "f16", 1, 2, HEARTH_F16, true},
        {HEARTH_BF16, "bf16", 1, 2, HEARTH_BF16, true},      {HEARTH_Q4_0, "q4_0", 32, 18, HEARTH_Q8_0, true},
        {HEARTH_Q4_1, "q4_1", 32, 20, HEARTH_Q8_1, true},    {HEARTH_Q5_0, "q5_0", 32, 22, HEARTH_Q8_0, true},
        {HEARTH_Q5_1, "q5_1", 32, 24, HEARTH_Q8_1, true},    {HEARTH_Q8_0, "q8_0", 32, 34, HEARTH_Q8_0, true},
        {HEARTH_Q8_1, "q8_1", 32, 36, HEARTH_Q8_1, false},   {HEARTH_Q2_K, "q2_K", 256, 84, HEARTH_Q8_K, true},
        {HEARTH_Q3_K, "q3_K", 256, 110, HEARTH_Q8_K, true},  {HEARTH_Q4_K, "q4_K", 256, 144, HEARTH_Q8_K, true},
        {HEARTH_Q5_K, "q5_K", 256, 176, HEARTH_Q8_K, true},  {HEARTH_Q6_K, "q6_K", 256, 210, HEARTH_Q8_K, true},
        {HEARTH_Q8_K, "q8_K", 256, 292, HEARTH_Q8_K, false}, {HEARTH_IQ4_NL, "iq4_nl", 32, 18, HEARTH_Q8_0, true},
        {HEARTH_IQ4_XS, "iq4_xs", 256, 136, HEARTH_Q8_K, true},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const hearth_dtype_traits *tr = hearth_dtype_info(want[i].t);
        CHECKF(!strcmp(tr->name, want[i].name), "type %d name %s", want[i].t, tr->name);
        CHECKF(tr->block_size == want[i].bs && tr->type_size == want[i].ts, "%s: %lld elements in %zu bytes",
               tr->name, (long long)tr->block_size, tr->type_size);
        CHECKF(tr->vec_dot_type == want[i].vdt, "%s: vec_dot_type %d", tr->name, tr->vec_dot_type);
        CHECKF(tr->known == want[i].known, "%s: known %d", tr->name, tr->known);
        CHECK(tr->to_float != NULL && tr->from_float != NULL);
        CHECK(!strcmp(hearth_dtype_name(want[i].t), want[i].name));
        /* A known weight type has a CPU dot kernel; its activation type has a converter. */
        CHECKF((hearth_cpu_vec_dot(want[i].t) != NULL) == want[i].known, "%s: vec_dot presence", tr->name);
        CHECK(hearth_cpu_quantize_act_ref(want[i].vdt) != NULL);
    }
    /* Unknown types: "?" and not loadable, never NULL. */
    const hearth_dtype odd[] = {(hearth_dtype)4, (hearth_dtype)5, (hearth_dtype)27, (hearth_dtype)(HEARTH_DTYPE_COUNT - 1),
                                HEARTH_DTYPE_COUNT, (hearth_dtype)-1, (hearth_dtype)1000};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const hearth_dtype_traits *tr = hearth_dtype_info(odd[i]);
        CHECK(tr != NULL && !tr->known && !strcmp(tr->name, "?") && tr->to_float == NULL);
        CHECK(hearth_dtype_row_size(odd[i], 256) == 0);
        CHECK(hearth_cpu_vec_dot(odd[i]) == NULL);
        CHECK(!hearth_quantize_row(odd[i], NULL, NULL, 32));
    }

    /* ggml types that cannot be loaded keep their name, so the loader's refusal names them. */
    const struct { int id; const char *name; } named[] = {{34, "tq1_0"}, {35, "tq2_0"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        const hearth_dtype_traits *tr = hearth_dtype_info((hearth_dtype)named[i].id);
        CHECKF(!strcmp(tr->name, named[i].name) && !tr->known && !tr->to_float, "type %d: %s", named[i].id, tr->name);
        CHECK(hearth_dtype_row_size((hearth_dtype)named[i].id, 256) == 0);
        CHECK(hearth_cpu_vec_dot((hearth_dtype)named[i].id) == NULL);
        hearth_dtype t2;
        CHECK(!hearth_dtype_from_name(named[i].name, &t2));
    }
    /* The grid IQ types (core/dtype_iq.h): loadable, dequantized, multiplied
     * against Q8_K; all have a quantizer (core/quant_iq2.c, core/quant_iq3.c). */
    const struct { hearth_dtype t; const char *name; size_t ts; } grid[] = {
        {HEARTH_IQ2_XXS, "iq2_xxs", 66}, {HEARTH_IQ2_XS, "iq2_xs", 74}, {HEARTH_IQ2_S, "iq2_s", 82},
        {HEARTH_IQ3_XXS, "iq3_xxs", 98}, {HEARTH_IQ3_S, "iq3_s", 110}, {HEARTH_IQ1_S, "iq1_s", 50},
        {HEARTH_IQ1_M, "iq1_m", 56}};
    for (size_t i = 0; i < sizeof grid / sizeof grid[0]; i++) {
        const hearth_dtype_traits *tr = hearth_dtype_info(grid[i].t);
        CHECKF(!strcmp(tr->name, grid[i].name) && tr->known && tr->to_float && tr->from_float, "type %d: %s",
               grid[i].t, tr->name);
        CHECK(tr->block_size == 256 && tr->type_size == grid[i].ts && tr->vec_dot_type == HEARTH_Q8_K);
        CHECK(hearth_dtype_row_size(grid[i].t, 512) == 2 * grid[i].ts);
        CHECK(hearth_dtype_row_size(grid[i].t, 255) == 0);
        CHECK(hearth_cpu_vec_dot(grid[i].t) != NULL && hearth_cpu_vec_dot_ref(grid[i].t) != NULL);
        CHECK(!hearth_quantize_row(grid[i].t, NULL, NULL, 255)); /* no type without a quantizer, nor 255 */
        hearth_dtype t2 = HEARTH_F32;
        CHECK(hearth_dtype_from_name(grid[i].name, &t2) && t2 == grid[i].t);
    }

    /* Row sizes. */
    CHECK(hearth_dtype_row_size(HEARTH_Q4_K, 256) == 144);
    CHECK(hearth_dtype_row_size(HEARTH_Q6_K, 4096) == 16 * 210);
    CHECK(hearth_dtype_row_size(HEARTH_Q8_K, 512) == 584);
    CHECK(hearth_dtype_row_size(HEARTH_Q4_0, 4096) == 128 * 18);
    CHECK(hearth_dtype_row_size(HEARTH_F16, 7) == 14);
    CHECK(hearth_dtype_row_size(HEARTH_Q4_K, 255) == 0);
    CHECK(hearth_dtype_row_size(HEARTH_Q8_0, 33) == 0);
    CHECK(hearth_dtype_row_size(HEARTH_Q8_0, -32) == 0);
    CHECK(hearth_dtype_row_size(HEARTH_Q8_0, 0) == 0);

    /* Names parse case-insensitively; activation-only and unknown names do not. */
    hearth_dtype t = HEARTH_F32;
    CHECK(hearth_dtype_from_name("q4_K", &t) && t == HEARTH_Q4_K);
    CHECK(hearth_dtype_from_name("Q4_K", &t) && t == HEARTH_Q4_K);
    CHECK(hearth_dtype_from_name("q6_k", &t) && t == HEARTH_Q6_K);
    CHECK(hearth_dtype_from_name("F16", &t) && t == HEARTH_F16);
    CHECK(hearth_dtype_from_name("BF16", &t) && t == HEARTH_BF16);
    CHECK(hearth_dtype_from_name("Q8_0", &t) && t == HEARTH_Q8_0);
    t = HEARTH_F32;
    CHECK(!hearth_dtype_from_name("q7_0", &t) && t == HEARTH_F32);
    CHECK(!hearth_dtype_from_name("", &t));
    CHECK(!hearth_dtype_from_name("q4_K_M", &t));
    CHECK(!hearth_dtype_from_name("q4", &t));
    CHECK(!hearth_dtype_from_name("?", &t));
    CHECK(!hearth_dtype_from_name(NULL, &t));
    CHECK(!hearth_dtype_from_name("q8_K", &t)); /* activation format, not loadable */

    /* The supported list names exactly the known types. */
    const char *list = hearth_dtype_supported_list();
    int listed = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
        listed++;
        CHECKF(hearth_dtype_from_name(tok, &t) && !strcmp(hearth_dtype_name(t), tok), "listed type %s", tok);
    }
    int known = 0;
    for (int i = 0; i < HEARTH_DTYPE_COUNT; i++) known += hearth_dtype_info((hearth_dtype)i)->known;
    CHECKF(listed == known, "supported list has %d names, %d types are known", listed, known);
    CHECK_CONTAINS(list, "q4_K");
    CHECK_CONTAINS(list, "bf16");

    /* quantize_row refuses partial blocks. */
    float x[64] = {0};
    block_q8_0 q[2];
    CHECK(!hearth_quantize_row(HEARTH_Q8_0, x, q, 48));
    CHECK(hearth_quantize_row(HEARTH_Q8_0, x, q, 64));
    CHECK(hearth_quantize_row(HEARTH_Q8_0, x, q, 0));
}

// ---------------------------------------------------------------- (b) quantize -> dequantize

static void test_roundtrip(void) {
    static const int64_t sizes[] = {256, 1024, 4096};
    printf("quantize->dequantize relative RMS error (max over sizes):\n");
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti].t;
        double worst[DATA_KINDS] = {0};
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si];
            float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            void *q = malloc(hearth_dtype_row_size(t, n));
            REQUIRE(x && y && q);
            for (int kind = 0; kind < DATA_KINDS; kind++) {
                fill(x, n, kind);
                REQUIRE(hearth_quantize_row(t, x, q, n));
                hearth_dequantize_row(t, q, y, n);
                const double e = rel_rms(x, y, n);
                if (e > worst[kind]) worst[kind] = e;
                /* Zero rows stay exactly zero. */
            }
            memset(x, 0, (size_t)n * sizeof *x);
            REQUIRE(hearth_quantize_row(t, x, q, n));
            hearth_dequantize_row(t, q, y, n);
            int nonzero = 0;
            for (int64_t i = 0; i < n; i++) nonzero += y[i] != 0.0f;
            CHECKF(nonzero == 0, "%s: zero row dequantizes to %d non-zeros", hearth_dtype_name(t), nonzero);
            free(x);
            free(y);
            free(q);
        }
        const double b = k_types[ti].rms_bound;
        printf("  %-5s normal %.5f  weights %.5f  shifted %.5f  (bound %.4f)\n", hearth_dtype_name(t), worst[DATA_NORMAL],
               worst[DATA_WEIGHTS], worst[DATA_SHIFTED], b);
        CHECKF(worst[DATA_NORMAL] <= b, "%s: normal data rel RMS %.5f > %.5f", hearth_dtype_name(t), worst[DATA_NORMAL], b);
        for (int kind = 0; kind < DATA_KINDS; kind++)
            CHECKF(worst[kind] <= 1.5 * b, "%s: %s data rel RMS %.5f > %.5f", hearth_dtype_name(t), k_data_names[kind],
                   worst[kind], 1.5 * b);
    }

    /* Constant rows are reproduced (up to f16 rounding of the scale). */
    float c[256], y[256];
    unsigned char q[256 * sizeof(float)];
    for (int i = 0; i < 256; i++) c[i] = 0.75f;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti].t;
        REQUIRE(hearth_quantize_row(t, c, q, 256));
        hearth_dequantize_row(t, q, y, 256);
        CHECKF(rel_rms(c, y, 256) < 0.01, "%s: constant row error %.5f", hearth_dtype_name(t), rel_rms(c, y, 256));
    }
}

// ---------------------------------------------------------------- activation converters

static void test_quantize_act(void) {
    enum { N = 4096 };
    static float x[N];
    static unsigned char a[N * 4], r[N * 4];
    fill(x, N, DATA_NORMAL);

    /* F32/F16/BF16/Q8_K: byte-identical to the reference conversion. */
    const hearth_dtype same[] = {HEARTH_F32, HEARTH_F16, HEARTH_BF16, HEARTH_Q8_K};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const size_t rs = hearth_dtype_row_size(same[i], N);
        hearth_cpu_quantize_act(same[i], x, a, N);
        REQUIRE(hearth_quantize_row(same[i], x, r, N));
        CHECKF(!memcmp(a, r, rs), "%s activation differs from reference", hearth_dtype_name(same[i]));
    }

    /* Q8_K: bsums are the sums of their 16 quants; d * 127 recovers the absmax. */
    const block_q8_K *k = (const block_q8_K *)a;
    int bad_bsum = 0;
    for (int b = 0; b < N / QK_K; b++) {
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += k[b].qs[16 * j + l];
            bad_bsum += s != k[b].bsums[j];
        }
        float amax = 0;
        for (int l = 0; l < QK_K; l++) amax = fmaxf(amax, fabsf(x[b * QK_K + l]));
        CHECK(fabsf(fabsf(k[b].d) * 127 - amax) <= 1e-6f * amax);
    }
    CHECK(bad_bsum == 0);

    /* Q8_0/Q8_1: same scale as ggml's reference, levels differ by at most one
     * and only where x*id lands on (or within an ulp of) a half. */
    const hearth_dtype q8[] = {HEARTH_Q8_0, HEARTH_Q8_1};
    for (size_t i = 0; i < 2; i++) {
        hearth_cpu_quantize_act(q8[i], x, a, N);
        REQUIRE(hearth_quantize_row(q8[i], x, r, N));
        const size_t bsz = hearth_dtype_info(q8[i])->type_size;
        const size_t off = q8[i] == HEARTH_Q8_0 ? offsetof(block_q8_0, qs) : offsetof(block_q8_1, qs);
        int bad_d = 0, far = 0, diff = 0;
        for (int b = 0; b < N / 32; b++) {
            const unsigned char *pa = a + b * bsz, *pr = r + b * bsz;
            bad_d += memcmp(pa, pr, 2) != 0;
            for (int j = 0; j < 32; j++) {
                const int da = (int8_t)pa[off + j], dr = (int8_t)pr[off + j];
                diff += da != dr;
                far += abs(da - dr) > 1;
            }
            if (q8[i] == HEARTH_Q8_1) { /* s = f16(d * sum(q)) with the unrounded d */
                const block_q8_1 *blk = (const block_q8_1 *)pa;
                float amax = 0;
                int s = 0;
                for (int j = 0; j < 32; j++) {
                    amax = fmaxf(amax, fabsf(x[32 * b + j]));
                    s += blk->qs[j];
                }
                bad_d += blk->s != hearth_f32_to_f16(amax / 127.f * (float)s);
            }
        }
        CHECKF(bad_d == 0 && far == 0 && diff <= N / 1000, "%s act vs ref: %d scales, %d far, %d differ",
               hearth_dtype_name(q8[i]), bad_d, far, diff);
    }
}

static void test_quantize_act_edges(void) {
    /* ggml's x86 converter rounds ties to even where the reference rounds them
     * away from zero: with amax = 127 both use id = 1 exactly. */
    float x[32] = {127.f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 1.5f, -127.f};
    block_q8_0 qa, qr;
    hearth_cpu_quantize_act(HEARTH_Q8_0, x, &qa, 32);
    REQUIRE(hearth_quantize_row(HEARTH_Q8_0, x, &qr, 32));
    CHECK(qa.d == 0x3C00 && qr.d == 0x3C00); /* f16(1.0) */
    CHECK(qa.qs[0] == 127 && qa.qs[1] == 2 && qa.qs[2] == -2 && qa.qs[3] == 4 && qa.qs[4] == 0 && qa.qs[5] == 0 &&
          qa.qs[6] == 2 && qa.qs[7] == -127 && qa.qs[8] == 0);
    CHECK(qr.qs[0] == 127 && qr.qs[1] == 3 && qr.qs[2] == -3 && qr.qs[3] == 4 && qr.qs[4] == 1 && qr.qs[5] == -1 &&
          qr.qs[6] == 2 && qr.qs[7] == -127);

    /* All-zero blocks: d = 0 and q = 0 (no division by zero). */
    float z[256] = {0};
    block_q8_K k;
    memset(&k, 0x5A, sizeof k);
    hearth_cpu_quantize_act(HEARTH_Q8_K, z, &k, 256);
    int nz = 0;
    for (int i = 0; i < QK_K; i++) nz += k.qs[i] != 0;
    for (int i = 0; i < QK_K / 16; i++) nz += k.bsums[i] != 0;
    CHECK(k.d == 0.0f && nz == 0);
    hearth_cpu_quantize_act(HEARTH_Q8_0, z, &qa, 32);
    CHECK(qa.d == 0 && qa.qs[0] == 0 && qa.qs[31] == 0);

    /* Q8_K: the value of largest magnitude always maps to -127 (d = -max/127). */
    z[5] = -3.0f;
    z[6] = 1.5f;
    hearth_cpu_quantize_act(HEARTH_Q8_K, z, &k, 256);
    CHECK(k.qs[5] == -127 && (k.qs[6] == 63 || k.qs[6] == 64) && k.d > 0 && fabsf(k.d * k.qs[5] + 3.0f) < 1e-6f);
    CHECK(k.bsums[0] == -127 + k.qs[6]);

    /* A type no kernel consumes is left alone. */
    unsigned char buf[64];
    memset(buf, 0xAB, sizeof buf);
    hearth_cpu_quantize_act(HEARTH_Q4_0, x, buf, 32);
    hearth_cpu_quantize_act(HEARTH_Q8_0, x, buf, 31); /* not a block multiple */
    int touched = 0;
    for (size_t i = 0; i < sizeof buf; i++) touched += buf[i] != 0xAB;
    CHECK(touched == 0);
}

// ---------------------------------------------------------------- (c) dot products

static double bound_of(hearth_dtype t) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (k_types[i].t == t) return k_types[i].rms_bound;
    return 1.0;
}

/* Q8_1 stores s = d*sum(q) rounded to f16 from the unrounded d; the Q4_1/Q5_1
 * kernels use s for the min term, so against the dequantized dot they differ
 * by sum over blocks of |m| * |s - f16(d)*sum(q)|. Zero for other types. */
static double q8_1_s_slack(hearth_dtype wt, const void *qw, const void *qa, int64_t n) {
    if (hearth_dtype_info(wt)->vec_dot_type != HEARTH_Q8_1) return 0;
    const size_t wsz = hearth_dtype_info(wt)->type_size;
    const block_q8_1 *y = qa;
    double slack = 0;
    for (int64_t b = 0; b < n / QK8_1; b++) {
        hearth_f16 m; /* Q4_1 and Q5_1 both start with d, m */
        memcpy(&m, (const char *)qw + b * wsz + 2, sizeof m);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += y[b].qs[j];
        slack += fabs(hearth_f16_to_f32(m)) * fabs(hearth_f16_to_f32(y[b].s) - (double)hearth_f16_to_f32(y[b].d) * sum);
    }
    return slack;
}

static void test_vec_dot(void) {
    static const int64_t sizes[] = {256, 512, 4096};
    enum { NMAX = 4096 };
    static float w[NMAX], a[NMAX], ac[NMAX], wd[NMAX], ad[NMAX];
    static unsigned char qw[NMAX * 4], qa[NMAX * 4];
    printf("vec_dot (max over sizes and data): same-math error / (|w'||a'|), correlated relative error:\n");
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const hearth_dtype t = k_types[ti].t;
        const hearth_vec_dot_fn dot = hearth_cpu_vec_dot_ref(t);
        if (!dot) continue;
        CHECK(hearth_cpu_vec_dot(t) != NULL); /* the dispatcher may pick a SIMD kernel (test_simd checks those) */
        const hearth_dtype vdt = hearth_dtype_info(t)->vec_dot_type;
        double worst_same = 0, worst_corr = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si];
            for (int kind = 0; kind < DATA_KINDS; kind++) {
                fill(w, n, kind);
                fill(a, n, DATA_NORMAL);
                /* A correlated activation so the exact dot is far from zero. */
                const double wn = norm_d(w, n);
                for (int64_t i = 0; i < n; i++) ac[i] = (float)(w[i] * sqrt((double)n) / wn + 0.5 * a[i]);
                REQUIRE(hearth_quantize_row(t, w, qw, n));
                hearth_dequantize_row(t, qw, wd, n);
                const float *acts[2] = {a, ac};
                for (int c = 0; c < 2; c++) {
                    hearth_cpu_quantize_act(vdt, acts[c], qa, n);
                    hearth_dequantize_row(vdt, qa, ad, n);
                    float got = NAN;
                    dot(n, &got, qw, qa);
                    /* Same math as the dequantized dot, up to float summation. */
                    const double scale = norm_d(wd, n) * norm_d(ad, n);
                    const double slack = q8_1_s_slack(t, qw, qa, n);
                    const double same = fmax(0, fabs(got - dot_d(wd, ad, n)) - slack) / scale;
                    if (same > worst_same) worst_same = same;
                    CHECKF(same <= 1e-5, "%s n=%lld: kernel %.9g vs dequantized %.9g", hearth_dtype_name(t), (long long)n,
                           got, dot_d(wd, ad, n));
                    /* Rigorous: |got - w.a| <= |w-w'||a'| + |w||a-a'| + summation noise. */
                    double ew = 0, ea = 0;
                    for (int64_t i = 0; i < n; i++) {
                        ew += ((double)w[i] - wd[i]) * ((double)w[i] - wd[i]);
                        ea += ((double)acts[c][i] - ad[i]) * ((double)acts[c][i] - ad[i]);
                    }
                    const double exact = dot_d(w, acts[c], n);
                    const double cs = sqrt(ew) * norm_d(ad, n) + norm_d(w, n) * sqrt(ea) + 1e-5 * scale + slack;
                    CHECKF(fabs(got - exact) <= cs, "%s n=%lld: |%.9g - %.9g| > %.3g", hearth_dtype_name(t), (long long)n,
                           got, exact, cs);
                    if (c == 1) {
                        const double rel = fabs(got - exact) / fabs(exact);
                        if (rel > worst_corr) worst_corr = rel;
                        const double budget = 1.5 * (bound_of(t) + bound_of(vdt)) + 1e-6;
                        CHECKF(rel <= budget, "%s n=%lld: correlated dot off by %.5f (budget %.5f)", hearth_dtype_name(t),
                               (long long)n, rel, budget);
                    }
                }
            }
        }
        printf("  %-5s x %-4s  same-math %.2e  correlated %.5f\n", hearth_dtype_name(t), hearth_dtype_name(vdt),
               worst_same, worst_corr);
    }
}

// ---------------------------------------------------------------- (d) layouts

/* Element k of one block, read straight from the layout description (one
 * element at a time, unlike dtype.c's loops). Float operations are in ggml's
 * order so results compare exactly. */
static float spec_q4_0(const block_q4_0 *b, int k) {
    const int q = k < 16 ? (b->qs[k] & 0xF) : (b->qs[k - 16] >> 4);
    return (q - 8) * hearth_f16_to_f32(b->d);
}
static float spec_q4_1(const block_q4_1 *b, int k) {
    const int q = k < 16 ? (b->qs[k] & 0xF) : (b->qs[k - 16] >> 4);
    return q * hearth_f16_to_f32(b->d) + hearth_f16_to_f32(b->m);
}
static int spec_qh_bit(const uint8_t qh[4], int k) { return (qh[k / 8] >> (k % 8)) & 1; }
static float spec_q5_0(const block_q5_0 *b, int k) {
    const int q = (k < 16 ? (b->qs[k] & 0xF) : (b->qs[k - 16] >> 4)) | (spec_qh_bit(b->qh, k) << 4);
    return (q - 16) * hearth_f16_to_f32(b->d);
}
static float spec_q5_1(const block_q5_1 *b, int k) {
    const int q = (k < 16 ? (b->qs[k] & 0xF) : (b->qs[k - 16] >> 4)) | (spec_qh_bit(b->qh, k) << 4);
    return q * hearth_f16_to_f32(b->d) + hearth_f16_to_f32(b->m);
}
static float spec_q8_0(const block_q8_0 *b, int k) { return b->qs[k] * hearth_f16_to_f32(b->d); }
static float spec_q8_1(const block_q8_1 *b, int k) { return b->qs[k] * hearth_f16_to_f32(b->d); }
static float spec_q8_K(const block_q8_K *b, int k) { return b->d * b->qs[k]; }

/* Q2_K/Q3_K: 128 elements per 32 bytes of qs, in four 2-bit planes of 32. */
static int spec_2bit(const uint8_t *qs, int k) { return (qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3; }
static float spec_q2_K(const block_q2_K *b, int k) {
    const uint8_t sc = b->scales[k / 16];
    const float dl = hearth_f16_to_f32(b->d) * (sc & 0xF), ml = hearth_f16_to_f32(b->dmin) * (sc >> 4);
    return dl * spec_2bit(b->qs, k) - ml;
}
static float spec_q3_K(const block_q3_K *b, int k) {
    const int j = k / 16;
    const int lo = j < 8 ? b->scales[j] & 0xF : b->scales[j - 8] >> 4;
    const int hi = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    const int high_bit = (b->hmask[k % 32] >> (k / 32)) & 1;
    const float dl = hearth_f16_to_f32(b->d) * ((lo | (hi << 4)) - 32);
    return dl * (spec_2bit(b->qs, k) - (high_bit ? 0 : 4));
}
/* Q4_K/Q5_K: 8 groups of 32 with 6-bit (scale, min); 64 elements per 32 bytes
 * (low nibbles first). The 12 scale bytes: bytes 0-3 scale 0-3, bytes 4-7 min
 * 0-3 (low 6 bits each); bytes 8-11 low nibble scale 4-7, high nibble min 4-7,
 * whose top 2 bits sit in bits 6-7 of bytes 0-3 (scales) and 4-7 (mins). */
static void spec_scale_min(const uint8_t s[12], int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}
static int spec_nibble(const uint8_t *qs, int k) {
    const uint8_t byte = qs[32 * (k / 64) + k % 32];
    return (k % 64) < 32 ? byte & 0xF : byte >> 4;
}
static float spec_q4_K(const block_q4_K *b, int k) {
    int sc, m;
    spec_scale_min(b->scales, k / 32, &sc, &m);
    const float d1 = hearth_f16_to_f32(b->d) * sc, m1 = hearth_f16_to_f32(b->dmin) * m;
    return d1 * spec_nibble(b->qs, k) - m1;
}
static float spec_q5_K(const block_q5_K *b, int k) {
    int sc, m;
    spec_scale_min(b->scales, k / 32, &sc, &m);
    const float d1 = hearth_f16_to_f32(b->d) * sc, m1 = hearth_f16_to_f32(b->dmin) * m;
    const int q = spec_nibble(b->qs, k) + (((b->qh[k % 32] >> (k / 32)) & 1) ? 16 : 0);
    return d1 * q - m1;
}
/* Q6_K: per 128 elements, quarter r (32 each) takes its low nibble from
 * ql[l + 32*(r&1)] (low nibble for r<2, high for r>=2) and its top 2 bits
 * from qh[l] bits 2r..2r+1; 16 signed 8-bit scales, one per 16 elements. */
static float spec_q6_K(const block_q6_K *b, int k) {
    const int h = k / 128, r = (k % 128) / 32, l = k % 32;
    const uint8_t lb = b->ql[64 * h + l + 32 * (r & 1)];
    const int q = ((r < 2 ? lb & 0xF : lb >> 4) | (((b->qh[32 * h + l] >> (2 * r)) & 3) << 4)) - 32;
    return hearth_f16_to_f32(b->d) * b->scales[k / 16] * q;
}

/* IQ4_NL / IQ4_XS: element k is level(nibble) times the (sub-)block scale; the
 * nibble of element k of a 32-group is byte k%16, low half for k<16. */
static const int k_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static int spec_iq4_nibble(const uint8_t *qs, int k) {
    const uint8_t byte = qs[16 * (k / 32) + k % 16];
    return (k % 32) < 16 ? byte & 0xF : byte >> 4;
}
static float spec_iq4_nl(const block_iq4_nl *b, int k) {
    return hearth_f16_to_f32(b->d) * k_iq4_levels[spec_iq4_nibble(b->qs, k)];
}
static float spec_iq4_xs(const block_iq4_xs *b, int k) {
    const int ib = k / 32;
    const int ls = ((b->scales_l[ib / 2] >> (4 * (ib & 1))) & 15) | (((b->scales_h >> (2 * ib)) & 3) << 4);
    return hearth_f16_to_f32(b->d) * (float)(ls - 32) * k_iq4_levels[spec_iq4_nibble(b->qs, k)];
}

static float spec_element(hearth_dtype t, const void *blk, int k) {
    switch (t) {
    case HEARTH_Q4_0: return spec_q4_0(blk, k);
    case HEARTH_Q4_1: return spec_q4_1(blk, k);
    case HEARTH_Q5_0: return spec_q5_0(blk, k);
    case HEARTH_Q5_1: return spec_q5_1(blk, k);
    case HEARTH_Q8_0: return spec_q8_0(blk, k);
    case HEARTH_Q8_1: return spec_q8_1(blk, k);
    case HEARTH_Q2_K: return spec_q2_K(blk, k);
    case HEARTH_Q3_K: return spec_q3_K(blk, k);
    case HEARTH_Q4_K: return spec_q4_K(blk, k);
    case HEARTH_Q5_K: return spec_q5_K(blk, k);
    case HEARTH_Q6_K: return spec_q6_K(blk, k);
    case HEARTH_Q8_K: return spec_q8_K(blk, k);
    case HEARTH_IQ4_NL: return spec_iq4_nl(blk, k);
    case HEARTH_IQ4_XS: return spec_iq4_xs(blk, k);
    default: return NAN;
    }
}

/* Dequantize one block and compare every element with expected[] exactly. */
static int count_mismatches(hearth_dtype t, const void *blk, const float *expected) {
    float y[QK_K];
    const int bs = (int)hearth_dtype_info(t)->block_size;
    hearth_dequantize_row(t, blk, y, bs);
    int bad = 0;
    for (int k = 0; k < bs; k++) {
        if (bits_of(y[k]) != bits_of(expected[k]) && !(y[k] == 0 && expected[k] == 0)) {
            if (bad < 3) fprintf(stderr, "  %s element %d: got %.9g want %.9g\n", hearth_dtype_name(t), k, y[k], expected[k]);
            bad++;
        }
    }
    return bad;
}

static void test_golden_blocks(void) {
    float e[QK_K];

    block_q4_0 b40 = {.d = 0x3800}; /* d = 0.5, low nibbles 0..15, high nibbles 15..0 */
    for (int j = 0; j < 16; j++) {
        b40.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        e[j] = (j - 8) * 0.5f;
        e[j + 16] = (7 - j) * 0.5f;
    }
    CHECK(count_mismatches(HEARTH_Q4_0, &b40, e) == 0);

    block_q4_1 b41 = {.d = 0x3400, .m = 0xBC00}; /* d = 0.25, m = -1 */
    for (int j = 0; j < 16; j++) {
        b41.qs[j] = (uint8_t)(j | (j << 4));
        e[j] = e[j + 16] = j * 0.25f - 1.0f;
    }
    CHECK(count_mismatches(HEARTH_Q4_1, &b41, e) == 0);

    block_q5_0 b50 = {.d = 0x3C00, .qh = {0x00, 0x00, 0xFF, 0xFF}}; /* d = 1; fifth bit set on elements 16..31 */
    for (int j = 0; j < 16; j++) {
        b50.qs[j] = (uint8_t)(j | (j << 4));
        e[j] = (float)(j - 16);
        e[j + 16] = (float)j;
    }
    CHECK(count_mismatches(HEARTH_Q5_0, &b50, e) == 0);

    block_q5_1 b51 = {.d = 0x4000, .m = 0x3800, .qh = {0xFF, 0xFF, 0x00, 0x00}}; /* d = 2, m = 0.5 */
    for (int j = 0; j < 16; j++) {
        b51.qs[j] = (uint8_t)(15 - j);
        e[j] = (31 - j) * 2.0f + 0.5f;
        e[j + 16] = 0.5f;
    }
    CHECK(count_mismatches(HEARTH_Q5_1, &b51, e) == 0);

    block_q8_0 b80 = {.d = 0x3000}; /* d = 0.125 */
    for (int j = 0; j < 32; j++) {
        b80.qs[j] = (int8_t)(j - 16);
        e[j] = (j - 16) * 0.125f;
    }
    CHECK(count_mismatches(HEARTH_Q8_0, &b80, e) == 0);

    block_q8_K b8k = {.d = 0.25f};
    for (int k = 0; k < QK_K; k++) {
        b8k.qs[k] = (int8_t)(k % 255 - 127);
        e[k] = (k % 255 - 127) * 0.25f;
    }
    CHECK(count_mismatches(HEARTH_Q8_K, &b8k, e) == 0);

    /* Q4_K with literal scale bytes: groups 0-3 have (scale, min) = (1,5) (2,6)
     * (3,7) (4,8); groups 4-7 (17,2) (3,4) (5,6) (7,8) - group 4's scale gets
     * 16 from bit 6 of byte 0. Nibbles: low = byte%16, high = 15 - byte%16. */
    block_q4_K b4k = {.d = 0x3C00, .dmin = 0x3800, /* d = 1, dmin = 0.5 */
                      .scales = {0x41, 2, 3, 4, 5, 6, 7, 8, 0x21, 0x43, 0x65, 0x87}};
    static const int sc4[8] = {1, 2, 3, 4, 17, 3, 5, 7}, mn4[8] = {5, 6, 7, 8, 2, 4, 6, 8};
    for (int i = 0; i < QK_K / 2; i++) b4k.qs[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    for (int k = 0; k < QK_K; k++) {
        const int l = k % 32, q = (k % 64) < 32 ? l % 16 : 15 - l % 16, j = k / 32;
        e[k] = (float)sc4[j] * q - 0.5f * mn4[j];
    }
    CHECK(count_mismatches(HEARTH_Q4_K, &b4k, e) == 0);
    {
        float y[QK_K];
        hearth_dequantize_row(HEARTH_Q4_K, &b4k, y, QK_K);
        CHECK(y[0] == -2.5f && y[32] == 2 * 15 - 3.0f && y[128 + 1] == 17 * 1 - 1.0f && y[255] == 7 * 0 - 4.0f);
    }

    /* Q5_K: same scales, d = 0.5, dmin = 1; qh 0x55 on even bytes sets the fifth
     * bit of groups 0, 2, 4, 6 there, 0xAA on odd bytes of groups 1, 3, 5, 7. */
    block_q5_K b5k = {.d = 0x3800, .dmin = 0x3C00, .scales = {0x41, 2, 3, 4, 5, 6, 7, 8, 0x21, 0x43, 0x65, 0x87}};
    memcpy(b5k.qs, b4k.qs, sizeof b5k.qs);
    for (int l = 0; l < 32; l++) b5k.qh[l] = (l & 1) ? 0xAA : 0x55;
    for (int k = 0; k < QK_K; k++) {
        const int l = k % 32, j = k / 32;
        const int q = ((k % 64) < 32 ? l % 16 : 15 - l % 16) + ((l & 1) == (j & 1) ? 16 : 0);
        e[k] = 0.5f * sc4[j] * q - 1.0f * mn4[j];
    }
    CHECK(count_mismatches(HEARTH_Q5_K, &b5k, e) == 0);

    /* Q6_K: d = 0.5, scales +1,-2,+3,-4,...; ql[i] = i; qh = 0xE4 gives the
     * quarters r = 0..3 top bits r. Hand-computed elements checked first. */
    block_q6_K b6k = {.d = 0x3800};
    for (int i = 0; i < QK_K / 2; i++) b6k.ql[i] = (uint8_t)i;
    memset(b6k.qh, 0xE4, sizeof b6k.qh);
    for (int i = 0; i < 16; i++) b6k.scales[i] = (int8_t)((i & 1) ? -(i + 1) : i + 1);
    {
        float y[QK_K];
        hearth_dequantize_row(HEARTH_Q6_K, &b6k, y, QK_K);
        CHECK(y[0] == -16.0f);   /* q = 0 - 32, scale 1 */
        CHECK(y[32] == -24.0f);  /* ql[32]=0x20 -> nibble 0, top bits 1: q = -16, scale 3 */
        CHECK(y[64] == 0.0f);    /* nibble 0, top bits 2: q = 0 */
        CHECK(y[96] == 63.0f);   /* ql[32]>>4 = 2, top bits 3: q = 18, scale 7 */
        CHECK(y[255] == -184.0f); /* ql[127]>>4 = 7, top bits 3: q = 23, scale -16 */
    }
    for (int k = 0; k < QK_K; k++) e[k] = spec_q6_K(&b6k, k);
    CHECK(count_mismatches(HEARTH_Q6_K, &b6k, e) == 0);

    /* Q2_K: d = 1, dmin = 0.5, scales[j] = j | (15-j) << 4, every qs byte 0xE4
     * so plane p (0..3) holds level p. */
    block_q2_K b2k = {.d = 0x3C00, .dmin = 0x3800};
    for (int j = 0; j < 16; j++) b2k.scales[j] = (uint8_t)(j | ((15 - j) << 4));
    memset(b2k.qs, 0xE4, sizeof b2k.qs);
    for (int k = 0; k < QK_K; k++) e[k] = (float)(k / 16) * ((k % 128) / 32) - 0.5f * (15 - k / 16);
    CHECK(count_mismatches(HEARTH_Q2_K, &b2k, e) == 0);
    CHECK(e[0] == -7.5f && e[40] == -4.5f);

    /* Q3_K: d = 0.25, 6-bit scales s_j = 3j + 1 (stored with +32 bias), levels
     * = plane, high bit set (no -4) only in the first 128 elements. */
    block_q3_K b3k = {.d = 0x3400};
    for (int j = 0; j < 16; j++) {
        const int s = 3 * j + 1;
        if (j < 8)
            b3k.scales[j] |= (uint8_t)(s & 0xF);
        else
            b3k.scales[j - 8] |= (uint8_t)((s & 0xF) << 4);
        b3k.scales[8 + j % 4] |= (uint8_t)((s >> 4) << (2 * (j / 4)));
    }
    memset(b3k.qs, 0xE4, sizeof b3k.qs);
    memset(b3k.hmask, 0x0F, sizeof b3k.hmask);
    for (int k = 0; k < QK_K; k++) e[k] = 0.25f * (3 * (k / 16) + 1 - 32) * ((k % 128) / 32 - (k < 128 ? 0 : 4));
    CHECK(count_mismatches(HEARTH_Q3_K, &b3k, e) == 0);
    CHECK(e[200] == -2.5f); /* group 12: scale 3*12+1-32 = 5; plane 2 of the second half: level 2-4 */
}

/* Random bytes with sane scale fields decode exactly as the layout says. */
static void test_layout_random(void) {
    const hearth_dtype types[] = {HEARTH_Q4_0, HEARTH_Q4_1, HEARTH_Q5_0, HEARTH_Q5_1, HEARTH_Q8_0, HEARTH_Q8_1,
                                  HEARTH_Q2_K, HEARTH_Q3_K, HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K, HEARTH_Q8_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const hearth_dtype t = types[ti];
        const size_t ts = hearth_dtype_info(t)->type_size;
        int bad = 0;
        for (int rep = 0; rep < 64; rep++) {
            unsigned char blk[sizeof(block_q8_K)];
            for (size_t i = 0; i < ts; i++) blk[i] = (unsigned char)rng_next();
            /* Overwrite the f16/f32 scale fields with finite values. */
            const hearth_f16 h1 = hearth_f32_to_f16(rng_normal() * 0.05f), h2 = hearth_f32_to_f16(rng_normal() * 0.05f);
            switch (t) {
            case HEARTH_Q4_1: case HEARTH_Q5_1: case HEARTH_Q8_1:
                memcpy(blk + 2, &h2, 2); /* fall through */
            case HEARTH_Q4_0: case HEARTH_Q5_0: case HEARTH_Q8_0:
                memcpy(blk, &h1, 2);
                break;
            case HEARTH_Q4_K: case HEARTH_Q5_K:
                memcpy(blk, &h1, 2);
                memcpy(blk + 2, &h2, 2);
                break;
            case HEARTH_Q2_K:
                memcpy(blk + offsetof(block_q2_K, d), &h1, 2);
                memcpy(blk + offsetof(block_q2_K, dmin), &h2, 2);
                break;
            case HEARTH_Q3_K: memcpy(blk + offsetof(block_q3_K, d), &h1, 2); break;
            case HEARTH_Q6_K: memcpy(blk + offsetof(block_q6_K, d), &h1, 2); break;
            case HEARTH_Q8_K: {
                const float d = rng_normal() * 0.01f;
                memcpy(blk, &d, 4);
                break;
            }
            default: break;
            }
            float e[QK_K];
            const int bs = (int)hearth_dtype_info(t)->block_size;
            for (int k = 0; k < bs; k++) e[k] = spec_element(t, blk, k);
            bad += count_mismatches(t, blk, e);
        }
        CHECKF(bad == 0, "%s: %d elements differ from the layout", hearth_dtype_name(t), bad);
    }
}

// ---------------------------------------------------------------- (e) real model files

/* Compare every tensor of hearth-kjv-llama-<suffix>.gguf with the f32 model:
 * re-quantized bytes must equal the file's, dequantized values must be close. */
static void compare_model_file_in(const char *dir, const hearth_gguf *ref, const char *suffix, double rms_bound) {
    char rel[128], path[1024];
    snprintf(rel, sizeof rel, "models/hearth-kjv-llama-%s.gguf", suffix);
    if (dir) snprintf(path, sizeof path, "%s/hearth-kjv-llama-%s.gguf", dir, suffix);
    else test_shared_path(path, sizeof path, rel);
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(path, &err);
    CHECKF(g != NULL, "%s: %s", rel, err.msg);
    if (!g) return;
    int64_t blocks = 0, bad_blocks = 0, tensors = 0;
    double se = 0, ss = 0, worst_dot = 0;
    for (uint64_t ti = 0; ti < hearth_gguf_n_tensors(g); ti++) {
        const gguf_tensor *q = hearth_gguf_tensor_at(g, ti);
        char name[256];
        hearth_str_copy(q->name, name, sizeof name);
        const gguf_tensor *f = hearth_gguf_find_tensor(ref, name);
        CHECKF(f != NULL, "%s: tensor %s missing from the f32 model", rel, name);
        if (!f || q->type == HEARTH_F32) continue;
        REQUIRE(f->type == HEARTH_F32 && f->ne[0] == q->ne[0]);
        const int64_t ne0 = (int64_t)q->ne[0], rows = (int64_t)(f->nbytes / sizeof(float)) / ne0;
        const size_t rs = hearth_dtype_row_size(q->type, ne0), bsz = hearth_dtype_info(q->type)->type_size;
        REQUIRE(rs > 0 && (uint64_t)rows * rs == q->nbytes);
        unsigned char *mine = malloc(rs);
        float *x = malloc((size_t)ne0 * sizeof *x), *y = malloc((size_t)ne0 * sizeof *y), *a = malloc((size_t)ne0 * sizeof *a);
        void *qa = malloc((size_t)ne0 * 4);
        REQUIRE(mine && x && y && a && qa);
        const hearth_vec_dot_fn dot = hearth_cpu_vec_dot(q->type);
        const hearth_dtype vdt = hearth_dtype_info(q->type)->vec_dot_type;
        tensors++;
        for (int64_t r = 0; r < rows; r++) {
            memcpy(x, (const char *)f->data + (size_t)r * ne0 * sizeof(float), (size_t)ne0 * sizeof(float));
            const unsigned char *qrow = (const unsigned char *)q->data + (size_t)r * rs;
            REQUIRE(hearth_quantize_row(q->type, x, mine, ne0));
            for (size_t b = 0; b < rs / bsz; b++) bad_blocks += memcmp(mine + b * bsz, qrow + b * bsz, bsz) != 0;
            blocks += (int64_t)(rs / bsz);
            hearth_dequantize_row(q->type, qrow, y, ne0);
            for (int64_t i = 0; i < ne0; i++) {
                se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                ss += (double)x[i] * x[i];
            }
            if (r < 4) { /* the dot kernel on real weights */
                fill(a, ne0, DATA_NORMAL);
                hearth_cpu_quantize_act(vdt, a, qa, ne0);
                float got;
                dot(ne0, &got, qrow, qa);
                hearth_dequantize_row(vdt, qa, a, ne0);
                const double slack = q8_1_s_slack(q->type, qrow, qa, ne0);
                const double e = fmax(0, fabs(got - dot_d(y, a, ne0)) - slack) / (norm_d(y, ne0) * norm_d(a, ne0));
                if (e > worst_dot) worst_dot = e;
            }
        }
        free(mine);
        free(x);
        free(y);
        free(a);
        free(qa);
    }
    const double rms = ss > 0 ? sqrt(se / ss) : 0;
    printf("  %-7s %2lld tensors: %lld/%lld blocks differ from re-quantized f32; rel RMS vs f32 %.5f; dot same-math %.1e\n",
           suffix, (long long)tensors, (long long)bad_blocks, (long long)blocks, rms, worst_dot);
    CHECKF(tensors > 0, "%s has no quantized tensors", rel);
    CHECKF(bad_blocks == 0, "%s: %lld blocks differ from llama.cpp's quantizer", rel, (long long)bad_blocks);
    CHECKF(rms <= rms_bound, "%s: rel RMS %.5f > %.5f", rel, rms, rms_bound);
    CHECK(worst_dot <= 1e-5);
    hearth_gguf_close(g);
}

static void compare_model_file(const hearth_gguf *ref, const char *suffix, double rms_bound) {
    compare_model_file_in(NULL, ref, suffix, rms_bound);
}

static void test_real_models(void) {
    char path[1024];
    hearth_error err = {0};
    hearth_gguf *ref = hearth_gguf_open(test_shared_path(path, sizeof path, "models/hearth-kjv-llama-f32.gguf"), &err);
    CHECKF(ref != NULL, "f32 model: %s", err.msg);
    if (!ref) return;
    printf("real weights (hearth-kjv-llama-*.gguf vs the f32 file):\n");
    /* Bounds: ~1.3x the measured error on these trained weights. */
    compare_model_file(ref, "f16", 3e-4);
    compare_model_file(ref, "bf16", 2.2e-3);
    compare_model_file(ref, "q8_0", 0.0065);
    compare_model_file(ref, "q6_k", 0.022);
    compare_model_file(ref, "q5_0", 0.051);
    compare_model_file(ref, "q5_1", 0.046);
    compare_model_file(ref, "q5_k", 0.044);
    compare_model_file(ref, "q4_0", 0.103);
    compare_model_file(ref, "q4_1", 0.095);
    compare_model_file(ref, "q4_k", 0.086);
    compare_model_file(ref, "q4_k_m", 0.086); /* Q4_K/Q6_K mixture, still no imatrix */
    /* Types the shared folder has no file of: HEARTH_PEER_MODELS names a folder
     * of files made from the f32 model by llama.cpp's own `llama-quantize --pure`
     * (backends/cpu/README.md says how); without it these are not checked. */
    const char *peer = getenv("HEARTH_PEER_MODELS");
    if (peer && *peer) {
        compare_model_file_in(peer, ref, "iq4_nl", 0.100);
        compare_model_file_in(peer, ref, "iq4_xs", 0.100);
    } else {
        printf("  iq4_nl, iq4_xs: not compared with llama-quantize (HEARTH_PEER_MODELS unset)\n");
    }
    hearth_gguf_close(ref);
}

int main(void) {
    test_f16();
    test_bf16();
    test_traits();
    test_roundtrip();
    test_quantize_act();
    test_quantize_act_edges();
    test_vec_dot();
    test_golden_blocks();
    test_layout_random();
    test_real_models();
    return test_summary("test_dtype");
}
