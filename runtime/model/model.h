/*
 * model.h - a loaded model: architecture, hyperparameters, weights, tokenizer.
 *
 * Architectures are rows of a small table (arch_table in model.c): llama,
 * qwen2 (QKV bias), qwen3 (per-head Q/K RMS norm), gemma2 / gemma3 (flagged
 * `gemma`: GeGLU, post-norms, soft-caps, sliding-window layers) and phi3
 * (flagged `fused`: fused QKV and gate|up weights, seen as views of the
 * separate matrices), granite (flagged `scaled`: its multipliers) and olmo2
 * (flagged `post_only`: post-norms, whole-vector Q/K norms; standard ops, so
 * it runs on every backend), qwen3moe and the MoE layers of llama / mistral3
 * (Mixtral; forward_moe.c: through the optional moe_* ops, or on a device
 * backend without them the host-assisted path, which `plan` names) -- one
 * forward pass serves them all. The Gemma layers
 * and granite need optional ops (gelu_mul, scale_cap, attention_ext: the CPU
 * and Vulkan backends have them, CUDA not yet): on a device backend without
 * them these models are placed on its host CPU backend, and `plan` says so. phi3's views are pointer offsets
 * into the fused weight, which every backend resolves (device pointers allow arithmetic), so it offloads.
 * Encoders (bert, nomic-bert: embedding models, bidirectional attention, post-norm layers) are rows too,
 * flagged `encoder`; they have no decoder forward pass and run through runtime/model/embed.h on the CPU
 * backend only. Weights keep their GGUF types; on a host-visible backend they point straight into the
 * memory-mapped file, elsewhere they are uploaded once.
 *
 * Placement (partial offload): each layer runs on one backend. With a device
 * backend (CUDA, Vulkan) the first `gpu_layers` layers go to the device and
 * the rest to its host CPU backend (backend->host); a layer whose weight types
 * the device has no kernel for also stays on the host. The embeddings follow
 * layer 0 and the output head the last layer (each falls back to the host the
 * same way). With n_cpu_moe (--n-cpu-moe) the expert tensors of the first
 * n_cpu_moe device layers stay in host memory and their matmuls run on the
 * host (forward_moe.c), the rest of those layers on the device. `plan` says
 * in words where everything went.
 *
 * Ownership: the model owns the GGUF mapping, the tokenizer and any uploaded
 * weight memory; it borrows the backend (and its host), which must outlive it.
 * Thread-safety: immutable after load; share it freely between threads.
 */
#ifndef HEARTH_MODEL_H
#define HEARTH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "runtime/format/gguf.h"
#include "runtime/text/tokenizer.h"

typedef enum hearth_arch {
    HEARTH_ARCH_LLAMA,
    HEARTH_ARCH_QWEN2,
    HEARTH_ARCH_QWEN3,
    HEARTH_ARCH_BERT,       /* learned positions, token types, GELU FFN, biases */
    HEARTH_ARCH_NOMIC_BERT, /* rotary (NeoX), SwiGLU FFN, usually fused QKV */
    HEARTH_ARCH_GEMMA2,     /* GeGLU, sqrt(dim) embeddings, post-norms, soft-caps, SWA on even layers */
    HEARTH_ARCH_GEMMA3,     /* gemma2 + Q/K norms, 5 local : 1 global layers, local RoPE base */
    HEARTH_ARCH_PHI3,       /* fused attn_qkv and ffn_up (gate|up), LongRoPE factors */
    HEARTH_ARCH_GRANITE,    /* llama block with embedding / residual / attention / logit multipliers */
    HEARTH_ARCH_OLMO2,      /* no pre-norms: post-norms, Q/K RMS norms over all heads at once */
    HEARTH_ARCH_QWEN3MOE,   /* qwen3 attention, mixture-of-experts FFN (forward_moe.c) */
    HEARTH_ARCH_MISTRAL3,   /* Ministral 3 / Mistral 3 text: the llama block under its own name */
    HEARTH_ARCH_QWEN2MOE,   /* qwen2 attention, MoE (weights not renormalised) + a gated shared expert */
    HEARTH_ARCH_COUNT
} hearth_arch;

typedef struct hearth_arch_info {
    const char *name;      /* general.architecture */
    bool qkv_bias;         /* attn_{q,k,v}.bias present */
    bool qk_norm;          /* attn_{q,k}_norm.weight: RMS norm per head */
    hearth_rope_mode rope; /* pair layout */
    bool encoder;          /* embedding model: embed.h, not forward.h */
    bool rotary;           /* encoders: rope on Q/K (else learned position embeddings) */
    bool gemma;            /* Gemma 2/3 block: see forward.c (CPU ops gelu_mul, scale_cap, attention_ext) */
    bool fused;            /* phi3: attn_qkv [E -> Q+2KV] and ffn_up [E -> 2F] (gate rows first) */
    bool scaled;           /* granite: its multipliers (the CPU op scale_cap) */
    bool post_only;        /* olmo2: post-norms instead of pre-norms, Q/K norms [n_head*hd], [n_kv*hd] */
} hearth_arch_info;

/* {arch}.pooling_type, llama.cpp's numbering (llama_pooling_type). */
typedef enum hearth_pooling {
    HEARTH_POOLING_NONE = 0,
    HEARTH_POOLING_MEAN = 1,
    HEARTH_POOLING_CLS = 2,
    HEARTH_POOLING_LAST = 3,
    HEARTH_POOLING_RANK = 4, /* CLS row through the classification head: scores */
} hearth_pooling;

/* "none", "mean", "cls", "last", "rank" ("?" for others). */
const char *hearth_pooling_name(int pooling);

typedef struct hearth_hparams {
    int n_vocab;
    int n_ctx_train; /* context length the model was trained with */
    int n_embd;      /* model dim */
    int n_layer;
    int n_head;
    int n_head_kv; /* < n_head: grouped-query attention */
    int head_dim;  /* attention.key_length, else n_embd / n_head */
    int n_ff;      /* FFN hidden dim */
    float rms_eps;
    int n_rot; /* rope.dimension_count, else head_dim */
    float rope_freq_base;
    float rope_freq_scale; /* 1 / rope.scaling.factor for linear scaling */
    bool tied_output;      /* output.weight absent: logits use token_embd */
    /* encoders */
    float norm_eps; /* attention.layer_norm_epsilon */
    bool causal;    /* attention.causal (encoders: false) */
    int pooling;    /* hearth_pooling from pooling_type (absent: NONE) */
    int n_cls_out;  /* classifier.output_labels count, else 1 */
    /* gemma2 / gemma3 (llama.cpp's defaults when a key is absent) */
    float attn_softcap;  /* attn_logit_softcapping (gemma2: 50), 0 = none */
    float final_softcap; /* final_logit_softcapping (gemma2: 30), 0 = none */
    float attn_scale;    /* score scale: 1/sqrt(head_dim) unless the family sets it */
    /* multipliers, 0 = none: embeddings (gemma: sqrt(n_embd); granite:
     * embedding_scale), each block output before its residual add
     * (granite: residual_scale), logits divided by (granite: logit_scale) */
    float embd_scale, residual_scale, logit_scale;
    int n_swa;           /* attention.sliding_window (gemma2: 4096), 0 = none */
    int swa_pattern;     /* every swa_pattern-th layer is global (gemma2 2, gemma3 6) */
    float rope_freq_base_swa, rope_freq_scale_swa; /* RoPE of the sliding-window layers */
    /* phi3 LongRoPE: rope_factors_long / _short chosen by the context size */
    int n_ctx_orig;         /* rope.scaling.original_context_length, else n_ctx_train */
    float rope_attn_factor; /* rope.scaling.attn_factor, else 1; with YaRN times its mscale */
    /* YaRN (rope.scaling.type yarn): ext_factor 1 and the pair range of the
     * blend (backend.h hearth_rope_params); 0 = plain RoPE */
    float rope_ext_factor, rope_yarn_lo, rope_yarn_hi;
    /* Ministral 3 attention temperature (attention.temperature_scale): the
     * queries of position p scaled by 1 + s * log(1 + floor(p / n_ctx_orig)) */
    float attn_temp_scale;
    /* mixture of experts (qwen3moe; llama / mistral3 with expert_count, e.g.
     * Mixtral): 0 experts = a dense FFN. Routing is softmax over the router's
     * logits, the top n_expert_used kept and renormalised to sum 1 (what
     * llama.cpp does for these architectures). */
    int n_expert, n_expert_used;
    int n_ff_exp;     /* one expert's FFN width: expert_feed_forward_length (qwen3moe), else n_ff */
    bool expert_norm; /* renormalise the top-k weights (all but qwen2moe) */
    int n_ff_shexp;   /* qwen2moe: the shared expert's width (expert_shared_feed_forward_length, else n_ff) */
} hearth_hparams;

typedef struct hearth_layer {
    hearth_tensor attn_norm; /* [n_embd] f32 (olmo2: absent, like ffn_norm) */
    hearth_tensor wq, wk, wv,
        wo;                   /* [n_embd -> n_head*hd], [n_embd -> n_head_kv*hd] x2, [n_head*hd -> n_embd] */
    hearth_tensor bq, bk, bv; /* biases (qwen2), data NULL when absent */
    hearth_tensor q_norm,
        k_norm; /* [head_dim] (qwen3, gemma3) or the whole Q/K (olmo2), NULL data when absent */
    hearth_tensor ffn_norm;             /* [n_embd] */
    hearth_tensor w_gate, w_up, w_down; /* [n_embd -> n_ff] x2, [n_ff -> n_embd] */
    /* encoders (data NULL when absent): fused QKV [n_embd -> 3 n_embd] and
     * its bias (then wq/wk/wv are NULL), the output and FFN biases, and the
     * post-norms: LayerNorm (weight, bias) after the attention residual and
     * after the FFN residual. */
    hearth_tensor wqkv, bqkv, bo, b_up, b_down;
    hearth_tensor attn_out_norm, attn_out_norm_b, out_norm, out_norm_b;
    /* gemma, olmo2: RMS post-norms of the attention and FFN outputs (before
     * each residual add); swa: this layer attends through the sliding window */
    hearth_tensor attn_post_norm, ffn_post_norm;
    bool swa;
    /* MoE (data NULL for a dense layer): router [n_embd -> n_expert]; the
     * experts' gate/up [n_embd -> n_ff_exp] and down [n_ff_exp -> n_embd]
     * matrices stacked, expert e's rows at [e * rows, (e + 1) * rows) (the
     * GGUF's 3-D tensors seen as 2-D) */
    hearth_tensor ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps;
    /* --n-cpu-moe: the three stacked expert tensors stay in host memory (the
     * mapping) and their matmuls run on the device's host CPU backend, while
     * the rest of the layer (router and shared expert too) runs on the device */
    bool experts_on_host;
    /* qwen2moe's shared expert (data NULL when absent): its gate [n_embd -> 1]
     * (sigmoid(h . g) scales its output), and its SwiGLU matrices */
    hearth_tensor ffn_gate_inp_shexp, ffn_gate_shexp, ffn_up_shexp, ffn_down_shexp;
} hearth_layer;

typedef struct hearth_model_alloc {
    hearth_backend *be;
    void *ptr;
} hearth_model_alloc;

typedef struct hearth_model {
    hearth_gguf *gguf;
    hearth_backend *backend;   /* the backend asked for (the device, when offloading) */
    hearth_backend **layer_be; /* [n_layer] where each layer runs */
    hearth_backend *embd_be;   /* where token_embd lives (get_rows) */
    hearth_backend *out_be;    /* where output_norm / output live */
    int n_device_layers;       /* layers on `backend` (all when it is the CPU) */
    uint64_t device_bytes;     /* weight bytes placed on `backend` when it is a device */
    int n_cpu_moe_layers;      /* device layers whose experts stay on the host (--n-cpu-moe) */
    uint64_t cpu_moe_bytes;    /* their expert tensors' bytes, kept off the device */
    char plan[512];            /* "layers 0-21 on vulkan:0, 22-31 on cpu; ..." */
    hearth_arch arch;
    const hearth_arch_info *arch_info;
    hearth_hparams hp;
    hearth_tokenizer *tokenizer;
    char name[128]; /* general.name or the file's base name */
    char path[1024];
    hearth_tensor token_embd;  /* [n_vocab, n_embd] (host, for get_rows) */
    hearth_tensor output_norm; /* [n_embd] */
    hearth_tensor output;      /* [n_vocab, n_embd] (token_embd when tied) */
    const float *rope_freqs;   /* Llama-3 rope frequency factors (host), NULL when absent */
    /* phi3 LongRoPE factors (host, n_rot/2 each), NULL when absent */
    const float *rope_factors_long, *rope_factors_short;
    /* encoders (data NULL when absent): token-type rows [n_types, n_embd],
     * learned positions [n_ctx_train, n_embd] (bert), the embedding
     * LayerNorm, and the classification head cls [n_embd -> n_embd] (+ bias,
     * tanh) then cls.output [n_embd -> n_cls_out] (+ bias) for rank pooling. */
    hearth_tensor token_types, pos_embd, embd_norm, embd_norm_b;
    hearth_tensor cls, cls_b, cls_out, cls_out_b;
    hearth_layer *layers; /* [n_layer] */
    uint64_t n_params;
    uint64_t weight_bytes;
    /* what one token reads: all but the unused experts (= n_params /
     * weight_bytes for a dense model) */
    uint64_t n_params_active, active_bytes;
    hearth_model_alloc *owned; /* backend allocations to release */
    int n_owned;
    size_t cap_owned;     /* elements allocated in owned */
    char fingerprint[65]; /* hex digest identifying the weights (prefix cache key) */
} hearth_model;

#define HEARTH_GPU_LAYERS_ALL (-1)

typedef struct hearth_model_params {
    hearth_backend *backend; /* required */
    /* Layers [0, gpu_layers) on the device, the rest on backend->host;
     * HEARTH_GPU_LAYERS_ALL (or anything >= n_layer): all. Ignored when the
     * backend has no host (it is the CPU backend): everything runs there. */
    int gpu_layers;
    /* The expert tensors (ffn_{gate,up,down}_exps) of layers [0, n_cpu_moe)
     * that run on the device stay in host memory, their matmuls on the host
     * CPU backend (llama.cpp's --n-cpu-moe); >= n_layer: every layer's
     * (HEARTH_CPU_MOE_ALL); 0: none. Negative is refused. No effect on the
     * CPU backend, on dense layers, or on layers placed on the host. */
    int n_cpu_moe;
} hearth_model_params;

#define HEARTH_CPU_MOE_ALL (1 << 30)

/* Load `path`. Errors name the file and the problem: unsupported
 * architecture, missing tensor, wrong shape, type the backend cannot run. */
hearth_model *hearth_model_load(const char *path, const hearth_model_params *p, hearth_error *err);
void hearth_model_free(hearth_model *m);

const hearth_arch_info *hearth_arch_get(hearth_arch a);
/* Comma-separated list of supported architectures. */
const char *hearth_arch_supported_list(void);
/* Parse hyperparameters only (used by `hearth info` without loading weights). */
hearth_status hearth_hparams_read(const hearth_gguf *g, hearth_arch *arch, hearth_hparams *hp,
                                  hearth_error *err);

#endif
