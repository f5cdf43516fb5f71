/*
 * embed.h - embeddings and rerank scores from encoder models (bert,
 * nomic-bert): the runtime API `hearth embed` and the serve routes call.
 *
 * One call takes several inputs of different lengths (token ids, from
 * hearth_embed_tokenize or the caller) and packs as many as fit into one
 * forward pass: every input is a sequence of its own, with bidirectional
 * attention inside it and none across; no KV cache. Then, per input:
 * pooling (mean, CLS, last token, or rank = the CLS row through the model's
 * classification head), Matryoshka truncation to `dimensions`, and L2
 * normalisation (of the truncated vector, so it is re-normalised). Rank
 * scores are never normalised.
 *
 * Encoders run wholly on one backend: the CPU, or a device backend with the
 * encoder ops (layer_norm, gelu: Vulkan, CUDA); hearth_model_load refuses a
 * backend without them, and a partial offload, with the reason. Numerics
 * match llama.cpp's llama-embedding on the same file
 * (tests/data/embed/README.md says how that is checked).
 *
 * Decoder embedders (llama, qwen2, qwen3: e.g. Qwen3-Embedding, or any
 * generative model when the caller allows it) take the same calls: their
 * causal pass runs over a KV cache the embedder owns, inputs stream through
 * passes of max_tokens tokens (an input may span passes), and the pooled
 * vector is the mean / last / first of the final-norm hidden states, as
 * llama.cpp pools them. Their pooling comes from {arch}.pooling_type when
 * the file has it, else it must be asked for (a generative model has none);
 * rank pooling is refused. They run on any backend the model loaded on.
 *
 * Ownership: the embedder borrows the model (which must outlive it) and owns
 * its activation buffers, sized for max_tokens. Thread-safety: hearth_embed
 * may be called from several threads on one embedder. One pass runs at a
 * time; calls that arrive while one runs are queued, and the next batch takes
 * every queued call with the same pooling, dimensions and normalisation, so
 * concurrent requests share forward passes (each call still gets exactly its
 * own vectors; a batch's results do not depend on what else it held).
 */
#ifndef HEARTH_EMBED_H
#define HEARTH_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Whether the model is an embedding model by itself: an encoder, or a
 * decoder whose file names a pooling (Qwen3-Embedding). A generative model
 * can still embed when the caller asks for a pooling (the server's
 * --embeddings); for /api/show's `embedding` capability. */
bool hearth_model_is_embedding(const hearth_model *m);

/* pooling value meaning "the model's {arch}.pooling_type" */
#define HEARTH_EMBED_POOLING_MODEL (-1)

typedef struct hearth_embed_params {
    int pooling;    /* HEARTH_EMBED_POOLING_MODEL or a hearth_pooling other than NONE */
    bool normalize; /* L2-normalise each vector (default true); rank scores never */
    int dimensions; /* 0: all; else keep the first N components (Matryoshka), then normalise */
    bool truncate;  /* an input longer than hearth_embedder_n_ctx is cut to it (a final
                     * [SEP] is kept as the last token); false: HEARTH_ERR_CONTEXT */
} hearth_embed_params;

/* pooling = model's, normalize = true, dimensions = 0, truncate = false */
hearth_embed_params hearth_embed_params_default(void);

typedef struct hearth_embedder hearth_embedder;

/* An embedder for a model. max_tokens: tokens one forward pass takes
 * (several inputs share it); 0 = for encoders the model's context length,
 * at least 512 and at most 8192; for decoders 512. */
hearth_embedder *hearth_embedder_create(hearth_model *m, int max_tokens, hearth_error *err);
void hearth_embedder_free(hearth_embedder *e);

/* The longest input (in tokens, [CLS] and [SEP] included) one vector takes:
 * encoders min(the model's context length, max_tokens); decoders the
 * context length, at most 8192. */
int hearth_embedder_n_ctx(const hearth_embedder *e);

/* The pooling these params resolve to (hearth_pooling), after the model's
 * default; NONE is refused by hearth_embed. */
int hearth_embed_pooling(const hearth_embedder *e, const hearth_embed_params *p);

/* Floats per output vector for these params: n_embd, `dimensions` when set,
 * or the classifier's output count for rank pooling. Negative status (with a
 * message saying what to do) when the params cannot be served: dimensions
 * out of 1..n_embd, pooling none, rank without a classification head,
 * dimensions with rank pooling. */
int hearth_embed_dim(const hearth_embedder *e, const hearth_embed_params *p, hearth_error *err);

/* Tokenize text for embedding as llama.cpp does: [CLS] text [SEP] for
 * WordPiece vocabularies; otherwise BOS when the vocabulary adds it and EOS
 * when tokenizer.ggml.add_eos_token says so (Qwen3-Embedding's last-token
 * pooling reads that EOS). Special token text is parsed. Appends to out. */
hearth_status hearth_embed_tokenize(const hearth_model *m, const char *text, size_t len, hearth_tokens *out,
                                    hearth_error *err);

/* A (query, document) pair for a reranker (rank pooling), as llama.cpp
 * builds it: [CLS] query [SEP] document [SEP] for WordPiece vocabularies
 * (query, then EOS/SEP when the vocabulary adds them, then document
 * otherwise). Appends to out. */
hearth_status hearth_rerank_tokenize(const hearth_model *m, const char *query, size_t query_len,
                                     const char *doc, size_t doc_len, hearth_tokens *out, hearth_error *err);

/* Embed n_inputs inputs: input i is tokens[i][0 .. n_tokens[i]-1] (at least
 * one token, ids inside the vocabulary). out receives n_inputs vectors of
 * hearth_embed_dim floats, in input order. n_used (may be NULL) receives each
 * input's token count after truncation. Errors leave out undefined:
 * HEARTH_ERR_INVALID (bad params or ids), HEARTH_ERR_CONTEXT (an input
 * longer than hearth_embedder_n_ctx and truncate not set: the message names
 * the input and both lengths). */
hearth_status hearth_embed(hearth_embedder *e, const int32_t *const *tokens, const int *n_tokens,
                           int n_inputs, const hearth_embed_params *p, float *out, int *n_used,
                           hearth_error *err);

/* Forward-pass statistics of the batch that served the last hearth_embed
 * call (for benchmarks and the CLI; racy while other threads embed): passes
 * run and tokens computed, its own inputs and any it shared passes with. */
void hearth_embed_last_stats(const hearth_embedder *e, int *n_passes, int *n_tokens);

/* Calls served and batches run since creation: calls > batches means
 * concurrent calls shared passes. */
void hearth_embed_counters(const hearth_embedder *e, uint64_t *n_calls, uint64_t *n_batches);

#endif
