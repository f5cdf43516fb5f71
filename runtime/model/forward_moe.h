/*
 * forward_moe.h - the mixture-of-experts feed-forward block of the forward
 * pass (qwen3moe, Mixtral-style llama / mistral3 layers).
 *
 * Per ubatch of n tokens with normed input h [n, n_embd]:
 *   r       = h Wgate_inp                       router logits [n, n_expert]
 *   ids, w  = top-k of softmax(r), renormalised (moe_route)
 *   g, u    = experts' gate / up on their tokens (moe_matmul, grouped by expert)
 *   g       = silu(g) * u
 *   d       = experts' down on g                [n*k, n_embd]
 *   out     = sum_j w[t, j] d[t*k + j]          (moe_combine)
 *   out    += sigmoid(h . g_sh) * shared(h)     (qwen2moe: the shared expert, SwiGLU)
 * where w is renormalised over the k (hp->expert_norm) or the plain softmax
 * probabilities (qwen2moe), as llama.cpp does per architecture.
 * With the backend's moe_* ops (the CPU) every step is a backend op. A
 * backend without them (Vulkan, CUDA for now) runs the host-assisted path:
 * the router logits come to the host (one sync), routing and the grouping
 * by expert run there (the host CPU backend's moe_route), the inputs are
 * gathered in expert order on the device (get_rows_f32), each chosen
 * expert's gate/up/down run there as plain matmuls on its contiguous block
 * of rows (weights read once per ubatch), and the down outputs come back for
 * the weighted sum on the host (a second sync), which goes up again.
 * A layer whose experts stay in host memory (--n-cpu-moe,
 * hearth_layer.experts_on_host) takes the same path on any device, but h
 * comes down with the router logits' sync and the gather and the experts'
 * matmuls run on the host CPU backend; the router, the shared expert and the
 * rest of the layer stay on the device.
 *
 * Ownership: hearth_moe_bufs are activation buffers on one backend, sized
 * for max_tokens, owned by the forward context that allocates them.
 */
#ifndef HEARTH_FORWARD_MOE_H
#define HEARTH_FORWARD_MOE_H

#include "model.h"

typedef struct hearth_moe_bufs {
    hearth_tensor logits;   /* [max_tokens, n_expert] */
    hearth_tensor weights;  /* [max_tokens, k] */
    hearth_tensor gate, up; /* [max_tokens * k, n_ff_exp] */
    hearth_tensor down;     /* [max_tokens * k, n_embd] */
    void *ids;              /* [max_tokens * k] int32 */
    /* the host-assisted path (a backend without the moe ops): the inputs
     * gathered in expert order on the backend, and host memory for the
     * routing and the weighted sum */
    bool host_path;
    hearth_tensor xs;                     /* [max_tokens * k, n_embd] on the backend */
    float *h_logits, *h_weights, *h_down; /* [n, n_expert], [n, k], [n * k, n_embd] */
    float *h_out;                         /* [n, n_embd] */
    int32_t *h_ids, *order, *inv, *xrows; /* [n * k] each */
    int64_t *start;                       /* [n_expert + 2] */
    /* layers whose experts stay in host memory (--n-cpu-moe): the input,
     * gathered rows and gate/up on the host ([n, E], [n * k, E], [n * k,
     * n_ff_exp] x2); NULL when the model has none */
    float *h_x, *h_xs, *h_g, *h_u;
    /* qwen2moe's shared expert (n_ff_shexp > 0): its gate logit and weight
     * [n, 1], SwiGLU buffers [n, n_ff_shexp], output [n, n_embd]; host copies */
    hearth_tensor sh_logit, sh_w, sh_gate, sh_up, sh_out;
    float *h_sg, *h_shout; /* [n], [n, n_embd] */
} hearth_moe_bufs;

/* Allocate on `be` when the model has experts (else leaves *out zeroed);
 * cpu_experts: some layer run on `be` keeps its experts on be->host
 * (hearth_layer.experts_on_host), which then runs the host-assisted path
 * even where `be` has the moe ops. */
hearth_status hearth_moe_bufs_alloc(hearth_backend *be, const hearth_hparams *hp, int max_tokens,
                                    bool cpu_experts, hearth_moe_bufs *out, hearth_error *err);
void hearth_moe_bufs_free(hearth_backend *be, hearth_moe_bufs *b);

/* A tap on the expert matmuls' inputs (`hearth imatrix`): down = false, the
 * input of ffn_gate_exps/ffn_up_exps (a token's row once per expert it
 * chose); down = true, the input of ffn_down_exps. x [n_rows, ne0] in host
 * memory and expert [n_rows] are valid only during the call. */
typedef void (*hearth_moe_tap_fn)(void *user, int layer, bool down, const float *x, const int32_t *expert,
                                  int n_rows, int64_t ne0);
typedef struct hearth_moe_tap {
    hearth_moe_tap_fn fn;
    void *user;
    int layer;
} hearth_moe_tap;

/* out [n, n_embd] = the MoE FFN of layer L on h [n, n_embd], then the
 * residual add x += out (all rows views of the forward pass's buffers).
 * tap: NULL, or called twice per layer (copies to the host: slower).
 * Fails only on the host-assisted path or a tap's copy, with the backend's
 * error. */
hearth_status hearth_moe_ffn(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                             const hearth_tensor *h, int n, hearth_moe_bufs *bufs, hearth_tensor *out,
                             hearth_tensor *x, const hearth_moe_tap *tap, hearth_error *err);

/* What one token does not read: the (n_expert - n_used) / n_expert share
 * of every stacked expert tensor (blk.N.ffn_{gate,up,down}_exps.weight) of
 * the file, in parameters and bytes; 0 for a dense model. `hearth info`
 * and the loader subtract it from the totals to give the active counts. */
void hearth_moe_unused(const hearth_gguf *g, int n_expert, int n_used, uint64_t *params, uint64_t *bytes);

/* Does layer l of this file have experts (blk.l.ffn_gate_inp.weight)? */
bool hearth_moe_layer(const hearth_gguf *g, int l);

#endif
