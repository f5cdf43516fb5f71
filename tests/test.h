/*
 * test.h - the tiny assertion kit every C test uses.
 *
 * CHECK(cond) records a failure and continues; REQUIRE(cond) stops the test.
 * A test file's main() ends with `return test_summary("name");`, which prints
 * "N passed, N failed" and returns non-zero on any failure.
 */
#ifndef HEARTH_TEST_H
#define HEARTH_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            test_passed_++;                                                         \
        } else {                                                                    \
            test_failed_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        if (cond) {                                                                 \
            test_passed_++;                                                         \
        } else {                                                                    \
            test_failed_++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

#define REQUIRE(cond)                                                                 \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                  \
        }                                                                             \
        test_passed_++;                                                               \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                              \
    do {                                                                                              \
        const char *h_ = (haystack), *n_ = (needle);                                                  \
        if (h_ && strstr(h_, n_)) {                                                                   \
            test_passed_++;                                                                           \
        } else {                                                                                      \
            test_failed_++;                                                                           \
            fprintf(stderr, "%s:%d: expected \"%s\" to contain \"%s\"\n", __FILE__, __LINE__,         \
                    h_ ? h_ : "(null)", n_);                                                          \
        }                                                                                             \
    } while (0)

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* True in the sanitizer builds (ASan/UBSan, TSan), which run several times
 * slower. A statistical test may take a smaller sample there: the sanitizers
 * look for memory and thread errors, which a smaller run of the same code
 * paths finds as well, and the Release run keeps the full sample. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

/* Path under ../shared (HEARTH_SHARED), in a static buffer per call site. */
static inline const char *test_shared_path(char *buf, size_t cap, const char *rel) {
    const char *root = getenv("HEARTH_SHARED");
    if (!root) root = "../shared";
    snprintf(buf, cap, "%s/%s", root, rel);
    return buf;
}

/* Read a whole file into a malloc'd NUL-terminated buffer (NULL on failure). */
static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    }
    return buf;
}

#endif
