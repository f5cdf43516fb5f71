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
 *
 * Layout (schema version 1): table pages(fingerprint TEXT, hash INTEGER
 * (the uint64 key stored as its int64 bit pattern), data BLOB, checksum
 * INTEGER, nbytes INTEGER, last_used INTEGER (microseconds since the Unix
 * epoch), PRIMARY KEY(fingerprint, hash)), index pages_lru(last_used), and
 * meta(key, value) holding schema_version. A database with a newer schema
 * version is refused (open fails), never rewritten.
 */
#ifndef HEARTH_CACHE_STORE_H
#define HEARTH_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct hearth_cache_store hearth_cache_store;

typedef struct hearth_cache_store_stats {
    uint64_t rows, bytes;        /* in the database now (committed rows, all processes) */
    uint64_t max_bytes;
    uint64_t hits, misses;       /* get() results since open */
    uint64_t puts, dropped_puts; /* queued / dropped because the queue was full */
    uint64_t bad_rows;           /* rows rejected (checksum, size, fingerprint) */
    uint64_t evicted;            /* rows evicted to stay under max_bytes */
    uint64_t write_errors;       /* queued writes lost to a failed transaction (disk full, lock held too long) */
    uint64_t recovered;          /* 1 when open found an unusable file and moved it aside */
    uint64_t checked;            /* 1 when open ran PRAGMA integrity_check (the file was not known clean) */
} hearth_cache_store_stats;

/* Default database path: $XDG_CACHE_HOME/hearth/prefix-cache.sqlite (or
 * ~/.cache/hearth/...). Writes into buf; returns buf. */
char *hearth_cache_store_default_path(char *buf, size_t cap);

/* Open or create; parent directories are created (mode 0700). max_bytes 0 =
 * 2 GiB; the cap is enforced after writes (opening never deletes rows).
 * Runs PRAGMA integrity_check, which reads the whole file (~0.15 s per
 * 400 MiB when cached), unless the file is as a clean close by Hearth left
 * it: no WAL beside it, its header's size equal to the file's, and the last
 * store to close it met no damage (stats.checked says which); damage inside
 * a file that skipped the check still never returns wrong bytes (row
 * checksums) and makes the next open check. A file that is not a database or fails the check is
 * renamed to PATH.corrupt-<unix time> (with its -wal/-shm) and a fresh one
 * created (see _note and stats.recovered). An SQLite database that is not a
 * Hearth cache, or one with a newer schema version, is refused and left
 * untouched (NULL, err set), as are I/O and locking failures. */
hearth_cache_store *hearth_cache_store_open(const char *path, uint64_t max_bytes, hearth_error *err);
/* Flushes queued writes, then closes. */
void hearth_cache_store_close(hearth_cache_store *s);

/* Queue a page for writing (the bytes are copied). Never blocks on I/O.
 * The queue holds at most 256 pages or 64 MiB (counting pages still being
 * written); beyond that the put is dropped and counted in dropped_puts. */
void hearth_cache_store_put(hearth_cache_store *s, const char *fingerprint, uint64_t hash, const void *data,
                            size_t n);
/* Read a page: true when a valid row of exactly n bytes exists (buf filled,
 * last-use time refreshed in the background). A row under this key with
 * another size or a bad checksum is never copied out: it is counted in
 * bad_rows and deleted (the fingerprint fixes the page size, so such a row
 * is damaged). On false buf may hold partial or damaged bytes: use it only
 * after true. Puts still queued are not seen. */
bool hearth_cache_store_get(hearth_cache_store *s, const char *fingerprint, uint64_t hash, void *buf, size_t n);
/* One piece of the destination of a get: the row's bytes fill the spans in
 * order (a KV page read straight into each layer's K and V pool). */
typedef struct hearth_store_span {
    void *data;
    size_t n;
} hearth_store_span;
/* hearth_cache_store_get into n_spans pieces whose sizes add up to the row's;
 * the same checks, the same contract (on false the spans may hold partial
 * bytes). */
bool hearth_cache_store_get_spans(hearth_cache_store *s, const char *fingerprint, uint64_t hash,
                                  const hearth_store_span *spans, int n_spans);
/* Wait until everything queued before the call (puts, and the deletes and
 * last-use updates from get) is committed or has failed (tests, shutdown). */
void hearth_cache_store_flush(hearth_cache_store *s);
/* Delete all rows (fingerprint NULL) or one model's rows, after the puts
 * queued before it; waits until done. Freed space goes back to the file
 * system. */
hearth_status hearth_cache_store_clear(hearth_cache_store *s, const char *fingerprint, hearth_error *err);
void hearth_cache_store_stats_get(hearth_cache_store *s, hearth_cache_store_stats *out);

/* The database path this store was opened with (owned by the store). */
const char *hearth_cache_store_path(const hearth_cache_store *s);
/* What open had to repair, for the user ("...: not a database; moved to
 * PATH.corrupt-1712345678 and started empty"), or "" when nothing. */
const char *hearth_cache_store_note(const hearth_cache_store *s);
/* Call fn once per model fingerprint in the database (sorted), with its row
 * count, total page bytes and newest last_used (microseconds since epoch).
 * fn runs with the reader locked: it must not call back into the store. */
hearth_status hearth_cache_store_each_model(hearth_cache_store *s,
                                            void (*fn)(void *ctx, const char *fingerprint, uint64_t rows,
                                                       uint64_t bytes, int64_t last_used_us),
                                            void *ctx, hearth_error *err);

#endif
