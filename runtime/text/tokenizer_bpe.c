/*
 * tokenizer_bpe.c - byte-level BPE ("gpt2") encoding of one pre-tokenized
 * word, as llama.cpp's llm_tokenizer_bpe_session::tokenize does it.
 *
 * Ownership: tokenizer engineer. Works in the caller's tokenizer_work and
 * appends to its output; reads the tokenizer only.
 * Behaviour: the word's bytes are mapped to the GPT-2 byte alphabet; with
 * ignore_merges a word that is a whole token is emitted as is; otherwise
 * characters are merged pairwise by merge rank (lowest first, leftmost on
 * ties), and a final symbol that is not a token is emitted byte by byte
 * where those bytes are tokens (the rest is dropped, as in llama.cpp).
 */
#include <string.h>

#include "tokenizer_impl.h"

#include "core/grow.h"

/* Rank of merging the adjacent texts s[0..split) and s[split..len); -1 if none. */
static int32_t bpe_merge_rank(const hearth_tokenizer *t, const char *s, size_t len, size_t split) {
    if (!t->merge_slot) return -1;
    size_t i = tokenizer_hash_bytes(s, len, split) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        int32_t k = t->merge_slot[i];
        if (k < 0) return -1;
        const merge_entry *m = &t->merge[k];
        if (m->len == len && m->split == split && memcmp(t->merge_text + m->off, s, len) == 0) return m->rank;
    }
}

static void bpe_try_bigram(tokenizer_work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const tokenizer_symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t rank = bpe_merge_rank(w->t, w->buf + l->off, l->n + r->n, l->n);
    if (rank < 0) return;
    tokenizer_heap_push(&w->q, (tokenizer_bigram){0, rank, left, right, l->n + r->n});
}

bool tokenizer_bpe_word(void *user, const char *word, size_t len) {
    tokenizer_work *w = user;
    const hearth_tokenizer *t = w->t;
    if (!hearth_grow((void **)&w->buf, &w->buf_cap, len * 2, 1)) {
        w->oom = true;
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)word[i];
        memcpy(w->buf + n, t->byte_utf8[c], t->byte_utf8_len[c]);
        n += t->byte_utf8_len[c];
    }
    if (t->ignore_merges) {
        int32_t id = hearth_tokenizer_find(t, w->buf, n);
        if (id >= 0) {
            tokenizer_emit(w, id);
            return !w->oom;
        }
    }
    size_t ns = tokenizer_make_symbols(w, n);
    if (!ns) return !w->oom;
    tokenizer_merge_symbols(w, ns, false, bpe_try_bigram);
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const tokenizer_symbol *s = &w->sym[i];
        int32_t id = hearth_tokenizer_find(t, w->buf + s->off, s->n);
        if (id >= 0) {
            tokenizer_emit(w, id);
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) { /* single bytes that happen to be tokens */
            int32_t b = hearth_tokenizer_find(t, w->buf + s->off + j, 1);
            if (b >= 0) tokenizer_emit(w, b);
        }
    }
    return !w->oom;
}
