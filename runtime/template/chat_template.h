/*
 * chat_template.h - turn a conversation into the prompt text a model expects,
 * using the model's own Jinja chat template (GGUF tokenizer.chat_template).
 *
 * Owner: chat templates (used by `hearth serve` and the TUI). The Jinja
 * interpreter lives in jinja.h; docs/CHAT_TEMPLATES.md lists the supported
 * Jinja subset, the variables a template sees and the fallback rule.
 *
 * Rendering matches Hugging Face transformers' apply_chat_template: the
 * template sees `messages` (a list of {role, content, ...} dicts),
 * `add_generation_prompt`, `tools` (none unless given), `bos_token` and
 * `eos_token` (the vocabulary's texts for those ids, "" when unknown) and any
 * variables set with hearth_chat_template_set_*; raise_exception() and
 * strftime_now() are available.
 *
 * Fallback rule (also in the docs):
 *  1. a configured override (config key `chat_template`) if it parses;
 *  2. else the model's tokenizer.chat_template if present and it parses;
 *  3. else ChatML (<|im_start|>role\ncontent<|im_end|>\n).
 * At render time a template that raises on a leading system message (Gemma,
 * early Mistral) is retried once with the system text merged into the first
 * user message ("<system>\n\n<user>"); with fallback_chatml a template that
 * fails for any other reason than its own raise_exception() is replaced by
 * ChatML for that request. Both set the request's note.
 *
 * Ownership and threads: a hearth_chat_template owns its compiled template,
 * source copy and variables. Rendering does not modify it, so several threads
 * may render with one template at once; the set_* calls are for setup, before
 * the template is shared. Rendered strings are malloc'd and owned by the
 * caller (free()).
 *
 * Bounds (the template is outside input): 4 MiB of source, 16 MiB of output,
 * 64 MiB of working memory and a step budget per render; exceeding any of them
 * is an error, never a crash or a hang.
 */
#ifndef HEARTH_CHAT_TEMPLATE_H
#define HEARTH_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "runtime/format/gguf.h"

typedef struct hearth_chat_template hearth_chat_template;

/* One message. content NULL renders as None (a tool-call message). */
typedef struct hearth_chat_msg {
    const char *role;
    const char *content;
} hearth_chat_msg;

/* Compile a template. Errors name line and column ("chat template: line 3,
 * column 14: unexpected 'endfor' ..."): HEARTH_ERR_FORMAT for syntax errors,
 * HEARTH_ERR_UNSUPPORTED for Jinja features outside the supported subset. */
hearth_chat_template *hearth_chat_template_parse(const char *source, hearth_error *err);

/* The model's template (tokenizer.chat_template) with bos_token/eos_token set
 * from the vocabulary (tokenizer.ggml.tokens[tokenizer.ggml.bos_token_id]).
 * NULL with HEARTH_ERR_UNSUPPORTED when the file has no template. */
hearth_chat_template *hearth_chat_template_from_gguf(const hearth_gguf *g, hearth_error *err);

/* The ChatML fallback (never fails except out of memory: NULL). */
hearth_chat_template *hearth_chat_template_chatml(void);

/* The fallback rule above in one call: `override_source` (may be NULL) first,
 * then the model's template, then ChatML, with bos/eos from `g` (may be NULL).
 * Writes a one-line note (why a fallback was taken) into note/note_cap when
 * one was taken, else an empty string. NULL only when out of memory. */
hearth_chat_template *hearth_chat_template_for_model(const hearth_gguf *g, const char *override_source,
                                                     char *note, size_t note_cap);

void hearth_chat_template_free(hearth_chat_template *t);

/* Set a string variable the template sees (bos_token, eos_token, ...);
 * value NULL makes it None. */
bool hearth_chat_template_set_var(hearth_chat_template *t, const char *name, const char *value,
                                  hearth_error *err);
/* Set a variable from JSON text ("false", "{\"x\": 1}", ...), e.g.
 * enable_thinking for Qwen3. */
bool hearth_chat_template_set_json(hearth_chat_template *t, const char *name, const char *json,
                                   hearth_error *err);

/* A guess of the template family for display: "chatml", "llama3", "llama2",
 * "mistral", "gemma", "phi3", "zephyr", "deepseek", "deepseek-coder",
 * "command-r", "granite", "openchat" or "custom". */
const char *hearth_chat_template_name(const hearth_chat_template *t);
const char *hearth_chat_template_source(const hearth_chat_template *t);
/* Current bos_token / eos_token text ("" when unset): a caller tokenizing the
 * rendered prompt should not add another BOS when the prompt starts with it. */
const char *hearth_chat_template_bos(const hearth_chat_template *t);
const char *hearth_chat_template_eos(const hearth_chat_template *t);

/* Render msgs[0..n). Returns malloc'd text or NULL with err:
 * HEARTH_ERR_INVALID when the template rejected the conversation with
 * raise_exception (the message is the template's), HEARTH_ERR_FORMAT /
 * HEARTH_ERR_UNSUPPORTED when the template itself failed, HEARTH_ERR_CONTEXT
 * past 16 MiB of output, HEARTH_ERR_NOMEM. */
char *hearth_chat_template_render(const hearth_chat_template *t, const hearth_chat_msg *msgs, int n,
                                  bool add_generation_prompt, hearth_error *err);

/* The full request form. */
typedef struct hearth_chat_request {
    const hearth_chat_msg *msgs; /* messages as role/content pairs ... */
    int n_msgs;
    const char *messages_json; /* ... or an OpenAI-style JSON array of message objects (tool_calls,
                                  name, list content, ...); used instead of msgs when non-NULL */
    const char *tools_json;    /* JSON array of tool definitions, or NULL (tools = none) */
    bool add_generation_prompt;
    bool fallback_chatml; /* template failure (not raise_exception) -> render with ChatML */
    char *note;           /* optional: receives a one-line note when a polyfill/fallback was used */
    size_t note_cap;
    size_t max_output;     /* bytes of prompt text; 0: 16 MiB */
    uint64_t max_steps;    /* evaluation steps (a time bound); 0: 20 million (well under a second) */
    const char *vars_json; /* NULL or a JSON object: per-request variables (enable_thinking, ...),
                              set after the template's own */
} hearth_chat_request;

char *hearth_chat_template_render_ex(const hearth_chat_template *t, const hearth_chat_request *req,
                                     hearth_error *err);

#endif
