/*
 * quant_iq3.h - row quantizers for the IQ3 grid types (IQ3_XXS, IQ3_S):
 * llama.cpp's quantize_row_iq3_xxs_impl / quantize_row_iq3_s_impl searches
 * (ggml-quants.c, dc02e1f), same float expressions in the same order, so a
 * row gives the bytes `llama-quantize` writes, with or without an importance
 * vector.
 *
 * The search needs, per grid, a map from every 4-value point of the 3-bit
 * lattice to its grid index and, for points off the grid, the list of the
 * nearest grid entries. Those tables are built from the grids of
 * dtype_iq_grids.c once per process (pthread_once) into static storage; no
 * other state. After that every function here is pure and thread-safe.
 * Invariant: the output decodes with hearth_iq3_*_to_float (dtype_iq.h).
 */
#ifndef HEARTH_QUANT_IQ3_H
#define HEARTH_QUANT_IQ3_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

/* Quantize one row of n floats (n a multiple of QK_K) with per-column
 * importance qw[n], or qw == NULL (weights x^2, as ggml without an imatrix).
 * Returns false when n does not fit or the tables could not be built. */
bool hearth_iq3_xxs_quantize(const float *x, void *dst, int64_t n, const float *qw);
bool hearth_iq3_s_quantize(const float *x, void *dst, int64_t n, const float *qw);

/* The unweighted forms, for the dtype table's from_float. */
void hearth_iq3_xxs_from_float(const float *x, void *dst, int64_t n);
void hearth_iq3_s_from_float(const float *x, void *dst, int64_t n);

/* For tests: the number of neighbour entries of the off-grid points of the
 * 256-entry (IQ3_XXS) or 512-entry (IQ3_S) grid's tables (0 if not built). */
int hearth_iq3_neighbour_count(int grid_size);

#endif
