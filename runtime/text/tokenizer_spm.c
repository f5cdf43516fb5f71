/*
 * tokenizer_spm.c - SentencePiece-style ("llama") encoding of one raw-text
 * fragment, as llama.cpp's llm_tokenizer_spm_session::tokenize does it.
 *
 * Ownership: tokenizer engineer. Works in the caller's tokenizer_work and
 * appends to its output; reads the tokenizer only.
 * Behaviour: spaces become "▁" (plus a leading one when asked), characters
 * are merged pairwise by the score of the token they form (highest first,
 * leftmost on ties), and a final symbol that is not a token falls back to
 * its byte tokens <0xXX> (or <unk> where a byte has none).
 */
#include <string.h>

#include "tokenizer_impl.h"

#include "core/grow.h"

#define SPM_SPACE "\xe2\x96\x81" /* U+2581 "▁" */

static void spm_try_bigram(tokenizer_work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const tokenizer_symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t id = hearth_tokenizer_find(w->t, w->buf + l->off, l->n + r->n);
    if (id < 0) return;
    tokenizer_heap_push(&w->q, (tokenizer_bigram){w->t->score[id], 0, left, right, l->n + r->n});
}

/* Merge w->buf[0..n) and emit the resulting symbols. */
static void spm_tokenize(tokenizer_work *w, size_t n) {
    size_t ns = tokenizer_make_symbols(w, n);
    if (!ns) return;
    tokenizer_merge_symbols(w, ns, true, spm_try_bigram);
    const hearth_tokenizer *t = w->t;
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const tokenizer_symbol *s = &w->sym[i];
        int32_t id = hearth_tokenizer_find(t, w->buf + s->off, s->n);
        if (id >= 0) {
            tokenizer_emit(w, id);
            continue;
        }
        /* byte fallback (a symbol that is not a token is never a merge) */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t b = t->byte_token[(unsigned char)w->buf[s->off + j]];
            if (b < 0) b = t->unk;
            if (b >= 0) tokenizer_emit(w, b);
        }
    }
}

void tokenizer_spm_fragment(tokenizer_work *w, const char *text, size_t len, bool prefix) {
    size_t need = (len + 1) * 3;
    if (!hearth_grow((void **)&w->buf, &w->buf_cap, need, 1)) {
        w->oom = true;
        return;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(w->buf, SPM_SPACE, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w->buf + n, SPM_SPACE, 3);
            n += 3;
        } else {
            w->buf[n++] = text[i];
        }
    }
    if (n) spm_tokenize(w, n);
}
