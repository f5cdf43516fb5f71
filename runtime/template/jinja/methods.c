/*
 * methods.c - the str, dict and loop methods templates call
 * (s.strip(), d.items(), loop.cycle(), ...) and the string helpers the
 * filters share with them (strip, case, replace, split, splitlines).
 *
 * Invariants: strings are UTF-8 bytes; case mapping only knows ASCII;
 * every helper charges the bytes it touches.
 */
#include "jinja_impl.h"

#include <ctype.h>

/* ---------------------------------------------------------------- string helpers */

/* ---------------------------------------------------------------- string helpers */

bool jstr_is_space(unsigned char ch) {
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

/* strip/lstrip/rstrip; chars==NULL strips whitespace. */
jv jstr_strip(jv s, const jv *chars, bool left, bool right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    if (chars && chars->type == JV_STR) {
        const char *cs = chars->u.s.p;
        size_t cn = chars->u.s.n;
        /* by code point: a stripped char must be one of `chars` */
        while (left && b < e) {
            size_t nx = jutf8_next(p, e, b);
            bool hit = false;
            for (size_t k = 0; k < cn && !hit; k = jutf8_next(cs, cn, k))
                hit = jutf8_next(cs, cn, k) - k == nx - b && memcmp(cs + k, p + b, nx - b) == 0;
            if (!hit) break;
            b = nx;
        }
        while (right && e > b) {
            size_t pv = e - 1;
            while (pv > b && !jutf8_boundary(p, pv))
                pv--;
            bool hit = false;
            for (size_t k = 0; k < cn && !hit; k = jutf8_next(cs, cn, k))
                hit = jutf8_next(cs, cn, k) - k == e - pv && memcmp(cs + k, p + pv, e - pv) == 0;
            if (!hit) break;
            e = pv;
        }
    } else {
        while (left && b < e && jstr_is_space((unsigned char)p[b]))
            b++;
        while (right && e > b && jstr_is_space((unsigned char)p[e - 1]))
            e--;
    }
    return jv_strview(p + b, e - b);
}

bool jstr_case(jinja_ctx *c, const node *at, jv s, case_mode m, jv *out) {
    if (!jctx_charge(c, at, s.u.s.n)) return false;
    char *p = jarena_alloc(&c->ar, s.u.s.n ? s.u.s.n : 1);
    if (!p) return jctx_oom(c, at);
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
            start = jstr_is_space((unsigned char)ch) || strchr("-({[<", ch) != NULL;
            break;
        }
        if (alpha) ch = upper ? (char)toupper((unsigned char)ch) : (char)tolower((unsigned char)ch);
        p[i] = ch;
    }
    *out = jv_strview(p, s.u.s.n);
    return true;
}

bool jstr_replace(jinja_ctx *c, const node *at, jv s, jv old, jv new, int64_t count, jv *out) {
    if (!jctx_charge(c, at, s.u.s.n)) return false;
    jsbuf b = {0};
    const char *p = s.u.s.p, *end = p + s.u.s.n;
    int64_t done = 0;
    if (old.u.s.n == 0) { /* Python inserts `new` between code points */
        for (size_t i = 0; i <= s.u.s.n; i = jutf8_next(s.u.s.p, s.u.s.n, i)) {
            if (count < 0 || done < count) {
                if (!jsb_put(c, &b, new.u.s.p, new.u.s.n)) return jctx_oom(c, at);
                done++;
            }
            if (i == s.u.s.n) break;
            size_t j = jutf8_next(s.u.s.p, s.u.s.n, i);
            if (!jsb_put(c, &b, p + i, j - i)) return jctx_oom(c, at);
            if (!jctx_charge(c, at, new.u.s.n)) return false;
        }
        *out = jsb_val(&b);
        return true;
    }
    while (p < end && (count < 0 || done < count)) {
        const char *hit = memmem(p, (size_t)(end - p), old.u.s.p, old.u.s.n);
        if (!hit) break;
        if (!jsb_put(c, &b, p, (size_t)(hit - p)) || !jsb_put(c, &b, new.u.s.p, new.u.s.n))
            return jctx_oom(c, at);
        if (!jctx_charge(c, at, new.u.s.n)) return false;
        p = hit + old.u.s.n;
        done++;
    }
    if (!jsb_put(c, &b, p, (size_t)(end - p))) return jctx_oom(c, at);
    *out = jsb_val(&b);
    return true;
}

/* str.split(sep=None, maxsplit=-1) */
static bool str_split(jinja_ctx *c, const node *at, jv s, const jv *sep, int64_t maxsplit, jv *out) {
    if (!jctx_charge(c, at, s.u.s.n)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, at);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t splits = 0;
    if (!sep || sep->type == JV_NONE) {
        for (;;) {
            while (i < n && jstr_is_space((unsigned char)p[i]))
                i++;
            if (i >= n) break;
            size_t j = i;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i && jstr_is_space((unsigned char)p[e - 1]))
                    e--;
                if (!jv_list_push(c, l, jv_strview(p + i, e - i))) return jctx_oom(c, at);
                break;
            }
            while (j < n && !jstr_is_space((unsigned char)p[j]))
                j++;
            if (!jv_list_push(c, l, jv_strview(p + i, j - i))) return jctx_oom(c, at);
            splits++;
            i = j;
        }
    } else {
        if (sep->type != JV_STR)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "must be str or None, not %s", jv_type_name(*sep));
        if (sep->u.s.n == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "empty separator");
        for (;;) {
            const char *hit =
                (maxsplit >= 0 && splits >= maxsplit) ? NULL : memmem(p + i, n - i, sep->u.s.p, sep->u.s.n);
            if (!hit) {
                if (!jv_list_push(c, l, jv_strview(p + i, n - i))) return jctx_oom(c, at);
                break;
            }
            if (!jv_list_push(c, l, jv_strview(p + i, (size_t)(hit - (p + i))))) return jctx_oom(c, at);
            splits++;
            i = (size_t)(hit - p) + sep->u.s.n;
            if (!jctx_charge(c, at, 0)) return false;
        }
    }
    *out = jv_list_val(l);
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
        return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                         "startswith/endswith first arg must be str or a tuple of str, not %s",
                         jv_type_name(affix));
    if (affix.u.s.n > s.u.s.n) return true;
    *res = memcmp(suffix ? s.u.s.p + s.u.s.n - affix.u.s.n : s.u.s.p, affix.u.s.p, affix.u.s.n) == 0;
    return true;
}

/* str.splitlines() (ASCII line boundaries) */
bool jstr_splitlines(jinja_ctx *c, const node *at, jv s, jv_list **out) {
    if (!jctx_charge(c, at, s.u.s.n)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, at);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0, start = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e)) {
            if (!jv_list_push(c, l, jv_strview(p + start, i - start))) return jctx_oom(c, at);
            i += (ch == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            start = i;
        } else {
            i++;
        }
    }
    if (start < n && !jv_list_push(c, l, jv_strview(p + start, n - start))) return jctx_oom(c, at);
    *out = l;
    return true;
}

bool jstr_want(jinja_ctx *c, const node *at, jv v, const char *what) {
    if (v.type == JV_STR) return true;
    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%s expects a string, got %s", what, jv_type_name(v));
}

/* obj.method(args) for the str / dict / loop methods templates use. */
bool jcall_method(jinja_ctx *c, const node *at, jv obj, const char *m, size_t mn, const jargs *a, jv *out) {
    jv x, y;
    if (obj.type == JV_UNDEF) return jeval_undefined(c, at, obj);
    if (obj.type == JV_STR) {
        if (jname_is(m, mn, "strip") || jname_is(m, mn, "lstrip") || jname_is(m, mn, "rstrip")) {
            bool has = jargs_get(a, 0, "chars", &x) && x.type != JV_NONE;
            if (has && !jstr_want(c, at, x, "strip")) return false;
            *out = jstr_strip(obj, has ? &x : NULL, m[0] != 'r', m[0] != 'l');
            return jctx_charge(c, at, obj.u.s.n);
        }
        if (jname_is(m, mn, "upper")) return jstr_case(c, at, obj, CASE_UPPER, out);
        if (jname_is(m, mn, "lower")) return jstr_case(c, at, obj, CASE_LOWER, out);
        if (jname_is(m, mn, "title")) return jstr_case(c, at, obj, CASE_TITLE_PY, out);
        if (jname_is(m, mn, "capitalize")) return jstr_case(c, at, obj, CASE_CAPITALIZE, out);
        if (jname_is(m, mn, "startswith") || jname_is(m, mn, "endswith")) {
            if (!jargs_get(a, 0, NULL, &x))
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%.*s needs an argument", (int)mn, m);
            bool r;
            if (!str_affix(c, at, obj, x, m[0] == 'e', &r)) return false;
            *out = jv_bool(r);
            return true;
        }
        if (jname_is(m, mn, "split")) {
            bool has = jargs_get(a, 0, "sep", &x);
            int64_t maxsplit = -1;
            if (jargs_get(a, 1, "maxsplit", &y)) {
                if (!jv_is_intlike(y))
                    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "maxsplit must be an integer");
                maxsplit = jv_num_i(y);
            }
            return str_split(c, at, obj, has ? &x : NULL, maxsplit, out);
        }
        if (jname_is(m, mn, "splitlines")) {
            jv_list *l;
            if (!jstr_splitlines(c, at, obj, &l)) return false;
            *out = jv_list_val(l);
            return true;
        }
        if (jname_is(m, mn, "replace")) {
            if (!jargs_get(a, 0, NULL, &x) || !jargs_get(a, 1, NULL, &y) || x.type != JV_STR ||
                y.type != JV_STR)
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "replace needs two string arguments");
            jv cnt;
            int64_t count = -1;
            if (jargs_get(a, 2, "count", &cnt)) {
                if (!jv_is_intlike(cnt))
                    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "replace count must be an integer");
                count = jv_num_i(cnt);
            }
            return jstr_replace(c, at, obj, x, y, count, out);
        }
        if (jname_is(m, mn, "find") || jname_is(m, mn, "count")) {
            if (!jargs_get(a, 0, NULL, &x) || !jstr_want(c, at, x, "find/count")) return false;
            if (!jctx_charge(c, at, obj.u.s.n)) return false;
            const char *p = obj.u.s.p, *end = p + obj.u.s.n;
            if (m[0] == 'f') {
                const char *hit = x.u.s.n ? memmem(p, obj.u.s.n, x.u.s.p, x.u.s.n) : p;
                *out = jv_int(hit ? (int64_t)jutf8_count(p, (size_t)(hit - p)) : -1);
                return true;
            }
            if (!x.u.s.n) {
                *out = jv_int((int64_t)jutf8_count(p, obj.u.s.n) + 1);
                return true;
            }
            int64_t k = 0;
            for (const char *hit; p < end && (hit = memmem(p, (size_t)(end - p), x.u.s.p, x.u.s.n));
                 p = hit + x.u.s.n)
                k++;
            *out = jv_int(k);
            return true;
        }
        if (jname_is(m, mn, "join")) {
            if (!jargs_get(a, 0, NULL, &x))
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "join needs an iterable");
            const jv_list *items;
            if (!jeval_iterate(c, at, x, &items)) return false;
            jsbuf b = {0};
            for (size_t i = 0; i < items->n; i++) {
                if (items->items[i].type != JV_STR)
                    return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                                     "sequence item %zu: expected str instance, %s found", i,
                                     jv_type_name(items->items[i]));
                if ((i && !jsb_put(c, &b, obj.u.s.p, obj.u.s.n)) ||
                    !jsb_put(c, &b, items->items[i].u.s.p, items->items[i].u.s.n))
                    return jctx_oom(c, at);
                if (!jctx_charge(c, at, items->items[i].u.s.n)) return false;
            }
            *out = jsb_val(&b);
            return true;
        }
        if (jname_is(m, mn, "isdigit") || jname_is(m, mn, "isspace") || jname_is(m, mn, "isalpha") ||
            jname_is(m, mn, "isalnum")) {
            bool r = obj.u.s.n > 0;
            for (size_t i = 0; i < obj.u.s.n && r; i++) {
                unsigned char ch = (unsigned char)obj.u.s.p[i];
                r = m[2] == 'd'   ? isdigit(ch)
                    : m[2] == 's' ? jstr_is_space(ch)
                    : m[4] == 'a' ? isalpha(ch)
                                  : isalnum(ch);
            }
            *out = jv_bool(r);
            return true;
        }
    } else if (obj.type == JV_DICT && !obj.u.dict->ns) {
        const jv_dict *d = obj.u.dict;
        if (jname_is(m, mn, "items")) {
            jargs none = {0};
            return jfilter_items(c, at, obj, &none, out);
        }
        if (jname_is(m, mn, "keys") || jname_is(m, mn, "values")) {
            jv_list *l = jv_list_alloc(c, d->n);
            if (!l) return jctx_oom(c, at);
            for (size_t i = 0; i < d->n; i++)
                l->items[l->n++] = m[0] == 'k' ? d->keys[i] : d->vals[i];
            *out = jv_list_val(l);
            return jctx_charge(c, at, d->n);
        }
        if (jname_is(m, mn, "get")) {
            if (!jargs_get(a, 0, NULL, &x)) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "get needs a key");
            long i = jv_dict_find(c, d, x);
            if (i >= 0)
                *out = d->vals[i];
            else if (!jargs_get(a, 1, "default", out))
                *out = jv_none();
            return jctx_charge(c, at, 0);
        }
    } else if (obj.type == JV_LOOP && jname_is(m, mn, "cycle")) {
        if (!a->npos) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "no items for cycling given");
        const jloop *l = obj.u.ptr;
        *out = a->pos[(size_t)l->index0 % a->npos];
        return true;
    }
    if (obj.type == JV_DICT) { /* a callable stored under that key (a macro in a namespace) */
        long i = jv_dict_find(c, obj.u.dict, jv_strview(m, mn));
        if (i >= 0) return jcall_value(c, at, obj.u.dict->vals[i], a, out);
    }
    return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "'%s' object has no supported method '%.*s'",
                     jv_type_name(obj), (int)(mn > 40 ? 40 : mn), m);
}
