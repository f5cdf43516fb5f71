/*
 * eval.c - the evaluator: variables and scopes, attribute/item access,
 * slices, iteration, call arguments, expressions, and the statements that
 * write output (for loops, set, filter blocks, macro definitions).
 *
 * Invariants: recursion is bounded by limits.max_depth and work by
 * limits.max_steps; output is bounded by limits.max_output; the first error
 * wins (once ctx->failed is set everything returns false up the stack).
 */
#include "jinja_impl.h"

#include "core/grow.h"

/* ---------------------------------------------------------------- variables */

bool jframe_set(jinja_ctx *c, frame *f, const char *name, size_t nlen, jv val) {
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].nlen == nlen && memcmp(f->vars[i].name, name, nlen) == 0) {
            f->vars[i].val = val;
            return true;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        jvar *v = jarena_alloc(&c->ar, cap * sizeof *v);
        if (!v) return false;
        if (f->n) memcpy(v, f->vars, f->n * sizeof *v);
        f->vars = v;
        f->cap = cap;
    }
    f->vars[f->n].name = name;
    f->vars[f->n].nlen = nlen;
    f->vars[f->n].val = val;
    f->n++;
    return true;
}

static jv lookup(jinja_ctx *c, const char *name, size_t nlen) {
    for (frame *f = c->fr; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->vars[i].nlen == nlen && memcmp(f->vars[i].name, name, nlen) == 0) return f->vars[i].val;
    static const struct {
        const char *name;
        int fn;
    } fns[] = {
        {"range", FN_RANGE},           {"namespace", FN_NAMESPACE}, {"raise_exception", FN_RAISE},
        {"strftime_now", FN_STRFTIME}, {"dict", FN_DICT},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (jname_is(name, nlen, fns[i].name)) {
            jv v = {.type = JV_FUNC, .u.fn = fns[i].fn};
            return v;
        }
    jv u = jv_undef();
    u.u.s.p = name;
    u.u.s.n = nlen;
    return u;
}

bool jeval_undefined(jinja_ctx *c, const node *at, jv v) {
    if (v.u.s.p)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "'%.*s' is undefined", (int)(v.u.s.n > 60 ? 60 : v.u.s.n),
                         v.u.s.p);
    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "value is undefined");
}

/* ---------------------------------------------------------------- attribute / item access */

static bool loop_attr(jinja_ctx *c, const node *at, const jloop *l, const char *name, size_t n, jv *out) {
    int64_t len = (int64_t)l->items->n, i = l->index0;
    if (jname_is(name, n, "index"))
        *out = jv_int(i + 1);
    else if (jname_is(name, n, "index0"))
        *out = jv_int(i);
    else if (jname_is(name, n, "revindex"))
        *out = jv_int(len - i);
    else if (jname_is(name, n, "revindex0"))
        *out = jv_int(len - i - 1);
    else if (jname_is(name, n, "first"))
        *out = jv_bool(i == 0);
    else if (jname_is(name, n, "last"))
        *out = jv_bool(i == len - 1);
    else if (jname_is(name, n, "length"))
        *out = jv_int(len);
    else if (jname_is(name, n, "depth"))
        *out = jv_int(1);
    else if (jname_is(name, n, "depth0"))
        *out = jv_int(0);
    else if (jname_is(name, n, "previtem"))
        *out = i > 0 ? l->items->items[i - 1] : jv_missing(name, n);
    else if (jname_is(name, n, "nextitem"))
        *out = i + 1 < len ? l->items->items[i + 1] : jv_missing(name, n);
    else
        *out = jv_missing(name, n);
    (void)c;
    (void)at;
    return true;
}

/* obj.name: dict key, loop attribute; anything else is undefined. */
bool jeval_get_attr(jinja_ctx *c, const node *at, jv obj, const char *name, size_t n, jv *out) {
    if (obj.type == JV_UNDEF) return jeval_undefined(c, at, obj);
    if (obj.type == JV_DICT) {
        long i = jv_dict_find(c, obj.u.dict, jv_strview(name, n));
        *out = i >= 0 ? obj.u.dict->vals[i] : jv_missing(name, n);
        return true;
    }
    if (obj.type == JV_LOOP) return loop_attr(c, at, obj.u.ptr, name, n, out);
    *out = jv_missing(name, n);
    return true;
}

bool jeval_get_item(jinja_ctx *c, const node *at, jv obj, jv key, jv *out) {
    if (obj.type == JV_UNDEF) return jeval_undefined(c, at, obj);
    if (obj.type == JV_DICT) {
        long i = jv_dict_find(c, obj.u.dict, key);
        *out = i >= 0 ? obj.u.dict->vals[i] : jv_undef();
        return true;
    }
    if ((obj.type == JV_LIST || obj.type == JV_STR) && jv_is_intlike(key)) {
        int64_t idx = jv_num_i(key);
        if (obj.type == JV_LIST) {
            int64_t len = (int64_t)obj.u.list->n;
            if (idx < 0) idx += len;
            *out = idx >= 0 && idx < len ? obj.u.list->items[idx] : jv_undef();
            return true;
        }
        if (!jctx_charge(c, at, obj.u.s.n)) return false;
        int64_t len = (int64_t)jutf8_count(obj.u.s.p, obj.u.s.n);
        if (idx < 0) idx += len;
        if (idx < 0 || idx >= len) {
            *out = jv_undef();
            return true;
        }
        size_t o = jutf8_offset(obj.u.s.p, obj.u.s.n, (size_t)idx);
        *out = jv_strview(obj.u.s.p + o, jutf8_next(obj.u.s.p, obj.u.s.n, o) - o);
        return true;
    }
    if (obj.type == JV_LOOP && key.type == JV_STR)
        return loop_attr(c, at, obj.u.ptr, key.u.s.p, key.u.s.n, out);
    if (key.type == JV_STR) return jeval_get_attr(c, at, obj, key.u.s.p, key.u.s.n, out);
    *out = jv_undef();
    return true;
}

/* Python slice index normalization. */
static void slice_indices(int64_t len, const jv *start, const jv *stop, int64_t step, int64_t *s,
                          int64_t *e) {
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? len - 1 : len;
    if (!start)
        *s = step < 0 ? hi : lo;
    else {
        *s = jv_num_i(*start);
        if (*s < 0) {
            *s += len;
            if (*s < lo) *s = lo;
        } else if (*s > hi)
            *s = hi;
    }
    if (!stop)
        *e = step < 0 ? lo : hi;
    else {
        *e = jv_num_i(*stop);
        if (*e < 0) {
            *e += len;
            if (*e < lo) *e = lo;
        } else if (*e > hi)
            *e = hi;
    }
}

static bool eval_slice(jinja_ctx *c, const node *n, jv obj, jv *out) {
    jv sv, ev, tv;
    const jv *sp = NULL, *ep = NULL;
    int64_t step = 1;
    if (n->b) {
        if (!jeval(c, n->b, &sv)) return false;
        if (sv.type != JV_NONE) sp = &sv;
    }
    if (n->c) {
        if (!jeval(c, n->c, &ev)) return false;
        if (ev.type != JV_NONE) ep = &ev;
    }
    if (n->d) {
        if (!jeval(c, n->d, &tv)) return false;
        if (tv.type != JV_NONE) {
            if (!jv_is_intlike(tv))
                return jctx_fail(c, n, HEARTH_ERR_FORMAT, "slice step must be an integer");
            step = jv_num_i(tv);
        }
    }
    if ((sp && !jv_is_intlike(*sp)) || (ep && !jv_is_intlike(*ep)))
        return jctx_fail(c, n, HEARTH_ERR_FORMAT, "slice indices must be integers or none");
    if (step == 0) return jctx_fail(c, n, HEARTH_ERR_FORMAT, "slice step cannot be zero");
    if (obj.type == JV_UNDEF) return jeval_undefined(c, n, obj);
    if (obj.type != JV_LIST && obj.type != JV_STR)
        return jctx_fail(c, n, HEARTH_ERR_FORMAT, "'%s' object is not subscriptable", jv_type_name(obj));
    if (obj.type == JV_STR && !jctx_charge(c, n, obj.u.s.n)) return false;
    int64_t len = obj.type == JV_LIST ? (int64_t)obj.u.list->n : (int64_t)jutf8_count(obj.u.s.p, obj.u.s.n);
    int64_t s, e;
    slice_indices(len, sp, ep, step, &s, &e);
    if (obj.type == JV_STR && step == 1) {
        if (e < s) e = s;
        size_t bo = jutf8_offset(obj.u.s.p, obj.u.s.n, (size_t)s),
               be = jutf8_offset(obj.u.s.p, obj.u.s.n, (size_t)e);
        *out = jv_strview(obj.u.s.p + bo, be - bo);
        return true;
    }
    jv_list *l = jv_list_alloc(c, 0);
    if (!l) return jctx_oom(c, n);
    jsbuf b = {0};
    if (obj.type == JV_STR) {
        /* general string slice: collect code point offsets */
        size_t *offs = jarena_alloc(&c->ar, ((size_t)len + 1) * sizeof *offs);
        if (!offs) return jctx_oom(c, n);
        size_t k = 0;
        for (size_t i = 0; i < obj.u.s.n; i++)
            if (jutf8_boundary(obj.u.s.p, i)) offs[k++] = i;
        offs[k] = obj.u.s.n;
        for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
            if (!jctx_charge(c, n, 0)) return false;
            if (!jsb_put(c, &b, obj.u.s.p + offs[i], offs[i + 1] - offs[i])) return jctx_oom(c, n);
        }
        *out = jsb_val(&b);
        return true;
    }
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
        if (!jctx_charge(c, n, 0)) return false;
        if (!jv_list_push(c, l, obj.u.list->items[i])) return jctx_oom(c, n);
    }
    l->tuple = obj.u.list->tuple;
    *out = jv_list_val(l);
    return true;
}

/* ---------------------------------------------------------------- iteration */

/* The items a for loop / filter walks: lists as they are, dict keys, string
 * code points; undefined iterates as empty. */
bool jeval_iterate(jinja_ctx *c, const node *at, jv v, const jv_list **out) {
    static const jv_list empty = {0};
    switch (v.type) {
    case JV_UNDEF: *out = &empty; return true;
    case JV_LIST: *out = v.u.list; return true;
    case JV_DICT: {
        if (v.u.dict->ns) break;
        jv_list *l = jv_list_alloc(c, v.u.dict->n);
        if (!l) return jctx_oom(c, at);
        for (size_t i = 0; i < v.u.dict->n; i++)
            l->items[l->n++] = v.u.dict->keys[i];
        *out = l;
        return true;
    }
    case JV_STR: {
        if (!jctx_charge(c, at, v.u.s.n)) return false;
        size_t cnt = jutf8_count(v.u.s.p, v.u.s.n);
        jv_list *l = jv_list_alloc(c, cnt);
        if (!l) return jctx_oom(c, at);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t j = jutf8_next(v.u.s.p, v.u.s.n, i);
            l->items[l->n++] = jv_strview(v.u.s.p + i, j - i);
            i = j;
        }
        *out = l;
        return true;
    }
    default: break;
    }
    return jctx_fail(c, at, HEARTH_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
}

bool jargs_get(const jargs *a, size_t i, const char *kw, jv *out) {
    if (i < a->npos) {
        *out = a->pos[i];
        return true;
    }
    for (size_t k = 0; kw && k < a->nkw; k++)
        if (jname_is(a->kwn[k], a->kwl[k], kw)) {
            *out = a->kwv[k];
            return true;
        }
    return false;
}

bool jargs_bool(const jargs *a, size_t i, const char *kw, bool def) {
    jv v;
    return jargs_get(a, i, kw, &v) ? jv_truthy(v) : def;
}

/* Evaluate a call node's arguments; `skip` leading positional slots are left
 * for the caller (the filtered value). Buffers come from the arena when the
 * call has more than fits on the stack. */
static bool jeval_args(jinja_ctx *c, const node *n, jargs *a, jv *buf, size_t cap, size_t skip) {
    size_t total = skip + (size_t)n->n_items + (size_t)n->n_items2;
    jv *vals = buf;
    if (total > cap) {
        vals = jarena_alloc(&c->ar, total * sizeof(jv));
        if (!vals) return jctx_oom(c, n);
    }
    for (int i = 0; i < n->n_items; i++)
        if (!jeval(c, n->items[i], &vals[skip + (size_t)i])) return false;
    for (int i = 0; i < n->n_items2; i++)
        if (!jeval(c, n->items2[i], &vals[skip + (size_t)n->n_items + (size_t)i])) return false;
    a->pos = vals;
    a->npos = skip + (size_t)n->n_items;
    a->kwn = n->names;
    a->kwl = n->nlens;
    a->kwv = vals + skip + n->n_items;
    a->nkw = (size_t)n->n_items2;
    return true;
}

jargs jargs_shift(const jargs *a, size_t k) {
    jargs r = *a;
    r.pos = a->npos > k ? a->pos + k : a->pos;
    r.npos = a->npos > k ? a->npos - k : 0;
    return r;
}

/* ---------------------------------------------------------------- expressions */

static bool eval_call(jinja_ctx *c, const node *n, jv *out) {
    jv buf[8];
    jargs a;
    if (n->a->kind == N_GETATTR) {
        jv obj;
        if (!jeval(c, n->a->a, &obj)) return false;
        if (obj.type == JV_UNDEF) return jeval_undefined(c, n->a->a, obj);
        if (!jeval_args(c, n, &a, buf, 8, 0)) return false;
        /* a dict entry holding a callable wins over methods of the same name */
        if (obj.type == JV_DICT) {
            long i = jv_dict_find(c, obj.u.dict, jv_strview(n->a->name, n->a->nlen));
            if (i >= 0 && (obj.u.dict->vals[i].type == JV_MACRO || obj.u.dict->vals[i].type == JV_FUNC))
                return jcall_value(c, n, obj.u.dict->vals[i], &a, out);
        }
        return jcall_method(c, n, obj, n->a->name, n->a->nlen, &a, out);
    }
    jv fnv;
    if (!jeval(c, n->a, &fnv)) return false;
    if (!jeval_args(c, n, &a, buf, 8, 0)) return false;
    return jcall_value(c, n, fnv, &a, out);
}

static bool eval_inner(jinja_ctx *c, const node *n, jv *out) {
    switch (n->kind) {
    case N_CONST: *out = n->val; return true;
    case N_NAME: *out = lookup(c, n->name, n->nlen); return true;
    case N_SLOT: *out = c->slot; return true;
    case N_LIST:
    case N_TUPLE: {
        jv_list *l = jv_list_alloc(c, (size_t)n->n_items);
        if (!l) return jctx_oom(c, n);
        l->tuple = n->kind == N_TUPLE;
        for (int i = 0; i < n->n_items; i++)
            if (!jeval(c, n->items[i], &l->items[l->n++])) return false;
        *out = jv_list_val(l);
        return true;
    }
    case N_DICT: {
        jv_dict *d = jv_dict_alloc(c);
        if (!d) return jctx_oom(c, n);
        for (int i = 0; i < n->n_items; i++) {
            jv k, v;
            if (!jeval(c, n->items[i], &k) || !jeval(c, n->items2[i], &v)) return false;
            if (k.type == JV_LIST && !k.u.list->tuple)
                return jctx_fail(c, n->items[i], HEARTH_ERR_FORMAT, "unhashable type: 'list'");
            if (k.type == JV_DICT)
                return jctx_fail(c, n->items[i], HEARTH_ERR_FORMAT, "unhashable type: 'dict'");
            if (!jv_dict_put(c, d, k, v)) return jctx_oom(c, n);
            if (!jctx_charge(c, n, d->n)) return false;
        }
        *out = jv_dict_val(d);
        return true;
    }
    case N_GETATTR: {
        jv obj;
        if (!jeval(c, n->a, &obj)) return false;
        if (obj.type == JV_UNDEF) return jeval_undefined(c, n->a, obj); /* point at the undefined name */
        return jeval_get_attr(c, n, obj, n->name, n->nlen, out);
    }
    case N_GETITEM: {
        jv obj, key;
        if (!jeval(c, n->a, &obj) || !jeval(c, n->b, &key)) return false;
        if (obj.type == JV_UNDEF) return jeval_undefined(c, n->a, obj);
        return jeval_get_item(c, n, obj, key, out);
    }
    case N_SLICE: {
        jv obj;
        if (!jeval(c, n->a, &obj)) return false;
        return eval_slice(c, n, obj, out);
    }
    case N_CALL: return eval_call(c, n, out);
    case N_FILTER: {
        jv v, buf[8];
        jargs a;
        if (!jeval(c, n->a, &v) || !jeval_args(c, n, &a, buf, 8, 0)) return false;
        return jfilter_apply(c, n, n->op, v, &a, out);
    }
    case N_TEST: {
        jv v, buf[8];
        jargs a;
        bool r;
        if (!jeval(c, n->a, &v) || !jeval_args(c, n, &a, buf, 8, 0)) return false;
        if (!jtest_apply(c, n, n->op, v, &a, &r)) return false;
        *out = jv_bool(r);
        return true;
    }
    case N_UNARY: {
        jv v;
        if (!jeval(c, n->a, &v)) return false;
        if (n->op == OP_NOT) {
            *out = jv_bool(!jv_truthy(v));
            return true;
        }
        if (v.type == JV_UNDEF) return jeval_undefined(c, n, v);
        if (v.type == JV_FLOAT)
            *out = jv_float(n->op == OP_NEG ? -v.u.f : v.u.f);
        else if (jv_is_intlike(v)) {
            if (n->op == OP_NEG && jv_num_i(v) == INT64_MIN)
                return jctx_fail(c, n, HEARTH_ERR_UNSUPPORTED, "integer overflow");
            *out = jv_int(n->op == OP_NEG ? -jv_num_i(v) : jv_num_i(v));
        } else
            return jctx_fail(c, n, HEARTH_ERR_FORMAT, "bad operand type for unary %s: '%s'",
                             jlex_op_text(n->op), jv_type_name(v));
        return true;
    }
    case N_BINOP: {
        jv l, r;
        if (!jeval(c, n->a, &l)) return false;
        if (n->op == OP_AND) {
            if (!jv_truthy(l)) {
                *out = l;
                return true;
            }
            return jeval(c, n->b, out);
        }
        if (n->op == OP_OR) {
            if (jv_truthy(l)) {
                *out = l;
                return true;
            }
            return jeval(c, n->b, out);
        }
        if (!jeval(c, n->b, &r)) return false;
        if (n->op == OP_TILDE) {
            jsbuf b = {0};
            if (!jv_write_str(c, n, &b, l, 0) || !jv_write_str(c, n, &b, r, 0))
                return c->failed ? false : jctx_oom(c, n);
            if (!jctx_charge(c, n, b.n)) return false;
            *out = jsb_val(&b);
            return true;
        }
        return jop_arith(c, n, n->op, l, r, out);
    }
    case N_COMPARE: {
        jv l, r;
        if (!jeval(c, n->a, &l)) return false;
        bool res = true;
        for (int i = 0; i < n->n_items && res; i++) {
            if (!jeval(c, n->items[i], &r)) return false;
            if (!jop_compare(c, n, n->ops[i], l, r, &res)) return false;
            l = r;
        }
        *out = jv_bool(res);
        return true;
    }
    case N_CONDEXPR: {
        jv cond;
        if (!jeval(c, n->a, &cond)) return false;
        if (jv_truthy(cond)) return jeval(c, n->b, out);
        if (n->c) return jeval(c, n->c, out);
        *out = jv_undef();
        return true;
    }
    default: break;
    }
    return jctx_fail(c, n, HEARTH_ERR_FORMAT, "internal error: statement used as expression");
}

bool jeval(jinja_ctx *c, const node *n, jv *out) {
    if (c->failed) return false;
    if (c->depth >= c->lim.max_depth)
        return jctx_fail(c, n, HEARTH_ERR_FORMAT, "template evaluation nested deeper than %d levels",
                         c->lim.max_depth);
    if (!jctx_charge(c, n, 0)) return false;
    c->depth++;
    bool ok = eval_inner(c, n, out);
    c->depth--;
    return ok;
}

/* ---------------------------------------------------------------- statements */

static bool emit(jinja_ctx *c, const node *at, const char *p, size_t n) {
    if (!n) return true;
    if (!jctx_charge(c, at, n)) return false;
    if (c->capture) {
        if (n > c->lim.max_output - c->capture->n || c->capture->n > c->lim.max_output)
            return jctx_fail(c, at, HEARTH_ERR_CONTEXT, "rendered text exceeds %zu bytes", c->lim.max_output);
        return jsb_put(c, c->capture, p, n) ? true : jctx_oom(c, at);
    }
    if (n > c->lim.max_output - c->out_n)
        return jctx_fail(c, at, HEARTH_ERR_CONTEXT, "rendered text exceeds %zu bytes", c->lim.max_output);
    if (!hearth_grow((void **)&c->out, &c->out_cap, c->out_n + n + 1, 1))
        return jctx_fail(c, at, HEARTH_ERR_NOMEM, "out of memory");
    memcpy(c->out + c->out_n, p, n);
    c->out_n += n;
    return true;
}

static bool assign_targets(jinja_ctx *c, const node *at, const node *n, jv v) {
    if (n->op == SET_NAME) return jframe_set(c, c->fr, n->names[0], n->nlens[0], v) ? true : jctx_oom(c, at);
    if (n->op == SET_ATTR) {
        jv ns = lookup(c, n->name, n->nlen);
        if (ns.type != JV_DICT || !ns.u.dict->ns)
            return jctx_fail(c, at, HEARTH_ERR_FORMAT, "cannot assign attribute on non-namespace object");
        return jv_dict_put(c, ns.u.dict, jv_strview(n->names[0], n->nlens[0]), v) ? true : jctx_oom(c, at);
    }
    /* tuple unpacking */
    const jv_list *items;
    if (v.type == JV_LIST)
        items = v.u.list;
    else if (v.type == JV_STR || (v.type == JV_DICT && !v.u.dict->ns)) {
        if (!jeval_iterate(c, at, v, &items)) return false;
    } else
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "cannot unpack non-iterable %s object", jv_type_name(v));
    if (items->n != (size_t)n->n_names)
        return jctx_fail(c, at, HEARTH_ERR_FORMAT, "%s values to unpack (expected %d, got %zu)",
                         items->n > (size_t)n->n_names ? "too many" : "not enough", n->n_names, items->n);
    for (int i = 0; i < n->n_names; i++)
        if (!jframe_set(c, c->fr, n->names[i], n->nlens[i], items->items[i])) return jctx_oom(c, at);
    return true;
}

static exec_status exec_for(jinja_ctx *c, const node *n) {
    jv it;
    if (!jeval(c, n->a, &it)) return EX_ERR;
    const jv_list *items;
    if (!jeval_iterate(c, n->a, it, &items)) return EX_ERR;
    frame f = {.parent = c->fr};
    frame *saved = c->fr;
    if (n->b) { /* {% for x in xs if cond %}: filter first, so loop.* count only kept items */
        jv_list *kept = jv_list_alloc(c, 0);
        if (!kept) return jctx_oom(c, n), EX_ERR;
        c->fr = &f;
        for (size_t i = 0; i < items->n; i++) {
            f.n = 0;
            jv cond;
            if (!jctx_charge(c, n, 0)) {
                c->fr = saved;
                return EX_ERR;
            }
            if (!assign_targets(c, n, n, items->items[i]) || !jeval(c, n->b, &cond)) {
                c->fr = saved;
                return EX_ERR;
            }
            if (jv_truthy(cond) && !jv_list_push(c, kept, items->items[i])) {
                c->fr = saved;
                return jctx_oom(c, n), EX_ERR;
            }
        }
        c->fr = saved;
        items = kept;
    }
    jloop *lp = jctx_calloc(c, sizeof *lp);
    if (!lp) return jctx_oom(c, n), EX_ERR;
    lp->items = items;
    jv loopv = {.type = JV_LOOP, .u.ptr = lp};
    exec_status st = EX_OK;
    c->fr = &f;
    for (size_t i = 0; i < items->n; i++) {
        if (!jctx_charge(c, n, 0)) {
            st = EX_ERR;
            break;
        }
        f.n = 0; /* a fresh scope per iteration, as in Jinja2 */
        lp->index0 = (int64_t)i;
        if (!assign_targets(c, n, n, items->items[i]) || !jframe_set(c, &f, "loop", 4, loopv)) {
            if (!c->failed) jctx_oom(c, n);
            st = EX_ERR;
            break;
        }
        st = jexec_body(c, n->items, n->n_items);
        if (st == EX_ERR || st == EX_BREAK) break;
        st = EX_OK;
    }
    c->fr = saved;
    if (st == EX_ERR) return EX_ERR;
    if (items->n == 0 && n->n_items2) return jexec_body(c, n->items2, n->n_items2);
    return EX_OK;
}

/* Run a body with its output captured into a string. */
static bool capture_body(jinja_ctx *c, node *const *body, int nb, jv *out) {
    jsbuf cap = {0}, *saved = c->capture;
    c->capture = &cap;
    exec_status st = jexec_body(c, body, nb);
    c->capture = saved;
    if (st == EX_ERR) return false;
    *out = jsb_val(&cap);
    return true;
}

static exec_status exec_stmt(jinja_ctx *c, const node *n) {
    switch (n->kind) {
    case S_TEXT: return emit(c, n, n->name, n->nlen) ? EX_OK : EX_ERR;
    case S_OUTPUT: {
        jv v;
        if (!jeval(c, n->a, &v)) return EX_ERR;
        if (v.type == JV_STR) return emit(c, n, v.u.s.p, v.u.s.n) ? EX_OK : EX_ERR;
        jsbuf b = {0};
        if (!jv_write_str(c, n, &b, v, 0)) return c->failed ? EX_ERR : (jctx_oom(c, n), EX_ERR);
        return emit(c, n, b.p, b.n) ? EX_OK : EX_ERR;
    }
    case S_IF: {
        jv cond;
        if (!jeval(c, n->a, &cond)) return EX_ERR;
        if (jv_truthy(cond)) return jexec_body(c, n->items, n->n_items);
        return jexec_body(c, n->items2, n->n_items2);
    }
    case S_FOR: return exec_for(c, n);
    case S_SET: {
        jv v;
        if (!jeval(c, n->a, &v)) return EX_ERR;
        return assign_targets(c, n, n, v) ? EX_OK : EX_ERR;
    }
    case S_SET_BLOCK:
    case S_FILTER_BLOCK: {
        jv v;
        if (!capture_body(c, n->items, n->n_items, &v)) return EX_ERR;
        jv saved = c->slot;
        c->slot = v;
        bool ok = jeval(c, n->b, &v);
        c->slot = saved;
        if (!ok) return EX_ERR;
        if (n->kind == S_FILTER_BLOCK) {
            jv s;
            if (!jv_to_str(c, n, v, &s)) return EX_ERR;
            return emit(c, n, s.u.s.p, s.u.s.n) ? EX_OK : EX_ERR;
        }
        return assign_targets(c, n, n, v) ? EX_OK : EX_ERR;
    }
    case S_MACRO: {
        jv m = {.type = JV_MACRO, .u.ptr = n};
        return jframe_set(c, c->fr, n->name, n->nlen, m) ? EX_OK : (jctx_oom(c, n), EX_ERR);
    }
    case S_BREAK: return EX_BREAK;
    case S_CONTINUE: return EX_CONTINUE;
    case S_BODY: return jexec_body(c, n->items, n->n_items);
    default: break;
    }
    jctx_fail(c, n, HEARTH_ERR_FORMAT, "internal error: expression used as statement");
    return EX_ERR;
}

exec_status jexec_body(jinja_ctx *c, node *const *body, int n) {
    if (c->failed) return EX_ERR;
    if (c->depth >= c->lim.max_depth) {
        jctx_fail(c, n ? body[0] : NULL, HEARTH_ERR_FORMAT,
                  "template evaluation nested deeper than %d levels", c->lim.max_depth);
        return EX_ERR;
    }
    c->depth++;
    exec_status st = EX_OK;
    for (int i = 0; i < n; i++) {
        if (!jctx_charge(c, body[i], 0)) {
            st = EX_ERR;
            break;
        }
        st = exec_stmt(c, body[i]);
        if (st != EX_OK) break;
    }
    c->depth--;
    return st;
}

/* ================================================================ public API */
