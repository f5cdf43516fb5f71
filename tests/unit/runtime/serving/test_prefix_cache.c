/*
 * test_prefix_cache.c - the prefix cache on a small CPU KV pool, no model:
 * chained page keys, which pages may be cached (full ones only, never the
 * page of a prompt's last token), lookup of a published prefix, LRU
 * eviction of unreferenced pages when the pool runs short, separation by
 * fingerprint, and with the SQLite store a page missing from memory that is
 * found on disk (same bytes) by a fresh cache over a fresh pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/backend.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/serving/prefix_cache.h"
#include "runtime/store/cache_store.h"
#include "test.h"

#define PS 4

static const hearth_kv_config cfg = {
    .n_layer = 2, .n_kv_heads = 1, .head_dim = 4, .type = HEARTH_F32, .page_size = PS, .n_pages = 6};

static bool kv_ok(const hearth_kv_cache *kv) {
    hearth_error err = {0};
    if (hearth_kv_check(kv, &err) == HEARTH_OK) return true;
    fprintf(stderr, "%s\n", err.msg);
    return false;
}

/* First value of layer l's K (v=false) or V row at a slot. */
static float *row(hearth_kv_cache *kv, int l, bool v, int32_t slot) {
    hearth_tensor *t = v ? hearth_kv_v(kv, l) : hearth_kv_k(kv, l);
    return (float *)((char *)t->data + (size_t)slot * t->nb1);
}

/* A sequence of n tokens whose K/V rows hold 1000*layer + 10*pos (+ 5 in V). */
static int fill_seq(hearth_kv_cache *kv, int n) {
    hearth_error err = {0};
    int s = hearth_kv_seq_create(kv, &err);
    REQUIRE(s >= 0 && hearth_kv_seq_reserve(kv, s, n, &err) == HEARTH_OK);
    for (int l = 0; l < cfg.n_layer; l++)
        for (int p = 0; p < n; p++) {
            *row(kv, l, false, hearth_kv_slot(kv, s, p)) = (float)(1000 * l + 10 * p);
            *row(kv, l, true, hearth_kv_slot(kv, s, p)) = (float)(1000 * l + 10 * p + 5);
        }
    hearth_kv_seq_set_len(kv, s, n);
    return s;
}

/* Keys of the first n_pages pages of toks, chained as the engine chains them. */
static void page_keys(const hearth_prefix_cache *pc, const int32_t *toks, int n_pages, uint64_t *keys) {
    uint64_t parent = 0;
    for (int p = 0; p < n_pages; p++)
        keys[p] = parent = hearth_prefix_hash(pc, parent, toks + p * PS, PS);
}

/* Publish the full pages of sequence s (n tokens), as the engine does. */
static void publish(hearth_prefix_cache *pc, hearth_kv_cache *kv, int s, const int32_t *toks, int n) {
    int np;
    const int32_t *pages = hearth_kv_seq_pages(kv, s, &np);
    uint64_t keys[8];
    int full = hearth_prefix_pages_full(n, PS);
    page_keys(pc, toks, full, keys);
    for (int p = 0; p < full; p++)
        hearth_prefix_cache_publish(pc, keys[p], pages[p]);
}

static const int32_t toks[12] = {1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

static void test_keys_and_pages(hearth_backend *be) {
    hearth_error err = {0};
    CHECK(hearth_prefix_pages_to_attach(10, PS) == 2);
    CHECK(hearth_prefix_pages_to_attach(9, PS) == 2);
    CHECK(hearth_prefix_pages_to_attach(8, PS) == 1); /* the last token's page is computed */
    CHECK(hearth_prefix_pages_to_attach(4, PS) == 0);
    CHECK(hearth_prefix_pages_to_attach(1, PS) == 0);
    CHECK(hearth_prefix_pages_full(10, PS) == 2); /* the partial third page is never cached */
    CHECK(hearth_prefix_pages_full(8, PS) == 2);
    CHECK(hearth_prefix_pages_full(3, PS) == 0);

    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    hearth_prefix_cache *pc = hearth_prefix_cache_create(kv, "model-A", NULL, &err);
    REQUIRE(pc);
    hearth_kv_cache *kv2 = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv2);
    hearth_prefix_cache *pc2 = hearth_prefix_cache_create(kv2, "model-B", NULL, &err);
    REQUIRE(pc2);
    uint64_t a1 = hearth_prefix_hash(pc, 0, toks, PS);
    CHECK(a1 != 0);
    CHECK(hearth_prefix_hash(pc, 0, toks, PS) == a1);      /* deterministic */
    CHECK(hearth_prefix_hash(pc, 0, toks + PS, PS) != a1); /* other tokens */
    CHECK(hearth_prefix_hash(pc, a1, toks + PS, PS) !=
          hearth_prefix_hash(pc, 0, toks + PS, PS));   /* chained */
    CHECK(hearth_prefix_hash(pc2, 0, toks, PS) != a1); /* fingerprint in the seed */
    CHECK(!strcmp(hearth_prefix_cache_fingerprint(pc2), "model-B"));
    hearth_prefix_cache_free(pc2);
    hearth_kv_free(kv2);
    hearth_prefix_cache_free(pc);
    hearth_kv_free(kv);
}

static void test_lookup_and_lru(hearth_backend *be) {
    hearth_error err = {0};
    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    hearth_prefix_cache *pc = hearth_prefix_cache_create(kv, "model-A", NULL, &err);
    REQUIRE(pc);
    int a = fill_seq(kv, 10); /* pages 0, 1, 2 (partial) */
    publish(pc, kv, a, toks, 10);
    CHECK(kv_ok(kv));
    hearth_prefix_stats st;
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.inserted == 2 && st.pages_indexed == 2 && st.pages_cached == 0);
    uint64_t keys[3];
    page_keys(pc, toks, 3, keys);

    /* a shared prefix: the pages of a running sequence, with a reference each */
    int32_t p0 = hearth_prefix_cache_acquire(pc, keys[0]);
    CHECK(p0 == 0 && hearth_kv_page_refcount(kv, 0) == 2);
    hearth_kv_page_unref(kv, p0);
    CHECK(hearth_prefix_cache_acquire(pc, keys[2]) == -1);     /* the partial page was not published */
    uint64_t other = hearth_prefix_hash(pc, 0, toks + PS, PS); /* page 1's tokens without its parent */
    CHECK(hearth_prefix_cache_acquire(pc, other) == -1);
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.lookups == 3 && st.hits_memory == 1);

    /* a new sequence over the same prefix attaches both pages */
    int b = hearth_kv_seq_create(kv, &err);
    for (int p = 0; p < 2; p++) {
        int32_t pg = hearth_prefix_cache_acquire(pc, keys[p]);
        CHECK(pg == p);
        CHECK(hearth_kv_seq_append_page(kv, b, pg, &err) == HEARTH_OK);
        hearth_kv_page_unref(kv, pg);
    }
    CHECK(kv_ok(kv));
    CHECK(hearth_kv_seq_len(kv, b) == 8 && *row(kv, 1, false, hearth_kv_slot(kv, b, 5)) == 1050.0f);
    /* a published page is immutable: b writing its next page leaves it alone */
    CHECK(hearth_kv_seq_reserve(kv, b, 9, &err) == HEARTH_OK);
    CHECK(hearth_kv_pages_free(kv) == 2);

    /* unreferenced published pages stay cached; the partial page goes free */
    hearth_kv_seq_free(kv, a);
    hearth_kv_seq_free(kv, b);
    CHECK(kv_ok(kv));
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.pages_cached == 2 && hearth_kv_pages_free(kv) == 4);
    /* sequence frees go last page first, so page 1 is older than page 0 in
     * the LRU; using page 1 again makes page 0 the least recently used */
    int32_t p1 = hearth_prefix_cache_acquire(pc, keys[1]);
    CHECK(p1 == 1);
    hearth_kv_page_unref(kv, p1);
    CHECK(kv_ok(kv));

    /* fill the pool: the 4 free pages, then one eviction (page 0) */
    int c = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_reserve(kv, c, 5 * PS, &err) == HEARTH_OK);
    CHECK(kv_ok(kv));
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.evicted == 1 && st.pages_cached == 1 && st.pages_indexed == 1);
    CHECK(hearth_prefix_cache_acquire(pc, keys[0]) == -1);
    p1 = hearth_prefix_cache_acquire(pc, keys[1]);
    CHECK(p1 == 1);
    hearth_kv_page_unref(kv, p1);
    /* the last cached page goes too when another page is needed */
    CHECK(hearth_kv_seq_reserve(kv, c, 6 * PS, &err) == HEARTH_OK);
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.evicted == 2 && st.pages_cached == 0 && st.pages_indexed == 0);
    /* and with nothing left to evict the pool is full */
    CHECK(hearth_kv_seq_reserve(kv, c, 7 * PS, &err) == HEARTH_ERR_CONTEXT);
    CHECK(kv_ok(kv));
    hearth_kv_seq_free(kv, c);
    CHECK(hearth_kv_pages_free(kv) == cfg.n_pages);
    CHECK(kv_ok(kv));
    hearth_prefix_cache_free(pc);
    hearth_kv_free(kv);
}

static void test_store(hearth_backend *be) {
    hearth_error err = {0};
    char dir[] = "/tmp/hearth-prefix-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/prefix.sqlite", dir);
    hearth_cache_store *store = hearth_cache_store_open(path, 0, &err);
    REQUIRE(store);

    /* one engine's life: publish two pages, written to the store */
    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    hearth_prefix_cache *pc = hearth_prefix_cache_create(kv, "model-A", store, &err);
    REQUIRE(pc);
    int a = fill_seq(kv, 10);
    publish(pc, kv, a, toks, 10);
    uint64_t keys[2];
    page_keys(pc, toks, 2, keys);
    hearth_kv_seq_free(kv, a);
    hearth_prefix_cache_free(pc);
    hearth_kv_free(kv);
    hearth_cache_store_flush(store);

    /* a fresh pool and cache: a miss in memory that hits on disk */
    kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    pc = hearth_prefix_cache_create(kv, "model-A", store, &err);
    REQUIRE(pc);
    int b = hearth_kv_seq_create(kv, &err);
    for (int p = 0; p < 2; p++) {
        int32_t pg = hearth_prefix_cache_acquire(pc, keys[p]);
        REQUIRE(pg >= 0);
        CHECK(hearth_kv_seq_append_page(kv, b, pg, &err) == HEARTH_OK);
        hearth_kv_page_unref(kv, pg);
    }
    CHECK(kv_ok(kv));
    hearth_prefix_stats st;
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.hits_disk == 2 && st.hits_memory == 0 && st.pages_indexed == 2);
    /* the same bytes, in every layer, K and V */
    CHECK(*row(kv, 0, false, hearth_kv_slot(kv, b, 0)) == 0.0f);
    CHECK(*row(kv, 0, true, hearth_kv_slot(kv, b, 3)) == 35.0f);
    CHECK(*row(kv, 1, false, hearth_kv_slot(kv, b, 6)) == 1060.0f);
    CHECK(*row(kv, 1, true, hearth_kv_slot(kv, b, 7)) == 1075.0f);
    /* a second lookup now hits memory */
    int32_t pg = hearth_prefix_cache_acquire(pc, keys[0]);
    CHECK(pg >= 0);
    hearth_kv_page_unref(kv, pg);
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.hits_memory == 1 && st.hits_disk == 2);
    hearth_kv_seq_free(kv, b);
    CHECK(kv_ok(kv));
    hearth_prefix_cache_free(pc);
    hearth_kv_free(kv);

    /* another model's cache over the same store finds nothing, even under the same key */
    kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    pc = hearth_prefix_cache_create(kv, "model-B", store, &err);
    REQUIRE(pc);
    CHECK(hearth_prefix_hash(pc, 0, toks, PS) != keys[0]);
    CHECK(hearth_prefix_cache_acquire(pc, keys[0]) == -1);
    CHECK(hearth_prefix_cache_acquire(pc, hearth_prefix_hash(pc, 0, toks, PS)) == -1);
    hearth_prefix_cache_stats_get(pc, &st);
    CHECK(st.hits_disk == 0 && st.lookups == 2);
    CHECK(hearth_kv_pages_free(kv) == cfg.n_pages); /* the page tried for the miss went back */
    CHECK(kv_ok(kv));
    hearth_prefix_cache_free(pc);
    hearth_kv_free(kv);

    hearth_cache_store_close(store);
    char side[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffix[i]);
        unlink(side);
    }
    rmdir(dir);
}

int main(void) {
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    REQUIRE(be);
    test_keys_and_pages(be);
    test_lookup_and_lru(be);
    test_store(be);
    hearth_backend_free(be);
    return test_summary("prefix_cache");
}
