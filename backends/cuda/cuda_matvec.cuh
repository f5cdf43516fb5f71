/*
 * cuda_matvec.cuh - decode matmul (a few tokens) streaming the weights with
 * 16-byte coalesced loads.
 *
 * Owner: the CUDA backend (backends/cuda); included by cuda_backend.cu only.
 * Decoding reads every weight byte once per step, so these kernels are about
 * memory traffic: one warp per weight row, MV_WARPS rows per block, NT tokens
 * (1..8) dotted against each weight as it is decoded.
 *  - k_mv_f16: lane l loads 8 halves (16 bytes) at chunks l, l+32, ...,
 *    MV_UNROLL chunks in flight before any arithmetic.
 *  - k_mv_q<T> (the 32-element blocks: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): blocks
 *    are 18 to 34 bytes, so a lane cannot load its own block 16 bytes at a
 *    time. The warp copies a segment of 32 blocks (MV_SEGS segments in flight)
 *    from global to its own shared memory as uint4s, coalesced, then lane l
 *    decodes block l of the segment from there (cq_q32).
 *  The K-quants (Q2_K..Q6_K) use the reference k_matmul.
 * Preconditions (checked by the caller, which otherwise uses k_matmul): the
 * row stride, the weight pointer and the bytes of a row are multiples of 16,
 * K is a multiple of 8 (F16) or of 32 (quantized).
 */
#ifndef HEARTH_CUDA_MATVEC_CUH
#define HEARTH_CUDA_MATVEC_CUH

#include "cuda_quant.h"

namespace {

enum { MV_WARPS = 4, MV_UNROLL = 4, MV_SEGS = 2, MV_SEG_BLOCKS = 32 };

__device__ __forceinline__ float mv_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* acc[t] += dot(h[0..7] as F16, x[t][e0..e0+7]) */
template <int NT>
__device__ __forceinline__ void mv_dot8_f16(const uint4 &raw, const float *x, size_t xs, int ntok, int64_t e0,
                                            float acc[NT]) {
    const __half2 *h = (const __half2 *)&raw;
    float wv[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(h[i]);
        wv[2 * i] = f.x;
        wv[2 * i + 1] = f.y;
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t < ntok) {
            const float4 a = *(const float4 *)(x + (size_t)t * xs + e0), b = *(const float4 *)(x + (size_t)t * xs + e0 + 4);
            acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
                      wv[6] * b.z + wv[7] * b.w;
        }
    }
}

/* Tokens ntok <= NT (grid.y strides groups of NT over the batch). x rows must
 * be 16-byte aligned (stride a multiple of 4 floats). */
template <int NT>
__global__ void __launch_bounds__(MV_WARPS * 32)
    k_mv_f16(const uint8_t *w, size_t w_nb1, int64_t K, int64_t nrows, const float *x, size_t xs, int ntok,
             const float *bias, float *out, size_t o_stride) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t r = (int64_t)blockIdx.x * MV_WARPS + warp;
    if (r >= nrows) return;
    const int t0 = blockIdx.y * NT;
    const int nt = ntok - t0 < NT ? ntok - t0 : NT;
    x += (size_t)t0 * xs;
    const uint4 *wr = (const uint4 *)(w + r * w_nb1);
    const int64_t nch = K / 8;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int64_t c0 = lane; c0 < nch; c0 += 32 * MV_UNROLL) {
        uint4 raw[MV_UNROLL];
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++) /* all loads issued before the first use */
            if (c0 + 32 * u < nch) raw[u] = __ldg(wr + c0 + 32 * u);
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++)
            if (c0 + 32 * u < nch) mv_dot8_f16<NT>(raw[u], x, xs, nt, (c0 + 32 * u) * 8, acc);
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float s = mv_warp_sum(acc[t]);
        if (lane == 0 && t < nt) out[(size_t)(t0 + t) * o_stride + r] = bias ? s + bias[r] : s;
    }
}

/* Block of a cq_is_q32 type at p in shared memory dotted with x[t][e0..e0+31]:
 * d * sum(q x) (+ m * sum(x) for the types with a min). */
template <int T, int NT>
__device__ __forceinline__ void mv_dot_block(const uint8_t *p, const float *x, size_t xs, int ntok, int64_t e0,
                                             float acc[NT]) {
    constexpr bool has_min = T == HEARTH_Q4_1 || T == HEARTH_Q5_1;
    float d, m, wv[32];
    cq_q32<T>(p, wv, &d, &m);
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t < ntok) {
            const float4 *xv = (const float4 *)(x + (size_t)t * xs + e0);
            float s = 0.0f, sx = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float4 a = xv[i];
                s += wv[4 * i] * a.x + wv[4 * i + 1] * a.y + wv[4 * i + 2] * a.z + wv[4 * i + 3] * a.w;
                if (has_min) sx += (a.x + a.y) + (a.z + a.w);
            }
            acc[t] += has_min ? d * s + m * sx : d * s;
        }
    }
}

template <int T, int NT>
__global__ void __launch_bounds__(MV_WARPS * 32)
    k_mv_q(const uint8_t *w, size_t w_nb1, int64_t K, int64_t nrows, const float *x, size_t xs, int ntok,
           const float *bias, float *out, size_t o_stride) {
    constexpr int BS = T == HEARTH_Q8_0 ? (int)sizeof(block_q8_0) : T == HEARTH_Q4_0 ? (int)sizeof(block_q4_0)
                       : T == HEARTH_Q4_1 ? (int)sizeof(block_q4_1) : T == HEARTH_Q5_0 ? (int)sizeof(block_q5_0)
                                                                       : (int)sizeof(block_q5_1);
    constexpr int SEG_BYTES = MV_SEG_BLOCKS * BS; /* 32 blocks of 34, 18, 20, 22 or 24 bytes: multiples of 16 */
    static_assert(SEG_BYTES % 16 == 0, "a segment is copied as uint4s");
    constexpr int SEG_VECS = SEG_BYTES / 16;
    __shared__ __align__(16) uint8_t sm[MV_WARPS][MV_SEGS][SEG_BYTES];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t r = (int64_t)blockIdx.x * MV_WARPS + warp;
    if (r >= nrows) return; /* whole warp; no block-wide barrier below */
    const int t0 = blockIdx.y * NT;
    const int nt = ntok - t0 < NT ? ntok - t0 : NT;
    x += (size_t)t0 * xs;
    const uint8_t *wr = w + r * w_nb1;
    const int64_t nblk = K / 32, row_vecs = nblk * BS / 16;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int64_t b0 = 0; b0 < nblk; b0 += MV_SEGS * MV_SEG_BLOCKS) {
        /* copy MV_SEGS segments (or what is left of the row) into shared memory */
#pragma unroll
        for (int s = 0; s < MV_SEGS; s++) {
            const int64_t v0 = (b0 + (int64_t)s * MV_SEG_BLOCKS) * BS / 16;
            uint4 *dst = (uint4 *)sm[warp][s];
#pragma unroll
            for (int i = 0; i < (SEG_VECS + 31) / 32; i++) {
                const int v = lane + 32 * i;
                if (v < SEG_VECS && v0 + v < row_vecs) dst[v] = __ldg((const uint4 *)wr + v0 + v);
            }
        }
        __syncwarp();
#pragma unroll
        for (int s = 0; s < MV_SEGS; s++) {
            const int64_t b = b0 + (int64_t)s * MV_SEG_BLOCKS + lane;
            if (b < nblk) mv_dot_block<T, NT>(sm[warp][s] + lane * BS, x, xs, nt, b * 32, acc);
        }
        __syncwarp(); /* the next copy overwrites what was just read */
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float s = mv_warp_sum(acc[t]);
        if (lane == 0 && t < nt) out[(size_t)(t0 + t) * o_stride + r] = bias ? s + bias[r] : s;
    }
}

} // namespace

#endif
