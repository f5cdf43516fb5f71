/*
 * grammar_impl.h - the compiled grammar's layout, shared by the grammar_*.c
 * files only (not part of the public API).
 *
 * A grammar is one flat array of elements. Rule r starts at rule_start[r]; its
 * alternatives are element sequences separated by ALT and the rule ends with
 * END. A character class is one CHAR or CHAR_NOT element followed by CHAR_ALT
 * (another character) and CHAR_RNG_UPPER (the previous character is a range's
 * lower bound) elements. CHAR_ANY (`.`) matches any code point. Positions
 * (indices into the array) are what the matcher's stacks hold; a stack's top
 * is always a terminal (CHAR, CHAR_NOT or CHAR_ANY).
 */
#ifndef HEARTH_GRAMMAR_IMPL_H
#define HEARTH_GRAMMAR_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "grammar.h"

enum {
    GE_END = 0,
    GE_ALT,
    GE_RULE_REF,
    GE_CHAR,
    GE_CHAR_NOT,
    GE_CHAR_RNG_UPPER,
    GE_CHAR_ALT,
    GE_CHAR_ANY,
};

typedef struct gelem {
    uint32_t type;
    uint32_t value; /* code point, or rule index for RULE_REF */
} gelem;

struct hearth_grammar {
    atomic_int refs;
    gelem *el;
    uint32_t n_el;
    uint32_t *rule_start; /* [n_rules] */
    uint32_t n_rules;
    uint32_t root;
};

static inline bool gelem_is_end(const gelem *e) {
    return e->type == GE_END || e->type == GE_ALT;
}

/* Stack sets: a word array holding, per stack, its length then its positions
 * (bottom first). matcher.c owns the arithmetic. */
typedef struct gstacks {
    uint32_t *w;
    uint32_t n_w, cap_w;
    uint32_t n_stacks;
} gstacks;

/* Expansion scratch (one per matcher). */
typedef struct scratch {
    uint32_t *a;
    uint32_t cap;
} scratch;
void scratch_free(scratch *sc);

/* Advance every stack of `in` by code point cp into `out` (cleared first);
 * returns false on allocation failure. */
bool gram_advance(const hearth_grammar *g, const gstacks *in, uint32_t cp, gstacks *out, scratch *sc);
/* The start stacks of a grammar into out. */
bool gram_start(const hearth_grammar *g, gstacks *out, scratch *sc);
/* Could any stack's top accept some code point in [lo, hi]? */
bool gram_range_possible(const hearth_grammar *g, const gstacks *s, uint32_t lo, uint32_t hi);
bool gram_has_empty(const gstacks *s);
void gstacks_free(gstacks *s);
bool gstacks_copy(gstacks *dst, const gstacks *src);

/* UTF-8 decoding one byte at a time: cp accumulates, rem counts the bytes
 * still expected. Returns -1 for an invalid byte, 0 while a character is
 * incomplete, 1 when cp is complete. */
typedef struct gutf8 {
    uint32_t cp;
    uint8_t rem, len;
} gutf8;
int gutf8_step(gutf8 *u, uint8_t b);
/* Code point range a partial character can still become. */
void gutf8_range(const gutf8 *u, uint32_t *lo, uint32_t *hi);

struct hearth_grammar_matcher {
    const hearth_grammar *g;
    gstacks cur;       /* the live stacks */
    gutf8 u;           /* a character begun but not finished */
    gstacks tmp, save; /* scratch for accept_bytes */
    scratch sc;
    gstacks *levels; /* per trie depth, for masks */
    uint32_t n_levels;
    struct mask_cache *cache; /* masks of recent states (grammar_mask.c), NULL until the first mask */
    void (*cache_free)(struct mask_cache *); /* set with cache, so grammar_match.c needs no mask code */
};

#endif
