/*
 * quant_iq2.h - row quantizers of the grid IQ types IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S and IQ1_M (layouts in core/dtype_iq.h).
 *
 * Each group of 8 weights is stored as an index into a fixed grid of 8-value
 * patterns, so quantizing means finding, for a scale, the grid point nearest
 * to the rounded group. That needs, per grid, a map from every 8-value
 * pattern of 2-bit levels to its grid index (or to a list of the nearest grid
 * points when the pattern is not on the grid). These are llama.cpp's searches
 * (quantize_row_iq2_xxs_impl etc. and iq2xs_init_impl in ggml-quants.c,
 * dc02e1f): same float expressions in the same order and the same neighbour
 * lists, so a row gives the bytes `llama-quantize --imatrix` gives.
 *
 * Ownership: the tables are built once per grid on first use (pthread_once)
 * into static storage and never change afterwards; the quantizers are
 * reentrant (no other state) and may run on any number of threads.
 */
#ifndef HEARTH_QUANT_IQ2_H
#define HEARTH_QUANT_IQ2_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

/* Patterns of 8 two-bit levels (level l of value k in bits 2k..2k+1) that
 * have a map entry: 0 .. HEARTH_IQ2_KMAP_SIZE-1, as ggml's kmap_size. */
#define HEARTH_IQ2_KMAP_SIZE 43692

/* The search tables of one grid.
 * grid[k]: entry k as 8 bytes 2l+1 (l = the level 0..2 of each value).
 * map[u]: the grid index of pattern u, or -(o+1) when u is not on the grid:
 * then neighbours[o] = n and neighbours[o+1 .. o+n] are the grid indices at
 * the nwant smallest squared distances from u (in units of the 2l+1 bytes),
 * ordered by distance, then index. */
typedef struct hearth_iq2_tables {
    const uint64_t *grid;
    const int32_t *map;
    const uint16_t *neighbours;
    int grid_size;        /* 256, 512, 1024 or 2048 */
    int nwant;            /* distinct distances kept: 2, 2, 1 or 3 */
    int64_t n_neighbours; /* neighbour entries, counts not included */
    int64_t n_off_grid;   /* patterns not on the grid (each has a count entry) */
} hearth_iq2_tables;

/* The tables for IQ2_XXS, IQ2_XS, IQ2_S or IQ1_S / IQ1_M (one shared grid);
 * NULL for any other type. Built on the first call (thread-safe). */
const hearth_iq2_tables *hearth_iq2_tables_for(hearth_dtype t);

/* Quantize one row of n floats (n a multiple of 256) with per-column
 * importance qw[n]. qw == NULL: IQ2_S and IQ1_M use llama.cpp's unweighted
 * search; IQ2_XXS, IQ2_XS and IQ1_S, which llama.cpp only quantizes with an
 * importance matrix, use an importance of 1 for every column. Returns false
 * for another type or a row length that is not a multiple of 256. */
bool hearth_iq2_quantize_row(hearth_dtype t, const float *x, void *dst, int64_t n, const float *qw);

/* from_float entries of dtype.c's traits table (qw == NULL above). */
void hearth_iq2_xxs_from_float(const float *x, void *dst, int64_t n);
void hearth_iq2_xs_from_float(const float *x, void *dst, int64_t n);
void hearth_iq2_s_from_float(const float *x, void *dst, int64_t n);
void hearth_iq1_s_from_float(const float *x, void *dst, int64_t n);
void hearth_iq1_m_from_float(const float *x, void *dst, int64_t n);

#endif
