/*
 * detokenize.c - token ids -> text: the bytes each token stands for (the
 * piece cache filled at load), hearth_tokenizer_decode (llama.cpp's
 * llama_detokenize) and the streaming detokenizer that only lets complete
 * UTF-8 characters out.
 *
 * Ownership: tokenizer engineer. Reads the tokenizer only; decode allocates
 * one scratch string per call; a hearth_detok belongs to its caller's thread.
 * Invariant: the streaming detokenizer never emits a partial UTF-8 character;
 * bytes that cannot complete one come out as U+FFFD.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

/* ================================================================ the piece cache */

/* llama.cpp's token_to_piece with special = true, for the piece cache. */
size_t tokenizer_piece_compute(const hearth_tokenizer *t, int32_t id, char *out) {
    size_t n;
    const char *s = tokenizer_text_of(t, id, &n);
    const uint16_t a = t->attr[id];
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        memcpy(out, s, n);
        return n;
    }
    if (a & ATTR_NORMAL) {
        size_t m = 0;
        if (t->kind != HEARTH_VOCAB_BPE) { /* SPM, WPM: "▁" -> ' ' */
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    out[m++] = ' ';
                    i += 3;
                } else {
                    out[m++] = s[i++];
                }
            }
        } else { /* GPT-2 alphabet -> bytes; code points outside it pass through */
            for (size_t i = 0; i < n;) {
                size_t adv;
                uint32_t c = hearth_utf8_decode(s + i, n - i, &adv);
                int b = hearth_cpt_to_byte(c);
                if (b >= 0) {
                    out[m++] = (char)b;
                } else {
                    memcpy(out + m, s + i, adv);
                    m += adv;
                }
                i += adv;
            }
        }
        return m;
    }
    if ((a & ATTR_BYTE) && n >= 6 && memcmp(s, "<0x", 3) == 0) {
        char hex[3] = {s[3], s[4], 0};
        out[0] = (char)strtol(hex, NULL, 16);
        return 1;
    }
    return 0; /* unused / undefined types detokenize to nothing */
}

/* ================================================================ pieces and decode */

/* The piece of id as a view (empty for control/unknown tokens unless special). */
static const char *piece_view(const hearth_tokenizer *t, int32_t id, bool special, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab) return "";
    if (!special && (t->attr[id] & (ATTR_UNKNOWN | ATTR_CONTROL))) return "";
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

size_t hearth_tokenizer_piece(const hearth_tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    size_t n;
    const char *p = piece_view(t, id, special, &n);
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

/* llama.cpp's clean_up_tokenization_spaces, in place; returns the new length. */
static size_t clean_spaces(char *s, size_t n) {
    if (n == 0) return 0;
    size_t m = 1; /* " ?", " !", " .", " ," lose the space */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) m--;
        s[m++] = x;
    }
    n = m;
    m = 1; /* " ' " -> "'" */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            m--;
            s[++i] = '\0';
        }
        s[m++] = x;
    }
    n = m;
    m = 1; /* " 's", " 'm", " 're", " 've" lose the space */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') {
                m--;
            } else if (i + 2 < n && ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e'))) {
                m--;
            }
        }
        s[m++] = x;
    }
    return m;
}

size_t hearth_tokenizer_decode(const hearth_tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                               bool unparse_special, char *buf, size_t cap) {
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        piece_view(t, ids[i], unparse_special, &k);
        total += k;
    }
    char *s = malloc(total ? total : 1);
    if (!s) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = piece_view(t, ids[i], unparse_special, &k);
        if (remove_space && k && p[0] == ' ') {
            p++;
            k--;
        }
        remove_space = false;
        memcpy(s + m, p, k);
        m += k;
    }
    if (t->clean_spaces) m = clean_spaces(s, m);
    if (buf && cap) memcpy(buf, s, m < cap ? m : cap);
    free(s);
    return m;
}

/* ================================================================ streaming detokenizer */

void hearth_detok_init(hearth_detok *d, const hearth_tokenizer *t, bool special, bool strip_leading_space) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->special = special;
    d->strip_leading_space = strip_leading_space;
    d->first = true;
}

typedef struct sink {
    char *out;
    size_t cap, n;
} sink;

static void sink_put(sink *s, const void *p, size_t n) {
    if (n > s->cap - s->n) n = s->cap - s->n; /* out of room: the rest is dropped */
    memcpy(s->out + s->n, p, n);
    s->n += n;
}

static void sink_replacement(sink *s) {
    sink_put(s, "\xef\xbf\xbd", 3);
}

/* Push one byte through the UTF-8 assembler: complete characters go out,
 * a valid but incomplete prefix waits in d->pending, anything invalid goes
 * out as U+FFFD (one per maximal invalid subpart). */
static void detok_byte(hearth_detok *d, unsigned char c, sink *s) {
    for (;;) {
        if (d->n_pending == 0) {
            if (c < 0x80) {
                sink_put(s, &c, 1);
                return;
            }
            size_t need, ok = hearth_utf8_valid_prefix(&c, 1, &need);
            if (ok == 0) {
                sink_replacement(s);
                return;
            }
            d->pending[0] = (char)c;
            d->n_pending = 1;
            return;
        }
        unsigned char tmp[4];
        memcpy(tmp, d->pending, d->n_pending);
        tmp[d->n_pending] = c;
        size_t need, ok = hearth_utf8_valid_prefix(tmp, d->n_pending + 1, &need);
        if (ok == d->n_pending + 1) {
            if (ok == need) {
                sink_put(s, tmp, ok);
                d->n_pending = 0;
            } else {
                d->pending[d->n_pending++] = (char)c;
            }
            return;
        }
        /* c does not continue the pending character: that one is broken */
        sink_replacement(s);
        d->n_pending = 0;
        /* and c starts afresh */
    }
}

size_t hearth_detok_feed(hearth_detok *d, int32_t id, char *out, size_t cap) {
    sink s = {out, cap, 0};
    size_t n;
    const char *p = piece_view(d->tok, id, d->special, &n);
    if (d->first) {
        d->first = false;
        if (d->strip_leading_space && d->tok->add_space_prefix && n && p[0] == ' ') {
            p++;
            n--;
        }
    }
    for (size_t i = 0; i < n; i++)
        detok_byte(d, (unsigned char)p[i], &s);
    return s.n;
}

size_t hearth_detok_flush(hearth_detok *d, char *out, size_t cap) {
    sink s = {out, cap, 0};
    if (d->n_pending) sink_replacement(&s);
    d->n_pending = 0;
    return s.n;
}
