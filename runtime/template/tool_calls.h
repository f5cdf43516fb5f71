/*
 * tool_calls.h - split what a chat model generates into content, reasoning
 * (<think>...</think>) and tool calls, as text streams in.
 *
 * Owner: chat templates (used by `hearth serve`'s chat routes and the TUI).
 *
 * Tool-call syntaxes, chosen from the model's chat template source
 * (hearth_tool_syntax_for_template):
 *   HERMES   <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen, Hermes)
 *   LLAMA3   the whole output is {"name": ..., "parameters": {...}} (or a list
 *            of them, or ';'-separated), or <|python_tag|> followed by that JSON
 *   MISTRAL  [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] or
 *            [TOOL_CALLS]name[ARGS]{...}
 *   GENERIC  every marker above, and an output that is only a JSON object
 *            (or array) of {name, arguments|parameters}.
 *
 * Invariants:
 *  - every byte fed comes out exactly once, as content, reasoning, or part of
 *    a tool call (the call's own markers and JSON are never content), except
 *    the whitespace right after </think> and between/after calls;
 *  - text that might be the start of a marker is held back until it is known
 *    not to be one, so a marker split across feeds is still recognised;
 *  - a call block whose JSON is not {name: string, arguments: object|string}
 *    is not a call: its whole text (markers included) comes out as content
 *    and hearth_out_parser_n_malformed counts it;
 *  - arguments come out as compact JSON text of an object.
 *
 * Ownership: a parser owns its buffers; events point into them and are valid
 * only during the callback. One parser per generation, one thread at a time.
 */
#ifndef HEARTH_TOOL_CALLS_H
#define HEARTH_TOOL_CALLS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum hearth_tool_syntax {
    HEARTH_TOOLS_GENERIC = 0,
    HEARTH_TOOLS_HERMES,
    HEARTH_TOOLS_LLAMA3,
    HEARTH_TOOLS_MISTRAL,
} hearth_tool_syntax;

/* The syntax the template's model family uses (GENERIC when unknown or NULL). */
hearth_tool_syntax hearth_tool_syntax_for_template(const char *template_source);
const char *hearth_tool_syntax_name(hearth_tool_syntax s);
/* Whether the template renders a `tools` list (mentions the variable). */
bool hearth_template_renders_tools(const char *template_source);
/* Whether it is a reasoning template (renders <think> or reads enable_thinking). */
bool hearth_template_has_thinking(const char *template_source);

typedef enum hearth_out_kind {
    HEARTH_OUT_CONTENT,
    HEARTH_OUT_REASONING,
    HEARTH_OUT_TOOL_CALL,
} hearth_out_kind;

typedef struct hearth_out_event {
    hearth_out_kind kind;
    const char *text; /* CONTENT / REASONING: the new text (not NUL-terminated) */
    size_t len;
    int index;             /* TOOL_CALL: 0, 1, ... in order of appearance */
    const char *name;      /* TOOL_CALL: the function name (NUL-terminated) */
    const char *arguments; /* TOOL_CALL: compact JSON object text (NUL-terminated) */
} hearth_out_event;

typedef void (*hearth_out_fn)(void *user, const hearth_out_event *ev);

typedef struct hearth_out_options {
    hearth_tool_syntax syntax;
    bool tools;              /* parse tool calls (false: markers are content) */
    bool reasoning;          /* split <think>...</think> (false: it is content) */
    bool start_in_reasoning; /* the prompt ended inside an open <think> */
} hearth_out_options;

typedef struct hearth_out_parser hearth_out_parser;

/* NULL only when out of memory. */
hearth_out_parser *hearth_out_parser_new(const hearth_out_options *opt);
void hearth_out_parser_free(hearth_out_parser *p);
/* Feed generated text; events for what is now certain go to fn. false only
 * when out of memory (err set). */
bool hearth_out_parser_feed(hearth_out_parser *p, const char *text, size_t n, hearth_out_fn fn, void *user,
                            hearth_error *err);
/* The generation ended: flush what was held back (an unclosed call block is
 * parsed as if closed). */
bool hearth_out_parser_finish(hearth_out_parser *p, hearth_out_fn fn, void *user, hearth_error *err);
int hearth_out_parser_n_calls(const hearth_out_parser *p);
int hearth_out_parser_n_malformed(const hearth_out_parser *p);

#endif
