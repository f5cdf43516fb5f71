/*
 * awq_search.h - the numeric kernels of `hearth quantize --awq`
 * (quantize_awq.c): the block-diagonal input second moments, the output
 * error of a quantized weight row with the real quantizer in the loop, the
 * per-block clipping search, and a fixed-split parallel-for.
 *
 * Error model. For a weight row w and inputs x, the matmul output error of
 * the quantized row is (x . (Q(w) - w))^2 summed over calibration rows.
 * Split into blocks of AWQ_HB = 32 input channels and dropping the
 * cross-block terms, that is sum_b e_b^T H_b e_b with e = Q(w) - w and H_b
 * the 32 x 32 block of X^T X (all calibration rows, not a sample). With
 * input scales s (the AWQ fold: W diag(s), x / s), H_b becomes
 * diag(1/s) H_b diag(1/s).
 * Clipping: per quantizer block (32 values for Q4_0/Q5_0/Q8_0..., 256 for
 * the K types) the values are clamped to +-r * max|w| for r on the grid
 * 1, 0.975, ..., 0.5 and the r with the least error is kept (r = 1 is the
 * unclipped block, so the kept one is never worse). Only the F32 values
 * given to the quantizer change; the quantizer is the plain one, so the
 * result is a normal GGUF.
 * Determinism: every result depends only on its row; sums over rows are
 * taken in row order after the parallel part, so any thread count gives
 * the same bytes.
 * Ownership: callers own every buffer; nothing is kept between calls.
 */
#ifndef HEARTH_AWQ_SEARCH_H
#define HEARTH_AWQ_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

enum { AWQ_HB = 32, AWQ_CLIP_GRID = 21 };

/* Add rows x [n_rows x ne] to the block moments h [ne/AWQ_HB][AWQ_HB][AWQ_HB]
 * (ne % AWQ_HB == 0). */
void awq_hblock_add(double *h, const float *x, int n_rows, int64_t ne);

/* Scaled copy: hs_b[i][j] = h_b[i][j] / (s_i s_j); s == NULL copies. */
void awq_hblock_scale(const double *h, const float *s, int64_t ne, float *hs);

/* The block error sum_b e_b^T H_b e_b of e [ne] (ne % AWQ_HB == 0). */
double awq_hblock_err(const float *h, const float *e, int64_t ne);

/* Full second moments, for inputs of width n <= AWQ_FULL_MAX: h [n][n]
 * gets the upper triangle (j >= i) of X^T X, in float. */
enum { AWQ_FULL_MAX = 4096 };
void awq_hfull_add(float *h, const float *x, int n_rows, int64_t n);
/* The same on nth threads (row ranges of h; the same sums for any nth). */
void awq_hfull_add_mt(float *h, const float *x, int n_rows, int64_t n, int nth);
/* hs [n][n] = diag(1/s) H diag(1/s), both triangles (s == NULL: no scale). */
void awq_hfull_scale(const float *h, const float *s, int64_t n, float *hs);

/* Whole-row rounding refinement (Q4_0 / Q5_0): v [n] holds values the plain
 * quantizer takes (awq_clip_row's out), w [n] the unquantized row. From
 * v's codes, greedy +-1 code steps lower the full e^T H e (cross-block
 * terms included; each block's scale-setting element stays), at most 4
 * sweeps; v gets the new levels, which the quantizer reproduces exactly.
 * *e0 / *e1: the full error before and after. False for another type. */
bool awq_refine_row_full(hearth_dtype t, const float *w, float *v, int64_t n, const float *hs, double *e0,
                         double *e1);

/* The quantizer block of `t` the clipping search works on (32 or 256; 0
 * when t has no quantizer). */
int64_t awq_clip_group(hearth_dtype t);

/* Clipping search for one row w [n] of type t: out [n] gets the values to
 * quantize (w itself where r = 1 won). h: the block moments of the row's
 * inputs, NULL for the plain squared error (a lookup table such as
 * token_embd). step: every step-th ratio of the grid (1: all 21; 4: 1, 0.9,
 * ..., 0.5, the scale search's measure for the K types). refine (Q4_0 / Q5_0 with h only): for every clip
 * ratio the block's rounding is also refined on h (greedy +-1 code steps, the scale-setting element kept,
 * starting from round-to-nearest), and out gets the refined levels when they beat plain clipping; the plain
 * quantizer fed them gives exactly those codes. *e_plain / *e_clip get the row's error unclipped and as
 * chosen. Returns false when t cannot quantize n values. */
bool awq_clip_row(hearth_dtype t, const float *w, int64_t n, const float *h, int step, bool refine,
                  float *out, double *e_plain, double *e_clip);

/* Sample output error of rows [o0, o1) of the matrix w [n_out x n] (weights
 * times s when s != NULL, as given otherwise), quantized with t, on xs
 * [n_rows x n] (the inputs already divided by s) against yref
 * [n_rows x n_out]: err_row[o] = sum_r (xs_r . deq(Q(w_o s)) - yref[r][o])^2. */
bool awq_rows_err(hearth_dtype t, const float *w, const float *s, int64_t n, int64_t n_out, const float *xs,
                  int n_rows, const float *yref, int64_t o0, int64_t o1, double *err_row);

/* f(ctx, i0, i1) over [0, n) split into nth fixed contiguous ranges, on
 * nth threads (the calling thread takes the first). */
typedef void (*awq_task_fn)(void *ctx, int64_t i0, int64_t i1);
void awq_parallel(int nth, int64_t n, awq_task_fn f, void *ctx);

float awq_dot(const float *a, const float *b, int64_t n);

#endif
