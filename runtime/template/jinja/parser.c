/*
 * parser.c - tokens -> AST: expressions with Jinja2's precedence, filters
 * and tests (resolved to ids here, so unknown names fail at compile time like
 * Jinja2), and the statements chat templates use (if, for, set, macro,
 * filter, generation, break/continue).
 *
 * Owns: nothing beyond the nodes it allocates in the template arena.
 * Invariants: recursion is bounded by PARSE_MAX_DEPTH; the first error wins
 * and names the line and column of the offending token.
 */
#include "jinja_impl.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct {
    void **v;
    int n, cap;
} pvec;

typedef struct parser {
    token *toks;
    size_t pos;
    arena *ar;
    const char *name;
    hearth_error *err;
    bool failed;
    int depth;
    int loop_depth;
    int macro_depth;
} parser;

static bool ps_fail_at(parser *p, const token *t, hearth_status code, const char *fmt, ...) {
    if (p->failed) return false;
    p->failed = true;
    char msg[HEARTH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hearth_error_set(p->err, code, "%s: line %d, column %d: %s", p->name, t->line, t->col, msg);
    return false;
}

static token *cur(parser *p) {
    return &p->toks[p->pos];
}
static token *peek(parser *p, size_t k) {
    size_t i = p->pos;
    while (k-- && p->toks[i].type != TK_EOF)
        i++;
    return &p->toks[i];
}
static void advance(parser *p) {
    if (p->toks[p->pos].type != TK_EOF) p->pos++;
}
static bool tok_is_op(const token *t, int op) {
    return t->type == TK_OP && t->op == op;
}
static bool tok_is_name(const token *t, const char *kw) {
    return t->type == TK_NAME && strlen(kw) == t->n && memcmp(t->p, kw, t->n) == 0;
}

static void describe(const token *t, char *buf, size_t cap) {
    switch (t->type) {
    case TK_EOF: snprintf(buf, cap, "end of template"); break;
    case TK_TEXT: snprintf(buf, cap, "template text"); break;
    case TK_VAR_BEGIN: snprintf(buf, cap, "'{{'"); break;
    case TK_VAR_END: snprintf(buf, cap, "'}}'"); break;
    case TK_BLOCK_BEGIN: snprintf(buf, cap, "'{%%'"); break;
    case TK_BLOCK_END: snprintf(buf, cap, "'%%}'"); break;
    case TK_NAME: snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); break;
    case TK_STRING: snprintf(buf, cap, "a string"); break;
    case TK_INT:
    case TK_FLOAT: snprintf(buf, cap, "a number"); break;
    case TK_OP: snprintf(buf, cap, "'%s'", jlex_op_text(t->op)); break;
    }
}

static bool ps_unexpected(parser *p, const char *expected) {
    char d[64];
    describe(cur(p), d, sizeof d);
    if (expected) return ps_fail_at(p, cur(p), HEARTH_ERR_FORMAT, "expected %s, got %s", expected, d);
    return ps_fail_at(p, cur(p), HEARTH_ERR_FORMAT, "unexpected %s", d);
}

static bool expect_op(parser *p, int op) {
    if (tok_is_op(cur(p), op)) {
        advance(p);
        return true;
    }
    char want[16];
    snprintf(want, sizeof want, "'%s'", jlex_op_text(op));
    return ps_unexpected(p, want);
}

static bool expect_block_end(parser *p) {
    if (cur(p)->type == TK_BLOCK_END) {
        advance(p);
        return true;
    }
    return ps_unexpected(p, "'%}'");
}

static node *mk(parser *p, nkind kind, const token *at) {
    node *n = jarena_alloc(p->ar, sizeof *n);
    if (!n) {
        ps_fail_at(p, at, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static bool pv_push(parser *p, pvec *v, void *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **nv = jarena_alloc(p->ar, (size_t)cap * sizeof *nv);
        if (!nv) return ps_fail_at(p, cur(p), HEARTH_ERR_NOMEM, "out of memory");
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static bool enter(parser *p) {
    if (++p->depth > PARSE_MAX_DEPTH)
        return ps_fail_at(p, cur(p), HEARTH_ERR_FORMAT, "template nested deeper than %d levels",
                          PARSE_MAX_DEPTH);
    return true;
}
#define LEAVE(p, x) ((p)->depth--, (x))

static node *parse_expr(parser *p, bool condexpr);
static node *parse_tuple(parser *p, bool condexpr, bool explicit_parens, const char *extra_end);
static node *parse_unary(parser *p, bool with_filter);
static node *parse_or(parser *p);

/* "(" args ")": positional into items, keyword into names/items2. */
static bool parse_call_args(parser *p, node *n) {
    if (!expect_op(p, OP_LPAREN)) return false;
    pvec pos = {0}, kwv = {0}, kwn = {0}, kwl = {0};
    while (!tok_is_op(cur(p), OP_RPAREN)) {
        if (pos.n + kwv.n > 0 && !expect_op(p, OP_COMMA)) return false;
        if (tok_is_op(cur(p), OP_RPAREN)) break;
        if (tok_is_op(cur(p), OP_MUL) || tok_is_op(cur(p), OP_POW))
            return ps_fail_at(p, cur(p), HEARTH_ERR_UNSUPPORTED,
                              "*args and **kwargs in calls are not supported");
        if (cur(p)->type == TK_NAME && tok_is_op(peek(p, 1), OP_ASSIGN)) {
            token *k = cur(p);
            advance(p);
            advance(p);
            node *v = parse_expr(p, true);
            if (!v) return false;
            size_t *len = jarena_alloc(p->ar, sizeof *len);
            if (!len) return ps_fail_at(p, k, HEARTH_ERR_NOMEM, "out of memory");
            *len = k->n;
            if (!pv_push(p, &kwn, (void *)k->p) || !pv_push(p, &kwl, len) || !pv_push(p, &kwv, v))
                return false;
        } else {
            if (kwv.n)
                return ps_fail_at(p, cur(p), HEARTH_ERR_FORMAT, "positional argument after keyword argument");
            node *v = parse_expr(p, true);
            if (!v || !pv_push(p, &pos, v)) return false;
        }
    }
    advance(p);
    n->items = (node **)pos.v;
    n->n_items = pos.n;
    n->items2 = (node **)kwv.v;
    n->n_items2 = kwv.n;
    n->n_names = kwn.n;
    if (kwn.n) {
        n->names = (const char **)kwn.v;
        n->nlens = jarena_alloc(p->ar, (size_t)kwn.n * sizeof *n->nlens);
        if (!n->nlens) return ps_fail_at(p, cur(p), HEARTH_ERR_NOMEM, "out of memory");
        for (int i = 0; i < kwn.n; i++)
            n->nlens[i] = *(size_t *)kwl.v[i];
    }
    return true;
}

static node *parse_primary(parser *p) {
    token *t = cur(p);
    node *n = NULL;
    switch (t->type) {
    case TK_NAME:
        n = mk(p, N_CONST, t);
        if (!n) return NULL;
        if (tok_is_name(t, "true") || tok_is_name(t, "True"))
            n->val = jv_bool(true);
        else if (tok_is_name(t, "false") || tok_is_name(t, "False"))
            n->val = jv_bool(false);
        else if (tok_is_name(t, "none") || tok_is_name(t, "None"))
            n->val = jv_none();
        else {
            n->kind = N_NAME;
            n->name = t->p;
            n->nlen = t->n;
        }
        advance(p);
        return n;
    case TK_STRING: {
        /* adjacent string literals concatenate */
        size_t total = 0, k = p->pos;
        while (p->toks[k].type == TK_STRING)
            total += p->toks[k++].n;
        char *buf = jarena_alloc(p->ar, total + 1);
        n = mk(p, N_CONST, t);
        if (!n || !buf) {
            ps_fail_at(p, t, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        size_t off = 0;
        while (cur(p)->type == TK_STRING) {
            memcpy(buf + off, cur(p)->p, cur(p)->n);
            off += cur(p)->n;
            advance(p);
        }
        n->val.type = JV_STR;
        n->val.u.s.p = buf;
        n->val.u.s.n = total;
        return n;
    }
    case TK_INT:
    case TK_FLOAT:
        n = mk(p, N_CONST, t);
        if (!n) return NULL;
        n->val = t->type == TK_INT ? jv_int(t->i) : jv_float(t->f);
        advance(p);
        return n;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            advance(p);
            n = parse_tuple(p, true, true, NULL);
            if (!n || !expect_op(p, OP_RPAREN)) return NULL;
            return n;
        }
        if (t->op == OP_LBRACKET) {
            advance(p);
            n = mk(p, N_LIST, t);
            if (!n) return NULL;
            pvec v = {0};
            while (!tok_is_op(cur(p), OP_RBRACKET)) {
                if (v.n && !expect_op(p, OP_COMMA)) return NULL;
                if (tok_is_op(cur(p), OP_RBRACKET)) break;
                node *x = parse_expr(p, true);
                if (!x || !pv_push(p, &v, x)) return NULL;
            }
            advance(p);
            n->items = (node **)v.v;
            n->n_items = v.n;
            return n;
        }
        if (t->op == OP_LBRACE) {
            advance(p);
            n = mk(p, N_DICT, t);
            if (!n) return NULL;
            pvec ks = {0}, vs = {0};
            while (!tok_is_op(cur(p), OP_RBRACE)) {
                if (ks.n && !expect_op(p, OP_COMMA)) return NULL;
                if (tok_is_op(cur(p), OP_RBRACE)) break;
                node *k = parse_expr(p, true);
                if (!k || !expect_op(p, OP_COLON)) return NULL;
                node *v = parse_expr(p, true);
                if (!v || !pv_push(p, &ks, k) || !pv_push(p, &vs, v)) return NULL;
            }
            advance(p);
            n->items = (node **)ks.v;
            n->n_items = ks.n;
            n->items2 = (node **)vs.v;
            n->n_items2 = vs.n;
            return n;
        }
        break;
    default: break;
    }
    ps_unexpected(p, "an expression");
    return NULL;
}

/* x.name, x.0, x[expr], x[a:b:c], x(args) */
static node *parse_postfix(parser *p, node *n) {
    for (;;) {
        token *t = cur(p);
        if (tok_is_op(t, OP_DOT)) {
            advance(p);
            token *a = cur(p);
            if (a->type == TK_NAME) {
                node *g = mk(p, N_GETATTR, a); /* errors point at the attribute name */
                if (!g) return NULL;
                g->a = n;
                g->name = a->p;
                g->nlen = a->n;
                advance(p);
                n = g;
            } else if (a->type == TK_INT) {
                node *g = mk(p, N_GETITEM, t), *k = mk(p, N_CONST, a);
                if (!g || !k) return NULL;
                k->val = jv_int(a->i);
                g->a = n;
                g->b = k;
                advance(p);
                n = g;
            } else {
                ps_unexpected(p, "an attribute name");
                return NULL;
            }
        } else if (tok_is_op(t, OP_LBRACKET)) {
            advance(p);
            node *start = NULL, *stop = NULL, *step = NULL;
            bool slice = false;
            if (tok_is_op(cur(p), OP_RBRACKET) || !tok_is_op(cur(p), OP_COLON)) {
                /* x[i], or x[a, b] / x[] with a tuple key */
                start = tok_is_op(cur(p), OP_RBRACKET) ? NULL : parse_expr(p, true);
                if (!start && !tok_is_op(cur(p), OP_RBRACKET)) return NULL;
                if (!start || tok_is_op(cur(p), OP_COMMA)) {
                    node *tup = mk(p, N_TUPLE, t);
                    if (!tup) return NULL;
                    pvec v = {0};
                    if (start && !pv_push(p, &v, start)) return NULL;
                    while (tok_is_op(cur(p), OP_COMMA)) {
                        advance(p);
                        if (tok_is_op(cur(p), OP_RBRACKET)) break;
                        node *x = parse_expr(p, true);
                        if (!x || !pv_push(p, &v, x)) return NULL;
                    }
                    tup->items = (node **)v.v;
                    tup->n_items = v.n;
                    start = tup;
                }
            }
            if (tok_is_op(cur(p), OP_COLON)) {
                slice = true;
                advance(p);
                if (!tok_is_op(cur(p), OP_RBRACKET) && !tok_is_op(cur(p), OP_COLON)) {
                    stop = parse_expr(p, true);
                    if (!stop) return NULL;
                }
                if (tok_is_op(cur(p), OP_COLON)) {
                    advance(p);
                    if (!tok_is_op(cur(p), OP_RBRACKET)) {
                        step = parse_expr(p, true);
                        if (!step) return NULL;
                    }
                }
            }
            if (!expect_op(p, OP_RBRACKET)) return NULL;
            node *g = mk(p, slice ? N_SLICE : N_GETITEM, t);
            if (!g) return NULL;
            g->a = n;
            if (slice) {
                g->b = start;
                g->c = stop;
                g->d = step;
            } else {
                g->b = start;
            }
            n = g;
        } else if (tok_is_op(t, OP_LPAREN)) {
            node *c = mk(p, N_CALL, t);
            if (!c) return NULL;
            c->line = n->line; /* errors point at the callee, not the '(' */
            c->col = n->col;
            c->a = n;
            if (!parse_call_args(p, c)) return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static node *parse_filter_chain(parser *p, node *n) {
    /* at '|' */
    while (tok_is_op(cur(p), OP_PIPE)) {
        advance(p);
        token *t = cur(p);
        if (t->type != TK_NAME) {
            ps_unexpected(p, "a filter name");
            return NULL;
        }
        int id = jfilter_lookup(t->p, t->n);
        if (!id) {
            ps_fail_at(p, t, HEARTH_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)(t->n > 40 ? 40 : t->n),
                       t->p);
            return NULL;
        }
        node *f = mk(p, N_FILTER, t);
        if (!f) return NULL;
        f->a = n;
        f->op = id;
        f->name = t->p;
        f->nlen = t->n;
        advance(p);
        if (tok_is_op(cur(p), OP_LPAREN) && !parse_call_args(p, f)) return NULL;
        n = f;
    }
    return n;
}

static node *parse_test(parser *p, node *n) {
    token *is = cur(p);
    advance(p);
    bool negated = false;
    if (tok_is_name(cur(p), "not")) {
        negated = true;
        advance(p);
    }
    token *t = cur(p);
    if (t->type != TK_NAME) {
        ps_unexpected(p, "a test name");
        return NULL;
    }
    int id = jtest_lookup(t->p, t->n);
    if (!id) {
        ps_fail_at(p, t, HEARTH_ERR_UNSUPPORTED, "no test named '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
        return NULL;
    }
    advance(p);
    node *x = mk(p, N_TEST, is);
    if (!x) return NULL;
    x->a = n;
    x->op = id;
    x->name = t->p;
    x->nlen = t->n;
    token *c = cur(p);
    if (tok_is_op(c, OP_LPAREN)) {
        if (!parse_call_args(p, x)) return NULL;
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT || c->type == TK_FLOAT ||
                tok_is_op(c, OP_LBRACKET) || tok_is_op(c, OP_LBRACE)) &&
               !tok_is_name(c, "else") && !tok_is_name(c, "or") && !tok_is_name(c, "and")) {
        if (tok_is_name(c, "is")) {
            ps_fail_at(p, c, HEARTH_ERR_FORMAT, "tests cannot be chained with 'is'");
            return NULL;
        }
        node *arg = parse_primary(p);
        if (!arg) return NULL;
        arg = parse_postfix(p, arg);
        if (!arg) return NULL;
        x->items = jarena_alloc(p->ar, sizeof(node *));
        if (!x->items) {
            ps_fail_at(p, c, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        x->items[0] = arg;
        x->n_items = 1;
    }
    if (negated) {
        node *no = mk(p, N_UNARY, is);
        if (!no) return NULL;
        no->op = OP_NOT;
        no->a = x;
        return no;
    }
    return x;
}

static node *parse_filter_expr(parser *p, node *n) {
    for (;;) {
        if (tok_is_op(cur(p), OP_PIPE))
            n = parse_filter_chain(p, n);
        else if (tok_is_name(cur(p), "is"))
            n = parse_test(p, n);
        else if (tok_is_op(cur(p), OP_LPAREN)) {
            node *c = mk(p, N_CALL, cur(p));
            if (!c) return NULL;
            c->a = n;
            if (!parse_call_args(p, c)) return NULL;
            n = c;
        } else
            return n;
        if (!n) return NULL;
    }
}

static node *parse_unary(parser *p, bool with_filter) {
    token *t = cur(p);
    node *n;
    if (tok_is_op(t, OP_SUB) || tok_is_op(t, OP_ADD)) {
        if (!enter(p)) return NULL;
        advance(p);
        node *x = parse_unary(p, false);
        p->depth--;
        if (!x) return NULL;
        n = mk(p, N_UNARY, t);
        if (!n) return NULL;
        n->op = t->op == OP_SUB ? OP_NEG : OP_POS;
        n->a = x;
    } else {
        n = parse_primary(p);
        if (!n) return NULL;
    }
    n = parse_postfix(p, n);
    if (n && with_filter) n = parse_filter_expr(p, n);
    return n;
}

static node *binop(parser *p, const token *at, int op, node *l, node *r) {
    node *n = mk(p, N_BINOP, at);
    if (!n) return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static node *parse_pow(parser *p) {
    node *l = parse_unary(p, true);
    while (l && tok_is_op(cur(p), OP_POW)) {
        token *t = cur(p);
        advance(p);
        node *r = parse_unary(p, true);
        l = r ? binop(p, t, OP_POW, l, r) : NULL;
    }
    return l;
}

static node *parse_math2(parser *p) {
    node *l = parse_pow(p);
    while (
        l && cur(p)->type == TK_OP &&
        (cur(p)->op == OP_MUL || cur(p)->op == OP_DIV || cur(p)->op == OP_FLOORDIV || cur(p)->op == OP_MOD)) {
        token *t = cur(p);
        advance(p);
        node *r = parse_pow(p);
        l = r ? binop(p, t, t->op, l, r) : NULL;
    }
    return l;
}

static node *parse_concat(parser *p) {
    node *l = parse_math2(p);
    while (l && tok_is_op(cur(p), OP_TILDE)) {
        token *t = cur(p);
        advance(p);
        node *r = parse_math2(p);
        l = r ? binop(p, t, OP_TILDE, l, r) : NULL;
    }
    return l;
}

static node *parse_math1(parser *p) {
    node *l = parse_concat(p);
    while (l && cur(p)->type == TK_OP && (cur(p)->op == OP_ADD || cur(p)->op == OP_SUB)) {
        token *t = cur(p);
        advance(p);
        node *r = parse_concat(p);
        l = r ? binop(p, t, t->op, l, r) : NULL;
    }
    return l;
}

static node *parse_compare(parser *p) {
    token *start = cur(p);
    node *first = parse_math1(p);
    if (!first) return NULL;
    pvec operands = {0}, ops = {0};
    for (;;) {
        token *t = cur(p);
        int op = 0;
        if (t->type == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE ||
                                 t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            advance(p);
        } else if (tok_is_name(t, "in")) {
            op = OP_IN;
            advance(p);
        } else if (tok_is_name(t, "not") && tok_is_name(peek(p, 1), "in")) {
            op = OP_NOTIN;
            advance(p);
            advance(p);
        } else {
            break;
        }
        node *r = parse_math1(p);
        if (!r) return NULL;
        int *opp = jarena_alloc(p->ar, sizeof *opp);
        if (!opp) {
            ps_fail_at(p, t, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        *opp = op;
        if (!pv_push(p, &operands, r) || !pv_push(p, &ops, opp)) return NULL;
    }
    if (!operands.n) return first;
    node *n = mk(p, N_COMPARE, start);
    if (!n) return NULL;
    n->a = first;
    n->items = (node **)operands.v;
    n->n_items = operands.n;
    n->ops = jarena_alloc(p->ar, (size_t)ops.n * sizeof(int));
    if (!n->ops) {
        ps_fail_at(p, start, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < ops.n; i++)
        n->ops[i] = *(int *)ops.v[i];
    return n;
}

static node *parse_not(parser *p) {
    token *t = cur(p);
    if (tok_is_name(t, "not")) {
        if (!enter(p)) return NULL;
        advance(p);
        node *x = parse_not(p);
        p->depth--;
        if (!x) return NULL;
        node *n = mk(p, N_UNARY, t);
        if (!n) return NULL;
        n->op = OP_NOT;
        n->a = x;
        return n;
    }
    return parse_compare(p);
}

static node *parse_and(parser *p) {
    node *l = parse_not(p);
    while (l && tok_is_name(cur(p), "and")) {
        token *t = cur(p);
        advance(p);
        node *r = parse_not(p);
        l = r ? binop(p, t, OP_AND, l, r) : NULL;
    }
    return l;
}

static node *parse_or(parser *p) {
    node *l = parse_and(p);
    while (l && tok_is_name(cur(p), "or")) {
        token *t = cur(p);
        advance(p);
        node *r = parse_and(p);
        l = r ? binop(p, t, OP_OR, l, r) : NULL;
    }
    return l;
}

/* expr [if cond [else expr]] */
static node *parse_expr(parser *p, bool condexpr) {
    if (!enter(p)) return NULL;
    node *n = parse_or(p);
    while (n && condexpr && tok_is_name(cur(p), "if")) {
        token *t = cur(p);
        advance(p);
        node *cond = parse_or(p);
        if (!cond) return LEAVE(p, NULL);
        node *other = NULL;
        if (tok_is_name(cur(p), "else")) {
            advance(p);
            other = parse_expr(p, true);
            if (!other) return LEAVE(p, NULL);
        }
        node *c = mk(p, N_CONDEXPR, t);
        if (!c) return LEAVE(p, NULL);
        c->a = cond;
        c->b = n;
        c->c = other;
        n = c;
    }
    return LEAVE(p, n);
}

static bool is_tuple_end(parser *p, const char *extra_end) {
    token *t = cur(p);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || tok_is_op(t, OP_RPAREN)) return true;
    return extra_end && tok_is_name(t, extra_end);
}

static node *parse_tuple(parser *p, bool condexpr, bool explicit_parens, const char *extra_end) {
    token *start = cur(p);
    pvec v = {0};
    bool is_tuple = false;
    for (;;) {
        if (v.n && !expect_op(p, OP_COMMA)) return NULL;
        if (is_tuple_end(p, extra_end)) break;
        node *x = parse_expr(p, condexpr);
        if (!x || !pv_push(p, &v, x)) return NULL;
        if (tok_is_op(cur(p), OP_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (v.n) return v.v[0];
        if (!explicit_parens) {
            ps_unexpected(p, "an expression");
            return NULL;
        }
    }
    node *n = mk(p, N_TUPLE, start);
    if (!n) return NULL;
    n->items = (node **)v.v;
    n->n_items = v.n;
    return n;
}

/* ---------------------------------------------------------------- statements */

static bool parse_body(parser *p, pvec *body, const char *const *ends, int nends, const token *opener,
                       int *which);

/* Names for {% for a, b in %} / {% set a, b = %}; stops at `stop` or '=' / '%}'. */
static bool parse_target_names(parser *p, node *n) {
    pvec names = {0}, lens = {0};
    bool paren = false;
    if (tok_is_op(cur(p), OP_LPAREN)) {
        paren = true;
        advance(p);
    }
    for (;;) {
        token *t = cur(p);
        if (t->type != TK_NAME) return ps_unexpected(p, "a variable name");
        size_t *len = jarena_alloc(p->ar, sizeof *len);
        if (!len) return ps_fail_at(p, t, HEARTH_ERR_NOMEM, "out of memory");
        *len = t->n;
        if (!pv_push(p, &names, (void *)t->p) || !pv_push(p, &lens, len)) return false;
        advance(p);
        if (!tok_is_op(cur(p), OP_COMMA)) break;
        advance(p);
        if (paren && tok_is_op(cur(p), OP_RPAREN)) break;
        if (!paren && cur(p)->type != TK_NAME) break;
    }
    if (paren && !expect_op(p, OP_RPAREN)) return false;
    n->names = (const char **)names.v;
    n->n_names = names.n;
    n->nlens = jarena_alloc(p->ar, (size_t)names.n * sizeof(size_t));
    if (!n->nlens) return ps_fail_at(p, cur(p), HEARTH_ERR_NOMEM, "out of memory");
    for (int i = 0; i < names.n; i++)
        n->nlens[i] = *(size_t *)lens.v[i];
    n->op = (names.n > 1 || paren) ? SET_TUPLE : SET_NAME;
    return true;
}

static node *parse_if(parser *p, token *kw) {
    node *n = mk(p, S_IF, kw);
    if (!n) return NULL;
    n->a = parse_tuple(p, false, false, NULL);
    if (!n->a || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif"};
    pvec body = {0};
    int which;
    if (!parse_body(p, &body, ends, 3, kw, &which)) return NULL;
    n->items = (node **)body.v;
    n->n_items = body.n;
    token *end = cur(p);
    advance(p);
    if (which == 0) { /* elif: a nested if as the else body */
        node *nested = parse_if(p, end);
        if (!nested) return NULL;
        n->items2 = jarena_alloc(p->ar, sizeof(node *));
        if (!n->items2) {
            ps_fail_at(p, end, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        n->items2[0] = nested;
        n->n_items2 = 1;
        return n;
    }
    if (!expect_block_end(p)) return NULL;
    if (which == 1) {
        static const char *const ends2[] = {"endif"};
        pvec other = {0};
        if (!parse_body(p, &other, ends2, 1, kw, &which)) return NULL;
        advance(p);
        if (!expect_block_end(p)) return NULL;
        n->items2 = (node **)other.v;
        n->n_items2 = other.n;
    }
    return n;
}

static node *parse_for(parser *p, token *kw) {
    node *n = mk(p, S_FOR, kw);
    if (!n || !parse_target_names(p, n)) return NULL;
    if (!tok_is_name(cur(p), "in")) {
        ps_unexpected(p, "'in'");
        return NULL;
    }
    advance(p);
    n->a = parse_tuple(p, false, false, "recursive");
    if (!n->a) return NULL;
    if (tok_is_name(cur(p), "if")) {
        advance(p);
        n->b = parse_expr(p, false);
        if (!n->b) return NULL;
    }
    if (tok_is_name(cur(p), "recursive")) {
        ps_fail_at(p, cur(p), HEARTH_ERR_UNSUPPORTED, "recursive loops are not supported");
        return NULL;
    }
    if (!expect_block_end(p)) return NULL;
    static const char *const ends[] = {"else", "endfor"};
    pvec body = {0};
    int which;
    p->loop_depth++;
    bool ok = parse_body(p, &body, ends, 2, kw, &which);
    p->loop_depth--;
    if (!ok) return NULL;
    n->items = (node **)body.v;
    n->n_items = body.n;
    advance(p);
    if (!expect_block_end(p)) return NULL;
    if (which == 0) {
        static const char *const ends2[] = {"endfor"};
        pvec other = {0};
        if (!parse_body(p, &other, ends2, 1, kw, &which)) return NULL;
        advance(p);
        if (!expect_block_end(p)) return NULL;
        n->items2 = (node **)other.v;
        n->n_items2 = other.n;
    }
    return n;
}

/* Filters of {% set x | f %} / {% filter f %}: a chain over an N_SLOT. */
static node *parse_slot_filters(parser *p, token *at, bool require) {
    node *slot = mk(p, N_SLOT, at);
    if (!slot) return NULL;
    if (require) {
        /* {% filter name(args) | more %}: the first filter has no leading '|' */
        token *t = cur(p);
        if (t->type != TK_NAME) {
            ps_unexpected(p, "a filter name");
            return NULL;
        }
        int id = jfilter_lookup(t->p, t->n);
        if (!id) {
            ps_fail_at(p, t, HEARTH_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)(t->n > 40 ? 40 : t->n),
                       t->p);
            return NULL;
        }
        node *f = mk(p, N_FILTER, t);
        if (!f) return NULL;
        f->a = slot;
        f->op = id;
        f->name = t->p;
        f->nlen = t->n;
        advance(p);
        if (tok_is_op(cur(p), OP_LPAREN) && !parse_call_args(p, f)) return NULL;
        slot = f;
    }
    return parse_filter_chain(p, slot);
}

static node *parse_set(parser *p, token *kw) {
    node *n = mk(p, S_SET, kw);
    if (!n) return NULL;
    token *t = cur(p);
    if (t->type == TK_NAME && tok_is_op(peek(p, 1), OP_DOT)) {
        token *attr = peek(p, 2);
        if (attr->type != TK_NAME) {
            advance(p);
            advance(p);
            ps_unexpected(p, "an attribute name");
            return NULL;
        }
        n->op = SET_ATTR;
        n->name = t->p;
        n->nlen = t->n;
        n->names = jarena_alloc(p->ar, sizeof(const char *));
        n->nlens = jarena_alloc(p->ar, sizeof(size_t));
        if (!n->names || !n->nlens) {
            ps_fail_at(p, t, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        n->names[0] = attr->p;
        n->nlens[0] = attr->n;
        n->n_names = 1;
        advance(p);
        advance(p);
        advance(p);
    } else if (!parse_target_names(p, n)) {
        return NULL;
    }
    if (tok_is_op(cur(p), OP_ASSIGN)) {
        advance(p);
        n->a = parse_tuple(p, true, false, NULL);
        if (!n->a || !expect_block_end(p)) return NULL;
        return n;
    }
    /* block set: {% set x %}...{% endset %} */
    if (n->op == SET_TUPLE) {
        ps_unexpected(p, "'='");
        return NULL;
    }
    n->kind = S_SET_BLOCK;
    n->b = parse_slot_filters(p, kw, false);
    if (!n->b || !expect_block_end(p)) return NULL;
    static const char *const ends[] = {"endset"};
    pvec body = {0};
    int which;
    if (!parse_body(p, &body, ends, 1, kw, &which)) return NULL;
    advance(p);
    if (!expect_block_end(p)) return NULL;
    n->items = (node **)body.v;
    n->n_items = body.n;
    return n;
}

static node *parse_macro(parser *p, token *kw) {
    node *n = mk(p, S_MACRO, kw);
    if (!n) return NULL;
    token *t = cur(p);
    if (t->type != TK_NAME) {
        ps_unexpected(p, "a macro name");
        return NULL;
    }
    n->name = t->p;
    n->nlen = t->n;
    advance(p);
    if (!expect_op(p, OP_LPAREN)) return NULL;
    pvec names = {0}, lens = {0}, defs = {0};
    while (!tok_is_op(cur(p), OP_RPAREN)) {
        if (names.n && !expect_op(p, OP_COMMA)) return NULL;
        if (tok_is_op(cur(p), OP_RPAREN)) break;
        token *a = cur(p);
        if (a->type != TK_NAME) {
            ps_unexpected(p, "a parameter name");
            return NULL;
        }
        advance(p);
        node *def = NULL;
        if (tok_is_op(cur(p), OP_ASSIGN)) {
            advance(p);
            def = parse_expr(p, true);
            if (!def) return NULL;
        } else if (defs.n && defs.v[defs.n - 1]) {
            ps_fail_at(p, a, HEARTH_ERR_FORMAT, "non-default argument follows default argument");
            return NULL;
        }
        size_t *len = jarena_alloc(p->ar, sizeof *len);
        if (!len) {
            ps_fail_at(p, a, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        *len = a->n;
        if (!pv_push(p, &names, (void *)a->p) || !pv_push(p, &lens, len) || !pv_push(p, &defs, def))
            return NULL;
    }
    advance(p);
    if (!expect_block_end(p)) return NULL;
    n->names = (const char **)names.v;
    n->n_names = names.n;
    n->items2 = (node **)defs.v;
    n->n_items2 = defs.n;
    n->nlens = jarena_alloc(p->ar, (size_t)(names.n ? names.n : 1) * sizeof(size_t));
    if (!n->nlens) {
        ps_fail_at(p, t, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < names.n; i++)
        n->nlens[i] = *(size_t *)lens.v[i];
    static const char *const ends[] = {"endmacro"};
    pvec body = {0};
    int which;
    int saved_loops = p->loop_depth;
    p->loop_depth = 0;
    p->macro_depth++;
    bool ok = parse_body(p, &body, ends, 1, kw, &which);
    p->macro_depth--;
    p->loop_depth = saved_loops;
    if (!ok) return NULL;
    advance(p);
    if (cur(p)->type == TK_NAME) advance(p); /* {% endmacro name %} */
    if (!expect_block_end(p)) return NULL;
    n->items = (node **)body.v;
    n->n_items = body.n;
    return n;
}

static node *parse_simple_block(parser *p, token *kw, nkind kind, const char *end) {
    node *n = mk(p, kind, kw);
    if (!n) return NULL;
    if (kind == S_FILTER_BLOCK) {
        n->b = parse_slot_filters(p, kw, true);
        if (!n->b) return NULL;
    }
    if (!expect_block_end(p)) return NULL;
    const char *ends[] = {end};
    pvec body = {0};
    int which;
    if (!parse_body(p, &body, ends, 1, kw, &which)) return NULL;
    advance(p);
    if (!expect_block_end(p)) return NULL;
    n->items = (node **)body.v;
    n->n_items = body.n;
    return n;
}

static node *parse_statement(parser *p) {
    token *kw = cur(p);
    if (kw->type != TK_NAME) {
        ps_unexpected(p, "a tag name");
        return NULL;
    }
    advance(p);
    if (tok_is_name(kw, "if")) return parse_if(p, kw);
    if (tok_is_name(kw, "for")) return parse_for(p, kw);
    if (tok_is_name(kw, "set")) return parse_set(p, kw);
    if (tok_is_name(kw, "macro")) {
        if (p->macro_depth) {
            ps_fail_at(p, kw, HEARTH_ERR_UNSUPPORTED, "macros defined inside macros are not supported");
            return NULL;
        }
        return parse_macro(p, kw);
    }
    if (tok_is_name(kw, "filter")) return parse_simple_block(p, kw, S_FILTER_BLOCK, "endfilter");
    if (tok_is_name(kw, "generation")) return parse_simple_block(p, kw, S_BODY, "endgeneration");
    if (tok_is_name(kw, "break") || tok_is_name(kw, "continue")) {
        if (!p->loop_depth) {
            ps_fail_at(p, kw, HEARTH_ERR_FORMAT, "'%.*s' outside of a loop", (int)kw->n, kw->p);
            return NULL;
        }
        node *n = mk(p, tok_is_name(kw, "break") ? S_BREAK : S_CONTINUE, kw);
        if (!n || !expect_block_end(p)) return NULL;
        return n;
    }
    static const char *const unsupported[] = {"include", "extends",    "import", "from",  "block", "call",
                                              "with",    "autoescape", "do",     "trans", "print"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (tok_is_name(kw, unsupported[i])) {
            ps_fail_at(p, kw, HEARTH_ERR_UNSUPPORTED, "{%% %s %%} is not supported in chat templates",
                       unsupported[i]);
            return NULL;
        }
    ps_fail_at(p, kw, HEARTH_ERR_FORMAT, "unknown tag '%.*s'", (int)(kw->n > 40 ? 40 : kw->n), kw->p);
    return NULL;
}

/* Statements until one of `ends` ({% endfor %} ...); leaves the end word as
 * the current token and its index in *which. With no ends, parses to EOF. */
static bool parse_body(parser *p, pvec *body, const char *const *ends, int nends, const token *opener,
                       int *which) {
    if (!enter(p)) return false;
    for (;;) {
        token *t = cur(p);
        if (t->type == TK_EOF) {
            p->depth--;
            if (!nends) return true;
            return ps_fail_at(
                p, t, HEARTH_ERR_FORMAT,
                "unexpected end of template: '{%% %.*s %%}' opened at line %d, column %d needs '{%% %s %%}'",
                (int)opener->n, opener->p, opener->line, opener->col, ends[nends - 1]);
        }
        if (t->type == TK_TEXT) {
            node *n = mk(p, S_TEXT, t);
            if (!n) return LEAVE(p, false);
            n->name = t->p;
            n->nlen = t->n;
            advance(p);
            if (!pv_push(p, body, n)) return LEAVE(p, false);
            continue;
        }
        if (t->type == TK_VAR_BEGIN) {
            advance(p);
            node *n = mk(p, S_OUTPUT, t);
            if (!n) return LEAVE(p, false);
            n->a = parse_tuple(p, true, false, NULL);
            if (!n->a) return LEAVE(p, false);
            if (cur(p)->type != TK_VAR_END) return LEAVE(p, ps_unexpected(p, "'}}'"));
            advance(p);
            if (!pv_push(p, body, n)) return LEAVE(p, false);
            continue;
        }
        if (t->type == TK_BLOCK_BEGIN) {
            advance(p);
            token *kw = cur(p);
            for (int i = 0; i < nends; i++)
                if (tok_is_name(kw, ends[i])) {
                    *which = i;
                    p->depth--;
                    return true;
                }
            static const char *const closers[] = {"endif",    "endfor",    "endset",
                                                  "endmacro", "endfilter", "endgeneration",
                                                  "else",     "elif",      "endraw"};
            for (size_t i = 0; i < sizeof closers / sizeof closers[0]; i++)
                if (tok_is_name(kw, closers[i])) {
                    if (nends)
                        return LEAVE(p, ps_fail_at(p, kw, HEARTH_ERR_FORMAT,
                                                   "unexpected '%s' inside '{%% %.*s %%}' opened at line %d, "
                                                   "column %d (expected '%s')",
                                                   closers[i], (int)opener->n, opener->p, opener->line,
                                                   opener->col, ends[nends - 1]));
                    return LEAVE(p, ps_fail_at(p, kw, HEARTH_ERR_FORMAT, "unexpected '%s' (no open block)",
                                               closers[i]));
                }
            node *n = parse_statement(p);
            if (!n || !pv_push(p, body, n)) return LEAVE(p, false);
            continue;
        }
        return LEAVE(p, ps_unexpected(p, NULL));
    }
}

bool jparse_template(token *toks, arena *ar, const char *name, hearth_error *err, node ***body, int *n_body) {
    parser p = {.toks = toks, .ar = ar, .name = name, .err = err};
    pvec v = {0};
    int which = 0;
    if (!parse_body(&p, &v, NULL, 0, NULL, &which)) return false;
    *body = (node **)v.v;
    *n_body = v.n;
    return true;
}
