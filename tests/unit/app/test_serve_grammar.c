/*
 * test_serve_grammar.c - structured output request fields and the forced
 * tool-call grammar (app/serve/serve_grammar.c): each accepted form gives a
 * grammar that accepts a valid document and rejects an invalid one; each bad
 * form is refused with a message naming the field; the Hermes/Qwen tool-call
 * grammar accepts a valid call and rejects wrong names and invalid arguments,
 * one call or several with parallel_tool_calls.
 */
#include <string.h>

#include "app/serve/serve.h"
#include "test.h"

static bool accepts(const hearth_grammar *g, const char *s) {
    hearth_grammar_matcher *m = hearth_grammar_matcher_create(g, NULL);
    bool ok = m && hearth_grammar_matcher_accept_bytes(m, s, strlen(s)) && hearth_grammar_matcher_can_end(m);
    hearth_grammar_matcher_free(m);
    return ok;
}

/* The grammar body asks for (must succeed). */
static hearth_grammar *from(const char *body) {
    cJSON *b = cJSON_Parse(body);
    hearth_grammar *g = NULL;
    sj_err e = {0};
    bool ok = serve_grammar_from_body(b, &g, &e);
    if (!ok) fprintf(stderr, "%s: %s\n", body, e.msg);
    cJSON_Delete(b);
    return g;
}

static bool refused(const char *body, const char *want) {
    cJSON *b = cJSON_Parse(body);
    hearth_grammar *g = NULL;
    sj_err e = {0};
    bool ok = serve_grammar_from_body(b, &g, &e);
    cJSON_Delete(b);
    hearth_grammar_release(g);
    if (!ok && !strstr(e.msg, want)) fprintf(stderr, "message: %s (wanted %s)\n", e.msg, want);
    return !ok && strstr(e.msg, want);
}

static void test_request_forms(void) {
    hearth_grammar *g = from("{\"response_format\":{\"type\":\"json_object\"}}");
    REQUIRE(g);
    CHECK(accepts(g, "{\"a\":1}") && !accepts(g, "hello"));
    hearth_grammar_release(g);
    g = from(
        "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"strict\":true,"
        "\"schema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"],"
        "\"additionalProperties\":false}}}}");
    REQUIRE(g);
    CHECK(accepts(g, "{\"n\": 3}") && !accepts(g, "{\"n\": \"3\"}"));
    hearth_grammar_release(g);
    cJSON *b = cJSON_Parse("{\"response_format\":{\"type\":\"text\"}}");
    sj_err e = {0};
    g = (hearth_grammar *)1;
    CHECK(serve_grammar_from_body(b, &g, &e) && g == NULL);
    cJSON_Delete(b);
    g = from("{\"format\":\"json\"}");
    REQUIRE(g);
    CHECK(accepts(g, "{}"));
    hearth_grammar_release(g);
    g = from("{\"format\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}}");
    REQUIRE(g);
    CHECK(accepts(g, "[true,false]") && !accepts(g, "[1]"));
    hearth_grammar_release(g);
    g = from("{\"grammar\":\"root ::= \\\"yes\\\" | \\\"no\\\"\"}");
    REQUIRE(g);
    CHECK(accepts(g, "no") && !accepts(g, "maybe"));
    hearth_grammar_release(g);
    g = from("{\"json_schema\":{\"enum\":[1,2]}}");
    REQUIRE(g);
    CHECK(accepts(g, "2") && !accepts(g, "3"));
    hearth_grammar_release(g);

    CHECK(refused("{\"response_format\":{\"type\":\"xml\"}}", "'response_format.type' is 'xml'"));
    CHECK(
        refused("{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"strict\":true,\"schema\":"
                "{\"type\":\"string\",\"pattern\":\"a+\"}}}}",
                "'pattern' is not supported with strict"));
    CHECK(refused(
        "{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"array\","
        "\"minItems\":2,\"maxItems\":1}}}}",
        "minItems is above maxItems"));
    CHECK(refused("{\"response_format\":{\"type\":\"json_schema\"}}", "json_schema.schema' must be"));
    CHECK(refused("{\"format\":\"yaml\"}", "'format' is 'yaml'"));
    CHECK(refused("{\"grammar\":\"root ::= (\"}", "'grammar': grammar: expected ')'"));
    CHECK(refused("{\"grammar\":\"root ::= x\"}", "'x' is used but never defined"));
    CHECK(refused("{\"json_schema\":{\"enum\":[]}}", "'enum' is empty"));
    CHECK(refused("{\"grammar\":\"root ::= \\\"a\\\"\",\"json_schema\":{}}", "not several"));
}

static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":["
    "\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"parameters\":{\"type\":\"object\","
    "\"properties\":"
    "{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},\"required\":[\"a\",\"b\"]}}}]";

static void test_tool_calls(void) {
    cJSON *tools = cJSON_Parse(TOOLS);
    REQUIRE(tools);
    sj_err e = {0};
    hearth_grammar *any = serve_tool_call_grammar(tools, NULL, false, false, &e);
    if (!any) fprintf(stderr, "%s\n", e.msg);
    REQUIRE(any);
    const char *w = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
                    "\"c\"}}\n</tool_call>";
    const char *a = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>";
    CHECK(accepts(any, w));
    CHECK(accepts(any, a));
    CHECK(!accepts(
        any, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": \"1\", \"b\": 2}}\n</tool_call>"));
    CHECK(!accepts(any, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>"));
    CHECK(!accepts(any, "<tool_call>\n{\"name\": \"sub\", \"arguments\": {}}\n</tool_call>"));
    CHECK(!accepts(any, "Sure! <tool_call>"));
    char two[512];
    snprintf(two, sizeof two, "%s\n%s", w, a);
    CHECK(!accepts(any, two)); /* one call without parallel_tool_calls */
    hearth_grammar_release(any);
    hearth_grammar *par = serve_tool_call_grammar(tools, NULL, true, false, &e);
    REQUIRE(par);
    CHECK(accepts(par, two) && accepts(par, a));
    hearth_grammar_release(par);
    hearth_grammar *named = serve_tool_call_grammar(tools, "add", false, false, &e);
    REQUIRE(named);
    CHECK(accepts(named, a) && !accepts(named, w));
    CHECK(!accepts(named, "<think>\nok\n</think>\n\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": "
                          "1, \"b\": 2}}\n</tool_call>"));
    hearth_grammar_release(named);
    /* think: an optional reasoning block before the call, none of "</" inside it */
    hearth_grammar *th = serve_tool_call_grammar(tools, "add", false, true, &e);
    REQUIRE(th);
    CHECK(accepts(th, a));
    CHECK(accepts(th, "<think>\nI will add.\n</think>\n\n<tool_call>\n{\"name\": \"add\", \"arguments\": "
                      "{\"a\": 1, \"b\": 2}}\n</tool_call>"));
    CHECK(!accepts(th, "<think>a</b></think>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, "
                       "\"b\": 2}}\n</tool_call>"));
    CHECK(!accepts(th, "<think>x</think>\nSure!"));
    hearth_grammar_release(th);
    CHECK(!serve_tool_call_grammar(tools, "nope", false, false, &e) && strstr(e.msg, "'nope'"));
    cJSON *empty = cJSON_CreateArray();
    CHECK(!serve_tool_call_grammar(empty, NULL, false, false, &e) && strstr(e.msg, "non-empty"));
    cJSON_Delete(empty);
    cJSON_Delete(tools);
}

int main(void) {
    test_request_forms();
    test_tool_calls();
    return test_summary("serve_grammar");
}
