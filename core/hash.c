/*
 * hash.c - hearth_hash64: 8 bytes at a time through a 64-bit multiply-xorshift
 * mix, tail bytes folded in, length mixed last; hearth_hash64_wide: four
 * lanes of add-multiply-rotate over 32-byte blocks, the lanes and the tail
 * folded through the same mix. Not cryptographic.
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

#define WIDE_P1 0x9e3779b185ebca87ull
#define WIDE_P2 0xc2b2ae3d27d4eb4full

static inline uint64_t wide_round(uint64_t acc, uint64_t v) {
    acc += v * WIDE_P2;
    acc = (acc << 31) | (acc >> 33);
    return acc * WIDE_P1;
}

void hearth_hash64_wide_begin(hearth_hash_wide *h, uint64_t seed) {
    *h =
        (hearth_hash_wide){{seed + WIDE_P1 + WIDE_P2, seed + WIDE_P2, seed, seed - WIDE_P1}, seed, 0, {0}, 0};
}

static void wide_block(hearth_hash_wide *h, const unsigned char *p) {
    uint64_t v[4];
    memcpy(v, p, 32);
    for (int k = 0; k < 4; k++)
        h->lane[k] = wide_round(h->lane[k], v[k]);
}

void hearth_hash64_wide_update(hearth_hash_wide *h, const void *data, size_t n) {
    const unsigned char *p = data;
    h->n += n;
    if (h->n_carry) { /* finish the block begun by an earlier piece */
        size_t take = 32 - h->n_carry < n ? 32 - h->n_carry : n;
        memcpy(h->carry + h->n_carry, p, take);
        h->n_carry += (unsigned)take;
        p += take;
        n -= take;
        if (h->n_carry < 32) return;
        wide_block(h, h->carry);
        h->n_carry = 0;
    }
    for (; n >= 32; p += 32, n -= 32)
        wide_block(h, p);
    memcpy(h->carry, p, n);
    h->n_carry = (unsigned)n;
}

uint64_t hearth_hash64_wide_end(const hearth_hash_wide *h) {
    uint64_t r = hearth_hash64(h->carry, h->n_carry, h->seed); /* the last 0..31 bytes */
    for (int k = 0; k < 4; k++)
        r = hearth_hash_mix(r, h->lane[k]);
    return hearth_hash_mix(r, h->n);
}

uint64_t hearth_hash64_wide(const void *data, size_t n, uint64_t seed) {
    hearth_hash_wide h;
    hearth_hash64_wide_begin(&h, seed);
    hearth_hash64_wide_update(&h, data, n);
    return hearth_hash64_wide_end(&h);
}
