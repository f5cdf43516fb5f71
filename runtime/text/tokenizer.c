/*
 * tokenizer.c - text <-> token ids for GGUF vocabularies, matching llama.cpp
 * (llama-vocab.cpp) id for id.
 *
 * Ownership: tokenizer engineer. A hearth_tokenizer owns copies of everything
 * it reads from the GGUF file (token texts, scores, types, merges), so the
 * file may be closed afterwards. Encoding allocates its scratch per call and
 * never writes to the tokenizer: many threads may share one.
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
 *     ordered longest text first, the order llama.cpp partitions text in.
 *
 * Sections: loading (metadata, tables, llama.cpp's name-based fix-ups),
 * special-token partition, SPM encoding, BPE encoding, pieces and
 * detokenization, the streaming detokenizer.
 */
#include "tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pretokenize.h"
#include "unicode.h"

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

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;
    hearth_pretok pretok;
    char pre_name[64];
    char note[256];
};

/* ================================================================ small helpers */

void hearth_tokens_free(hearth_tokens *t) {
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

bool hearth_tokens_push(hearth_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids) return false;
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return true;
}

/* 64-bit FNV-1a, then a final mix so the low bits (the slot) are good. */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed) {
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

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

static inline const char *tok_text(const hearth_tokenizer *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id] - 1;
    return t->text + t->text_off[id];
}

int32_t hearth_tokenizer_find(const hearth_tokenizer *t, const char *text, size_t len) {
    size_t i = hash_bytes(text, len, 0) & t->tok_mask;
    for (;; i = (i + 1) & t->tok_mask) {
        int32_t id = t->tok_slot[i];
        if (id < 0) return -1;
        size_t n;
        const char *s = tok_text(t, id, &n);
        if (n == len && memcmp(s, text, len) == 0) return id;
    }
}

/* Rank of merging the adjacent texts s[0..split) and s[split..len); -1 if none. */
static int32_t merge_rank(const hearth_tokenizer *t, const char *s, size_t len, size_t split) {
    if (!t->merge_slot) return -1;
    size_t i = hash_bytes(s, len, split) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        int32_t k = t->merge_slot[i];
        if (k < 0) return -1;
        const merge_entry *m = &t->merge[k];
        if (m->len == len && m->split == split && memcmp(t->merge_text + m->off, s, len) == 0) return m->rank;
    }
}

/* ================================================================ loading */

static bool key_id(const hearth_gguf *g, const char *key, int32_t n_vocab, int32_t *id, bool strict,
                   hearth_error *err, bool *bad) {
    int64_t v;
    if (!hearth_gguf_get_i64(g, key, &v)) return true; /* absent: keep the default */
    if (v < 0 || v == 0xFFFFFFFFll) {                  /* "none" */
        *id = -1;
        return true;
    }
    if (v >= n_vocab) {
        if (strict) {
            hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s = %lld is outside the vocabulary (%d tokens)",
                             hearth_gguf_path(g), key, (long long)v, n_vocab);
            return false;
        }
        *bad = true; /* llama.cpp warns and keeps the default */
        return true;
    }
    *id = (int32_t)v;
    return true;
}

static void set_note(hearth_tokenizer *t, const char *msg) {
    size_t n = strlen(t->note);
    snprintf(t->note + n, sizeof t->note - n, "%s%s", n ? "; " : "", msg);
}

/* tokenizer.ggml.pre -> pre-tokenizer and the flags llama.cpp ties to it. */
typedef struct pre_def {
    const char *name;
    hearth_pretok kind;
    bool ignore_merges, add_bos, clean_spaces;
} pre_def;

static const pre_def PRE_DEFS[] = {
    {"default", HEARTH_PRETOK_DEFAULT, false, false, true},
    {"llama3", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"llama-v3", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"llama-bpe", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"falcon3", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"falcon-h1", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"pixtral", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"midm-2.0", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"lfm2", HEARTH_PRETOK_LLAMA3, true, true, true},
    {"dbrx", HEARTH_PRETOK_LLAMA3, false, false, true},
    {"smaug-bpe", HEARTH_PRETOK_LLAMA3, false, false, true},
    {"deepseek-llm", HEARTH_PRETOK_DEEPSEEK_LLM, false, false, false},
    {"deepseek-coder", HEARTH_PRETOK_DEEPSEEK_CODER, false, false, false},
    {"falcon", HEARTH_PRETOK_FALCON, false, false, true},
    {"mpt", HEARTH_PRETOK_GPT2, false, false, true},
    {"starcoder", HEARTH_PRETOK_STARCODER, false, false, true},
    {"refact", HEARTH_PRETOK_STARCODER, false, false, true},
    {"command-r", HEARTH_PRETOK_STARCODER, false, false, false},
    {"smollm", HEARTH_PRETOK_STARCODER, false, false, false},
    {"codeshell", HEARTH_PRETOK_STARCODER, false, false, true},
    {"exaone", HEARTH_PRETOK_STARCODER, false, false, true},
    {"minerva-7b", HEARTH_PRETOK_STARCODER, false, false, true},
    {"gpt-2", HEARTH_PRETOK_GPT2, false, false, true},
    {"phi-2", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-es", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-de", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-v1-en", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-v2-es", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-v2-de", HEARTH_PRETOK_GPT2, false, false, true},
    {"jina-v2-code", HEARTH_PRETOK_GPT2, false, false, true},
    {"roberta-bpe", HEARTH_PRETOK_GPT2, false, false, true},
    {"gigachat", HEARTH_PRETOK_GPT2, false, false, true},
    {"olmo", HEARTH_PRETOK_GPT2, false, false, true},
    {"jais", HEARTH_PRETOK_GPT2, false, false, true},
    {"trillion", HEARTH_PRETOK_GPT2, false, false, false},
    {"qwen2", HEARTH_PRETOK_QWEN2, false, false, false},
    {"deepseek-r1-qwen", HEARTH_PRETOK_QWEN2, false, false, false},
    {"megrez", HEARTH_PRETOK_QWEN2, false, false, false},
    {"stablelm2", HEARTH_PRETOK_QWEN2, false, false, true},
    {"hunyuan", HEARTH_PRETOK_QWEN2, false, false, true},
    {"qwen35", HEARTH_PRETOK_QWEN35, false, false, false},
    {"poro-chat", HEARTH_PRETOK_PORO, false, false, false},
    {"bloom", HEARTH_PRETOK_PORO, false, false, true},
    {"gpt3-finnish", HEARTH_PRETOK_PORO, false, false, true},
};

/* Index of s[0..n) in a NULL-terminated list, or -1. */
static int text_at(const char *s, size_t n, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0) return i;
    return -1;
}

/* llama.cpp finds end-of-turn, FIM and end-of-generation tokens by their
 * text, forces them to CONTROL, and collects the end-of-generation set. */
static void detect_special_by_text(hearth_tokenizer *t, int32_t *fim_pad, int32_t *fim_rep,
                                   int32_t *fim_sep) {
    static const char *const EOT[] = {"<|eot_id|>",    "<|im_end|>",         "<|end|>",
                                      "<end_of_turn>", "<|endoftext|>",      "<EOT>",
                                      "_<EOT>",        "<end_of_utterance>", NULL};
    static const char *const EOM[] = {"<|eom_id|>", NULL};
    static const char *const FIM_PRE[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", NULL};
    static const char *const FIM_SUF[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", NULL};
    static const char *const FIM_MID[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", NULL};
    static const char *const FIM_PAD[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL};
    static const char *const FIM_REP[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                          "<REPO>",       "<reponame>",    NULL};
    static const char *const FIM_SEP[] = {"<|file_sep|>", NULL};
    static const char *const EOG[] = {"<|eot_id|>", "<|im_end|>",    "<|end|>",         "<|return|>",
                                      "<|call|>",   "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
                                      "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>",
                                      NULL};
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1;
    struct {
        const char *const *list;
        int32_t *id;
    } finders[] = {{EOT, &t->eot},      {EOM, &t->eom},     {FIM_PRE, &fim_pre}, {FIM_SUF, &fim_suf},
                   {FIM_MID, &fim_mid}, {FIM_PAD, fim_pad}, {FIM_REP, fim_rep},  {FIM_SEP, fim_sep}};
    /* Only ids the metadata did not give are searched for. Every match is
     * promoted to CONTROL; the id kept is the one whose text comes first in
     * the list (llama.cpp keeps whichever its hash map yields first). */
    enum { N_FINDERS = sizeof finders / sizeof finders[0] };
    bool searching[N_FINDERS];
    int best[N_FINDERS];
    for (size_t k = 0; k < N_FINDERS; k++) {
        searching[k] = *finders[k].id < 0;
        best[k] = INT32_MAX;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = tok_text(t, id, &n);
        if (n < 3 || n > 24) continue;
        for (size_t k = 0; k < N_FINDERS; k++) {
            int at = searching[k] ? text_at(s, n, finders[k].list) : -1;
            if (at < 0) continue;
            t->attr[id] |= ATTR_CONTROL;
            if (at < best[k]) {
                best[k] = at;
                *finders[k].id = id;
            }
        }
        if (text_at(s, n, EOG) >= 0) t->attr[id] |= ATTR_EOG | ATTR_CONTROL;
    }
    const int32_t eog_ids[] = {*fim_pad, *fim_rep, *fim_sep, t->eos, t->eot, t->eom};
    for (size_t k = 0; k < sizeof eog_ids / sizeof eog_ids[0]; k++)
        if (eog_ids[k] >= 0) t->attr[eog_ids[k]] |= ATTR_EOG;
}

static bool contains(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

/* llama.cpp's per-model strip attributes (they are not in GGUF files). */
static void apply_name_fixups(hearth_tokenizer *t, const hearth_gguf *g) {
    char name[128] = "", arch[64] = "";
    hearth_str s;
    if (hearth_gguf_get_str(g, "general.name", &s)) hearth_str_copy(s, name, sizeof name);
    if (hearth_gguf_get_str(g, "general.architecture", &s)) hearth_str_copy(s, arch, sizeof arch);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (contains(t->pre_name, "jina-v2-de") || contains(t->pre_name, "jina-v2-es") ||
        contains(t->pre_name, "jina-v2-code") || contains(arch, "nomic-bert-moe") ||
        contains(arch, "jina-bert-v3")) {
        int32_t id = hearth_tokenizer_find(t, "<mask>", 6);
        if (id >= 0) t->attr[id] |= ATTR_LSTRIP;
    } else if (contains(name, "phi-3") || contains(name, "phi3")) {
        for (size_t i = 0; i < t->n_special; i++)
            t->attr[t->special[i]] |= ATTR_RSTRIP;
        int32_t id = hearth_tokenizer_find(t, "</s>", 4);
        if (id >= 0) t->attr[id] |= ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t k = 0; k < 3; k++) {
            id = hearth_tokenizer_find(t, keep[k], strlen(keep[k]));
            if (id >= 0) t->attr[id] &= (uint16_t)~ATTR_RSTRIP;
        }
    } else if (contains(name, "modern-bert")) {
        int32_t id = hearth_tokenizer_find(t, "[MASK]", 6);
        if (id >= 0) t->attr[id] |= ATTR_LSTRIP;
    }
}

typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The bytes token id stands for, special = true (llama.cpp's piece cache). */
static size_t compute_piece(const hearth_tokenizer *t, int32_t id, char *out) {
    size_t n;
    const char *s = tok_text(t, id, &n);
    const uint16_t a = t->attr[id];
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        memcpy(out, s, n);
        return n;
    }
    if (a & ATTR_NORMAL) {
        size_t m = 0;
        if (t->kind == HEARTH_VOCAB_SPM) { /* "▁" -> ' ' */
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    out[m++] = ' ';
                    i += 3;
                } else {
                    out[m++] = s[i++];
                }
            }
        } else { /* GPT-2 alphabet -> bytes; code points outside it pass through */
            for (size_t i = 0; i < n;) {
                size_t adv;
                uint32_t c = hearth_utf8_decode(s + i, n - i, &adv);
                int b = hearth_cpt_to_byte(c);
                if (b >= 0) {
                    out[m++] = (char)b;
                } else {
                    memcpy(out + m, s + i, adv);
                    m += adv;
                }
                i += adv;
            }
        }
        return m;
    }
    if ((a & ATTR_BYTE) && n >= 6 && memcmp(s, "<0x", 3) == 0) {
        char hex[3] = {s[3], s[4], 0};
        out[0] = (char)strtol(hex, NULL, 16);
        return 1;
    }
    return 0; /* unused / undefined types detokenize to nothing */
}

static hearth_tokenizer *load_fail(hearth_tokenizer *t) {
    hearth_tokenizer_free(t);
    return NULL;
}

hearth_tokenizer *hearth_tokenizer_from_gguf(const hearth_gguf *g, hearth_error *err) {
    const char *path = hearth_gguf_path(g);
    hearth_str model;
    if (!hearth_gguf_get_str(g, "tokenizer.ggml.model", &model)) {
        hearth_error_set(err, HEARTH_ERR_FORMAT,
                         "%s: no tokenizer.ggml.model key: the file carries no vocabulary", path);
        return NULL;
    }
    hearth_vocab_kind kind;
    if (hearth_str_eq(model, "llama")) {
        kind = HEARTH_VOCAB_SPM;
    } else if (hearth_str_eq(model, "gpt2")) {
        kind = HEARTH_VOCAB_BPE;
    } else {
        char m[64];
        hearth_str_copy(model, m, sizeof m);
        const char *what = strcmp(m, "bert") == 0   ? " (WordPiece)"
                           : strcmp(m, "t5") == 0   ? " (Unigram)"
                           : strcmp(m, "rwkv") == 0 ? " (RWKV)"
                                                    : "";
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "%s: tokenizer.ggml.model '%s'%s is not supported; this build supports 'llama' "
                         "(SentencePiece BPE) and 'gpt2' (byte-level BPE)",
                         path, m, what);
        return NULL;
    }
    const gguf_kv *toks = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!toks || toks->arr_n == 0 || toks->arr_n > INT32_MAX / 2) {
        hearth_error_set(err, HEARTH_ERR_FORMAT,
                         "%s: tokenizer.ggml.tokens is missing, empty or not a string array", path);
        return NULL;
    }
    const int32_t n = (int32_t)toks->arr_n;
    const gguf_kv *scores = hearth_gguf_find(g, "tokenizer.ggml.scores");
    const gguf_kv *types = hearth_gguf_find(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_ARRAY || scores->arr_type == GGUF_STRING ||
                   scores->arr_type == GGUF_ARRAY || scores->arr_n < (uint64_t)n)) {
        hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: tokenizer.ggml.scores must be a numeric array of at least %d entries (one per token)", path,
            n);
        return NULL;
    }
    if (types && (types->type != GGUF_ARRAY || types->arr_type == GGUF_STRING ||
                  types->arr_type == GGUF_ARRAY || types->arr_n < (uint64_t)n)) {
        hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: tokenizer.ggml.token_type must be an integer array of at least %d entries (one per token)",
            path, n);
        return NULL;
    }
    const gguf_kv *merges = NULL;
    if (kind == HEARTH_VOCAB_BPE) {
        merges = hearth_gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING);
        if (!merges) {
            hearth_error_set(
                err, HEARTH_ERR_FORMAT,
                "%s: tokenizer.ggml.model is 'gpt2' but tokenizer.ggml.merges (string array) is missing",
                path);
            return NULL;
        }
    }

    hearth_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = kind;
    t->n_vocab = n;

    /* ---- token texts, scores, attributes */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += (toks->strs[i].len ? toks->strs[i].len : 24) + 1;
    if (total > UINT32_MAX) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: token texts too large (%zu bytes)", path, total);
        return load_fail(t);
    }
    t->text = malloc(total);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->attr = malloc((size_t)n * sizeof *t->attr);
    t->type = malloc((size_t)n);
    if (!t->text || !t->text_off || !t->score || !t->attr || !t->type) goto oom;
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        t->text_off[i] = (uint32_t)off;
        hearth_str s = toks->strs[i];
        if (s.len == 0) {
            off += (size_t)snprintf(t->text + off, 24, "[EMPTY_%d]", (int)i) + 1;
        } else {
            memcpy(t->text + off, s.ptr, s.len);
            off += s.len;
            t->text[off++] = '\0';
        }
        t->score[i] = scores ? (float)gguf_kv_arr_f64(scores, (uint64_t)i) : 0.0f;
        int64_t ty = types ? gguf_kv_arr_i64(types, (uint64_t)i) : HEARTH_TOKEN_NORMAL;
        t->type[i] = ty >= 0 && ty <= 6 ? (uint8_t)ty : 0;
        switch (ty) {
        case HEARTH_TOKEN_NORMAL: t->attr[i] = ATTR_NORMAL; break;
        case HEARTH_TOKEN_UNKNOWN: t->attr[i] = ATTR_UNKNOWN; break;
        case HEARTH_TOKEN_CONTROL: t->attr[i] = ATTR_CONTROL; break;
        case HEARTH_TOKEN_USER_DEFINED: t->attr[i] = ATTR_USER_DEFINED; break;
        case HEARTH_TOKEN_UNUSED: t->attr[i] = ATTR_UNUSED; break;
        case HEARTH_TOKEN_BYTE: t->attr[i] = ATTR_BYTE; break;
        default: t->attr[i] = 0; break; /* undefined */
        }
    }
    t->text_off[n] = (uint32_t)off;

    /* ---- text -> id (last id wins, like token_to_id[word] = i) */
    t->tok_mask = pow2_at_least((size_t)n * 2) - 1;
    t->tok_slot = malloc((t->tok_mask + 1) * sizeof *t->tok_slot);
    if (!t->tok_slot) goto oom;
    memset(t->tok_slot, 0xff, (t->tok_mask + 1) * sizeof *t->tok_slot);
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        size_t k = hash_bytes(s, len, 0) & t->tok_mask;
        for (;; k = (k + 1) & t->tok_mask) {
            int32_t id = t->tok_slot[k];
            if (id >= 0) {
                size_t l2;
                const char *s2 = tok_text(t, id, &l2);
                if (l2 != len || memcmp(s2, s, len) != 0) continue; /* another text: probe on */
            }
            t->tok_slot[k] = i; /* empty slot, or the same text: the later id wins */
            break;
        }
    }

    /* ---- merges: "first second" split at the first space after byte 0 */
    if (merges) {
        size_t mtotal = 0;
        for (uint64_t i = 0; i < merges->arr_n; i++)
            mtotal += merges->strs[i].len;
        if (mtotal > UINT32_MAX || merges->arr_n > INT32_MAX) {
            hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: tokenizer.ggml.merges too large (%zu bytes)", path,
                             mtotal);
            return load_fail(t);
        }
        t->merge_text = malloc(mtotal ? mtotal : 1);
        t->merge = malloc((merges->arr_n ? merges->arr_n : 1) * sizeof *t->merge);
        t->merge_mask = pow2_at_least((size_t)merges->arr_n * 2) - 1;
        t->merge_slot = malloc((t->merge_mask + 1) * sizeof *t->merge_slot);
        if (!t->merge_text || !t->merge || !t->merge_slot) goto oom;
        memset(t->merge_slot, 0xff, (t->merge_mask + 1) * sizeof *t->merge_slot);
        size_t moff = 0;
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            hearth_str s = merges->strs[i];
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
            if (!sp) continue; /* llama.cpp would store an empty pair: it never matches */
            size_t first = (size_t)(sp - s.ptr), second = s.len - first - 1;
            merge_entry m = {(uint32_t)moff, (uint32_t)(first + second), (uint32_t)first, (int32_t)i};
            memcpy(t->merge_text + moff, s.ptr, first);
            memcpy(t->merge_text + moff + first, sp + 1, second);
            size_t k = hash_bytes(t->merge_text + moff, m.len, m.split) & t->merge_mask;
            bool dup = false;
            for (;; k = (k + 1) & t->merge_mask) {
                int32_t j = t->merge_slot[k];
                if (j < 0) break;
                const merge_entry *o = &t->merge[j];
                if (o->len == m.len && o->split == m.split &&
                    memcmp(t->merge_text + o->off, t->merge_text + moff, m.len) == 0) {
                    dup = true; /* the first rank stays */
                    break;
                }
            }
            if (dup) continue;
            t->merge[t->n_merge] = m;
            t->merge_slot[k] = (int32_t)t->n_merge++;
            moff += m.len;
        }
    }

    /* ---- flags and the pre-tokenizer */
    t->pretok = HEARTH_PRETOK_DEFAULT;
    t->add_space_prefix = kind == HEARTH_VOCAB_SPM;
    t->add_bos = kind == HEARTH_VOCAB_SPM;
    t->clean_spaces = false;
    snprintf(t->pre_name, sizeof t->pre_name, "%s", kind == HEARTH_VOCAB_SPM ? "spm" : "default");
    if (kind == HEARTH_VOCAB_BPE) {
        t->clean_spaces = true;
        hearth_str pre;
        if (hearth_gguf_get_str(g, "tokenizer.ggml.pre", &pre)) {
            char p[64];
            hearth_str_copy(pre, p, sizeof p);
            bool known = false;
            for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++) {
                if (strcmp(PRE_DEFS[i].name, p) == 0) {
                    t->pretok = PRE_DEFS[i].kind;
                    t->ignore_merges = PRE_DEFS[i].ignore_merges;
                    t->add_bos = PRE_DEFS[i].add_bos;
                    t->clean_spaces = PRE_DEFS[i].clean_spaces;
                    known = true;
                    break;
                }
            }
            snprintf(t->pre_name, sizeof t->pre_name, "%s", p);
            if (!known) {
                char msg[200];
                snprintf(
                    msg, sizeof msg,
                    "tokenizer.ggml.pre '%.60s' is not known to this build; using the default pre-tokenizer "
                    "(llama.cpp refuses such files)",
                    p);
                set_note(t, msg);
            }
        } else {
            set_note(t, "tokenizer.ggml.pre is missing; using the default pre-tokenizer");
        }
    }
    bool b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;

    /* ---- special ids (SPM defaults as llama.cpp: <unk> 0, <s> 1, </s> 2) */
    t->bos = t->eos = t->eot = t->eom = t->unk = -1;
    if (kind == HEARTH_VOCAB_SPM && n > 2) {
        t->unk = 0;
        t->bos = 1;
        t->eos = 2;
    }
    int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1, ignored = -1;
    bool bad = false;
    if (!key_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos, true, err, &bad) ||
        !key_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos, true, err, &bad) ||
        !key_id(g, "tokenizer.ggml.eot_token_id", n, &t->eot, true, err, &bad) ||
        !key_id(g, "tokenizer.ggml.eom_token_id", n, &t->eom, true, err, &bad) ||
        !key_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk, true, err, &bad) ||
        !key_id(g, "tokenizer.ggml.fim_pad_token_id", n, &fim_pad, false, err, &bad) ||
        !key_id(g, "tokenizer.ggml.fim_rep_token_id", n, &fim_rep, false, err, &bad) ||
        !key_id(g, "tokenizer.ggml.fim_sep_token_id", n, &fim_sep, false, err, &bad) ||
        !key_id(g, "tokenizer.ggml.seperator_token_id", n, &ignored, false, err, &bad) ||
        !key_id(g, "tokenizer.ggml.padding_token_id", n, &ignored, false, err, &bad))
        return load_fail(t);
    if (bad)
        set_note(t,
                 "an optional special-token id (padding/separator/FIM) is outside the vocabulary; ignored");

    detect_special_by_text(t, &fim_pad, &fim_rep, &fim_sep);

    /* ---- special tokens, longest first */
    size_t n_special = 0;
    for (int32_t i = 0; i < n; i++)
        n_special += (t->attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0;
    t->special = malloc((n_special ? n_special : 1) * sizeof *t->special);
    special_key *keys = malloc((n_special ? n_special : 1) * sizeof *keys);
    if (!t->special || !keys) {
        free(keys);
        goto oom;
    }
    for (int32_t i = 0; i < n; i++)
        if (t->attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
            keys[t->n_special++] = (special_key){t->text_off[i + 1] - t->text_off[i], i};
    qsort(keys, t->n_special, sizeof *keys, cmp_special);
    for (size_t i = 0; i < t->n_special; i++)
        t->special[i] = keys[i].id;
    free(keys);

    /* ---- pieces (special = true), then the name-based strip attributes */
    size_t ptotal = 0;
    for (int32_t i = 0; i < n; i++)
        ptotal += t->text_off[i + 1] - t->text_off[i];
    t->piece = malloc(ptotal ? ptotal : 1);
    t->piece_off = malloc(((size_t)n + 1) * sizeof *t->piece_off);
    if (!t->piece || !t->piece_off) goto oom;
    size_t poff = 0;
    for (int32_t i = 0; i < n; i++) {
        t->piece_off[i] = (uint32_t)poff;
        poff += compute_piece(t, i, t->piece + poff); /* a piece is never longer than its text */
    }
    t->piece_off[n] = (uint32_t)poff;
    apply_name_fixups(t, g);

    /* ---- byte tables */
    for (int c = 0; c < 256; c++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", c);
        int32_t id = hearth_tokenizer_find(t, buf, 6);
        if (id < 0) {
            buf[0] = (char)c;
            id = hearth_tokenizer_find(t, buf, 1);
        }
        t->byte_token[c] = id;
        char u[4];
        size_t k = hearth_utf8_encode(hearth_byte_to_cpt((uint8_t)c), u);
        memcpy(t->byte_utf8[c], u, 2);
        t->byte_utf8_len[c] = (uint8_t)k;
    }
    return t;

oom:
    hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory while loading the vocabulary", path);
    return load_fail(t);
}

void hearth_tokenizer_free(hearth_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->score);
    free(t->attr);
    free(t->type);
    free(t->piece);
    free(t->piece_off);
    free(t->tok_slot);
    free(t->merge_text);
    free(t->merge);
    free(t->merge_slot);
    free(t->special);
    free(t);
}

/* ================================================================ queries */

hearth_vocab_kind hearth_tokenizer_kind(const hearth_tokenizer *t) {
    return t->kind;
}
int32_t hearth_tokenizer_n_vocab(const hearth_tokenizer *t) {
    return t->n_vocab;
}
int32_t hearth_tokenizer_bos(const hearth_tokenizer *t) {
    return t->bos;
}
int32_t hearth_tokenizer_eos(const hearth_tokenizer *t) {
    return t->eos;
}
int32_t hearth_tokenizer_eot(const hearth_tokenizer *t) {
    return t->eot;
}
bool hearth_tokenizer_add_bos_default(const hearth_tokenizer *t) {
    return t->add_bos;
}
bool hearth_tokenizer_is_eog(const hearth_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & ATTR_EOG);
}
int hearth_tokenizer_token_type(const hearth_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return 0;
    if (t->attr[id] & ATTR_CONTROL) return HEARTH_TOKEN_CONTROL; /* includes llama.cpp's promotions */
    return t->type[id];
}
const char *hearth_tokenizer_text(const hearth_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    size_t n;
    const char *s = tok_text(t, id, &n);
    if (len) *len = n;
    return s;
}
const char *hearth_tokenizer_pre_name(const hearth_tokenizer *t) {
    return t->pre_name;
}
const char *hearth_tokenizer_pretokenizer(const hearth_tokenizer *t) {
    return t->kind == HEARTH_VOCAB_SPM ? "spm" : hearth_pretok_name(t->pretok);
}
const char *hearth_tokenizer_note(const hearth_tokenizer *t) {
    return t->note[0] ? t->note : NULL;
}

/* ================================================================ special-token partition */

/* A fragment of the input: a token already decided (id >= 0) or raw text. */
typedef struct frag {
    int32_t id;
    uint32_t off, len;
} frag;

typedef struct frag_list {
    frag *v;
    size_t n, cap;
} frag_list;

static bool frags_push(frag_list *l, int32_t id, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        frag *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (frag){id, (uint32_t)off, (uint32_t)len};
    return true;
}

/* Split text on the texts of special tokens, longest token first, every
 * occurrence left to right (llama.cpp's tokenizer_st_partition). With
 * parse_special false only user-defined tokens are split out. */
static bool partition(const hearth_tokenizer *t, const char *text, size_t len, bool parse_special,
                      frag_list *out) {
    frag_list a = {0}, b = {0};
    bool ok = frags_push(&a, -1, 0, len);
    /* pairs of adjacent bytes present in the text: a cheap filter that skips
     * most special tokens without searching */
    uint8_t *pairs = NULL;
    if (ok && t->n_special > 8 && len >= 2) {
        pairs = calloc(65536 / 8, 1);
        if (pairs)
            for (size_t i = 0; i + 1 < len; i++) {
                unsigned k = (unsigned char)text[i] << 8 | (unsigned char)text[i + 1];
                pairs[k >> 3] |= (uint8_t)(1u << (k & 7));
            }
    }
    for (size_t si = 0; ok && si < t->n_special; si++) {
        const int32_t id = t->special[si];
        const uint16_t attr = t->attr[id];
        if (!parse_special && (attr & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        size_t slen;
        const char *stext = tok_text(t, id, &slen);
        if (slen > len) continue;
        if (pairs && slen >= 2) {
            unsigned k = (unsigned char)stext[0] << 8 | (unsigned char)stext[1];
            if (!(pairs[k >> 3] & (1u << (k & 7)))) continue;
        }
        bool any = false;
        b.n = 0;
        for (size_t j = 0; ok && j < a.n; j++) {
            frag f = a.v[j];
            if (f.id >= 0) {
                ok = frags_push(&b, f.id, f.off, f.len);
                continue;
            }
            size_t base = f.off, blen = f.len;
            for (;;) {
                const char *m = blen >= slen ? memmem(text + base, blen, stext, slen) : NULL;
                if (!m) {
                    if (blen) ok = ok && frags_push(&b, -1, base, blen);
                    break;
                }
                any = true;
                size_t mo = (size_t)(m - text);
                size_t left = mo - base;
                if (attr & ATTR_LSTRIP)
                    while (left > 0 && isspace((unsigned char)text[base + left - 1]))
                        left--;
                if (left) ok = ok && frags_push(&b, -1, base, left);
                ok = ok && frags_push(&b, id, mo, slen);
                size_t r_off = mo + slen, r_len = base + blen - r_off;
                if (attr & ATTR_RSTRIP)
                    while (r_len > 0 && isspace((unsigned char)text[r_off])) {
                        r_off++;
                        r_len--;
                    }
                base = r_off;
                blen = r_len;
            }
        }
        if (any) {
            frag_list tmp = a;
            a = b;
            b = tmp;
        }
    }
    free(pairs);
    free(b.v);
    if (!ok) {
        free(a.v);
        return false;
    }
    *out = a;
    return true;
}

/* ================================================================ SPM encoding */

typedef struct symbol {
    int32_t prev, next;
    uint32_t off, n; /* bytes of text; n == 0 once merged into its left neighbour */
} symbol;

typedef struct bigram {
    float score;  /* SPM: token score, higher first */
    int32_t rank; /* BPE: merge rank, lower first */
    int32_t left, right;
    uint32_t size;
} bigram;

typedef struct heap {
    bigram *v;
    size_t n, cap;
    bool spm;
    bool oom;
} heap;

/* Does a come out of the queue before b? Ties go to the leftmost pair. */
static inline bool before(const heap *h, const bigram *a, const bigram *b) {
    if (h->spm) {
        if (a->score != b->score) return a->score > b->score;
    } else if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

static void heap_push(heap *h, bigram x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) {
            h->oom = true;
            return;
        }
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(h, &x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(h, &h->v[c + 1], &h->v[c])) c++;
        if (!before(h, &h->v[c], &x)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

/* Scratch shared by the fragments of one encode call. */
typedef struct work {
    const hearth_tokenizer *t;
    hearth_tokens *out;
    char *buf;
    size_t buf_cap;
    symbol *sym;
    size_t sym_cap;
    heap q;
    bool oom;
} work;

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static void emit(work *w, int32_t id) {
    if (!hearth_tokens_push(w->out, id)) w->oom = true;
}

/* Split buf[0..n) into one symbol per UTF-8 character (by lead byte). */
static size_t make_symbols(work *w, size_t n) {
    if (!grow((void **)&w->sym, &w->sym_cap, n, sizeof *w->sym)) {
        w->oom = true;
        return 0;
    }
    size_t k = 0;
    for (size_t off = 0; off < n; k++) {
        size_t len = hearth_utf8_len((unsigned char)w->buf[off]);
        if (len > n - off) len = n - off;
        w->sym[k] =
            (symbol){(int32_t)k - 1, off + len == n ? -1 : (int32_t)k + 1, (uint32_t)off, (uint32_t)len};
        off += len;
    }
    return k;
}

static void spm_try_bigram(work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t id = hearth_tokenizer_find(w->t, w->buf + l->off, l->n + r->n);
    if (id < 0) return;
    heap_push(&w->q, (bigram){w->t->score[id], 0, left, right, l->n + r->n});
}

/* llama.cpp's llm_tokenizer_spm_session::tokenize on w->buf[0..n). */
static void spm_tokenize(work *w, size_t n) {
    size_t ns = make_symbols(w, n);
    if (!ns) return;
    w->q.n = 0;
    w->q.spm = true;
    for (size_t i = 1; i < ns; i++)
        spm_try_bigram(w, (int32_t)i - 1, (int32_t)i);
    while (w->q.n) {
        bigram bg = heap_pop(&w->q);
        symbol *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = bg.left;
        spm_try_bigram(w, l->prev, bg.left);
        spm_try_bigram(w, bg.left, l->next);
    }
    if (w->q.oom) w->oom = true;
    const hearth_tokenizer *t = w->t;
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = hearth_tokenizer_find(t, w->buf + s->off, s->n);
        if (id >= 0) {
            emit(w, id);
            continue;
        }
        /* byte fallback (a symbol that is not a token is never a merge) */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t b = t->byte_token[(unsigned char)w->buf[s->off + j]];
            if (b < 0) b = t->unk;
            if (b >= 0) emit(w, b);
        }
    }
}

/* One raw-text fragment: optional leading space, spaces escaped as "▁". */
static void spm_fragment(work *w, const char *text, size_t len, bool prefix) {
    size_t need = (len + 1) * 3;
    if (!grow((void **)&w->buf, &w->buf_cap, need, 1)) {
        w->oom = true;
        return;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(w->buf, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w->buf + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            w->buf[n++] = text[i];
        }
    }
    if (n) spm_tokenize(w, n);
}

/* ================================================================ BPE encoding */

static void bpe_try_bigram(work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t rank = merge_rank(w->t, w->buf + l->off, l->n + r->n, l->n);
    if (rank < 0) return;
    heap_push(&w->q, (bigram){0, rank, left, right, l->n + r->n});
}

/* One pre-tokenized word: map bytes to the GPT-2 alphabet, merge by rank. */
static bool bpe_word(void *user, const char *word, size_t len) {
    work *w = user;
    const hearth_tokenizer *t = w->t;
    if (!grow((void **)&w->buf, &w->buf_cap, len * 2, 1)) {
        w->oom = true;
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)word[i];
        memcpy(w->buf + n, t->byte_utf8[c], t->byte_utf8_len[c]);
        n += t->byte_utf8_len[c];
    }
    if (t->ignore_merges) {
        int32_t id = hearth_tokenizer_find(t, w->buf, n);
        if (id >= 0) {
            emit(w, id);
            return !w->oom;
        }
    }
    size_t ns = make_symbols(w, n);
    if (!ns) return !w->oom;
    w->q.n = 0;
    w->q.spm = false;
    for (size_t i = 1; i < ns; i++)
        bpe_try_bigram(w, (int32_t)i - 1, (int32_t)i);
    while (w->q.n) {
        bigram bg = heap_pop(&w->q);
        symbol *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = bg.left;
        bpe_try_bigram(w, l->prev, bg.left);
        bpe_try_bigram(w, bg.left, l->next);
    }
    if (w->q.oom) w->oom = true;
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = hearth_tokenizer_find(t, w->buf + s->off, s->n);
        if (id >= 0) {
            emit(w, id);
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) { /* single bytes that happen to be tokens */
            int32_t b = hearth_tokenizer_find(t, w->buf + s->off + j, 1);
            if (b >= 0) emit(w, b);
        }
    }
    return !w->oom;
}

/* ================================================================ encode */

hearth_status hearth_tokenizer_encode(const hearth_tokenizer *t, const char *text, size_t len, bool add_bos,
                                      bool parse_special, hearth_tokens *out, hearth_error *err) {
    if (!t || !out || (len && !text))
        return hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_tokenizer_encode: NULL argument");
    if (len > UINT32_MAX / 4)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "hearth_tokenizer_encode: text of %zu bytes is too long", len);
    work w = {.t = t, .out = out};
    frag_list frags = {0};
    if (add_bos && t->bos >= 0) emit(&w, t->bos);
    if (len && !partition(t, text, len, parse_special, &frags)) w.oom = true;
    bool prev_special = true; /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < frags.n && !w.oom; i++) {
        const frag *f = &frags.v[i];
        if (f->id >= 0) {
            emit(&w, f->id);
            prev_special = true;
            continue;
        }
        if (t->kind == HEARTH_VOCAB_SPM) {
            spm_fragment(&w, text + f->off, f->len, t->add_space_prefix && prev_special);
        } else {
            hearth_status st = hearth_pretokenize(t->pretok, text + f->off, f->len, bpe_word, &w);
            if (st == HEARTH_ERR_NOMEM) w.oom = true;
        }
        prev_special = false;
    }
    free(frags.v);
    free(w.buf);
    free(w.sym);
    free(w.q.v);
    if (w.oom)
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory while tokenizing %zu bytes", len);
    return HEARTH_OK;
}

/* ================================================================ pieces and detokenization */

/* The piece of id as a view (empty for control/unknown tokens unless special). */
static const char *piece_view(const hearth_tokenizer *t, int32_t id, bool special, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab) return "";
    if (!special && (t->attr[id] & (ATTR_UNKNOWN | ATTR_CONTROL))) return "";
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

size_t hearth_tokenizer_piece(const hearth_tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    size_t n;
    const char *p = piece_view(t, id, special, &n);
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

/* llama.cpp's clean_up_tokenization_spaces, in place; returns the new length. */
static size_t clean_spaces(char *s, size_t n) {
    if (n == 0) return 0;
    size_t m = 1; /* " ?", " !", " .", " ," lose the space */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) m--;
        s[m++] = x;
    }
    n = m;
    m = 1; /* " ' " -> "'" */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (x == '\'' && i + 1 < n && s[i - 1] == ' ' && s[i + 1] == ' ') {
            m--;
            s[++i] = '\0';
        }
        s[m++] = x;
    }
    n = m;
    m = 1; /* " 's", " 'm", " 're", " 've" lose the space */
    for (size_t i = 1; i < n; i++) {
        char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') {
                m--;
            } else if (i + 2 < n && ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e'))) {
                m--;
            }
        }
        s[m++] = x;
    }
    return m;
}

size_t hearth_tokenizer_decode(const hearth_tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                               bool unparse_special, char *buf, size_t cap) {
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        piece_view(t, ids[i], unparse_special, &k);
        total += k;
    }
    char *s = malloc(total ? total : 1);
    if (!s) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = piece_view(t, ids[i], unparse_special, &k);
        if (remove_space && k && p[0] == ' ') {
            p++;
            k--;
        }
        remove_space = false;
        memcpy(s + m, p, k);
        m += k;
    }
    if (t->clean_spaces) m = clean_spaces(s, m);
    if (buf && cap) memcpy(buf, s, m < cap ? m : cap);
    free(s);
    return m;
}

/* ================================================================ streaming detokenizer */

void hearth_detok_init(hearth_detok *d, const hearth_tokenizer *t, bool special, bool strip_leading_space) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->special = special;
    d->strip_leading_space = strip_leading_space;
    d->first = true;
}

typedef struct sink {
    char *out;
    size_t cap, n;
} sink;

static void sink_put(sink *s, const void *p, size_t n) {
    if (n > s->cap - s->n) n = s->cap - s->n; /* out of room: the rest is dropped */
    memcpy(s->out + s->n, p, n);
    s->n += n;
}

static void sink_replacement(sink *s) {
    sink_put(s, "\xef\xbf\xbd", 3);
}

/* Push one byte through the UTF-8 assembler: complete characters go out,
 * a valid but incomplete prefix waits in d->pending, anything invalid goes
 * out as U+FFFD (one per maximal invalid subpart). */
static void detok_byte(hearth_detok *d, unsigned char c, sink *s) {
    for (;;) {
        if (d->n_pending == 0) {
            if (c < 0x80) {
                sink_put(s, &c, 1);
                return;
            }
            size_t need, ok = hearth_utf8_valid_prefix(&c, 1, &need);
            if (ok == 0) {
                sink_replacement(s);
                return;
            }
            d->pending[0] = (char)c;
            d->n_pending = 1;
            return;
        }
        unsigned char tmp[4];
        memcpy(tmp, d->pending, d->n_pending);
        tmp[d->n_pending] = c;
        size_t need, ok = hearth_utf8_valid_prefix(tmp, d->n_pending + 1, &need);
        if (ok == d->n_pending + 1) {
            if (ok == need) {
                sink_put(s, tmp, ok);
                d->n_pending = 0;
            } else {
                d->pending[d->n_pending++] = (char)c;
            }
            return;
        }
        /* c does not continue the pending character: that one is broken */
        sink_replacement(s);
        d->n_pending = 0;
        /* and c starts afresh */
    }
}

size_t hearth_detok_feed(hearth_detok *d, int32_t id, char *out, size_t cap) {
    sink s = {out, cap, 0};
    size_t n;
    const char *p = piece_view(d->tok, id, d->special, &n);
    if (d->first) {
        d->first = false;
        if (d->strip_leading_space && d->tok->add_space_prefix && n && p[0] == ' ') {
            p++;
            n--;
        }
    }
    for (size_t i = 0; i < n; i++)
        detok_byte(d, (unsigned char)p[i], &s);
    return s.n;
}

size_t hearth_detok_flush(hearth_detok *d, char *out, size_t cap) {
    sink s = {out, cap, 0};
    if (d->n_pending) sink_replacement(&s);
    d->n_pending = 0;
    return s.n;
}
