/*
 * test_vulkan_ops.c - every op and every weight type of the Vulkan backend
 * against the CPU backend, on a real Vulkan driver (lavapipe in CI).
 *
 * Runs on the first llvmpipe/lavapipe device if there is one (else the first
 * Vulkan device), four times: with the shader variants the device allows
 * (subgroup arithmetic, 16/8-bit storage views), with HEARTH_VK_SUBGROUPS=0
 * (shared-memory reductions), with HEARTH_VK_STORAGE16=0 (32-bit word reads
 * of F16 data and int8 quants) and with both, on random inputs with odd
 * sizes (rows, tokens and head_dim that are not multiples of the workgroup
 * size or the rows per workgroup; KV lengths spanning several attention tiles
 * and pages). Tolerances are relative to the
 * largest |value| of the CPU result, per op and type, each justified where it
 * is used:
 *   get_rows (all 13 weight types) / get_rows_f32 / kv_store F32,F16 / copy: exact
 *   add, silu_mul, rope (host-computed angles), rms_norm: 1e-5 (1e-6 for add)
 *   matmul vs the CPU: matmul_tol() (F32 1e-4, F16 2e-3, BF16 1e-2, quantized
 *   2e-2: the CPU rounds activations); vs the exact product of the
 *   dequantised weights: 1e-5 for every type
 *   kv_store Q8_0: one quantisation step; attention: test_kv_attention()
 *   layer_norm, gelu, bidirectional (encoder) attention: test_encoder_ops()
 * Also checks --profile timestamps and supports_type. HEARTH_TEST_VERBOSE=1
 * prints every measured error. Without a Vulkan build or device it prints
 * "skipped: no Vulkan device" and exits 77 (ctest: skipped).
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdbool.h>
#include <stdint.h>

#include "backends/backend_impl.h"
#include "backends/vulkan/vk_backend.h"
#include "runtime/serving/sampling.h"
#include "test.h"

#ifdef HEARTH_HAVE_VULKAN
static hearth_backend *cpu, *vk; /* vk: the device under test (one shader variant) */
static const char *variant = "";
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static float *rand_f32(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
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
    if (host)
        memcpy(cm, host, p.bytes);
    else
        memset(cm, 0, p.bytes);
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
        if (t == HEARTH_F32)
            memcpy(q + r * rs, f + r * ne0, rs);
        else
            hearth_dtype_info(t)->from_float(f + r * ne0, q + r * rs, ne0);
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

/* max |ref - got| / max |ref| over n values, checked against tol (NaN fails). */
static double check_close(const char *what, const float *ref, const float *got, int64_t n, double tol) {
    double mx = 1e-30, e = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
        double d = fabs((double)ref[i] - got[i]);
        if (!(d <= e)) e = d; /* NaN counts as a failure */
    }
    double rel = e / mx;
    CHECKF(rel <= tol, "[%s] %s: max error %.3g relative to %.3g (tolerance %.1g)", variant, what, rel, mx,
           tol);
    if (tol > 0 && getenv("HEARTH_TEST_VERBOSE"))
        printf("  [%s] %s: %.2g (tolerance %.1g)\n", variant, what, rel, tol);
    return rel;
}

/* The device result of p as floats (synchronizes first); caller frees. */
static float *device_floats(const char *what, pair *p) {
    hearth_error err = {0};
    hearth_status st = vk->ops->synchronize(vk, &err);
    CHECKF(st == HEARTH_OK, "[%s] %s: synchronize: %s", variant, what, err.msg);
    char *got = malloc(p->bytes);
    vk->ops->download(vk, got, p->v.data, p->bytes);
    float *b = malloc((size_t)(p->c.ne0 * p->c.ne1) * sizeof *b);
    const hearth_dtype_traits *tr = hearth_dtype_info(p->c.type);
    for (int64_t r = 0; r < p->c.ne1; r++)
        tr->to_float(got + r * p->c.nb1, b + r * p->c.ne0, p->c.ne0);
    free(got);
    return b;
}

/* Compare the device result with the CPU one; returns max error / max |ref|. */
static double compare(const char *what, pair *p, double tol) {
    int64_t n = p->c.ne0 * p->c.ne1;
    float *a = malloc((size_t)n * sizeof *a), *b = device_floats(what, p);
    const hearth_dtype_traits *tr = hearth_dtype_info(p->c.type);
    for (int64_t r = 0; r < p->c.ne1; r++)
        tr->to_float((char *)p->c.data + r * p->c.nb1, a + r * p->c.ne0, p->c.ne0);
    double rel = check_close(what, a, b, n, tol);
    free(a);
    free(b);
    return rel;
}

/* ------------------------------------------------------------ ops */

static const hearth_dtype wtypes[] = {HEARTH_F32,  HEARTH_F16,  HEARTH_BF16, HEARTH_Q8_0, HEARTH_Q4_0,
                                      HEARTH_Q4_1, HEARTH_Q5_0, HEARTH_Q5_1, HEARTH_Q2_K, HEARTH_Q3_K,
                                      HEARTH_Q4_K, HEARTH_Q5_K, HEARTH_Q6_K};
enum { N_WTYPES = sizeof wtypes / sizeof wtypes[0] };

/* A row length that is odd where the type allows it: 99 elements for plain
 * floats, 3 blocks (an odd count) for block types. */
static int64_t odd_len(hearth_dtype t, int64_t floats) {
    int64_t bs = hearth_dtype_info(t)->block_size;
    return bs == 1 ? floats : 3 * bs;
}

/* matmul tolerance against the CPU backend, relative to the largest |output|.
 * The shaders multiply by
 * the activations in F32; the CPU first converts them to the weight type's
 * vec_dot_type, and that rounding is what the tolerance covers:
 *   F32: 1e-4 (summation order only);
 *   F16: 2e-3 (activations rounded to F16, 2^-11 relative per element);
 *   BF16: 1e-2 (activations rounded to BF16, 2^-8 relative per element);
 *   quantized: 2e-2 (activations quantized to Q8_0/Q8_1 per 32 or Q8_K per
 *   256 elements: up to 1/254 of the block max per element; the error of a
 *   dot of several hundred random terms stays within ~1% of the largest
 *   output, measured < 1e-2 here). */
static double matmul_tol(hearth_dtype t) {
    if (t == HEARTH_F32) return 1e-4;
    if (t == HEARTH_F16) return 2e-3;
    if (t == HEARTH_BF16) return 1e-2;
    return 2e-2;
}

static void test_get_rows(void) {
    int32_t ids[] = {4, 0, 44, 7, 7, 31, 2};
    for (int i = 0; i < N_WTYPES; i++) {
        hearth_dtype t = wtypes[i];
        int64_t ne0 = odd_len(t, 99);
        pair w = make_weights(t, ne0, 45), o = make_pair(HEARTH_F32, ne0, 7, NULL);
        cpu->ops->get_rows(cpu, &w.c, ids, 7, &o.c);
        vk->ops->get_rows(vk, &w.v, ids, 7, &o.v);
        char name[64];
        snprintf(name, sizeof name, "get_rows %s", hearth_dtype_name(t));
        compare(name, &o, 0); /* the shader decodes with the reference's float expression */
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
    /* one long row: every invocation and subgroup holds a partial sum */
    float *x3 = rand_f32(4099, 2.0f), *w3 = rand_f32(4099, 1.0f);
    pair x3s = make_pair(HEARTH_F32, 4099, 1, x3), w3s = make_pair(HEARTH_F32, 4099, 1, w3),
         o3 = make_pair(HEARTH_F32, 4099, 1, NULL);
    cpu->ops->rms_norm(cpu, &x3s.c, &w3s.c, 1e-5f, &o3.c);
    vk->ops->rms_norm(vk, &x3s.v, &w3s.v, 1e-5f, &o3.v);
    compare("rms_norm 4099", &o3, 1e-5);
    free_pair(&x3s);
    free_pair(&w3s);
    free_pair(&o3);
    free(x3);
    free(w3);
    free_pair(&xs);
    free_pair(&ws);
    free_pair(&w2);
    free_pair(&o);
    free(x);
    free(w);
}

/* Every weight type at 1 token (the matvec shader), 3 and 11 tokens (the
 * tiled matmul, 11 beyond its 8-token tile), with and without bias; row
 * counts that are not multiples of the rows per workgroup. */
static void test_matmul(void) {
    static const int ntoks[] = {1, 3, 11};
    static const int64_t nrows[] = {37, 5, 37};
    for (int i = 0; i < N_WTYPES; i++) {
        hearth_dtype t = wtypes[i];
        int64_t k = odd_len(t, 67);
        if (hearth_dtype_info(t)->block_size == 32) k = 160; /* 5 blocks */
        for (int ti = 0; ti < 3; ti++) {
            const int nt = ntoks[ti];
            const int64_t rows = nrows[ti];
            float *x = rand_f32((size_t)(k * nt), 1.0f), *bias = rand_f32((size_t)rows, 1.0f);
            pair w = make_weights(t, k, rows), xs = make_pair(HEARTH_F32, k, nt, x),
                 bs = make_pair(HEARTH_F32, rows, 1, bias), o = make_pair(HEARTH_F32, rows, nt, NULL);
            const bool with_bias = nt != 3;
            cpu->ops->matmul(cpu, &w.c, &xs.c, with_bias ? &bs.c : NULL, &o.c);
            vk->ops->matmul(vk, &w.v, &xs.v, with_bias ? &bs.v : NULL, &o.v);
            char name[120];
            snprintf(name, sizeof name, "matmul %s %lldx%lld x %d tokens%s", hearth_dtype_name(t),
                     (long long)rows, (long long)k, nt, with_bias ? " + bias" : "");
            compare(name, &o, matmul_tol(t));
            /* and against the exact product of the dequantised weights (double
             * sums): the shaders do F32 arithmetic on exactly those weights, so
             * only F32 summation order separates them: 1e-5 for every type */
            float *wf = malloc((size_t)(k * rows) * sizeof *wf),
                  *ref = malloc((size_t)(rows * nt) * sizeof *ref);
            for (int64_t r = 0; r < rows; r++)
                hearth_dtype_info(t)->to_float((char *)w.c.data + r * w.c.nb1, wf + r * k, k);
            for (int tt = 0; tt < nt; tt++)
                for (int64_t r = 0; r < rows; r++) {
                    double acc = with_bias ? bias[r] : 0;
                    for (int64_t e = 0; e < k; e++)
                        acc += (double)wf[r * k + e] * x[tt * k + e];
                    ref[tt * rows + r] = (float)acc;
                }
            float *got = device_floats(name, &o);
            strcat(name, " (exact weights)");
            check_close(name, ref, got, rows * nt, 1e-5);
            free(wf);
            free(ref);
            free(got);
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
    cpu->ops->gelu_mul(cpu, &as.c, &bs.c, &o.c); /* Gemma's GeGLU */
    vk->ops->gelu_mul(vk, &as.v, &bs.v, &o.v);
    compare("gelu_mul", &o, 1e-5);
    cpu->ops->scale_cap(cpu, &as.c, 11.3f, 0.0f, &o.c); /* embedding scaling */
    vk->ops->scale_cap(vk, &as.v, 11.3f, 0.0f, &o.v);
    compare("scale_cap (scale)", &o, 1e-5);
    cpu->ops->scale_cap(cpu, &as.c, 1.5f, 0.7f, &o.c); /* logit soft-capping, arguments far past the cap */
    vk->ops->scale_cap(vk, &as.v, 1.5f, 0.7f, &o.v);
    compare("scale_cap (soft-cap)", &o, 1e-5);
    cpu->ops->add(cpu, &as.c, &bs.c, &as.c); /* out aliases a */
    vk->ops->add(vk, &as.v, &bs.v, &as.v);
    compare("add in place", &as, 1e-6);
    free_pair(&as);
    free_pair(&bs);
    free_pair(&o);
    free(a);
    free(b);
}

/* argmax: the backend contract (first index on ties, NaNs never chosen, 0
 * for an all-NaN row) = hearth_argmax, on rows of odd length, with rows
 * where the maximum repeats, sits at either end, or is surrounded by NaNs. */
static void test_argmax(void) {
    enum { NE0 = 1031, ROWS = 9 };
    float *x = rand_f32((size_t)NE0 * ROWS, 8.0f);
    x[1 * NE0 + 100] = x[1 * NE0 + 900] = x[1 * NE0 + 5] = 50.0f; /* ties: the first wins */
    x[2 * NE0 + 0] = 60.0f;                                       /* at the start */
    x[3 * NE0 + NE0 - 1] = 60.0f;                                 /* at the end */
    x[4 * NE0 + 0] = NAN;                                         /* a NaN first must not win */
    x[4 * NE0 + 1] = NAN;
    x[4 * NE0 + 2] = -100.0f;
    for (int i = 0; i < NE0; i++)
        x[5 * NE0 + i] = NAN; /* all NaN: 0 */
    for (int i = 0; i < NE0; i++)
        x[6 * NE0 + i] = -INFINITY;
    x[7 * NE0 + 700] = INFINITY;
    pair xs = make_pair(HEARTH_F32, NE0, ROWS, x);
    hearth_error err = {0};
    void *ids = vk->ops->alloc(vk, ROWS * sizeof(int32_t), &err);
    REQUIRE(ids);
    vk->ops->argmax(vk, &xs.v, ids);
    CHECKF(vk->ops->synchronize(vk, &err) == HEARTH_OK, "[%s] argmax: %s", variant, err.msg);
    int32_t got[ROWS];
    vk->ops->download(vk, got, ids, sizeof got);
    for (int r = 0; r < ROWS; r++) {
        int32_t want = hearth_argmax(x + (size_t)r * NE0, NE0);
        CHECKF(got[r] == want, "[%s] argmax row %d: %d, expected %d", variant, r, got[r], want);
    }
    CHECK(got[1] == 5 && got[2] == 0 && got[3] == NE0 - 1 && got[5] == 0 && got[6] == 0 && got[7] == 700);
    vk->ops->dealloc(vk, ids);
    free_pair(&xs);
    free(x);
}

static void test_rope(void) {
    const int n = 5, H = 3, D = 40;
    int32_t pos[] = {0, 1, 17, 300, 4095};
    float ff[16];
    for (int i = 0; i < 16; i++)
        ff[i] = 1.0f + (float)i * 0.5f;
    static const char *const names[] = {"rope norm (partial n_rot)", "rope neox + freq_factors",
                                        "rope yarn x16 + attention temperature"};
    for (int mode = 0; mode < 3; mode++) {
        float *x = rand_f32((size_t)n * H * D, 2.0f);
        pair xs = make_pair(HEARTH_F32, H * D, n, x);
        hearth_rope_params p = {.mode = mode ? HEARTH_ROPE_NEOX : HEARTH_ROPE_NORM,
                                .n_rot = 32,
                                .head_dim = D,
                                .freq_base = 10000.0f,
                                .freq_scale = mode == 2 ? 1.0f / 16 : 0.5f,
                                .freq_factors = mode == 1 ? ff : NULL,
                                .attn_factor = mode == 2 ? 1.2f : 1.0f,
                                .ext_factor = mode == 2 ? 1.0f : 0.0f,
                                .temp_scale = mode == 2 ? 0.1f : 0.0f,
                                .temp_floor = 16};
        if (mode == 2) hearth_rope_yarn_dims(32, 16, 10000.0f, 32.0f, 1.0f, &p.yarn_lo, &p.yarn_hi);
        cpu->ops->rope(cpu, &xs.c, H, pos, &p);
        vk->ops->rope(vk, &xs.v, H, pos, &p);
        compare(names[mode], &xs, 1e-5);
        free_pair(&xs);
        free(x);
    }
}

/* kv_store into a paged pool, then attention over it, for F16, F32 and Q8_0
 * pools. Tolerances, relative to the largest |value|:
 *   kv_store F32/F16: exact (the same conversion);
 *   kv_store Q8_0: one quantisation step, 1/127 of the block max (the shader
 *   computes the CPU's d = amax/127, q = rint(x * 127/amax), but Vulkan's
 *   division is not correctly rounded, so a value on a rounding tie may land
 *   one level over; on lavapipe it is exact);
 *   attention, every KV type: 1e-4 (exp precision and summation order; the
 *   scores are computed as the CPU does: F16 KV rounds Q to F16, Q8_0 KV
 *   quantizes Q to Q8_0 per 32 and takes integer block dots, as ggml does;
 *   measured ~2e-7 on lavapipe).
 * Attention reads the CPU's pool bytes on both sides (uploaded to the device
 * after the kv_store check) so it is compared on identical keys and values. */
static void test_kv_attention(void) {
    const int page = 16, n_pages = 12, slots = page * n_pages;
    static const hearth_dtype kts[] = {HEARTH_F16, HEARTH_F32, HEARTH_Q8_0};
    static const int hds[3][2] = {{32, 80}, {32, 80}, {32, 96}};
    for (int pi = 0; pi < 3; pi++)
        for (int hi = 0; hi < 2; hi++) {
            hearth_dtype kt = kts[pi];
            const int D = hds[pi][hi], H = 6, HKV = 2, n = 5, KV = HKV * D;
            pair kp = make_pair(kt, KV, slots, NULL), vp = make_pair(kt, KV, slots, NULL);
            /* fill the pools through kv_store: every slot, in a scrambled order */
            float *kx = rand_f32((size_t)slots * KV, 1.0f), *vx = rand_f32((size_t)slots * KV, 1.0f);
            pair ks = make_pair(HEARTH_F32, KV, slots, kx), vs = make_pair(HEARTH_F32, KV, slots, vx);
            int32_t *sl = malloc(slots * sizeof *sl);
            for (int i = 0; i < slots; i++)
                sl[i] = (i * 37) % slots; /* 37 is coprime with 192 */
            cpu->ops->kv_store(cpu, &kp.c, &ks.c, sl);
            vk->ops->kv_store(vk, &kp.v, &ks.v, sl);
            cpu->ops->kv_store(cpu, &vp.c, &vs.c, sl);
            vk->ops->kv_store(vk, &vp.v, &vs.v, sl);
            char name[96];
            snprintf(name, sizeof name, "kv_store %s, head_dim %d", hearth_dtype_name(kt), D);
            const double st_tol = kt == HEARTH_Q8_0 ? 1.0 / 127 : 0;
            compare(name, &kp, st_tol);
            compare(name, &vp, st_tol);
            vk->ops->upload(vk, kp.v.data, kp.c.data, kp.bytes);
            vk->ops->upload(vk, vp.v.data, vp.c.data, vp.bytes);
            /* two sequences with scrambled page tables; kv lengths across tiles */
            int32_t pt[] = {3, 7, 1, 10, 0, 5, 11, 2, 9, 4, 6, 8};
            int32_t kv_len[] = {1, 9, 70, 150, 33}, pt_off[] = {0, 0, 0, 0, 6};
            hearth_attn_meta m = {n, page, kv_len, pt_off, pt, 12};
            float *q = rand_f32((size_t)n * H * D, 2.0f);
            pair qs = make_pair(HEARTH_F32, H * D, n, q), o = make_pair(HEARTH_F32, H * D, n, NULL);
            float scale = 1.0f / sqrtf((float)D);
            cpu->ops->attention(cpu, &qs.c, &kp.c, &vp.c, &m, H, HKV, D, scale, &o.c);
            vk->ops->attention(vk, &qs.v, &kp.v, &vp.v, &m, H, HKV, D, scale, &o.v);
            snprintf(name, sizeof name, "attention %s KV, head_dim %d, GQA %d/%d", hearth_dtype_name(kt), D,
                     H, HKV);
            compare(name, &o, 1e-4);
            /* attention_ext: sliding windows shorter and longer than a tile, with and without soft-capping */
            static const hearth_attn_opts opts[] = {{1, 0}, {8, 0}, {100, 0}, {0, 0.5f}, {20, 2.0f}};
            for (size_t oi = 0; oi < sizeof opts / sizeof opts[0]; oi++) {
                cpu->ops->attention_ext(cpu, &qs.c, &kp.c, &vp.c, &m, H, HKV, D, scale, &opts[oi], &o.c);
                vk->ops->attention_ext(vk, &qs.v, &kp.v, &vp.v, &m, H, HKV, D, scale, &opts[oi], &o.v);
                snprintf(name, sizeof name, "attention_ext window %d softcap %g, %s KV, head_dim %d",
                         opts[oi].window, opts[oi].softcap, hearth_dtype_name(kt), D);
                compare(name, &o, 1e-4);
            }
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

/* The encoder ops (bert, nomic-bert) against the CPU backend:
 *   layer_norm, with and without bias, in place, rows of 131, 769 and 4099
 *   (not multiples of the workgroup), on inputs with a large common offset
 *   (the mean must come out first, as the CPU's two passes): 1e-5;
 *   gelu (tanh form), in place too, on values up to +-60 (tanh saturates
 *   without inf/inf): 1e-5 (exp vs the CPU's tanhf / AVX2 polynomial);
 *   bidirectional attention as the embedder asks for it: an F16 pool with
 *   page size 1 and the identity page table, three packed sequences of 5, 1
 *   and 70 tokens, every token seeing its whole sequence (kv_len = the
 *   sequence length, pt_offset = its first token) and no other: 1e-4, as the
 *   causal case. A second run with sequence 0's keys replaced checks that
 *   sequences 1 and 2 do not change (no cross-sequence attention). */
static void test_encoder_ops(void) {
    static const int lens[3][2] = {{131, 9}, {769, 3}, {4099, 1}};
    for (int li = 0; li < 3; li++) {
        const int ne0 = lens[li][0], nr = lens[li][1];
        float *x = rand_f32((size_t)ne0 * nr, 3.0f), *w = rand_f32((size_t)ne0, 1.0f),
              *bi = rand_f32((size_t)ne0, 0.5f);
        for (int i = 0; i < ne0 * nr; i++)
            x[i] += 20.0f; /* a common offset: (x - mean) must not lose it */
        pair xs = make_pair(HEARTH_F32, ne0, nr, x), ws = make_pair(HEARTH_F32, ne0, 1, w),
             bs = make_pair(HEARTH_F32, ne0, 1, bi), o = make_pair(HEARTH_F32, ne0, nr, NULL);
        char name[96];
        cpu->ops->layer_norm(cpu, &xs.c, &ws.c, &bs.c, 1e-12f, &o.c);
        vk->ops->layer_norm(vk, &xs.v, &ws.v, &bs.v, 1e-12f, &o.v);
        snprintf(name, sizeof name, "layer_norm %dx%d, bias", ne0, nr);
        compare(name, &o, 1e-5);
        cpu->ops->layer_norm(cpu, &xs.c, &ws.c, NULL, 1e-5f, &o.c);
        vk->ops->layer_norm(vk, &xs.v, &ws.v, NULL, 1e-5f, &o.v);
        snprintf(name, sizeof name, "layer_norm %dx%d, no bias", ne0, nr);
        compare(name, &o, 1e-5);
        cpu->ops->layer_norm(cpu, &xs.c, &ws.c, &bs.c, 1e-12f, &xs.c);
        vk->ops->layer_norm(vk, &xs.v, &ws.v, &bs.v, 1e-12f, &xs.v);
        snprintf(name, sizeof name, "layer_norm %dx%d in place", ne0, nr);
        compare(name, &xs, 1e-5);
        /* gelu over a wide range, then in place */
        float *g = rand_f32((size_t)ne0 * nr, 6.0f);
        g[0] = 60.0f;
        g[1] = -60.0f;
        g[2] = 0.0f;
        pair gs = make_pair(HEARTH_F32, ne0, nr, g);
        cpu->ops->gelu(cpu, &gs.c, &o.c);
        vk->ops->gelu(vk, &gs.v, &o.v);
        snprintf(name, sizeof name, "gelu %dx%d", ne0, nr);
        compare(name, &o, 1e-5);
        cpu->ops->gelu(cpu, &gs.c, &gs.c);
        vk->ops->gelu(vk, &gs.v, &gs.v);
        snprintf(name, sizeof name, "gelu %dx%d in place", ne0, nr);
        compare(name, &gs, 1e-5);
        free_pair(&xs);
        free_pair(&ws);
        free_pair(&bs);
        free_pair(&o);
        free_pair(&gs);
        free(x);
        free(w);
        free(bi);
        free(g);
    }

    enum { N = 76, H = 4, HKV = 2, D = 40 };
    static const int seq_len[3] = {5, 1, 70};
    const int KV = HKV * D;
    int32_t kv_len[N], pt_off[N], pt[N];
    for (int s = 0, t = 0; s < 3; t += seq_len[s], s++)
        for (int i = 0; i < seq_len[s]; i++) {
            kv_len[t + i] = seq_len[s];
            pt_off[t + i] = t;
        }
    for (int i = 0; i < N; i++)
        pt[i] = i;
    float *kx = rand_f32((size_t)N * KV, 1.0f), *vx = rand_f32((size_t)N * KV, 1.0f);
    float *q = rand_f32((size_t)N * H * D, 2.0f);
    pair kp = make_pair(HEARTH_F16, KV, N, NULL), vp = make_pair(HEARTH_F16, KV, N, NULL),
         ks = make_pair(HEARTH_F32, KV, N, kx), vs = make_pair(HEARTH_F32, KV, N, vx),
         qs = make_pair(HEARTH_F32, H * D, N, q), o = make_pair(HEARTH_F32, H * D, N, NULL);
    cpu->ops->kv_store(cpu, &kp.c, &ks.c, pt);
    vk->ops->kv_store(vk, &kp.v, &ks.v, pt);
    cpu->ops->kv_store(cpu, &vp.c, &vs.c, pt);
    vk->ops->kv_store(vk, &vp.v, &vs.v, pt);
    compare("encoder kv_store F16", &kp, 0);
    const hearth_attn_meta m = {N, 1, kv_len, pt_off, pt, N};
    const float scale = 1.0f / sqrtf((float)D);
    cpu->ops->attention(cpu, &qs.c, &kp.c, &vp.c, &m, H, HKV, D, scale, &o.c);
    vk->ops->attention(vk, &qs.v, &kp.v, &vp.v, &m, H, HKV, D, scale, &o.v);
    compare("bidirectional attention, sequences 5, 1, 70", &o, 1e-4);
    /* the first token of a sequence attends to its later tokens: its output
     * differs from attention over itself alone (a causal mask would give v) */
    float *first = device_floats("bidirectional attention", &o);
    float *v0 = malloc((size_t)KV * sizeof *v0);
    hearth_dtype_info(HEARTH_F16)->to_float(vp.c.data, v0, KV);
    double diff = 0;
    for (int d = 0; d < D; d++)
        diff = fmax(diff, fabs((double)first[d] - v0[d]));
    CHECKF(diff > 1e-3, "[%s] token 0 sees only itself (max |out - v0| %.3g): attention is causal", variant,
           diff);
    /* new keys and values for sequence 0: sequences 1 and 2 must not move */
    for (int i = 0; i < 5 * KV; i++) {
        kx[i] = frand();
        vx[i] = frand();
    }
    vk->ops->upload(vk, ks.v.data, kx, ks.bytes);
    vk->ops->upload(vk, vs.v.data, vx, vs.bytes);
    vk->ops->kv_store(vk, &kp.v, &ks.v, pt);
    vk->ops->kv_store(vk, &vp.v, &vs.v, pt);
    vk->ops->attention(vk, &qs.v, &kp.v, &vp.v, &m, H, HKV, D, scale, &o.v);
    float *again = device_floats("bidirectional attention, new sequence 0", &o);
    const size_t row = (size_t)H * D;
    check_close("sequences 1, 2 after sequence 0 changed", first + 5 * row, again + 5 * row,
                (int64_t)(N - 5) * (int64_t)row, 0);
    diff = 0;
    for (size_t i = 0; i < 5 * row; i++)
        diff = fmax(diff, fabs((double)first[i] - again[i]));
    CHECKF(diff > 1e-3, "[%s] sequence 0 did not change with its keys (%.3g)", variant, diff);
    free(first);
    free(again);
    free(v0);
    free_pair(&kp);
    free_pair(&vp);
    free_pair(&ks);
    free_pair(&vs);
    free_pair(&qs);
    free_pair(&o);
    free(kx);
    free(vx);
    free(q);
}

/* --profile: with b->profile set, dispatches are timed on the device
 * (timestamps) and land in op_time_us/op_count by op id at synchronize. */
static void test_profile(void) {
    float *x = rand_f32(256 * 2, 1.0f);
    pair w = make_weights(HEARTH_Q4_K, 256, 64), xs = make_pair(HEARTH_F32, 256, 2, x),
         o = make_pair(HEARTH_F32, 64, 2, NULL);
    memset(vk->op_time_us, 0, sizeof vk->op_time_us);
    memset(vk->op_count, 0, sizeof vk->op_count);
    vk->profile = true;
    vk->ops->matmul(vk, &w.v, &xs.v, NULL, &o.v);
    vk->ops->matmul(vk, &w.v, &xs.v, NULL, &o.v);
    vk->ops->add(vk, &o.v, &o.v, &o.v);
    hearth_error err = {0};
    CHECK(vk->ops->synchronize(vk, &err) == HEARTH_OK);
    vk->profile = false;
    CHECKF(vk->op_count[HEARTH_OP_MATMUL] == 2, "matmul count %llu",
           (unsigned long long)vk->op_count[HEARTH_OP_MATMUL]);
    CHECK(vk->op_count[HEARTH_OP_ADD] == 1);
    CHECK(vk->op_time_us[HEARTH_OP_MATMUL] > 0);
    CHECK(vk->op_count[HEARTH_OP_ATTENTION] == 0);
    vk->ops->matmul(vk, &w.v, &xs.v, NULL, &o.v); /* profile off: not counted */
    CHECK(vk->ops->synchronize(vk, &err) == HEARTH_OK);
    CHECK(vk->op_count[HEARTH_OP_MATMUL] == 2);
    free_pair(&w);
    free_pair(&xs);
    free_pair(&o);
    free(x);
}

static void test_errors(void) {
    hearth_error err = {0};
    hearth_backend_info bi;
    vk->ops->info(vk, &bi);
    void *p = vk->ops->alloc(vk, (size_t)1 << 40, &err); /* beyond any storage-buffer range */
    CHECK(p == NULL);
    CHECK_CONTAINS(err.msg, "maxStorageBufferRange");
    for (int i = 0; i < N_WTYPES; i++)
        CHECK(vk->ops->supports_type(vk, wtypes[i]));
    CHECK(!vk->ops->supports_type(vk, HEARTH_Q8_K)); /* activation-only formats */
    CHECK(!vk->ops->supports_type(vk, HEARTH_Q8_1));
    CHECK(!bi.host_visible);
}

/* All op checks on one Vulkan backend. */
static void test_all(hearth_backend *b, const char *name) {
    vk = b;
    variant = name;
    hearth_backend_info bi;
    vk->ops->info(vk, &bi);
    printf("device (%s): %s %s\n", variant, bi.name, bi.device);
    test_get_rows();
    test_rms_norm();
    test_matmul();
    test_elementwise();
    test_argmax();
    test_rope();
    test_kv_attention();
    test_encoder_ops();
    test_profile();
    test_errors();
}

/* The lavapipe device (the CI device) with the given shader variant knobs,
 * else the first device; NULL when there is none. */
static hearth_backend *open_device(bool subgroups, bool storage, hearth_error *err) {
    if (!subgroups) setenv("HEARTH_VK_SUBGROUPS", "0", 1);
    if (!storage) setenv("HEARTH_VK_STORAGE16", "0", 1);
    hearth_backend *pick = NULL;
    for (int d = 0; d < 8 && !pick; d++) {
        hearth_backend *b = hearth_vulkan_backend_create(d, true, NULL);
        if (!b) continue;
        hearth_backend_info bi;
        b->ops->info(b, &bi);
        if (strstr(bi.device, "llvmpipe"))
            pick = b;
        else
            hearth_backend_free(b);
    }
    if (!pick) pick = hearth_vulkan_backend_create(-1, true, err);
    unsetenv("HEARTH_VK_SUBGROUPS");
    unsetenv("HEARTH_VK_STORAGE16");
    return pick;
}

int main(void) {
    hearth_error err = {0};
    cpu = hearth_cpu_backend_create(2, &err);
    REQUIRE(cpu != NULL);
    static const struct {
        bool subgroups, storage;
        const char *name;
    } variants[] = {{true, true, "default"},
                    {false, true, "HEARTH_VK_SUBGROUPS=0"},
                    {true, false, "HEARTH_VK_STORAGE16=0"},
                    {false, false, "HEARTH_VK_SUBGROUPS=0 HEARTH_VK_STORAGE16=0"}};
    for (int i = 0; i < 4; i++) {
        hearth_backend *b = open_device(variants[i].subgroups, variants[i].storage, &err);
        if (!b && i == 0) {
            printf("skipped: no Vulkan device (%s)\n", err.msg);
            hearth_backend_free(cpu);
            return 77;
        }
        REQUIRE(b != NULL);
        /* The knobs really select the fallback variants; lavapipe has subgroup
         * arithmetic and both storage features, so there the default build
         * uses them. */
        hearth_backend_info bi;
        b->ops->info(b, &bi);
        if (!variants[i].subgroups) CHECK_CONTAINS(bi.device, "no subgroup ops");
        if (!variants[i].storage) CHECK_CONTAINS(bi.device, "no 16/8-bit storage");
        if (strstr(bi.device, "llvmpipe")) {
            if (variants[i].subgroups) CHECK_CONTAINS(bi.device, "subgroup ops, size 8;");
            if (variants[i].storage) CHECK_CONTAINS(bi.device, "; 16/8-bit storage]");
        }
        test_all(b, variants[i].name);
        hearth_backend_free(b);
    }
    hearth_backend_free(cpu);
    return test_summary("test_vulkan_ops");
}
#else
int main(void) {
    printf("skipped: no Vulkan device (this build has no Vulkan backend)\n");
    return 77;
}
#endif
