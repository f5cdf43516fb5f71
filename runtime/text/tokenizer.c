/*
 * tokenizer.c - text -> token ids for GGUF vocabularies, matching llama.cpp
 * (llama-vocab.cpp) id for id: the token list, look-ups and queries, the
 * special-token partition, and hearth_tokenizer_encode, which hands each raw
 * fragment to the SPM or BPE encoder.
 *
 * Ownership: tokenizer engineer. The tokenizer itself is built by
 * tokenizer_load.c and never written afterwards; encoding allocates its
 * scratch per call, so many threads may share one tokenizer. The other parts:
 * tokenizer_spm.c, tokenizer_bpe.c, tokenizer_merge.c (the merge queue both
 * use) and detokenize.c; tokenizer_impl.h holds what they share.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

#include "core/grow.h"

/* ================================================================ token lists and look-ups */

void hearth_tokens_free(hearth_tokens *t) {
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

bool hearth_tokens_push(hearth_tokens *t, int32_t id) {
    if (!hearth_grow((void **)&t->ids, &t->cap, t->n + 1, sizeof *t->ids)) return false;
    t->ids[t->n++] = id;
    return true;
}

int32_t hearth_tokenizer_find(const hearth_tokenizer *t, const char *text, size_t len) {
    size_t i = tokenizer_hash_bytes(text, len, 0) & t->tok_mask;
    for (;; i = (i + 1) & t->tok_mask) {
        int32_t id = t->tok_slot[i];
        if (id < 0) return -1;
        size_t n;
        const char *s = tokenizer_text_of(t, id, &n);
        if (n == len && memcmp(s, text, len) == 0) return id;
    }
}

/* ================================================================ queries */

hearth_vocab_kind hearth_tokenizer_kind(const hearth_tokenizer *t) {
    return t->kind;
}
int32_t hearth_tokenizer_n_vocab(const hearth_tokenizer *t) {
    return t->n_vocab;
}
int32_t hearth_tokenizer_bos(const hearth_tokenizer *t) {
    return t->bos;
}
int32_t hearth_tokenizer_eos(const hearth_tokenizer *t) {
    return t->eos;
}
int32_t hearth_tokenizer_sep(const hearth_tokenizer *t) {
    return t->sep;
}
int32_t hearth_tokenizer_eot(const hearth_tokenizer *t) {
    return t->eot;
}
bool hearth_tokenizer_add_bos_default(const hearth_tokenizer *t) {
    return t->add_bos;
}
bool hearth_tokenizer_add_eos_default(const hearth_tokenizer *t) {
    return t->add_eos;
}
bool hearth_tokenizer_is_eog(const hearth_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & ATTR_EOG);
}
int hearth_tokenizer_token_type(const hearth_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return 0;
    if (t->attr[id] & ATTR_CONTROL) return HEARTH_TOKEN_CONTROL; /* includes llama.cpp's promotions */
    return t->type[id];
}
const char *hearth_tokenizer_text(const hearth_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    size_t n;
    const char *s = tokenizer_text_of(t, id, &n);
    if (len) *len = n;
    return s;
}
const char *hearth_tokenizer_pre_name(const hearth_tokenizer *t) {
    return t->pre_name;
}
const char *hearth_tokenizer_pretokenizer(const hearth_tokenizer *t) {
    return t->kind == HEARTH_VOCAB_SPM   ? "spm"
           : t->kind == HEARTH_VOCAB_WPM ? "wpm"
                                         : hearth_pretok_name(t->pretok);
}
const char *hearth_tokenizer_note(const hearth_tokenizer *t) {
    return t->note.n ? t->note.p : NULL;
}

/* ================================================================ special-token partition */

/* A fragment of the input: a token already decided (id >= 0) or raw text. */
typedef struct frag {
    int32_t id;
    uint32_t off, len;
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static bool frags_push(frag_list *l, int32_t id, size_t off, size_t len) {
    if (!hearth_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) return false;
    l->v[l->n++] = (frag){id, (uint32_t)off, (uint32_t)len};
    return true;
}

/* Split text on the texts of special tokens, longest token first, every
 * occurrence left to right (llama.cpp's tokenizer_st_partition). With
 * parse_special false only user-defined tokens are split out. */
static bool partition(const hearth_tokenizer *t, const char *text, size_t len, bool parse_special,
                      frag_list *out) {
    frag_list a = {0}, b = {0};
    bool ok = frags_push(&a, -1, 0, len);
    /* pairs of adjacent bytes present in the text: a cheap filter that skips
     * most special tokens without searching */
    uint8_t *pairs = NULL;
    if (ok && t->n_special > 8 && len >= 2) {
        pairs = calloc(65536 / 8, 1);
        if (pairs)
            for (size_t i = 0; i + 1 < len; i++) {
                unsigned k = (unsigned char)text[i] << 8 | (unsigned char)text[i + 1];
                pairs[k >> 3] |= (uint8_t)(1u << (k & 7));
            }
    }
    for (size_t si = 0; ok && si < t->n_special; si++) {
        const int32_t id = t->special[si];
        const uint16_t attr = t->attr[id];
        if (!parse_special && (attr & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        size_t slen;
        const char *stext = tokenizer_text_of(t, id, &slen);
        if (slen > len) continue;
        if (pairs && slen >= 2) {
            unsigned k = (unsigned char)stext[0] << 8 | (unsigned char)stext[1];
            if (!(pairs[k >> 3] & (1u << (k & 7)))) continue;
        }
        bool any = false;
        b.n = 0;
        for (size_t j = 0; ok && j < a.n; j++) {
            frag f = a.v[j];
            if (f.id >= 0) {
                ok = frags_push(&b, f.id, f.off, f.len);
                continue;
            }
            size_t base = f.off, blen = f.len;
            for (;;) {
                const char *m = blen >= slen ? memmem(text + base, blen, stext, slen) : NULL;
                if (!m) {
                    if (blen) ok = ok && frags_push(&b, -1, base, blen);
                    break;
                }
                any = true;
                size_t mo = (size_t)(m - text);
                size_t left = mo - base;
                if (attr & ATTR_LSTRIP)
                    while (left > 0 && isspace((unsigned char)text[base + left - 1]))
                        left--;
                if (left) ok = ok && frags_push(&b, -1, base, left);
                ok = ok && frags_push(&b, id, mo, slen);
                size_t r_off = mo + slen, r_len = base + blen - r_off;
                if (attr & ATTR_RSTRIP)
                    while (r_len > 0 && isspace((unsigned char)text[r_off])) {
                        r_off++;
                        r_len--;
                    }
                base = r_off;
                blen = r_len;
            }
        }
        if (any) {
            frag_list tmp = a;
            a = b;
            b = tmp;
        }
    }
    free(pairs);
    free(b.v);
    if (!ok) {
        free(a.v);
        return false;
    }
    *out = a;
    return true;
}

/* ================================================================ encode */

hearth_status hearth_tokenizer_encode(const hearth_tokenizer *t, const char *text, size_t len, bool add_bos,
                                      bool parse_special, hearth_tokens *out, hearth_error *err) {
    if (!t || !out || (len && !text))
        return hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_tokenizer_encode: NULL argument");
    if (len > UINT32_MAX / 4)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "hearth_tokenizer_encode: text of %zu bytes is too long", len);
    tokenizer_work w = {.t = t, .out = out};
    frag_list frags = {0};
    if (add_bos && t->bos >= 0) tokenizer_emit(&w, t->bos);
    if (len && !partition(t, text, len, parse_special, &frags)) w.oom = true;
    bool prev_special = true; /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < frags.n && !w.oom; i++) {
        const frag *f = &frags.v[i];
        if (f->id >= 0) {
            tokenizer_emit(&w, f->id);
            prev_special = true;
            continue;
        }
        if (t->kind == HEARTH_VOCAB_WPM) {
            tokenizer_wpm_fragment(&w, text + f->off, f->len);
        } else if (t->kind == HEARTH_VOCAB_SPM) {
            tokenizer_spm_fragment(&w, text + f->off, f->len, t->add_space_prefix && prev_special);
        } else {
            hearth_status st = hearth_pretokenize(t->pretok, text + f->off, f->len, tokenizer_bpe_word, &w);
            if (st == HEARTH_ERR_NOMEM) w.oom = true;
        }
        prev_special = false;
    }
    if (add_bos && t->kind == HEARTH_VOCAB_WPM && t->sep >= 0 && !w.oom) tokenizer_emit(&w, t->sep);
    free(frags.v);
    tokenizer_work_free(&w);
    if (w.oom)
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory while tokenizing %zu bytes", len);
    return HEARTH_OK;
}
