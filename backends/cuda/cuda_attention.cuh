/*
 * cuda_attention.cuh - decode attention as split-K flash-decoding over pages.
 *
 * Owner: the CUDA backend (backends/cuda); included by cuda_backend.cu only.
 * With few tokens and long contexts, one block per (token, KV head) leaves most
 * of the GPU idle. Here the keys of each token are cut into chunks of
 * chunk_len positions, one block per (token, KV head, chunk):
 *  - k_attn_split: the block's ATT_WARPS warps take ATT_KPI keys at a time
 *    (through the page table), for all G query heads of the KV head at once,
 *    so each K/V row is read once per group (GQA). Each warp keeps an online
 *    softmax per head (running max m, sum l, unnormalised acc); the warps are
 *    merged, and the chunk's (acc, m, l) written to `part`, or, with a single
 *    chunk, the normalised output straight to `out`.
 *  - k_attn_combine: per (token, query head), merges the chunks' partials.
 * A chunk past the token's kv_len writes m = -inf, l = 0 (skipped when
 * merged), so the grid may be sized for a capacity rather than the exact
 * lengths: a captured CUDA graph stays valid while the lengths grow.
 * part layout: [token][head][chunk][head_dim + 2] floats (acc..., m, l).
 */
#ifndef HEARTH_CUDA_ATTENTION_CUH
#define HEARTH_CUDA_ATTENTION_CUH

#include "cuda_quant.h"

namespace {

enum { ATT_KPI = 4 }; /* keys per warp per step */

/* 8 x ATT_MAX_HD/32 elements of a KV head row: lane owns dims lane + 32 i. */
__device__ __forceinline__ void att_load_row(int type, const uint8_t *row, int hd, int lane, float v[ATT_MAX_HD / 32]) {
#pragma unroll
    for (int i = 0; i < ATT_MAX_HD / 32; i++) {
        const int d = lane + 32 * i;
        v[i] = d < hd ? cq_kv_at(type, row, d) : 0.0f;
    }
}

__global__ void __launch_bounds__(ATT_WARPS * 32)
    k_attn_split(const float *q, size_t q_stride, const uint8_t *kp, size_t k_nb1, int kt, const uint8_t *vp,
                 size_t v_nb1, int vt, int page_size, const int32_t *kv_len, const int32_t *pt_offset,
                 const int32_t *page_table, int n_kv_heads, int G, int hd, size_t k_head_bytes,
                 size_t v_head_bytes, float scale, int window, float softcap, int chunk_len, float *part,
                 float *out, size_t o_stride) {
    extern __shared__ float sm[];
    const int t = blockIdx.x / n_kv_heads, g = blockIdx.x % n_kv_heads, chunk = blockIdx.y;
    const int n_chunks = gridDim.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t per_warp = (size_t)G * hd + 2 * (size_t)G;
    float *qs = sm;
    float *acc = qs + (size_t)G * hd + (size_t)warp * per_warp;
    float *mx = acc + (size_t)G * hd, *l = mx + G;

    const int n = kv_len[t];
    /* sliding window: the query (position n - 1) sees the last `window` keys */
    const int first = window > 0 && n > window ? n - window : 0;
    const int begin = max(first, chunk * chunk_len), end = min(n, chunk * chunk_len + chunk_len);
    const int H = n_kv_heads * G;
    if (begin >= end) { /* nothing to see in this chunk */
        if (n_chunks > 1)
            for (int i = threadIdx.x; i < G * (hd + 2); i += blockDim.x) {
                const int h = i / (hd + 2), d = i % (hd + 2);
                float *pp = part + (((size_t)t * H + (size_t)g * G + h) * n_chunks + chunk) * (hd + 2);
                pp[d] = d == hd ? -INFINITY : 0.0f;
            }
        return; /* (with one chunk, kv_len >= 1 always gives a non-empty chunk) */
    }

    const float *qrow = q + (size_t)t * q_stride + (size_t)g * G * hd;
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) qs[i] = qrow[i] * scale;
    for (int i = lane; i < G * hd; i += 32) acc[i] = 0.0f;
    for (int h = lane; h < G; h += 32) {
        mx[h] = -INFINITY;
        l[h] = 0.0f;
    }
    __syncthreads();

    const int32_t *pt = page_table + pt_offset[t];
    for (int p0 = begin + warp * ATT_KPI; p0 < end; p0 += ATT_WARPS * ATT_KPI) {
        float kr[ATT_KPI][ATT_MAX_HD / 32], vr[ATT_KPI][ATT_MAX_HD / 32];
#pragma unroll
        for (int j = 0; j < ATT_KPI; j++) {
            const int p = p0 + j < end ? p0 + j : p0; /* past the end: reload key p0, masked below */
            const int64_t slot = (int64_t)pt[p / page_size] * page_size + p % page_size;
            att_load_row(kt, kp + slot * k_nb1 + (size_t)g * k_head_bytes, hd, lane, kr[j]);
            att_load_row(vt, vp + slot * v_nb1 + (size_t)g * v_head_bytes, hd, lane, vr[j]);
        }
        for (int h = 0; h < G; h++) {
            float s[ATT_KPI];
#pragma unroll
            for (int j = 0; j < ATT_KPI; j++) {
                float part_dot = 0.0f;
#pragma unroll
                for (int i = 0; i < ATT_MAX_HD / 32; i++) {
                    const int d = lane + 32 * i;
                    if (d < hd) part_dot = fmaf(qs[h * hd + d], kr[j][i], part_dot);
                }
                s[j] = part_dot;
            }
#pragma unroll
            for (int j = 0; j < ATT_KPI; j++) {
                s[j] = warp_sum(s[j]);
                if (softcap > 0.0f) s[j] = softcap * tanhf(s[j] / softcap);
            }
            float m_new = mx[h];
#pragma unroll
            for (int j = 0; j < ATT_KPI; j++)
                if (p0 + j < end) m_new = fmaxf(m_new, s[j]);
            const float c = expf(mx[h] - m_new);
            float e[ATT_KPI], esum = 0.0f;
#pragma unroll
            for (int j = 0; j < ATT_KPI; j++) {
                e[j] = p0 + j < end ? expf(s[j] - m_new) : 0.0f;
                esum += e[j];
            }
#pragma unroll
            for (int i = 0; i < ATT_MAX_HD / 32; i++) {
                const int d = lane + 32 * i;
                if (d < hd) {
                    float a = acc[h * hd + d] * c;
#pragma unroll
                    for (int j = 0; j < ATT_KPI; j++) a = fmaf(e[j], vr[j][i], a);
                    acc[h * hd + d] = a;
                }
            }
            const float l_new = l[h] * c + esum;
            __syncwarp();
            if (lane == 0) {
                mx[h] = m_new;
                l[h] = l_new;
            }
            __syncwarp();
        }
    }
    __syncthreads();

    /* merge the warps, then write the chunk's partial (or the output) */
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int h = i / hd, d = i % hd;
        const float *w0 = sm + (size_t)G * hd;
        float M = -INFINITY;
        for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, w0[w * per_warp + (size_t)G * hd + h]);
        float L = 0.0f, A = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) {
            const float *aw = w0 + w * per_warp;
            const float mw = aw[(size_t)G * hd + h];
            if (mw == -INFINITY) continue; /* this warp saw no keys */
            const float f = expf(mw - M);
            L += aw[(size_t)G * hd + G + h] * f;
            A += aw[i] * f;
        }
        if (n_chunks == 1) {
            out[(size_t)t * o_stride + (size_t)g * G * hd + i] = A / L;
        } else {
            float *pp = part + (((size_t)t * H + (size_t)g * G + h) * n_chunks + chunk) * (hd + 2);
            pp[d] = A;
            if (d == 0) {
                pp[hd] = M;
                pp[hd + 1] = L;
            }
        }
    }
}

/* Block = one (token, query head); thread d merges dimension d over the chunks. */
__global__ void k_attn_combine(const float *part, int n_chunks, int n_heads, int hd, float *out, size_t o_stride) {
    const int t = blockIdx.x / n_heads, h = blockIdx.x % n_heads;
    const float *pp = part + ((size_t)t * n_heads + h) * n_chunks * (hd + 2);
    float M = -INFINITY;
    for (int c = 0; c < n_chunks; c++) M = fmaxf(M, pp[(size_t)c * (hd + 2) + hd]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float L = 0.0f, A = 0.0f;
        for (int c = 0; c < n_chunks; c++) {
            const float *pc = pp + (size_t)c * (hd + 2);
            if (pc[hd] == -INFINITY) continue;
            const float f = expf(pc[hd] - M);
            L += pc[hd + 1] * f;
            A += pc[d] * f;
        }
        out[(size_t)t * o_stride + (size_t)h * hd + d] = A / L;
    }
}

} // namespace

#endif
