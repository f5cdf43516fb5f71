/*
 * prefix_cache.h - reuse of computed KV pages across requests (and, with a
 * cache_store, across restarts).
 *
 * Every *full* page of a sequence is keyed by a hash chained from its
 * parent's key and its own token ids, seeded with the cache fingerprint
 * (model weights, KV type, page size, RoPE settings), so equal keys mean equal
 * contents. A new request walks its prompt page by page and takes every page
 * already present: in memory first, then in the SQLite store. Published pages
 * are immutable (a writer copies them first). Pages no sequence uses stay
 * cached and are evicted least-recently-used when the KV pool runs short.
 *
 * Ownership: borrows the KV cache (installs its release/reclaim hooks) and
 * the store (may be NULL). Not thread-safe: the engine's worker uses it.
 */
#ifndef HEARTH_PREFIX_CACHE_H
#define HEARTH_PREFIX_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/kv/kv_cache.h"
#include "runtime/store/cache_store.h"

typedef struct hearth_prefix_cache hearth_prefix_cache;

typedef struct hearth_prefix_stats {
    uint64_t lookups;     /* pages looked up */
    uint64_t hits_memory; /* pages found in memory */
    uint64_t hits_disk;   /* pages loaded from the store */
    uint64_t inserted;    /* pages published */
    uint64_t evicted;     /* cached pages evicted for space */
    int pages_cached;     /* unreferenced pages held now */
    int pages_indexed;    /* pages with a key now */
    double disk_read_ms;  /* time in store reads (SQLite, checksum) for acquire */
    double upload_ms;     /* time copying pages read from the store into the KV pools */
} hearth_prefix_stats;

hearth_prefix_cache *hearth_prefix_cache_create(hearth_kv_cache *kv, const char *fingerprint,
                                                hearth_cache_store *store, hearth_error *err);
void hearth_prefix_cache_free(hearth_prefix_cache *pc);

/* Key of a page with these page_size tokens, following the page keyed parent
 * (0 for the first page). */
uint64_t hearth_prefix_hash(const hearth_prefix_cache *pc, uint64_t parent, const int32_t *tokens, int n);

/* A page holding this key, with a reference taken for the caller (attach it
 * with hearth_kv_seq_append_page and drop this reference), or -1. Looks in
 * memory, then in the store. */
int32_t hearth_prefix_cache_acquire(hearth_prefix_cache *pc, uint64_t key);

/* Publish a full page under key (makes it immutable; writes it to the store
 * in the background). A key already present keeps its page. */
void hearth_prefix_cache_publish(hearth_prefix_cache *pc, uint64_t key, int32_t page);

/* Which pages of a sequence the cache may hold: only full pages, and a new
 * request never takes the page holding its last token (that token's logits
 * must be computed). Pages of an n_tokens prompt that a lookup may attach: */
int hearth_prefix_pages_to_attach(int n_tokens, int page_size);
/* Pages of a sequence with n_done tokens in the KV cache that are full and
 * may be published: */
int hearth_prefix_pages_full(int n_done, int page_size);

void hearth_prefix_cache_stats_get(const hearth_prefix_cache *pc, hearth_prefix_stats *out);
const char *hearth_prefix_cache_fingerprint(const hearth_prefix_cache *pc);

#endif
