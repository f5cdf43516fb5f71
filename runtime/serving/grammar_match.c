/*
 * grammar_match.c - the matcher: a set of pushdown stacks over grammar
 * positions, advanced one code point at a time (as llama.cpp's grammar
 * sampler does), with a partial UTF-8 character carried between inputs.
 *
 * A stack lists positions bottom first; its top is a terminal or the stack is
 * empty (the sentence may end there). Advancing by a code point keeps the
 * stacks whose top matches, moves past the terminal and expands rule
 * references into one stack per alternative. Stack sets are deduplicated so
 * ambiguous grammars stay polynomial. Owner: each matcher owns its stacks and
 * scratch; the grammar is borrowed (the caller keeps a reference).
 */
#include <stdlib.h>
#include <string.h>

#include "grammar_impl.h"

/* ---------------------------------------------------------------- UTF-8 */

int gutf8_step(gutf8 *u, uint8_t b) {
    if (u->rem == 0) {
        if (b < 0x80) {
            u->cp = b;
            u->len = 1;
            return 1;
        }
        if ((b & 0xE0) == 0xC0 && b >= 0xC2) {
            u->cp = b & 0x1Fu;
            u->rem = 1;
        } else if ((b & 0xF0) == 0xE0) {
            u->cp = b & 0x0Fu;
            u->rem = 2;
        } else if ((b & 0xF8) == 0xF0 && b <= 0xF4) {
            u->cp = b & 0x07u;
            u->rem = 3;
        } else {
            return -1;
        }
        u->len = (uint8_t)(u->rem + 1);
        return 0;
    }
    if ((b & 0xC0) != 0x80) return -1;
    u->cp = (u->cp << 6) | (b & 0x3Fu);
    if (--u->rem) {
        /* reject overlong / surrogate / out-of-range prefixes as early as possible */
        if (u->len == 3 && u->rem == 1 && (u->cp < 0x20 || (u->cp >= 0x360 && u->cp < 0x380))) return -1;
        if (u->len == 4 && u->rem == 2 && (u->cp < 0x10 || u->cp > 0x10F)) return -1;
        return 0;
    }
    if ((u->len == 3 && u->cp < 0x800) || (u->len == 4 && (u->cp < 0x10000 || u->cp > 0x10FFFF)) ||
        (u->cp >= 0xD800 && u->cp <= 0xDFFF))
        return -1;
    return 1;
}

void gutf8_range(const gutf8 *u, uint32_t *lo, uint32_t *hi) {
    unsigned sh = 6u * u->rem;
    *lo = u->cp << sh;
    *hi = *lo | ((1u << sh) - 1);
    static const uint32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlong forms */
    if (*lo < min_of_len[u->len]) *lo = min_of_len[u->len];
    if (*hi > 0x10FFFF) *hi = 0x10FFFF;
}

/* ---------------------------------------------------------------- stack sets */

void gstacks_free(gstacks *s) {
    free(s->w);
    memset(s, 0, sizeof *s);
}

static bool gstacks_reserve(gstacks *s, uint32_t more) {
    if (s->n_w + more <= s->cap_w) return true;
    uint32_t nc = s->cap_w ? s->cap_w : 64;
    while (nc < s->n_w + more)
        nc *= 2;
    uint32_t *nw = realloc(s->w, nc * sizeof *nw);
    if (!nw) return false;
    s->w = nw;
    s->cap_w = nc;
    return true;
}

bool gstacks_copy(gstacks *dst, const gstacks *src) {
    dst->n_w = dst->n_stacks = 0;
    if (!gstacks_reserve(dst, src->n_w)) return false;
    if (src->n_w) memcpy(dst->w, src->w, src->n_w * sizeof *dst->w);
    dst->n_w = src->n_w;
    dst->n_stacks = src->n_stacks;
    return true;
}

/* Add a stack unless an equal one is there already. */
static bool gstacks_add(gstacks *s, const uint32_t *st, uint32_t len) {
    for (uint32_t i = 0, k = 0; k < s->n_stacks; k++) {
        uint32_t l = s->w[i];
        if (l == len && !memcmp(s->w + i + 1, st, len * sizeof *st)) return true;
        i += l + 1;
    }
    if (!gstacks_reserve(s, len + 1)) return false;
    s->w[s->n_w] = len;
    memcpy(s->w + s->n_w + 1, st, len * sizeof *st);
    s->n_w += len + 1;
    s->n_stacks++;
    return true;
}

bool gram_has_empty(const gstacks *s) {
    for (uint32_t i = 0, k = 0; k < s->n_stacks; k++) {
        if (s->w[i] == 0) return true;
        i += s->w[i] + 1;
    }
    return false;
}

/* ---------------------------------------------------------------- expansion */

static bool scratch_fit(scratch *sc, uint32_t n) {
    if (n <= sc->cap) return true;
    uint32_t nc = sc->cap ? sc->cap * 2 : 64;
    while (nc < n)
        nc *= 2;
    uint32_t *na = realloc(sc->a, nc * sizeof *na);
    if (!na) return false;
    sc->a = na;
    sc->cap = nc;
    return true;
}

/* Add the stack sc->a[0..len) to out with rule references on top expanded.
 * Writes only at indices >= len - 1 and restores index len - 1 on return, so
 * callers' data below stays intact. */
static bool expand(const hearth_grammar *g, gstacks *out, scratch *sc, uint32_t len) {
    if (len == 0) return gstacks_add(out, sc->a, 0);
    uint32_t pos = sc->a[len - 1];
    const gelem *e = &g->el[pos];
    if (e->type != GE_RULE_REF) return gstacks_add(out, sc->a, len);
    bool cont = !gelem_is_end(&g->el[pos + 1]);
    uint32_t a = g->rule_start[e->value];
    bool ok = scratch_fit(sc, len + 2);
    while (ok) {
        uint32_t n = len - 1;
        if (cont) sc->a[n++] = pos + 1; /* what follows the reference, under the alternative */
        if (!gelem_is_end(&g->el[a])) sc->a[n++] = a;
        ok = expand(g, out, sc, n);
        while (!gelem_is_end(&g->el[a]))
            a++;
        if (g->el[a].type == GE_END) break;
        a++;
    }
    sc->a[len - 1] = pos;
    return ok;
}

/* Does the terminal at e match cp? *next: the element after the class. */
static bool match_class(const gelem *e, uint32_t cp, uint32_t *adv) {
    if (e->type == GE_CHAR_ANY) {
        *adv = 1;
        return true;
    }
    const gelem *s = e;
    bool want = e->type == GE_CHAR, found = false;
    do {
        if (e[1].type == GE_CHAR_RNG_UPPER) {
            found |= e->value <= cp && cp <= e[1].value;
            e += 2;
        } else {
            found |= e->value == cp;
            e += 1;
        }
    } while (e->type == GE_CHAR_ALT);
    *adv = (uint32_t)(e - s);
    return found == want;
}

/* Could the terminal at e match some code point in [lo, hi]? (For negated
 * classes: unless one range covers all of [lo, hi] -- conservative.) */
static bool class_meets(const gelem *e, uint32_t lo, uint32_t hi) {
    if (e->type == GE_CHAR_ANY) return true;
    bool want = e->type == GE_CHAR;
    do {
        uint32_t a = e->value, b = e->value;
        if (e[1].type == GE_CHAR_RNG_UPPER) {
            b = e[1].value;
            e += 2;
        } else {
            e += 1;
        }
        if (want && a <= hi && b >= lo) return true;
        if (!want && a <= lo && b >= hi) return false;
    } while (e->type == GE_CHAR_ALT);
    return !want;
}

bool gram_range_possible(const hearth_grammar *g, const gstacks *s, uint32_t lo, uint32_t hi) {
    for (uint32_t i = 0, k = 0; k < s->n_stacks; k++) {
        uint32_t l = s->w[i];
        if (l && class_meets(&g->el[s->w[i + l]], lo, hi)) return true;
        i += l + 1;
    }
    return false;
}

bool gram_advance(const hearth_grammar *g, const gstacks *in, uint32_t cp, gstacks *out, scratch *sc) {
    out->n_w = out->n_stacks = 0;
    for (uint32_t i = 0, k = 0; k < in->n_stacks; k++) {
        uint32_t l = in->w[i];
        const uint32_t *st = in->w + i + 1;
        i += l + 1;
        uint32_t adv;
        if (!l || !match_class(&g->el[st[l - 1]], cp, &adv)) continue;
        if (!scratch_fit(sc, l + 1)) return false;
        memcpy(sc->a, st, (l - 1) * sizeof *st);
        uint32_t n = l - 1, next = st[l - 1] + adv;
        if (!gelem_is_end(&g->el[next])) sc->a[n++] = next;
        if (!expand(g, out, sc, n)) return false;
    }
    return true;
}

bool gram_start(const hearth_grammar *g, gstacks *out, scratch *sc) {
    out->n_w = out->n_stacks = 0;
    uint32_t a = g->rule_start[g->root];
    for (;;) { /* one stack per alternative of the root */
        uint32_t n = 0;
        if (!scratch_fit(sc, 1)) return false;
        if (!gelem_is_end(&g->el[a])) sc->a[n++] = a;
        if (!expand(g, out, sc, n)) return false;
        while (!gelem_is_end(&g->el[a]))
            a++;
        if (g->el[a].type == GE_END) return true;
        a++;
    }
}

void scratch_free(scratch *sc) {
    free(sc->a);
    sc->a = NULL;
    sc->cap = 0;
}

/* ---------------------------------------------------------------- matcher */

hearth_grammar_matcher *hearth_grammar_matcher_create(const hearth_grammar *g, hearth_error *err) {
    hearth_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m || !gram_start(g, &m->cur, &m->sc)) {
        hearth_grammar_matcher_free(m);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
        return NULL;
    }
    m->g = g;
    return m;
}

void hearth_grammar_matcher_free(hearth_grammar_matcher *m) {
    if (!m) return;
    gstacks_free(&m->cur);
    gstacks_free(&m->tmp);
    gstacks_free(&m->save);
    scratch_free(&m->sc);
    for (uint32_t d = 0; d < m->n_levels; d++)
        gstacks_free(&m->levels[d]);
    free(m->levels);
    if (m->cache) m->cache_free(m->cache);
    free(m);
}

/* Feed n bytes; on success keep the new state when `keep`, else put the
 * old one back (m->save holds it either way until the next call). */
static bool feed_bytes(hearth_grammar_matcher *m, const char *s, size_t n, bool keep) {
    if (!n) return true;
    if (!gstacks_copy(&m->save, &m->cur)) return false;
    gutf8 u0 = m->u;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        int r = gutf8_step(&m->u, (uint8_t)s[i]);
        ok = r >= 0;
        if (r > 0) {
            ok = gram_advance(m->g, &m->cur, m->u.cp, &m->tmp, &m->sc) && m->tmp.n_stacks > 0;
            gstacks t = m->cur;
            m->cur = m->tmp;
            m->tmp = t;
        } else if (r == 0) {
            uint32_t lo, hi;
            gutf8_range(&m->u, &lo, &hi);
            ok = gram_range_possible(m->g, &m->cur, lo, hi);
        }
    }
    if (!ok || !keep) {
        gstacks t = m->cur; /* put the saved state back */
        m->cur = m->save;
        m->save = t;
        m->u = u0;
    }
    return ok;
}

bool hearth_grammar_matcher_accept_bytes(hearth_grammar_matcher *m, const char *s, size_t n) {
    return feed_bytes(m, s, n, true);
}

bool hearth_grammar_matcher_allows_bytes(hearth_grammar_matcher *m, const char *s, size_t n) {
    return feed_bytes(m, s, n, false);
}

bool hearth_grammar_matcher_can_end(const hearth_grammar_matcher *m) {
    return m->u.rem == 0 && gram_has_empty(&m->cur);
}

bool hearth_grammar_matcher_is_done(const hearth_grammar_matcher *m) {
    return hearth_grammar_matcher_can_end(m) && m->cur.n_stacks == 1;
}
