/*
 * test_tool_calls.c - the output splitter of runtime/template/tool_calls.h:
 * every tool-call syntax (Hermes/Qwen, Llama 3.x JSON and python_tag,
 * Mistral list and [ARGS] forms, generic JSON), reasoning blocks, markers
 * split across feeds at every byte (streaming), malformed calls, and the
 * agent test model's real outputs (golden/agent).
 *
 * Owner: chat templates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/strbuf.h"
#include "runtime/template/tool_calls.h"
#include "tests/test.h"

typedef struct collected {
    strbuf content, reasoning, calls; /* calls: "name(args);" per call */
    int n_calls;
    int last_index;
} collected;

static void collect(void *user, const hearth_out_event *ev) {
    collected *c = user;
    if (ev->kind == HEARTH_OUT_CONTENT) strbuf_add(&c->content, ev->text, ev->len);
    if (ev->kind == HEARTH_OUT_REASONING) strbuf_add(&c->reasoning, ev->text, ev->len);
    if (ev->kind == HEARTH_OUT_TOOL_CALL) {
        CHECK(ev->index == c->n_calls);
        strbuf_printf(&c->calls, "%s(%s);", ev->name, ev->arguments);
        c->n_calls++;
    }
}

static const char *s_(const strbuf *b) {
    return b->p ? b->p : "";
}

/* Run text through a parser fed in pieces of `step` bytes (0: all at once). */
static collected run(const hearth_out_options *o, const char *text, size_t step, int *malformed) {
    collected c = {0};
    hearth_out_parser *p = hearth_out_parser_new(o);
    REQUIRE(p);
    hearth_error err = {0};
    size_t n = strlen(text);
    if (!step) step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        CHECK(hearth_out_parser_feed(p, text + i, i + step > n ? n - i : step, collect, &c, &err));
    CHECK(hearth_out_parser_finish(p, collect, &c, &err));
    CHECK(hearth_out_parser_n_calls(p) == c.n_calls);
    if (malformed) *malformed = hearth_out_parser_n_malformed(p);
    hearth_out_parser_free(p);
    return c;
}

static void done(collected *c) {
    strbuf_free(&c->content);
    strbuf_free(&c->reasoning);
    strbuf_free(&c->calls);
}

/* The same expectations fed whole and one byte at a time and in 3-byte pieces. */
static void expect(const hearth_out_options *o, const char *text, const char *content, const char *reasoning,
                   const char *calls, int malformed) {
    size_t steps[] = {0, 1, 3};
    for (int i = 0; i < 3; i++) {
        int mal = -1;
        collected c = run(o, text, steps[i], &mal);
        CHECKF(!strcmp(s_(&c.content), content), "step %zu: content '%s' want '%s' (input %s)", steps[i],
               s_(&c.content), content, text);
        CHECKF(!strcmp(s_(&c.reasoning), reasoning), "step %zu: reasoning '%s' want '%s'", steps[i],
               s_(&c.reasoning), reasoning);
        CHECKF(!strcmp(s_(&c.calls), calls), "step %zu: calls '%s' want '%s'", steps[i], s_(&c.calls), calls);
        CHECKF(mal == malformed, "step %zu: malformed %d want %d", steps[i], mal, malformed);
        done(&c);
    }
}

static void test_syntax_detection(void) {
    CHECK(hearth_tool_syntax_for_template("{{ '<tool_call>' }}") == HEARTH_TOOLS_HERMES);
    CHECK(hearth_tool_syntax_for_template("[TOOL_CALLS] {{ x }}") == HEARTH_TOOLS_MISTRAL);
    CHECK(hearth_tool_syntax_for_template("<|python_tag|>") == HEARTH_TOOLS_LLAMA3);
    CHECK(hearth_tool_syntax_for_template("<|start_header_id|> \"parameters\"") == HEARTH_TOOLS_LLAMA3);
    CHECK(hearth_tool_syntax_for_template("{{ messages }}") == HEARTH_TOOLS_GENERIC);
    CHECK(hearth_tool_syntax_for_template(NULL) == HEARTH_TOOLS_GENERIC);
    CHECK(!strcmp(hearth_tool_syntax_name(HEARTH_TOOLS_HERMES), "hermes"));
    CHECK(hearth_template_has_thinking("{% if enable_thinking %}"));
    CHECK(!hearth_template_has_thinking("{{ messages }}"));
    CHECK(hearth_template_renders_tools("{% if tools %}"));
    CHECK(!hearth_template_renders_tools("{{ messages }}"));
}

static void test_hermes(void) {
    hearth_out_options o = {.syntax = HEARTH_TOOLS_HERMES, .tools = true, .reasoning = true};
    expect(&o, "Hello there.", "Hello there.", "", "", 0);
    expect(&o, "I will look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
           "I will look.\n", "", "f({\"a\":1});", 0);
    /* two parallel calls; whitespace between and after them is not content */
    expect(&o,
           "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", "
           "\"arguments\": {\"x\": \"y\"}}\n</tool_call>\n",
           "", "", "a({});b({\"x\":\"y\"});", 0);
    /* arguments as a JSON string (some fine-tunes) */
    expect(&o, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 2}\"}</tool_call>", "", "",
           "f({\"q\":2});", 0);
    /* unclosed at the end (stopped by <|im_end|>): parsed as if closed */
    expect(&o, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"b\": true}}\n", "", "", "f({\"b\":true});",
           0);
    /* malformed: the whole block is content, counted */
    expect(&o, "<tool_call>\n{\"name\": 3}\n</tool_call>", "<tool_call>\n{\"name\": 3}\n</tool_call>", "", "",
           1);
    expect(&o, "<tool_call>not json</tool_call> after", "<tool_call>not json</tool_call> after", "", "", 1);
    expect(&o, "<tool_call>{\"name\": \"f\", \"arguments\": [1]}",
           "<tool_call>{\"name\": \"f\", \"arguments\": [1]}", "", "", 1);
    /* a marker prefix that never completes is content */
    expect(&o, "a <tool_ca", "a <tool_ca", "", "", 0);
    expect(&o, "x < y and <tool> z", "x < y and <tool> z", "", "", 0);
    /* tools off: the call is content */
    hearth_out_options off = o;
    off.tools = false;
    expect(&off, "<tool_call>{\"name\": \"f\"}</tool_call>", "<tool_call>{\"name\": \"f\"}</tool_call>", "",
           "", 0);
    /* a bare JSON object is content for Hermes */
    expect(&o, "{\"name\": \"f\", \"arguments\": {}}", "{\"name\": \"f\", \"arguments\": {}}", "", "", 0);
}

static void test_reasoning(void) {
    hearth_out_options o = {.syntax = HEARTH_TOOLS_HERMES, .tools = true, .reasoning = true};
    expect(&o, "<think>\nLet me see.\n</think>\n\nThe answer.", "The answer.", "\nLet me see.\n", "", 0);
    expect(
        &o,
        "<think>\nI will look it up.\n</think>\n\n<tool_call>\n{\"name\": \"lookup_verse\", \"arguments\": "
        "{\"book\": \"John\", \"chapter\": 3, \"verse\": 16}}\n</tool_call>",
        "", "\nI will look it up.\n", "lookup_verse({\"book\":\"John\",\"chapter\":3,\"verse\":16});", 0);
    /* never closed: all reasoning, a call-looking marker inside stays reasoning */
    expect(&o, "<think>\nI will count them.\n</tool_call>", "", "\nI will count them.\n</tool_call>", "", 0);
    /* the prompt opened the think block (DeepSeek-R1 style) */
    hearth_out_options r = o;
    r.start_in_reasoning = true;
    expect(&r, "hmm\n</think>\n\nok", "ok", "hmm\n", "", 0);
    /* reasoning off: the tags are content */
    hearth_out_options off = o;
    off.reasoning = false;
    expect(&off, "<think>x</think>y", "<think>x</think>y", "", "", 0);
    /* an empty think block (enable_thinking false in the output) */
    expect(&o, "<think>\n\n</think>\n\nHi", "Hi", "\n\n", "", 0);
}

static void test_llama3(void) {
    hearth_out_options o = {.syntax = HEARTH_TOOLS_LLAMA3, .tools = true};
    expect(&o, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "",
           "get_weather({\"city\":\"Paris\"});", 0);
    expect(&o, "  {\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": 1}}", "",
           "", "a({});b({\"k\":1});", 0);
    expect(&o, "<|python_tag|>{\"name\": \"s\", \"parameters\": {\"q\": \"x\"}}", "", "", "s({\"q\":\"x\"});",
           0);
    expect(&o, "Sure: {\"name\": \"f\"}", "Sure: {\"name\": \"f\"}", "", "", 0); /* text first: not a call */
    expect(&o, "{\"not\": \"a call\"}", "{\"not\": \"a call\"}", "", "", 1);
    expect(&o, "{broken", "{broken", "", "", 1);
}

static void test_mistral(void) {
    hearth_out_options o = {.syntax = HEARTH_TOOLS_MISTRAL, .tools = true};
    expect(&o,
           "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {}}]",
           "", "", "f({\"a\":1});g({});", 0);
    expect(&o, "[TOOL_CALLS]get_time[ARGS]{\"tz\": \"UTC\"}", "", "", "get_time({\"tz\":\"UTC\"});", 0);
    expect(&o, "[TOOL_CALLS] nonsense", "[TOOL_CALLS] nonsense", "", "", 1);
    expect(&o, "Plain [TOOL answer", "Plain [TOOL answer", "", "", 0);
}

static void test_generic(void) {
    hearth_out_options o = {.syntax = HEARTH_TOOLS_GENERIC, .tools = true, .reasoning = true};
    expect(&o, "{\"name\": \"f\", \"arguments\": {\"z\": null}}", "", "", "f({\"z\":null});", 0);
    expect(&o, "[{\"name\": \"f\", \"arguments\": {}}]", "", "", "f({});", 0);
    expect(&o, "<tool_call>{\"name\": \"h\", \"arguments\": {}}</tool_call>", "", "", "h({});", 0);
    expect(&o, "<think>t</think>{\"name\": \"f\", \"arguments\": {}}", "", "t", "f({});", 0);
    expect(&o, "[1, 2, 3]", "[1, 2, 3]", "", "", 1); /* JSON but not calls */
}

/* The agent model's real greedy outputs (llama.cpp golden data). */
static void test_golden_agent(void) {
    char path[1024];
    size_t len = 0;
    char *data = test_read_file(
        test_shared_path(path, sizeof path, "golden/agent/llamacpp-hearth-kjv-agent-q8_0.jsonl"), &len);
    if (!data) {
        printf("skipped: golden/agent not found\n");
        return;
    }
    hearth_out_options o = {.syntax = HEARTH_TOOLS_HERMES, .tools = true, .reasoning = true};
    int lines = 0, with_calls = 0, malformed_seen = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!cJSON_IsString(t)) {
            cJSON_Delete(j);
            continue;
        }
        strbuf s = {0};
        strbuf_adds(&s, t->valuestring);
        cJSON_Delete(j);
        int mal = 0;
        collected c = run(&o, s.p ? s.p : "", 1, &mal);
        lines++;
        if (c.n_calls) {
            with_calls++;
            CHECK_CONTAINS(s_(&c.calls), "\"book\":");
            CHECK(!strstr(s_(&c.content), "tool_call"));
        }
        malformed_seen += mal;
        if (s.p && strstr(s.p, "<think>")) CHECK(c.reasoning.n > 0);
        done(&c);
        strbuf_free(&s);
    }
    free(data);
    CHECKF(lines >= 6, "golden lines %d", lines);
    CHECKF(with_calls >= 3, "golden outputs with calls %d", with_calls);
    (void)malformed_seen;
}

int main(void) {
    test_syntax_detection();
    test_hermes();
    test_reasoning();
    test_llama3();
    test_mistral();
    test_generic();
    test_golden_agent();
    return test_summary("test_tool_calls");
}
