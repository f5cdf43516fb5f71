/*
 * tile_avx2.h - small helpers the AVX2 GEMM tile files share (gemm_avx2.c,
 * gemm_iq4_avx2.c): an unaligned 32-bit load, eight f16 scales widened to
 * floats, and the software prefetch of the caller's next tile.
 *
 * Owned by the AVX2 GEMM kernels; compiled with -mavx2 -mfma -mf16c only.
 * Header-only static inline functions, no state.
 */
#ifndef HEARTH_CPU_TILE_AVX2_H
#define HEARTH_CPU_TILE_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"

static inline uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 8 f16 scales to floats (built in registers: one 16-byte load of 8 just
 * stored 2-byte values would stall on store forwarding). */
static inline __m256 f16x8(const hearth_f16 d[8]) {
    return _mm256_cvtph_ps(_mm_setr_epi16((short)d[0], (short)d[1], (short)d[2], (short)d[3], (short)d[4],
                                          (short)d[5], (short)d[6], (short)d[7]));
}

/* A tile reads its nr weight rows as nr interleaved streams, which the
 * hardware prefetchers do not follow, so without help every block would wait
 * on memory (decode, with one token, ran 4x slower). The rows of the caller's
 * next tile usually follow this tile's in memory: while working on block ib
 * of nb, request slice ib of the next tile (tile_bytes from `end`) into L1
 * (measured: better than L2), so that memory streams in the background like
 * the per-pair kernels' reads. Past the matrix's end this is harmless: x86
 * prefetches never fault. */
static inline void prefetch_next_tile(const char *end, size_t tile_bytes, int64_t ib, int64_t nb) {
    const size_t from = (size_t)ib * tile_bytes / (size_t)nb, to = (size_t)(ib + 1) * tile_bytes / (size_t)nb;
    /* inline asm: GCC 12 deletes a loop of nothing but _mm_prefetch here */
    for (size_t off = from & ~(size_t)63; off < to; off += 64)
        __asm__ volatile("prefetcht0 %0" : : "m"(end[off]));
}

#endif
