/*
 * calls.c - the global functions templates call (range, namespace, dict,
 * raise_exception, strftime_now) and {% macro %} calls.
 *
 * Invariants: range() is capped at RANGE_MAX items; macro calls nest at most
 * MACRO_MAX_DEPTH deep and see the template's top-level scope, not the
 * caller's.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

/* ---------------------------------------------------------------- global functions */

static bool fn_strftime(jinja_ctx *c, const node *at, jv fmt, jv *out) {
    if (!jstr_want(c, at, fmt, "strftime_now")) return false;
    if (fmt.u.s.n > 256) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "strftime_now format too long");
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
    *out = jv_str_copy(c, buf, n, &ok);
    return ok ? true : jctx_oom(c, at);
}

bool jcall_function(jinja_ctx *c, const node *at, int fn, const jargs *a, jv *out) {
    jv x;
    switch (fn) {
    case FN_RANGE: {
        int64_t start = 0, stop, step = 1;
        jv v[3];
        size_t n = a->npos < 3 ? a->npos : 3;
        if (n == 0 || a->npos > 3)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "range expects 1 to 3 integer arguments");
        for (size_t i = 0; i < n; i++) {
            v[i] = a->pos[i];
            if (!jv_is_intlike(v[i]))
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "range arguments must be integers, not %s",
                                 jv_type_name(v[i]));
        }
        if (n == 1)
            stop = jv_num_i(v[0]);
        else {
            start = jv_num_i(v[0]);
            stop = jv_num_i(v[1]);
            if (n == 3) step = jv_num_i(v[2]);
        }
        if (step == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "range() arg 3 must not be zero");
        double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                                : ceil(((double)start - (double)stop) / -(double)step);
        if (count < 0) count = 0;
        if (count > RANGE_MAX)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "range too big (more than %d items)", RANGE_MAX);
        jv_list *l = jv_list_alloc(c, (size_t)count);
        if (!l) return jctx_oom(c, at);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (l->n >= (size_t)count) break;
            l->items[l->n++] = jv_int(i);
        }
        if (!jctx_charge(c, at, l->n)) return false;
        *out = jv_list_val(l);
        return true;
    }
    case FN_NAMESPACE:
    case FN_DICT: {
        jv_dict *d = jv_dict_alloc(c);
        if (!d) return jctx_oom(c, at);
        d->ns = fn == FN_NAMESPACE;
        if (a->npos > 1)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%s() takes at most one positional argument",
                             fn == FN_NAMESPACE ? "namespace" : "dict");
        if (a->npos == 1) {
            jv src = a->pos[0];
            if (src.type == JV_DICT) {
                for (size_t i = 0; i < src.u.dict->n; i++)
                    if (!jv_dict_put(c, d, src.u.dict->keys[i], src.u.dict->vals[i])) return jctx_oom(c, at);
            } else if (src.type == JV_LIST) {
                for (size_t i = 0; i < src.u.list->n; i++) {
                    jv p = src.u.list->items[i];
                    if (p.type != JV_LIST || p.u.list->n != 2)
                        return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                                         "dictionary update sequence element has wrong length");
                    if (!jv_dict_put(c, d, p.u.list->items[0], p.u.list->items[1])) return jctx_oom(c, at);
                }
            } else {
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not a mapping", jv_type_name(src));
            }
        }
        for (size_t k = 0; k < a->nkw; k++)
            if (!jv_dict_put(c, d, jv_strview(a->kwn[k], a->kwl[k]), a->kwv[k])) return jctx_oom(c, at);
        *out = jv_dict_val(d);
        return jctx_charge(c, at, d->n);
    }
    case FN_RAISE: {
        jv msg = jv_strview("", 0);
        if (jargs_get(a, 0, "message", &x) && !jv_to_str(c, at, x, &msg)) return false;
        if (c->failed) return false;
        bool r =
            jctx_fail(c, at, HEARTH_ERR_INVALID, "%.*s", (int)(msg.u.s.n > 400 ? 400 : msg.u.s.n), msg.u.s.p);
        c->raised = true;
        return r;
    }
    case FN_STRFTIME:
        if (!jargs_get(a, 0, "format", &x))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "strftime_now needs a format");
        return fn_strftime(c, at, x, out);
    }
    return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "unknown function");
}

bool jcall_macro(jinja_ctx *c, const node *at, const node *m, const jargs *a, jv *out) {
    if (c->macro_depth >= MACRO_MAX_DEPTH)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "macro calls nested deeper than %d", MACRO_MAX_DEPTH);
    if (a->npos > (size_t)m->n_names)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "macro '%.*s' takes %d arguments, %zu given", (int)m->nlen,
                         m->name, m->n_names, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        bool known = false;
        for (int i = 0; i < m->n_names && !known; i++)
            known = m->nlens[i] == a->kwl[k] && memcmp(m->names[i], a->kwn[k], a->kwl[k]) == 0;
        if (!known)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "macro '%.*s' has no argument '%.*s'", (int)m->nlen,
                             m->name, (int)a->kwl[k], a->kwn[k]);
    }
    frame f = {.parent = c->root};
    frame *saved_fr = c->fr;
    jsbuf *saved_cap = c->capture;
    jsbuf cap = {0};
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
                ok = jeval(c, m->items2[i], &v);
            else
                v = jv_missing(m->names[i], m->nlens[i]);
        }
        if (ok && !jframe_set(c, &f, m->names[i], m->nlens[i], v)) ok = jctx_oom(c, at);
    }
    if (ok) {
        c->capture = &cap;
        c->macro_depth++;
        exec_status st = jexec_body(c, m->items, m->n_items);
        c->macro_depth--;
        ok = st != EX_ERR;
    }
    c->fr = saved_fr;
    c->capture = saved_cap;
    if (!ok) return false;
    *out = jsb_val(&cap);
    return true;
}

bool jcall_value(jinja_ctx *c, const node *at, jv fnv, const jargs *a, jv *out) {
    switch (fnv.type) {
    case JV_FUNC: return jcall_function(c, at, fnv.u.fn, a, out);
    case JV_MACRO: return jcall_macro(c, at, fnv.u.ptr, a, out);
    case JV_UNDEF: return jeval_undefined(c, at, fnv);
    default: return jctx_fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not callable", jv_type_name(fnv));
    }
}
