/*
 * quantize_imatrix.h - `hearth quantize --imatrix FILE`: load an importance
 * matrix, check it belongs to the model being quantized, hand each tensor
 * its importance vector, and add llama-quantize's quantize.imatrix.* keys.
 * Ownership: q_imatrix_open returns an imatrix the caller frees.
 */
#ifndef HEARTH_QUANTIZE_IMATRIX_H
#define HEARTH_QUANTIZE_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/format/gguf.h"
#include "runtime/format/gguf_writer.h"
#include "runtime/format/imatrix_file.h"

/* Load `path` and check it against the model g: every entry must name a
 * 2-D+ tensor of g with as many input channels (x experts); values finite;
 * a GGUF imatrix must carry its imatrix.* keys. NULL with a message (that
 * says what to do) otherwise. */
hearth_imatrix *q_imatrix_open(const char *path, const hearth_gguf *g, hearth_error *err);

/* false (with err) when tensor `name` has importance data but type t has no
 * weighted quantizer here (the IQ types). */
bool q_imatrix_type_ok(const hearth_imatrix *im, const char *name, hearth_dtype t, hearth_error *err);

/* *qw = the importance vectors of `name` (n_mat x ne0 floats, in *buf: one
 * per expert of a 3-D *_exps tensor, n_mat = its ne[2]; else n_mat = 1), or
 * NULL when the imatrix has none for it (quantized as without --imatrix). */
bool q_imatrix_weights(const hearth_imatrix *im, const char *name, int64_t ne0, int64_t n_mat, float **buf,
                       size_t *cap, const float **qw, hearth_error *err);

/* quantize.imatrix.file / .dataset / .entries_count / .chunks_count, in
 * llama-quantize's order and form (strings cut at 127 bytes). */
bool q_imatrix_metadata(hearth_gguf_writer *w, const hearth_imatrix *im, const char *path, hearth_error *err);

#endif
