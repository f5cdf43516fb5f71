/*
 * jinja_impl.h - what the parts of the Jinja interpreter share: the arena,
 * tokens, AST nodes, the render context, call arguments and the functions
 * one part calls in another. Internal: only the .c files of
 * runtime/template/jinja/ include it; everyone else uses jinja.h.
 *
 * The parts, in the order a template flows through them:
 *   lexer.c     source -> tokens
 *   parser.c    tokens -> AST (filter and test names resolved here)
 *   value.c     the arena, the context's error/budget helpers, value
 *               constructors, dicts, the string builder, UTF-8, str()/repr(),
 *               JSON, truth, equality and ordering
 *   eval.c      expressions and statements: variables, attributes, items,
 *               slices, iteration, call arguments, output
 *   operators.c arithmetic, %-formatting, `in`, comparisons
 *   calls.c     global functions (range, namespace, ...) and macro calls
 *   methods.c   str/dict/loop methods and the string helpers filters share
 *   filters.c   every filter, in one table
 *   tests.c     every test (`is defined`, ...)
 *   jinja.c     the public API of jinja.h
 *
 * Invariants (every part keeps them):
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
#ifndef HEARTH_JINJA_IMPL_H
#define HEARTH_JINJA_IMPL_H

#include "jinja.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

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

/* ================================================================ arena (value.c) */

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

/* NULL when out of memory or over a->limit (then a->over_budget is set). */
void *jarena_alloc(arena *a, size_t n);
void jarena_free(arena *a);

/* ================================================================ tokens (lexer.c) */

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

typedef struct token {
    tk_type type;
    int op;
    const char *p; /* text, name or decoded string (not NUL-terminated) */
    size_t n;
    int64_t i;
    double f;
    int line, col;
} token;

/* The text of an operator ("+", "not in"), for messages. */
const char *jlex_op_text(int op);
/* Tokenize the normalized source `src` (len bytes; strings decoded into
 * `ar`). On success *out is a malloc'd array ending with TK_EOF that the
 * caller frees; on failure false with err set ("<name>: line L, column C:"). */
bool jlex_tokens(const char *src, size_t len, arena *ar, const char *name, hearth_error *err, token **out);

/* ================================================================ AST (parser.c) */

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

/* Parse the whole token stream into the top-level statement list (nodes in
 * `ar`); false with err set on a syntax error or an unsupported construct. */
bool jparse_template(token *toks, arena *ar, const char *name, hearth_error *err, node ***body, int *n_body);

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

/* A string builder whose bytes live in the ctx arena, so a built string is a
 * value as it is (jsb_val) and counts against max_memory like every other
 * value. core/strbuf.h mallocs and is freed by its owner, which does not fit
 * values that are never freed one by one; hence this builder. */
typedef struct jsbuf {
    char *p;
    size_t n, cap;
} jsbuf;

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
    jsbuf *capture; /* when set, output goes here (macro calls, {% set %} blocks) */
    uint64_t steps;
    int depth, macro_depth;
    hearth_error *err;
    bool failed, raised, used;
    jv slot; /* input of {% filter %} / {% set x | f %} chains */
};

typedef enum { EX_OK, EX_ERR, EX_BREAK, EX_CONTINUE } exec_status;

/* Call arguments, evaluated: positional first, then keyword. */
typedef struct jargs {
    jv *pos;
    size_t npos;
    const char *const *kwn;
    const size_t *kwl;
    jv *kwv;
    size_t nkw;
} jargs;

/* ================================================================ values (value.c) */

/* Set the error (with the node's line and column when `at` is not NULL) and
 * return false; the first error wins. */
bool jctx_fail(jinja_ctx *c, const node *at, hearth_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Allocation failure: over the memory budget or out of memory for real. */
bool jctx_oom(jinja_ctx *c, const node *at);
/* Charge work: one step plus one per 64 bytes touched. */
bool jctx_charge(jinja_ctx *c, const node *at, size_t bytes);
/* Zeroed arena memory, NULL when the budget is spent. */
void *jctx_calloc(jinja_ctx *c, size_t n);

/* A copy of s in the arena; *ok=false on allocation failure. */
jv jv_str_copy(jinja_ctx *c, const char *s, size_t n, bool *ok);
jv_list *jv_list_alloc(jinja_ctx *c, size_t cap);
bool jv_list_push(jinja_ctx *c, jv_list *l, jv item);
jv_dict *jv_dict_alloc(jinja_ctx *c);
/* Index of key in d, or -1. */
long jv_dict_find(jinja_ctx *c, const jv_dict *d, jv key);
/* Insert or replace; false on allocation failure. */
bool jv_dict_put(jinja_ctx *c, jv_dict *d, jv key, jv val);

/* Room for `extra` more bytes; false (budget or memory) leaves b as it was. */
bool jsb_grow(jinja_ctx *c, jsbuf *b, size_t extra);
bool jsb_put(jinja_ctx *c, jsbuf *b, const char *s, size_t n);
bool jsb_puts(jinja_ctx *c, jsbuf *b, const char *s);
jv jsb_val(jsbuf *b);

/* UTF-8 by code point: boundaries are bytes that are not continuation bytes. */
bool jutf8_boundary(const char *p, size_t i);
size_t jutf8_count(const char *p, size_t n);
/* Byte offset of code point `idx` (idx <= count). */
size_t jutf8_offset(const char *p, size_t n, size_t idx);
size_t jutf8_next(const char *p, size_t n, size_t i);
/* Decode one code point at p[i] (invalid bytes decode as themselves). */
uint32_t jutf8_decode(const char *p, size_t n, size_t i, size_t *len);
/* Encode cp (U+FFFD for surrogates and beyond U+10FFFF); returns 1..4. */
size_t jutf8_put(char *out, uint32_t cp);

/* Python's type name of v ("str", "NoneType", ...). */
const char *jv_type_name(jv v);
/* repr(float) as Python prints it; `json` spells inf/nan as JSON does. */
void jv_fmt_float(double x, char *out, size_t cap, bool json);
/* str(v) / repr(v) appended to b; false on error (set) or allocation failure
 * (not set: the caller reports it with jctx_oom unless c->failed). */
bool jv_write_str(jinja_ctx *c, const node *at, jsbuf *b, jv v, int depth);
bool jv_write_repr(jinja_ctx *c, const node *at, jsbuf *b, jv v, int depth);
/* str(v) as a value (strings are returned as they are). */
bool jv_to_str(jinja_ctx *c, const node *at, jv v, jv *out);

/* HF's tojson options (json.dumps arguments). */
typedef struct json_opts {
    const char *indent; /* NULL: compact one-line form */
    size_t indent_n;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
    bool sort_keys, ensure_ascii;
} json_opts;

bool jv_write_json(jinja_ctx *c, const node *at, jsbuf *b, jv v, const json_opts *o, int level);

/* a == b as Python compares; false only when the walk itself failed. */
bool jv_equal(jinja_ctx *c, jv a, jv b, int depth, bool *eq);
/* <0, 0, >0 like Python's ordering; sets *ok=false (and the error) for
 * unorderable types. fold_case compares strings case-insensitively. */
int jv_compare(jinja_ctx *c, const node *at, jv a, jv b, bool fold_case, int depth, bool *ok);

/* A string view that shares memory (substrings, constants). */
static inline jv jv_strview(const char *s, size_t n) {
    jv v = {.type = JV_STR};
    v.u.s.p = s;
    v.u.s.n = n;
    return v;
}
static inline jv jv_list_val(jv_list *l) {
    jv v = {.type = JV_LIST, .u.list = l};
    return v;
}
static inline jv jv_dict_val(jv_dict *d) {
    jv v = {.type = JV_DICT, .u.dict = d};
    return v;
}
/* An undefined value that remembers the missing name (for messages). */
static inline jv jv_missing(const char *name, size_t n) {
    jv u = jv_undef();
    u.u.s.p = name;
    u.u.s.n = n;
    return u;
}
static inline bool jv_str_eq(jv a, const char *s, size_t n) {
    return a.type == JV_STR && a.u.s.n == n && memcmp(a.u.s.p, s, n) == 0;
}
static inline bool jname_is(const char *p, size_t n, const char *s) {
    return strlen(s) == n && memcmp(p, s, n) == 0;
}
static inline bool jv_truthy(jv v) {
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
static inline bool jv_is_number(jv v) {
    return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL;
}
static inline double jv_num_f(jv v) {
    return v.type == JV_FLOAT  ? v.u.f
           : v.type == JV_INT  ? (double)v.u.i
           : v.type == JV_BOOL ? (double)v.u.b
                               : 0;
}
static inline bool jv_is_intlike(jv v) {
    return v.type == JV_INT || v.type == JV_BOOL;
}
static inline int64_t jv_num_i(jv v) {
    return v.type == JV_INT ? v.u.i : v.type == JV_BOOL ? (int64_t)v.u.b : 0;
}

/* ================================================================ evaluator (eval.c) */

bool jeval(jinja_ctx *c, const node *n, jv *out);
exec_status jexec_body(jinja_ctx *c, node *const *body, int n);
/* Define name in frame f (replacing an earlier definition there). */
bool jframe_set(jinja_ctx *c, frame *f, const char *name, size_t nlen, jv val);
/* The "'x' is undefined" error for an undefined value. */
bool jeval_undefined(jinja_ctx *c, const node *at, jv v);
/* obj.name and obj[key] as templates see them (missing gives undefined). */
bool jeval_get_attr(jinja_ctx *c, const node *at, jv obj, const char *name, size_t n, jv *out);
bool jeval_get_item(jinja_ctx *c, const node *at, jv obj, jv key, jv *out);
/* The items a for loop / filter walks: lists as they are, dict keys, string
 * code points; undefined iterates as empty. */
bool jeval_iterate(jinja_ctx *c, const node *at, jv v, const jv_list **out);
/* Positional argument i, else keyword kw (NULL: positional only). */
bool jargs_get(const jargs *a, size_t i, const char *kw, jv *out);
bool jargs_bool(const jargs *a, size_t i, const char *kw, bool def);
/* The arguments without the first k positional ones. */
jargs jargs_shift(const jargs *a, size_t k);

/* ================================================================ operators (operators.c) */

/* a <op> b for + - * / // % ** (and + * on strings/lists, % formatting). */
bool jop_arith(jinja_ctx *c, const node *at, int op, jv a, jv b, jv *out);
/* item in seq */
bool jop_contains(jinja_ctx *c, const node *at, jv item, jv seq, bool *res);
/* a <op> b for == != < <= > >= in, not in */
bool jop_compare(jinja_ctx *c, const node *at, int op, jv a, jv b, bool *res);

/* ================================================================ calls (calls.c, methods.c) */

/* Call a function or macro value. */
bool jcall_value(jinja_ctx *c, const node *at, jv fnv, const jargs *a, jv *out);
/* obj.method(args) for the str / dict / loop methods templates use. */
bool jcall_method(jinja_ctx *c, const node *at, jv obj, const char *m, size_t mn, const jargs *a, jv *out);

/* String helpers (methods.c) shared with filters. */
typedef enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_PY, CASE_TITLE_JINJA } case_mode;
/* Python's \s for one byte. */
bool jstr_is_space(unsigned char ch);
/* strip/lstrip/rstrip; chars==NULL strips whitespace. */
jv jstr_strip(jv s, const jv *chars, bool left, bool right);
bool jstr_case(jinja_ctx *c, const node *at, jv s, case_mode m, jv *out);
bool jstr_replace(jinja_ctx *c, const node *at, jv s, jv old, jv new, int64_t count, jv *out);
/* str.splitlines() (ASCII line boundaries) */
bool jstr_splitlines(jinja_ctx *c, const node *at, jv s, jv_list **out);
/* The "<what> expects a string" error unless v is a string. */
bool jstr_want(jinja_ctx *c, const node *at, jv v, const char *what);

/* ================================================================ filters and tests */

/* A filter's id for its name (node->op of N_FILTER), 0 when there is none. */
int jfilter_lookup(const char *p, size_t n);
bool jfilter_apply(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, jv *out);
/* The items filter (dict.items() shares it). */
bool jfilter_items(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out);

/* A test's id for its name (node->op of N_TEST), 0 when there is none. */
int jtest_lookup(const char *p, size_t n);
bool jtest_apply(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, bool *res);
/* A test named by a string argument (select('equalto', 2)). */
bool jtest_by_name(jinja_ctx *c, const node *at, jv name, int *id);

#endif
