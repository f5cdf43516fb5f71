/*
 * tokenizer.h - text <-> token ids from a GGUF vocabulary.
 *
 * Kinds: SentencePiece-style "llama" vocabularies (score-driven BPE with byte
 * fallback and a leading-space prefix) and byte-level BPE "gpt2" vocabularies
 * (merge ranks, GPT-2 byte-to-unicode mapping) with the pre-tokenizer named by
 * tokenizer.ggml.pre (default/gpt-2, llama3/llama-bpe, qwen2, deepseek-*,
 * falcon, starcoder, refact, mpt, ...). Behaviour matches llama.cpp.
 *
 * Ownership: the tokenizer copies what it needs out of the GGUF file; it does
 * not keep the hearth_gguf alive. Thread-safety: encode/decode on a shared
 * tokenizer are safe from many threads (no mutable state); a detokenizer
 * stream belongs to one thread.
 */
#ifndef HEARTH_TOKENIZER_H
#define HEARTH_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "runtime/format/gguf.h"

typedef struct hearth_tokenizer hearth_tokenizer;

/* SentencePiece BPE ("llama"), byte-level BPE ("gpt2"), WordPiece ("bert"). */
typedef enum hearth_vocab_kind { HEARTH_VOCAB_SPM, HEARTH_VOCAB_BPE, HEARTH_VOCAB_WPM } hearth_vocab_kind;

/* Token types as stored in tokenizer.ggml.token_type. */
enum {
    HEARTH_TOKEN_NORMAL = 1,
    HEARTH_TOKEN_UNKNOWN = 2,
    HEARTH_TOKEN_CONTROL = 3,
    HEARTH_TOKEN_USER_DEFINED = 4,
    HEARTH_TOKEN_UNUSED = 5,
    HEARTH_TOKEN_BYTE = 6,
};

/* A growable list of token ids. */
typedef struct hearth_tokens {
    int32_t *ids;
    size_t n, cap;
} hearth_tokens;

void hearth_tokens_free(hearth_tokens *t);
/* Append; returns false on allocation failure. */
bool hearth_tokens_push(hearth_tokens *t, int32_t id);

/* Build from tokenizer.* metadata. Fails with a clear message when the
 * vocabulary kind or pre-tokenizer is not supported or the metadata is
 * inconsistent (array lengths, ids out of range). */
hearth_tokenizer *hearth_tokenizer_from_gguf(const hearth_gguf *g, hearth_error *err);
void hearth_tokenizer_free(hearth_tokenizer *t);

hearth_vocab_kind hearth_tokenizer_kind(const hearth_tokenizer *t);
int32_t hearth_tokenizer_n_vocab(const hearth_tokenizer *t);
int32_t hearth_tokenizer_bos(const hearth_tokenizer *t); /* -1 if none */
int32_t hearth_tokenizer_eos(const hearth_tokenizer *t); /* -1 if none */
/* The separator ([SEP] of WordPiece vocabularies: encode with add_bos ends
 * the ids with it, after [CLS] = bos at the front); -1 if none. */
int32_t hearth_tokenizer_sep(const hearth_tokenizer *t);
/* Whether BOS is added by default (tokenizer.ggml.add_bos_token, else the
 * kind's default: true for SPM, false for BPE). */
bool hearth_tokenizer_add_bos_default(const hearth_tokenizer *t);
/* tokenizer.ggml.add_eos_token (default false): llama.cpp appends EOS to a
 * prompt tokenized with add_special (embedding models such as Qwen3-Embedding
 * set it); hearth_tokenizer_encode does not, its callers do. */
bool hearth_tokenizer_add_eos_default(const hearth_tokenizer *t);
/* End of generation: EOS, EOT (tokenizer.ggml.eot_token_id), EOM, or a
 * control token whose text is a known end marker (<|im_end|>, <|eot_id|>, ...). */
bool hearth_tokenizer_is_eog(const hearth_tokenizer *t, int32_t id);
int hearth_tokenizer_token_type(const hearth_tokenizer *t, int32_t id);
/* Look up a token by its exact text; -1 when absent. */
int32_t hearth_tokenizer_find(const hearth_tokenizer *t, const char *text, size_t len);

/* End-of-turn token (tokenizer.ggml.eot_token_id, else found by its text as
 * llama.cpp does: <|eot_id|>, <|im_end|>, ...); -1 if none. */
int32_t hearth_tokenizer_eot(const hearth_tokenizer *t);
/* tokenizer.ggml.pre as written in the file ("spm" for SPM vocabularies,
 * "default" when the key is absent). */
const char *hearth_tokenizer_pre_name(const hearth_tokenizer *t);
/* The pre-tokenizer actually applied ("spm", "default", "gpt2", "llama3",
 * "qwen2", ...): differs from the name for aliases and unknown names. */
const char *hearth_tokenizer_pretokenizer(const hearth_tokenizer *t);
/* A note about what loading had to assume (unknown pre-tokenizer name, an
 * ignored out-of-range optional id), or NULL. */
const char *hearth_tokenizer_note(const hearth_tokenizer *t);

/* Encode `text` (len bytes, UTF-8) appending ids to `out`. add_bos: prepend
 * BOS (when the vocabulary has one). parse_special: text spans equal to a
 * control or user-defined token's text become that token, as llama.cpp does
 * with parse_special=true. As in llama.cpp, user-defined tokens are split out
 * even when parse_special is false, and tokens that look like end markers
 * (<|im_end|>, <|eot_id|>, ...) count as control. For SPM every text fragment
 * (including one after a special token) gets the leading space when
 * add_space_prefix. Returns HEARTH_OK or an error (only NOMEM). */
hearth_status hearth_tokenizer_encode(const hearth_tokenizer *t, const char *text, size_t len, bool add_bos,
                                      bool parse_special, hearth_tokens *out, hearth_error *err);

/* The bytes a token stands for when detokenized: SPM "▁" becomes a space,
 * byte tokens <0xNN> become that byte, BPE text is mapped back from the
 * GPT-2 byte alphabet. Control tokens give their text only when `special`.
 * Writes at most cap bytes, returns the full length (like snprintf, but not
 * NUL-terminated). */
size_t hearth_tokenizer_piece(const hearth_tokenizer *t, int32_t id, bool special, char *buf, size_t cap);
/* The raw vocabulary text of a token (as stored in the file). */
const char *hearth_tokenizer_text(const hearth_tokenizer *t, int32_t id, size_t *len);

/* llama_detokenize: the concatenated pieces of ids (control tokens only when
 * unparse_special), with the SPM leading space of the first piece removed,
 * BOS/EOS dropped when remove_special and the vocabulary adds them, and
 * llama.cpp's clean_up_tokenization_spaces for vocabularies that use it.
 * Writes at most cap bytes, returns the full length (0 on allocation failure). */
size_t hearth_tokenizer_decode(const hearth_tokenizer *t, const int32_t *ids, size_t n, bool remove_special,
                               bool unparse_special, char *buf, size_t cap);

/* Streaming detokenizer: feed ids one at a time, get only complete UTF-8
 * characters out (a byte token that starts a multi-byte character is held
 * until the character completes). For SPM the leading space of the first
 * piece is removed when strip_leading_space is set (llama.cpp's detokenize). */
typedef struct hearth_detok {
    const hearth_tokenizer *tok;
    bool special;
    bool strip_leading_space;
    bool first;
    char pending[8];
    size_t n_pending;
} hearth_detok;

void hearth_detok_init(hearth_detok *d, const hearth_tokenizer *t, bool special, bool strip_leading_space);
/* Appends complete characters to out (cap bytes); returns bytes written.
 * out must hold at least 256 + 8 bytes. */
size_t hearth_detok_feed(hearth_detok *d, int32_t id, char *out, size_t cap);
/* Flush held bytes (invalid UTF-8 is replaced by U+FFFD). */
size_t hearth_detok_flush(hearth_detok *d, char *out, size_t cap);

#endif
