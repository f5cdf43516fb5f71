/*
 * chat_commands.h - the slash commands of `hearth chat` (/help, /system,
 * /clear, /temp, /top-p, /model, /save, /load, /history, /stats, /quit).
 *
 * Shared by the TUI and the stdin mode: a command acts on the session and
 * reports through `say` (one message, possibly several lines); it never
 * touches the screen. The caller redraws the transcript when the result says
 * the conversation was replaced.
 */
#ifndef HEARTH_APP_CHAT_COMMANDS_H
#define HEARTH_APP_CHAT_COMMANDS_H

#include <stdbool.h>

#include "chat_session.h"

typedef enum chat_cmd_result {
    CHAT_CMD_OK = 0,
    CHAT_CMD_ERROR, /* said why */
    CHAT_CMD_QUIT,
    CHAT_CMD_RELOADED, /* /clear or /load: show the conversation afresh */
} chat_cmd_result;

typedef void (*chat_say_fn)(void *user, bool error, const char *text);

/* line starts with '/'. */
chat_cmd_result chat_command_run(chat_session *s, const char *line, chat_say_fn say, void *user);

/* The /help text (commands and keys). */
const char *chat_help_text(void);

#endif
