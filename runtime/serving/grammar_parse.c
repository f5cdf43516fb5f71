/*
 * grammar_parse.c - GBNF text -> compiled grammar (see grammar_impl.h for the
 * layout), plus the checks that make a grammar safe to run: every referenced
 * rule defined, no left recursion (the matcher would loop), and a root that
 * derives some finite string.
 *
 * Groups and repetitions become generated rules ("name-N"): x* is
 * R ::= x R | (empty), x+ is x R, x? is R ::= x | (empty), x{m,n} is m copies
 * of x followed by n-m nested optional rules. Owner: the parser owns its
 * scratch rules until they are flattened into the grammar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_impl.h"

#define GRAMMAR_MAX_REPEAT 4096

typedef struct gvec {
    gelem *e;
    uint32_t n, cap;
} gvec;

typedef struct prule {
    char *name;
    gvec body;
    bool defined;
} prule;

typedef struct parser {
    const char *s, *end, *p;
    prule *rules;
    uint32_t n_rules, cap_rules;
    uint32_t n_generated;
    hearth_error *err;
    bool failed;
} parser;

static bool gvec_push(gvec *v, uint32_t type, uint32_t value) {
    if (v->n == v->cap) {
        uint32_t nc = v->cap ? v->cap * 2 : 16;
        gelem *ne = realloc(v->e, nc * sizeof *ne);
        if (!ne) return false;
        v->e = ne;
        v->cap = nc;
    }
    v->e[v->n++] = (gelem){type, value};
    return true;
}

static bool gvec_append(gvec *v, const gelem *e, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (!gvec_push(v, e[i].type, e[i].value)) return false;
    return true;
}

static void fail_at(parser *ps, const char *at, const char *what) {
    if (ps->failed) return;
    ps->failed = true;
    int line = 1, col = 1;
    for (const char *q = ps->s; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    hearth_error_set(ps->err, HEARTH_ERR_INVALID, "grammar: %s at line %d column %d", what, line, col);
}

static void fail_oom(parser *ps) {
    if (ps->failed) return;
    ps->failed = true;
    hearth_error_set(ps->err, HEARTH_ERR_NOMEM, "grammar: out of memory");
}

/* Index of rule `name` (len bytes), created undefined when new. */
static int32_t rule_id(parser *ps, const char *name, size_t len) {
    for (uint32_t i = 0; i < ps->n_rules; i++)
        if (strlen(ps->rules[i].name) == len && !memcmp(ps->rules[i].name, name, len)) return (int32_t)i;
    if (ps->n_rules == ps->cap_rules) {
        uint32_t nc = ps->cap_rules ? ps->cap_rules * 2 : 16;
        prule *nr = realloc(ps->rules, nc * sizeof *nr);
        if (!nr) return fail_oom(ps), -1;
        ps->rules = nr;
        ps->cap_rules = nc;
    }
    prule *r = &ps->rules[ps->n_rules];
    memset(r, 0, sizeof *r);
    r->name = malloc(len + 1);
    if (!r->name) return fail_oom(ps), -1;
    memcpy(r->name, name, len);
    r->name[len] = 0;
    return (int32_t)ps->n_rules++;
}

/* A new generated rule named after `base`. The '~' is no name character, so
 * the name can never be one a grammar defines itself (with '-', a rule "x-1"
 * of the text and the one generated for a repetition in "x" were one rule:
 * the later body replaced, and leaked, the earlier). */
static int32_t rule_generated(parser *ps, uint32_t base) {
    char nm[160];
    snprintf(nm, sizeof nm, "%.120s~%u", ps->rules[base].name, ++ps->n_generated);
    int32_t id = rule_id(ps, nm, strlen(nm));
    if (id >= 0) ps->rules[id].defined = true;
    return id;
}

/* ---------------------------------------------------------------- lexing */

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Skip spaces and comments; newlines too when `newlines`. */
static void skip_space(parser *ps, bool newlines) {
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
                ps->p++;
        } else if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
            ps->p++;
        } else {
            break;
        }
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 code point from p (advanced); invalid bytes are an error. */
static bool decode_cp(parser *ps, uint32_t *cp) {
    gutf8 u = {0};
    const char *start = ps->p;
    while (ps->p < ps->end) {
        int r = gutf8_step(&u, (uint8_t)*ps->p++);
        if (r < 0) break;
        if (r > 0) {
            *cp = u.cp;
            return true;
        }
    }
    fail_at(ps, start, "invalid UTF-8");
    return false;
}

/* One character of a literal or class, escapes decoded. */
static bool parse_char(parser *ps, uint32_t *cp) {
    if (ps->p >= ps->end) return fail_at(ps, ps->p, "unexpected end of input"), false;
    if (*ps->p != '\\') return decode_cp(ps, cp);
    const char *at = ps->p++;
    if (ps->p >= ps->end) return fail_at(ps, at, "unfinished escape"), false;
    char c = *ps->p++;
    int nhex = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (nhex) {
        uint32_t v = 0;
        for (int i = 0; i < nhex; i++) {
            int h = ps->p < ps->end ? hexval(*ps->p) : -1;
            if (h < 0) return fail_at(ps, at, "bad hex escape (\\x needs 2, \\u 4, \\U 8 hex digits)"), false;
            v = v * 16 + (uint32_t)h;
            ps->p++;
        }
        if (v > 0x10FFFF) return fail_at(ps, at, "code point above U+10FFFF"), false;
        *cp = v;
        return true;
    }
    switch (c) {
    case 'n': *cp = '\n'; return true;
    case 'r': *cp = '\r'; return true;
    case 't': *cp = '\t'; return true;
    case '0': *cp = 0; return true;
    case '\\':
    case '"':
    case '[':
    case ']':
    case '-':
    case '^':
    case '/':
    case '\'':
    case '.':
    case '(':
    case ')':
    case '|':
    case '*':
    case '+':
    case '?':
    case '{':
    case '}': *cp = (uint32_t)(unsigned char)c; return true;
    default: return fail_at(ps, at, "unknown escape"), false;
    }
}

static bool parse_alternates(parser *ps, uint32_t rule, gvec *out, bool nested);

/* Wrap out[from..] (one item) into a generated rule and leave a reference
 * to it in its place; returns the rule's index. */
static int32_t wrap_item(parser *ps, uint32_t rule, gvec *out, uint32_t from) {
    if (out->n - from == 1 && out->e[from].type == GE_RULE_REF) return (int32_t)out->e[from].value;
    int32_t id = rule_generated(ps, rule);
    if (id < 0) return -1;
    gvec body = {0};
    if (!gvec_append(&body, out->e + from, out->n - from) || !gvec_push(&body, GE_END, 0)) {
        free(body.e);
        return fail_oom(ps), -1;
    }
    ps->rules[id].body = body;
    out->n = from;
    if (!gvec_push(out, GE_RULE_REF, (uint32_t)id)) return fail_oom(ps), -1;
    return id;
}

/* Apply {min,max} (max < 0: unbounded) to the item out[from..]. */
static bool repeat_item(parser *ps, uint32_t rule, gvec *out, uint32_t from, int min, int max) {
    int32_t x = wrap_item(ps, rule, out, from);
    if (x < 0) return false;
    out->n = from;
    for (int i = 0; i < min; i++)
        if (!gvec_push(out, GE_RULE_REF, (uint32_t)x)) return fail_oom(ps), false;
    if (max < 0) { /* star: R ::= x R | */
        int32_t r = rule_generated(ps, rule);
        if (r < 0) return false;
        gvec b = {0};
        bool ok = gvec_push(&b, GE_RULE_REF, (uint32_t)x) && gvec_push(&b, GE_RULE_REF, (uint32_t)r) &&
                  gvec_push(&b, GE_ALT, 0) && gvec_push(&b, GE_END, 0);
        ps->rules[r].body = b;
        if (!ok || !gvec_push(out, GE_RULE_REF, (uint32_t)r)) return fail_oom(ps), false;
        return true;
    }
    int32_t prev = -1; /* O_k ::= x O_{k-1} | (empty) */
    for (int k = 1; k <= max - min; k++) {
        int32_t r = rule_generated(ps, rule);
        if (r < 0) return false;
        gvec b = {0};
        bool ok = gvec_push(&b, GE_RULE_REF, (uint32_t)x) &&
                  (prev < 0 || gvec_push(&b, GE_RULE_REF, (uint32_t)prev)) && gvec_push(&b, GE_ALT, 0) &&
                  gvec_push(&b, GE_END, 0);
        ps->rules[r].body = b;
        if (!ok) return fail_oom(ps), false;
        prev = r;
    }
    if (prev >= 0 && !gvec_push(out, GE_RULE_REF, (uint32_t)prev)) return fail_oom(ps), false;
    return true;
}

static bool parse_int(parser *ps, int *v) {
    const char *st = ps->p;
    long x = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        x = x * 10 + (*ps->p++ - '0');
        if (x > GRAMMAR_MAX_REPEAT) return fail_at(ps, st, "repetition count above 4096"), false;
    }
    if (ps->p == st) return fail_at(ps, st, "expected a number"), false;
    *v = (int)x;
    return true;
}

/* A postfix operator after the item out[from..], if any. */
static bool parse_postfix(parser *ps, uint32_t rule, gvec *out, uint32_t from) {
    skip_space(ps, false);
    if (ps->p >= ps->end) return true;
    char c = *ps->p;
    int min, max;
    if (c == '*' || c == '+' || c == '?') {
        ps->p++;
        min = c == '+' ? 1 : 0;
        max = c == '?' ? 1 : -1;
    } else if (c == '{') {
        const char *at = ps->p++;
        skip_space(ps, false);
        if (!parse_int(ps, &min)) return false;
        skip_space(ps, false);
        max = min;
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_space(ps, false);
            max = -1;
            if (ps->p < ps->end && *ps->p != '}' && !parse_int(ps, &max)) return false;
            skip_space(ps, false);
        }
        if (ps->p >= ps->end || *ps->p != '}')
            return fail_at(ps, at, "expected '}' to close the repetition"), false;
        ps->p++;
        if (max >= 0 && max < min) return fail_at(ps, at, "repetition {m,n} with n < m"), false;
    } else {
        return true;
    }
    if (out->n == from) return fail_at(ps, ps->p - 1, "repetition operator with nothing before it"), false;
    return repeat_item(ps, rule, out, from, min, max) && parse_postfix(ps, rule, out, from);
}

static bool parse_class(parser *ps, gvec *out) {
    const char *at = ps->p++; /* '[' */
    bool neg = ps->p < ps->end && *ps->p == '^';
    if (neg) ps->p++;
    uint32_t first = out->n;
    while (ps->p < ps->end && *ps->p != ']') {
        uint32_t lo, hi;
        if (!parse_char(ps, &lo)) return false;
        if (!gvec_push(out, out->n == first ? (neg ? GE_CHAR_NOT : GE_CHAR) : GE_CHAR_ALT, lo))
            return fail_oom(ps), false;
        if (ps->p + 1 < ps->end && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (!parse_char(ps, &hi)) return false;
            if (hi < lo) return fail_at(ps, at, "character range with its end below its start"), false;
            if (!gvec_push(out, GE_CHAR_RNG_UPPER, hi)) return fail_oom(ps), false;
        }
    }
    if (ps->p >= ps->end) return fail_at(ps, at, "unterminated character class (missing ']')"), false;
    ps->p++;
    if (out->n == first) {
        if (!neg) return fail_at(ps, at, "empty character class []"), false;
        if (!gvec_push(out, GE_CHAR_ANY, 0)) return fail_oom(ps), false; /* [^] = any */
    }
    return true;
}

/* One sequence of items (ends at '|', ')', end of rule). */
static bool parse_sequence(parser *ps, uint32_t rule, gvec *out, bool nested) {
    for (;;) {
        skip_space(ps, nested);
        if (ps->p >= ps->end) return true;
        char c = *ps->p;
        uint32_t from = out->n;
        if (c == '"') {
            const char *at = ps->p++;
            while (ps->p < ps->end && *ps->p != '"') {
                uint32_t cp;
                if (!parse_char(ps, &cp)) return false;
                if (!gvec_push(out, GE_CHAR, cp)) return fail_oom(ps), false;
            }
            if (ps->p >= ps->end) return fail_at(ps, at, "unterminated string literal (missing '\"')"), false;
            ps->p++; /* a postfix repeats the whole literal (repeat_item wraps out[from..]) */
        } else if (c == '[') {
            if (!parse_class(ps, out)) return false;
        } else if (c == '.') {
            ps->p++;
            if (!gvec_push(out, GE_CHAR_ANY, 0)) return fail_oom(ps), false;
        } else if (c == '(') {
            const char *at = ps->p++;
            int32_t id = rule_generated(ps, rule);
            if (id < 0) return false;
            gvec body = {0};
            bool ok = parse_alternates(ps, rule, &body, true);
            ps->rules[id].body = body;
            if (!ok) return false;
            skip_space(ps, true);
            if (ps->p >= ps->end || *ps->p != ')')
                return fail_at(ps, at, "expected ')' to close the group"), false;
            ps->p++;
            if (!gvec_push(out, GE_RULE_REF, (uint32_t)id)) return fail_oom(ps), false;
        } else if (is_name_char(c)) {
            const char *st = ps->p;
            while (ps->p < ps->end && is_name_char(*ps->p))
                ps->p++;
            const char *save = ps->p;
            skip_space(ps, true);
            if (ps->end - ps->p >= 3 && !memcmp(ps->p, "::=", 3)) { /* the next rule starts */
                ps->p = st;
                return true;
            }
            ps->p = save;
            int32_t id = rule_id(ps, st, (size_t)(save - st));
            if (id < 0 || !gvec_push(out, GE_RULE_REF, (uint32_t)id)) return fail_oom(ps), false;
        } else if (c == '|' || c == ')' || c == '\n' || c == '\r') {
            return true;
        } else {
            return fail_at(ps, ps->p, "unexpected character"), false;
        }
        if (!parse_postfix(ps, rule, out, from)) return false;
    }
}

static bool parse_alternates(parser *ps, uint32_t rule, gvec *out, bool nested) {
    for (;;) {
        if (!parse_sequence(ps, rule, out, nested)) return false;
        const char *save = ps->p;
        skip_space(ps, true); /* a line starting with '|' continues the rule */
        if (ps->p < ps->end && *ps->p == '|') {
            ps->p++;
            skip_space(ps, true);
            if (!gvec_push(out, GE_ALT, 0)) return fail_oom(ps), false;
            continue;
        }
        if (!nested) ps->p = save;
        if (!gvec_push(out, GE_END, 0)) return fail_oom(ps), false;
        return true;
    }
}

static bool parse_rules(parser *ps) {
    for (;;) {
        skip_space(ps, true);
        if (ps->p >= ps->end) return true;
        const char *st = ps->p;
        while (ps->p < ps->end && is_name_char(*ps->p))
            ps->p++;
        if (ps->p == st) return fail_at(ps, st, "expected a rule name"), false;
        size_t nlen = (size_t)(ps->p - st);
        skip_space(ps, false);
        if (ps->end - ps->p < 3 || memcmp(ps->p, "::=", 3))
            return fail_at(ps, ps->p, "expected '::=' after the rule name"), false;
        ps->p += 3;
        int32_t id = rule_id(ps, st, nlen);
        if (id < 0) return false;
        if (ps->rules[id].defined) return fail_at(ps, st, "rule defined twice"), false;
        ps->rules[id].defined = true;
        skip_space(ps, true);
        gvec body = {0};
        bool ok = parse_alternates(ps, (uint32_t)id, &body, false);
        ps->rules[id].body = body;
        if (!ok) return false;
        skip_space(ps, false);
        if (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
            return fail_at(ps, ps->p, "unexpected character"), false;
    }
}

/* ---------------------------------------------------------------- checks */

/* nullable[r]: r derives the empty string; productive[r]: some finite string. */
static void rule_props(const hearth_grammar *g, bool *nullable, bool *productive) {
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            const gelem *e = g->el + g->rule_start[r];
            bool any_null = false, any_prod = false;
            for (;;) { /* each alternative */
                bool null = true, prod = true;
                for (; !gelem_is_end(e); e++) {
                    if (e->type == GE_RULE_REF) {
                        null = null && nullable[e->value];
                        prod = prod && productive[e->value];
                    } else if (e->type != GE_CHAR_ALT && e->type != GE_CHAR_RNG_UPPER) {
                        null = false;
                    }
                }
                any_null |= null;
                any_prod |= prod;
                if (e->type == GE_END) break;
                e++;
            }
            if (any_null && !nullable[r]) nullable[r] = changed = true;
            if (any_prod && !productive[r]) productive[r] = changed = true;
        }
    }
}

/* DFS over "r can start with rule x without consuming input"; state 1 = on
 * the path (a cycle back to it is left recursion), 2 = done. */
static int32_t left_cycle(const hearth_grammar *g, const bool *nullable, uint8_t *state, uint32_t r) {
    if (state[r] == 2) return -1;
    if (state[r] == 1) return (int32_t)r;
    state[r] = 1;
    const gelem *e = g->el + g->rule_start[r];
    for (;;) {
        for (; !gelem_is_end(e); e++) {
            if (e->type != GE_RULE_REF) break;
            int32_t c = left_cycle(g, nullable, state, e->value);
            if (c >= 0) return c;
            if (!nullable[e->value]) break;
        }
        while (!gelem_is_end(e))
            e++;
        if (e->type == GE_END) break;
        e++;
    }
    state[r] = 2;
    return -1;
}

static bool check_grammar(const hearth_grammar *g, const prule *rules, hearth_error *err) {
    bool *nullable = calloc(g->n_rules, 1), *productive = calloc(g->n_rules, 1);
    uint8_t *state = calloc(g->n_rules, 1);
    bool ok = nullable && productive && state;
    if (!ok) hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
    if (ok) rule_props(g, nullable, productive);
    for (uint32_t r = 0; ok && r < g->n_rules; r++) {
        int32_t c = left_cycle(g, nullable, state, r);
        if (c >= 0) {
            hearth_error_set(
                err, HEARTH_ERR_INVALID,
                "grammar: rule '%s' is left-recursive (it can reach itself without consuming input); "
                "rewrite it with repetition, e.g. x ::= y (\",\" y)*",
                rules[c].name);
            ok = false;
        }
    }
    if (ok && !productive[g->root]) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "grammar: rule '%s' can never match anything (every alternative recurses forever)",
                         rules[g->root].name);
        ok = false;
    }
    free(nullable);
    free(productive);
    free(state);
    return ok;
}

/* ---------------------------------------------------------------- build */

static hearth_grammar *flatten(parser *ps, uint32_t root) {
    hearth_grammar *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    atomic_init(&g->refs, 1);
    g->n_rules = ps->n_rules;
    g->root = root;
    for (uint32_t i = 0; i < ps->n_rules; i++)
        g->n_el += ps->rules[i].body.n;
    g->el = malloc((g->n_el + 1) * sizeof *g->el);
    g->rule_start = malloc((ps->n_rules + 1) * sizeof *g->rule_start);
    if (!g->el || !g->rule_start) {
        hearth_grammar_release(g);
        return NULL;
    }
    uint32_t at = 0;
    for (uint32_t i = 0; i < ps->n_rules; i++) {
        g->rule_start[i] = at;
        memcpy(g->el + at, ps->rules[i].body.e, ps->rules[i].body.n * sizeof *g->el);
        at += ps->rules[i].body.n;
    }
    return g;
}

hearth_grammar *hearth_grammar_parse(const char *gbnf, size_t len, const char *root, hearth_error *err) {
    parser ps = {.s = gbnf, .end = gbnf + len, .p = gbnf, .err = err};
    hearth_grammar *g = NULL;
    if (!root) root = "root";
    if (!gbnf) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "grammar: no text");
        return NULL;
    }
    if (!parse_rules(&ps)) goto done;
    int32_t rid = -1;
    for (uint32_t i = 0; i < ps.n_rules; i++) {
        if (!ps.rules[i].defined) {
            hearth_error_set(err, HEARTH_ERR_INVALID, "grammar: rule '%s' is used but never defined",
                             ps.rules[i].name);
            goto done;
        }
        if (!strcmp(ps.rules[i].name, root)) rid = (int32_t)i;
    }
    if (rid < 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "grammar: no rule named '%s' (the start rule)", root);
        goto done;
    }
    g = flatten(&ps, (uint32_t)rid);
    if (!g) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
        goto done;
    }
    if (!check_grammar(g, ps.rules, err)) {
        hearth_grammar_release(g);
        g = NULL;
    }
done:
    for (uint32_t i = 0; i < ps.n_rules; i++) {
        free(ps.rules[i].name);
        free(ps.rules[i].body.e);
    }
    free(ps.rules);
    return g;
}

hearth_grammar *hearth_grammar_retain(hearth_grammar *g) {
    if (g) atomic_fetch_add(&g->refs, 1);
    return g;
}

void hearth_grammar_release(hearth_grammar *g) {
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
    free(g->el);
    free(g->rule_start);
    free(g);
}

int hearth_grammar_n_rules(const hearth_grammar *g) {
    return (int)g->n_rules;
}
