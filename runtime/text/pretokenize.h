/*
 * pretokenize.h - the regex splits byte-level BPE vocabularies apply before
 * merging (llama.cpp's unicode_regex_split for each tokenizer.ggml.pre),
 * written as hand-made scanners over code points instead of a regex engine.
 *
 * Ownership: tokenizer engineer. Internal to the runtime (the tokenizer's
 * parts in runtime/text and the tests); stateless, safe from any thread.
 *
 * Semantics (those of llama.cpp): the text is decoded to code points (a byte
 * that does not start a complete UTF-8 sequence becomes U+FFFD); the kind's
 * regexes are applied in order, each one to every piece the previous ones
 * produced, and both the matches and the text between matches become pieces.
 * Pieces never cross a previous piece's boundary (a lookahead such as
 * \s+(?!\S) sees the end of the piece as the end of the text). The pieces,
 * concatenated, are the (repaired) input.
 */
#ifndef HEARTH_PRETOKENIZE_H
#define HEARTH_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum hearth_pretok {
    /* [\p{P}$+<=>^~|]+ , then the GPT-2 regex, \p{N}+ , [0-9][0-9][0-9] */
    HEARTH_PRETOK_DEFAULT,
    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    HEARTH_PRETOK_GPT2,
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
     *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    HEARTH_PRETOK_LLAMA3,
    /* as LLAMA3 with \p{N} (one digit at a time) */
    HEARTH_PRETOK_QWEN2,
    /* as QWEN2 with [\p{L}\p{M}]+ for letters and marks kept out of the
     * "other" class */
    HEARTH_PRETOK_QWEN35,
    /* [\r\n] , \s?[cased letters]+ , \s?[!-/:-~...]+ , \s+$ , [CJK]+ , \p{N}+ */
    HEARTH_PRETOK_DEEPSEEK_LLM,
    /* [\r\n] , \s?\p{L}+ , \s?\p{P}+ , [CJK]+ , \p{N} */
    HEARTH_PRETOK_DEEPSEEK_CODER,
    /* [\p{P}$+<=>^~|`]+ , the GPT-2 regex , [0-9][0-9][0-9] */
    HEARTH_PRETOK_FALCON,
    /* \p{N} , the GPT-2 regex (starcoder, refact, command-r, smollm, ...) */
    HEARTH_PRETOK_STARCODER,
    /*  ?[^(\s|.,!?…。，、।۔،)]+ (poro-chat, bloom, gpt3-finnish) */
    HEARTH_PRETOK_PORO,
} hearth_pretok;

/* Receives one piece (UTF-8, len >= 1). Return false to stop early. */
typedef bool (*hearth_pretok_fn)(void *user, const char *piece, size_t len);

/* Split text[0..len) and hand each piece to fn in order. Returns HEARTH_OK,
 * HEARTH_ERR_NOMEM, or HEARTH_ERR_CANCELLED when fn returned false. */
hearth_status hearth_pretokenize(hearth_pretok kind, const char *text, size_t len, hearth_pretok_fn fn,
                                 void *user);

/* Short name of a kind ("default", "gpt2", "llama3", ...). */
const char *hearth_pretok_name(hearth_pretok kind);

#endif
