/*
 * test_gguf.c - the GGUF reader against real files and hostile ones.
 *
 * (a) Every real model in $HEARTH_SHARED/models and vocabulary in
 *     $HEARTH_SHARED/vocab opens, indexes every key and tensor, and keeps
 *     every view inside the file; known values of a few files are checked.
 * (b) Synthetic files built with the small writer below exercise every
 *     rejection gguf.c promises: each case asserts the error code and the part
 *     of the message a user needs. Truncating a valid file at every byte must
 *     fail cleanly (run under ASan in the sanitizer build).
 *
 * `test_gguf --write-seeds DIR` writes the synthetic files to DIR (used by
 * tests/fuzz/run.sh to seed the fuzzer's corpus) and exits.
 * Ownership: tests only; nothing here is linked into libhearth.
 */
#include "core/strbuf.h"
#include "runtime/format/gguf.h"
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#define SYNTH "synth.gguf"

/* ---------------------------------------------------------------- a tiny GGUF writer */

/* Bytes built in a strbuf; a test that runs out of memory stops. */
static void put(strbuf *b, const void *src, size_t n) {
    strbuf_add(b, src, n);
    REQUIRE(!b->oom);
}

static void put_u8(strbuf *b, uint8_t v) {
    put(b, &v, 1);
}
static void put_u32(strbuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(strbuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(strbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_zeros(strbuf *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        put_u8(b, 0);
}
static void pad_to(strbuf *b, size_t align) {
    while (b->n % align)
        put_u8(b, 0);
}

static void w_header(strbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}
static void kv_head(strbuf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}
static void kv_u32(strbuf *b, const char *key, uint32_t v) {
    kv_head(b, key, GGUF_UINT32);
    put_u32(b, v);
}
static void kv_str(strbuf *b, const char *key, const char *v) {
    kv_head(b, key, GGUF_STRING);
    put_str(b, v);
}
static void kv_arr(strbuf *b, const char *key, uint32_t elem, uint64_t n) {
    kv_head(b, key, GGUF_ARRAY);
    put_u32(b, elem);
    put_u64(b, n);
}
static void w_tensor(strbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t offset) {
    put_str(b, name);
    put_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        put_u64(b, ne[d]);
    put_u32(b, type);
    put_u64(b, offset);
}

/* Byte offsets inside the reference file, recorded while writing it. */
typedef struct synth_marks {
    size_t tokens_elem1;  /* start of element 1 of the string array */
    size_t tensors_start; /* first tensor info */
    size_t t1_offset;     /* the offset field of tensor info 1 */
    size_t data_start;
} synth_marks;

/* The reference file: every scalar type, string and numeric arrays, two
 * tensors (F32 [32,2] at 0, Q8_0 [64] at 256), alignment 32. */
static strbuf build_reference(synth_marks *m) {
    strbuf b = {0};
    synth_marks mk = {0};
    w_header(&b, 3, 2, 16);
    kv_str(&b, "general.architecture", "llama");
    kv_u32(&b, "general.alignment", 32);
    kv_head(&b, "t.u8", GGUF_UINT8), put_u8(&b, 200);
    kv_head(&b, "t.i8", GGUF_INT8), put_u8(&b, (uint8_t)-5);
    kv_head(&b, "t.u16", GGUF_UINT16), put_u8(&b, 0x34), put_u8(&b, 0x12);
    kv_head(&b, "t.i16", GGUF_INT16), put_u8(&b, 0xfe), put_u8(&b, 0xff); /* -2 */
    kv_u32(&b, "t.u32", 4000000000u);
    kv_head(&b, "t.i32", GGUF_INT32), put_u32(&b, (uint32_t)-7);
    float f = 1.5f;
    uint32_t fbits;
    memcpy(&fbits, &f, 4);
    kv_head(&b, "t.f32", GGUF_FLOAT32), put_u32(&b, fbits);
    kv_head(&b, "t.bool", GGUF_BOOL), put_u8(&b, 1);
    kv_head(&b, "t.u64", GGUF_UINT64), put_u64(&b, 1ull << 40);
    kv_head(&b, "t.i64", GGUF_INT64), put_u64(&b, (uint64_t)-3);
    double d = 1e-5;
    uint64_t dbits;
    memcpy(&dbits, &d, 8);
    kv_head(&b, "t.f64", GGUF_FLOAT64), put_u64(&b, dbits);
    kv_arr(&b, "tokenizer.ggml.tokens", GGUF_STRING, 3);
    put_str(&b, "alphabet-soup");
    mk.tokens_elem1 = b.n;
    put_str(&b, "bc");
    put_str(&b, "");
    kv_arr(&b, "t.scores", GGUF_FLOAT32, 2);
    f = -2.0f, memcpy(&fbits, &f, 4), put_u32(&b, fbits);
    f = 0.25f, memcpy(&fbits, &f, 4), put_u32(&b, fbits);
    kv_arr(&b, "t.empty", GGUF_INT32, 0);
    mk.tensors_start = b.n;
    w_tensor(&b, "a.weight", 2, (uint64_t[]){32, 2}, HEARTH_F32, 0);
    put_str(&b, "b.weight");
    put_u32(&b, 1);
    put_u64(&b, 64);
    put_u32(&b, HEARTH_Q8_0);
    mk.t1_offset = b.n;
    put_u64(&b, 256);
    pad_to(&b, 32);
    mk.data_start = b.n;
    for (int i = 0; i < 256; i++)
        put_u8(&b, (uint8_t)i); /* a.weight: 64 floats */
    put_zeros(&b, 2 * 34);      /* b.weight: 2 q8_0 blocks */
    if (m) *m = mk;
    return b;
}

/* Open a private copy of exactly n bytes so ASan sees any over-read. */
static hearth_gguf *open_copy(const void *p, size_t n, hearth_error *err, uint8_t **copy) {
    *copy = malloc(n ? n : 1);
    REQUIRE(*copy != NULL);
    if (n) memcpy(*copy, p, n);
    hearth_error_clear(err);
    return hearth_gguf_open_memory(*copy, n, SYNTH, err);
}

/* Expect open to fail with `code` and a message holding the file name and `needle`. */
#define EXPECT_FAIL(buf, code_, needle)                                                                      \
    do {                                                                                                     \
        hearth_error e_;                                                                                     \
        uint8_t *c_;                                                                                         \
        hearth_gguf *g_ = open_copy((buf).p, (buf).n, &e_, &c_);                                             \
        CHECKF(g_ == NULL, "expected failure containing \"%s\"", needle);                                    \
        if (g_)                                                                                              \
            hearth_gguf_close(g_);                                                                           \
        else {                                                                                               \
            CHECKF(e_.code == (code_), "code %s, expected %s: %s", hearth_status_name(e_.code),              \
                   hearth_status_name(code_), e_.msg);                                                       \
            CHECK_CONTAINS(e_.msg, SYNTH ": ");                                                              \
            CHECK_CONTAINS(e_.msg, needle);                                                                  \
            if (getenv("GGUF_TEST_VERBOSE")) printf("  [%s] %s\n", hearth_status_name(e_.code), e_.msg);     \
        }                                                                                                    \
        free(c_);                                                                                            \
    } while (0)

/* ---------------------------------------------------------------- the reference file */

static void test_reference(void) {
    synth_marks m;
    strbuf b = build_reference(&m);
    hearth_error err;
    uint8_t *copy;
    hearth_gguf *g = open_copy(b.p, b.n, &err, &copy);
    if (!g) fprintf(stderr, "reference: %s\n", err.msg);
    REQUIRE(g != NULL);
    CHECK(hearth_gguf_version(g) == 3);
    CHECK(strcmp(hearth_gguf_path(g), SYNTH) == 0);
    CHECK(hearth_gguf_file_size(g) == b.n);
    CHECK(hearth_gguf_alignment(g) == 32);
    CHECK(hearth_gguf_n_kv(g) == 16);
    CHECK(hearth_gguf_n_tensors(g) == 2);
    CHECK(hearth_gguf_kv_at(g, 16) == NULL);
    CHECK(hearth_gguf_tensor_at(g, 2) == NULL);

    hearth_str s;
    CHECK(hearth_gguf_get_str(g, "general.architecture", &s) && hearth_str_eq(s, "llama"));
    CHECK(!hearth_str_eq(s, "llam") && !hearth_str_eq(s, "llamas"));
    char small[4];
    CHECK(strcmp(hearth_str_copy(s, small, sizeof small), "lla") == 0);
    CHECK(!hearth_gguf_get_str(g, "t.u8", &s));
    CHECK(hearth_gguf_find(g, "nope") == NULL);
    CHECK(hearth_gguf_find(g, "general.architectur") == NULL);

    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    bool bl;
    CHECK(hearth_gguf_get_u32(g, "t.u8", &u32) && u32 == 200);
    CHECK(hearth_gguf_get_i64(g, "t.u8", &i64) && i64 == 200);
    CHECK(hearth_gguf_get_f32(g, "t.u8", &f) && f == 200.0f);
    CHECK(hearth_gguf_get_i64(g, "t.i8", &i64) && i64 == -5);
    CHECK(!hearth_gguf_get_u32(g, "t.i8", &u32));
    CHECK(hearth_gguf_get_u32(g, "t.u16", &u32) && u32 == 0x1234);
    CHECK(hearth_gguf_get_i64(g, "t.i16", &i64) && i64 == -2);
    CHECK(hearth_gguf_get_u32(g, "t.u32", &u32) && u32 == 4000000000u);
    CHECK(hearth_gguf_get_i64(g, "t.i32", &i64) && i64 == -7);
    CHECK(!hearth_gguf_get_u64(g, "t.i32", &u64));
    CHECK(hearth_gguf_get_f32(g, "t.f32", &f) && f == 1.5f);
    CHECK(!hearth_gguf_get_u32(g, "t.f32", &u32));
    CHECK(hearth_gguf_get_bool(g, "t.bool", &bl) && bl);
    CHECK(!hearth_gguf_get_bool(g, "t.u8", &bl));
    CHECK(!hearth_gguf_get_u32(g, "t.u64", &u32));
    CHECK(hearth_gguf_get_u64(g, "t.u64", &u64) && u64 == 1ull << 40);
    CHECK(hearth_gguf_get_i64(g, "t.i64", &i64) && i64 == -3);
    CHECK(hearth_gguf_get_f32(g, "t.f64", &f) && fabsf(f - 1e-5f) < 1e-12f);
    CHECK(!hearth_gguf_get_f32(g, "t.bool", &f));
    CHECK(!hearth_gguf_get_u32(g, "missing", &u32));

    const gguf_kv *tok = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    REQUIRE(tok != NULL);
    CHECK(tok->arr_n == 3 && tok->strs != NULL);
    CHECK(hearth_str_eq(tok->strs[0], "alphabet-soup") && hearth_str_eq(tok->strs[1], "bc") &&
          hearth_str_eq(tok->strs[2], ""));
    CHECK((const uint8_t *)tok->strs[1].ptr == copy + m.tokens_elem1 + 8);
    CHECK(hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_INT32) == NULL);
    CHECK(hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_COUNT) == tok);
    CHECK(hearth_gguf_get_arr(g, "t.u8", GGUF_UINT8) == NULL);
    const gguf_kv *sc = hearth_gguf_get_arr(g, "t.scores", GGUF_FLOAT32);
    REQUIRE(sc != NULL);
    CHECK(sc->strs == NULL);
    CHECK(gguf_kv_arr_f64(sc, 0) == -2.0 && gguf_kv_arr_f64(sc, 1) == 0.25);
    CHECK(gguf_kv_arr_i64(sc, 0) == -2 && gguf_kv_arr_i64(sc, 1) == 0);
    CHECK(gguf_kv_arr_f64(sc, 2) == 0.0);  /* out of range */
    CHECK(gguf_kv_arr_f64(tok, 0) == 0.0); /* not numeric */
    const gguf_kv *em = hearth_gguf_get_arr(g, "t.empty", GGUF_INT32);
    CHECK(em != NULL && em->arr_n == 0 && gguf_kv_arr_i64(em, 0) == 0);

    const gguf_tensor *a = hearth_gguf_find_tensor(g, "a.weight");
    const gguf_tensor *bt = hearth_gguf_find_tensor(g, "b.weight");
    REQUIRE(a != NULL && bt != NULL);
    CHECK(a == hearth_gguf_tensor_at(g, 0) && bt == hearth_gguf_tensor_at(g, 1));
    CHECK(hearth_gguf_find_tensor(g, "c.weight") == NULL);
    CHECK(a->n_dims == 2 && a->ne[0] == 32 && a->ne[1] == 2 && a->ne[2] == 1 && a->ne[3] == 1);
    CHECK(a->type == HEARTH_F32 && a->nbytes == 256 && a->offset == 0);
    CHECK((const uint8_t *)a->data == copy + m.data_start);
    CHECK(((const uint8_t *)a->data)[255] == 255);
    CHECK(bt->type == HEARTH_Q8_0 && bt->nbytes == 68 && bt->offset == 256);
    CHECK((const uint8_t *)bt->data + bt->nbytes == copy + b.n);

    for (uint64_t i = 0; i < hearth_gguf_n_kv(g); i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(g, i);
        char key[64];
        CHECK(hearth_gguf_find(g, hearth_str_copy(kv->key, key, sizeof key)) == kv);
    }
    CHECK(strcmp(gguf_value_type_name(GGUF_FLOAT32), "float32") == 0);
    CHECK(strcmp(gguf_value_type_name(GGUF_TYPE_COUNT), "unknown") == 0);
    hearth_gguf_close(g);
    hearth_gguf_close(NULL);
    free(copy);

    /* The same bytes through the mmap path. */
    char path[] = "/tmp/hearth_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, b.p, b.n) == (ssize_t)b.n);
    close(fd);
    g = hearth_gguf_open(path, &err);
    REQUIRE(g != NULL);
    CHECK(strcmp(hearth_gguf_path(g), path) == 0);
    a = hearth_gguf_find_tensor(g, "a.weight");
    CHECK(a && memcmp(a->data, b.p + m.data_start, 256) == 0);
    hearth_gguf_close(g);

    /* An empty file. */
    fd = open(path, O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    close(fd);
    CHECK(hearth_gguf_open(path, &err) == NULL);
    CHECK(err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg,
                   "truncated file: header: magic needs 4 bytes at offset 0 but the file has 0 bytes");
    unlink(path);
    strbuf_free(&b);
}

/* Cut the reference file at every byte before its end: each must fail with a
 * clean FORMAT error and never read out of bounds. */
static void test_truncation(void) {
    synth_marks m;
    strbuf b = build_reference(&m);
    int failures = 0;
    for (size_t n = 0; n < b.n; n++) {
        hearth_error err;
        uint8_t *copy;
        hearth_gguf *g = open_copy(b.p, n, &err, &copy);
        bool ok = g == NULL && err.code == HEARTH_ERR_FORMAT && strstr(err.msg, SYNTH ": ") &&
                  (strstr(err.msg, "truncated file") || strstr(err.msg, "cannot fit") ||
                   strstr(err.msg, "past the end of the file"));
        if (!ok && failures++ < 5)
            fprintf(stderr, "truncated at %zu: %s (%s)\n", n, g ? "opened" : err.msg,
                    hearth_status_name(err.code));
        if (g) hearth_gguf_close(g);
        free(copy);
        if (n < m.data_start)
            CHECK(ok);
        else
            CHECK(ok && strstr(err.msg, ".weight' data (") != NULL);
    }
    char want[256];
    hearth_error err;
    uint8_t *copy;
    /* A few boundaries, whole message. */
    open_copy(b.p, 5, &err, &copy), free(copy);
    CHECK_CONTAINS(
        err.msg,
        "synth.gguf: truncated file: header: version needs 4 bytes at offset 4 but the file has 5 bytes");
    open_copy(b.p, 20, &err, &copy), free(copy);
    CHECK_CONTAINS(err.msg, "truncated file: header: key-value count needs 8 bytes at offset 16");
    /* Inside a string value (a one-kv file, so the key-value count still fits). */
    strbuf one = {0};
    w_header(&one, 3, 0, 1);
    kv_str(&one, "general.architecture", "llama");
    open_copy(one.p, one.n - 3, &err, &copy), free(copy);
    snprintf(
        want, sizeof want,
        "synth.gguf: truncated file: key-value 0 (general.architecture): string value of 5 bytes at offset "
        "%zu runs past the end of the file (%zu bytes)",
        one.n - 5, one.n - 3);
    CHECK_CONTAINS(err.msg, want);
    open_copy(one.p, 24 + 8 + 20 + 2, &err, &copy), free(copy);
    CHECK_CONTAINS(err.msg,
                   "synth.gguf: truncated file: key-value 0 (general.architecture): value type needs 4 "
                   "bytes at offset 52 but the file has 54 bytes");
    strbuf_free(&one);
    open_copy(b.p, m.tokens_elem1 + 3, &err, &copy), free(copy);
    snprintf(
        want, sizeof want,
        "key-value 13 (tokenizer.ggml.tokens) element 1: string needs 8 bytes at offset %zu but the file "
        "has %zu bytes",
        m.tokens_elem1, m.tokens_elem1 + 3);
    CHECK_CONTAINS(err.msg, want);
    open_copy(b.p, m.t1_offset + 4, &err, &copy), free(copy);
    snprintf(
        want, sizeof want,
        "synth.gguf: truncated file: tensor info 1 (b.weight): offset needs 8 bytes at offset %zu but the "
        "file has %zu bytes",
        m.t1_offset, m.t1_offset + 4);
    CHECK_CONTAINS(err.msg, want);
    open_copy(b.p, b.n - 1, &err, &copy), free(copy);
    CHECK_CONTAINS(err.msg, "tensor 'b.weight' data (68 bytes at data offset 256");
    CHECK_CONTAINS(err.msg, "runs past the end of the file");
    strbuf_free(&b);
}

/* ---------------------------------------------------------------- rejections */

static void test_header_errors(void) {
    strbuf b = {0};
    put(&b, "GGML", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "not a GGUF file: bad magic 47 47 4d 4c");
    b.n = 0;
    w_header(&b, 1, 0, 0);
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "GGUF version 1 is not supported");
    b.n = 0;
    w_header(&b, 99, 0, 0);
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "unsupported GGUF version 99");
    b.n = 0;
    w_header(&b, 0x03000000u, 0, 0);
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "big-endian");
    b.n = 0;
    w_header(&b, 3, 0, 1ull << 62);
    put_zeros(&b, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "header: key-value count 4611686018427387904 cannot fit");
    b.n = 0;
    w_header(&b, 3, 1ull << 62, 0);
    put_zeros(&b, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "header: tensor count 4611686018427387904 cannot fit");
    b.n = 0;
    w_header(&b, 3, UINT64_MAX, UINT64_MAX);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "cannot fit");
    /* n_tensors fits the header check but not what is left after the kvs. */
    b.n = 0;
    w_header(&b, 3, 2, 1);
    kv_str(&b, "k", "a long enough value to leave less than 64 bytes after it........");
    put_zeros(&b, 40);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "tensor count 2 cannot fit");

    /* Version 2 files read like version 3. */
    b.n = 0;
    w_header(&b, 2, 0, 1);
    kv_u32(&b, "x", 1);
    hearth_error err;
    hearth_gguf *g = hearth_gguf_open_memory(b.p, b.n, SYNTH, &err);
    CHECK(g != NULL && hearth_gguf_version(g) == 2 && hearth_gguf_n_tensors(g) == 0);
    hearth_gguf_close(g);
    strbuf_free(&b);
}

static void test_kv_errors(void) {
    strbuf b = {0};
    w_header(&b, 3, 0, 1);
    put_u64(&b, 1000), put(&b, "abc", 3), put_zeros(&b, 10);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT,
                "key-value 0: key of 1000 bytes at offset 32 runs past the end of the file");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_head(&b, "k", GGUF_STRING), put_u64(&b, UINT64_MAX), put_zeros(&b, 8);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "key-value 0 (k): string value of 18446744073709551615 bytes");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_head(&b, "weird", 13), put_zeros(&b, 8);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "key-value 0 (weird): unknown value type 13");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_arr(&b, "arr", 77, 1), put_zeros(&b, 8);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "key-value 0 (arr): unknown array element type 77");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_arr(&b, "nest", GGUF_ARRAY, 1), put_u32(&b, GGUF_UINT8), put_u64(&b, 1), put_u8(&b, 1);
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "key-value 0 (nest): arrays of arrays are not supported");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_arr(&b, "big", GGUF_UINT32, 1ull << 62), put_zeros(&b, 16);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT,
                "key-value 0 (big): array of 4611686018427387904 uint32 elements cannot fit");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    kv_arr(&b, "strs", GGUF_STRING, 5), put_str(&b, "x"), put_str(&b, "y");
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "array of 5 string elements cannot fit");

    b.n = 0;
    w_header(&b, 3, 0, 2);
    kv_arr(&b, "strs", GGUF_STRING, 2), put_str(&b, "x"), put_u64(&b, 99), put(&b, "yy", 2);
    kv_u32(&b, "after", 1);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "key-value 0 (strs) element 1: string of 99 bytes");

    b.n = 0;
    w_header(&b, 3, 0, 3);
    kv_u32(&b, "general.name", 1);
    kv_u32(&b, "other", 2);
    kv_str(&b, "general.name", "x");
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "duplicate key 'general.name' (key-values 0 and 2)");

    b.n = 0;
    w_header(&b, 3, 0, 1);
    put_u64(&b, 3), put(&b, "a\x01z", 3), put_u32(&b, 99);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "key-value 0 (a?z): unknown value type 99");
    strbuf_free(&b);
}

/* A file with one kv (alignment), one tensor, data. */
static strbuf one_tensor(uint32_t align, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                         size_t data_bytes) {
    strbuf b = {0};
    w_header(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", align);
    w_tensor(&b, "blk.0.attn_q.weight", n_dims, ne, type, offset);
    if (align && (align & (align - 1)) == 0) pad_to(&b, align);
    put_zeros(&b, data_bytes);
    return b;
}

static void test_tensor_errors(void) {
    strbuf b = one_tensor(32, 2, (uint64_t[]){32, 4}, HEARTH_F16, 0, 256);
    hearth_error err;
    hearth_gguf *g = hearth_gguf_open_memory(b.p, b.n, SYNTH, &err);
    CHECK(g != NULL);
    hearth_gguf_close(g);
    strbuf_free(&b);

    b = one_tensor(32, 0, NULL, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' has 0 dimensions (expected 1..4)");
    strbuf_free(&b);
    b = one_tensor(32, 5, (uint64_t[]){1, 1, 1, 1, 1}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' has 5 dimensions");
    strbuf_free(&b);
    b = one_tensor(32, 2, (uint64_t[]){32, 0}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' has dimension ne[1] = 0 (must be > 0)");
    strbuf_free(&b);
    b = one_tensor(32, 1, (uint64_t[]){UINT64_MAX}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "ne[0] = -1 (must be > 0)");
    strbuf_free(&b);
    b = one_tensor(32, 2, (uint64_t[]){1ull << 32, 1ull << 32}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "product of its dimensions overflows");
    strbuf_free(&b);
    b = one_tensor(32, 4, (uint64_t[]){1ull << 20, 1ull << 20, 1ull << 20, 1ull << 5}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "overflows int64 at ne[3]");
    strbuf_free(&b);
    /* The element count fits int64 but the byte size is far past the file. */
    b = one_tensor(32, 2, (uint64_t[]){1ull << 30, 1ull << 30}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "runs past the end of the file");
    strbuf_free(&b);

    b = one_tensor(32, 2, (uint64_t[]){32, 2}, 27, 0, 256);
    char want[256];
    snprintf(want, sizeof want, "tensor 'blk.0.attn_q.weight' has type 27 (unknown); this build supports %s",
             hearth_dtype_supported_list());
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, want);
    strbuf_free(&b);
    b = one_tensor(32, 2, (uint64_t[]){256, 2}, 34, 0, 256); /* a ggml type this build cannot run: named */
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "has type 34 (tq1_0); this build supports");
    strbuf_free(&b);
    b = one_tensor(32, 2, (uint64_t[]){32, 2}, 0xffffffffu, 0, 256);
    EXPECT_FAIL(b, HEARTH_ERR_UNSUPPORTED, "has type 4294967295 (unknown)");
    strbuf_free(&b);

    b = one_tensor(32, 2, (uint64_t[]){33, 2}, HEARTH_Q8_0, 0, 256);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "rows of 33 elements, not a multiple of the block size 32");
    strbuf_free(&b);
    b = one_tensor(32, 1, (uint64_t[]){128}, HEARTH_Q4_K, 0, 256);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "rows of 128 elements, not a multiple of the block size 256");
    strbuf_free(&b);

    b = one_tensor(32, 1, (uint64_t[]){8}, HEARTH_F32, 16, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT,
                "tensor 'blk.0.attn_q.weight' data offset 16 is not a multiple of the alignment 32");
    strbuf_free(&b);
    b = one_tensor(32, 1, (uint64_t[]){8}, HEARTH_F32, 32, 40);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT,
                "tensor 'blk.0.attn_q.weight' data (32 bytes at data offset 32, data section at file offset");
    strbuf_free(&b);
    b = one_tensor(32, 1, (uint64_t[]){8}, HEARTH_F32, UINT64_MAX - 31, 40);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "runs past the end of the file");
    strbuf_free(&b);

    b = one_tensor(48, 1, (uint64_t[]){8}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "general.alignment = 48 is not a non-zero power of two");
    strbuf_free(&b);
    b = one_tensor(0, 1, (uint64_t[]){8}, HEARTH_F32, 0, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "general.alignment = 0 is not a non-zero power of two");
    strbuf_free(&b);
    b = (strbuf){0};
    w_header(&b, 3, 0, 1);
    kv_str(&b, "general.alignment", "32");
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "general.alignment has type string (expected uint32)");
    strbuf_free(&b);

    /* A non-default alignment moves the data section and the offset rule. */
    b = one_tensor(64, 1, (uint64_t[]){8}, HEARTH_F32, 64, 128);
    g = hearth_gguf_open_memory(b.p, b.n, SYNTH, &err);
    REQUIRE(g != NULL);
    CHECK(hearth_gguf_alignment(g) == 64);
    const gguf_tensor *t = hearth_gguf_tensor_at(g, 0);
    CHECK(((const uint8_t *)t->data - (const uint8_t *)b.p) % 64 == 0);
    CHECK((const uint8_t *)t->data + t->nbytes <= (const uint8_t *)b.p + b.n);
    hearth_gguf_close(g);
    strbuf_free(&b);

    b = (strbuf){0};
    w_header(&b, 3, 2, 0);
    w_tensor(&b, "x", 1, (uint64_t[]){8}, HEARTH_F32, 0);
    w_tensor(&b, "x", 1, (uint64_t[]){8}, HEARTH_F32, 32);
    pad_to(&b, 32);
    put_zeros(&b, 64);
    EXPECT_FAIL(b, HEARTH_ERR_FORMAT, "duplicate tensor name 'x' (tensors 0 and 1)");
    strbuf_free(&b);
}

static void test_io_errors(void) {
    hearth_error err;
    hearth_error_clear(&err);
    CHECK(hearth_gguf_open("/nonexistent/dir/model.gguf", &err) == NULL);
    CHECK(err.code == HEARTH_ERR_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/model.gguf: cannot open: ");
    CHECK(hearth_gguf_open("/tmp", &err) == NULL);
    CHECK(err.code == HEARTH_ERR_IO);
    CHECK_CONTAINS(err.msg, "/tmp: not a regular file");
    CHECK(hearth_gguf_open("/nonexistent", NULL) == NULL); /* err may be NULL */
    CHECK(hearth_gguf_open_memory(NULL, 0, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "<memory>: truncated file");
}

/* ---------------------------------------------------------------- real files */

/* Walk everything in a file and check each view lies inside [lo, hi). */
static void check_views(const hearth_gguf *g, const uint8_t *lo, const uint8_t *hi, const char *name) {
    int bad = 0;
    for (uint64_t i = 0; i < hearth_gguf_n_kv(g); i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(g, i);
        char key[256];
        hearth_str_copy(kv->key, key, sizeof key);
        if (hearth_gguf_find(g, key) != kv) bad++;
        if ((const uint8_t *)kv->key.ptr < lo || (const uint8_t *)kv->key.ptr + kv->key.len > hi) bad++;
        if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING)
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                const uint8_t *p = (const uint8_t *)kv->strs[j].ptr;
                if (p < lo || p + kv->strs[j].len > hi) bad++;
            }
        if (kv->type == GGUF_STRING &&
            ((const uint8_t *)kv->str.ptr < lo || (const uint8_t *)kv->str.ptr + kv->str.len > hi))
            bad++;
    }
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        char tn[256];
        if (hearth_gguf_find_tensor(g, hearth_str_copy(t->name, tn, sizeof tn)) != t) bad++;
        const uint8_t *p = t->data;
        if (p < lo || p + t->nbytes > hi || t->nbytes == 0) bad++;
        if ((uintptr_t)(p - lo) % hearth_gguf_alignment(g) != 0) bad++;
        uint64_t n = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            n *= t->ne[d];
        if (hearth_dtype_row_size(t->type, (int64_t)t->ne[0]) * (n / t->ne[0]) != t->nbytes) bad++;
    }
    CHECKF(bad == 0, "%s: %d views outside the file or not indexed", name, bad);
}

/* Open by path (mmap) and from memory; both must agree, views inside the buffer. */
static int test_real_file(const char *path) {
    hearth_error err;
    hearth_gguf *g = hearth_gguf_open(path, &err);
    CHECKF(g != NULL, "%s", err.msg);
    if (!g) return 0;
    size_t len = 0;
    char *buf = test_read_file(path, &len);
    REQUIRE(buf != NULL);
    hearth_gguf *m = hearth_gguf_open_memory(buf, len, path, &err);
    REQUIRE(m != NULL);
    CHECK(hearth_gguf_version(g) == 2 || hearth_gguf_version(g) == 3);
    CHECK(hearth_gguf_file_size(g) == len);
    CHECK(hearth_gguf_n_kv(g) > 0 && hearth_gguf_n_kv(g) == hearth_gguf_n_kv(m));
    CHECK(hearth_gguf_n_tensors(g) == hearth_gguf_n_tensors(m));
    check_views(m, (const uint8_t *)buf, (const uint8_t *)buf + len, path);
    /* The mapped tensors hold the file's bytes at the same places. */
    int mismatch = 0;
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *a = hearth_gguf_tensor_at(g, i), *b = hearth_gguf_tensor_at(m, i);
        if (a->nbytes != b->nbytes || a->offset != b->offset || memcmp(a->data, b->data, a->nbytes) != 0)
            mismatch++;
    }
    CHECKF(mismatch == 0, "%s: %d tensors differ between mmap and memory", path, mismatch);
    hearth_gguf_close(m);
    free(buf);
    hearth_gguf_close(g);
    return 1;
}

static int test_dir(const char *dir) {
    char root[1024];
    test_shared_path(root, sizeof root, dir);
    DIR *d = opendir(root);
    CHECKF(d != NULL, "cannot open %s", root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        n += test_real_file(path);
    }
    closedir(d);
    return n;
}

static hearth_gguf *open_shared(const char *rel) {
    char path[1024];
    hearth_error err;
    hearth_gguf *g = hearth_gguf_open(test_shared_path(path, sizeof path, rel), &err);
    CHECKF(g != NULL, "%s", err.msg);
    return g;
}

static void test_known_values(void) {
    hearth_gguf *g = open_shared("models/hearth-kjv-llama-q8_0.gguf");
    if (g) {
        hearth_str s;
        uint32_t u;
        float f;
        CHECK(hearth_gguf_get_str(g, "general.architecture", &s) && hearth_str_eq(s, "llama"));
        CHECK(hearth_gguf_get_u32(g, "llama.block_count", &u) && u == 4);
        CHECK(hearth_gguf_get_u32(g, "llama.embedding_length", &u) && u == 256);
        CHECK(hearth_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) &&
              fabsf(f - 1e-5f) < 1e-9f);
        const gguf_kv *tok = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
        REQUIRE(tok != NULL);
        CHECK(tok->arr_n == 1024);
        CHECK(hearth_str_eq(tok->strs[0], "<unk>") && hearth_str_eq(tok->strs[1], "<s>"));
        CHECK(hearth_str_eq(tok->strs[3], "<|im_start|>") && hearth_str_eq(tok->strs[4], "<|im_end|>"));
        CHECK(hearth_str_eq(tok->strs[5], "<0x00>") && hearth_str_eq(tok->strs[260], "<0xFF>"));
        const gguf_tensor *t = hearth_gguf_find_tensor(g, "blk.0.attn_q.weight");
        REQUIRE(t != NULL);
        CHECK(t->n_dims == 2 && t->ne[0] == 256 && t->ne[1] == 256 && t->type == HEARTH_Q8_0);
        CHECK(t->nbytes == 256 * 256 / 32 * 34);
        CHECK(t->offset + t->nbytes <= hearth_gguf_file_size(g));
        CHECK(hearth_gguf_find_tensor(g, "blk.4.attn_q.weight") == NULL);
        CHECK(hearth_gguf_find_tensor(g, "blk.3.ffn_down.weight") != NULL);
        hearth_gguf_close(g);
    }
    g = open_shared("models/stories260K-f32.gguf");
    if (g) {
        uint32_t u;
        CHECK(hearth_gguf_get_u32(g, "llama.block_count", &u) && u == 5);
        CHECK(hearth_gguf_get_u32(g, "tokenizer.ggml.seperator_token_id", &u) && u == 4294967295u);
        CHECK(hearth_gguf_n_tensors(g) == 48);
        const gguf_tensor *t = hearth_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        CHECK(t && t->ne[0] == 172 && t->ne[1] == 64 && t->type == HEARTH_F32 && t->nbytes == 172 * 64 * 4);
        const gguf_kv *sc = hearth_gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32);
        CHECK(sc && sc->arr_n == 512);
        const gguf_kv *tt = hearth_gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32);
        CHECK(tt && gguf_kv_arr_i64(tt, 0) == 2 && gguf_kv_arr_i64(tt, 1) == 3 &&
              gguf_kv_arr_i64(tt, 3) == 6);
        hearth_gguf_close(g);
    }
    g = open_shared("vocab/ggml-vocab-llama-spm.gguf");
    if (g) {
        hearth_str s;
        CHECK(hearth_gguf_n_tensors(g) == 0);
        CHECK(hearth_gguf_get_str(g, "tokenizer.ggml.model", &s) && hearth_str_eq(s, "llama"));
        const gguf_kv *tok = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
        CHECK(tok && tok->arr_n == 32000);
        hearth_gguf_close(g);
    }
    g = open_shared("vocab/ggml-vocab-gpt-2.gguf");
    if (g) {
        const gguf_kv *mg = hearth_gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING);
        CHECK(mg && mg->arr_n == 50000);
        hearth_gguf_close(g);
    }
}

/* ---------------------------------------------------------------- fuzz seeds */

static void write_seed(const char *dir, const char *name, const strbuf *b) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(b->p, 1, b->n, f) == b->n);
    fclose(f);
}

static int write_seeds(const char *dir) {
    strbuf b = build_reference(NULL);
    write_seed(dir, "synth-reference.gguf", &b);
    strbuf_free(&b);
    b = one_tensor(64, 1, (uint64_t[]){8}, HEARTH_F32, 64, 128);
    write_seed(dir, "synth-align64.gguf", &b);
    strbuf_free(&b);
    b = one_tensor(32, 2, (uint64_t[]){256, 2}, HEARTH_Q4_K, 0, 2 * 144);
    write_seed(dir, "synth-q4k.gguf", &b);
    strbuf_free(&b);
    b = (strbuf){0};
    w_header(&b, 2, 0, 1);
    kv_arr(&b, "tokenizer.ggml.merges", GGUF_STRING, 2), put_str(&b, "a b"), put_str(&b, "c d");
    write_seed(dir, "synth-v2-vocab.gguf", &b);
    strbuf_free(&b);
    printf("wrote 4 seed files to %s\n", dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
    test_reference();
    test_truncation();
    test_header_errors();
    test_kv_errors();
    test_tensor_errors();
    test_io_errors();
    int models = test_dir("models");
    int vocabs = test_dir("vocab");
    printf("opened %d model files and %d vocab files\n", models, vocabs);
    CHECK(models >= 30);
    CHECK(vocabs >= 10);
    test_known_values();
    return test_summary("test_gguf");
}
