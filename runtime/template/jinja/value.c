/*
 * value.c - the values of the Jinja interpreter and what every other part
 * does with them: the arena they live in, the render context's error and
 * budget helpers, constructors, dicts, the arena string builder, UTF-8 by
 * code point, str()/repr() as Python prints them, JSON (HF's tojson: json.dumps),
 * truth, equality and ordering.
 *
 * Invariants: nothing here frees a value; everything allocated while
 * rendering comes from the ctx arena and counts against max_memory. Recursive
 * walks (repr, JSON, ==, <) stop at VALUE_MAX_DEPTH.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ================================================================ arena */

void *jarena_alloc(arena *a, size_t n) {
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

void jarena_free(arena *a) {
    for (ablock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

bool jctx_fail(jinja_ctx *c, const node *at, hearth_status code, const char *fmt, ...) {
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
bool jctx_oom(jinja_ctx *c, const node *at) {
    if (c->ar.over_budget)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                         "template uses more than %zu bytes of memory while rendering", c->lim.max_memory);
    return jctx_fail(c, at, HEARTH_ERR_NOMEM, "out of memory");
}

/* Charge work: one step plus one per 64 bytes touched. */
bool jctx_charge(jinja_ctx *c, const node *at, size_t bytes) {
    c->steps += 1 + bytes / 64;
    if (c->steps > c->lim.max_steps)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "template takes too long to render (more than %llu steps)",
                         (unsigned long long)c->lim.max_steps);
    return true;
}

void *jctx_calloc(jinja_ctx *c, size_t n) {
    void *p = jarena_alloc(&c->ar, n);
    if (p) memset(p, 0, n);
    return p;
}

/* ---------------------------------------------------------------- constructors */

jv jv_str_copy(jinja_ctx *c, const char *s, size_t n, bool *ok) {
    jv v = {.type = JV_STR};
    char *p = jarena_alloc(&c->ar, n ? n : 1);
    if (!p) {
        *ok = false;
        return jv_undef();
    }
    if (n) memcpy(p, s, n);
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

jv_list *jv_list_alloc(jinja_ctx *c, size_t cap) {
    jv_list *l = jctx_calloc(c, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        l->items = jarena_alloc(&c->ar, cap * sizeof(jv));
        if (!l->items) return NULL;
        l->cap = cap;
    }
    return l;
}

bool jv_list_push(jinja_ctx *c, jv_list *l, jv item) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(jv)) return false;
        jv *items = jarena_alloc(&c->ar, cap * sizeof(jv));
        if (!items) return false;
        if (l->n) memcpy(items, l->items, l->n * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return true;
}

jv_dict *jv_dict_alloc(jinja_ctx *c) {
    return jctx_calloc(c, sizeof(jv_dict));
}

/* Index of a string key, or -1 (non-string keys compare by value elsewhere). */

long jv_dict_find(jinja_ctx *c, const jv_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++) {
        if (key.type == JV_STR) {
            if (jv_str_eq(d->keys[i], key.u.s.p, key.u.s.n)) return (long)i;
        } else {
            bool eq = false;
            if (jv_equal(c, d->keys[i], key, 0, &eq) && eq) return (long)i;
        }
    }
    return -1;
}

bool jv_dict_put(jinja_ctx *c, jv_dict *d, jv key, jv val) {
    long i = jv_dict_find(c, d, key);
    if (i >= 0) {
        d->vals[i] = val;
        return true;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *ks = jarena_alloc(&c->ar, cap * sizeof(jv)), *vs = jarena_alloc(&c->ar, cap * sizeof(jv));
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

bool jsb_grow(jinja_ctx *c, jsbuf *b, size_t extra) {
    if (extra <= b->cap - b->n) return true;
    if (extra > c->lim.max_memory) {
        c->ar.over_budget = true;
        return false;
    }
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap - b->n < extra)
        cap *= 2;
    char *p = jarena_alloc(&c->ar, cap);
    if (!p) return false;
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
    return true;
}

bool jsb_put(jinja_ctx *c, jsbuf *b, const char *s, size_t n) {
    if (!jsb_grow(c, b, n)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

bool jsb_puts(jinja_ctx *c, jsbuf *b, const char *s) {
    return jsb_put(c, b, s, strlen(s));
}

jv jsb_val(jsbuf *b) {
    return jv_strview(b->p ? b->p : "", b->n);
}

/* ---------------------------------------------------------------- UTF-8 */

/* Code point boundaries: every byte that is not a continuation byte, and 0. */
bool jutf8_boundary(const char *p, size_t i) {
    return i == 0 || ((unsigned char)p[i] & 0xC0) != 0x80;
}

size_t jutf8_count(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (jutf8_boundary(p, i)) k++;
    return k;
}

/* Byte offset of code point `idx` (idx <= count). */
size_t jutf8_offset(const char *p, size_t n, size_t idx) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (jutf8_boundary(p, i)) {
            if (k == idx) return i;
            k++;
        }
    return n;
}

size_t jutf8_next(const char *p, size_t n, size_t i) {
    i++;
    while (i < n && !jutf8_boundary(p, i))
        i++;
    return i;
}

/* Decode one code point at p[i] (invalid bytes decode as themselves). */
uint32_t jutf8_decode(const char *p, size_t n, size_t i, size_t *len) {
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

const char *jv_type_name(jv v) {
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
void jv_fmt_float(double x, char *out, size_t cap, bool json) {
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

/* Python repr() of a str: quotes chosen like Python, escapes for controls. */
static bool write_str_repr(jinja_ctx *c, jsbuf *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    if (!jsb_put(c, b, &q, 1)) return false;
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
        if (e ? !jsb_puts(c, b, e) : !jsb_put(c, b, (const char *)&p[i], 1)) return false;
    }
    return jsb_put(c, b, &q, 1);
}

/* str(v) appended to b. */
bool jv_write_str(jinja_ctx *c, const node *at, jsbuf *b, jv v, int depth) {
    char num[64];
    switch (v.type) {
    case JV_UNDEF: return true;
    case JV_NONE: return jsb_puts(c, b, "None");
    case JV_BOOL: return jsb_puts(c, b, v.u.b ? "True" : "False");
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); return jsb_puts(c, b, num);
    case JV_FLOAT: jv_fmt_float(v.u.f, num, sizeof num, false); return jsb_puts(c, b, num);
    case JV_STR: return jsb_put(c, b, v.u.s.p, v.u.s.n);
    default: return jv_write_repr(c, at, b, v, depth);
    }
}

bool jv_write_repr(jinja_ctx *c, const node *at, jsbuf *b, jv v, int depth) {
    if (depth > VALUE_MAX_DEPTH)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply to print");
    if (!jctx_charge(c, at, 0)) return false;
    bool ok = true;
    switch (v.type) {
    case JV_STR: ok = write_str_repr(c, b, v.u.s.p, v.u.s.n); break;
    case JV_LIST: {
        const jv_list *l = v.u.list;
        ok = jsb_puts(c, b, l->tuple ? "(" : "[");
        for (size_t i = 0; ok && i < l->n; i++) {
            if (i) ok = jsb_puts(c, b, ", ");
            if (ok && !jv_write_repr(c, at, b, l->items[i], depth + 1)) return false;
        }
        if (ok && l->tuple && l->n == 1) ok = jsb_puts(c, b, ",");
        if (ok) ok = jsb_puts(c, b, l->tuple ? ")" : "]");
        break;
    }
    case JV_DICT: {
        const jv_dict *d = v.u.dict;
        ok = jsb_puts(c, b, d->ns ? "<Namespace {" : "{");
        for (size_t i = 0; ok && i < d->n; i++) {
            if (i) ok = jsb_puts(c, b, ", ");
            if (ok && !jv_write_repr(c, at, b, d->keys[i], depth + 1)) return false;
            if (ok) ok = jsb_puts(c, b, ": ");
            if (ok && !jv_write_repr(c, at, b, d->vals[i], depth + 1)) return false;
        }
        if (ok) ok = jsb_puts(c, b, d->ns ? "}>" : "}");
        break;
    }
    case JV_UNDEF: ok = jsb_puts(c, b, "Undefined"); break;
    case JV_FUNC: ok = jsb_puts(c, b, "<built-in function>"); break;
    case JV_MACRO: ok = jsb_puts(c, b, "<Macro>"); break;
    case JV_LOOP: ok = jsb_puts(c, b, "<LoopContext>"); break;
    default: return jv_write_str(c, at, b, v, depth);
    }
    return ok ? true : jctx_oom(c, at);
}

/* str(v) as a value (strings are returned as they are). */
bool jv_to_str(jinja_ctx *c, const node *at, jv v, jv *out) {
    if (v.type == JV_STR) {
        *out = v;
        return true;
    }
    jsbuf b = {0};
    if (!jv_write_str(c, at, &b, v, 0)) return c->failed ? false : jctx_oom(c, at);
    *out = jsb_val(&b);
    return true;
}

/* ---------------------------------------------------------------- JSON (HF's tojson: json.dumps) */

static bool json_string(jinja_ctx *c, jsbuf *b, const char *p, size_t n, bool ensure_ascii) {
    if (!jsb_put(c, b, "\"", 1)) return false;
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
            uint32_t cp = jutf8_decode(p, n, i, &step);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            e = esc;
        }
        if (e) {
            if (run && !jsb_put(c, b, p + i - run, run)) return false;
            run = 0;
            if (!jsb_puts(c, b, e)) return false;
        } else {
            run += step;
        }
        i += step;
    }
    if (run && !jsb_put(c, b, p + n - run, run)) return false;
    return jsb_put(c, b, "\"", 1);
}

static bool json_newline(jinja_ctx *c, jsbuf *b, const json_opts *o, int level) {
    if (!o->indent) return true;
    if (!jsb_put(c, b, "\n", 1)) return false;
    for (int i = 0; i < level; i++)
        if (!jsb_put(c, b, o->indent, o->indent_n)) return false;
    return true;
}

bool jv_write_json(jinja_ctx *c, const node *at, jsbuf *b, jv v, const json_opts *o, int level) {
    if (level > VALUE_MAX_DEPTH)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply for tojson");
    if (!jctx_charge(c, at, 0)) return false;
    char num[64];
    bool ok = true;
    switch (v.type) {
    case JV_NONE: ok = jsb_puts(c, b, "null"); break;
    case JV_BOOL: ok = jsb_puts(c, b, v.u.b ? "true" : "false"); break;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        ok = jsb_puts(c, b, num);
        break;
    case JV_FLOAT:
        jv_fmt_float(v.u.f, num, sizeof num, true);
        ok = jsb_puts(c, b, num);
        break;
    case JV_STR: ok = json_string(c, b, v.u.s.p, v.u.s.n, o->ensure_ascii); break;
    case JV_LIST: {
        const jv_list *l = v.u.list;
        if (!l->n) {
            ok = jsb_puts(c, b, "[]");
            break;
        }
        ok = jsb_puts(c, b, "[");
        for (size_t i = 0; ok && i < l->n; i++) {
            if (i) ok = jsb_put(c, b, o->item_sep, o->item_sep_n);
            if (ok) ok = json_newline(c, b, o, level + 1);
            if (ok && !jv_write_json(c, at, b, l->items[i], o, level + 1)) return false;
        }
        if (ok) ok = json_newline(c, b, o, level);
        if (ok) ok = jsb_puts(c, b, "]");
        break;
    }
    case JV_DICT: {
        const jv_dict *d = v.u.dict;
        if (d->ns)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "Object of type Namespace is not JSON serializable");
        if (!d->n) {
            ok = jsb_puts(c, b, "{}");
            break;
        }
        size_t *order = jarena_alloc(&c->ar, d->n * sizeof *order);
        if (!order) return jctx_oom(c, at);
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    bool cok = true;
                    int r = jv_compare(c, at, d->keys[order[j - 1]], d->keys[order[j]], false, 0, &cok);
                    if (!cok) return false;
                    if (r <= 0) break;
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        ok = jsb_puts(c, b, "{");
        for (size_t k = 0; ok && k < d->n; k++) {
            size_t i = order[k];
            if (k) ok = jsb_put(c, b, o->item_sep, o->item_sep_n);
            if (ok) ok = json_newline(c, b, o, level + 1);
            if (!ok) break;
            jv key = d->keys[i];
            if (key.type == JV_STR) {
                ok = json_string(c, b, key.u.s.p, key.u.s.n, o->ensure_ascii);
            } else if (key.type == JV_INT || key.type == JV_FLOAT || key.type == JV_BOOL ||
                       key.type == JV_NONE) {
                jsbuf kb = {0};
                if (key.type == JV_BOOL)
                    ok = jsb_puts(c, &kb, key.u.b ? "true" : "false");
                else if (key.type == JV_NONE)
                    ok = jsb_puts(c, &kb, "null");
                else if (key.type == JV_FLOAT) {
                    jv_fmt_float(key.u.f, num, sizeof num, true);
                    ok = jsb_puts(c, &kb, num);
                } else
                    ok = jv_write_str(c, at, &kb, key, 0);
                if (ok) ok = json_string(c, b, kb.p, kb.n, o->ensure_ascii);
            } else {
                return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                                 "keys must be str, int, float, bool or None, not %s", jv_type_name(key));
            }
            if (ok) ok = jsb_put(c, b, o->key_sep, o->key_sep_n);
            if (ok && !jv_write_json(c, at, b, d->vals[i], o, level + 1)) return false;
        }
        if (ok) ok = json_newline(c, b, o, level);
        if (ok) ok = jsb_puts(c, b, "}");
        break;
    }
    default:
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "Object of type %s is not JSON serializable",
                         jv_type_name(v));
    }
    return ok ? true : jctx_oom(c, at);
}

/* ---------------------------------------------------------------- truth, equality, order */

bool jv_equal(jinja_ctx *c, jv a, jv b, int depth, bool *eq) {
    *eq = false;
    if (depth > VALUE_MAX_DEPTH) return true; /* treat as unequal */
    c->steps++;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (jv_is_intlike(a) && jv_is_intlike(b))
            *eq = jv_num_i(a) == jv_num_i(b);
        else
            *eq = jv_num_f(a) == jv_num_f(b);
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
            if (!jv_equal(c, a.u.list->items[i], b.u.list->items[i], depth + 1, eq)) return false;
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
            long j = jv_dict_find(c, b.u.dict, a.u.dict->keys[i]);
            if (j < 0) return true;
            if (!jv_equal(c, a.u.dict->vals[i], b.u.dict->vals[j], depth + 1, eq)) return false;
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
int jv_compare(jinja_ctx *c, const node *at, jv a, jv b, bool fold_case, int depth, bool *ok) {
    if (depth > VALUE_MAX_DEPTH) {
        *ok = jctx_fail(c, at, HEARTH_ERR_FORMAT, "value nested too deeply to compare");
        return 0;
    }
    c->steps++;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (jv_is_intlike(a) && jv_is_intlike(b))
            return jv_num_i(a) < jv_num_i(b) ? -1 : jv_num_i(a) > jv_num_i(b);
        double x = jv_num_f(a), y = jv_num_f(b);
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
            int r = jv_compare(c, at, a.u.list->items[i], b.u.list->items[i], fold_case, depth + 1, ok);
            if (!*ok || r) return r;
        }
        return a.u.list->n < b.u.list->n ? -1 : a.u.list->n > b.u.list->n;
    }
    *ok = jctx_fail(c, at, HEARTH_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'",
                    jv_type_name(a), jv_type_name(b));
    return 0;
}

/* ================================================================ evaluator */
