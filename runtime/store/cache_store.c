/*
 * cache_store.c - see cache_store.h: KV pages persisted in SQLite (WAL).
 *
 * Threads and connections:
 *  - the writer: one pthread that owns `wdb`. Every mutation (put, touch,
 *    delete of a bad row, clear, LRU eviction) is a message on one FIFO
 *    queue and is applied by this thread, in batches, one transaction per
 *    batch. It alone tracks the bytes in the database (`w_bytes`), started
 *    from SUM(nbytes) and re-read from the database whenever it claims the
 *    cap is exceeded (another process may share the file). When only
 *    last-use updates (touches) are queued it holds them up to
 *    TOUCH_DELAY_MS, until something else is queued or flush/close asks.
 *  - the reader: `rdb`, query-only, guarded by `read_mu`; used by get(),
 *    stats and the per-model listing. WAL lets it read while the writer
 *    writes, so get() never waits for the disk writes of put().
 *
 * Invariants:
 *  - the queue never holds more than QUEUE_MAX_PUTS pages nor QUEUE_MAX_BYTES
 *    of page bytes (counted until the writer has finished the batch that
 *    holds them); a put that would exceed either is dropped and counted.
 *    Control messages (touch, delete) have their own bound; clear is never
 *    dropped (its caller waits for it).
 *  - messages are applied in the order they were queued; `done_seq` is the
 *    sequence number of the last message applied, so flush() waits for
 *    done_seq >= the last number handed out when it was called.
 *  - last_used stamps come from one clock per store, strictly increasing and
 *    taken under `mu`, so queue order and LRU order agree.
 *  - a row is returned only when its blob length, its nbytes column and the
 *    caller's size agree and its checksum (hearth_hash64_wide over the bytes,
 *    or hearth_hash64 for rows written before it, seeded with the fingerprint
 *    and the key) matches; otherwise it is deleted through the writer and
 *    counted in bad_rows.
 *  - nothing here prints or exits; open-time repairs are reported through
 *    hearth_cache_store_note() and stats.recovered.
 */
#include "cache_store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/os.h"

#define SCHEMA_VERSION 1
#define DEFAULT_MAX_BYTES (2ull << 30)
#define QUEUE_MAX_PUTS 256
#define QUEUE_MAX_BYTES (64ull << 20)
#define QUEUE_MAX_CONTROL 4096
#define WRITER_BUSY_MS 2000 /* how long the writer waits for another process's write lock */
#define READER_BUSY_MS 200  /* reads in WAL mode only wait during recovery */
#define EVICT_CHUNK 64
#define TOUCH_DELAY_MS 1000 /* how long last-use updates alone may wait (writer_hold_touches) */
#define CHECKSUM_SEED 0x4865617274685047ull /* "HearthPG" */
#define APPLICATION_ID 0x48525448           /* "HRTH" in the database header */

/* ------------------------------------------------------------ messages */

typedef enum msg_kind { MSG_PUT, MSG_TOUCH, MSG_DELETE, MSG_CLEAR } msg_kind;

typedef struct clear_result {
    hearth_status status;
    char msg[HEARTH_ERROR_MSG_MAX];
} clear_result;

typedef struct msg {
    struct msg *next;
    msg_kind kind;
    uint64_t seq;
    uint64_t hash;
    int64_t stamp;        /* PUT, TOUCH: last_used */
    int64_t checksum;     /* DELETE: the checksum seen by get() */
    bool any_checksum;    /* DELETE: the row was unreadable; delete whatever is there */
    size_t n;             /* PUT: bytes of data */
    clear_result *result; /* CLEAR: filled before done_seq passes seq */
    char *fingerprint;    /* NULL only for CLEAR of everything; stored after the struct */
    unsigned char *data;  /* PUT: stored after the fingerprint */
} msg;

static msg *msg_new(msg_kind kind, const char *fingerprint, uint64_t hash, const void *data, size_t n) {
    size_t fl = fingerprint ? strlen(fingerprint) + 1 : 0;
    msg *m = malloc(sizeof *m + fl + n);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->hash = hash;
    m->n = n;
    if (fingerprint) {
        m->fingerprint = (char *)(m + 1);
        memcpy(m->fingerprint, fingerprint, fl);
    }
    if (n) {
        m->data = (unsigned char *)(m + 1) + fl;
        memcpy(m->data, data, n);
    }
    return m;
}

/* ------------------------------------------------------------ the store */

struct hearth_cache_store {
    char *path;
    uint64_t max_bytes;
    bool recovered;
    bool checked; /* open ran integrity_check */
    char note[1024];

    /* reader */
    pthread_mutex_t read_mu;
    sqlite3 *rdb;
    sqlite3_stmt *r_get, *r_count, *r_models;

    /* queue (under mu) */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    msg *head, *tail;
    size_t q_puts, q_control;
    size_t q_urgent; /* messages other than touches queued since the writer last took the queue */
    int flushers;    /* flush() callers waiting */
    uint64_t q_bytes;
    uint64_t next_seq, done_seq;
    int64_t clock_us;
    bool stop;

    /* writer thread only */
    pthread_t thread;
    sqlite3 *wdb;
    sqlite3_stmt *w_old, *w_insert, *w_touch, *w_delete, *w_lru, *w_evict, *w_sum, *w_clear_fp, *w_clear_all;
    uint64_t w_bytes;

    /* counters (any thread) */
    _Atomic uint64_t hits, misses, puts, dropped, bad_rows, evicted, write_errors;
    atomic_bool broken;  /* the database failed with a corruption error at run time */
    atomic_bool damaged; /* a read met a damaged row or page: the next open runs the full check */
};

/* The row checksum: covers the bytes, the fingerprint and the key, so a row
 * copied under another key or model fails too. Rows are written with the
 * wide (four-lane) hash; rows written before it (hearth_hash64 over the
 * bytes) are still accepted, checked the old way when the new sum differs. */
static uint64_t checksum_seed(const char *fingerprint, uint64_t hash) {
    return hearth_hash_mix(hearth_hash64(fingerprint, strlen(fingerprint), CHECKSUM_SEED), hash);
}
static int64_t row_checksum(const char *fingerprint, uint64_t hash, const void *data, size_t n) {
    return (int64_t)hearth_hash64_wide(data, n, checksum_seed(fingerprint, hash));
}
static bool row_checksum_ok(const char *fingerprint, uint64_t hash, const void *data, size_t n, int64_t sum) {
    return row_checksum(fingerprint, hash, data, n) == sum ||
           (int64_t)hearth_hash64(data, n, checksum_seed(fingerprint, hash)) == sum;
}

static bool rc_is_corruption(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT || rc == SQLITE_IOERR_SHORT_READ;
}

/* ------------------------------------------------------------ paths */

char *hearth_cache_store_default_path(char *buf, size_t cap) {
    if (!buf || !cap) return buf;
    buf[0] = '\0';
    int w = -1;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') { /* the XDG spec says relative values are ignored */
        w = snprintf(buf, cap, "%s/hearth/prefix-cache.sqlite", xdg);
    } else {
        const char *home = getenv("HOME");
        char pwbuf[4096];
        struct passwd pw, *found = NULL;
        if ((!home || !*home) && getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &found) == 0 && found)
            home = found->pw_dir;
        if (home && *home) w = snprintf(buf, cap, "%s/.cache/hearth/prefix-cache.sqlite", home);
    }
    if (w < 0 || (size_t)w >= cap) buf[0] = '\0'; /* never hand out a truncated path */
    return buf;
}

/* mkdir -p of the directory that holds `path`, new directories mode 0700. */
static hearth_status make_parent_dirs(const char *path, hearth_error *err) {
    char *dir = strdup(path);
    if (!dir) return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return HEARTH_OK;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            hearth_status s = hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot create directory %s: %s", path,
                                               dir, strerror(errno));
            free(dir);
            return s;
        }
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            hearth_status s =
                hearth_error_set(err, HEARTH_ERR_IO, "%s: %s exists and is not a directory", path, dir);
            free(dir);
            return s;
        }
        *p = c;
        if (!c) break;
    }
    free(dir);
    return HEARTH_OK;
}

/* Rename path (and its -wal/-shm/-journal companions, which must never be
 * replayed into a fresh database) to PATH.corrupt-<unix time>[-N]. */
static hearth_status move_aside(const char *path, char *dest, size_t cap, hearth_error *err) {
    long long t = (long long)hearth_wall_seconds();
    for (int i = 0; i < 1000; i++) {
        int w = i ? snprintf(dest, cap, "%s.corrupt-%lld-%d", path, t, i)
                  : snprintf(dest, cap, "%s.corrupt-%lld", path, t);
        if (w < 0 || (size_t)w >= cap) break;
        if (access(dest, F_OK) == 0) continue;
        if (rename(path, dest) != 0)
            return hearth_error_set(err, HEARTH_ERR_IO,
                                    "%s: unusable cache database, and moving it to %s failed: %s", path, dest,
                                    strerror(errno));
        static const char *const sides[] = {"-wal", "-shm", "-journal"};
        for (int k = 0; k < 3; k++) {
            char from[4096], to[4096];
            if (snprintf(from, sizeof from, "%s%s", path, sides[k]) >= (int)sizeof from ||
                snprintf(to, sizeof to, "%s%s", dest, sides[k]) >= (int)sizeof to)
                continue;
            if (access(from, F_OK) != 0) continue;
            if (rename(from, to) != 0 && unlink(from) != 0)
                return hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot remove the stale %s: %s", path, from,
                                        strerror(errno));
        }
        return HEARTH_OK;
    }
    return hearth_error_set(err, HEARTH_ERR_IO, "%s: unusable cache database, and no free name to move it to",
                            path);
}

/* ------------------------------------------------------------ opening */

typedef enum open_result { OPEN_OK, OPEN_UNUSABLE, OPEN_FAILED } open_result;

/* First column of the first row of sql as text into out (may be ""). */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS pages("
    " fingerprint TEXT NOT NULL, hash INTEGER NOT NULL, data BLOB NOT NULL, checksum INTEGER NOT NULL,"
    " nbytes INTEGER NOT NULL, last_used INTEGER NOT NULL, PRIMARY KEY(fingerprint, hash));"
    "CREATE INDEX IF NOT EXISTS pages_lru ON pages(last_used);";

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The file as a clean close leaves it, judged without opening it: no WAL
 * beside it (none is left once the last connection closes; one is there
 * while another connection is open or after a crash), and a valid header
 * whose page count times page size is the file's size (not cut short,
 * nothing appended). Read before SQLite creates a WAL of its own. */
static bool file_as_closed(const char *path) {
    char wal[4096];
    struct stat st;
    if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal) return false;
    if (stat(wal, &st) == 0) return false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char h[100];
    bool ok = fread(h, 1, sizeof h, f) == sizeof h && fstat(fileno(f), &st) == 0;
    fclose(f);
    if (!ok || memcmp(h, "SQLite format 3", 16) != 0) return false;
    uint32_t page = (uint32_t)h[16] << 8 | h[17];
    if (page == 1) page = 65536;
    uint32_t pages = be32(h + 28);
    if (page < 512 || (page & (page - 1)) || be32(h + 24) != be32(h + 92) || pages == 0) return false;
    return (uint64_t)st.st_size == (uint64_t)pages * page;
}

/* Open path, check it, create or validate the schema. OPEN_UNUSABLE (with
 * `why`) means the file is not a healthy database and may be moved aside;
 * OPEN_FAILED (err set) means leave it alone and give up. The whole-file
 * integrity_check is skipped (*checked false) when the file is as a clean
 * close left it and its meta row 'clean' says the last Hearth to close it
 * saw no damage; every open sets 'clean' to 0 until its own clean close. */
static open_result open_checked(const char *path, sqlite3 **out, char *why, size_t why_cap, bool *checked,
                                hearth_error *err) {
    sqlite3 *db = NULL;
    char txt[256];
    *out = NULL;
    *checked = false;
    bool as_closed = file_as_closed(path);
    int rc =
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        open_result r = rc_is_corruption(rc) ? OPEN_UNUSABLE : OPEN_FAILED;
        if (r == OPEN_UNUSABLE)
            snprintf(why, why_cap, "%s", sqlite3_errstr(rc));
        else
            hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot open the cache database: %s", path,
                             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, WRITER_BUSY_MS);
    const char *step = "reading it";
    /* auto_vacuum only takes effect before the first table exists; it lets
     * clear() hand space back to the file system. */
    /* 64 KiB pages (also only in a new file, and set first: after auto_vacuum
     * it no longer applies): a 590 KB KV page is a chain of 9 overflow pages
     * instead of 144, each one read(2) fewer */
    rc = sqlite3_exec(db, "PRAGMA page_size=65536", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        step = "switching to WAL";
        rc = query_text(db, "PRAGMA journal_mode=WAL", txt, sizeof txt);
    }
    if (rc == SQLITE_OK) {
        step = "checking it";
        /* integrity_check, not quick_check: it also finds index damage (a
         * cut-off last page) that would make every later write fail. With
         * few rows of large blobs it costs little more (~0.15 s per 400 MiB
         * when cached). */
        if (!as_closed || query_text(db, "SELECT value FROM meta WHERE key='clean'", txt, sizeof txt) ||
            strcmp(txt, "1") != 0) {
            *checked = true;
            rc = query_text(db, "PRAGMA integrity_check", txt, sizeof txt);
        } else {
            snprintf(txt, sizeof txt, "ok");
        }
        if (rc == SQLITE_OK && strcmp(txt, "ok") != 0) {
            snprintf(why, why_cap, "integrity_check: %.200s", txt);
            sqlite3_close(db);
            return OPEN_UNUSABLE;
        }
    }
    if (rc == SQLITE_OK) {
        step = "setting it up";
        rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864", NULL, NULL,
                          NULL);
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto sql_error;

    /* What is in it: nothing (new), our schema, or something else. */
    rc = query_text(db, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", txt, sizeof txt);
    if (rc != SQLITE_OK) goto sql_error;
    if (atoi(txt) == 0) {
        step = "creating the tables";
        char sql[sizeof SCHEMA_SQL + 256];
        snprintf(sql, sizeof sql,
                 "%sINSERT INTO meta VALUES('schema_version','%d');PRAGMA application_id=%d;", SCHEMA_SQL,
                 SCHEMA_VERSION, APPLICATION_ID);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) goto sql_error;
    } else {
        rc = query_text(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'", txt,
                        sizeof txt);
        if (rc != SQLITE_OK) goto sql_error;
        if (atoi(txt) == 0) {
            hearth_error_set(err, HEARTH_ERR_FORMAT,
                             "%s: this SQLite database is not a Hearth prefix cache (it has no meta table); "
                             "leaving it untouched - pass another --cache-db",
                             path);
            goto fail;
        }
        rc = query_text(db, "SELECT value FROM meta WHERE key='schema_version'", txt, sizeof txt);
        if (rc != SQLITE_OK) goto sql_error;
        char *end = NULL;
        long v = strtol(txt, &end, 10);
        if (!txt[0] || *end || v < 1) {
            hearth_error_set(
                err, HEARTH_ERR_FORMAT,
                "%s: not a Hearth prefix cache (schema_version '%.40s'); leaving it untouched - pass "
                "another --cache-db or delete the file",
                path, txt);
            goto fail;
        }
        if (v > SCHEMA_VERSION) {
            hearth_error_set(
                err, HEARTH_ERR_UNSUPPORTED,
                "%s: prefix cache schema version %ld was written by a newer Hearth; this build reads "
                "version %d. Leaving it untouched - use another --cache-db, or delete the file to start "
                "over",
                path, v, SCHEMA_VERSION);
            goto fail;
        }
        step = "checking the tables";
        rc = sqlite3_exec(db, SCHEMA_SQL, NULL, NULL, NULL);
        if (rc != SQLITE_OK) goto sql_error;
    }
    step = "marking it open";
    rc = sqlite3_exec(db, "INSERT OR REPLACE INTO meta VALUES('clean','0'); COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto sql_error;
    *out = db;
    return OPEN_OK;

sql_error:
    if (rc_is_corruption(rc) || rc_is_corruption(sqlite3_extended_errcode(db))) {
        snprintf(why, why_cap, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return OPEN_UNUSABLE;
    }
    hearth_error_set(err, (rc & 0xff) == SQLITE_BUSY ? HEARTH_ERR_BUSY : HEARTH_ERR_IO,
                     "%s: cache database failed while %s: %s", path, step, sqlite3_errmsg(db));
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return OPEN_FAILED;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

static void *writer_main(void *arg);

static void store_free(hearth_cache_store *s) {
    sqlite3_stmt *stmts[] = {s->r_get,    s->r_count, s->r_models, s->w_old, s->w_insert,   s->w_touch,
                             s->w_delete, s->w_lru,   s->w_evict,  s->w_sum, s->w_clear_fp, s->w_clear_all};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    sqlite3_close(s->rdb);
    sqlite3_close(s->wdb);
    pthread_mutex_destroy(&s->read_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s->path);
    free(s);
}

hearth_cache_store *hearth_cache_store_open(const char *path, uint64_t max_bytes, hearth_error *err) {
    if (!path || !*path) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "no prefix cache path given (and no $XDG_CACHE_HOME or $HOME)");
        return NULL;
    }
    if (make_parent_dirs(path, err) != HEARTH_OK) return NULL;

    sqlite3 *wdb = NULL;
    char why[512] = "", note[1024] = "";
    bool recovered = false;
    bool checked = false;
    open_result r = open_checked(path, &wdb, why, sizeof why, &checked, err);
    if (r == OPEN_UNUSABLE) {
        char dest[4096];
        if (move_aside(path, dest, sizeof dest, err) != HEARTH_OK) return NULL;
        if (snprintf(note, sizeof note,
                     "%s was not a usable cache database (%s); moved it to %s and started an empty one", path,
                     why, dest) < 0)
            note[0] = '\0';
        recovered = true;
        r = open_checked(path, &wdb, why, sizeof why, &checked, err);
        if (r == OPEN_UNUSABLE)
            hearth_error_set(err, HEARTH_ERR_IO, "%s: a freshly created cache database is unusable too (%s)",
                             path, why);
    }
    if (r != OPEN_OK) return NULL;

    hearth_cache_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        sqlite3_close(wdb);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    s->wdb = wdb;
    s->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
    s->recovered = recovered;
    s->checked = checked;
    snprintf(s->note, sizeof s->note, "%s", note);
    pthread_mutex_init(&s->read_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);

    int rc = sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    const char *what = "opening a reader";
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(s->rdb, 1);
        sqlite3_busy_timeout(s->rdb, READER_BUSY_MS);
        rc = sqlite3_exec(s->rdb, "PRAGMA query_only=1", NULL, NULL, NULL);
    }
    sqlite3 *bad = s->rdb;
    if (rc == SQLITE_OK) {
        what = "preparing statements";
        rc = prepare(s->rdb,
                     "SELECT rowid, checksum, nbytes, length(data), typeof(data) FROM pages "
                     "WHERE fingerprint=?1 AND hash=?2",
                     &s->r_get);
    }
    if (rc == SQLITE_OK)
        rc = prepare(s->rdb, "SELECT count(*), coalesce(sum(nbytes),0) FROM pages", &s->r_count);
    if (rc == SQLITE_OK)
        rc = prepare(s->rdb,
                     "SELECT fingerprint, count(*), coalesce(sum(nbytes),0), max(last_used) FROM pages "
                     "GROUP BY fingerprint ORDER BY fingerprint",
                     &s->r_models);
    if (rc == SQLITE_OK) {
        bad = s->wdb;
        rc =
            prepare(s->wdb, "SELECT nbytes, checksum FROM pages WHERE fingerprint=?1 AND hash=?2", &s->w_old);
    }
    if (rc == SQLITE_OK)
        rc = prepare(s->wdb,
                     "INSERT OR REPLACE INTO pages(fingerprint,hash,data,checksum,nbytes,last_used) "
                     "VALUES(?1,?2,?3,?4,?5,?6)",
                     &s->w_insert);
    if (rc == SQLITE_OK)
        rc = prepare(s->wdb, "UPDATE pages SET last_used=max(last_used,?3) WHERE fingerprint=?1 AND hash=?2",
                     &s->w_touch);
    if (rc == SQLITE_OK)
        rc = prepare(s->wdb, "DELETE FROM pages WHERE fingerprint=?1 AND hash=?2", &s->w_delete);
    if (rc == SQLITE_OK)
        rc = prepare(s->wdb, "SELECT rowid, nbytes FROM pages ORDER BY last_used LIMIT 64", &s->w_lru);
    if (rc == SQLITE_OK) rc = prepare(s->wdb, "DELETE FROM pages WHERE rowid=?1", &s->w_evict);
    if (rc == SQLITE_OK)
        rc = prepare(s->wdb, "SELECT coalesce(sum(nbytes),0), max(last_used) FROM pages", &s->w_sum);
    if (rc == SQLITE_OK) rc = prepare(s->wdb, "DELETE FROM pages WHERE fingerprint=?1", &s->w_clear_fp);
    if (rc == SQLITE_OK) rc = prepare(s->wdb, "DELETE FROM pages", &s->w_clear_all);
    if (rc == SQLITE_OK) {
        what = "reading its size";
        rc = sqlite3_step(s->w_sum);
        if (rc == SQLITE_ROW) {
            s->w_bytes = (uint64_t)sqlite3_column_int64(s->w_sum, 0);
            s->clock_us = sqlite3_column_int64(s->w_sum, 1);
            rc = SQLITE_OK;
        }
        sqlite3_reset(s->w_sum);
    }
    if (rc != SQLITE_OK) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: cache database failed while %s: %s", path, what,
                         bad ? sqlite3_errmsg(bad) : sqlite3_errstr(rc));
        store_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: cannot start the cache writer thread", path);
        store_free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------ the writer */

typedef struct tx_state {
    bool open;
    uint64_t puts;    /* puts applied in this transaction */
    uint64_t evicted; /* rows evicted in this transaction */
} tx_state;

static void writer_note_error(hearth_cache_store *s, int rc) {
    if (rc_is_corruption(rc)) atomic_store(&s->broken, true);
}

static void writer_resync_bytes(hearth_cache_store *s) {
    if (sqlite3_step(s->w_sum) == SQLITE_ROW) s->w_bytes = (uint64_t)sqlite3_column_int64(s->w_sum, 0);
    sqlite3_reset(s->w_sum);
}

/* The transaction failed: everything in it is lost (SQLite rolled it back
 * or we do now). */
static void writer_abort(hearth_cache_store *s, tx_state *tx, int rc) {
    writer_note_error(s, rc);
    if (!sqlite3_get_autocommit(s->wdb)) sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
    atomic_fetch_add(&s->write_errors, tx->puts);
    tx->open = false;
    tx->puts = tx->evicted = 0;
    writer_resync_bytes(s);
}

/* Delete least-recently-used rows until the database holds <= max_bytes. */
static int writer_evict(hearth_cache_store *s, tx_state *tx) {
    if (s->w_bytes <= s->max_bytes) return SQLITE_OK;
    writer_resync_bytes(s); /* other processes may have written or evicted */
    while (s->w_bytes > s->max_bytes) {
        int64_t ids[EVICT_CHUNK], sizes[EVICT_CHUNK];
        int n = 0, rc;
        while (n < EVICT_CHUNK && (rc = sqlite3_step(s->w_lru)) == SQLITE_ROW) {
            ids[n] = sqlite3_column_int64(s->w_lru, 0);
            sizes[n] = sqlite3_column_int64(s->w_lru, 1);
            n++;
        }
        sqlite3_reset(s->w_lru);
        if (n == 0) {
            if (rc != SQLITE_DONE) return rc;
            s->w_bytes = 0;
            break;
        }
        for (int i = 0; i < n && s->w_bytes > s->max_bytes; i++) {
            sqlite3_bind_int64(s->w_evict, 1, ids[i]);
            rc = sqlite3_step(s->w_evict);
            sqlite3_reset(s->w_evict);
            if (rc != SQLITE_DONE) return rc;
            s->w_bytes -= sizes[i] > 0 && (uint64_t)sizes[i] < s->w_bytes ? (uint64_t)sizes[i] : s->w_bytes;
            tx->evicted++;
        }
    }
    return SQLITE_OK;
}

static int writer_commit(hearth_cache_store *s, tx_state *tx) {
    if (!tx->open) return SQLITE_OK;
    int rc = writer_evict(s, tx);
    if (rc == SQLITE_OK) rc = sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        writer_abort(s, tx, rc);
        return rc;
    }
    atomic_fetch_add(&s->evicted, tx->evicted);
    tx->open = false;
    tx->puts = tx->evicted = 0;
    return SQLITE_OK;
}

/* Old size (or -1 when absent) and checksum of a row, for byte accounting. */
static int writer_old_row(hearth_cache_store *s, const msg *m, int64_t *nbytes, int64_t *checksum) {
    sqlite3_bind_text(s->w_old, 1, m->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->w_old, 2, (int64_t)m->hash);
    int rc = sqlite3_step(s->w_old);
    *nbytes = -1;
    if (rc == SQLITE_ROW) {
        *nbytes = sqlite3_column_int64(s->w_old, 0);
        *checksum = sqlite3_column_int64(s->w_old, 1);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(s->w_old);
    sqlite3_clear_bindings(s->w_old);
    return rc;
}

static void bytes_sub(hearth_cache_store *s, int64_t n) {
    if (n > 0) s->w_bytes -= (uint64_t)n < s->w_bytes ? (uint64_t)n : s->w_bytes;
}

/* One put, touch or delete inside the open transaction. */
static int writer_apply(hearth_cache_store *s, const msg *m, tx_state *tx) {
    int64_t old_n = -1, old_sum = 0;
    int rc = writer_old_row(s, m, &old_n, &old_sum);
    if (rc != SQLITE_OK) return rc;
    sqlite3_stmt *st = NULL;
    switch (m->kind) {
    case MSG_PUT:
        st = s->w_insert;
        sqlite3_bind_text(st, 1, m->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)m->hash);
        sqlite3_bind_blob64(st, 3, m->data, m->n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, row_checksum(m->fingerprint, m->hash, m->data, m->n));
        sqlite3_bind_int64(st, 5, (int64_t)m->n);
        sqlite3_bind_int64(st, 6, m->stamp);
        break;
    case MSG_TOUCH:
        if (old_n < 0) return SQLITE_OK;
        st = s->w_touch;
        sqlite3_bind_text(st, 1, m->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)m->hash);
        sqlite3_bind_int64(st, 3, m->stamp);
        break;
    case MSG_DELETE:
        /* only the row get() rejected: a good row written since stays */
        if (old_n < 0 || (!m->any_checksum && old_sum != m->checksum)) return SQLITE_OK;
        st = s->w_delete;
        sqlite3_bind_text(st, 1, m->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)m->hash);
        break;
    case MSG_CLEAR: return SQLITE_OK;
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) return rc;
    if (m->kind == MSG_PUT) {
        bytes_sub(s, old_n);
        s->w_bytes += m->n;
        tx->puts++;
    } else if (m->kind == MSG_DELETE) {
        bytes_sub(s, old_n);
    }
    return SQLITE_OK;
}

/* Clear runs on its own, outside any batch transaction, and reports back. */
static void writer_clear(hearth_cache_store *s, const msg *m) {
    clear_result *res = m->result;
    sqlite3_stmt *st = m->fingerprint ? s->w_clear_fp : s->w_clear_all;
    if (m->fingerprint) sqlite3_bind_text(st, 1, m->fingerprint, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE) {
        /* give the freed pages back to the file system (best effort) */
        sqlite3_exec(s->wdb, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
        res->status = HEARTH_OK;
    } else {
        writer_note_error(s, rc);
        res->status = (rc & 0xff) == SQLITE_BUSY ? HEARTH_ERR_BUSY : HEARTH_ERR_IO;
        snprintf(res->msg, sizeof res->msg, "%s: clearing the prefix cache failed: %s", s->path,
                 sqlite3_errmsg(s->wdb));
    }
    writer_resync_bytes(s);
}

/* Apply one batch (in queue order): runs of put/touch/delete share one
 * transaction; a clear commits what came before and runs alone. */
static void writer_batch(hearth_cache_store *s, msg *batch) {
    tx_state tx = {0};
    bool skip_run = false; /* BEGIN failed: drop the rest of this run */
    for (msg *m = batch; m; m = m->next) {
        if (m->kind == MSG_CLEAR) {
            writer_commit(s, &tx);
            skip_run = false;
            if (atomic_load(&s->broken)) {
                m->result->status = HEARTH_ERR_IO;
                snprintf(m->result->msg, sizeof m->result->msg,
                         "%s: the cache database is damaged; delete it (it is only a cache)", s->path);
            } else {
                writer_clear(s, m);
            }
            continue;
        }
        if (skip_run || atomic_load(&s->broken)) {
            if (m->kind == MSG_PUT) atomic_fetch_add(&s->write_errors, 1);
            continue;
        }
        if (!tx.open) {
            int rc = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            if (rc != SQLITE_OK) {
                writer_note_error(s, rc);
                skip_run = true;
                if (m->kind == MSG_PUT) atomic_fetch_add(&s->write_errors, 1);
                continue;
            }
            tx.open = true;
        }
        int rc = writer_apply(s, m, &tx);
        if (rc != SQLITE_OK) {
            if (m->kind == MSG_PUT) atomic_fetch_add(&s->write_errors, 1);
            writer_abort(s, &tx, rc);
        }
    }
    writer_commit(s, &tx);
}

/* With only last-use updates queued, wait (under mu) up to TOUCH_DELAY_MS
 * for something that cannot wait: a put, delete or clear, a flush, close.
 * A touch rewrites its row, which makes SQLite walk the row's whole
 * overflow chain; a process that has just read a cached prefix is
 * computing its first token meanwhile, and gets the CPU first. */
static void writer_hold_touches(hearth_cache_store *s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)TOUCH_DELAY_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (s->q_urgent == 0 && s->flushers == 0 && !s->stop)
        if (pthread_cond_timedwait(&s->work_cv, &s->mu, &until) == ETIMEDOUT) break;
}

static void *writer_main(void *arg) {
    hearth_cache_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head) break; /* stop requested and nothing left */
        writer_hold_touches(s);
        s->q_urgent = 0;
        msg *batch = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        writer_batch(s, batch);

        size_t puts = 0, control = 0;
        uint64_t bytes = 0, last_seq = 0;
        for (msg *m = batch, *next; m; m = next) {
            next = m->next;
            if (m->kind == MSG_PUT) {
                puts++;
                bytes += m->n;
            } else if (m->kind != MSG_CLEAR) {
                control++;
            }
            last_seq = m->seq;
            free(m);
        }
        pthread_mutex_lock(&s->mu);
        s->q_puts -= puts;
        s->q_control -= control;
        s->q_bytes -= bytes;
        s->done_seq = last_seq;
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->mu);
    /* everything is applied: the next open may skip the whole-file check,
     * unless this connection met damage */
    if (!atomic_load(&s->broken) && !atomic_load(&s->damaged))
        sqlite3_exec(s->wdb, "INSERT OR REPLACE INTO meta VALUES('clean','1')", NULL, NULL, NULL);
    return NULL;
}

/* Append m under mu; false (m not taken) when its bound is reached. */
static bool enqueue(hearth_cache_store *s, msg *m, uint64_t *seq_out) {
    pthread_mutex_lock(&s->mu);
    bool ok = true;
    if (m->kind == MSG_PUT)
        ok = s->q_puts < QUEUE_MAX_PUTS && s->q_bytes + m->n <= QUEUE_MAX_BYTES;
    else if (m->kind != MSG_CLEAR)
        ok = s->q_control < QUEUE_MAX_CONTROL;
    if (ok && !s->stop) {
        if (m->kind == MSG_PUT) {
            s->q_puts++;
            s->q_bytes += m->n;
        } else if (m->kind != MSG_CLEAR) {
            s->q_control++;
        }
        if (m->kind != MSG_TOUCH) s->q_urgent++;
        int64_t t = (int64_t)(hearth_wall_seconds() * 1e6); /* wall-clock microseconds */
        s->clock_us = t > s->clock_us ? t : s->clock_us + 1;
        m->stamp = s->clock_us;
        m->seq = ++s->next_seq;
        if (seq_out) *seq_out = m->seq;
        if (s->tail)
            s->tail->next = m;
        else
            s->head = m;
        s->tail = m;
        pthread_cond_signal(&s->work_cv);
    } else {
        ok = false;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void wait_done(hearth_cache_store *s, uint64_t seq) {
    pthread_mutex_lock(&s->mu);
    while (s->done_seq < seq)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------ public API */

void hearth_cache_store_put(hearth_cache_store *s, const char *fingerprint, uint64_t hash, const void *data,
                            size_t n) {
    if (!s || !fingerprint || !data || n == 0) return;
    bool full;
    pthread_mutex_lock(&s->mu); /* cheap pre-check so a full queue costs no copy */
    full = s->q_puts >= QUEUE_MAX_PUTS || s->q_bytes + n > QUEUE_MAX_BYTES;
    pthread_mutex_unlock(&s->mu);
    msg *m = full || atomic_load(&s->broken) ? NULL : msg_new(MSG_PUT, fingerprint, hash, data, n);
    if (m && enqueue(s, m, NULL)) {
        atomic_fetch_add(&s->puts, 1);
        return;
    }
    free(m);
    atomic_fetch_add(&s->dropped, 1);
}

/* Read the blob of `rowid` into the spans, hashing each piece as it lands
 * (while it is in cache), and check it against sum. SQLITE_OK with *ok. */
static int read_spans(hearth_cache_store *s, int64_t rowid, const char *fingerprint, uint64_t hash,
                      const hearth_store_span *spans, int n_spans, size_t n, int64_t sum, bool *ok) {
    sqlite3_blob *b = NULL;
    int rc = sqlite3_blob_open(s->rdb, "main", "pages", "data", rowid, 0, &b);
    hearth_hash_wide h;
    hearth_hash64_wide_begin(&h, checksum_seed(fingerprint, hash));
    size_t off = 0;
    for (int i = 0; i < n_spans && rc == SQLITE_OK; i++) {
        rc = sqlite3_blob_read(b, spans[i].data, (int)spans[i].n, (int)off);
        if (rc == SQLITE_OK) hearth_hash64_wide_update(&h, spans[i].data, spans[i].n);
        off += spans[i].n;
    }
    *ok = rc == SQLITE_OK && (int64_t)hearth_hash64_wide_end(&h) == sum;
    if (rc == SQLITE_OK && !*ok) {
        /* a row written before the wide checksum: check it the old way */
        unsigned char *all = malloc(n);
        rc = all ? sqlite3_blob_read(b, all, (int)n, 0) : SQLITE_NOMEM;
        if (rc == SQLITE_OK && row_checksum_ok(fingerprint, hash, all, n, sum)) {
            *ok = true;
            off = 0;
            for (int i = 0; i < n_spans; off += spans[i].n, i++)
                memcpy(spans[i].data, all + off, spans[i].n);
        }
        free(all);
    }
    sqlite3_blob_close(b);
    return rc;
}

bool hearth_cache_store_get(hearth_cache_store *s, const char *fingerprint, uint64_t hash, void *buf,
                            size_t n) {
    hearth_store_span one = {buf, n};
    return hearth_cache_store_get_spans(s, fingerprint, hash, &one, 1);
}

bool hearth_cache_store_get_spans(hearth_cache_store *s, const char *fingerprint, uint64_t hash,
                                  const hearth_store_span *spans, int n_spans) {
    size_t n = 0;
    for (int i = 0; spans && i < n_spans; i++) {
        if (!spans[i].data || !spans[i].n) return false;
        n += spans[i].n;
    }
    if (!s || !fingerprint || !spans || n_spans <= 0 || n == 0) return false;
    if (atomic_load(&s->broken)) {
        atomic_fetch_add(&s->misses, 1);
        return false;
    }
    bool hit = false, bad = false, any = false;
    int64_t stored_sum = 0;
    pthread_mutex_lock(&s->read_mu);
    sqlite3_stmt *st = s->r_get;
    sqlite3_bind_text(st, 1, fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)hash);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* The bytes go straight from the database pages into the spans
         * (incremental blob I/O), not through a malloc'd copy of the whole
         * row; the step above keeps the read transaction open, so the row
         * cannot change between the query and the read. */
        int64_t rowid = sqlite3_column_int64(st, 0);
        stored_sum = sqlite3_column_int64(st, 1);
        int64_t nbytes = sqlite3_column_int64(st, 2);
        int64_t len = sqlite3_column_int64(st, 3);
        const unsigned char *type = sqlite3_column_text(st, 4);
        bad = true;
        if (type && !strcmp((const char *)type, "blob") && len >= 0 && (uint64_t)len == n && nbytes >= 0 &&
            (uint64_t)nbytes == n && n <= INT_MAX) {
            rc = read_spans(s, rowid, fingerprint, hash, spans, n_spans, n, stored_sum, &hit);
            if (rc == SQLITE_OK)
                bad = !hit;
            else if (rc_is_corruption(rc))
                any = true; /* the row cannot even be read */
            else
                bad = hit = false; /* busy, no memory: a miss, the row may be fine */
        }
    } else if (rc != SQLITE_DONE && rc_is_corruption(rc)) {
        bad = any = true; /* the row cannot even be read */
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->read_mu);

    if (hit) {
        atomic_fetch_add(&s->hits, 1);
        msg *m = msg_new(MSG_TOUCH, fingerprint, hash, NULL, 0);
        if (m && !enqueue(s, m, NULL)) free(m); /* a lost touch only ages the row */
        return true;
    }
    atomic_fetch_add(&s->misses, 1);
    if (bad) {
        atomic_fetch_add(&s->bad_rows, 1);
        atomic_store(&s->damaged, true);
        msg *m = msg_new(MSG_DELETE, fingerprint, hash, NULL, 0);
        if (m) {
            m->checksum = stored_sum;
            m->any_checksum = any;
            if (!enqueue(s, m, NULL)) free(m); /* the next get finds it again */
        }
    }
    return false;
}

void hearth_cache_store_flush(hearth_cache_store *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    uint64_t target = s->next_seq;
    s->flushers++; /* held touches go now */
    pthread_cond_signal(&s->work_cv);
    while (s->done_seq < target)
        pthread_cond_wait(&s->done_cv, &s->mu);
    s->flushers--;
    pthread_mutex_unlock(&s->mu);
}

hearth_status hearth_cache_store_clear(hearth_cache_store *s, const char *fingerprint, hearth_error *err) {
    if (!s) return hearth_error_set(err, HEARTH_ERR_INVALID, "no prefix cache store");
    clear_result res = {HEARTH_ERR_IO, "clear was not run"};
    msg *m = msg_new(MSG_CLEAR, fingerprint, 0, NULL, 0);
    if (!m) return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", s->path);
    m->result = &res;
    uint64_t seq = 0;
    if (!enqueue(s, m, &seq)) {
        free(m);
        return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: the store is closing", s->path);
    }
    wait_done(s, seq);
    if (res.status != HEARTH_OK) return hearth_error_set(err, res.status, "%s", res.msg);
    return HEARTH_OK;
}

void hearth_cache_store_stats_get(hearth_cache_store *s, hearth_cache_store_stats *out) {
    memset(out, 0, sizeof *out);
    if (!s) return;
    out->max_bytes = s->max_bytes;
    out->hits = atomic_load(&s->hits);
    out->misses = atomic_load(&s->misses);
    out->puts = atomic_load(&s->puts);
    out->dropped_puts = atomic_load(&s->dropped);
    out->bad_rows = atomic_load(&s->bad_rows);
    out->evicted = atomic_load(&s->evicted);
    out->write_errors = atomic_load(&s->write_errors);
    out->recovered = s->recovered;
    out->checked = s->checked;
    pthread_mutex_lock(&s->read_mu);
    if (sqlite3_step(s->r_count) == SQLITE_ROW) {
        out->rows = (uint64_t)sqlite3_column_int64(s->r_count, 0);
        out->bytes = (uint64_t)sqlite3_column_int64(s->r_count, 1);
    }
    sqlite3_reset(s->r_count);
    pthread_mutex_unlock(&s->read_mu);
}

const char *hearth_cache_store_path(const hearth_cache_store *s) {
    return s ? s->path : "";
}
const char *hearth_cache_store_note(const hearth_cache_store *s) {
    return s ? s->note : "";
}

hearth_status hearth_cache_store_each_model(hearth_cache_store *s,
                                            void (*fn)(void *ctx, const char *fingerprint, uint64_t rows,
                                                       uint64_t bytes, int64_t last_used_us),
                                            void *ctx, hearth_error *err) {
    if (!s || !fn) return hearth_error_set(err, HEARTH_ERR_INVALID, "no prefix cache store");
    hearth_status status = HEARTH_OK;
    pthread_mutex_lock(&s->read_mu);
    int rc;
    while ((rc = sqlite3_step(s->r_models)) == SQLITE_ROW) {
        const unsigned char *fp = sqlite3_column_text(s->r_models, 0);
        fn(ctx, fp ? (const char *)fp : "", (uint64_t)sqlite3_column_int64(s->r_models, 1),
           (uint64_t)sqlite3_column_int64(s->r_models, 2), sqlite3_column_int64(s->r_models, 3));
    }
    if (rc != SQLITE_DONE)
        status = hearth_error_set(err, HEARTH_ERR_IO, "%s: listing the cached models failed: %s", s->path,
                                  sqlite3_errmsg(s->rdb));
    sqlite3_reset(s->r_models);
    pthread_mutex_unlock(&s->read_mu);
    return status;
}

void hearth_cache_store_close(hearth_cache_store *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true; /* the writer drains the queue before it exits */
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    store_free(s);
}
