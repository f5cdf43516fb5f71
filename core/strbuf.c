/*
 * strbuf.c - the growable byte string (contract in strbuf.h).
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

bool strbuf_reserve(strbuf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > SIZE_MAX - b->n - 1 || !hearth_grow((void **)&b->p, &b->cap, b->n + extra + 1, 1)) {
        b->oom = true;
        return false;
    }
    return true;
}

void strbuf_add(strbuf *b, const void *s, size_t n) {
    if (!strbuf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void strbuf_adds(strbuf *b, const char *s) {
    strbuf_add(b, s, strlen(s));
}

void strbuf_addc(strbuf *b, char c) {
    strbuf_add(b, &c, 1);
}

void strbuf_printf(strbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        strbuf_add(b, small, (size_t)n);
        return;
    }
    if (!strbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void strbuf_clear(strbuf *b) {
    b->n = 0;
    if (b->p) b->p[0] = 0;
}

char *strbuf_take(strbuf *b) {
    if (b->oom) return NULL;
    char *s = b->p ? b->p : calloc(1, 1);
    *b = (strbuf){0};
    return s;
}

void strbuf_free(strbuf *b) {
    free(b->p);
    *b = (strbuf){0};
}
