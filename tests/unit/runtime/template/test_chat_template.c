/*
 * test_chat_template.c - chat templates: real templates of popular model
 * families render exactly what Hugging Face transformers renders, the KJV
 * models' own template from their GGUF file, tools and tool calls, the
 * fallbacks, every user-visible error (with line:column), and the bounds
 * that keep a hostile template from crashing or hanging the process.
 *
 * Owner: chat templates. The templates and expected strings live in
 * chat_templates.h (generated; see its header).
 */
#include <pthread.h>
#include <time.h>

#include "chat_templates.h"
#include "runtime/format/gguf.h"
#include "runtime/template/chat_template.h"
#include "runtime/template/jinja/jinja.h"
#include "test.h"

/* llama.cpp's standard conversation (tests/test-chat-template.cpp). */
static const hearth_chat_msg CONV[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
#define N_CONV ((int)(sizeof CONV / sizeof CONV[0]))

/* Report the first difference of two strings. */
static int same_text(const char *what, const char *got, const char *want) {
    if (got && strcmp(got, want) == 0) return 1;
    if (!got) {
        fprintf(stderr, "%s: no output\n", what);
        return 0;
    }
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    size_t from = i > 30 ? i - 30 : 0;
    fprintf(stderr, "%s: differs at byte %zu\n  got:  \"%.80s\"\n  want: \"%.80s\"\n", what, i, got + from,
            want + from);
    return 0;
}

static hearth_chat_template *parse_with_tokens(const char *src, const char *bos, const char *eos) {
    hearth_error err = {0};
    hearth_chat_template *t = hearth_chat_template_parse(src, &err);
    if (!t) {
        fprintf(stderr, "parse failed: %s\n", err.msg);
        return NULL;
    }
    REQUIRE(hearth_chat_template_set_var(t, "bos_token", bos, &err));
    REQUIRE(hearth_chat_template_set_var(t, "eos_token", eos, &err));
    return t;
}

/* Render a template with no variables through the interpreter directly. */
static char *render_plain(const char *src, hearth_error *err) {
    jinja_template *t = jinja_parse(src, strlen(src), "t", err);
    if (!t) return NULL;
    jinja_ctx *c = jinja_ctx_new(NULL);
    REQUIRE(c);
    char *out = jinja_render(t, c, NULL, err);
    jinja_ctx_free(c);
    jinja_template_free(t);
    return out;
}

/* ---------------------------------------------------------------- real templates */

static void test_real_templates(void) {
    for (size_t i = 0; i < sizeof chat_template_cases / sizeof chat_template_cases[0]; i++) {
        const chat_template_case *k = &chat_template_cases[i];
        hearth_chat_template *t = parse_with_tokens(k->source, k->bos, k->eos);
        CHECKF(t != NULL, "%s (%s)", k->name, k->model);
        if (!t) continue;
        char what[128];
        for (int gen = 1; gen >= 0; gen--) {
            hearth_error err = {0};
            char note[256];
            hearth_chat_request r = {.msgs = CONV,
                                     .n_msgs = N_CONV,
                                     .add_generation_prompt = gen,
                                     .note = note,
                                     .note_cap = sizeof note};
            char *out = hearth_chat_template_render_ex(t, &r, &err);
            snprintf(what, sizeof what, "%s add_generation_prompt=%d", k->name, gen);
            CHECKF(out != NULL, "%s: %s", what, err.msg);
            CHECK(same_text(what, out, gen ? k->expect_gen : k->expect_nogen));
            /* the polyfill note appears exactly when the template refused the system message */
            CHECKF((note[0] != '\0') == (k->polyfill != 0), "%s: note \"%s\"", what, note);
            free(out);
        }
        if (k->polyfill) {
            /* without the request form the polyfill still applies (same text) */
            hearth_error err = {0};
            char *out = hearth_chat_template_render(t, CONV, N_CONV, true, &err);
            CHECK(same_text(k->name, out, k->expect_gen));
            free(out);
        }
        hearth_chat_template_free(t);
    }
}

static void test_family_names(void) {
    static const struct {
        const char *tmpl, *name;
    } want[] = {
        {"llama3", "llama3"},
        {"llama31", "llama3"},
        {"qwen25", "chatml"},
        {"mistral_v02", "mistral"},
        {"mistral_nemo", "mistral"},
        {"gemma2", "gemma"},
        {"gemma3", "gemma"},
        {"phi3_mini", "phi3"},
        {"phi35", "phi3"},
        {"zephyr", "zephyr"},
        {"deepseek_r1", "deepseek"},
        {"deepseek_coder", "deepseek-coder"},
        {"command_r", "command-r"},
        {"granite3", "granite"},
        {"openchat", "openchat"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const chat_template_case *k = NULL;
        for (size_t j = 0; j < sizeof chat_template_cases / sizeof chat_template_cases[0]; j++)
            if (strcmp(chat_template_cases[j].name, want[i].tmpl) == 0) k = &chat_template_cases[j];
        REQUIRE(k);
        hearth_chat_template *t = hearth_chat_template_parse(k->source, NULL);
        REQUIRE(t);
        CHECKF(strcmp(hearth_chat_template_name(t), want[i].name) == 0, "%s: %s", k->name,
               hearth_chat_template_name(t));
        hearth_chat_template_free(t);
    }
    hearth_chat_template *t = hearth_chat_template_chatml();
    REQUIRE(t);
    CHECK(strcmp(hearth_chat_template_name(t), "chatml") == 0);
    hearth_chat_template_free(t);
}

static void test_tools(void) {
    for (size_t i = 0; i < sizeof chat_template_tool_cases / sizeof chat_template_tool_cases[0]; i++) {
        const chat_template_tool_case *k = &chat_template_tool_cases[i];
        const char *src = NULL, *bos = "", *eos = "";
        if (strcmp(k->name, "hermes3") == 0) {
            src = TEMPLATE_HERMES3;
            bos = "<|begin_of_text|>";
            eos = "<|im_end|>";
        }
        for (size_t j = 0; !src && j < sizeof chat_template_cases / sizeof chat_template_cases[0]; j++)
            if (strcmp(chat_template_cases[j].name, k->name) == 0) {
                src = chat_template_cases[j].source;
                bos = chat_template_cases[j].bos;
                eos = chat_template_cases[j].eos;
            }
        REQUIRE(src);
        hearth_chat_template *t = parse_with_tokens(src, bos, eos);
        REQUIRE(t);
        hearth_error err = {0};
        hearth_chat_request r = {
            .messages_json = TOOL_MESSAGES_JSON, .tools_json = TOOLS_JSON, .add_generation_prompt = true};
        char *out = hearth_chat_template_render_ex(t, &r, &err);
        CHECKF(out != NULL, "%s: %s", k->name, err.msg);
        char what[64];
        snprintf(what, sizeof what, "%s with tools", k->name);
        CHECK(same_text(what, out, k->expect));
        free(out);
        hearth_chat_template_free(t);
    }
    /* Hermes 3's json_to_python_type recurses forever on a union type that
     * contains "null" (it iterates the string's characters): a clean error */
    hearth_chat_template *t = parse_with_tokens(TEMPLATE_HERMES3, "", "");
    REQUIRE(t);
    hearth_error err = {0};
    hearth_chat_request r = {
        .messages_json = "[{\"role\": \"user\", \"content\": \"hi\"}]",
        .tools_json =
            "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", "
            "\"parameters\": {\"type\": \"object\", \"properties\": {\"u\": {\"type\": [\"string\", "
            "\"null\"], \"description\": \"x\"}}}}}]",
        .add_generation_prompt = true};
    char *out = hearth_chat_template_render_ex(t, &r, &err);
    CHECK(out == NULL);
    CHECK(err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "nested deeper than");
    CHECK_CONTAINS(err.msg, "chat template: line ");
    free(out);
    /* bad JSON from a client */
    hearth_chat_request bad = {.messages_json = "[{\"role\": ", .add_generation_prompt = true};
    CHECK(hearth_chat_template_render_ex(t, &bad, &err) == NULL && err.code == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "messages");
    hearth_chat_request bad2 = {.messages_json = "[]", .tools_json = "{\"not\": \"a list\"}"};
    CHECK(hearth_chat_template_render_ex(t, &bad2, &err) == NULL && err.code == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "tools");
    hearth_chat_template_free(t);
}

static void test_llama32_date(void) {
    hearth_chat_template *t = parse_with_tokens(TEMPLATE_LLAMA32, "<|begin_of_text|>", "<|eot_id|>");
    REQUIRE(t);
    hearth_error err = {0};
    /* without date_string the template calls strftime_now("%d %b %Y") */
    char *out = hearth_chat_template_render(t, CONV, N_CONV, true, &err);
    REQUIRE(out);
    char today[64], line[96];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(today, sizeof today, "%d %b %Y", &tm);
    snprintf(line, sizeof line, "Today Date: %s\n\n", today);
    CHECK_CONTAINS(out, line);
    free(out);
    REQUIRE(hearth_chat_template_set_var(t, "date_string", "26 Jul 2024", &err));
    out = hearth_chat_template_render(t, CONV, N_CONV, true, &err);
    CHECK(same_text("llama32 fixed date", out, EXPECT_LLAMA32_FIXED_DATE));
    free(out);
    hearth_chat_template_free(t);
}

/* ---------------------------------------------------------------- the KJV models' own template */

static void test_kjv_gguf(void) {
    char path[512];
    test_shared_path(path, sizeof path, "models/hearth-kjv-llama-q8_0.gguf");
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(path, &err);
    if (!g) {
        fprintf(stderr, "test_kjv_gguf: %s (skipped)\n", err.msg);
        CHECK(g != NULL);
        return;
    }
    hearth_chat_template *t = hearth_chat_template_from_gguf(g, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (t) {
        CHECK(strcmp(hearth_chat_template_name(t), "chatml") == 0);
        CHECK(strcmp(hearth_chat_template_bos(t), "<s>") == 0);
        CHECK(strcmp(hearth_chat_template_eos(t), "</s>") == 0);
        static const char want[] =
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
            "question<|im_end|>\n";
        char *out = hearth_chat_template_render(t, CONV, N_CONV, false, &err);
        CHECK(same_text("kjv no generation prompt", out, want));
        free(out);
        out = hearth_chat_template_render(t, CONV, N_CONV, true, &err);
        char want_gen[sizeof want + 32];
        snprintf(want_gen, sizeof want_gen, "%s<|im_start|>assistant\n", want);
        CHECK(same_text("kjv generation prompt", out, want_gen));
        /* the fallback ChatML renders the same text */
        hearth_chat_template *fb = hearth_chat_template_chatml();
        REQUIRE(fb);
        char *out2 = hearth_chat_template_render(fb, CONV, N_CONV, true, &err);
        CHECK(same_text("chatml fallback", out2, want_gen));
        free(out2);
        hearth_chat_template_free(fb);
        free(out);
        hearth_chat_template_free(t);
    }
    /* the fallback rule */
    char note[512];
    t = hearth_chat_template_for_model(g, NULL, note, sizeof note);
    REQUIRE(t);
    CHECK(note[0] == '\0');
    CHECK(strcmp(hearth_chat_template_bos(t), "<s>") == 0);
    hearth_chat_template_free(t);
    t = hearth_chat_template_for_model(g, "{% for m in messages %}", note, sizeof note);
    REQUIRE(t);
    CHECK_CONTAINS(note, "configured chat_template unusable");
    CHECK_CONTAINS(note, "line 1, column 24");
    CHECK_CONTAINS(note, "using the model's template");
    CHECK(strcmp(hearth_chat_template_source(t), "{% for m in messages %}") != 0);
    hearth_chat_template_free(t);
    t = hearth_chat_template_for_model(g, "[{{ messages | length }}]", note, sizeof note);
    REQUIRE(t);
    CHECK(note[0] == '\0');
    char *out = hearth_chat_template_render(t, CONV, N_CONV, false, &err);
    CHECK(out && strcmp(out, "[6]") == 0);
    free(out);
    hearth_chat_template_free(t);
    hearth_gguf_close(g);

    /* a model without a template: ChatML, with a note */
    test_shared_path(path, sizeof path, "models/stories260K-f32.gguf");
    g = hearth_gguf_open(path, &err);
    if (g) {
        hearth_str s;
        bool has = hearth_gguf_get_str(g, "tokenizer.chat_template", &s);
        t = hearth_chat_template_for_model(g, NULL, note, sizeof note);
        REQUIRE(t);
        if (!has) {
            CHECK(strcmp(hearth_chat_template_name(t), "chatml") == 0);
            CHECK_CONTAINS(note, "no tokenizer.chat_template");
            CHECK_CONTAINS(note, "using ChatML");
            CHECK(hearth_chat_template_from_gguf(g, &err) == NULL && err.code == HEARTH_ERR_UNSUPPORTED);
        }
        hearth_chat_template_free(t);
        hearth_gguf_close(g);
    }
    t = hearth_chat_template_for_model(NULL, NULL, note, sizeof note);
    REQUIRE(t);
    CHECK(strcmp(hearth_chat_template_name(t), "chatml") == 0);
    CHECK_CONTAINS(note, "using ChatML");
    hearth_chat_template_free(t);
}

/* ---------------------------------------------------------------- errors users see */

static void check_parse_error(const char *src, hearth_status code, const char *want) {
    hearth_error err = {0};
    hearth_chat_template *t = hearth_chat_template_parse(src, &err);
    CHECKF(t == NULL, "expected a parse error for: %s", src);
    hearth_chat_template_free(t);
    CHECKF(err.code == code, "%s: code %s, want %s (%s)", src, hearth_status_name(err.code),
           hearth_status_name(code), err.msg);
    CHECKF(strcmp(err.msg, want) == 0, "%s:\n  got:  %s\n  want: %s", src, err.msg, want);
}

static void check_render_error(const char *src, hearth_status code, const char *want) {
    hearth_error err = {0};
    hearth_chat_template *t = hearth_chat_template_parse(src, &err);
    CHECKF(t != NULL, "%s: %s", src, err.msg);
    if (!t) return;
    char *out = hearth_chat_template_render(t, CONV, N_CONV, true, &err);
    CHECKF(out == NULL, "expected a render error for: %s", src);
    free(out);
    CHECKF(err.code == code, "%s: code %s, want %s (%s)", src, hearth_status_name(err.code),
           hearth_status_name(code), err.msg);
    CHECKF(strcmp(err.msg, want) == 0, "%s:\n  got:  %s\n  want: %s", src, err.msg, want);
    hearth_chat_template_free(t);
}

static void test_errors(void) {
    check_parse_error("Hello\n{% if messages %}\n  {{ messages[0].content + }}\n{% endif %}",
                      HEARTH_ERR_FORMAT,
                      "chat template: line 3, column 28: expected an expression, got '}}'");
    check_parse_error(
        "{% for m in messages %}\n{{ m.content }}", HEARTH_ERR_FORMAT,
        "chat template: line 2, column 16: unexpected end of template: '{% for %}' opened at line 1, "
        "column 4 needs '{% endfor %}'");
    check_parse_error(
        "{% if true %}\n{% endfor %}", HEARTH_ERR_FORMAT,
        "chat template: line 2, column 4: unexpected 'endfor' inside '{% if %}' opened at line 1, "
        "column 4 (expected 'endif')");
    check_parse_error("x {% endif %}", HEARTH_ERR_FORMAT,
                      "chat template: line 1, column 6: unexpected 'endif' (no open block)");
    check_parse_error("{{ messages | frobnicate }}", HEARTH_ERR_UNSUPPORTED,
                      "chat template: line 1, column 15: no filter named 'frobnicate'");
    check_parse_error("{% if x is frobnicated %}{% endif %}", HEARTH_ERR_UNSUPPORTED,
                      "chat template: line 1, column 12: no test named 'frobnicated'");
    check_parse_error("{% include 'other.jinja' %}", HEARTH_ERR_UNSUPPORTED,
                      "chat template: line 1, column 4: {% include %} is not supported in chat templates");
    check_parse_error("{% frob %}", HEARTH_ERR_FORMAT, "chat template: line 1, column 4: unknown tag 'frob'");
    check_parse_error("{{ 'abc }}", HEARTH_ERR_FORMAT,
                      "chat template: line 1, column 4: unterminated string literal");
    check_parse_error("a\n{# note", HEARTH_ERR_FORMAT,
                      "chat template: line 2, column 1: unterminated comment (missing '#}')");
    check_parse_error("{{ x ", HEARTH_ERR_FORMAT,
                      "chat template: line 1, column 1: unterminated '{{' tag (missing '}}')");
    check_parse_error("{{ ) }}", HEARTH_ERR_FORMAT, "chat template: line 1, column 4: unexpected ')'");
    check_parse_error("{% break %}", HEARTH_ERR_FORMAT,
                      "chat template: line 1, column 4: 'break' outside of a loop");
    check_parse_error("{% for x in y recursive %}{% endfor %}", HEARTH_ERR_UNSUPPORTED,
                      "chat template: line 1, column 15: recursive loops are not supported");

    /* raise_exception surfaces the template's own message */
    check_render_error("{% if messages[-1].role == 'user' %}\n  {{- raise_exception('The last message must "
                       "be the assistant\\'s') }}\n{% endif %}",
                       HEARTH_ERR_INVALID,
                       "chat template: line 2, column 7: The last message must be the assistant's");
    /* runtime errors name the place */
    check_render_error("{{ messages[0].content + 1 }}", HEARTH_ERR_FORMAT,
                       "chat template: line 1, column 24: unsupported operand types for +: 'str' and 'int'");
    check_render_error("\n  {{ tools_list.first }}", HEARTH_ERR_FORMAT,
                       "chat template: line 2, column 6: 'tools_list' is undefined");
    check_render_error("{{ messages.append(1) }}", HEARTH_ERR_UNSUPPORTED,
                       "chat template: line 1, column 13: 'list' object has no supported method 'append'");
    check_render_error("{{ frob(1) }}", HEARTH_ERR_FORMAT,
                       "chat template: line 1, column 4: 'frob' is undefined");
    check_render_error("{% set x = 1 %}{% set x.y = 2 %}", HEARTH_ERR_FORMAT,
                       "chat template: line 1, column 19: cannot assign attribute on non-namespace object");
    check_render_error("{% for a, b, c in messages %}{% endfor %}", HEARTH_ERR_FORMAT,
                       "chat template: line 1, column 4: not enough values to unpack (expected 3, got 2)");

    /* Gemma's role alternation check, through the polyfill */
    const chat_template_case *gemma = NULL;
    for (size_t i = 0; i < sizeof chat_template_cases / sizeof chat_template_cases[0]; i++)
        if (strcmp(chat_template_cases[i].name, "gemma2") == 0) gemma = &chat_template_cases[i];
    REQUIRE(gemma);
    hearth_chat_template *t = parse_with_tokens(gemma->source, gemma->bos, gemma->eos);
    REQUIRE(t);
    static const hearth_chat_msg twice[] = {{"system", "s"}, {"user", "a"}, {"user", "b"}};
    hearth_error err = {0};
    char *out = hearth_chat_template_render(t, twice, 3, true, &err);
    CHECK(out == NULL);
    CHECK(err.code == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "Conversation roles must alternate user/assistant/user/assistant/...");
    CHECK_CONTAINS(err.msg, "chat template: line 1, column ");
    /* the fallback never hides the template's own rejection */
    hearth_chat_request r = {
        .msgs = twice, .n_msgs = 3, .add_generation_prompt = true, .fallback_chatml = true};
    CHECK(hearth_chat_template_render_ex(t, &r, &err) == NULL && err.code == HEARTH_ERR_INVALID);
    free(out);
    hearth_chat_template_free(t);

    /* fallback_chatml: a template that fails by itself is replaced for the request */
    t = parse_with_tokens("{{ bos_token }}{{ messages[0].content + 1 }}", "<s>", "</s>");
    REQUIRE(t);
    char note[512];
    static const hearth_chat_msg one[] = {{"user", "Hi"}};
    hearth_chat_request fr = {.msgs = one,
                              .n_msgs = 1,
                              .add_generation_prompt = true,
                              .fallback_chatml = true,
                              .note = note,
                              .note_cap = sizeof note};
    out = hearth_chat_template_render_ex(t, &fr, &err);
    CHECK(same_text("fallback", out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    CHECK_CONTAINS(note, "chat template failed (chat template: line 1, column 39: unsupported operand types");
    CHECK_CONTAINS(note, "used ChatML");
    free(out);
    hearth_chat_template_free(t);
}

/* ---------------------------------------------------------------- bounds */

static void test_bounds(void) {
    hearth_error err = {0};
    clock_t start = clock();
    /* time: a quadratic loop runs out of steps instead of running for hours */
    char *out = render_plain(
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "takes too long to render");
    /* memory: a string that doubles every iteration */
    out = render_plain(
        "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "bytes of memory");
    out = render_plain("{{ 'x' * 1000000000000 }}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    /* output: more than 16 MiB of text */
    out = render_plain("{% for i in range(100000) %}{{ 'x' * 200 }}{% endfor %}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_CONTEXT);
    CHECK_CONTAINS(err.msg, "rendered text exceeds 16777216 bytes");
    /* recursion */
    out = render_plain("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "nested deeper than");
    /* a namespace that contains itself, printed and serialized */
    out = render_plain("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    out = render_plain(
        "{% set ns = namespace(l=[]) %}{% set d = {'a': ns} %}{% set ns.l = [d, d] %}{{ d | tojson }}", &err);
    CHECK(out == NULL);
    /* parser depth */
    char deep[1200];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 500; i++)
        deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 500; i++)
        deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    out = render_plain(deep, &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "nested deeper than");
    k = 0;
    for (int i = 0; i < 300; i++)
        k += (size_t)snprintf(deep + k, sizeof deep - k, "not ");
    out = render_plain(deep, &err); /* plain text: fine */
    CHECK(out != NULL);
    free(out);
    /* range is bounded like Jinja2's sandbox */
    out = render_plain("{{ range(1000000) | length }}", &err);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "range too big");
    /* integer overflow is an error, not undefined behaviour */
    out = render_plain("{{ 9223372036854775807 + 1 }}", &err);
    CHECK(out == NULL && err.code == HEARTH_ERR_UNSUPPORTED);
    out = render_plain("{{ 2 ** 64 }}", &err);
    CHECK(out == NULL);
    out = render_plain("{{ (-9223372036854775807 - 1) // -1 }}", &err);
    CHECK(out == NULL);
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    CHECKF(secs < 30, "bounds took %.1f s", secs);
}

/* ---------------------------------------------------------------- Jinja semantics (checked against
 * Jinja2 3.1.6) */

static void test_semantics(void) {
    static const struct {
        const char *src, *want;
    } cases[] = {
        /* whitespace control, trim_blocks, lstrip_blocks */
        {"  {% if true %}\n  yes\n  {% endif %}\n  {{ 'v' }}\n  {# c #}\n  end\n", "  yes\n  v\n  end"},
        {"a\n  {%- if true -%}  \n b {%+ if true %}c{% endif %}\n{% endif %}\n", "ab c"},
        {"{% raw %}{{ x }}{% endraw %}|\n  {% raw -%}  a  {%- endraw %}\n", "{{ x }}|\na"},
        {"line1\r\nline2\r{{ 'a' }}\n\n", "line1\nline2\na\n"},
        /* scoping: a loop iteration is a scope; namespace() carries state out */
        {"{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }};{% endfor %}[{{x}}]",
         "12;12;12;[1]"},
        {"{% set ns = namespace(a=1) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a "
         "}}",
         "4"},
        /* loop object */
        {"{% for x in [1,2,3,4] if x is odd %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% else %}none{% "
         "endfor %}",
         "1/2:1 2/2:3 "},
        {"{% for x in 'ab' %}{{ loop.first }}{{ loop.last }}{{ loop.revindex0 }}{{ loop.cycle('-', '+') }}{% "
         "endfor %}",
         "TrueFalse1-FalseTrue0+"},
        {"{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif "
         "%}{{ i }}{% endfor %}",
         "0134"},
        /* Python values */
        {"{{ 1.0 }} {{ 1e20 }} {{ 3/2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 0.0001 }} {{ 0.00001 }}",
         "1.0 1e+20 1.5 -4 2 1024 0.0001 1e-05"},
        {"{{ [1, 'a', none, true, {'k': \"it's\"}] }} {{ (1,) }}",
         "[1, 'a', None, True, {'k': \"it's\"}] (1,)"},
        {"{{ none }}|{{ undefined_thing }}|{{ undefined_thing | default('d') }}", "None||d"},
        {"{{ 'a' if none else 'b' if 0 else 'c' }} {{ none or 'x' }} {{ 0 and 1 }}", "c x 0"},
        /* strings, slices, filters */
        {"{{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'h\xc3\xa9llo'[1] }} {{ 'h\xc3\xa9llo' | length }}",
         "el olleh \xc3\xa9 5"},
        {"{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ \"they're bill's\" | title }}|{{ "
         "\"they're\".title() }}",
         "x|hi|They're Bill's|They'Re"},
        {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'abc'.endswith(('x','c')) }} {{ "
         "'-'.join(['1','2']) }}",
         "['a', 'b', '', 'c'] ['a', 'b'] True 1-2"},
        {"{{ [3,1,2] | sort }} {{ ['b','A','c'] | sort }} {{ [1,1,2,'a','A'] | unique | list }} {{ [1,2,3] | "
         "sum }}",
         "[1, 2, 3] ['A', 'b', 'c'] [1, 2, 'a'] 6"},
        {"{{ [{'r':'u','c':1},{'r':'a','c':2}] | selectattr('r', 'equalto', 'u') | map(attribute='c') | list "
         "}}",
         "[1]"},
        {"{{ {'b': 1, 'a': [1, 2.5, '\xc3\xa9\\n', none]} | tojson }}",
         "{\"b\": 1, \"a\": [1, 2.5, \"\xc3\xa9\\n\", null]}"},
        {"{{ {'a': {'b': 1}} | tojson(indent=2) }}", "{\n  \"a\": {\n    \"b\": 1\n  }\n}"},
        {"{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=(',', ':')) }}", "{\"a\":2,\"b\":1}"},
        {"{{ 'a\\nb' | indent(2) }}|{{ 'x' | indent('>>', first=True) }}", "a\n  b|>>x"},
        {"{% set d = {'b': 2, 'a': 1} %}{{ d | dictsort }} {{ d.get('z', 5) }} {{ 'a' in d }} {{ d | items | "
         "list }}",
         "[('a', 1), ('b', 2)] 5 True [('b', 2), ('a', 1)]"},
        /* macros, block set, filter blocks */
        {"{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Bob') }} "
         "{{ greet('Al', greeting='Yo') }}",
         "Hi, Bob! Yo, Al!"},
        {"{% set s %}  block {{ 1 + 1 }} {% endset %}[{{ s }}]{% filter upper %}xyz{% endfilter %}",
         "[  block 2 ]XYZ"},
        /* tests */
        {"{{ 4 is divisibleby 2 }} {{ 'abc' is lower }} {{ 2 is in [1,2] }} {{ x is not defined }} {{ [] is "
         "iterable }}",
         "True True True True True"},
        {"{{ '%s-%05d|%.2f|%r|%%' % ('a', 42, 3.14159, 'q') }} {{ [1] * 2 }} {{ [none, undefined_thing] }}",
         "a-00042|3.14|'q'|% [1, 1] [None, Undefined]"},
        {"{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1,2] < [1,3] }} {{ 1 == 1.0 }} {{ 'x' not in 'abc' }}",
         "True False True True True"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hearth_error err = {0};
        char *out = render_plain(cases[i].src, &err);
        CHECKF(out != NULL, "%s: %s", cases[i].src, err.msg);
        char what[64];
        snprintf(what, sizeof what, "semantics case %zu", i);
        CHECK(same_text(what, out, cases[i].want));
        free(out);
    }
    /* variables from JSON (Qwen3's enable_thinking style) and strings */
    hearth_error err = {0};
    hearth_chat_template *t = hearth_chat_template_parse(
        "{{ enable_thinking }} {{ opts.depth + 1 }} {{ name }} {{ missing is none }}", &err);
    REQUIRE(t);
    REQUIRE(hearth_chat_template_set_json(t, "enable_thinking", "false", &err));
    REQUIRE(hearth_chat_template_set_json(t, "opts", "{\"depth\": 2}", &err));
    REQUIRE(hearth_chat_template_set_var(t, "name", "kjv", &err));
    REQUIRE(hearth_chat_template_set_var(t, "missing", NULL, &err));
    CHECK(!hearth_chat_template_set_json(t, "bad", "{oops", &err) && err.code == HEARTH_ERR_INVALID);
    char *out = hearth_chat_template_render(t, CONV, 0, false, &err);
    CHECK(same_text("json variables", out, "False 3 kjv True"));
    free(out);
    hearth_chat_template_free(t);
    /* a message without content renders as None, as in transformers */
    t = hearth_chat_template_parse("{% for m in messages %}[{{ m.content }}]{% endfor %}", &err);
    REQUIRE(t);
    static const hearth_chat_msg nul[] = {{"assistant", NULL}};
    out = hearth_chat_template_render(t, nul, 1, false, &err);
    CHECK(same_text("null content", out, "[None]"));
    free(out);
    hearth_chat_template_free(t);
}

/* ---------------------------------------------------------------- concurrency */

typedef struct {
    const hearth_chat_template *t;
    const char *want;
    int ok;
} thread_arg;

static void *render_many(void *p) {
    thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 50; i++) {
        hearth_error err = {0};
        char *out = hearth_chat_template_render(a->t, CONV, N_CONV, true, &err);
        if (!out || strcmp(out, a->want) != 0) a->ok = 0;
        free(out);
    }
    return NULL;
}

static void test_threads(void) {
    const chat_template_case *k = NULL;
    for (size_t i = 0; i < sizeof chat_template_cases / sizeof chat_template_cases[0]; i++)
        if (strcmp(chat_template_cases[i].name, "llama31") == 0) k = &chat_template_cases[i];
    REQUIRE(k);
    hearth_chat_template *t = parse_with_tokens(k->source, k->bos, k->eos);
    REQUIRE(t);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){.t = t, .want = k->expect_gen};
        REQUIRE(pthread_create(&th[i], NULL, render_many, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok);
    }
    hearth_chat_template_free(t);
}

int main(void) {
    test_real_templates();
    test_family_names();
    test_tools();
    test_llama32_date();
    test_kjv_gguf();
    test_errors();
    test_bounds();
    test_semantics();
    test_threads();
    return test_summary("test_chat_template");
}
