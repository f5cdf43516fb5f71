/*
 * tests.c - Jinja tests (`x is defined`, `n is divisibleby 3`, ...): the
 * names the parser resolves and what each one answers.
 */
#include "jinja_impl.h"

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

int jtest_lookup(const char *p, size_t n) {
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (strlen(test_names[i].name) == n && memcmp(test_names[i].name, p, n) == 0) return test_names[i].id;
    return 0;
}

/* ---------------------------------------------------------------- tests */

bool jtest_apply(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, bool *res) {
    jv x;
    bool have = jargs_get(a, 0, NULL, &x);
    switch (id) {
    case TS_DEFINED: *res = v.type != JV_UNDEF; return true;
    case TS_UNDEFINED: *res = v.type == JV_UNDEF; return true;
    case TS_NONE: *res = v.type == JV_NONE; return true;
    case TS_BOOLEAN: *res = v.type == JV_BOOL; return true;
    case TS_TRUE: *res = v.type == JV_BOOL && v.u.b; return true;
    case TS_FALSE: *res = v.type == JV_BOOL && !v.u.b; return true;
    case TS_INTEGER: *res = v.type == JV_INT; return true;
    case TS_FLOAT: *res = v.type == JV_FLOAT; return true;
    case TS_NUMBER: *res = jv_is_number(v); return true;
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
        if (!jv_is_intlike(v))
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test '%s' needs an integer, got %s",
                             id == TS_DIVISIBLEBY ? "divisibleby"
                             : id == TS_EVEN      ? "even"
                                                  : "odd",
                             jv_type_name(v));
        int64_t d = 2;
        if (id == TS_DIVISIBLEBY) {
            if (!have || !jv_is_intlike(x))
                return jctx_fail(c, at, HEARTH_ERR_FORMAT, "divisibleby needs an integer argument");
            d = jv_num_i(x);
            if (d == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "integer division or modulo by zero");
        }
        int64_t r = d == -1 ? 0 : jv_num_i(v) % d;
        *res = id == TS_ODD ? r != 0 : r == 0;
        return true;
    }
    case TS_SAMEAS:
        if (!have) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test 'sameas' needs an argument");
        if (v.type != x.type)
            *res = false;
        else if (v.type == JV_LIST || v.type == JV_DICT || v.type == JV_MACRO || v.type == JV_LOOP)
            *res = v.u.ptr == x.u.ptr;
        else
            return jv_equal(c, v, x, 0, res);
        return true;
    case TS_IN:
        if (!have) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test 'in' needs an argument");
        return jop_contains(c, at, v, x, res);
    case TS_EQ:
    case TS_NE:
    case TS_LT:
    case TS_LE:
    case TS_GT:
    case TS_GE: {
        if (!have) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "comparison test needs an argument");
        static const int ops[] = {[TS_EQ] = OP_EQ, [TS_NE] = OP_NE, [TS_LT] = OP_LT,
                                  [TS_LE] = OP_LE, [TS_GT] = OP_GT, [TS_GE] = OP_GE};
        return jop_compare(c, at, ops[id], v, x, res);
    }
    }
    return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "unknown test");
}

/* A test named by a string argument (select('equalto', 2)). */
bool jtest_by_name(jinja_ctx *c, const node *at, jv name, int *id) {
    if (name.type != JV_STR) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test name must be a string");
    *id = jtest_lookup(name.u.s.p, name.u.s.n);
    if (!*id)
        return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "no test named '%.*s'",
                         (int)(name.u.s.n > 40 ? 40 : name.u.s.n), name.u.s.p);
    return true;
}
