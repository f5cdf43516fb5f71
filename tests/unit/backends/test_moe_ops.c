/*
 * test_moe_ops.c - the CPU backend's mixture-of-experts ops against direct
 * formulas, at odd sizes (1, 4, 19 tokens; 1, 5, 8, 128 experts; k = 1, 2,
 * 3 and all; rows of 7, 9 and 11), 1 and 2 threads:
 *   - moe_route: ids are the k largest softmax probabilities (the lower
 *     index first on a tie: all-equal logits give 0..k-1), weights those
 *     probabilities in float64 within 1e-6, renormalised or not;
 *   - moe_matmul: every slot's row equal, bit for bit, to a plain matmul of
 *     that slot's input with its expert's matrix (F32, F16, Q8_0, Q4_0,
 *     Q4_K, Q6_K experts; one and two weights; input per token or per
 *     slot), F32 also within 1e-5 of a float64 dot; the matmul count in the
 *     profile is the number of distinct experts chosen (each expert's
 *     weights read once per call), and an expert nobody chose is not read;
 *   - moe_combine: the weighted sum of each token's k rows within 1e-6.
 * The whole test runs again in a child with HEARTH_CPU_ISA=scalar.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "core/dtype.h"
#include "scalar_child.h"
#include "test.h"

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

static float *rand_f32(uint64_t *seed, size_t n, double scale) {
    float *x = malloc(n * sizeof *x);
    REQUIRE(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * urand(seed));
    return x;
}

/* float64 reference of moe_route for one row */
static void route_ref(const float *l, int ne, int k, bool norm, int *ids, double *w) {
    double mx = -INFINITY, sum = 0;
    double *p = malloc((size_t)ne * sizeof *p);
    REQUIRE(p);
    for (int i = 0; i < ne; i++)
        if (l[i] > mx) mx = l[i];
    for (int i = 0; i < ne; i++)
        sum += (p[i] = exp(l[i] - mx));
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < ne; i++) {
            bool taken = false;
            for (int q = 0; q < j; q++)
                taken |= ids[q] == i;
            if (!taken && (best < 0 || p[i] > p[best])) best = i;
        }
        ids[j] = best;
        w[j] = p[best] / sum;
    }
    if (norm) {
        double s = 0;
        for (int j = 0; j < k; j++)
            s += w[j];
        for (int j = 0; j < k; j++)
            w[j] /= s;
    }
    free(p);
}

static void test_route(hearth_backend *be, uint64_t *seed) {
    static const int experts[] = {1, 5, 8, 128}, toks[] = {1, 4, 19};
    int n_cases = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++)
            for (int kk = 0; kk < 4; kk++) {
                const int ne = experts[a], n = toks[b];
                const int k = kk == 3 ? ne : kk + 1 < ne ? kk + 1 : ne;
                for (int norm = 0; norm < 2; norm++) {
                    float *l = rand_f32(seed, (size_t)ne * n, 3.0);
                    if (b == 0) /* one all-equal row: ties go to the lower index */
                        for (int i = 0; i < ne; i++)
                            l[i] = 0.25f;
                    float *w = malloc((size_t)n * k * sizeof *w);
                    int32_t *ids = malloc((size_t)n * k * sizeof *ids);
                    REQUIRE(w && ids);
                    hearth_tensor lt = hearth_tensor_2d(HEARTH_F32, ne, n, l),
                                  wt = hearth_tensor_2d(HEARTH_F32, k, n, w);
                    be->ops->moe_route(be, &lt, k, norm, ids, &wt);
                    for (int t = 0; t < n; t++) {
                        int rid[128];
                        double rw[128];
                        route_ref(l + (size_t)t * ne, ne, k, norm, rid, rw);
                        for (int j = 0; j < k; j++) {
                            CHECKF(ids[t * k + j] == rid[j],
                                   "route ne %d n %d k %d: token %d choice %d: %d, want %d", ne, n, k, t, j,
                                   ids[t * k + j], rid[j]);
                            CHECKF(fabs(w[t * k + j] - rw[j]) <= 1e-6, "route weight %.9g, want %.9g",
                                   w[t * k + j], rw[j]);
                        }
                    }
                    if (b == 0)
                        for (int j = 0; j < k; j++)
                            CHECKF(ids[j] == j, "tie: choice %d is %d", j, ids[j]);
                    n_cases++;
                    free(l);
                    free(w);
                    free(ids);
                }
            }
    printf("  moe_route: %d cases (1..128 experts, k 1..all, ties to the lower index)\n", n_cases);
}

/* Stacked experts [K, ne * R] of type t from random floats; *f32 keeps the floats. */
static void *make_experts(uint64_t *seed, hearth_dtype t, int64_t K, int64_t rows, float **f32) {
    float *src = rand_f32(seed, (size_t)(K * rows), 0.5);
    size_t rs = hearth_dtype_row_size(t, K);
    char *q = malloc(rs * (size_t)rows);
    REQUIRE(q);
    for (int64_t r = 0; r < rows; r++)
        REQUIRE(hearth_quantize_row(t, src + r * K, q + (size_t)r * rs, K));
    *f32 = src;
    return q;
}

static void test_matmul_type(hearth_backend *be, uint64_t *seed, hearth_dtype t, int n, int ne, int k,
                             bool per_slot, int n_w) {
    const int64_t K = hearth_dtype_info(t)->block_size >= 256 ? 256 : 96;
    const int64_t R[2] = {7, 11};
    const int slots = n * k;
    float *wf[2] = {NULL, NULL};
    void *wq[2] = {NULL, NULL};
    hearth_tensor w[2];
    const hearth_tensor *wp[2];
    for (int i = 0; i < n_w; i++) {
        wq[i] = make_experts(seed, t, K, ne * R[i], &wf[i]);
        w[i] = hearth_tensor_2d(t, K, ne * R[i], wq[i]);
        wp[i] = &w[i];
    }
    const int xrows = per_slot ? slots : n;
    float *x = rand_f32(seed, (size_t)(xrows * K), 1.0);
    hearth_tensor xt = hearth_tensor_2d(HEARTH_F32, K, xrows, x);
    /* ids: random, but expert ne-1 never chosen (when ne > k) */
    int32_t *ids = malloc((size_t)slots * sizeof *ids);
    REQUIRE(ids);
    const int pool = ne > k ? ne - 1 : ne;
    bool used[128] = {false};
    for (int tk = 0; tk < n; tk++)
        for (int j = 0; j < k; j++) {
            int e;
            bool dup;
            do { /* distinct experts per token, as routing gives */
                e = (int)((urand(seed) + 1) * 0.5 * pool) % pool;
                dup = false;
                for (int q = 0; q < j; q++)
                    dup |= ids[tk * k + q] == e;
            } while (dup);
            ids[tk * k + j] = e;
            used[e] = true;
        }
    int distinct = 0;
    for (int e = 0; e < ne; e++)
        distinct += used[e];
    float *out[2];
    hearth_tensor ot[2];
    hearth_tensor *op[2];
    for (int i = 0; i < n_w; i++) {
        out[i] = calloc((size_t)(slots * R[i]), sizeof(float));
        REQUIRE(out[i]);
        ot[i] = hearth_tensor_2d(HEARTH_F32, R[i], slots, out[i]);
        op[i] = &ot[i];
    }
    be->profile = true;
    const uint64_t before = be->op_count[HEARTH_OP_MATMUL];
    be->ops->moe_matmul(be, n_w, wp, &xt, ids, k, op);
    const uint64_t calls = be->op_count[HEARTH_OP_MATMUL] - before;
    be->profile = false;
    /* one matmul (or matmul_multi) per distinct expert: each expert read once */
    const uint64_t want_calls = (uint64_t)distinct * (n_w == 2 && be->ops->matmul_multi ? 1 : (uint64_t)n_w);
    CHECKF(calls == want_calls, "%s: %llu matmul calls for %d distinct experts", hearth_dtype_name(t),
           (unsigned long long)calls, distinct);
    int bad = 0;
    double worst = 0;
    for (int s = 0; s < slots; s++) {
        const float *xs = x + (size_t)(per_slot ? s : s / k) * K;
        hearth_tensor x1 = hearth_tensor_2d(HEARTH_F32, K, 1, (void *)xs);
        for (int i = 0; i < n_w; i++) {
            float ref[11];
            hearth_tensor we = w[i];
            we.data = (char *)w[i].data + (size_t)(ids[s] * R[i]) * w[i].nb1;
            we.ne1 = R[i];
            hearth_tensor r1 = hearth_tensor_2d(HEARTH_F32, R[i], 1, ref);
            be->ops->matmul(be, &we, &x1, NULL, &r1);
            if (memcmp(ref, out[i] + (size_t)s * R[i], (size_t)R[i] * sizeof(float))) bad++;
            if (t == HEARTH_F32)
                for (int r = 0; r < R[i]; r++) {
                    double d = 0;
                    const float *wr = wf[i] + (size_t)(ids[s] * R[i] + r) * K;
                    for (int64_t c = 0; c < K; c++)
                        d += (double)wr[c] * xs[c];
                    double e = fabs(d - out[i][(size_t)s * R[i] + r]);
                    if (e > worst) worst = e;
                }
        }
    }
    CHECKF(bad == 0, "%s n %d ne %d k %d per_slot %d n_w %d: %d rows differ from a plain matmul",
           hearth_dtype_name(t), n, ne, k, per_slot, n_w, bad);
    CHECKF(worst <= 1e-5, "%s: %.3g from the float64 dot", hearth_dtype_name(t), worst);
    for (int i = 0; i < n_w; i++) {
        free(wf[i]);
        free(wq[i]);
        free(out[i]);
    }
    free(x);
    free(ids);
}

static void test_matmul(hearth_backend *be, uint64_t *seed) {
    static const hearth_dtype types[] = {HEARTH_F32,  HEARTH_F16,  HEARTH_Q8_0,
                                         HEARTH_Q4_0, HEARTH_Q4_K, HEARTH_Q6_K};
    int n_cases = 0;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int n = 1; n <= 19; n += n == 1 ? 3 : 15) /* 1, 4, 19 */
            for (int cfg = 0; cfg < 3; cfg++) {
                const int ne = cfg == 0 ? 1 : cfg == 1 ? 5 : 8, k = cfg == 0 ? 1 : cfg == 1 ? 3 : 2;
                for (int mode = 0; mode < 3; mode++) { /* gate+up on tokens, one weight on tokens, per slot */
                    test_matmul_type(be, seed, types[ti], n, ne, k, mode == 2, mode == 0 ? 2 : 1);
                    n_cases++;
                }
            }
    printf("  moe_matmul: %d cases, rows equal to plain matmuls, one matmul per chosen expert\n", n_cases);
}

static void test_combine(hearth_backend *be, uint64_t *seed) {
    static const int lens[] = {1, 9, 33, 320};
    for (size_t a = 0; a < 4; a++)
        for (int k = 1; k <= 3; k++) {
            const int n = 5, ne0 = lens[a];
            float *y = rand_f32(seed, (size_t)(n * k * ne0), 1.0), *w = rand_f32(seed, (size_t)(n * k), 1.0);
            float *o = malloc((size_t)(n * ne0) * sizeof *o);
            REQUIRE(o);
            hearth_tensor yt = hearth_tensor_2d(HEARTH_F32, ne0, n * k, y),
                          wt = hearth_tensor_2d(HEARTH_F32, k, n, w),
                          ot = hearth_tensor_2d(HEARTH_F32, ne0, n, o);
            be->ops->moe_combine(be, &yt, &wt, k, &ot);
            double worst = 0;
            for (int t = 0; t < n; t++)
                for (int i = 0; i < ne0; i++) {
                    double r = 0;
                    for (int j = 0; j < k; j++)
                        r += (double)w[t * k + j] * y[(size_t)(t * k + j) * ne0 + i];
                    double e = fabs(r - o[(size_t)t * ne0 + i]);
                    if (e > worst) worst = e;
                }
            CHECKF(worst <= 1e-6, "moe_combine ne0 %d k %d: %.3g", ne0, k, worst);
            free(y);
            free(w);
            free(o);
        }
    printf("  moe_combine: rows of 1..320, k 1..3\n");
}

static void run_all(void) {
    for (int th = 1; th <= 2; th++) {
        hearth_error err = {0};
        hearth_backend *be = hearth_cpu_backend_create(th, &err);
        REQUIRE(be);
        REQUIRE(be->ops->moe_route && be->ops->moe_matmul && be->ops->moe_combine);
        uint64_t seed = 1234 + (uint64_t)th;
        printf(" %d thread%s:\n", th, th == 1 ? "" : "s");
        test_route(be, &seed);
        test_matmul(be, &seed);
        test_combine(be, &seed);
        hearth_backend_free(be);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--scalar-child")) {
        run_all();
        return test_summary("test_moe_ops (HEARTH_CPU_ISA=scalar)");
    }
    run_all();
    test_scalar_override(argv[0]);
    return test_summary("test_moe_ops");
}
