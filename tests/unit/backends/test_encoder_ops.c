/*
 * test_encoder_ops.c - the CPU backend's encoder ops (layer_norm, gelu) and
 * the bidirectional use of its attention op, against direct float64 formulas:
 * odd row lengths (1, 7, 33, 320, 1001) and row counts, in place (out = x)
 * and not, with and without the LayerNorm bias, many rows (the thread-pool
 * split) and a few (inline). GELU in the tanh form at the AVX2 kernel's
 * widths and tails, called directly where the CPU has AVX2 and through the
 * backend; the whole test runs again in a child with HEARTH_CPU_ISA=scalar so
 * the scalar path is checked too. Attention: the K/V activations used as a
 * "pool" with page size 1 and every token seeing its whole sequence (what
 * runtime/model/forward_encoder.c does) equals softmax(q k^T) v over the
 * sequence, in both directions, for sequences of different lengths in one
 * call.
 */
#include <stdlib.h>

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

static void test_layer_norm(hearth_backend *be, uint64_t *seed) {
    const int lens[] = {1, 7, 33, 320, 1001}, rows_n[] = {1, 3, 97};
    for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
        for (size_t b = 0; b < sizeof rows_n / sizeof rows_n[0]; b++)
            for (int variant = 0; variant < 4; variant++) { /* bit 0: bias, bit 1: in place */
                const int n = lens[a], r = rows_n[b];
                float *x = malloc(sizeof(float) * (size_t)n * (size_t)r),
                      *o = malloc(sizeof(float) * (size_t)n * (size_t)r);
                float *w = malloc(sizeof(float) * (size_t)n), *bs = malloc(sizeof(float) * (size_t)n);
                double *want = malloc(sizeof(double) * (size_t)n * (size_t)r);
                for (int i = 0; i < n * r; i++)
                    x[i] = (float)(urand(seed) * 3 + 0.5);
                for (int i = 0; i < n; i++) {
                    w[i] = (float)(1 + 0.3 * urand(seed));
                    bs[i] = (float)(0.2 * urand(seed));
                }
                const bool bias = variant & 1, in_place = variant & 2;
                for (int t = 0; t < r; t++) {
                    double mean = 0, var = 0;
                    for (int i = 0; i < n; i++)
                        mean += x[t * n + i];
                    mean /= n;
                    for (int i = 0; i < n; i++)
                        var += (x[t * n + i] - mean) * (x[t * n + i] - mean);
                    var /= n;
                    for (int i = 0; i < n; i++)
                        want[t * n + i] =
                            (x[t * n + i] - mean) / sqrt(var + 1e-5) * w[i] + (bias ? bs[i] : 0);
                }
                hearth_tensor tx = hearth_tensor_2d(HEARTH_F32, n, r, x),
                              tw = hearth_tensor_2d(HEARTH_F32, n, 1, w),
                              tb = hearth_tensor_2d(HEARTH_F32, n, 1, bs),
                              to = hearth_tensor_2d(HEARTH_F32, n, r, o);
                be->ops->layer_norm(be, &tx, &tw, bias ? &tb : NULL, 1e-5f, in_place ? &tx : &to);
                const float *got = in_place ? x : o;
                double err = 0;
                for (int i = 0; i < n * r; i++)
                    err = fmax(err, fabs(got[i] - want[i]));
                CHECKF(err < 2e-5, "layer_norm n=%d rows=%d variant %d: max error %g", n, r, variant, err);
                free(x);
                free(o);
                free(w);
                free(bs);
                free(want);
            }
}

static void test_gelu(hearth_backend *be, uint64_t *seed) {
    const int lens[] = {1, 7, 8, 9, 33, 320, 1001};
    for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
        for (int rows = 1; rows <= 65; rows += 64)
            for (int in_place = 0; in_place < 2; in_place++) {
                const int n = lens[a];
                float *x = malloc(sizeof(float) * (size_t)n * (size_t)rows),
                      *o = malloc(sizeof(float) * (size_t)n * (size_t)rows);
                double *want = malloc(sizeof(double) * (size_t)n * (size_t)rows);
                for (int i = 0; i < n * rows; i++) {
                    /* mostly |x| < 4, a few far out (tails of the exp), exact 0 */
                    x[i] = i % 17 == 5   ? (float)(urand(seed) * 60)
                           : i % 23 == 0 ? 0.0f
                                         : (float)(urand(seed) * 4);
                    want[i] = gelu_ref(x[i]);
                }
                hearth_tensor tx = hearth_tensor_2d(HEARTH_F32, n, rows, x),
                              to = hearth_tensor_2d(HEARTH_F32, n, rows, o);
                be->ops->gelu(be, &tx, in_place ? &tx : &to);
                const float *got = in_place ? x : o;
                double err = 0;
                for (int i = 0; i < n * rows; i++)
                    err = fmax(err, fabs(got[i] - want[i]) / (1 + fabs(want[i])));
                CHECKF(err < 2e-6, "gelu n=%d rows=%d in_place=%d: max relative error %g", n, rows, in_place,
                       err);
                free(x);
                free(o);
                free(want);
            }
#if defined(__x86_64__)
    const hearth_cpu_caps *caps = hearth_cpu_caps_get();
    if (!(caps->avx2 && caps->fma && caps->f16c)) {
        printf("  (gelu avx2 kernel: CPU lacks the ISA, not run)\n");
        return;
    }
    float x[203], o[203];
    double err = 0;
    for (int i = 0; i < 203; i++)
        x[i] = (float)(-12 + 24.0 * i / 202);
    for (int n = 0; n <= 203; n += 29) {
        hearth_gelu_avx2(n, o, x);
        for (int i = 0; i < n; i++)
            err = fmax(err, fabs(o[i] - gelu_ref(x[i])) / (1 + fabs(gelu_ref(x[i]))));
    }
    CHECKF(err < 2e-6, "hearth_gelu_avx2 direct: max relative error %g", err);
#endif
}

/* Bidirectional attention through the paged op: K/V activations as the pool. */
static void test_bidirectional_attention(hearth_backend *be, uint64_t *seed) {
    enum { H = 3, D = 32, NSEQ = 3 };
    const int lens[NSEQ] = {5, 1, 70}; /* 70 > one 64-key tile */
    int n = 0, start[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        start[s] = n;
        n += lens[s];
    }
    const int W = H * D;
    float *q = malloc(sizeof(float) * (size_t)n * W), *k = malloc(sizeof(float) * (size_t)n * W),
          *v = malloc(sizeof(float) * (size_t)n * W), *o = malloc(sizeof(float) * (size_t)n * W);
    int32_t *kv_len = malloc(sizeof(int32_t) * (size_t)n), *pt_off = malloc(sizeof(int32_t) * (size_t)n),
            *pt = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n * W; i++) {
        q[i] = (float)urand(seed);
        k[i] = (float)urand(seed);
        v[i] = (float)urand(seed);
    }
    for (int s = 0; s < NSEQ; s++)
        for (int t = 0; t < lens[s]; t++) {
            kv_len[start[s] + t] = lens[s];
            pt_off[start[s] + t] = start[s];
        }
    for (int i = 0; i < n; i++)
        pt[i] = i;
    hearth_tensor tq = hearth_tensor_2d(HEARTH_F32, W, n, q), tk = hearth_tensor_2d(HEARTH_F32, W, n, k),
                  tv = hearth_tensor_2d(HEARTH_F32, W, n, v), to = hearth_tensor_2d(HEARTH_F32, W, n, o);
    const hearth_attn_meta meta = {n, 1, kv_len, pt_off, pt, n};
    const float scale = 1.0f / sqrtf((float)D);
    be->ops->attention(be, &tq, &tk, &tv, &meta, H, H, D, scale, &to);
    double err = 0;
    for (int s = 0; s < NSEQ; s++)
        for (int t = start[s]; t < start[s] + lens[s]; t++)
            for (int h = 0; h < H; h++) {
                double sc[70], mx = -1e300, sum = 0;
                for (int j = 0; j < lens[s]; j++) {
                    double d = 0;
                    for (int c = 0; c < D; c++)
                        d += (double)q[t * W + h * D + c] * k[(start[s] + j) * W + h * D + c];
                    sc[j] = d * scale;
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j < lens[s]; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (int c = 0; c < D; c++) {
                    double want = 0;
                    for (int j = 0; j < lens[s]; j++)
                        want += sc[j] / sum * v[(start[s] + j) * W + h * D + c];
                    err = fmax(err, fabs(o[t * W + h * D + c] - want));
                }
            }
    CHECKF(err < 1e-5, "bidirectional attention: max error %g", err);
    free(q);
    free(k);
    free(v);
    free(o);
    free(kv_len);
    free(pt_off);
    free(pt);
}

static int run_all(void) {
    hearth_error err = {0};
    uint64_t seed = 12345;
    for (int threads = 1; threads <= 2; threads++) {
        hearth_backend *be = hearth_cpu_backend_create(threads, &err);
        REQUIRE(be != NULL);
        REQUIRE(be->ops->layer_norm && be->ops->gelu);
        test_layer_norm(be, &seed);
        test_gelu(be, &seed);
        test_bidirectional_attention(be, &seed);
        hearth_backend_free(be);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--scalar-child")) {
        run_all();
        return test_summary("test_encoder_ops (HEARTH_CPU_ISA=scalar)");
    }
    run_all();
    test_scalar_override(argv[0]);
    return test_summary("test_encoder_ops");
}
