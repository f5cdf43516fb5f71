/*
 * prefix_cache.c - see prefix_cache.h.
 *
 * Index: key -> page through chained buckets (each page carries at most one
 * key, so the chain links live in a per-page array). Unreferenced published
 * pages sit on an LRU list (most recent at the tail); the KV cache's reclaim
 * hook evicts from the head.
 */
#include "prefix_cache.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "core/hash.h"
#include "core/os.h"

struct hearth_prefix_cache {
    hearth_kv_cache *kv;
    hearth_cache_store *store;
    char fingerprint[128];
    uint64_t seed;
    int n_pages, n_buckets;
    int32_t *bucket;              /* [n_buckets] first page, -1 */
    int32_t *chain;               /* [n_pages] next page in bucket */
    uint64_t *key;                /* [n_pages] */
    bool *indexed;                /* [n_pages] */
    int32_t *lru_prev, *lru_next; /* [n_pages]; -1 ends */
    bool *in_lru;
    int32_t lru_head, lru_tail;
    void *page_buf; /* host staging for store reads/writes */
    int n_layer;
    hearth_store_span *spans; /* [2 * n_layer] when every layer's pools are host memory, else NULL */
    size_t page_buf_size;
    hearth_prefix_stats st;
};

/* ------------------------------------------------------------ LRU list */

static void lru_remove(hearth_prefix_cache *pc, int32_t p) {
    if (!pc->in_lru[p]) return;
    assert(pc->st.pages_cached > 0);
    if (pc->lru_prev[p] >= 0)
        pc->lru_next[pc->lru_prev[p]] = pc->lru_next[p];
    else
        pc->lru_head = pc->lru_next[p];
    if (pc->lru_next[p] >= 0)
        pc->lru_prev[pc->lru_next[p]] = pc->lru_prev[p];
    else
        pc->lru_tail = pc->lru_prev[p];
    pc->in_lru[p] = false;
    pc->st.pages_cached--;
}

static void lru_push(hearth_prefix_cache *pc, int32_t p) {
    pc->lru_prev[p] = pc->lru_tail;
    pc->lru_next[p] = -1;
    if (pc->lru_tail >= 0)
        pc->lru_next[pc->lru_tail] = p;
    else
        pc->lru_head = p;
    pc->lru_tail = p;
    pc->in_lru[p] = true;
    pc->st.pages_cached++;
}

/* ------------------------------------------------------------ index */

static int32_t index_find(const hearth_prefix_cache *pc, uint64_t key) {
    for (int32_t p = pc->bucket[key % (uint64_t)pc->n_buckets]; p >= 0; p = pc->chain[p])
        if (pc->key[p] == key) return p;
    return -1;
}

static void index_insert(hearth_prefix_cache *pc, uint64_t key, int32_t page) {
    int b = (int)(key % (uint64_t)pc->n_buckets);
    pc->key[page] = key;
    pc->chain[page] = pc->bucket[b];
    pc->bucket[b] = page;
    pc->indexed[page] = true;
    pc->st.pages_indexed++;
}

static void index_remove(hearth_prefix_cache *pc, int32_t page) {
    if (!pc->indexed[page]) return;
    int32_t *link = &pc->bucket[pc->key[page] % (uint64_t)pc->n_buckets];
    while (*link != page) {
        assert(*link >= 0); /* an indexed page is in its key's bucket */
        link = &pc->chain[*link];
    }
    *link = pc->chain[page];
    pc->indexed[page] = false;
    pc->st.pages_indexed--;
}

/* ------------------------------------------------------------ KV hooks */

/* A page's last reference went away: keep it if it is published. */
static bool on_release(void *user, int32_t page) {
    hearth_prefix_cache *pc = user;
    if (!pc->indexed[page]) return false;
    lru_push(pc, page);
    return true;
}

/* The KV pool is out of free pages: evict the least recently used. */
static bool on_reclaim(void *user) {
    hearth_prefix_cache *pc = user;
    int32_t p = pc->lru_head;
    if (p < 0) return false;
    lru_remove(pc, p);
    index_remove(pc, p);
    hearth_kv_page_set_immutable(pc->kv, p, false);
    hearth_kv_page_release(pc->kv, p);
    pc->st.evicted++;
    return true;
}

/* ------------------------------------------------------------ API */

hearth_prefix_cache *hearth_prefix_cache_create(hearth_kv_cache *kv, const char *fingerprint,
                                                hearth_cache_store *store, hearth_error *err) {
    hearth_prefix_cache *pc = calloc(1, sizeof *pc);
    if (!pc) goto oom;
    const hearth_kv_config *cfg = hearth_kv_config_get(kv);
    pc->kv = kv;
    pc->store = store;
    snprintf(pc->fingerprint, sizeof pc->fingerprint, "%s", fingerprint);
    pc->seed = hearth_hash64(fingerprint, strlen(fingerprint), 0x70726566);
    pc->n_pages = cfg->n_pages;
    pc->n_buckets = cfg->n_pages * 2 + 1;
    pc->bucket = malloc((size_t)pc->n_buckets * sizeof *pc->bucket);
    pc->chain = malloc((size_t)pc->n_pages * sizeof *pc->chain);
    pc->key = calloc((size_t)pc->n_pages, sizeof *pc->key);
    pc->indexed = calloc((size_t)pc->n_pages, sizeof *pc->indexed);
    pc->lru_prev = malloc((size_t)pc->n_pages * sizeof *pc->lru_prev);
    pc->lru_next = malloc((size_t)pc->n_pages * sizeof *pc->lru_next);
    pc->in_lru = calloc((size_t)pc->n_pages, sizeof *pc->in_lru);
    pc->page_buf_size = (size_t)hearth_kv_page_bytes(cfg);
    pc->page_buf = store ? malloc(pc->page_buf_size) : NULL;
    if (!pc->bucket || !pc->chain || !pc->key || !pc->indexed || !pc->lru_prev || !pc->lru_next ||
        !pc->in_lru || (store && !pc->page_buf))
        goto oom;
    pc->n_layer = cfg->n_layer;
    bool host = store != NULL;
    for (int l = 0; l < cfg->n_layer && host; l++)
        host = hearth_kv_layer_backend(kv, l)->host == NULL; /* the CPU backend: pools are host memory */
    if (host && !(pc->spans = malloc((size_t)cfg->n_layer * 2 * sizeof *pc->spans))) goto oom;
    for (int i = 0; i < pc->n_buckets; i++)
        pc->bucket[i] = -1;
    pc->lru_head = pc->lru_tail = -1;
    hearth_kv_set_release_hook(kv, on_release, pc);
    hearth_kv_set_reclaim_hook(kv, on_reclaim, pc);
    return pc;
oom:
    hearth_prefix_cache_free(pc);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "prefix cache: out of memory");
    return NULL;
}

void hearth_prefix_cache_free(hearth_prefix_cache *pc) {
    if (!pc) return;
    if (pc->kv && pc->bucket) {
        hearth_kv_set_release_hook(pc->kv, NULL, NULL);
        hearth_kv_set_reclaim_hook(pc->kv, NULL, NULL);
        while (pc->lru_head >= 0)
            on_reclaim(pc); /* give cached pages back */
    }
    free(pc->bucket);
    free(pc->chain);
    free(pc->key);
    free(pc->indexed);
    free(pc->lru_prev);
    free(pc->lru_next);
    free(pc->in_lru);
    free(pc->page_buf);
    free(pc->spans);
    free(pc);
}

uint64_t hearth_prefix_hash(const hearth_prefix_cache *pc, uint64_t parent, const int32_t *tokens, int n) {
    uint64_t h = hearth_hash64(tokens, (size_t)n * sizeof *tokens, pc->seed);
    h = hearth_hash_mix(h, parent);
    return h ? h : 1; /* 0 means "no parent" */
}

int hearth_prefix_pages_to_attach(int n_tokens, int page_size) {
    return n_tokens > 0 ? (n_tokens - 1) / page_size : 0;
}

int hearth_prefix_pages_full(int n_done, int page_size) {
    return n_done / page_size;
}

/* Copy a page's bytes (every layer, K then V) between the pools and host. */
static void page_transfer(hearth_prefix_cache *pc, int32_t page, bool to_host) {
    const hearth_kv_config *cfg = hearth_kv_config_get(pc->kv);
    hearth_backend *be = NULL;
    size_t per = hearth_kv_page_bytes_per_layer(pc->kv);
    char *buf = pc->page_buf;
    for (int l = 0; l < cfg->n_layer; l++) {
        hearth_tensor *pools[2] = {hearth_kv_k(pc->kv, l), hearth_kv_v(pc->kv, l)};
        for (int i = 0; i < 2; i++, buf += per) {
            char *dev = (char *)pools[i]->data + (size_t)page * per;
            be = hearth_kv_layer_backend(pc->kv, l);
            if (to_host)
                be->ops->download(be, buf, dev, per);
            else
                be->ops->upload(be, dev, buf, per);
        }
    }
}

/* The K and V rows of a page in every layer's pools, in the store's row
 * order (layer by layer, K then V): the spans a host-memory read fills. */
static void page_spans(hearth_prefix_cache *pc, int32_t page) {
    size_t per = hearth_kv_page_bytes_per_layer(pc->kv);
    for (int l = 0; l < pc->n_layer; l++) {
        pc->spans[2 * l] =
            (hearth_store_span){(char *)hearth_kv_k(pc->kv, l)->data + (size_t)page * per, per};
        pc->spans[2 * l + 1] =
            (hearth_store_span){(char *)hearth_kv_v(pc->kv, l)->data + (size_t)page * per, per};
    }
}

int32_t hearth_prefix_cache_acquire(hearth_prefix_cache *pc, uint64_t key) {
    pc->st.lookups++;
    int32_t p = index_find(pc, key);
    if (p >= 0) {
        lru_remove(pc, p);
        hearth_kv_page_ref(pc->kv, p);
        pc->st.hits_memory++;
        return p;
    }
    if (!pc->store) return -1;
    p = hearth_kv_page_alloc(pc->kv);
    if (p < 0) return -1;
    double t0 = hearth_now_ms();
    bool got;
    if (pc->spans) { /* host memory: the row goes straight into the pools */
        page_spans(pc, p);
        got = hearth_cache_store_get_spans(pc->store, pc->fingerprint, key, pc->spans, 2 * pc->n_layer);
    } else {
        got = hearth_cache_store_get(pc->store, pc->fingerprint, key, pc->page_buf, pc->page_buf_size);
    }
    double t1 = hearth_now_ms();
    pc->st.disk_read_ms += t1 - t0;
    if (!got) {
        hearth_kv_page_unref(pc->kv, p); /* whatever landed in it is never read */
        return -1;
    }
    if (!pc->spans) {
        page_transfer(pc, p, false);
        pc->st.upload_ms += hearth_now_ms() - t1;
    }
    index_insert(pc, key, p);
    hearth_kv_page_set_immutable(pc->kv, p, true);
    pc->st.hits_disk++;
    return p;
}

void hearth_prefix_cache_publish(hearth_prefix_cache *pc, uint64_t key, int32_t page) {
    if (pc->indexed[page] || index_find(pc, key) >= 0) return;
    index_insert(pc, key, page);
    hearth_kv_page_set_immutable(pc->kv, page, true);
    pc->st.inserted++;
    if (pc->store) {
        page_transfer(pc, page, true);
        hearth_cache_store_put(pc->store, pc->fingerprint, key, pc->page_buf, pc->page_buf_size);
    }
}

void hearth_prefix_cache_stats_get(const hearth_prefix_cache *pc, hearth_prefix_stats *out) {
    *out = pc->st;
}
const char *hearth_prefix_cache_fingerprint(const hearth_prefix_cache *pc) {
    return pc->fingerprint;
}
