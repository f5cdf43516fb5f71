/*
 * kv_cache.h - paged KV cache (PagedAttention).
 *
 * Per layer, a K pool and a V pool of n_pages fixed-size pages (page_size
 * token slots each; a slot holds n_kv_heads*head_dim values of the KV type).
 * Each sequence has a page table; position p of a sequence lives in slot
 * table[p / page_size] * page_size + p % page_size, the same slot in every
 * layer. Pages are reference-counted so sequences can share a prefix; writing
 * into a shared page first copies it (copy-on-write). Truncation drops a
 * sequence's last N positions and frees pages it no longer needs.
 *
 * Ownership: the cache owns its pools (backend memory) and page tables. Each
 * layer's pools live on that layer's backend (partial offload), so a page is
 * spread over the device and the host when the model is.
 * Not thread-safe: the engine's worker thread is its only user.
 * Invariants (hearth_kv_check verifies them all): every page is exactly one
 * of free (refcount 0, on the free list, once), retained (refcount 0, kept off
 * the free list by the release hook, see hearth_kv_set_release_hook) or in
 * use (refcount > 0); between operations a page's refcount equals the number
 * of page-table entries naming it; a live sequence's page table holds at
 * least ceil(len / page_size) pages, all in range (more only while reserved
 * ahead of hearth_kv_seq_set_len); a freed sequence holds none.
 */
#ifndef HEARTH_KV_CACHE_H
#define HEARTH_KV_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/error.h"

typedef struct hearth_kv_config {
    int n_layer;
    int n_kv_heads;
    int head_dim;
    hearth_dtype type; /* HEARTH_F16 (default), HEARTH_F32 or HEARTH_Q8_0 */
    int page_size;     /* tokens per page */
    int n_pages;       /* pages per layer pool */
    /* [n_layer] backend of each layer's pools (partial offload: the model's
     * layer_be); NULL: every layer on the backend given to create. Copied. */
    hearth_backend *const *layer_be;
} hearth_kv_config;

typedef struct hearth_kv_stats {
    int n_pages, pages_used, pages_cached; /* cached: held only by the prefix cache */
    uint64_t bytes_total, bytes_used;
    uint64_t tokens_stored; /* sum of sequence lengths (shared pages counted once per sequence) */
    uint64_t slots_wasted;  /* allocated slots not holding a token (partly filled last pages) */
    int n_seqs;
} hearth_kv_stats;

typedef struct hearth_kv_cache hearth_kv_cache;

/* Bytes one page takes in all layers, K and V together. */
uint64_t hearth_kv_page_bytes(const hearth_kv_config *cfg);

hearth_kv_cache *hearth_kv_create(hearth_backend *b, const hearth_kv_config *cfg, hearth_error *err);
void hearth_kv_free(hearth_kv_cache *kv);
const hearth_kv_config *hearth_kv_config_get(const hearth_kv_cache *kv);

/* Pools of a layer, [n_pages * page_size rows, n_kv_heads * head_dim]. */
hearth_tensor *hearth_kv_k(hearth_kv_cache *kv, int layer);
hearth_tensor *hearth_kv_v(hearth_kv_cache *kv, int layer);

/* Sequences. Ids are small non-negative integers, reused after free. */
int hearth_kv_seq_create(hearth_kv_cache *kv, hearth_error *err);
void hearth_kv_seq_free(hearth_kv_cache *kv, int seq);
int hearth_kv_seq_len(const hearth_kv_cache *kv, int seq);
/* Make positions [0, new_len) writable: allocates pages and copies a shared
 * last page before it is written. On HEARTH_ERR_CONTEXT nothing changed. */
hearth_status hearth_kv_seq_reserve(hearth_kv_cache *kv, int seq, int new_len, hearth_error *err);
/* Record that positions [0, len) now hold data (len <= reserved capacity). */
void hearth_kv_seq_set_len(hearth_kv_cache *kv, int seq, int len);
/* Drop the last n positions (n > len drops all). */
void hearth_kv_seq_truncate(hearth_kv_cache *kv, int seq, int n);
/* dst (a fresh, empty sequence) shares all of src's pages. */
hearth_status hearth_kv_seq_fork(hearth_kv_cache *kv, int src, int dst, hearth_error *err);
/* Page table of a sequence (covers its reserved capacity). */
const int32_t *hearth_kv_seq_pages(const hearth_kv_cache *kv, int seq, int *n_pages);
/* Append an existing page (refcount+1) to a sequence whose length is a
 * multiple of page_size; the sequence grows by page_size. Used by the prefix
 * cache to attach cached pages. */
hearth_status hearth_kv_seq_append_page(hearth_kv_cache *kv, int seq, int32_t page, hearth_error *err);
/* Slot of position pos (must be reserved). */
int32_t hearth_kv_slot(const hearth_kv_cache *kv, int seq, int pos);

/* Page allocation. alloc returns -1 when no page is free. */
int32_t hearth_kv_page_alloc(hearth_kv_cache *kv);
void hearth_kv_page_ref(hearth_kv_cache *kv, int32_t page);
void hearth_kv_page_unref(hearth_kv_cache *kv, int32_t page);
int hearth_kv_page_refcount(const hearth_kv_cache *kv, int32_t page);
int hearth_kv_pages_free(const hearth_kv_cache *kv);

/* Optional hook: called when a page's refcount drops to 0, before it goes on
 * the free list. Returning true keeps it out of the free list (the prefix
 * cache retains it; it later calls hearth_kv_page_release to free it). */
typedef bool (*hearth_kv_release_hook)(void *user, int32_t page);
void hearth_kv_set_release_hook(hearth_kv_cache *kv, hearth_kv_release_hook hook, void *user);
/* Put a retained, unreferenced page back on the free list. */
void hearth_kv_page_release(hearth_kv_cache *kv, int32_t page);
/* Called when the free list is empty: may release retained pages (the prefix
 * cache evicts LRU). Returns true if it freed at least one. */
typedef bool (*hearth_kv_reclaim_hook)(void *user);
void hearth_kv_set_reclaim_hook(hearth_kv_cache *kv, hearth_kv_reclaim_hook hook, void *user);

/* Mark a page immutable (its contents are published, e.g. in the prefix
 * cache): a sequence that would write into it copies it first. */
void hearth_kv_page_set_immutable(hearth_kv_cache *kv, int32_t page, bool immutable);

/* The backend owning layer l's pools. */
hearth_backend *hearth_kv_layer_backend(const hearth_kv_cache *kv, int layer);

/* Bytes of one page in one layer's pool (K or V). */
size_t hearth_kv_page_bytes_per_layer(const hearth_kv_cache *kv);

void hearth_kv_stats_get(const hearth_kv_cache *kv, hearth_kv_stats *out);

/* Walk every invariant above and return HEARTH_ERR_INVALID with a message
 * naming the first one broken (the page or sequence, and the numbers), or
 * HEARTH_OK. Valid whenever no caller holds a page reference outside a page
 * table (e.g. between engine steps). O(n_pages + table entries); allocates
 * scratch (HEARTH_ERR_NOMEM when it cannot). Always compiled; the engine
 * asserts it after every step in debug builds. */
hearth_status hearth_kv_check(const hearth_kv_cache *kv, hearth_error *err);

/* Test-only: the per-page refcounts and the free list (and its length), so
 * tests can break the bookkeeping on purpose and see hearth_kv_check notice.
 * Nothing else may call these. */
int *hearth_kv_test_refcounts(hearth_kv_cache *kv);
int32_t *hearth_kv_test_free_list(hearth_kv_cache *kv, int **n_free);

#endif
