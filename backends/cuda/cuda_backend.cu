/*
 * cuda_backend.cu - the CUDA implementation of backend.h (NVIDIA GPUs).
 *
 * Owner: the CUDA backend (backends/cuda). Owns: one device, one stream, the host
 * and device staging buffers for the index arrays the ops receive (token ids,
 * positions, KV slots, page tables, rope freq factors), scratch buffers (F16
 * activations for the GEMM, split-K attention partials), a cache of CUDA
 * graphs and the first error seen.
 *
 * How ops run. An op does not launch its kernel: it appends a *record* (kernel,
 * launch shape, every argument; index arrays copied into the host staging
 * buffer at 16-byte-aligned offsets) to the current segment. A segment is
 * flushed -- one copy of the staging bytes to the device, then the kernels --
 * when the runtime needs ordering with the host or with memory it manages:
 * synchronize, upload, download, copy, dealloc. So a forward pass is one
 * segment (its ops up to the logits download). A flushed segment runs either
 *  - eagerly, one launch per record, or
 *  - as a CUDA graph: a segment of at most HEARTH_CUDA_GRAPH_MAX_TOKENS tokens
 *    seen before with exactly the same records is captured once (the staging
 *    copy from pinned memory plus the kernels), and replayed when it comes
 *    again. The key is the whole record array (memcmp, after a hash): kernel,
 *    grid, pointers, sizes and staging offsets; the index array *contents* are
 *    not in it (they travel through the captured copy from the fixed pinned
 *    buffer). What would change every step is padded to a capacity instead:
 *    the page table is staged at its length rounded up to a power of two, and
 *    split-K attention's chunk grid is sized from the longest context rounded
 *    up to a power of two (chunks past a token's kv_len write an empty
 *    partial). So a decode step replays the same graph until a context
 *    crosses a power of two.
 * HEARTH_CUDA_GRAPHS=0 (or --profile) flushes after every op, as the first
 * version did; the staging buffer is then pageable memory.
 *
 * Invariants:
 *  - Records hold device pointers and staging *offsets*; a record never points
 *    into host memory the caller owns, so ops may return before anything runs.
 *  - A captured graph bakes in the device staging buffer, the pinned host
 *    buffer and the scratch buffers: reallocating any of them drops every
 *    graph (graph_drop_all). A scratch buffer grows only after the pending
 *    records (which may point into it) are flushed and the stream drained.
 *  - The pinned staging buffer is rewritten only after the previous segment's
 *    staging copy has run (an event, waited on at the next segment's first
 *    staged array; a forward pass ends in synchronize, so that wait is free).
 *  - Ops never fail: every CUDA call and launch is checked and the first error
 *    is kept ("cuda:0: kernel matmul<q4_0>: an illegal memory access ...") and
 *    returned by synchronize (sticky: a device fault poisons the context).
 *    After an error, nothing more is launched.
 *  - Weights keep their GGUF layout; kernels decode blocks in place (cuda_quant.h).
 *  - The same binary runs without a driver: cudart is static and
 *    hearth_cuda_backend_create returns NULL with one clear line.
 *
 * Kernels: cuda_kernels.cuh (reference: HEARTH_CUDA_KERNELS=simple selects
 * them alone), cuda_matvec.cuh (decode matmul, 16-byte loads), cuda_gemm.cuh
 * (prefill matmul on tensor cores), cuda_attention.cuh (split-K decode
 * attention). Which one an op uses is decided here, per op.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_quant.h"
#include "cuda_kernels.cuh"
#include "cuda_matvec.cuh"
#include "cuda_gemm.cuh"
#include "cuda_attention.cuh"

extern "C" {
#include "cuda_backend.h"
#include "backends/backend_impl.h"
#include "core/grow.h"
#include "core/os.h"
}

namespace {

/* ------------------------------------------------------------ records */

enum rec_kind : int32_t {
    RK_GET_ROWS,
    RK_GET_ROWS_F32,
    RK_RMS_NORM,
    RK_MATMUL,
    RK_MV_F16,
    RK_MV_Q,
    RK_TO_F16,
    RK_GEMM,
    RK_ADD,
    RK_SILU_MUL,
    RK_ROPE,
    RK_KV_STORE,
    RK_ATTN,
    RK_ATTN_SPLIT,
    RK_ATTN_COMBINE,
    RK_ARGMAX,
    RK_LAYER_NORM,
    RK_GELU,
    RK_GELU_MUL,
    RK_SCALE_CAP
};

/* Kernel arguments. No implicit padding anywhere (explicit pad_ fields, checked
 * below): records are hashed and compared byte for byte, and padding bytes
 * would not survive a struct copy reliably. */
struct p_rows { const uint8_t *w; size_t nb1; int64_t ne0; float *out; size_t os; };
struct p_norm { const float *x; size_t xs; int64_t ne0; const float *w; float eps; int32_t pad_; float *out; size_t os; };
struct p_lnorm { const float *x; size_t xs; int64_t ne0; const float *w, *b; float eps; int32_t pad_; float *out;
                 size_t os; };
struct p_mm { const uint8_t *w; size_t nb1; int64_t K, nrows; const float *x; size_t xs; const __half *xh; int64_t Kp;
              int ntok; int32_t pad_; const float *bias; float *out; size_t os; };
struct p_ew { const float *a; size_t as; const float *b; size_t bs; float *o; size_t os; int64_t ne0, nrows; };
struct p_rope {
    float *x;
    size_t xs;
    int n_heads, mode, n_rot, head_dim, has_ff;
    float theta_scale, freq_scale, attn_factor, ext_factor, yarn_lo, yarn_hi, temp_scale;
    int temp_floor, pad_;
};
struct p_kv { uint8_t *pool; size_t pnb1; int ptype; int32_t pad_; const float *src; size_t ss; int64_t ne0; };
struct p_attn { const float *q; size_t qs; const uint8_t *kp; size_t knb; const uint8_t *vp; size_t vnb;
    int kt, vt, page_size, n_kv, G, hd, chunk_len, n_heads;
    size_t khb, vhb;
    float scale;
    int32_t window;
    float softcap;
    int32_t pad_;
    float *part, *out;
    size_t os;
};
struct p_sc {
    const float *x;
    size_t xs;
    float *o;
    size_t os;
    int64_t ne0, nrows;
    float s, cap;
};
static_assert(sizeof(p_rows) == 5 * 8 && sizeof(p_norm) == 7 * 8 && sizeof(p_mm) == 12 * 8 &&
                  sizeof(p_ew) == 8 * 8 && sizeof(p_rope) == 9 * 8 && sizeof(p_kv) == 6 * 8 &&
                  sizeof(p_attn) == 17 * 8 && sizeof(p_lnorm) == 8 * 8 && sizeof(p_sc) == 7 * 8,
              "kernel argument structs must have no implicit padding");

/* One kernel launch, fully described. Zero-filled before use, so two records
 * of the same launch compare equal byte for byte (padding included). */
struct rec {
    int32_t kind, type, variant, ntok; /* variant: tokens per pass (matvec), BN (gemm) */
    uint32_t grid[3], block, smem;
    uint32_t st[3]; /* staging offsets of the index arrays */
    union {
        p_rows rows;
        p_norm norm;
        p_lnorm lnorm;
        p_mm mm;
        p_ew ew;
        p_rope rope;
        p_sc sc;
        p_kv kv;
        p_attn attn;
    } p;
};
static_assert(sizeof(rec) == 48 + sizeof(p_attn) && offsetof(rec, p) == 48, "records must have no implicit padding");

struct graph_entry {
    uint64_t key;
    rec *recs;
    int n;
    size_t stage_bytes;
    cudaGraphExec_t exec;
    uint64_t last_use;
};

enum { GRAPH_CACHE = 32, SEEN_RING = 64, SCRATCH_X16 = 0, SCRATCH_ATTN = 1, N_SCRATCH = 2 };

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cudaDeviceProp prop;
    bool failed;
    char err[HEARTH_ERROR_MSG_MAX];
    /* configuration (environment, at create) */
    bool simple;         /* reference kernels only */
    bool graphs;         /* defer ops and replay repeated segments as graphs */
    int graph_max_tokens;
    /* the current segment */
    rec *recs;
    int n_recs;
    size_t cap_recs;
    int seg_max_tokens;
    uint8_t *stage_host; /* pinned when graphs, else pageable */
    size_t stage_host_cap, stage_used;
    bool stage_pinned;
    cudaEvent_t staged;  /* after the last segment's staging copy */
    bool staged_pending;
    uint8_t *stage_dev;
    size_t stage_cap;
    /* scratch */
    void *scratch[N_SCRATCH];
    size_t scratch_cap[N_SCRATCH];
    /* graphs */
    graph_entry cache[GRAPH_CACHE];
    int n_cache;
    uint64_t seen[SEEN_RING];
    int seen_next;
    uint64_t tick;
    bool last_was_graph;
    hearth_cuda_counters count;
};

cuda_ctx *ctx_of(hearth_backend *b) { return (cuda_ctx *)b->ctx; }

/* Ops may come from any host thread: make the backend's device current. */
cuda_ctx *enter(hearth_backend *b) {
    cuda_ctx *c = ctx_of(b);
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess || cur != c->device) cudaSetDevice(c->device);
    return c;
}

/* Keep the first error; later ones are usually its consequences. */
void record(cuda_ctx *c, cudaError_t e, const char *what, const char *detail = "") {
    if (e == cudaSuccess || c->failed) return;
    c->failed = true;
    snprintf(c->err, sizeof c->err, "cuda:%d: %s%s: %s (%s)", c->device, what, detail, cudaGetErrorString(e),
             cudaGetErrorName(e));
}
void record_msg(cuda_ctx *c, const char *msg) {
    if (c->failed) return;
    c->failed = true;
    snprintf(c->err, sizeof c->err, "cuda:%d: %s", c->device, msg);
}

#define CK(c, call, what) record((c), (call), (what))

const char *tname(int t) { return hearth_dtype_name((hearth_dtype)t); }

void flush(cuda_ctx *c);

/* --profile: time each op on the host, the stream drained at both ends (ops
 * flush one by one while profiling, so the kernels run inside the window). */
struct op_timer {
    hearth_backend *b;
    int op;
    double t0;
    op_timer(hearth_backend *b_, int op_) : b(b_), op(op_), t0(0) {
        if (b->profile) {
            flush(ctx_of(b));
            cudaStreamSynchronize(ctx_of(b)->stream);
            t0 = hearth_now_us();
        }
    }
    ~op_timer() {
        if (b->profile) {
            cudaStreamSynchronize(ctx_of(b)->stream);
            b->op_time_us[op] += hearth_now_us() - t0;
            b->op_count[op]++;
        }
    }
};

inline unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }
inline unsigned clampu(int64_t v, unsigned hi) { return v < 1 ? 1u : v > hi ? hi : (unsigned)v; }
inline size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }
inline int64_t pow2_at_least(int64_t v, int64_t lo) {
    int64_t p = lo;
    while (p < v) p *= 2;
    return p;
}

/* ------------------------------------------------------------ graphs */

void graph_drop(cuda_ctx *c, int i) {
    cudaGraphExecDestroy(c->cache[i].exec);
    free(c->cache[i].recs);
    c->cache[i] = c->cache[--c->n_cache];
    c->count.graph_evictions++;
}

/* Every graph bakes in the staging and scratch buffers: call when one moves. */
void graph_drop_all(cuda_ctx *c) {
    while (c->n_cache) graph_drop(c, c->n_cache - 1);
}

uint64_t segment_key(const cuda_ctx *c) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)c->stage_used;
    const uint64_t *w = (const uint64_t *)c->recs;
    const size_t n = (size_t)c->n_recs * sizeof(rec) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

graph_entry *graph_find(cuda_ctx *c, uint64_t key) {
    for (int i = 0; i < c->n_cache; i++) {
        graph_entry *g = &c->cache[i];
        if (g->key == key && g->n == c->n_recs && g->stage_bytes == c->stage_used &&
            !memcmp(g->recs, c->recs, (size_t)c->n_recs * sizeof(rec)))
            return g;
    }
    return NULL;
}

/* True if the key was seen before; remembers it otherwise. */
bool seen_before(cuda_ctx *c, uint64_t key) {
    for (int i = 0; i < SEEN_RING; i++)
        if (c->seen[i] == key) return true;
    c->seen[c->seen_next] = key;
    c->seen_next = (c->seen_next + 1) % SEEN_RING;
    return false;
}

/* ------------------------------------------------------------ staging */

/* Copy `bytes` of src (NULL: zeros) into the segment's host staging, taking
 * `reserve` >= bytes (the rest zero-filled). Returns the offset, or 0 with an
 * error recorded (the ops check c->failed). */
uint32_t stage_put(cuda_ctx *c, const void *src, size_t bytes, size_t reserve) {
    if (reserve < bytes) reserve = bytes;
    if (c->staged_pending) { /* the last segment's copy may still read the pinned buffer */
        CK(c, cudaEventSynchronize(c->staged), "cudaEventSynchronize (staging)");
        c->staged_pending = false;
    }
    const size_t off = c->stage_used, need = off + align16(reserve ? reserve : 1);
    if (need > 0xffffffffu) {
        record_msg(c, "staging index arrays: more than 4 GiB in one segment");
        return 0;
    }
    if (need > c->stage_host_cap) {
        size_t cap = need < 65536 ? 65536 : need * 2;
        uint8_t *p = NULL;
        if (c->stage_pinned) {
            cudaError_t e = cudaHostAlloc((void **)&p, cap, cudaHostAllocDefault);
            if (e != cudaSuccess) {
                record(c, e, "cudaHostAlloc (staging)");
                return 0;
            }
        } else if (!(p = (uint8_t *)malloc(cap))) {
            record_msg(c, "staging index arrays: out of host memory");
            return 0;
        }
        if (off) memcpy(p, c->stage_host, off);
        if (c->stage_pinned) {
            if (c->stage_host) cudaFreeHost(c->stage_host);
            graph_drop_all(c); /* their copies read the old buffer */
        } else {
            free(c->stage_host);
        }
        c->stage_host = p;
        c->stage_host_cap = cap;
    }
    if (bytes) memcpy(c->stage_host + off, src, bytes);
    memset(c->stage_host + off + bytes, 0, need - off - bytes);
    c->stage_used = need;
    return (uint32_t)off;
}

/* A device scratch buffer of at least `bytes`, or NULL (error recorded). */
void *scratch(cuda_ctx *c, int which, size_t bytes) {
    if (bytes <= c->scratch_cap[which]) return c->scratch[which];
    flush(c); /* pending records may point into the old buffer */
    CK(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize (scratch)");
    if (c->scratch[which]) cudaFree(c->scratch[which]);
    c->scratch[which] = NULL;
    c->scratch_cap[which] = 0;
    graph_drop_all(c);
    if (c->failed) return NULL;
    const size_t cap = bytes + bytes / 2;
    cudaError_t e = cudaMalloc(&c->scratch[which], cap);
    if (e != cudaSuccess) {
        c->scratch[which] = NULL;
        record(c, e, "cudaMalloc (scratch)");
        return NULL;
    }
    c->scratch_cap[which] = cap;
    return c->scratch[which];
}

/* ------------------------------------------------------------ launching */

#define TYPE_SWITCH(t, T, ...)                              \
    switch (t) {                                            \
    case HEARTH_F32: { const int T = HEARTH_F32; __VA_ARGS__; break; }   \
    case HEARTH_F16: { const int T = HEARTH_F16; __VA_ARGS__; break; }   \
    case HEARTH_BF16: { const int T = HEARTH_BF16; __VA_ARGS__; break; } \
    case HEARTH_Q8_0: { const int T = HEARTH_Q8_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_0: { const int T = HEARTH_Q4_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_1: { const int T = HEARTH_Q4_1; __VA_ARGS__; break; } \
    case HEARTH_Q5_0: { const int T = HEARTH_Q5_0; __VA_ARGS__; break; } \
    case HEARTH_Q5_1: { const int T = HEARTH_Q5_1; __VA_ARGS__; break; } \
    case HEARTH_Q2_K: { const int T = HEARTH_Q2_K; __VA_ARGS__; break; } \
    case HEARTH_Q3_K: { const int T = HEARTH_Q3_K; __VA_ARGS__; break; } \
    case HEARTH_Q4_K: { const int T = HEARTH_Q4_K; __VA_ARGS__; break; } \
    case HEARTH_Q5_K: { const int T = HEARTH_Q5_K; __VA_ARGS__; break; } \
    case HEARTH_Q6_K: { const int T = HEARTH_Q6_K; __VA_ARGS__; break; } \
    case HEARTH_IQ4_NL: { const int T = HEARTH_IQ4_NL; __VA_ARGS__; break; } \
    case HEARTH_IQ4_XS: { const int T = HEARTH_IQ4_XS; __VA_ARGS__; break; } \
    default: break;                                         \
    }

/* the 32-element block types the fast matvec streams (cq_is_q32) */
#define Q32_SWITCH(t, T, ...)                                            \
    switch (t) {                                                         \
    case HEARTH_Q8_0: { const int T = HEARTH_Q8_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_0: { const int T = HEARTH_Q4_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_1: { const int T = HEARTH_Q4_1; __VA_ARGS__; break; } \
    case HEARTH_Q5_0: { const int T = HEARTH_Q5_0; __VA_ARGS__; break; } \
    case HEARTH_Q5_1: { const int T = HEARTH_Q5_1; __VA_ARGS__; break; } \
    default: break;                                                      \
    }

/* matvec / gemm variants: a run-time value to a template argument */
#define NT_SWITCH(v, NT, ...)                             \
    switch (v) {                                          \
    case 1: { const int NT = 1; __VA_ARGS__; break; }     \
    case 2: { const int NT = 2; __VA_ARGS__; break; }     \
    case 4: { const int NT = 4; __VA_ARGS__; break; }     \
    default: { const int NT = 8; __VA_ARGS__; break; }    \
    }

const char *kind_name(int k) {
    static const char *const names[] = {"get_rows",
                                        "get_rows_f32",
                                        "rms_norm",
                                        "matmul",
                                        "matvec_f16",
                                        "matvec_q",
                                        "to_f16",
                                        "gemm",
                                        "add",
                                        "silu_mul",
                                        "rope",
                                        "kv_store",
                                        "attention",
                                        "attention_split",
                                        "attention_combine",
                                        "argmax",
                                        "layer_norm",
                                        "gelu",
                                        "gelu_mul",
                                        "scale_cap"};
    return k >= 0 && k < (int)(sizeof names / sizeof *names) ? names[k] : "?";
}

/* Launch one record on the stream (eagerly or into a capture). */
void launch(cuda_ctx *c, const rec &r) {
    const dim3 grid(r.grid[0], r.grid[1], r.grid[2]), block(r.block);
    cudaStream_t s = c->stream;
    const int32_t *st0 = (const int32_t *)(c->stage_dev + r.st[0]);
    const int32_t *st1 = (const int32_t *)(c->stage_dev + r.st[1]);
    const int32_t *st2 = (const int32_t *)(c->stage_dev + r.st[2]);
    switch (r.kind) {
    case RK_GET_ROWS: {
        const p_rows &p = r.p.rows;
        TYPE_SWITCH(r.type, T, k_get_rows<T><<<grid, block, 0, s>>>(p.w, p.nb1, p.ne0, st0, p.out, p.os));
        break;
    }
    case RK_GET_ROWS_F32: {
        const p_rows &p = r.p.rows;
        k_get_rows_f32<<<grid, block, 0, s>>>((const float *)p.w, p.nb1, p.ne0, st0, p.out, p.os);
        break;
    }
    case RK_ARGMAX: {
        const p_rows &p = r.p.rows;
        k_argmax<<<grid, block, 0, s>>>((const float *)p.w, p.nb1, p.ne0, (int32_t *)p.out);
        break;
    }
    case RK_RMS_NORM: {
        const p_norm &p = r.p.norm;
        k_rms_norm<<<grid, block, 0, s>>>(p.x, p.xs, p.ne0, p.w, p.eps, p.out, p.os);
        break;
    }
    case RK_LAYER_NORM: {
        const p_lnorm &p = r.p.lnorm;
        k_layer_norm<<<grid, block, 0, s>>>(p.x, p.xs, p.ne0, p.w, p.b, p.eps, p.out, p.os);
        break;
    }
    case RK_GELU: {
        const p_ew &p = r.p.ew;
        k_gelu<<<grid, block, 0, s>>>(p.a, p.as, p.o, p.os, p.ne0, p.nrows);
        break;
    }
    case RK_GELU_MUL: {
        const p_ew &p = r.p.ew;
        k_gelu_mul<<<grid, block, 0, s>>>(p.a, p.as, p.b, p.bs, p.o, p.os, p.ne0, p.nrows);
        break;
    }
    case RK_SCALE_CAP: {
        const p_sc &p = r.p.sc;
        k_scale_cap<<<grid, block, 0, s>>>(p.x, p.xs, p.o, p.os, p.ne0, p.nrows, p.s, p.cap);
        break;
    }
    case RK_MATMUL: {
        const p_mm &p = r.p.mm;
        if (r.variant == 1) {
            TYPE_SWITCH(r.type, T,
                        k_matmul<T, 1><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.x, p.xs, p.ntok, p.bias,
                                                              p.out, p.os));
        } else {
            TYPE_SWITCH(r.type, T,
                        k_matmul<T, MM_TOK><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.x, p.xs, p.ntok,
                                                                   p.bias, p.out, p.os));
        }
        break;
    }
    case RK_MV_F16: {
        const p_mm &p = r.p.mm;
        NT_SWITCH(r.variant, NT,
                  k_mv_f16<NT><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.x, p.xs, p.ntok, p.bias, p.out,
                                                      p.os));
        break;
    }
    case RK_MV_Q: {
        const p_mm &p = r.p.mm;
        Q32_SWITCH(r.type, T,
                   NT_SWITCH(r.variant, NT,
                             k_mv_q<T, NT><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.x, p.xs, p.ntok,
                                                                  p.bias, p.out, p.os)));
        break;
    }
    case RK_TO_F16: {
        const p_mm &p = r.p.mm;
        k_to_f16<<<grid, block, 0, s>>>(p.x, p.xs, p.K, p.Kp, (__half *)p.xh);
        break;
    }
    case RK_GEMM: {
        const p_mm &p = r.p.mm;
        if (r.variant == 64) {
            TYPE_SWITCH(r.type, T,
                        k_gemm<T, 64><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.xh, p.Kp, p.ntok, p.bias,
                                                             p.out, p.os));
        } else {
            TYPE_SWITCH(r.type, T,
                        k_gemm<T, 128><<<grid, block, 0, s>>>(p.w, p.nb1, p.K, p.nrows, p.xh, p.Kp, p.ntok,
                                                              p.bias, p.out, p.os));
        }
        break;
    }
    case RK_ADD: {
        const p_ew &p = r.p.ew;
        k_add<<<grid, block, 0, s>>>(p.a, p.as, p.b, p.bs, p.o, p.os, p.ne0, p.nrows);
        break;
    }
    case RK_SILU_MUL: {
        const p_ew &p = r.p.ew;
        k_silu_mul<<<grid, block, 0, s>>>(p.a, p.as, p.b, p.bs, p.o, p.os, p.ne0, p.nrows);
        break;
    }
    case RK_ROPE: {
        const p_rope &p = r.p.rope;
        k_rope<<<grid, block, 0, s>>>(p.x, p.xs, p.n_heads, st0, p.mode, p.n_rot, p.head_dim, p.theta_scale,
                                      p.freq_scale, p.has_ff ? (const float *)st1 : NULL, p.attn_factor,
                                      p.ext_factor, p.yarn_lo, p.yarn_hi, p.temp_scale, p.temp_floor);
        break;
    }
    case RK_KV_STORE: {
        const p_kv &p = r.p.kv;
        k_kv_store<<<grid, block, 0, s>>>(p.pool, p.pnb1, p.ptype, p.src, p.ss, p.ne0, st0);
        break;
    }
    case RK_ATTN: {
        const p_attn &p = r.p.attn;
        k_attention<<<grid, block, r.smem, s>>>(p.q, p.qs, p.kp, p.knb, p.kt, p.vp, p.vnb, p.vt, p.page_size,
                                                st0, st1, st2, p.n_kv, p.G, p.hd, p.khb, p.vhb, p.scale,
                                                p.window, p.softcap, p.out, p.os);
        break;
    }
    case RK_ATTN_SPLIT: {
        const p_attn &p = r.p.attn;
        k_attn_split<<<grid, block, r.smem, s>>>(p.q, p.qs, p.kp, p.knb, p.kt, p.vp, p.vnb, p.vt, p.page_size,
                                                 st0, st1, st2, p.n_kv, p.G, p.hd, p.khb, p.vhb, p.scale,
                                                 p.window, p.softcap, p.chunk_len, p.part, p.out, p.os);
        break;
    }
    case RK_ATTN_COMBINE: {
        const p_attn &p = r.p.attn;
        k_attn_combine<<<grid, block, 0, s>>>(p.part, p.chunk_len /* n_chunks */, p.n_heads, p.hd, p.out, p.os);
        break;
    }
    }
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        char name[64];
        if (r.kind == RK_MATMUL || r.kind == RK_MV_F16 || r.kind == RK_MV_Q || r.kind == RK_GEMM ||
            r.kind == RK_GET_ROWS)
            snprintf(name, sizeof name, "%s<%s>", kind_name(r.kind), tname(r.type));
        else
            snprintf(name, sizeof name, "%s", kind_name(r.kind));
        record(c, e, "kernel ", name);
    }
}

void segment_reset(cuda_ctx *c) {
    c->n_recs = 0;
    c->stage_used = 0;
    c->seg_max_tokens = 0;
}

/* Device staging big enough for the segment (moving it drops the graphs). */
bool stage_dev_fit(cuda_ctx *c) {
    if (c->stage_used <= c->stage_cap) return true;
    CK(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize (staging)");
    if (c->stage_dev) cudaFree(c->stage_dev);
    c->stage_dev = NULL;
    c->stage_cap = 0;
    graph_drop_all(c);
    const size_t cap = c->stage_used < 65536 ? 65536 : c->stage_used * 2;
    cudaError_t e = cudaMalloc((void **)&c->stage_dev, cap);
    if (e != cudaSuccess) {
        c->stage_dev = NULL;
        record(c, e, "cudaMalloc (staging)");
        return false;
    }
    c->stage_cap = cap;
    return !c->failed;
}

void launch_eager(cuda_ctx *c) {
    if (c->stage_used)
        CK(c, cudaMemcpyAsync(c->stage_dev, c->stage_host, c->stage_used, cudaMemcpyHostToDevice, c->stream),
           "cudaMemcpyAsync (index arrays)");
    for (int i = 0; i < c->n_recs && !c->failed; i++) launch(c, c->recs[i]);
    c->count.eager_segments++;
    c->last_was_graph = false;
}

/* Capture the segment into a new cache entry; NULL if capture is not possible
 * here (the caller then launches eagerly). */
graph_entry *graph_capture(cuda_ctx *c, uint64_t key) {
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    if (c->stage_used)
        CK(c, cudaMemcpyAsync(c->stage_dev, c->stage_host, c->stage_used, cudaMemcpyHostToDevice, c->stream),
           "cudaMemcpyAsync (index arrays, captured)");
    for (int i = 0; i < c->n_recs && !c->failed; i++) launch(c, c->recs[i]);
    cudaGraph_t g = NULL;
    e = cudaStreamEndCapture(c->stream, &g);
    if (e != cudaSuccess || c->failed || !g) {
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
        return NULL;
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    rec *copy = (rec *)malloc((size_t)c->n_recs * sizeof(rec));
    if (!copy) {
        cudaGraphExecDestroy(exec);
        return NULL;
    }
    memcpy(copy, c->recs, (size_t)c->n_recs * sizeof(rec));
    if (c->n_cache == GRAPH_CACHE) { /* evict the least recently used */
        int lru = 0;
        for (int i = 1; i < c->n_cache; i++)
            if (c->cache[i].last_use < c->cache[lru].last_use) lru = i;
        graph_drop(c, lru);
    }
    graph_entry *ge = &c->cache[c->n_cache++];
    ge->key = key;
    ge->recs = copy;
    ge->n = c->n_recs;
    ge->stage_bytes = c->stage_used;
    ge->exec = exec;
    ge->last_use = 0;
    c->count.graph_captures++;
    return ge;
}

/* Run the pending records: from the graph cache, by capturing them, or eagerly. */
void flush(cuda_ctx *c) {
    if (c->n_recs == 0) return;
    if (c->failed || !stage_dev_fit(c)) {
        segment_reset(c);
        return;
    }
    graph_entry *g = NULL;
    if (c->graphs && c->n_recs >= 2 && c->seg_max_tokens <= c->graph_max_tokens) {
        const uint64_t key = segment_key(c);
        g = graph_find(c, key);
        if (!g && seen_before(c, key)) g = graph_capture(c, key);
    }
    if (g && !c->failed) {
        g->last_use = ++c->tick;
        CK(c, cudaGraphLaunch(g->exec, c->stream), "cudaGraphLaunch");
        c->count.graph_replays++;
        c->last_was_graph = true;
    } else if (!c->failed) {
        launch_eager(c);
    }
    if (c->stage_pinned && c->stage_used) {
        CK(c, cudaEventRecord(c->staged, c->stream), "cudaEventRecord (staging)");
        c->staged_pending = true;
    }
    segment_reset(c);
}

/* Append a record to the segment; without graphs (or when profiling) it runs at once. */
void push(hearth_backend *b, cuda_ctx *c, const rec &r) {
    if (c->failed) return;
    if (!hearth_grow((void **)&c->recs, &c->cap_recs, (size_t)c->n_recs + 1, sizeof(rec)))
        return record_msg(c, "recording ops: out of host memory");
    c->recs[c->n_recs++] = r;
    if (r.ntok > c->seg_max_tokens) c->seg_max_tokens = r.ntok;
    if (!c->graphs || b->profile) flush(c);
}

/* A zeroed record (so that equal launches compare equal). */
rec rec_new(int kind, int ntok, dim3 grid, unsigned block, unsigned smem = 0) {
    rec r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.ntok = ntok;
    r.grid[0] = grid.x;
    r.grid[1] = grid.y;
    r.grid[2] = grid.z;
    r.block = block;
    r.smem = smem;
    return r;
}

/* ------------------------------------------------------------ memory ops */

void *cu_alloc(hearth_backend *b, size_t bytes, hearth_error *err) {
    cuda_ctx *c = enter(b);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "cuda:%d: cannot allocate %zu bytes (%s; %zu MiB free of %zu MiB)",
                         c->device, bytes, cudaGetErrorString(e), fr >> 20, tot >> 20);
        return NULL;
    }
    return p;
}

/* The memory ops below order themselves after the pending records: flush first. */

void cu_dealloc(hearth_backend *b, void *p) {
    if (!p) return;
    cuda_ctx *c = enter(b);
    flush(c);
    CK(c, cudaFree(p), "cudaFree");
}

void cu_upload(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    flush(c);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream), "upload (cudaMemcpyAsync)");
}

void cu_download(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    flush(c);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream), "download (cudaMemcpyAsync)");
}

void cu_copy(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_COPY);
    flush(c);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, c->stream), "copy (cudaMemcpyAsync)");
}

/* ------------------------------------------------------------ op wrappers */

size_t fstride(const hearth_tensor *t) { return t->nb1 / sizeof(float); }

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

void unsupported_weight(cuda_ctx *c, const char *op, int type) {
    char m[128];
    snprintf(m, sizeof m, "%s: weight type %s is not supported", op, tname(type));
    record_msg(c, m);
}

void cu_get_rows(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_GET_ROWS);
    if (n <= 0 || c->failed) return;
    if (!cuda_type_supported(w->type)) return unsupported_weight(c, "get_rows", w->type);
    rec r = rec_new(RK_GET_ROWS, n, dim3(n), 256);
    r.type = w->type;
    r.p.rows = {(const uint8_t *)w->data, w->nb1, w->ne0, (float *)out->data, fstride(out)};
    r.st[0] = stage_put(c, ids, (size_t)n * sizeof(int32_t), 0);
    push(b, c, r);
}

void cu_get_rows_f32(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_COPY);
    if (n <= 0 || c->failed) return;
    rec r = rec_new(RK_GET_ROWS_F32, n, dim3(n), 256);
    r.p.rows = {(const uint8_t *)x->data, fstride(x), x->ne0, (float *)out->data, fstride(out)};
    r.st[0] = stage_put(c, rows, (size_t)n * sizeof(int32_t), 0);
    push(b, c, r);
}

void cu_rms_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_RMS_NORM);
    if (x->ne1 <= 0 || c->failed) return;
    if (x->ne1 > 0x7fffffff) return record_msg(c, "rms_norm: too many rows");
    /* ntok 0: rows are not tokens here (qwen3's per-head norm has tokens x heads rows,
     * which would push a decode segment past HEARTH_CUDA_GRAPH_MAX_TOKENS); the
     * matmuls of the segment carry its token count */
    rec r = rec_new(RK_RMS_NORM, 0, dim3((unsigned)x->ne1), 256);
    r.p.norm = {(const float *)x->data, fstride(x), x->ne0, (const float *)w->data, eps, 0, (float *)out->data,
                fstride(out)};
    push(b, c, r);
}

/* The encoders' LayerNorm (profiled as RMS_NORM, as on the CPU); rows are
 * not counted as tokens, as in cu_rms_norm. */
void cu_layer_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, const hearth_tensor *bias,
                   float eps, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_RMS_NORM);
    if (x->ne1 <= 0 || c->failed) return;
    if (x->ne1 > 0x7fffffff) return record_msg(c, "layer_norm: too many rows");
    rec r = rec_new(RK_LAYER_NORM, 0, dim3((unsigned)x->ne1), 256);
    r.p.lnorm = {(const float *)x->data, fstride(x), x->ne0, (const float *)w->data,
                 bias ? (const float *)bias->data : NULL, eps, 0, (float *)out->data, fstride(out)};
    push(b, c, r);
}

void cu_argmax(hearth_backend *b, const hearth_tensor *x, void *ids) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_COPY);
    if (x->ne1 <= 0 || x->ne0 <= 0 || c->failed) return;
    if (x->ne1 > 0x7fffffff) return record_msg(c, "argmax: too many rows");
    rec r = rec_new(RK_ARGMAX, (int)(x->ne1 < 1 << 30 ? x->ne1 : 1 << 30), dim3((unsigned)x->ne1), 1024);
    r.p.rows = {(const uint8_t *)x->data, fstride(x), x->ne0, (float *)ids, 0};
    push(b, c, r);
}

enum { GEMM_MIN_TOKENS = 16 };

/* Which matmul kernel: the tensor-core GEMM from GEMM_MIN_TOKENS tokens on
 * (any supported type but F32, whose exact path stays), the 16-byte matvec for
 * F16 rows and the 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) it can
 * stream, else (the K-quants, unaligned rows) the reference warp-per-row kernel. */
void cu_matmul(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x, const hearth_tensor *bias,
               hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_MATMUL);
    const int ntok = (int)x->ne1;
    if (ntok <= 0 || w->ne1 <= 0 || c->failed) return;
    if (!cuda_type_supported(w->type)) return unsupported_weight(c, "matmul", w->type);
    const int t = w->type;
    const int64_t K = w->ne0, N = w->ne1;
    p_mm p = {(const uint8_t *)w->data, w->nb1, K, N, (const float *)x->data, fstride(x), NULL, 0, ntok, 0,
              bias ? (const float *)bias->data : NULL, (float *)out->data, fstride(out)};

    if (!c->simple && t != HEARTH_F32 && ntok >= GEMM_MIN_TOKENS && ntok <= 65535) {
        const int64_t Kp = (K + GEMM_BK - 1) / GEMM_BK * GEMM_BK;
        __half *xh = (__half *)scratch(c, SCRATCH_X16, (size_t)ntok * (size_t)Kp * sizeof(__half));
        if (!xh) return;
        rec cv = rec_new(RK_TO_F16, ntok, dim3(clampu(cdiv(Kp, 256), 64), (unsigned)ntok), 256);
        cv.p.mm = p;
        cv.p.mm.xh = xh;
        cv.p.mm.Kp = Kp;
        push(b, c, cv);
        const int BN = ntok <= 64 ? 64 : 128;
        rec r = rec_new(RK_GEMM, ntok, dim3(cdiv(N, GEMM_BM), cdiv(ntok, BN)), GEMM_THREADS);
        r.type = t;
        r.variant = BN;
        r.p.mm = p;
        r.p.mm.xh = xh;
        r.p.mm.Kp = Kp;
        c->count.gemm++;
        return push(b, c, r);
    }

    const int nt = ntok == 1 ? 1 : ntok == 2 ? 2 : ntok <= 4 ? 4 : 8;
    const bool rows16 = w->nb1 % 16 == 0 && aligned16(w->data);
    const bool x16 = p.xs % 4 == 0 && aligned16(x->data);
    const bool fast_f16 = t == HEARTH_F16 && K % 8 == 0;
    const bool fast_q = cq_is_q32(t) && K % 32 == 0 &&
                        (K / 32 * (int64_t)hearth_dtype_row_size((hearth_dtype)t, 32)) % 16 == 0;
    if (!c->simple && rows16 && x16 && (fast_f16 || fast_q)) {
        rec r = rec_new(fast_f16 ? RK_MV_F16 : RK_MV_Q, ntok, dim3(cdiv(N, MV_WARPS), clampu(cdiv(ntok, nt), 65535)),
                        MV_WARPS * 32);
        r.type = t;
        r.variant = nt;
        r.p.mm = p;
        c->count.matvec_fast++;
        return push(b, c, r);
    }

    const int v = ntok == 1 ? 1 : MM_TOK;
    rec r = rec_new(RK_MATMUL, ntok, dim3(cdiv(N, MM_WARPS), clampu(cdiv(ntok, v), 65535)), MM_WARPS * 32);
    r.type = t;
    r.variant = v;
    r.p.mm = p;
    push(b, c, r);
}

dim3 ew_grid(int64_t ne0, int64_t nrows) { return dim3(clampu(cdiv(ne0, 256), 1024), clampu(nrows, 65535)); }

void elementwise(hearth_backend *b, int kind, const hearth_tensor *a, const hearth_tensor *c2, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    if (a->ne1 <= 0 || a->ne0 <= 0 || c->failed) return;
    rec r = rec_new(kind, (int)(a->ne1 < 1 << 30 ? a->ne1 : 1 << 30), ew_grid(a->ne0, a->ne1), 256);
    r.p.ew = {(const float *)a->data, fstride(a), (const float *)c2->data, fstride(c2), (float *)out->data,
              fstride(out), a->ne0, a->ne1};
    push(b, c, r);
}

void cu_add(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c2, hearth_tensor *out) {
    op_timer tm(b, HEARTH_OP_ADD);
    elementwise(b, RK_ADD, a, c2, out);
}

void cu_silu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up, hearth_tensor *out) {
    op_timer tm(b, HEARTH_OP_SILU_MUL);
    elementwise(b, RK_SILU_MUL, gate, up, out);
}

/* GELU, tanh form (profiled as SILU_MUL, as on the CPU). */
void cu_gelu(hearth_backend *b, const hearth_tensor *x, hearth_tensor *out) {
    op_timer tm(b, HEARTH_OP_SILU_MUL);
    elementwise(b, RK_GELU, x, x, out);
}

/* GeGLU: gelu(gate) * up (Gemma's FFN; profiled as SILU_MUL). */
void cu_gelu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up, hearth_tensor *out) {
    op_timer tm(b, HEARTH_OP_SILU_MUL);
    elementwise(b, RK_GELU_MUL, gate, up, out);
}

/* s * x, soft-capped when cap > 0 (Gemma's logits, Granite's multipliers;
 * profiled as ADD). */
void cu_scale_cap(hearth_backend *b, const hearth_tensor *x, float sc, float cap, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ADD);
    if (x->ne1 <= 0 || x->ne0 <= 0 || c->failed) return;
    rec r = rec_new(RK_SCALE_CAP, (int)(x->ne1 < 1 << 30 ? x->ne1 : 1 << 30), ew_grid(x->ne0, x->ne1), 256);
    r.p.sc = {(const float *)x->data, fstride(x), (float *)out->data, fstride(out), x->ne0, x->ne1, sc, cap};
    push(b, c, r);
}

void cu_rope(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos, const hearth_rope_params *p) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ROPE);
    const int64_t ntok = x->ne1;
    if (ntok <= 0 || n_heads <= 0 || p->n_rot < 2 || c->failed) return;
    if (ntok * n_heads > 0x7fffffff) return record_msg(c, "rope: too many rows");
    const int threads = p->n_rot / 2 < 128 ? ((p->n_rot / 2 + 31) / 32) * 32 : 128;
    rec r = rec_new(RK_ROPE, (int)ntok, dim3((unsigned)(ntok * n_heads)), threads);
    r.p.rope = {(float *)x->data,
                fstride(x),
                n_heads,
                (int)p->mode,
                p->n_rot,
                p->head_dim,
                p->freq_factors != NULL,
                powf(p->freq_base, -2.0f / (float)p->n_rot),
                p->freq_scale,
                p->attn_factor,
                p->ext_factor,
                p->yarn_lo,
                p->yarn_hi,
                p->temp_scale,
                p->temp_floor,
                0};
    r.st[0] = stage_put(c, pos, (size_t)ntok * sizeof(int32_t), 0);
    if (p->freq_factors) r.st[1] = stage_put(c, p->freq_factors, (size_t)(p->n_rot / 2) * sizeof(float), 0);
    push(b, c, r);
}

bool kv_type_ok(cuda_ctx *c, const char *op, int t) {
    if (t == HEARTH_F32 || t == HEARTH_F16 || t == HEARTH_Q8_0) return true;
    char m[128];
    snprintf(m, sizeof m, "%s: KV type %s is not supported (f32, f16, q8_0)", op, tname(t));
    record_msg(c, m);
    return false;
}

void cu_kv_store(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src, const int32_t *slots) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_KV_STORE);
    if (src->ne1 <= 0 || c->failed) return;
    if (!kv_type_ok(c, "kv_store", pool->type)) return;
    if (src->ne1 > 0x7fffffff) return record_msg(c, "kv_store: too many rows");
    rec r = rec_new(RK_KV_STORE, (int)src->ne1, dim3((unsigned)src->ne1), 256);
    r.p.kv = {(uint8_t *)pool->data, pool->nb1, (int)pool->type, 0, (const float *)src->data, fstride(src), src->ne0};
    r.st[0] = stage_put(c, slots, (size_t)src->ne1 * sizeof(int32_t), 0);
    push(b, c, r);
}

enum { ATT_SPLIT_MAX_TOKENS = 8, ATT_MIN_CHUNK = 64 };

/* Paged attention. Decode (few tokens): split-K over chunks of the context
 * (cuda_attention.cuh), sized from the longest context rounded up to a power of
 * two so the launch stays the same while contexts grow. Otherwise one block
 * per (token, KV head). The page table is staged padded to a power of two. */
/* attention and attention_ext: o NULL, or window <= 0 and softcap <= 0,
 * is plain attention. */
static void attention_impl(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                           const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads,
                           int n_kv_heads, int head_dim, float scale, const hearth_attn_opts *o,
                           hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ATTENTION);
    const int T = m->n_tokens;
    if (T <= 0 || c->failed) return;
    if (!kv_type_ok(c, "attention", k_pool->type) || !kv_type_ok(c, "attention", v_pool->type)) return;
    if (head_dim > ATT_MAX_HD || head_dim <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads)
        return record_msg(c, "attention: head_dim above 256 or heads not a multiple of KV heads");
    if ((int64_t)T * n_kv_heads > 0x7fffffff) return record_msg(c, "attention: too many tokens");
    const int G = n_heads / n_kv_heads;
    const size_t smem = sizeof(float) * ((size_t)G * head_dim * (1 + ATT_WARPS) + 2 * (size_t)G * ATT_WARPS);
    if (smem > c->prop.sharedMemPerBlockOptin) return record_msg(c, "attention: query group too large for shared memory");
    const bool split = !c->simple && T <= ATT_SPLIT_MAX_TOKENS;
    if (smem > 48 * 1024) {
        if (split)
            CK(c, cudaFuncSetAttribute(k_attn_split, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
               "cudaFuncSetAttribute (attention_split)");
        else
            CK(c, cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
               "cudaFuncSetAttribute (attention)");
    }
    int max_kv = 1;
    for (int i = 0; i < T; i++)
        if (m->kv_len[i] > max_kv) max_kv = m->kv_len[i];

    p_attn p;
    memset(&p, 0, sizeof p);
    p.q = (const float *)q->data;
    p.qs = fstride(q);
    p.kp = (const uint8_t *)k_pool->data;
    p.knb = k_pool->nb1;
    p.kt = k_pool->type;
    p.vp = (const uint8_t *)v_pool->data;
    p.vnb = v_pool->nb1;
    p.vt = v_pool->type;
    p.page_size = m->page_size;
    p.n_kv = n_kv_heads;
    p.G = G;
    p.hd = head_dim;
    p.n_heads = n_heads;
    p.khb = hearth_dtype_row_size((hearth_dtype)k_pool->type, head_dim);
    p.vhb = hearth_dtype_row_size((hearth_dtype)v_pool->type, head_dim);
    p.scale = scale;
    p.window = o && o->window > 0 ? o->window : 0;
    p.softcap = o && o->softcap > 0 ? o->softcap : 0.0f;
    p.out = (float *)out->data;
    p.os = fstride(out);

    int n_chunks = 1;
    if (split) {
        /* enough blocks for two waves of the SMs, chunks of at least ATT_MIN_CHUNK keys */
        const int64_t cap = pow2_at_least(max_kv, ATT_MIN_CHUNK);
        const int64_t want = cdiv(2 * (int64_t)c->prop.multiProcessorCount, (int64_t)T * n_kv_heads);
        const int64_t most = cap / ATT_MIN_CHUNK;
        n_chunks = (int)(want < 1 ? 1 : want > most ? most : want);
        if (n_chunks > 65535) n_chunks = 65535;
        p.chunk_len = (int)cdiv(cap, n_chunks);
        if (n_chunks > 1) {
            p.part = (float *)scratch(c, SCRATCH_ATTN,
                                      sizeof(float) * (size_t)T * n_heads * n_chunks * (size_t)(head_dim + 2));
            if (!p.part) return;
        }
    }

    const int pt_cap = (int)pow2_at_least(m->n_page_table, 16);
    rec r = rec_new(split ? RK_ATTN_SPLIT : RK_ATTN, T, dim3((unsigned)(T * n_kv_heads), n_chunks), ATT_WARPS * 32,
                    (unsigned)smem);
    r.p.attn = p;
    r.st[0] = stage_put(c, m->kv_len, (size_t)T * sizeof(int32_t), 0);
    r.st[1] = stage_put(c, m->pt_offset, (size_t)T * sizeof(int32_t), 0);
    r.st[2] = stage_put(c, m->page_table, (size_t)m->n_page_table * sizeof(int32_t), (size_t)pt_cap * sizeof(int32_t));
    if (split) c->count.attn_split++;
    push(b, c, r);
    if (n_chunks > 1) {
        rec cb = rec_new(RK_ATTN_COMBINE, T, dim3((unsigned)(T * n_heads)), head_dim < 128 ? 128 : 256);
        cb.p.attn = p;
        cb.p.attn.chunk_len = n_chunks; /* the combine kernel's chunk count */
        push(b, c, cb);
    }
}

void cu_attention(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                  const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads, int n_kv_heads,
                  int head_dim, float scale, hearth_tensor *out) {
    attention_impl(b, q, k_pool, v_pool, m, n_heads, n_kv_heads, head_dim, scale, NULL, out);
}

/* With a sliding window (the query at position kv_len - 1 sees the last
 * `window` keys) and score soft-capping, as the CPU's attention_ext. */
void cu_attention_ext(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                      const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads, int n_kv_heads,
                      int head_dim, float scale, const hearth_attn_opts *o, hearth_tensor *out) {
    attention_impl(b, q, k_pool, v_pool, m, n_heads, n_kv_heads, head_dim, scale, o, out);
}

/* ------------------------------------------------------------ lifecycle */

hearth_status cu_synchronize(hearth_backend *b, hearth_error *err) {
    cuda_ctx *c = enter(b);
    flush(c);
    /* a fault inside a kernel surfaces here, not at its launch; name where to look */
    record(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize",
           c->last_was_graph ? " (after a CUDA graph replay; HEARTH_CUDA_GRAPHS=0 CUDA_LAUNCH_BLOCKING=1 names the "
                               "failing kernel)"
                             : " (CUDA_LAUNCH_BLOCKING=1 names the failing kernel)");
    if (c->failed) return hearth_error_set(err, HEARTH_ERR_BACKEND, "%s", c->err);
    return HEARTH_OK;
}

bool cu_supports_type(hearth_backend *b, hearth_dtype t) { return cuda_type_supported(t); }

void cu_info(hearth_backend *b, hearth_backend_info *out) {
    cuda_ctx *c = ctx_of(b);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cuda:%d", c->device);
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
    snprintf(out->device, sizeof out->device, "%s, sm_%d%d, %d SMs, %.1f GiB", c->prop.name, c->prop.major,
             c->prop.minor, c->prop.multiProcessorCount, (double)c->prop.totalGlobalMem / (1u << 30));
    out->mem_total = tot ? tot : c->prop.totalGlobalMem;
    out->mem_free = fr;
    out->host_visible = false;
}

void cu_destroy(hearth_backend *b) {
    cuda_ctx *c = ctx_of(b);
    cudaSetDevice(c->device);
    flush(c);
    cudaStreamSynchronize(c->stream);
    graph_drop_all(c);
    for (int i = 0; i < N_SCRATCH; i++)
        if (c->scratch[i]) cudaFree(c->scratch[i]);
    if (c->stage_dev) cudaFree(c->stage_dev);
    if (c->stage_pinned) {
        if (c->stage_host) cudaFreeHost(c->stage_host);
    } else {
        free(c->stage_host);
    }
    free(c->recs);
    if (c->staged) cudaEventDestroy(c->staged);
    cudaStreamDestroy(c->stream);
    free(c);
    free(b);
}

hearth_backend_ops make_ops() {
    hearth_backend_ops o;
    memset(&o, 0, sizeof o);
    o.destroy = cu_destroy;
    o.info = cu_info;
    o.supports_type = cu_supports_type;
    o.alloc = cu_alloc;
    o.dealloc = cu_dealloc;
    o.upload = cu_upload;
    o.download = cu_download;
    o.copy = cu_copy;
    o.get_rows = cu_get_rows;
    o.rms_norm = cu_rms_norm;
    o.matmul = cu_matmul;
    o.add = cu_add;
    o.rope = cu_rope;
    o.kv_store = cu_kv_store;
    o.attention = cu_attention;
    o.silu_mul = cu_silu_mul;
    o.layer_norm = cu_layer_norm;
    o.gelu = cu_gelu;
    o.gelu_mul = cu_gelu_mul;
    o.scale_cap = cu_scale_cap;
    o.attention_ext = cu_attention_ext;
    o.get_rows_f32 = cu_get_rows_f32;
    o.argmax = cu_argmax;
    o.synchronize = cu_synchronize;
    return o;
}

const hearth_backend_ops cuda_ops = make_ops();

/* Environment flag: unset -> dflt; "0", "off", "no", "false" -> false. */
bool env_flag(const char *name, bool dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    return !(strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0);
}

} // namespace

void hearth_cuda_get_counters(hearth_backend *b, hearth_cuda_counters *out) { *out = ctx_of(b)->count; }

/* How many CUDA devices there are; 0 with one clear line in err when none can be used. */
static int device_count(hearth_error *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        /* with no driver at all, cudart says "driver version is insufficient": say what that usually means */
        hearth_error_set(err, HEARTH_ERR_BACKEND, "cuda: no usable CUDA device (cudaGetDeviceCount: %s%s)",
                         cudaGetErrorString(e),
                         e == cudaErrorInsufficientDriver ? "; no NVIDIA driver is loaded, or it is older than this "
                                                            "build's CUDA runtime"
                                                          : "");
        return 0;
    }
    if (count <= 0)
        hearth_error_set(err, HEARTH_ERR_BACKEND, "cuda: no usable CUDA device (cudaGetDeviceCount: 0 devices)");
    return count > 0 ? count : 0;
}

int hearth_cuda_devices(hearth_device_desc *out, int cap, hearth_error *err) {
    int count = device_count(err);
    if (count == 0) return -1;
    int driver = 0;
    cudaDriverGetVersion(&driver);
    for (int i = 0; i < count && i < cap; i++) {
        hearth_device_desc *d = &out[i];
        memset(d, 0, sizeof *d);
        snprintf(d->select, sizeof d->select, "cuda:%d", i);
        snprintf(d->kind, sizeof d->kind, "discrete gpu");
        cudaDeviceProp prop;
        cudaError_t e = cudaGetDeviceProperties(&prop, i);
        if (e != cudaSuccess) {
            cudaGetLastError();
            snprintf(d->note, sizeof d->note, "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
            continue;
        }
        snprintf(d->name, sizeof d->name, "%s", prop.name);
        snprintf(d->driver, sizeof d->driver, "CUDA driver %d.%d, compute capability %d.%d", driver / 1000,
                 driver % 1000 / 10, prop.major, prop.minor);
        d->mem_total = prop.totalGlobalMem;
        size_t fr = 0, tot = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess) d->mem_free = fr;
        cudaGetLastError();
        d->usable = true;
    }
    return count;
}

hearth_backend *hearth_cuda_backend_create(int device, hearth_error *err) {
    int count = device_count(err);
    if (count == 0) return NULL;
    cudaError_t e;
    if (device < 0) device = 0;
    if (device >= count) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "cuda:%d: no such device (this machine has %d: cuda:0..cuda:%d)",
                         device, count, count - 1);
        return NULL;
    }
    hearth_backend *b = (hearth_backend *)calloc(1, sizeof *b);
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "cuda: out of host memory");
        return NULL;
    }
    c->device = device;
    const char *step = "cudaSetDevice";
    e = cudaSetDevice(device);
    if (e == cudaSuccess) {
        step = "cudaGetDeviceProperties";
        e = cudaGetDeviceProperties(&c->prop, device);
    }
    if (e == cudaSuccess) {
        step = "cudaStreamCreate";
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    }
    if (e == cudaSuccess) {
        step = "cudaEventCreate";
        e = cudaEventCreateWithFlags(&c->staged, cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        hearth_error_set(err, HEARTH_ERR_BACKEND, "cuda:%d: no usable CUDA device (%s: %s)", device, step,
                         cudaGetErrorString(e));
        cudaGetLastError();
        if (c->stream) cudaStreamDestroy(c->stream);
        free(b);
        free(c);
        return NULL;
    }
    const char *kern = getenv("HEARTH_CUDA_KERNELS");
    c->simple = kern && strcmp(kern, "simple") == 0;
    c->graphs = env_flag("HEARTH_CUDA_GRAPHS", true);
    c->stage_pinned = c->graphs; /* captured copies need page-locked sources */
    const char *gmt = getenv("HEARTH_CUDA_GRAPH_MAX_TOKENS");
    c->graph_max_tokens = gmt && atoi(gmt) > 0 ? atoi(gmt) : 32;
    b->ops = &cuda_ops;
    b->ctx = c;
    return b;
}
