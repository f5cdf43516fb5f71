/*
 * forward.h - one transformer forward pass over a ubatch.
 *
 * A ubatch holds tokens from one or several sequences, each with its position
 * and sequence id, and a flag saying which tokens need logits. The same code
 * runs one decode token or a 2,000-token prompt, one sequence or sixteen.
 * K/V are written into the paged KV cache; attention reads them back through
 * the sequences' page tables.
 *
 * Ownership: the context owns its activation buffers (backend memory, sized
 * for max_tokens) and borrows the model and the KV cache.
 * Preconditions checked by hearth_forward: positions of a sequence within the
 * ubatch are consecutive and start at most at the sequence's current length
 * (tokens past a gap would attend to garbage); seq ids are live KV sequences.
 */
#ifndef HEARTH_FORWARD_H
#define HEARTH_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "forward_moe.h"
#include "model.h"
#include "runtime/kv/kv_cache.h"

typedef struct hearth_ubatch {
    int n_tokens;
    const int32_t *tokens; /* [n_tokens] */
    const int32_t *pos;    /* [n_tokens] position in its sequence */
    const int32_t *seq;    /* [n_tokens] KV sequence id */
    const bool *logits;    /* [n_tokens] want logits; NULL = only the last token */
} hearth_ubatch;

typedef struct hearth_forward hearth_forward;

/* At most this many tokens of one ubatch may ask for logits. */
#define HEARTH_FORWARD_MAX_LOGITS 64

hearth_forward *hearth_forward_create(hearth_model *m, hearth_kv_cache *kv, int max_tokens,
                                      hearth_error *err);
void hearth_forward_free(hearth_forward *f);
int hearth_forward_max_tokens(const hearth_forward *f);

/* Run the pass. logits_out receives n_vocab floats per token that wants
 * logits, in ubatch order (host memory, caller-sized). Returns the number of
 * logit rows written, or a negative status. On HEARTH_ERR_CONTEXT (KV cache
 * full) nothing was written to the cache. */
int hearth_forward_run(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, hearth_error *err);

/* The same pass for greedy decoding: ids_out receives, per token that wants
 * logits, the id of its largest logit (hearth_argmax's choice), computed on
 * the device when the backend can (only the ids cross to the host), else on
 * the host. logits_out may be NULL; when given it receives the logits too. */
int hearth_forward_run_argmax(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, int32_t *ids_out,
                              hearth_error *err);

/* The same pass for embeddings from a decoder: hidden_out receives, per
 * token that wants logits, its final hidden state after the output norm
 * (n_embd floats, what llama.cpp pools), in ubatch order; no logits are
 * computed. Returns the number of rows written, or a negative status. */
int hearth_forward_run_hidden(hearth_forward *f, const hearth_ubatch *ub, float *hidden_out,
                              hearth_error *err);

/* A tap on the inputs of the layers' matmuls (`hearth imatrix`, AWQ
 * calibration). After each pass step the tap gets the input rows of one
 * group of projections, in host memory, valid only during the call:
 *   ATTN_IN  the input of attn_q/attn_k/attn_v (attn_qkv): [n, n_embd]
 *   ATTN_OUT the input of attn_output: [n, n_head * head_dim]
 *   FFN_IN   the input of ffn_gate/ffn_up: [n, n_embd]
 *   FFN_DOWN the input of ffn_down: [n, n_ff]
 * fn == NULL removes the tap. With a tap set, each pass copies these rows
 * to the host (slower); without one nothing changes. */
typedef enum hearth_tap_site {
    HEARTH_TAP_ATTN_IN,
    HEARTH_TAP_ATTN_OUT,
    HEARTH_TAP_FFN_IN,
    HEARTH_TAP_FFN_DOWN,
} hearth_tap_site;
typedef void (*hearth_forward_tap_fn)(void *user, hearth_tap_site site, int layer, const float *x, int n_rows,
                                      int64_t ne0);
void hearth_forward_set_tap(hearth_forward *f, hearth_forward_tap_fn fn, void *user);
/* The same for the expert matmuls of MoE layers (forward_moe.h's tap). */
void hearth_forward_set_moe_tap(hearth_forward *f, hearth_moe_tap_fn fn, void *user);

#endif
