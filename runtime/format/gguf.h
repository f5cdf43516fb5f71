/*
 * gguf.h - read-only, memory-mapped GGUF (v2 and v3) reader.
 *
 * Ownership: hearth_gguf owns the mapping (or borrows a caller's buffer with
 * hearth_gguf_open_memory) and every string/array view it hands out; views
 * stay valid until hearth_gguf_close.
 * Invariants after a successful open: every key, string, array and tensor
 * data range lies inside the file; tensor types are known (dtype.h); tensor
 * byte sizes were computed without overflow; tensor data is aligned to the
 * file's alignment. Callers may therefore read tensor data without checks.
 */
#ifndef HEARTH_GGUF_H
#define HEARTH_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"

typedef enum gguf_value_type {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_value_type;

/* A string view into the file: not NUL-terminated. */
typedef struct hearth_str {
    const char *ptr;
    uint64_t len;
} hearth_str;

typedef struct gguf_kv {
    hearth_str key;
    gguf_value_type type;      /* GGUF_ARRAY for arrays */
    gguf_value_type arr_type;  /* element type when type == GGUF_ARRAY */
    uint64_t arr_n;            /* element count when type == GGUF_ARRAY */
    const void *data;          /* scalar value, or first element of a non-string array
                                  (may be unaligned: read with memcpy) */
    const hearth_str *strs;    /* elements of a string array (arr_n of them), else NULL */
    hearth_str str;            /* value when type == GGUF_STRING */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    hearth_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (contiguous); unused dims are 1 */
    hearth_dtype type;
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
    const void *data;           /* inside the mapping */
} gguf_tensor;

typedef struct hearth_gguf hearth_gguf;

/* Map and validate `path`. On failure returns NULL and sets err with a message
 * that names the file and the problem (HEARTH_ERR_IO or HEARTH_ERR_FORMAT or
 * HEARTH_ERR_UNSUPPORTED). */
hearth_gguf *hearth_gguf_open(const char *path, hearth_error *err);

/* Parse a caller-owned buffer (must outlive the handle). `name` is used in
 * messages. Used by the fuzzer and by tests. */
hearth_gguf *hearth_gguf_open_memory(const void *data, size_t size, const char *name, hearth_error *err);

void hearth_gguf_close(hearth_gguf *g);
/* A split model (NAME-00001-of-0000N.gguf with split.count N): opening the
 * first part opens every part, and the tensors of all of them are found
 * here; these say how many files and their bytes together. */
uint32_t hearth_gguf_n_parts(const hearth_gguf *g);
uint64_t hearth_gguf_total_size(const hearth_gguf *g);

/* Fault the whole mapping in now (read-ahead, then page-table entries where
 * the kernel can: MADV_POPULATE_READ), so the first forward pass does not
 * pay ~one page fault per 4 KiB of weights. A hint: failures are ignored.
 * For model loading; `hearth info` never calls it. */
void hearth_gguf_prefetch(hearth_gguf *g);

uint32_t hearth_gguf_version(const hearth_gguf *g);
const char *hearth_gguf_path(const hearth_gguf *g);
uint64_t hearth_gguf_file_size(const hearth_gguf *g);
uint32_t hearth_gguf_alignment(const hearth_gguf *g);
/* Bytes before the tensor data: header, key-values, tensor infos, padding. */
uint64_t hearth_gguf_header_bytes(const hearth_gguf *g);

uint64_t hearth_gguf_n_kv(const hearth_gguf *g);
const gguf_kv *hearth_gguf_kv_at(const hearth_gguf *g, uint64_t i);
const gguf_kv *hearth_gguf_find(const hearth_gguf *g, const char *key);

/* Typed getters. Return false when the key is absent or has an incompatible
 * type (integers convert between widths when the value fits). */
bool hearth_gguf_get_u32(const hearth_gguf *g, const char *key, uint32_t *out);
bool hearth_gguf_get_u64(const hearth_gguf *g, const char *key, uint64_t *out);
bool hearth_gguf_get_i64(const hearth_gguf *g, const char *key, int64_t *out);
bool hearth_gguf_get_f32(const hearth_gguf *g, const char *key, float *out);
bool hearth_gguf_get_bool(const hearth_gguf *g, const char *key, bool *out);
bool hearth_gguf_get_str(const hearth_gguf *g, const char *key, hearth_str *out);
/* Array of any element type; returns the kv (NULL if absent or not an array). */
const gguf_kv *hearth_gguf_get_arr(const hearth_gguf *g, const char *key, gguf_value_type elem_type);

/* Element i of a numeric array as double / int64 (i < arr_n, checked). */
double gguf_kv_arr_f64(const gguf_kv *kv, uint64_t i);
int64_t gguf_kv_arr_i64(const gguf_kv *kv, uint64_t i);

uint64_t hearth_gguf_n_tensors(const hearth_gguf *g);
const gguf_tensor *hearth_gguf_tensor_at(const hearth_gguf *g, uint64_t i);
const gguf_tensor *hearth_gguf_find_tensor(const hearth_gguf *g, const char *name);

/* hearth_str helpers */
bool hearth_str_eq(hearth_str s, const char *cstr);
/* Copy into buf as a NUL-terminated string (truncating); returns buf. */
char *hearth_str_copy(hearth_str s, char *buf, size_t cap);

const char *gguf_value_type_name(gguf_value_type t);
/* Bytes of one scalar of type t; 0 for strings and arrays (variable size). */
size_t gguf_value_type_size(gguf_value_type t);

#endif
