/*
 * test_strbuf.c - core/strbuf.h and core/grow.h: appends, formatting past the
 * small stack buffer, take/clear, the growth policy and its overflow check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/strbuf.h"
#include "test.h"

static void test_appends(void) {
    strbuf b = {0};
    strbuf_adds(&b, "abc");
    strbuf_addc(&b, '-');
    strbuf_add(&b, "xyz", 2);
    CHECK(b.n == 6 && !strcmp(b.p, "abc-xy") && !b.oom);
    strbuf_printf(&b, "%d/%s", 42, "q");
    CHECK(!strcmp(b.p, "abc-xy42/q"));
    /* longer than the 256-byte stack buffer of strbuf_printf */
    char big[1000];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strbuf_clear(&b);
    CHECK(b.n == 0 && b.p[0] == 0);
    strbuf_printf(&b, "<%s>", big);
    CHECK(b.n == 1001 && b.p[0] == '<' && b.p[1000] == '>' && b.p[1001] == 0);
    char *s = strbuf_take(&b);
    CHECK(s && strlen(s) == 1001);
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0);
    free(s);
    s = strbuf_take(&b); /* empty: "" rather than NULL */
    CHECK(s && s[0] == 0);
    free(s);
    strbuf_add(&b, "", 0);
    CHECK(b.p && b.p[0] == 0 && b.n == 0);
    strbuf_free(&b);
}

static void test_oom_is_sticky(void) {
    strbuf b = {0};
    strbuf_adds(&b, "ok");
    CHECK(!strbuf_reserve(&b, SIZE_MAX - 1)); /* overflows: refused, not wrapped */
    CHECK(b.oom);
    strbuf_adds(&b, "more"); /* dropped once oom */
    CHECK(b.n == 2 && !strcmp(b.p, "ok"));
    CHECK(strbuf_take(&b) == NULL);
    strbuf_free(&b);
}

static void test_grow(void) {
    int *a = NULL;
    size_t cap = 0;
    CHECK(hearth_grow((void **)&a, &cap, 1, sizeof *a) && cap == 8);
    CHECK(hearth_grow((void **)&a, &cap, 8, sizeof *a) && cap == 8); /* enough already */
    CHECK(hearth_grow((void **)&a, &cap, 9, sizeof *a) && cap == 16);
    CHECK(hearth_grow((void **)&a, &cap, 100, sizeof *a) && cap == 100);
    for (int i = 0; i < 100; i++) a[i] = i;
    int *keep = a;
    size_t keep_cap = cap;
    CHECK(!hearth_grow((void **)&a, &cap, SIZE_MAX / 2, sizeof *a)); /* bytes overflow */
    CHECK(a == keep && cap == keep_cap && a[99] == 99);
    free(a);
}

int main(void) {
    test_appends();
    test_oom_is_sticky();
    test_grow();
    return test_summary("test_strbuf");
}
