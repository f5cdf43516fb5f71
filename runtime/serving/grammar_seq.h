/*
 * grammar_seq.h - one sequence's grammar constraint inside the engine: the
 * matcher, lazy triggers, and the masking of a logits row.
 *
 * Lazy grammars: while no trigger has appeared in the output the sequence is
 * unconstrained; when the output (the bytes of the generated tokens) first
 * contains a trigger, the matcher is fed the output from the trigger's first
 * byte on, so the grammar must match the trigger text itself (e.g.
 * root ::= "<tool_call>" ...), and every later token is constrained.
 * Ownership: holds a reference to the grammar and owns its matcher; used by
 * the engine's worker thread only.
 */
#ifndef HEARTH_GRAMMAR_SEQ_H
#define HEARTH_GRAMMAR_SEQ_H

#include "core/strbuf.h"
#include "grammar.h"

typedef struct hearth_grammar_seq {
    hearth_grammar *g; /* NULL: unconstrained */
    hearth_grammar_matcher *m;
    char **triggers; /* lazy: inactive until one appears */
    int n_triggers;
    bool active;
    strbuf out;      /* output so far while inactive */
    char error[160]; /* why the sequence had to stop */
} hearth_grammar_seq;

hearth_status hearth_grammar_seq_init(hearth_grammar_seq *s, hearth_grammar *g, const char *const *triggers,
                                      int n_triggers, hearth_error *err);
void hearth_grammar_seq_free(hearth_grammar_seq *s);
/* Mask logits[n_vocab] into out[n_vocab] (disallowed = -inf); `bits` is
 * scratch of (n_vocab + 31) / 32 words. Returns the row to sample from
 * (logits itself when inactive), or NULL (error set) when no token fits. */
const float *hearth_grammar_seq_mask(hearth_grammar_seq *s, const hearth_grammar_vocab *v,
                                     const float *logits, float *out, uint32_t *bits);
/* True when the constraint applies to the next token (a grammar, and for a
 * lazy one, its trigger seen). */
bool hearth_grammar_seq_active(const hearth_grammar_seq *s);
/* Whether token may come next (its bit in the mask), without changing the
 * state. Only for an active sequence. */
bool hearth_grammar_seq_allows(hearth_grammar_seq *s, const hearth_grammar_vocab *v, int32_t token);
/* Record the sampled token; false (error set) when it breaks the grammar. */
bool hearth_grammar_seq_accept(hearth_grammar_seq *s, const hearth_grammar_vocab *v,
                               const hearth_tokenizer *t, int32_t token);

#endif
