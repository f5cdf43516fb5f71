/*
 * tokenizer_impl.h - the inside of a hearth_tokenizer, shared by the parts of
 * the tokenizer: tokenizer.c (queries, special-token partition, encode),
 * tokenizer_load.c (building it from GGUF metadata), tokenizer_spm.c and
 * tokenizer_bpe.c (the two merge encoders), tokenizer_merge.c (the symbol
 * list and bigram queue both encoders merge over) and detokenize.c (pieces,
 * decode, the streaming detokenizer).
 *
 * Internal: only the .c files of runtime/text (runtime/text/<part>.c) include
 * this header; everyone else uses tokenizer.h.
 *
 * Invariants after hearth_tokenizer_from_gguf succeeds:
 *   - every id in [0, n_vocab) has a NUL-terminated, non-empty text (llama.cpp
 *     renames empty ones "[EMPTY_<id>]"), a score, llama.cpp-style attribute
 *     bits and a precomputed piece (the special=true detokenized bytes);
 *   - text -> id and "left right" merge -> rank are hash look-ups (O(length)),
 *     never scans of the vocabulary; when a text occurs twice the last id
 *     wins and when a merge occurs twice the first rank wins, as in llama.cpp;
 *   - bos/eos/eot/eom/unk are -1 or valid ids;
 *   - the special-token list (control, user-defined and unknown tokens) is
 *     ordered longest text first, the order llama.cpp partitions text in;
 *   - nothing in the struct changes after loading, so encode and decode may
 *     share one tokenizer across threads.
 */
#ifndef HEARTH_TOKENIZER_IMPL_H
#define HEARTH_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pretokenize.h"
#include "tokenizer.h"

#include "core/strbuf.h"

/* llama.cpp's llama_token_attr bits, plus EOG (ours). */
enum {
    ATTR_UNKNOWN = 1 << 0,
    ATTR_UNUSED = 1 << 1,
    ATTR_NORMAL = 1 << 2,
    ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4,
    ATTR_BYTE = 1 << 5,
    ATTR_LSTRIP = 1 << 7,
    ATTR_RSTRIP = 1 << 8,
    ATTR_EOG = 1 << 12,
};

/* One BPE merge "first second" as stored in merge_text. */
typedef struct merge_entry {
    uint32_t off;   /* into merge_text: first and second, concatenated */
    uint32_t len;   /* bytes of first + second */
    uint32_t split; /* bytes of first */
    int32_t rank;
} merge_entry;

struct hearth_tokenizer {
    hearth_vocab_kind kind;
    int32_t n_vocab;

    char *text;          /* all token texts, each NUL-terminated */
    uint32_t *text_off;  /* n_vocab + 1 offsets; len(i) = off[i+1] - off[i] - 1 */
    float *score;        /* n_vocab */
    uint16_t *attr;      /* n_vocab, ATTR_* */
    uint8_t *type;       /* n_vocab, the file's token_type (HEARTH_TOKEN_*) */
    char *piece;         /* detokenized bytes of each token (special = true) */
    uint32_t *piece_off; /* n_vocab + 1 */

    int32_t *tok_slot; /* open addressing: token id or -1 */
    size_t tok_mask;

    char *merge_text; /* BPE merges */
    merge_entry *merge;
    size_t n_merge;
    int32_t *merge_slot; /* index into merge or -1 */
    size_t merge_mask;

    int32_t *special; /* control / user-defined / unknown ids, longest text first */
    size_t n_special;

    int32_t byte_token[256]; /* SPM byte fallback: <0xXX> (or the 1-byte token), -1 if none */
    char byte_utf8[256][2];  /* BPE: byte -> GPT-2 alphabet code point, UTF-8 */
    uint8_t byte_utf8_len[256];

    int32_t bos, eos, eot, eom, unk, sep;
    size_t max_token_len; /* WPM: the longest token text, bytes */
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    hearth_pretok pretok;
    char pre_name[64];
    strbuf note; /* what loading assumed, "; "-separated; empty when nothing */
};

/* 64-bit FNV-1a, then a final mix so the low bits (the slot) are good. The
 * text and merge tables are built and probed with it. */
static inline uint64_t tokenizer_hash_bytes(const void *p, size_t n, uint64_t seed) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The stored text of a valid id and its length (without the NUL). */
static inline const char *tokenizer_text_of(const hearth_tokenizer *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text + t->text_off[id];
}

/* ---------------------------------------------------------------- encoding scratch */

/* A run of bytes of the work buffer that merging has not split further. */
typedef struct tokenizer_symbol {
    int32_t prev, next;
    uint32_t off, n; /* bytes of text; n == 0 once merged into its left neighbour */
} tokenizer_symbol;

/* A candidate merge of two adjacent symbols. */
typedef struct tokenizer_bigram {
    float score;  /* SPM: token score, higher first */
    int32_t rank; /* BPE: merge rank, lower first */
    int32_t left, right;
    uint32_t size;
} tokenizer_bigram;

/* A binary heap of bigrams: SPM pops the best score, BPE the lowest rank;
 * ties go to the leftmost pair. */
typedef struct tokenizer_heap {
    tokenizer_bigram *v;
    size_t n, cap;
    bool spm;
    bool oom;
} tokenizer_heap;

/* Scratch shared by the fragments of one encode call; freed by
 * tokenizer_work_free. `oom` records any allocation failure. */
typedef struct tokenizer_work {
    const hearth_tokenizer *t;
    hearth_tokens *out;
    char *buf;
    size_t buf_cap;
    tokenizer_symbol *sym;
    size_t sym_cap;
    tokenizer_heap q;
    bool oom;
} tokenizer_work;

/* Offers the bigram (left, right) to the queue when it can merge; either
 * may be -1 (no neighbour). */
typedef void (*tokenizer_try_bigram_fn)(tokenizer_work *w, int32_t left, int32_t right);

void tokenizer_work_free(tokenizer_work *w);
/* Append id to the output (sets w->oom when that fails). */
void tokenizer_emit(tokenizer_work *w, int32_t id);
/* Split w->buf[0..n) into one symbol per UTF-8 character (by lead byte);
 * returns the count (0 with w->oom set when out of memory). */
size_t tokenizer_make_symbols(tokenizer_work *w, size_t n);
void tokenizer_heap_push(tokenizer_heap *h, tokenizer_bigram x);
/* Merge the ns symbols of w->sym until the queue is empty: seed every
 * adjacent pair with try_bigram, pop the best, merge it into its left symbol
 * unless it is stale, and offer the two new neighbour pairs. */
void tokenizer_merge_symbols(tokenizer_work *w, size_t ns, bool spm, tokenizer_try_bigram_fn try_bigram);

/* SPM: one raw-text fragment; prefix adds the leading "▁". */
void tokenizer_spm_fragment(tokenizer_work *w, const char *text, size_t len, bool prefix);
/* BPE: one pre-tokenized word (a hearth_pretok_fn; user is the work). */
bool tokenizer_bpe_word(void *user, const char *word, size_t len);

/* WPM: one raw-text fragment: normalise (NFD first code point, lower case,
 * controls dropped), split on whitespace and punctuation, then longest-match
 * each word with its "▁" prefix (runtime/text/tokenizer_wpm.c). */
void tokenizer_wpm_fragment(tokenizer_work *w, const char *text, size_t len);

/* ---------------------------------------------------------------- pieces */

/* The bytes token id stands for with special = true, written to out (which
 * has room for the token's text: a piece is never longer); returns the count.
 * Needs the final attributes of id. */
size_t tokenizer_piece_compute(const hearth_tokenizer *t, int32_t id, char *out);

#endif
