/*
 * cuda_quant.h - reading GGUF weight rows on the GPU (and, for checks, on the host).
 *
 * Owner: the CUDA backend (backends/cuda/). Every helper is __host__ __device__
 * so the block decoding can be compared with core/dtype.c on a machine
 * without a GPU (tests/unit/backends/cuda_quant_host.cu does, bit for bit). The unit of
 * work is a chunk of 8 consecutive elements: every supported block size (32,
 * 256) is a multiple of 8 and, in every supported layout, the 8 elements of a
 * chunk share one scale (and one min), so a chunk is one scale times 8 small
 * integers (plus a min). Invariants: e0 passed to dq8 is a multiple of 8;
 * rows of quantized types hold whole blocks (the loader guarantees it); block
 * layouts are dtype.h's, byte for byte (d and dmin are 2-byte aligned only).
 * Each decoder computes the same float expression, in the same order, as
 * core/dtype.c; products that dtype.c rounds before adding a min go through
 * cq_mul so that nvcc cannot fuse them into an FMA: the GPU's weights are the
 * CPU's floats exactly.
 */
#ifndef HEARTH_CUDA_QUANT_H
#define HEARTH_CUDA_QUANT_H

#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "core/dtype.h"
}

#define HD __host__ __device__ __forceinline__

/* The weight types the CUDA kernels decode. */
HD bool cuda_type_supported(int t) {
    return t == HEARTH_F32 || t == HEARTH_F16 || t == HEARTH_BF16 || t == HEARTH_Q8_0 || t == HEARTH_Q4_0 ||
           t == HEARTH_Q4_1 || t == HEARTH_Q5_0 || t == HEARTH_Q5_1 || t == HEARTH_Q2_K || t == HEARTH_Q3_K ||
           t == HEARTH_Q4_K || t == HEARTH_Q5_K || t == HEARTH_Q6_K || t == HEARTH_IQ4_NL || t == HEARTH_IQ4_XS;
}

/* Level i (0..15) of IQ4_NL/IQ4_XS (core/dtype.c's hearth_iq4nl_values), read
 * from two 64-bit constants so the device needs no table in memory. */
HD float cq_iq4_level(int i) {
    const uint64_t lo = 0xF6EADDCFBFAD9881ull, hi = 0x7159453526190D01ull;
    return (float)(int8_t)(uint8_t)((i < 8 ? lo : hi) >> (8 * (i & 7)));
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
/* The little-endian 32-bit qh of a Q5_0/Q5_1 block (2-byte aligned). */
HD uint32_t cq_u32(const uint8_t *p) { return (uint32_t)cq_u16(p) | ((uint32_t)cq_u16(p + 2) << 16); }

/* a * b rounded to float, never fused with a following add (dtype.c rounds it). */
HD float cq_mul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

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

/* Signed 6-bit scale j (0..15) of a Q3_K block (dtype.h hearth_q3k_scale). */
HD int cq_scale_q3k(int j, const uint8_t *s) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
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
    } else if (T == HEARTH_Q4_1) {
        const uint8_t *blk = row + (e0 / 32) * sizeof(block_q4_1);
        const int o = (int)(e0 % 32), j0 = o % 16, sh = o >= 16 ? 4 : 0;
        const float d = cq_f16(cq_u16(blk)), m = cq_f16(cq_u16(blk + 2));
        uint8_t q[8];
        cq_load8(blk + 4 + j0, q);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = cq_mul((float)((q[i] >> sh) & 0xF), d) + m;
    } else if (T == HEARTH_Q5_0 || T == HEARTH_Q5_1) {
        /* element o of a block: nibble of byte o%16 (low below 16), fifth bit = bit o of qh */
        constexpr int BS = T == HEARTH_Q5_0 ? (int)sizeof(block_q5_0) : (int)sizeof(block_q5_1);
        constexpr int QH = T == HEARTH_Q5_0 ? 2 : 4; /* offset of qh; qs follows it */
        const uint8_t *blk = row + (e0 / 32) * BS;
        const int o = (int)(e0 % 32), j0 = o % 16, sh = o >= 16 ? 4 : 0;
        const float d = cq_f16(cq_u16(blk));
        const int qh = (int)(cq_u32(blk + QH) >> o); /* bits 0..7 are elements o..o+7 (signed: levels - 16) */
        uint8_t q[8];
        cq_load8(blk + QH + 4 + j0, q);
        if (T == HEARTH_Q5_0) {
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = (float)((((q[i] >> sh) & 0xF) | (((qh >> i) & 1) << 4)) - 16) * d;
        } else {
            const float m = cq_f16(cq_u16(blk + 2));
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = cq_mul((float)(((q[i] >> sh) & 0xF) | (((qh >> i) & 1) << 4)), d) + m;
        }
    } else if (T == HEARTH_Q2_K || T == HEARTH_Q3_K) {
        /* 128 elements per 32 quant bytes: w = 128 n + 32 j + l uses 2-bit plane j of
         * byte l of the half n, with scale 8 n + 2 j + l / 16 */
        const int w = (int)(e0 % 256), n = w / 128, j = (w % 128) / 32, l0 = w % 32, is = 8 * n + 2 * j + l0 / 16;
        uint8_t q[8];
        if (T == HEARTH_Q2_K) {
            const uint8_t *blk = row + (e0 / 256) * sizeof(block_q2_K);
            const int sc = blk[is];
            const float dl = cq_f16(cq_u16(blk + 80)) * (float)(sc & 0xF),
                        ml = cq_f16(cq_u16(blk + 82)) * (float)(sc >> 4);
            cq_load8(blk + 16 + 32 * n + l0, q);
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = cq_mul(dl, (float)((q[i] >> (2 * j)) & 3)) - ml;
        } else { /* the third bit, set for levels 0..3 and clear for -4..-1, is bit 4 n + j of hmask[l] */
            const uint8_t *blk = row + (e0 / 256) * sizeof(block_q3_K);
            const float dl = cq_f16(cq_u16(blk + 108)) * (float)cq_scale_q3k(is, blk + 96);
            uint8_t h[8];
            cq_load8(blk + 32 + 32 * n + l0, q);
            cq_load8(blk + l0, h);
            const int hb = 4 * n + j;
#pragma unroll
            for (int i = 0; i < 8; i++)
                v[i] = dl * (float)(((q[i] >> (2 * j)) & 3) - (((h[i] >> hb) & 1) ? 0 : 4));
        }
    } else if (T == HEARTH_Q4_K || T == HEARTH_Q5_K) {
        /* 64 elements per 32 quant bytes: low nibbles (scale 2 j), then high (2 j + 1) */
        constexpr int QS = T == HEARTH_Q4_K ? 16 : 48; /* offset of qs */
        const uint8_t *blk = row + (e0 / 256) * (T == HEARTH_Q4_K ? sizeof(block_q4_K) : sizeof(block_q5_K));
        const int w = (int)(e0 % 256), j = w / 64, half = (w / 32) & 1, l0 = w % 32;
        int sc, mn;
        cq_scale_min_k4(2 * j + half, blk + 4, &sc, &mn);
        const float d = cq_f16(cq_u16(blk)) * (float)sc, m = cq_f16(cq_u16(blk + 2)) * (float)mn;
        uint8_t q[8];
        cq_load8(blk + QS + 32 * j + l0, q);
        const int sh = half ? 4 : 0;
        if (T == HEARTH_Q4_K) {
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = cq_mul(d, (float)((q[i] >> sh) & 0xF)) - m;
        } else { /* fifth bit: bit 2 j + half of qh[l] */
            uint8_t h[8];
            cq_load8(blk + 16 + l0, h);
            const int hb = 2 * j + half;
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = cq_mul(d, (float)(((q[i] >> sh) & 0xF) + (((h[i] >> hb) & 1) << 4))) - m;
        }
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
    } else if (T == HEARTH_IQ4_NL || T == HEARTH_IQ4_XS) {
        /* a 32-group: low nibbles of its 16 bytes are elements 0..15, high 16..31 */
        const uint8_t *grp;
        float d;
        if (T == HEARTH_IQ4_NL) {
            const uint8_t *blk = row + (e0 / 32) * sizeof(block_iq4_nl);
            d = cq_f16(cq_u16(blk));
            grp = blk + 2;
        } else {
            const uint8_t *blk = row + (e0 / 256) * sizeof(block_iq4_xs);
            const int ib = (int)(e0 % 256) / 32;
            const int ls = ((blk[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((cq_u16(blk + 2) >> (2 * ib)) & 3) << 4);
            d = cq_f16(cq_u16(blk)) * (float)(ls - 32);
            grp = blk + 8 + 16 * ib;
        }
        const int o = (int)(e0 % 32), sh = o >= 16 ? 4 : 0;
        uint8_t q[8];
        cq_load8(grp + o % 16, q);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = d * cq_iq4_level((q[i] >> sh) & 0xF);
    }
}

/* Whether the fast matvec (cuda_matvec.cuh) decodes type T a block at a time. */
HD constexpr bool cq_is_q32(int t) {
    return t == HEARTH_Q8_0 || t == HEARTH_Q4_0 || t == HEARTH_Q4_1 || t == HEARTH_Q5_0 || t == HEARTH_Q5_1;
}

/* A 2-byte aligned little-endian uint16 (one load on the device). */
HD uint16_t cq_ld16(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return *(const uint16_t *)p;
#else
    return cq_u16(p);
#endif
}

/* One whole 32-element block of a cq_is_q32 type at p (2-byte aligned), as the
 * matvec reads it: its levels q[0..31] (small integers, as floats), its scale
 * *d and its min *m (0 for the symmetric types). Element i is q[i] * d for
 * Q8_0/Q4_0/Q5_0 and q[i] * d + m for Q4_1/Q5_1, exactly as in dtype.c. */
template <int T> HD void cq_q32(const uint8_t *p, float q[32], float *d, float *m) {
    *d = cq_f16(cq_ld16(p));
    *m = T == HEARTH_Q4_1 || T == HEARTH_Q5_1 ? cq_f16(cq_ld16(p + 2)) : 0.0f;
    if (T == HEARTH_Q8_0) {
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const uint16_t u = cq_ld16(p + 2 + 2 * i);
            q[2 * i] = (float)(int8_t)(u & 0xFF);
            q[2 * i + 1] = (float)(int8_t)(u >> 8);
        }
        return;
    }
    constexpr int QS = T == HEARTH_Q4_0 ? 2 : T == HEARTH_Q4_1 ? 4 : T == HEARTH_Q5_0 ? 6 : 8; /* offset of qs */
    constexpr int off = T == HEARTH_Q4_0 ? 8 : T == HEARTH_Q5_0 ? 16 : 0;                      /* level of 0 */
    const uint32_t qh = T == HEARTH_Q5_0 || T == HEARTH_Q5_1 ? cq_u32(p + QS - 4) : 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const uint16_t u = cq_ld16(p + QS + 2 * i);
        const int b0 = u & 0xFF, b1 = u >> 8, j = 2 * i;
        const int h0 = (int)(qh >> j) & 1, h1 = (int)(qh >> (j + 1)) & 1;
        const int h16 = (int)(qh >> (j + 16)) & 1, h17 = (int)(qh >> (j + 17)) & 1;
        q[j] = (float)(((b0 & 0xF) | (h0 << 4)) - off);
        q[j + 1] = (float)(((b1 & 0xF) | (h1 << 4)) - off);
        q[j + 16] = (float)(((b0 >> 4) | (h16 << 4)) - off);
        q[j + 17] = (float)(((b1 >> 4) | (h17 << 4)) - off);
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
