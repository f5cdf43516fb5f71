/*
 * test_cache_store_crash.c - crash safety of the SQLite prefix-cache store.
 *
 * A child process opens the store and writes pages in a tight loop (puts,
 * flushes, reads, and LRU eviction under a small cap, so inserts and deletes
 * are both in flight); the parent SIGKILLs it at a varying moment ~200 ms
 * in. Then, in the parent:
 *  - SQLite itself must find the file intact (PRAGMA integrity_check = ok);
 *  - hearth_cache_store_open must open it as is (no "moved aside" recovery);
 *  - every row in the database must come back through get() with exactly
 *    the bytes the child wrote (page contents and sizes are functions of
 *    the hash), and no row may be rejected as bad.
 * Three rounds on the same file, so later rounds start from a crashed one.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/os.h"
#include "runtime/store/cache_store.h"
#include "test.h"

#define FP "crash-model"
#define CAP_BYTES (3u << 20) /* small: the child evicts while it writes */

static size_t page_size_for(uint64_t hash) {
    return 2048 + (size_t)(hash % 13) * 512;
}

static void fill_page(unsigned char *p, size_t n, uint64_t hash) {
    uint64_t x = hash * 0x9e3779b97f4a7c15ull + 0x1234567;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* The child: write until killed (or 20 s, should the parent vanish). */
static void child_main(const char *path, uint64_t first_hash, int ready_fd) {
    hearth_error err = {0};
    hearth_cache_store *s = hearth_cache_store_open(path, CAP_BYTES, &err);
    if (!s) {
        fprintf(stderr, "child: open failed: %s\n", err.msg);
        _exit(3);
    }
    unsigned char buf[2048 + 12 * 512];
    if (write(ready_fd, "r", 1) != 1) _exit(4);
    close(ready_fd);
    double start_ms = hearth_now_ms();
    for (uint64_t h = first_hash;; h++) {
        size_t n = page_size_for(h);
        fill_page(buf, n, h);
        hearth_cache_store_put(s, FP, h, buf, n);
        if (h % 24 == 0) hearth_cache_store_flush(s);
        if (h % 7 == 0) hearth_cache_store_get(s, FP, h - 50, buf, page_size_for(h - 50));
        if (hearth_now_ms() - start_ms > 20e3) _exit(5);
    }
}

static void one_round(const char *path, int round, unsigned seed) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(path, (uint64_t)round * 1000000 + 1, fds[1]);
    }
    close(fds[1]);
    char c;
    CHECK(read(fds[0], &c, 1) == 1); /* the child has opened the store */
    close(fds[0]);
    useconds_t delay = 150000 + (useconds_t)(seed % 150000); /* 150-300 ms */
    usleep(delay);
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
           "round %d: the child ended on its own (status %d)", round, status);

    /* 1. SQLite finds the file intact */
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    const char *ic = (const char *)sqlite3_column_text(st, 0);
    CHECKF(ic && !strcmp(ic, "ok"), "round %d: integrity_check says %s", round, ic ? ic : "(null)");
    sqlite3_finalize(st);

    /* the rows the database holds now */
    size_t n_rows = 0, cap = 0;
    uint64_t *hashes = NULL;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT hash FROM pages WHERE fingerprint = '" FP "'", -1, &st, NULL) ==
            SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        REQUIRE(hearth_grow((void **)&hashes, &cap, n_rows + 1, sizeof *hashes));
        hashes[n_rows++] = (uint64_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECKF(n_rows > 0, "round %d: the child wrote nothing before it was killed", round);

    /* 2. the store opens it as is, and 3. every row is exactly what was written */
    hearth_error err = {0};
    hearth_cache_store *s = hearth_cache_store_open(path, CAP_BYTES, &err);
    CHECKF(s != NULL, "round %d: open after crash: %s", round, err.msg);
    REQUIRE(s != NULL);
    hearth_cache_store_stats stats = {0};
    hearth_cache_store_stats_get(s, &stats);
    CHECKF(stats.recovered == 0, "round %d: the crashed database was moved aside: %s", round,
           hearth_cache_store_note(s));
    unsigned char buf[2048 + 12 * 512], want[sizeof buf];
    size_t good = 0;
    for (size_t i = 0; i < n_rows; i++) {
        size_t n = page_size_for(hashes[i]);
        if (!hearth_cache_store_get(s, FP, hashes[i], buf, n)) continue;
        fill_page(want, n, hashes[i]);
        CHECKF(!memcmp(buf, want, n), "round %d: row %llu came back with other bytes", round,
               (unsigned long long)hashes[i]);
        good++;
    }
    hearth_cache_store_stats_get(s, &stats);
    CHECKF(good == n_rows, "round %d: %zu of %zu rows readable", round, good, n_rows);
    CHECK(stats.bad_rows == 0);
    CHECK(stats.bytes <= CAP_BYTES);
    printf("round %d: killed after %u ms; %zu rows intact\n", round, (unsigned)(delay / 1000), n_rows);
    hearth_cache_store_close(s);
    free(hashes);
}

int main(void) {
    char dir[] = "/tmp/hearth-cache-crash-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/crash.sqlite", dir);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int round = 1; round <= 3; round++) {
        seed = seed * 1103515245u + 12345u;
        one_round(path, round, seed >> 8);
    }
    int rc = test_summary("test_cache_store_crash");
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "test files kept in %s\n", dir);
    }
    return rc;
}
