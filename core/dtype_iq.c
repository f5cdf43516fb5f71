/*
 * dtype_iq.c - decoding of the grid-based IQ weight types (IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): one 32-element group to signed integers, and the
 * reference dequantizers of dtype.c's traits table.
 *
 * Owns: no state (the grids are constant data in dtype_iq_grids.c).
 * Invariants:
 *   - layouts are byte-exact with ggml's block_iq* (static asserts below);
 *   - hearth_iq*_to_float reproduce ggml's dequantize_row_iq* bit for bit: ggml
 *     computes scale * magnitude * (+-1.f), which equals scale * (float)(+-magnitude)
 *     exactly (a sign flip is exact), and the scale expressions are ggml's;
 *   - hearth_iq_group_q reads only the block it is given.
 * There is no quantizer here: these types need an importance matrix and
 * llama.cpp's search (`llama-quantize --imatrix`); Hearth reads them.
 */
#include "core/dtype_iq.h"

#include <assert.h>
#include <string.h>

static_assert(sizeof(block_iq2_xxs) == 66, "block_iq2_xxs layout");
static_assert(sizeof(block_iq2_xs) == 74, "block_iq2_xs layout");
static_assert(sizeof(block_iq2_s) == 82, "block_iq2_s layout");
static_assert(sizeof(block_iq3_xxs) == 98, "block_iq3_xxs layout");
static_assert(sizeof(block_iq3_s) == 110, "block_iq3_s layout");
static_assert(sizeof(block_iq1_s) == 50, "block_iq1_s layout");
static_assert(sizeof(block_iq1_m) == 56, "block_iq1_m layout");

/* Eight values of a 64-bit magnitude entry with sign bits `signs` (bit j: value j negative). */
static void put8_signed(uint64_t g, unsigned signs, int8_t *q) {
    for (int j = 0; j < 8; j++) {
        const int m = hearth_iq_grid8(g, j);
        q[j] = (int8_t)((signs >> j) & 1 ? -m : m);
    }
}

/* Four values of a 32-bit magnitude entry, sign bits starting at bit 0 of `signs`. */
static void put4_signed(uint32_t g, unsigned signs, int8_t *q) {
    for (int j = 0; j < 4; j++) {
        const int m = (int)((g >> (8 * j)) & 0xFF);
        q[j] = (int8_t)((signs >> j) & 1 ? -m : m);
    }
}

static void group_iq2_xxs(const block_iq2_xxs *b, int ib, int8_t q[32], int *s1, int *s2) {
    uint32_t aux[2];
    memcpy(aux, b->qs + 4 * ib, sizeof aux);
    for (int l = 0; l < 4; l++)
        put8_signed(hearth_iq2xxs_grid[(aux[0] >> (8 * l)) & 0xFF], hearth_iq_signs8(aux[1] >> (7 * l)),
                    q + 8 * l);
    *s1 = *s2 = (int)(aux[1] >> 28);
}

static void group_iq2_xs(const block_iq2_xs *b, int ib, int8_t q[32], int *s1, int *s2) {
    for (int l = 0; l < 4; l++) {
        const uint16_t v = b->qs[4 * ib + l];
        put8_signed(hearth_iq2xs_grid[v & 511], hearth_iq_signs8(v >> 9), q + 8 * l);
    }
    *s1 = b->scales[ib] & 0xF;
    *s2 = b->scales[ib] >> 4;
}

static void group_iq2_s(const block_iq2_s *b, int ib, int8_t q[32], int *s1, int *s2) {
    const uint8_t *qs = b->qs + 4 * ib, *signs = b->qs + QK_K / 8 + 4 * ib;
    for (int l = 0; l < 4; l++) {
        const int idx = qs[l] | ((b->qh[ib] << (8 - 2 * l)) & 0x300);
        put8_signed(hearth_iq2s_grid[idx], signs[l], q + 8 * l);
    }
    *s1 = b->scales[ib] & 0xF;
    *s2 = b->scales[ib] >> 4;
}

static void group_iq3_xxs(const block_iq3_xxs *b, int ib, int8_t q[32], int *s1, int *s2) {
    const uint8_t *qs = b->qs + 8 * ib;
    uint32_t aux;
    memcpy(&aux, b->qs + QK_K / 4 + 4 * ib, sizeof aux);
    for (int l = 0; l < 4; l++) {
        const unsigned signs = hearth_iq_signs8(aux >> (7 * l));
        put4_signed(hearth_iq3xxs_grid[qs[2 * l]], signs, q + 8 * l);
        put4_signed(hearth_iq3xxs_grid[qs[2 * l + 1]], signs >> 4, q + 8 * l + 4);
    }
    *s1 = *s2 = (int)(aux >> 28);
}

static void group_iq3_s(const block_iq3_s *b, int ib, int8_t q[32], int *s1, int *s2) {
    const uint8_t *qs = b->qs + 8 * ib, *signs = b->signs + 4 * ib;
    const int qh = b->qh[ib];
    for (int l = 0; l < 4; l++) {
        const int i1 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256),
                  i2 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        put4_signed(hearth_iq3s_grid[i1], signs[l], q + 8 * l);
        put4_signed(hearth_iq3s_grid[i2], (unsigned)signs[l] >> 4, q + 8 * l + 4);
    }
    *s1 = *s2 = (b->scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
}

/* Eight ternary values (-1, 0, +1) of an IQ1 grid entry. */
static void put8_ternary(uint64_t g, int8_t *q) {
    for (int j = 0; j < 8; j++)
        q[j] = (int8_t)hearth_iq_grid8(g, j);
}

static void group_iq1_s(const block_iq1_s *b, int ib, int8_t q[32], int *s1, int *s2) {
    const uint8_t *qs = b->qs + 4 * ib;
    const int qh = b->qh[ib];
    for (int l = 0; l < 4; l++)
        put8_ternary(hearth_iq1s_grid[qs[l] | (((qh >> (3 * l)) & 7) << 8)], q + 8 * l);
    *s1 = *s2 = (qh >> 12) & 7;
}

static void group_iq1_m(const block_iq1_m *b, int ib, int8_t q[32], int *s1, int *s2) {
    const uint8_t *qs = b->qs + 4 * ib, *qh = b->qh + 2 * ib;
    const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                        qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
    for (int l = 0; l < 4; l++)
        put8_ternary(hearth_iq1s_grid[idx[l]], q + 8 * l);
    uint16_t sc;
    memcpy(&sc, b->scales + 2 * (ib / 2), sizeof sc);
    *s1 = (sc >> (6 * (ib % 2))) & 7;
    *s2 = (sc >> (6 * (ib % 2) + 3)) & 7;
}

void hearth_iq_group_q(hearth_dtype t, const void *block, int ib, int8_t q[32], int *s1, int *s2) {
    switch (t) {
    case HEARTH_IQ2_XXS: group_iq2_xxs(block, ib, q, s1, s2); break;
    case HEARTH_IQ2_XS: group_iq2_xs(block, ib, q, s1, s2); break;
    case HEARTH_IQ2_S: group_iq2_s(block, ib, q, s1, s2); break;
    case HEARTH_IQ3_XXS: group_iq3_xxs(block, ib, q, s1, s2); break;
    case HEARTH_IQ3_S: group_iq3_s(block, ib, q, s1, s2); break;
    case HEARTH_IQ1_S: group_iq1_s(block, ib, q, s1, s2); break;
    case HEARTH_IQ1_M: group_iq1_m(block, ib, q, s1, s2); break;
    default:
        memset(q, 0, 32);
        *s1 = *s2 = 0;
        break;
    }
}

// ---------------------------------------------------------------- dequantizers

/* y[j] = dl * q[j] for the 16 values of one half-group. */
static void scale16(float dl, const int8_t *q, float *y) {
    for (int j = 0; j < 16; j++)
        y[j] = dl * q[j];
}

/* The IQ2/IQ3 types: per half-group scale from the raw field s, by the type's
 * own expression (kept as ggml writes it, for identical rounding). */
static float iq23_scale(hearth_dtype t, float d, int s) {
    switch (t) {
    case HEARTH_IQ3_XXS: return d * (0.5f + s) * 0.5f;
    case HEARTH_IQ3_S: return d * (1 + 2 * s);
    default: return d * (0.5f + s) * 0.25f; /* IQ2_XXS, IQ2_XS, IQ2_S */
    }
}

static void iq23_to_float(hearth_dtype t, size_t block_bytes, const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / QK_K; i++, p += block_bytes) {
        hearth_f16 dh;
        memcpy(&dh, p, sizeof dh); /* every IQ2/IQ3 block starts with its f16 d */
        const float d = hearth_f16_to_f32(dh);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(t, p, ib, q, &s1, &s2);
            scale16(iq23_scale(t, d, s1), q, y);
            scale16(iq23_scale(t, d, s2), q + 16, y + 16);
        }
    }
}

void hearth_iq2_xxs_to_float(const void *src, float *dst, int64_t n) {
    iq23_to_float(HEARTH_IQ2_XXS, sizeof(block_iq2_xxs), src, dst, n);
}
void hearth_iq2_xs_to_float(const void *src, float *dst, int64_t n) {
    iq23_to_float(HEARTH_IQ2_XS, sizeof(block_iq2_xs), src, dst, n);
}
void hearth_iq2_s_to_float(const void *src, float *dst, int64_t n) {
    iq23_to_float(HEARTH_IQ2_S, sizeof(block_iq2_s), src, dst, n);
}
void hearth_iq3_xxs_to_float(const void *src, float *dst, int64_t n) {
    iq23_to_float(HEARTH_IQ3_XXS, sizeof(block_iq3_xxs), src, dst, n);
}
void hearth_iq3_s_to_float(const void *src, float *dst, int64_t n) {
    iq23_to_float(HEARTH_IQ3_S, sizeof(block_iq3_s), src, dst, n);
}

/* y[j] = dl * (q[j] + delta) for 8 values (ggml's expression). */
static void shift8(float dl, float delta, const int8_t *q, float *y) {
    for (int j = 0; j < 8; j++)
        y[j] = dl * (q[j] + delta);
}

void hearth_iq1_s_to_float(const void *src, float *y, int64_t n) {
    const block_iq1_s *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(HEARTH_IQ1_S, &x[i], ib, q, &s1, &s2);
            const float dl = d * (2 * s1 + 1);
            const float delta = x[i].qh[ib] & 0x8000 ? -HEARTH_IQ1_DELTA : HEARTH_IQ1_DELTA;
            for (int l = 0; l < 4; l++)
                shift8(dl, delta, q + 8 * l, y + 8 * l);
        }
    }
}

void hearth_iq1_m_to_float(const void *src, float *y, int64_t n) {
    const block_iq1_m *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = hearth_f16_to_f32(hearth_iq1m_d(&x[i]));
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            int8_t q[32];
            int s1, s2;
            hearth_iq_group_q(HEARTH_IQ1_M, &x[i], ib, q, &s1, &s2);
            const float dl[2] = {d * (2 * s1 + 1), d * (2 * s2 + 1)};
            const int neg = hearth_iq1m_shift_signs(&x[i], ib);
            for (int l = 0; l < 4; l++)
                shift8(dl[l / 2], (neg >> l) & 1 ? -HEARTH_IQ1_DELTA : HEARTH_IQ1_DELTA, q + 8 * l,
                       y + 8 * l);
        }
    }
}
