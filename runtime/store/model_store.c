/*
 * model_store.c - the SQLite manifest of pulled models (model_store.h).
 *
 * Schema: models(name TEXT PRIMARY KEY, file TEXT, source TEXT, sha256 TEXT,
 * size INTEGER, pulled_at INTEGER). Every call runs one statement; SQLite's
 * own locking lets several processes share the file (busy timeout 5 s).
 */
#include "runtime/store/model_store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct hearth_model_store {
    sqlite3 *db;
};

const char *hearth_model_store_dir(char *buf, size_t cap) {
    const char *x = getenv("XDG_DATA_HOME");
    const char *h = getenv("HOME");
    int n;
    if (x && *x)
        n = snprintf(buf, cap, "%s/hearth/models", x);
    else if (h && *h)
        n = snprintf(buf, cap, "%s/.local/share/hearth/models", h);
    else
        n = snprintf(buf, cap, "%s", "");
    if (n < 0 || (size_t)n >= cap) buf[0] = 0;
    return buf;
}

/* mkdir -p */
static int make_dirs(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return -1;
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *c = '/';
    }
    return (mkdir(p, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

hearth_model_store *hearth_model_store_open(const char *dir, hearth_error *err) {
    char path[4200];
    if (!dir || !*dir) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "no models folder ($XDG_DATA_HOME and $HOME are unset)");
        return NULL;
    }
    if (make_dirs(dir) != 0) {
        hearth_error_set(err, HEARTH_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof path, "%s/manifest.sqlite", dir);
    hearth_model_store *s = calloc(1, sizeof *s);
    if (!s) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (sqlite3_open(path, &s->db) != SQLITE_OK) {
        hearth_error_set(err, HEARTH_ERR_IO, "cannot open the manifest %s: %s", path, sqlite3_errmsg(s->db));
        hearth_model_store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(
            s->db,
            "CREATE TABLE IF NOT EXISTS models(name TEXT PRIMARY KEY, file TEXT NOT NULL, source TEXT, "
            "sha256 TEXT, size INTEGER, pulled_at INTEGER)",
            NULL, NULL, &msg) != SQLITE_OK) {
        hearth_error_set(err, HEARTH_ERR_IO, "manifest %s: %s", path, msg ? msg : "unknown error");
        sqlite3_free(msg);
        hearth_model_store_close(s);
        return NULL;
    }
    return s;
}

void hearth_model_store_close(hearth_model_store *s) {
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

static hearth_status db_fail(hearth_model_store *s, sqlite3_stmt *st, hearth_error *err) {
    hearth_error_set(err, HEARTH_ERR_IO, "manifest: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return HEARTH_ERR_IO;
}

hearth_status hearth_model_store_put(hearth_model_store *s, const hearth_model_entry *e, hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT OR REPLACE INTO models(name,file,source,sha256,size,pulled_at) VALUES(?,?,?,?,?,?)", -1,
            &st, NULL) != SQLITE_OK)
        return db_fail(s, st, err);
    sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->file, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)e->size);
    sqlite3_bind_int64(st, 6, e->pulled_at);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(s, st, err);
    sqlite3_finalize(st);
    return HEARTH_OK;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void row_to_entry(sqlite3_stmt *st, hearth_model_entry *e) {
    memset(e, 0, sizeof *e);
    copy_col(e->name, sizeof e->name, st, 0);
    copy_col(e->file, sizeof e->file, st, 1);
    copy_col(e->source, sizeof e->source, st, 2);
    copy_col(e->sha256, sizeof e->sha256, st, 3);
    e->size = (uint64_t)sqlite3_column_int64(st, 4);
    e->pulled_at = sqlite3_column_int64(st, 5);
}

#define SELECT_COLS "SELECT name,file,source,sha256,size,pulled_at FROM models"

hearth_status hearth_model_store_get(hearth_model_store *s, const char *name, hearth_model_entry *out,
                                     hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, SELECT_COLS " WHERE name=?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, st, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_to_entry(st, out);
        sqlite3_finalize(st);
        return HEARTH_OK;
    }
    if (rc != SQLITE_DONE) return db_fail(s, st, err);
    sqlite3_finalize(st);
    return hearth_error_set(err, HEARTH_ERR_INVALID, "no pulled model named '%s' (see `hearth list`)", name);
}

int hearth_model_store_list(hearth_model_store *s, void (*fn)(void *ctx, const hearth_model_entry *e),
                            void *ctx, hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, SELECT_COLS " ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, st, err);
    int n = 0, rc;
    hearth_model_entry e;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_entry(st, &e);
        fn(ctx, &e);
        n++;
    }
    if (rc != SQLITE_DONE) return db_fail(s, st, err);
    sqlite3_finalize(st);
    return n;
}

hearth_status hearth_model_store_remove(hearth_model_store *s, const char *name, hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM models WHERE name=?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, st, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(s, st, err);
    sqlite3_finalize(st);
    if (sqlite3_changes(s->db) == 0)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "no pulled model named '%s' (see `hearth list`)",
                                name);
    return HEARTH_OK;
}

/* Delete the parts of a split model: NAME-00001-of-0000N.gguf -> every k. */
static void remove_files(const char *file) {
    const char *of = strstr(file, "-of-");
    int parts = 0;
    if (of && of - file >= 6 && sscanf(of, "-of-%5d.gguf", &parts) == 1 && parts > 1) {
        char p[1100];
        for (int k = 1; k <= parts; k++) {
            snprintf(p, sizeof p, "%.*s%05d%s", (int)(of - file - 5), file, k, of);
            unlink(p);
        }
        return;
    }
    unlink(file);
}

hearth_status hearth_model_store_delete(hearth_model_store *s, const char *name, bool *files_removed,
                                        hearth_error *err) {
    hearth_model_entry e;
    if (files_removed) *files_removed = false;
    hearth_status st = hearth_model_store_get(s, name, &e, err);
    if (st == HEARTH_OK) st = hearth_model_store_remove(s, name, err);
    if (st != HEARTH_OK) return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM models WHERE file=?", -1, &q, NULL) != SQLITE_OK)
        return db_fail(s, q, err);
    sqlite3_bind_text(q, 1, e.file, -1, SQLITE_STATIC);
    long others = sqlite3_step(q) == SQLITE_ROW ? (long)sqlite3_column_int64(q, 0) : 1;
    sqlite3_finalize(q);
    if (others == 0) {
        remove_files(e.file);
        if (files_removed) *files_removed = true;
    }
    return HEARTH_OK;
}

const char *hearth_model_store_resolve(const char *name, char *buf, size_t cap) {
    char dir[4096], mpath[4200];
    struct stat st;
    if (!*hearth_model_store_dir(dir, sizeof dir)) return NULL;
    snprintf(mpath, sizeof mpath, "%s/manifest.sqlite", dir);
    if (stat(mpath, &st) != 0) return NULL; /* never create a store just to look a name up */
    hearth_error err = {0};
    hearth_model_store *s = hearth_model_store_open(dir, &err);
    if (!s) return NULL;
    hearth_model_entry e;
    const char *r = NULL;
    if (hearth_model_store_get(s, name, &e, &err) == HEARTH_OK && snprintf(buf, cap, "%s", e.file) < (int)cap)
        r = buf;
    hearth_model_store_close(s);
    return r;
}
