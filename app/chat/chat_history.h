/*
 * chat_history.h - saved conversations for `hearth chat`, in SQLite.
 *
 * Where: --history-db PATH, else $XDG_DATA_HOME/hearth/history.sqlite (when
 * XDG_DATA_HOME is absolute), else ~/.local/share/hearth/history.sqlite.
 * Parent directories are created on open.
 *
 * Schema (version 1, PRAGMA user_version):
 *   conversations(id, name UNIQUE, model, system, created, updated)
 *   messages(conversation, seq, role, content)   -- role: user | assistant
 * Saving a name that exists replaces that conversation's messages, in one
 * transaction: a crash leaves either the old or the new version.
 *
 * Ownership: the handle owns its SQLite connection. One thread at a time.
 * No ncurses here.
 */
#ifndef HEARTH_APP_CHAT_HISTORY_H
#define HEARTH_APP_CHAT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "chat_conv.h"
#include "core/error.h"

typedef struct chat_history chat_history;

/* The default path as above; returns buf, or NULL when no home is known. */
char *chat_history_default_path(char *buf, size_t cap);

chat_history *chat_history_open(const char *path, hearth_error *err);
void chat_history_close(chat_history *h);
const char *chat_history_path(const chat_history *h);

/* Save c's system prompt and finished messages under `name` (replacing). */
hearth_status chat_history_save(chat_history *h, const char *name, const char *model, const chat_conv *c,
                                hearth_error *err);

/* Replace c's system prompt and messages with the saved ones. model_out
 * (optional, cap bytes) receives the model the conversation was saved with.
 * HEARTH_ERR_INVALID with "no conversation named ..." when absent. */
hearth_status chat_history_load(chat_history *h, const char *name, chat_conv *c, char *model_out, size_t cap,
                                hearth_error *err);

typedef struct chat_history_entry {
    const char *name;
    const char *model;
    int n_messages;
    int64_t updated;     /* unix seconds */
    const char *preview; /* the first user message (may be long) */
} chat_history_entry;

/* Call fn for each saved conversation, most recently updated first. */
hearth_status chat_history_list(chat_history *h, void (*fn)(const chat_history_entry *e, void *user),
                                void *user, hearth_error *err);

#endif
