/*
 * tool_calls.c - the streaming splitter of generated chat text into content,
 * reasoning and tool calls (see tool_calls.h for the syntaxes and invariants).
 *
 * Owner: chat templates.
 * How: `pend` holds text not yet given out. In CONTENT mode the earliest
 * marker (<think>, a tool-call opener) ends the content before it; a tail
 * that could still grow into a marker stays in `pend`. REASONING runs to
 * </think>. A call block (CALL) runs to </tool_call>; a python_tag, Mistral
 * or bare-JSON call (TAIL) runs to the end of the generation, because those
 * syntaxes have no closing marker of their own.
 */
#include "runtime/template/tool_calls.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

typedef enum { M_CONTENT, M_REASONING, M_CALL, M_TAIL } out_mode;

struct hearth_out_parser {
    hearth_out_options opt;
    out_mode mode;
    strbuf pend;      /* text not yet given out */
    strbuf block;     /* the call block being collected (markers excluded) */
    const char *open; /* the marker that opened the block (for malformed output) */
    bool any_content; /* non-whitespace content given out */
    bool after_think; /* skip the whitespace that follows </think> */
    bool after_call;  /* hold whitespace after a call */
    int n_calls, n_malformed;
    bool oom;
};

static const char THINK_OPEN[] = "<think>", THINK_CLOSE[] = "</think>";
static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char PYTAG[] = "<|python_tag|>", MISTRAL_OPEN[] = "[TOOL_CALLS]";

/* ---------------------------------------------------------------- template inspection */

hearth_tool_syntax hearth_tool_syntax_for_template(const char *src) {
    if (!src) return HEARTH_TOOLS_GENERIC;
    if (strstr(src, HERMES_OPEN)) return HEARTH_TOOLS_HERMES;
    if (strstr(src, MISTRAL_OPEN)) return HEARTH_TOOLS_MISTRAL;
    if (strstr(src, PYTAG) || (strstr(src, "<|start_header_id|>") && strstr(src, "parameters")))
        return HEARTH_TOOLS_LLAMA3;
    return HEARTH_TOOLS_GENERIC;
}

const char *hearth_tool_syntax_name(hearth_tool_syntax s) {
    switch (s) {
    case HEARTH_TOOLS_HERMES: return "hermes";
    case HEARTH_TOOLS_LLAMA3: return "llama3";
    case HEARTH_TOOLS_MISTRAL: return "mistral";
    default: return "generic";
    }
}

bool hearth_template_renders_tools(const char *src) {
    return src && strstr(src, "tools") != NULL;
}

bool hearth_template_has_thinking(const char *src) {
    return src && (strstr(src, THINK_OPEN) || strstr(src, "enable_thinking"));
}

/* ---------------------------------------------------------------- events */

static void emit_text(hearth_out_parser *p, hearth_out_kind k, const char *s, size_t n, hearth_out_fn fn,
                      void *user) {
    if (k == HEARTH_OUT_CONTENT && p->after_think) { /* the "\n\n" after </think> */
        while (n && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
            s++, n--;
        if (n) p->after_think = false;
    }
    if (!n) return;
    if (k == HEARTH_OUT_CONTENT)
        for (size_t i = 0; i < n; i++)
            if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') p->any_content = true;
    hearth_out_event ev = {.kind = k, .text = s, .len = n};
    fn(user, &ev);
}

/* One {name, arguments|parameters} object -> a call event; false when it is not one. */
static bool emit_call_obj(hearth_out_parser *p, const cJSON *o, const char *fallback_name, hearth_out_fn fn,
                          void *user) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const char *nm = cJSON_IsString(name) ? name->valuestring : fallback_name;
    if (!cJSON_IsObject(o) && !fallback_name) return false;
    if (!nm || !nm[0]) return false;
    const cJSON *args = fallback_name ? o : cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args && !fallback_name) args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    cJSON *parsed = NULL;
    if (cJSON_IsString(args)) { /* arguments given as JSON text */
        parsed = cJSON_Parse(args->valuestring);
        args = parsed;
    }
    if (!args) args = parsed = cJSON_CreateObject(); /* a call without arguments */
    if (!cJSON_IsObject(args)) {
        cJSON_Delete(parsed);
        return false;
    }
    char *a = cJSON_PrintUnformatted(args);
    char *n = strdup(nm);
    cJSON_Delete(parsed);
    if (!a || !n) {
        free(a);
        free(n);
        p->oom = true;
        return true;
    }
    hearth_out_event ev = {.kind = HEARTH_OUT_TOOL_CALL, .index = p->n_calls++, .name = n, .arguments = a};
    fn(user, &ev);
    free(a);
    free(n);
    p->after_call = true;
    return true;
}

/* Validate before emitting anything, so a half-valid list is all content. */
static bool is_call_obj(const cJSON *o) {
    if (!cJSON_IsObject(o)) return false;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0]) return false;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!a) a = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (!a || cJSON_IsObject(a)) return true;
    if (!cJSON_IsString(a)) return false;
    cJSON *j = cJSON_Parse(a->valuestring);
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

/* JSON text holding one call, a list of calls, or ';'-separated calls. */
static bool parse_calls_json(hearth_out_parser *p, const char *s, hearth_out_fn fn, void *user) {
    cJSON *j = cJSON_ParseWithOpts(s, NULL, true);
    if (!j) { /* "{...}; {...}" (Llama 3.x parallel calls) */
        const char *end = NULL;
        cJSON *first = cJSON_ParseWithOpts(s, &end, false);
        if (!first || !end) {
            cJSON_Delete(first);
            return false;
        }
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, first);
        while (end && *end) {
            while (*end == ' ' || *end == '\n' || *end == ';' || *end == '\t' || *end == '\r')
                end++;
            if (!*end) break;
            cJSON *next = cJSON_ParseWithOpts(end, &end, false);
            if (!next) {
                cJSON_Delete(arr);
                return false;
            }
            cJSON_AddItemToArray(arr, next);
        }
        j = arr;
    }
    bool ok = true;
    if (cJSON_IsArray(j)) {
        const cJSON *it;
        ok = cJSON_GetArraySize(j) > 0;
        cJSON_ArrayForEach(it, j) ok = ok && is_call_obj(it);
        if (ok) cJSON_ArrayForEach(it, j) emit_call_obj(p, it, NULL, fn, user);
    } else {
        ok = is_call_obj(j) && emit_call_obj(p, j, NULL, fn, user);
    }
    cJSON_Delete(j);
    return ok;
}

/* Mistral v3+: name[ARGS]{...} (several may follow each other after [TOOL_CALLS]). */
static bool parse_mistral_named(hearth_out_parser *p, const char *s, hearth_out_fn fn, void *user) {
    const char *a = strstr(s, "[ARGS]");
    if (!a || a == s) return false;
    char name[256];
    size_t nl = (size_t)(a - s);
    while (nl && (s[nl - 1] == ' ' || s[nl - 1] == '\n'))
        nl--;
    if (nl == 0 || nl >= sizeof name) return false;
    memcpy(name, s, nl);
    name[nl] = '\0';
    cJSON *args = cJSON_Parse(a + 6);
    bool ok = cJSON_IsObject(args) && emit_call_obj(p, args, name, fn, user);
    cJSON_Delete(args);
    return ok;
}

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    return s;
}

/* A finished block: calls, or (malformed) its whole text as content. */
static void close_block(hearth_out_parser *p, const char *close, hearth_out_fn fn, void *user) {
    const char *body = p->block.p ? p->block.p : "";
    const char *s = skip_ws(body);
    bool ok;
    if (p->open == MISTRAL_OPEN && *s != '[' && *s != '{')
        ok = parse_mistral_named(p, s, fn, user);
    else
        ok = *s && parse_calls_json(p, s, fn, user);
    if (!ok) {
        p->n_malformed++;
        bool saved = p->after_think;
        p->after_think = false;
        if (p->open) emit_text(p, HEARTH_OUT_CONTENT, p->open, strlen(p->open), fn, user);
        emit_text(p, HEARTH_OUT_CONTENT, body, p->block.n, fn, user);
        if (close) emit_text(p, HEARTH_OUT_CONTENT, close, strlen(close), fn, user);
        p->after_think = saved && !p->any_content;
        p->after_call = false;
    }
    strbuf_clear(&p->block);
    p->open = NULL;
    p->mode = M_CONTENT;
}

/* ---------------------------------------------------------------- scanning */

/* The earliest marker of the mode in pend[0..n): its offset and text; else
 * *hold = the length of the longest tail that is a proper prefix of one. */
static const char *find_marker(const hearth_out_parser *p, const char *s, size_t n, size_t *at,
                               size_t *hold) {
    const char *marks[4];
    int k = 0;
    if (p->mode == M_REASONING)
        marks[k++] = THINK_CLOSE;
    else if (p->mode == M_CALL)
        marks[k++] = HERMES_CLOSE;
    else {
        if (p->opt.reasoning) marks[k++] = THINK_OPEN;
        if (p->opt.tools) {
            hearth_tool_syntax y = p->opt.syntax;
            if (y == HEARTH_TOOLS_HERMES || y == HEARTH_TOOLS_GENERIC) marks[k++] = HERMES_OPEN;
            if (y == HEARTH_TOOLS_LLAMA3 || y == HEARTH_TOOLS_GENERIC) marks[k++] = PYTAG;
            if (y == HEARTH_TOOLS_MISTRAL || y == HEARTH_TOOLS_GENERIC) marks[k++] = MISTRAL_OPEN;
        }
    }
    const char *best = NULL;
    size_t best_at = n;
    *hold = 0;
    for (int i = 0; i < k; i++) {
        size_t ml = strlen(marks[i]);
        for (size_t j = 0; j + ml <= n && j < best_at; j++)
            if (!memcmp(s + j, marks[i], ml)) {
                best = marks[i];
                best_at = j;
                break;
            }
        for (size_t t = ml - 1; t > 0; t--) /* tail that may grow into the marker */
            if (t <= n && t > *hold && !memcmp(s + n - t, marks[i], t)) {
                *hold = t;
                break;
            }
    }
    *at = best_at;
    return best;
}

/* Whether the output so far starts a bare JSON call (LLAMA3 / GENERIC). */
static bool starts_bare_json(const hearth_out_parser *p, const char *s, size_t n) {
    if (!p->opt.tools || p->any_content || p->n_calls ||
        (p->opt.syntax != HEARTH_TOOLS_LLAMA3 && p->opt.syntax != HEARTH_TOOLS_GENERIC))
        return false;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i < n && (s[i] == '{' || s[i] == '[');
}

static void drop_pend(hearth_out_parser *p, size_t k) {
    memmove(p->pend.p, p->pend.p + k, p->pend.n - k);
    p->pend.n -= k;
    p->pend.p[p->pend.n] = '\0';
}

/* Give out whatever is certain; leaves a possible marker prefix in pend. */
static void scan(hearth_out_parser *p, hearth_out_fn fn, void *user) {
    while (p->pend.n && !p->oom) {
        const char *s = p->pend.p;
        size_t n = p->pend.n;
        if (p->mode == M_TAIL) {
            strbuf_add(&p->block, s, n);
            drop_pend(p, n);
            return;
        }
        if (p->mode == M_CONTENT && starts_bare_json(p, s, n)) {
            p->mode = M_TAIL;
            p->open = NULL;
            continue;
        }
        if (p->mode == M_CONTENT && p->opt.tools && !p->any_content && !p->n_calls &&
            (p->opt.syntax == HEARTH_TOOLS_LLAMA3 || p->opt.syntax == HEARTH_TOOLS_GENERIC) &&
            *skip_ws(s) == '\0')
            return; /* leading whitespace: a bare JSON call may follow */
        size_t at, hold;
        const char *m = find_marker(p, s, n, &at, &hold);
        size_t upto = m ? at : n - hold;
        if (p->mode == M_CONTENT && p->after_call) { /* whitespace after a call waits */
            size_t i = 0;
            while (i < upto && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
                i++;
            if (i == upto && !m) return;
            if (i < upto)
                p->after_call = false;
            else if (i > 0) {
                drop_pend(p, i);
                continue;
            }
        }
        if (p->mode == M_CALL)
            strbuf_add(&p->block, s, upto);
        else
            emit_text(p, p->mode == M_REASONING ? HEARTH_OUT_REASONING : HEARTH_OUT_CONTENT, s, upto, fn,
                      user);
        if (!m) {
            drop_pend(p, upto);
            return;
        }
        drop_pend(p, at + strlen(m));
        if (m == THINK_OPEN)
            p->mode = M_REASONING;
        else if (m == THINK_CLOSE) {
            p->mode = M_CONTENT;
            p->after_think = true;
        } else if (m == HERMES_CLOSE)
            close_block(p, HERMES_CLOSE, fn, user);
        else {
            p->open = m;
            p->mode = m == HERMES_OPEN ? M_CALL : M_TAIL;
        }
    }
}

/* ---------------------------------------------------------------- API */

hearth_out_parser *hearth_out_parser_new(const hearth_out_options *opt) {
    hearth_out_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->opt = *opt;
    p->mode = opt->start_in_reasoning && opt->reasoning ? M_REASONING : M_CONTENT;
    return p;
}

void hearth_out_parser_free(hearth_out_parser *p) {
    if (!p) return;
    strbuf_free(&p->pend);
    strbuf_free(&p->block);
    free(p);
}

bool hearth_out_parser_feed(hearth_out_parser *p, const char *text, size_t n, hearth_out_fn fn, void *user,
                            hearth_error *err) {
    strbuf_add(&p->pend, text, n);
    if (p->pend.oom) p->oom = true;
    if (!p->oom) scan(p, fn, user);
    if (p->oom || p->block.oom) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "tool-call parser: out of memory");
        return false;
    }
    return true;
}

bool hearth_out_parser_finish(hearth_out_parser *p, hearth_out_fn fn, void *user, hearth_error *err) {
    if (p->oom) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "tool-call parser: out of memory");
        return false;
    }
    /* what was held back as a possible marker prefix is plain text now */
    if (p->mode == M_CALL || p->mode == M_TAIL) {
        strbuf_add(&p->block, p->pend.p ? p->pend.p : "", p->pend.n);
        close_block(p, NULL, fn, user);
    } else if (p->pend.n) {
        const char *s = p->after_call ? skip_ws(p->pend.p) : p->pend.p; /* whitespace after a call goes */
        emit_text(p, p->mode == M_REASONING ? HEARTH_OUT_REASONING : HEARTH_OUT_CONTENT, s,
                  p->pend.n - (size_t)(s - p->pend.p), fn, user);
    }
    strbuf_clear(&p->pend);
    return !p->oom;
}

int hearth_out_parser_n_calls(const hearth_out_parser *p) {
    return p->n_calls;
}
int hearth_out_parser_n_malformed(const hearth_out_parser *p) {
    return p->n_malformed;
}
