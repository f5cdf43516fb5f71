/*
 * jinja.h - a small, bounded interpreter for the subset of Jinja2 that model
 * chat templates use (tokenizer.chat_template in GGUF files, chat_template in
 * Hugging Face tokenizer_config.json).
 *
 * Owner: chat templates (runtime/template/chat_template.c is the only intended caller;
 * docs/CHAT_TEMPLATES.md lists the supported subset).
 *
 * Semantics follow Jinja2 as Hugging Face transformers configures it for chat
 * templates: trim_blocks and lstrip_blocks on, keep_trailing_newline off, the
 * loopcontrols extension ({% break %}, {% continue %}), the default (lenient)
 * Undefined, Python-like values (None/True/False, repr of lists and dicts,
 * floor division, ...), and HF's tojson (json.dumps with ensure_ascii=False).
 * Known differences: strings are UTF-8 bytes (length/slicing count code
 * points, but upper/lower/title/trim only know ASCII), integers are 64-bit
 * (overflow is an error rather than a big integer).
 *
 * Ownership: a jinja_template owns its AST (one arena) and is immutable after
 * jinja_parse, so several threads may render the same template at once, each
 * with its own jinja_ctx. A jinja_ctx owns every value created in it (one
 * arena, freed by jinja_ctx_free); jv values are plain structs that point into
 * that arena and must not outlive it.
 *
 * Invariants: the template source is outside input, so nothing here trusts
 * it. Parsing bounds nesting depth; rendering bounds recursion depth, total
 * work (steps), memory (arena bytes) and output size, and reports each
 * exhaustion as an error. No function prints, exits or aborts; every failure
 * is a hearth_error whose message names line and column in the template.
 */
#ifndef HEARTH_JINJA_H
#define HEARTH_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct jinja_template jinja_template;
typedef struct jinja_ctx jinja_ctx;

/* ---------------------------------------------------------------- values */

typedef enum jv_type {
    JV_UNDEF, /* an undefined variable or missing key/attribute */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,   /* UTF-8 bytes, not NUL-terminated */
    JV_LIST,  /* list, or tuple when list->tuple */
    JV_DICT,  /* insertion-ordered dict, or namespace() when dict->ns */
    JV_FUNC,  /* a global function (range, namespace, raise_exception, ...) */
    JV_MACRO, /* a {% macro %} */
    JV_LOOP,  /* the `loop` object inside a for loop */
} jv_type;

typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;

typedef struct jv {
    jv_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s; /* JV_STR; JV_UNDEF keeps the missing name here */
        jv_list *list;
        jv_dict *dict;
        int fn;          /* JV_FUNC */
        const void *ptr; /* JV_MACRO, JV_LOOP */
    } u;
} jv;

struct jv_list {
    jv *items;
    size_t n, cap;
    bool tuple;
};

struct jv_dict {
    jv *keys, *vals;
    size_t n, cap;
    bool ns; /* a namespace(): attributes may be assigned with {% set ns.x = ... %} */
};

static inline jv jv_undef(void) {
    jv v = {.type = JV_UNDEF};
    return v;
}
static inline jv jv_none(void) {
    jv v = {.type = JV_NONE};
    return v;
}
static inline jv jv_bool(bool b) {
    jv v = {.type = JV_BOOL, .u.b = b};
    return v;
}
static inline jv jv_int(int64_t i) {
    jv v = {.type = JV_INT, .u.i = i};
    return v;
}
static inline jv jv_float(double f) {
    jv v = {.type = JV_FLOAT, .u.f = f};
    return v;
}

/* Values built by the caller live in the ctx's arena. On allocation failure
 * (memory budget) they return an undefined value / false and the next render
 * fails with the budget error. */
jv jinja_str(jinja_ctx *c, const char *s, size_t n); /* copies */
jv jinja_cstr(jinja_ctx *c, const char *s);          /* copies; NULL gives none */
jv jinja_list_new(jinja_ctx *c);
bool jinja_list_push(jinja_ctx *c, jv list, jv item);
jv jinja_dict_new(jinja_ctx *c);
bool jinja_dict_set(jinja_ctx *c, jv dict, const char *key, jv val);

/* ---------------------------------------------------------------- limits */

typedef struct jinja_limits {
    size_t max_output;  /* bytes of rendered text (default 16 MiB) */
    size_t max_memory;  /* bytes of values created while rendering (default 64 MiB) */
    uint64_t max_steps; /* evaluation steps, a proxy for time (default 20 M) */
    int max_depth;      /* nested evaluation/macro depth (default 400) */
} jinja_limits;

/* ---------------------------------------------------------------- API */

/* Compile `src` (len bytes; need not be NUL-terminated). `name` prefixes error
 * messages ("chat template"). Unknown filters and tests are reported here,
 * like Jinja2 does at compile time. Errors: HEARTH_ERR_FORMAT for syntax
 * errors, HEARTH_ERR_UNSUPPORTED for valid Jinja this interpreter lacks
 * ({% include %}, recursive loops, ...); the message reads
 * "<name>: line L, column C: <what>". */
jinja_template *jinja_parse(const char *src, size_t len, const char *name, hearth_error *err);
void jinja_template_free(jinja_template *t);

/* A render context: variables plus the arena for values. `lim` may be NULL
 * (defaults); zero fields also take the defaults. NULL on out of memory. */
jinja_ctx *jinja_ctx_new(const jinja_limits *lim);
void jinja_ctx_free(jinja_ctx *c);
/* Define a global variable (later definitions of the same name win). */
bool jinja_ctx_set(jinja_ctx *c, const char *name, jv val);

/* Render; returns a malloc'd NUL-terminated string (length in *out_len if
 * non-NULL) or NULL with err set. A template's raise_exception("msg") gives
 * HEARTH_ERR_INVALID with the template's message after the location; other
 * runtime errors (type errors, undefined values used as objects, budgets)
 * give HEARTH_ERR_FORMAT, HEARTH_ERR_UNSUPPORTED (an unknown function or
 * method) or HEARTH_ERR_NOMEM. A ctx may be rendered with once. */
char *jinja_render(const jinja_template *t, jinja_ctx *c, size_t *out_len, hearth_error *err);

/* True when the last error of jinja_render came from the template's own
 * raise_exception() (the conversation was rejected, not the template). */
bool jinja_ctx_raised(const jinja_ctx *c);

#endif
