/*
 * test_gemma_ops.c - the CPU backend's ops for Gemma 2/3 against direct
 * float64 formulas: gelu_mul (GeGLU, the tanh GELU times up), scale_cap
 * (plain scaling, and cap * tanh(s x / cap) soft-capping) at odd row lengths
 * (1, 7, 8, 9, 33, 320, 1001), one row and many (the thread-pool split), in
 * place and not; the AVX2 kernels called directly where the CPU has AVX2;
 * and attention_ext: causal attention with a sliding window (1, 3, 8, 64 and
 * 100 positions, over sequences of 1 to 130 tokens, so windows both shorter
 * and longer than a 64-key tile) and score soft-capping, alone and together,
 * with GQA (4 query heads on 2 KV heads), equal to softmax over the window's
 * keys of the capped scores; with neither option it gives exactly what
 * `attention` gives. The whole test runs again in a child with
 * HEARTH_CPU_ISA=scalar so the scalar paths are checked too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "test.h"
#include "scalar_child.h"
#if defined(__x86_64__)
#include "backends/cpu/cpu_attn.h"
#include "backends/cpu/cpu_features.h"
#endif

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)));
}

static const int k_lens[] = {1, 7, 8, 9, 33, 320, 1001};

static void test_gelu_mul(hearth_backend *be, uint64_t *seed) {
    for (size_t a = 0; a < sizeof k_lens / sizeof k_lens[0]; a++)
        for (int rows = 1; rows <= 65; rows += 64)
            for (int in_place = 0; in_place < 2; in_place++) {
                const int n = k_lens[a], N = n * rows;
                float *g = malloc(sizeof(float) * (size_t)N), *u = malloc(sizeof(float) * (size_t)N),
                      *o = malloc(sizeof(float) * (size_t)N);
                double *want = malloc(sizeof(double) * (size_t)N);
                for (int i = 0; i < N; i++) {
                    g[i] = i % 17 == 5 ? (float)(urand(seed) * 60) : (float)(urand(seed) * 4);
                    u[i] = (float)(urand(seed) * 2);
                    want[i] = gelu_ref(g[i]) * u[i];
                }
                hearth_tensor tg = hearth_tensor_2d(HEARTH_F32, n, rows, g),
                              tu = hearth_tensor_2d(HEARTH_F32, n, rows, u),
                              to = hearth_tensor_2d(HEARTH_F32, n, rows, o);
                be->ops->gelu_mul(be, &tg, &tu, in_place ? &tg : &to);
                const float *got = in_place ? g : o;
                double err = 0;
                for (int i = 0; i < N; i++)
                    err = fmax(err, fabs(got[i] - want[i]) / (1 + fabs(want[i])));
                CHECKF(err < 3e-6, "gelu_mul n=%d rows=%d in_place=%d: max relative error %g", n, rows,
                       in_place, err);
                free(g);
                free(u);
                free(o);
                free(want);
            }
}

static void test_scale_cap(hearth_backend *be, uint64_t *seed) {
    const float caps[] = {0.0f, 0.3f, 30.0f}, scales[] = {1.0f, 11.3137f};
    for (size_t a = 0; a < sizeof k_lens / sizeof k_lens[0]; a++)
        for (size_t c = 0; c < 3; c++)
            for (size_t sc = 0; sc < 2; sc++)
                for (int rows = 1; rows <= 65; rows += 64) {
                    const int n = k_lens[a], N = n * rows;
                    const float cap = caps[c], s = scales[sc];
                    float *x = malloc(sizeof(float) * (size_t)N), *o = malloc(sizeof(float) * (size_t)N);
                    double *want = malloc(sizeof(double) * (size_t)N);
                    for (int i = 0; i < N; i++) {
                        x[i] = i % 13 == 3 ? (float)(urand(seed) * 200) : (float)(urand(seed) * 3);
                        want[i] = cap > 0 ? cap * tanh((double)s * x[i] / cap) : (double)s * x[i];
                    }
                    hearth_tensor tx = hearth_tensor_2d(HEARTH_F32, n, rows, x),
                                  to = hearth_tensor_2d(HEARTH_F32, n, rows, o);
                    const bool in_place = rows > 1;
                    be->ops->scale_cap(be, &tx, s, cap, in_place ? &tx : &to);
                    const float *got = in_place ? x : o;
                    double err = 0, limit = cap > 0 ? 1e-6 * cap : 0;
                    for (int i = 0; i < N; i++) {
                        err = fmax(err, fabs(got[i] - want[i]) - (cap > 0 ? 0 : 1e-7 * fabs(want[i])));
                        if (cap > 0)
                            CHECKF(fabs(got[i]) <= cap, "scale_cap: |%g| over the cap %g", got[i], cap);
                    }
                    CHECKF(err <= limit, "scale_cap n=%d rows=%d s=%g cap=%g: max error %g (limit %g)", n,
                           rows, s, cap, err, limit);
                    free(x);
                    free(o);
                    free(want);
                }
#if defined(__x86_64__)
    const hearth_cpu_caps *cc = hearth_cpu_caps_get();
    if (!(cc->avx2 && cc->fma && cc->f16c)) {
        printf("  (gemma avx2 kernels: CPU lacks the ISA, not run)\n");
        return;
    }
    float x[203], u[203], o[203];
    double e1 = 0, e2 = 0;
    for (int i = 0; i < 203; i++) {
        x[i] = (float)(-12 + 24.0 * i / 202);
        u[i] = (float)(1 - 2.0 * i / 202);
    }
    for (int n = 0; n <= 203; n += 29) {
        hearth_gelu_mul_avx2(n, o, x, u);
        for (int i = 0; i < n; i++)
            e1 = fmax(e1, fabs(o[i] - gelu_ref(x[i]) * u[i]) / (1 + fabs(gelu_ref(x[i]) * u[i])));
        hearth_softcap_avx2(n, o, x, 2.0f, 5.0f);
        for (int i = 0; i < n; i++)
            e2 = fmax(e2, fabs(o[i] - 5.0 * tanh(2.0 * x[i] / 5.0)));
    }
    CHECKF(e1 < 3e-6, "hearth_gelu_mul_avx2 direct: max relative error %g", e1);
    CHECKF(e2 < 5e-6, "hearth_softcap_avx2 direct: max error %g (cap 5)", e2);
#endif
}

/* Causal attention over sequences packed in one call (page size 1: the K/V
 * activations are the pool), with attention_ext's options. */
static void test_attention_ext(hearth_backend *be, uint64_t *seed) {
    enum { H = 4, HKV = 2, D = 40, NSEQ = 4 };
    const int lens[NSEQ] = {5, 1, 70, 130};
    int n = 0, start[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        start[s] = n;
        n += lens[s];
    }
    const int W = H * D, WK = HKV * D;
    float *q = malloc(sizeof(float) * (size_t)n * W), *k = malloc(sizeof(float) * (size_t)n * WK),
          *v = malloc(sizeof(float) * (size_t)n * WK), *o = malloc(sizeof(float) * (size_t)n * W),
          *o2 = malloc(sizeof(float) * (size_t)n * W);
    int32_t *kv_len = malloc(sizeof(int32_t) * (size_t)n), *pt_off = malloc(sizeof(int32_t) * (size_t)n),
            *pt = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n * W; i++)
        q[i] = (float)(urand(seed) * 2);
    for (int i = 0; i < n * WK; i++) {
        k[i] = (float)(urand(seed) * 2);
        v[i] = (float)urand(seed);
    }
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < lens[s]; t++) {
            kv_len[start[s] + t] = t + 1; /* causal: position t sees 0..t */
            pt_off[start[s] + t] = start[s];
        }
    for (int i = 0; i < n; i++)
        pt[i] = i;
    hearth_tensor tq = hearth_tensor_2d(HEARTH_F32, W, n, q), tk = hearth_tensor_2d(HEARTH_F32, WK, n, k),
                  tv = hearth_tensor_2d(HEARTH_F32, WK, n, v), to = hearth_tensor_2d(HEARTH_F32, W, n, o),
                  to2 = hearth_tensor_2d(HEARTH_F32, W, n, o2);
    const hearth_attn_meta meta = {n, 1, kv_len, pt_off, pt, n};
    const float scale = 1.0f / sqrtf((float)D);
    const hearth_attn_opts none = {0, 0};
    be->ops->attention(be, &tq, &tk, &tv, &meta, H, HKV, D, scale, &to);
    be->ops->attention_ext(be, &tq, &tk, &tv, &meta, H, HKV, D, scale, &none, &to2);
    CHECK(memcmp(o, o2, sizeof(float) * (size_t)n * W) == 0); /* no options: the same op */
    const int windows[] = {0, 1, 3, 8, 64, 100};
    const float caps[] = {0.0f, 0.5f};
    for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++)
        for (int ci = 0; ci < 2; ci++) {
            const hearth_attn_opts ao = {windows[wi], caps[ci]};
            if (!ao.window && !ao.softcap) continue;
            be->ops->attention_ext(be, &tq, &tk, &tv, &meta, H, HKV, D, scale, &ao, &to);
            double err = 0;
            for (int s = 0; s < NSEQ; s++)
                for (int t = 0; t < lens[s]; t++) {
                    const int row = start[s] + t,
                              first = ao.window > 0 && t + 1 > ao.window ? t + 1 - ao.window : 0;
                    for (int h = 0; h < H; h++) {
                        const int g = h / (H / HKV);
                        double sc[130], mx = -1e300, sum = 0;
                        for (int j = first; j <= t; j++) {
                            double d = 0;
                            for (int c = 0; c < D; c++)
                                d += (double)q[row * W + h * D + c] * k[(start[s] + j) * WK + g * D + c];
                            d *= scale;
                            if (ao.softcap > 0) d = ao.softcap * tanh(d / ao.softcap);
                            sc[j] = d;
                            mx = fmax(mx, d);
                        }
                        for (int j = first; j <= t; j++)
                            sum += (sc[j] = exp(sc[j] - mx));
                        for (int c = 0; c < D; c++) {
                            double want = 0;
                            for (int j = first; j <= t; j++)
                                want += sc[j] / sum * v[(start[s] + j) * WK + g * D + c];
                            err = fmax(err, fabs(o[row * W + h * D + c] - want));
                        }
                    }
                }
            CHECKF(err < 2e-5, "attention_ext window %d softcap %g: max error %g", ao.window, ao.softcap,
                   err);
        }
    free(q);
    free(k);
    free(v);
    free(o);
    free(o2);
    free(kv_len);
    free(pt_off);
    free(pt);
}

static int run_all(void) {
    hearth_error err = {0};
    uint64_t seed = 777;
    for (int threads = 1; threads <= 2; threads++) {
        hearth_backend *be = hearth_cpu_backend_create(threads, &err);
        REQUIRE(be != NULL);
        REQUIRE(be->ops->gelu_mul && be->ops->scale_cap && be->ops->attention_ext);
        test_gelu_mul(be, &seed);
        test_scale_cap(be, &seed);
        test_attention_ext(be, &seed);
        hearth_backend_free(be);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--scalar-child")) {
        run_all();
        return test_summary("test_gemma_ops (HEARTH_CPU_ISA=scalar)");
    }
    run_all();
    test_scalar_override(argv[0]);
    return test_summary("test_gemma_ops");
}
