/*
 * test_gguf_writer.c - the GGUF writer (runtime/format/gguf_writer.h) checked
 * by reading what it writes back with the reader (runtime/format/gguf.h).
 *
 * (a) A file with every value type (u8..i64, f32/f64, bool, strings with and
 *     without NULs, numeric and string arrays) and tensors of several dtypes,
 *     dimensions and sizes, written in pieces that span tensors: every key,
 *     type, value, tensor shape, dtype, offset alignment, padding byte and
 *     data byte is compared with what the test gave the writer.
 * (b) copy_kv reproduces every key of a file read back.
 * (c) Each refusal gives a status and a message naming what is wrong:
 *     duplicate tensor names, bad alignments, bad shapes and types, calls in
 *     the wrong order, too much or too little tensor data, unwritable output.
 * Ownership: tests only; files live in a temporary directory removed at exit.
 */
#include "runtime/format/gguf_writer.h"

#include <stdint.h>
#include <unistd.h>

#include "core/dtype.h"
#include "runtime/format/gguf.h"
#include "test.h"

static char g_dir[256];

static const char *tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* ---------------------------------------------------------------- expected content */

/* The tensors of the main file: name, dtype, shape, and the bytes one
 * element block takes (written here, not taken from dtype.h, so a wrong
 * size table in either would show). */
typedef struct want_tensor {
    const char *name;
    hearth_dtype type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t block, block_bytes;
} want_tensor;

static const want_tensor k_tensors[] = {
    {"a.f32", HEARTH_F32, 2, {8, 3, 1, 1}, 1, 4},      /* 96 bytes */
    {"b.f16", HEARTH_F16, 1, {5, 1, 1, 1}, 1, 2},      /* 10 bytes: padded */
    {"c.q8_0", HEARTH_Q8_0, 2, {64, 3, 1, 1}, 32, 34}, /* 204 bytes */
    {"d.q4_0", HEARTH_Q4_0, 4, {32, 1, 2, 3}, 32, 18}, /* 108 bytes, 4 dims */
    {"e.bf16", HEARTH_BF16, 3, {3, 1, 1, 1}, 1, 2},    /* 6 bytes, a dim of 1 */
};
enum { N_TENSORS = sizeof k_tensors / sizeof k_tensors[0] };

static uint64_t want_nbytes(const want_tensor *t) {
    uint64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        rows *= t->ne[d];
    return t->ne[0] / t->block * t->block_bytes * rows;
}

/* Byte i of tensor t's data: differs between tensors and positions. */
static uint8_t data_byte(int t, uint64_t i) {
    return (uint8_t)(i * 7 + (uint64_t)t * 31 + 1);
}

static const int32_t k_i32s[] = {-5, 0, 7, INT32_MAX, INT32_MIN};
static const uint8_t k_u8s[] = {0, 1, 255};
static const float k_f32s[] = {0.5f, -2.25f, 1e30f};
static const double k_f64s[] = {1.0 / 3.0, -0.0};
static const uint8_t k_bools[] = {1, 0, 1};
static const char *const k_strs[] = {"alpha", "", "with\0nul", "z"};
static const size_t k_str_lens[] = {5, 0, 8, 1};
static const char *const k_cstrs[] = {"one", "two", "three"};

enum { N_KEYS = 24 }; /* what set_all_keys leaves */

/* Set every key the main file holds, in order; "t.replaced" is set twice and
 * keeps its first position with the second value. */
static void set_all_keys(hearth_gguf_writer *w, uint32_t alignment) {
    hearth_error err = {0};
    REQUIRE(hearth_gguf_writer_set_str(w, "general.architecture", "llama", &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u32(w, "general.alignment", alignment, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u8(w, "t.u8", 200, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_i8(w, "t.i8", -100, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u16(w, "t.u16", 60000, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_i16(w, "t.i16", -30000, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u32(w, "t.replaced", 1, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u32(w, "t.u32", 4000000000u, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_i32(w, "t.i32", -2000000000, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_u64(w, "t.u64", (1ull << 40) + 7, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_i64(w, "t.i64", -(1ll << 40) - 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_f32(w, "t.f32", 3.25f, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_f64(w, "t.f64", -1e-300, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_bool(w, "t.true", true, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_bool(w, "t.false", false, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_strn(w, "t.strn", "a\0b", 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_arr(w, "t.arr_i32", GGUF_INT32, k_i32s, 5, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_arr(w, "t.arr_u8", GGUF_UINT8, k_u8s, 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_arr(w, "t.arr_f32", GGUF_FLOAT32, k_f32s, 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_arr(w, "t.arr_f64", GGUF_FLOAT64, k_f64s, 2, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_arr(w, "t.arr_bool", GGUF_BOOL, k_bools, 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_str_arr(w, "t.arr_str", k_strs, k_str_lens, 4, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_str_arr(w, "t.arr_cstr", k_cstrs, NULL, 3, &err) == HEARTH_OK);
    REQUIRE(hearth_gguf_writer_set_str(w, "t.empty", "", &err) == HEARTH_OK);
    /* replacing keeps the key's place and the count */
    uint64_t n_before = hearth_gguf_writer_n_kv(w);
    REQUIRE(hearth_gguf_writer_set_str(w, "t.replaced", "second", &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_n_kv(w) == n_before);
    /* a key set and removed again is not written */
    REQUIRE(hearth_gguf_writer_set_u8(w, "t.removed", 9, &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_has(w, "t.removed"));
    CHECK(hearth_gguf_writer_remove(w, "t.removed"));
    CHECK(!hearth_gguf_writer_has(w, "t.removed"));
    CHECK(!hearth_gguf_writer_remove(w, "t.removed"));
    CHECK(hearth_gguf_writer_n_kv(w) == N_KEYS);
}

static void add_all_tensors(hearth_gguf_writer *w) {
    hearth_error err = {0};
    for (int i = 0; i < N_TENSORS; i++) {
        const want_tensor *t = &k_tensors[i];
        hearth_status st = hearth_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &err);
        CHECKF(st == HEARTH_OK, "add_tensor %s: %s", t->name, err.msg);
        CHECK(hearth_gguf_writer_tensor_nbytes(w, (uint64_t)i) == want_nbytes(t));
    }
    CHECK(hearth_gguf_writer_n_tensors(w) == N_TENSORS);
    CHECK(hearth_gguf_writer_tensor_nbytes(w, N_TENSORS) == 0);
}

/* Stream every tensor's bytes in pieces of `piece` bytes (spanning tensors). */
static void write_all_data(hearth_gguf_writer *w, size_t piece) {
    uint64_t total = 0;
    for (int i = 0; i < N_TENSORS; i++)
        total += want_nbytes(&k_tensors[i]);
    uint8_t *all = malloc(total);
    REQUIRE(all != NULL);
    uint64_t at = 0;
    for (int i = 0; i < N_TENSORS; i++)
        for (uint64_t j = 0; j < want_nbytes(&k_tensors[i]); j++)
            all[at++] = data_byte(i, j);
    hearth_error err = {0};
    for (uint64_t off = 0; off < total; off += piece) {
        size_t n = total - off < piece ? (size_t)(total - off) : piece;
        REQUIRE(hearth_gguf_writer_write(w, all + off, n, &err) == HEARTH_OK);
    }
    CHECK(hearth_gguf_writer_current_tensor(w) == N_TENSORS);
    free(all);
}

/* Write the main file to path with the given alignment (0: leave
 * general.alignment unset, so the default 32 applies). */
static uint64_t write_main_file(const char *path, uint32_t alignment, size_t piece) {
    hearth_error err = {0};
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    set_all_keys(w, alignment ? alignment : 32);
    if (!alignment) CHECK(hearth_gguf_writer_remove(w, "general.alignment"));
    add_all_tensors(w);
    uint64_t predicted = hearth_gguf_writer_file_size(w);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    hearth_status st = hearth_gguf_writer_begin(w, f, path, &err);
    CHECKF(st == HEARTH_OK, "begin: %s", err.msg);
    CHECK(hearth_gguf_writer_file_size(w) == predicted);
    write_all_data(w, piece);
    st = hearth_gguf_writer_finish(w, &err);
    CHECKF(st == HEARTH_OK, "finish: %s", err.msg);
    REQUIRE(fclose(f) == 0);
    hearth_gguf_writer_free(w);
    return predicted;
}

/* ---------------------------------------------------------------- reading back */

static const gguf_kv *kv_named(const hearth_gguf *g, uint64_t i, const char *key, gguf_value_type type) {
    const gguf_kv *kv = hearth_gguf_kv_at(g, i);
    REQUIRE(kv != NULL);
    CHECKF(hearth_str_eq(kv->key, key), "kv %llu is not %s", (unsigned long long)i, key);
    CHECKF(kv->type == type, "%s: type %s, want %s", key, gguf_value_type_name(kv->type),
           gguf_value_type_name(type));
    return kv;
}

#define CHECK_SCALAR(g, i, key, type, ctype, want)                                                           \
    do {                                                                                                     \
        const gguf_kv *kv_ = kv_named(g, i, key, type);                                                      \
        ctype v_;                                                                                            \
        memcpy(&v_, kv_->data, sizeof v_);                                                                   \
        CHECKF(v_ == (want), "%s: value differs", key);                                                      \
    } while (0)

static void check_str(const gguf_kv *kv, const char *want, size_t len) {
    CHECK(kv->str.len == len && memcmp(kv->str.ptr, want, len) == 0);
}

static void check_array(const gguf_kv *kv, gguf_value_type elem, const void *want, uint64_t n, size_t size) {
    CHECK(kv->arr_type == elem);
    CHECK(kv->arr_n == n);
    if (kv->arr_type == elem && kv->arr_n == n) CHECK(memcmp(kv->data, want, (size_t)n * size) == 0);
}

static void check_keys(const hearth_gguf *g, uint32_t alignment) {
    REQUIRE(hearth_gguf_n_kv(g) == N_KEYS - (alignment ? 0 : 1));
    uint64_t i = 0;
    check_str(kv_named(g, i++, "general.architecture", GGUF_STRING), "llama", 5);
    if (alignment) CHECK_SCALAR(g, i++, "general.alignment", GGUF_UINT32, uint32_t, alignment);
    CHECK_SCALAR(g, i++, "t.u8", GGUF_UINT8, uint8_t, 200);
    CHECK_SCALAR(g, i++, "t.i8", GGUF_INT8, int8_t, -100);
    CHECK_SCALAR(g, i++, "t.u16", GGUF_UINT16, uint16_t, 60000);
    CHECK_SCALAR(g, i++, "t.i16", GGUF_INT16, int16_t, -30000);
    check_str(kv_named(g, i++, "t.replaced", GGUF_STRING), "second", 6);
    CHECK_SCALAR(g, i++, "t.u32", GGUF_UINT32, uint32_t, 4000000000u);
    CHECK_SCALAR(g, i++, "t.i32", GGUF_INT32, int32_t, -2000000000);
    CHECK_SCALAR(g, i++, "t.u64", GGUF_UINT64, uint64_t, (1ull << 40) + 7);
    CHECK_SCALAR(g, i++, "t.i64", GGUF_INT64, int64_t, -(1ll << 40) - 3);
    CHECK_SCALAR(g, i++, "t.f32", GGUF_FLOAT32, float, 3.25f);
    CHECK_SCALAR(g, i++, "t.f64", GGUF_FLOAT64, double, -1e-300);
    CHECK_SCALAR(g, i++, "t.true", GGUF_BOOL, uint8_t, 1);
    CHECK_SCALAR(g, i++, "t.false", GGUF_BOOL, uint8_t, 0);
    check_str(kv_named(g, i++, "t.strn", GGUF_STRING), "a\0b", 3);
    check_array(kv_named(g, i++, "t.arr_i32", GGUF_ARRAY), GGUF_INT32, k_i32s, 5, 4);
    check_array(kv_named(g, i++, "t.arr_u8", GGUF_ARRAY), GGUF_UINT8, k_u8s, 3, 1);
    check_array(kv_named(g, i++, "t.arr_f32", GGUF_ARRAY), GGUF_FLOAT32, k_f32s, 3, 4);
    check_array(kv_named(g, i++, "t.arr_f64", GGUF_ARRAY), GGUF_FLOAT64, k_f64s, 2, 8);
    check_array(kv_named(g, i++, "t.arr_bool", GGUF_ARRAY), GGUF_BOOL, k_bools, 3, 1);
    const gguf_kv *sa = kv_named(g, i++, "t.arr_str", GGUF_ARRAY);
    CHECK(sa->arr_type == GGUF_STRING && sa->arr_n == 4 && sa->strs != NULL);
    for (uint64_t j = 0; sa->strs && j < 4 && j < sa->arr_n; j++)
        CHECKF(sa->strs[j].len == k_str_lens[j] && memcmp(sa->strs[j].ptr, k_strs[j], k_str_lens[j]) == 0,
               "t.arr_str[%llu] differs", (unsigned long long)j);
    const gguf_kv *ca = kv_named(g, i++, "t.arr_cstr", GGUF_ARRAY);
    CHECK(ca->arr_type == GGUF_STRING && ca->arr_n == 3 && ca->strs != NULL);
    for (uint64_t j = 0; ca->strs && j < 3 && j < ca->arr_n; j++)
        CHECK(hearth_str_eq(ca->strs[j], k_cstrs[j]));
    check_str(kv_named(g, i++, "t.empty", GGUF_STRING), "", 0);
    CHECK(i == hearth_gguf_n_kv(g));
    CHECK(hearth_gguf_find(g, "t.removed") == NULL);
}

static uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

/* Count bytes of [p, p+n) that differ from tensor t's pattern. */
static uint64_t count_bad(const uint8_t *p, int t, uint64_t n) {
    uint64_t bad = 0;
    for (uint64_t j = 0; j < n; j++)
        if (p[j] != data_byte(t, j)) bad++;
    return bad;
}

/* Tensor table, offsets, padding and every data byte. `bytes` is the whole
 * file as read with stdio, so placement is checked independently of the
 * reader's data pointers. */
static void check_tensors(const hearth_gguf *g, uint32_t alignment, const uint8_t *bytes, size_t size) {
    REQUIRE(hearth_gguf_n_tensors(g) == N_TENSORS);
    CHECK(hearth_gguf_alignment(g) == alignment);
    uint64_t offsets[N_TENSORS + 1], data_bytes = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        offsets[i] = data_bytes;
        data_bytes = align_up(data_bytes + want_nbytes(&k_tensors[i]), alignment);
    }
    offsets[N_TENSORS] = data_bytes;
    REQUIRE(size > data_bytes);
    uint64_t data_start = size - data_bytes; /* the file ends with the last tensor, padded */
    CHECK(data_start % alignment == 0);
    CHECK(size % alignment == 0);
    uint64_t zeros_bad = 0;
    for (int i = 0; i < N_TENSORS; i++) {
        const want_tensor *w = &k_tensors[i];
        const gguf_tensor *t = hearth_gguf_tensor_at(g, (uint64_t)i);
        REQUIRE(t != NULL);
        CHECKF(hearth_str_eq(t->name, w->name), "tensor %d is not %s", i, w->name);
        CHECK(t->type == w->type);
        CHECK(t->n_dims == w->n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            CHECKF(t->ne[d] == w->ne[d], "%s: ne[%d] = %llu", w->name, d, (unsigned long long)t->ne[d]);
        CHECK(t->nbytes == want_nbytes(w));
        CHECKF(t->offset == offsets[i], "%s: offset %llu, want %llu", w->name, (unsigned long long)t->offset,
               (unsigned long long)offsets[i]);
        CHECK(t->offset % alignment == 0);
        CHECKF(count_bad(t->data, i, want_nbytes(w)) == 0, "%s: data differs (reader)", w->name);
        CHECKF(count_bad(bytes + data_start + offsets[i], i, want_nbytes(w)) == 0, "%s: data differs (file)",
               w->name);
        for (uint64_t p = offsets[i] + want_nbytes(w); p < offsets[i + 1]; p++)
            if (bytes[data_start + p]) zeros_bad++;
    }
    CHECKF(zeros_bad == 0, "%llu padding bytes are not zero", (unsigned long long)zeros_bad);
}

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    REQUIRE(n > 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n);
    REQUIRE(p != NULL);
    REQUIRE(fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void test_round_trip(uint32_t alignment, size_t piece) {
    char path[512];
    tmp_path(path, sizeof path, "all.gguf");
    uint64_t predicted = write_main_file(path, alignment, piece);
    size_t size = 0;
    uint8_t *bytes = read_whole(path, &size);
    CHECK(size == predicted);
    CHECK(size >= 24 && memcmp(bytes, "GGUF", 4) == 0);
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(path, &err);
    REQUIRE(g != NULL);
    CHECK(hearth_gguf_version(g) == 3);
    CHECK(hearth_gguf_file_size(g) == size);
    check_keys(g, alignment);
    check_tensors(g, alignment ? alignment : 32, bytes, size);
    hearth_gguf_close(g);
    free(bytes);
    unlink(path);
}

/* ---------------------------------------------------------------- copy_kv */

static void test_copy_kv(void) {
    char src[512], dst[512];
    tmp_path(src, sizeof src, "src.gguf");
    tmp_path(dst, sizeof dst, "copy.gguf");
    write_main_file(src, 64, 4096);
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(src, &err);
    REQUIRE(g != NULL);
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    for (uint64_t i = 0; i < hearth_gguf_n_kv(g); i++)
        CHECKF(hearth_gguf_writer_copy_kv(w, hearth_gguf_kv_at(g, i), &err) == HEARTH_OK, "copy: %s",
               err.msg);
    FILE *f = fopen(dst, "wb");
    REQUIRE(f != NULL);
    CHECK(hearth_gguf_writer_begin(w, f, dst, &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_finish(w, &err) == HEARTH_OK);
    fclose(f);
    hearth_gguf_writer_free(w);
    hearth_gguf_close(g);
    hearth_gguf *c = hearth_gguf_open(dst, &err);
    REQUIRE(c != NULL);
    check_keys(c, 64);
    CHECK(hearth_gguf_n_tensors(c) == 0);
    hearth_gguf_close(c);
    unlink(src);
    unlink(dst);
}

/* ---------------------------------------------------------------- errors */

static void test_tensor_errors(void) {
    hearth_error err = {0};
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    const uint64_t ne[2] = {32, 2};
    REQUIRE(hearth_gguf_writer_add_tensor(w, "w", HEARTH_Q8_0, 2, ne, &err) == HEARTH_OK);

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "w", HEARTH_F32, 2, ne, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tensor w added twice");
    CHECK(hearth_gguf_writer_n_tensors(w) == 1);

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "odd", HEARTH_Q4_0, 1, (uint64_t[]){33}, &err) ==
          HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "odd");
    CHECK_CONTAINS(err.msg, "not a multiple of");

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "zero", HEARTH_F32, 2, (uint64_t[]){4, 0}, &err) ==
          HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "dimension 1 is 0");

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "dims", HEARTH_F32, 5, (uint64_t[]){1, 1, 1, 1, 1}, &err) ==
          HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "5 dimensions");

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "", HEARTH_F32, 1, ne, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "empty tensor name");

    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_add_tensor(w, "typ", (hearth_dtype)99, 1, ne, &err) == HEARTH_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "typ");
    CHECK(hearth_gguf_writer_n_tensors(w) == 1);
    hearth_gguf_writer_free(w);
}

static void test_key_errors(void) {
    hearth_error err = {0};
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    CHECK(hearth_gguf_writer_set_u32(w, "", 1, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "empty metadata key");
    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_set_arr(w, "k.arr", GGUF_STRING, k_cstrs, 3, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "k.arr");
    CHECK_CONTAINS(err.msg, "not numeric");
    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_set_arr(w, "k.null", GGUF_INT32, NULL, 2, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "array data is NULL");
    CHECK(hearth_gguf_writer_n_kv(w) == 0);
    hearth_gguf_writer_free(w);
}

/* general.alignment must be an integer power of two; begin refuses others. */
static void test_bad_alignment(void) {
    char path[512];
    tmp_path(path, sizeof path, "align.gguf");
    for (int c = 0; c < 4; c++) {
        hearth_error err = {0};
        hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
        REQUIRE(w != NULL);
        if (c == 0) REQUIRE(hearth_gguf_writer_set_u32(w, "general.alignment", 48, &err) == HEARTH_OK);
        if (c == 1) REQUIRE(hearth_gguf_writer_set_u32(w, "general.alignment", 0, &err) == HEARTH_OK);
        if (c == 2) REQUIRE(hearth_gguf_writer_set_str(w, "general.alignment", "32", &err) == HEARTH_OK);
        if (c == 3)
            REQUIRE(hearth_gguf_writer_set_u64(w, "general.alignment", 1ull << 31, &err) == HEARTH_OK);
        FILE *f = fopen(path, "wb");
        REQUIRE(f != NULL);
        CHECKF(hearth_gguf_writer_begin(w, f, path, &err) == HEARTH_ERR_INVALID, "case %d", c);
        CHECK_CONTAINS(err.msg, "general.alignment must be an integer power of two");
        fclose(f);
        hearth_gguf_writer_free(w);
    }
    unlink(path);
}

static void test_order_and_size_errors(void) {
    char path[512];
    tmp_path(path, sizeof path, "order.gguf");
    hearth_error err = {0};
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    uint8_t buf[64] = {0};
    CHECK(hearth_gguf_writer_write(w, buf, 1, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "write before begin");
    CHECK(hearth_gguf_writer_finish(w, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "finish before begin");
    CHECK(hearth_gguf_writer_begin(w, NULL, path, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "no output file");
    REQUIRE(hearth_gguf_writer_add_tensor(w, "t0", HEARTH_F32, 1, (uint64_t[]){4}, &err) == HEARTH_OK);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(hearth_gguf_writer_begin(w, f, path, &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_begin(w, f, path, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "begin called twice");
    CHECK(hearth_gguf_writer_set_u8(w, "late", 1, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "cannot add key 'late' after the header was written");
    CHECK(hearth_gguf_writer_add_tensor(w, "late.t", HEARTH_F32, 1, (uint64_t[]){4}, &err) ==
          HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "late.t");
    CHECK(!hearth_gguf_writer_remove(w, "anything"));
    /* 10 of 16 bytes: finish names the tensor and the counts */
    REQUIRE(hearth_gguf_writer_write(w, buf, 10, &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_finish(w, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "tensor t0 got 10 of its 16 bytes");
    fclose(f);
    hearth_gguf_writer_free(w);

    /* more data than the tensors hold */
    w = hearth_gguf_writer_create(&err);
    REQUIRE(w != NULL);
    REQUIRE(hearth_gguf_writer_add_tensor(w, "t0", HEARTH_F32, 1, (uint64_t[]){4}, &err) == HEARTH_OK);
    f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(hearth_gguf_writer_begin(w, f, path, &err) == HEARTH_OK);
    CHECK(hearth_gguf_writer_write(w, buf, 17, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "more tensor data than the tensors hold");
    /* the failure sticks */
    err = (hearth_error){0};
    CHECK(hearth_gguf_writer_finish(w, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "more tensor data than the tensors hold");
    fclose(f);
    hearth_gguf_writer_free(w);
    unlink(path);
}

/* Output that cannot be written: a stream opened read-only, and a device
 * that is always full. Both fail with HEARTH_ERR_IO naming the file. */
static void test_unwritable(void) {
    char path[512];
    tmp_path(path, sizeof path, "ro.gguf");
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fclose(f);
    static uint8_t big[1 << 16];
    const char *names[2] = {path, "/dev/full"};
    for (int c = 0; c < 2; c++) {
        f = fopen(names[c], c == 0 ? "rb" : "wb");
        if (!f) {
            fprintf(stderr, "skipping %s: cannot open it\n", names[c]);
            continue;
        }
        hearth_error err = {0};
        hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
        REQUIRE(w != NULL);
        REQUIRE(hearth_gguf_writer_add_tensor(w, "big", HEARTH_F32, 1, (uint64_t[]){sizeof big / 4}, &err) ==
                HEARTH_OK);
        hearth_status st = hearth_gguf_writer_begin(w, f, names[c], &err);
        if (!st) st = hearth_gguf_writer_write(w, big, sizeof big, &err);
        if (!st) st = hearth_gguf_writer_finish(w, &err);
        CHECKF(st == HEARTH_ERR_IO, "%s: status %d", names[c], (int)st);
        CHECK_CONTAINS(err.msg, names[c]);
        CHECK_CONTAINS(err.msg, "write failed");
        fclose(f);
        hearth_gguf_writer_free(w);
    }
    unlink(path);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/hearth-gguf-writer-XXXXXX");
    REQUIRE(mkdtemp(g_dir) != NULL);
    test_round_trip(64, 7);        /* pieces smaller than any tensor */
    test_round_trip(0, 100);       /* default alignment, pieces spanning tensors */
    test_round_trip(256, 1 << 20); /* alignment above the header size, one piece */
    test_copy_kv();
    test_tensor_errors();
    test_key_errors();
    test_bad_alignment();
    test_order_and_size_errors();
    test_unwritable();
    rmdir(g_dir);
    return test_summary("test_gguf_writer");
}
