/*
 * gguf_split.h - write a GGUF model as N part files, the layout llama.cpp's
 * gguf-split writes and Hugging Face serves large models in:
 * PREFIX-00001-of-0000N.gguf holds every metadata key, each part holds
 * split.no (u16, 0-based), split.count (u16) and split.tensors.count (i32)
 * and a run of the tensors in file order. hearth_gguf_open on the first part
 * reads them back as one model (gguf.h).
 *
 * Ownership: the caller keeps src; files are written with the writer
 * (gguf_writer.h) and closed before returning. Never prints.
 */
#ifndef HEARTH_GGUF_SPLIT_H
#define HEARTH_GGUF_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf.h"

/* Split src into files PREFIX-0000k-of-0000N.gguf: either n_parts of them
 * (1 to 9999, at most one per tensor) holding about the same bytes, or
 * (max_bytes, n_parts 0) as few as keep every file within max_bytes, filled
 * in tensor order (a tensor is never cut: one larger than that is an
 * error). progress(ctx, part, N) after each part (may be NULL); *parts_out
 * gets N (may be NULL). A part already there is replaced. */
hearth_status hearth_gguf_split_write(const hearth_gguf *src, const char *prefix, uint32_t n_parts,
                                      uint64_t max_bytes,
                                      void (*progress)(void *ctx, uint32_t part, uint32_t n), void *ctx,
                                      uint32_t *parts_out, hearth_error *err);

/* The path of part k (1-based) of n under prefix, into buf. */
const char *hearth_gguf_split_path(const char *prefix, uint32_t k, uint32_t n, char *buf, size_t cap);

#endif
