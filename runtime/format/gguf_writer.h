/*
 * gguf_writer.h - streaming GGUF v3 writer (the counterpart of gguf.h).
 *
 * Used by `hearth mkmodel` (synthetic models) and `hearth quantize`. The
 * metadata and the tensor table are collected in memory first (they are
 * small); tensor data is then streamed to a FILE*, in the order the tensors
 * were added, in pieces of any size, so multi-gigabyte files never sit in
 * memory.
 *
 * Usage:
 *   w = hearth_gguf_writer_create(err);
 *   hearth_gguf_writer_set_str(w, "general.architecture", "llama", err); ...
 *   hearth_gguf_writer_add_tensor(w, "token_embd.weight", HEARTH_Q8_0, 2, ne, err); ...
 *   hearth_gguf_writer_begin(w, f, "out.gguf", err);     header, metadata, tensor infos
 *   hearth_gguf_writer_write(w, bytes, n, err); ...       tensor data, in order
 *   hearth_gguf_writer_finish(w, err);                    checks every byte was given, flushes
 *   hearth_gguf_writer_free(w);
 *
 * Ownership: the writer copies every key, string and array it is given; it
 * borrows the FILE* (the caller opens and closes it).
 * Invariants: keys are unique (setting a key again replaces its value in
 * place, keeping its position); tensor names are unique; every tensor's
 * row length is a multiple of its type's block size; tensor data offsets are
 * multiples of the alignment (general.alignment when set, else 32), and the
 * file ends padded to the alignment, as llama.cpp writes it.
 * The writer never prints; every failure returns a status and a message
 * (write errors name the file and the OS reason).
 */
#ifndef HEARTH_GGUF_WRITER_H
#define HEARTH_GGUF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dtype.h"
#include "core/error.h"
#include "gguf.h"

typedef struct hearth_gguf_writer hearth_gguf_writer;

hearth_gguf_writer *hearth_gguf_writer_create(hearth_error *err);
void hearth_gguf_writer_free(hearth_gguf_writer *w);

/* ---- metadata (only before hearth_gguf_writer_begin) */
hearth_status hearth_gguf_writer_set_u8(hearth_gguf_writer *w, const char *key, uint8_t v, hearth_error *err);
hearth_status hearth_gguf_writer_set_i8(hearth_gguf_writer *w, const char *key, int8_t v, hearth_error *err);
hearth_status hearth_gguf_writer_set_u16(hearth_gguf_writer *w, const char *key, uint16_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_i16(hearth_gguf_writer *w, const char *key, int16_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_u32(hearth_gguf_writer *w, const char *key, uint32_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_i32(hearth_gguf_writer *w, const char *key, int32_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_u64(hearth_gguf_writer *w, const char *key, uint64_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_i64(hearth_gguf_writer *w, const char *key, int64_t v,
                                         hearth_error *err);
hearth_status hearth_gguf_writer_set_f32(hearth_gguf_writer *w, const char *key, float v, hearth_error *err);
hearth_status hearth_gguf_writer_set_f64(hearth_gguf_writer *w, const char *key, double v, hearth_error *err);
hearth_status hearth_gguf_writer_set_bool(hearth_gguf_writer *w, const char *key, bool v, hearth_error *err);
/* NUL-terminated string value. */
hearth_status hearth_gguf_writer_set_str(hearth_gguf_writer *w, const char *key, const char *v,
                                         hearth_error *err);
/* String value of explicit length (may contain NULs). */
hearth_status hearth_gguf_writer_set_strn(hearth_gguf_writer *w, const char *key, const char *v, size_t len,
                                          hearth_error *err);
/* Array of n numeric or bool elements (elem_type not STRING/ARRAY); `data`
 * holds them packed in host (little-endian) order, as GGUF stores them. */
hearth_status hearth_gguf_writer_set_arr(hearth_gguf_writer *w, const char *key, gguf_value_type elem_type,
                                         const void *data, uint64_t n, hearth_error *err);
/* Array of n strings; lens may be NULL (then each string is NUL-terminated). */
hearth_status hearth_gguf_writer_set_str_arr(hearth_gguf_writer *w, const char *key, const char *const *strs,
                                             const size_t *lens, uint64_t n, hearth_error *err);
/* Copy a key/value read by gguf.h (any type, including string arrays). */
hearth_status hearth_gguf_writer_copy_kv(hearth_gguf_writer *w, const gguf_kv *kv, hearth_error *err);
/* Remove a key; returns true when it was present. */
bool hearth_gguf_writer_remove(hearth_gguf_writer *w, const char *key);
bool hearth_gguf_writer_has(const hearth_gguf_writer *w, const char *key);
uint64_t hearth_gguf_writer_n_kv(const hearth_gguf_writer *w);

/* ---- tensors (only before hearth_gguf_writer_begin). ne[0] is the row length
 * (contiguous); 1 <= n_dims <= GGUF_MAX_DIMS. Fails on a duplicate name, an
 * unknown type, a zero dimension or a row length that is not a multiple of
 * the type's block size. */
hearth_status hearth_gguf_writer_add_tensor(hearth_gguf_writer *w, const char *name, hearth_dtype type,
                                            uint32_t n_dims, const uint64_t *ne, hearth_error *err);
uint64_t hearth_gguf_writer_n_tensors(const hearth_gguf_writer *w);
/* Data bytes of tensor i (without padding); 0 when i is out of range. */
uint64_t hearth_gguf_writer_tensor_nbytes(const hearth_gguf_writer *w, uint64_t i);

/* ---- output. `name` is used in error messages (the file's path). Writes the
 * header, all metadata and the tensor table, and pads to the alignment.
 * After this, metadata and tensors can no longer be added. */
hearth_status hearth_gguf_writer_begin(hearth_gguf_writer *w, FILE *f, const char *name, hearth_error *err);
/* Stream the next n bytes of tensor data. Pieces may span tensors; padding
 * between tensors is inserted automatically. Writing more bytes than the
 * tensors hold is an error. */
hearth_status hearth_gguf_writer_write(hearth_gguf_writer *w, const void *data, size_t n, hearth_error *err);
/* Index of the tensor the next byte belongs to (n_tensors when all written). */
uint64_t hearth_gguf_writer_current_tensor(const hearth_gguf_writer *w);
/* Check every tensor got all its bytes, pad the end, and fflush. */
hearth_status hearth_gguf_writer_finish(hearth_gguf_writer *w, hearth_error *err);
/* Total size the file will have (valid after begin, or computed on demand
 * before it from the current metadata and tensors). */
uint64_t hearth_gguf_writer_file_size(const hearth_gguf_writer *w);

#endif
