/*
 * test_cache_store.c - the SQLite prefix-cache store (runtime/store/cache_store.c)
 * against real database files in a fresh directory under /tmp.
 *
 * Covers: put/flush/get round trips (incl. keys >= 2^63), misses for another
 * fingerprint or size, persistence across close/reopen, LRU eviction under a
 * byte cap, rows damaged in place (blob, checksum, size, fingerprint) being
 * rejected, counted and deleted, garbage and truncated files at the path,
 * databases from the future or from another program being left untouched,
 * clear per model and all, concurrent puts and gets (also run under TSan),
 * a full queue dropping puts without blocking, and the default path.
 * Page contents are a deterministic function of (fingerprint, hash), so any
 * byte returned can be checked.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/os.h"
#include "runtime/store/cache_store.h"
#include "test.h"

static char g_dir[256];

/* Page bytes: a function of fingerprint and hash only. */
static void fill_page(unsigned char *p, size_t n, const char *fp, uint64_t hash) {
    uint64_t x = hash * 0x9e3779b97f4a7c15ull + 1;
    for (const char *c = fp; *c; c++)
        x = (x ^ (unsigned char)*c) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static bool page_ok(const unsigned char *p, size_t n, const char *fp, uint64_t hash) {
    unsigned char *want = malloc(n);
    fill_page(want, n, fp, hash);
    bool ok = memcmp(p, want, n) == 0;
    free(want);
    return ok;
}

static void put_page(hearth_cache_store *s, const char *fp, uint64_t hash, size_t n) {
    unsigned char *p = malloc(n);
    fill_page(p, n, fp, hash);
    hearth_cache_store_put(s, fp, hash, p, n);
    free(p);
}

/* true when get hits; a hit with the wrong bytes fails the test. */
static bool get_page(hearth_cache_store *s, const char *fp, uint64_t hash, size_t n) {
    unsigned char *p = malloc(n);
    bool hit = hearth_cache_store_get(s, fp, hash, p, n);
    if (hit)
        CHECKF(page_ok(p, n, fp, hash), "page %s/%llu came back with wrong bytes", fp,
               (unsigned long long)hash);
    free(p);
    return hit;
}

static const char *db_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

/* Run SQL on the database directly (the way a damaged disk or another tool would). */
static void sql_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    CHECKF(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t sql_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static bool file_exists(const char *p) {
    return access(p, F_OK) == 0;
}

/* Number of PATH.corrupt-* files next to path. */
static int count_moved_aside(const char *path) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls -1 '%s'.corrupt-* 2>/dev/null | grep -v -e '-wal$' -e '-shm$' | wc -l",
             path);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

static hearth_cache_store *open_ok(const char *path, uint64_t max_bytes) {
    hearth_error err = {0};
    hearth_cache_store *s = hearth_cache_store_open(path, max_bytes, &err);
    CHECKF(s != NULL, "open %s: %s", path, err.msg);
    REQUIRE(s != NULL);
    return s;
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip_and_reopen(void) {
    char path[512];
    db_path(path, sizeof path, "nested/deeper/rt.sqlite");
    hearth_cache_store *s = open_ok(path, 0);
    struct stat st;
    char dir[512];
    db_path(dir, sizeof dir, "nested/deeper");
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK(!strcmp(hearth_cache_store_path(s), path));
    CHECK(!strcmp(hearth_cache_store_note(s), ""));

    const size_t n = 4096;
    const int count = 300;
    for (int i = 0; i < count; i++) {
        uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15ull; /* half of them >= 2^63 */
        put_page(s, "modelA", h, n);
        if (i % 64 == 63) hearth_cache_store_flush(s); /* stay under the queue bound */
    }
    hearth_cache_store_flush(s);
    hearth_cache_store_stats st_ = {0};
    hearth_cache_store_stats_get(s, &st_);
    CHECK(st_.puts == (uint64_t)count);
    CHECK(st_.dropped_puts == 0);
    CHECK(st_.rows == (uint64_t)count);
    CHECK(st_.bytes == (uint64_t)count * n);
    CHECK(st_.max_bytes == 2ull << 30);
    CHECK(st_.recovered == 0);
    int hits = 0;
    for (int i = 0; i < count; i++)
        hits += get_page(s, "modelA", (uint64_t)i * 0x9e3779b97f4a7c15ull, n);
    CHECK(hits == count);
    CHECK(!get_page(s, "modelA", 12345, n)); /* absent key */

    /* another model's fingerprint never sees these rows, and is no bad row */
    CHECK(!get_page(s, "modelB", 0x9e3779b97f4a7c15ull, n));
    hearth_cache_store_stats_get(s, &st_);
    CHECK(st_.bad_rows == 0);
    CHECK(st_.hits == (uint64_t)count);

    /* a wrong size misses; the row disagrees with its fingerprint's page size
     * and is dropped (documented behaviour of get) */
    uint64_t h1 = 0x9e3779b97f4a7c15ull;
    CHECK(!get_page(s, "modelA", h1, n - 1));
    CHECK(!get_page(s, "modelA", 2 * h1, n + 1));
    hearth_cache_store_flush(s);
    hearth_cache_store_stats_get(s, &st_);
    CHECK(st_.bad_rows == 2);
    CHECK(st_.rows == (uint64_t)count - 2);
    CHECK(!get_page(s, "modelA", h1, n));

    /* close without flush still writes what was queued */
    put_page(s, "modelA", 777, n);
    hearth_cache_store_close(s);

    s = open_ok(path, 0);
    hits = 0;
    for (int i = 3; i < count; i++)
        hits += get_page(s, "modelA", (uint64_t)i * 0x9e3779b97f4a7c15ull, n);
    CHECK(hits == count - 3);
    CHECK(get_page(s, "modelA", 777, n));
    CHECK(!strcmp(hearth_cache_store_note(s), ""));
    hearth_cache_store_close(s);
    CHECK(count_moved_aside(path) == 0);
    CHECK(sql_int(path, "SELECT value FROM meta WHERE key='schema_version'") == 1);
    /* argument checks: NULLs never crash */
    hearth_cache_store_put(NULL, "x", 1, "a", 1);
    CHECK(!hearth_cache_store_get(NULL, "x", 1, path, 1));
    hearth_cache_store_flush(NULL);
    hearth_cache_store_close(NULL);
}

/* ------------------------------------------------------------ LRU */

static void test_lru_eviction(void) {
    char path[512];
    db_path(path, sizeof path, "lru.sqlite");
    const size_t n = 1000;
    hearth_cache_store *s = open_ok(path, 10 * n); /* room for 10 pages */
    for (uint64_t h = 0; h < 10; h++)
        put_page(s, "m", h, n);
    hearth_cache_store_flush(s);
    CHECK(get_page(s, "m", 0, n)); /* read: now the most recently used */
    CHECK(get_page(s, "m", 1, n));
    for (uint64_t h = 10; h < 15; h++)
        put_page(s, "m", h, n);
    hearth_cache_store_flush(s);
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.rows == 10);
    CHECK(st.bytes <= 10 * n);
    CHECK(st.evicted == 5);
    CHECK(get_page(s, "m", 0, n));
    CHECK(get_page(s, "m", 1, n));
    for (uint64_t h = 2; h < 7; h++)
        CHECKF(!get_page(s, "m", h, n), "page %llu should be evicted", (unsigned long long)h);
    for (uint64_t h = 7; h < 15; h++)
        CHECKF(get_page(s, "m", h, n), "page %llu should stay", (unsigned long long)h);
    hearth_cache_store_close(s);

    /* the cap holds across a reopen with a smaller cap (enforced on the next write) */
    s = open_ok(path, 4 * n);
    put_page(s, "m", 100, n);
    hearth_cache_store_flush(s);
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.rows == 4);
    CHECK(get_page(s, "m", 100, n));
    /* a page larger than the whole cap is evicted at once, never kept */
    put_page(s, "m", 101, 5 * n);
    hearth_cache_store_flush(s);
    CHECK(!get_page(s, "m", 101, 5 * n));
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.bytes <= 4 * n);
    hearth_cache_store_close(s);
}

/* ------------------------------------------------------------ damaged rows */

static void test_damaged_rows(void) {
    char path[512];
    db_path(path, sizeof path, "damaged.sqlite");
    const size_t n = 2048;
    hearth_cache_store *s = open_ok(path, 0);
    for (uint64_t h = 1; h <= 10; h++)
        put_page(s, "fpX", h, n);
    hearth_cache_store_flush(s);

    /* while the store is open, another connection damages rows in place */
    sql_exec(path, "UPDATE pages SET data = randomblob(nbytes) WHERE hash = 3");
    sql_exec(path, "UPDATE pages SET checksum = checksum + 1 WHERE hash = 4");
    sql_exec(path, "UPDATE pages SET data = substr(data, 1, 100), nbytes = 100 WHERE hash = 5");
    sql_exec(path, "UPDATE pages SET fingerprint = 'fpY' WHERE hash = 6"); /* a foreign row under fpY */
    sql_exec(path, "UPDATE pages SET nbytes = 4096 WHERE hash = 7");

    for (uint64_t h = 3; h <= 5; h++)
        CHECKF(!get_page(s, "fpX", h, n), "damaged row %llu returned", (unsigned long long)h);
    CHECK(!get_page(s, "fpY", 6, n)); /* checksum covers the fingerprint */
    CHECK(!get_page(s, "fpX", 7, n));
    CHECK(!get_page(s, "fpX", 6, n)); /* simply absent now */
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.bad_rows == 5);
    hearth_cache_store_flush(s);
    for (int h = 3; h <= 7; h++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pages WHERE hash = %d", h);
        CHECKF(sql_int(path, sql) == 0, "damaged row %d still in the database", h);
    }
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.rows == 5);
    for (uint64_t h = 1; h <= 10; h++)
        if (h < 3 || h > 7) CHECK(get_page(s, "fpX", h, n));
    /* a re-put after a bad row is deleted works again */
    put_page(s, "fpX", 3, n);
    hearth_cache_store_flush(s);
    CHECK(get_page(s, "fpX", 3, n));
    hearth_cache_store_close(s);
}

/* ------------------------------------------------------------ damaged files */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void test_garbage_file(void) {
    char path[512];
    db_path(path, sizeof path, "garbage.sqlite");
    unsigned char junk[65536];
    fill_page(junk, sizeof junk, "junk", 1);
    write_file(path, junk, sizeof junk);
    hearth_cache_store *s = open_ok(path, 0);
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.recovered == 1);
    CHECK(st.rows == 0);
    CHECK_CONTAINS(hearth_cache_store_note(s), "moved it to");
    CHECK_CONTAINS(hearth_cache_store_note(s), ".corrupt-");
    CHECK(count_moved_aside(path) == 1);
    put_page(s, "m", 1, 512);
    hearth_cache_store_flush(s);
    CHECK(get_page(s, "m", 1, 512));
    hearth_cache_store_close(s);

    /* the garbage was moved, not destroyed */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s \"$(ls -1 '%s'.corrupt-* | head -1)\" /dev/stdin", path);
    FILE *f = popen(cmd, "w");
    REQUIRE(f != NULL);
    fwrite(junk, 1, sizeof junk, f);
    CHECK(pclose(f) == 0);

    /* a file with a valid SQLite header and garbage after it */
    db_path(path, sizeof path, "garbage2.sqlite");
    memcpy(junk, "SQLite format 3", 16);
    write_file(path, junk, sizeof junk);
    s = open_ok(path, 0);
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.recovered == 1);
    CHECK(count_moved_aside(path) == 1);
    hearth_cache_store_close(s);

    /* an empty file is a valid empty database: no recovery needed */
    db_path(path, sizeof path, "empty.sqlite");
    write_file(path, "", 0);
    s = open_ok(path, 0);
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.recovered == 0);
    hearth_cache_store_close(s);
}

static void test_truncated_file(void) {
    const size_t n = 4096;
    const int count = 150;
    const double cuts[] = {0.03, 0.33, 0.5, 0.9, 0.999};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        char path[512], name[64];
        snprintf(name, sizeof name, "trunc%zu.sqlite", c);
        db_path(path, sizeof path, name);
        hearth_cache_store *s = open_ok(path, 0);
        for (int i = 0; i < count; i++) {
            put_page(s, "m", (uint64_t)i, n);
            if (i % 50 == 49) hearth_cache_store_flush(s);
        }
        hearth_cache_store_close(s); /* checkpoints the WAL into the main file */
        char wal[520];
        snprintf(wal, sizeof wal, "%s-wal", path);
        CHECK(!file_exists(wal));
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        off_t cut = (off_t)(st.st_size * cuts[c]);
        REQUIRE(truncate(path, cut) == 0);

        s = open_ok(path, 0);
        int hits = 0;
        for (int i = 0; i < count; i++)
            hits += get_page(s, "m", (uint64_t)i, n); /* never wrong bytes */
        hearth_cache_store_stats stats = {0};
        hearth_cache_store_stats_get(s, &stats);
        CHECKF(stats.recovered == 1 || hits > 0, "cut at %.3f: neither recovered nor readable", cuts[c]);
        /* usable afterwards */
        put_page(s, "m", 9999, n);
        hearth_cache_store_flush(s);
        CHECK(get_page(s, "m", 9999, n));
        hearth_cache_store_close(s);
    }
}

/* ------------------------------------------------------------ databases left alone */

static void test_future_and_foreign(void) {
    char path[512];
    hearth_error err = {0};
    db_path(path, sizeof path, "future.sqlite");
    hearth_cache_store_close(open_ok(path, 0));
    sql_exec(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    hearth_cache_store *s = hearth_cache_store_open(path, 0, &err);
    CHECK(s == NULL);
    CHECK(err.code == HEARTH_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "schema version 99");
    CHECK_CONTAINS(err.msg, "newer Hearth");
    CHECK(count_moved_aside(path) == 0);
    CHECK(sql_int(path, "SELECT value FROM meta WHERE key='schema_version'") == 99);

    db_path(path, sizeof path, "foreign.sqlite");
    sql_exec(path, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES('mine')");
    hearth_error_clear(&err);
    s = hearth_cache_store_open(path, 0, &err);
    CHECK(s == NULL);
    CHECK(err.code == HEARTH_ERR_FORMAT);
    CHECK_CONTAINS(err.msg, "not a Hearth prefix cache");
    CHECK(count_moved_aside(path) == 0);
    CHECK(sql_int(path, "SELECT count(*) FROM notes") == 1);

    /* unusable paths give a message and no store */
    hearth_error_clear(&err);
    CHECK(hearth_cache_store_open("", 0, &err) == NULL);
    CHECK(err.code == HEARTH_ERR_INVALID);
    hearth_error_clear(&err);
    CHECK(hearth_cache_store_open(g_dir, 0, &err) == NULL); /* a directory */
    CHECK_CONTAINS(err.msg, g_dir);
    char file_as_dir[512];
    db_path(file_as_dir, sizeof file_as_dir, "future.sqlite/sub/x.sqlite");
    hearth_error_clear(&err);
    CHECK(hearth_cache_store_open(file_as_dir, 0, &err) == NULL);
    CHECK_CONTAINS(err.msg, "not a directory");
}

/* ------------------------------------------------------------ clear */

static void test_clear(void) {
    char path[512];
    db_path(path, sizeof path, "clear.sqlite");
    hearth_cache_store *s = open_ok(path, 0);
    for (uint64_t h = 0; h < 20; h++) {
        put_page(s, "A", h, 700);
        put_page(s, "B", h, 900);
    }
    hearth_error err = {0};
    CHECK(hearth_cache_store_clear(s, "A", &err) == HEARTH_OK); /* also applies queued puts first */
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.rows == 20);
    CHECK(st.bytes == 20 * 900);
    CHECK(!get_page(s, "A", 5, 700));
    CHECK(get_page(s, "B", 5, 900));
    CHECK(hearth_cache_store_clear(s, NULL, &err) == HEARTH_OK);
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.rows == 0 && st.bytes == 0);
    CHECK(!get_page(s, "B", 5, 900));
    put_page(s, "B", 5, 900);
    hearth_cache_store_flush(s);
    CHECK(get_page(s, "B", 5, 900));
    hearth_cache_store_close(s);
}

/* ------------------------------------------------------------ threads */

typedef struct thread_arg {
    hearth_cache_store *s;
    int id;
    int wrong; /* hits with wrong bytes */
    int hits;
} thread_arg;

#define T_PAGES 150
#define T_SIZE 3000

static void *putter(void *p) {
    thread_arg *a = p;
    unsigned char *buf = malloc(T_SIZE);
    for (int i = 0; i < T_PAGES; i++) {
        uint64_t h = (uint64_t)a->id * 100000 + (uint64_t)i;
        fill_page(buf, T_SIZE, "conc", h);
        hearth_cache_store_put(a->s, "conc", h, buf, T_SIZE);
        if (i % 40 == 39) hearth_cache_store_flush(a->s);
    }
    free(buf);
    return NULL;
}

static void *getter(void *p) {
    thread_arg *a = p;
    unsigned char *buf = malloc(T_SIZE);
    uint64_t x = 88172645463325252ull + (uint64_t)a->id;
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t h = (x % 4) * 100000 + (x >> 8) % T_PAGES;
        if (hearth_cache_store_get(a->s, "conc", h, buf, T_SIZE)) {
            a->hits++;
            if (!page_ok(buf, T_SIZE, "conc", h)) a->wrong++;
        }
        if (i % 500 == 0) {
            hearth_cache_store_stats st;
            hearth_cache_store_stats_get(a->s, &st);
        }
    }
    free(buf);
    return NULL;
}

static void test_concurrent(void) {
    char path[512];
    db_path(path, sizeof path, "conc.sqlite");
    hearth_cache_store *s = open_ok(path, 0);
    pthread_t th[6];
    thread_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (thread_arg){.s = s, .id = i % 4};
        REQUIRE(pthread_create(&th[i], NULL, i < 4 ? putter : getter, &args[i]) == 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    hearth_cache_store_flush(s);
    CHECK(args[4].wrong == 0 && args[5].wrong == 0);
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.puts + st.dropped_puts == 4 * T_PAGES);
    CHECK(st.write_errors == 0);
    CHECK(st.rows == st.puts);
    int present = 0;
    for (uint64_t t = 0; t < 4; t++)
        for (uint64_t i = 0; i < T_PAGES; i++)
            present += get_page(s, "conc", t * 100000 + i, T_SIZE);
    CHECK((uint64_t)present == st.puts);
    hearth_cache_store_close(s);
}

/* ------------------------------------------------------------ full queue */

static void test_queue_full(void) {
    char path[512];
    db_path(path, sizeof path, "full.sqlite");
    hearth_cache_store *s = open_ok(path, 0);
    put_page(s, "q", 424242, 100);
    hearth_cache_store_flush(s);

    /* another process holds the write lock: the writer cannot make progress */
    sqlite3 *blocker = NULL;
    REQUIRE(sqlite3_open(path, &blocker) == SQLITE_OK);
    REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);

    unsigned char buf[1024];
    double worst = 0, t_all = hearth_now_ms();
    for (uint64_t h = 0; h < 1000; h++) {
        fill_page(buf, sizeof buf, "q", h);
        double t0 = hearth_now_ms();
        hearth_cache_store_put(s, "q", h, buf, sizeof buf);
        double dt = hearth_now_ms() - t0;
        if (dt > worst) worst = dt;
    }
    double t_get = hearth_now_ms();
    CHECK(get_page(s, "q", 424242, 100)); /* reads go on while the writer is stuck */
    t_get = hearth_now_ms() - t_get;
    t_all = hearth_now_ms() - t_all;
    hearth_cache_store_stats st = {0};
    hearth_cache_store_stats_get(s, &st);
    CHECKF(worst < 100, "a put blocked for %.1f ms", worst);
    CHECKF(t_get < 100, "a get blocked for %.1f ms", t_get);
    CHECKF(t_all < 1000, "1000 puts took %.1f ms", t_all);
    CHECK(st.dropped_puts > 0);
    CHECK(st.puts == 1 + 256);
    CHECK(st.puts + st.dropped_puts == 1001);

    usleep(100 * 1000);
    REQUIRE(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(blocker);
    hearth_cache_store_flush(s);
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.write_errors == 0);
    CHECK(st.rows == 1 + 256);
    hearth_cache_store_close(s);
}

/* ------------------------------------------------------------ default path */

static void test_default_path(void) {
    char buf[512], small[16];
    const char *old_xdg = getenv("XDG_CACHE_HOME"), *old_home = getenv("HOME");
    char *save_xdg = old_xdg ? strdup(old_xdg) : NULL, *save_home = old_home ? strdup(old_home) : NULL;
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    CHECK(!strcmp(hearth_cache_store_default_path(buf, sizeof buf), "/x/cache/hearth/prefix-cache.sqlite"));
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    setenv("HOME", "/home/u", 1);
    CHECK(!strcmp(hearth_cache_store_default_path(buf, sizeof buf),
                  "/home/u/.cache/hearth/prefix-cache.sqlite"));
    unsetenv("XDG_CACHE_HOME");
    CHECK(!strcmp(hearth_cache_store_default_path(buf, sizeof buf),
                  "/home/u/.cache/hearth/prefix-cache.sqlite"));
    CHECK(!strcmp(hearth_cache_store_default_path(small, sizeof small), "")); /* never truncated */
    if (save_xdg) setenv("XDG_CACHE_HOME", save_xdg, 1);
    if (save_home) setenv("HOME", save_home, 1);
    free(save_xdg);
    free(save_home);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(p);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/hearth-cache-store-XXXXXX");
    REQUIRE(mkdtemp(g_dir) != NULL);
    test_default_path();
    test_round_trip_and_reopen();
    test_lru_eviction();
    test_damaged_rows();
    test_garbage_file();
    test_truncated_file();
    test_future_and_foreign();
    test_clear();
    test_concurrent();
    test_queue_full();
    int rc = test_summary("test_cache_store");
    if (rc == 0)
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "test files kept in %s\n", g_dir);
    return rc;
}
