/*
 * grammar_seq.c - see grammar_seq.h.
 */
#include "grammar_seq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hearth_status hearth_grammar_seq_init(hearth_grammar_seq *s, hearth_grammar *g, const char *const *triggers,
                                      int n_triggers, hearth_error *err) {
    memset(s, 0, sizeof *s);
    if (!g) return HEARTH_OK;
    s->m = hearth_grammar_matcher_create(g, err);
    if (!s->m) return err ? err->code : HEARTH_ERR_NOMEM;
    s->g = hearth_grammar_retain(g);
    s->active = n_triggers <= 0;
    if (n_triggers > 0) {
        s->triggers = calloc((size_t)n_triggers, sizeof *s->triggers);
        if (!s->triggers) goto oom;
        s->n_triggers = n_triggers;
        for (int i = 0; i < n_triggers; i++) {
            if (!triggers[i] || !triggers[i][0]) {
                hearth_grammar_seq_free(s);
                return hearth_error_set(err, HEARTH_ERR_INVALID, "grammar trigger %d is empty", i);
            }
            s->triggers[i] = strdup(triggers[i]);
            if (!s->triggers[i]) goto oom;
        }
    }
    return HEARTH_OK;
oom:
    hearth_grammar_seq_free(s);
    return hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
}

void hearth_grammar_seq_free(hearth_grammar_seq *s) {
    hearth_grammar_matcher_free(s->m);
    hearth_grammar_release(s->g);
    for (int i = 0; i < s->n_triggers; i++)
        free(s->triggers[i]);
    free(s->triggers);
    strbuf_free(&s->out);
    memset(s, 0, sizeof *s);
}

const float *hearth_grammar_seq_mask(hearth_grammar_seq *s, const hearth_grammar_vocab *v,
                                     const float *logits, float *out, uint32_t *bits) {
    if (!s->g || !s->active) return logits;
    int n = hearth_grammar_matcher_mask(s->m, v, bits);
    if (n == 0) {
        snprintf(s->error, sizeof s->error, "grammar: no token of the vocabulary can continue the output");
        return NULL;
    }
    int32_t nv = hearth_grammar_vocab_n_tokens(v);
    for (int32_t i = 0; i < nv; i++)
        out[i] = (bits[i / 32] >> (i % 32)) & 1 ? logits[i] : -INFINITY;
    return out;
}

bool hearth_grammar_seq_active(const hearth_grammar_seq *s) {
    return s->g && s->active;
}

bool hearth_grammar_seq_allows(hearth_grammar_seq *s, const hearth_grammar_vocab *v, int32_t token) {
    return hearth_grammar_matcher_allows_token(s->m, v, token);
}

bool hearth_grammar_seq_accept(hearth_grammar_seq *s, const hearth_grammar_vocab *v,
                               const hearth_tokenizer *t, int32_t token) {
    if (!s->g) return true;
    if (s->active) {
        if (hearth_grammar_matcher_accept_token(s->m, v, token)) return true;
        snprintf(s->error, sizeof s->error, "grammar: token %d does not continue the output", (int)token);
        return false;
    }
    if (hearth_tokenizer_is_eog(t, token)) return true;
    char piece[600];
    size_t k = hearth_tokenizer_piece(t, token, false, piece, sizeof piece);
    size_t before = s->out.n;
    strbuf_add(&s->out, piece, k < sizeof piece ? k : sizeof piece);
    if (s->out.oom) {
        snprintf(s->error, sizeof s->error, "grammar: out of memory");
        return false;
    }
    size_t best = SIZE_MAX;
    for (int i = 0; i < s->n_triggers; i++) { /* the earliest trigger that ends in this token */
        size_t tl = strlen(s->triggers[i]);
        size_t from = before >= tl ? before - tl + 1 : 0;
        char *hit = s->out.n >= tl ? memmem(s->out.p + from, s->out.n - from, s->triggers[i], tl) : NULL;
        if (hit && (size_t)(hit - s->out.p) < best) best = (size_t)(hit - s->out.p);
    }
    if (best == SIZE_MAX) return true;
    s->active = true;
    if (!hearth_grammar_matcher_accept_bytes(s->m, s->out.p + best, s->out.n - best)) {
        snprintf(s->error, sizeof s->error,
                 "grammar: the output after the trigger does not match the grammar");
        return false;
    }
    strbuf_free(&s->out);
    return true;
}
