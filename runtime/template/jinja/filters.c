/*
 * filters.c - every Jinja filter (`x | tojson`, `xs | map(attribute='a')`).
 *
 * The table `filters` at the end is the only list of filters: the parser
 * resolves a name to its index there (node->op of N_FILTER) and evaluation
 * calls its function. Adding a filter is one function and one table line;
 * aliases (count, d, e) are table lines that share a function.
 *
 * Invariants: every filter charges the work it does and takes its arguments
 * positionally or by Jinja2's keyword names.
 */
#include "jinja_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- helpers */

static bool attr_path(jinja_ctx *c, const node *at, jv v, jv path, jv *out) {
    if (jv_is_intlike(path)) return jeval_get_item(c, at, v, path, out);
    if (path.type != JV_STR) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "attribute must be a string");
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
            if (!jeval_get_item(c, at, v, jv_int(k), &v)) return false;
        } else if (!jeval_get_item(c, at, v, jv_strview(p, n), &v)) {
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
    jv *tv = jarena_alloc(&c->ar, n * sizeof(jv)), *tk = jarena_alloc(&c->ar, n * sizeof(jv));
    if (!tv || !tk) return jctx_oom(c, at);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                bool ok = true;
                int r = jv_compare(c, at, keys[i], keys[j], fold, 0, &ok);
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
        if (!jctx_charge(c, at, n)) return false;
    }
    return true;
}

static bool to_int(jinja_ctx *c, const node *at, jv v, jv def, int64_t base, jv *out) {
    (void)c;
    (void)at;
    if (jv_is_intlike(v)) {
        *out = jv_int(jv_num_i(v));
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
        while (*end && jstr_is_space((unsigned char)*end))
            end++;
        if (end != clean && !*end) {
            *out = jv_int(x);
            return true;
        }
        double f = strtod(clean, &end);
        while (*end && jstr_is_space((unsigned char)*end))
            end++;
        if (end != clean && !*end && isfinite(f) && f > -9.2e18 && f < 9.2e18) {
            *out = jv_int((int64_t)f);
            return true;
        }
    }
    *out = def;
    return true;
}

/* select / reject (keep_if: what the test must answer), and their *attr
 * forms that test an attribute of each item. */
static bool filter_select(jinja_ctx *c, const node *at, bool attr_mode, bool keep_if, jv v, const jargs *a,
                          jv *out) {
    jv attr, tname;
    size_t next = 0;
    if (attr_mode) {
        if (!jargs_get(a, 0, NULL, &attr))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "missing attribute argument");
        next = 1;
    }
    int test = 0;
    if (jargs_get(a, next, NULL, &tname)) {
        if (!jtest_by_name(c, at, tname, &test)) return false;
        next++;
    }
    jargs rest = jargs_shift(a, next);
    const jv_list *items;
    if (!jv_truthy(v)) v = jv_undef(); /* Jinja2: `if seq:` guards the loop */
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, at);
    for (size_t i = 0; i < items->n; i++) {
        if (!jctx_charge(c, at, 0)) return false;
        jv x = items->items[i];
        if (attr_mode && !attr_path(c, at, x, attr, &x)) return false;
        bool r;
        if (test) {
            if (!jtest_apply(c, at, test, x, &rest, &r)) return false;
        } else {
            r = jv_truthy(x);
        }
        if (r == keep_if && !jv_list_push(c, l, items->items[i])) return jctx_oom(c, at);
    }
    *out = jv_list_val(l);
    return true;
}

static bool filter_map(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv attr, fname, def;
    bool by_attr = false;
    for (size_t k = 0; k < a->nkw; k++)
        if (jname_is(a->kwn[k], a->kwl[k], "attribute")) {
            attr = a->kwv[k];
            by_attr = true;
        }
    bool has_def = false;
    for (size_t k = 0; k < a->nkw; k++)
        if (jname_is(a->kwn[k], a->kwl[k], "default")) {
            def = a->kwv[k];
            has_def = true;
        }
    int fid = 0;
    if (!by_attr) {
        if (!jargs_get(a, 0, NULL, &fname) || fname.type != JV_STR)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "map needs a filter name or attribute=");
        fid = jfilter_lookup(fname.u.s.p, fname.u.s.n);
        if (!fid)
            return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "no filter named '%.*s'",
                             (int)(fname.u.s.n > 40 ? 40 : fname.u.s.n), fname.u.s.p);
    }
    jargs rest = jargs_shift(a, 1);
    rest.nkw = 0;
    const jv_list *items;
    if (v.type == JV_NONE) v = jv_undef();
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv_list *l = jv_list_alloc(c, items->n);
    if (!l) return jctx_oom(c, at);
    for (size_t i = 0; i < items->n; i++) {
        if (!jctx_charge(c, at, 0)) return false;
        jv x;
        if (by_attr) {
            if (!attr_path(c, at, items->items[i], attr, &x)) return false;
            if (x.type == JV_UNDEF && has_def) x = def;
        } else if (!jfilter_apply(c, at, fid, items->items[i], &rest, &x)) {
            return false;
        }
        l->items[l->n++] = x;
    }
    *out = jv_list_val(l);
    return true;
}

static bool filter_tojson(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    /* HF: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
    json_opts o = {.item_sep = ", ", .item_sep_n = 2, .key_sep = ": ", .key_sep_n = 2};
    o.ensure_ascii = jargs_bool(a, 0, "ensure_ascii", false);
    o.sort_keys = jargs_bool(a, 3, "sort_keys", false);
    jv ind, seps;
    char *spaces = NULL;
    if (jargs_get(a, 1, "indent", &ind) && ind.type != JV_NONE) {
        if (ind.type == JV_STR) {
            o.indent = ind.u.s.p;
            o.indent_n = ind.u.s.n;
        } else if (jv_is_intlike(ind)) {
            int64_t k = jv_num_i(ind);
            if (k > 1024) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "tojson indent too large");
            if (k < 0) k = 0;
            spaces = jarena_alloc(&c->ar, (size_t)k + 1);
            if (!spaces) return jctx_oom(c, at);
            memset(spaces, ' ', (size_t)k);
            o.indent = spaces;
            o.indent_n = (size_t)k;
        } else {
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "tojson indent must be an integer or a string");
        }
        o.item_sep = ",";
        o.item_sep_n = 1;
    }
    if (jargs_get(a, 2, "separators", &seps) && seps.type != JV_NONE) {
        if (seps.type != JV_LIST || seps.u.list->n != 2 || seps.u.list->items[0].type != JV_STR ||
            seps.u.list->items[1].type != JV_STR)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "tojson separators must be a pair of strings");
        o.item_sep = seps.u.list->items[0].u.s.p;
        o.item_sep_n = seps.u.list->items[0].u.s.n;
        o.key_sep = seps.u.list->items[1].u.s.p;
        o.key_sep_n = seps.u.list->items[1].u.s.n;
    }
    jsbuf b = {0};
    if (!jv_write_json(c, at, &b, v, &o, 0)) return c->failed ? false : jctx_oom(c, at);
    *out = jsb_val(&b);
    return true;
}

static bool filter_indent(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv s, w;
    if (!jv_to_str(c, at, v, &s)) return false;
    const char *ind = "    ";
    size_t ind_n = 4;
    char *spaces = NULL;
    if (jargs_get(a, 0, "width", &w)) {
        if (w.type == JV_STR) {
            ind = w.u.s.p;
            ind_n = w.u.s.n;
        } else if (jv_is_intlike(w)) {
            int64_t k = jv_num_i(w);
            if (k > 1024) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "indent width too large");
            if (k < 0) k = 0;
            spaces = jarena_alloc(&c->ar, (size_t)k + 1);
            if (!spaces) return jctx_oom(c, at);
            memset(spaces, ' ', (size_t)k);
            ind = spaces;
            ind_n = (size_t)k;
        }
    }
    bool first = jargs_bool(a, 1, "first", false), blank = jargs_bool(a, 2, "blank", false);
    /* s += "\n"; lines = s.splitlines() */
    jsbuf src = {0};
    if (!jsb_put(c, &src, s.u.s.p, s.u.s.n) || !jsb_put(c, &src, "\n", 1)) return jctx_oom(c, at);
    jv_list *lines;
    if (!jstr_splitlines(c, at, jsb_val(&src), &lines)) return false;
    jsbuf b = {0};
    if (first && !jsb_put(c, &b, ind, ind_n)) return jctx_oom(c, at);
    for (size_t i = 0; i < lines->n; i++) {
        jv ln = lines->items[i];
        if (i) {
            if (!jsb_put(c, &b, "\n", 1)) return jctx_oom(c, at);
            if ((blank || ln.u.s.n) && !jsb_put(c, &b, ind, ind_n)) return jctx_oom(c, at);
        }
        if (!jsb_put(c, &b, ln.u.s.p, ln.u.s.n)) return jctx_oom(c, at);
        if (!jctx_charge(c, at, ln.u.s.n)) return false;
    }
    *out = jsb_val(&b);
    return true;
}

/* ---------------------------------------------------------------- values and strings */

static bool filter_safe(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    *out = v;
    return true;
}

static bool filter_abs(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (v.type == JV_FLOAT)
        *out = jv_float(fabs(v.u.f));
    else if (jv_is_intlike(v)) {
        if (jv_num_i(v) == INT64_MIN) return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "integer overflow");
        *out = jv_int(jv_num_i(v) < 0 ? -jv_num_i(v) : jv_num_i(v));
    } else
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "bad operand type for abs(): '%s'", jv_type_name(v));
    return true;
}

static bool filter_attr(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x;
    if (!jargs_get(a, 0, "name", &x) || x.type != JV_STR)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "attr needs an attribute name");
    return jeval_get_attr(c, at, v, x.u.s.p, x.u.s.n, out);
}

static bool filter_default(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x;
    if (!jargs_get(a, 0, "default_value", &x)) x = jv_strview("", 0);
    bool boolean = jargs_bool(a, 1, "boolean", false);
    *out = (v.type == JV_UNDEF || (boolean && !jv_truthy(v))) ? x : v;
    return true;
}

static bool filter_length(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    switch (v.type) {
    case JV_UNDEF: *out = jv_int(0); return true;
    case JV_STR:
        if (!jctx_charge(c, at, v.u.s.n)) return false;
        *out = jv_int((int64_t)jutf8_count(v.u.s.p, v.u.s.n));
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
    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
}

static bool filter_string(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return jv_to_str(c, at, v, out);
}

static bool filter_case(jinja_ctx *c, const node *at, jv v, case_mode m, jv *out) {
    if (!jv_to_str(c, at, v, &v)) return false;
    return jstr_case(c, at, v, m, out);
}
static bool filter_lower(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_case(c, at, v, CASE_LOWER, out);
}
static bool filter_upper(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_case(c, at, v, CASE_UPPER, out);
}
static bool filter_capitalize(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_case(c, at, v, CASE_CAPITALIZE, out);
}
static bool filter_title(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_case(c, at, v, CASE_TITLE_JINJA, out);
}

static bool filter_trim(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x;
    if (!jv_to_str(c, at, v, &v)) return false;
    bool has = jargs_get(a, 0, "chars", &x) && x.type != JV_NONE;
    if (has && !jstr_want(c, at, x, "trim")) return false;
    *out = jstr_strip(v, has ? &x : NULL, true, true);
    return jctx_charge(c, at, v.u.s.n);
}

static bool filter_replace(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x, y;
    if (!jv_to_str(c, at, v, &v)) return false;
    if (!jargs_get(a, 0, "old", &x) || !jargs_get(a, 1, "new", &y))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "replace needs two arguments");
    if (!jv_to_str(c, at, x, &x) || !jv_to_str(c, at, y, &y)) return false;
    jv cnt;
    int64_t count = -1;
    if (jargs_get(a, 2, "count", &cnt) && cnt.type != JV_NONE) {
        if (!jv_is_intlike(cnt))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "replace count must be an integer");
        count = jv_num_i(cnt);
    }
    return jstr_replace(c, at, v, x, y, count, out);
}

static bool filter_escape(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (!jv_to_str(c, at, v, &v)) return false;
    if (!jctx_charge(c, at, v.u.s.n)) return false;
    jsbuf b = {0};
    for (size_t i = 0; i < v.u.s.n; i++) {
        const char *e = NULL;
        switch (v.u.s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        }
        if (e ? !jsb_puts(c, &b, e) : !jsb_put(c, &b, v.u.s.p + i, 1)) return jctx_oom(c, at);
    }
    *out = jsb_val(&b);
    return true;
}

static bool filter_center(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x;
    if (!jv_to_str(c, at, v, &v)) return false;
    int64_t width = 80;
    if (jargs_get(a, 0, "width", &x)) {
        if (!jv_is_intlike(x)) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "center width must be an integer");
        width = jv_num_i(x);
    }
    if (width > 65536) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "center width too large");
    int64_t len = (int64_t)jutf8_count(v.u.s.p, v.u.s.n);
    if (width <= len) {
        *out = v;
        return true;
    }
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    jsbuf b = {0};
    for (int64_t i = 0; i < left; i++)
        if (!jsb_put(c, &b, " ", 1)) return jctx_oom(c, at);
    if (!jsb_put(c, &b, v.u.s.p, v.u.s.n)) return jctx_oom(c, at);
    for (int64_t i = 0; i < marg - left; i++)
        if (!jsb_put(c, &b, " ", 1)) return jctx_oom(c, at);
    *out = jsb_val(&b);
    return true;
}

static bool filter_wordcount(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (!jv_to_str(c, at, v, &v)) return false;
    int64_t words = 0;
    bool in = false;
    for (size_t i = 0; i < v.u.s.n; i++) {
        unsigned char ch = (unsigned char)v.u.s.p[i];
        bool w = isalnum(ch) || ch == '_' || ch >= 0x80;
        if (w && !in) words++;
        in = w;
    }
    *out = jv_int(words);
    return jctx_charge(c, at, v.u.s.n);
}

/* ---------------------------------------------------------------- numbers */

static bool filter_int(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv def = jv_int(0), base = jv_int(10);
    jargs_get(a, 0, "default", &def);
    jargs_get(a, 1, "base", &base);
    return to_int(c, at, v, def, jv_is_intlike(base) ? jv_num_i(base) : 10, out);
}

static bool filter_float(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv def = jv_float(0);
    jargs_get(a, 0, "default", &def);
    if (jv_is_number(v))
        *out = jv_float(jv_num_f(v));
    else if (v.type == JV_STR && v.u.s.n < 64) {
        char buf[64], *end;
        memcpy(buf, v.u.s.p, v.u.s.n);
        buf[v.u.s.n] = '\0';
        double f = strtod(buf, &end);
        while (*end && jstr_is_space((unsigned char)*end))
            end++;
        *out = (end != buf && !*end) ? jv_float(f) : def;
    } else
        *out = def;
    return true;
}

static bool filter_round(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    jv x;
    if (!jv_is_number(v))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "round needs a number, got %s", jv_type_name(v));
    int64_t prec = 0;
    if (jargs_get(a, 0, "precision", &x)) {
        if (!jv_is_intlike(x))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "round precision must be an integer");
        prec = jv_num_i(x);
    }
    if (prec > 15) prec = 15;
    if (prec < -15) prec = -15;
    jv m = jv_strview("common", 6);
    jargs_get(a, 1, "method", &m);
    double f = jv_num_f(v), scale = pow(10.0, (double)prec), r = f * scale;
    if (jv_str_eq(m, "ceil", 4))
        r = ceil(r);
    else if (jv_str_eq(m, "floor", 5))
        r = floor(r);
    else if (jv_str_eq(m, "common", 6))
        r = nearbyint(r);
    else
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "method must be common, ceil or floor");
    *out = jv_float(r / scale);
    return true;
}

/* ---------------------------------------------------------------- mappings */

bool jfilter_items(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (v.type == JV_UNDEF) {
        jv_list *l = jv_list_alloc(c, 0);
        if (!l) return jctx_oom(c, at);
        *out = jv_list_val(l);
        return true;
    }
    if (v.type != JV_DICT || v.u.dict->ns)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "Can only get item pairs from a mapping.");
    jv_list *l = jv_list_alloc(c, v.u.dict->n);
    if (!l) return jctx_oom(c, at);
    for (size_t i = 0; i < v.u.dict->n; i++) {
        jv_list *pair = jv_list_alloc(c, 2);
        if (!pair) return jctx_oom(c, at);
        pair->tuple = true;
        pair->items[0] = v.u.dict->keys[i];
        pair->items[1] = v.u.dict->vals[i];
        pair->n = 2;
        l->items[l->n++] = jv_list_val(pair);
    }
    *out = jv_list_val(l);
    return jctx_charge(c, at, v.u.dict->n * 16);
}

static bool filter_dictsort(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (v.type != JV_DICT || v.u.dict->ns)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "dictsort needs a mapping");
    bool cs = jargs_bool(a, 0, "case_sensitive", false), rev = jargs_bool(a, 2, "reverse", false);
    jv by = jv_strview("key", 3);
    jargs_get(a, 1, "by", &by);
    bool by_value = jv_str_eq(by, "value", 5);
    if (!by_value && !jv_str_eq(by, "key", 3))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "You can only sort by either \"key\" or \"value\"");
    size_t n = v.u.dict->n;
    jv *vals = jarena_alloc(&c->ar, (n ? n : 1) * sizeof(jv)),
       *keys = jarena_alloc(&c->ar, (n ? n : 1) * sizeof(jv));
    if (!vals || !keys) return jctx_oom(c, at);
    for (size_t i = 0; i < n; i++) {
        jv_list *pair = jv_list_alloc(c, 2);
        if (!pair) return jctx_oom(c, at);
        pair->tuple = true;
        pair->items[0] = v.u.dict->keys[i];
        pair->items[1] = v.u.dict->vals[i];
        pair->n = 2;
        vals[i] = jv_list_val(pair);
        keys[i] = by_value ? v.u.dict->vals[i] : v.u.dict->keys[i];
    }
    if (!merge_sort(c, at, vals, keys, n, !cs, rev)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, at);
    l->items = vals;
    l->n = l->cap = n;
    *out = jv_list_val(l);
    return true;
}

/* ---------------------------------------------------------------- sequences */

static bool filter_select_items(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_select(c, at, false, true, v, a, out);
}
static bool filter_reject(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_select(c, at, false, false, v, a, out);
}
static bool filter_selectattr(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_select(c, at, true, true, v, a, out);
}
static bool filter_rejectattr(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_select(c, at, true, false, v, a, out);
}

static bool filter_first(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    *out = items->n ? items->items[0] : jv_undef();
    return true;
}

static bool filter_last(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    *out = items->n ? items->items[items->n - 1] : jv_undef();
    return true;
}

/* The items as a new list, in order or reversed. */
static bool copy_items(jinja_ctx *c, const node *at, jv v, bool reverse, jv *out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv_list *l = jv_list_alloc(c, items->n);
    if (!l) return jctx_oom(c, at);
    for (size_t i = 0; i < items->n; i++)
        l->items[l->n++] = items->items[reverse ? items->n - 1 - i : i];
    *out = jv_list_val(l);
    return jctx_charge(c, at, items->n * 16);
}

static bool filter_list(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return copy_items(c, at, v, false, out);
}

/* A string reverses by code point; anything else as a list. */
static bool filter_reverse(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    if (v.type != JV_STR) return copy_items(c, at, v, true, out);
    if (!jctx_charge(c, at, v.u.s.n)) return false;
    char *p = jarena_alloc(&c->ar, v.u.s.n ? v.u.s.n : 1);
    if (!p) return jctx_oom(c, at);
    size_t o = v.u.s.n;
    for (size_t i = 0; i < v.u.s.n;) {
        size_t j = jutf8_next(v.u.s.p, v.u.s.n, i);
        o -= j - i;
        memcpy(p + o, v.u.s.p + i, j - i);
        i = j;
    }
    *out = jv_strview(p, v.u.s.n);
    return true;
}

static bool filter_join(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv sep = jv_strview("", 0), attr;
    jargs_get(a, 0, "d", &sep);
    if (!jv_to_str(c, at, sep, &sep)) return false;
    bool has_attr = jargs_get(a, 1, "attribute", &attr) && attr.type != JV_NONE;
    jsbuf b = {0};
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->items[i];
        if (has_attr && !attr_path(c, at, x, attr, &x)) return false;
        if (i && !jsb_put(c, &b, sep.u.s.p, sep.u.s.n)) return jctx_oom(c, at);
        if (!jv_write_str(c, at, &b, x, 0)) return c->failed ? false : jctx_oom(c, at);
        if (!jctx_charge(c, at, 0)) return false;
    }
    *out = jsb_val(&b);
    return true;
}

static bool filter_sum(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv attr, acc = jv_int(0);
    bool has_attr = jargs_get(a, 0, "attribute", &attr) && attr.type != JV_NONE;
    jargs_get(a, 1, "start", &acc);
    for (size_t i = 0; i < items->n; i++) {
        jv x = items->items[i];
        if (has_attr && !attr_path(c, at, x, attr, &x)) return false;
        if (!jop_arith(c, at, OP_ADD, acc, x, &acc)) return false;
    }
    *out = acc;
    return true;
}

/* The items of v with their keys (the attribute= argument, at position
 * attr_pos, when given; else the items themselves), for sort/unique/min/max. */
static bool keyed_items(jinja_ctx *c, const node *at, jv v, const jargs *a, size_t attr_pos, jv **vals_out,
                        jv **keys_out, size_t *n_out) {
    const jv_list *items;
    if (!jeval_iterate(c, at, v, &items)) return false;
    jv attr;
    bool has_attr = jargs_get(a, attr_pos, "attribute", &attr) && attr.type != JV_NONE;
    size_t n = items->n;
    jv *vals = jarena_alloc(&c->ar, (n ? n : 1) * sizeof(jv)),
       *keys = jarena_alloc(&c->ar, (n ? n : 1) * sizeof(jv));
    if (!vals || !keys) return jctx_oom(c, at);
    for (size_t i = 0; i < n; i++) {
        vals[i] = items->items[i];
        if (!sort_key(c, at, vals[i], has_attr ? &attr : NULL, &keys[i])) return false;
    }
    *vals_out = vals;
    *keys_out = keys;
    *n_out = n;
    return true;
}

static bool filter_sort(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    bool rev = jargs_bool(a, 0, "reverse", false), cs = jargs_bool(a, 1, "case_sensitive", false);
    jv *vals, *keys;
    size_t n;
    if (!keyed_items(c, at, v, a, 2, &vals, &keys, &n)) return false;
    if (!merge_sort(c, at, vals, keys, n, !cs, rev)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, at);
    l->items = vals;
    l->n = l->cap = n;
    *out = jv_list_val(l);
    return true;
}

static bool filter_unique(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    bool cs = jargs_bool(a, 0, "case_sensitive", false);
    jv *vals, *keys;
    size_t n;
    if (!keyed_items(c, at, v, a, 1, &vals, &keys, &n)) return false;
    jv_list *l = jv_list_alloc(c, 0);
    jv_list *seen = jv_list_alloc(c, 0);
    if (!l || !seen) return jctx_oom(c, at);
    for (size_t i = 0; i < n; i++) {
        jv k = keys[i];
        if (!cs && k.type == JV_STR && !jstr_case(c, at, k, CASE_LOWER, &k)) return false;
        bool dup = false;
        for (size_t j = 0; j < seen->n && !dup; j++)
            if (!jv_equal(c, seen->items[j], k, 0, &dup)) return false;
        if (!jctx_charge(c, at, seen->n)) return false;
        if (!dup && (!jv_list_push(c, seen, k) || !jv_list_push(c, l, vals[i]))) return jctx_oom(c, at);
    }
    *out = jv_list_val(l);
    return true;
}

/* min / max: the first item whose key is smallest / largest. */
static bool filter_extreme(jinja_ctx *c, const node *at, jv v, const jargs *a, bool largest, jv *out) {
    bool cs = jargs_bool(a, 0, "case_sensitive", false);
    jv *vals, *keys;
    size_t n;
    if (!keyed_items(c, at, v, a, 1, &vals, &keys, &n)) return false;
    if (!n) {
        *out = jv_undef();
        return true;
    }
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        bool ok = true;
        int r = jv_compare(c, at, keys[i], keys[best], !cs, 0, &ok);
        if (!ok) return false;
        if (largest ? r > 0 : r < 0) best = i;
    }
    *out = vals[best];
    return true;
}
static bool filter_min(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_extreme(c, at, v, a, false, out);
}
static bool filter_max(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out) {
    return filter_extreme(c, at, v, a, true, out);
}

/* ---------------------------------------------------------------- the table */

typedef bool (*filter_fn)(jinja_ctx *c, const node *at, jv v, const jargs *a, jv *out);

static const struct {
    const char *name;
    filter_fn fn;
} filters[] = {
    {"abs", filter_abs},
    {"attr", filter_attr},
    {"capitalize", filter_capitalize},
    {"center", filter_center},
    {"count", filter_length},
    {"d", filter_default},
    {"default", filter_default},
    {"dictsort", filter_dictsort},
    {"e", filter_escape},
    {"escape", filter_escape},
    {"first", filter_first},
    {"float", filter_float},
    {"indent", filter_indent},
    {"int", filter_int},
    {"items", jfilter_items},
    {"join", filter_join},
    {"last", filter_last},
    {"length", filter_length},
    {"list", filter_list},
    {"lower", filter_lower},
    {"map", filter_map},
    {"max", filter_max},
    {"min", filter_min},
    {"replace", filter_replace},
    {"reject", filter_reject},
    {"rejectattr", filter_rejectattr},
    {"reverse", filter_reverse},
    {"round", filter_round},
    {"safe", filter_safe},
    {"select", filter_select_items},
    {"selectattr", filter_selectattr},
    {"sort", filter_sort},
    {"string", filter_string},
    {"sum", filter_sum},
    {"title", filter_title},
    {"tojson", filter_tojson},
    {"trim", filter_trim},
    {"unique", filter_unique},
    {"upper", filter_upper},
    {"wordcount", filter_wordcount},
};

#define N_FILTERS (sizeof filters / sizeof filters[0])

int jfilter_lookup(const char *p, size_t n) {
    for (size_t i = 0; i < N_FILTERS; i++)
        if (strlen(filters[i].name) == n && memcmp(filters[i].name, p, n) == 0) return (int)i + 1;
    return 0;
}

bool jfilter_apply(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, jv *out) {
    if (id < 1 || (size_t)id > N_FILTERS)
        return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "filter not implemented");
    return filters[id - 1].fn(c, at, v, a, out);
}
