/*
 * test_cuda_ops.c - parity of every CUDA backend op with the CPU backend.
 *
 * Owner: the CUDA backend (backends/cuda). Built only when HEARTH_HAVE_CUDA and run
 * by tests/gpu/run.sh on a machine with a GPU (not in ctest: CI has none).
 * Each case makes random inputs, runs the op on both backends and compares;
 * the GPU output is poisoned (NaN-filled) before every run so an element the
 * kernel forgot shows up as NaN. Tolerances are per weight type: the CPU dots
 * quantized weights with 8-bit activations (and F16 weights with F16
 * activations), the GPU dots them in F32, so quantized cases differ by ~1 %.
 * Error metric: max |gpu - cpu| / max |cpu| over the output (and no NaN).
 *
 * Three CUDA backends run side by side on the same device memory: `gpu` (the
 * default: tensor-core GEMM, 16-byte matvec, split-K attention, CUDA graphs),
 * `ref` (HEARTH_CUDA_KERNELS=simple HEARTH_CUDA_GRAPHS=0: the reference
 * kernels, launched one by one) and `eager` (the default kernels without
 * graphs). The new paths are checked against the CPU and against `ref`; a
 * replayed graph must give bit-identical results to `eager`. The backend's
 * counters (cuda_backend.h) prove each path really ran.
 * Exit status: 0 all pass, 1 a failure, 2 no usable GPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "backends/cuda/cuda_backend.h"
#include "runtime/serving/sampling.h"
#include "test.h"

static hearth_backend *cpu, *gpu, *ref, *eager;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frand(void) {
    return (float)(rnd() % 2000001) / 1000000.0f - 1.0f;
} /* [-1, 1] */

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = frand() * scale;
}

/* A tensor on both backends with the same contents. */
typedef struct pair {
    hearth_tensor c, g;
    size_t bytes;
} pair;

static pair pair_new(hearth_dtype t, int64_t ne0, int64_t ne1) {
    pair p;
    p.bytes = hearth_dtype_row_size(t, ne0) * (size_t)ne1;
    hearth_error err = {0};
    void *hc = cpu->ops->alloc(cpu, p.bytes, &err);
    void *hg = gpu->ops->alloc(gpu, p.bytes, &err);
    if (!hc || !hg) {
        fprintf(stderr, "alloc failed: %s\n", err.msg);
        exit(1);
    }
    p.c = hearth_tensor_2d(t, ne0, ne1, hc);
    p.g = hearth_tensor_2d(t, ne0, ne1, hg);
    return p;
}
static void pair_free(pair *p) {
    cpu->ops->dealloc(cpu, p->c.data);
    gpu->ops->dealloc(gpu, p->g.data);
}
/* Random values (converted to the pair's type) on both sides. */
static void pair_random(pair *p, float scale) {
    float *row = malloc((size_t)p->c.ne0 * sizeof(float));
    for (int64_t r = 0; r < p->c.ne1; r++) {
        fill(row, (size_t)p->c.ne0, scale);
        void *dst = (char *)p->c.data + (size_t)r * p->c.nb1;
        if (p->c.type == HEARTH_F32)
            memcpy(dst, row, (size_t)p->c.ne0 * sizeof(float));
        else if (!hearth_quantize_row(p->c.type, row, dst, p->c.ne0)) {
            fprintf(stderr, "cannot quantize to %s\n", hearth_dtype_name(p->c.type));
            exit(1);
        }
    }
    gpu->ops->upload(gpu, p->g.data, p->c.data, p->bytes);
    free(row);
}
/* Same bytes on the GPU as on the CPU side. */
static void pair_sync_to_gpu(pair *p) {
    gpu->ops->upload(gpu, p->g.data, p->c.data, p->bytes);
}
static void poison(pair *p) {
    float *nan = malloc(p->bytes);
    for (size_t i = 0; i < p->bytes / sizeof(float); i++)
        nan[i] = NAN;
    gpu->ops->upload(gpu, p->g.data, nan, p->bytes);
    free(nan);
}

/* Synchronize a backend; a failure ends the run (the context is gone). */
static void sync_or_die(hearth_backend *b, const char *what) {
    hearth_error err = {0};
    hearth_status st = b->ops->synchronize(b, &err);
    CHECKF(st == HEARTH_OK, "%s: synchronize: %s", what, err.msg);
    if (st) exit(1);
}

/* F32 device memory of `bytes` to a new host array. */
static float *fetch(const void *dev, size_t bytes) {
    float *h = malloc(bytes);
    gpu->ops->download(gpu, h, dev, bytes);
    sync_or_die(gpu, "download");
    return h;
}

/* max |got - want| / max |want| over n floats, NaNs in got counted. */
static double rel_err(const float *got, const float *want, size_t n, size_t *nan) {
    double maxref = 1e-30, maxdiff = 0;
    *nan = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) && !isnan(want[i])) (*nan)++;
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
        double d = fabs((double)got[i] - want[i]);
        if (d > maxdiff) maxdiff = d;
    }
    return maxdiff / maxref;
}

static double report(const char *what, const char *vs, double e, size_t nan, double tol) {
    CHECKF(nan == 0 && e <= tol, "%s (vs %s): %zu NaN, error %.3g > %.3g", what, vs, nan, e, tol);
    printf("  %-48s vs %-5s err %.2e (tol %.0e)%s\n", what, vs, e, tol, nan || e > tol ? "  FAIL" : "");
    return e;
}

/* Synchronize, download and compare an F32 output with the CPU's; returns the error. */
static double compare(const char *what, pair *p, double tol) {
    sync_or_die(gpu, what);
    float *g = fetch(p->g.data, p->bytes);
    size_t nan = 0;
    const double r = rel_err(g, p->c.data, p->bytes / sizeof(float), &nan);
    const double e = report(what, "cpu", r, nan, tol);
    free(g);
    return e;
}

/* Compare GPU output `got` with GPU output `want` (same size as p). */
static double compare_dev(const char *what, const char *vs, const void *got, const void *want, size_t bytes,
                          double tol) {
    float *a = fetch(got, bytes), *b = fetch(want, bytes);
    size_t nan = 0;
    const double r = rel_err(a, b, bytes / sizeof(float), &nan);
    const double e = report(what, vs, r, nan, tol);
    free(a);
    free(b);
    return e;
}

/* A GPU-only F32 buffer, NaN-filled. */
static void *dev_nan(size_t bytes) {
    hearth_error err = {0};
    void *d = gpu->ops->alloc(gpu, bytes, &err);
    if (!d) {
        fprintf(stderr, "alloc failed: %s\n", err.msg);
        exit(1);
    }
    float *nan = malloc(bytes);
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        nan[i] = NAN;
    gpu->ops->upload(gpu, d, nan, bytes);
    free(nan);
    return d;
}

static hearth_cuda_counters counters(void) {
    hearth_cuda_counters k;
    hearth_cuda_get_counters(gpu, &k);
    return k;
}

/* every weight type the CUDA kernels decode (cuda_type_supported) */
static const hearth_dtype k_types[] = {HEARTH_F32,  HEARTH_F16,  HEARTH_BF16, HEARTH_Q8_0, HEARTH_Q4_0,
                                       HEARTH_Q4_1, HEARTH_Q5_0, HEARTH_Q5_1, HEARTH_Q2_K, HEARTH_Q3_K,
                                       HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K};

static double mm_tol(hearth_dtype t) {
    switch (t) {
    case HEARTH_F32: return 1e-4;
    case HEARTH_F16: return 4e-3;  /* CPU rounds activations to F16 */
    case HEARTH_BF16: return 2e-2; /* ...and to BF16 */
    default: return 4e-2;          /* ...and to 8-bit blocks */
    }
}

/* ------------------------------------------------------------ cases */

static void test_get_rows(void) {
    printf("get_rows\n");
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++) {
        hearth_dtype t = k_types[i];
        pair w = pair_new(t, 512, 97), o = pair_new(HEARTH_F32, 512, 9);
        pair_random(&w, 1.0f);
        int32_t ids[9] = {0, 96, 5, 5, 40, 77, 1, 95, 13};
        poison(&o);
        cpu->ops->get_rows(cpu, &w.c, ids, 9, &o.c);
        gpu->ops->get_rows(gpu, &w.g, ids, 9, &o.g);
        char what[64];
        snprintf(what, sizeof what, "get_rows %s", hearth_dtype_name(t));
        compare(what, &o, 0); /* cuda_quant.h computes dtype.c's expressions, unfused: exact */
        pair_free(&w);
        pair_free(&o);
    }
    /* float row that is not a multiple of 8 */
    pair w = pair_new(HEARTH_F16, 100, 10), o = pair_new(HEARTH_F32, 100, 3);
    pair_random(&w, 2.0f);
    int32_t ids[3] = {9, 0, 4};
    poison(&o);
    cpu->ops->get_rows(cpu, &w.c, ids, 3, &o.c);
    gpu->ops->get_rows(gpu, &w.g, ids, 3, &o.g);
    compare("get_rows f16 ne0=100", &o, 1e-6);
    pair_free(&w);
    pair_free(&o);
}

static void test_matmul(void) {
    printf("matmul\n");
    const int toks[] = {1, 3, 17};
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++) {
        hearth_dtype t = k_types[i];
        for (size_t k = 0; k < 3; k++) {
            const int64_t K = 1024, N = 300;
            const int T = toks[k];
            pair w = pair_new(t, K, N), x = pair_new(HEARTH_F32, K, T), o = pair_new(HEARTH_F32, N, T),
                 b = pair_new(HEARTH_F32, N, 1);
            pair_random(&w, 1.0f);
            pair_random(&x, 1.0f);
            pair_random(&b, 1.0f);
            for (int bias = 0; bias < 2; bias++) {
                poison(&o);
                cpu->ops->matmul(cpu, &w.c, &x.c, bias ? &b.c : NULL, &o.c);
                gpu->ops->matmul(gpu, &w.g, &x.g, bias ? &b.g : NULL, &o.g);
                char what[64];
                snprintf(what, sizeof what, "matmul %s K=%lld N=%lld tokens=%d%s", hearth_dtype_name(t),
                         (long long)K, (long long)N, T, bias ? " +bias" : "");
                compare(what, &o, mm_tol(t));
            }
            pair_free(&w);
            pair_free(&x);
            pair_free(&o);
            pair_free(&b);
        }
    }
    /* plain-float rows with a tail (ne0 % 8 != 0) */
    pair w = pair_new(HEARTH_F32, 100, 33), x = pair_new(HEARTH_F32, 100, 2), o = pair_new(HEARTH_F32, 33, 2);
    pair_random(&w, 1.0f);
    pair_random(&x, 1.0f);
    poison(&o);
    cpu->ops->matmul(cpu, &w.c, &x.c, NULL, &o.c);
    gpu->ops->matmul(gpu, &w.g, &x.g, NULL, &o.g);
    compare("matmul f32 K=100 (tail)", &o, 1e-4);
    pair_free(&w);
    pair_free(&x);
    pair_free(&o);
}

static void test_norm_elementwise(void) {
    printf("rms_norm, add, silu_mul, get_rows_f32, copy\n");
    pair x = pair_new(HEARTH_F32, 4096, 5), w = pair_new(HEARTH_F32, 4096, 1),
         o = pair_new(HEARTH_F32, 4096, 5);
    pair_random(&x, 3.0f);
    pair_random(&w, 1.0f);
    poison(&o);
    cpu->ops->rms_norm(cpu, &x.c, &w.c, 1e-5f, &o.c);
    gpu->ops->rms_norm(gpu, &x.g, &w.g, 1e-5f, &o.g);
    compare("rms_norm 4096 x 5", &o, 1e-5);

    /* per-head view, in place (qwen3 q_norm) */
    pair hw = pair_new(HEARTH_F32, 128, 1);
    pair_random(&hw, 1.0f);
    hearth_tensor vc = {HEARTH_F32, 128, 160, 128 * sizeof(float), x.c.data};
    hearth_tensor vg = {HEARTH_F32, 128, 160, 128 * sizeof(float), x.g.data};
    cpu->ops->rms_norm(cpu, &vc, &hw.c, 1e-6f, &vc);
    gpu->ops->rms_norm(gpu, &vg, &hw.g, 1e-6f, &vg);
    compare("rms_norm per head, in place", &x, 1e-5);
    pair_free(&hw);

    pair a = pair_new(HEARTH_F32, 4096, 5);
    pair_random(&a, 1.0f);
    pair_random(&x, 1.0f);
    poison(&o);
    cpu->ops->add(cpu, &a.c, &x.c, &o.c);
    gpu->ops->add(gpu, &a.g, &x.g, &o.g);
    compare("add", &o, 1e-7);
    cpu->ops->add(cpu, &a.c, &x.c, &a.c);
    gpu->ops->add(gpu, &a.g, &x.g, &a.g);
    compare("add in place", &a, 1e-7);
    pair_random(&a, 4.0f);
    poison(&o);
    cpu->ops->silu_mul(cpu, &a.c, &x.c, &o.c);
    gpu->ops->silu_mul(gpu, &a.g, &x.g, &o.g);
    compare("silu_mul", &o, 1e-5);
    cpu->ops->silu_mul(cpu, &a.c, &x.c, &a.c);
    gpu->ops->silu_mul(gpu, &a.g, &x.g, &a.g);
    compare("silu_mul in place", &a, 1e-5);

    pair s = pair_new(HEARTH_F32, 4096, 3);
    int32_t rows[3] = {4, 0, 2};
    poison(&s);
    cpu->ops->get_rows_f32(cpu, &x.c, rows, 3, &s.c);
    gpu->ops->get_rows_f32(gpu, &x.g, rows, 3, &s.g);
    compare("get_rows_f32", &s, 0);

    poison(&s);
    cpu->ops->copy(cpu, s.c.data, x.c.data, s.bytes);
    gpu->ops->copy(gpu, s.g.data, x.g.data, s.bytes);
    compare("copy (device to device)", &s, 0);
    pair_free(&s);
    pair_free(&a);
    pair_free(&x);
    pair_free(&w);
    pair_free(&o);
}

static void test_rope(void) {
    printf("rope\n");
    const int T = 7, H = 8, D = 128;
    float ff[64];
    for (int i = 0; i < 64; i++)
        ff[i] = 1.0f + (float)(rnd() % 8);
    int32_t pos[7] = {0, 1, 17, 300, 301, 4095, 8000};
    for (int mode = 0; mode < 2; mode++)
        for (int variant = 0; variant < 4; variant++) {
            pair x = pair_new(HEARTH_F32, (int64_t)H * D, T);
            pair_random(&x, 1.0f);
            /* variant 3: YaRN x16 over an original context of 64, with the
             * attention temperature */
            hearth_rope_params p = {.mode = mode ? HEARTH_ROPE_NEOX : HEARTH_ROPE_NORM,
                                    .n_rot = variant == 2 ? 64 : D,
                                    .head_dim = D,
                                    .freq_base = 500000.0f,
                                    .freq_scale = variant == 1   ? 0.25f
                                                  : variant == 3 ? 1.0f / 16
                                                                 : 1.0f,
                                    .freq_factors = variant == 1 ? ff : NULL,
                                    .attn_factor = variant == 3 ? 1.2f : 1.0f,
                                    .ext_factor = variant == 3 ? 1.0f : 0.0f,
                                    .temp_scale = variant == 3 ? 0.1f : 0.0f,
                                    .temp_floor = 64};
            if (variant == 3) hearth_rope_yarn_dims(D, 64, 500000.0f, 32.0f, 1.0f, &p.yarn_lo, &p.yarn_hi);
            cpu->ops->rope(cpu, &x.c, H, pos, &p);
            gpu->ops->rope(gpu, &x.g, H, pos, &p);
            char what[64];
            snprintf(what, sizeof what, "rope %s %s", mode ? "neox" : "norm",
                     variant == 0   ? "plain"
                     : variant == 1 ? "freq_factors+scale"
                                    : "n_rot=64");
            compare(what, &x, 2e-3);
            pair_free(&x);
        }
}

static void test_kv_and_attention(hearth_dtype kvt, int H, int HKV, int D) {
    printf("kv_store + attention, KV %s, heads %d/%d, head_dim %d\n", hearth_dtype_name(kvt), H, HKV, D);
    const int page = 16, n_pages = 64, rows = page * n_pages, rowlen = HKV * D;
    pair k = pair_new(kvt, rowlen, rows), v = pair_new(kvt, rowlen, rows);
    pair_random(&k, 1.0f);
    pair_random(&v, 1.0f);

    /* kv_store of 20 rows into scattered slots (same starting bytes on both) */
    const int NS = 20;
    pair src = pair_new(HEARTH_F32, rowlen, NS);
    pair_random(&src, 2.0f);
    int32_t slots[20];
    for (int i = 0; i < NS; i++)
        slots[i] = (int32_t)(i * 37 + 5) % rows;
    cpu->ops->kv_store(cpu, &k.c, &src.c, slots);
    gpu->ops->kv_store(gpu, &k.g, &src.g, slots);
    {
        hearth_error err = {0};
        CHECKF(gpu->ops->synchronize(gpu, &err) == HEARTH_OK, "kv_store: %s", err.msg);
        uint8_t *g = malloc(k.bytes);
        gpu->ops->download(gpu, g, k.g.data, k.bytes);
        gpu->ops->synchronize(gpu, NULL);
        float *a = malloc((size_t)rowlen * sizeof(float)), *b = malloc((size_t)rowlen * sizeof(float));
        double maxd = 0;
        for (int i = 0; i < rows; i++) {
            hearth_dequantize_row(kvt, (char *)k.c.data + (size_t)i * k.c.nb1, a, rowlen);
            hearth_dequantize_row(kvt, g + (size_t)i * k.g.nb1, b, rowlen);
            for (int j = 0; j < rowlen; j++)
                if (fabs((double)a[j] - b[j]) > maxd || isnan(b[j]))
                    maxd = isnan(b[j]) ? INFINITY : fabs((double)a[j] - b[j]);
        }
        const double tol = kvt == HEARTH_Q8_0 ? 2.0 / 127 * 2.0 : 0; /* one quantization step */
        CHECKF(maxd <= tol, "kv_store %s: max diff %g", hearth_dtype_name(kvt), maxd);
        printf("  %-44s max diff %.2e\n", "kv_store", maxd);
        free(a);
        free(b);
        free(g);
    }
    pair_sync_to_gpu(&k); /* attention compares from identical caches */

    /* page tables: each sequence gets random distinct pages */
    int32_t perm[64];
    for (int i = 0; i < n_pages; i++)
        perm[i] = i;
    for (int i = n_pages - 1; i > 0; i--) {
        int j = (int)(rnd() % (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int prefill = 0; prefill < 2; prefill++) {
        const int T = prefill ? 40 : 5;
        int32_t kv_len[40], pt_off[40];
        if (!prefill) { /* 5 decode tokens of 5 sequences, 12 pages each */
            const int lens[5] = {1, 16, 17, 100, 190};
            for (int i = 0; i < T; i++) {
                kv_len[i] = lens[i];
                pt_off[i] = i * 12;
            }
        } else { /* one sequence: 60 cached tokens, then 40 new ones, causal */
            for (int i = 0; i < T; i++) {
                kv_len[i] = 60 + i + 1;
                pt_off[i] = 0;
            }
        }
        hearth_attn_meta m = {T, page, kv_len, pt_off, perm, prefill ? 8 : 60};
        pair q = pair_new(HEARTH_F32, (int64_t)H * D, T), o = pair_new(HEARTH_F32, (int64_t)H * D, T);
        pair_random(&q, 2.0f);
        poison(&o);
        const float scale = 1.0f / sqrtf((float)D);
        cpu->ops->attention(cpu, &q.c, &k.c, &v.c, &m, H, HKV, D, scale, &o.c);
        gpu->ops->attention(gpu, &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &o.g);
        char what[64];
        snprintf(what, sizeof what, "attention %s (%d tokens)", prefill ? "prefill" : "decode", T);
        compare(what, &o, kvt == HEARTH_F32 ? 1e-4 : 1e-2);
        pair_free(&q);
        pair_free(&o);
    }
    pair_free(&src);
    pair_free(&k);
    pair_free(&v);
}

/* The encoder ops (bert, nomic-bert) on the default and the reference
 * kernels: layer_norm with and without bias and in place, on rows of odd
 * length with a large common offset (1e-5); gelu, tanh form, in place too,
 * over +-60 (1e-5); bidirectional attention as the embedder asks for it (F16
 * pool, page size 1, identity page table, packed sequences of 5, 1 and 70
 * tokens each seeing all of its own sequence and nothing else; 1e-2 as the
 * causal F16 cases: the CPU rounds Q to F16 for an F16 pool). The reference
 * backend runs on its own stream: the uploads are synchronized before it. */
static void test_encoder_ops(void) {
    printf("encoder ops: layer_norm, gelu, bidirectional attention\n");
    hearth_backend *const bes[2] = {gpu, ref};
    const char *const names[2] = {"", " (reference kernels)"};
    static const int lens[2][2] = {{131, 9}, {769, 3}};
    char what[96];
    for (int li = 0; li < 2; li++) {
        const int ne0 = lens[li][0], nr = lens[li][1];
        pair x = pair_new(HEARTH_F32, ne0, nr), w = pair_new(HEARTH_F32, ne0, 1),
             bi = pair_new(HEARTH_F32, ne0, 1), o = pair_new(HEARTH_F32, ne0, nr);
        pair_random(&x, 3.0f);
        for (int64_t i = 0; i < (int64_t)ne0 * nr; i++)
            ((float *)x.c.data)[i] += 20.0f;
        pair_sync_to_gpu(&x);
        pair_random(&w, 1.0f);
        pair_random(&bi, 0.5f);
        for (int k = 0; k < 2; k++) {
            hearth_backend *g = bes[k];
            poison(&o);
            sync_or_die(gpu, "uploads"); /* ref runs on its own stream */
            cpu->ops->layer_norm(cpu, &x.c, &w.c, &bi.c, 1e-12f, &o.c);
            g->ops->layer_norm(g, &x.g, &w.g, &bi.g, 1e-12f, &o.g);
            sync_or_die(g, "layer_norm");
            snprintf(what, sizeof what, "layer_norm %dx%d + bias%s", ne0, nr, names[k]);
            compare(what, &o, 1e-5);
            poison(&o);
            sync_or_die(gpu, "uploads");
            cpu->ops->layer_norm(cpu, &x.c, &w.c, NULL, 1e-5f, &o.c);
            g->ops->layer_norm(g, &x.g, &w.g, NULL, 1e-5f, &o.g);
            sync_or_die(g, "layer_norm");
            snprintf(what, sizeof what, "layer_norm %dx%d%s", ne0, nr, names[k]);
            compare(what, &o, 1e-5);
            pair_random(&o, 6.0f);
            ((float *)o.c.data)[0] = 60.0f;
            ((float *)o.c.data)[1] = -60.0f;
            pair_sync_to_gpu(&o);
            sync_or_die(gpu, "uploads");
            cpu->ops->gelu(cpu, &o.c, &o.c);
            g->ops->gelu(g, &o.g, &o.g);
            sync_or_die(g, "gelu");
            snprintf(what, sizeof what, "gelu %dx%d in place%s", ne0, nr, names[k]);
            compare(what, &o, 1e-5);
        }
        cpu->ops->layer_norm(cpu, &x.c, &w.c, &bi.c, 1e-12f, &x.c);
        gpu->ops->layer_norm(gpu, &x.g, &w.g, &bi.g, 1e-12f, &x.g);
        snprintf(what, sizeof what, "layer_norm %dx%d in place", ne0, nr);
        compare(what, &x, 1e-5);
        pair_free(&x);
        pair_free(&w);
        pair_free(&bi);
        pair_free(&o);
    }

    enum { N = 76, H = 12, HKV = 12, D = 64 };
    static const int seq_len[3] = {5, 1, 70};
    int32_t kv_len[N], pt_off[N], pt[N];
    for (int s = 0, t = 0; s < 3; t += seq_len[s], s++)
        for (int i = 0; i < seq_len[s]; i++) {
            kv_len[t + i] = seq_len[s];
            pt_off[t + i] = t;
        }
    for (int i = 0; i < N; i++)
        pt[i] = i;
    pair k = pair_new(HEARTH_F16, HKV * D, N), v = pair_new(HEARTH_F16, HKV * D, N),
         ks = pair_new(HEARTH_F32, HKV * D, N), vs = pair_new(HEARTH_F32, HKV * D, N),
         q = pair_new(HEARTH_F32, H * D, N), o = pair_new(HEARTH_F32, H * D, N);
    pair_random(&ks, 1.0f);
    pair_random(&vs, 1.0f);
    pair_random(&q, 2.0f);
    cpu->ops->kv_store(cpu, &k.c, &ks.c, pt);
    cpu->ops->kv_store(cpu, &v.c, &vs.c, pt);
    gpu->ops->kv_store(gpu, &k.g, &ks.g, pt);
    gpu->ops->kv_store(gpu, &v.g, &vs.g, pt);
    const hearth_attn_meta m = {N, 1, kv_len, pt_off, pt, N};
    const float scale = 1.0f / sqrtf((float)D);
    cpu->ops->attention(cpu, &q.c, &k.c, &v.c, &m, H, HKV, D, scale, &o.c);
    for (int b = 0; b < 2; b++) {
        poison(&o);
        sync_or_die(gpu, "uploads and kv_store");
        bes[b]->ops->attention(bes[b], &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &o.g);
        sync_or_die(bes[b], "attention");
        snprintf(what, sizeof what, "bidirectional attention 5+1+70%s", names[b]);
        compare(what, &o, 1e-2);
    }
    pair_free(&k);
    pair_free(&v);
    pair_free(&ks);
    pair_free(&vs);
    pair_free(&q);
    pair_free(&o);
}

/* argmax: the first index on ties, NaN never chosen; compared with hearth_argmax. */
static void test_argmax(void) {
    printf("argmax\n");
    const int V = 50001, R = 3;
    pair x = pair_new(HEARTH_F32, V, R);
    float *h = x.c.data;
    fill(h, (size_t)V * R, 5.0f);
    h[0 * V + 17] = 9.0f; /* row 0: a tie, the first wins */
    h[0 * V + 40000] = 9.0f;
    for (int i = 1; i < V; i += 97)
        h[1 * V + i] = NAN; /* row 1: NaNs, and the max right after one */
    h[1 * V + 99] = 7.5f;
    h[2 * V + V - 1] = 6.0f; /* row 2: the last element */
    pair_sync_to_gpu(&x);
    hearth_error err = {0};
    int32_t *ids = gpu->ops->alloc(gpu, R * sizeof(int32_t), &err), got[3] = {-1, -1, -1};
    REQUIRE(ids != NULL);
    gpu->ops->argmax(gpu, &x.g, ids);
    gpu->ops->download(gpu, got, ids, sizeof got);
    sync_or_die(gpu, "argmax");
    for (int r = 0; r < R; r++) {
        const int32_t want = hearth_argmax(h + (size_t)r * V, V);
        CHECKF(got[r] == want, "argmax row %d: %d, want %d", r, got[r], want);
    }
    printf("  argmax rows: %d %d %d (want 17, 99, %d)\n", got[0], got[1], got[2], V - 1);
    gpu->ops->dealloc(gpu, ids);
    pair_free(&x);
}

/* The matmul paths of the default backend: the tensor-core GEMM (16 tokens and
 * more) and the 16-byte matvec (fewer; F16 and the 32-element blocks Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1; the K-quants take the reference kernel), against the CPU and
 * against the reference warp-per-row kernel, at token counts that are not
 * multiples of the tiles and an odd number of weight rows. */
static void test_matmul_paths(void) {
    printf("matmul paths (gemm from 16 tokens, matvec below), vs cpu and vs the reference kernel\n");
    /* 2, 7 and 12 tokens: the matvec's 2- and 8-token variants, 12 in two groups (grid.y 2) */
    const int toks[] = {1, 2, 7, 12, 16, 33, 128, 512};
    const hearth_dtype types[] = {HEARTH_F16,  HEARTH_BF16, HEARTH_Q8_0, HEARTH_Q4_0,
                                  HEARTH_Q4_1, HEARTH_Q5_0, HEARTH_Q5_1, HEARTH_Q2_K,
                                  HEARTH_Q3_K, HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K};
    const hearth_cuda_counters k0 = counters();
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        for (int shape = 0; shape < 3; shape++) {
            const hearth_dtype t = types[i];
            /* odd row counts; the second shape is one GEMM_BM tile and a bit; the third has
             * 152 blocks a row, so the 32-element-block matvec's rounds of 64 blocks through
             * shared memory loop (reusing the buffer) and end on a part-filled segment */
            const int64_t Ks[3] = {1024, 2048, 4864}, Ns[3] = {301, 129, 67};
            const int64_t K = Ks[shape], N = Ns[shape];
            const bool q32 = t == HEARTH_Q8_0 || t == HEARTH_Q4_0 || t == HEARTH_Q4_1 || t == HEARTH_Q5_0 ||
                             t == HEARTH_Q5_1;
            if (shape == 1 && t != HEARTH_Q4_0 && t != HEARTH_F16) continue;
            if (shape == 2 && !q32 && t != HEARTH_F16) continue;
            pair w = pair_new(t, K, N), b = pair_new(HEARTH_F32, N, 1);
            pair_random(&w, 1.0f);
            pair_random(&b, 1.0f);
            for (size_t j = 0; j < sizeof toks / sizeof *toks; j++) {
                const int T = toks[j];
                const int bias = (int)(j % 2);
                pair x = pair_new(HEARTH_F32, K, T), o = pair_new(HEARTH_F32, N, T);
                pair_random(&x, 1.0f);
                poison(&o);
                void *ro = dev_nan(o.bytes);
                sync_or_die(gpu, "uploads"); /* ref runs on its own stream */
                hearth_tensor rt = o.g;
                rt.data = ro;
                ref->ops->matmul(ref, &w.g, &x.g, bias ? &b.g : NULL, &rt);
                sync_or_die(ref, "reference matmul");
                cpu->ops->matmul(cpu, &w.c, &x.c, bias ? &b.c : NULL, &o.c);
                gpu->ops->matmul(gpu, &w.g, &x.g, bias ? &b.g : NULL, &o.g);
                char what[80];
                snprintf(what, sizeof what, "%s %s K=%lld N=%lld tokens=%d%s", T >= 16 ? "gemm" : "matvec",
                         hearth_dtype_name(t), (long long)K, (long long)N, T, bias ? " +bias" : "");
                compare(what, &o, mm_tol(t));
                /* the GEMM rounds activations and weights to F16; the matvec sums in another order */
                compare_dev(what, "ref", o.g.data, ro, o.bytes, T >= 16 ? 5e-3 : 1e-4);
                gpu->ops->dealloc(gpu, ro);
                pair_free(&x);
                pair_free(&o);
            }
            pair_free(&w);
            pair_free(&b);
        }
    /* Odd rows, vs the CPU: F16 rows whose length is not a multiple of the GEMM's K
     * step (32) or of 8; rows of 3 blocks (66 bytes of Q5_0, 60 of Q4_1) that are not
     * 16-byte multiples, so at 3 tokens the matvec leaves them to the reference kernel
     * and at 19 the GEMM decodes weight tiles from rows only 2- or 4-byte aligned. */
    const struct {
        hearth_dtype t;
        int64_t K, N;
        int T;
    } odd[] = {{HEARTH_F16, 1000, 77, 33}, {HEARTH_F16, 100, 77, 33}, {HEARTH_Q5_0, 96, 45, 3},
               {HEARTH_Q5_0, 96, 45, 19},  {HEARTH_Q4_1, 96, 45, 3},  {HEARTH_Q4_1, 96, 45, 19}};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        const int64_t K = odd[i].K, N = odd[i].N;
        const int T = odd[i].T;
        pair w = pair_new(odd[i].t, K, N), x = pair_new(HEARTH_F32, K, T), o = pair_new(HEARTH_F32, N, T);
        pair_random(&w, 1.0f);
        pair_random(&x, 1.0f);
        poison(&o);
        cpu->ops->matmul(cpu, &w.c, &x.c, NULL, &o.c);
        gpu->ops->matmul(gpu, &w.g, &x.g, NULL, &o.g);
        char what[64];
        snprintf(what, sizeof what, "%s %s K=%lld N=%lld tokens=%d (odd rows)", T >= 16 ? "gemm" : "matmul",
                 hearth_dtype_name(odd[i].t), (long long)K, (long long)N, T);
        compare(what, &o, mm_tol(odd[i].t));
        pair_free(&w);
        pair_free(&x);
        pair_free(&o);
    }
    const hearth_cuda_counters k1 = counters();
    CHECKF(k1.gemm > k0.gemm, "the tensor-core GEMM never ran");
    CHECKF(k1.matvec_fast > k0.matvec_fast, "the 16-byte matvec never ran");
    printf("  gemm launches %llu, fast matvecs %llu\n", (unsigned long long)(k1.gemm - k0.gemm),
           (unsigned long long)(k1.matvec_fast - k0.matvec_fast));
}

/* Split-K decode attention: three decode tokens of three sequences (lengths
 * ctx, ctx/2 + 1, ctx) with random page tables, against the CPU and against
 * the reference one-block-per-head kernel. */
static void test_attention_split(hearth_dtype kvt, int H, int HKV, int D) {
    printf("split-K decode attention, KV %s, heads %d/%d, head_dim %d\n", hearth_dtype_name(kvt), H, HKV, D);
    const int ctxs[] = {1, 100, 1000, 4000}, page = 16, T = 3;
    const hearth_cuda_counters k0 = counters();
    for (size_t ci = 0; ci < sizeof ctxs / sizeof *ctxs; ci++) {
        const int ctx = ctxs[ci];
        const int lens[3] = {ctx, ctx / 2 + 1, ctx};
        int32_t kv_len[3], pt_off[3];
        int total = 0;
        for (int i = 0; i < T; i++) {
            kv_len[i] = lens[i];
            pt_off[i] = total;
            total += (lens[i] + page - 1) / page;
        }
        int32_t *pt = malloc((size_t)total * sizeof *pt);
        for (int i = 0; i < total; i++)
            pt[i] = i;
        for (int i = total - 1; i > 0; i--) {
            int j = (int)(rnd() % (uint32_t)(i + 1));
            int32_t tmp = pt[i];
            pt[i] = pt[j];
            pt[j] = tmp;
        }
        const int rowlen = HKV * D, rows = total * page;
        pair k = pair_new(kvt, rowlen, rows), v = pair_new(kvt, rowlen, rows);
        pair q = pair_new(HEARTH_F32, (int64_t)H * D, T), o = pair_new(HEARTH_F32, (int64_t)H * D, T);
        pair_random(&k, 1.0f);
        pair_random(&v, 1.0f);
        pair_random(&q, 2.0f);
        poison(&o);
        void *ro = dev_nan(o.bytes);
        sync_or_die(gpu, "uploads");
        hearth_attn_meta m = {T, page, kv_len, pt_off, pt, total};
        const float scale = 1.0f / sqrtf((float)D);
        hearth_tensor rt = o.g;
        rt.data = ro;
        ref->ops->attention(ref, &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &rt);
        sync_or_die(ref, "reference attention");
        cpu->ops->attention(cpu, &q.c, &k.c, &v.c, &m, H, HKV, D, scale, &o.c);
        gpu->ops->attention(gpu, &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &o.g);
        char what[64];
        snprintf(what, sizeof what, "attention split-K ctx %d (%d pages)", ctx, total);
        compare(what, &o, kvt == HEARTH_F32 ? 1e-4 : 1e-2);
        compare_dev(what, "ref", o.g.data, ro, o.bytes, 1e-4);
        gpu->ops->dealloc(gpu, ro);
        pair_free(&k);
        pair_free(&v);
        pair_free(&q);
        pair_free(&o);
        free(pt);
    }
    const hearth_cuda_counters k1 = counters();
    CHECKF(k1.attn_split >= k0.attn_split + 4, "split-K attention ran %llu times, expected 4",
           (unsigned long long)(k1.attn_split - k0.attn_split));
}

/* Gemma's ops: gelu_mul, scale_cap (plain and soft-capped, in place too)
 * and attention_ext (a sliding window shorter and longer than the context,
 * score soft-capping), on the split-K kernel (gpu, few tokens) and the
 * one-block kernel (ref, "simple"), against the CPU's. */
static void test_gemma_ops(void) {
    printf("gelu_mul, scale_cap, attention_ext (window, soft-cap)\n");
    pair g = pair_new(HEARTH_F32, 2304, 5), u = pair_new(HEARTH_F32, 2304, 5),
         o = pair_new(HEARTH_F32, 2304, 5);
    pair_random(&g, 4.0f);
    pair_random(&u, 1.0f);
    poison(&o);
    cpu->ops->gelu_mul(cpu, &g.c, &u.c, &o.c);
    gpu->ops->gelu_mul(gpu, &g.g, &u.g, &o.g);
    compare("gelu_mul", &o, 1e-5);
    cpu->ops->gelu_mul(cpu, &g.c, &u.c, &g.c);
    gpu->ops->gelu_mul(gpu, &g.g, &u.g, &g.g);
    compare("gelu_mul in place", &g, 1e-5);
    pair_random(&g, 50.0f);
    poison(&o);
    cpu->ops->scale_cap(cpu, &g.c, 0.7f, 0.0f, &o.c);
    gpu->ops->scale_cap(gpu, &g.g, 0.7f, 0.0f, &o.g);
    compare("scale_cap, no cap", &o, 1e-6);
    cpu->ops->scale_cap(cpu, &g.c, 1.0f, 30.0f, &g.c);
    gpu->ops->scale_cap(gpu, &g.g, 1.0f, 30.0f, &g.g);
    compare("scale_cap, cap 30, in place", &g, 1e-5);
    pair_free(&g);
    pair_free(&u);
    pair_free(&o);

    const int H = 8, HKV = 4, D = 256, page = 16, T = 3; /* gemma2-2b's heads */
    const struct {
        int ctx, window;
        float cap;
    } cases[] = {{100, 8, 0.0f}, {100, 0, 50.0f}, {1000, 64, 0.5f}, {40, 4096, 50.0f}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const int ctx = cases[ci].ctx;
        const int lens[3] = {ctx, ctx / 2 + 1, ctx};
        int32_t kv_len[3], pt_off[3];
        int total = 0;
        for (int i = 0; i < T; i++) {
            kv_len[i] = lens[i];
            pt_off[i] = total;
            total += (lens[i] + page - 1) / page;
        }
        int32_t *pt = malloc((size_t)total * sizeof *pt);
        for (int i = 0; i < total; i++)
            pt[i] = total - 1 - i;
        const int rowlen = HKV * D, rows = total * page;
        pair k = pair_new(HEARTH_F16, rowlen, rows), v = pair_new(HEARTH_F16, rowlen, rows);
        pair q = pair_new(HEARTH_F32, (int64_t)H * D, T), oa = pair_new(HEARTH_F32, (int64_t)H * D, T);
        pair_random(&k, 1.0f);
        pair_random(&v, 1.0f);
        pair_random(&q, 4.0f);
        poison(&oa);
        void *ro = dev_nan(oa.bytes);
        sync_or_die(gpu, "uploads");
        hearth_attn_meta m = {T, page, kv_len, pt_off, pt, total};
        const hearth_attn_opts ao = {cases[ci].window, cases[ci].cap};
        const float scale = 1.0f / sqrtf((float)D);
        hearth_tensor rt = oa.g;
        rt.data = ro;
        ref->ops->attention_ext(ref, &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &ao, &rt);
        sync_or_die(ref, "one-block attention_ext");
        cpu->ops->attention_ext(cpu, &q.c, &k.c, &v.c, &m, H, HKV, D, scale, &ao, &oa.c);
        gpu->ops->attention_ext(gpu, &q.g, &k.g, &v.g, &m, H, HKV, D, scale, &ao, &oa.g);
        char what[96];
        snprintf(what, sizeof what, "attention_ext ctx %d window %d cap %g", ctx, cases[ci].window,
                 (double)cases[ci].cap);
        compare(what, &oa, 1e-2);
        compare_dev(what, "one-block kernel", oa.g.data, ro, oa.bytes, 1e-4);
        gpu->ops->dealloc(gpu, ro);
        pair_free(&k);
        pair_free(&v);
        pair_free(&q);
        pair_free(&oa);
        free(pt);
    }
}

/* ---- graph replay */

enum { GR_H = 4, GR_D = 64, GR_E = GR_H * GR_D, GR_T = 2, GR_PAGE = 16, GR_PAGES = 16 };

typedef struct decode_bufs {
    hearth_tensor x, h, q, k, v, att, o, kpool, vpool;
} decode_bufs;

static hearth_tensor dev_tensor(hearth_dtype t, int64_t ne0, int64_t ne1) {
    return hearth_tensor_2d(t, ne0, ne1, dev_nan(hearth_dtype_row_size(t, ne0) * (size_t)ne1));
}

static void decode_bufs_free(decode_bufs *d) {
    hearth_tensor *all[] = {&d->x, &d->h, &d->q, &d->k, &d->v, &d->att, &d->o, &d->kpool, &d->vpool};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        gpu->ops->dealloc(gpu, all[i]->data);
}

/* One decode step of a one-layer model, as forward.c issues it. */
static void decode_step(hearth_backend *b, decode_bufs *d, const pair *wn, const pair *wq, const pair *wk,
                        const pair *wv, const pair *wo, const int32_t *pos, const int32_t *slots,
                        const hearth_attn_meta *m) {
    const hearth_rope_params rope = {.mode = HEARTH_ROPE_NORM,
                                     .n_rot = GR_D,
                                     .head_dim = GR_D,
                                     .freq_base = 10000.0f,
                                     .freq_scale = 1.0f,
                                     .attn_factor = 1.0f};
    b->ops->rms_norm(b, &d->x, &wn->g, 1e-5f, &d->h);
    b->ops->matmul(b, &wq->g, &d->h, NULL, &d->q);
    b->ops->matmul(b, &wk->g, &d->h, NULL, &d->k);
    b->ops->matmul(b, &wv->g, &d->h, NULL, &d->v);
    b->ops->rope(b, &d->q, GR_H, pos, &rope);
    b->ops->rope(b, &d->k, GR_H, pos, &rope);
    b->ops->kv_store(b, &d->kpool, &d->k, slots);
    b->ops->kv_store(b, &d->vpool, &d->v, slots);
    b->ops->attention(b, &d->q, &d->kpool, &d->vpool, m, GR_H, GR_H, GR_D, 0.125f, &d->att);
    b->ops->matmul(b, &wo->g, &d->att, NULL, &d->o);
    b->ops->add(b, &d->x, &d->o, &d->x);
}

/* The same decode steps on the graph backend and on `eager` (same kernels, no
 * graphs), positions advancing and once jumping past a capacity: every step's
 * output must be bit-identical, and graphs must have been captured and replayed. */
static void test_graph_replay(void) {
    printf("CUDA graph replay vs eager launches (decode steps of a one-layer model)\n");
    pair wn = pair_new(HEARTH_F32, GR_E, 1), wq = pair_new(HEARTH_Q4_0, GR_E, GR_E),
         wk = pair_new(HEARTH_Q8_0, GR_E, GR_E), wv = pair_new(HEARTH_F16, GR_E, GR_E),
         wo = pair_new(HEARTH_Q4_0, GR_E, GR_E);
    pair *ws[] = {&wn, &wq, &wk, &wv, &wo};
    for (int i = 0; i < 5; i++)
        pair_random(ws[i], 1.0f);
    decode_bufs d[2]; /* 0: graphs, 1: eager */
    const size_t pool_bytes = hearth_dtype_row_size(HEARTH_F16, GR_E) * GR_PAGES * GR_PAGE;
    uint16_t *pool0 = malloc(pool_bytes);
    for (size_t i = 0; i < pool_bytes / 2; i++)
        pool0[i] = (uint16_t)(0x3000 + rnd() % 0x0c00) ^ (rnd() & 0x8000);
    for (int j = 0; j < 2; j++) {
        d[j].x = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].h = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].q = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].k = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].v = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].att = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].o = dev_tensor(HEARTH_F32, GR_E, GR_T);
        d[j].kpool = dev_tensor(HEARTH_F16, GR_E, GR_PAGES * GR_PAGE);
        d[j].vpool = dev_tensor(HEARTH_F16, GR_E, GR_PAGES * GR_PAGE);
        gpu->ops->upload(gpu, d[j].kpool.data, pool0, pool_bytes);
        gpu->ops->upload(gpu, d[j].vpool.data, pool0, pool_bytes);
    }
    free(pool0);
    /* sequence A: pages 3, 7, 1, 9, 12, 0, 5, 14; sequence B: page 10 */
    const int32_t pt[9] = {3, 7, 1, 9, 12, 0, 5, 14, 10};
    const hearth_cuda_counters k0 = counters();
    const int steps = 9;
    for (int s = 0; s < steps; s++) {
        /* steps 0-5 stay under 64 keys; 6-8 jump to ~100 (another capacity: a new graph) */
        const int32_t pos[GR_T] = {s < 6 ? 20 + s : 95 + s, 2 + s};
        const int32_t slots[GR_T] = {pt[pos[0] / GR_PAGE] * GR_PAGE + pos[0] % GR_PAGE,
                                     pt[8] * GR_PAGE + pos[1]};
        const int32_t kv_len[GR_T] = {pos[0] + 1, pos[1] + 1}, pt_off[GR_T] = {0, 8};
        const hearth_attn_meta m = {GR_T, GR_PAGE, kv_len, pt_off, pt, 9};
        float xs[GR_E * GR_T];
        fill(xs, GR_E * GR_T, 1.0f);
        for (int j = 0; j < 2; j++)
            gpu->ops->upload(gpu, d[j].x.data, xs, sizeof xs);
        sync_or_die(gpu, "uploads");
        decode_step(gpu, &d[0], &wn, &wq, &wk, &wv, &wo, pos, slots, &m);
        sync_or_die(gpu, "graph step");
        decode_step(eager, &d[1], &wn, &wq, &wk, &wv, &wo, pos, slots, &m);
        sync_or_die(eager, "eager step");
        char what[64];
        snprintf(what, sizeof what, "decode step %d (positions %d, %d)", s, pos[0], pos[1]);
        compare_dev(what, "eager", d[0].x.data, d[1].x.data, sizeof xs, 0);
    }
    const hearth_cuda_counters k1 = counters();
    printf("  graphs captured %llu, replayed %llu, eager segments %llu\n",
           (unsigned long long)(k1.graph_captures - k0.graph_captures),
           (unsigned long long)(k1.graph_replays - k0.graph_replays),
           (unsigned long long)(k1.eager_segments - k0.eager_segments));
    CHECKF(k1.graph_captures - k0.graph_captures >= 2, "expected a capture per capacity");
    CHECKF(k1.graph_replays - k0.graph_replays >= 5, "expected the decode steps to replay graphs");
    for (int j = 0; j < 2; j++)
        decode_bufs_free(&d[j]);
    for (int i = 0; i < 5; i++)
        pair_free(ws[i]);
}

/* Qwen3's per-head q/k norm has tokens x heads rows (here 4 x 32 = 128, past the
 * 32-token graph limit): a decode segment holding one must still be captured and
 * replayed, and give the CPU's result. */
static void test_graph_per_head_norm(void) {
    printf("CUDA graphs: a decode segment with a per-head RMS norm (tokens x heads rows)\n");
    enum { T = 4, H = 32, D = 64, K = 256 };
    pair w = pair_new(HEARTH_Q4_0, K, (int64_t)H * D), x = pair_new(HEARTH_F32, K, T),
         q = pair_new(HEARTH_F32, (int64_t)H * D, T), nw = pair_new(HEARTH_F32, D, 1);
    pair_random(&w, 1.0f);
    pair_random(&x, 1.0f);
    pair_random(&nw, 1.0f);
    hearth_tensor qc = {HEARTH_F32, D, (int64_t)T * H, D * sizeof(float), q.c.data};
    hearth_tensor qg = {HEARTH_F32, D, (int64_t)T * H, D * sizeof(float), q.g.data};
    cpu->ops->matmul(cpu, &w.c, &x.c, NULL, &q.c);
    cpu->ops->rms_norm(cpu, &qc, &nw.c, 1e-6f, &qc);
    const hearth_cuda_counters k0 = counters();
    for (int step = 0; step < 4; step++) { /* eager, capture, replay, replay */
        gpu->ops->matmul(gpu, &w.g, &x.g, NULL, &q.g);
        gpu->ops->rms_norm(gpu, &qg, &nw.g, 1e-6f, &qg);
        sync_or_die(gpu, "per-head norm step");
    }
    const hearth_cuda_counters k1 = counters();
    compare("matvec q4_0 + per-head rms_norm (graph)", &q, mm_tol(HEARTH_Q4_0));
    CHECKF(k1.graph_replays - k0.graph_replays >= 2,
           "per-head norm segment: %llu graph replays, expected >= 2",
           (unsigned long long)(k1.graph_replays - k0.graph_replays));
    pair_free(&w);
    pair_free(&x);
    pair_free(&q);
    pair_free(&nw);
}

/* An op the GPU cannot do must surface from synchronize with the op's name. */
static void test_error_path(void) {
    printf("error reporting\n");
    hearth_backend_config cfg = {"cuda", 0};
    hearth_error err = {0};
    hearth_backend *g = hearth_backend_create(&cfg, &err);
    REQUIRE(g != NULL);
    void *mem = g->ops->alloc(g, 4096, &err);
    REQUIRE(mem != NULL);
    float src[32] = {0};
    void *srcd = g->ops->alloc(g, sizeof src, &err);
    g->ops->upload(g, srcd, src, sizeof src);
    hearth_tensor pool = hearth_tensor_2d(HEARTH_Q4_1, 32, 4, mem),
                  s = hearth_tensor_2d(HEARTH_F32, 32, 1, srcd);
    int32_t slot = 0;
    g->ops->kv_store(g, &pool, &s, &slot);
    hearth_status st = g->ops->synchronize(g, &err);
    CHECKF(st == HEARTH_ERR_BACKEND && strstr(err.msg, "kv_store") && strstr(err.msg, "q4_1"), "got %d: %s",
           st, err.msg);
    printf("  unsupported op reported as: %s\n", err.msg);
    /* a huge allocation fails cleanly and is not sticky */
    hearth_error e2 = {0};
    void *huge = g->ops->alloc(g, (size_t)1 << 50, &e2);
    CHECKF(huge == NULL && e2.code == HEARTH_ERR_NOMEM && strstr(e2.msg, "cannot allocate"), "%s", e2.msg);
    g->ops->dealloc(g, mem);
    g->ops->dealloc(g, srcd);
    hearth_backend_free(g);
}

/* A CUDA backend created under the given environment settings. */
static hearth_backend *gpu_with(const char *kernels, const char *graphs) {
    if (kernels) setenv("HEARTH_CUDA_KERNELS", kernels, 1);
    if (graphs) setenv("HEARTH_CUDA_GRAPHS", graphs, 1);
    hearth_backend_config cfg = {"cuda", 0};
    hearth_error err = {0};
    hearth_backend *b = hearth_backend_create(&cfg, &err);
    unsetenv("HEARTH_CUDA_KERNELS");
    unsetenv("HEARTH_CUDA_GRAPHS");
    if (!b) fprintf(stderr, "test_cuda_ops: %s\n", err.msg);
    return b;
}

int main(void) {
    hearth_error err = {0};
    cpu = hearth_cpu_backend_create(0, &err);
    unsetenv("HEARTH_CUDA_KERNELS");
    unsetenv("HEARTH_CUDA_GRAPHS");
    gpu = gpu_with(NULL, NULL);
    if (!gpu) return 2;
    ref = gpu_with("simple", "0");
    eager = gpu_with(NULL, "0");
    REQUIRE(ref && eager);
    hearth_backend_info bi;
    gpu->ops->info(gpu, &bi);
    printf("test_cuda_ops on %s: %s\n", bi.name, bi.device);
    test_get_rows();
    test_matmul();
    test_matmul_paths();
    test_norm_elementwise();
    test_encoder_ops();
    test_argmax();
    test_rope();
    test_kv_and_attention(HEARTH_F16, 32, 8, 128); /* llama3-8b: G = 4 */
    test_kv_and_attention(HEARTH_F32, 14, 2, 64);  /* qwen2-0.5b: G = 7 */
    test_kv_and_attention(HEARTH_Q8_0, 8, 8, 64);  /* no GQA */
    test_kv_and_attention(HEARTH_F16, 32, 2, 256); /* G = 16, head_dim 256: > 48 KB shared */
    test_attention_split(HEARTH_F16, 32, 8, 128);  /* llama3-8b */
    test_attention_split(HEARTH_Q8_0, 14, 2, 64);  /* qwen2-0.5b, Q8_0 cache */
    test_attention_split(HEARTH_F32, 16, 1, 256);  /* G = 16, head_dim 256: > 48 KB shared */
    test_gemma_ops();
    test_graph_replay();
    test_graph_per_head_norm();
    test_error_path();
    hearth_backend_free(eager);
    hearth_backend_free(ref);
    hearth_backend_free(gpu);
    hearth_backend_free(cpu);
    return test_summary("cuda_ops");
}
