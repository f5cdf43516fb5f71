/*
 * imatrix_file.h - importance matrices in llama.cpp's file formats: the
 * GGUF form llama-imatrix writes (general.type "imatrix"; per weight W the
 * tensors W.in_sum2 = sum of x^2 per input channel, [ne0] or [ne0, n_mat],
 * and W.counts = rows summed, [1] or [1, n_mat]; keys imatrix.datasets,
 * imatrix.chunk_count, imatrix.chunk_size), and the legacy .dat form (read
 * only: per entry the mean x^2 times the call count, and that count).
 *
 * Ownership: a hearth_imatrix owns its entries, names and datasets.
 * Invariants: entry names are unique; sums has n_mat * ne0 values and
 * counts n_mat; hearth_imatrix_save writes entries sorted by name, as
 * llama-imatrix does, so both tools read each other's files.
 * Nothing here prints.
 */
#ifndef HEARTH_IMATRIX_FILE_H
#define HEARTH_IMATRIX_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct hearth_imatrix_entry {
    char name[160];  /* the weight tensor, e.g. blk.0.attn_q.weight */
    int64_t ne0;     /* input channels of one matrix */
    int64_t n_mat;   /* matrices (experts); 1 for a dense weight */
    double *sums;    /* [n_mat * ne0] sum of x^2 (legacy: mean x^2 * count) */
    int64_t *counts; /* [n_mat] rows summed (legacy: the call count) */
} hearth_imatrix_entry;

typedef struct hearth_imatrix {
    hearth_imatrix_entry *e;
    size_t n, cap;
    char **datasets; /* calibration file names */
    size_t n_datasets;
    uint32_t chunk_count, chunk_size;
    bool legacy;       /* read from a .dat file */
    bool has_metadata; /* GGUF with all three imatrix.* keys */
} hearth_imatrix;

hearth_imatrix *hearth_imatrix_new(hearth_error *err);
void hearth_imatrix_free(hearth_imatrix *im);

/* The entry for `name`, created (zeroed) with ne0 x n_mat when absent.
 * NULL with an error when it exists with another shape, or on no memory. */
hearth_imatrix_entry *hearth_imatrix_entry_for(hearth_imatrix *im, const char *name, int64_t ne0,
                                               int64_t n_mat, hearth_error *err);
const hearth_imatrix_entry *hearth_imatrix_find(const hearth_imatrix *im, const char *name);
hearth_status hearth_imatrix_add_dataset(hearth_imatrix *im, const char *name, hearth_error *err);

/* Add src into dst as llama-imatrix --in-file merges: per entry the sums
 * and counts are added (an entry dst lacks is created; one of another shape
 * is an error); legacy src values (mean x^2 * calls) are first multiplied by
 * chunk_size, as llama.cpp does, to make them sums over rows; the datasets
 * are appended. Returns src's chunks: its largest count / chunk_size. */
hearth_status hearth_imatrix_merge(hearth_imatrix *dst, const hearth_imatrix *src, int64_t chunk_size,
                                   int64_t *chunks, hearth_error *err);

/* Write the GGUF form to path (the caller handles temporary names). */
hearth_status hearth_imatrix_save(const hearth_imatrix *im, const char *path, hearth_error *err);

/* Read a GGUF or legacy .dat imatrix file. Errors name the file and what is
 * wrong (not an imatrix, a cut file, sums without counts, ...). */
hearth_imatrix *hearth_imatrix_load(const char *path, hearth_error *err);

/* llama-quantize's importance vector for one entry: mean x^2 per channel
 * (sums / counts rounded to whole rows; 1 where a matrix has no rows;
 * legacy: sums / count). out has n_mat * ne0 floats. */
void hearth_imatrix_weights(const hearth_imatrix *im, const hearth_imatrix_entry *e, float *out);

#endif
