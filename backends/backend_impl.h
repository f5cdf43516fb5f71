/*
 * backend_impl.h - the ops vtable a backend implements, and the struct it
 * fills: for backend authors (backends/cpu, backends/cuda, backends/vulkan)
 * and for the runtime code that enqueues ops (runtime/model/forward.c,
 * runtime/model/model.c, runtime/kv/kv_cache.c, ...), which call the ops
 * through b->ops directly. Everyone else uses backend.h alone.
 *
 * A backend is a vtable of ops plus an opaque context. The forward pass
 * enqueues ops in order; a backend may run them at once (CPU, on its thread
 * pool) or record/launch them asynchronously (CUDA stream, Vulkan command
 * buffer) -- results are only guaranteed visible on the host after
 * `synchronize`. Device errors surface from synchronize (ops do not fail: the
 * runtime validates shapes before calling them).
 *
 * Memory: `alloc` hands out backend memory that tensors' `data` point into;
 * it belongs to the caller until `dealloc`. upload/download/copy are ordered
 * with the ops enqueued before them.
 */
#ifndef HEARTH_BACKEND_IMPL_H
#define HEARTH_BACKEND_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Options of attention_ext (below). */
typedef struct hearth_attn_opts {
    int window;    /* > 0: sliding window of this many positions (the token's own included) */
    float softcap; /* > 0: attention logit soft-capping (Gemma 2) */
} hearth_attn_opts;

typedef struct hearth_backend_ops {
    void (*destroy)(hearth_backend *b);
    void (*info)(hearth_backend *b, hearth_backend_info *out);
    bool (*supports_type)(hearth_backend *b, hearth_dtype weight_type);

    /* Memory. alloc returns NULL and sets err on failure. */
    void *(*alloc)(hearth_backend *b, size_t bytes, hearth_error *err);
    void (*dealloc)(hearth_backend *b, void *ptr);
    void (*upload)(hearth_backend *b, void *dst, const void *host_src, size_t bytes);
    void (*download)(hearth_backend *b, void *host_dst, const void *src, size_t bytes);
    /* Device-to-device copy (KV page copy-on-write). */
    void (*copy)(hearth_backend *b, void *dst, const void *src, size_t bytes);

    /* Ops. Activations are F32 rows of `n_tokens`; weights any supported type. */
    /* out[i] = dequant(w row ids[i]) */
    void (*get_rows)(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n,
                     hearth_tensor *out);
    /* out = x / rms(x) * w, per row of x (w has x.ne0 elements); out may alias x */
    void (*rms_norm)(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps,
                     hearth_tensor *out);
    /* out[t, r] = sum_k w[r, k] * x[t, k] (+ bias[r] when bias != NULL) */
    void (*matmul)(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x,
                   const hearth_tensor *bias, hearth_tensor *out);
    /* Optional (NULL: the runtime calls matmul n times). out[i] = w[i] x
     * (+ bias[i] when bias[i] != NULL) for i < n <= 4, all w[i] of one type
     * and row length: several projections of one input (Q/K/V, gate/up) in
     * one dispatch, the input converted once. Same results as n matmuls. */
    void (*matmul_multi)(hearth_backend *b, int n, const hearth_tensor *const *w, const hearth_tensor *x,
                         const hearth_tensor *const *bias, hearth_tensor *const *out);
    /* out = a + b (same shape); out may alias a */
    void (*add)(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c, hearth_tensor *out);
    /* In place on x viewed as [n_tokens, n_heads, head_dim]; pos[n_tokens] */
    void (*rope)(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos,
                 const hearth_rope_params *p);
    /* pool row slots[i] = src row i (converted to pool->type) */
    void (*kv_store)(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src, const int32_t *slots);
    /* Paged attention, GQA: q [n_tokens, n_heads*head_dim] -> out same shape.
     * Token t attends to the first meta->kv_len[t] keys of its page table
     * (meta->page_table + pt_offset[t]), nothing else: causal when kv_len[t]
     * is t's position + 1 (the decoders), bidirectional when every token of
     * a sequence has the sequence's length (the encoders' mode: the embedder
     * packs sequences, each token's table starting at its sequence). */
    void (*attention)(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                      const hearth_tensor *v_pool, const hearth_attn_meta *meta, int n_heads, int n_kv_heads,
                      int head_dim, float scale, hearth_tensor *out);
    /* out = silu(gate) * up */
    void (*silu_mul)(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                     hearth_tensor *out);
    /* Optional, for encoder models (bert, nomic-bert; CPU, Vulkan, CUDA);
     * NULL: the backend cannot run them and the loader refuses it. Profiled as RMS_NORM.
     * out = (x - mean) / sqrt(var + eps) * w + bias per row (w and bias
     * x.ne0 floats, bias NULL for none); out may alias x. */
    void (*layer_norm)(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w,
                       const hearth_tensor *bias, float eps, hearth_tensor *out);
    /* Optional, as layer_norm; profiled as SILU_MUL. out = gelu(x) in the
     * tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ggml's
     * GELU; out may alias x. */
    void (*gelu)(hearth_backend *b, const hearth_tensor *x, hearth_tensor *out);
    /* Optional, for Gemma 2/3 and Granite (NULL: those models run on the
     * host CPU backend). CPU and Vulkan have them. Profiled as SILU_MUL /
     * ADD / ATTENTION.
     * gelu_mul: out = gelu(gate) * up, GELU in the tanh form above (GeGLU);
     * out may alias gate. */
    void (*gelu_mul)(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                     hearth_tensor *out);
    /* out = s * x when cap <= 0, else out = cap * tanh(s * x / cap) (logit
     * soft-capping); out may alias x. */
    void (*scale_cap)(hearth_backend *b, const hearth_tensor *x, float s, float cap, hearth_tensor *out);
    /* `attention` with options: a sliding window (a token at position p sees
     * keys p-window+1 .. p only, llama.cpp's LLAMA_SWA_TYPE_STANDARD) and
     * score soft-capping (s = cap * tanh(s / cap), s the scaled score, before
     * the softmax); o->window <= 0 and o->softcap <= 0 give `attention`. */
    void (*attention_ext)(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                          const hearth_tensor *v_pool, const hearth_attn_meta *meta, int n_heads,
                          int n_kv_heads, int head_dim, float scale, const hearth_attn_opts *o,
                          hearth_tensor *out);
    /* Copy rows: out[i] = x[rows[i]] (gathers the rows that need logits). */
    void (*get_rows_f32)(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n,
                         hearth_tensor *out);
    /* Optional (NULL: the runtime downloads the logits and picks on the host).
     * ids[r] = the index of the largest value of F32 row r of x, the first
     * one on ties, NaNs never chosen; ids is backend memory of x->ne1 int32.
     * Lets greedy decoding fetch 4 bytes per sequence instead of a vocabulary
     * of logits. */
    void (*argmax)(hearth_backend *b, const hearth_tensor *x, void *ids);

    /* Optional, for mixture-of-experts layers (NULL: runtime/model/
     * forward_moe.c routes and sums on the host and runs the experts through
     * matmul; the CPU has them, backends/cpu/cpu_moe.c). moe_matmul's inner
     * matmuls are profiled as MATMUL. A ubatch of n tokens routes each token
     * to k experts: slot t*k + j is token t's j-th choice.
     * moe_route: per row t of logits [n, n_expert]: p = softmax(row); ids[t*k
     * + j] = the j-th largest p (the lower index first on ties), weights row t
     * ([n, k], ne0 = k) = those p, divided by their sum when `norm`. ids is
     * backend memory of n*k int32. */
    void (*moe_route)(hearth_backend *b, const hearth_tensor *logits, int k, bool norm, void *ids,
                      hearth_tensor *weights);
    /* out[i] row s = W_i[ids[s]] x_s for each of the n_w <= 2 weights (one
     * input, e.g. the experts' gate and up), where W_i [ne0, n_expert * R]
     * stacks the experts' [ne0 -> R] matrices (R = out[i]->ne0) and x_s is x
     * row s when x has out[i]->ne1 = n*k rows, else x row s / k. Each expert
     * used reads its weights once for all its slots (tokens grouped by
     * expert). Same numbers as matmul per slot. */
    void (*moe_matmul)(hearth_backend *b, int n_w, const hearth_tensor *const *w, const hearth_tensor *x,
                       const void *ids, int k, hearth_tensor *const *out);
    /* out row t = sum_j weights[t, j] * y row (t*k + j), j = 0..k-1 in order;
     * y [n*k, ne0], out [n, ne0]. */
    void (*moe_combine)(hearth_backend *b, const hearth_tensor *y, const hearth_tensor *weights, int k,
                        hearth_tensor *out);

    /* Wait for everything enqueued; report device errors. */
    hearth_status (*synchronize)(hearth_backend *b, hearth_error *err);
} hearth_backend_ops;

/* What a backend's create function returns: ops and ctx filled, profile
 * counters zeroed; the registry sets `host` for a device backend. */
struct hearth_backend {
    const hearth_backend_ops *ops;
    void *ctx;
    /* Per-op timing for `--profile` (accumulated by backends that can). */
    bool profile;
    double op_time_us[16];
    uint64_t op_count[16];
    /* The CPU backend a device backend hands work it does not take: layers
     * beyond the offload count, weight types it has no kernel for. Created
     * and freed by the registry with the device; NULL on the CPU backend. */
    hearth_backend *host;
};

#endif
