/*
 * hash.h - small non-cryptographic hashes used for identities and keys
 * (model fingerprints, prefix-cache page keys, checksums of cached rows).
 * Stable across runs and machines (little-endian byte order is assumed,
 * as everywhere in GGUF).
 */
#ifndef HEARTH_HASH_H
#define HEARTH_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of bytes, seeded; stable. */
uint64_t hearth_hash64(const void *data, size_t n, uint64_t seed);
/* The same purpose as hearth_hash64 for large buffers (cached KV pages):
 * four independent multiply-rotate lanes over 32-byte blocks, so it runs at
 * several bytes a cycle instead of one chain of full mixes. A different
 * function: its values do not equal hearth_hash64's. */
uint64_t hearth_hash64_wide(const void *data, size_t n, uint64_t seed);
/* hearth_hash64_wide over bytes that arrive in pieces: begin, update with
 * each piece in order, end; the value equals hearth_hash64_wide of the
 * concatenation. */
typedef struct hearth_hash_wide {
    uint64_t lane[4], seed, n;
    unsigned char carry[32]; /* bytes of an unfinished 32-byte block */
    unsigned n_carry;
} hearth_hash_wide;
void hearth_hash64_wide_begin(hearth_hash_wide *h, uint64_t seed);
void hearth_hash64_wide_update(hearth_hash_wide *h, const void *data, size_t n);
uint64_t hearth_hash64_wide_end(const hearth_hash_wide *h);
/* Mix one 64-bit value into a running hash. */
static inline uint64_t hearth_hash_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#endif
