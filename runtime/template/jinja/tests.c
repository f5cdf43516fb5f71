/*
 * tests.c - every Jinja test (`x is defined`, `n is divisibleby 3`, ...).
 *
 * The table `tests` at the end is the only list of tests: the parser resolves
 * a name to its index there (node->op of N_TEST), and select/reject resolve
 * test names given as strings the same way. Adding a test is one function
 * and one table line; aliases (equalto, ==, lessthan, ...) share a function.
 */
#include "jinja_impl.h"

/* The test's argument (`x is divisibleby 3`, `sameas(y)`), if any. */
static bool test_arg(const jargs *a, jv *x) {
    return jargs_get(a, 0, NULL, x);
}

/* ---------------------------------------------------------------- types and values */

static bool test_defined(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type != JV_UNDEF;
    return true;
}
static bool test_undefined(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_UNDEF;
    return true;
}
static bool test_none(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_NONE;
    return true;
}
static bool test_boolean(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_BOOL;
    return true;
}
static bool test_true(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_BOOL && v.u.b;
    return true;
}
static bool test_false(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_BOOL && !v.u.b;
    return true;
}
static bool test_integer(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_INT;
    return true;
}
static bool test_float(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_FLOAT;
    return true;
}
static bool test_number(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = jv_is_number(v);
    return true;
}
static bool test_string(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_STR;
    return true;
}
static bool test_mapping(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_DICT && !v.u.dict->ns;
    return true;
}
/* iterable and sequence: what a for loop accepts */
static bool test_iterable(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res =
        v.type == JV_STR || v.type == JV_LIST || (v.type == JV_DICT && !v.u.dict->ns) || v.type == JV_UNDEF;
    return true;
}
static bool test_callable(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = v.type == JV_FUNC || v.type == JV_MACRO;
    return true;
}
/* nothing is markup-escaped: templates render without autoescape */
static bool test_escaped(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = false;
    return true;
}

static bool test_sameas(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    jv x;
    if (!test_arg(a, &x)) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test 'sameas' needs an argument");
    if (v.type != x.type)
        *res = false;
    else if (v.type == JV_LIST || v.type == JV_DICT || v.type == JV_MACRO || v.type == JV_LOOP)
        *res = v.u.ptr == x.u.ptr;
    else
        return jv_equal(c, v, x, 0, res);
    return true;
}

/* ---------------------------------------------------------------- strings */

/* Python's str.islower/isupper: some cased character, none of the other case. */
static bool str_is_case(jv v, bool upper) {
    if (v.type != JV_STR) return false;
    bool cased = false, ok = true;
    for (size_t i = 0; i < v.u.s.n; i++) {
        char ch = v.u.s.p[i];
        if (ch >= 'a' && ch <= 'z') {
            cased = true;
            if (upper) ok = false;
        } else if (ch >= 'A' && ch <= 'Z') {
            cased = true;
            if (!upper) ok = false;
        }
    }
    return cased && ok;
}
static bool test_lower(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = str_is_case(v, false);
    return true;
}
static bool test_upper(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    *res = str_is_case(v, true);
    return true;
}

/* ---------------------------------------------------------------- numbers */

/* v % d == 0 (odd: != 0) for an integer v; `name` is the test's, for errors. */
static bool test_divisible(jinja_ctx *c, const node *at, jv v, int64_t d, bool odd, const char *name,
                           bool *res) {
    if (!jv_is_intlike(v))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test '%s' needs an integer, got %s", name,
                         jv_type_name(v));
    int64_t r = d == -1 ? 0 : jv_num_i(v) % d;
    *res = odd ? r != 0 : r == 0;
    return true;
}
static bool test_even(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_divisible(c, at, v, 2, false, "even", res);
}
static bool test_odd(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_divisible(c, at, v, 2, true, "odd", res);
}
static bool test_divisibleby(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    if (!jv_is_intlike(v))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test '%s' needs an integer, got %s", "divisibleby",
                         jv_type_name(v));
    jv x;
    if (!test_arg(a, &x) || !jv_is_intlike(x))
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "divisibleby needs an integer argument");
    int64_t d = jv_num_i(x);
    if (d == 0) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "integer division or modulo by zero");
    return test_divisible(c, at, v, d, false, "divisibleby", res);
}

/* ---------------------------------------------------------------- comparisons */

static bool test_in(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    jv x;
    if (!test_arg(a, &x)) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test 'in' needs an argument");
    return jop_contains(c, at, v, x, res);
}

static bool test_compare(jinja_ctx *c, const node *at, int op, jv v, const jargs *a, bool *res) {
    jv x;
    if (!test_arg(a, &x)) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "comparison test needs an argument");
    return jop_compare(c, at, op, v, x, res);
}
static bool test_eq(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_EQ, v, a, res);
}
static bool test_ne(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_NE, v, a, res);
}
static bool test_lt(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_LT, v, a, res);
}
static bool test_le(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_LE, v, a, res);
}
static bool test_gt(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_GT, v, a, res);
}
static bool test_ge(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res) {
    return test_compare(c, at, OP_GE, v, a, res);
}

/* ---------------------------------------------------------------- the table */

typedef bool (*test_fn)(jinja_ctx *c, const node *at, jv v, const jargs *a, bool *res);

static const struct {
    const char *name;
    test_fn fn;
} tests[] = {
    {"defined", test_defined},
    {"undefined", test_undefined},
    {"none", test_none},
    {"boolean", test_boolean},
    {"true", test_true},
    {"false", test_false},
    {"integer", test_integer},
    {"float", test_float},
    {"number", test_number},
    {"string", test_string},
    {"mapping", test_mapping},
    {"iterable", test_iterable},
    {"sequence", test_iterable},
    {"callable", test_callable},
    {"sameas", test_sameas},
    {"lower", test_lower},
    {"upper", test_upper},
    {"even", test_even},
    {"odd", test_odd},
    {"divisibleby", test_divisibleby},
    {"eq", test_eq},
    {"equalto", test_eq},
    {"==", test_eq},
    {"ne", test_ne},
    {"!=", test_ne},
    {"lt", test_lt},
    {"lessthan", test_lt},
    {"<", test_lt},
    {"le", test_le},
    {"<=", test_le},
    {"gt", test_gt},
    {"greaterthan", test_gt},
    {">", test_gt},
    {"ge", test_ge},
    {">=", test_ge},
    {"in", test_in},
    {"escaped", test_escaped},
};

#define N_TESTS (sizeof tests / sizeof tests[0])

int jtest_lookup(const char *p, size_t n) {
    for (size_t i = 0; i < N_TESTS; i++)
        if (strlen(tests[i].name) == n && memcmp(tests[i].name, p, n) == 0) return (int)i + 1;
    return 0;
}

bool jtest_apply(jinja_ctx *c, const node *at, int id, jv v, const jargs *a, bool *res) {
    if (id < 1 || (size_t)id > N_TESTS) return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "unknown test");
    return tests[id - 1].fn(c, at, v, a, res);
}

bool jtest_by_name(jinja_ctx *c, const node *at, jv name, int *id) {
    if (name.type != JV_STR) return jctx_fail(c, at, HEARTH_ERR_FORMAT, "test name must be a string");
    *id = jtest_lookup(name.u.s.p, name.u.s.n);
    if (!*id)
        return jctx_fail(c, at, HEARTH_ERR_UNSUPPORTED, "no test named '%.*s'",
                         (int)(name.u.s.n > 40 ? 40 : name.u.s.n), name.u.s.p);
    return true;
}
