/*
 * chat_conv.h - a chat conversation: its messages and the token ids of the
 * rendered conversation, turn by turn. No ncurses, no engine: the TUI, the
 * --once mode and the stdin mode all keep their conversation in one of these.
 *
 * A turn goes: chat_conv_begin (adds the user message and renders the whole
 * conversation with the model's chat template, generation prompt included,
 * into c->prompt), chat_conv_feed for each generated token, chat_conv_end
 * (the answer becomes an assistant message). Every turn's prompt is the whole
 * rendered conversation, so it starts with the previous turn's prompt and the
 * engine's prefix cache reuses those pages.
 *
 * Ownership: the conversation owns its messages, ids and buffers; it borrows
 * the tokenizer and the chat template, which must outlive it (or be replaced
 * with chat_conv_set_model before they go). Not thread-safe: one thread (the
 * UI thread) drives it.
 * Invariants: messages alternate user / assistant, starting with user, except
 * that while a turn is open the last message is the user's; ids_valid false
 * means ids are re-rendered from the message text when next needed.
 */
#ifndef HEARTH_APP_CHAT_CONV_H
#define HEARTH_APP_CHAT_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/serving/engine.h"
#include "runtime/template/chat_template.h"
#include "runtime/text/tokenizer.h"

typedef enum chat_role { CHAT_ROLE_SYSTEM, CHAT_ROLE_USER, CHAT_ROLE_ASSISTANT } chat_role;

const char *chat_role_name(chat_role r); /* "system", "user", "assistant" */
bool chat_role_parse(const char *s, chat_role *out);

typedef struct chat_msg {
    chat_role role;
    char *text; /* UTF-8, malloc'd */
} chat_msg;

typedef struct chat_conv {
    const hearth_tokenizer *tok;      /* borrowed */
    const hearth_chat_template *tmpl; /* borrowed */
    int n_ctx;                        /* the engine's context per sequence */
    char *system;                     /* system prompt, NULL: none */
    chat_msg *msgs;
    int n_msgs;
    size_t cap_msgs;
    hearth_tokens ids; /* the finished turns rendered (system included), for counting */
    bool ids_valid;
    /* the turn in progress */
    bool in_turn;
    hearth_tokens prompt; /* what was submitted */
    hearth_tokens gen;    /* generated ids so far */
    char *answer;         /* generated text so far, NUL-terminated */
    size_t answer_len, answer_cap;
    int n_trimmed; /* old turns dropped (from the prompt, not the transcript) to fit the context */
} chat_conv;

void chat_conv_init(chat_conv *c, const hearth_tokenizer *tok, const hearth_chat_template *tmpl, int n_ctx);
void chat_conv_free(chat_conv *c);

/* A new model: the ids are re-rendered with its tokenizer and template. */
void chat_conv_set_model(chat_conv *c, const hearth_tokenizer *tok, const hearth_chat_template *tmpl,
                         int n_ctx);
/* text NULL or "": no system prompt. */
hearth_status chat_conv_set_system(chat_conv *c, const char *text, hearth_error *err);
/* Forget every message (the system prompt stays). */
void chat_conv_clear(chat_conv *c);
/* Append a finished message (used when loading a saved conversation). */
hearth_status chat_conv_add(chat_conv *c, chat_role role, const char *text, hearth_error *err);

/* Open a turn: add the user message and render the prompt into c->prompt,
 * dropping the oldest turns from the prompt when it would leave fewer than
 * `reserve` tokens of the context for the answer. Fails (and adds nothing)
 * with HEARTH_ERR_CONTEXT when even the newest turn alone does not fit. */
hearth_status chat_conv_begin(chat_conv *c, const char *user_text, int reserve, hearth_error *err);
/* A generated token and its new text (may be empty). */
void chat_conv_feed(chat_conv *c, int32_t token, const char *text, size_t len);
/* Close the turn: the answer so far (possibly cut short) becomes the
 * assistant's message. */
void chat_conv_end(chat_conv *c);
/* The turn could not be submitted: remove its user message. */
void chat_conv_abort(chat_conv *c);

/* Tokens the conversation occupies now (the open turn's prompt + answer
 * while one is open); renders the ids first when they are stale. */
int chat_conv_n_tokens(chat_conv *c);

#endif
