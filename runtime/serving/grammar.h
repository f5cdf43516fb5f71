/*
 * grammar.h - constrained decoding: a grammar restricts which tokens the
 * sampler may pick, so the output stays inside the grammar's language.
 *
 * Input forms: GBNF (llama.cpp's grammar format: rules `name ::= ...`,
 * alternation `|`, grouping `( )`, repetition `* + ? {m} {m,} {m,n}`,
 * literals "..." with escapes, character classes [a-z] [^...] with ranges
 * and escapes, `.` for any character, `#` comments), a JSON Schema (the
 * subset listed in grammar_schema.c, turned into GBNF text first), or "any
 * JSON value" (json_object mode).
 *
 * Pieces and ownership:
 *  - hearth_grammar: compiled, immutable, reference-counted (retain/release
 *    are thread-safe); any number of matchers and requests may share one.
 *  - hearth_grammar_vocab: a trie of a tokenizer's token byte strings, built
 *    once per model and read-only afterwards (safe to share across threads).
 *  - hearth_grammar_matcher: one sequence's position in the grammar (a set of
 *    pushdown stacks plus a partial UTF-8 character); one thread at a time.
 * Invariants: a compiled grammar has no undefined rule, no left recursion, and
 * its root can derive at least one finite string. A matcher is never left
 * dead: a rejected input leaves its state unchanged. End of generation is
 * allowed exactly when the input so far is a complete sentence.
 */
#ifndef HEARTH_GRAMMAR_H
#define HEARTH_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "runtime/text/tokenizer.h"

typedef struct hearth_grammar hearth_grammar;
typedef struct hearth_grammar_vocab hearth_grammar_vocab;
typedef struct hearth_grammar_matcher hearth_grammar_matcher;

/* Compile GBNF text (len bytes). root: the start rule's name (NULL = "root").
 * Errors name the problem and where: syntax (line:column), an undefined rule,
 * left recursion, a root that can never match. */
hearth_grammar *hearth_grammar_parse(const char *gbnf, size_t len, const char *root, hearth_error *err);
/* A JSON Schema (JSON text) as GBNF text (malloc'd, NUL-terminated), or NULL
 * with err set: malformed JSON, an unsatisfiable schema (minItems > maxItems,
 * an empty enum, a required property that cannot appear, ...), and with
 * strict, any keyword outside the supported subset. */
char *hearth_json_schema_to_gbnf(const char *schema, size_t len, bool strict, hearth_error *err);
/* hearth_json_schema_to_gbnf + hearth_grammar_parse. */
hearth_grammar *hearth_grammar_from_json_schema(const char *schema, size_t len, bool strict,
                                                hearth_error *err);
/* Any JSON value whose top level is an object (OpenAI json_object mode,
 * Ollama format "json"). */
hearth_grammar *hearth_grammar_json_object(hearth_error *err);
/* GBNF text of the JSON value rules (value, object, array, string, number,
 * ws): for building larger grammars. */
const char *hearth_grammar_json_gbnf(void);

hearth_grammar *hearth_grammar_retain(hearth_grammar *g);
void hearth_grammar_release(hearth_grammar *g); /* frees at the last release; NULL is fine */
int hearth_grammar_n_rules(const hearth_grammar *g);

/* ---------------------------------------------------------------- matching */

hearth_grammar_matcher *hearth_grammar_matcher_create(const hearth_grammar *g, hearth_error *err);
void hearth_grammar_matcher_free(hearth_grammar_matcher *m);
/* Feed n bytes of output. Returns false (state unchanged) when they cannot
 * continue a sentence of the grammar (invalid UTF-8 included). */
bool hearth_grammar_matcher_accept_bytes(hearth_grammar_matcher *m, const char *s, size_t n);
/* Whether accept_bytes would take these bytes; the state stays as it was. */
bool hearth_grammar_matcher_allows_bytes(hearth_grammar_matcher *m, const char *s, size_t n);
/* True when the input so far is a complete sentence (EOS allowed here). */
bool hearth_grammar_matcher_can_end(const hearth_grammar_matcher *m);
/* True when nothing more can follow (the only way on is to end). */
bool hearth_grammar_matcher_is_done(const hearth_grammar_matcher *m);

/* ---------------------------------------------------------------- tokens */

/* Trie of the detokenized bytes of every token (control tokens excluded;
 * end-of-generation tokens listed apart). */
hearth_grammar_vocab *hearth_grammar_vocab_create(const hearth_tokenizer *t, hearth_error *err);
void hearth_grammar_vocab_free(hearth_grammar_vocab *v);
int32_t hearth_grammar_vocab_n_tokens(const hearth_grammar_vocab *v);
/* Which tokens may come next: bit i of allowed[i / 32] (n_vocab bits, the
 * array holds (n_vocab + 31) / 32 words) is set when token i's bytes continue
 * the sentence (a token ending inside a UTF-8 character counts when some
 * allowed character starts that way), or token i ends generation and the
 * sentence is complete. Returns the number of allowed tokens. */
int hearth_grammar_matcher_mask(hearth_grammar_matcher *m, const hearth_grammar_vocab *v, uint32_t *allowed);
/* Advance by a token's bytes (an end-of-generation token: true iff can_end). */
bool hearth_grammar_matcher_accept_token(hearth_grammar_matcher *m, const hearth_grammar_vocab *v,
                                         int32_t token);
/* Whether accept_token would take token (its bit in a mask), without
 * changing the state: a check of one token instead of a whole mask. */
bool hearth_grammar_matcher_allows_token(hearth_grammar_matcher *m, const hearth_grammar_vocab *v,
                                         int32_t token);

#endif
