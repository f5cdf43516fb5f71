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
