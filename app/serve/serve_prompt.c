/*
 * serve_prompt.c - from what clients send to token ids: chat messages
 * (OpenAI and Ollama shapes), the chat template of the request's model, and
 * tokenization. Which model a name means: serve_models.c.
 *
 * Owner: the serve subsystem. Chat messages are rendered with the model's
 * own template through runtime/template/chat_template.h (ChatML as the fallback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/template/chat_template.h"
#include "serve.h"

void serve_messages_free(serve_msg *m, int n) {
    for (int i = 0; i < n; i++)
        free(m[i].content);
    free(m);
}

/* "content": a string, null, or an array of parts {type:"text", text}
 * (OpenAI). Other part types (images) are refused: the model reads text. */
static char *content_text(const cJSON *c, int idx, sj_err *e) {
    strbuf b = {0};
    if (!c || cJSON_IsNull(c)) return strdup("");
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    if (!cJSON_IsArray(c)) {
        snprintf(e->msg, sizeof e->msg, "'messages[%d].content' must be a string or an array of parts", idx);
        return NULL;
    }
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(part)) {
            strbuf_adds(&b, part->valuestring);
            continue;
        }
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            snprintf(e->msg, sizeof e->msg,
                     "'messages[%d].content' parts must be {\"type\":\"text\",\"text\":...}; this model "
                     "reads text only",
                     idx);
            strbuf_free(&b);
            return NULL;
        }
        strbuf_adds(&b, text->valuestring);
    }
    if (!b.p) return strdup("");
    return b.p;
}

bool serve_messages_parse(const cJSON *arr, serve_msg **out, int *n_out, sj_err *e) {
    if (!cJSON_IsArray(arr)) {
        snprintf(e->msg, sizeof e->msg, "'messages' must be an array of {role, content} objects");
        return false;
    }
    int n = cJSON_GetArraySize(arr);
    serve_msg *m = calloc((size_t)(n ? n : 1), sizeof *m);
    if (!m) {
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return false;
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        if (!cJSON_IsObject(it) || !cJSON_IsString(role) || !role->valuestring[0]) {
            snprintf(e->msg, sizeof e->msg, "'messages[%d].role' must be a non-empty string", i);
            serve_messages_free(m, i);
            return false;
        }
        m[i].role = role->valuestring;
        m[i].content = content_text(cJSON_GetObjectItemCaseSensitive(it, "content"), i, e);
        if (!m[i].content) {
            serve_messages_free(m, i);
            return false;
        }
        i++;
    }
    *out = m;
    *n_out = n;
    return true;
}

/* Render with the model's own chat template (tokenizer.chat_template),
 * falling back to ChatML when the template cannot be used; a template's own
 * raise_exception (e.g. "roles must alternate") is the client's error. */
char *serve_chat_render(const serve_model *sm, const serve_msg *m, int n, sj_err *e) {
    if (n == 0) {
        snprintf(e->msg, sizeof e->msg, "'messages' is empty; send at least one message");
        return NULL;
    }
    hearth_chat_msg *msgs = calloc((size_t)n, sizeof *msgs);
    if (!msgs) {
        snprintf(e->msg, sizeof e->msg, "out of memory rendering the chat");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        msgs[i].role = m[i].role;
        msgs[i].content = m[i].content;
    }
    hearth_chat_request rq = {
        .msgs = msgs, .n_msgs = n, .add_generation_prompt = true, .fallback_chatml = true};
    hearth_error err = {0};
    char *s = sm->tmpl ? hearth_chat_template_render_ex(sm->tmpl, &rq, &err) : NULL;
    free(msgs);
    if (!s)
        snprintf(e->msg, sizeof e->msg, "%.250s", sm->tmpl ? err.msg : "out of memory rendering the chat");
    return s;
}

bool serve_tokenize(const serve_model *sm, const char *text, size_t len, bool add_bos, hearth_tokens *out,
                    hearth_error *err) {
    /* a rendered chat that already starts with the BOS text gets no second BOS */
    const char *bos = sm->tmpl ? hearth_chat_template_bos(sm->tmpl) : NULL;
    if (bos && bos[0] && len >= strlen(bos) && !strncmp(text, bos, strlen(bos))) add_bos = false;
    return hearth_tokenizer_encode(sm->tok, text, len, add_bos && hearth_tokenizer_add_bos_default(sm->tok),
                                   true, out, err) == HEARTH_OK;
}
