/*
 * lexer.c - template source -> tokens: text between tags (with "{%-"/"-%}",
 * trim_blocks and lstrip_blocks applied), {% raw %} bodies, comments, and the
 * names, literals and operators inside {{ }} and {% %}.
 *
 * Owns: the token array (malloc'd, handed to the caller); decoded string
 * literals live in the template arena. Invariants: bracket nesting inside a
 * tag is bounded by PARSE_MAX_DEPTH; every token carries its line and column.
 */
#include "jinja_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/grow.h"

const char *jlex_op_text(int op) {
    static const char *const names[] = {
        "?", "+",  "-", "/",  "//", "*", "%", "**", "~", "[", "]",   "(",  ")",   "{",  "}",      "==", "!=",
        ">", ">=", "<", "<=", "=",  ".", ":", "|",  ",", ";", "and", "or", "not", "in", "not in", "-",  "+",
    };
    return op > 0 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "?";
}

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
    if (!hearth_grow((void **)&lx->toks, &lx->cap, lx->n + 1, sizeof *lx->toks)) {
        lx_fail(lx, pos, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
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

size_t jutf8_put(char *out, uint32_t cp) {
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
    char *out = jarena_alloc(lx->ar, bend - body + 1);
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
            n += jutf8_put(out + n, cp);
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
                    n += jutf8_put(out + n, cp);
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
            if (depth == 0) return lx_fail(lx, p, HEARTH_ERR_FORMAT, "unexpected '%s'", jlex_op_text(op));
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

bool jlex_tokens(const char *src, size_t len, arena *ar, const char *name, hearth_error *err, token **out) {
    lexer lx = {.src = src, .len = len, .lc_line = 1, .lc_col = 1, .ar = ar, .name = name, .err = err};
    if (!lx_run(&lx)) {
        free(lx.toks);
        return false;
    }
    *out = lx.toks;
    return true;
}
