/*
 * hash.c - hearth_hash64: 8 bytes at a time through a 64-bit multiply-xorshift
 * mix, tail bytes folded in, length mixed last. Not cryptographic.
 */
#include "hash.h"

#include <string.h>

uint64_t hearth_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x6a09e667f3bcc909ull * (n + 1));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = hearth_hash_mix(h, v);
    }
    uint64_t tail = 0;
    for (size_t k = 0; i < n; i++, k++) tail |= (uint64_t)p[i] << (8 * k);
    h = hearth_hash_mix(h, tail);
    return hearth_hash_mix(h, (uint64_t)n);
}
