/*
 * cuda_quant.h - reading GGUF weight rows on the GPU (and, for checks, on the host).
 *
 * Owner: the CUDA backend (backends/cuda/). Every helper is __host__ __device__
 * so the block decoding can be compared with runtime/dtype.c on a machine
 * without a GPU. The unit of work is a chunk of 8 consecutive elements: every
 * supported block size (32, 256) is a multiple of 8 and, in every supported
 * layout, the 8 elements of a chunk share one scale, so a chunk is one scale
 * times 8 small integers. Invariants: e0 passed to dq8 is a multiple of 8;
 * rows of quantized types hold whole blocks (the loader guarantees it); block
 * layouts are dtype.h's, byte for byte (d and dmin are 2-byte aligned only).
 */
#ifndef HEARTH_CUDA_QUANT_H
#define HEARTH_CUDA_QUANT_H

#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "dtype.h"
}

#define HD __host__ __device__ __forceinline__

/* The weight types the CUDA kernels decode. */
HD bool cuda_type_supported(int t) {
    return t == HEARTH_F32 || t == HEARTH_F16 || t == HEARTH_BF16 || t == HEARTH_Q8_0 || t == HEARTH_Q4_0 ||
           t == HEARTH_Q4_K || t == HEARTH_Q6_K;
}

HD float cq_f16(uint16_t h) {
    __half_raw r;
    r.x = h;
    return __half2float(__half(r));
}
HD float cq_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
HD uint16_t cq_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* 8 bytes from p (p is at least 2-byte aligned in every caller). */
HD void cq_load8(const uint8_t *p, uint8_t out[8]) {
#ifdef __CUDA_ARCH__
    if (((uintptr_t)p & 7) == 0) {
        uint2 v = *(const uint2 *)p;
        memcpy(out, &v, 8);
        return;
    }
    const uint16_t *q = (const uint16_t *)p;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint16_t v = q[i];
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
#else
    memcpy(out, p, 8);
#endif
}

/* K-quant 6-bit scale/min j (0..7) of Q4_K (ggml get_scale_min_k4). */
HD void cq_scale_min_k4(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* v[0..7] = elements e0..e0+7 of the row at `row` (type T). */
template <int T> HD void dq8(const uint8_t *row, int64_t e0, float v[8]) {
    if (T == HEARTH_F32) {
        const float *p = (const float *)row + e0;
#ifdef __CUDA_ARCH__
        if (((uintptr_t)p & 15) == 0) {
            float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
            v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
            v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
            return;
        }
#endif
        for (int i = 0; i < 8; i++) v[i] = p[i];
    } else if (T == HEARTH_F16 || T == HEARTH_BF16) {
        const uint16_t *p = (const uint16_t *)row + e0;
        uint16_t h[8];
#ifdef __CUDA_ARCH__
        if (((uintptr_t)p & 15) == 0) {
            uint4 a = *(const uint4 *)p; /* one 16-byte load */
            memcpy(h, &a, 16);
        } else
#endif
        {
            for (int i = 0; i < 8; i++) h[i] = p[i];
        }
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = T == HEARTH_F16 ? cq_f16(h[i]) : cq_bf16(h[i]);
    } else if (T == HEARTH_Q8_0) {
        const uint8_t *blk = row + (e0 / 32) * sizeof(block_q8_0);
        const int o = (int)(e0 % 32);
        const float d = cq_f16(cq_u16(blk));
        uint8_t q[8];
        cq_load8(blk + 2 + o, q);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * (float)(int8_t)q[i];
    } else if (T == HEARTH_Q4_0) {
        const uint8_t *blk = row + (e0 / 32) * sizeof(block_q4_0);
        const int o = (int)(e0 % 32), j0 = o % 16, sh = o >= 16 ? 4 : 0;
        const float d = cq_f16(cq_u16(blk));
        uint8_t q[8];
        cq_load8(blk + 2 + j0, q);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * (float)(((q[i] >> sh) & 0xF) - 8);
    } else if (T == HEARTH_Q4_K) {
        const uint8_t *blk = row + (e0 / 256) * sizeof(block_q4_K);
        const int w = (int)(e0 % 256), j = w / 64, half = (w / 32) & 1, l0 = w % 32;
        int sc, mn;
        cq_scale_min_k4(2 * j + half, blk + 4, &sc, &mn);
        const float d = cq_f16(cq_u16(blk)) * (float)sc, m = cq_f16(cq_u16(blk + 2)) * (float)mn;
        uint8_t q[8];
        cq_load8(blk + 16 + 32 * j + l0, q);
        const int sh = half ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * (float)((q[i] >> sh) & 0xF) - m;
    } else if (T == HEARTH_Q6_K) {
        const uint8_t *blk = row + (e0 / 256) * sizeof(block_q6_K);
        const int w = (int)(e0 % 256), n = w / 128, r = w % 128, quarter = r / 32, l0 = r % 32;
        const uint8_t *ql = blk + 64 * n + l0 + (quarter & 1) * 32;
        const uint8_t *qh = blk + 128 + 32 * n + l0;
        const int8_t sc = (int8_t)blk[192 + 8 * n + l0 / 16 + 2 * quarter];
        const float d = cq_f16(cq_u16(blk + 208)) * (float)sc;
        const int lsh = (quarter >> 1) * 4, hsh = 2 * quarter;
        uint8_t lo[8], hi[8];
        cq_load8(ql, lo);
        cq_load8(qh, hi);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * (float)((((lo[i] >> lsh) & 0xF) | (((hi[i] >> hsh) & 3) << 4)) - 32);
    }
}

/* One element of a plain-float row (the tail of rows not a multiple of 8). */
template <int T> HD float dq1(const uint8_t *row, int64_t e) {
    if (T == HEARTH_F32) return ((const float *)row)[e];
    if (T == HEARTH_F16) return cq_f16(((const uint16_t *)row)[e]);
    if (T == HEARTH_BF16) return cq_bf16(((const uint16_t *)row)[e]);
    return 0.0f; /* quantized rows have no tail */
}

/* Element d of a KV-pool head row (F32, F16 or Q8_0). */
HD float cq_kv_at(int t, const uint8_t *row, int d) {
    if (t == HEARTH_F32) return ((const float *)row)[d];
    if (t == HEARTH_F16) return cq_f16(((const uint16_t *)row)[d]);
    const uint8_t *blk = row + (d / 32) * sizeof(block_q8_0);
    return cq_f16(cq_u16(blk)) * (float)(int8_t)blk[2 + d % 32];
}

#endif
