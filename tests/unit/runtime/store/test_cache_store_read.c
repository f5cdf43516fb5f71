/*
 * test_cache_store_read.c - the prefix-cache store's read path:
 *  - a new database uses 64 KiB pages (a cached KV page is a short overflow
 *    chain);
 *  - get_spans fills uneven pieces with exactly the row's bytes, and rejects
 *    spans whose sizes do not add up to the row's;
 *  - rows written with the old checksum (hearth_hash64, before the wide one)
 *    are still returned, and an old row with a wrong checksum is still
 *    rejected and deleted;
 *  - last-use updates held by the writer are applied by flush and by close;
 *  - open skips the whole-file integrity_check only for a file a store closed
 *    clean (not while another store has it open, not after a damaged read);
 *    bytes damaged in such a file are still refused, and the next open checks.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "runtime/store/cache_store.h"
#include "test.h"

static void fill(unsigned char *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (unsigned char)(seed >> 56);
    }
}

static int64_t sql_int(const char *path, const char *q) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A row as Hearth wrote it before the wide checksum (same seed, hearth_hash64). */
static void put_old_row(const char *path, const char *fp, uint64_t hash, const unsigned char *data, size_t n,
                        int64_t sum_delta) {
    uint64_t seed = hearth_hash_mix(hearth_hash64(fp, strlen(fp), 0x4865617274685047ull), hash);
    int64_t sum = (int64_t)hearth_hash64(data, n, seed) + sum_delta;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO pages(fingerprint,hash,data,checksum,nbytes,last_used) "
                               "VALUES(?1,?2,?3,?4,?5,1)",
                               -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)hash);
    sqlite3_bind_blob(st, 3, data, (int)n, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, sum);
    sqlite3_bind_int64(st, 5, (int64_t)n);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static hearth_cache_store *open_ok(const char *path) {
    hearth_error err = {0};
    hearth_cache_store *s = hearth_cache_store_open(path, 0, &err);
    CHECKF(s != NULL, "open %s: %s", path, err.msg);
    REQUIRE(s);
    return s;
}

int main(void) {
    char dir[] = "/tmp/hearth-store-read-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/c.sqlite", dir);
    enum { N = 200000 };
    unsigned char *a = malloc(N), *b = malloc(N);
    REQUIRE(a && b);
    fill(a, N, 1);

    hearth_cache_store *s = open_ok(path);
    CHECK(sql_int(path, "PRAGMA page_size") == 65536);
    hearth_cache_store_put(s, "fp", 7, a, N);
    hearth_cache_store_flush(s);

    /* ---- spans: uneven pieces get exactly their bytes */
    memset(b, 0, N);
    hearth_store_span sp[3] = {{b, 1000}, {b + 1000, 33}, {b + 1033, N - 1033}};
    CHECK(hearth_cache_store_get_spans(s, "fp", 7, sp, 3));
    CHECK(!memcmp(a, b, N));
    hearth_store_span empty_sp[2] = {{b, N}, {b, 0}}; /* an empty piece: refused before any read */
    CHECK(!hearth_cache_store_get_spans(s, "fp", 7, empty_sp, 2));
    CHECK(!hearth_cache_store_get_spans(s, "fp", 7, sp, 0));
    hearth_cache_store_flush(s);
    CHECK(hearth_cache_store_get(s, "fp", 7, b, N)); /* still there */
    /* pieces adding up to another size: a damaged row for this key, deleted */
    hearth_store_span short_sp[2] = {{b, 1000}, {b + 1000, 1000}};
    CHECK(!hearth_cache_store_get_spans(s, "fp", 7, short_sp, 2));
    hearth_cache_store_flush(s);
    CHECK(!hearth_cache_store_get(s, "fp", 7, b, N));

    /* ---- rows with the old checksum */
    fill(a, N, 2);
    put_old_row(path, "fp", 8, a, N, 0);
    put_old_row(path, "fp", 9, a, N, 1); /* a wrong old checksum */
    memset(b, 0, N);
    CHECK(hearth_cache_store_get(s, "fp", 8, b, N));
    CHECK(!memcmp(a, b, N));
    memset(b, 0, N);
    hearth_store_span sp2[2] = {{b, 4096}, {b + 4096, N - 4096}};
    CHECK(hearth_cache_store_get_spans(s, "fp", 8, sp2, 2));
    CHECK(!memcmp(a, b, N));
    CHECK(!hearth_cache_store_get(s, "fp", 9, b, N));
    hearth_cache_store_stats st;
    hearth_cache_store_stats_get(s, &st);
    CHECK(st.bad_rows == 2); /* the size mismatch and the wrong old checksum */
    hearth_cache_store_flush(s);
    CHECK(sql_int(path, "SELECT count(*) FROM pages WHERE hash = 9") == 0);

    /* ---- held last-use updates: flush applies them, and so does close */
    int64_t t0 = sql_int(path, "SELECT last_used FROM pages WHERE hash = 8");
    CHECK(hearth_cache_store_get(s, "fp", 8, b, N));
    hearth_cache_store_flush(s);
    int64_t t1 = sql_int(path, "SELECT last_used FROM pages WHERE hash = 8");
    CHECKF(t1 > t0, "flush applied the touch: %lld -> %lld", (long long)t0, (long long)t1);
    CHECK(hearth_cache_store_get(s, "fp", 8, b, N));
    hearth_cache_store_close(s);
    int64_t t2 = sql_int(path, "SELECT last_used FROM pages WHERE hash = 8");
    CHECKF(t2 > t1, "close applied the touch: %lld -> %lld", (long long)t1, (long long)t2);

    /* ---- the whole-file check runs only when the file was not closed clean */
    hearth_cache_store_stats_get(s = open_ok(path), &st);
    CHECK(st.checked == 1); /* the old-checksum row with a wrong sum made the last close leave it unclean */
    hearth_cache_store *s2 = open_ok(path); /* a second store while the first is open */
    hearth_cache_store_stats_get(s2, &st);
    CHECK(st.checked == 1);
    hearth_cache_store_close(s2);
    hearth_cache_store_close(s);
    hearth_cache_store_stats_get(s = open_ok(path), &st);
    CHECK(st.checked == 0); /* closed clean: no integrity_check */
    CHECK(hearth_cache_store_get(s, "fp", 8, b, N));
    hearth_cache_store_close(s);
    /* bytes of a row damaged while it was closed (the header still agrees):
     * the check is skipped, the row is refused, the next open checks */
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    int64_t rowid = -1;
    sqlite3_stmt *q = NULL;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT rowid FROM pages WHERE hash = 8", -1, &q, NULL) == SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW) rowid = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_blob *bl = NULL;
    REQUIRE(sqlite3_blob_open(db, "main", "pages", "data", rowid, 1, &bl) == SQLITE_OK);
    unsigned char junk[64];
    memset(junk, 0x5a, sizeof junk);
    CHECK(sqlite3_blob_write(bl, junk, sizeof junk, N / 2) == SQLITE_OK);
    sqlite3_blob_close(bl);
    sqlite3_close(db);
    hearth_cache_store_stats_get(s = open_ok(path), &st);
    CHECK(st.checked == 0);
    CHECK(!hearth_cache_store_get(s, "fp", 8, b, N));
    hearth_cache_store_close(s);
    hearth_cache_store_stats_get(s = open_ok(path), &st);
    CHECK(st.checked == 1);
    hearth_cache_store_close(s);

    free(a);
    free(b);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup of %s failed\n", dir);
    return test_summary("cache_store_read");
}
