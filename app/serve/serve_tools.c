/*
 * serve_tools.c - tool calling and reasoning for the chat routes: the
 * request fields (tools, tool_choice, parallel_tool_calls), rendering the
 * full messages and tools with the model's own template, and the splitter
 * (runtime/template/tool_calls.h) that turns generated text into content,
 * reasoning_content and tool_calls.
 *
 * Owner: the serve subsystem.
 * Invariants: an unknown tool_choice name or a malformed tools entry is a
 * 400 naming it; tool_choice "none" renders no tools and parses no calls;
 * "required" / a named function is enforced by checking the parsed output
 * (no grammar yet): no valid (matching) call gives the caller an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/template/chat_template.h"
#include "serve.h"

static bool tool_defined(const cJSON *tools, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return true;
    }
    return false;
}

bool serve_tools_parse(const cJSON *body, serve_tools *st, sj_err *e) {
    memset(st, 0, sizeof *st);
    st->parallel = true;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            snprintf(e->msg, sizeof e->msg,
                     "'tools' must be an array of {\"type\":\"function\",\"function\":{...}}");
            return false;
        }
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t, "type");
            if (!cJSON_IsObject(f) || !cJSON_IsString(n) || !n->valuestring[0] ||
                (ty && (!cJSON_IsString(ty) || strcmp(ty->valuestring, "function")))) {
                snprintf(e->msg, sizeof e->msg,
                         "'tools[%d]' must be "
                         "{\"type\":\"function\",\"function\":{\"name\":...,\"parameters\":{...}}}",
                         i);
                return false;
            }
            i++;
        }
        if (i > 0) st->tools_json = cJSON_PrintUnformatted(tools);
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    st->choice = SERVE_TOOLS_AUTO;
    if (tc && !cJSON_IsNull(tc)) {
        if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "auto"))
            st->choice = SERVE_TOOLS_AUTO;
        else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"))
            st->choice = SERVE_TOOLS_NONE;
        else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "required"))
            st->choice = SERVE_TOOLS_REQUIRED;
        else {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(tc, "function");
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "name");
            if (!cJSON_IsObject(tc) || !cJSON_IsString(n)) {
                snprintf(e->msg, sizeof e->msg,
                         "'tool_choice' must be \"auto\", \"none\", \"required\" or "
                         "{\"type\":\"function\",\"function\":{\"name\":...}}");
                return false;
            }
            snprintf(st->named, sizeof st->named, "%s", n->valuestring);
            st->choice = SERVE_TOOLS_NAMED;
        }
        if (st->choice != SERVE_TOOLS_AUTO && st->choice != SERVE_TOOLS_NONE && !st->tools_json) {
            snprintf(e->msg, sizeof e->msg, "'tool_choice' asks for a tool call but 'tools' is empty");
            return false;
        }
        if (st->choice == SERVE_TOOLS_NAMED && !tool_defined(tools, st->named)) {
            snprintf(e->msg, sizeof e->msg,
                     "'tool_choice' names the function '%.100s', which is not in 'tools'", st->named);
            return false;
        }
    }
    if (!sj_bool(body, "parallel_tool_calls", &st->parallel, e)) return false;
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(body, "chat_template_kwargs");
    const cJSON *think = cJSON_GetObjectItemCaseSensitive(body, "think");
    if (kw && !cJSON_IsNull(kw)) {
        if (!cJSON_IsObject(kw)) {
            snprintf(e->msg, sizeof e->msg, "'chat_template_kwargs' must be an object");
            return false;
        }
        st->vars_json = cJSON_PrintUnformatted(kw);
    } else if (think && !cJSON_IsNull(think)) {
        if (!cJSON_IsBool(think)) {
            snprintf(e->msg, sizeof e->msg, "'think' must be true or false");
            return false;
        }
        st->vars_json =
            strdup(cJSON_IsTrue(think) ? "{\"enable_thinking\":true}" : "{\"enable_thinking\":false}");
    }
    if (st->choice == SERVE_TOOLS_NONE) {
        free(st->tools_json);
        st->tools_json = NULL;
    }
    return true;
}

void serve_tools_free(serve_tools *st) {
    free(st->tools_json);
    free(st->vars_json);
    st->tools_json = st->vars_json = NULL;
}

char *serve_chat_render_full(const serve_model *sm, const cJSON *messages, const serve_tools *st, sj_err *e) {
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        snprintf(e->msg, sizeof e->msg, "'messages' must be a non-empty array of {role, content} objects");
        return NULL;
    }
    char *mj = cJSON_PrintUnformatted(messages);
    hearth_chat_request rq = {.messages_json = mj,
                              .tools_json = st->tools_json,
                              .vars_json = st->vars_json,
                              .add_generation_prompt = true,
                              .fallback_chatml = true};
    hearth_error err = {0};
    char *s = mj && sm->tmpl ? hearth_chat_template_render_ex(sm->tmpl, &rq, &err) : NULL;
    free(mj);
    if (!s)
        snprintf(e->msg, sizeof e->msg, "%.250s", err.msg[0] ? err.msg : "out of memory rendering the chat");
    return s;
}

hearth_out_parser *serve_out_parser_new(const serve_model *sm, const serve_tools *st, const char *prompt) {
    const char *src = sm->tmpl ? hearth_chat_template_source(sm->tmpl) : NULL;
    hearth_out_options o = {
        .syntax = hearth_tool_syntax_for_template(src), .tools = st->tools_json != NULL, .reasoning = true};
    /* a prompt that ends inside an opened <think> (DeepSeek-R1 style) */
    size_t n = prompt ? strlen(prompt) : 0;
    while (n && (prompt[n - 1] == '\n' || prompt[n - 1] == ' '))
        n--;
    if (n >= 7 && !memcmp(prompt + n - 7, "<think>", 7)) o.start_in_reasoning = true;
    return hearth_out_parser_new(&o);
}

bool serve_tools_grammar(const serve_model *sm, const serve_tools *st, const cJSON *tools,
                         hearth_grammar **grammar, sj_err *e) {
    const bool forced =
        st->tools_json && (st->choice == SERVE_TOOLS_REQUIRED || st->choice == SERVE_TOOLS_NAMED);
    if (!forced) return true;
    if (*grammar) {
        snprintf(e->msg, sizeof e->msg,
                 "a structured-output format and a forced tool_choice cannot be combined; drop one of them");
        return false;
    }
    const char *src = sm->tmpl ? hearth_chat_template_source(sm->tmpl) : NULL;
    if (hearth_tool_syntax_for_template(src) != HEARTH_TOOLS_HERMES)
        return true; /* checked after generation */
    *grammar = serve_tool_call_grammar(tools, st->choice == SERVE_TOOLS_NAMED ? st->named : NULL,
                                       st->parallel, true, e);
    return *grammar != NULL;
}

const char *serve_tools_check(const serve_tools *st, int n_calls, bool named_ok) {
    if (st->choice == SERVE_TOOLS_REQUIRED && n_calls == 0)
        return "tool_choice is \"required\" but the model produced no valid tool call (this build checks the "
               "output; constrained decoding that guarantees a call is not in it yet)";
    if (st->choice == SERVE_TOOLS_NAMED && (n_calls == 0 || !named_ok))
        return "tool_choice names a function but the model produced no valid call of it (this build checks "
               "the output; constrained decoding that guarantees a call is not in it yet)";
    return NULL;
}
