/*
 * dtype.h - tensor element types (ggml/GGUF numbering) and their block layouts.
 *
 * The quantized layouts are byte-exact with ggml's so GGUF files are read in
 * place: weights keep their quantized form on every backend. This header owns
 * the format definitions (block structs, sizes) and the reference conversions
 * to and from float; fast kernels live in the backends.
 * Invariant: hearth_dtype_traits(t)->known is true only for types this build
 * can load; all sizes below are exact.
 */
#ifndef HEARTH_DTYPE_H
#define HEARTH_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum hearth_dtype {
    HEARTH_F32 = 0,
    HEARTH_F16 = 1,
    HEARTH_Q4_0 = 2,
    HEARTH_Q4_1 = 3,
    HEARTH_Q5_0 = 6,
    HEARTH_Q5_1 = 7,
    HEARTH_Q8_0 = 8,
    HEARTH_Q8_1 = 9,
    HEARTH_Q2_K = 10,
    HEARTH_Q3_K = 11,
    HEARTH_Q4_K = 12,
    HEARTH_Q5_K = 13,
    HEARTH_Q6_K = 14,
    HEARTH_Q8_K = 15,
    HEARTH_IQ2_XXS = 16, /* IQ2/IQ3/IQ1 layouts: core/dtype_iq.h */
    HEARTH_IQ2_XS = 17,
    HEARTH_IQ3_XXS = 18,
    HEARTH_IQ1_S = 19,
    HEARTH_IQ4_NL = 20,
    HEARTH_IQ3_S = 21,
    HEARTH_IQ2_S = 22,
    HEARTH_IQ4_XS = 23,
    HEARTH_IQ1_M = 29,
    HEARTH_BF16 = 30,
    HEARTH_DTYPE_COUNT = 40
} hearth_dtype;

typedef uint16_t hearth_f16;  /* IEEE binary16 bits */
typedef uint16_t hearth_bf16; /* bfloat16 bits */

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { hearth_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { hearth_f16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { hearth_f16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { hearth_f16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { hearth_f16 d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { hearth_f16 d, s; int8_t qs[QK8_1]; } block_q8_1; /* s = d * sum(qs) */
/* Q2_K: 16 sub-blocks of 16; scales[j] = 4-bit scale | 4-bit min << 4. */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; hearth_f16 d, dmin; } block_q2_K;
/* Q3_K: 16 sub-blocks of 16; 2 low bits in qs, high bit in hmask, 6-bit signed scales packed in 12 bytes. */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; hearth_f16 d; } block_q3_K;
typedef struct { hearth_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { hearth_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; hearth_f16 d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
/* IQ4_NL: 32 elements, 4-bit indices into the non-linear table hearth_iq4nl_values
 * (low nibbles elements 0..15, high nibbles 16..31), one f16 scale. */
#define QK4_NL 32
typedef struct { hearth_f16 d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
/* IQ4_XS: 256 elements in 8 sub-blocks of 32 laid out like IQ4_NL blocks; sub-block
 * ib has the 6-bit scale (scales_l nibble ib | 2 bits of scales_h << 4) - 32. */
typedef struct { hearth_f16 d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;

/* The 16 levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl), ascending. */
extern const int8_t hearth_iq4nl_values[16];

/* 6-bit scale (0..63, biased by 32) of sub-block ib (0..7) of an IQ4_XS block. */
static inline int hearth_iq4xs_scale(const block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b->scales_h >> (2 * ib)) & 3) << 4);
}

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, unpacked
 * from the 12-byte `scales` field (ggml's get_scale_min_k4 layout). */
static inline void hearth_kquant_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *mn = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *mn = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Signed 6-bit scale (-32..31) of sub-block j (0..15) of a Q3_K block. */
static inline int hearth_q3k_scale(int j, const uint8_t *scales) {
    int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

typedef void (*hearth_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*hearth_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct hearth_dtype_traits {
    const char *name;      /* "q4_0", "f16", ... */
    bool known;            /* loadable by this build */
    int64_t block_size;    /* elements per block (1 for plain floats) */
    size_t type_size;      /* bytes per block */
    hearth_to_float_fn to_float;     /* reference dequantization, n % block_size == 0 */
    hearth_from_float_fn from_float; /* reference quantization (NULL if none) */
    hearth_dtype vec_dot_type;       /* what activations are converted to for dot products */
} hearth_dtype_traits;

/* Traits of `t`; never NULL (unknown types get known=false, name "?"). */
const hearth_dtype_traits *hearth_dtype_info(hearth_dtype t);
const char *hearth_dtype_name(hearth_dtype t);
/* Parse a name ("q8_0", "F16", ...); returns false when unknown. */
bool hearth_dtype_from_name(const char *name, hearth_dtype *out);
/* Bytes of one row of n elements; 0 when n is not a multiple of the block size. */
size_t hearth_dtype_row_size(hearth_dtype t, int64_t n);
/* Comma-separated list of loadable types, for error messages. */
const char *hearth_dtype_supported_list(void);

/* Scalar conversions (exact, round-to-nearest-even). */
float hearth_f16_to_f32(hearth_f16 h);
hearth_f16 hearth_f32_to_f16(float f);
float hearth_bf16_to_f32(hearth_bf16 h);
hearth_bf16 hearth_f32_to_bf16(float f);

/* Inline forms of the two widening conversions, for kernels (same results as
 * hearth_f16_to_f32 / hearth_bf16_to_f32, which call them). Exact and
 * branch-free: normals, inf and NaN are re-biased by a multiply by 2^-112;
 * subnormals are built as 0.5 + m*2^-24 and 0.5 is subtracted exactly. */
static inline float hearth_f16_to_f32_inline(hearth_f16 h) {
    const uint32_t two_w = (uint32_t)h << 17; /* exponent and mantissa, sign dropped */
    const uint32_t normal_bits = (two_w >> 4) + (0xE0u << 23), sub_bits = (two_w >> 17) | (126u << 23);
    const uint32_t scale_bits = 0x07800000u; /* 2^-112 */
    float normal, sub, scale;
    __builtin_memcpy(&normal, &normal_bits, sizeof normal);
    __builtin_memcpy(&sub, &sub_bits, sizeof sub);
    __builtin_memcpy(&scale, &scale_bits, sizeof scale);
    normal *= scale;
    sub -= 0.5f;
    uint32_t r;
    __builtin_memcpy(&r, two_w < (1u << 27) ? &sub : &normal, sizeof r);
    r |= (uint32_t)(h & 0x8000) << 16;
    float f;
    __builtin_memcpy(&f, &r, sizeof f);
    return f;
}

static inline float hearth_bf16_to_f32_inline(hearth_bf16 h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof f);
    return f;
}

/* Row conversions for every type are reachable through hearth_dtype_info(). */
void hearth_dequantize_row(hearth_dtype t, const void *src, float *dst, int64_t n);
/* Returns false when the type has no quantizer or n is not a block multiple. */
bool hearth_quantize_row(hearth_dtype t, const float *src, void *dst, int64_t n);

#endif
