/*
 * gguf_writer.c - see gguf_writer.h.
 *
 * Layout written (GGUF v3, little-endian, as llama.cpp's gguf_write_to_file):
 *   "GGUF" u32 version=3, u64 n_tensors, u64 n_kv
 *   n_kv x   { string key, u32 type, value }       value: scalar | string | u32 elem, u64 n, elems
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   zero padding to the alignment
 *   tensor data, each tensor padded with zeros to the alignment
 * A string is u64 length + bytes (no NUL).
 *
 * Each key/value is serialised into its own byte blob when it is set, so the
 * writer holds exactly the bytes it will emit; begin() just concatenates them.
 * Owned by the runtime; the only users are app/commands/cmd_mkmodel.c and the quantizer.
 */
#include "gguf_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/strbuf.h"

#define GGUF_WRITER_DEFAULT_ALIGNMENT 32u
#define GGUF_KEY_MAX 65535u

/* ------------------------------------------------------------ little-endian fields */

/* GGUF integers are little-endian, as the host is (gguf.h's reader assumes
 * the same); a strbuf that runs out of memory sets oom and drops the rest. */
static void le_u32(strbuf *b, uint32_t v) {
    strbuf_add(b, &v, sizeof v);
}
static void le_u64(strbuf *b, uint64_t v) {
    strbuf_add(b, &v, sizeof v);
}
static void le_str(strbuf *b, const char *s, size_t len) {
    le_u64(b, (uint64_t)len);
    strbuf_add(b, s, len);
}

/* ------------------------------------------------------------ state */

typedef struct wkv {
    char *key;
    gguf_value_type type;
    strbuf blob; /* key string + type + value, exactly as written */
    /* integer value of a scalar integer key (for general.alignment) */
    bool is_int;
    uint64_t ival;
} wkv;

typedef struct wtensor {
    char *name;
    hearth_dtype type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* set by layout() */
} wtensor;

struct hearth_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    /* output */
    FILE *f;
    char name[200];
    bool begun, failed;
    hearth_status fail_code;
    char fail_msg[HEARTH_ERROR_MSG_MAX];
    uint32_t alignment;
    uint64_t header_bytes; /* everything before the data section, padded */
    uint64_t data_bytes;   /* data section, padded */
    uint64_t cur;          /* tensor being written */
    uint64_t cur_written;  /* bytes of it written so far */
};

hearth_gguf_writer *hearth_gguf_writer_create(hearth_error *err) {
    hearth_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory");
    return w;
}

void hearth_gguf_writer_free(hearth_gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        strbuf_free(&w->kvs[i].blob);
    }
    free(w->kvs);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

static hearth_status check_open(hearth_gguf_writer *w, const char *what, const char *name,
                                hearth_error *err) {
    if (w->begun)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: cannot add %s '%s' after the header was written", what, name);
    return HEARTH_OK;
}

static int64_t find_kv(const hearth_gguf_writer *w, const char *key) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) return (int64_t)i;
    return -1;
}

/* Start a kv blob for `key` of `type`; the caller appends the value and
 * commits with put_kv. */
static void kv_begin(strbuf *b, const char *key, gguf_value_type type) {
    le_str(b, key, strlen(key));
    le_u32(b, (uint32_t)type);
}

/* Insert or replace `key` with the finished blob (takes ownership of it). */
static hearth_status put_kv(hearth_gguf_writer *w, const char *key, gguf_value_type type, strbuf *blob,
                            bool is_int, uint64_t ival, hearth_error *err) {
    if (blob->oom) {
        strbuf_free(blob);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory storing key %s", key);
    }
    int64_t at = find_kv(w, key);
    if (at >= 0) {
        wkv *kv = &w->kvs[at];
        strbuf_free(&kv->blob);
        kv->blob = *blob;
        kv->type = type;
        kv->is_int = is_int;
        kv->ival = ival;
        return HEARTH_OK;
    }
    if (!hearth_grow((void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs)) {
        strbuf_free(blob);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory storing key %s", key);
    }
    char *k = strdup(key);
    if (!k) {
        strbuf_free(blob);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory storing key %s", key);
    }
    w->kvs[w->n_kv++] = (wkv){k, type, *blob, is_int, ival};
    return HEARTH_OK;
}

static hearth_status check_key(hearth_gguf_writer *w, const char *key, hearth_error *err) {
    if (!key || !*key) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: empty metadata key");
    if (strlen(key) > GGUF_KEY_MAX)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: metadata key of %zu bytes is too long",
                                strlen(key));
    return check_open(w, "key", key, err);
}

static hearth_status set_scalar(hearth_gguf_writer *w, const char *key, gguf_value_type type, const void *v,
                                hearth_error *err) {
    hearth_status st = check_key(w, key, err);
    if (st) return st;
    strbuf b = {0};
    kv_begin(&b, key, type);
    size_t sz = gguf_value_type_size(type);
    strbuf_add(&b, v, sz);
    bool is_int = type != GGUF_FLOAT32 && type != GGUF_FLOAT64 && type != GGUF_BOOL;
    uint64_t ival = 0;
    if (is_int) {
        switch (type) {
        case GGUF_UINT8: ival = *(const uint8_t *)v; break;
        case GGUF_INT8: ival = (uint64_t)(int64_t) * (const int8_t *)v; break;
        case GGUF_UINT16: ival = *(const uint16_t *)v; break;
        case GGUF_INT16: ival = (uint64_t)(int64_t) * (const int16_t *)v; break;
        case GGUF_UINT32: ival = *(const uint32_t *)v; break;
        case GGUF_INT32: ival = (uint64_t)(int64_t) * (const int32_t *)v; break;
        case GGUF_UINT64: ival = *(const uint64_t *)v; break;
        case GGUF_INT64: ival = (uint64_t) * (const int64_t *)v; break;
        default: break;
        }
    }
    return put_kv(w, key, type, &b, is_int, ival, err);
}

hearth_status hearth_gguf_writer_set_u8(hearth_gguf_writer *w, const char *key, uint8_t v,
                                        hearth_error *err) {
    return set_scalar(w, key, GGUF_UINT8, &v, err);
}
hearth_status hearth_gguf_writer_set_i8(hearth_gguf_writer *w, const char *key, int8_t v, hearth_error *err) {
    return set_scalar(w, key, GGUF_INT8, &v, err);
}
hearth_status hearth_gguf_writer_set_u16(hearth_gguf_writer *w, const char *key, uint16_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_UINT16, &v, err);
}
hearth_status hearth_gguf_writer_set_i16(hearth_gguf_writer *w, const char *key, int16_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_INT16, &v, err);
}
hearth_status hearth_gguf_writer_set_u32(hearth_gguf_writer *w, const char *key, uint32_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_UINT32, &v, err);
}
hearth_status hearth_gguf_writer_set_i32(hearth_gguf_writer *w, const char *key, int32_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_INT32, &v, err);
}
hearth_status hearth_gguf_writer_set_u64(hearth_gguf_writer *w, const char *key, uint64_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_UINT64, &v, err);
}
hearth_status hearth_gguf_writer_set_i64(hearth_gguf_writer *w, const char *key, int64_t v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_INT64, &v, err);
}
hearth_status hearth_gguf_writer_set_f32(hearth_gguf_writer *w, const char *key, float v, hearth_error *err) {
    return set_scalar(w, key, GGUF_FLOAT32, &v, err);
}
hearth_status hearth_gguf_writer_set_f64(hearth_gguf_writer *w, const char *key, double v,
                                         hearth_error *err) {
    return set_scalar(w, key, GGUF_FLOAT64, &v, err);
}
hearth_status hearth_gguf_writer_set_bool(hearth_gguf_writer *w, const char *key, bool v, hearth_error *err) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_BOOL, &b, err);
}

hearth_status hearth_gguf_writer_set_strn(hearth_gguf_writer *w, const char *key, const char *v, size_t len,
                                          hearth_error *err) {
    hearth_status st = check_key(w, key, err);
    if (st) return st;
    strbuf b = {0};
    kv_begin(&b, key, GGUF_STRING);
    le_str(&b, v ? v : "", v ? len : 0);
    return put_kv(w, key, GGUF_STRING, &b, false, 0, err);
}

hearth_status hearth_gguf_writer_set_str(hearth_gguf_writer *w, const char *key, const char *v,
                                         hearth_error *err) {
    return hearth_gguf_writer_set_strn(w, key, v, v ? strlen(v) : 0, err);
}

hearth_status hearth_gguf_writer_set_arr(hearth_gguf_writer *w, const char *key, gguf_value_type elem_type,
                                         const void *data, uint64_t n, hearth_error *err) {
    hearth_status st = check_key(w, key, err);
    if (st) return st;
    size_t sz = gguf_value_type_size(elem_type);
    if (!sz)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: key %s: array element type %s is not numeric (use set_str_arr)",
                                key, gguf_value_type_name(elem_type));
    if (n && !data)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: key %s: array data is NULL", key);
    if (n > SIZE_MAX / sz)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: key %s: array of %llu elements is too large", key,
                                (unsigned long long)n);
    strbuf b = {0};
    kv_begin(&b, key, GGUF_ARRAY);
    le_u32(&b, (uint32_t)elem_type);
    le_u64(&b, n);
    strbuf_add(&b, data, (size_t)n * sz);
    return put_kv(w, key, GGUF_ARRAY, &b, false, 0, err);
}

hearth_status hearth_gguf_writer_set_str_arr(hearth_gguf_writer *w, const char *key, const char *const *strs,
                                             const size_t *lens, uint64_t n, hearth_error *err) {
    hearth_status st = check_key(w, key, err);
    if (st) return st;
    if (n && !strs)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: key %s: array data is NULL", key);
    strbuf b = {0};
    kv_begin(&b, key, GGUF_ARRAY);
    le_u32(&b, (uint32_t)GGUF_STRING);
    le_u64(&b, n);
    for (uint64_t i = 0; i < n && !b.oom; i++) {
        const char *s = strs[i] ? strs[i] : "";
        le_str(&b, s, lens ? lens[i] : strlen(s));
    }
    return put_kv(w, key, GGUF_ARRAY, &b, false, 0, err);
}

hearth_status hearth_gguf_writer_copy_kv(hearth_gguf_writer *w, const gguf_kv *kv, hearth_error *err) {
    char key[GGUF_KEY_MAX + 1];
    if (!kv || kv->key.len == 0 || kv->key.len > GGUF_KEY_MAX)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: cannot copy a key without a valid name");
    hearth_str_copy(kv->key, key, sizeof key);
    hearth_status st = check_key(w, key, err);
    if (st) return st;
    if (kv->type == GGUF_STRING)
        return hearth_gguf_writer_set_strn(w, key, kv->str.ptr, (size_t)kv->str.len, err);
    if (kv->type != GGUF_ARRAY) {
        size_t sz = gguf_value_type_size(kv->type);
        if (!sz)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                    "gguf writer: key %s has type %d, which cannot be copied", key,
                                    (int)kv->type);
        uint64_t v = 0;
        memcpy(&v, kv->data, sz);
        return set_scalar(w, key, kv->type, &v, err);
    }
    if (kv->arr_type == GGUF_STRING) {
        strbuf b = {0};
        kv_begin(&b, key, GGUF_ARRAY);
        le_u32(&b, (uint32_t)GGUF_STRING);
        le_u64(&b, kv->arr_n);
        for (uint64_t i = 0; i < kv->arr_n && !b.oom; i++)
            le_str(&b, kv->strs[i].ptr, (size_t)kv->strs[i].len);
        return put_kv(w, key, GGUF_ARRAY, &b, false, 0, err);
    }
    if (!gguf_value_type_size(kv->arr_type))
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "gguf writer: key %s is an array of %s, which cannot be copied", key,
                                gguf_value_type_name(kv->arr_type));
    return hearth_gguf_writer_set_arr(w, key, kv->arr_type, kv->data, kv->arr_n, err);
}

bool hearth_gguf_writer_remove(hearth_gguf_writer *w, const char *key) {
    int64_t at = find_kv(w, key);
    if (at < 0 || w->begun) return false;
    free(w->kvs[at].key);
    strbuf_free(&w->kvs[at].blob);
    memmove(&w->kvs[at], &w->kvs[at + 1], (size_t)(w->n_kv - (uint64_t)at - 1) * sizeof *w->kvs);
    w->n_kv--;
    return true;
}

bool hearth_gguf_writer_has(const hearth_gguf_writer *w, const char *key) {
    return find_kv(w, key) >= 0;
}
uint64_t hearth_gguf_writer_n_kv(const hearth_gguf_writer *w) {
    return w->n_kv;
}

/* ------------------------------------------------------------ tensors */

hearth_status hearth_gguf_writer_add_tensor(hearth_gguf_writer *w, const char *name, hearth_dtype type,
                                            uint32_t n_dims, const uint64_t *ne, hearth_error *err) {
    if (!name || !*name) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: empty tensor name");
    hearth_status st = check_open(w, "tensor", name, err);
    if (st) return st;
    if (strlen(name) > GGUF_KEY_MAX)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: tensor name of %zu bytes is too long",
                                strlen(name));
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: tensor %s added twice", name);
    const hearth_dtype_traits *tr = hearth_dtype_info(type);
    if ((int)type < 0 || type >= HEARTH_DTYPE_COUNT || !tr->known)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "gguf writer: tensor %s: type %d is not one of %s", name, (int)type,
                                hearth_dtype_supported_list());
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: tensor %s: %u dimensions (expected 1..%d)", name, n_dims,
                                GGUF_MAX_DIMS);
    uint64_t n_rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX)
            return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: tensor %s: dimension %u is %llu",
                                    name, d, (unsigned long long)ne[d]);
        if (d > 0) {
            if (n_rows > UINT64_MAX / ne[d])
                return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: tensor %s is too large", name);
            n_rows *= ne[d];
        }
    }
    if (ne[0] % (uint64_t)tr->block_size)
        return hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "gguf writer: tensor %s: row length %llu is not a multiple of %s's block size %lld", name,
            (unsigned long long)ne[0], tr->name, (long long)tr->block_size);
    uint64_t row = (uint64_t)hearth_dtype_row_size(type, (int64_t)ne[0]);
    if (row == 0 || n_rows > UINT64_MAX / 2 / row)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: tensor %s is too large", name);
    if (!hearth_grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory adding tensor %s", name);
    wtensor t = {0};
    t.name = strdup(name);
    if (!t.name)
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "gguf writer: out of memory adding tensor %s", name);
    t.type = type;
    t.n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    t.nbytes = row * n_rows;
    w->tensors[w->n_tensors++] = t;
    return HEARTH_OK;
}

uint64_t hearth_gguf_writer_n_tensors(const hearth_gguf_writer *w) {
    return w->n_tensors;
}

uint64_t hearth_gguf_writer_tensor_nbytes(const hearth_gguf_writer *w, uint64_t i) {
    return i < w->n_tensors ? w->tensors[i].nbytes : 0;
}

/* ------------------------------------------------------------ layout */

static uint64_t align_up(uint64_t x, uint32_t a) {
    return (x + a - 1) / a * a;
}

/* The alignment general.alignment asks for (validated), else the default. */
static hearth_status get_alignment(const hearth_gguf_writer *w, uint32_t *out, hearth_error *err) {
    *out = GGUF_WRITER_DEFAULT_ALIGNMENT;
    int64_t at = find_kv(w, "general.alignment");
    if (at < 0) return HEARTH_OK;
    const wkv *kv = &w->kvs[at];
    if (!kv->is_int || kv->ival == 0 || kv->ival > (1u << 30) || (kv->ival & (kv->ival - 1)))
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "gguf writer: general.alignment must be an integer power of two (uint32)");
    *out = (uint32_t)kv->ival;
    return HEARTH_OK;
}

/* Assign tensor offsets and compute header and data sizes. */
static void layout(hearth_gguf_writer *w, uint32_t alignment, uint64_t *header_bytes, uint64_t *data_bytes) {
    uint64_t h = 4 + 4 + 8 + 8;
    for (uint64_t i = 0; i < w->n_kv; i++)
        h += w->kvs[i].blob.n;
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        h += 8 + strlen(t->name) + 4 + 8ull * t->n_dims + 4 + 8;
        t->offset = off;
        off = align_up(off + t->nbytes, alignment);
    }
    *header_bytes = align_up(h, alignment);
    *data_bytes = off;
}

uint64_t hearth_gguf_writer_file_size(const hearth_gguf_writer *w) {
    if (w->begun) return w->header_bytes + w->data_bytes;
    uint32_t a;
    if (get_alignment(w, &a, NULL)) a = GGUF_WRITER_DEFAULT_ALIGNMENT;
    uint64_t h, d;
    layout((hearth_gguf_writer *)w, a, &h, &d);
    return h + d;
}

/* ------------------------------------------------------------ output */

static hearth_status fail(hearth_gguf_writer *w, hearth_status code, hearth_error *err, const char *fmt,
                          const char *detail) {
    w->failed = true;
    w->fail_code = code;
    snprintf(w->fail_msg, sizeof w->fail_msg, fmt, w->name, detail);
    return hearth_error_set(err, code, "%s", w->fail_msg);
}

static hearth_status put(hearth_gguf_writer *w, const void *p, size_t n, hearth_error *err) {
    if (n && fwrite(p, 1, n, w->f) != n) {
        int e = errno;
        return fail(w, HEARTH_ERR_IO, err, "%s: write failed: %s", e ? strerror(e) : "I/O error");
    }
    return HEARTH_OK;
}

static hearth_status put_zeros(hearth_gguf_writer *w, uint64_t n, hearth_error *err) {
    static const uint8_t zeros[4096];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        hearth_status st = put(w, zeros, k, err);
        if (st) return st;
        n -= k;
    }
    return HEARTH_OK;
}

static hearth_status sticky(hearth_gguf_writer *w, hearth_error *err) {
    return hearth_error_set(err, w->fail_code, "%s", w->fail_msg);
}

hearth_status hearth_gguf_writer_begin(hearth_gguf_writer *w, FILE *f, const char *name, hearth_error *err) {
    if (w->begun) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: begin called twice");
    if (!f) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: no output file");
    hearth_status st = get_alignment(w, &w->alignment, err);
    if (st) return st;
    snprintf(w->name, sizeof w->name, "%s", name ? name : "gguf");
    w->f = f;
    w->begun = true;
    layout(w, w->alignment, &w->header_bytes, &w->data_bytes);

    strbuf b = {0};
    strbuf_add(&b, "GGUF", 4);
    le_u32(&b, 3);
    le_u64(&b, w->n_tensors);
    le_u64(&b, w->n_kv);
    for (uint64_t i = 0; i < w->n_kv; i++)
        strbuf_add(&b, w->kvs[i].blob.p, w->kvs[i].blob.n);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        le_str(&b, t->name, strlen(t->name));
        le_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            le_u64(&b, t->ne[d]);
        le_u32(&b, (uint32_t)t->type);
        le_u64(&b, t->offset);
    }
    if (b.oom) {
        strbuf_free(&b);
        return fail(w, HEARTH_ERR_NOMEM, err, "%s: %s", "out of memory building the header");
    }
    st = put(w, b.p, b.n, err);
    if (!st) st = put_zeros(w, w->header_bytes - b.n, err);
    strbuf_free(&b);
    w->cur = 0;
    w->cur_written = 0;
    return st;
}

hearth_status hearth_gguf_writer_write(hearth_gguf_writer *w, const void *data, size_t n, hearth_error *err) {
    if (!w->begun) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: write before begin");
    if (w->failed) return sticky(w, err);
    const uint8_t *p = data;
    while (n) {
        if (w->cur >= w->n_tensors)
            return fail(w, HEARTH_ERR_INVALID, err, "%s: %s", "more tensor data than the tensors hold");
        wtensor *t = &w->tensors[w->cur];
        uint64_t left = t->nbytes - w->cur_written;
        size_t k = n < left ? n : (size_t)left;
        hearth_status st = put(w, p, k, err);
        if (st) return st;
        p += k;
        n -= k;
        w->cur_written += k;
        if (w->cur_written == t->nbytes) {
            uint64_t pad = align_up(t->offset + t->nbytes, w->alignment) - (t->offset + t->nbytes);
            st = put_zeros(w, pad, err);
            if (st) return st;
            w->cur++;
            w->cur_written = 0;
        }
    }
    return HEARTH_OK;
}

uint64_t hearth_gguf_writer_current_tensor(const hearth_gguf_writer *w) {
    return w->cur;
}

hearth_status hearth_gguf_writer_finish(hearth_gguf_writer *w, hearth_error *err) {
    if (!w->begun) return hearth_error_set(err, HEARTH_ERR_INVALID, "gguf writer: finish before begin");
    if (w->failed) return sticky(w, err);
    if (w->cur < w->n_tensors) {
        char detail[256];
        snprintf(detail, sizeof detail, "tensor %s got %llu of its %llu bytes", w->tensors[w->cur].name,
                 (unsigned long long)w->cur_written, (unsigned long long)w->tensors[w->cur].nbytes);
        return fail(w, HEARTH_ERR_INVALID, err, "%s: incomplete tensor data: %s", detail);
    }
    if (fflush(w->f) != 0) {
        int e = errno;
        return fail(w, HEARTH_ERR_IO, err, "%s: write failed: %s", e ? strerror(e) : "I/O error");
    }
    return HEARTH_OK;
}
