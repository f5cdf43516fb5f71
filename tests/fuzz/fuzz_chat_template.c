/*
 * fuzz_chat_template.c - libFuzzer target for chat templates: the template
 * text is outside input (GGUF metadata, config), so compiling and rendering
 * any bytes must end in text or an error, never a crash, a leak, undefined
 * behaviour or a hang.
 *
 * Owner: chat templates. Input: the template source, optionally followed by a
 * NUL byte and an OpenAI-style messages JSON array, optionally followed by a
 * NUL byte and a tools JSON array (without them the conversation is a fixed
 * system/user/assistant/user exchange). Each input is parsed and rendered
 * once with the ChatML fallback on, with small step/output budgets so
 * pathological loops fail fast.
 *
 * Checked beyond the sanitizers: every parse error names a line and column;
 * every failure has a message.
 *
 * `fuzz_chat_template --write-seeds DIR` writes the real templates of
 * tests/unit/chat_templates.h as seed inputs and exits (tests/fuzz/run.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/template/chat_template.h"
#include "tests/unit/runtime/template/chat_templates.h"

static const hearth_chat_msg CONV[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "   Hi there   "},
    {"user", "Who are you?"},
};

static void write_seed(const char *dir, const char *name, const char *a, const char *b, const char *c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(a, 1, strlen(a), f);
    if (b) {
        fputc('\0', f);
        fwrite(b, 1, strlen(b), f);
    }
    if (c) {
        fputc('\0', f);
        fwrite(c, 1, strlen(c), f);
    }
    fclose(f);
}

static void write_seeds(const char *dir) {
    char name[128];
    for (size_t i = 0; i < sizeof chat_template_cases / sizeof chat_template_cases[0]; i++) {
        const chat_template_case *k = &chat_template_cases[i];
        snprintf(name, sizeof name, "%s.jinja", k->name);
        write_seed(dir, name, k->source, NULL, NULL);
        snprintf(name, sizeof name, "%s-tools", k->name);
        write_seed(dir, name, k->source, TOOL_MESSAGES_JSON, TOOLS_JSON);
    }
    write_seed(dir, "hermes3-tools", TEMPLATE_HERMES3, TOOL_MESSAGES_JSON, TOOLS_JSON);
    write_seed(dir, "llama32.jinja", TEMPLATE_LLAMA32, NULL, NULL);
    write_seed(dir, "text-only", EXPECT_LLAMA32_FIXED_DATE, NULL, NULL);
    for (size_t i = 0; i < sizeof chat_template_tool_cases / sizeof chat_template_tool_cases[0]; i++) {
        snprintf(name, sizeof name, "expected-%s", chat_template_tool_cases[i].name);
        write_seed(dir, name, chat_template_tool_cases[i].expect, NULL, NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i + 1 < *argc; i++)
        if (strcmp((*argv)[i], "--write-seeds") == 0) {
            write_seeds((*argv)[i + 1]);
            exit(0);
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* split at NUL bytes: template, messages JSON, tools JSON */
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *parts[3] = {buf, NULL, NULL};
    size_t np = 1;
    for (size_t i = 0; i < size && np < 3; i++)
        if (buf[i] == '\0') parts[np++] = buf + i + 1;

    hearth_error err = {0};
    hearth_chat_template *t = hearth_chat_template_parse(parts[0], &err);
    if (!t) {
        if (err.code != HEARTH_ERR_NOMEM && !strstr(err.msg, ", column ")) __builtin_trap();
        free(buf);
        return 0;
    }
    hearth_chat_template_set_var(t, "bos_token", "<s>", NULL);
    hearth_chat_template_set_var(t, "eos_token", "</s>", NULL);
    (void)hearth_chat_template_name(t);

    char note[256];
    hearth_chat_request r = {
        .msgs = CONV,
        .n_msgs = (int)(sizeof CONV / sizeof CONV[0]),
        .messages_json = parts[1],
        .tools_json = parts[2],
        .add_generation_prompt = size & 1,
        .fallback_chatml = true,
        .note = note,
        .note_cap = sizeof note,
        .max_output = 1u << 20,
        .max_steps = 200000,
    };
    char *out = hearth_chat_template_render_ex(t, &r, &err);
    if (!out && !err.msg[0]) __builtin_trap();
    free(out);
    hearth_chat_template_free(t);
    free(buf);
    return 0;
}
