/*
 * tokenizer_merge.c - the symbol list and bigram priority queue that SPM and
 * BPE encoding both merge over (llama.cpp's llm_symbol / llm_bigram_*).
 *
 * Ownership: tokenizer engineer. All memory lives in the caller's
 * tokenizer_work and is reused across the fragments of one encode call;
 * tokenizer_work_free releases it. An allocation failure never aborts
 * midway: it sets w->oom (or the heap's oom) and the encode call reports it.
 * Invariant: the queue pops the best bigram first (SPM: highest score, BPE:
 * lowest rank) and, on ties, the leftmost, as llama.cpp's comparators do.
 */
#include <stdlib.h>

#include "tokenizer_impl.h"
#include "unicode.h"

#include "core/grow.h"

void tokenizer_work_free(tokenizer_work *w) {
    free(w->buf);
    free(w->sym);
    free(w->q.v);
    w->buf = NULL;
    w->sym = NULL;
    w->q.v = NULL;
    w->buf_cap = w->sym_cap = w->q.cap = w->q.n = 0;
}

void tokenizer_emit(tokenizer_work *w, int32_t id) {
    if (!hearth_tokens_push(w->out, id)) w->oom = true;
}

size_t tokenizer_make_symbols(tokenizer_work *w, size_t n) {
    if (!hearth_grow((void **)&w->sym, &w->sym_cap, n, sizeof *w->sym)) {
        w->oom = true;
        return 0;
    }
    size_t k = 0;
    for (size_t off = 0; off < n; k++) {
        size_t len = hearth_utf8_len((unsigned char)w->buf[off]);
        if (len > n - off) len = n - off;
        w->sym[k] = (tokenizer_symbol){(int32_t)k - 1, off + len == n ? -1 : (int32_t)k + 1, (uint32_t)off,
                                       (uint32_t)len};
        off += len;
    }
    return k;
}

/* Does a come out of the queue before b? Ties go to the leftmost pair. */
static inline bool heap_before(const tokenizer_heap *h, const tokenizer_bigram *a,
                               const tokenizer_bigram *b) {
    if (h->spm) {
        if (a->score != b->score) return a->score > b->score;
    } else if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

void tokenizer_heap_push(tokenizer_heap *h, tokenizer_bigram x) {
    if (!hearth_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) {
        h->oom = true;
        return;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_before(h, &x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

static tokenizer_bigram heap_pop(tokenizer_heap *h) {
    tokenizer_bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && heap_before(h, &h->v[c + 1], &h->v[c])) c++;
        if (!heap_before(h, &h->v[c], &x)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

void tokenizer_merge_symbols(tokenizer_work *w, size_t ns, bool spm, tokenizer_try_bigram_fn try_bigram) {
    w->q.n = 0;
    w->q.spm = spm;
    for (size_t i = 1; i < ns; i++)
        try_bigram(w, (int32_t)i - 1, (int32_t)i);
    while (w->q.n) {
        tokenizer_bigram bg = heap_pop(&w->q);
        tokenizer_symbol *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = bg.left;
        try_bigram(w, l->prev, bg.left);
        try_bigram(w, bg.left, l->next);
    }
    if (w->q.oom) w->oom = true;
}
