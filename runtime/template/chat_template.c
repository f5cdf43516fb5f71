/*
 * chat_template.c - conversations -> prompt text through the model's Jinja
 * chat template (see chat_template.h for the contract and the fallback rule).
 *
 * Owner: chat templates. Everything Jinja lives in jinja/; this file builds
 * the variables a template sees (messages, tools, add_generation_prompt,
 * bos/eos and configured extras), reads the template from GGUF metadata and
 * implements the fallbacks.
 *
 * Invariants: a hearth_chat_template is immutable while rendering (each
 * render has its own jinja_ctx), so renders may run concurrently. Nothing
 * here prints or exits.
 */
#include "chat_template.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/template/jinja/jinja.h"

#define TEMPLATE_NAME "chat template"

/* The fallback: ChatML as OpenHermes / Qwen / the KJV models write it. */
static const char CHATML_SOURCE[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] if message['content'] is string else "
    "'') "
    "+ '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

typedef struct cvar {
    char *name;
    char *value; /* NULL: None */
    bool json;   /* value is JSON text */
} cvar;

struct hearth_chat_template {
    jinja_template *tpl;
    char *source;
    const char *family;
    cvar *vars;
    size_t n_vars;
};

/* ---------------------------------------------------------------- setup */

static char *dup_str(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static const char *guess_family(const char *src) {
    static const struct {
        const char *marker, *name;
    } markers[] = {
        {"<|start_header_id|>", "llama3"},
        {"<start_of_turn>", "gemma"},
        {"<\xef\xbd\x9c"
         "User\xef\xbd\x9c>",
         "deepseek"}, /* <｜User｜> */
        {"### Instruction:", "deepseek-coder"},
        {"<|START_OF_TURN_TOKEN|>", "command-r"},
        {"<|start_of_role|>", "granite"},
        {"GPT4 Correct", "openchat"},
        {"<|im_start|>", "chatml"},
    };
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (strstr(src, markers[i].marker)) return markers[i].name;
    if (strstr(src, "[INST]")) return strstr(src, "<<SYS>>") ? "llama2" : "mistral";
    if (strstr(src, "<|user|>")) return strstr(src, "<|end|>") ? "phi3" : "zephyr";
    return "custom";
}

static hearth_chat_template *template_new(const char *source, size_t len, hearth_error *err) {
    hearth_chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->source = dup_str(source, len))) {
        free(t);
        hearth_error_set(err, HEARTH_ERR_NOMEM, TEMPLATE_NAME ": out of memory");
        return NULL;
    }
    t->tpl = jinja_parse(t->source, len, TEMPLATE_NAME, err);
    if (!t->tpl) {
        hearth_chat_template_free(t);
        return NULL;
    }
    t->family = guess_family(t->source);
    return t;
}

hearth_chat_template *hearth_chat_template_parse(const char *source, hearth_error *err) {
    if (!source) {
        hearth_error_set(err, HEARTH_ERR_INVALID, TEMPLATE_NAME ": no source");
        return NULL;
    }
    return template_new(source, strlen(source), err);
}

hearth_chat_template *hearth_chat_template_chatml(void) {
    hearth_chat_template *t = template_new(CHATML_SOURCE, sizeof CHATML_SOURCE - 1, NULL);
    if (t) t->family = "chatml";
    return t;
}

void hearth_chat_template_free(hearth_chat_template *t) {
    if (!t) return;
    jinja_template_free(t->tpl);
    for (size_t i = 0; i < t->n_vars; i++) {
        free(t->vars[i].name);
        free(t->vars[i].value);
    }
    free(t->vars);
    free(t->source);
    free(t);
}

static bool set_var(hearth_chat_template *t, const char *name, const char *value, bool json,
                    hearth_error *err) {
    if (!t || !name || !*name) {
        hearth_error_set(err, HEARTH_ERR_INVALID, TEMPLATE_NAME ": variable needs a name");
        return false;
    }
    if (json && value) {
        cJSON *probe = cJSON_Parse(value);
        if (!probe) {
            hearth_error_set(err, HEARTH_ERR_INVALID, TEMPLATE_NAME ": variable '%s': invalid JSON", name);
            return false;
        }
        cJSON_Delete(probe);
    }
    char *v = value ? dup_str(value, strlen(value)) : NULL;
    if (value && !v) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, TEMPLATE_NAME ": out of memory");
        return false;
    }
    for (size_t i = 0; i < t->n_vars; i++)
        if (strcmp(t->vars[i].name, name) == 0) {
            free(t->vars[i].value);
            t->vars[i].value = v;
            t->vars[i].json = json;
            return true;
        }
    cvar *nv = realloc(t->vars, (t->n_vars + 1) * sizeof *nv);
    char *n = dup_str(name, strlen(name));
    if (!nv || !n) {
        if (nv) t->vars = nv;
        free(n);
        free(v);
        hearth_error_set(err, HEARTH_ERR_NOMEM, TEMPLATE_NAME ": out of memory");
        return false;
    }
    t->vars = nv;
    t->vars[t->n_vars++] = (cvar){.name = n, .value = v, .json = json};
    return true;
}

bool hearth_chat_template_set_var(hearth_chat_template *t, const char *name, const char *value,
                                  hearth_error *err) {
    return set_var(t, name, value, false, err);
}

bool hearth_chat_template_set_json(hearth_chat_template *t, const char *name, const char *json,
                                   hearth_error *err) {
    if (!json) {
        hearth_error_set(err, HEARTH_ERR_INVALID, TEMPLATE_NAME ": variable '%s': no JSON",
                         name ? name : "?");
        return false;
    }
    return set_var(t, name, json, true, err);
}

static const char *get_var(const hearth_chat_template *t, const char *name) {
    for (size_t i = 0; t && i < t->n_vars; i++)
        if (strcmp(t->vars[i].name, name) == 0 && !t->vars[i].json)
            return t->vars[i].value ? t->vars[i].value : "";
    return "";
}

const char *hearth_chat_template_name(const hearth_chat_template *t) {
    return t ? t->family : "none";
}
const char *hearth_chat_template_source(const hearth_chat_template *t) {
    return t ? t->source : "";
}
const char *hearth_chat_template_bos(const hearth_chat_template *t) {
    return get_var(t, "bos_token");
}
const char *hearth_chat_template_eos(const hearth_chat_template *t) {
    return get_var(t, "eos_token");
}

/* ---------------------------------------------------------------- GGUF */

/* tokenizer.ggml.tokens[<id_key>] as a malloc'd string, or NULL. */
static char *special_token_text(const hearth_gguf *g, const char *id_key) {
    uint32_t id;
    if (!hearth_gguf_get_u32(g, id_key, &id)) return NULL;
    const gguf_kv *toks = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!toks || !toks->strs || id >= toks->arr_n) return NULL;
    hearth_str s = toks->strs[id];
    if (s.len > 4096) return NULL;
    return dup_str(s.ptr, (size_t)s.len);
}

static bool set_special_tokens(hearth_chat_template *t, const hearth_gguf *g, hearth_error *err) {
    static const struct {
        const char *key, *var;
    } specials[] = {
        {"tokenizer.ggml.bos_token_id", "bos_token"},
        {"tokenizer.ggml.eos_token_id", "eos_token"},
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        char *text = g ? special_token_text(g, specials[i].key) : NULL;
        bool ok = set_var(t, specials[i].var, text ? text : "", false, err);
        free(text);
        if (!ok) return false;
    }
    return true;
}

hearth_chat_template *hearth_chat_template_from_gguf(const hearth_gguf *g, hearth_error *err) {
    hearth_str src;
    if (!g || !hearth_gguf_get_str(g, "tokenizer.chat_template", &src)) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: no tokenizer.chat_template in the model",
                         g ? hearth_gguf_path(g) : "(no model)");
        return NULL;
    }
    hearth_chat_template *t = template_new(src.ptr, (size_t)src.len, err);
    if (!t) return NULL;
    if (!set_special_tokens(t, g, err)) {
        hearth_chat_template_free(t);
        return NULL;
    }
    return t;
}

/* Append s to the NUL-terminated buf (truncating). */
static void str_append(char *buf, size_t cap, const char *s) {
    size_t n = strlen(buf);
    while (*s && n + 1 < cap)
        buf[n++] = *s++;
    buf[n] = '\0';
}

hearth_chat_template *hearth_chat_template_for_model(const hearth_gguf *g, const char *override_source,
                                                     char *note, size_t note_cap) {
    hearth_error err = {0};
    char why[2 * HEARTH_ERROR_MSG_MAX] = "";
    if (note && note_cap) note[0] = '\0';
    hearth_chat_template *t = NULL;
    if (override_source && *override_source) {
        t = hearth_chat_template_parse(override_source, &err);
        if (t && !set_special_tokens(t, g, &err)) {
            hearth_chat_template_free(t);
            t = NULL;
        }
        if (t) return t;
        if (err.code == HEARTH_ERR_NOMEM) return NULL;
        str_append(why, sizeof why, "configured chat_template unusable (");
        str_append(why, sizeof why, err.msg);
        str_append(why, sizeof why, ")");
    }
    if (g) {
        hearth_error_clear(&err);
        t = hearth_chat_template_from_gguf(g, &err);
        if (t) {
            if (why[0] && note && note_cap) snprintf(note, note_cap, "%s; using the model's template", why);
            return t;
        }
        if (err.code == HEARTH_ERR_NOMEM) return NULL;
        if (why[0]) str_append(why, sizeof why, "; ");
        str_append(why, sizeof why, err.msg);
    } else if (!why[0]) {
        str_append(why, sizeof why, "no model metadata");
    }
    t = hearth_chat_template_chatml();
    if (!t) return NULL;
    if (!set_special_tokens(t, g, NULL)) {
        hearth_chat_template_free(t);
        return NULL;
    }
    if (note && note_cap) snprintf(note, note_cap, "%s; using ChatML", why);
    return t;
}

/* ---------------------------------------------------------------- values */

static jv json_to_jv(jinja_ctx *c, const cJSON *j) {
    if (!j) return jv_undef();
    if (cJSON_IsNull(j)) return jv_none();
    if (cJSON_IsBool(j)) return jv_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* range first: converting an out-of-range double to int64_t is undefined */
        if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d)
            return jv_int((int64_t)d);
        return jv_float(d);
    }
    if (cJSON_IsString(j)) return jinja_cstr(c, j->valuestring ? j->valuestring : "");
    if (cJSON_IsArray(j)) {
        jv l = jinja_list_new(c);
        for (const cJSON *e = j->child; e; e = e->next)
            jinja_list_push(c, l, json_to_jv(c, e));
        return l;
    }
    if (cJSON_IsObject(j)) {
        jv d = jinja_dict_new(c);
        for (const cJSON *e = j->child; e; e = e->next)
            if (e->string) jinja_dict_set(c, d, e->string, json_to_jv(c, e));
        return d;
    }
    return jv_undef();
}

static jv message_dict(jinja_ctx *c, const char *role, jv content) {
    jv d = jinja_dict_new(c);
    jinja_dict_set(c, d, "role", jinja_cstr(c, role ? role : ""));
    jinja_dict_set(c, d, "content", content);
    return d;
}

/* "<system>\n\n<user>" for the system-message polyfill. */
static jv merged_content(jinja_ctx *c, const char *sys, const char *user) {
    size_t a = strlen(sys), b = strlen(user);
    char *tmp = malloc(a + b + 3);
    if (!tmp) return jv_undef();
    memcpy(tmp, sys, a);
    memcpy(tmp + a, "\n\n", 2);
    memcpy(tmp + a + 2, user, b);
    jv v = jinja_str(c, tmp, a + b + 2);
    free(tmp);
    return v;
}

static const char *json_str_field(const cJSON *o, const char *key) {
    const cJSON *f = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* Whether the polyfill applies: system then user, both with text content. */
static bool can_merge_system(const hearth_chat_request *r, const cJSON *msgs) {
    if (msgs) {
        const cJSON *a = msgs->child, *b = a ? a->next : NULL;
        const char *ra = json_str_field(a, "role"), *rb = json_str_field(b, "role");
        return ra && rb && strcmp(ra, "system") == 0 && strcmp(rb, "user") == 0 &&
               json_str_field(a, "content") && json_str_field(b, "content");
    }
    return r->n_msgs >= 2 && r->msgs[0].role && r->msgs[1].role && strcmp(r->msgs[0].role, "system") == 0 &&
           strcmp(r->msgs[1].role, "user") == 0 && r->msgs[0].content && r->msgs[1].content;
}

static jv build_messages(jinja_ctx *c, const hearth_chat_request *r, const cJSON *msgs, bool merge_system) {
    jv list = jinja_list_new(c);
    if (msgs) {
        int i = 0;
        for (const cJSON *m = msgs->child; m; m = m->next, i++) {
            if (merge_system && i == 0) continue;
            jv d = json_to_jv(c, m);
            if (merge_system && i == 1)
                jinja_dict_set(
                    c, d, "content",
                    merged_content(c, json_str_field(msgs->child, "content"), json_str_field(m, "content")));
            jinja_list_push(c, list, d);
        }
        return list;
    }
    for (int i = merge_system ? 1 : 0; i < r->n_msgs; i++) {
        jv content = merge_system && i == 1 ? merged_content(c, r->msgs[0].content, r->msgs[1].content)
                                            : jinja_cstr(c, r->msgs[i].content);
        jinja_list_push(c, list, message_dict(c, r->msgs[i].role, content));
    }
    return list;
}

static char *render_once(const hearth_chat_template *t, const hearth_chat_request *r, const cJSON *msgs,
                         const cJSON *tools, bool merge_system, bool *raised, hearth_error *err) {
    *raised = false;
    jinja_limits lim = {.max_output = r->max_output, .max_steps = r->max_steps};
    jinja_ctx *c = jinja_ctx_new(&lim);
    if (!c) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, TEMPLATE_NAME ": out of memory");
        return NULL;
    }
    jinja_ctx_set(c, "bos_token", jinja_cstr(c, ""));
    jinja_ctx_set(c, "eos_token", jinja_cstr(c, ""));
    for (size_t i = 0; i < t->n_vars; i++) {
        const cvar *v = &t->vars[i];
        if (!v->value)
            jinja_ctx_set(c, v->name, jv_none());
        else if (!v->json)
            jinja_ctx_set(c, v->name, jinja_cstr(c, v->value));
        else {
            cJSON *j = cJSON_Parse(v->value);
            jinja_ctx_set(c, v->name, json_to_jv(c, j));
            cJSON_Delete(j);
        }
    }
    if (r->vars_json) { /* per-request variables (chat_template_kwargs) */
        cJSON *vj = cJSON_Parse(r->vars_json);
        const cJSON *it;
        if (cJSON_IsObject(vj)) cJSON_ArrayForEach(it, vj) {
                if (it->string) jinja_ctx_set(c, it->string, json_to_jv(c, it));
            }
        cJSON_Delete(vj);
    }
    jinja_ctx_set(c, "messages", build_messages(c, r, msgs, merge_system));
    jinja_ctx_set(c, "tools", tools ? json_to_jv(c, tools) : jv_none());
    jinja_ctx_set(c, "add_generation_prompt", jv_bool(r->add_generation_prompt));
    char *out = jinja_render(t->tpl, c, NULL, err);
    *raised = jinja_ctx_raised(c);
    jinja_ctx_free(c);
    return out;
}

static void set_note(const hearth_chat_request *r, const char *fmt, const char *detail) {
    if (r->note && r->note_cap) snprintf(r->note, r->note_cap, fmt, detail);
}

char *hearth_chat_template_render_ex(const hearth_chat_template *t, const hearth_chat_request *r,
                                     hearth_error *err) {
    if (!t || !r || (!r->messages_json && r->n_msgs > 0 && !r->msgs) || r->n_msgs < 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID, TEMPLATE_NAME ": bad render request");
        return NULL;
    }
    if (r->note && r->note_cap) r->note[0] = '\0';
    cJSON *msgs = NULL, *tools = NULL;
    if (r->messages_json) {
        msgs = cJSON_Parse(r->messages_json);
        if (!cJSON_IsArray(msgs)) {
            cJSON_Delete(msgs);
            hearth_error_set(err, HEARTH_ERR_INVALID, "messages: expected a JSON array of message objects");
            return NULL;
        }
    }
    if (r->tools_json) {
        tools = cJSON_Parse(r->tools_json);
        if (!cJSON_IsArray(tools)) {
            cJSON_Delete(msgs);
            cJSON_Delete(tools);
            hearth_error_set(err, HEARTH_ERR_INVALID, "tools: expected a JSON array of tool definitions");
            return NULL;
        }
    }
    bool raised;
    hearth_error first = {0};
    char *out = render_once(t, r, msgs, tools, false, &raised, &first);
    if (!out && raised && can_merge_system(r, msgs)) {
        /* the template refuses a system message: merge it into the first user turn */
        hearth_error second = {0};
        out = render_once(t, r, msgs, tools, true, &raised, &second);
        if (out)
            set_note(r, "%s",
                     "the chat template does not accept a system message; merged it into the first "
                     "user message");
        else
            first = second;
    }
    if (!out && !raised && r->fallback_chatml && first.code != HEARTH_ERR_NOMEM &&
        first.code != HEARTH_ERR_CONTEXT) {
        hearth_chat_template *chatml = hearth_chat_template_chatml();
        if (chatml) {
            bool ok = set_var(chatml, "bos_token", hearth_chat_template_bos(t), false, NULL) &&
                      set_var(chatml, "eos_token", hearth_chat_template_eos(t), false, NULL);
            hearth_error third = {0};
            if (ok) out = render_once(chatml, r, msgs, tools, false, &raised, &third);
            hearth_chat_template_free(chatml);
            if (out) set_note(r, "chat template failed (%s); used ChatML", first.msg);
        }
    }
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    if (!out && err) *err = first;
    return out;
}

char *hearth_chat_template_render(const hearth_chat_template *t, const hearth_chat_msg *msgs, int n,
                                  bool add_generation_prompt, hearth_error *err) {
    hearth_chat_request r = {.msgs = msgs, .n_msgs = n, .add_generation_prompt = add_generation_prompt};
    return hearth_chat_template_render_ex(t, &r, err);
}
