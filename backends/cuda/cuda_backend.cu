/*
 * cuda_backend.cu - the CUDA implementation of backend.h (NVIDIA GPUs).
 *
 * Owner: the CUDA backend (issue 8). Owns: one device, one stream, a device
 * staging buffer for the host index arrays the ops receive (token ids,
 * positions, KV slots, page tables, rope freq factors) and the first error seen.
 *
 * Invariants:
 *  - Every op enqueues on the one stream, so the staging buffer can be reused by
 *    the next op: its upload runs after the previous op's kernel in stream order.
 *    Host index arrays are copied with cudaMemcpyAsync from pageable memory,
 *    which returns once the source has been consumed (the caller may free it).
 *  - Ops never fail: every CUDA call and launch is checked and the first error is
 *    kept ("cuda:0: kernel matmul<q4_0>: an illegal memory access ...") and
 *    returned by synchronize (sticky: a device fault poisons the context).
 *  - Weights keep their GGUF layout; kernels decode blocks in place (cuda_quant.h).
 *  - The same binary runs without a driver: cudart is static and
 *    hearth_cuda_backend_create returns NULL with one clear line.
 *
 * Kernels favour being right over being fast (no GPU was at hand when they were
 * written): matmul is one warp per output row with up to 8 tokens per pass
 * (decode reads each weight once; prefill re-reads the weights per 8 tokens),
 * attention is one block per (token, KV head) with an online softmax per warp.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_quant.h"

extern "C" {
#include "backend.h"
hearth_backend *hearth_cuda_backend_create(int device, hearth_error *err);
}

namespace {

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cudaDeviceProp prop;
    bool failed;
    char err[HEARTH_ERROR_MSG_MAX];
    uint8_t *stage_dev; /* index arrays, uploaded per op */
    size_t stage_cap;
    uint8_t *stage_host;
    size_t stage_host_cap;
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
#define LAUNCHED(c, name) record((c), cudaGetLastError(), "kernel ", (name))

const char *tname(int t) { return hearth_dtype_name((hearth_dtype)t); }

double now_us() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* --profile: time each op on the host, the stream drained at both ends. */
struct op_timer {
    hearth_backend *b;
    int op;
    double t0;
    op_timer(hearth_backend *b_, int op_) : b(b_), op(op_), t0(0) {
        if (b->profile) {
            cudaStreamSynchronize(ctx_of(b)->stream);
            t0 = now_us();
        }
    }
    ~op_timer() {
        if (b->profile) {
            cudaStreamSynchronize(ctx_of(b)->stream);
            b->op_time_us[op] += now_us() - t0;
            b->op_count[op]++;
        }
    }
};

/* Copy up to 4 host arrays to the device staging buffer in one transfer; each
 * part starts 16-byte aligned. Returns false (error recorded) on failure. */
bool stage(cuda_ctx *c, int n, const void *const *src, const size_t *bytes, const void **dev) {
    size_t off[4], total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += (bytes[i] + 15) & ~(size_t)15;
    }
    if (total == 0) total = 16;
    if (total > c->stage_host_cap) {
        uint8_t *p = (uint8_t *)realloc(c->stage_host, total);
        if (!p) {
            record_msg(c, "staging index arrays: out of host memory");
            return false;
        }
        c->stage_host = p;
        c->stage_host_cap = total;
    }
    if (total > c->stage_cap) {
        /* the old buffer may still be read by queued kernels */
        CK(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize (staging)");
        if (c->stage_dev) cudaFree(c->stage_dev);
        c->stage_dev = NULL;
        c->stage_cap = 0;
        size_t cap = total < 65536 ? 65536 : total * 2;
        cudaError_t e = cudaMalloc((void **)&c->stage_dev, cap);
        if (e != cudaSuccess) {
            record(c, e, "cudaMalloc (staging)");
            c->stage_dev = NULL;
            return false;
        }
        c->stage_cap = cap;
    }
    for (int i = 0; i < n; i++) {
        if (bytes[i]) memcpy(c->stage_host + off[i], src[i], bytes[i]);
        dev[i] = c->stage_dev + off[i];
    }
    CK(c, cudaMemcpyAsync(c->stage_dev, c->stage_host, total, cudaMemcpyHostToDevice, c->stream),
       "cudaMemcpyAsync (index arrays)");
    return !c->failed;
}

inline unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }
inline unsigned clampu(int64_t v, unsigned hi) { return v < 1 ? 1u : v > hi ? hi : (unsigned)v; }

/* ------------------------------------------------------------ reductions */

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return __shfl_sync(0xffffffffu, v, 0); /* every lane gets lane 0's bits */
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); all threads get it. */
__device__ float block_sum(float v, float *red /* [32] */) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = lane < nw ? red[lane] : 0.0f;
    s = warp_sum(s);
    __syncthreads(); /* red may be reused */
    return s;
}

/* ------------------------------------------------------------ get_rows */

template <int T>
__global__ void k_get_rows(const uint8_t *w, size_t w_nb1, int64_t ne0, const int32_t *ids, float *out,
                           size_t o_stride) {
    const uint8_t *wr = w + (int64_t)ids[blockIdx.x] * w_nb1;
    float *o = out + (size_t)blockIdx.x * o_stride;
    const int64_t nch = ne0 / 8;
    for (int64_t c = threadIdx.x; c < nch; c += blockDim.x) {
        float v[8];
        dq8<T>(wr, c * 8, v);
#pragma unroll
        for (int i = 0; i < 8; i++) o[c * 8 + i] = v[i];
    }
    for (int64_t e = nch * 8 + threadIdx.x; e < ne0; e += blockDim.x) o[e] = dq1<T>(wr, e);
}

__global__ void k_get_rows_f32(const float *x, size_t x_stride, int64_t ne0, const int32_t *rows, float *out,
                               size_t o_stride) {
    const float *xr = x + (int64_t)rows[blockIdx.x] * x_stride;
    float *o = out + (size_t)blockIdx.x * o_stride;
    for (int64_t e = threadIdx.x; e < ne0; e += blockDim.x) o[e] = xr[e];
}

/* ------------------------------------------------------------ rms_norm */

__global__ void k_rms_norm(const float *x, size_t x_stride, int64_t ne0, const float *w, float eps, float *out,
                           size_t o_stride) {
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * x_stride;
    float *o = out + (size_t)blockIdx.x * o_stride;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, red);
    const float scale = 1.0f / sqrtf(ss / (float)ne0 + eps);
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

/* ------------------------------------------------------------ matmul */

enum { MM_WARPS = 8, MM_TOK = 8 };

/* One warp per output row r; tokens in groups of NT (grid.y strides the groups).
 * Lane l decodes chunks l, l+32, ... of 8 weights and dots them with NT tokens. */
template <int T, int NT>
__global__ void __launch_bounds__(MM_WARPS * 32)
    k_matmul(const uint8_t *w, size_t w_nb1, int64_t ne0, int64_t nrows, const float *x, size_t x_stride, int ntok,
             const float *bias, float *out, size_t o_stride) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t r = (int64_t)blockIdx.x * MM_WARPS + warp;
    if (r >= nrows) return; /* whole warp */
    const uint8_t *wr = w + r * w_nb1;
    const int64_t nch = ne0 / 8;
    for (int t0 = blockIdx.y * NT; t0 < ntok; t0 += gridDim.y * NT) {
        float acc[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) acc[t] = 0.0f;
        for (int64_t c = lane; c < nch; c += 32) {
            float v[8];
            dq8<T>(wr, c * 8, v);
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t0 + t < ntok) {
                    float a[8];
                    dq8<HEARTH_F32>((const uint8_t *)(x + (size_t)(t0 + t) * x_stride), c * 8, a);
#pragma unroll
                    for (int i = 0; i < 8; i++) acc[t] = fmaf(v[i], a[i], acc[t]);
                }
            }
        }
        for (int64_t e = nch * 8 + lane; e < ne0; e += 32) {
            const float v = dq1<T>(wr, e);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t0 + t < ntok) acc[t] = fmaf(v, x[(size_t)(t0 + t) * x_stride + e], acc[t]);
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            const float s = warp_sum(acc[t]);
            if (lane == 0 && t0 + t < ntok) out[(size_t)(t0 + t) * o_stride + r] = bias ? s + bias[r] : s;
        }
    }
}

/* ------------------------------------------------------------ elementwise */

__global__ void k_add(const float *a, size_t a_s, const float *c, size_t c_s, float *o, size_t o_s, int64_t ne0,
                      int64_t nrows) {
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y)
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < ne0; i += (int64_t)gridDim.x * blockDim.x)
            o[r * o_s + i] = a[r * a_s + i] + c[r * c_s + i];
}

__global__ void k_silu_mul(const float *g, size_t g_s, const float *u, size_t u_s, float *o, size_t o_s, int64_t ne0,
                           int64_t nrows) {
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y)
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < ne0; i += (int64_t)gridDim.x * blockDim.x) {
            const float x = g[r * g_s + i];
            o[r * o_s + i] = x / (1.0f + expf(-x)) * u[r * u_s + i];
        }
}

/* ------------------------------------------------------------ rope */

/* Block = one (token, head); thread i rotates pair i. */
__global__ void k_rope(float *x, size_t x_stride, int n_heads, const int32_t *pos, int mode, int n_rot, int head_dim,
                       float theta_scale, float freq_scale, const float *freq_factors, float attn_factor) {
    const int t = blockIdx.x / n_heads, h = blockIdx.x % n_heads, half = n_rot / 2;
    float *v = x + (size_t)t * x_stride + (size_t)h * head_dim;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float th = (float)pos[t] * powf(theta_scale, (float)i) * freq_scale / ff;
        float sn, cs;
        sincosf(th, &sn, &cs);
        cs *= attn_factor;
        sn *= attn_factor;
        const int i0 = mode == HEARTH_ROPE_NEOX ? i : 2 * i, i1 = mode == HEARTH_ROPE_NEOX ? i + half : 2 * i + 1;
        const float a = v[i0], c = v[i1];
        v[i0] = a * cs - c * sn;
        v[i1] = a * sn + c * cs;
    }
}

/* ------------------------------------------------------------ kv_store */

/* Block = one token: pool row slots[t] = src row t converted to the pool type. */
__global__ void k_kv_store(uint8_t *pool, size_t p_nb1, int ptype, const float *src, size_t s_stride, int64_t ne0,
                           const int32_t *slots) {
    const float *s = src + (size_t)blockIdx.x * s_stride;
    uint8_t *d = pool + (int64_t)slots[blockIdx.x] * p_nb1;
    if (ptype == HEARTH_F32) {
        for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) ((float *)d)[i] = s[i];
    } else if (ptype == HEARTH_F16) {
        for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) ((__half *)d)[i] = __float2half_rn(s[i]);
    } else { /* Q8_0, one warp per block, as ggml quantize_row_q8_0_ref */
        const int lane = threadIdx.x % 32, nw = blockDim.x / 32;
        for (int64_t b = threadIdx.x / 32; b < ne0 / 32; b += nw) {
            const float x = s[b * 32 + lane];
            float amax = fabsf(x);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
            const float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
            uint8_t *blk = d + b * sizeof(block_q8_0);
            if (lane == 0) {
                const __half_raw hr = __half(__float2half_rn(dd));
                blk[0] = (uint8_t)hr.x;
                blk[1] = (uint8_t)(hr.x >> 8);
            }
            blk[2 + lane] = (uint8_t)(int8_t)roundf(x * id);
        }
    }
}

/* ------------------------------------------------------------ attention */

enum { ATT_WARPS = 4, ATT_MAX_HD = 256 };

/* Block = one (token, KV head) with its G query heads. Warp w takes keys w,
 * w+ATT_WARPS, ... of the token's sequence (through the page table) and keeps an
 * online softmax per query head: m (running max), l (running sum) and an
 * unnormalised output acc; lane l owns dims l, l+32, ... The warps are merged
 * at the end. Shared memory: q [G][hd], then per warp acc [G][hd], m [G], l [G]. */
__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attention(const float *q, size_t q_stride, const uint8_t *kp, size_t k_nb1, int kt, const uint8_t *vp,
                size_t v_nb1, int vt, int page_size, const int32_t *kv_len, const int32_t *pt_offset,
                const int32_t *page_table, int n_kv_heads, int G, int hd, size_t k_head_bytes, size_t v_head_bytes,
                float scale, float *out, size_t o_stride) {
    extern __shared__ float sm[];
    const int t = blockIdx.x / n_kv_heads, g = blockIdx.x % n_kv_heads;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *qs = sm;
    float *acc = qs + (size_t)G * hd + (size_t)warp * ((size_t)G * hd + 2 * G);
    float *mx = acc + (size_t)G * hd, *l = mx + G;

    const float *qrow = q + (size_t)t * q_stride + (size_t)g * G * hd;
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) qs[i] = qrow[i];
    for (int i = lane; i < G * hd; i += 32) acc[i] = 0.0f;
    for (int h = lane; h < G; h += 32) {
        mx[h] = -INFINITY;
        l[h] = 0.0f;
    }
    __syncthreads();

    const int n = kv_len[t];
    const int32_t *pt = page_table + pt_offset[t];
    for (int p = warp; p < n; p += ATT_WARPS) {
        const int64_t slot = (int64_t)pt[p / page_size] * page_size + p % page_size;
        const uint8_t *krow = kp + slot * k_nb1 + (size_t)g * k_head_bytes;
        const uint8_t *vrow = vp + slot * v_nb1 + (size_t)g * v_head_bytes;
        float kr[ATT_MAX_HD / 32], vr[ATT_MAX_HD / 32];
#pragma unroll
        for (int i = 0; i < ATT_MAX_HD / 32; i++) {
            const int d = lane + 32 * i;
            kr[i] = d < hd ? cq_kv_at(kt, krow, d) : 0.0f;
            vr[i] = d < hd ? cq_kv_at(vt, vrow, d) : 0.0f;
        }
        for (int h = 0; h < G; h++) {
            float part = 0.0f;
#pragma unroll
            for (int i = 0; i < ATT_MAX_HD / 32; i++) {
                const int d = lane + 32 * i;
                if (d < hd) part = fmaf(qs[h * hd + d], kr[i], part);
            }
            const float s = warp_sum(part) * scale;
            const float m_old = mx[h], m_new = fmaxf(m_old, s);
            const float c = expf(m_old - m_new), e = expf(s - m_new);
            const float l_new = l[h] * c + e;
#pragma unroll
            for (int i = 0; i < ATT_MAX_HD / 32; i++) {
                const int d = lane + 32 * i;
                if (d < hd) acc[h * hd + d] = fmaf(e, vr[i], acc[h * hd + d] * c);
            }
            __syncwarp();
            if (lane == 0) {
                mx[h] = m_new;
                l[h] = l_new;
            }
            __syncwarp();
        }
    }
    __syncthreads();

    /* merge the warps' partial softmaxes */
    float *o = out + (size_t)t * o_stride + (size_t)g * G * hd;
    const size_t per_warp = (size_t)G * hd + 2 * G;
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int h = i / hd;
        float M = -INFINITY;
        for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sm[(size_t)G * hd + w * per_warp + (size_t)G * hd + h]);
        float L = 0.0f, A = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) {
            const float *aw = sm + (size_t)G * hd + w * per_warp;
            const float mw = aw[(size_t)G * hd + h];
            if (mw == -INFINITY) continue; /* this warp saw no keys */
            const float f = expf(mw - M);
            L += aw[(size_t)G * hd + G + h] * f;
            A += aw[i] * f;
        }
        o[i] = A / L;
    }
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

void cu_dealloc(hearth_backend *b, void *p) {
    if (!p) return;
    cuda_ctx *c = enter(b);
    CK(c, cudaFree(p), "cudaFree");
}

void cu_upload(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream), "upload (cudaMemcpyAsync)");
}

void cu_download(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream), "download (cudaMemcpyAsync)");
}

void cu_copy(hearth_backend *b, void *dst, const void *src, size_t n) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_COPY);
    if (n) CK(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, c->stream), "copy (cudaMemcpyAsync)");
}

/* ------------------------------------------------------------ op wrappers */

#define TYPE_SWITCH(t, T, ...)                              \
    switch (t) {                                            \
    case HEARTH_F32: { const int T = HEARTH_F32; __VA_ARGS__; break; }   \
    case HEARTH_F16: { const int T = HEARTH_F16; __VA_ARGS__; break; }   \
    case HEARTH_BF16: { const int T = HEARTH_BF16; __VA_ARGS__; break; } \
    case HEARTH_Q8_0: { const int T = HEARTH_Q8_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_0: { const int T = HEARTH_Q4_0; __VA_ARGS__; break; } \
    case HEARTH_Q4_K: { const int T = HEARTH_Q4_K; __VA_ARGS__; break; } \
    case HEARTH_Q6_K: { const int T = HEARTH_Q6_K; __VA_ARGS__; break; } \
    default: unsupported = true; break;                     \
    }

size_t fstride(const hearth_tensor *t) { return t->nb1 / sizeof(float); }

void cu_get_rows(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_GET_ROWS);
    if (n <= 0 || c->failed) return;
    const void *src[1] = {ids}, *dev[1];
    const size_t bytes[1] = {(size_t)n * sizeof(int32_t)};
    if (!stage(c, 1, src, bytes, dev)) return;
    bool unsupported = false;
    TYPE_SWITCH(w->type, T,
                k_get_rows<T><<<n, 256, 0, c->stream>>>((const uint8_t *)w->data, w->nb1, w->ne0,
                                                         (const int32_t *)dev[0], (float *)out->data, fstride(out)));
    if (unsupported) {
        char m[128];
        snprintf(m, sizeof m, "get_rows: weight type %s is not supported", tname(w->type));
        record_msg(c, m);
        return;
    }
    LAUNCHED(c, "get_rows");
}

void cu_get_rows_f32(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_COPY);
    if (n <= 0 || c->failed) return;
    const void *src[1] = {rows}, *dev[1];
    const size_t bytes[1] = {(size_t)n * sizeof(int32_t)};
    if (!stage(c, 1, src, bytes, dev)) return;
    k_get_rows_f32<<<n, 256, 0, c->stream>>>((const float *)x->data, fstride(x), x->ne0, (const int32_t *)dev[0],
                                              (float *)out->data, fstride(out));
    LAUNCHED(c, "get_rows_f32");
}

void cu_rms_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_RMS_NORM);
    if (x->ne1 <= 0 || c->failed) return;
    if (x->ne1 > 0x7fffffff) return record_msg(c, "rms_norm: too many rows");
    k_rms_norm<<<(unsigned)x->ne1, 256, 0, c->stream>>>((const float *)x->data, fstride(x), x->ne0,
                                                        (const float *)w->data, eps, (float *)out->data, fstride(out));
    LAUNCHED(c, "rms_norm");
}

void cu_matmul(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x, const hearth_tensor *bias,
               hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_MATMUL);
    const int ntok = (int)x->ne1;
    if (ntok <= 0 || w->ne1 <= 0 || c->failed) return;
    const float *bd = bias ? (const float *)bias->data : NULL;
    const dim3 block(MM_WARPS * 32);
    bool unsupported = false;
    char name[64];
    snprintf(name, sizeof name, "matmul<%s>", tname(w->type));
    if (ntok == 1) {
        const dim3 grid(cdiv(w->ne1, MM_WARPS), 1);
        TYPE_SWITCH(w->type, T,
                    k_matmul<T, 1><<<grid, block, 0, c->stream>>>((const uint8_t *)w->data, w->nb1, w->ne0, w->ne1,
                                                                   (const float *)x->data, fstride(x), ntok, bd,
                                                                   (float *)out->data, fstride(out)));
    } else {
        const dim3 grid(cdiv(w->ne1, MM_WARPS), clampu(cdiv(ntok, MM_TOK), 65535));
        TYPE_SWITCH(w->type, T,
                    k_matmul<T, MM_TOK><<<grid, block, 0, c->stream>>>((const uint8_t *)w->data, w->nb1, w->ne0,
                                                                        w->ne1, (const float *)x->data, fstride(x),
                                                                        ntok, bd, (float *)out->data, fstride(out)));
    }
    if (unsupported) {
        char m[128];
        snprintf(m, sizeof m, "matmul: weight type %s is not supported", tname(w->type));
        record_msg(c, m);
        return;
    }
    LAUNCHED(c, name);
}

dim3 ew_grid(int64_t ne0, int64_t nrows) { return dim3(clampu(cdiv(ne0, 256), 1024), clampu(nrows, 65535)); }

void cu_add(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c2, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ADD);
    if (a->ne1 <= 0 || a->ne0 <= 0 || c->failed) return;
    k_add<<<ew_grid(a->ne0, a->ne1), 256, 0, c->stream>>>((const float *)a->data, fstride(a),
                                                          (const float *)c2->data, fstride(c2), (float *)out->data,
                                                          fstride(out), a->ne0, a->ne1);
    LAUNCHED(c, "add");
}

void cu_silu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_SILU_MUL);
    if (gate->ne1 <= 0 || gate->ne0 <= 0 || c->failed) return;
    k_silu_mul<<<ew_grid(gate->ne0, gate->ne1), 256, 0, c->stream>>>(
        (const float *)gate->data, fstride(gate), (const float *)up->data, fstride(up), (float *)out->data,
        fstride(out), gate->ne0, gate->ne1);
    LAUNCHED(c, "silu_mul");
}

void cu_rope(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos, const hearth_rope_params *p) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ROPE);
    const int64_t ntok = x->ne1;
    if (ntok <= 0 || n_heads <= 0 || p->n_rot < 2 || c->failed) return;
    if (ntok * n_heads > 0x7fffffff) return record_msg(c, "rope: too many rows");
    const void *src[2] = {pos, p->freq_factors}, *dev[2];
    const size_t bytes[2] = {(size_t)ntok * sizeof(int32_t),
                             p->freq_factors ? (size_t)(p->n_rot / 2) * sizeof(float) : 0};
    if (!stage(c, 2, src, bytes, dev)) return;
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_rot);
    const int threads = p->n_rot / 2 < 128 ? ((p->n_rot / 2 + 31) / 32) * 32 : 128;
    k_rope<<<(unsigned)(ntok * n_heads), threads, 0, c->stream>>>(
        (float *)x->data, fstride(x), n_heads, (const int32_t *)dev[0], (int)p->mode, p->n_rot, p->head_dim,
        theta_scale, p->freq_scale, p->freq_factors ? (const float *)dev[1] : NULL, p->attn_factor);
    LAUNCHED(c, "rope");
}

void cu_kv_store(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src, const int32_t *slots) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_KV_STORE);
    if (src->ne1 <= 0 || c->failed) return;
    if (pool->type != HEARTH_F32 && pool->type != HEARTH_F16 && pool->type != HEARTH_Q8_0) {
        char m[128];
        snprintf(m, sizeof m, "kv_store: KV type %s is not supported (f32, f16, q8_0)", tname(pool->type));
        return record_msg(c, m);
    }
    const void *s[1] = {slots}, *dev[1];
    const size_t bytes[1] = {(size_t)src->ne1 * sizeof(int32_t)};
    if (!stage(c, 1, s, bytes, dev)) return;
    k_kv_store<<<(unsigned)src->ne1, 256, 0, c->stream>>>((uint8_t *)pool->data, pool->nb1, (int)pool->type,
                                                          (const float *)src->data, fstride(src), src->ne0,
                                                          (const int32_t *)dev[0]);
    LAUNCHED(c, "kv_store");
}

void cu_attention(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                  const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads, int n_kv_heads, int head_dim,
                  float scale, hearth_tensor *out) {
    cuda_ctx *c = enter(b);
    op_timer tm(b, HEARTH_OP_ATTENTION);
    if (m->n_tokens <= 0 || c->failed) return;
    const hearth_tensor *pools[2] = {k_pool, v_pool};
    for (const hearth_tensor *t : pools)
        if (t->type != HEARTH_F32 && t->type != HEARTH_F16 && t->type != HEARTH_Q8_0) {
            char msg[128];
            snprintf(msg, sizeof msg, "attention: KV type %s is not supported (f32, f16, q8_0)", tname(t->type));
            return record_msg(c, msg);
        }
    if (head_dim > ATT_MAX_HD || n_kv_heads <= 0 || n_heads % n_kv_heads)
        return record_msg(c, "attention: head_dim above 256 or heads not a multiple of KV heads");
    const int G = n_heads / n_kv_heads;
    const size_t smem = sizeof(float) * ((size_t)G * head_dim * (1 + ATT_WARPS) + 2 * (size_t)G * ATT_WARPS);
    if (smem > 48 * 1024) {
        if (smem > c->prop.sharedMemPerBlockOptin)
            return record_msg(c, "attention: query group too large for shared memory");
        CK(c, cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
           "cudaFuncSetAttribute (attention)");
    }
    const void *src[3] = {m->kv_len, m->pt_offset, m->page_table}, *dev[3];
    const size_t bytes[3] = {(size_t)m->n_tokens * sizeof(int32_t), (size_t)m->n_tokens * sizeof(int32_t),
                             (size_t)m->n_page_table * sizeof(int32_t)};
    if (!stage(c, 3, src, bytes, dev)) return;
    const int64_t nblk = (int64_t)m->n_tokens * n_kv_heads;
    if (nblk > 0x7fffffff) return record_msg(c, "attention: too many tokens");
    k_attention<<<(unsigned)nblk, ATT_WARPS * 32, smem, c->stream>>>(
        (const float *)q->data, fstride(q), (const uint8_t *)k_pool->data, k_pool->nb1, (int)k_pool->type,
        (const uint8_t *)v_pool->data, v_pool->nb1, (int)v_pool->type, m->page_size, (const int32_t *)dev[0],
        (const int32_t *)dev[1], (const int32_t *)dev[2], n_kv_heads, G, head_dim,
        hearth_dtype_row_size(k_pool->type, head_dim), hearth_dtype_row_size(v_pool->type, head_dim), scale,
        (float *)out->data, fstride(out));
    LAUNCHED(c, "attention");
}

/* ------------------------------------------------------------ lifecycle */

hearth_status cu_synchronize(hearth_backend *b, hearth_error *err) {
    cuda_ctx *c = enter(b);
    CK(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
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
    cudaStreamSynchronize(c->stream);
    if (c->stage_dev) cudaFree(c->stage_dev);
    free(c->stage_host);
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
    o.get_rows_f32 = cu_get_rows_f32;
    o.synchronize = cu_synchronize;
    return o;
}

const hearth_backend_ops cuda_ops = make_ops();

} // namespace

/* device < 0: the first device. NULL with one clear line when there is none. */
hearth_backend *hearth_cuda_backend_create(int device, hearth_error *err) {
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
        return NULL;
    }
    if (count <= 0) {
        hearth_error_set(err, HEARTH_ERR_BACKEND, "cuda: no usable CUDA device (cudaGetDeviceCount: 0 devices)");
        return NULL;
    }
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
    if (e != cudaSuccess) {
        hearth_error_set(err, HEARTH_ERR_BACKEND, "cuda:%d: no usable CUDA device (%s: %s)", device, step,
                         cudaGetErrorString(e));
        cudaGetLastError();
        free(b);
        free(c);
        return NULL;
    }
    b->ops = &cuda_ops;
    b->ctx = c;
    return b;
}
