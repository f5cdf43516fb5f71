/*
 * gguf.c - the GGUF (v2, v3) reader behind gguf.h.
 *
 * Purpose: map a model or vocabulary file once, validate every byte range the
 * rest of the runtime will touch, and index keys and tensors by name.
 *
 * Ownership: a hearth_gguf owns its mapping (hearth_gguf_open, MAP_PRIVATE,
 * read-only) or borrows the caller's buffer (hearth_gguf_open_memory), plus
 * its heap blocks: a copy of the name, the kv array, the tensor array, one
 * hearth_str array shared by every string-array kv, and the two hash indexes
 * (open addressing, at most half full). Every view handed out points into the
 * file bytes or into those blocks and lives until hearth_gguf_close. Heap use
 * is bounded by a small multiple of the file size: every count is checked
 * against the bytes left before anything is allocated for it.
 * Multi-byte values are little-endian in the file; scalar views handed out
 * (kv->data) are in file order, so this reader assumes a little-endian host.
 *
 * Invariants after a successful open (what callers may rely on):
 *   - every key, string, array element and tensor data range lies inside the
 *     file, computed with overflow-checked arithmetic;
 *   - keys are unique, tensor names are unique;
 *   - no arrays of arrays (rejected as unsupported);
 *   - every tensor has 1..4 dims, each > 0, an element count that fits in
 *     int64, a type this build can load, a row length that is a multiple of
 *     the type's block size, and data aligned to the file's alignment
 *     (a power of two; 32 unless general.alignment says otherwise).
 * Parsing never prints, never exits, and never reads outside [base, base+size).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_HEADER_BYTES 24u
/* Smallest possible encodings, used to reject counts that cannot fit. */
#define GGUF_MIN_KV_BYTES 13u     /* key len (8) + type (4) + one-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u /* name len (8) + n_dims (4) + ne (8) + type (4) + offset (8) */

struct hearth_gguf {
    char *name;          /* path or caller-given name (owned) */
    const uint8_t *base; /* file bytes */
    uint64_t size;
    void *map; /* mmap'd region, or NULL when borrowing */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset; /* start of the tensor data section (may equal size) */

    uint64_t n_kv;
    gguf_kv *kvs; /* n_kv, file order */
    uint64_t n_tensors;
    gguf_tensor *tensors; /* n_tensors, file order */
    hearth_str *strs;     /* elements of every string array, one block */

    uint64_t *kv_index; /* open addressing: slot holds kv index + 1, 0 = empty */
    uint64_t kv_mask;
    uint64_t *tensor_index;
    uint64_t tensor_mask;

    /* a split model (split.count > 1): the other parts, whose tensors were
     * appended to `tensors` (their views point into these mappings) */
    struct hearth_gguf **parts;
    uint32_t n_parts; /* parts besides this one */
    uint64_t total_size;
};

/* ---------------------------------------------------------------- small helpers */

static const hearth_str empty_strs[1];

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static bool str_eq_bytes(hearth_str s, const char *p, uint64_t n) {
    return s.len == n && (n == 0 || memcmp(s.ptr, p, (size_t)n) == 0);
}

/* Printable form of a file string for error messages: non-printable bytes
 * become '?', long strings are cut with "...". */
static const char *show(hearth_str s, char *buf, size_t cap) {
    size_t n = 0;
    for (uint64_t i = 0; i < s.len && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n < s.len && cap >= 4) {
        n = n > cap - 4 ? cap - 4 : n;
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

size_t gguf_value_type_size(gguf_value_type t) {
    switch (t) {
    case GGUF_UINT8:
    case GGUF_INT8:
    case GGUF_BOOL: return 1;
    case GGUF_UINT16:
    case GGUF_INT16: return 2;
    case GGUF_UINT32:
    case GGUF_INT32:
    case GGUF_FLOAT32: return 4;
    case GGUF_UINT64:
    case GGUF_INT64:
    case GGUF_FLOAT64: return 8;
    default: return 0; /* string, array: variable */
    }
}

const char *gguf_value_type_name(gguf_value_type t) {
    switch (t) {
    case GGUF_UINT8: return "uint8";
    case GGUF_INT8: return "int8";
    case GGUF_UINT16: return "uint16";
    case GGUF_INT16: return "int16";
    case GGUF_UINT32: return "uint32";
    case GGUF_INT32: return "int32";
    case GGUF_FLOAT32: return "float32";
    case GGUF_BOOL: return "bool";
    case GGUF_STRING: return "string";
    case GGUF_ARRAY: return "array";
    case GGUF_UINT64: return "uint64";
    case GGUF_INT64: return "int64";
    case GGUF_FLOAT64: return "float64";
    default: return "unknown";
    }
}

bool hearth_str_eq(hearth_str s, const char *cstr) {
    return cstr && str_eq_bytes(s, cstr, strlen(cstr));
}

char *hearth_str_copy(hearth_str s, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- bounded reader */

/* A cursor over the file. `ctx` names the item being parsed ("key-value 3
 * (general.name)") so a failure says where it happened. */
typedef struct parser {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos; /* invariant: pos <= size */
    const char *name;
    hearth_error *err;
    char ctx[192];
} parser;

static bool need(parser *p, uint64_t n, const char *field) {
    if (n <= p->size - p->pos) return true;
    hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                     "%s: truncated file: %s: %s needs %" PRIu64 " bytes at offset %" PRIu64
                     " but the file has %" PRIu64 " bytes",
                     p->name, p->ctx, field, n, p->pos, p->size);
    return false;
}

static bool read_u32(parser *p, const char *field, uint32_t *out) {
    if (!need(p, 4, field)) return false;
    const uint8_t *b = p->base + p->pos;
    *out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    p->pos += 4;
    return true;
}

static bool read_u64(parser *p, const char *field, uint64_t *out) {
    if (!need(p, 8, field)) return false;
    const uint8_t *b = p->base + p->pos;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    *out = v;
    p->pos += 8;
    return true;
}

static bool read_str(parser *p, const char *field, hearth_str *out) {
    uint64_t len;
    if (!read_u64(p, field, &len)) return false;
    if (len > p->size - p->pos) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: truncated file: %s: %s of %" PRIu64 " bytes at offset %" PRIu64
                         " runs past the end of the file (%" PRIu64 " bytes)",
                         p->name, p->ctx, field, len, p->pos, p->size);
        return false;
    }
    out->ptr = (const char *)p->base + p->pos;
    out->len = len;
    p->pos += len;
    return true;
}

/* ---------------------------------------------------------------- hash indexes */

static uint64_t *index_alloc(uint64_t n, uint64_t *mask) {
    uint64_t cap = 8;
    while (cap < n * 2)
        cap <<= 1; /* n is bounded by file size / 13: no overflow */
    *mask = cap - 1;
    return calloc((size_t)cap, sizeof(uint64_t));
}

/* Insert item `idx` with name `s`. Returns 0 on success, or (existing index +
 * 1) when the name is already present. `name_of` reads item names. */
typedef hearth_str (*name_fn)(const hearth_gguf *g, uint64_t i);

static hearth_str kv_name(const hearth_gguf *g, uint64_t i) {
    return g->kvs[i].key;
}
static hearth_str tensor_name(const hearth_gguf *g, uint64_t i) {
    return g->tensors[i].name;
}

static uint64_t index_insert(const hearth_gguf *g, uint64_t *slots, uint64_t mask, name_fn name_of,
                             uint64_t idx) {
    hearth_str s = name_of(g, idx);
    for (uint64_t h = hash_bytes(s.ptr, s.len) & mask;; h = (h + 1) & mask) {
        if (slots[h] == 0) {
            slots[h] = idx + 1;
            return 0;
        }
        hearth_str o = name_of(g, slots[h] - 1);
        if (str_eq_bytes(o, s.ptr, s.len)) return slots[h];
    }
}

static const uint64_t *index_find(const hearth_gguf *g, const uint64_t *slots, uint64_t mask, name_fn name_of,
                                  const char *key) {
    if (!slots || !key) return NULL;
    uint64_t n = strlen(key);
    for (uint64_t h = hash_bytes(key, n) & mask;; h = (h + 1) & mask) {
        if (slots[h] == 0) return NULL;
        if (str_eq_bytes(name_of(g, slots[h] - 1), key, n)) return &slots[h];
    }
}

/* ---------------------------------------------------------------- parsing */

static hearth_status fail_nomem(parser *p, const char *what) {
    return hearth_error_set(p->err, HEARTH_ERR_NOMEM, "%s: out of memory allocating %s", p->name, what);
}

static bool parse_header(parser *p, hearth_gguf *g) {
    snprintf(p->ctx, sizeof p->ctx, "header");
    if (!need(p, 4, "magic")) return false;
    const uint8_t *m = p->base;
    if (memcmp(m, "GGUF", 4) != 0) {
        hearth_error_set(
            p->err, HEARTH_ERR_FORMAT,
            "%s: not a GGUF file: bad magic %02x %02x %02x %02x (expected \"GGUF\" = 47 47 55 46)", p->name,
            m[0], m[1], m[2], m[3]);
        return false;
    }
    p->pos = 4;
    if (!read_u32(p, "version", &g->version)) return false;
    uint32_t v = g->version;
    if (v == 1) {
        hearth_error_set(p->err, HEARTH_ERR_UNSUPPORTED,
                         "%s: GGUF version 1 is not supported (this build reads versions 2 and 3); "
                         "re-convert the model with a current llama.cpp",
                         p->name);
        return false;
    }
    if (v != 2 && v != 3) {
        uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
        if (swapped >= 1 && swapped <= 3)
            hearth_error_set(p->err, HEARTH_ERR_UNSUPPORTED,
                             "%s: big-endian GGUF file (version %" PRIu32 " byte-swapped) is not supported",
                             p->name, swapped);
        else
            hearth_error_set(p->err, v == 0 ? HEARTH_ERR_FORMAT : HEARTH_ERR_UNSUPPORTED,
                             "%s: unsupported GGUF version %" PRIu32 " (this build reads versions 2 and 3)",
                             p->name, v);
        return false;
    }
    if (!read_u64(p, "tensor count", &g->n_tensors)) return false;
    if (!read_u64(p, "key-value count", &g->n_kv)) return false;
    uint64_t rest = p->size - p->pos;
    if (g->n_kv > rest / GGUF_MIN_KV_BYTES) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: header: key-value count %" PRIu64 " cannot fit: each needs at least %u bytes "
                         "but only %" PRIu64 " bytes follow the header",
                         p->name, g->n_kv, GGUF_MIN_KV_BYTES, rest);
        return false;
    }
    if (g->n_tensors > rest / GGUF_MIN_TENSOR_BYTES) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: header: tensor count %" PRIu64 " cannot fit: each tensor info needs at least "
                         "%u bytes but only %" PRIu64 " bytes follow the header",
                         p->name, g->n_tensors, GGUF_MIN_TENSOR_BYTES, rest);
        return false;
    }
    return true;
}

/* Parse one kv at p->pos into *kv. String arrays are walked (and bounds
 * checked) here; their hearth_str views are filled later in one block. */
static bool parse_kv(parser *p, uint64_t i, gguf_kv *kv, uint64_t *n_strs) {
    char shown[96];
    snprintf(p->ctx, sizeof p->ctx, "key-value %" PRIu64, i);
    if (!read_str(p, "key", &kv->key)) return false;
    snprintf(p->ctx, sizeof p->ctx, "key-value %" PRIu64 " (%s)", i, show(kv->key, shown, sizeof shown));

    uint32_t t;
    if (!read_u32(p, "value type", &t)) return false;
    if (t >= GGUF_TYPE_COUNT) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: %s: unknown value type %" PRIu32 " (valid types are 0..%d)", p->name, p->ctx, t,
                         GGUF_TYPE_COUNT - 1);
        return false;
    }
    kv->type = (gguf_value_type)t;

    if (kv->type == GGUF_STRING) {
        if (!read_str(p, "string value", &kv->str)) return false;
        kv->data = kv->str.ptr;
        return true;
    }
    if (kv->type != GGUF_ARRAY) {
        size_t sz = gguf_value_type_size(kv->type);
        if (!need(p, sz, "value")) return false;
        kv->data = p->base + p->pos;
        p->pos += sz;
        return true;
    }

    uint32_t et;
    if (!read_u32(p, "array element type", &et)) return false;
    if (et == GGUF_ARRAY) {
        hearth_error_set(p->err, HEARTH_ERR_UNSUPPORTED, "%s: %s: arrays of arrays are not supported",
                         p->name, p->ctx);
        return false;
    }
    if (et >= GGUF_TYPE_COUNT) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: %s: unknown array element type %" PRIu32 " (valid types are 0..%d)", p->name,
                         p->ctx, et, GGUF_TYPE_COUNT - 1);
        return false;
    }
    kv->arr_type = (gguf_value_type)et;
    if (!read_u64(p, "array length", &kv->arr_n)) return false;

    uint64_t rest = p->size - p->pos;
    uint64_t min_elem = kv->arr_type == GGUF_STRING ? 8 : gguf_value_type_size(kv->arr_type);
    if (kv->arr_n > rest / min_elem) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: %s: array of %" PRIu64 " %s elements cannot fit: the %" PRIu64
                         " bytes left in the file hold at most %" PRIu64,
                         p->name, p->ctx, kv->arr_n, gguf_value_type_name(kv->arr_type), rest,
                         rest / min_elem);
        return false;
    }
    kv->data = p->base + p->pos;
    if (kv->arr_type != GGUF_STRING) {
        p->pos += kv->arr_n * min_elem; /* fits: checked above */
        return true;
    }
    size_t ctx_len = strlen(p->ctx);
    for (uint64_t j = 0; j < kv->arr_n; j++) {
        hearth_str s;
        snprintf(p->ctx + ctx_len, sizeof p->ctx - ctx_len, " element %" PRIu64, j);
        if (!read_str(p, "string", &s)) return false;
    }
    p->ctx[ctx_len] = '\0';
    *n_strs += kv->arr_n; /* each element used >= 8 file bytes: the sum cannot overflow */
    return true;
}

/* Fill the hearth_str views of every string array into one block. The arrays
 * were bounds checked by parse_kv, so this walk reads without checks. */
static bool fill_string_arrays(parser *p, hearth_gguf *g, uint64_t n_strs) {
    if (n_strs > SIZE_MAX / sizeof(hearth_str)) return fail_nomem(p, "string views"), false;
    if (n_strs) {
        g->strs = malloc((size_t)n_strs * sizeof(hearth_str));
        if (!g->strs) return fail_nomem(p, "string views"), false;
    }
    hearth_str *next = g->strs;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kvs[i];
        if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) continue;
        if (kv->arr_n == 0) {
            kv->strs = empty_strs;
            continue;
        }
        kv->strs = next;
        const uint8_t *q = kv->data;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            uint64_t len = 0;
            for (int b = 7; b >= 0; b--)
                len = len << 8 | q[b];
            next->ptr = (const char *)q + 8;
            next->len = len;
            q += 8 + len;
            next++;
        }
    }
    return true;
}

static int read_number(gguf_value_type t, const void *p, uint64_t *u, int64_t *s, double *f);
static bool is_int_type(gguf_value_type t);

/* general.alignment: an integer (uint32 per the spec), a non-zero power of two. */
static bool read_alignment(parser *p, hearth_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const uint64_t *slot = index_find(g, g->kv_index, g->kv_mask, kv_name, "general.alignment");
    if (!slot) return true;
    const gguf_kv *kv = &g->kvs[*slot - 1];
    if (!is_int_type(kv->type)) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT, "%s: general.alignment has type %s (expected uint32)",
                         p->name, gguf_value_type_name(kv->type));
        return false;
    }
    uint64_t a = 0;
    int64_t s = 0;
    double f;
    if (read_number(kv->type, kv->data, &a, &s, &f) == 's') {
        if (s < 0) {
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: general.alignment = %" PRId64 " is not a non-zero power of two", p->name,
                             s);
            return false;
        }
        a = (uint64_t)s;
    }
    if (a == 0 || a > UINT32_MAX || (a & (a - 1)) != 0) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: general.alignment = %" PRIu64 " is not a non-zero power of two", p->name, a);
        return false;
    }
    g->alignment = (uint32_t)a;
    return true;
}

static bool parse_tensor_info(parser *p, hearth_gguf *g, uint64_t i, gguf_tensor *t) {
    char shown[96];
    snprintf(p->ctx, sizeof p->ctx, "tensor info %" PRIu64, i);
    if (!read_str(p, "name", &t->name)) return false;
    show(t->name, shown, sizeof shown);
    snprintf(p->ctx, sizeof p->ctx, "tensor info %" PRIu64 " (%s)", i, shown);

    if (!read_u32(p, "n_dims", &t->n_dims)) return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: tensor '%s' has %" PRIu32 " dimensions (expected 1..%d)", p->name, shown,
                         t->n_dims, GGUF_MAX_DIMS);
        return false;
    }
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        char field[16];
        snprintf(field, sizeof field, "ne[%" PRIu32 "]", d);
        if (!read_u64(p, field, &t->ne[d])) return false;
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX) {
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: tensor '%s' has dimension ne[%" PRIu32 "] = %" PRId64 " (must be > 0)",
                             p->name, shown, d, (int64_t)t->ne[d]);
            return false;
        }
        if (t->ne[d] > (uint64_t)INT64_MAX / nelem) {
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: tensor '%s' has too many elements: the product of its dimensions overflows "
                             "int64 at ne[%" PRIu32 "] = %" PRIu64,
                             p->name, shown, d, t->ne[d]);
            return false;
        }
        nelem *= t->ne[d];
    }

    uint32_t type;
    if (!read_u32(p, "type", &type)) return false;
    const hearth_dtype_traits *tr = type < HEARTH_DTYPE_COUNT ? hearth_dtype_info((hearth_dtype)type) : NULL;
    if (!tr || !tr->known || tr->block_size <= 0 || tr->type_size == 0) {
        const char *tn = tr && tr->name && strcmp(tr->name, "?") != 0 ? tr->name : "unknown";
        hearth_error_set(p->err, HEARTH_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has type %" PRIu32 " (%s); this build supports %s", p->name, shown,
                         type, tn, hearth_dtype_supported_list());
        return false;
    }
    t->type = (hearth_dtype)type;
    uint64_t bs = (uint64_t)tr->block_size;
    if (t->ne[0] % bs != 0) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: tensor '%s' (%s) has rows of %" PRIu64 " elements, not a multiple of the block "
                         "size %" PRIu64,
                         p->name, shown, tr->name, t->ne[0], bs);
        return false;
    }
    uint64_t blocks = nelem / bs; /* ne[0] % bs == 0, so every row is whole blocks */
    if (blocks > UINT64_MAX / tr->type_size) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT, "%s: tensor '%s' byte size overflows", p->name, shown);
        return false;
    }
    t->nbytes = blocks * tr->type_size;

    if (!read_u64(p, "offset", &t->offset)) return false;
    if (t->offset % g->alignment != 0) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: tensor '%s' data offset %" PRIu64
                         " is not a multiple of the alignment %" PRIu32,
                         p->name, shown, t->offset, g->alignment);
        return false;
    }
    return true;
}

/* Place every tensor inside the data section. */
static bool check_tensor_data(parser *p, hearth_gguf *g) {
    uint64_t avail = g->data_offset < p->size ? p->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            char shown[96];
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: tensor '%s' data (%" PRIu64 " bytes at data offset %" PRIu64
                             ", data section at file offset %" PRIu64
                             ") runs past the end of the file (%" PRIu64 " bytes); the file may be truncated",
                             p->name, show(t->name, shown, sizeof shown), t->nbytes, t->offset,
                             g->data_offset, p->size);
            return false;
        }
        t->data = p->base + g->data_offset + t->offset;
    }
    return true;
}

static bool parse_all(parser *p, hearth_gguf *g) {
    if (!parse_header(p, g)) return false;

    /* key-values */
    if (g->n_kv) {
        g->kvs = calloc((size_t)g->n_kv, sizeof *g->kvs);
        if (!g->kvs) return fail_nomem(p, "key-values"), false;
    }
    g->kv_index = index_alloc(g->n_kv, &g->kv_mask);
    if (!g->kv_index) return fail_nomem(p, "key index"), false;
    uint64_t n_strs = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (!parse_kv(p, i, &g->kvs[i], &n_strs)) return false;
        uint64_t dup = index_insert(g, g->kv_index, g->kv_mask, kv_name, i);
        if (dup) {
            char shown[96];
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: duplicate key '%s' (key-values %" PRIu64 " and %" PRIu64 ")", p->name,
                             show(g->kvs[i].key, shown, sizeof shown), dup - 1, i);
            return false;
        }
    }
    if (!fill_string_arrays(p, g, n_strs)) return false;
    if (!read_alignment(p, g)) return false;

    /* tensor infos */
    uint64_t rest = p->size - p->pos;
    if (g->n_tensors > rest / GGUF_MIN_TENSOR_BYTES) {
        hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                         "%s: header: tensor count %" PRIu64 " cannot fit: each tensor info needs at least "
                         "%u bytes but only %" PRIu64 " bytes follow the key-values (offset %" PRIu64 ")",
                         p->name, g->n_tensors, GGUF_MIN_TENSOR_BYTES, rest, p->pos);
        return false;
    }
    if (g->n_tensors) {
        g->tensors = calloc((size_t)g->n_tensors, sizeof *g->tensors);
        if (!g->tensors) return fail_nomem(p, "tensor infos"), false;
    }
    g->tensor_index = index_alloc(g->n_tensors, &g->tensor_mask);
    if (!g->tensor_index) return fail_nomem(p, "tensor index"), false;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (!parse_tensor_info(p, g, i, &g->tensors[i])) return false;
        uint64_t dup = index_insert(g, g->tensor_index, g->tensor_mask, tensor_name, i);
        if (dup) {
            char shown[96];
            hearth_error_set(p->err, HEARTH_ERR_FORMAT,
                             "%s: duplicate tensor name '%s' (tensors %" PRIu64 " and %" PRIu64 ")", p->name,
                             show(g->tensors[i].name, shown, sizeof shown), dup - 1, i);
            return false;
        }
    }

    /* data section: the next multiple of the alignment. A file without
     * tensors may end before it (vocabulary files do). */
    uint64_t pad = (g->alignment - p->pos % g->alignment) % g->alignment;
    g->data_offset = p->pos + pad; /* pos <= size, pad < 2^32: no overflow */
    return check_tensor_data(p, g);
}

/* ---------------------------------------------------------------- open / close */

static char *copy_cstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

static hearth_gguf *open_bytes(const void *data, uint64_t size, const char *name, void *map, size_t map_len,
                               hearth_error *err) {
    hearth_gguf *g = calloc(1, sizeof *g);
    char *owned = copy_cstr(name);
    if (!g || !owned) {
        free(g);
        free(owned);
        if (map) munmap(map, map_len);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    g->name = owned;
    g->base = data;
    g->size = size;
    g->map = map;
    g->map_len = map_len;
    parser p = {.base = data, .size = size, .pos = 0, .name = name, .err = err};
    if (!data && size) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s: NULL buffer with non-zero size", name);
        hearth_gguf_close(g);
        return NULL;
    }
    if (!parse_all(&p, g)) {
        hearth_gguf_close(g);
        return NULL;
    }
    return g;
}

/* ---------------------------------------------------------------- split models */

static bool get_u16_or_u32(const hearth_gguf *g, const char *key, uint32_t *out);
static hearth_gguf *open_file(const char *path, hearth_error *err);

/* A split model (llama.cpp's gguf-split: NAME-00001-of-00003.gguf, ...; every
 * part has split.no, split.count, and its own tensors; the first has the
 * metadata): opening the first part opens the others and appends their
 * tensors, so callers see one model. Part k must say split.no k-1 and the
 * same split.count, and no tensor name may repeat. */
static bool open_split_parts(hearth_gguf *g, hearth_error *err) {
    uint32_t count = 0, no = 0;
    if (!get_u16_or_u32(g, "split.count", &count) || count <= 1) return true;
    if (!get_u16_or_u32(g, "split.no", &no)) no = 0;
    if (no != 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "%s: this is part %u of a %u-part model; open the first part (-00001-of-%05u.gguf)",
                         g->name, no + 1, count, count);
        return false;
    }
    const char *of = strstr(g->name, "-of-");
    size_t n = strlen(g->name);
    if (!of || of - g->name < 6 || n < 5 || strcmp(g->name + n - 5, ".gguf")) {
        hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: split.count is %u but the name is not NAME-00001-of-%05u.gguf, so the other parts "
            "cannot be found",
            g->name, count, count);
        return false;
    }
    if (count > 9999) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: split.count %u is not plausible", g->name, count);
        return false;
    }
    g->parts = calloc(count - 1, sizeof *g->parts);
    if (!g->parts) return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", g->name), false;
    uint64_t n_total = g->n_tensors;
    size_t prefix = (size_t)(of - g->name) - 5;
    for (uint32_t k = 1; k < count; k++) {
        char *path = malloc(n + 16);
        if (!path) return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", g->name), false;
        snprintf(path, n + 16, "%.*s%05u%s", (int)prefix, g->name, k + 1, of);
        hearth_gguf *part = open_file(path, err);
        if (!part) {
            char inner[HEARTH_ERROR_MSG_MAX];
            snprintf(inner, sizeof inner, "%s", err ? err->msg : "");
            hearth_error_set(err, HEARTH_ERR_IO, "%s: part %u of %u: %s", g->name, k + 1, count, inner);
            free(path);
            return false;
        }
        g->parts[g->n_parts++] = part;
        uint32_t pc = 0, pn = 0;
        if (!get_u16_or_u32(part, "split.count", &pc) || !get_u16_or_u32(part, "split.no", &pn) ||
            pc != count || pn != k) {
            hearth_error_set(
                err, HEARTH_ERR_FORMAT,
                "%s: says split.no %u of split.count %u, expected part %u of %u (a part of another "
                "model?)",
                path, pn, pc, k, count);
            free(path);
            return false;
        }
        free(path);
        g->total_size += part->size;
        n_total += part->n_tensors;
    }
    gguf_tensor *all = realloc(g->tensors, (size_t)(n_total ? n_total : 1) * sizeof *all);
    uint64_t mask = 0;
    uint64_t *index = index_alloc(n_total, &mask);
    if (!all || !index) {
        if (all) g->tensors = all;
        free(index);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", g->name), false;
    }
    g->tensors = all;
    for (uint32_t k = 0; k < g->n_parts; k++) {
        memcpy(g->tensors + g->n_tensors, g->parts[k]->tensors, (size_t)g->parts[k]->n_tensors * sizeof *all);
        g->n_tensors += g->parts[k]->n_tensors;
    }
    free(g->tensor_index);
    g->tensor_index = index;
    g->tensor_mask = mask;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t dup = index_insert(g, g->tensor_index, g->tensor_mask, tensor_name, i);
        if (dup) {
            char shown[96];
            hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: tensor '%s' is in two parts of the split model",
                             g->name, show(g->tensors[i].name, shown, sizeof shown));
            return false;
        }
    }
    return true;
}

static bool get_u16_or_u32(const hearth_gguf *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv) return false;
    if (kv->type == GGUF_UINT16 || kv->type == GGUF_INT16) {
        uint16_t v;
        memcpy(&v, kv->data, 2);
        *out = v;
        return true;
    }
    return hearth_gguf_get_u32(g, key, out);
}

uint32_t hearth_gguf_n_parts(const hearth_gguf *g) {
    return g ? g->n_parts + 1 : 0;
}
uint64_t hearth_gguf_total_size(const hearth_gguf *g) {
    return g ? (g->total_size ? g->total_size : g->size) : 0;
}

hearth_gguf *hearth_gguf_open_memory(const void *data, size_t size, const char *name, hearth_error *err) {
    return open_bytes(data, size, name ? name : "<memory>", NULL, 0, err);
}

/* Map and parse one file (no split parts). */
static hearth_gguf *open_file(const char *path, hearth_error *err) {
    if (!path) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_gguf_open: NULL path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > SIZE_MAX) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: file of %" PRIu64 " bytes is too large to map", path, size);
        close(fd);
        return NULL;
    }
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot map %" PRIu64 " bytes: %s", path, size,
                             strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    hearth_gguf *g = open_bytes(map, size, path, map, (size_t)size, err);
    if (g) g->total_size = size;
    return g;
}

hearth_gguf *hearth_gguf_open(const char *path, hearth_error *err) {
    hearth_gguf *g = open_file(path, err);
    if (g && !open_split_parts(g, err)) {
        hearth_gguf_close(g);
        return NULL;
    }
    return g;
}

void hearth_gguf_prefetch(hearth_gguf *g) {
    if (!g || !g->map || !g->map_len) return;
    (void)madvise(g->map, g->map_len, MADV_WILLNEED);
#ifdef MADV_POPULATE_READ
    (void)madvise(g->map, g->map_len, MADV_POPULATE_READ); /* Linux >= 5.14; EINVAL before */
#endif
}

void hearth_gguf_close(hearth_gguf *g) {
    if (!g) return;
    for (uint32_t i = 0; i < g->n_parts; i++)
        hearth_gguf_close(g->parts[i]);
    free(g->parts);
    if (g->map) munmap(g->map, g->map_len);
    free(g->kvs);
    free(g->tensors);
    free(g->strs);
    free(g->kv_index);
    free(g->tensor_index);
    free(g->name);
    free(g);
}

/* ---------------------------------------------------------------- accessors */

uint32_t hearth_gguf_version(const hearth_gguf *g) {
    return g ? g->version : 0;
}
const char *hearth_gguf_path(const hearth_gguf *g) {
    return g ? g->name : NULL;
}
uint64_t hearth_gguf_file_size(const hearth_gguf *g) {
    return g ? g->size : 0;
}
uint64_t hearth_gguf_header_bytes(const hearth_gguf *g) {
    return g ? g->data_offset : 0;
}
uint32_t hearth_gguf_alignment(const hearth_gguf *g) {
    return g ? g->alignment : 0;
}

uint64_t hearth_gguf_n_kv(const hearth_gguf *g) {
    return g ? g->n_kv : 0;
}

const gguf_kv *hearth_gguf_kv_at(const hearth_gguf *g, uint64_t i) {
    return g && i < g->n_kv ? &g->kvs[i] : NULL;
}

const gguf_kv *hearth_gguf_find(const hearth_gguf *g, const char *key) {
    if (!g) return NULL;
    const uint64_t *slot = index_find(g, g->kv_index, g->kv_mask, kv_name, key);
    return slot ? &g->kvs[*slot - 1] : NULL;
}

uint64_t hearth_gguf_n_tensors(const hearth_gguf *g) {
    return g ? g->n_tensors : 0;
}

const gguf_tensor *hearth_gguf_tensor_at(const hearth_gguf *g, uint64_t i) {
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gguf_tensor *hearth_gguf_find_tensor(const hearth_gguf *g, const char *name) {
    if (!g) return NULL;
    const uint64_t *slot = index_find(g, g->tensor_index, g->tensor_mask, tensor_name, name);
    return slot ? &g->tensors[*slot - 1] : NULL;
}

/* ---------------------------------------------------------------- typed getters */

/* Read one element of numeric type `t` at `p` (unaligned). Integers come back
 * in *u (unsigned types, bool) or *s (signed types); floats in *f. Returns
 * 'u', 's', 'f', or 0 for non-numeric types. */
static int read_number(gguf_value_type t, const void *p, uint64_t *u, int64_t *s, double *f) {
    switch (t) {
    case GGUF_UINT8: {
        uint8_t v;
        memcpy(&v, p, 1);
        *u = v;
        return 'u';
    }
    case GGUF_BOOL: {
        uint8_t v;
        memcpy(&v, p, 1);
        *u = v != 0;
        return 'u';
    }
    case GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *u = v;
        return 'u';
    }
    case GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *u = v;
        return 'u';
    }
    case GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *u = v;
        return 'u';
    }
    case GGUF_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        *s = v;
        return 's';
    }
    case GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        *s = v;
        return 's';
    }
    case GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        *s = v;
        return 's';
    }
    case GGUF_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        *s = v;
        return 's';
    }
    case GGUF_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        *f = v;
        return 'f';
    }
    case GGUF_FLOAT64: {
        double v;
        memcpy(&v, p, 8);
        *f = v;
        return 'f';
    }
    default: return 0;
    }
}

static bool is_int_type(gguf_value_type t) {
    return t != GGUF_BOOL && t != GGUF_FLOAT32 && t != GGUF_FLOAT64 && gguf_value_type_size(t) != 0;
}

/* Scalar integer kv as uint64 (fails for negatives and non-integers). */
static bool kv_scalar_uint(const gguf_kv *kv, uint64_t *out) {
    uint64_t u = 0;
    int64_t s = 0;
    double f;
    if (!is_int_type(kv->type)) return false;
    int k = read_number(kv->type, kv->data, &u, &s, &f);
    if (k == 's') {
        if (s < 0) return false;
        u = (uint64_t)s;
    }
    *out = u;
    return true;
}

bool hearth_gguf_get_u64(const hearth_gguf *g, const char *key, uint64_t *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    uint64_t v;
    if (!kv || !kv_scalar_uint(kv, &v)) return false;
    if (out) *out = v;
    return true;
}

bool hearth_gguf_get_u32(const hearth_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    if (!hearth_gguf_get_u64(g, key, &v) || v > UINT32_MAX) return false;
    if (out) *out = (uint32_t)v;
    return true;
}

bool hearth_gguf_get_i64(const hearth_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv || !is_int_type(kv->type)) return false;
    uint64_t u = 0;
    int64_t s = 0;
    double f;
    if (read_number(kv->type, kv->data, &u, &s, &f) == 'u') {
        if (u > (uint64_t)INT64_MAX) return false;
        s = (int64_t)u;
    }
    if (out) *out = s;
    return true;
}

bool hearth_gguf_get_f32(const hearth_gguf *g, const char *key, float *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv || kv->type == GGUF_BOOL || gguf_value_type_size(kv->type) == 0) return false;
    uint64_t u = 0;
    int64_t s = 0;
    double f = 0;
    int k = read_number(kv->type, kv->data, &u, &s, &f);
    if (out) *out = k == 'f' ? (float)f : k == 's' ? (float)s : (float)u;
    return true;
}

bool hearth_gguf_get_bool(const hearth_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv || kv->type != GGUF_BOOL) return false;
    if (out) *out = *(const uint8_t *)kv->data != 0;
    return true;
}

bool hearth_gguf_get_str(const hearth_gguf *g, const char *key, hearth_str *out) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv || kv->type != GGUF_STRING) return false;
    if (out) *out = kv->str;
    return true;
}

/* elem_type must match the array's element type exactly; GGUF_TYPE_COUNT
 * accepts an array of any element type. */
const gguf_kv *hearth_gguf_get_arr(const hearth_gguf *g, const char *key, gguf_value_type elem_type) {
    const gguf_kv *kv = hearth_gguf_find(g, key);
    if (!kv || kv->type != GGUF_ARRAY) return NULL;
    if (elem_type != GGUF_TYPE_COUNT && kv->arr_type != elem_type) return NULL;
    return kv;
}

/* Element i of a numeric (or bool) array; 0 when i is out of range or the
 * array is not numeric. */
double gguf_kv_arr_f64(const gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->arr_n) return 0.0;
    size_t sz = gguf_value_type_size(kv->arr_type);
    if (sz == 0) return 0.0;
    uint64_t u = 0;
    int64_t s = 0;
    double f = 0;
    int k = read_number(kv->arr_type, (const uint8_t *)kv->data + i * sz, &u, &s, &f);
    return k == 'f' ? f : k == 's' ? (double)s : (double)u;
}

/* As above, as int64: uint64 values above INT64_MAX saturate; floats are
 * truncated toward zero and saturate (NaN gives 0). */
int64_t gguf_kv_arr_i64(const gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->arr_n) return 0;
    size_t sz = gguf_value_type_size(kv->arr_type);
    if (sz == 0) return 0;
    uint64_t u = 0;
    int64_t s = 0;
    double f = 0;
    int k = read_number(kv->arr_type, (const uint8_t *)kv->data + i * sz, &u, &s, &f);
    if (k == 's') return s;
    if (k == 'u') return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    if (f != f) return 0;
    if (f >= 9223372036854775807.0) return INT64_MAX;
    if (f <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)f;
}
