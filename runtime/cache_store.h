/*
 * cache_store.h - the persistent half of the prefix cache: KV pages in SQLite.
 *
 * Each row is one full KV page (every layer's K and V for page_size tokens),
 * keyed by (model fingerprint, page hash), with a checksum of the bytes and a
 * last-use time. The database runs in WAL mode; writes happen on a background
 * thread fed by a bounded queue so decoding never waits for the disk (when
 * the queue is full, puts are dropped: the cache is an optimisation). Reads
 * are synchronous and cheap. The store is capped in bytes and evicts the
 * least recently used rows.
 *
 * Safety: a row whose checksum, size or fingerprint does not match is never
 * returned (it is deleted and counted); a database that cannot be opened or
 * fails its integrity check is moved aside and recreated. The cache can make
 * Hearth faster, never wrong.
 *
 * Ownership: the store owns its SQLite connections and writer thread.
 * Thread-safety: put/get/stats may be called from any thread.
 */
#ifndef HEARTH_CACHE_STORE_H
#define HEARTH_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct hearth_cache_store hearth_cache_store;

typedef struct hearth_cache_store_stats {
    uint64_t rows, bytes;        /* in the database now */
    uint64_t max_bytes;
    uint64_t hits, misses;       /* get() results since open */
    uint64_t puts, dropped_puts; /* queued / dropped because the queue was full */
    uint64_t bad_rows;           /* rows rejected (checksum, size, fingerprint) */
    uint64_t evicted;            /* rows evicted to stay under max_bytes */
} hearth_cache_store_stats;

/* Default database path: $XDG_CACHE_HOME/hearth/prefix-cache.sqlite (or
 * ~/.cache/hearth/...). Writes into buf; returns buf. */
char *hearth_cache_store_default_path(char *buf, size_t cap);

/* Open or create; parent directories are created. max_bytes 0 = 2 GiB. */
hearth_cache_store *hearth_cache_store_open(const char *path, uint64_t max_bytes, hearth_error *err);
/* Flushes queued writes, then closes. */
void hearth_cache_store_close(hearth_cache_store *s);

/* Queue a page for writing (the bytes are copied). Never blocks on I/O. */
void hearth_cache_store_put(hearth_cache_store *s, const char *fingerprint, uint64_t hash, const void *data,
                            size_t n);
/* Read a page: true when a valid row of exactly n bytes exists (buf filled,
 * last-use time refreshed). */
bool hearth_cache_store_get(hearth_cache_store *s, const char *fingerprint, uint64_t hash, void *buf, size_t n);
/* Wait until every queued put is in the database (tests, shutdown). */
void hearth_cache_store_flush(hearth_cache_store *s);
/* Delete all rows (fingerprint NULL) or one model's rows. */
hearth_status hearth_cache_store_clear(hearth_cache_store *s, const char *fingerprint, hearth_error *err);
void hearth_cache_store_stats_get(hearth_cache_store *s, hearth_cache_store_stats *out);

#endif
