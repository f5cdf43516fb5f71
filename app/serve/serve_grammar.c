/*
 * serve_grammar.c - structured output for the HTTP APIs: the request fields
 * that ask for a grammar, turned into a compiled hearth_grammar, and the
 * grammar for forced tool calls (Hermes / Qwen <tool_call> syntax).
 *
 *   OpenAI   response_format: {"type":"text"} | {"type":"json_object"} |
 *            {"type":"json_schema","json_schema":{"schema":{...},"strict":bool}}
 *   Ollama   format: "json" | a schema object
 *   llama.cpp /completion: grammar (GBNF text) | json_schema (object)
 * Every problem is a 400 whose message names the field: malformed GBNF, an
 * unsatisfiable schema, strict with an unsupported keyword, an unknown value.
 * Owner: the caller owns the grammar returned (hearth_grammar_release).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "serve.h"

static hearth_grammar *schema_grammar(const cJSON *schema, bool strict, const char *field, sj_err *e) {
    char *txt = cJSON_PrintUnformatted(schema);
    hearth_error err = {0};
    hearth_grammar *g = txt ? hearth_grammar_from_json_schema(txt, strlen(txt), strict, &err) : NULL;
    if (!txt) snprintf(err.msg, sizeof err.msg, "out of memory");
    free(txt);
    if (!g) snprintf(e->msg, sizeof e->msg, "'%s': %.200s", field, err.msg);
    return g;
}

static bool openai_format(const cJSON *rf, hearth_grammar **out, sj_err *e) {
    if (!cJSON_IsObject(rf))
        return snprintf(e->msg, sizeof e->msg, "'response_format' must be an object"), false;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsString(t))
        return snprintf(e->msg, sizeof e->msg,
                        "'response_format.type' must be text, json_object or json_schema"),
               false;
    hearth_error err = {0};
    if (!strcmp(t->valuestring, "text")) return true;
    if (!strcmp(t->valuestring, "json_object")) {
        *out = hearth_grammar_json_object(&err);
        if (!*out) snprintf(e->msg, sizeof e->msg, "%.250s", err.msg);
        return *out != NULL;
    }
    if (strcmp(t->valuestring, "json_schema"))
        return snprintf(e->msg, sizeof e->msg,
                        "'response_format.type' is '%.100s'; supported: text, json_object, json_schema",
                        t->valuestring),
               false;
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    if (!cJSON_IsObject(js) || !(cJSON_IsObject(schema) || cJSON_IsBool(schema)))
        return snprintf(e->msg, sizeof e->msg,
                        "'response_format.json_schema.schema' must be a JSON Schema object"),
               false;
    bool strict = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "strict"));
    *out = schema_grammar(schema, strict, "response_format.json_schema.schema", e);
    return *out != NULL;
}

bool serve_grammar_from_body(const cJSON *body, hearth_grammar **out, sj_err *e) {
    *out = NULL;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(body, "format");
    const cJSON *gb = cJSON_GetObjectItemCaseSensitive(body, "grammar");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(body, "json_schema");
    int given = (rf && !cJSON_IsNull(rf)) + (fmt && !cJSON_IsNull(fmt)) + (gb && !cJSON_IsNull(gb)) +
                (js && !cJSON_IsNull(js));
    if (given == 0) return true;
    if (given > 1)
        return snprintf(e->msg, sizeof e->msg,
                        "give one of 'response_format', 'format', 'grammar', 'json_schema', not several"),
               false;
    if (rf && !cJSON_IsNull(rf)) return openai_format(rf, out, e);
    if (fmt && !cJSON_IsNull(fmt)) {
        if (cJSON_IsString(fmt)) {
            if (!fmt->valuestring[0]) return true; /* Ollama sends "" for none */
            if (strcmp(fmt->valuestring, "json"))
                return snprintf(e->msg, sizeof e->msg,
                                "'format' is '%.100s'; supported: \"json\" or a JSON Schema object",
                                fmt->valuestring),
                       false;
            hearth_error err = {0};
            *out = hearth_grammar_json_object(&err);
            if (!*out) snprintf(e->msg, sizeof e->msg, "%.250s", err.msg);
            return *out != NULL;
        }
        if (!cJSON_IsObject(fmt))
            return snprintf(e->msg, sizeof e->msg, "'format' must be \"json\" or a JSON Schema object"),
                   false;
        *out = schema_grammar(fmt, false, "format", e);
        return *out != NULL;
    }
    if (gb && !cJSON_IsNull(gb)) {
        if (!cJSON_IsString(gb)) return snprintf(e->msg, sizeof e->msg, "'grammar' must be GBNF text"), false;
        if (!gb->valuestring[0]) return true;
        hearth_error err = {0};
        *out = hearth_grammar_parse(gb->valuestring, strlen(gb->valuestring), "root", &err);
        if (!*out) snprintf(e->msg, sizeof e->msg, "'grammar': %.200s", err.msg);
        return *out != NULL;
    }
    if (!cJSON_IsObject(js) && !cJSON_IsBool(js))
        return snprintf(e->msg, sizeof e->msg, "'json_schema' must be a JSON Schema object"), false;
    *out = schema_grammar(js, false, "json_schema", e);
    return *out != NULL;
}

/* ---------------------------------------------------------------- tool calls */

/* The GBNF for a tool-call block of one function: its name as a JSON string
 * literal, its arguments by its `parameters` schema (any object if none). */
static bool tool_rule(strbuf *b, const cJSON *tool, int k, sj_err *e) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (!cJSON_IsString(name))
        return snprintf(e->msg, sizeof e->msg, "'tools[%d].function.name' must be a string", k), false;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    char *ptxt = params ? cJSON_PrintUnformatted(params) : NULL;
    hearth_error err = {0};
    char *g = hearth_json_schema_to_gbnf(ptxt ? ptxt : "{\"type\":\"object\"}", ptxt ? strlen(ptxt) : 17,
                                         false, &err);
    free(ptxt);
    if (!g)
        return snprintf(e->msg, sizeof e->msg, "'tools[%d].function.parameters': %.200s", k, err.msg), false;
    /* rename the schema's rules so several tools can share one grammar */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "t%d-", k);
    const char *json = hearth_grammar_json_gbnf();
    const char *rules = g + strlen(json); /* the schema's own rules follow the shared JSON rules */
    for (const char *p = rules; *p;) {
        bool start = p == rules || p[-1] == '\n' || p[-1] == ' ' || p[-1] == '(' || p[-1] == '|';
        if (start && p[0] == 's' && p[1] >= '0' && p[1] <= '9')
            strbuf_adds(b, prefix);
        else if (start && !strncmp(p, "root ::=", 8))
            strbuf_adds(b, prefix);
        strbuf_addc(b, *p++);
    }
    cJSON *ns = cJSON_CreateString(name->valuestring);
    char *nt = ns ? cJSON_PrintUnformatted(ns) : NULL;
    cJSON_Delete(ns);
    strbuf_printf(b, "t%d-call ::= \"{\" ws \"\\\"name\\\"\" ws \":\" ws \"", k);
    for (const char *q = nt ? nt : "\"\""; *q; q++) {
        if (*q == '"' || *q == '\\') strbuf_addc(b, '\\');
        strbuf_addc(b, *q);
    }
    strbuf_printf(b, "\" ws \",\" ws \"\\\"arguments\\\"\" ws \":\" ws t%d-root ws \"}\"\n", k);
    free(nt);
    free(g);
    return true;
}

char *serve_tool_call_gbnf(const cJSON *tools, const char *only, bool parallel, bool think, sj_err *e) {
    if (!cJSON_IsArray(tools) || !cJSON_GetArraySize(tools))
        return snprintf(e->msg, sizeof e->msg, "'tools' must be a non-empty array to force a tool call"),
               NULL;
    strbuf b = {0};
    strbuf_adds(&b, hearth_grammar_json_gbnf());
    strbuf alts = {0};
    int k = 0, n = 0;
    for (const cJSON *t = tools->child; t; t = t->next, k++) {
        const cJSON *name =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name");
        if (only && !(cJSON_IsString(name) && !strcmp(name->valuestring, only))) continue;
        if (!tool_rule(&b, t, k, e)) {
            strbuf_free(&b);
            strbuf_free(&alts);
            return NULL;
        }
        strbuf_printf(&alts, "%st%d-call", n++ ? " | " : "", k);
    }
    if (!n) {
        snprintf(e->msg, sizeof e->msg, "tool_choice names '%.100s', which is not among 'tools'",
                 only ? only : "");
        strbuf_free(&b);
        strbuf_free(&alts);
        return NULL;
    }
    strbuf_printf(&b, "tool-call ::= \"<tool_call>\\n\" ( %s ) \"\\n</tool_call>\"\n", alts.p);
    /* think: models that reason before they call (Qwen3, DeepSeek-R1 distills) may
     * first write "<think>", text without "</" other than the closing tag,
     * "</think>" and up to two newlines */
    if (think)
        strbuf_adds(&b, "think-block ::= \"<think>\" ( [^<] | \"<\" [^/] )* \"</think>\" \"\\n\"{0,2}\n");
    strbuf_printf(&b, "root ::= %stool-call%s\n", think ? "think-block? " : "",
                  parallel ? " ( \"\\n\" tool-call )*" : "");
    strbuf_free(&alts);
    if (b.oom) {
        strbuf_free(&b);
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return NULL;
    }
    return strbuf_take(&b);
}

hearth_grammar *serve_tool_call_grammar(const cJSON *tools, const char *only, bool parallel, bool think,
                                        sj_err *e) {
    char *g = serve_tool_call_gbnf(tools, only, parallel, think, e);
    if (!g) return NULL;
    hearth_error err = {0};
    hearth_grammar *gr = hearth_grammar_parse(g, strlen(g), "root", &err);
    if (!gr) snprintf(e->msg, sizeof e->msg, "'tools': %.200s", err.msg);
    free(g);
    return gr;
}
