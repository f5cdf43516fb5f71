/*
 * operators.c - binary operators with Python's semantics: integer
 * arithmetic with overflow checks, floats, string and list concatenation and
 * repetition, "%" formatting, `in`, and comparisons.
 *
 * Invariants: 64-bit integer overflow is an error, never a wrap; repetition
 * is checked against max_memory before any byte is built.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdio.h>

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
        if (y == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "integer division or modulo by zero");
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
        if (y == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "division by zero");
        *out = jv_float((double)x / (double)y);
        return true;
    case OP_POW:
        if (y < 0) {
            if (x == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "0 cannot be raised to a negative power");
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
    if (of)
        return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "integer overflow (Hearth's integers are 64-bit)");
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
    if (!jctx_charge(c, at, fmt.u.s.n)) return false;
    jsbuf b = {0};
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        if (!pct) {
            if (!jsb_put(c, &b, p, (size_t)(end - p))) return jctx_oom(c, at);
            break;
        }
        if (!jsb_put(c, &b, p, (size_t)(pct - p))) return jctx_oom(c, at);
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
        if (p >= end) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "incomplete format");
        char conv = *p++;
        if (conv == '%') {
            if (!jsb_put(c, &b, "%", 1)) return jctx_oom(c, at);
            continue;
        }
        if (used >= argc || mapping)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "not enough arguments for format string");
        jv v = argv[used++];
        char num[512];
        if (conv == 's' || conv == 'r') {
            jsbuf t = {0};
            if (!(conv == 's' ? jv_write_str(c, at, &t, v, 0) : jv_write_repr(c, at, &t, v, 0)))
                return c->failed ? false : jctx_oom(c, at);
            size_t len = t.n;
            if (prec >= 0 && (size_t)prec < len) len = jutf8_offset(t.p, t.n, (size_t)prec);
            size_t cps = jutf8_count(t.p ? t.p : "", len);
            bool left = memchr(spec, '-', k) != NULL;
            for (size_t i = cps; !left && i < (size_t)width; i++)
                if (!jsb_put(c, &b, " ", 1)) return jctx_oom(c, at);
            if (!jsb_put(c, &b, t.p ? t.p : "", len)) return jctx_oom(c, at);
            for (size_t i = cps; left && i < (size_t)width; i++)
                if (!jsb_put(c, &b, " ", 1)) return jctx_oom(c, at);
            continue;
        }
        if (conv == 'c') {
            if (v.type == JV_STR && jutf8_count(v.u.s.p, v.u.s.n) == 1) {
                if (!jsb_put(c, &b, v.u.s.p, v.u.s.n)) return jctx_oom(c, at);
            } else if (jv_is_intlike(v) && jv_num_i(v) >= 0 && jv_num_i(v) <= 0x10FFFF) {
                char u[4];
                if (!jsb_put(c, &b, u, jutf8_put(u, (uint32_t)jv_num_i(v)))) return jctx_oom(c, at);
            } else {
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%%c requires an int or a single character");
            }
            continue;
        }
        if (!jv_is_number(v))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%%%c format: a real number is required, not %s", conv,
                             jv_type_name(v));
        char f[48];
        if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
            long long x = v.type == JV_FLOAT ? (isfinite(v.u.f) && fabs(v.u.f) < 9e18 ? (long long)v.u.f : 0)
                                             : (long long)jv_num_i(v);
            snprintf(f, sizeof f, "%.*s%d%s", (int)k, spec, width,
                     conv == 'x'   ? "llx"
                     : conv == 'X' ? "llX"
                     : conv == 'o' ? "llo"
                                   : "lld");
            snprintf(num, sizeof num, f, x);
        } else if (conv == 'f' || conv == 'F' || conv == 'e' || conv == 'E' || conv == 'g' || conv == 'G') {
            snprintf(f, sizeof f, "%.*s%d.%d%c", (int)k, spec, width, prec < 0 ? 6 : prec, conv);
            snprintf(num, sizeof num, f, jv_num_f(v));
        } else {
            return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        }
        if (!jsb_puts(c, &b, num)) return jctx_oom(c, at);
    }
    if (!mapping && used < argc)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "not all arguments converted during string formatting");
    *out = jsb_val(&b);
    return true;
}

bool jop_arith(jinja_ctx *c, const node *at, int op, jv a, jv b, jv *out) {
    if (a.type == JV_UNDEF) return jeval_undefined(c, at, a);
    if (b.type == JV_UNDEF) return jeval_undefined(c, at, b);
    if (jv_is_intlike(a) && jv_is_intlike(b)) return arith_int(c, at, op, jv_num_i(a), jv_num_i(b), out);
    if (jv_is_number(a) && jv_is_number(b)) {
        double x = jv_num_f(a), y = jv_num_f(b), r = 0;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
            if (y == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "float division by zero");
            r = x / y;
            break;
        case OP_FLOORDIV:
            if (y == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "float floor division by zero");
            r = floor(x / y);
            break;
        case OP_MOD:
            if (y == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "float modulo by zero");
            r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            break;
        case OP_POW: r = pow(x, y); break;
        }
        *out = jv_float(r);
        return true;
    }
    if (op == OP_ADD && a.type == JV_STR && b.type == JV_STR) {
        if (!jctx_charge(c, at, a.u.s.n + b.u.s.n)) return false;
        jsbuf s = {0};
        if (!jsb_grow(c, &s, a.u.s.n + b.u.s.n) || !jsb_put(c, &s, a.u.s.p, a.u.s.n) ||
            !jsb_put(c, &s, b.u.s.p, b.u.s.n))
            return jctx_oom(c, at);
        *out = jsb_val(&s);
        return true;
    }
    if (op == OP_ADD && a.type == JV_LIST && b.type == JV_LIST) {
        if (!jctx_charge(c, at, (a.u.list->n + b.u.list->n) * sizeof(jv))) return false;
        jv_list *l = jv_list_alloc(c, a.u.list->n + b.u.list->n);
        if (!l) return jctx_oom(c, at);
        for (size_t i = 0; i < a.u.list->n; i++)
            l->items[l->n++] = a.u.list->items[i];
        for (size_t i = 0; i < b.u.list->n; i++)
            l->items[l->n++] = b.u.list->items[i];
        l->tuple = a.u.list->tuple;
        *out = jv_list_val(l);
        return true;
    }
    if (op == OP_MUL && ((a.type == JV_STR && jv_is_intlike(b)) || (jv_is_intlike(a) && b.type == JV_STR))) {
        jv s = a.type == JV_STR ? a : b;
        int64_t k = a.type == JV_STR ? jv_num_i(b) : jv_num_i(a);
        jsbuf r = {0};
        if (k > 0 && s.u.s.n) {
            if ((uint64_t)k > c->lim.max_memory / s.u.s.n) {
                c->ar.over_budget = true;
                return jctx_oom(c, at);
            }
            if (!jctx_charge(c, at, s.u.s.n * (size_t)k)) return false;
            for (int64_t i = 0; i < k; i++)
                if (!jsb_put(c, &r, s.u.s.p, s.u.s.n)) return jctx_oom(c, at);
        }
        *out = jsb_val(&r);
        return true;
    }
    if (op == OP_MUL &&
        ((a.type == JV_LIST && jv_is_intlike(b)) || (jv_is_intlike(a) && b.type == JV_LIST))) {
        const jv_list *src = a.type == JV_LIST ? a.u.list : b.u.list;
        int64_t k = a.type == JV_LIST ? jv_num_i(b) : jv_num_i(a);
        if (k < 0) k = 0;
        if (src->n && (uint64_t)k > c->lim.max_memory / (src->n * sizeof(jv))) {
            c->ar.over_budget = true;
            return jctx_oom(c, at);
        }
        if (!jctx_charge(c, at, src->n * (size_t)k * sizeof(jv))) return false;
        jv_list *l = jv_list_alloc(c, src->n * (size_t)k);
        if (!l) return jctx_oom(c, at);
        for (int64_t r = 0; r < k; r++)
            for (size_t i = 0; i < src->n; i++)
                l->items[l->n++] = src->items[i];
        l->tuple = src->tuple;
        *out = jv_list_val(l);
        return true;
    }
    if (op == OP_MOD && a.type == JV_STR) return str_format(c, at, a, b, out);
    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "unsupported operand types for %s: '%s' and '%s'",
                     jlex_op_text(op), jv_type_name(a), jv_type_name(b));
}

bool jop_contains(jinja_ctx *c, const node *at, jv item, jv seq, bool *res) {
    *res = false;
    switch (seq.type) {
    case JV_UNDEF: return true;
    case JV_STR:
        if (item.type != JV_STR)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT,
                             "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (!jctx_charge(c, at, seq.u.s.n)) return false;
        if (item.u.s.n == 0)
            *res = true;
        else
            *res = item.u.s.n <= seq.u.s.n && memmem(seq.u.s.p, seq.u.s.n, item.u.s.p, item.u.s.n) != NULL;
        return true;
    case JV_LIST:
        for (size_t i = 0; i < seq.u.list->n && !*res; i++)
            if (!jv_equal(c, item, seq.u.list->items[i], 0, res)) return false;
        return jctx_charge(c, at, 0);
    case JV_DICT: *res = jv_dict_find(c, seq.u.dict, item) >= 0; return jctx_charge(c, at, 0);
    default:
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "argument of type '%s' is not iterable",
                         jv_type_name(seq));
    }
}

bool jop_compare(jinja_ctx *c, const node *at, int op, jv a, jv b, bool *res) {
    bool eq = false, ok = true;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        if (!jv_equal(c, a, b, 0, &eq)) return false;
        *res = op == OP_EQ ? eq : !eq;
        return true;
    case OP_IN:
    case OP_NOTIN:
        if (!jop_contains(c, at, a, b, &eq)) return false;
        *res = op == OP_IN ? eq : !eq;
        return true;
    default: {
        if (a.type == JV_UNDEF) return jeval_undefined(c, at, a);
        if (b.type == JV_UNDEF) return jeval_undefined(c, at, b);
        int r = jv_compare(c, at, a, b, false, 0, &ok);
        if (!ok) return false;
        *res = op == OP_LT ? r < 0 : op == OP_LE ? r <= 0 : op == OP_GT ? r > 0 : r >= 0;
        return true;
    }
    }
}
