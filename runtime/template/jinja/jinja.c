/*
 * jinja.c - the public API of jinja.h: compile (normalize newlines, lex,
 * parse), render contexts and the values a caller builds, and render.
 * The interpreter itself is split by idea across this folder; see
 * jinja_impl.h for the parts and the invariants they share.
 */
#include "jinja_impl.h"

#include <stdio.h>
#include <stdlib.h>

jinja_template *jinja_parse(const char *src, size_t len, const char *name, hearth_error *err) {
    if (!name) name = "template";
    if (!src) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s: no template source", name);
        return NULL;
    }
    if (len > TEMPLATE_MAX_SOURCE) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: template is %zu bytes; the limit is %u", name, len,
                         TEMPLATE_MAX_SOURCE);
        return NULL;
    }
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    t->ar.limit = TEMPLATE_MAX_MEMORY;
    snprintf(t->name, sizeof t->name, "%s", name);
    /* newlines: \r\n and \r become \n; one trailing newline is dropped
     * (Jinja2's keep_trailing_newline=False) */
    char *s = jarena_alloc(&t->ar, len + 1);
    if (!s) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        jinja_template_free(t);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = '\0';

    token *toks = NULL;
    if (!jlex_tokens(s, n, &t->ar, t->name, err, &toks)) {
        jinja_template_free(t);
        return NULL;
    }
    bool ok = jparse_template(toks, &t->ar, t->name, err, &t->body, &t->n_body);
    free(toks);
    if (!ok) {
        jinja_template_free(t);
        return NULL;
    }
    return t;
}

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    jarena_free(&t->ar);
    free(t);
}

jinja_ctx *jinja_ctx_new(const jinja_limits *lim) {
    jinja_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->lim.max_output = lim && lim->max_output ? lim->max_output : DEFAULT_MAX_OUTPUT;
    c->lim.max_memory = lim && lim->max_memory ? lim->max_memory : DEFAULT_MAX_MEMORY;
    c->lim.max_steps = lim && lim->max_steps ? lim->max_steps : DEFAULT_MAX_STEPS;
    c->lim.max_depth = lim && lim->max_depth > 0 ? lim->max_depth : DEFAULT_MAX_DEPTH;
    c->ar.limit = c->lim.max_memory;
    return c;
}

void jinja_ctx_free(jinja_ctx *c) {
    if (!c) return;
    jarena_free(&c->ar);
    free(c->out);
    free(c);
}

jv jinja_str(jinja_ctx *c, const char *s, size_t n) {
    bool ok = true;
    jv v = jv_str_copy(c, s ? s : "", s ? n : 0, &ok);
    return ok ? v : jv_undef();
}

jv jinja_cstr(jinja_ctx *c, const char *s) {
    return s ? jinja_str(c, s, strlen(s)) : jv_none();
}

jv jinja_list_new(jinja_ctx *c) {
    jv_list *l = jv_list_alloc(c, 0);
    return l ? jv_list_val(l) : jv_undef();
}

bool jinja_list_push(jinja_ctx *c, jv list, jv item) {
    return list.type == JV_LIST && jv_list_push(c, list.u.list, item);
}

jv jinja_dict_new(jinja_ctx *c) {
    jv_dict *d = jv_dict_alloc(c);
    return d ? jv_dict_val(d) : jv_undef();
}

bool jinja_dict_set(jinja_ctx *c, jv dict, const char *key, jv val) {
    if (dict.type != JV_DICT || !key) return false;
    jv k = jinja_str(c, key, strlen(key));
    return k.type == JV_STR && jv_dict_put(c, dict.u.dict, k, val);
}

bool jinja_ctx_set(jinja_ctx *c, const char *name, jv val) {
    if (!name) return false;
    jv k = jinja_str(c, name, strlen(name));
    return k.type == JV_STR && jframe_set(c, &c->globals, k.u.s.p, k.u.s.n, val);
}

bool jinja_ctx_raised(const jinja_ctx *c) {
    return c && c->raised;
}

char *jinja_render(const jinja_template *t, jinja_ctx *c, size_t *out_len, hearth_error *err) {
    if (!t || !c) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "jinja_render: no template or context");
        return NULL;
    }
    if (c->used) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s: a render context can be used once", t->name);
        return NULL;
    }
    c->used = true;
    c->t = t;
    c->err = err;
    frame root = {.parent = &c->globals};
    c->root = &root;
    c->fr = &root;
    exec_status st = jexec_body(c, t->body, t->n_body);
    c->root = c->fr = NULL;
    if (st == EX_ERR || c->failed) {
        if (!c->failed) hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: render failed", t->name);
        return NULL;
    }
    char *out = malloc(c->out_n + 1);
    if (!out) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", t->name);
        return NULL;
    }
    if (c->out_n) memcpy(out, c->out, c->out_n);
    out[c->out_n] = '\0';
    if (out_len) *out_len = c->out_n;
    return out;
}
