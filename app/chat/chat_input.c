/*
 * chat_input.c - see chat_input.h.
 */
#include "chat_input.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

/* ------------------------------------------------------------ UTF-8 */

wchar_t *chat_utf8_to_wcs(const char *s, size_t len, size_t *n) {
    wchar_t *w = malloc((len + 1) * sizeof *w);
    size_t k = 0;
    if (!w) {
        *n = 0;
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t c = *p;
        int extra = c < 0x80             ? 0
                    : (c & 0xE0) == 0xC0 ? 1
                    : (c & 0xF0) == 0xE0 ? 2
                    : (c & 0xF8) == 0xF0 ? 3
                                         : -1;
        if (extra == 0) {
            w[k++] = (wchar_t)c;
            p++;
            continue;
        }
        if (extra < 0 || end - p <= extra) { /* a stray or truncated byte */
            w[k++] = 0xFFFD;
            p++;
            continue;
        }
        c &= 0x3Fu >> extra;
        bool ok = true;
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                ok = false;
                break;
            }
            c = (c << 6) | (p[i] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (!ok || c < min[extra] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            w[k++] = 0xFFFD;
            p++;
            continue;
        }
        w[k++] = (wchar_t)c;
        p += extra + 1;
    }
    w[k] = 0;
    *n = k;
    return w;
}

char *chat_wcs_to_utf8(const wchar_t *w, size_t n) {
    char *s = malloc(n * 4 + 1), *o = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)w[i];
        if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
        if (c < 0x80)
            *o++ = (char)c;
        else if (c < 0x800) {
            *o++ = (char)(0xC0 | c >> 6);
            *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | c >> 12);
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (char)(0xF0 | c >> 18);
            *o++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = 0;
    return s;
}

/* ------------------------------------------------------------ editing */

void chat_input_free(chat_input *in) {
    free(in->buf);
    memset(in, 0, sizeof *in);
}

static bool reserve(chat_input *in, size_t n) {
    return hearth_grow((void **)&in->buf, &in->cap, n + 1, sizeof *in->buf);
}

bool chat_input_insert(chat_input *in, wchar_t c) {
    if (!reserve(in, in->len + 1)) return false;
    memmove(in->buf + in->cur + 1, in->buf + in->cur, (in->len - in->cur) * sizeof *in->buf);
    in->buf[in->cur++] = c;
    in->buf[++in->len] = 0;
    return true;
}

void chat_input_backspace(chat_input *in) {
    if (!in->cur) return;
    in->cur--;
    chat_input_delete(in);
}

void chat_input_delete(chat_input *in) {
    if (in->cur >= in->len) return;
    memmove(in->buf + in->cur, in->buf + in->cur + 1, (in->len - in->cur - 1) * sizeof *in->buf);
    in->buf[--in->len] = 0;
}

void chat_input_left(chat_input *in) {
    if (in->cur) in->cur--;
}

void chat_input_right(chat_input *in) {
    if (in->cur < in->len) in->cur++;
}

static size_t line_start(const chat_input *in, size_t i) {
    while (i && in->buf[i - 1] != L'\n')
        i--;
    return i;
}

static size_t line_end(const chat_input *in, size_t i) {
    while (i < in->len && in->buf[i] != L'\n')
        i++;
    return i;
}

void chat_input_home(chat_input *in) {
    in->cur = line_start(in, in->cur);
}
void chat_input_end(chat_input *in) {
    in->cur = line_end(in, in->cur);
}

bool chat_input_up(chat_input *in) {
    size_t s = line_start(in, in->cur);
    if (!s) return false;
    size_t col = in->cur - s, ps = line_start(in, s - 1), plen = s - 1 - ps;
    in->cur = ps + (col < plen ? col : plen);
    return true;
}

bool chat_input_down(chat_input *in) {
    size_t e = line_end(in, in->cur);
    if (e >= in->len) return false;
    size_t col = in->cur - line_start(in, in->cur), ns = e + 1, nlen = line_end(in, ns) - ns;
    in->cur = ns + (col < nlen ? col : nlen);
    return true;
}

void chat_input_clear(chat_input *in) {
    in->len = in->cur = 0;
    if (in->buf) in->buf[0] = 0;
}

bool chat_input_empty(const chat_input *in) {
    for (size_t i = 0; i < in->len; i++)
        if (in->buf[i] != L' ' && in->buf[i] != L'\n' && in->buf[i] != L'\t') return false;
    return true;
}

char *chat_input_text(const chat_input *in) {
    size_t n = in->len;
    while (n && (in->buf[n - 1] == L' ' || in->buf[n - 1] == L'\n' || in->buf[n - 1] == L'\t'))
        n--;
    return chat_wcs_to_utf8(in->buf ? in->buf : L"", n);
}

void chat_input_set(chat_input *in, const char *utf8) {
    size_t n;
    wchar_t *w = chat_utf8_to_wcs(utf8, strlen(utf8), &n);
    chat_input_clear(in);
    if (!w) return;
    for (size_t i = 0; i < n; i++)
        chat_input_insert(in, w[i]);
    free(w);
}
