/*
 * chat_history.c - see chat_history.h.
 */
#include "chat_history.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/os.h"

struct chat_history {
    sqlite3 *db;
    char path[1024];
};

char *chat_history_default_path(char *buf, size_t cap) {
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int w = -1;
    if (xdg && xdg[0] == '/')
        w = snprintf(buf, cap, "%s/hearth/history.sqlite", xdg);
    else if (home && *home)
        w = snprintf(buf, cap, "%s/.local/share/hearth/history.sqlite", home);
    if (w < 0 || (size_t)w >= cap) return NULL;
    return buf;
}

static hearth_status make_parent_dirs(const char *path, hearth_error *err) {
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: path too long", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(dir, 0700) && errno != EEXIST)
            return hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot create directory %s: %s", path, dir,
                                    strerror(errno));
        *p = '/';
    }
    return HEARTH_OK;
}

static hearth_status db_error(chat_history *h, hearth_error *err, const char *what) {
    return hearth_error_set(err, HEARTH_ERR_IO, "%s: %s: %s", h->path, what, sqlite3_errmsg(h->db));
}

static const char schema[] = "CREATE TABLE IF NOT EXISTS conversations("
                             " id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, model TEXT, system TEXT,"
                             " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS messages("
                             " conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
                             " seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,"
                             " PRIMARY KEY(conversation, seq));"
                             "PRAGMA user_version = 1;";

chat_history *chat_history_open(const char *path, hearth_error *err) {
    chat_history *h = calloc(1, sizeof *h);
    if (!h) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(h->path, sizeof h->path, "%s", path);
    if (make_parent_dirs(path, err)) goto fail;
    if (sqlite3_open_v2(path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        db_error(h, err, "cannot open the history database");
        goto fail;
    }
    sqlite3_busy_timeout(h->db, 2000);
    if (sqlite3_exec(h->db, "PRAGMA foreign_keys = ON;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(h->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        db_error(h, err, "not a usable history database");
        goto fail;
    }
    return h;
fail:
    chat_history_close(h);
    return NULL;
}

void chat_history_close(chat_history *h) {
    if (!h) return;
    sqlite3_close(h->db);
    free(h);
}

const char *chat_history_path(const chat_history *h) {
    return h->path;
}

hearth_status chat_history_save(chat_history *h, const char *name, const char *model, const chat_conv *c,
                                hearth_error *err) {
    sqlite3_stmt *st = NULL;
    int64_t now = (int64_t)hearth_wall_seconds();
    int n_done = c->n_msgs - (c->in_turn ? 1 : 0); /* an open turn's question is not saved */
    if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(h, err, "save");
    if (sqlite3_prepare_v2(
            h->db,
            "INSERT INTO conversations(name, model, system, created, updated) VALUES(?1,?2,?3,?4,?4)"
            " ON CONFLICT(name) DO UPDATE SET model=?2, system=?3, updated=?4 RETURNING id",
            -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    if (c->system) sqlite3_bind_text(st, 3, c->system, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if (sqlite3_step(st) != SQLITE_ROW) goto fail;
    int64_t id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(h->db, "DELETE FROM messages WHERE conversation = ?1", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(h->db,
                           "INSERT INTO messages(conversation, seq, role, content) VALUES(?1,?2,?3,?4)", -1,
                           &st, NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < n_done; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, i);
        sqlite3_bind_text(st, 3, chat_role_name(c->msgs[i].role), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, c->msgs[i].text, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    return HEARTH_OK;
fail:
    db_error(h, err, "cannot save the conversation");
    sqlite3_finalize(st);
    sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    return err ? err->code : HEARTH_ERR_IO;
}

hearth_status chat_history_load(chat_history *h, const char *name, chat_conv *c, char *model_out, size_t cap,
                                hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h->db, "SELECT id, model, system FROM conversations WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(h, err, "load");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return hearth_error_set(err, HEARTH_ERR_INVALID,
                                    "no conversation named '%s' (/history lists them)", name);
        return db_error(h, err, "load");
    }
    int64_t id = sqlite3_column_int64(st, 0);
    if (model_out && cap) {
        const unsigned char *m = sqlite3_column_text(st, 1);
        snprintf(model_out, cap, "%s", m ? (const char *)m : "");
    }
    hearth_status s = HEARTH_OK;
    chat_conv_clear(c);
    const unsigned char *sys = sqlite3_column_text(st, 2);
    s = chat_conv_set_system(c, sys ? (const char *)sys : NULL, err);
    sqlite3_finalize(st);
    if (s) return s;
    if (sqlite3_prepare_v2(h->db, "SELECT role, content FROM messages WHERE conversation = ?1 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(h, err, "load");
    sqlite3_bind_int64(st, 1, id);
    chat_role expect = CHAT_ROLE_USER;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *role = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        chat_role r;
        if (!role || !chat_role_parse(role, &r) || r != expect) {
            s = hearth_error_set(err, HEARTH_ERR_FORMAT,
                                 "%s: conversation '%s' is damaged (message roles out of order)", h->path,
                                 name);
            break;
        }
        s = chat_conv_add(c, r, text ? text : "", err);
        expect = expect == CHAT_ROLE_USER ? CHAT_ROLE_ASSISTANT : CHAT_ROLE_USER;
    }
    if (!s && rc != SQLITE_DONE) s = db_error(h, err, "load");
    sqlite3_finalize(st);
    if (!s && c->n_msgs % 2) chat_conv_abort(c); /* a trailing question without its answer */
    if (s) chat_conv_clear(c);
    return s;
}

hearth_status chat_history_list(chat_history *h, void (*fn)(const chat_history_entry *e, void *user),
                                void *user, hearth_error *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            h->db,
            "SELECT c.name, c.model, c.updated,"
            " (SELECT count(*) FROM messages m WHERE m.conversation = c.id),"
            " (SELECT content FROM messages m WHERE m.conversation = c.id ORDER BY seq LIMIT 1)"
            " FROM conversations c ORDER BY c.updated DESC, c.id DESC",
            -1, &st, NULL) != SQLITE_OK)
        return db_error(h, err, "list");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        chat_history_entry e = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .model = (const char *)sqlite3_column_text(st, 1),
            .updated = sqlite3_column_int64(st, 2),
            .n_messages = sqlite3_column_int(st, 3),
            .preview = (const char *)sqlite3_column_text(st, 4),
        };
        if (!e.model) e.model = "";
        if (!e.preview) e.preview = "";
        fn(&e, user);
    }
    hearth_status s = rc == SQLITE_DONE ? HEARTH_OK : db_error(h, err, "list");
    sqlite3_finalize(st);
    return s;
}
