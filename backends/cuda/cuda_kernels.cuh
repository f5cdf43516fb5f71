/*
 * cuda_kernels.cuh - the CUDA backend's reference kernels (one translation unit:
 * included by cuda_backend.cu only).
 *
 * Owner: the CUDA backend (backends/cuda). These are the first, plain kernels:
 * get_rows, rms_norm, layer_norm, the warp-per-row matmul, add, silu_mul, gelu,
 * rope, kv_store and one-block-per-(token, KV head) attention. They favour being obviously
 * right over being fast. HEARTH_CUDA_KERNELS=simple runs a backend on these
 * alone, and tests/gpu/test_cuda_ops.c compares the fast kernels (cuda_gemm.cuh,
 * cuda_matvec.cuh, cuda_attention.cuh) against them as well as the CPU.
 * Invariant: blockDim.x is a multiple of 32 in every launch (warp reductions).
 */
#ifndef HEARTH_CUDA_KERNELS_CUH
#define HEARTH_CUDA_KERNELS_CUH

#include "cuda_quant.h"

extern "C" {
#include "backends/backend.h" /* hearth_rope_mode */
}

namespace {

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

/* ------------------------------------------------------------ argmax */

/* Block = one row: ids[row] = index of the largest value, the first on ties,
 * NaN never chosen (0 for a row of NaNs). blockDim.x is a power of two. */
__global__ void k_argmax(const float *x, size_t x_stride, int64_t ne0, int32_t *ids) {
    __shared__ float bv[1024];
    __shared__ int64_t bi[1024];
    const float *xr = x + (size_t)blockIdx.x * x_stride;
    float v = -INFINITY;
    int64_t i = -1;
    for (int64_t e = threadIdx.x; e < ne0; e += blockDim.x) /* ascending: '>' keeps the first */
        if (xr[e] > v || (i < 0 && xr[e] == v)) {
            v = xr[e];
            i = e;
        }
    bv[threadIdx.x] = v;
    bi[threadIdx.x] = i;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            const float ov = bv[threadIdx.x + s];
            const int64_t oi = bi[threadIdx.x + s];
            const int64_t mi = bi[threadIdx.x];
            if (oi >= 0 && (mi < 0 || ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < mi))) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) ids[blockIdx.x] = (int32_t)(bi[0] < 0 ? 0 : bi[0]);
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

/* LayerNorm of the encoders: out = (x - mean) / sqrt(var + eps) * w (+ b)
 * per row (block per row); the mean first, then the variance about it, as
 * the CPU's two passes. b NULL: no bias. out may alias x (each thread reads
 * its elements before the second block_sum's barrier, writes only them). */
__global__ void k_layer_norm(const float *x, size_t x_stride, int64_t ne0, const float *w, const float *b, float eps,
                             float *out, size_t o_stride) {
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * x_stride;
    float *o = out + (size_t)blockIdx.x * o_stride;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) s += xr[i];
    const float mean = block_sum(s, red) / (float)ne0;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
        const float d = xr[i] - mean;
        ss += d * d;
    }
    const float scale = 1.0f / sqrtf(block_sum(ss, red) / (float)ne0 + eps);
    for (int64_t i = threadIdx.x; i < ne0; i += blockDim.x) {
        const float y = (xr[i] - mean) * scale * w[i];
        o[i] = b ? y + b[i] : y;
    }
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

/* GELU, tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as the
 * CPU backend and ggml. o may alias a. */
__global__ void k_gelu(const float *a, size_t a_s, float *o, size_t o_s, int64_t ne0, int64_t nrows) {
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y)
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < ne0; i += (int64_t)gridDim.x * blockDim.x) {
            const float x = a[r * a_s + i];
            o[r * o_s + i] = 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x)));
        }
}

/* out = gelu(gate) * up (GeGLU), GELU in the tanh form of k_gelu. */
__global__ void k_gelu_mul(const float *g, size_t g_s, const float *u, size_t u_s, float *o, size_t o_s,
                           int64_t ne0, int64_t nrows) {
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y)
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < ne0;
             i += (int64_t)gridDim.x * blockDim.x) {
            const float x = g[r * g_s + i];
            o[r * o_s + i] = 0.5f * x *
                             (1.0f + tanhf(0.79788456080286535588f * x * (1.0f + 0.044715f * x * x))) *
                             u[r * u_s + i];
        }
}

/* out = s * x, or cap * tanh(s * x / cap) when cap > 0 (soft-capping). */
__global__ void k_scale_cap(const float *a, size_t a_s, float *o, size_t o_s, int64_t ne0, int64_t nrows,
                            float sc, float cap) {
    for (int64_t r = blockIdx.y; r < nrows; r += gridDim.y)
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < ne0;
             i += (int64_t)gridDim.x * blockDim.x) {
            const float y = sc * a[r * a_s + i];
            o[r * o_s + i] = cap > 0.0f ? cap * tanhf(y / cap) : y;
        }
}

/* ------------------------------------------------------------ rope */

/* Block = one (token, head); thread i rotates pair i. The angles as
 * backends/rope.c computes them: YaRN's blend when ext_factor is set, the
 * attention temperature (queries) when temp_scale is. */
__global__ void k_rope(float *x, size_t x_stride, int n_heads, const int32_t *pos, int mode, int n_rot,
                       int head_dim, float theta_scale, float freq_scale, const float *freq_factors,
                       float attn_factor, float ext_factor, float yarn_lo, float yarn_hi, float temp_scale,
                       int temp_floor) {
    const int t = blockIdx.x / n_heads, h = blockIdx.x % n_heads, half = n_rot / 2;
    float *v = x + (size_t)t * x_stride + (size_t)h * head_dim;
    float mag = attn_factor;
    if (temp_scale != 0.0f && temp_floor > 0)
        mag *= 1.0f + temp_scale * logf(1.0f + floorf((float)pos[t] / (float)temp_floor));
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float extrap = (float)pos[t] * powf(theta_scale, (float)i) / ff;
        float th = freq_scale * extrap;
        if (ext_factor != 0.0f) {
            const float y = ((float)i - yarn_lo) / fmaxf(0.001f, yarn_hi - yarn_lo);
            const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * ext_factor;
            th = th * (1.0f - ramp) + extrap * ramp;
        }
        float sn, cs;
        sincosf(th, &sn, &cs);
        cs *= mag;
        sn *= mag;
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
                const int32_t *page_table, int n_kv_heads, int G, int hd, size_t k_head_bytes,
                size_t v_head_bytes, float scale, int window, float softcap, float *out, size_t o_stride) {
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
    /* sliding window: the query (position n - 1) sees the last `window` keys */
    const int first = window > 0 && n > window ? n - window : 0;
    const int32_t *pt = page_table + pt_offset[t];
    for (int p = first + warp; p < n; p += ATT_WARPS) {
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
            float s = warp_sum(part) * scale;
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
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

} // namespace

#endif
