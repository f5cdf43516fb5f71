/*
 * cuda_gemm.cuh - prefill matmul on the tensor cores (mma.sync m16n8k16, F16
 * inputs, F32 accumulation; sm_80 and later).
 *
 * Owner: the CUDA backend (backends/cuda); included by cuda_backend.cu only.
 * out[t, r] = sum_k w[r, k] * x[t, k] (+ bias[r]) for many tokens t:
 *  - k_to_f16 converts the activations to F16 once per matmul, into a scratch
 *    of ntok rows of Kp = K rounded up to GEMM_BK halves (the padding is zero);
 *  - k_gemm<T, BN> computes a GEMM_BM x BN tile (weight rows x tokens) per
 *    block. Each step over K, the block dequantizes a GEMM_BM x GEMM_BK weight
 *    tile to F16 into shared memory (any cuda_quant.h type, through dq8) and
 *    copies the BN x GEMM_BK activation tile with cp.async; two shared-memory
 *    stages, so the next tile is fetched while the current one is multiplied.
 *    Fragments come from shared memory through ldmatrix.
 * Bounds: weight rows >= nrows and tokens >= ntok read as zero and are never
 * written; K need not be a multiple of GEMM_BK (the tail reads as zero).
 * mma.sync is the same instruction from Ampere to Hopper; on Hopper, wgmma
 * would be faster (not done yet: see docs/ARCHITECTURE.md).
 */
#ifndef HEARTH_CUDA_GEMM_CUH
#define HEARTH_CUDA_GEMM_CUH

#include "cuda_quant.h"

namespace {

enum { GEMM_BM = 128, GEMM_BK = 32, GEMM_PAD = 8, GEMM_LD = GEMM_BK + GEMM_PAD, GEMM_THREADS = 256 };

/* x (F32, ntok rows of K, stride xs) -> xh (F16, ntok rows of Kp, zero padded). */
__global__ void k_to_f16(const float *x, size_t xs, int64_t K, int64_t Kp, __half *xh) {
    const float *xr = x + (size_t)blockIdx.y * xs;
    __half *o = xh + (size_t)blockIdx.y * Kp;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < Kp; k += (int64_t)gridDim.x * blockDim.x)
        o[k] = __float2half_rn(k < K ? xr[k] : 0.0f);
}

__device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(unsigned addr, unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* D += A (16x16, row) * B (16x8, col); F16 in, F32 accumulate. */
__device__ __forceinline__ void mma_16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 16 bytes global -> shared, asynchronously; src_bytes 0 writes zeros. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

__device__ __forceinline__ unsigned pack_h2(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    unsigned u;
    memcpy(&u, &h, 4);
    return u;
}

/* 8 weights of row r (< nrows), elements k0..k0+7, as F16 (zero past K). */
template <int T>
__device__ __forceinline__ uint4 gemm_w8(const uint8_t *w, size_t nb1, int64_t nrows, int64_t K, int64_t r,
                                         int64_t k0) {
    float v[8];
    if (r < nrows && k0 + 8 <= K) {
        dq8<T>(w + r * nb1, k0, v);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = (r < nrows && k0 + i < K) ? dq1<T>(w + r * nb1, k0 + i) : 0.0f;
    }
    if (T == HEARTH_BF16) /* F16 saturates at 65504; BF16 weights past that would become inf */
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = fminf(fmaxf(v[i], -65504.0f), 65504.0f);
    return make_uint4(pack_h2(v[0], v[1]), pack_h2(v[2], v[3]), pack_h2(v[4], v[5]), pack_h2(v[6], v[7]));
}

/* Block: GEMM_BM weight rows x BN tokens; 8 warps as 2 (rows) x 4 (tokens),
 * each warp 64 rows x BN/4 tokens = 4 x (BN/32) mma tiles of 16 x 8. */
template <int T, int BN>
__global__ void __launch_bounds__(GEMM_THREADS)
    k_gemm(const uint8_t *w, size_t w_nb1, int64_t K, int64_t nrows, const __half *xh, int64_t Kp, int ntok,
           const float *bias, float *out, size_t o_stride) {
    constexpr int WN = BN / 4;       /* tokens per warp */
    constexpr int NT8 = WN / 8;      /* mma n-tiles per warp */
    static_assert(WN % 16 == 0, "ldmatrix.x4 loads two n-tiles at a time");
    __shared__ __align__(16) __half As[2][GEMM_BM][GEMM_LD];
    __shared__ __align__(16) __half Bs[2][BN][GEMM_LD];

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int wm = warp / 4, wn = warp % 4;
    const int64_t r0 = (int64_t)blockIdx.x * GEMM_BM;
    const int t0 = blockIdx.y * BN;
    const int nk = (int)((K + GEMM_BK - 1) / GEMM_BK);

    /* weight tile: thread -> row tid/2, 16 elements at (tid%2)*16 (two chunks of 8) */
    const int a_row = tid / 2, a_col = (tid % 2) * 16;
    uint4 areg[2];
    auto fetch_a = [&](int kt) {
        const int64_t k0 = (int64_t)kt * GEMM_BK + a_col;
        areg[0] = gemm_w8<T>(w, w_nb1, nrows, K, r0 + a_row, k0);
        areg[1] = gemm_w8<T>(w, w_nb1, nrows, K, r0 + a_row, k0 + 8);
    };
    auto store_a = [&](int s) {
        *(uint4 *)&As[s][a_row][a_col] = areg[0];
        *(uint4 *)&As[s][a_row][a_col + 8] = areg[1];
    };
    /* activation tile: BN rows x 4 chunks of 16 bytes */
    auto fetch_b = [&](int kt, int s) {
        for (int i = tid; i < BN * 4; i += GEMM_THREADS) {
            const int n = i / 4, ch = i % 4;
            const int t = t0 + n;
            const __half *src = xh + (size_t)(t < ntok ? t : 0) * Kp + (size_t)kt * GEMM_BK + ch * 8;
            cp_async16(&Bs[s][n][ch * 8], src, t < ntok ? 16 : 0);
        }
        cp_async_commit();
    };

    float acc[4][NT8][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < NT8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

    fetch_b(0, 0);
    fetch_a(0);
    store_a(0);
    cp_async_wait_all();
    __syncthreads();

    for (int kt = 0; kt < nk; kt++) {
        const int s = kt & 1;
        const bool more = kt + 1 < nk;
        if (more) {
            fetch_b(kt + 1, s ^ 1);
            fetch_a(kt + 1);
        }
#pragma unroll
        for (int ks = 0; ks < GEMM_BK / 16; ks++) {
            unsigned af[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                /* lane l addresses row l%16, k half l/16 of the 16x16 A tile */
                const __half *p = &As[s][wm * 64 + i * 16 + (lane % 16)][ks * 16 + (lane / 16) * 8];
                ldsm_x4(smem_u32(p), af[i][0], af[i][1], af[i][2], af[i][3]);
            }
#pragma unroll
            for (int j = 0; j < NT8; j += 2) {
                /* matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) */
                const __half *p = &Bs[s][wn * WN + j * 8 + (lane % 8) + (lane / 16) * 8][ks * 16 + ((lane / 8) % 2) * 8];
                unsigned b0, b1, b2, b3;
                ldsm_x4(smem_u32(p), b0, b1, b2, b3);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    mma_16816(acc[i][j], af[i], b0, b1);
                    mma_16816(acc[i][j + 1], af[i], b2, b3);
                }
            }
        }
        if (more) {
            store_a(s ^ 1);
            cp_async_wait_all();
        }
        __syncthreads();
    }

    /* C fragment: c0,c1 at (row g, tokens 2q, 2q+1), c2,c3 at row g+8 */
    const int g = lane / 4, q = lane % 4;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < NT8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t r = r0 + wm * 64 + i * 16 + g + (e / 2) * 8;
                const int t = t0 + wn * WN + j * 8 + 2 * q + (e % 2);
                if (r < nrows && t < ntok)
                    out[(size_t)t * o_stride + r] = bias ? acc[i][j][e] + bias[r] : acc[i][j][e];
            }
}

} // namespace

#endif
