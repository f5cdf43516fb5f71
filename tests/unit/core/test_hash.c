/*
 * test_hash.c - hearth_hash64_wide: the streaming form (begin/update/end)
 * gives the one-shot value for every way of cutting the bytes into pieces,
 * any change of a byte, the length or the seed changes it, and it is a
 * different function from hearth_hash64 (so old and new row checksums in the
 * prefix-cache store cannot be mistaken for each other).
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "test.h"

int main(void) {
    enum { N = 4099 };
    unsigned char *buf = malloc(N);
    REQUIRE(buf);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    const size_t sizes[] = {0, 1, 7, 31, 32, 33, 63, 64, 65, 1000, N};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint64_t want = hearth_hash64_wide(buf, n, 42);
        /* pieces of every size from 1 to 70 bytes, and uneven random cuts */
        for (size_t piece = 1; piece <= 70; piece++) {
            hearth_hash_wide h;
            hearth_hash64_wide_begin(&h, 42);
            for (size_t off = 0; off < n; off += piece)
                hearth_hash64_wide_update(&h, buf + off, off + piece <= n ? piece : n - off);
            CHECKF(hearth_hash64_wide_end(&h) == want, "n %zu in pieces of %zu", n, piece);
        }
        hearth_hash_wide h;
        hearth_hash64_wide_begin(&h, 42);
        size_t off = 0;
        for (uint64_t r = 12345; off < n;) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            size_t k = (size_t)(r >> 58) + 1;
            if (k > n - off) k = n - off;
            hearth_hash64_wide_update(&h, buf + off, k);
            hearth_hash64_wide_update(&h, buf, 0); /* empty pieces change nothing */
            off += k;
        }
        CHECKF(hearth_hash64_wide_end(&h) == want, "n %zu in random pieces", n);
        if (n) {
            CHECK(hearth_hash64_wide(buf, n, 43) != want);
            CHECK(hearth_hash64_wide(buf, n - 1, 42) != want);
            CHECK(hearth_hash64(buf, n, 42) != want);
            for (size_t at = 0; at < n; at += n / 5 + 1) {
                buf[at] ^= 0x10;
                CHECKF(hearth_hash64_wide(buf, n, 42) != want, "n %zu: byte %zu flipped", n, at);
                buf[at] ^= 0x10;
            }
        }
    }
    /* zeros of different lengths differ (the length is mixed in) */
    memset(buf, 0, N);
    CHECK(hearth_hash64_wide(buf, 64, 1) != hearth_hash64_wide(buf, 96, 1));
    free(buf);
    return test_summary("hash");
}
