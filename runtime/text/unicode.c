/*
 * unicode.c - code point classes, UTF-8 and the GPT-2 byte alphabet
 * (see unicode.h).
 *
 * Ownership: tokenizer engineer. Only constant tables; nothing allocated.
 * Invariants: lookups are O(log n) binary searches over the generated tables
 * (ASCII takes a direct table), so the pre-tokenizers can classify every code
 * point of a long prompt cheaply.
 */
#include "unicode.h"

#include "unicode_data.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- classes */

static bool is_white_space(uint32_t cpt) {
    for (size_t i = 0; i < N_ELEMS(hearth_ucd_whitespace); i++)
        if (hearth_ucd_whitespace[i] == cpt) return true;
    return false;
}

static unsigned class_of(uint32_t cpt) {
    /* last run with start <= cpt */
    size_t lo = 0, hi = N_ELEMS(hearth_ucd_runs);
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((hearth_ucd_runs[mid] >> 8) <= cpt)
            lo = mid;
        else
            hi = mid;
    }
    return hearth_ucd_runs[lo] & 0xFFu;
}

unsigned hearth_unicode_flags(uint32_t cpt) {
    if (cpt > 0x10FFFF) return 0;
    unsigned f = class_of(cpt);
    /* White_Space lives in 0x09..0x3000; cheap pre-filter before the list */
    if ((cpt >= 0x09 && cpt <= 0x0D) || cpt == 0x20 || (cpt >= 0x85 && cpt <= 0x3000 && is_white_space(cpt)))
        f |= HEARTH_UCD_WHITESPACE;
    return f;
}

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cpt) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cpt < r[mid][0])
            hi = mid;
        else if (cpt > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool hearth_unicode_in_set(hearth_uset set, uint32_t cpt) {
    switch (set) {
    case HEARTH_USET_DEEPSEEK_LETTERS:
        return in_ranges(hearth_uset_deepseek_letters, N_ELEMS(hearth_uset_deepseek_letters), cpt);
    case HEARTH_USET_DEEPSEEK_PUNCT:
        return in_ranges(hearth_uset_deepseek_punct, N_ELEMS(hearth_uset_deepseek_punct), cpt);
    case HEARTH_USET_CJK: return in_ranges(hearth_uset_cjk, N_ELEMS(hearth_uset_cjk), cpt);
    case HEARTH_USET_PORO_EXCLUDED:
        return in_ranges(hearth_uset_poro_excluded, N_ELEMS(hearth_uset_poro_excluded), cpt);
    }
    return false;
}

/* The mapped value of cpt in a sorted {first, last, mapped} run table, or
 * cpt itself when no run holds it. */
static uint32_t map_runs(const uint32_t (*runs)[3], size_t n, uint32_t cpt) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (runs[mid][1] < cpt) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && runs[lo][0] <= cpt && cpt <= runs[lo][1] ? runs[lo][2] : cpt;
}

uint32_t hearth_unicode_nfd_first(uint32_t cpt) {
    return map_runs(hearth_ucd_nfd_first, N_ELEMS(hearth_ucd_nfd_first), cpt);
}

uint32_t hearth_unicode_lower_first(uint32_t cpt) {
    return map_runs(hearth_ucd_lower_first, N_ELEMS(hearth_ucd_lower_first), cpt);
}

/* ---------------------------------------------------------------- UTF-8 */

size_t hearth_utf8_len(unsigned char lead) {
    static const unsigned char len_by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len_by_high_nibble[lead >> 4];
}

uint32_t hearth_utf8_decode(const char *str, size_t n, size_t *adv) {
    const unsigned char *s = (const unsigned char *)str;
    *adv = 1;
    if (s[0] < 0x80) return s[0];
    size_t len;
    uint32_t cpt;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cpt = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cpt = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cpt = s[0] & 0x07u;
    } else {
        return HEARTH_UNICODE_REPLACEMENT; /* stray continuation byte or 0xF8+ */
    }
    if (len > n) return HEARTH_UNICODE_REPLACEMENT;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return HEARTH_UNICODE_REPLACEMENT;
        cpt = (cpt << 6) | (s[i] & 0x3Fu);
    }
    if (cpt > 0x10FFFF) return HEARTH_UNICODE_REPLACEMENT;
    *adv = len;
    return cpt;
}

size_t hearth_utf8_encode(uint32_t cpt, char out[4]) {
    if (cpt > 0x10FFFF) cpt = HEARTH_UNICODE_REPLACEMENT;
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        return 1;
    }
    if (cpt < 0x800) {
        out[0] = (char)(0xC0 | (cpt >> 6));
        out[1] = (char)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt < 0x10000) {
        out[0] = (char)(0xE0 | (cpt >> 12));
        out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cpt & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cpt >> 18));
    out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cpt & 0x3F));
    return 4;
}

size_t hearth_utf8_valid_prefix(const unsigned char *s, size_t n, size_t *need) {
    *need = 1;
    if (n == 0) return 0;
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    /* allowed range of the second byte per lead byte (RFC 3629 table) */
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        *need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        *need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        *need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *need = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < *need && i < n; i++) {
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (c < l || c > h) break;
    }
    return i;
}

/* ---------------------------------------------------------------- GPT-2 byte alphabet */

/* Bytes that print (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stand for themselves;
 * the other 68 are given the code points 256, 257, ... in byte order. */
static bool byte_prints(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t hearth_byte_to_cpt(uint8_t byte) {
    if (byte_prints(byte)) return byte;
    unsigned n = 0; /* how many non-printing bytes come before this one */
    for (unsigned b = 0; b < byte; b++)
        if (!byte_prints(b)) n++;
    return 256 + n;
}

int hearth_cpt_to_byte(uint32_t cpt) {
    if (cpt < 256) return byte_prints(cpt) ? (int)cpt : -1;
    if (cpt >= 256 + 68) return -1;
    unsigned k = cpt - 256;
    for (unsigned b = 0; b < 256; b++)
        if (!byte_prints(b) && k-- == 0) return (int)b;
    return -1;
}
