/*
 * cpu_backend.c - the CPU implementation of backend.h (always available).
 *
 * Tensors are host memory; weights point straight into the mmapped GGUF file
 * (no copies). Ops run at once on the backend's thread pool; synchronize is a
 * no-op. Matmuls convert the activations to the weight type's vec_dot_type
 * once per op (8-bit blocks for integer dot products, as ggml does); each
 * output is then the vec_dot of a weight row with an activation row, computed
 * by a register-tiled GEMM kernel where the CPU has one for the type (bit for
 * bit the same number, see cpu_quants.h). Row-wise ops split big batches over
 * the pool. Owns: the thread pool and growable scratch for converted
 * activations, attention tiles and attention token blocks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend_impl.h"
#include "core/grow.h"
#include "cpu_attn.h"
#include "cpu_features.h"
#include "cpu_moe.h"
#include "cpu_quants.h"
#include "threadpool.h"

typedef struct cpu_ctx {
    hearth_threadpool *pool;
    int n_threads;
    void *scratch;        /* activations converted to vec_dot_type */
    size_t scratch_size;  /* bytes */
    void *att_scratch;    /* per-thread attention tiles */
    size_t att_scratch_n; /* bytes */
    int *att_blocks;      /* token blocks of the attention op */
    size_t att_blocks_n;  /* elements */
} cpu_ctx;

static cpu_ctx *ctx_of(hearth_backend *b) {
    return b->ctx;
}

#define PROFILE_BEGIN(b) double t0_ = (b)->profile ? hearth_now_us() : 0
#define PROFILE_END(b, op)                                                                                   \
    do {                                                                                                     \
        if ((b)->profile) {                                                                                  \
            (b)->op_time_us[op] += hearth_now_us() - t0_;                                                    \
            (b)->op_count[op]++;                                                                             \
        }                                                                                                    \
    } while (0)

static void *scratch_get(cpu_ctx *c, size_t bytes) {
    if (!hearth_grow(&c->scratch, &c->scratch_size, bytes, 1)) return NULL;
    return c->scratch;
}

static inline float *row_f32(const hearth_tensor *t, int64_t r) {
    return (float *)((char *)t->data + r * t->nb1);
}
static inline void *row_ptr(const hearth_tensor *t, int64_t r) {
    return (char *)t->data + r * t->nb1;
}

/* Split [0, n) into nth near-equal parts; part ith is [*lo, *hi). */
static inline void split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = (n + nth - 1) / nth;
    *lo = per * ith;
    *hi = *lo + per < n ? *lo + per : n;
    if (*lo > n) *lo = n;
}

/* Row-wise ops: fn(job, lo, hi) handles rows [lo, hi). Big batches (a
 * prompt) are split over the pool; small ones (decode) run here, where a
 * dispatch would cost more than the op. Rows are independent, so the result
 * is the same either way. */
typedef void (*rows_fn)(const void *job, int64_t lo, int64_t hi);
typedef struct rows_job {
    rows_fn fn;
    const void *job;
    int64_t n_rows;
} rows_job;

static void rows_worker(void *arg, int ith, int nth) {
    const rows_job *j = arg;
    int64_t lo, hi;
    split_range(j->n_rows, ith, nth, &lo, &hi);
    if (lo < hi) j->fn(j->job, lo, hi);
}

enum { ROWS_PARALLEL_MIN_ELEMS = 1 << 15 };

static void run_rows(cpu_ctx *c, int64_t n_rows, int64_t row_elems, rows_fn fn, const void *job) {
    if (c->n_threads < 2 || n_rows < 2 || n_rows * row_elems < ROWS_PARALLEL_MIN_ELEMS) {
        fn(job, 0, n_rows);
        return;
    }
    rows_job j = {fn, job, n_rows};
    hearth_threadpool_run(c->pool, rows_worker, &j, c->n_threads);
}

/* ------------------------------------------------------------ memory */

static void *cpu_alloc(hearth_backend *b, size_t bytes, hearth_error *err) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    return p;
}
static void cpu_dealloc(hearth_backend *b, void *p) {
    free(p);
}
static void cpu_upload(hearth_backend *b, void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
}
static void cpu_download(hearth_backend *b, void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
}
static void cpu_copy(hearth_backend *b, void *dst, const void *src, size_t n) {
    memmove(dst, src, n);
}

static bool cpu_supports_type(hearth_backend *b, hearth_dtype t) {
    return hearth_cpu_vec_dot(t) != NULL;
}

/* ------------------------------------------------------------ get_rows */

static void cpu_get_rows(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n,
                         hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const hearth_dtype_traits *tr = hearth_dtype_info(w->type);
    for (int i = 0; i < n; i++)
        tr->to_float(row_ptr(w, ids[i]), row_f32(out, i), w->ne0);
    PROFILE_END(b, HEARTH_OP_GET_ROWS);
}

static void cpu_get_rows_f32(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n,
                             hearth_tensor *out) {
    PROFILE_BEGIN(b);
    for (int i = 0; i < n; i++)
        memmove(row_f32(out, i), row_f32(x, rows[i]), (size_t)x->ne0 * sizeof(float));
    PROFILE_END(b, HEARTH_OP_COPY);
}

/* ------------------------------------------------------------ rms_norm */

typedef struct rms_job {
    const hearth_tensor *x, *w;
    float eps;
    hearth_tensor *out;
} rms_job;

static void rms_rows(const void *job, int64_t lo, int64_t hi) {
    const rms_job *j = job;
    const hearth_tensor *x = j->x, *out = j->out;
    const float *wd = j->w->data;
    const float eps = j->eps;
    for (int64_t r = lo; r < hi; r++) {
        const float *xr = row_f32(x, r);
        float *o = row_f32(out, r);
        /* float products summed in double, as ggml does, in four partial sums
         * (one dependent chain was the op's whole cost; the difference is far
         * below float precision) */
        double s4[4] = {0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 4 <= x->ne0; i += 4)
            for (int k = 0; k < 4; k++)
                s4[k] += (double)(xr[i + k] * xr[i + k]);
        double ss = (s4[0] + s4[1]) + (s4[2] + s4[3]);
        for (; i < x->ne0; i++)
            ss += (double)(xr[i] * xr[i]);
        float scale = 1.0f / sqrtf((float)(ss / x->ne0) + eps);
        for (i = 0; i < x->ne0; i++)
            o[i] = xr[i] * scale * wd[i];
    }
}

static void cpu_rms_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps,
                         hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const rms_job j = {x, w, eps, out};
    run_rows(ctx_of(b), x->ne1, x->ne0, rms_rows, &j);
    PROFILE_END(b, HEARTH_OP_RMS_NORM);
}

/* ------------------------------------------------------------ matmul */

typedef struct matmul_job {
    const hearth_tensor *w;
    const hearth_tensor *bias;
    hearth_tensor *out;
    const void *act; /* converted activations, act_row bytes apart */
    size_t act_row;
    int64_t n_tokens;
    hearth_vec_dot_fn dot;
    hearth_gemm_fn gemm; /* NULL: no register-tiled kernel for this type here */
    int gemm_rows, gemm_toks;
} matmul_job;

enum { MATMUL_ROW_TILE = 16, MATMUL_TOK_TILE = 64 };

static inline int64_t min_i64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Rows [lo, hi) of the output, all tokens. With a GEMM kernel, one call per
 * tile of gemm_rows x gemm_toks (decode's single token too, so prefill,
 * batches and decode share one path; the kernel is bit-identical to vec_dot
 * anyway). Otherwise tiles of vec_dot calls: a block of weight rows stays in
 * cache while it meets a block of tokens. */
static void matmul_rows(const matmul_job *j, int64_t lo, int64_t hi) {
    const float *bias = j->bias ? j->bias->data : NULL;
    const int64_t row_tile = j->gemm ? j->gemm_rows : MATMUL_ROW_TILE;
    const int64_t tok_tile = j->gemm ? j->gemm_toks : MATMUL_TOK_TILE;
    const size_t out_stride = j->out->nb1 / sizeof(float);
    for (int64_t r0 = lo; r0 < hi; r0 += row_tile) {
        const int64_t r1 = min_i64(r0 + row_tile, hi);
        for (int64_t t0 = 0; t0 < j->n_tokens; t0 += tok_tile) {
            const int64_t t1 = min_i64(t0 + tok_tile, j->n_tokens);
            if (j->gemm) {
                j->gemm(j->w->ne0, row_ptr(j->w, r0), j->w->nb1, (int)(r1 - r0),
                        (const char *)j->act + t0 * j->act_row, j->act_row, (int)(t1 - t0),
                        row_f32(j->out, t0) + r0, out_stride);
                if (bias)
                    for (int64_t t = t0; t < t1; t++)
                        for (int64_t r = r0; r < r1; r++)
                            row_f32(j->out, t)[r] += bias[r];
                continue;
            }
            for (int64_t r = r0; r < r1; r++) {
                const void *wr = row_ptr(j->w, r);
                for (int64_t t = t0; t < t1; t++) {
                    float s;
                    j->dot(j->w->ne0, &s, wr, (const char *)j->act + t * j->act_row);
                    row_f32(j->out, t)[r] = bias ? s + bias[r] : s;
                }
            }
        }
    }
}

static void matmul_worker(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    int64_t lo, hi;
    split_range(j->w->ne1, ith, nth, &lo, &hi);
    matmul_rows(j, lo, hi);
}

/* Several matmuls of one input as one range of rows: weight i owns rows
 * [start[i], start[i + 1]); each thread takes an equal share of the total. */
typedef struct multi_job {
    int n;
    matmul_job jobs[4];
    int64_t start[5];
} multi_job;

static void multi_worker(void *arg, int ith, int nth) {
    const multi_job *m = arg;
    int64_t lo, hi;
    split_range(m->start[m->n], ith, nth, &lo, &hi);
    for (int i = 0; i < m->n; i++) {
        int64_t a = lo > m->start[i] ? lo : m->start[i], z = hi < m->start[i + 1] ? hi : m->start[i + 1];
        if (a < z) matmul_rows(&m->jobs[i], a - m->start[i], z - m->start[i]);
    }
}

typedef struct act_job { /* activations converted to a matmul's vec_dot_type */
    hearth_dtype vdt;
    const hearth_tensor *x;
    void *act;
    size_t act_row;
} act_job;

static void act_rows(const void *job, int64_t lo, int64_t hi) {
    const act_job *j = job;
    for (int64_t t = lo; t < hi; t++)
        hearth_cpu_quantize_act(j->vdt, row_f32(j->x, t), (char *)j->act + t * j->act_row, j->x->ne0);
}

static void cpu_matmul(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x,
                       const hearth_tensor *bias, hearth_tensor *out) {
    PROFILE_BEGIN(b);
    cpu_ctx *c = ctx_of(b);
    hearth_dtype vdt = hearth_dtype_info(w->type)->vec_dot_type;
    size_t act_row = hearth_dtype_row_size(vdt, x->ne0);
    void *act = scratch_get(c, act_row * (size_t)x->ne1);
    if (!act) abort(); /* out of memory for a few KB of activations: nothing sane to do */
    const act_job aj = {vdt, x, act, act_row};
    run_rows(c, x->ne1, x->ne0, act_rows, &aj);
    matmul_job j = {w, bias, out, act, act_row, x->ne1, hearth_cpu_vec_dot(w->type), NULL, 0, 0};
    j.gemm = hearth_cpu_gemm(w->type, &j.gemm_rows, &j.gemm_toks);
    hearth_threadpool_run(c->pool, matmul_worker, &j, c->n_threads);
    PROFILE_END(b, HEARTH_OP_MATMUL);
}

static void cpu_matmul_multi(hearth_backend *b, int n, const hearth_tensor *const *w, const hearth_tensor *x,
                             const hearth_tensor *const *bias, hearth_tensor *const *out) {
    bool same = n >= 1 && n <= 4;
    for (int i = 1; i < n && same; i++)
        same = w[i]->type == w[0]->type && w[i]->ne0 == w[0]->ne0;
    if (!same) { /* not one input format: one matmul each */
        for (int i = 0; i < n; i++)
            cpu_matmul(b, w[i], x, bias[i], out[i]);
        return;
    }
    PROFILE_BEGIN(b);
    cpu_ctx *c = ctx_of(b);
    hearth_dtype vdt = hearth_dtype_info(w[0]->type)->vec_dot_type;
    size_t act_row = hearth_dtype_row_size(vdt, x->ne0);
    void *act = scratch_get(c, act_row * (size_t)x->ne1);
    if (!act) abort(); /* as in cpu_matmul */
    const act_job aj = {vdt, x, act, act_row};
    run_rows(c, x->ne1, x->ne0, act_rows, &aj);
    multi_job m = {.n = n};
    for (int i = 0; i < n; i++) {
        m.jobs[i] = (matmul_job){w[i], bias[i], out[i], act, act_row, x->ne1, hearth_cpu_vec_dot(w[i]->type),
                                 NULL, 0,       0};
        m.jobs[i].gemm = hearth_cpu_gemm(w[i]->type, &m.jobs[i].gemm_rows, &m.jobs[i].gemm_toks);
        m.start[i + 1] = m.start[i] + w[i]->ne1;
    }
    hearth_threadpool_run(c->pool, multi_worker, &m, c->n_threads);
    PROFILE_END(b, HEARTH_OP_MATMUL);
}

/* ------------------------------------------------------------ elementwise */

typedef struct ew_job { /* elementwise: out = f(a, c) row by row */
    const hearth_tensor *a, *c;
    hearth_tensor *out;
} ew_job;

static void add_rows(const void *job, int64_t lo, int64_t hi) {
    const ew_job *j = job;
    for (int64_t r = lo; r < hi; r++) {
        const float *x = row_f32(j->a, r), *y = row_f32(j->c, r);
        float *o = row_f32(j->out, r);
        for (int64_t i = 0; i < j->a->ne0; i++)
            o[i] = x[i] + y[i];
    }
}

static void cpu_add(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c2, hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const ew_job j = {a, c2, out};
    run_rows(ctx_of(b), a->ne1, a->ne0, add_rows, &j);
    PROFILE_END(b, HEARTH_OP_ADD);
}

static void silu_mul_rows(const void *job, int64_t lo, int64_t hi) {
    const ew_job *j = job; /* a = gate, c = up */
#ifdef HEARTH_HAVE_AVX2_KERNELS
    if (hearth_cpu_level_get() >= HEARTH_CPU_AVX2) {
        for (int64_t r = lo; r < hi; r++)
            hearth_silu_mul_avx2((int)j->a->ne0, row_f32(j->out, r), row_f32(j->a, r), row_f32(j->c, r));
        return;
    }
#endif
    for (int64_t r = lo; r < hi; r++) {
        const float *g = row_f32(j->a, r), *u = row_f32(j->c, r);
        float *o = row_f32(j->out, r);
        for (int64_t i = 0; i < j->a->ne0; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

static void cpu_silu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                         hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const ew_job j = {gate, up, out};
    run_rows(ctx_of(b), gate->ne1, gate->ne0, silu_mul_rows, &j);
    PROFILE_END(b, HEARTH_OP_SILU_MUL);
}

/* ------------------------------------------------------------ encoder ops */

typedef struct ln_job {
    const hearth_tensor *x, *w, *bias;
    float eps;
    hearth_tensor *out;
} ln_job;

static void layer_norm_rows(const void *job, int64_t lo, int64_t hi) {
    const ln_job *j = job;
    const int64_t n = j->x->ne0;
    const float *wd = j->w->data, *bd = j->bias ? j->bias->data : NULL;
    for (int64_t r = lo; r < hi; r++) {
        const float *xr = row_f32(j->x, r);
        float *o = row_f32(j->out, r);
        double sum = 0; /* mean and variance in double, as ggml's norm */
        for (int64_t i = 0; i < n; i++)
            sum += xr[i];
        const float mean = (float)(sum / (double)n);
        double var = 0;
        for (int64_t i = 0; i < n; i++) {
            const float d = xr[i] - mean;
            var += (double)(d * d);
        }
        const float scale = 1.0f / sqrtf((float)(var / (double)n) + j->eps);
        for (int64_t i = 0; i < n; i++) {
            const float y = (xr[i] - mean) * scale * wd[i];
            o[i] = bd ? y + bd[i] : y;
        }
    }
}

static void cpu_layer_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w,
                           const hearth_tensor *bias, float eps, hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const ln_job j = {x, w, bias, eps, out};
    run_rows(ctx_of(b), x->ne1, x->ne0, layer_norm_rows, &j);
    PROFILE_END(b, HEARTH_OP_RMS_NORM);
}

static void gelu_rows(const void *job, int64_t lo, int64_t hi) {
    const ew_job *j = job;
#ifdef HEARTH_HAVE_AVX2_KERNELS
    if (hearth_cpu_level_get() >= HEARTH_CPU_AVX2) {
        for (int64_t r = lo; r < hi; r++)
            hearth_gelu_avx2((int)j->a->ne0, row_f32(j->out, r), row_f32(j->a, r));
        return;
    }
#endif
    for (int64_t r = lo; r < hi; r++) {
        const float *x = row_f32(j->a, r);
        float *o = row_f32(j->out, r);
        for (int64_t i = 0; i < j->a->ne0; i++) {
            const float v = x[i];
            o[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v)));
        }
    }
}

static void cpu_gelu(hearth_backend *b, const hearth_tensor *x, hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const ew_job j = {x, NULL, out};
    run_rows(ctx_of(b), x->ne1, x->ne0, gelu_rows, &j);
    PROFILE_END(b, HEARTH_OP_SILU_MUL);
}

/* ------------------------------------------------------------ Gemma ops */

static void gelu_mul_rows(const void *job, int64_t lo, int64_t hi) {
    const ew_job *j = job; /* a = gate, c = up */
#ifdef HEARTH_HAVE_AVX2_KERNELS
    if (hearth_cpu_level_get() >= HEARTH_CPU_AVX2) {
        for (int64_t r = lo; r < hi; r++)
            hearth_gelu_mul_avx2((int)j->a->ne0, row_f32(j->out, r), row_f32(j->a, r), row_f32(j->c, r));
        return;
    }
#endif
    for (int64_t r = lo; r < hi; r++) {
        const float *g = row_f32(j->a, r), *u = row_f32(j->c, r);
        float *o = row_f32(j->out, r);
        for (int64_t i = 0; i < j->a->ne0; i++) {
            const float v = g[i];
            o[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v))) * u[i];
        }
    }
}

static void cpu_gelu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                         hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const ew_job j = {gate, up, out};
    run_rows(ctx_of(b), gate->ne1, gate->ne0, gelu_mul_rows, &j);
    PROFILE_END(b, HEARTH_OP_SILU_MUL);
}

typedef struct cap_job {
    const hearth_tensor *x;
    float s, cap;
    hearth_tensor *out;
} cap_job;

static void scale_cap_rows(const void *job, int64_t lo, int64_t hi) {
    const cap_job *j = job;
    const int64_t n = j->x->ne0;
    for (int64_t r = lo; r < hi; r++) {
        const float *x = row_f32(j->x, r);
        float *o = row_f32(j->out, r);
        if (j->cap <= 0) {
            for (int64_t i = 0; i < n; i++)
                o[i] = j->s * x[i];
            continue;
        }
#ifdef HEARTH_HAVE_AVX2_KERNELS
        if (hearth_cpu_level_get() >= HEARTH_CPU_AVX2) {
            hearth_softcap_avx2((int)n, o, x, j->s, j->cap);
            continue;
        }
#endif
        for (int64_t i = 0; i < n; i++)
            o[i] = j->cap * tanhf(j->s * x[i] / j->cap);
    }
}

static void cpu_scale_cap(hearth_backend *b, const hearth_tensor *x, float s, float cap, hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const cap_job j = {x, s, cap, out};
    run_rows(ctx_of(b), x->ne1, x->ne0, scale_cap_rows, &j);
    PROFILE_END(b, HEARTH_OP_ADD);
}

/* ------------------------------------------------------------ rope */

typedef struct rope_job {
    hearth_tensor *x;
    int n_heads;
    const int32_t *pos;
    const hearth_rope_params *p;
} rope_job;

static void rope_rows(const void *job, int64_t lo, int64_t hi) {
    const rope_job *j = job;
    const hearth_rope_params *p = j->p;
    const int hd = p->head_dim, half = p->n_rot / 2;
    float cs[512], sn[512]; /* per token: the rotation of each pair, shared by all heads */
    for (int64_t t = lo; t < hi; t++) {
        float *row = row_f32(j->x, t);
        hearth_rope_cos_sin(p, j->pos[t], cs, sn);
        for (int h = 0; h < j->n_heads; h++) {
            float *v = row + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                int i0 = p->mode == HEARTH_ROPE_NEOX ? i : 2 * i,
                    i1 = p->mode == HEARTH_ROPE_NEOX ? i + half : 2 * i + 1;
                float a = v[i0], c = v[i1];
                v[i0] = a * cs[i] - c * sn[i];
                v[i1] = a * sn[i] + c * cs[i];
            }
        }
    }
}

static void cpu_rope(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos,
                     const hearth_rope_params *p) {
    PROFILE_BEGIN(b);
    const rope_job j = {x, n_heads, pos, p};
    run_rows(ctx_of(b), x->ne1, (int64_t)n_heads * p->head_dim, rope_rows, &j);
    PROFILE_END(b, HEARTH_OP_ROPE);
}

/* ------------------------------------------------------------ KV store */

typedef struct kv_store_job {
    hearth_tensor *pool;
    const hearth_tensor *src;
    const int32_t *slots;
} kv_store_job;

static void kv_store_rows(const void *job, int64_t lo, int64_t hi) {
    const kv_store_job *j = job;
    /* the same SIMD converters as the activations (F16 via F16C, Q8_0 blocks) */
    for (int64_t t = lo; t < hi; t++)
        hearth_cpu_quantize_act(j->pool->type, row_f32(j->src, t), row_ptr(j->pool, j->slots[t]),
                                j->src->ne0);
}

static void cpu_kv_store(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src,
                         const int32_t *slots) {
    PROFILE_BEGIN(b);
    const kv_store_job j = {pool, src, slots};
    run_rows(ctx_of(b), src->ne1, src->ne0, kv_store_rows, &j);
    PROFILE_END(b, HEARTH_OP_KV_STORE);
}

/* ------------------------------------------------------------ attention */

/* Flash-style paged attention, GQA-aware.
 *
 * One work item = a block of tokens and one KV head with the `group` query
 * heads that share it, so each K and V row is read once for the whole group
 * (a block is one token, or with an F16 group kernel up to
 * HEARTH_ATTN_MAX_Q consecutive tokens of one sequence). Keys are
 * visited in tiles of ATT_TILE through the page table; per query head an
 * online softmax keeps a running max m, a running sum l and an unnormalised
 * output acc: for each tile, scores s = q.k * scale, m' = max(m, max s),
 * acc = acc * e^(m - m') + sum e^(s - m') v, l likewise. No n x n matrix.
 * Q is converted to the K type's dot-product format (F16 for an F16 cache, as
 * ggml does). An F16 cache with head size 64 or 128 on AVX-512 or AVX2 goes
 * to that family's group kernel (avx512/attn_avx512.c, avx2/attn_avx2.c:
 * scores bit-identical to the family's F16 dot, a vector exp); otherwise
 * attn_one scores key by key with the SIMD dot kernels of the matmuls.
 * Either way a token's result does not depend on its batch. attention_ext
 * with a sliding window or soft-capping always takes the per-key path: it
 * starts at the window's first key and caps each scaled score. */

enum { ATT_TILE = HEARTH_ATTN_TILE };

typedef struct attn_job {
    const hearth_tensor *q, *k, *v;
    const hearth_attn_meta *m;
    int n_heads, n_kv_heads, hd;
    float scale;
    hearth_tensor *out;
    char *scratch;
    size_t scratch_per_thread;
    size_t q_row_bytes; /* one head of Q in the K dot format */
    hearth_axpy_f16_fn axpy_f16;
    hearth_axpy_f32_fn axpy_f32;
    hearth_attn_f16_fn f16_kernel; /* F16 K/V group kernel (AVX-512 or AVX2), NULL: attn_one */
    hearth_attn_f16_prefetch_fn f16_prefetch;
    const int *blocks; /* block b = tokens blocks[b] .. blocks[b+1]-1, one sequence */
    int n_blocks;
    int window;    /* > 0: sliding window (attention_ext; the group kernels are not used) */
    float softcap; /* > 0: scores soft-capped (likewise) */
} attn_job;

static void axpy_f16_ref(int n, float *y, float a, const uint16_t *x) {
    for (int i = 0; i < n; i++)
        y[i] = fmaf(a, hearth_f16_to_f32(x[i]), y[i]);
}
static void axpy_f32_ref(int n, float *y, float a, const float *x) {
    for (int i = 0; i < n; i++)
        y[i] = fmaf(a, x[i], y[i]);
}

static void attn_one(const attn_job *j, int t, int g, char *base);

static void attn_worker(void *arg, int ith, int nth) {
    attn_job *j = arg;
    char *base = j->scratch + (size_t)ith * j->scratch_per_thread;
    const hearth_attn_meta *m = j->m;
    const int G = j->n_heads / j->n_kv_heads, hd = j->hd;
    const size_t k_head_off = hearth_dtype_row_size(j->k->type, hd),
                 v_head_off = hearth_dtype_row_size(j->v->type, hd);
    /* One item = a block of tokens and one KV head. Items are dealt
     * round-robin: a causal prompt's later tokens have more keys, so
     * contiguous shares would leave one thread most of the work. */
    const int64_t n_work = (int64_t)j->n_blocks * j->n_kv_heads;
    for (int64_t w = ith; w < n_work; w += nth) {
        const int blk = (int)(w / j->n_kv_heads), g = (int)(w % j->n_kv_heads);
        if (j->f16_kernel) {        /* the kernel's scratch from base, the F16 queries at the end */
            if (w + nth < n_work) { /* start the next item's memory traffic */
                const int nb_ = (int)((w + nth) / j->n_kv_heads), ng = (int)((w + nth) % j->n_kv_heads);
                const int nt0 = j->blocks[nb_], nnq = j->blocks[nb_ + 1] - nt0;
                hearth_attn_f16_args na = {hd,
                                           G,
                                           nnq,
                                           m->page_size,
                                           {0},
                                           m->page_table + m->pt_offset[nt0],
                                           (const char *)j->k->data + (size_t)ng * k_head_off,
                                           (const char *)j->v->data + (size_t)ng * v_head_off,
                                           j->k->nb1,
                                           j->v->nb1,
                                           j->scale};
                for (int i = 0; i < nnq; i++)
                    na.n_kv[i] = m->kv_len[nt0 + i];
                j->f16_prefetch(&na);
            }
            const int t0 = j->blocks[blk], nq = j->blocks[blk + 1] - t0;
            char *q16 = base + j->scratch_per_thread - (size_t)HEARTH_ATTN_MAX_Q * G * j->q_row_bytes;
            hearth_attn_f16_args a = {hd,
                                      G,
                                      nq,
                                      m->page_size,
                                      {0},
                                      m->page_table + m->pt_offset[t0],
                                      (const char *)j->k->data + (size_t)g * k_head_off,
                                      (const char *)j->v->data + (size_t)g * v_head_off,
                                      j->k->nb1,
                                      j->v->nb1,
                                      j->scale};
            const uint16_t *qp[HEARTH_ATTN_MAX_Q];
            float *op[HEARTH_ATTN_MAX_Q];
            for (int i = 0; i < nq; i++) {
                char *qi = q16 + (size_t)i * G * j->q_row_bytes;
                for (int h = 0; h < G; h++)
                    hearth_cpu_quantize_act(HEARTH_F16, row_f32(j->q, t0 + i) + (size_t)(g * G + h) * hd,
                                            qi + h * j->q_row_bytes, hd);
                a.n_kv[i] = m->kv_len[t0 + i];
                qp[i] = (const uint16_t *)qi;
                op[i] = row_f32(j->out, t0 + i) + (size_t)g * G * hd;
            }
            j->f16_kernel(&a, qp, op, base);
            continue;
        }
        for (int t = j->blocks[blk]; t < j->blocks[blk + 1]; t++)
            attn_one(j, t, g, base);
    }
}

/* The generic path: one token and one KV head, any K/V type, per-key dots. */
static void attn_one(const attn_job *j, int t, int g, char *base) {
    const hearth_attn_meta *m = j->m;
    const int G = j->n_heads / j->n_kv_heads, hd = j->hd;
    float *s = (float *)base;              /* [G][ATT_TILE] scores, then weights */
    float *acc = s + (size_t)G * ATT_TILE; /* [G][hd] */
    float *mx = acc + (size_t)G * hd;      /* [G] */
    float *l = mx + G;                     /* [G] */
    float *vtmp = l + G;                   /* [hd] */
    char *qk = (char *)(vtmp + hd);        /* [G] q heads in the K dot format */
    const hearth_dtype kt = j->k->type, vt = j->v->type;
    const hearth_dtype kdot = hearth_dtype_info(kt)->vec_dot_type;
    const hearth_vec_dot_fn dot = hearth_cpu_vec_dot(kt);
    const size_t k_head_off = hearth_dtype_row_size(kt, hd), v_head_off = hearth_dtype_row_size(vt, hd);
    {
        for (int h = 0; h < G; h++) {
            hearth_cpu_quantize_act(kdot, row_f32(j->q, t) + (size_t)(g * G + h) * hd,
                                    qk + h * j->q_row_bytes, hd);
            mx[h] = -INFINITY;
            l[h] = 0;
        }
        memset(acc, 0, (size_t)G * hd * sizeof *acc);
        const int n_kv = m->kv_len[t];
        const int32_t *pt = m->page_table + m->pt_offset[t];
        /* sliding window: the query (position n_kv - 1) sees the last `window` keys */
        const int first = j->window > 0 && n_kv > j->window ? n_kv - j->window : 0;
        for (int p0 = first; p0 < n_kv; p0 += ATT_TILE) {
            const int nt = n_kv - p0 < ATT_TILE ? n_kv - p0 : ATT_TILE;
            /* scores of the tile, for every head of the group */
            for (int i = 0; i < nt; i++) {
                const int p = p0 + i;
                const int64_t slot = (int64_t)pt[p / m->page_size] * m->page_size + p % m->page_size;
                const char *krow = (const char *)row_ptr(j->k, slot) + (size_t)g * k_head_off;
                for (int h = 0; h < G; h++) {
                    float sc;
                    dot(hd, &sc, krow, qk + h * j->q_row_bytes);
                    sc *= j->scale;
                    s[h * ATT_TILE + i] = j->softcap > 0 ? j->softcap * tanhf(sc / j->softcap) : sc;
                }
            }
            /* online softmax update */
            for (int h = 0; h < G; h++) {
                float *sh = s + h * ATT_TILE, tmax = mx[h];
                for (int i = 0; i < nt; i++)
                    if (sh[i] > tmax) tmax = sh[i];
                const float c = expf(mx[h] - tmax); /* 0 on the first tile (mx = -inf) */
                if (c != 1.0f) {
                    for (int d = 0; d < hd; d++)
                        acc[h * hd + d] *= c;
                    l[h] *= c;
                }
                mx[h] = tmax;
                for (int i = 0; i < nt; i++) {
                    sh[i] = expf(sh[i] - tmax);
                    l[h] += sh[i];
                }
            }
            /* weighted values */
            for (int i = 0; i < nt; i++) {
                const int p = p0 + i;
                const int64_t slot = (int64_t)pt[p / m->page_size] * m->page_size + p % m->page_size;
                const char *vrow = (const char *)row_ptr(j->v, slot) + (size_t)g * v_head_off;
                if (vt == HEARTH_F16) {
                    for (int h = 0; h < G; h++)
                        j->axpy_f16(hd, acc + (size_t)h * hd, s[h * ATT_TILE + i], (const uint16_t *)vrow);
                    continue;
                }
                const float *v = vt == HEARTH_F32 ? (const float *)vrow : vtmp;
                if (vt != HEARTH_F32) hearth_dequantize_row(vt, vrow, vtmp, hd);
                for (int h = 0; h < G; h++)
                    j->axpy_f32(hd, acc + (size_t)h * hd, s[h * ATT_TILE + i], v);
            }
        }
        for (int h = 0; h < G; h++) {
            float *o = row_f32(j->out, t) + (size_t)(g * G + h) * hd;
            const float inv = 1.0f / l[h];
            for (int d = 0; d < hd; d++)
                o[d] = acc[h * hd + d] * inv;
        }
    }
}

static void cpu_attention_ext(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                              const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads,
                              int n_kv_heads, int head_dim, float scale, const hearth_attn_opts *o,
                              hearth_tensor *out) {
    PROFILE_BEGIN(b);
    const bool plain = !o || (o->window <= 0 && o->softcap <= 0);
    cpu_ctx *c = ctx_of(b);
    const int G = n_heads / n_kv_heads;
    size_t q_row = hearth_dtype_row_size(hearth_dtype_info(k_pool->type)->vec_dot_type, head_dim);
    size_t per =
        sizeof(float) * ((size_t)G * ATT_TILE + (size_t)G * head_dim + 2 * (size_t)G + (size_t)head_dim) +
        (size_t)G * q_row;
    /* the F16 group kernel of the family whose F16 dot the per-key path
     * would use (its scores equal that dot's), and its scratch size */
    hearth_attn_f16_fn f16_kernel = NULL;
    hearth_attn_f16_prefetch_fn f16_prefetch = NULL;
    size_t kern = 0;
    const bool f16_kv = plain && k_pool->type == HEARTH_F16 && v_pool->type == HEARTH_F16;
#if HEARTH_HAVE_AVX512_KERNELS
    if (f16_kv && hearth_cpu_level_get() >= HEARTH_CPU_AVX512 && hearth_cpu_caps_get()->avx512vnni &&
        hearth_attn_f16_avx512_supports(head_dim)) {
        f16_kernel = hearth_attn_f16_avx512;
        f16_prefetch = hearth_attn_f16_avx512_prefetch;
        kern = hearth_attn_f16_avx512_scratch(G, head_dim);
    }
#endif
#if HEARTH_HAVE_AVX2_KERNELS
    if (!f16_kernel && f16_kv && hearth_cpu_level_get() >= HEARTH_CPU_AVX2 &&
        !(hearth_cpu_level_get() >= HEARTH_CPU_AVX512 && hearth_cpu_caps_get()->avx512vnni) &&
        hearth_attn_f16_avx2_supports(head_dim)) {
        f16_kernel = hearth_attn_f16_avx2;
        f16_prefetch = hearth_attn_f16_avx2_prefetch;
        kern = hearth_attn_f16_avx2_scratch(G, head_dim);
    }
#endif
    (void)f16_kv;
    if (f16_kernel) { /* the kernel's scratch, then the F16 queries of a block */
        size_t generic = per - (size_t)G * q_row;
        per = (kern > generic ? kern : generic) + (size_t)HEARTH_ATTN_MAX_Q * G * q_row;
    }
    per = (per + 63) & ~(size_t)63;
    size_t need = per * (size_t)c->n_threads;
    if (!hearth_grow(&c->att_scratch, &c->att_scratch_n, need, 1)) abort(); /* a few KB per thread */
    /* blocks: runs of up to HEARTH_ATTN_MAX_Q consecutive tokens of one
     * sequence (a prompt chunk) for the group kernel, single tokens otherwise */
    if (!hearth_grow((void **)&c->att_blocks, &c->att_blocks_n, (size_t)m->n_tokens + 1,
                     sizeof *c->att_blocks))
        abort(); /* a few KB */
    int n_blocks = 0;
    for (int t = 0; t < m->n_tokens;) {
        int e = t + 1;
        while (f16_kernel && e < m->n_tokens && e - t < HEARTH_ATTN_MAX_Q &&
               m->pt_offset[e] == m->pt_offset[t])
            e++;
        c->att_blocks[n_blocks++] = t;
        t = e;
    }
    c->att_blocks[n_blocks] = m->n_tokens;
    attn_job j = {q,
                  k_pool,
                  v_pool,
                  m,
                  n_heads,
                  n_kv_heads,
                  head_dim,
                  scale,
                  out,
                  c->att_scratch,
                  per,
                  q_row,
                  axpy_f16_ref,
                  axpy_f32_ref,
                  f16_kernel,
                  f16_prefetch,
                  c->att_blocks,
                  n_blocks,
                  plain ? 0 : o->window,
                  plain ? 0.0f : o->softcap};
#ifdef HEARTH_HAVE_AVX2_KERNELS
    if (hearth_cpu_level_get() >= HEARTH_CPU_AVX2) {
        j.axpy_f16 = hearth_axpy_f16_avx2;
        j.axpy_f32 = hearth_axpy_f32_avx2;
    }
#endif
    hearth_threadpool_run(c->pool, attn_worker, &j, c->n_threads);
    PROFILE_END(b, HEARTH_OP_ATTENTION);
}

static void cpu_attention(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                          const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads, int n_kv_heads,
                          int head_dim, float scale, hearth_tensor *out) {
    cpu_attention_ext(b, q, k_pool, v_pool, m, n_heads, n_kv_heads, head_dim, scale, NULL, out);
}

/* ------------------------------------------------------------ lifecycle */

static hearth_status cpu_synchronize(hearth_backend *b, hearth_error *err) {
    return HEARTH_OK;
}

static void cpu_info(hearth_backend *b, hearth_backend_info *out) {
    cpu_ctx *c = ctx_of(b);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cpu");
    snprintf(out->device, sizeof out->device, "%s, %d thread%s", hearth_cpu_features(), c->n_threads,
             c->n_threads == 1 ? "" : "s");
    hearth_host_memory(&out->mem_total, &out->mem_free);
    out->host_visible = true;
}

static void cpu_destroy(hearth_backend *b) {
    cpu_ctx *c = ctx_of(b);
    hearth_threadpool_free(c->pool);
    free(c->scratch);
    free(c->att_scratch);
    free(c->att_blocks);
    free(c);
    free(b);
}

static const hearth_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .info = cpu_info,
    .supports_type = cpu_supports_type,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .get_rows = cpu_get_rows,
    .rms_norm = cpu_rms_norm,
    .matmul = cpu_matmul,
    .matmul_multi = cpu_matmul_multi,
    .add = cpu_add,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .silu_mul = cpu_silu_mul,
    .layer_norm = cpu_layer_norm,
    .gelu = cpu_gelu,
    .gelu_mul = cpu_gelu_mul,
    .scale_cap = cpu_scale_cap,
    .attention_ext = cpu_attention_ext,
    .get_rows_f32 = cpu_get_rows_f32,
    .moe_route = hearth_cpu_moe_route,
    .moe_matmul = hearth_cpu_moe_matmul,
    .moe_combine = hearth_cpu_moe_combine,
    .synchronize = cpu_synchronize,
};

hearth_backend *hearth_cpu_backend_create(int n_threads, hearth_error *err) {
    if (n_threads <= 0) n_threads = hearth_physical_cores();
    if (n_threads > 256) n_threads = 256;
    hearth_backend *b = calloc(1, sizeof *b);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) goto oom;
    c->n_threads = n_threads;
    c->pool = hearth_threadpool_create(n_threads);
    if (!c->pool) goto oom;
    b->ops = &cpu_ops;
    b->ctx = c;
    return b;
oom:
    free(b);
    free(c);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "cpu backend: cannot create %d threads", n_threads);
    return NULL;
}
