/*
 * test_vulkan_ops.c - every op of the Vulkan backend against the CPU backend.
 *
 * Runs on the first llvmpipe/lavapipe device if there is one (else the first
 * Vulkan device), on random inputs with odd sizes (rows, tokens and head_dim
 * that are not multiples of the workgroup size; KV lengths spanning several
 * attention tiles and pages). Tolerances are relative to the largest |value|
 * of the CPU result, per op and type:
 *   get_rows / get_rows_f32 / kv_store / copy: exact (the same dequantisation)
 *   add, silu_mul, rope (host-computed angles), rms_norm: 1e-5
 *   matmul F32 1e-4 (summation order); F16 2e-3 (the CPU rounds activations to
 *   F16); Q8_0/Q4_0 2e-2 (the CPU quantises activations to Q8_0 blocks)
 *   attention: F32 KV 1e-4; F16 KV 2e-3 (the CPU rounds Q to F16 as the shader
 *   does; exp and summation order differ)
 * Without a Vulkan build or device it prints "skipped: no Vulkan device" and passes.
 */
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "test.h"

#ifdef HEARTH_HAVE_VULKAN
hearth_backend *hearth_vulkan_backend_create(int device, bool allow_software, hearth_error *err);

static hearth_backend *cpu, *vk;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static float *rand_f32(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* A pair of tensors with the same bytes: host memory (CPU) and device memory. */
typedef struct pair {
    hearth_tensor c, v;
    size_t bytes;
} pair;

static pair make_pair(hearth_dtype t, int64_t ne0, int64_t ne1, const void *host) {
    pair p;
    p.bytes = hearth_dtype_row_size(t, ne0) * (size_t)ne1;
    void *cm = malloc(p.bytes ? p.bytes : 4);
    if (host) memcpy(cm, host, p.bytes);
    else memset(cm, 0, p.bytes);
    hearth_error err = {0};
    void *vm = vk->ops->alloc(vk, p.bytes, &err);
    REQUIRE(vm != NULL);
    vk->ops->upload(vk, vm, cm, p.bytes);
    p.c = hearth_tensor_2d(t, ne0, ne1, cm);
    p.v = hearth_tensor_2d(t, ne0, ne1, vm);
    return p;
}

/* Random weights of type t: random floats through the reference quantiser. */
static pair make_weights(hearth_dtype t, int64_t ne0, int64_t ne1) {
    float *f = rand_f32((size_t)(ne0 * ne1), 1.0f);
    size_t rs = hearth_dtype_row_size(t, ne0);
    char *q = malloc(rs * (size_t)ne1);
    for (int64_t r = 0; r < ne1; r++) {
        if (t == HEARTH_F32) memcpy(q + r * rs, f + r * ne0, rs);
        else hearth_dtype_info(t)->from_float(f + r * ne0, q + r * rs, ne0);
    }
    pair p = make_pair(t, ne0, ne1, q);
    free(f);
    free(q);
    return p;
}

static void free_pair(pair *p) {
    free(p->c.data);
    vk->ops->dealloc(vk, p->v.data);
}

/* Compare the device result with the CPU one; returns max error / max |ref|. */
static double compare(const char *what, pair *p, double tol) {
    hearth_error err = {0};
    hearth_status st = vk->ops->synchronize(vk, &err);
    CHECKF(st == HEARTH_OK, "%s: synchronize: %s", what, err.msg);
    char *got = malloc(p->bytes);
    vk->ops->download(vk, got, p->v.data, p->bytes);
    int64_t n = p->c.ne0 * p->c.ne1;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    const hearth_dtype_traits *tr = hearth_dtype_info(p->c.type);
    for (int64_t r = 0; r < p->c.ne1; r++) {
        tr->to_float((char *)p->c.data + r * p->c.nb1, a + r * p->c.ne0, p->c.ne0);
        tr->to_float(got + r * p->c.nb1, b + r * p->c.ne0, p->c.ne0);
    }
    double mx = 1e-30, e = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i]) > mx) mx = fabs(a[i]);
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN counts as a failure */
    }
    double rel = e / mx;
    CHECKF(rel <= tol, "%s: max error %.3g relative to %.3g (tolerance %.1g)", what, rel, mx, tol);
    free(got);
    free(a);
    free(b);
    return rel;
}

/* ------------------------------------------------------------ ops */

static const hearth_dtype wtypes[] = {HEARTH_F32, HEARTH_F16, HEARTH_Q8_0, HEARTH_Q4_0};

static void test_get_rows(void) {
    int32_t ids[] = {4, 0, 44, 7, 7, 31, 2};
    for (int i = 0; i < 4; i++) {
        hearth_dtype t = wtypes[i];
        int64_t ne0 = t == HEARTH_F32 || t == HEARTH_F16 ? 99 : 96; /* odd where blocks allow */
        pair w = make_weights(t, ne0, 45), o = make_pair(HEARTH_F32, ne0, 7, NULL);
        cpu->ops->get_rows(cpu, &w.c, ids, 7, &o.c);
        vk->ops->get_rows(vk, &w.v, ids, 7, &o.v);
        char name[64];
        snprintf(name, sizeof name, "get_rows %s", hearth_dtype_name(t));
        compare(name, &o, 0);
        free_pair(&w);
        free_pair(&o);
    }
    float *x = rand_f32(77 * 13, 3.0f);
    pair xs = make_pair(HEARTH_F32, 77, 13, x), o = make_pair(HEARTH_F32, 77, 4, NULL);
    int32_t rows[] = {12, 0, 5, 12};
    cpu->ops->get_rows_f32(cpu, &xs.c, rows, 4, &o.c);
    vk->ops->get_rows_f32(vk, &xs.v, rows, 4, &o.v);
    compare("get_rows_f32", &o, 0);
    free_pair(&xs);
    free_pair(&o);
    free(x);
}

static void test_rms_norm(void) {
    float *x = rand_f32(131 * 9, 5.0f), *w = rand_f32(131, 1.0f);
    pair xs = make_pair(HEARTH_F32, 131, 9, x), ws = make_pair(HEARTH_F32, 131, 1, w),
         o = make_pair(HEARTH_F32, 131, 9, NULL);
    cpu->ops->rms_norm(cpu, &xs.c, &ws.c, 1e-5f, &o.c);
    vk->ops->rms_norm(vk, &xs.v, &ws.v, 1e-5f, &o.v);
    compare("rms_norm", &o, 1e-5);
    /* in place, per head (the qwen3 q_norm view) */
    hearth_tensor hc = {HEARTH_F32, 33, 35, 33 * 4, xs.c.data}, hv = hc;
    pair w2 = make_pair(HEARTH_F32, 33, 1, w);
    hv.data = xs.v.data;
    cpu->ops->rms_norm(cpu, &hc, &w2.c, 1e-6f, &hc);
    vk->ops->rms_norm(vk, &hv, &w2.v, 1e-6f, &hv);
    compare("rms_norm in place", &xs, 1e-5);
    free_pair(&xs);
    free_pair(&ws);
    free_pair(&w2);
    free_pair(&o);
    free(x);
    free(w);
}

static void test_matmul(void) {
    static const double tol[] = {1e-4, 2e-3, 2e-2, 2e-2};
    for (int i = 0; i < 4; i++) {
        hearth_dtype t = wtypes[i];
        int64_t k = t == HEARTH_F32 || t == HEARTH_F16 ? 67 : 160, rows = 37;
        for (int nt = 1; nt <= 11; nt += 10) { /* decode and a batch beyond the shader's 8-token tile */
            float *x = rand_f32((size_t)(k * nt), 1.0f), *bias = rand_f32((size_t)rows, 1.0f);
            pair w = make_weights(t, k, rows), xs = make_pair(HEARTH_F32, k, nt, x),
                 bs = make_pair(HEARTH_F32, rows, 1, bias), o = make_pair(HEARTH_F32, rows, nt, NULL);
            const bool with_bias = nt > 1;
            cpu->ops->matmul(cpu, &w.c, &xs.c, with_bias ? &bs.c : NULL, &o.c);
            vk->ops->matmul(vk, &w.v, &xs.v, with_bias ? &bs.v : NULL, &o.v);
            char name[64];
            snprintf(name, sizeof name, "matmul %s x %d tokens%s", hearth_dtype_name(t), nt, with_bias ? " + bias" : "");
            compare(name, &o, tol[i]);
            free_pair(&w);
            free_pair(&xs);
            free_pair(&bs);
            free_pair(&o);
            free(x);
            free(bias);
        }
    }
}

static void test_elementwise(void) {
    float *a = rand_f32(45 * 7, 4.0f), *b = rand_f32(45 * 7, 2.0f);
    pair as = make_pair(HEARTH_F32, 45, 7, a), bs = make_pair(HEARTH_F32, 45, 7, b),
         o = make_pair(HEARTH_F32, 45, 7, NULL);
    cpu->ops->add(cpu, &as.c, &bs.c, &o.c);
    vk->ops->add(vk, &as.v, &bs.v, &o.v);
    compare("add", &o, 1e-6);
    cpu->ops->silu_mul(cpu, &as.c, &bs.c, &o.c);
    vk->ops->silu_mul(vk, &as.v, &bs.v, &o.v);
    compare("silu_mul", &o, 1e-5);
    cpu->ops->add(cpu, &as.c, &bs.c, &as.c); /* out aliases a */
    vk->ops->add(vk, &as.v, &bs.v, &as.v);
    compare("add in place", &as, 1e-6);
    free_pair(&as);
    free_pair(&bs);
    free_pair(&o);
    free(a);
    free(b);
}

static void test_rope(void) {
    const int n = 5, H = 3, D = 40;
    int32_t pos[] = {0, 1, 17, 300, 4095};
    float ff[16];
    for (int i = 0; i < 16; i++) ff[i] = 1.0f + (float)i * 0.5f;
    for (int mode = 0; mode < 2; mode++) {
        float *x = rand_f32((size_t)n * H * D, 2.0f);
        pair xs = make_pair(HEARTH_F32, H * D, n, x);
        hearth_rope_params p = {mode ? HEARTH_ROPE_NEOX : HEARTH_ROPE_NORM, 32, D, 10000.0f, 0.5f, mode ? ff : NULL, 1.0f};
        cpu->ops->rope(cpu, &xs.c, H, pos, &p);
        vk->ops->rope(vk, &xs.v, H, pos, &p);
        compare(mode ? "rope neox + freq_factors" : "rope norm (partial n_rot)", &xs, 1e-5);
        free_pair(&xs);
        free(x);
    }
}

/* kv_store into a paged pool, then attention over it, for F16 and F32 pools. */
static void test_kv_attention(void) {
    const int page = 16, n_pages = 12, slots = page * n_pages;
    const int hds[] = {32, 80};
    for (int pi = 0; pi < 2; pi++)
        for (int hi = 0; hi < 2; hi++) {
            hearth_dtype kt = pi ? HEARTH_F32 : HEARTH_F16;
            const int D = hds[hi], H = 6, HKV = 2, n = 5, KV = HKV * D;
            pair kp = make_pair(kt, KV, slots, NULL), vp = make_pair(kt, KV, slots, NULL);
            /* fill the pools through kv_store: every slot, in a scrambled order */
            float *kx = rand_f32((size_t)slots * KV, 1.0f), *vx = rand_f32((size_t)slots * KV, 1.0f);
            pair ks = make_pair(HEARTH_F32, KV, slots, kx), vs = make_pair(HEARTH_F32, KV, slots, vx);
            int32_t *sl = malloc(slots * sizeof *sl);
            for (int i = 0; i < slots; i++) sl[i] = (i * 37) % slots; /* 37 is coprime with 192 */
            cpu->ops->kv_store(cpu, &kp.c, &ks.c, sl);
            vk->ops->kv_store(vk, &kp.v, &ks.v, sl);
            cpu->ops->kv_store(cpu, &vp.c, &vs.c, sl);
            vk->ops->kv_store(vk, &vp.v, &vs.v, sl);
            char name[96];
            snprintf(name, sizeof name, "kv_store %s", hearth_dtype_name(kt));
            compare(name, &kp, 0);
            compare(name, &vp, 0);
            /* two sequences with scrambled page tables; kv lengths across tiles */
            int32_t pt[] = {3, 7, 1, 10, 0, 5, 11, 2, 9, 4, 6, 8};
            int32_t kv_len[] = {1, 9, 70, 150, 33}, pt_off[] = {0, 0, 0, 0, 6};
            hearth_attn_meta m = {n, page, kv_len, pt_off, pt, 12};
            float *q = rand_f32((size_t)n * H * D, 2.0f);
            pair qs = make_pair(HEARTH_F32, H * D, n, q), o = make_pair(HEARTH_F32, H * D, n, NULL);
            float scale = 1.0f / sqrtf((float)D);
            cpu->ops->attention(cpu, &qs.c, &kp.c, &vp.c, &m, H, HKV, D, scale, &o.c);
            vk->ops->attention(vk, &qs.v, &kp.v, &vp.v, &m, H, HKV, D, scale, &o.v);
            snprintf(name, sizeof name, "attention %s KV, head_dim %d, GQA %d/%d", hearth_dtype_name(kt), D, H, HKV);
            compare(name, &o, kt == HEARTH_F32 ? 1e-4 : 2e-3);
            /* copy one page (copy-on-write) */
            size_t pb = (size_t)page * kp.c.nb1;
            memmove((char *)kp.c.data + 5 * pb, (char *)kp.c.data + 2 * pb, pb);
            vk->ops->copy(vk, (char *)kp.v.data + 5 * pb, (char *)kp.v.data + 2 * pb, pb);
            compare("copy page", &kp, 0);
            free_pair(&kp);
            free_pair(&vp);
            free_pair(&ks);
            free_pair(&vs);
            free_pair(&qs);
            free_pair(&o);
            free(kx);
            free(vx);
            free(q);
            free(sl);
        }
}

static void test_errors(void) {
    hearth_error err = {0};
    hearth_backend_info bi;
    vk->ops->info(vk, &bi);
    void *p = vk->ops->alloc(vk, (size_t)1 << 40, &err); /* beyond any storage-buffer range */
    CHECK(p == NULL);
    CHECK_CONTAINS(err.msg, "maxStorageBufferRange");
    CHECK(!vk->ops->supports_type(vk, HEARTH_Q4_K));
    CHECK(vk->ops->supports_type(vk, HEARTH_Q4_0));
    CHECK(!bi.host_visible);
}

int main(void) {
    hearth_error err = {0};
    cpu = hearth_cpu_backend_create(2, &err);
    REQUIRE(cpu != NULL);
    for (int d = 0; d < 8 && !vk; d++) { /* prefer lavapipe: the CI device */
        hearth_backend *b = hearth_vulkan_backend_create(d, true, NULL);
        if (!b) continue;
        hearth_backend_info bi;
        b->ops->info(b, &bi);
        if (strstr(bi.device, "llvmpipe")) vk = b;
        else hearth_backend_free(b);
    }
    if (!vk) vk = hearth_vulkan_backend_create(-1, true, &err);
    if (!vk) {
        printf("skipped: no Vulkan device (%s)\n", err.msg);
        hearth_backend_free(cpu);
        return 0;
    }
    hearth_backend_info bi;
    vk->ops->info(vk, &bi);
    printf("device: %s %s\n", bi.name, bi.device);
    test_get_rows();
    test_rms_norm();
    test_matmul();
    test_elementwise();
    test_rope();
    test_kv_attention();
    test_errors();
    hearth_backend_free(vk);
    hearth_backend_free(cpu);
    return test_summary("test_vulkan_ops");
}
#else
int main(void) {
    printf("skipped: no Vulkan device (this build has no Vulkan backend)\n");
    return 0;
}
#endif
