/*
 * model_store.h - the local store of pulled models: GGUF files under
 * $XDG_DATA_HOME/hearth/models/ (or ~/.local/share/hearth/models/) and a
 * SQLite manifest (manifest.sqlite in that folder) naming them.
 *
 * A manifest row is (name, file, source, sha256, size, pulled_at). A row is
 * written only after the file is complete, verified and renamed into place
 * (app/commands/cmd_pull.c), so a name in the manifest always refers to a
 * whole file. Ownership: the caller owns the hearth_model_store handle and
 * closes it; entries are copied into caller-owned structs. Not shared
 * between threads.
 */
#ifndef HEARTH_MODEL_STORE_H
#define HEARTH_MODEL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct hearth_model_store hearth_model_store;

typedef struct hearth_model_entry {
    char name[256];
    char file[1024]; /* absolute path of the GGUF file (the first part of a split model) */
    char source[2048];
    char sha256[65]; /* lowercase hex, "" when none was known */
    uint64_t size;
    int64_t pulled_at; /* seconds since the Unix epoch */
} hearth_model_entry;

/* The models folder into buf ("" when neither $XDG_DATA_HOME nor $HOME is set). */
const char *hearth_model_store_dir(char *buf, size_t cap);

/* Open (creating the folder and the manifest if missing) the store in dir. */
hearth_model_store *hearth_model_store_open(const char *dir, hearth_error *err);
void hearth_model_store_close(hearth_model_store *s);

/* Insert or replace the row of e->name. */
hearth_status hearth_model_store_put(hearth_model_store *s, const hearth_model_entry *e, hearth_error *err);
/* HEARTH_OK and *out filled, or HEARTH_ERR_INVALID when no such name. */
hearth_status hearth_model_store_get(hearth_model_store *s, const char *name, hearth_model_entry *out,
                                     hearth_error *err);
/* Every row, by name. Returns the count or a negative status. */
int hearth_model_store_list(hearth_model_store *s, void (*fn)(void *ctx, const hearth_model_entry *e),
                            void *ctx, hearth_error *err);
/* Delete the row of name (the caller removes the file). HEARTH_ERR_INVALID when absent. */
hearth_status hearth_model_store_remove(hearth_model_store *s, const char *name, hearth_error *err);

/* Remove name's row, then its file(s) (every part of a split model) unless
 * another row still names the file (a copy, `/api/copy`). *files_removed:
 * whether the files went (may be NULL). HEARTH_ERR_INVALID when absent. */
hearth_status hearth_model_store_delete(hearth_model_store *s, const char *name, bool *files_removed,
                                        hearth_error *err);

/* Resolve a pulled name to its file into buf: NULL when the store or name is absent. */
const char *hearth_model_store_resolve(const char *name, char *buf, size_t cap);

#endif
