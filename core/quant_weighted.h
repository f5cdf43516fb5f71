/*
 * quant_weighted.h - block quantizers that weight the rounding error by an
 * importance vector (one weight per column of the row, e.g. the mean x^2 of
 * the activations that multiply that column, from `hearth imatrix`).
 *
 * These are llama.cpp's quant_weights searches (quantize_row_*_impl in
 * ggml-quants.c, dc02e1f) for Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K, IQ4_NL and IQ4_XS (IQ3_XXS and IQ3_S: quant_iq3.h, dispatched from
 * here): the same float expressions in the same order, so a row gives
 * the same bytes as `llama-quantize --imatrix`. The block formats do not
 * change; only the choice of scales and levels does.
 * Pure functions: no state, no allocation, thread-safe (the IQ3 tables are
 * built once, see quant_iq3.h).
 */
#ifndef HEARTH_QUANT_WEIGHTED_H
#define HEARTH_QUANT_WEIGHTED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

/* How type t uses an importance vector: 1 = weighted search here (IQ2/IQ1 in
 * core/quant_iq2.c, IQ3 in core/quant_iq3.c), 0 = the type ignores it (F32,
 * F16, BF16, Q8_0, as llama.cpp), -1 = not supported. */
int hearth_quant_weighted_kind(hearth_dtype t);

/* Quantize one row of n floats (n a multiple of t's block) into dst with
 * per-column importance qw[n]. qw == NULL, or a type that ignores weights,
 * gives exactly hearth_quantize_row's bytes (llama.cpp does the same).
 * Returns false for a type with kind -1 or a row length that does not fit. */
bool hearth_quantize_row_weighted(hearth_dtype t, const float *x, void *dst, int64_t n, const float *qw);

/* ggml's make_qp_quants: non-negative levels 0..nmax of n values x (into L)
 * and the scale that fits them best with weights qw (the K-quants' sub-block
 * scales; IQ2_XXS's first guess). */
float hearth_quant_qp_levels(int n, int nmax, const float *x, uint8_t *L, const float *qw);

#endif
