/*
 * quant_rules.h - which type each tensor gets when a model is quantized
 * (`hearth quantize`): llama.cpp's file types ("mixtures" such as Q4_K_M)
 * and its per-tensor rules (output and attn_v/ffn_down get more bits).
 *
 * Pure functions over names and shapes: no I/O, no state, thread-safe.
 * Invariant: hearth_quant_tensor_type returns a type whose block size
 * divides the row length, or HEARTH_F16 / the source type as the
 * fallback llama.cpp uses when no quantized type fits.
 */
#ifndef HEARTH_QUANT_RULES_H
#define HEARTH_QUANT_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

/* llama.cpp's LLAMA_FTYPE_MOSTLY_* numbers (stored as general.file_type). */
typedef enum hearth_ftype {
    HEARTH_FTYPE_F32 = 0,
    HEARTH_FTYPE_F16 = 1,
    HEARTH_FTYPE_Q4_0 = 2,
    HEARTH_FTYPE_Q4_1 = 3,
    HEARTH_FTYPE_Q8_0 = 7,
    HEARTH_FTYPE_Q5_0 = 8,
    HEARTH_FTYPE_Q5_1 = 9,
    HEARTH_FTYPE_Q2_K = 10,
    HEARTH_FTYPE_Q3_K_S = 11,
    HEARTH_FTYPE_Q3_K_M = 12,
    HEARTH_FTYPE_Q3_K_L = 13,
    HEARTH_FTYPE_Q4_K_S = 14,
    HEARTH_FTYPE_Q4_K_M = 15,
    HEARTH_FTYPE_Q5_K_S = 16,
    HEARTH_FTYPE_Q5_K_M = 17,
    HEARTH_FTYPE_Q6_K = 18,
    HEARTH_FTYPE_IQ2_XXS = 19,
    HEARTH_FTYPE_IQ2_XS = 20,
    HEARTH_FTYPE_IQ3_XS = 22,
    HEARTH_FTYPE_IQ3_XXS = 23,
    HEARTH_FTYPE_IQ1_S = 24,
    HEARTH_FTYPE_IQ4_NL = 25,
    HEARTH_FTYPE_IQ3_S = 26,
    HEARTH_FTYPE_IQ3_M = 27,
    HEARTH_FTYPE_IQ2_S = 28,
    HEARTH_FTYPE_IQ2_M = 29,
    HEARTH_FTYPE_IQ4_XS = 30,
    HEARTH_FTYPE_IQ1_M = 31,
    HEARTH_FTYPE_BF16 = 32,
} hearth_ftype;

/* Parse a file-type name, case-insensitive ("q4_k_m", "Q8_0", "q4_k" = Q4_K_M
 * as in llama-quantize), or its number ("15" = Q4_K_M, "26" = IQ3_S, as
 * llama-quantize also takes). Returns false when unknown. A known file type may
 * still pick a tensor type Hearth has no quantizer for (IQ2/IQ1 types):
 * check hearth_dtype_info(t)->from_float. */
bool hearth_ftype_from_name(const char *name, hearth_ftype *out);
const char *hearth_ftype_name(hearth_ftype f);
/* Comma-separated list of accepted names, for error messages and --help. */
const char *hearth_ftype_list(void);
/* The type most matrices get (Q4_K for Q4_K_M, ...). */
hearth_dtype hearth_ftype_base_type(hearth_ftype f);

/* What the rules need to know about the whole model. */
typedef struct hearth_quant_model {
    int n_layer;      /* blocks (blk.N.) */
    int n_gqa;        /* n_head / n_head_kv (1 when unknown) */
    bool has_output;  /* a separate output.weight exists */
    bool has_imatrix; /* quantizing with an importance matrix (changes ffn_down rules) */
    int n_expert;     /* experts per MoE layer (0 or 1: dense) */
} hearth_quant_model;

/* Per-run counters: attn_v and ffn_down tensors seen so far, in file order
 * of quantization (llama.cpp counts them the same way). Zero-initialise. */
typedef struct hearth_quant_counters {
    int i_attn_v, i_ffn_down, i_ffn_gate, i_ffn_up;
} hearth_quant_counters;

/* Whether tensor `name` (n_dims dimensions) is quantized at all: 2-D+
 * weights other than norms and a few llama.cpp keeps in float. */
bool hearth_quant_wants(const char *name, uint32_t n_dims);

/* The type for one tensor to be quantized. pure: every matrix gets the
 * base type (llama-quantize --pure). Counters advance on attn_v/ffn_down
 * (also under pure, so overrides stay position-independent). */
hearth_dtype hearth_quant_tensor_type(hearth_ftype f, bool pure, const hearth_quant_model *m,
                                      hearth_quant_counters *c, const char *name, int64_t ne0);

/* Whether llama.cpp refuses to write tensor `name` as type t of file type f
 * without an importance matrix (llama-quantize: "this quantization requires
 * an importance matrix"): IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS
 * tensors other than token_embd / output. */
bool hearth_quant_requires_imatrix(hearth_ftype f, const char *name, hearth_dtype t);

/* llama.cpp's fallback when ne0 is not a multiple of t's block: the nearest
 * legacy type that fits, else F16. Returns t when it fits. */
hearth_dtype hearth_quant_fallback(hearth_dtype t, int64_t ne0);

#endif
