/*
 * dtype_iq.h - block layouts and codebooks of ggml's grid-based IQ weight types:
 * IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M (all 256-element super-blocks).
 *
 * These types store, per group of 8 (IQ2, IQ1) or 4 (IQ3) weights, an index into a
 * fixed grid of magnitude patterns (dtype_iq_grids.c, format data), plus sign bits
 * and small odd multipliers of one f16 super-scale. The layouts are byte-exact with
 * ggml's (static asserts in dtype_iq.c), so GGUF files are read in place.
 * Owns: the definitions below; the decoding (dequantization) lives in dtype_iq.c,
 * dot-product kernels in the CPU backend (backends/cpu/cpu_iq_ref.c).
 * Invariant: element j of a grid entry is byte j of its little-endian value.
 */
#ifndef HEARTH_DTYPE_IQ_H
#define HEARTH_DTYPE_IQ_H

#include <stdint.h>

#include "core/dtype.h"

/* IQ2_XXS: 8 groups of 32; per group two u32: the first holds four 8-bit grid
 * indices (8 values each), the second four 7-bit sign fields and a 4-bit scale. */
typedef struct {
    hearth_f16 d;
    uint16_t qs[QK_K / 8];
} block_iq2_xxs;
/* IQ2_XS: per 8 values one u16 = 9-bit grid index | 7-bit signs << 9; a 4-bit
 * scale per 16 values (two per byte of `scales`). */
typedef struct {
    hearth_f16 d;
    uint16_t qs[QK_K / 8];
    uint8_t scales[QK_K / 32];
} block_iq2_xs;
/* IQ2_S: 10-bit grid index per 8 values (low 8 bits in qs[0..31], 2 high bits
 * per index in qh), 8 explicit sign bits per 8 values in qs[32..63]. */
typedef struct {
    hearth_f16 d;
    uint8_t qs[QK_K / 4];
    uint8_t qh[QK_K / 32];
    uint8_t scales[QK_K / 32];
} block_iq2_s;
/* IQ3_XXS: 8-bit grid index per 4 values in qs[0..63]; per group of 32 a u32 at
 * qs[64 + 4*ib] with four 7-bit sign fields and a 4-bit scale in the top bits. */
typedef struct {
    hearth_f16 d;
    uint8_t qs[3 * QK_K / 8];
} block_iq3_xxs;
/* IQ3_S: 9-bit grid index per 4 values (high bit in qh), explicit sign bits,
 * 4-bit scale per 32 values. */
typedef struct {
    hearth_f16 d;
    uint8_t qs[QK_K / 4];
    uint8_t qh[QK_K / 32];
    uint8_t signs[QK_K / 8];
    uint8_t scales[QK_K / 64];
} block_iq3_s;
/* IQ1_S: 11-bit index into the ternary grid per 8 values (high 3 bits in qh),
 * per 32 values a 3-bit scale (qh bits 12..14) and the sign of a +-1/8 shift (bit 15). */
typedef struct {
    hearth_f16 d;
    uint8_t qs[QK_K / 8];
    uint16_t qh[QK_K / 32];
} block_iq1_s;
/* IQ1_M: no d field; the f16 super-scale is spread over the top nibbles of the
 * four u16 in `scales`, whose low 12 bits hold 3-bit scales per 16 values. qh:
 * per 8 values 3 high index bits and a shift-sign bit (one nibble each). */
typedef struct {
    uint8_t qs[QK_K / 8];
    uint8_t qh[QK_K / 16];
    uint8_t scales[QK_K / 32];
} block_iq1_m;

/* The +-shift of IQ1_S/IQ1_M values (ggml's IQ1S_DELTA / IQ1M_DELTA). */
#define HEARTH_IQ1_DELTA 0.125f

/* Grids (dtype_iq_grids.c): ggml's iq2xxs_grid, iq2xs_grid, iq2s_grid,
 * iq3xxs_grid, iq3s_grid and iq1s_grid. */
extern const uint64_t hearth_iq2xxs_grid[256];
extern const uint64_t hearth_iq2xs_grid[512];
extern const uint64_t hearth_iq2s_grid[1024];
extern const uint32_t hearth_iq3xxs_grid[256];
extern const uint32_t hearth_iq3s_grid[512];
extern const uint64_t hearth_iq1s_grid[2048];

/* A 7-bit sign field of IQ2_XXS/IQ2_XS/IQ3_XXS widened to 8 sign bits: the
 * eighth sign makes the number of negative values even (ggml's ksigns_iq2xs). */
static inline uint8_t hearth_iq_signs8(uint32_t s7) {
    s7 &= 127;
    return (uint8_t)(s7 | ((uint32_t)(__builtin_popcount(s7) & 1) << 7));
}

/* Byte j of a grid entry (little-endian, whatever the host order). */
static inline uint8_t hearth_iq_grid8(uint64_t g, int j) {
    return (uint8_t)(g >> (8 * j));
}

/* The f16 super-scale of an IQ1_M block (top nibble of each scales u16). */
static inline hearth_f16 hearth_iq1m_d(const block_iq1_m *b) {
    uint16_t sc[4];
    __builtin_memcpy(sc, b->scales, sizeof sc);
    return (hearth_f16)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
}

/* Reference dequantizers (exactly ggml's dequantize_row_iq*: same float
 * expressions), n a multiple of QK_K. Used by dtype.c's traits table. */
void hearth_iq2_xxs_to_float(const void *src, float *dst, int64_t n);
void hearth_iq2_xs_to_float(const void *src, float *dst, int64_t n);
void hearth_iq2_s_to_float(const void *src, float *dst, int64_t n);
void hearth_iq3_xxs_to_float(const void *src, float *dst, int64_t n);
void hearth_iq3_s_to_float(const void *src, float *dst, int64_t n);
void hearth_iq1_s_to_float(const void *src, float *dst, int64_t n);
void hearth_iq1_m_to_float(const void *src, float *dst, int64_t n);

/* Signed integer weights of one 32-element group ib (0..7) of a block, without
 * the float scales: q[j] = +-grid magnitude (IQ2/IQ3) or the ternary grid value
 * (IQ1, the +-1/8 shift excluded). *s1 / *s2 get the raw scale fields of values
 * 0..15 / 16..31 (IQ2_XS, IQ2_S, IQ1_M have one per half; the other types set
 * both to the group's one field). Dequantizers and dot kernels are built on it,
 * so integer block sums are exact in every kernel. */
void hearth_iq_group_q(hearth_dtype t, const void *block, int ib, int8_t q[32], int *s1, int *s2);

/* For IQ1_M: bit l (0..3) set when the 8 values l of group ib are shifted by
 * -1/8 rather than +1/8. For IQ1_S the one sign of a group is bit 15 of qh[ib]. */
static inline int hearth_iq1m_shift_signs(const block_iq1_m *b, int ib) {
    const uint8_t h0 = b->qh[2 * ib], h1 = b->qh[2 * ib + 1];
    return ((h0 >> 3) & 1) | ((h0 >> 6) & 2) | ((h1 >> 1) & 4) | ((h1 >> 4) & 8);
}

#endif
