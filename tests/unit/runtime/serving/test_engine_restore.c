/*
 * test_engine_restore.c - a cached prefix read back from SQLite by a new
 * engine (as after a restart), on a real model (hearth-kjv-llama-q8_0, CPU):
 *  - the tokens equal a cold run's, and the pages come from the store
 *    (read straight into the KV pools: no staging copy on the CPU);
 *  - the request's breakdown adds up: cache_ms within queue_ms, the store
 *    reads within cache_ms, ttft = queue + prompt;
 *  - rows damaged in the database (bytes, checksum) are rejected and
 *    recomputed: the tokens still equal the cold run's;
 *  - a garbage file at the path is moved aside and the run is cold and right.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "test.h"

static hearth_backend *g_be;
static hearth_model *g_m;

static void make_prompt(int32_t *out, int n, uint32_t seed) {
    out[0] = 1; /* BOS */
    for (int i = 1; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[i] = 261 + (int32_t)((seed >> 8) % 700);
    }
}

/* One greedy request on a fresh engine over db (NULL: no prefix cache). */
static bool run_once(const char *db, const int32_t *prompt, int n, hearth_completion *out,
                     hearth_engine_stats *st) {
    hearth_error err = {0};
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.n_parallel = 1;
    cfg.prefix_cache = db != NULL;
    cfg.cache_db = db;
    hearth_engine *e = hearth_engine_create(g_m, &cfg, &err);
    if (!e) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return false;
    }
    hearth_request r = {0};
    r.prompt = prompt;
    r.n_prompt = n;
    r.sampling = hearth_sampling_defaults();
    r.sampling.temperature = 0;
    r.max_tokens = 12;
    bool ok = hearth_engine_generate(e, &r, out, &err) == HEARTH_OK;
    if (!ok) fprintf(stderr, "generate: %s\n", err.msg);
    if (st) hearth_engine_stats_get(e, st);
    hearth_engine_free(e); /* flushes the store */
    return ok;
}

static bool same_tokens(const hearth_completion *a, const hearth_completion *b) {
    return a->tokens.n == b->tokens.n && !memcmp(a->tokens.ids, b->tokens.ids, a->tokens.n * sizeof(int32_t));
}

static void sql(const char *db, const char *stmt) {
    sqlite3 *h = NULL;
    REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    char *msg = NULL;
    CHECKF(sqlite3_exec(h, stmt, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", stmt, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(h);
}

int main(void) {
    hearth_error err = {0};
    g_be = hearth_cpu_backend_create(2, &err);
    REQUIRE(g_be);
    char path[1024];
    hearth_model_params mp = {.backend = g_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    g_m = hearth_model_load(test_shared_path(path, sizeof path, "models/hearth-kjv-llama-q8_0.gguf"), &mp,
                            &err);
    REQUIRE(g_m);

    enum { N = 300 }; /* 18 whole pages of 16 cached, 12 tokens computed */
    int32_t prompt[N];
    make_prompt(prompt, N, 7);
    char dir[] = "/tmp/hearth-restore-test-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/cache.sqlite", dir);

    hearth_completion cold = {0}, first = {0}, again = {0}, damaged = {0}, garbage = {0};
    hearth_engine_stats st;
    REQUIRE(run_once(NULL, prompt, N, &cold, NULL));
    REQUIRE(run_once(db, prompt, N, &first, NULL));
    CHECK(first.stats.cached_tokens == 0);
    CHECK(same_tokens(&cold, &first));

    /* ---- a new engine reads the prefix from the database */
    REQUIRE(run_once(db, prompt, N, &again, &st));
    const hearth_request_stats *rs = &again.stats;
    CHECKF(rs->cached_tokens == 288, "cached %d", rs->cached_tokens);
    CHECK(st.prefix.hits_disk == 18);
    CHECK(same_tokens(&cold, &again));
    CHECK(rs->cache_ms > 0 && rs->cache_read_ms > 0);
    CHECKF(rs->cache_upload_ms == 0, "CPU pools are filled by the read itself, upload %.3f ms",
           rs->cache_upload_ms);
    CHECKF(rs->cache_read_ms + rs->cache_upload_ms <= rs->cache_ms + 0.01, "read %.3f + upload %.3f > %.3f",
           rs->cache_read_ms, rs->cache_upload_ms, rs->cache_ms);
    CHECKF(rs->cache_ms <= rs->queue_ms + 0.01, "cache %.3f > queue %.3f", rs->cache_ms, rs->queue_ms);
    CHECKF(rs->ttft_ms > rs->queue_ms && rs->ttft_ms - (rs->queue_ms + rs->prompt_ms) < 0.01 &&
               rs->ttft_ms - (rs->queue_ms + rs->prompt_ms) > -0.01,
           "ttft %.3f != queue %.3f + prompt %.3f", rs->ttft_ms, rs->queue_ms, rs->prompt_ms);
    printf("restore: cold ttft %.1f ms, from SQLite %.1f ms (cache %.1f ms: read %.1f)\n", cold.stats.ttft_ms,
           rs->ttft_ms, rs->cache_ms, rs->cache_read_ms);

    /* ---- damaged rows are recomputed, never used: the 5th page's bytes and the
     * 9th page's checksum (rows are ordered by when they were written) */
    sql(db, "UPDATE pages SET data = randomblob(nbytes) WHERE rowid = (SELECT rowid FROM pages ORDER BY "
            "last_used LIMIT 1 OFFSET 4)");
    sql(db, "UPDATE pages SET checksum = checksum + 1 WHERE rowid = (SELECT rowid FROM pages ORDER BY "
            "last_used LIMIT 1 OFFSET 8)");
    REQUIRE(run_once(db, prompt, N, &damaged, &st));
    CHECKF(damaged.stats.cached_tokens < 288, "cached %d past a damaged page", damaged.stats.cached_tokens);
    CHECK(same_tokens(&cold, &damaged));

    /* ---- a garbage file: moved aside, the run is cold and right */
    FILE *f = fopen(db, "wb");
    REQUIRE(f);
    for (int i = 0; i < 70000; i++)
        fputc((i * 131) & 0xff, f);
    fclose(f);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    REQUIRE(run_once(db, prompt, N, &garbage, NULL));
    CHECK(garbage.stats.cached_tokens == 0);
    CHECK(same_tokens(&cold, &garbage));

    hearth_completion_free(&cold);
    hearth_completion_free(&first);
    hearth_completion_free(&again);
    hearth_completion_free(&damaged);
    hearth_completion_free(&garbage);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup of %s failed\n", dir);
    hearth_model_free(g_m);
    hearth_backend_free(g_be);
    return test_summary("engine_restore");
}
