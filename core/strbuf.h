/*
 * strbuf.h - a growable byte string, the one builder used everywhere.
 *
 * Ownership: the caller owns the struct (zero-initialise it: `strbuf b = {0}`)
 * and frees its bytes with strbuf_free (or takes them with strbuf_take).
 * Invariants: p[0..n) holds what was appended; when p is non-NULL, p[n] == 0,
 * so b.p is always a C string once anything was appended. Appends never fail
 * loudly: when memory runs out the append is dropped and `oom` stays set, so a
 * caller builds a whole reply and checks `oom` once at the end.
 */
#ifndef HEARTH_STRBUF_H
#define HEARTH_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct strbuf {
    char *p;
    size_t n, cap;
    bool oom; /* an append failed; contents are truncated */
} strbuf;

/* Room for `extra` more bytes (plus the terminating 0); false (and oom set)
 * when that cannot be had. */
bool strbuf_reserve(strbuf *b, size_t extra);
void strbuf_add(strbuf *b, const void *s, size_t n);
void strbuf_adds(strbuf *b, const char *s);
void strbuf_addc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget the contents, keep the memory. */
void strbuf_clear(strbuf *b);
/* The bytes as a malloc'd C string (never NULL unless oom: "" when empty);
 * the buffer is left empty and may be reused. */
char *strbuf_take(strbuf *b);
void strbuf_free(strbuf *b);

#endif
