/*
 * tokenizer_wpm.c - WordPiece ("bert") encoding of one raw-text fragment, as
 * llama.cpp's llm_tokenizer_wpm_session does it for BERT-family embedders.
 *
 * Ownership: tokenizer engineer. Works in the caller's tokenizer_work (its
 * byte buffer holds the current word) and appends to its output; reads the
 * tokenizer only.
 * Behaviour, per code point of the fragment:
 *   - it is replaced by the first code point of its NFD form, so accents
 *     fall away ("é" -> "e"), and lower-cased (first code point of the
 *     lower-case form);
 *   - whitespace ends the current word; U+0000, U+FFFD (also what invalid
 *     UTF-8 decodes to) and control/format characters are dropped;
 *   - punctuation, ASCII symbols and CJK ideographs become words of their
 *     own; anything else extends the current word.
 * Each word, prefixed with "▁" (the GGUF spelling of a word start; inner
 * pieces are stored without BERT's "##"), is cut greedily into the longest
 * vocabulary entries from the left. When some position has no entry at all
 * the whole word becomes [UNK] (nothing, when the vocabulary has none).
 */
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

#include "core/grow.h"

#define WPM_SPACE "\xe2\x96\x81" /* U+2581 "▁" */
enum { WPM_SPACE_LEN = 3 };

/* BERT's "Chinese character" blocks (the CJK Unified Ideographs and their
 * extensions and compatibility blocks), with the 0x2B920 start that the
 * Hugging Face tokenizer (and so llama.cpp) uses. */
static bool wpm_is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Cut the word w->buf[0..n) (it starts with "▁") into the longest
 * vocabulary entries, left to right; [UNK] for the whole word when some
 * position matches nothing. */
static void wpm_word(tokenizer_work *w, size_t n) {
    const hearth_tokenizer *t = w->t;
    const size_t start = w->out->n;
    bool whole = true;
    for (size_t i = 0; i < n && whole;) {
        size_t j = n - i > t->max_token_len ? i + t->max_token_len : n;
        int32_t id = -1;
        for (; j > i; j--) {
            id = hearth_tokenizer_find(t, w->buf + i, j - i);
            if (id >= 0) break;
        }
        if (id < 0) {
            whole = false;
            break;
        }
        tokenizer_emit(w, id);
        i = j;
    }
    if (!whole) w->out->n = start; /* discard the partial word */
    if (w->out->n == start && t->unk >= 0) tokenizer_emit(w, t->unk);
}

/* Append bytes to the current word. */
static bool wpm_append(tokenizer_work *w, size_t *n, const char *s, size_t k) {
    if (!hearth_grow((void **)&w->buf, &w->buf_cap, *n + k, 1)) {
        w->oom = true;
        return false;
    }
    memcpy(w->buf + *n, s, k);
    *n += k;
    return true;
}

/* Encode the current word if it has a character, and start a new one. */
static void wpm_flush(tokenizer_work *w, size_t *n) {
    if (*n > WPM_SPACE_LEN && !w->oom) wpm_word(w, *n);
    *n = 0;
    wpm_append(w, n, WPM_SPACE, WPM_SPACE_LEN);
}

void tokenizer_wpm_fragment(tokenizer_work *w, const char *text, size_t len) {
    size_t n = 0;
    if (!wpm_append(w, &n, WPM_SPACE, WPM_SPACE_LEN)) return;
    for (size_t i = 0; i < len && !w->oom;) {
        size_t adv;
        uint32_t c = hearth_utf8_decode(text + i, len - i, &adv);
        i += adv;
        c = hearth_unicode_nfd_first(c);
        const unsigned f = hearth_unicode_flags(c);
        if (f & HEARTH_UCD_WHITESPACE) {
            wpm_flush(w, &n);
            continue;
        }
        if (c == 0 || c == HEARTH_UNICODE_REPLACEMENT || (f & HEARTH_UCD_CONTROL)) continue;
        char u[4];
        size_t k = hearth_utf8_encode(hearth_unicode_lower_first(c), u);
        if ((f & HEARTH_UCD_PUNCT) || (c < 0x7F && (f & HEARTH_UCD_SYMBOL)) || wpm_is_cjk(c)) {
            wpm_flush(w, &n);
            if (wpm_append(w, &n, u, k)) wpm_flush(w, &n);
        } else {
            wpm_append(w, &n, u, k);
        }
    }
    wpm_flush(w, &n);
}
