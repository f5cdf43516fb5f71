/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (runtime/format/gguf.c).
 *
 * Feeds arbitrary bytes to hearth_gguf_open_memory. When the open succeeds,
 * walks everything gguf.h promises is safe to read without checks: every kv
 * (scalar value, string, each string-array element, each numeric element),
 * every tensor's first and last data byte, and both hash lookups. ASan turns
 * any broken promise into a crash; the explicit checks below turn a broken
 * invariant (wrong lookup, bad shape) into one too.
 * Ownership: the input buffer belongs to libFuzzer; the handle is closed here.
 */
#include "runtime/format/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
    if (n == 0) return;
    const volatile uint8_t *b = p;
    sink ^= b[0];
    sink ^= b[n - 1];
}

static void check(int cond) {
    if (!cond) abort();
}

/* True when s holds no NUL byte, so a C-string lookup must find exactly it. */
static int plain(hearth_str s) {
    return s.len < 255 && (s.len == 0 || !memchr(s.ptr, 0, s.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hearth_error err;
    hearth_gguf *g = hearth_gguf_open_memory(data, size, "fuzz.gguf", &err);
    if (!g) {
        check(err.code != HEARTH_OK && strncmp(err.msg, "fuzz.gguf: ", 11) == 0);
        return 0;
    }
    check(hearth_gguf_version(g) == 2 || hearth_gguf_version(g) == 3);
    uint32_t align = hearth_gguf_alignment(g);
    check(align != 0 && (align & (align - 1)) == 0);

    char name[256];
    for (uint64_t i = 0; i < hearth_gguf_n_kv(g); i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(g, i);
        check(kv != NULL);
        touch(kv->key.ptr, kv->key.len);
        hearth_str_copy(kv->key, name, sizeof name);
        if (plain(kv->key)) check(hearth_gguf_find(g, name) == kv);
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        float f;
        bool b;
        hearth_str s;
        (void)hearth_gguf_get_u32(g, name, &u32);
        (void)hearth_gguf_get_u64(g, name, &u64);
        (void)hearth_gguf_get_i64(g, name, &i64);
        (void)hearth_gguf_get_f32(g, name, &f);
        (void)hearth_gguf_get_bool(g, name, &b);
        if (hearth_gguf_get_str(g, name, &s)) touch(s.ptr, s.len);
        switch (kv->type) {
        case GGUF_STRING: touch(kv->str.ptr, kv->str.len); break;
        case GGUF_ARRAY:
            check(kv->arr_type != GGUF_ARRAY && kv->arr_type < GGUF_TYPE_COUNT);
            if (kv->arr_type == GGUF_STRING) {
                check(kv->strs != NULL);
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    touch(kv->strs[j].ptr, kv->strs[j].len);
            } else {
                check(kv->strs == NULL);
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    sink ^= (uint8_t)gguf_kv_arr_i64(kv, j);
                    sink ^= (uint8_t)(gguf_kv_arr_f64(kv, j) != 0.0);
                }
            }
            break;
        default: touch(kv->data, 1); break;
        }
    }
    check(hearth_gguf_kv_at(g, hearth_gguf_n_kv(g)) == NULL);

    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        check(t != NULL && t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        check(t->nbytes > 0 && t->offset % align == 0);
        check(hearth_dtype_info(t->type)->known);
        touch(t->name.ptr, t->name.len);
        touch(t->data, t->nbytes);
        if (plain(t->name))
            check(hearth_gguf_find_tensor(g, hearth_str_copy(t->name, name, sizeof name)) == t);
    }
    check(hearth_gguf_tensor_at(g, hearth_gguf_n_tensors(g)) == NULL);
    hearth_gguf_close(g);
    return 0;
}
