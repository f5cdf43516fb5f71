/*
 * test_cpu_ops.c - the CPU backend's elementwise ops against direct float64
 * formulas: RoPE in both pair layouts (adjacent pairs for llama, halves for
 * NeoX/qwen), with freq_base, linear scaling (freq_scale) and Llama-3 style
 * per-pair frequency factors (rope_freqs), partial rotation (n_rot < head
 * size); RMS norm; SiLU-gated product; add; paged attention against a plain
 * softmax(QK^T)V over the same keys. On x86-64, each F16 attention group
 * kernel this CPU can run (AVX2, AVX-512) is also called directly: odd key
 * counts, 1-8 queries of different lengths in one call, each query alone
 * bit-identical to the batch, and the backend's attention bit-identical to
 * the kernel of the family HEARTH_CPU_ISA leaves it (so a run with
 * HEARTH_CPU_ISA=avx2 proves the AVX2 kernel is the one wired in).
 */
#include <stdlib.h>

#include "backends/backend_impl.h"
#include "test.h"
#if defined(__x86_64__)
#include "backends/cpu/cpu_attn.h"
#include "backends/cpu/cpu_features.h"
#endif

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

/* Reference RoPE of one head vector, in double. */
/* YaRN in double precision, from its definition: pair i's angle is the
 * scaled one (x scale) for the high pairs, the unscaled one below the
 * correction range [lo, hi], a linear ramp between; mag scales cos and sin;
 * ext 0 is plain RoPE. */
typedef struct rope_yarn_ref {
    double ext, lo, hi, mag;
} rope_yarn_ref;

static void rope_ref(double *v, int hd, int n_rot, int pos, hearth_rope_mode mode, double base, double scale,
                     const float *ff, const rope_yarn_ref *y) {
    for (int i = 0; i < n_rot / 2; i++) {
        double extrap = pos * pow(base, -2.0 * i / n_rot) / (ff ? ff[i] : 1.0), theta = extrap * scale;
        double mag = y ? y->mag : 1.0;
        if (y && y->ext != 0) {
            double r = (i - y->lo) / fmax(0.001, y->hi - y->lo);
            double ramp = (1 - fmin(1, fmax(0, r))) * y->ext;
            theta = theta * (1 - ramp) + extrap * ramp;
        }
        int i0 = mode == HEARTH_ROPE_NEOX ? i : 2 * i,
            i1 = mode == HEARTH_ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
        double a = v[i0], b = v[i1];
        v[i0] = mag * (a * cos(theta) - b * sin(theta));
        v[i1] = mag * (a * sin(theta) + b * cos(theta));
    }
    (void)hd;
}

#if defined(__x86_64__)
typedef struct attn_family {
    const char *name;
    bool usable; /* the CPU has the ISA */
    bool (*supports)(int head_dim);
    size_t (*scratch)(int group, int head_dim);
    hearth_attn_f16_fn run;
} attn_family;

/* The F16 group kernels called directly on one KV head (the second of two,
 * so slot strides and head offsets matter) through a scrambled page table. */
static void test_attn_kernels(uint64_t *seed) {
    const hearth_cpu_caps *caps = hearth_cpu_caps_get();
    const attn_family fams[2] = {
        {"avx2", caps->avx2 && caps->fma && caps->f16c, hearth_attn_f16_avx2_supports,
         hearth_attn_f16_avx2_scratch, hearth_attn_f16_avx2},
        {"avx512", caps->avx512f && caps->avx512bw && caps->avx512vl && caps->avx512vnni,
         hearth_attn_f16_avx512_supports, hearth_attn_f16_avx512_scratch, hearth_attn_f16_avx512},
    };
    enum { PS = 16, NP = 12, MAXL = PS * NP, NKV = 2, MAXD = 128, MAXG = 7, NQ = HEARTH_ATTN_MAX_Q };
    static uint16_t k[MAXL * NKV * MAXD], v[MAXL * NKV * MAXD], q16[NQ][MAXG * MAXD];
    static float out[NQ][MAXG * MAXD], out1[MAXG * MAXD];
    const int32_t pages[NP] = {5, 11, 0, 7, 3, 9, 1, 10, 2, 8, 4, 6};
    const int lens[NQ] = {150, 1, 7, 8, 9, 63, 65, 64}; /* partial chunks and tiles, one 3-tile query */
    const struct { int d, g; } shapes[] = {{64, 1}, {64, 4}, {128, 7}, {128, 2}};
    for (int f = 0; f < 2; f++) {
        if (!fams[f].usable) {
            printf("  (attention %s kernel: CPU lacks the ISA, not run)\n", fams[f].name);
            continue;
        }
        for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
            const int D = shapes[c].d, G = shapes[c].g;
            CHECK(fams[f].supports(D));
            for (int i = 0; i < MAXL * NKV * D; i++) {
                k[i] = hearth_f32_to_f16((float)urand(seed) * 2);
                v[i] = hearth_f32_to_f16((float)urand(seed));
            }
            for (int t = 0; t < NQ; t++)
                for (int i = 0; i < G * D; i++)
                    q16[t][i] = hearth_f32_to_f16((float)urand(seed) * 2);
            void *scr = malloc(fams[f].scratch(G, D));
            REQUIRE(scr);
            hearth_attn_f16_args a = {D,
                                      G,
                                      NQ,
                                      PS,
                                      {0},
                                      pages,
                                      (const char *)(k + D),
                                      (const char *)(v + D),
                                      sizeof(uint16_t) * NKV * D,
                                      sizeof(uint16_t) * NKV * D,
                                      1.0f / sqrtf((float)D)};
            const uint16_t *qp[NQ];
            float *op[NQ];
            for (int t = 0; t < NQ; t++) {
                a.n_kv[t] = lens[t];
                qp[t] = q16[t];
                op[t] = out[t];
            }
            fams[f].run(&a, qp, op, scr);
            double max_err = 0;
            for (int t = 0; t < NQ; t++)
                for (int h = 0; h < G; h++) {
                    double s[MAXL], mx = -1e300, sum = 0, o[MAXD] = {0};
                    for (int p = 0; p < lens[t]; p++) {
                        const int slot = pages[p / PS] * PS + p % PS;
                        s[p] = 0;
                        for (int d = 0; d < D; d++)
                            s[p] += (double)hearth_f16_to_f32(q16[t][h * D + d]) *
                                    hearth_f16_to_f32(k[(slot * NKV + 1) * D + d]);
                        s[p] *= a.scale;
                        mx = fmax(mx, s[p]);
                    }
                    for (int p = 0; p < lens[t]; p++)
                        sum += (s[p] = exp(s[p] - mx));
                    for (int p = 0; p < lens[t]; p++) {
                        const int slot = pages[p / PS] * PS + p % PS;
                        for (int d = 0; d < D; d++)
                            o[d] += s[p] / sum * hearth_f16_to_f32(v[(slot * NKV + 1) * D + d]);
                    }
                    for (int d = 0; d < D; d++)
                        max_err = fmax(max_err, fabs(o[d] - out[t][h * D + d]));
                }
            CHECKF(max_err < 2e-5, "attention %s kernel (head %d, group %d): %g", fams[f].name, D, G,
                   max_err);
            int same = 1;
            for (int t = 0; t < NQ; t++) {
                hearth_attn_f16_args a1 = a;
                a1.n_q = 1;
                a1.n_kv[0] = lens[t];
                const uint16_t *qp1[1] = {q16[t]};
                float *op1[1] = {out1};
                fams[f].run(&a1, qp1, op1, scr);
                same &= memcmp(out1, out[t], sizeof(float) * G * D) == 0;
            }
            CHECKF(same, "attention %s kernel (head %d, group %d): each query alone equals the batch",
                   fams[f].name, D, G);
            free(scr);
        }
    }
}

/* The backend's F16 attention equals the kernel of the family the dispatch
 * level selects, bit for bit (one token, GQA 4:2, head 64). */
static void test_attn_wiring(const hearth_backend_ops *op, hearth_backend *be, uint64_t *seed) {
    const hearth_cpu_caps *caps = hearth_cpu_caps_get();
    const hearth_cpu_level lv = hearth_cpu_level_get();
    hearth_attn_f16_fn run = NULL;
    size_t (*scratch)(int, int) = NULL;
    const char *name = "none";
    if (lv >= HEARTH_CPU_AVX512 && caps->avx512vnni)
        run = hearth_attn_f16_avx512, scratch = hearth_attn_f16_avx512_scratch, name = "avx512";
    else if (lv >= HEARTH_CPU_AVX2)
        run = hearth_attn_f16_avx2, scratch = hearth_attn_f16_avx2_scratch, name = "avx2";
    if (!run) {
        printf("  (attention wiring: level scalar, no group kernel)\n");
        return;
    }
    enum { PS = 16, NP = 6, L = 83, NH = 4, NKV = 2, D = 64, G = NH / NKV };
    static uint16_t k[PS * NP * NKV * D], v[PS * NP * NKV * D], q16[G * D];
    static float q[NH * D], got[NH * D], want[G * D];
    int32_t pages[NP] = {3, 0, 5, 1, 4, 2}, kv_len = L, pt_off = 0;
    for (int i = 0; i < PS * NP * NKV * D; i++) {
        k[i] = hearth_f32_to_f16((float)urand(seed) * 2);
        v[i] = hearth_f32_to_f16((float)urand(seed));
    }
    for (int i = 0; i < NH * D; i++)
        q[i] = hearth_f16_to_f32(hearth_f32_to_f16((float)urand(seed) * 2));
    hearth_attn_meta m = {1, PS, &kv_len, &pt_off, pages, NP};
    hearth_tensor tq = hearth_tensor_2d(HEARTH_F32, NH * D, 1, q),
                  tk = hearth_tensor_2d(HEARTH_F16, NKV * D, PS * NP, k),
                  tv = hearth_tensor_2d(HEARTH_F16, NKV * D, PS * NP, v),
                  to = hearth_tensor_2d(HEARTH_F32, NH * D, 1, got);
    const float scale = 1.0f / sqrtf((float)D);
    op->attention(be, &tq, &tk, &tv, &m, NH, NKV, D, scale, &to);
    int same = 1;
    void *scr = malloc(scratch(G, D));
    REQUIRE(scr);
    for (int g = 0; g < NKV; g++) {
        for (int i = 0; i < G * D; i++)
            q16[i] = hearth_f32_to_f16(q[g * G * D + i]);
        hearth_attn_f16_args a = {D,
                                  G,
                                  1,
                                  PS,
                                  {L},
                                  pages,
                                  (const char *)(k + g * D),
                                  (const char *)(v + g * D),
                                  sizeof(uint16_t) * NKV * D,
                                  sizeof(uint16_t) * NKV * D,
                                  scale};
        const uint16_t *qp[1] = {q16};
        float *op1[1] = {want};
        run(&a, qp, op1, scr);
        same &= memcmp(want, got + g * G * D, sizeof want) == 0;
    }
    free(scr);
    CHECKF(same, "backend F16 attention is the %s group kernel, bit for bit", name);
}
#endif

int main(void) {
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    const hearth_backend_ops *op = be->ops;
    uint64_t seed = 7;

    /* ---- RoPE */
    enum { T = 5, H = 3, HD = 16 };
    float ff[HD / 2];
    for (int i = 0; i < HD / 2; i++)
        ff[i] = 1.0f + (float)i * 0.7f; /* Llama-3-like factors > 1 at low freq */
    struct {
        hearth_rope_mode mode;
        int n_rot;
        float base, scale;
        const float *ff;
        const char *name;
        float ext, temp; /* YaRN (orig context 64), attention temperature (floor 64) */
    } cases[] = {
        {HEARTH_ROPE_NORM, HD, 10000.f, 1.f, NULL, "llama", 0, 0},
        {HEARTH_ROPE_NEOX, HD, 1000000.f, 1.f, NULL, "neox, base 1e6", 0, 0},
        {HEARTH_ROPE_NORM, HD, 500000.f, 1.f, ff, "llama3 rope_freqs", 0, 0},
        {HEARTH_ROPE_NEOX, HD, 10000.f, 0.25f, NULL, "linear scaling x4", 0, 0},
        {HEARTH_ROPE_NEOX, HD / 2, 10000.f, 1.f, NULL, "partial rotation", 0, 0},
        {HEARTH_ROPE_NORM, HD, 10000.f, 1.f / 16, NULL, "yarn x16", 1, 0},
        {HEARTH_ROPE_NEOX, HD, 1000000.f, 1.f / 16, ff, "yarn x16 + factors + temperature", 1, 0.1f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float x[T * H * HD];
        double ref[T * H * HD];
        int32_t pos[T] = {0, 1, 7, 100, 3000};
        for (int i = 0; i < T * H * HD; i++)
            ref[i] = x[i] = (float)urand(&seed);
        hearth_tensor t = hearth_tensor_2d(HEARTH_F32, H * HD, T, x);
        hearth_rope_params p = {.mode = cases[c].mode,
                                .n_rot = cases[c].n_rot,
                                .head_dim = HD,
                                .freq_base = cases[c].base,
                                .freq_scale = cases[c].scale,
                                .freq_factors = cases[c].ff,
                                .attn_factor = cases[c].ext ? 1.2f : 1.0f,
                                .ext_factor = cases[c].ext,
                                .temp_scale = cases[c].temp,
                                .temp_floor = 64};
        if (cases[c].ext)
            hearth_rope_yarn_dims(cases[c].n_rot, 64, cases[c].base, 32.0f, 1.0f, &p.yarn_lo, &p.yarn_hi);
        op->rope(be, &t, H, pos, &p);
        double max_err = 0;
        for (int tk = 0; tk < T; tk++)
            for (int h = 0; h < H; h++) {
                double *v = ref + (tk * H + h) * HD;
                /* the correction range from its definition: the pairs whose
                 * wavelength 2 pi / freq covers the original context between
                 * beta_slow = 1 and beta_fast = 32 times */
                const double nr = cases[c].n_rot, lb = log(cases[c].base);
                const double lo = fmax(0, floor(nr * log(64 / (32 * 2 * M_PI)) / (2 * lb)));
                const double hi = fmin(nr - 1, ceil(nr * log(64 / (1 * 2 * M_PI)) / (2 * lb)));
                const double temp = 1 + cases[c].temp * log(1 + floor(pos[tk] / 64.0));
                rope_yarn_ref y = {cases[c].ext, lo, hi, (cases[c].ext ? 1.2 : 1.0) * temp};
                rope_ref(v, HD, cases[c].n_rot, pos[tk], cases[c].mode, cases[c].base, cases[c].scale,
                         cases[c].ff, &y);
                for (int d = 0; d < HD; d++) {
                    double e = fabs(v[d] - x[(tk * H + h) * HD + d]);
                    if (e > max_err) max_err = e;
                }
            }
        /* float32 theta at position 3000 carries ~3000 * 2^-24 rad of rounding */
        CHECKF(max_err < 2e-3, "rope %s: max error %g", cases[c].name, max_err);
    }

    /* ---- RMS norm, in place on a per-head view */
    {
        float x[4 * 32], w[32];
        double ref[4 * 32];
        for (int i = 0; i < 32; i++)
            w[i] = (float)(1 + 0.1 * urand(&seed));
        for (int i = 0; i < 4 * 32; i++)
            ref[i] = x[i] = (float)urand(&seed);
        hearth_tensor t = hearth_tensor_2d(HEARTH_F32, 32, 4, x), wt = hearth_tensor_2d(HEARTH_F32, 32, 1, w);
        op->rms_norm(be, &t, &wt, 1e-6f, &t);
        double max_err = 0;
        for (int r = 0; r < 4; r++) {
            double ss = 0;
            for (int i = 0; i < 32; i++)
                ss += ref[r * 32 + i] * ref[r * 32 + i];
            double sc = 1.0 / sqrt(ss / 32 + 1e-6);
            for (int i = 0; i < 32; i++)
                max_err = fmax(max_err, fabs(ref[r * 32 + i] * sc * w[i] - x[r * 32 + i]));
        }
        CHECKF(max_err < 1e-5, "rms_norm: %g", max_err);
    }

    /* ---- silu_mul and add */
    {
        float g[40], u[40], o[40];
        for (int i = 0; i < 40; i++) {
            g[i] = (float)(4 * urand(&seed));
            u[i] = (float)urand(&seed);
        }
        hearth_tensor tg = hearth_tensor_2d(HEARTH_F32, 20, 2, g),
                      tu = hearth_tensor_2d(HEARTH_F32, 20, 2, u),
                      to = hearth_tensor_2d(HEARTH_F32, 20, 2, o);
        op->silu_mul(be, &tg, &tu, &to);
        double max_err = 0;
        for (int i = 0; i < 40; i++)
            max_err = fmax(max_err, fabs(g[i] / (1 + exp(-g[i])) * u[i] - o[i]));
        CHECKF(max_err < 1e-6, "silu_mul: %g", max_err);
        op->add(be, &tg, &tu, &to);
        for (int i = 0; i < 40; i++)
            CHECK(o[i] == g[i] + u[i]);
    }

    /* ---- row-wise ops on a batch big enough to be split over the threads:
     * every row equals that row computed alone */
    {
        enum { R = 64, C = 1024 };
        static float x[R * C], y[R * C], w[C], o[R * C], o1[C];
        for (int i = 0; i < R * C; i++) {
            x[i] = (float)urand(&seed);
            y[i] = (float)urand(&seed);
        }
        for (int i = 0; i < C; i++)
            w[i] = (float)urand(&seed);
        hearth_tensor tx = hearth_tensor_2d(HEARTH_F32, C, R, x), ty = hearth_tensor_2d(HEARTH_F32, C, R, y),
                      tw = hearth_tensor_2d(HEARTH_F32, C, 1, w), to = hearth_tensor_2d(HEARTH_F32, C, R, o);
        int same[3] = {1, 1, 1};
        for (int k = 0; k < 3; k++) {
            if (k == 0) op->rms_norm(be, &tx, &tw, 1e-6f, &to);
            if (k == 1) op->add(be, &tx, &ty, &to);
            if (k == 2) op->silu_mul(be, &tx, &ty, &to);
            for (int r = 0; r < R; r += 7) {
                hearth_tensor x1 = hearth_tensor_2d(HEARTH_F32, C, 1, x + r * C),
                              y1 = hearth_tensor_2d(HEARTH_F32, C, 1, y + r * C),
                              t1 = hearth_tensor_2d(HEARTH_F32, C, 1, o1);
                if (k == 0) op->rms_norm(be, &x1, &tw, 1e-6f, &t1);
                if (k == 1) op->add(be, &x1, &y1, &t1);
                if (k == 2) op->silu_mul(be, &x1, &y1, &t1);
                same[k] &= memcmp(o1, o + r * C, sizeof o1) == 0;
            }
        }
        CHECKF(same[0] && same[1] && same[2],
               "batched rows equal single rows (rms_norm %d, add %d, silu_mul %d)", same[0], same[1],
               same[2]);
    }

    /* ---- paged attention (F32 pool, GQA 4:2, scrambled pages) vs softmax(QK^T)V */
    {
        enum { NH = 4, NKV = 2, D = 8, PS = 4, NP = 8, L = 13 };
        static float k[NP * PS * NKV * D], v[NP * PS * NKV * D], q[NH * D], out[NH * D];
        for (int i = 0; i < NP * PS * NKV * D; i++) {
            k[i] = (float)urand(&seed);
            v[i] = (float)urand(&seed);
        }
        for (int i = 0; i < NH * D; i++)
            q[i] = (float)urand(&seed);
        int32_t pages[4] = {6, 1, 3, 0}; /* positions 0..12 live in these pages */
        int32_t kv_len = L, pt_off = 0;
        hearth_attn_meta m = {1, PS, &kv_len, &pt_off, pages, 4};
        hearth_tensor tq = hearth_tensor_2d(HEARTH_F32, NH * D, 1, q),
                      tk = hearth_tensor_2d(HEARTH_F32, NKV * D, NP * PS, k),
                      tv = hearth_tensor_2d(HEARTH_F32, NKV * D, NP * PS, v),
                      to = hearth_tensor_2d(HEARTH_F32, NH * D, 1, out);
        float scale = 1.0f / sqrtf(D);
        op->attention(be, &tq, &tk, &tv, &m, NH, NKV, D, scale, &to);
        double max_err = 0;
        for (int h = 0; h < NH; h++) {
            int g = h / (NH / NKV);
            double s[L], mx = -1e300, sum = 0, o[D] = {0};
            for (int p = 0; p < L; p++) {
                int slot = pages[p / PS] * PS + p % PS;
                s[p] = 0;
                for (int d = 0; d < D; d++)
                    s[p] += (double)q[h * D + d] * k[(slot * NKV + g) * D + d];
                s[p] *= scale;
                mx = fmax(mx, s[p]);
            }
            for (int p = 0; p < L; p++)
                sum += (s[p] = exp(s[p] - mx));
            for (int p = 0; p < L; p++) {
                int slot = pages[p / PS] * PS + p % PS;
                for (int d = 0; d < D; d++)
                    o[d] += s[p] / sum * v[(slot * NKV + g) * D + d];
            }
            for (int d = 0; d < D; d++)
                max_err = fmax(max_err, fabs(o[d] - out[h * D + d]));
        }
        CHECKF(max_err < 1e-5, "attention: %g", max_err);
    }

    /* ---- paged attention, F16 pool (the AVX-512 group kernel where present):
     * head sizes 64 and 128, groups of 1, 4 and 7, 16-slot pages in scrambled
     * order, several tiles and a partial chunk; queries rounded to F16 as the
     * K dot format does, so the reference sees the same inputs */
    {
        enum { PS = 16, NP = 12, MAXL = PS * NP, MAXD = 128, MAXH = 8 };
        struct {
            int nh, nkv, d;
        } ac[] = {{4, 4, 64}, {8, 2, 64}, {7, 1, 64}, {4, 2, 128}, {2, 1, 32}};
        static uint16_t k[MAXL * 2 * MAXD], v[MAXL * 2 * MAXD];
        static float q[3 * MAXH * MAXD], out[3 * MAXH * MAXD];
        int32_t pages[NP] = {5, 11, 0, 7, 3, 9, 1, 10, 2, 8, 4, 6};
        for (size_t c = 0; c < sizeof ac / sizeof ac[0]; c++) {
            const int NH = ac[c].nh, NKV = ac[c].nkv, D = ac[c].d, G = NH / NKV;
            for (int i = 0; i < MAXL * NKV * D; i++) {
                k[i] = hearth_f32_to_f16((float)urand(&seed) * 2);
                v[i] = hearth_f32_to_f16((float)urand(&seed));
            }
            for (int i = 0; i < 3 * NH * D; i++)
                q[i] = hearth_f16_to_f32(hearth_f32_to_f16((float)urand(&seed) * 2));
            int32_t kv_len[3] = {1, 77, 150}, pt_off[3] = {0, 0, 0};
            hearth_attn_meta m = {3, PS, kv_len, pt_off, pages, NP};
            hearth_tensor tq = hearth_tensor_2d(HEARTH_F32, NH * D, 3, q),
                          tk = hearth_tensor_2d(HEARTH_F16, NKV * D, MAXL, k),
                          tv = hearth_tensor_2d(HEARTH_F16, NKV * D, MAXL, v),
                          to = hearth_tensor_2d(HEARTH_F32, NH * D, 3, out);
            float scale = 1.0f / sqrtf((float)D);
            op->attention(be, &tq, &tk, &tv, &m, NH, NKV, D, scale, &to);
            double max_err = 0;
            for (int t = 0; t < 3; t++)
                for (int h = 0; h < NH; h++) {
                    const int g = h / G, L = kv_len[t];
                    double s[MAXL], mx = -1e300, sum = 0, o[MAXD] = {0};
                    for (int p = 0; p < L; p++) {
                        int slot = pages[p / PS] * PS + p % PS;
                        s[p] = 0;
                        for (int d = 0; d < D; d++)
                            s[p] += (double)q[(t * NH + h) * D + d] *
                                    hearth_f16_to_f32(k[(slot * NKV + g) * D + d]);
                        s[p] *= scale;
                        mx = fmax(mx, s[p]);
                    }
                    for (int p = 0; p < L; p++)
                        sum += (s[p] = exp(s[p] - mx));
                    for (int p = 0; p < L; p++) {
                        int slot = pages[p / PS] * PS + p % PS;
                        for (int d = 0; d < D; d++)
                            o[d] += s[p] / sum * hearth_f16_to_f32(v[(slot * NKV + g) * D + d]);
                    }
                    for (int d = 0; d < D; d++)
                        max_err = fmax(max_err, fabs(o[d] - out[(t * NH + h) * D + d]));
                }
            CHECKF(max_err < 2e-5, "attention f16 (%d heads, %d kv, head %d): %g", NH, NKV, D, max_err);
            /* each token alone gives the same bits as in the batch */
            int same = 1;
            for (int t = 0; t < 3; t++) {
                static float out1[MAXH * MAXD];
                hearth_attn_meta m1 = {1, PS, &kv_len[t], pt_off, pages, NP};
                hearth_tensor tq1 = hearth_tensor_2d(HEARTH_F32, NH * D, 1, q + (size_t)t * NH * D),
                              to1 = hearth_tensor_2d(HEARTH_F32, NH * D, 1, out1);
                op->attention(be, &tq1, &tk, &tv, &m1, NH, NKV, D, scale, &to1);
                same &= memcmp(out1, out + (size_t)t * NH * D, sizeof(float) * NH * D) == 0;
            }
            CHECKF(same, "attention f16 (%d heads, %d kv, head %d): a token alone equals it batched", NH, NKV,
                   D);
        }
    }
    /* ---- matmul_multi: several projections of one input in one dispatch give
     * exactly the outputs of one matmul each (Q/K/V-like sizes, a bias on
     * some, 1, 7 and 64 tokens); mixed weight types fall back to one each */
    {
        enum { K = 96, TOK = 64 };
        const int rows[3] = {40, 24, 24};
        static float xin[TOK * K], wf[40 * K], bias[40], got[3][TOK * 40], want[3][TOK * 40];
        static uint8_t wq[3][40 * K * 2];
        for (int i = 0; i < TOK * K; i++)
            xin[i] = (float)urand(&seed) * 2 - 1;
        for (int i = 0; i < 40; i++)
            bias[i] = (float)urand(&seed);
        const hearth_dtype types[2][3] = {{HEARTH_Q8_0, HEARTH_Q8_0, HEARTH_Q8_0},
                                          {HEARTH_Q4_0, HEARTH_F16, HEARTH_Q8_0}};
        for (int tc = 0; tc < 2; tc++) {
            hearth_tensor w[3], bt = hearth_tensor_2d(HEARTH_F32, 40, 1, bias), o[3];
            for (int m = 0; m < 3; m++) {
                for (int i = 0; i < rows[m] * K; i++)
                    wf[i] = (float)urand(&seed) * 2 - 1;
                hearth_dtype t = types[tc][m];
                size_t rs = hearth_dtype_row_size(t, K);
                for (int r = 0; r < rows[m]; r++)
                    hearth_dtype_info(t)->from_float(wf + r * K, wq[m] + r * rs, K);
                w[m] = hearth_tensor_2d(t, K, rows[m], wq[m]);
            }
            const int ntok[3] = {1, 7, TOK};
            for (int nt = 0; nt < 3; nt++) {
                hearth_tensor x = hearth_tensor_2d(HEARTH_F32, K, ntok[nt], xin);
                const hearth_tensor *wp[3] = {&w[0], &w[1], &w[2]};
                hearth_tensor bsub = bt;
                bsub.ne0 = rows[1];
                const hearth_tensor *bp[3] = {&bt, &bsub, NULL};
                hearth_tensor *op3[3];
                for (int m = 0; m < 3; m++) {
                    o[m] = hearth_tensor_2d(HEARTH_F32, rows[m], ntok[nt], want[m]);
                    op->matmul(be, &w[m], &x, bp[m], &o[m]);
                    o[m].data = got[m];
                    memset(got[m], 0xff, sizeof got[m]); /* NaN poison */
                    op3[m] = &o[m];
                }
                REQUIRE(op->matmul_multi);
                op->matmul_multi(be, 3, wp, &x, bp, op3);
                bool same = true;
                for (int m = 0; m < 3; m++)
                    same &= !memcmp(got[m], want[m], sizeof(float) * (size_t)rows[m] * (size_t)ntok[nt]);
                CHECKF(same, "matmul_multi (%s weights, %d tokens) equals one matmul each",
                       tc ? "mixed" : "q8_0", ntok[nt]);
            }
        }
    }
#if defined(__x86_64__)
    test_attn_kernels(&seed);
    test_attn_wiring(op, be, &seed);
#endif
    hearth_backend_free(be);
    return test_summary("cpu_ops");
}
