/*
 * test_cuda_ops.c - parity of every CUDA backend op with the CPU backend.
 *
 * Owner: the CUDA backend (issue 8). Built only when HEARTH_HAVE_CUDA and run
 * by tests/gpu/run.sh on a machine with a GPU (not in ctest: CI has none).
 * Each case makes random inputs, runs the op on both backends and compares;
 * the GPU output is poisoned (NaN-filled) before every run so an element the
 * kernel forgot shows up as NaN. Tolerances are per weight type: the CPU dots
 * quantized weights with 8-bit activations (and F16 weights with F16
 * activations), the GPU dots them in F32, so quantized cases differ by ~1 %.
 * Error metric: max |gpu - cpu| / max |cpu| over the output (and no NaN).
 * Exit status: 0 all pass, 1 a failure, 2 no usable GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "test.h"

static hearth_backend *cpu, *gpu;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float frand(void) { return (float)(rnd() % 2000001) / 1000000.0f - 1.0f; } /* [-1, 1] */

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
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
        if (p->c.type == HEARTH_F32) memcpy(dst, row, (size_t)p->c.ne0 * sizeof(float));
        else if (!hearth_quantize_row(p->c.type, row, dst, p->c.ne0)) {
            fprintf(stderr, "cannot quantize to %s\n", hearth_dtype_name(p->c.type));
            exit(1);
        }
    }
    gpu->ops->upload(gpu, p->g.data, p->c.data, p->bytes);
    free(row);
}
/* Same bytes on the GPU as on the CPU side. */
static void pair_sync_to_gpu(pair *p) { gpu->ops->upload(gpu, p->g.data, p->c.data, p->bytes); }
static void poison(pair *p) {
    float *nan = malloc(p->bytes);
    for (size_t i = 0; i < p->bytes / sizeof(float); i++) nan[i] = NAN;
    gpu->ops->upload(gpu, p->g.data, nan, p->bytes);
    free(nan);
}

/* Synchronize, download and compare an F32 output; returns the error. */
static double compare(const char *what, pair *p, double tol) {
    hearth_error err = {0};
    hearth_status st = gpu->ops->synchronize(gpu, &err);
    CHECKF(st == HEARTH_OK, "%s: synchronize: %s", what, err.msg);
    if (st) exit(1); /* the context is gone: later cases would only repeat it */
    float *g = malloc(p->bytes);
    gpu->ops->download(gpu, g, p->g.data, p->bytes);
    gpu->ops->synchronize(gpu, NULL);
    const float *c = p->c.data;
    size_t n = p->bytes / sizeof(float), nan = 0;
    double maxref = 1e-30, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(g[i]) && !isnan(c[i])) nan++;
        if (fabs(c[i]) > maxref) maxref = fabs(c[i]);
        double d = fabs((double)g[i] - c[i]);
        if (d > maxdiff) maxdiff = d;
    }
    double e = maxdiff / maxref;
    CHECKF(nan == 0 && e <= tol, "%s: %zu NaN, error %.3g > %.3g", what, nan, e, tol);
    printf("  %-44s err %.2e (tol %.0e)%s\n", what, e, tol, nan || e > tol ? "  FAIL" : "");
    free(g);
    return e;
}

static const hearth_dtype k_types[] = {HEARTH_F32, HEARTH_F16, HEARTH_BF16, HEARTH_Q8_0,
                                       HEARTH_Q4_0, HEARTH_Q4_K, HEARTH_Q6_K};

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
        compare(what, &o, 1e-6);
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
    pair x = pair_new(HEARTH_F32, 4096, 5), w = pair_new(HEARTH_F32, 4096, 1), o = pair_new(HEARTH_F32, 4096, 5);
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
    for (int i = 0; i < 64; i++) ff[i] = 1.0f + (float)(rnd() % 8);
    int32_t pos[7] = {0, 1, 17, 300, 301, 4095, 8000};
    for (int mode = 0; mode < 2; mode++)
        for (int variant = 0; variant < 3; variant++) {
            pair x = pair_new(HEARTH_F32, (int64_t)H * D, T);
            pair_random(&x, 1.0f);
            hearth_rope_params p = {mode ? HEARTH_ROPE_NEOX : HEARTH_ROPE_NORM,
                                    variant == 2 ? 64 : D,
                                    D,
                                    500000.0f,
                                    variant == 1 ? 0.25f : 1.0f,
                                    variant == 1 ? ff : NULL,
                                    1.0f};
            cpu->ops->rope(cpu, &x.c, H, pos, &p);
            gpu->ops->rope(gpu, &x.g, H, pos, &p);
            char what[64];
            snprintf(what, sizeof what, "rope %s %s", mode ? "neox" : "norm",
                     variant == 0 ? "plain" : variant == 1 ? "freq_factors+scale" : "n_rot=64");
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
    for (int i = 0; i < NS; i++) slots[i] = (int32_t)(i * 37 + 5) % rows;
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
                if (fabs((double)a[j] - b[j]) > maxd || isnan(b[j])) maxd = isnan(b[j]) ? INFINITY : fabs((double)a[j] - b[j]);
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
    for (int i = 0; i < n_pages; i++) perm[i] = i;
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
    hearth_tensor pool = hearth_tensor_2d(HEARTH_Q4_1, 32, 4, mem), s = hearth_tensor_2d(HEARTH_F32, 32, 1, srcd);
    int32_t slot = 0;
    g->ops->kv_store(g, &pool, &s, &slot);
    hearth_status st = g->ops->synchronize(g, &err);
    CHECKF(st == HEARTH_ERR_BACKEND && strstr(err.msg, "kv_store") && strstr(err.msg, "q4_1"), "got %d: %s", st,
           err.msg);
    printf("  unsupported op reported as: %s\n", err.msg);
    /* a huge allocation fails cleanly and is not sticky */
    hearth_error e2 = {0};
    void *huge = g->ops->alloc(g, (size_t)1 << 50, &e2);
    CHECKF(huge == NULL && e2.code == HEARTH_ERR_NOMEM && strstr(e2.msg, "cannot allocate"), "%s", e2.msg);
    g->ops->dealloc(g, mem);
    g->ops->dealloc(g, srcd);
    hearth_backend_free(g);
}

int main(void) {
    hearth_error err = {0};
    cpu = hearth_cpu_backend_create(0, &err);
    hearth_backend_config cfg = {"cuda", 0};
    gpu = hearth_backend_create(&cfg, &err);
    if (!gpu) {
        fprintf(stderr, "test_cuda_ops: %s\n", err.msg);
        return 2;
    }
    hearth_backend_info bi;
    gpu->ops->info(gpu, &bi);
    printf("test_cuda_ops on %s: %s\n", bi.name, bi.device);
    test_get_rows();
    test_matmul();
    test_norm_elementwise();
    test_rope();
    test_kv_and_attention(HEARTH_F16, 32, 8, 128);  /* llama3-8b: G = 4 */
    test_kv_and_attention(HEARTH_F32, 14, 2, 64);   /* qwen2-0.5b: G = 7 */
    test_kv_and_attention(HEARTH_Q8_0, 8, 8, 64);   /* no GQA */
    test_kv_and_attention(HEARTH_F16, 32, 2, 256);  /* G = 16, head_dim 256: > 48 KB shared */
    test_error_path();
    hearth_backend_free(gpu);
    hearth_backend_free(cpu);
    return test_summary("cuda_ops");
}
