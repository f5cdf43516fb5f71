/*
 * jinja.c - lexer, parser and evaluator for the chat-template subset of
 * Jinja2 (see jinja.h for the semantics and docs/CHAT_TEMPLATES.md for the
 * supported subset).
 *
 * Owner: chat templates. Layout: arena -> lexer -> parser (AST) -> values ->
 * filters/tests/methods -> evaluator -> public API.
 *
 * Invariants:
 *  - Every allocation of a template lives in its arena; every value created
 *    while rendering lives in the ctx's arena (bounded by max_memory). Values
 *    are never freed one by one, so there is no reference counting and no
 *    use-after-free: a jv is valid until its arena goes.
 *  - Parser recursion is bounded by PARSE_MAX_DEPTH; evaluator recursion by
 *    limits.max_depth; recursive value walks (repr, tojson, ==, sort) by
 *    VALUE_MAX_DEPTH; total work by limits.max_steps (long strings charge one
 *    step per 64 bytes they touch).
 *  - The first error wins: once ctx->failed is set every evaluator function
 *    returns false up the stack and the message is not overwritten.
 */
#include "jinja.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARENA_CHUNK (64u * 1024u)
#define TEMPLATE_MAX_SOURCE (4u * 1024u * 1024u)
#define TEMPLATE_MAX_MEMORY (256u * 1024u * 1024u)
#define PARSE_MAX_DEPTH 100
#define VALUE_MAX_DEPTH 100
#define MACRO_MAX_DEPTH 32
#define RANGE_MAX 100000 /* Jinja2's sandbox MAX_RANGE */

#define DEFAULT_MAX_OUTPUT (16u * 1024u * 1024u)
#define DEFAULT_MAX_MEMORY (64u * 1024u * 1024u)
#define DEFAULT_MAX_STEPS 20000000u
#define DEFAULT_MAX_DEPTH 400

/* ================================================================ arena */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    max_align_t data[];
} ablock;

typedef struct arena {
    ablock *head;
    size_t total, limit;
    bool over_budget; /* the last failure was the limit, not malloc */
} arena;

static void *arena_alloc(arena *a, size_t n) {
    if (n > a->limit) {
        a->over_budget = true;
        return NULL;
    }
    n = (n + 15u) & ~(size_t)15u;
    if (n == 0) n = 16;
    ablock *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (cap > a->limit - a->total) {
            a->over_budget = true;
            return NULL;
        }
        ablock *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        a->total += cap;
        if (b && cap > ARENA_CHUNK) {
            /* a big block: keep the current head's free space in use */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena *a) {
    for (ablock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

/* ================================================================ lexer */

typedef enum tk_type {
    TK_EOF,
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
} tk_type;

enum {
    OP_ADD = 1,
    OP_SUB,
    OP_DIV,
    OP_FLOORDIV,
    OP_MUL,
    OP_MOD,
    OP_POW,
    OP_TILDE,
    OP_LBRACKET,
    OP_RBRACKET,
    OP_LPAREN,
    OP_RPAREN,
    OP_LBRACE,
    OP_RBRACE,
    OP_EQ,
    OP_NE,
    OP_GT,
    OP_GE,
    OP_LT,
    OP_LE,
    OP_ASSIGN,
    OP_DOT,
    OP_COLON,
    OP_PIPE,
    OP_COMMA,
    OP_SEMI,
    /* not lexed: used by the AST */
    OP_AND,
    OP_OR,
    OP_NOT,
    OP_IN,
    OP_NOTIN,
    OP_NEG,
    OP_POS,
};

static const char *op_text(int op) {
    static const char *const names[] = {
        "?", "+",  "-", "/",  "//", "*", "%", "**", "~", "[", "]",   "(",  ")",   "{",  "}",      "==", "!=",
        ">", ">=", "<", "<=", "=",  ".", ":", "|",  ",", ";", "and", "or", "not", "in", "not in", "-",  "+",
    };
    return op > 0 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "?";
}

typedef struct token {
    tk_type type;
    int op;
    const char *p; /* text, name or decoded string (not NUL-terminated) */
    size_t n;
    int64_t i;
    double f;
    int line, col;
} token;

typedef struct lexer {
    const char *src; /* normalized source */
    size_t len, pos;
    size_t lc_pos; /* line/column cursor */
    int lc_line, lc_col;
    token *toks;
    size_t n, cap;
    arena *ar;
    const char *name;
    hearth_error *err;
    bool failed;
} lexer;

static void lx_linecol(lexer *lx, size_t pos, int *line, int *col) {
    if (pos < lx->lc_pos) { /* rewind (rare: errors only) */
        lx->lc_pos = 0;
        lx->lc_line = 1;
        lx->lc_col = 1;
    }
    while (lx->lc_pos < pos && lx->lc_pos < lx->len) {
        if (lx->src[lx->lc_pos] == '\n') {
            lx->lc_line++;
            lx->lc_col = 1;
        } else {
            lx->lc_col++;
        }
        lx->lc_pos++;
    }
    *line = lx->lc_line;
    *col = lx->lc_col;
}

static bool lx_fail(lexer *lx, size_t pos, hearth_status code, const char *fmt, ...) {
    if (lx->failed) return false;
    lx->failed = true;
    int line, col;
    lx_linecol(lx, pos, &line, &col);
    char msg[HEARTH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hearth_error_set(lx->err, code, "%s: line %d, column %d: %s", lx->name, line, col, msg);
    return false;
}

static token *lx_push(lexer *lx, tk_type type, size_t pos) {
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        token *t = realloc(lx->toks, cap * sizeof *t);
        if (!t) {
            lx_fail(lx, pos, HEARTH_ERR_NOMEM, "out of memory");
            return NULL;
        }
        lx->toks = t;
        lx->cap = cap;
    }
    token *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    lx_linecol(lx, pos, &t->line, &t->col);
    return t;
}

/* Python's \s for ASCII: what Jinja2 strips around "-" and lstrip_blocks. */
static bool is_ws(char ch) {
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}
static bool is_name_start(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
static bool is_name_char(char ch) {
    return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* Emit the text before a tag, applying "{%-" / lstrip_blocks. */
static bool lx_text(lexer *lx, size_t start, size_t end, char sign, bool block_like, bool line_starting) {
    if (sign == '-') {
        while (end > start && is_ws(lx->src[end - 1]))
            end--;
    } else if (sign != '+' && block_like) {
        /* lstrip_blocks: strip spaces/tabs between the last newline and the tag */
        size_t l = end;
        while (l > start && lx->src[l - 1] != '\n')
            l--;
        if (l > start || line_starting) {
            bool only_ws = l < end;
            for (size_t i = l; i < end; i++)
                if (!is_ws(lx->src[i])) only_ws = false;
            if (only_ws) end = l;
        }
    }
    if (end > start) {
        token *t = lx_push(lx, TK_TEXT, start);
        if (!t) return false;
        t->p = lx->src + start;
        t->n = end - start;
    }
    return true;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t utf8_put(char *out, uint32_t cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal at lx->pos (a quote); Python unicode-escape rules. */
static bool lx_string(lexer *lx) {
    size_t start = lx->pos;
    char q = lx->src[lx->pos++];
    size_t body = lx->pos;
    while (lx->pos < lx->len && lx->src[lx->pos] != q) {
        if (lx->src[lx->pos] == '\\' && lx->pos + 1 < lx->len) lx->pos++;
        lx->pos++;
    }
    if (lx->pos >= lx->len) return lx_fail(lx, start, HEARTH_ERR_FORMAT, "unterminated string literal");
    size_t bend = lx->pos++;
    char *out = arena_alloc(lx->ar, bend - body + 1);
    if (!out) return lx_fail(lx, start, HEARTH_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = body; i < bend; i++) {
        char ch = lx->src[i];
        if (ch != '\\' || i + 1 >= bend) {
            out[n++] = ch;
            continue;
        }
        char e = lx->src[++i];
        switch (e) {
        case '\n': break; /* line continuation */
        case '\\': out[n++] = '\\'; break;
        case '\'': out[n++] = '\''; break;
        case '"': out[n++] = '"'; break;
        case 'a': out[n++] = '\a'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'v': out[n++] = '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            bool ok = i + (size_t)digits < bend;
            for (int k = 1; ok && k <= digits; k++) {
                int h = hexval(lx->src[i + (size_t)k]);
                if (h < 0)
                    ok = false;
                else
                    cp = cp * 16 + (uint32_t)h;
            }
            if (!ok) {
                lx->pos = i - 1;
                return lx_fail(lx, i - 1, HEARTH_ERR_FORMAT, "truncated \\%c escape in string literal", e);
            }
            i += (size_t)digits;
            /* the escape text is at least as long as its UTF-8 encoding */
            n += utf8_put(out + n, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i + 1 < bend && lx->src[i + 1] >= '0' && lx->src[i + 1] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(lx->src[++i] - '0');
                if (cp < 0x80)
                    out[n++] = (char)cp;
                else if (cp < 0x800 && n + 2 <= i - body + 1)
                    n += utf8_put(out + n, cp);
                else
                    out[n++] = '?';
            } else { /* unknown escape: kept as written */
                out[n++] = '\\';
                out[n++] = e;
            }
        }
    }
    token *t = lx_push(lx, TK_STRING, start);
    if (!t) return false;
    t->p = out;
    t->n = n;
    return true;
}

/* A number literal at lx->pos (a digit). Integers: decimal, 0x, 0o, 0b with
 * '_' separators; floats: digits with '.' fraction and/or exponent. */
static bool lx_number(lexer *lx, bool after_dot) {
    size_t start = lx->pos;
    const char *s = lx->src;
    size_t i = lx->pos;
    char buf[128];
    size_t bn = 0;
    if (s[i] == '0' && i + 1 < lx->len && strchr("xXoObB", s[i + 1]) && s[i + 1] != '\0') {
        int base = (s[i + 1] == 'x' || s[i + 1] == 'X') ? 16 : (s[i + 1] == 'o' || s[i + 1] == 'O') ? 8 : 2;
        i += 2;
        uint64_t v = 0;
        bool any = false, overflow = false;
        for (; i < lx->len; i++) {
            if (s[i] == '_') continue;
            int h = hexval(s[i]);
            if (h < 0 || h >= base) break;
            if (v > (UINT64_MAX - (uint64_t)h) / (uint64_t)base) overflow = true;
            v = v * (uint64_t)base + (uint64_t)h;
            any = true;
        }
        if (!any) return lx_fail(lx, start, HEARTH_ERR_FORMAT, "invalid number literal");
        if (overflow || v > INT64_MAX)
            return lx_fail(lx, start, HEARTH_ERR_UNSUPPORTED, "integer literal too large");
        token *t = lx_push(lx, TK_INT, start);
        if (!t) return false;
        t->i = (int64_t)v;
        lx->pos = i;
        return true;
    }
    bool is_float = false;
    for (; i < lx->len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
        if (s[i] != '_' && bn < sizeof buf - 1) buf[bn++] = s[i];
    if (!after_dot && i + 1 < lx->len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        is_float = true;
        if (bn < sizeof buf - 1) buf[bn++] = '.';
        for (i++; i < lx->len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
            if (s[i] != '_' && bn < sizeof buf - 1) buf[bn++] = s[i];
    }
    if (!after_dot && i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < lx->len && (s[j] == '+' || s[j] == '-')) j++;
        if (j < lx->len && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            if (bn < sizeof buf - 1) buf[bn++] = 'e';
            if (s[i + 1] == '-' && bn < sizeof buf - 1) buf[bn++] = '-';
            for (i = j; i < lx->len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
                if (s[i] != '_' && bn < sizeof buf - 1) buf[bn++] = s[i];
        }
    }
    buf[bn] = '\0';
    lx->pos = i;
    if (is_float) {
        token *t = lx_push(lx, TK_FLOAT, start);
        if (!t) return false;
        t->f = strtod(buf, NULL);
        return true;
    }
    uint64_t v = 0;
    for (size_t k = 0; k < bn; k++) {
        if (v > (UINT64_MAX - 9) / 10)
            return lx_fail(lx, start, HEARTH_ERR_UNSUPPORTED, "integer literal too large");
        v = v * 10 + (uint64_t)(buf[k] - '0');
    }
    if (v > INT64_MAX) return lx_fail(lx, start, HEARTH_ERR_UNSUPPORTED, "integer literal too large");
    token *t = lx_push(lx, TK_INT, start);
    if (!t) return false;
    t->i = (int64_t)v;
    return true;
}

/* Tokens inside {{ }} or {% %} up to the matching end marker. Sets
 * *line_starting to whether the end marker consumed a newline. */
static bool lx_tag(lexer *lx, bool is_block, size_t tag_start, bool *line_starting) {
    int depth = 0;
    const char *s = lx->src;
    for (;;) {
        while (lx->pos < lx->len && is_ws(s[lx->pos]))
            lx->pos++;
        if (lx->pos >= lx->len)
            return lx_fail(lx, tag_start, HEARTH_ERR_FORMAT, "unterminated '%s' tag (missing '%s')",
                           is_block ? "{%" : "{{", is_block ? "%}" : "}}");
        size_t p = lx->pos;
        char close = is_block ? '%' : '}';
        if (depth == 0) {
            /* end markers: "-%}" + whitespace, "+%}", "%}" + one newline */
            size_t q = p;
            char sign = 0;
            if ((s[q] == '-' || (is_block && s[q] == '+')) && q + 2 < lx->len && s[q + 1] == close &&
                s[q + 2] == '}') {
                sign = s[q];
                q++;
            }
            if (q + 1 < lx->len && s[q] == close && s[q + 1] == '}') {
                token *t = lx_push(lx, is_block ? TK_BLOCK_END : TK_VAR_END, p);
                if (!t) return false;
                q += 2;
                *line_starting = false;
                if (sign == '-') {
                    while (q < lx->len && is_ws(s[q]))
                        q++;
                    *line_starting = q > 0 && s[q - 1] == '\n';
                } else if (sign == 0 && is_block && q < lx->len && s[q] == '\n') {
                    q++; /* trim_blocks */
                    *line_starting = true;
                }
                lx->pos = q;
                return true;
            }
        }
        char ch = s[p];
        if (ch == '\'' || ch == '"') {
            if (!lx_string(lx)) return false;
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            bool after_dot =
                lx->n > 0 && lx->toks[lx->n - 1].type == TK_OP && lx->toks[lx->n - 1].op == OP_DOT;
            if (!lx_number(lx, after_dot)) return false;
            continue;
        }
        if (is_name_start(ch)) {
            size_t e = p;
            while (e < lx->len && is_name_char(s[e]))
                e++;
            token *t = lx_push(lx, TK_NAME, p);
            if (!t) return false;
            t->p = s + p;
            t->n = e - p;
            lx->pos = e;
            continue;
        }
        static const struct {
            const char *text;
            int op;
        } ops[] = {
            {"//", OP_FLOORDIV}, {"**", OP_POW},   {"==", OP_EQ},      {"!=", OP_NE},      {">=", OP_GE},
            {"<=", OP_LE},       {"+", OP_ADD},    {"-", OP_SUB},      {"/", OP_DIV},      {"*", OP_MUL},
            {"%", OP_MOD},       {"~", OP_TILDE},  {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN},
            {")", OP_RPAREN},    {"{", OP_LBRACE}, {"}", OP_RBRACE},   {">", OP_GT},       {"<", OP_LT},
            {"=", OP_ASSIGN},    {".", OP_DOT},    {":", OP_COLON},    {"|", OP_PIPE},     {",", OP_COMMA},
            {";", OP_SEMI},
        };
        int op = 0;
        size_t oplen = 0;
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            size_t l = strlen(ops[k].text);
            if (p + l <= lx->len && memcmp(s + p, ops[k].text, l) == 0) {
                op = ops[k].op;
                oplen = l;
                break;
            }
        }
        if (!op) {
            if ((unsigned char)ch >= 0x80)
                return lx_fail(lx, p, HEARTH_ERR_FORMAT, "unexpected non-ASCII character in expression");
            if (ch >= 0x20 && ch < 0x7f)
                return lx_fail(lx, p, HEARTH_ERR_FORMAT, "unexpected character '%c'", ch);
            return lx_fail(lx, p, HEARTH_ERR_FORMAT, "unexpected character 0x%02x", (unsigned char)ch);
        }
        if (op == OP_LBRACE || op == OP_LBRACKET || op == OP_LPAREN) {
            if (++depth > PARSE_MAX_DEPTH)
                return lx_fail(lx, p, HEARTH_ERR_FORMAT, "brackets nested deeper than %d", PARSE_MAX_DEPTH);
        } else if (op == OP_RBRACE || op == OP_RBRACKET || op == OP_RPAREN) {
            if (depth == 0) return lx_fail(lx, p, HEARTH_ERR_FORMAT, "unexpected '%s'", op_text(op));
            depth--;
        }
        token *t = lx_push(lx, TK_OP, p);
        if (!t) return false;
        t->op = op;
        lx->pos = p + oplen;
    }
}

/* Does "{%[-+]? raw [-]?%}" start at pos? Returns the end of the tag or 0. */
static size_t lx_raw_begin(const lexer *lx, size_t pos) {
    const char *s = lx->src;
    size_t i = pos + 2;
    if (i < lx->len && (s[i] == '-' || s[i] == '+')) i++;
    while (i < lx->len && is_ws(s[i]))
        i++;
    if (i + 3 > lx->len || memcmp(s + i, "raw", 3) != 0) return 0;
    i += 3;
    if (i < lx->len && is_name_char(s[i])) return 0;
    while (i < lx->len && is_ws(s[i]))
        i++;
    if (i + 3 <= lx->len && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') {
        i += 3;
        while (i < lx->len && is_ws(s[i]))
            i++;
        return i;
    }
    if (i + 2 <= lx->len && s[i] == '%' && s[i + 1] == '}') return i + 2;
    return 0;
}

static bool lx_run(lexer *lx) {
    const char *s = lx->src;
    bool line_starting = true;
    while (lx->pos < lx->len) {
        size_t start = lx->pos, t = start;
        while (t + 1 < lx->len && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#')))
            t++;
        if (t + 1 >= lx->len) { /* no more tags */
            token *tk = lx_push(lx, TK_TEXT, start);
            if (!tk) return false;
            tk->p = s + start;
            tk->n = lx->len - start;
            lx->pos = lx->len;
            break;
        }
        char kind = s[t + 1];
        char sign = (t + 2 < lx->len && (s[t + 2] == '-' || s[t + 2] == '+')) ? s[t + 2] : 0;
        size_t raw_end = kind == '%' ? lx_raw_begin(lx, t) : 0;
        if (!lx_text(lx, start, t, sign, kind != '{', line_starting)) return false;
        lx->pos = t + 2 + (sign ? 1 : 0);
        if (raw_end) {
            bool raw_line_starting = s[raw_end - 1] == '\n';
            /* {% raw %}...{% endraw %}: the body is text, with whitespace control */
            size_t body = raw_end, i = body;
            for (;;) {
                while (i + 1 < lx->len && !(s[i] == '{' && s[i + 1] == '%'))
                    i++;
                if (i + 1 >= lx->len) return lx_fail(lx, t, HEARTH_ERR_FORMAT, "missing {%% endraw %%}");
                size_t j = i + 2;
                char esign = (j < lx->len && (s[j] == '-' || s[j] == '+')) ? s[j] : 0;
                if (esign) j++;
                while (j < lx->len && is_ws(s[j]))
                    j++;
                if (j + 6 <= lx->len && memcmp(s + j, "endraw", 6) == 0) {
                    j += 6;
                    while (j < lx->len && is_ws(s[j]))
                        j++;
                    char csign = 0;
                    if (j < lx->len && (s[j] == '-' || s[j] == '+')) csign = s[j++];
                    if (j + 1 < lx->len && s[j] == '%' && s[j + 1] == '}') {
                        j += 2;
                        /* the raw body is text with lstrip handling of its own */
                        if (!lx_text(lx, body, i, esign, true, raw_line_starting)) return false;
                        line_starting = false;
                        if (csign == '-') {
                            while (j < lx->len && is_ws(s[j]))
                                j++;
                            line_starting = s[j - 1] == '\n';
                        } else if (csign == 0 && j < lx->len && s[j] == '\n') {
                            j++;
                            line_starting = true;
                        }
                        lx->pos = j;
                        break;
                    }
                }
                i += 2;
            }
            continue;
        }
        if (kind == '#') {
            size_t i = lx->pos;
            while (i + 1 < lx->len && !(s[i] == '#' && s[i + 1] == '}'))
                i++;
            if (i + 1 >= lx->len)
                return lx_fail(lx, t, HEARTH_ERR_FORMAT, "unterminated comment (missing '#}')");
            char csign = (i > lx->pos && (s[i - 1] == '-' || s[i - 1] == '+')) ? s[i - 1] : 0;
            size_t j = i + 2;
            line_starting = false;
            if (csign == '-') {
                while (j < lx->len && is_ws(s[j]))
                    j++;
                line_starting = s[j - 1] == '\n';
            } else if (csign == 0 && j < lx->len && s[j] == '\n') {
                j++;
                line_starting = true;
            }
            lx->pos = j;
            continue;
        }
        bool is_block = kind == '%';
        if (!lx_push(lx, is_block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, t)) return false;
        if (!lx_tag(lx, is_block, t, &line_starting)) return false;
    }
    return lx_push(lx, TK_EOF, lx->len) != NULL;
}

/* ================================================================ filters and tests (names) */

enum {
    FL_ABS = 1,
    FL_ATTR,
    FL_CAPITALIZE,
    FL_CENTER,
    FL_DEFAULT,
    FL_DICTSORT,
    FL_ESCAPE,
    FL_FIRST,
    FL_FLOAT,
    FL_INDENT,
    FL_INT,
    FL_ITEMS,
    FL_JOIN,
    FL_LAST,
    FL_LENGTH,
    FL_LIST,
    FL_LOWER,
    FL_MAP,
    FL_MAX,
    FL_MIN,
    FL_REPLACE,
    FL_REJECT,
    FL_REJECTATTR,
    FL_REVERSE,
    FL_ROUND,
    FL_SAFE,
    FL_SELECT,
    FL_SELECTATTR,
    FL_SORT,
    FL_STRING,
    FL_SUM,
    FL_TITLE,
    FL_TOJSON,
    FL_TRIM,
    FL_UNIQUE,
    FL_UPPER,
    FL_WORDCOUNT,
};

static const struct {
    const char *name;
    int id;
} filter_names[] = {
    {"abs", FL_ABS},
    {"attr", FL_ATTR},
    {"capitalize", FL_CAPITALIZE},
    {"center", FL_CENTER},
    {"count", FL_LENGTH},
    {"d", FL_DEFAULT},
    {"default", FL_DEFAULT},
    {"dictsort", FL_DICTSORT},
    {"e", FL_ESCAPE},
    {"escape", FL_ESCAPE},
    {"first", FL_FIRST},
    {"float", FL_FLOAT},
    {"indent", FL_INDENT},
    {"int", FL_INT},
    {"items", FL_ITEMS},
    {"join", FL_JOIN},
    {"last", FL_LAST},
    {"length", FL_LENGTH},
    {"list", FL_LIST},
    {"lower", FL_LOWER},
    {"map", FL_MAP},
    {"max", FL_MAX},
    {"min", FL_MIN},
    {"replace", FL_REPLACE},
    {"reject", FL_REJECT},
    {"rejectattr", FL_REJECTATTR},
    {"reverse", FL_REVERSE},
    {"round", FL_ROUND},
    {"safe", FL_SAFE},
    {"select", FL_SELECT},
    {"selectattr", FL_SELECTATTR},
    {"sort", FL_SORT},
    {"string", FL_STRING},
    {"sum", FL_SUM},
    {"title", FL_TITLE},
    {"tojson", FL_TOJSON},
    {"trim", FL_TRIM},
    {"unique", FL_UNIQUE},
    {"upper", FL_UPPER},
    {"wordcount", FL_WORDCOUNT},
};

enum {
    TS_DEFINED = 1,
    TS_UNDEFINED,
    TS_NONE,
    TS_BOOLEAN,
    TS_TRUE,
    TS_FALSE,
    TS_INTEGER,
    TS_FLOAT,
    TS_NUMBER,
    TS_STRING,
    TS_MAPPING,
    TS_ITERABLE,
    TS_SEQUENCE,
    TS_CALLABLE,
    TS_SAMEAS,
    TS_LOWER,
    TS_UPPER,
    TS_EVEN,
    TS_ODD,
    TS_DIVISIBLEBY,
    TS_EQ,
    TS_NE,
    TS_LT,
    TS_LE,
    TS_GT,
    TS_GE,
    TS_IN,
    TS_ESCAPED,
};

static const struct {
    const char *name;
    int id;
} test_names[] = {
    {"defined", TS_DEFINED},
    {"undefined", TS_UNDEFINED},
    {"none", TS_NONE},
    {"boolean", TS_BOOLEAN},
    {"true", TS_TRUE},
    {"false", TS_FALSE},
    {"integer", TS_INTEGER},
    {"float", TS_FLOAT},
    {"number", TS_NUMBER},
    {"string", TS_STRING},
    {"mapping", TS_MAPPING},
    {"iterable", TS_ITERABLE},
    {"sequence", TS_SEQUENCE},
    {"callable", TS_CALLABLE},
    {"sameas", TS_SAMEAS},
    {"lower", TS_LOWER},
    {"upper", TS_UPPER},
    {"even", TS_EVEN},
    {"odd", TS_ODD},
    {"divisibleby", TS_DIVISIBLEBY},
    {"eq", TS_EQ},
    {"equalto", TS_EQ},
    {"==", TS_EQ},
    {"ne", TS_NE},
    {"!=", TS_NE},
    {"lt", TS_LT},
    {"lessthan", TS_LT},
    {"<", TS_LT},
    {"le", TS_LE},
    {"<=", TS_LE},
    {"gt", TS_GT},
    {"greaterthan", TS_GT},
    {">", TS_GT},
    {"ge", TS_GE},
    {">=", TS_GE},
    {"in", TS_IN},
    {"escaped", TS_ESCAPED},
};

static int lookup_filter(const char *p, size_t n) {
    for (size_t i = 0; i < sizeof filter_names / sizeof filter_names[0]; i++)
        if (strlen(filter_names[i].name) == n && memcmp(filter_names[i].name, p, n) == 0)
            return filter_names[i].id;
    return 0;
}

static int lookup_test(const char *p, size_t n) {
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (strlen(test_names[i].name) == n && memcmp(test_names[i].name, p, n) == 0) return test_names[i].id;
    return 0;
}

/* ================================================================ AST */

typedef enum nkind {
    /* expressions */
    N_CONST,
    N_NAME,
    N_LIST,
    N_TUPLE,
    N_DICT,
    N_GETATTR,
    N_GETITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_UNARY,
    N_BINOP,
    N_COMPARE,
    N_CONDEXPR,
    N_SLOT,
    /* statements */
    S_TEXT,
    S_OUTPUT,
    S_IF,
    S_FOR,
    S_SET,
    S_SET_BLOCK,
    S_MACRO,
    S_BREAK,
    S_CONTINUE,
    S_BODY,
    S_FILTER_BLOCK,
} nkind;

enum { SET_NAME, SET_ATTR, SET_TUPLE }; /* node->op of S_SET / S_SET_BLOCK */

typedef struct node node;
struct node {
    nkind kind;
    int op; /* operator, filter/test id, set-target kind */
    int line, col;
    const char *name; /* name, attribute, filter/test/macro name, text */
    size_t nlen;
    jv val; /* N_CONST */
    node *a, *b, *c,
        *d;       /* operands; S_FOR: a=iter b=filter; S_SET: a=value; N_SLICE: a=obj b,c,d=start,stop,step */
    node **items; /* list items, dict keys, positional args, statement body, compare operands */
    int n_items;
    node **items2; /* dict values, keyword-arg values, else body, macro defaults */
    int n_items2;
    const char **names; /* keyword-arg names, for/set targets, macro parameters */
    size_t *nlens;
    int n_names;
    int *ops; /* N_COMPARE operators */
};

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
    case TK_OP: snprintf(buf, cap, "'%s'", op_text(t->op)); break;
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
    snprintf(want, sizeof want, "'%s'", op_text(op));
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
    node *n = arena_alloc(p->ar, sizeof *n);
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
        void **nv = arena_alloc(p->ar, (size_t)cap * sizeof *nv);
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
            size_t *len = arena_alloc(p->ar, sizeof *len);
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
        n->nlens = arena_alloc(p->ar, (size_t)kwn.n * sizeof *n->nlens);
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
        char *buf = arena_alloc(p->ar, total + 1);
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
        int id = lookup_filter(t->p, t->n);
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
    int id = lookup_test(t->p, t->n);
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
        x->items = arena_alloc(p->ar, sizeof(node *));
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
        int *opp = arena_alloc(p->ar, sizeof *opp);
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
    n->ops = arena_alloc(p->ar, (size_t)ops.n * sizeof(int));
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
        size_t *len = arena_alloc(p->ar, sizeof *len);
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
    n->nlens = arena_alloc(p->ar, (size_t)names.n * sizeof(size_t));
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
        n->items2 = arena_alloc(p->ar, sizeof(node *));
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
        int id = lookup_filter(t->p, t->n);
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
        n->names = arena_alloc(p->ar, sizeof(const char *));
        n->nlens = arena_alloc(p->ar, sizeof(size_t));
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
        size_t *len = arena_alloc(p->ar, sizeof *len);
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
    n->nlens = arena_alloc(p->ar, (size_t)(names.n ? names.n : 1) * sizeof(size_t));
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

/* ================================================================ template */

struct jinja_template {
    arena ar;
    node **body;
    int n_body;
    char name[64];
};

/* ================================================================ render context */

typedef struct jvar {
    const char *name;
    size_t nlen;
    jv val;
} jvar;

typedef struct frame {
    struct frame *parent;
    jvar *vars;
    size_t n, cap;
} frame;

typedef struct sbuf { /* string builder in the ctx arena */
    char *p;
    size_t n, cap;
} sbuf;

typedef struct jloop {
    const jv_list *items;
    int64_t index0;
} jloop;

enum { FN_RANGE = 1, FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_DICT };

struct jinja_ctx {
    arena ar;
    jinja_limits lim;
    frame globals;
    frame *root; /* the template's top-level frame while rendering */
    frame *fr;   /* innermost frame */
    const jinja_template *t;
    char *out; /* the main output (malloc'd) */
    size_t out_n, out_cap;
    sbuf *capture; /* when set, output goes here (macro calls, {% set %} blocks) */
    uint64_t steps;
    int depth, macro_depth;
    hearth_error *err;
    bool failed, raised, used;
    jv slot; /* input of {% filter %} / {% set x | f %} chains */
};

static bool fail(jinja_ctx *c, const node *at, hearth_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(jinja_ctx *c, const node *at, hearth_status code, const char *fmt, ...) {
    if (c->failed) return false;
    c->failed = true;
    char msg[HEARTH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        hearth_error_set(c->err, code, "%s: line %d, column %d: %s", c->t->name, at->line, at->col, msg);
    else
        hearth_error_set(c->err, code, "%s: %s", c->t->name, msg);
    return false;
}

/* Allocation failure: over the memory budget (the template's fault) or out
 * of memory for real. */
static bool oom(jinja_ctx *c, const node *at) {
    if (c->ar.over_budget)
        return fail(c, at, HEARTH_ERR_FORMAT, "template uses more than %zu bytes of memory while rendering",
                    c->lim.max_memory);
    return fail(c, at, HEARTH_ERR_NOMEM, "out of memory");
}

/* Charge work: one step plus one per 64 bytes touched. */
static bool charge(jinja_ctx *c, const node *at, size_t bytes) {
    c->steps += 1 + bytes / 64;
    if (c->steps > c->lim.max_steps)
        return fail(c, at, HEARTH_ERR_FORMAT, "template takes too long to render (more than %llu steps)",
                    (unsigned long long)c->lim.max_steps);
    return true;
}

static void *calloc_c(jinja_ctx *c, size_t n) {
    void *p = arena_alloc(&c->ar, n);
    if (p) memset(p, 0, n);
    return p;
}

/* ---------------------------------------------------------------- constructors */

static jv mkstr(jinja_ctx *c, const char *s, size_t n, bool *ok) {
    jv v = {.type = JV_STR};
    char *p = arena_alloc(&c->ar, n ? n : 1);
    if (!p) {
        *ok = false;
        return jv_undef();
    }
    if (n) memcpy(p, s, n);
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

/* A string view that shares memory (substrings, constants). */
static jv strview(const char *s, size_t n) {
    jv v = {.type = JV_STR};
    v.u.s.p = s;
    v.u.s.n = n;
    return v;
}

static jv_list *list_alloc(jinja_ctx *c, size_t cap) {
    jv_list *l = calloc_c(c, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        l->items = arena_alloc(&c->ar, cap * sizeof(jv));
        if (!l->items) return NULL;
        l->cap = cap;
    }
    return l;
}

static bool list_push(jinja_ctx *c, jv_list *l, jv item) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv)) return false;
        jv *items = arena_alloc(&c->ar, cap * sizeof(jv));
        if (!items) return false;
        if (l->n) memcpy(items, l->items, l->n * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return true;
}

static jv list_val(jv_list *l) {
    jv v = {.type = JV_LIST, .u.list = l};
    return v;
}

static jv_dict *dict_alloc(jinja_ctx *c) {
    return calloc_c(c, sizeof(jv_dict));
}

static jv dict_val(jv_dict *d) {
    jv v = {.type = JV_DICT, .u.dict = d};
    return v;
}

static bool str_eq(jv a, const char *s, size_t n) {
    return a.type == JV_STR && a.u.s.n == n && memcmp(a.u.s.p, s, n) == 0;
}

/* Index of a string key, or -1 (non-string keys compare by value elsewhere). */
static bool values_equal(jinja_ctx *c, jv a, jv b, int depth, bool *eq);

static long dict_find(jinja_ctx *c, const jv_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++) {
        if (key.type == JV_STR) {
            if (str_eq(d->keys[i], key.u.s.p, key.u.s.n)) return (long)i;
        } else {
            bool eq = false;
            if (values_equal(c, d->keys[i], key, 0, &eq) && eq) return (long)i;
        }
    }
    return -1;
}

static bool dict_put(jinja_ctx *c, jv_dict *d, jv key, jv val) {
    long i = dict_find(c, d, key);
    if (i >= 0) {
        d->vals[i] = val;
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *ks = arena_alloc(&c->ar, cap * sizeof(jv)), *vs = arena_alloc(&c->ar, cap * sizeof(jv));
        if (!ks || !vs) return false;
        if (d->n) {
            memcpy(ks, d->keys, d->n * sizeof(jv));
            memcpy(vs, d->vals, d->n * sizeof(jv));
        }
        d->keys = ks;
        d->vals = vs;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return true;
}

/* ---------------------------------------------------------------- string builder */

static bool sb_grow(jinja_ctx *c, sbuf *b, size_t extra) {
    if (extra <= b->cap - b->n) return true;
    if (extra > c->lim.max_memory) {
        c->ar.over_budget = true;
        return false;
    }
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap - b->n < extra)
        cap *= 2;
    char *p = arena_alloc(&c->ar, cap);
    if (!p) return false;
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
    return true;
}

static bool sb_put(jinja_ctx *c, sbuf *b, const char *s, size_t n) {
    if (!sb_grow(c, b, n)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

static bool sb_puts(jinja_ctx *c, sbuf *b, const char *s) {
    return sb_put(c, b, s, strlen(s));
}

static jv sb_val(sbuf *b) {
    return strview(b->p ? b->p : "", b->n);
}

/* ---------------------------------------------------------------- UTF-8 */

/* Code point boundaries: every byte that is not a continuation byte, and 0. */
static bool cp_boundary(const char *p, size_t i) {
    return i == 0 || ((unsigned char)p[i] & 0xC0) != 0x80;
}

static size_t cp_count(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (cp_boundary(p, i)) k++;
    return k;
}

/* Byte offset of code point `idx` (idx <= count). */
static size_t cp_offset(const char *p, size_t n, size_t idx) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (cp_boundary(p, i)) {
            if (k == idx) return i;
            k++;
        }
    return n;
}

static size_t cp_next(const char *p, size_t n, size_t i) {
    i++;
    while (i < n && !cp_boundary(p, i))
        i++;
    return i;
}

/* Decode one code point at p[i] (invalid bytes decode as themselves). */
static uint32_t cp_decode(const char *p, size_t n, size_t i, size_t *len) {
    unsigned char b = (unsigned char)p[i];
    int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : 0;
    uint32_t cp = extra == 3 ? b & 0x07u : extra == 2 ? b & 0x0Fu : extra == 1 ? b & 0x1Fu : b;
    size_t k = 1;
    for (; k <= (size_t)extra && i + k < n && ((unsigned char)p[i + k] & 0xC0) == 0x80; k++)
        cp = (cp << 6) | ((unsigned char)p[i + k] & 0x3Fu);
    if (k != (size_t)extra + 1) {
        *len = 1;
        return b;
    }
    *len = k;
    return cp;
}

/* ---------------------------------------------------------------- Python-style formatting */

static const char *type_name(jv v) {
    switch (v.type) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.u.list->tuple ? "tuple" : "list";
    case JV_DICT: return v.u.dict->ns ? "Namespace" : "dict";
    case JV_FUNC: return "function";
    case JV_MACRO: return "Macro";
    case JV_LOOP: return "LoopContext";
    }
    return "?";
}

/* repr(float) as Python prints it: shortest round-trip digits, exponent form
 * below 1e-4 and from 1e16. `json` spells inf/nan as JSON does. */
static void fmt_float(double x, char *out, size_t cap, bool json) {
    if (isnan(x)) {
        snprintf(out, cap, json ? "NaN" : "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, cap, x < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf"));
        return;
    }
    if (x == 0) {
        snprintf(out, cap, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    const char *s = tmp;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[24];
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && nd < sizeof digits - 1) digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int e = *s == 'e' ? atoi(s + 1) : 0;
    size_t o = 0;
    char buf[64];
    if (neg) buf[o++] = '-';
    if (e >= -5 + 1 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                buf[o++] = (size_t)i < nd ? digits[i] : '0';
            buf[o++] = '.';
            if ((size_t)e + 1 < nd)
                for (size_t i = (size_t)e + 1; i < nd; i++)
                    buf[o++] = digits[i];
            else
                buf[o++] = '0';
        } else {
            buf[o++] = '0';
            buf[o++] = '.';
            for (int i = 0; i < -e - 1; i++)
                buf[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                buf[o++] = digits[i];
        }
        buf[o] = '\0';
    } else {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                buf[o++] = digits[i];
        }
        snprintf(buf + o, sizeof buf - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    snprintf(out, cap, "%s", buf);
}

static bool write_repr(jinja_ctx *c, const node *at, sbuf *b, jv v, int depth);

/* Python repr() of a str: quotes chosen like Python, escapes for controls. */
static bool write_str_repr(jinja_ctx *c, sbuf *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    if (!sb_put(c, b, &q, 1)) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[8];
        const char *e = NULL;
        if (ch == '\\')
            e = "\\\\";
        else if (ch == (unsigned char)q)
            e = q == '\'' ? "\\'" : "\\\"";
        else if (ch == '\n')
            e = "\\n";
        else if (ch == '\r')
            e = "\\r";
        else if (ch == '\t')
            e = "\\t";
        else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            e = esc;
        }
        if (e ? !sb_puts(c, b, e) : !sb_put(c, b, (const char *)&p[i], 1)) return false;
    }
    return sb_put(c, b, &q, 1);
}

/* str(v) appended to b. */
static bool write_str(jinja_ctx *c, const node *at, sbuf *b, jv v, int depth) {
    char num[64];
    switch (v.type) {
    case JV_UNDEF: return true;
    case JV_NONE: return sb_puts(c, b, "None");
    case JV_BOOL: return sb_puts(c, b, v.u.b ? "True" : "False");
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return sb_puts(c, b, num);
    case JV_FLOAT: fmt_float(v.u.f, num, sizeof num, false); return sb_puts(c, b, num);
    case JV_STR: return sb_put(c, b, v.u.s.p, v.u.s.n);
    default: return write_repr(c, at, b, v, depth);
    }
}

static bool write_repr(jinja_ctx *c, const node *at, sbuf *b, jv v, int depth) {
    if (depth > VALUE_MAX_DEPTH) return fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply to print");
    if (!charge(c, at, 0)) return false;
    bool ok = true;
    switch (v.type) {
    case JV_STR: ok = write_str_repr(c, b, v.u.s.p, v.u.s.n); break;
    case JV_LIST: {
        const jv_list *l = v.u.list;
        ok = sb_puts(c, b, l->tuple ? "(" : "[");
        for (size_t i = 0; ok && i < l->n; i++) {
            if (i) ok = sb_puts(c, b, ", ");
            if (ok && !write_repr(c, at, b, l->items[i], depth + 1)) return false;
        }
        if (ok && l->tuple && l->n == 1) ok = sb_puts(c, b, ",");
        if (ok) ok = sb_puts(c, b, l->tuple ? ")" : "]");
        break;
    }
    case JV_DICT: {
        const jv_dict *d = v.u.dict;
        ok = sb_puts(c, b, d->ns ? "<Namespace {" : "{");
        for (size_t i = 0; ok && i < d->n; i++) {
            if (i) ok = sb_puts(c, b, ", ");
            if (ok && !write_repr(c, at, b, d->keys[i], depth + 1)) return false;
            if (ok) ok = sb_puts(c, b, ": ");
            if (ok && !write_repr(c, at, b, d->vals[i], depth + 1)) return false;
        }
        if (ok) ok = sb_puts(c, b, d->ns ? "}>" : "}");
        break;
    }
    case JV_UNDEF: ok = sb_puts(c, b, "Undefined"); break;
    case JV_FUNC: ok = sb_puts(c, b, "<built-in function>"); break;
    case JV_MACRO: ok = sb_puts(c, b, "<Macro>"); break;
    case JV_LOOP: ok = sb_puts(c, b, "<LoopContext>"); break;
    default: return write_str(c, at, b, v, depth);
    }
    return ok ? true : oom(c, at);
}

/* str(v) as a value (strings are returned as they are). */
static bool to_str(jinja_ctx *c, const node *at, jv v, jv *out) {
    if (v.type == JV_STR) {
        *out = v;
        return true;
    }
    sbuf b = {0};
    if (!write_str(c, at, &b, v, 0)) return c->failed ? false : oom(c, at);
    *out = sb_val(&b);
    return true;
}

/* ---------------------------------------------------------------- JSON (HF's tojson: json.dumps) */

typedef struct json_opts {
    const char *indent; /* NULL: compact one-line form */
    size_t indent_n;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
    bool sort_keys, ensure_ascii;
} json_opts;

static bool json_string(jinja_ctx *c, sbuf *b, const char *p, size_t n, bool ensure_ascii) {
    if (!sb_put(c, b, "\"", 1)) return false;
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        char esc[16];
        const char *e = NULL;
        size_t step = 1;
        if (ch == '"')
            e = "\\\"";
        else if (ch == '\\')
            e = "\\\\";
        else if (ch == '\n')
            e = "\\n";
        else if (ch == '\r')
            e = "\\r";
        else if (ch == '\t')
            e = "\\t";
        else if (ch == '\b')
            e = "\\b";
        else if (ch == '\f')
            e = "\\f";
        else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            e = esc;
        } else if (ch >= 0x80 && ensure_ascii) {
            uint32_t cp = cp_decode(p, n, i, &step);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            e = esc;
        }
        if (e) {
            if (run && !sb_put(c, b, p + i - run, run)) return false;
            run = 0;
            if (!sb_puts(c, b, e)) return false;
        } else {
            run += step;
        }
        i += step;
    }
    if (run && !sb_put(c, b, p + n - run, run)) return false;
    return sb_put(c, b, "\"", 1);
}

static bool json_newline(jinja_ctx *c, sbuf *b, const json_opts *o, int level) {
    if (!o->indent) return true;
    if (!sb_put(c, b, "\n", 1)) return false;
    for (int i = 0; i < level; i++)
        if (!sb_put(c, b, o->indent, o->indent_n)) return false;
    return true;
}

static int compare_values(jinja_ctx *c, const node *at, jv a, jv b, bool fold_case, int depth, bool *ok);

static bool write_json(jinja_ctx *c, const node *at, sbuf *b, jv v, const json_opts *o, int level) {
    if (level > VALUE_MAX_DEPTH) return fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply for tojson");
    if (!charge(c, at, 0)) return false;
    char num[64];
    bool ok = true;
    switch (v.type) {
    case JV_NONE: ok = sb_puts(c, b, "null"); break;
    case JV_BOOL: ok = sb_puts(c, b, v.u.b ? "true" : "false"); break;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        ok = sb_puts(c, b, num);
        break;
    case JV_FLOAT:
        fmt_float(v.u.f, num, sizeof num, true);
        ok = sb_puts(c, b, num);
        break;
    case JV_STR: ok = json_string(c, b, v.u.s.p, v.u.s.n, o->ensure_ascii); break;
    case JV_LIST: {
        const jv_list *l = v.u.list;
        if (!l->n) {
            ok = sb_puts(c, b, "[]");
            break;
        }
        ok = sb_puts(c, b, "[");
        for (size_t i = 0; ok && i < l->n; i++) {
            if (i) ok = sb_put(c, b, o->item_sep, o->item_sep_n);
            if (ok) ok = json_newline(c, b, o, level + 1);
            if (ok && !write_json(c, at, b, l->items[i], o, level + 1)) return false;
        }
        if (ok) ok = json_newline(c, b, o, level);
        if (ok) ok = sb_puts(c, b, "]");
        break;
    }
    case JV_DICT: {
        const jv_dict *d = v.u.dict;
        if (d->ns) return fail(c, at, HEARTH_ERR_FORMAT, "Object of type Namespace is not JSON serializable");
        if (!d->n) {
            ok = sb_puts(c, b, "{}");
            break;
        }
        size_t *order = arena_alloc(&c->ar, d->n * sizeof *order);
        if (!order) return oom(c, at);
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    bool cok = true;
                    int r = compare_values(c, at, d->keys[order[j - 1]], d->keys[order[j]], false, 0, &cok);
                    if (!cok) return false;
                    if (r <= 0) break;
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        ok = sb_puts(c, b, "{");
        for (size_t k = 0; ok && k < d->n; k++) {
            size_t i = order[k];
            if (k) ok = sb_put(c, b, o->item_sep, o->item_sep_n);
            if (ok) ok = json_newline(c, b, o, level + 1);
            if (!ok) break;
            jv key = d->keys[i];
            if (key.type == JV_STR) {
                ok = json_string(c, b, key.u.s.p, key.u.s.n, o->ensure_ascii);
            } else if (key.type == JV_INT || key.type == JV_FLOAT || key.type == JV_BOOL ||
                       key.type == JV_NONE) {
                sbuf kb = {0};
                if (key.type == JV_BOOL)
                    ok = sb_puts(c, &kb, key.u.b ? "true" : "false");
                else if (key.type == JV_NONE)
                    ok = sb_puts(c, &kb, "null");
                else if (key.type == JV_FLOAT) {
                    fmt_float(key.u.f, num, sizeof num, true);
                    ok = sb_puts(c, &kb, num);
                } else
                    ok = write_str(c, at, &kb, key, 0);
                if (ok) ok = json_string(c, b, kb.p, kb.n, o->ensure_ascii);
            } else {
                return fail(c, at, HEARTH_ERR_FORMAT, "keys must be str, int, float, bool or None, not %s",
                            type_name(key));
            }
            if (ok) ok = sb_put(c, b, o->key_sep, o->key_sep_n);
            if (ok && !write_json(c, at, b, d->vals[i], o, level + 1)) return false;
        }
        if (ok) ok = json_newline(c, b, o, level);
        if (ok) ok = sb_puts(c, b, "}");
        break;
    }
    default:
        return fail(c, at, HEARTH_ERR_FORMAT, "Object of type %s is not JSON serializable", type_name(v));
    }
    return ok ? true : oom(c, at);
}

/* ---------------------------------------------------------------- truth, equality, order */

static bool truthy(jv v) {
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.list->n != 0;
    case JV_DICT: return v.u.dict->ns || v.u.dict->n != 0;
    default: return true;
    }
}

static bool is_number(jv v) {
    return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}
static double num_f(jv v) {
    return v.type == JV_FLOAT  ? v.u.f
           : v.type == JV_INT  ? (double)v.u.i
           : v.type == JV_BOOL ? (double)v.u.b
                               : 0;
}
static bool is_intlike(jv v) {
    return v.type == JV_INT || v.type == JV_BOOL;
}
static int64_t num_i(jv v) {
    return v.type == JV_INT ? v.u.i : v.type == JV_BOOL ? (int64_t)v.u.b : 0;
}

static bool values_equal(jinja_ctx *c, jv a, jv b, int depth, bool *eq) {
    *eq = false;
    if (depth > VALUE_MAX_DEPTH) return true; /* treat as unequal */
    c->steps++;
    if (is_number(a) && is_number(b)) {
        if (is_intlike(a) && is_intlike(b))
            *eq = num_i(a) == num_i(b);
        else
            *eq = num_f(a) == num_f(b);
        return true;
    }
    if (a.type != b.type) return true;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE: *eq = true; break;
    case JV_STR:
        c->steps += a.u.s.n / 64;
        *eq = a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
        break;
    case JV_LIST:
        if (a.u.list->n != b.u.list->n || a.u.list->tuple != b.u.list->tuple) break;
        for (size_t i = 0; i < a.u.list->n; i++) {
            if (!values_equal(c, a.u.list->items[i], b.u.list->items[i], depth + 1, eq)) return false;
            if (!*eq) return true;
        }
        *eq = true;
        break;
    case JV_DICT:
        if (a.u.dict->ns || b.u.dict->ns) {
            *eq = a.u.dict == b.u.dict;
            break;
        }
        if (a.u.dict->n != b.u.dict->n) break;
        for (size_t i = 0; i < a.u.dict->n; i++) {
            long j = dict_find(c, b.u.dict, a.u.dict->keys[i]);
            if (j < 0) return true;
            if (!values_equal(c, a.u.dict->vals[i], b.u.dict->vals[j], depth + 1, eq)) return false;
            if (!*eq) return true;
        }
        *eq = true;
        break;
    case JV_FUNC: *eq = a.u.fn == b.u.fn; break;
    default: *eq = a.u.ptr == b.u.ptr; break;
    }
    return true;
}

static int ascii_fold(int ch) {
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* <0, 0, >0 like Python's ordering; sets *ok=false (and the error) for
 * unorderable types. fold_case compares strings case-insensitively. */
static int compare_values(jinja_ctx *c, const node *at, jv a, jv b, bool fold_case, int depth, bool *ok) {
    if (depth > VALUE_MAX_DEPTH) {
        *ok = fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply to compare");
        return 0;
    }
    c->steps++;
    if (is_number(a) && is_number(b)) {
        if (is_intlike(a) && is_intlike(b)) return num_i(a) < num_i(b) ? -1 : num_i(a) > num_i(b);
        double x = num_f(a), y = num_f(b);
        return x < y ? -1 : x > y;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        c->steps += (a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n) / 64;
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        for (size_t i = 0; i < n; i++) {
            int x = (unsigned char)a.u.s.p[i], y = (unsigned char)b.u.s.p[i];
            if (fold_case) {
                x = ascii_fold(x);
                y = ascii_fold(y);
            }
            if (x != y) return x < y ? -1 : 1;
        }
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
    }
    if (a.type == JV_LIST && b.type == JV_LIST && a.u.list->tuple == b.u.list->tuple) {
        size_t n = a.u.list->n < b.u.list->n ? a.u.list->n : b.u.list->n;
        for (size_t i = 0; i < n; i++) {
            int r = compare_values(c, at, a.u.list->items[i], b.u.list->items[i], fold_case, depth + 1, ok);
            if (!*ok || r) return r;
        }
        return a.u.list->n < b.u.list->n ? -1 : a.u.list->n > b.u.list->n;
    }
    *ok = fail(c, at, HEARTH_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'", type_name(a),
               type_name(b));
    return 0;
}

/* ================================================================ evaluator */

static bool eval(jinja_ctx *c, const node *n, jv *out);
typedef enum { EX_OK, EX_ERR, EX_BREAK, EX_CONTINUE } exec_status;
static exec_status exec_body(jinja_ctx *c, node *const *body, int n);

/* ---------------------------------------------------------------- variables */

static bool frame_set(jinja_ctx *c, frame *f, const char *name, size_t nlen, jv val) {
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].nlen == nlen && memcmp(f->vars[i].name, name, nlen) == 0) {
            f->vars[i].val = val;
            return true;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        jvar *v = arena_alloc(&c->ar, cap * sizeof *v);
        if (!v) return false;
        if (f->n) memcpy(v, f->vars, f->n * sizeof *v);
        f->vars = v;
        f->cap = cap;
    }
    f->vars[f->n].name = name;
    f->vars[f->n].nlen = nlen;
    f->vars[f->n].val = val;
    f->n++;
    return true;
}

static bool name_is(const char *p, size_t n, const char *s) {
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

static jv lookup(jinja_ctx *c, const char *name, size_t nlen) {
    for (frame *f = c->fr; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->vars[i].nlen == nlen && memcmp(f->vars[i].name, name, nlen) == 0) return f->vars[i].val;
    static const struct {
        const char *name;
        int fn;
    } fns[] = {
        {"range", FN_RANGE},           {"namespace", FN_NAMESPACE}, {"raise_exception", FN_RAISE},
        {"strftime_now", FN_STRFTIME}, {"dict", FN_DICT},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (name_is(name, nlen, fns[i].name)) {
            jv v = {.type = JV_FUNC, .u.fn = fns[i].fn};
            return v;
        }
    jv u = jv_undef();
    u.u.s.p = name;
    u.u.s.n = nlen;
    return u;
}

static bool undefined_error(jinja_ctx *c, const node *at, jv v) {
    if (v.u.s.p)
        return fail(c, at, HEARTH_ERR_FORMAT, "'%.*s' is undefined", (int)(v.u.s.n > 60 ? 60 : v.u.s.n),
                    v.u.s.p);
    return fail(c, at, HEARTH_ERR_FORMAT, "value is undefined");
}

/* ---------------------------------------------------------------- attribute / item access */

static jv missing(const char *name, size_t n) {
    jv u = jv_undef();
    u.u.s.p = name;
    u.u.s.n = n;
    return u;
}

static bool loop_attr(jinja_ctx *c, const node *at, const jloop *l, const char *name, size_t n, jv *out) {
    int64_t len = (int64_t)l->items->n, i = l->index0;
    if (name_is(name, n, "index"))
        *out = jv_int(i + 1);
    else if (name_is(name, n, "index0"))
        *out = jv_int(i);
    else if (name_is(name, n, "revindex"))
        *out = jv_int(len - i);
    else if (name_is(name, n, "revindex0"))
        *out = jv_int(len - i - 1);
    else if (name_is(name, n, "first"))
        *out = jv_bool(i == 0);
    else if (name_is(name, n, "last"))
        *out = jv_bool(i == len - 1);
    else if (name_is(name, n, "length"))
        *out = jv_int(len);
    else if (name_is(name, n, "depth"))
        *out = jv_int(1);
    else if (name_is(name, n, "depth0"))
        *out = jv_int(0);
    else if (name_is(name, n, "previtem"))
        *out = i > 0 ? l->items->items[i - 1] : missing(name, n);
    else if (name_is(name, n, "nextitem"))
        *out = i + 1 < len ? l->items->items[i + 1] : missing(name, n);
    else
        *out = missing(name, n);
    (void)c;
    (void)at;
    return true;
}

/* obj.name: dict key, loop attribute; anything else is undefined. */
static bool get_attr(jinja_ctx *c, const node *at, jv obj, const char *name, size_t n, jv *out) {
    if (obj.type == JV_UNDEF) return undefined_error(c, at, obj);
    if (obj.type == JV_DICT) {
        long i = dict_find(c, obj.u.dict, strview(name, n));
        *out = i >= 0 ? obj.u.dict->vals[i] : missing(name, n);
        return true;
    }
    if (obj.type == JV_LOOP) return loop_attr(c, at, obj.u.ptr, name, n, out);
    *out = missing(name, n);
    return true;
}

static bool get_item(jinja_ctx *c, const node *at, jv obj, jv key, jv *out) {
    if (obj.type == JV_UNDEF) return undefined_error(c, at, obj);
    if (obj.type == JV_DICT) {
        long i = dict_find(c, obj.u.dict, key);
        *out = i >= 0 ? obj.u.dict->vals[i] : jv_undef();
        return true;
    }
    if ((obj.type == JV_LIST || obj.type == JV_STR) && is_intlike(key)) {
        int64_t idx = num_i(key);
        if (obj.type == JV_LIST) {
            int64_t len = (int64_t)obj.u.list->n;
            if (idx < 0) idx += len;
            *out = idx >= 0 && idx < len ? obj.u.list->items[idx] : jv_undef();
            return true;
        }
        if (!charge(c, at, obj.u.s.n)) return false;
        int64_t len = (int64_t)cp_count(obj.u.s.p, obj.u.s.n);
        if (idx < 0) idx += len;
        if (idx < 0 || idx >= len) {
            *out = jv_undef();
            return true;
        }
        size_t o = cp_offset(obj.u.s.p, obj.u.s.n, (size_t)idx);
        *out = strview(obj.u.s.p + o, cp_next(obj.u.s.p, obj.u.s.n, o) - o);
        return true;
    }
    if (obj.type == JV_LOOP && key.type == JV_STR)
        return loop_attr(c, at, obj.u.ptr, key.u.s.p, key.u.s.n, out);
    if (key.type == JV_STR) return get_attr(c, at, obj, key.u.s.p, key.u.s.n, out);
    *out = jv_undef();
    return true;
}

/* Python slice index normalization. */
static void slice_indices(int64_t len, const jv *start, const jv *stop, int64_t step, int64_t *s,
                          int64_t *e) {
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? len - 1 : len;
    if (!start)
        *s = step < 0 ? hi : lo;
    else {
        *s = num_i(*start);
        if (*s < 0) {
            *s += len;
            if (*s < lo) *s = lo;
        } else if (*s > hi)
            *s = hi;
    }
    if (!stop)
        *e = step < 0 ? lo : hi;
    else {
        *e = num_i(*stop);
        if (*e < 0) {
            *e += len;
            if (*e < lo) *e = lo;
        } else if (*e > hi)
            *e = hi;
    }
}

static bool eval_slice(jinja_ctx *c, const node *n, jv obj, jv *out) {
    jv sv, ev, tv;
    const jv *sp = NULL, *ep = NULL;
    int64_t step = 1;
    if (n->b) {
        if (!eval(c, n->b, &sv)) return false;
        if (sv.type != JV_NONE) sp = &sv;
    }
    if (n->c) {
        if (!eval(c, n->c, &ev)) return false;
        if (ev.type != JV_NONE) ep = &ev;
    }
    if (n->d) {
        if (!eval(c, n->d, &tv)) return false;
        if (tv.type != JV_NONE) {
            if (!is_intlike(tv)) return fail(c, n, HEARTH_ERR_FORMAT, "slice step must be an integer");
            step = num_i(tv);
        }
    }
    if ((sp && !is_intlike(*sp)) || (ep && !is_intlike(*ep)))
        return fail(c, n, HEARTH_ERR_FORMAT, "slice indices must be integers or none");
    if (step == 0) return fail(c, n, HEARTH_ERR_FORMAT, "slice step cannot be zero");
    if (obj.type == JV_UNDEF) return undefined_error(c, n, obj);
    if (obj.type != JV_LIST && obj.type != JV_STR)
        return fail(c, n, HEARTH_ERR_FORMAT, "'%s' object is not subscriptable", type_name(obj));
    if (obj.type == JV_STR && !charge(c, n, obj.u.s.n)) return false;
    int64_t len = obj.type == JV_LIST ? (int64_t)obj.u.list->n : (int64_t)cp_count(obj.u.s.p, obj.u.s.n);
    int64_t s, e;
    slice_indices(len, sp, ep, step, &s, &e);
    if (obj.type == JV_STR && step == 1) {
        if (e < s) e = s;
        size_t bo = cp_offset(obj.u.s.p, obj.u.s.n, (size_t)s),
               be = cp_offset(obj.u.s.p, obj.u.s.n, (size_t)e);
        *out = strview(obj.u.s.p + bo, be - bo);
        return true;
    }
    jv_list *l = list_alloc(c, 0);
    if (!l) return oom(c, n);
    sbuf b = {0};
    if (obj.type == JV_STR) {
        /* general string slice: collect code point offsets */
        size_t *offs = arena_alloc(&c->ar, ((size_t)len + 1) * sizeof *offs);
        if (!offs) return oom(c, n);
        size_t k = 0;
        for (size_t i = 0; i < obj.u.s.n; i++)
            if (cp_boundary(obj.u.s.p, i)) offs[k++] = i;
        offs[k] = obj.u.s.n;
        for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
            if (!charge(c, n, 0)) return false;
            if (!sb_put(c, &b, obj.u.s.p + offs[i], offs[i + 1] - offs[i])) return oom(c, n);
        }
        *out = sb_val(&b);
        return true;
    }
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
        if (!charge(c, n, 0)) return false;
        if (!list_push(c, l, obj.u.list->items[i])) return oom(c, n);
    }
    l->tuple = obj.u.list->tuple;
    *out = list_val(l);
    return true;
}

/* ---------------------------------------------------------------- iteration */

/* The items a for loop / filter walks: lists as they are, dict keys, string
 * code points; undefined iterates as empty. */
static bool iterate(jinja_ctx *c, const node *at, jv v, const jv_list **out) {
    static const jv_list empty = {0};
    switch (v.type) {
    case JV_UNDEF: *out = &empty; return true;
    case JV_LIST: *out = v.u.list; return true;
    case JV_DICT: {
        if (v.u.dict->ns) break;
        jv_list *l = list_alloc(c, v.u.dict->n);
        if (!l) return oom(c, at);
        for (size_t i = 0; i < v.u.dict->n; i++)
            l->items[l->n++] = v.u.dict->keys[i];
        *out = l;
        return true;
    }
    case JV_STR: {
        if (!charge(c, at, v.u.s.n)) return false;
        size_t cnt = cp_count(v.u.s.p, v.u.s.n);
        jv_list *l = list_alloc(c, cnt);
        if (!l) return oom(c, at);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t j = cp_next(v.u.s.p, v.u.s.n, i);
            l->items[l->n++] = strview(v.u.s.p + i, j - i);
            i = j;
        }
        *out = l;
        return true;
    }
    default: break;
    }
    return fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not iterable", type_name(v));
}

/* ---------------------------------------------------------------- operators */

static bool arith_int(jinja_ctx *c, const node *at, int op, int64_t x, int64_t y, jv *out) {
    int64_t r = 0;
    bool of = false;
    switch (op) {
    case OP_ADD: of = __builtin_add_overflow(x, y, &r); break;
    case OP_SUB: of = __builtin_sub_overflow(x, y, &r); break;
    case OP_MUL: of = __builtin_mul_overflow(x, y, &r); break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (y == 0) return fail(c, at, HEARTH_ERR_FORMAT, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
            of = op == OP_FLOORDIV;
            r = 0;
            break;
        }
        if (op == OP_FLOORDIV) {
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) r--;
        } else {
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
        }
        break;
    case OP_DIV:
        if (y == 0) return fail(c, at, HEARTH_ERR_FORMAT, "division by zero");
        *out = jv_float((double)x / (double)y);
        return true;
    case OP_POW:
        if (y < 0) {
            if (x == 0) return fail(c, at, HEARTH_ERR_FORMAT, "0 cannot be raised to a negative power");
            *out = jv_float(pow((double)x, (double)y));
            return true;
        }
        r = 1;
        for (int64_t base = x, e = y; e > 0 && !of; e >>= 1) {
            if (e & 1) of = __builtin_mul_overflow(r, base, &r);
            if (e > 1 && !of) of = __builtin_mul_overflow(base, base, &base);
        }
        break;
    }
    if (of) return fail(c, at, HEARTH_ERR_UNSUPPORTED, "integer overflow (Hearth's integers are 64-bit)");
    *out = jv_int(r);
    return true;
}

/* Python's "format" % args for the conversions templates use: %s %r %d %i
 * %f %x %% with flags, width and precision. */
static bool str_format(jinja_ctx *c, const node *at, jv fmt, jv args, jv *out) {
    const jv *argv = &args;
    size_t argc = 1, used = 0;
    bool mapping = args.type == JV_DICT;
    if (args.type == JV_LIST && args.u.list->tuple) {
        argv = args.u.list->items;
        argc = args.u.list->n;
    }
    if (!charge(c, at, fmt.u.s.n)) return false;
    sbuf b = {0};
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        if (!pct) {
            if (!sb_put(c, &b, p, (size_t)(end - p))) return oom(c, at);
            break;
        }
        if (!sb_put(c, &b, p, (size_t)(pct - p))) return oom(c, at);
        p = pct + 1;
        char spec[32] = "%";
        size_t k = 1;
        while (p < end && strchr("-+ #0", *p) && k < 8)
            spec[k++] = *p++;
        int width = 0, prec = -1;
        while (p < end && *p >= '0' && *p <= '9' && width < 1000)
            width = width * 10 + (*p++ - '0');
        if (p < end && *p == '.') {
            prec = 0;
            for (p++; p < end && *p >= '0' && *p <= '9' && prec < 100;)
                prec = prec * 10 + (*p++ - '0');
        }
        if (p >= end) return fail(c, at, HEARTH_ERR_FORMAT, "incomplete format");
        char conv = *p++;
        if (conv == '%') {
            if (!sb_put(c, &b, "%", 1)) return oom(c, at);
            continue;
        }
        if (used >= argc || mapping)
            return fail(c, at, HEARTH_ERR_FORMAT, "not enough arguments for format string");
        jv v = argv[used++];
        char num[512];
        if (conv == 's' || conv == 'r') {
            sbuf t = {0};
            if (!(conv == 's' ? write_str(c, at, &t, v, 0) : write_repr(c, at, &t, v, 0)))
                return c->failed ? false : oom(c, at);
            size_t len = t.n;
            if (prec >= 0 && (size_t)prec < len) len = cp_offset(t.p, t.n, (size_t)prec);
            size_t cps = cp_count(t.p ? t.p : "", len);
            bool left = memchr(spec, '-', k) != NULL;
            for (size_t i = cps; !left && i < (size_t)width; i++)
                if (!sb_put(c, &b, " ", 1)) return oom(c, at);
            if (!sb_put(c, &b, t.p ? t.p : "", len)) return oom(c, at);
            for (size_t i = cps; left && i < (size_t)width; i++)
                if (!sb_put(c, &b, " ", 1)) return oom(c, at);
            continue;
        }
        if (conv == 'c') {
            if (v.type == JV_STR && cp_count(v.u.s.p, v.u.s.n) == 1) {
                if (!sb_put(c, &b, v.u.s.p, v.u.s.n)) return oom(c, at);
            } else if (is_intlike(v) && num_i(v) >= 0 && num_i(v) <= 0x10FFFF) {
                char u[4];
                if (!sb_put(c, &b, u, utf8_put(u, (uint32_t)num_i(v)))) return oom(c, at);
            } else {
                return fail(c, at, HEARTH_ERR_FORMAT, "%%c requires an int or a single character");
            }
            continue;
        }
        if (!is_number(v))
            return fail(c, at, HEARTH_ERR_FORMAT, "%%%c format: a real number is required, not %s", conv,
                        type_name(v));
        char f[48];
        if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
            long long x = v.type == JV_FLOAT ? (isfinite(v.u.f) && fabs(v.u.f) < 9e18 ? (long long)v.u.f : 0)
                                             : (long long)num_i(v);
            snprintf(f, sizeof f, "%.*s%d%s", (int)k, spec, width,
                     conv == 'x'   ? "llx"
                     : conv == 'X' ? "llX"
                     : conv == 'o' ? "llo"
                                   : "lld");
            snprintf(num, sizeof num, f, x);
        } else if (conv == 'f' || conv == 'F' || conv == 'e' || conv == 'E' || conv == 'g' || conv == 'G') {
            snprintf(f, sizeof f, "%.*s%d.%d%c", (int)k, spec, width, prec < 0 ? 6 : prec, conv);
            snprintf(num, sizeof num, f, num_f(v));
        } else {
            return fail(c, at, HEARTH_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        }
        if (!sb_puts(c, &b, num)) return oom(c, at);
    }
    if (!mapping && used < argc)
        return fail(c, at, HEARTH_ERR_FORMAT, "not all arguments converted during string formatting");
    *out = sb_val(&b);
    return true;
}

static bool arith(jinja_ctx *c, const node *at, int op, jv a, jv b, jv *out) {
    if (a.type == JV_UNDEF) return undefined_error(c, at, a);
    if (b.type == JV_UNDEF) return undefined_error(c, at, b);
    if (is_intlike(a) && is_intlike(b)) return arith_int(c, at, op, num_i(a), num_i(b), out);
    if (is_number(a) && is_number(b)) {
        double x = num_f(a), y = num_f(b), r = 0;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
            if (y == 0) return fail(c, at, HEARTH_ERR_FORMAT, "float division by zero");
            r = x / y;
            break;
        case OP_FLOORDIV:
            if (y == 0) return fail(c, at, HEARTH_ERR_FORMAT, "float floor division by zero");
            r = floor(x / y);
            break;
        case OP_MOD:
            if (y == 0) return fail(c, at, HEARTH_ERR_FORMAT, "float modulo by zero");
            r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            break;
        case OP_POW: r = pow(x, y); break;
        }
        *out = jv_float(r);
        return true;
    }
    if (op == OP_ADD && a.type == JV_STR && b.type == JV_STR) {
        if (!charge(c, at, a.u.s.n + b.u.s.n)) return false;
        sbuf s = {0};
        if (!sb_grow(c, &s, a.u.s.n + b.u.s.n) || !sb_put(c, &s, a.u.s.p, a.u.s.n) ||
            !sb_put(c, &s, b.u.s.p, b.u.s.n))
            return oom(c, at);
        *out = sb_val(&s);
        return true;
    }
    if (op == OP_ADD && a.type == JV_LIST && b.type == JV_LIST) {
        if (!charge(c, at, (a.u.list->n + b.u.list->n) * sizeof(jv))) return false;
        jv_list *l = list_alloc(c, a.u.list->n + b.u.list->n);
        if (!l) return oom(c, at);
        for (size_t i = 0; i < a.u.list->n; i++)
            l->items[l->n++] = a.u.list->items[i];
        for (size_t i = 0; i < b.u.list->n; i++)
            l->items[l->n++] = b.u.list->items[i];
        l->tuple = a.u.list->tuple;
        *out = list_val(l);
        return true;
    }
    if (op == OP_MUL && ((a.type == JV_STR && is_intlike(b)) || (is_intlike(a) && b.type == JV_STR))) {
        jv s = a.type == JV_STR ? a : b;
        int64_t k = a.type == JV_STR ? num_i(b) : num_i(a);
        sbuf r = {0};
        if (k > 0 && s.u.s.n) {
            if ((uint64_t)k > c->lim.max_memory / s.u.s.n) {
                c->ar.over_budget = true;
                return oom(c, at);
            }
            if (!charge(c, at, s.u.s.n * (size_t)k)) return false;
            for (int64_t i = 0; i < k; i++)
                if (!sb_put(c, &r, s.u.s.p, s.u.s.n)) return oom(c, at);
        }
        *out = sb_val(&r);
        return true;
    }
    if (op == OP_MUL && ((a.type == JV_LIST && is_intlike(b)) || (is_intlike(a) && b.type == JV_LIST))) {
        const jv_list *src = a.type == JV_LIST ? a.u.list : b.u.list;
        int64_t k = a.type == JV_LIST ? num_i(b) : num_i(a);
        if (k < 0) k = 0;
        if (src->n && (uint64_t)k > c->lim.max_memory / (src->n * sizeof(jv))) {
            c->ar.over_budget = true;
            return oom(c, at);
        }
        if (!charge(c, at, src->n * (size_t)k * sizeof(jv))) return false;
        jv_list *l = list_alloc(c, src->n * (size_t)k);
        if (!l) return oom(c, at);
        for (int64_t r = 0; r < k; r++)
            for (size_t i = 0; i < src->n; i++)
                l->items[l->n++] = src->items[i];
        l->tuple = src->tuple;
        *out = list_val(l);
        return true;
    }
    if (op == OP_MOD && a.type == JV_STR) return str_format(c, at, a, b, out);
    return fail(c, at, HEARTH_ERR_FORMAT, "unsupported operand types for %s: '%s' and '%s'", op_text(op),
                type_name(a), type_name(b));
}

static bool contains(jinja_ctx *c, const node *at, jv item, jv seq, bool *res) {
    *res = false;
    switch (seq.type) {
    case JV_UNDEF: return true;
    case JV_STR:
        if (item.type != JV_STR)
            return fail(c, at, HEARTH_ERR_FORMAT, "'in <string>' requires string as left operand, not %s",
                        type_name(item));
        if (!charge(c, at, seq.u.s.n)) return false;
        if (item.u.s.n == 0)
            *res = true;
        else
            *res = item.u.s.n <= seq.u.s.n && memmem(seq.u.s.p, seq.u.s.n, item.u.s.p, item.u.s.n) != NULL;
        return true;
    case JV_LIST:
        for (size_t i = 0; i < seq.u.list->n && !*res; i++)
            if (!values_equal(c, item, seq.u.list->items[i], 0, res)) return false;
        return charge(c, at, 0);
    case JV_DICT: *res = dict_find(c, seq.u.dict, item) >= 0; return charge(c, at, 0);
    default: return fail(c, at, HEARTH_ERR_FORMAT, "argument of type '%s' is not iterable", type_name(seq));
    }
}

static bool compare_op(jinja_ctx *c, const node *at, int op, jv a, jv b, bool *res) {
    bool eq = false, ok = true;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        if (!values_equal(c, a, b, 0, &eq)) return false;
        *res = op == OP_EQ ? eq : !eq;
        return true;
    case OP_IN:
    case OP_NOTIN:
        if (!contains(c, at, a, b, &eq)) return false;
        *res = op == OP_IN ? eq : !eq;
        return true;
    default: {
        if (a.type == JV_UNDEF) return undefined_error(c, at, a);
        if (b.type == JV_UNDEF) return undefined_error(c, at, b);
        int r = compare_values(c, at, a, b, false, 0, &ok);
        if (!ok) return false;
        *res = op == OP_LT ? r < 0 : op == OP_LE ? r <= 0 : op == OP_GT ? r > 0 : r >= 0;
        return true;
    }
    }
}

/* ---------------------------------------------------------------- call arguments */

typedef struct jargs {
    jv *pos;
    size_t npos;
    const char *const *kwn;
    const size_t *kwl;
    jv *kwv;
    size_t nkw;
} jargs;

static bool arg_get(const jargs *a, size_t i, const char *kw, jv *out) {
    if (i < a->npos) {
        *out = a->pos[i];
        return true;
    }
    for (size_t k = 0; kw && k < a->nkw; k++)
        if (name_is(a->kwn[k], a->kwl[k], kw)) {
            *out = a->kwv[k];
            return true;
        }
    return false;
}

static bool arg_bool(const jargs *a, size_t i, const char *kw, bool def) {
    jv v;
    return arg_get(a, i, kw, &v) ? truthy(v) : def;
}

/* Evaluate a call node's arguments; `skip` leading positional slots are left
 * for the caller (the filtered value). Buffers come from the arena when the
 * call has more than fits on the stack. */
static bool eval_args(jinja_ctx *c, const node *n, jargs *a, jv *buf, size_t cap, size_t skip) {
    size_t total = skip + (size_t)n->n_items + (size_t)n->n_items2;
    jv *vals = buf;
    if (total > cap) {
        vals = arena_alloc(&c->ar, total * sizeof(jv));
        if (!vals) return oom(c, n);
    }
    for (int i = 0; i < n->n_items; i++)
        if (!eval(c, n->items[i], &vals[skip + (size_t)i])) return false;
    for (int i = 0; i < n->n_items2; i++)
        if (!eval(c, n->items2[i], &vals[skip + (size_t)n->n_items + (size_t)i])) return false;
    a->pos = vals;
    a->npos = skip + (size_t)n->n_items;
    a->kwn = n->names;
    a->kwl = n->nlens;
    a->kwv = vals + skip + n->n_items;
    a->nkw = (size_t)n->n_items2;
    return true;
}

static jargs args_shift(const jargs *a, size_t k) {
    jargs r = *a;
    r.pos = a->npos > k ? a->pos + k : a->pos;
    r.npos = a->npos > k ? a->npos - k : 0;
    return r;
}

/* ---------------------------------------------------------------- string helpers */

static bool is_space_byte(unsigned char ch) {
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

/* strip/lstrip/rstrip; chars==NULL strips whitespace. */
static jv str_strip(jv s, const jv *chars, bool left, bool right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    if (chars && chars->type == JV_STR) {
        const char *cs = chars->u.s.p;
        size_t cn = chars->u.s.n;
        /* by code point: a stripped char must be one of `chars` */
        while (left && b < e) {
            size_t nx = cp_next(p, e, b);
            bool hit = false;
            for (size_t k = 0; k < cn && !hit; k = cp_next(cs, cn, k))
                hit = cp_next(cs, cn, k) - k == nx - b && memcmp(cs + k, p + b, nx - b) == 0;
            if (!hit) break;
            b = nx;
        }
        while (right && e > b) {
            size_t pv = e - 1;
            while (pv > b && !cp_boundary(p, pv))
                pv--;
            bool hit = false;
            for (size_t k = 0; k < cn && !hit; k = cp_next(cs, cn, k))
                hit = cp_next(cs, cn, k) - k == e - pv && memcmp(cs + k, p + pv, e - pv) == 0;
            if (!hit) break;
            e = pv;
        }
    } else {
        while (left && b < e && is_space_byte((unsigned char)p[b]))
            b++;
        while (right && e > b && is_space_byte((unsigned char)p[e - 1]))
            e--;
    }
    return strview(p + b, e - b);
}

typedef enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_PY, CASE_TITLE_JINJA } case_mode;

static bool str_case(jinja_ctx *c, const node *at, jv s, case_mode m, jv *out) {
    if (!charge(c, at, s.u.s.n)) return false;
    char *p = arena_alloc(&c->ar, s.u.s.n ? s.u.s.n : 1);
    if (!p) return oom(c, at);
    bool start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        bool upper = false;
        switch (m) {
        case CASE_UPPER: upper = true; break;
        case CASE_LOWER: upper = false; break;
        case CASE_CAPITALIZE: upper = i == 0; break;
        case CASE_TITLE_PY:
            upper = start;
            start = !alpha;
            break;
        case CASE_TITLE_JINJA:
            upper = start;
            start = is_space_byte((unsigned char)ch) || strchr("-({[<", ch) != NULL;
            break;
        }
        if (alpha) ch = upper ? (char)toupper((unsigned char)ch) : (char)tolower((unsigned char)ch);
        p[i] = ch;
    }
    *out = strview(p, s.u.s.n);
    return true;
}

static bool str_replace(jinja_ctx *c, const node *at, jv s, jv old, jv new, int64_t count, jv *out) {
    if (!charge(c, at, s.u.s.n)) return false;
    sbuf b = {0};
    const char *p = s.u.s.p, *end = p + s.u.s.n;
    int64_t done = 0;
    if (old.u.s.n == 0) { /* Python inserts `new` between code points */
        for (size_t i = 0; i <= s.u.s.n; i = cp_next(s.u.s.p, s.u.s.n, i)) {
            if (count < 0 || done < count) {
                if (!sb_put(c, &b, new.u.s.p, new.u.s.n)) return oom(c, at);
                done++;
            }
            if (i == s.u.s.n) break;
            size_t j = cp_next(s.u.s.p, s.u.s.n, i);
            if (!sb_put(c, &b, p + i, j - i)) return oom(c, at);
            if (!charge(c, at, new.u.s.n)) return false;
        }
        *out = sb_val(&b);
        return true;
    }
    while (p < end && (count < 0 || done < count)) {
        const char *hit = memmem(p, (size_t)(end - p), old.u.s.p, old.u.s.n);
        if (!hit) break;
        if (!sb_put(c, &b, p, (size_t)(hit - p)) || !sb_put(c, &b, new.u.s.p, new.u.s.n)) return oom(c, at);
        if (!charge(c, at, new.u.s.n)) return false;
        p = hit + old.u.s.n;
        done++;
    }
    if (!sb_put(c, &b, p, (size_t)(end - p))) return oom(c, at);
    *out = sb_val(&b);
    return true;
}

/* str.split(sep=None, maxsplit=-1) */
static bool str_split(jinja_ctx *c, const node *at, jv s, const jv *sep, int64_t maxsplit, jv *out) {
    if (!charge(c, at, s.u.s.n)) return false;
    jv_list *l = list_alloc(c, 0);
    if (!l) return oom(c, at);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t splits = 0;
    if (!sep || sep->type == JV_NONE) {
        for (;;) {
            while (i < n && is_space_byte((unsigned char)p[i]))
                i++;
            if (i >= n) break;
            size_t j = i;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i && is_space_byte((unsigned char)p[e - 1]))
                    e--;
                if (!list_push(c, l, strview(p + i, e - i))) return oom(c, at);
                break;
            }
            while (j < n && !is_space_byte((unsigned char)p[j]))
                j++;
            if (!list_push(c, l, strview(p + i, j - i))) return oom(c, at);
            splits++;
            i = j;
        }
    } else {
        if (sep->type != JV_STR)
            return fail(c, at, HEARTH_ERR_FORMAT, "must be str or None, not %s", type_name(*sep));
        if (sep->u.s.n == 0) return fail(c, at, HEARTH_ERR_FORMAT, "empty separator");
        for (;;) {
            const char *hit =
                (maxsplit >= 0 && splits >= maxsplit) ? NULL : memmem(p + i, n - i, sep->u.s.p, sep->u.s.n);
            if (!hit) {
                if (!list_push(c, l, strview(p + i, n - i))) return oom(c, at);
                break;
            }
            if (!list_push(c, l, strview(p + i, (size_t)(hit - (p + i))))) return oom(c, at);
            splits++;
            i = (size_t)(hit - p) + sep->u.s.n;
            if (!charge(c, at, 0)) return false;
        }
    }
    *out = list_val(l);
    return true;
}

static bool str_affix(jinja_ctx *c, const node *at, jv s, jv affix, bool suffix, bool *res) {
    *res = false;
    if (affix.type == JV_LIST) {
        for (size_t i = 0; i < affix.u.list->n && !*res; i++)
            if (!str_affix(c, at, s, affix.u.list->items[i], suffix, res)) return false;
        return true;
    }
    if (affix.type != JV_STR)
        return fail(c, at, HEARTH_ERR_FORMAT,
                    "startswith/endswith first arg must be str or a tuple of str, not %s", type_name(affix));
    if (affix.u.s.n > s.u.s.n) return true;
    *res = memcmp(suffix ? s.u.s.p + s.u.s.n - affix.u.s.n : s.u.s.p, affix.u.s.p, affix.u.s.n) == 0;
    return true;
}

/* str.splitlines() (ASCII line boundaries) */
static bool str_splitlines(jinja_ctx *c, const node *at, jv s, jv_list **out) {
    if (!charge(c, at, s.u.s.n)) return false;
    jv_list *l = list_alloc(c, 0);
    if (!l) return oom(c, at);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0, start = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e)) {
            if (!list_push(c, l, strview(p + start, i - start))) return oom(c, at);
            i += (ch == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            start = i;
        } else {
            i++;
        }
    }
    if (start < n && !list_push(c, l, strview(p + start, n - start))) return oom(c, at);
    *out = l;
    return true;
}

static bool want_str(jinja_ctx *c, const node *at, jv v, const char *what) {
    if (v.type == JV_STR) return true;
    return fail(c, at, HEARTH_ERR_FORMAT, "%s expects a string, got %s", what, type_name(v));
}

/* ---------------------------------------------------------------- tests */

static bool apply_test(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, bool *res) {
    jv x;
    bool have = arg_get(a, 0, NULL, &x);
    switch (id) {
    case TS_DEFINED: *res = v.type != JV_UNDEF; return true;
    case TS_UNDEFINED: *res = v.type == JV_UNDEF; return true;
    case TS_NONE: *res = v.type == JV_NONE; return true;
    case TS_BOOLEAN: *res = v.type == JV_BOOL; return true;
    case TS_TRUE: *res = v.type == JV_BOOL && v.u.b; return true;
    case TS_FALSE: *res = v.type == JV_BOOL && !v.u.b; return true;
    case TS_INTEGER: *res = v.type == JV_INT; return true;
    case TS_FLOAT: *res = v.type == JV_FLOAT; return true;
    case TS_NUMBER: *res = is_number(v); return true;
    case TS_STRING: *res = v.type == JV_STR; return true;
    case TS_MAPPING: *res = v.type == JV_DICT && !v.u.dict->ns; return true;
    case TS_ITERABLE:
    case TS_SEQUENCE:
        *res = v.type == JV_STR || v.type == JV_LIST || (v.type == JV_DICT && !v.u.dict->ns) ||
               v.type == JV_UNDEF;
        return true;
    case TS_CALLABLE: *res = v.type == JV_FUNC || v.type == JV_MACRO; return true;
    case TS_ESCAPED: *res = false; return true;
    case TS_LOWER:
    case TS_UPPER: {
        if (v.type != JV_STR) {
            *res = false;
            return true;
        }
        bool cased = false, ok = true;
        for (size_t i = 0; i < v.u.s.n; i++) {
            char ch = v.u.s.p[i];
            if (ch >= 'a' && ch <= 'z') {
                cased = true;
                if (id == TS_UPPER) ok = false;
            } else if (ch >= 'A' && ch <= 'Z') {
                cased = true;
                if (id == TS_LOWER) ok = false;
            }
        }
        *res = cased && ok;
        return true;
    }
    case TS_EVEN:
    case TS_ODD:
    case TS_DIVISIBLEBY: {
        if (!is_intlike(v))
            return fail(c, at, HEARTH_ERR_FORMAT, "test '%s' needs an integer, got %s",
                        id == TS_DIVISIBLEBY ? "divisibleby"
                        : id == TS_EVEN      ? "even"
                                             : "odd",
                        type_name(v));
        int64_t d = 2;
        if (id == TS_DIVISIBLEBY) {
            if (!have || !is_intlike(x))
                return fail(c, at, HEARTH_ERR_FORMAT, "divisibleby needs an integer argument");
            d = num_i(x);
            if (d == 0) return fail(c, at, HEARTH_ERR_FORMAT, "integer division or modulo by zero");
        }
        int64_t r = d == -1 ? 0 : num_i(v) % d;
        *res = id == TS_ODD ? r != 0 : r == 0;
        return true;
    }
    case TS_SAMEAS:
        if (!have) return fail(c, at, HEARTH_ERR_FORMAT, "test 'sameas' needs an argument");
        if (v.type != x.type)
            *res = false;
        else if (v.type == JV_LIST || v.type == JV_DICT || v.type == JV_MACRO || v.type == JV_LOOP)
            *res = v.u.ptr == x.u.ptr;
        else
            return values_equal(c, v, x, 0, res);
        return true;
    case TS_IN:
        if (!have) return fail(c, at, HEARTH_ERR_FORMAT, "test 'in' needs an argument");
        return contains(c, at, v, x, res);
    case TS_EQ:
    case TS_NE:
    case TS_LT:
    case TS_LE:
    case TS_GT:
    case TS_GE: {
        if (!have) return fail(c, at, HEARTH_ERR_FORMAT, "comparison test needs an argument");
        static const int ops[] = {[TS_EQ] = OP_EQ, [TS_NE] = OP_NE, [TS_LT] = OP_LT,
                                  [TS_LE] = OP_LE, [TS_GT] = OP_GT, [TS_GE] = OP_GE};
        return compare_op(c, at, ops[id], v, x, res);
    }
    }
    return fail(c, at, HEARTH_ERR_UNSUPPORTED, "unknown test");
}

/* A test named by a string argument (select('equalto', 2)). */
static bool test_by_name(jinja_ctx *c, const node *at, jv name, int *id) {
    if (name.type != JV_STR) return fail(c, at, HEARTH_ERR_FORMAT, "test name must be a string");
    *id = lookup_test(name.u.s.p, name.u.s.n);
    if (!*id)
        return fail(c, at, HEARTH_ERR_UNSUPPORTED, "no test named '%.*s'",
                    (int)(name.u.s.n > 40 ? 40 : name.u.s.n), name.u.s.p);
    return true;
}

/* ---------------------------------------------------------------- filters */

static bool apply_filter(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, jv *out);

/* Follow "a.b.0" through attributes/items. */
static bool attr_path(jinja_ctx *c, const node *at, jv v, jv path, jv *out) {
    if (is_intlike(path)) return get_item(c, at, v, path, out);
    if (path.type != JV_STR) return fail(c, at, HEARTH_ERR_FORMAT, "attribute must be a string");
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (v.type == JV_UNDEF) {
            *out = v;
            return true;
        }
        bool digits = n > 0;
        int64_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9' || k > INT64_MAX / 10 - 10)
                digits = false;
            else
                k = k * 10 + (p[i] - '0');
        }
        if (digits && v.type == JV_LIST) {
            if (!get_item(c, at, v, jv_int(k), &v)) return false;
        } else if (!get_item(c, at, v, strview(p, n), &v)) {
            return false;
        }
        if (!dot) break;
        p = dot + 1;
    }
    *out = v;
    return true;
}

/* Key for sort/unique/min/max: the attribute when given, else the item. */
static bool sort_key(jinja_ctx *c, const node *at, jv item, const jv *attr, jv *key) {
    if (attr) return attr_path(c, at, item, *attr, key);
    *key = item;
    return true;
}

/* Stable merge sort of vals by keys. */
static bool merge_sort(jinja_ctx *c, const node *at, jv *vals, jv *keys, size_t n, bool fold, bool reverse) {
    if (n < 2) return true;
    jv *tv = arena_alloc(&c->ar, n * sizeof(jv)), *tk = arena_alloc(&c->ar, n * sizeof(jv));
    if (!tv || !tk) return oom(c, at);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                bool ok = true;
                int r = compare_values(c, at, keys[i], keys[j], fold, 0, &ok);
                if (!ok) return false;
                if (reverse) r = -r;
                if (r <= 0) {
                    tv[k] = vals[i];
                    tk[k++] = keys[i++];
                } else {
                    tv[k] = vals[j];
                    tk[k++] = keys[j++];
                }
            }
            while (i < mid) {
                tv[k] = vals[i];
                tk[k++] = keys[i++];
            }
            while (j < hi) {
                tv[k] = vals[j];
                tk[k++] = keys[j++];
            }
        }
        memcpy(vals, tv, n * sizeof(jv));
        memcpy(keys, tk, n * sizeof(jv));
        if (!charge(c, at, n)) return false;
    }
    return true;
}

static bool to_int(jinja_ctx *c, const node *at, jv v, jv def, int64_t base, jv *out) {
    (void)c;
    (void)at;
    if (is_intlike(v)) {
        *out = jv_int(num_i(v));
        return true;
    }
    if (v.type == JV_FLOAT) {
        if (isfinite(v.u.f) && v.u.f > -9.2e18 && v.u.f < 9.2e18)
            *out = jv_int((int64_t)v.u.f);
        else
            *out = def;
        return true;
    }
    if (v.type == JV_STR && v.u.s.n < 64) {
        char buf[64], clean[64];
        memcpy(buf, v.u.s.p, v.u.s.n);
        buf[v.u.s.n] = '\0';
        size_t k = 0;
        for (size_t i = 0; buf[i]; i++)
            if (buf[i] != '_') clean[k++] = buf[i];
        clean[k] = '\0';
        char *end;
        long long x = strtoll(clean, &end, (int)(base >= 2 && base <= 36 ? base : 10));
        while (*end && is_space_byte((unsigned char)*end))
            end++;
        if (end != clean && !*end) {
            *out = jv_int(x);
            return true;
        }
        double f = strtod(clean, &end);
        while (*end && is_space_byte((unsigned char)*end))
            end++;
        if (end != clean && !*end && isfinite(f) && f > -9.2e18 && f < 9.2e18) {
            *out = jv_int((int64_t)f);
            return true;
        }
    }
    *out = def;
    return true;
}

static bool filter_select(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, jv *out) {
    bool attr_mode = id == FL_SELECTATTR || id == FL_REJECTATTR;
    bool keep_if = id == FL_SELECT || id == FL_SELECTATTR;
    jv attr, tname;
    size_t next = 0;
    if (attr_mode) {
        if (!arg_get(a, 0, NULL, &attr)) return fail(c, at, HEARTH_ERR_FORMAT, "missing attribute argument");
        next = 1;
    }
    int test = 0;
    if (arg_get(a, next, NULL, &tname)) {
        if (!test_by_name(c, at, tname, &test)) return false;
        next++;
    }
    jargs rest = args_shift(a, next);
    const jv_list *items;
    if (!truthy(v)) v = jv_undef(); /* Jinja2: `if seq:` guards the loop */
    if (!iterate(c, at, v, &items)) return false;
    jv_list *l = list_alloc(c, 0);
    if (!l) return oom(c, at);
    for (size_t i = 0; i < items->n; i++) {
        if (!charge(c, at, 0)) return false;
        jv x = items->items[i];
        if (attr_mode && !attr_path(c, at, x, attr, &x)) return false;
        bool r;
        if (test) {
            if (!apply_test(c, at, test, x, &rest, &r)) return false;
        } else {
            r = truthy(x);
        }
        if (r == keep_if && !list_push(c, l, items->items[i])) return oom(c, at);
    }
    *out = list_val(l);
    return true;
}

static bool filter_map(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv attr, fname, def;
    bool by_attr = false;
    for (size_t k = 0; k < a->nkw; k++)
        if (name_is(a->kwn[k], a->kwl[k], "attribute")) {
            attr = a->kwv[k];
            by_attr = true;
        }
    bool has_def = false;
    for (size_t k = 0; k < a->nkw; k++)
        if (name_is(a->kwn[k], a->kwl[k], "default")) {
            def = a->kwv[k];
            has_def = true;
        }
    int fid = 0;
    if (!by_attr) {
        if (!arg_get(a, 0, NULL, &fname) || fname.type != JV_STR)
            return fail(c, at, HEARTH_ERR_FORMAT, "map needs a filter name or attribute=");
        fid = lookup_filter(fname.u.s.p, fname.u.s.n);
        if (!fid)
            return fail(c, at, HEARTH_ERR_UNSUPPORTED, "no filter named '%.*s'",
                        (int)(fname.u.s.n > 40 ? 40 : fname.u.s.n), fname.u.s.p);
    }
    jargs rest = args_shift(a, 1);
    rest.nkw = 0;
    const jv_list *items;
    if (v.type == JV_NONE) v = jv_undef();
    if (!iterate(c, at, v, &items)) return false;
    jv_list *l = list_alloc(c, items->n);
    if (!l) return oom(c, at);
    for (size_t i = 0; i < items->n; i++) {
        if (!charge(c, at, 0)) return false;
        jv x;
        if (by_attr) {
            if (!attr_path(c, at, items->items[i], attr, &x)) return false;
            if (x.type == JV_UNDEF && has_def) x = def;
        } else if (!apply_filter(c, at, fid, items->items[i], &rest, &x)) {
            return false;
        }
        l->items[l->n++] = x;
    }
    *out = list_val(l);
    return true;
}

static bool filter_tojson(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    /* HF: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
    json_opts o = {.item_sep = ", ", .item_sep_n = 2, .key_sep = ": ", .key_sep_n = 2};
    o.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
    o.sort_keys = arg_bool(a, 3, "sort_keys", false);
    jv ind, seps;
    char *spaces = NULL;
    if (arg_get(a, 1, "indent", &ind) && ind.type != JV_NONE) {
        if (ind.type == JV_STR) {
            o.indent = ind.u.s.p;
            o.indent_n = ind.u.s.n;
        } else if (is_intlike(ind)) {
            int64_t k = num_i(ind);
            if (k > 1024) return fail(c, at, HEARTH_ERR_FORMAT, "tojson indent too large");
            if (k < 0) k = 0;
            spaces = arena_alloc(&c->ar, (size_t)k + 1);
            if (!spaces) return oom(c, at);
            memset(spaces, ' ', (size_t)k);
            o.indent = spaces;
            o.indent_n = (size_t)k;
        } else {
            return fail(c, at, HEARTH_ERR_FORMAT, "tojson indent must be an integer or a string");
        }
        o.item_sep = ",";
        o.item_sep_n = 1;
    }
    if (arg_get(a, 2, "separators", &seps) && seps.type != JV_NONE) {
        if (seps.type != JV_LIST || seps.u.list->n != 2 || seps.u.list->items[0].type != JV_STR ||
            seps.u.list->items[1].type != JV_STR)
            return fail(c, at, HEARTH_ERR_FORMAT, "tojson separators must be a pair of strings");
        o.item_sep = seps.u.list->items[0].u.s.p;
        o.item_sep_n = seps.u.list->items[0].u.s.n;
        o.key_sep = seps.u.list->items[1].u.s.p;
        o.key_sep_n = seps.u.list->items[1].u.s.n;
    }
    sbuf b = {0};
    if (!write_json(c, at, &b, v, &o, 0)) return c->failed ? false : oom(c, at);
    *out = sb_val(&b);
    return true;
}

static bool filter_indent(jinja_ctx *c, const node *at, jv s, const jargs *a, jv *out) {
    jv w;
    const char *ind = "    ";
    size_t ind_n = 4;
    char *spaces = NULL;
    if (arg_get(a, 0, "width", &w)) {
        if (w.type == JV_STR) {
            ind = w.u.s.p;
            ind_n = w.u.s.n;
        } else if (is_intlike(w)) {
            int64_t k = num_i(w);
            if (k > 1024) return fail(c, at, HEARTH_ERR_FORMAT, "indent width too large");
            if (k < 0) k = 0;
            spaces = arena_alloc(&c->ar, (size_t)k + 1);
            if (!spaces) return oom(c, at);
            memset(spaces, ' ', (size_t)k);
            ind = spaces;
            ind_n = (size_t)k;
        }
    }
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    /* s += "\n"; lines = s.splitlines() */
    sbuf src = {0};
    if (!sb_put(c, &src, s.u.s.p, s.u.s.n) || !sb_put(c, &src, "\n", 1)) return oom(c, at);
    jv_list *lines;
    if (!str_splitlines(c, at, sb_val(&src), &lines)) return false;
    sbuf b = {0};
    if (first && !sb_put(c, &b, ind, ind_n)) return oom(c, at);
    for (size_t i = 0; i < lines->n; i++) {
        jv ln = lines->items[i];
        if (i) {
            if (!sb_put(c, &b, "\n", 1)) return oom(c, at);
            if ((blank || ln.u.s.n) && !sb_put(c, &b, ind, ind_n)) return oom(c, at);
        }
        if (!sb_put(c, &b, ln.u.s.p, ln.u.s.n)) return oom(c, at);
        if (!charge(c, at, ln.u.s.n)) return false;
    }
    *out = sb_val(&b);
    return true;
}

static bool apply_filter(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, jv *out) {
    jv x, y;
    switch (id) {
    case FL_SAFE: *out = v; return true;
    case FL_ABS:
        if (v.type == JV_FLOAT)
            *out = jv_float(fabs(v.u.f));
        else if (is_intlike(v)) {
            if (num_i(v) == INT64_MIN) return fail(c, at, HEARTH_ERR_UNSUPPORTED, "integer overflow");
            *out = jv_int(num_i(v) < 0 ? -num_i(v) : num_i(v));
        } else
            return fail(c, at, HEARTH_ERR_FORMAT, "bad operand type for abs(): '%s'", type_name(v));
        return true;
    case FL_ATTR:
        if (!arg_get(a, 0, "name", &x) || x.type != JV_STR)
            return fail(c, at, HEARTH_ERR_FORMAT, "attr needs an attribute name");
        return get_attr(c, at, v, x.u.s.p, x.u.s.n, out);
    case FL_DEFAULT: {
        if (!arg_get(a, 0, "default_value", &x)) x = strview("", 0);
        bool boolean = arg_bool(a, 1, "boolean", false);
        *out = (v.type == JV_UNDEF || (boolean && !truthy(v))) ? x : v;
        return true;
    }
    case FL_LENGTH:
        switch (v.type) {
        case JV_UNDEF: *out = jv_int(0); return true;
        case JV_STR:
            if (!charge(c, at, v.u.s.n)) return false;
            *out = jv_int((int64_t)cp_count(v.u.s.p, v.u.s.n));
            return true;
        case JV_LIST: *out = jv_int((int64_t)v.u.list->n); return true;
        case JV_DICT:
            if (!v.u.dict->ns) {
                *out = jv_int((int64_t)v.u.dict->n);
                return true;
            }
            break;
        default: break;
        }
        return fail(c, at, HEARTH_ERR_FORMAT, "object of type '%s' has no len()", type_name(v));
    case FL_STRING: return to_str(c, at, v, out);
    case FL_LOWER:
    case FL_UPPER:
    case FL_CAPITALIZE:
    case FL_TITLE:
        if (!to_str(c, at, v, &v)) return false;
        return str_case(c, at, v,
                        id == FL_LOWER        ? CASE_LOWER
                        : id == FL_UPPER      ? CASE_UPPER
                        : id == FL_CAPITALIZE ? CASE_CAPITALIZE
                                              : CASE_TITLE_JINJA,
                        out);
    case FL_TRIM: {
        if (!to_str(c, at, v, &v)) return false;
        bool has = arg_get(a, 0, "chars", &x) && x.type != JV_NONE;
        if (has && !want_str(c, at, x, "trim")) return false;
        *out = str_strip(v, has ? &x : NULL, true, true);
        return charge(c, at, v.u.s.n);
    }
    case FL_REPLACE: {
        if (!to_str(c, at, v, &v)) return false;
        if (!arg_get(a, 0, "old", &x) || !arg_get(a, 1, "new", &y))
            return fail(c, at, HEARTH_ERR_FORMAT, "replace needs two arguments");
        if (!to_str(c, at, x, &x) || !to_str(c, at, y, &y)) return false;
        jv cnt;
        int64_t count = -1;
        if (arg_get(a, 2, "count", &cnt) && cnt.type != JV_NONE) {
            if (!is_intlike(cnt)) return fail(c, at, HEARTH_ERR_FORMAT, "replace count must be an integer");
            count = num_i(cnt);
        }
        return str_replace(c, at, v, x, y, count, out);
    }
    case FL_ESCAPE: {
        if (!to_str(c, at, v, &v)) return false;
        if (!charge(c, at, v.u.s.n)) return false;
        sbuf b = {0};
        for (size_t i = 0; i < v.u.s.n; i++) {
            const char *e = NULL;
            switch (v.u.s.p[i]) {
            case '&': e = "&amp;"; break;
            case '<': e = "&lt;"; break;
            case '>': e = "&gt;"; break;
            case '"': e = "&#34;"; break;
            case '\'': e = "&#39;"; break;
            }
            if (e ? !sb_puts(c, &b, e) : !sb_put(c, &b, v.u.s.p + i, 1)) return oom(c, at);
        }
        *out = sb_val(&b);
        return true;
    }
    case FL_CENTER: {
        if (!to_str(c, at, v, &v)) return false;
        int64_t width = 80;
        if (arg_get(a, 0, "width", &x)) {
            if (!is_intlike(x)) return fail(c, at, HEARTH_ERR_FORMAT, "center width must be an integer");
            width = num_i(x);
        }
        if (width > 65536) return fail(c, at, HEARTH_ERR_FORMAT, "center width too large");
        int64_t len = (int64_t)cp_count(v.u.s.p, v.u.s.n);
        if (width <= len) {
            *out = v;
            return true;
        }
        int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
        sbuf b = {0};
        for (int64_t i = 0; i < left; i++)
            if (!sb_put(c, &b, " ", 1)) return oom(c, at);
        if (!sb_put(c, &b, v.u.s.p, v.u.s.n)) return oom(c, at);
        for (int64_t i = 0; i < marg - left; i++)
            if (!sb_put(c, &b, " ", 1)) return oom(c, at);
        *out = sb_val(&b);
        return true;
    }
    case FL_WORDCOUNT: {
        if (!to_str(c, at, v, &v)) return false;
        int64_t words = 0;
        bool in = false;
        for (size_t i = 0; i < v.u.s.n; i++) {
            unsigned char ch = (unsigned char)v.u.s.p[i];
            bool w = isalnum(ch) || ch == '_' || ch >= 0x80;
            if (w && !in) words++;
            in = w;
        }
        *out = jv_int(words);
        return charge(c, at, v.u.s.n);
    }
    case FL_INDENT:
        if (!to_str(c, at, v, &v)) return false;
        return filter_indent(c, at, v, a, out);
    case FL_TOJSON: return filter_tojson(c, at, v, a, out);
    case FL_INT: {
        jv def = jv_int(0), base = jv_int(10);
        arg_get(a, 0, "default", &def);
        arg_get(a, 1, "base", &base);
        return to_int(c, at, v, def, is_intlike(base) ? num_i(base) : 10, out);
    }
    case FL_FLOAT: {
        jv def = jv_float(0);
        arg_get(a, 0, "default", &def);
        if (is_number(v))
            *out = jv_float(num_f(v));
        else if (v.type == JV_STR && v.u.s.n < 64) {
            char buf[64], *end;
            memcpy(buf, v.u.s.p, v.u.s.n);
            buf[v.u.s.n] = '\0';
            double f = strtod(buf, &end);
            while (*end && is_space_byte((unsigned char)*end))
                end++;
            *out = (end != buf && !*end) ? jv_float(f) : def;
        } else
            *out = def;
        return true;
    }
    case FL_ROUND: {
        if (!is_number(v))
            return fail(c, at, HEARTH_ERR_FORMAT, "round needs a number, got %s", type_name(v));
        int64_t prec = 0;
        if (arg_get(a, 0, "precision", &x)) {
            if (!is_intlike(x)) return fail(c, at, HEARTH_ERR_FORMAT, "round precision must be an integer");
            prec = num_i(x);
        }
        if (prec > 15) prec = 15;
        if (prec < -15) prec = -15;
        jv m = strview("common", 6);
        arg_get(a, 1, "method", &m);
        double f = num_f(v), scale = pow(10.0, (double)prec), r = f * scale;
        if (str_eq(m, "ceil", 4))
            r = ceil(r);
        else if (str_eq(m, "floor", 5))
            r = floor(r);
        else if (str_eq(m, "common", 6))
            r = nearbyint(r);
        else
            return fail(c, at, HEARTH_ERR_FORMAT, "method must be common, ceil or floor");
        *out = jv_float(r / scale);
        return true;
    }
    case FL_ITEMS: {
        if (v.type == JV_UNDEF) {
            jv_list *l = list_alloc(c, 0);
            if (!l) return oom(c, at);
            *out = list_val(l);
            return true;
        }
        if (v.type != JV_DICT || v.u.dict->ns)
            return fail(c, at, HEARTH_ERR_FORMAT, "Can only get item pairs from a mapping.");
        jv_list *l = list_alloc(c, v.u.dict->n);
        if (!l) return oom(c, at);
        for (size_t i = 0; i < v.u.dict->n; i++) {
            jv_list *pair = list_alloc(c, 2);
            if (!pair) return oom(c, at);
            pair->tuple = true;
            pair->items[0] = v.u.dict->keys[i];
            pair->items[1] = v.u.dict->vals[i];
            pair->n = 2;
            l->items[l->n++] = list_val(pair);
        }
        *out = list_val(l);
        return charge(c, at, v.u.dict->n * 16);
    }
    case FL_DICTSORT: {
        if (v.type != JV_DICT || v.u.dict->ns)
            return fail(c, at, HEARTH_ERR_FORMAT, "dictsort needs a mapping");
        bool cs = arg_bool(a, 0, "case_sensitive", false), rev = arg_bool(a, 2, "reverse", false);
        jv by = strview("key", 3);
        arg_get(a, 1, "by", &by);
        bool by_value = str_eq(by, "value", 5);
        if (!by_value && !str_eq(by, "key", 3))
            return fail(c, at, HEARTH_ERR_FORMAT, "You can only sort by either \"key\" or \"value\"");
        size_t n = v.u.dict->n;
        jv *vals = arena_alloc(&c->ar, (n ? n : 1) * sizeof(jv)),
           *keys = arena_alloc(&c->ar, (n ? n : 1) * sizeof(jv));
        if (!vals || !keys) return oom(c, at);
        for (size_t i = 0; i < n; i++) {
            jv_list *pair = list_alloc(c, 2);
            if (!pair) return oom(c, at);
            pair->tuple = true;
            pair->items[0] = v.u.dict->keys[i];
            pair->items[1] = v.u.dict->vals[i];
            pair->n = 2;
            vals[i] = list_val(pair);
            keys[i] = by_value ? v.u.dict->vals[i] : v.u.dict->keys[i];
        }
        if (!merge_sort(c, at, vals, keys, n, !cs, rev)) return false;
        jv_list *l = list_alloc(c, 0);
        if (!l) return oom(c, at);
        l->items = vals;
        l->n = l->cap = n;
        *out = list_val(l);
        return true;
    }
    case FL_SELECT:
    case FL_REJECT:
    case FL_SELECTATTR:
    case FL_REJECTATTR: return filter_select(c, at, id, v, a, out);
    case FL_MAP: return filter_map(c, at, v, a, out);
    default: break;
    }
    /* filters over an iterable */
    const jv_list *items;
    if (id == FL_REVERSE && v.type == JV_STR) {
        if (!charge(c, at, v.u.s.n)) return false;
        char *p = arena_alloc(&c->ar, v.u.s.n ? v.u.s.n : 1);
        if (!p) return oom(c, at);
        size_t o = v.u.s.n;
        for (size_t i = 0; i < v.u.s.n;) {
            size_t j = cp_next(v.u.s.p, v.u.s.n, i);
            o -= j - i;
            memcpy(p + o, v.u.s.p + i, j - i);
            i = j;
        }
        *out = strview(p, v.u.s.n);
        return true;
    }
    if (!iterate(c, at, v, &items)) return false;
    switch (id) {
    case FL_FIRST: *out = items->n ? items->items[0] : jv_undef(); return true;
    case FL_LAST: *out = items->n ? items->items[items->n - 1] : jv_undef(); return true;
    case FL_LIST:
    case FL_REVERSE: {
        jv_list *l = list_alloc(c, items->n);
        if (!l) return oom(c, at);
        for (size_t i = 0; i < items->n; i++)
            l->items[l->n++] = items->items[id == FL_REVERSE ? items->n - 1 - i : i];
        *out = list_val(l);
        return charge(c, at, items->n * 16);
    }
    case FL_JOIN: {
        jv sep = strview("", 0), attr;
        arg_get(a, 0, "d", &sep);
        if (!to_str(c, at, sep, &sep)) return false;
        bool has_attr = arg_get(a, 1, "attribute", &attr) && attr.type != JV_NONE;
        sbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            jv x = items->items[i];
            if (has_attr && !attr_path(c, at, x, attr, &x)) return false;
            if (i && !sb_put(c, &b, sep.u.s.p, sep.u.s.n)) return oom(c, at);
            if (!write_str(c, at, &b, x, 0)) return c->failed ? false : oom(c, at);
            if (!charge(c, at, 0)) return false;
        }
        *out = sb_val(&b);
        return true;
    }
    case FL_SUM: {
        jv attr, acc = jv_int(0);
        bool has_attr = arg_get(a, 0, "attribute", &attr) && attr.type != JV_NONE;
        arg_get(a, 1, "start", &acc);
        for (size_t i = 0; i < items->n; i++) {
            jv x = items->items[i];
            if (has_attr && !attr_path(c, at, x, attr, &x)) return false;
            if (!arith(c, at, OP_ADD, acc, x, &acc)) return false;
        }
        *out = acc;
        return true;
    }
    case FL_SORT:
    case FL_UNIQUE:
    case FL_MIN:
    case FL_MAX: {
        bool rev = id == FL_SORT && arg_bool(a, 0, "reverse", false);
        bool cs = arg_bool(a, id == FL_SORT ? 1 : 0, "case_sensitive", false);
        jv attr;
        bool has_attr = arg_get(a, id == FL_SORT ? 2 : 1, "attribute", &attr) && attr.type != JV_NONE;
        size_t n = items->n;
        jv *vals = arena_alloc(&c->ar, (n ? n : 1) * sizeof(jv)),
           *keys = arena_alloc(&c->ar, (n ? n : 1) * sizeof(jv));
        if (!vals || !keys) return oom(c, at);
        for (size_t i = 0; i < n; i++) {
            vals[i] = items->items[i];
            if (!sort_key(c, at, vals[i], has_attr ? &attr : NULL, &keys[i])) return false;
        }
        if (id == FL_UNIQUE) {
            jv_list *l = list_alloc(c, 0);
            jv_list *seen = list_alloc(c, 0);
            if (!l || !seen) return oom(c, at);
            for (size_t i = 0; i < n; i++) {
                jv k = keys[i];
                if (!cs && k.type == JV_STR && !str_case(c, at, k, CASE_LOWER, &k)) return false;
                bool dup = false;
                for (size_t j = 0; j < seen->n && !dup; j++)
                    if (!values_equal(c, seen->items[j], k, 0, &dup)) return false;
                if (!charge(c, at, seen->n)) return false;
                if (!dup && (!list_push(c, seen, k) || !list_push(c, l, vals[i]))) return oom(c, at);
            }
            *out = list_val(l);
            return true;
        }
        if (id == FL_MIN || id == FL_MAX) {
            if (!n) {
                *out = jv_undef();
                return true;
            }
            size_t best = 0;
            for (size_t i = 1; i < n; i++) {
                bool ok = true;
                int r = compare_values(c, at, keys[i], keys[best], !cs, 0, &ok);
                if (!ok) return false;
                if (id == FL_MIN ? r < 0 : r > 0) best = i;
            }
            *out = vals[best];
            return true;
        }
        if (!merge_sort(c, at, vals, keys, n, !cs, rev)) return false;
        jv_list *l = list_alloc(c, 0);
        if (!l) return oom(c, at);
        l->items = vals;
        l->n = l->cap = n;
        *out = list_val(l);
        return true;
    }
    }
    return fail(c, at, HEARTH_ERR_UNSUPPORTED, "filter not implemented");
}

/* ---------------------------------------------------------------- global functions */

static bool fn_strftime(jinja_ctx *c, const node *at, jv fmt, jv *out) {
    if (!want_str(c, at, fmt, "strftime_now")) return false;
    if (fmt.u.s.n > 256) return fail(c, at, HEARTH_ERR_FORMAT, "strftime_now format too long");
    /* only well-known conversions reach strftime; anything else prints as written */
    char safe[600];
    size_t k = 0;
    for (size_t i = 0; i < fmt.u.s.n; i++) {
        char ch = fmt.u.s.p[i];
        if (ch == '\0') continue;
        if (ch == '%') {
            char nx = i + 1 < fmt.u.s.n ? fmt.u.s.p[i + 1] : 0;
            if (nx && strchr("aAbBcdDeFgGhHIjmMnpRStTuUVwWxXyYzZ%", nx)) {
                safe[k++] = '%';
                safe[k++] = nx;
                i++;
            } else {
                safe[k++] = '%';
                safe[k++] = '%';
            }
        } else {
            safe[k++] = ch;
        }
    }
    safe[k] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) memset(&tm, 0, sizeof tm);
    char buf[2048];
    size_t n = k ? strftime(buf, sizeof buf, safe, &tm) : 0;
    bool ok = true;
    *out = mkstr(c, buf, n, &ok);
    return ok ? true : oom(c, at);
}

static bool call_function(jinja_ctx *c, const node *at, int fn, const jargs *a, jv *out) {
    jv x;
    switch (fn) {
    case FN_RANGE: {
        int64_t start = 0, stop, step = 1;
        jv v[3];
        size_t n = a->npos < 3 ? a->npos : 3;
        if (n == 0 || a->npos > 3)
            return fail(c, at, HEARTH_ERR_FORMAT, "range expects 1 to 3 integer arguments");
        for (size_t i = 0; i < n; i++) {
            v[i] = a->pos[i];
            if (!is_intlike(v[i]))
                return fail(c, at, HEARTH_ERR_FORMAT, "range arguments must be integers, not %s",
                            type_name(v[i]));
        }
        if (n == 1)
            stop = num_i(v[0]);
        else {
            start = num_i(v[0]);
            stop = num_i(v[1]);
            if (n == 3) step = num_i(v[2]);
        }
        if (step == 0) return fail(c, at, HEARTH_ERR_FORMAT, "range() arg 3 must not be zero");
        double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                                : ceil(((double)start - (double)stop) / -(double)step);
        if (count < 0) count = 0;
        if (count > RANGE_MAX)
            return fail(c, at, HEARTH_ERR_FORMAT, "range too big (more than %d items)", RANGE_MAX);
        jv_list *l = list_alloc(c, (size_t)count);
        if (!l) return oom(c, at);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (l->n >= (size_t)count) break;
            l->items[l->n++] = jv_int(i);
        }
        if (!charge(c, at, l->n)) return false;
        *out = list_val(l);
        return true;
    }
    case FN_NAMESPACE:
    case FN_DICT: {
        jv_dict *d = dict_alloc(c);
        if (!d) return oom(c, at);
        d->ns = fn == FN_NAMESPACE;
        if (a->npos > 1)
            return fail(c, at, HEARTH_ERR_FORMAT, "%s() takes at most one positional argument",
                        fn == FN_NAMESPACE ? "namespace" : "dict");
        if (a->npos == 1) {
            jv src = a->pos[0];
            if (src.type == JV_DICT) {
                for (size_t i = 0; i < src.u.dict->n; i++)
                    if (!dict_put(c, d, src.u.dict->keys[i], src.u.dict->vals[i])) return oom(c, at);
            } else if (src.type == JV_LIST) {
                for (size_t i = 0; i < src.u.list->n; i++) {
                    jv p = src.u.list->items[i];
                    if (p.type != JV_LIST || p.u.list->n != 2)
                        return fail(c, at, HEARTH_ERR_FORMAT,
                                    "dictionary update sequence element has wrong length");
                    if (!dict_put(c, d, p.u.list->items[0], p.u.list->items[1])) return oom(c, at);
                }
            } else {
                return fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not a mapping", type_name(src));
            }
        }
        for (size_t k = 0; k < a->nkw; k++)
            if (!dict_put(c, d, strview(a->kwn[k], a->kwl[k]), a->kwv[k])) return oom(c, at);
        *out = dict_val(d);
        return charge(c, at, d->n);
    }
    case FN_RAISE: {
        jv msg = strview("", 0);
        if (arg_get(a, 0, "message", &x) && !to_str(c, at, x, &msg)) return false;
        if (c->failed) return false;
        bool r = fail(c, at, HEARTH_ERR_INVALID, "%.*s", (int)(msg.u.s.n > 400 ? 400 : msg.u.s.n), msg.u.s.p);
        c->raised = true;
        return r;
    }
    case FN_STRFTIME:
        if (!arg_get(a, 0, "format", &x))
            return fail(c, at, HEARTH_ERR_FORMAT, "strftime_now needs a format");
        return fn_strftime(c, at, x, out);
    }
    return fail(c, at, HEARTH_ERR_UNSUPPORTED, "unknown function");
}

static bool call_macro(jinja_ctx *c, const node *at, const node *m, const jargs *a, jv *out) {
    if (c->macro_depth >= MACRO_MAX_DEPTH)
        return fail(c, at, HEARTH_ERR_FORMAT, "macro calls nested deeper than %d", MACRO_MAX_DEPTH);
    if (a->npos > (size_t)m->n_names)
        return fail(c, at, HEARTH_ERR_FORMAT, "macro '%.*s' takes %d arguments, %zu given", (int)m->nlen,
                    m->name, m->n_names, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        bool known = false;
        for (int i = 0; i < m->n_names && !known; i++)
            known = m->nlens[i] == a->kwl[k] && memcmp(m->names[i], a->kwn[k], a->kwl[k]) == 0;
        if (!known)
            return fail(c, at, HEARTH_ERR_FORMAT, "macro '%.*s' has no argument '%.*s'", (int)m->nlen,
                        m->name, (int)a->kwl[k], a->kwn[k]);
    }
    frame f = {.parent = c->root};
    frame *saved_fr = c->fr;
    sbuf *saved_cap = c->capture;
    sbuf cap = {0};
    c->fr = &f;
    bool ok = true;
    for (int i = 0; ok && i < m->n_names; i++) {
        jv v;
        bool have = false;
        if ((size_t)i < a->npos) {
            v = a->pos[i];
            have = true;
        }
        for (size_t k = 0; !have && k < a->nkw; k++)
            if (a->kwl[k] == m->nlens[i] && memcmp(a->kwn[k], m->names[i], a->kwl[k]) == 0) {
                v = a->kwv[k];
                have = true;
            }
        if (!have) {
            if (m->items2[i])
                ok = eval(c, m->items2[i], &v);
            else
                v = missing(m->names[i], m->nlens[i]);
        }
        if (ok && !frame_set(c, &f, m->names[i], m->nlens[i], v)) ok = oom(c, at);
    }
    if (ok) {
        c->capture = &cap;
        c->macro_depth++;
        exec_status st = exec_body(c, m->items, m->n_items);
        c->macro_depth--;
        ok = st != EX_ERR;
    }
    c->fr = saved_fr;
    c->capture = saved_cap;
    if (!ok) return false;
    *out = sb_val(&cap);
    return true;
}

static bool call_value(jinja_ctx *c, const node *at, jv fnv, const jargs *a, jv *out) {
    switch (fnv.type) {
    case JV_FUNC: return call_function(c, at, fnv.u.fn, a, out);
    case JV_MACRO: return call_macro(c, at, fnv.u.ptr, a, out);
    case JV_UNDEF: return undefined_error(c, at, fnv);
    default: return fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not callable", type_name(fnv));
    }
}

/* obj.method(args) for the str / dict / loop methods templates use. */
static bool call_method(jinja_ctx *c, const node *at, jv obj, const char *m, size_t mn, const jargs *a,
                        jv *out) {
    jv x, y;
    if (obj.type == JV_UNDEF) return undefined_error(c, at, obj);
    if (obj.type == JV_STR) {
        if (name_is(m, mn, "strip") || name_is(m, mn, "lstrip") || name_is(m, mn, "rstrip")) {
            bool has = arg_get(a, 0, "chars", &x) && x.type != JV_NONE;
            if (has && !want_str(c, at, x, "strip")) return false;
            *out = str_strip(obj, has ? &x : NULL, m[0] != 'r', m[0] != 'l');
            return charge(c, at, obj.u.s.n);
        }
        if (name_is(m, mn, "upper")) return str_case(c, at, obj, CASE_UPPER, out);
        if (name_is(m, mn, "lower")) return str_case(c, at, obj, CASE_LOWER, out);
        if (name_is(m, mn, "title")) return str_case(c, at, obj, CASE_TITLE_PY, out);
        if (name_is(m, mn, "capitalize")) return str_case(c, at, obj, CASE_CAPITALIZE, out);
        if (name_is(m, mn, "startswith") || name_is(m, mn, "endswith")) {
            if (!arg_get(a, 0, NULL, &x))
                return fail(c, at, HEARTH_ERR_FORMAT, "%.*s needs an argument", (int)mn, m);
            bool r;
            if (!str_affix(c, at, obj, x, m[0] == 'e', &r)) return false;
            *out = jv_bool(r);
            return true;
        }
        if (name_is(m, mn, "split")) {
            bool has = arg_get(a, 0, "sep", &x);
            int64_t maxsplit = -1;
            if (arg_get(a, 1, "maxsplit", &y)) {
                if (!is_intlike(y)) return fail(c, at, HEARTH_ERR_FORMAT, "maxsplit must be an integer");
                maxsplit = num_i(y);
            }
            return str_split(c, at, obj, has ? &x : NULL, maxsplit, out);
        }
        if (name_is(m, mn, "splitlines")) {
            jv_list *l;
            if (!str_splitlines(c, at, obj, &l)) return false;
            *out = list_val(l);
            return true;
        }
        if (name_is(m, mn, "replace")) {
            if (!arg_get(a, 0, NULL, &x) || !arg_get(a, 1, NULL, &y) || x.type != JV_STR || y.type != JV_STR)
                return fail(c, at, HEARTH_ERR_FORMAT, "replace needs two string arguments");
            jv cnt;
            int64_t count = -1;
            if (arg_get(a, 2, "count", &cnt)) {
                if (!is_intlike(cnt))
                    return fail(c, at, HEARTH_ERR_FORMAT, "replace count must be an integer");
                count = num_i(cnt);
            }
            return str_replace(c, at, obj, x, y, count, out);
        }
        if (name_is(m, mn, "find") || name_is(m, mn, "count")) {
            if (!arg_get(a, 0, NULL, &x) || !want_str(c, at, x, "find/count")) return false;
            if (!charge(c, at, obj.u.s.n)) return false;
            const char *p = obj.u.s.p, *end = p + obj.u.s.n;
            if (m[0] == 'f') {
                const char *hit = x.u.s.n ? memmem(p, obj.u.s.n, x.u.s.p, x.u.s.n) : p;
                *out = jv_int(hit ? (int64_t)cp_count(p, (size_t)(hit - p)) : -1);
                return true;
            }
            if (!x.u.s.n) {
                *out = jv_int((int64_t)cp_count(p, obj.u.s.n) + 1);
                return true;
            }
            int64_t k = 0;
            for (const char *hit; p < end && (hit = memmem(p, (size_t)(end - p), x.u.s.p, x.u.s.n));
                 p = hit + x.u.s.n)
                k++;
            *out = jv_int(k);
            return true;
        }
        if (name_is(m, mn, "join")) {
            if (!arg_get(a, 0, NULL, &x)) return fail(c, at, HEARTH_ERR_FORMAT, "join needs an iterable");
            const jv_list *items;
            if (!iterate(c, at, x, &items)) return false;
            sbuf b = {0};
            for (size_t i = 0; i < items->n; i++) {
                if (items->items[i].type != JV_STR)
                    return fail(c, at, HEARTH_ERR_FORMAT,
                                "sequence item %zu: expected str instance, %s found", i,
                                type_name(items->items[i]));
                if ((i && !sb_put(c, &b, obj.u.s.p, obj.u.s.n)) ||
                    !sb_put(c, &b, items->items[i].u.s.p, items->items[i].u.s.n))
                    return oom(c, at);
                if (!charge(c, at, items->items[i].u.s.n)) return false;
            }
            *out = sb_val(&b);
            return true;
        }
        if (name_is(m, mn, "isdigit") || name_is(m, mn, "isspace") || name_is(m, mn, "isalpha") ||
            name_is(m, mn, "isalnum")) {
            bool r = obj.u.s.n > 0;
            for (size_t i = 0; i < obj.u.s.n && r; i++) {
                unsigned char ch = (unsigned char)obj.u.s.p[i];
                r = m[2] == 'd'   ? isdigit(ch)
                    : m[2] == 's' ? is_space_byte(ch)
                    : m[4] == 'a' ? isalpha(ch)
                                  : isalnum(ch);
            }
            *out = jv_bool(r);
            return true;
        }
    } else if (obj.type == JV_DICT && !obj.u.dict->ns) {
        const jv_dict *d = obj.u.dict;
        if (name_is(m, mn, "items")) {
            jargs none = {0};
            return apply_filter(c, at, FL_ITEMS, obj, &none, out);
        }
        if (name_is(m, mn, "keys") || name_is(m, mn, "values")) {
            jv_list *l = list_alloc(c, d->n);
            if (!l) return oom(c, at);
            for (size_t i = 0; i < d->n; i++)
                l->items[l->n++] = m[0] == 'k' ? d->keys[i] : d->vals[i];
            *out = list_val(l);
            return charge(c, at, d->n);
        }
        if (name_is(m, mn, "get")) {
            if (!arg_get(a, 0, NULL, &x)) return fail(c, at, HEARTH_ERR_FORMAT, "get needs a key");
            long i = dict_find(c, d, x);
            if (i >= 0)
                *out = d->vals[i];
            else if (!arg_get(a, 1, "default", out))
                *out = jv_none();
            return charge(c, at, 0);
        }
    } else if (obj.type == JV_LOOP && name_is(m, mn, "cycle")) {
        if (!a->npos) return fail(c, at, HEARTH_ERR_FORMAT, "no items for cycling given");
        const jloop *l = obj.u.ptr;
        *out = a->pos[(size_t)l->index0 % a->npos];
        return true;
    }
    if (obj.type == JV_DICT) { /* a callable stored under that key (a macro in a namespace) */
        long i = dict_find(c, obj.u.dict, strview(m, mn));
        if (i >= 0) return call_value(c, at, obj.u.dict->vals[i], a, out);
    }
    return fail(c, at, HEARTH_ERR_UNSUPPORTED, "'%s' object has no supported method '%.*s'", type_name(obj),
                (int)(mn > 40 ? 40 : mn), m);
}

/* ---------------------------------------------------------------- expressions */

static bool eval_call(jinja_ctx *c, const node *n, jv *out) {
    jv buf[8];
    jargs a;
    if (n->a->kind == N_GETATTR) {
        jv obj;
        if (!eval(c, n->a->a, &obj)) return false;
        if (obj.type == JV_UNDEF) return undefined_error(c, n->a->a, obj);
        if (!eval_args(c, n, &a, buf, 8, 0)) return false;
        /* a dict entry holding a callable wins over methods of the same name */
        if (obj.type == JV_DICT) {
            long i = dict_find(c, obj.u.dict, strview(n->a->name, n->a->nlen));
            if (i >= 0 && (obj.u.dict->vals[i].type == JV_MACRO || obj.u.dict->vals[i].type == JV_FUNC))
                return call_value(c, n, obj.u.dict->vals[i], &a, out);
        }
        return call_method(c, n, obj, n->a->name, n->a->nlen, &a, out);
    }
    jv fnv;
    if (!eval(c, n->a, &fnv)) return false;
    if (!eval_args(c, n, &a, buf, 8, 0)) return false;
    return call_value(c, n, fnv, &a, out);
}

static bool eval_inner(jinja_ctx *c, const node *n, jv *out) {
    switch (n->kind) {
    case N_CONST: *out = n->val; return true;
    case N_NAME: *out = lookup(c, n->name, n->nlen); return true;
    case N_SLOT: *out = c->slot; return true;
    case N_LIST:
    case N_TUPLE: {
        jv_list *l = list_alloc(c, (size_t)n->n_items);
        if (!l) return oom(c, n);
        l->tuple = n->kind == N_TUPLE;
        for (int i = 0; i < n->n_items; i++)
            if (!eval(c, n->items[i], &l->items[l->n++])) return false;
        *out = list_val(l);
        return true;
    }
    case N_DICT: {
        jv_dict *d = dict_alloc(c);
        if (!d) return oom(c, n);
        for (int i = 0; i < n->n_items; i++) {
            jv k, v;
            if (!eval(c, n->items[i], &k) || !eval(c, n->items2[i], &v)) return false;
            if (k.type == JV_LIST && !k.u.list->tuple)
                return fail(c, n->items[i], HEARTH_ERR_FORMAT, "unhashable type: 'list'");
            if (k.type == JV_DICT) return fail(c, n->items[i], HEARTH_ERR_FORMAT, "unhashable type: 'dict'");
            if (!dict_put(c, d, k, v)) return oom(c, n);
            if (!charge(c, n, d->n)) return false;
        }
        *out = dict_val(d);
        return true;
    }
    case N_GETATTR: {
        jv obj;
        if (!eval(c, n->a, &obj)) return false;
        if (obj.type == JV_UNDEF) return undefined_error(c, n->a, obj); /* point at the undefined name */
        return get_attr(c, n, obj, n->name, n->nlen, out);
    }
    case N_GETITEM: {
        jv obj, key;
        if (!eval(c, n->a, &obj) || !eval(c, n->b, &key)) return false;
        if (obj.type == JV_UNDEF) return undefined_error(c, n->a, obj);
        return get_item(c, n, obj, key, out);
    }
    case N_SLICE: {
        jv obj;
        if (!eval(c, n->a, &obj)) return false;
        return eval_slice(c, n, obj, out);
    }
    case N_CALL: return eval_call(c, n, out);
    case N_FILTER: {
        jv v, buf[8];
        jargs a;
        if (!eval(c, n->a, &v) || !eval_args(c, n, &a, buf, 8, 0)) return false;
        return apply_filter(c, n, n->op, v, &a, out);
    }
    case N_TEST: {
        jv v, buf[8];
        jargs a;
        bool r;
        if (!eval(c, n->a, &v) || !eval_args(c, n, &a, buf, 8, 0)) return false;
        if (!apply_test(c, n, n->op, v, &a, &r)) return false;
        *out = jv_bool(r);
        return true;
    }
    case N_UNARY: {
        jv v;
        if (!eval(c, n->a, &v)) return false;
        if (n->op == OP_NOT) {
            *out = jv_bool(!truthy(v));
            return true;
        }
        if (v.type == JV_UNDEF) return undefined_error(c, n, v);
        if (v.type == JV_FLOAT)
            *out = jv_float(n->op == OP_NEG ? -v.u.f : v.u.f);
        else if (is_intlike(v)) {
            if (n->op == OP_NEG && num_i(v) == INT64_MIN)
                return fail(c, n, HEARTH_ERR_UNSUPPORTED, "integer overflow");
            *out = jv_int(n->op == OP_NEG ? -num_i(v) : num_i(v));
        } else
            return fail(c, n, HEARTH_ERR_FORMAT, "bad operand type for unary %s: '%s'", op_text(n->op),
                        type_name(v));
        return true;
    }
    case N_BINOP: {
        jv l, r;
        if (!eval(c, n->a, &l)) return false;
        if (n->op == OP_AND) {
            if (!truthy(l)) {
                *out = l;
                return true;
            }
            return eval(c, n->b, out);
        }
        if (n->op == OP_OR) {
            if (truthy(l)) {
                *out = l;
                return true;
            }
            return eval(c, n->b, out);
        }
        if (!eval(c, n->b, &r)) return false;
        if (n->op == OP_TILDE) {
            sbuf b = {0};
            if (!write_str(c, n, &b, l, 0) || !write_str(c, n, &b, r, 0))
                return c->failed ? false : oom(c, n);
            if (!charge(c, n, b.n)) return false;
            *out = sb_val(&b);
            return true;
        }
        return arith(c, n, n->op, l, r, out);
    }
    case N_COMPARE: {
        jv l, r;
        if (!eval(c, n->a, &l)) return false;
        bool res = true;
        for (int i = 0; i < n->n_items && res; i++) {
            if (!eval(c, n->items[i], &r)) return false;
            if (!compare_op(c, n, n->ops[i], l, r, &res)) return false;
            l = r;
        }
        *out = jv_bool(res);
        return true;
    }
    case N_CONDEXPR: {
        jv cond;
        if (!eval(c, n->a, &cond)) return false;
        if (truthy(cond)) return eval(c, n->b, out);
        if (n->c) return eval(c, n->c, out);
        *out = jv_undef();
        return true;
    }
    default: break;
    }
    return fail(c, n, HEARTH_ERR_FORMAT, "internal error: statement used as expression");
}

static bool eval(jinja_ctx *c, const node *n, jv *out) {
    if (c->failed) return false;
    if (c->depth >= c->lim.max_depth)
        return fail(c, n, HEARTH_ERR_FORMAT, "template evaluation nested deeper than %d levels",
                    c->lim.max_depth);
    if (!charge(c, n, 0)) return false;
    c->depth++;
    bool ok = eval_inner(c, n, out);
    c->depth--;
    return ok;
}

/* ---------------------------------------------------------------- statements */

static bool emit(jinja_ctx *c, const node *at, const char *p, size_t n) {
    if (!n) return true;
    if (!charge(c, at, n)) return false;
    if (c->capture) {
        if (n > c->lim.max_output - c->capture->n || c->capture->n > c->lim.max_output)
            return fail(c, at, HEARTH_ERR_CONTEXT, "rendered text exceeds %zu bytes", c->lim.max_output);
        return sb_put(c, c->capture, p, n) ? true : oom(c, at);
    }
    if (n > c->lim.max_output - c->out_n)
        return fail(c, at, HEARTH_ERR_CONTEXT, "rendered text exceeds %zu bytes", c->lim.max_output);
    if (c->out_n + n + 1 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < c->out_n + n + 1)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) return fail(c, at, HEARTH_ERR_NOMEM, "out of memory");
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_n, p, n);
    c->out_n += n;
    return true;
}

static bool assign_targets(jinja_ctx *c, const node *at, const node *n, jv v) {
    if (n->op == SET_NAME) return frame_set(c, c->fr, n->names[0], n->nlens[0], v) ? true : oom(c, at);
    if (n->op == SET_ATTR) {
        jv ns = lookup(c, n->name, n->nlen);
        if (ns.type != JV_DICT || !ns.u.dict->ns)
            return fail(c, at, HEARTH_ERR_FORMAT, "cannot assign attribute on non-namespace object");
        return dict_put(c, ns.u.dict, strview(n->names[0], n->nlens[0]), v) ? true : oom(c, at);
    }
    /* tuple unpacking */
    const jv_list *items;
    if (v.type == JV_LIST)
        items = v.u.list;
    else if (v.type == JV_STR || (v.type == JV_DICT && !v.u.dict->ns)) {
        if (!iterate(c, at, v, &items)) return false;
    } else
        return fail(c, at, HEARTH_ERR_FORMAT, "cannot unpack non-iterable %s object", type_name(v));
    if (items->n != (size_t)n->n_names)
        return fail(c, at, HEARTH_ERR_FORMAT, "%s values to unpack (expected %d, got %zu)",
                    items->n > (size_t)n->n_names ? "too many" : "not enough", n->n_names, items->n);
    for (int i = 0; i < n->n_names; i++)
        if (!frame_set(c, c->fr, n->names[i], n->nlens[i], items->items[i])) return oom(c, at);
    return true;
}

static exec_status exec_for(jinja_ctx *c, const node *n) {
    jv it;
    if (!eval(c, n->a, &it)) return EX_ERR;
    const jv_list *items;
    if (!iterate(c, n->a, it, &items)) return EX_ERR;
    frame f = {.parent = c->fr};
    frame *saved = c->fr;
    if (n->b) { /* {% for x in xs if cond %}: filter first, so loop.* count only kept items */
        jv_list *kept = list_alloc(c, 0);
        if (!kept) return oom(c, n), EX_ERR;
        c->fr = &f;
        for (size_t i = 0; i < items->n; i++) {
            f.n = 0;
            jv cond;
            if (!charge(c, n, 0)) {
                c->fr = saved;
                return EX_ERR;
            }
            if (!assign_targets(c, n, n, items->items[i]) || !eval(c, n->b, &cond)) {
                c->fr = saved;
                return EX_ERR;
            }
            if (truthy(cond) && !list_push(c, kept, items->items[i])) {
                c->fr = saved;
                return oom(c, n), EX_ERR;
            }
        }
        c->fr = saved;
        items = kept;
    }
    jloop *lp = calloc_c(c, sizeof *lp);
    if (!lp) return oom(c, n), EX_ERR;
    lp->items = items;
    jv loopv = {.type = JV_LOOP, .u.ptr = lp};
    exec_status st = EX_OK;
    c->fr = &f;
    for (size_t i = 0; i < items->n; i++) {
        if (!charge(c, n, 0)) {
            st = EX_ERR;
            break;
        }
        f.n = 0; /* a fresh scope per iteration, as in Jinja2 */
        lp->index0 = (int64_t)i;
        if (!assign_targets(c, n, n, items->items[i]) || !frame_set(c, &f, "loop", 4, loopv)) {
            if (!c->failed) oom(c, n);
            st = EX_ERR;
            break;
        }
        st = exec_body(c, n->items, n->n_items);
        if (st == EX_ERR || st == EX_BREAK) break;
        st = EX_OK;
    }
    c->fr = saved;
    if (st == EX_ERR) return EX_ERR;
    if (items->n == 0 && n->n_items2) return exec_body(c, n->items2, n->n_items2);
    return EX_OK;
}

/* Run a body with its output captured into a string. */
static bool capture_body(jinja_ctx *c, node *const *body, int nb, jv *out) {
    sbuf cap = {0}, *saved = c->capture;
    c->capture = &cap;
    exec_status st = exec_body(c, body, nb);
    c->capture = saved;
    if (st == EX_ERR) return false;
    *out = sb_val(&cap);
    return true;
}

static exec_status exec_stmt(jinja_ctx *c, const node *n) {
    switch (n->kind) {
    case S_TEXT: return emit(c, n, n->name, n->nlen) ? EX_OK : EX_ERR;
    case S_OUTPUT: {
        jv v;
        if (!eval(c, n->a, &v)) return EX_ERR;
        if (v.type == JV_STR) return emit(c, n, v.u.s.p, v.u.s.n) ? EX_OK : EX_ERR;
        sbuf b = {0};
        if (!write_str(c, n, &b, v, 0)) return c->failed ? EX_ERR : (oom(c, n), EX_ERR);
        return emit(c, n, b.p, b.n) ? EX_OK : EX_ERR;
    }
    case S_IF: {
        jv cond;
        if (!eval(c, n->a, &cond)) return EX_ERR;
        if (truthy(cond)) return exec_body(c, n->items, n->n_items);
        return exec_body(c, n->items2, n->n_items2);
    }
    case S_FOR: return exec_for(c, n);
    case S_SET: {
        jv v;
        if (!eval(c, n->a, &v)) return EX_ERR;
        return assign_targets(c, n, n, v) ? EX_OK : EX_ERR;
    }
    case S_SET_BLOCK:
    case S_FILTER_BLOCK: {
        jv v;
        if (!capture_body(c, n->items, n->n_items, &v)) return EX_ERR;
        jv saved = c->slot;
        c->slot = v;
        bool ok = eval(c, n->b, &v);
        c->slot = saved;
        if (!ok) return EX_ERR;
        if (n->kind == S_FILTER_BLOCK) {
            jv s;
            if (!to_str(c, n, v, &s)) return EX_ERR;
            return emit(c, n, s.u.s.p, s.u.s.n) ? EX_OK : EX_ERR;
        }
        return assign_targets(c, n, n, v) ? EX_OK : EX_ERR;
    }
    case S_MACRO: {
        jv m = {.type = JV_MACRO, .u.ptr = n};
        return frame_set(c, c->fr, n->name, n->nlen, m) ? EX_OK : (oom(c, n), EX_ERR);
    }
    case S_BREAK: return EX_BREAK;
    case S_CONTINUE: return EX_CONTINUE;
    case S_BODY: return exec_body(c, n->items, n->n_items);
    default: break;
    }
    fail(c, n, HEARTH_ERR_FORMAT, "internal error: expression used as statement");
    return EX_ERR;
}

static exec_status exec_body(jinja_ctx *c, node *const *body, int n) {
    if (c->failed) return EX_ERR;
    if (c->depth >= c->lim.max_depth) {
        fail(c, n ? body[0] : NULL, HEARTH_ERR_FORMAT, "template evaluation nested deeper than %d levels",
             c->lim.max_depth);
        return EX_ERR;
    }
    c->depth++;
    exec_status st = EX_OK;
    for (int i = 0; i < n; i++) {
        if (!charge(c, body[i], 0)) {
            st = EX_ERR;
            break;
        }
        st = exec_stmt(c, body[i]);
        if (st != EX_OK) break;
    }
    c->depth--;
    return st;
}

/* ================================================================ public API */

jinja_template *jinja_parse(const char *src, size_t len, const char *name, hearth_error *err) {
    if (!name) name = "template";
    if (!src) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s: no template source", name);
        return NULL;
    }
    if (len > TEMPLATE_MAX_SOURCE) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: template is %zu bytes; the limit is %u", name, len,
                         TEMPLATE_MAX_SOURCE);
        return NULL;
    }
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    t->ar.limit = TEMPLATE_MAX_MEMORY;
    snprintf(t->name, sizeof t->name, "%s", name);
    /* newlines: \r\n and \r become \n; one trailing newline is dropped
     * (Jinja2's keep_trailing_newline=False) */
    char *s = arena_alloc(&t->ar, len + 1);
    if (!s) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        jinja_template_free(t);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = '\0';

    lexer lx = {.src = s, .len = n, .lc_line = 1, .lc_col = 1, .ar = &t->ar, .name = t->name, .err = err};
    if (!lx_run(&lx)) {
        free(lx.toks);
        jinja_template_free(t);
        return NULL;
    }
    parser p = {.toks = lx.toks, .ar = &t->ar, .name = t->name, .err = err};
    pvec body = {0};
    int which = 0;
    bool ok = parse_body(&p, &body, NULL, 0, NULL, &which);
    free(lx.toks);
    if (!ok) {
        jinja_template_free(t);
        return NULL;
    }
    t->body = (node **)body.v;
    t->n_body = body.n;
    return t;
}

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}

jinja_ctx *jinja_ctx_new(const jinja_limits *lim) {
    jinja_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->lim.max_output = lim && lim->max_output ? lim->max_output : DEFAULT_MAX_OUTPUT;
    c->lim.max_memory = lim && lim->max_memory ? lim->max_memory : DEFAULT_MAX_MEMORY;
    c->lim.max_steps = lim && lim->max_steps ? lim->max_steps : DEFAULT_MAX_STEPS;
    c->lim.max_depth = lim && lim->max_depth > 0 ? lim->max_depth : DEFAULT_MAX_DEPTH;
    c->ar.limit = c->lim.max_memory;
    return c;
}

void jinja_ctx_free(jinja_ctx *c) {
    if (!c) return;
    arena_free(&c->ar);
    free(c->out);
    free(c);
}

jv jinja_str(jinja_ctx *c, const char *s, size_t n) {
    bool ok = true;
    jv v = mkstr(c, s ? s : "", s ? n : 0, &ok);
    return ok ? v : jv_undef();
}

jv jinja_cstr(jinja_ctx *c, const char *s) {
    return s ? jinja_str(c, s, strlen(s)) : jv_none();
}

jv jinja_list_new(jinja_ctx *c) {
    jv_list *l = list_alloc(c, 0);
    return l ? list_val(l) : jv_undef();
}

bool jinja_list_push(jinja_ctx *c, jv list, jv item) {
    return list.type == JV_LIST && list_push(c, list.u.list, item);
}

jv jinja_dict_new(jinja_ctx *c) {
    jv_dict *d = dict_alloc(c);
    return d ? dict_val(d) : jv_undef();
}

bool jinja_dict_set(jinja_ctx *c, jv dict, const char *key, jv val) {
    if (dict.type != JV_DICT || !key) return false;
    jv k = jinja_str(c, key, strlen(key));
    return k.type == JV_STR && dict_put(c, dict.u.dict, k, val);
}

bool jinja_ctx_set(jinja_ctx *c, const char *name, jv val) {
    if (!name) return false;
    jv k = jinja_str(c, name, strlen(name));
    return k.type == JV_STR && frame_set(c, &c->globals, k.u.s.p, k.u.s.n, val);
}

bool jinja_ctx_raised(const jinja_ctx *c) {
    return c && c->raised;
}

char *jinja_render(const jinja_template *t, jinja_ctx *c, size_t *out_len, hearth_error *err) {
    if (!t || !c) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "jinja_render: no template or context");
        return NULL;
    }
    if (c->used) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s: a render context can be used once", t->name);
        return NULL;
    }
    c->used = true;
    c->t = t;
    c->err = err;
    frame root = {.parent = &c->globals};
    c->root = &root;
    c->fr = &root;
    exec_status st = exec_body(c, t->body, t->n_body);
    c->root = c->fr = NULL;
    if (st == EX_ERR || c->failed) {
        if (!c->failed) hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: render failed", t->name);
        return NULL;
    }
    char *out = malloc(c->out_n + 1);
    if (!out) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", t->name);
        return NULL;
    }
    if (c->out_n) memcpy(out, c->out, c->out_n);
    out[c->out_n] = '\0';
    if (out_len) *out_len = c->out_n;
    return out;
}
