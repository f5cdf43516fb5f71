/*
 * tokenizer_load.c - hearth_tokenizer_from_gguf: a tokenizer built from the
 * tokenizer.* metadata of a GGUF file, matching llama.cpp's llama_vocab::load.
 *
 * Ownership: tokenizer engineer. Everything the tokenizer keeps is copied out
 * of the file (texts, scores, types, merges), so the file may be closed
 * afterwards; hearth_tokenizer_free releases it all.
 *
 * Loading is a fixed sequence of steps, each filling one part of the struct
 * (see the invariants in tokenizer_impl.h): the vocabulary kind and arrays,
 * token texts / scores / attributes, the text index, BPE merges, the
 * pre-tokenizer and its flags, special-token ids (with llama.cpp's promotions
 * by text), the longest-first special list, the piece cache, llama.cpp's
 * name-based strip attributes, and the byte tables. A failing step leaves an
 * error a user can act on and the partial tokenizer is freed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"
#include "unicode.h"

/* The metadata arrays a vocabulary is built from, checked for shape. */
typedef struct vocab_arrays {
    hearth_vocab_kind kind;
    int32_t n;
    const gguf_kv *toks, *scores, *types, *merges; /* scores, types, merges may be NULL */
} vocab_arrays;

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

static bool load_nomem(const char *path, hearth_error *err) {
    hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory while loading the vocabulary", path);
    return false;
}

static void load_note(hearth_tokenizer *t, const char *msg) {
    if (t->note.n) strbuf_adds(&t->note, "; ");
    strbuf_adds(&t->note, msg);
}

/* ================================================================ kind and arrays */

/* tokenizer.ggml.model -> kind; a clear refusal for the kinds not built in. */
static bool load_kind(const hearth_gguf *g, hearth_vocab_kind *kind, hearth_error *err) {
    const char *path = hearth_gguf_path(g);
    hearth_str model;
    if (!hearth_gguf_get_str(g, "tokenizer.ggml.model", &model)) {
        hearth_error_set(err, HEARTH_ERR_FORMAT,
                         "%s: no tokenizer.ggml.model key: the file carries no vocabulary", path);
        return false;
    }
    if (hearth_str_eq(model, "llama")) {
        *kind = HEARTH_VOCAB_SPM;
        return true;
    }
    if (hearth_str_eq(model, "gpt2")) {
        *kind = HEARTH_VOCAB_BPE;
        return true;
    }
    if (hearth_str_eq(model, "bert")) {
        *kind = HEARTH_VOCAB_WPM;
        return true;
    }
    char m[64];
    hearth_str_copy(model, m, sizeof m);
    const char *what = strcmp(m, "t5") == 0 ? " (Unigram)" : strcmp(m, "rwkv") == 0 ? " (RWKV)" : "";
    hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                     "%s: tokenizer.ggml.model '%s'%s is not supported; this build supports 'llama' "
                     "(SentencePiece BPE), 'gpt2' (byte-level BPE) and 'bert' (WordPiece)",
                     path, m, what);
    return false;
}

/* A numeric array of at least n entries (or absent). */
static bool numeric_array_ok(const gguf_kv *kv, int32_t n) {
    return !kv || (kv->type == GGUF_ARRAY && kv->arr_type != GGUF_STRING && kv->arr_type != GGUF_ARRAY &&
                   kv->arr_n >= (uint64_t)n);
}

/* The kind and the tokens / scores / token_type / merges arrays, with the
 * lengths and element types checked. */
static bool load_arrays(const hearth_gguf *g, vocab_arrays *a, hearth_error *err) {
    const char *path = hearth_gguf_path(g);
    memset(a, 0, sizeof *a);
    if (!load_kind(g, &a->kind, err)) return false;
    a->toks = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!a->toks || a->toks->arr_n == 0 || a->toks->arr_n > INT32_MAX / 2) {
        hearth_error_set(err, HEARTH_ERR_FORMAT,
                         "%s: tokenizer.ggml.tokens is missing, empty or not a string array", path);
        return false;
    }
    a->n = (int32_t)a->toks->arr_n;
    a->scores = hearth_gguf_find(g, "tokenizer.ggml.scores");
    a->types = hearth_gguf_find(g, "tokenizer.ggml.token_type");
    if (!numeric_array_ok(a->scores, a->n)) {
        hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: tokenizer.ggml.scores must be a numeric array of at least %d entries (one per token)", path,
            a->n);
        return false;
    }
    if (!numeric_array_ok(a->types, a->n)) {
        hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: tokenizer.ggml.token_type must be an integer array of at least %d entries (one per token)",
            path, a->n);
        return false;
    }
    if (a->kind == HEARTH_VOCAB_BPE) {
        a->merges = hearth_gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING);
        if (!a->merges) {
            hearth_error_set(
                err, HEARTH_ERR_FORMAT,
                "%s: tokenizer.ggml.model is 'gpt2' but tokenizer.ggml.merges (string array) is missing",
                path);
            return false;
        }
    }
    return true;
}

/* ================================================================ texts, scores, attributes */

static uint16_t attr_of_type(int64_t ty) {
    switch (ty) {
    case HEARTH_TOKEN_NORMAL: return ATTR_NORMAL;
    case HEARTH_TOKEN_UNKNOWN: return ATTR_UNKNOWN;
    case HEARTH_TOKEN_CONTROL: return ATTR_CONTROL;
    case HEARTH_TOKEN_USER_DEFINED: return ATTR_USER_DEFINED;
    case HEARTH_TOKEN_UNUSED: return ATTR_UNUSED;
    case HEARTH_TOKEN_BYTE: return ATTR_BYTE;
    default: return 0; /* undefined */
    }
}

static bool load_texts(hearth_tokenizer *t, const vocab_arrays *a, const char *path, hearth_error *err) {
    const int32_t n = a->n;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += (a->toks->strs[i].len ? a->toks->strs[i].len : 24) + 1;
    if (total > UINT32_MAX) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: token texts too large (%zu bytes)", path, total);
        return false;
    }
    t->text = malloc(total);
    const size_t nv = (uint32_t)n; /* load_arrays checked 0 < n <= INT32_MAX / 2 */
    t->text_off = malloc((nv + 1) * sizeof *t->text_off);
    t->score = malloc(nv * sizeof *t->score);
    t->attr = malloc(nv * sizeof *t->attr);
    t->type = malloc(nv);
    if (!t->text || !t->text_off || !t->score || !t->attr || !t->type) return load_nomem(path, err);
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        t->text_off[i] = (uint32_t)off;
        hearth_str s = a->toks->strs[i];
        if (s.len == 0) {
            off += (size_t)snprintf(t->text + off, 24, "[EMPTY_%d]", (int)i) + 1;
        } else {
            memcpy(t->text + off, s.ptr, s.len);
            off += s.len;
            t->text[off++] = '\0';
        }
        t->score[i] = a->scores ? (float)gguf_kv_arr_f64(a->scores, (uint64_t)i) : 0.0f;
        int64_t ty = a->types ? gguf_kv_arr_i64(a->types, (uint64_t)i) : HEARTH_TOKEN_NORMAL;
        t->type[i] = ty >= 0 && ty <= 6 ? (uint8_t)ty : 0;
        t->attr[i] = attr_of_type(ty);
    }
    t->text_off[n] = (uint32_t)off;
    return true;
}

/* text -> id (last id wins, like token_to_id[word] = i). */
static bool load_text_index(hearth_tokenizer *t, const char *path, hearth_error *err) {
    t->tok_mask = pow2_at_least((size_t)t->n_vocab * 2) - 1;
    t->tok_slot = malloc((t->tok_mask + 1) * sizeof *t->tok_slot);
    if (!t->tok_slot) return load_nomem(path, err);
    memset(t->tok_slot, 0xff, (t->tok_mask + 1) * sizeof *t->tok_slot);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len;
        const char *s = tokenizer_text_of(t, i, &len);
        size_t k = tokenizer_hash_bytes(s, len, 0) & t->tok_mask;
        for (;; k = (k + 1) & t->tok_mask) {
            int32_t id = t->tok_slot[k];
            if (id >= 0) {
                size_t l2;
                const char *s2 = tokenizer_text_of(t, id, &l2);
                if (l2 != len || memcmp(s2, s, len) != 0) continue; /* another text: probe on */
            }
            t->tok_slot[k] = i; /* empty slot, or the same text: the later id wins */
            break;
        }
    }
    return true;
}

/* ================================================================ merges */

/* Store merge m (its bytes already at merge_text + m.off) unless the same
 * pair is there already: the first rank stays. */
static void merge_insert(hearth_tokenizer *t, merge_entry m) {
    size_t k = tokenizer_hash_bytes(t->merge_text + m.off, m.len, m.split) & t->merge_mask;
    for (;; k = (k + 1) & t->merge_mask) {
        int32_t j = t->merge_slot[k];
        if (j < 0) break;
        const merge_entry *o = &t->merge[j];
        if (o->len == m.len && o->split == m.split &&
            memcmp(t->merge_text + o->off, t->merge_text + m.off, m.len) == 0)
            return;
    }
    t->merge[t->n_merge] = m;
    t->merge_slot[k] = (int32_t)t->n_merge++;
}

/* Merges "first second", split at the first space after byte 0. */
static bool load_merges(hearth_tokenizer *t, const gguf_kv *merges, const char *path, hearth_error *err) {
    if (!merges) return true;
    size_t mtotal = 0;
    for (uint64_t i = 0; i < merges->arr_n; i++)
        mtotal += merges->strs[i].len;
    if (mtotal > UINT32_MAX || merges->arr_n > INT32_MAX) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: tokenizer.ggml.merges too large (%zu bytes)", path,
                         mtotal);
        return false;
    }
    t->merge_text = malloc(mtotal ? mtotal : 1);
    t->merge = malloc((merges->arr_n ? merges->arr_n : 1) * sizeof *t->merge);
    t->merge_mask = pow2_at_least((size_t)merges->arr_n * 2) - 1;
    t->merge_slot = malloc((t->merge_mask + 1) * sizeof *t->merge_slot);
    if (!t->merge_text || !t->merge || !t->merge_slot) return load_nomem(path, err);
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
        size_t before = t->n_merge;
        merge_insert(t, m);
        if (t->n_merge != before) moff += m.len; /* a duplicate's bytes are overwritten by the next */
    }
    return true;
}

/* ================================================================ pre-tokenizer and flags */

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

/* BPE: tokenizer.ggml.pre picks the pre-tokenizer and its flags; a missing
 * or unknown name falls back to the default one with a note. */
static void load_pre_name(hearth_tokenizer *t, const hearth_gguf *g) {
    hearth_str pre;
    if (!hearth_gguf_get_str(g, "tokenizer.ggml.pre", &pre)) {
        load_note(t, "tokenizer.ggml.pre is missing; using the default pre-tokenizer");
        return;
    }
    char p[64];
    hearth_str_copy(pre, p, sizeof p);
    snprintf(t->pre_name, sizeof t->pre_name, "%s", p);
    for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++) {
        if (strcmp(PRE_DEFS[i].name, p) == 0) {
            t->pretok = PRE_DEFS[i].kind;
            t->ignore_merges = PRE_DEFS[i].ignore_merges;
            t->add_bos = PRE_DEFS[i].add_bos;
            t->clean_spaces = PRE_DEFS[i].clean_spaces;
            return;
        }
    }
    char msg[200];
    snprintf(msg, sizeof msg,
             "tokenizer.ggml.pre '%.60s' is not known to this build; using the default pre-tokenizer "
             "(llama.cpp refuses such files)",
             p);
    load_note(t, msg);
}

/* The pre-tokenizer, then the add_bos / add_eos / add_space_prefix flags
 * (the kind's defaults, the pre-tokenizer's, then the file's keys). */
static void load_flags(hearth_tokenizer *t, const hearth_gguf *g) {
    t->pretok = HEARTH_PRETOK_DEFAULT;
    t->add_space_prefix = t->kind == HEARTH_VOCAB_SPM;
    t->add_bos = t->kind == HEARTH_VOCAB_SPM;
    t->clean_spaces = false;
    snprintf(t->pre_name, sizeof t->pre_name, "%s",
             t->kind == HEARTH_VOCAB_SPM   ? "spm"
             : t->kind == HEARTH_VOCAB_WPM ? "wpm"
                                           : "default");
    if (t->kind == HEARTH_VOCAB_WPM) {
        /* llama.cpp: [CLS] ... [SEP] by default; the decoder drops the space
         * the first word's "▁" stands for */
        t->add_bos = true;
        t->add_space_prefix = true;
        t->clean_spaces = true; /* " ," -> ",", " ' " -> "'" as llama.cpp */
        for (int32_t i = 0; i < t->n_vocab; i++) {
            size_t n;
            tokenizer_text_of(t, i, &n);
            if (n > t->max_token_len) t->max_token_len = n;
        }
    }
    if (t->kind == HEARTH_VOCAB_BPE) {
        t->clean_spaces = true;
        load_pre_name(t, g);
    }
    bool b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (hearth_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
}

/* ================================================================ special ids */

/* An id key: absent keeps *id, "none" (negative or 0xFFFFFFFF) gives -1. Out
 * of range fails when strict, else sets *bad and keeps *id (llama.cpp warns). */
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
        const char *s = tokenizer_text_of(t, id, &n);
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

/* bos/eos/eot/eom/unk (SPM defaults as llama.cpp: <unk> 0, <s> 1, </s> 2),
 * the optional FIM and padding ids, then the promotions by text. */
static bool load_special_ids(hearth_tokenizer *t, const hearth_gguf *g, hearth_error *err) {
    const int32_t n = t->n_vocab;
    t->bos = t->eos = t->eot = t->eom = t->unk = t->sep = -1;
    if (t->kind == HEARTH_VOCAB_SPM && n > 2) {
        t->unk = 0;
        t->bos = 1;
        t->eos = 2;
    }
    if (t->kind == HEARTH_VOCAB_WPM && n > 103) { /* llama.cpp's BERT defaults */
        t->unk = 100;
        t->bos = 101;
        t->sep = 102;
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
        !key_id(g, "tokenizer.ggml.seperator_token_id", n, &t->sep, false, err, &bad) ||
        !key_id(g, "tokenizer.ggml.padding_token_id", n, &ignored, false, err, &bad))
        return false;
    if (bad)
        load_note(t,
                  "an optional special-token id (padding/separator/FIM) is outside the vocabulary; ignored");
    detect_special_by_text(t, &fim_pad, &fim_rep, &fim_sep);
    return true;
}

/* ================================================================ special list, pieces, fix-ups, bytes */

typedef struct special_key {
    uint32_t len;
    int32_t id;
} special_key;

static int cmp_special(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Control, user-defined and unknown tokens, longest text first (then by id). */
static bool load_special_list(hearth_tokenizer *t, const char *path, hearth_error *err) {
    const uint16_t is_special = ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN;
    size_t n_special = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n_special += (t->attr[i] & is_special) != 0;
    t->special = malloc((n_special ? n_special : 1) * sizeof *t->special);
    special_key *keys = malloc((n_special ? n_special : 1) * sizeof *keys);
    if (!t->special || !keys) {
        free(keys);
        return load_nomem(path, err);
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & is_special)
            keys[t->n_special++] = (special_key){t->text_off[i + 1] - t->text_off[i], i};
    qsort(keys, t->n_special, sizeof *keys, cmp_special);
    for (size_t i = 0; i < t->n_special; i++)
        t->special[i] = keys[i].id;
    free(keys);
    return true;
}

/* The piece cache (special = true), from the final attributes. */
static bool load_pieces(hearth_tokenizer *t, const char *path, hearth_error *err) {
    const int32_t n = t->n_vocab;
    size_t ptotal = 0;
    for (int32_t i = 0; i < n; i++)
        ptotal += t->text_off[i + 1] - t->text_off[i];
    t->piece = malloc(ptotal ? ptotal : 1);
    t->piece_off = malloc(((size_t)n + 1) * sizeof *t->piece_off);
    if (!t->piece || !t->piece_off) return load_nomem(path, err);
    size_t poff = 0;
    for (int32_t i = 0; i < n; i++) {
        t->piece_off[i] = (uint32_t)poff;
        poff += tokenizer_piece_compute(t, i, t->piece + poff); /* a piece is never longer than its text */
    }
    t->piece_off[n] = (uint32_t)poff;
    return true;
}

static bool contains(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

/* llama.cpp's per-model strip attributes (they are not in GGUF files). */
static void load_name_fixups(hearth_tokenizer *t, const hearth_gguf *g) {
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

/* SPM byte fallback tokens and the BPE byte -> GPT-2 alphabet table. */
static void load_byte_tables(hearth_tokenizer *t) {
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
}

/* ================================================================ entry points */

hearth_tokenizer *hearth_tokenizer_from_gguf(const hearth_gguf *g, hearth_error *err) {
    const char *path = hearth_gguf_path(g);
    vocab_arrays a;
    if (!load_arrays(g, &a, err)) return NULL;
    hearth_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        load_nomem(path, err);
        return NULL;
    }
    t->kind = a.kind;
    t->n_vocab = a.n;
    bool ok =
        load_texts(t, &a, path, err) && load_text_index(t, path, err) && load_merges(t, a.merges, path, err);
    if (ok) {
        load_flags(t, g);
        ok = load_special_ids(t, g, err) && load_special_list(t, path, err) && load_pieces(t, path, err);
    }
    if (ok && t->note.oom) ok = load_nomem(path, err);
    if (!ok) {
        hearth_tokenizer_free(t);
        return NULL;
    }
    load_name_fixups(t, g);
    load_byte_tables(t);
    return t;
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
    strbuf_free(&t->note);
    free(t);
}
