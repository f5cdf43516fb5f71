/*
 * calib.h - run a model over calibration text with a tap on its matmul
 * inputs: the shared driver of `hearth imatrix` and `hearth quantize --awq`.
 *
 * Method (llama-imatrix's): tokenize the whole file with BOS, cut it into
 * floor(n / n_ctx) chunks (--chunks caps that), the first token of each
 * chunk replaced by BOS, each chunk run from an empty KV sequence in
 * ubatches of at most 512 tokens. The tap (runtime/model/forward.h) sees
 * every layer's matmul inputs of every ubatch.
 * Ownership: calib_tokens fills a caller-owned hearth_tokens; nothing else
 * outlives a call.
 */
#ifndef HEARTH_CALIB_H
#define HEARTH_CALIB_H

#include <stdbool.h>

#include "runtime/model/forward.h"
#include "runtime/text/tokenizer.h"

/* Read and tokenize `path`; *n_chunk = floor(tokens / n_ctx), capped at
 * max_chunks when > 0. Fails (err says what to do) when the text has fewer
 * tokens than one context. */
bool calib_tokens(const hearth_model *m, const char *path, int n_ctx, int max_chunks, hearth_tokens *out,
                  int *n_chunk, hearth_error *err);

/* Perplexity alongside (llama-imatrix's): per chunk the tokens of its
 * second half are scored, as `hearth perplexity` does. */
typedef struct calib_ppl {
    double nll, nll2;  /* sums of -log p and its square */
    long count;        /* scored tokens */
    double *chunk_ppl; /* [n_chunk] exp(mean nll) over chunks 1..k, caller-sized */
    bool print;        /* "[k]ppl," per chunk on stdout */
} calib_ppl;

/* -log softmax(logits)[tok], as llama.cpp computes it (float max, double sum). */
double calib_nll(const float *logits, int n_vocab, int32_t tok);

/* Run the n_chunk chunks with the tap set. The tap sees the rows of the
 * ubatches of at most 512 tokens the chunk is cut into, except those of a
 * ubatch under min_rows tokens (llama-imatrix skips those: 16); with ppl,
 * an ubatch is run in smaller pieces where logits are needed, and the tap
 * still decides by the whole ubatch's size. moe_fn (may be NULL) gets the
 * expert matmuls' inputs of every ubatch (llama-imatrix collects those at
 * any size), with the same user. progress: a "\r" status line
 * on stderr with `label`. Returns false with err on a forward failure. */
bool calib_run(hearth_model *m, hearth_backend *be, const hearth_tokens *toks, int n_ctx, int n_chunk,
               hearth_forward_tap_fn fn, hearth_moe_tap_fn moe_fn, void *user, int min_rows, calib_ppl *ppl,
               bool progress, const char *label, hearth_error *err);

#endif
