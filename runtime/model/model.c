/*
 * model.c - loading a GGUF model: architecture table, hyperparameters, weight
 * validation and placement, fingerprint.
 *
 * Every tensor the forward pass reads is checked here (present, right shape,
 * a type the backend runs) so the forward pass itself never validates.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "core/grow.h"
#include "core/hash.h"
#include "forward_moe.h"

/* ------------------------------------------------------------ architectures */

static const hearth_arch_info arch_table[HEARTH_ARCH_COUNT] = {
    [HEARTH_ARCH_LLAMA] = {"llama", false, false, HEARTH_ROPE_NORM, false, false},
    [HEARTH_ARCH_QWEN2] = {"qwen2", true, false, HEARTH_ROPE_NEOX, false, false},
    [HEARTH_ARCH_QWEN3] = {"qwen3", false, true, HEARTH_ROPE_NEOX, false, false},
    [HEARTH_ARCH_BERT] = {"bert", true, false, HEARTH_ROPE_NORM, true, false},
    [HEARTH_ARCH_NOMIC_BERT] = {"nomic-bert", false, false, HEARTH_ROPE_NEOX, true, true},
    [HEARTH_ARCH_GEMMA2] = {"gemma2", false, false, HEARTH_ROPE_NEOX, false, false, true, false},
    [HEARTH_ARCH_GEMMA3] = {"gemma3", false, true, HEARTH_ROPE_NEOX, false, false, true, false},
    [HEARTH_ARCH_PHI3] = {"phi3", false, false, HEARTH_ROPE_NEOX, false, false, false, true, false},
    [HEARTH_ARCH_GRANITE] = {"granite", false, false, HEARTH_ROPE_NORM, false, false, false, false, true,
                             false},
    [HEARTH_ARCH_OLMO2] = {"olmo2", false, true, HEARTH_ROPE_NEOX, false, false, false, false, false, true},
    [HEARTH_ARCH_QWEN3MOE] = {"qwen3moe", false, true, HEARTH_ROPE_NEOX, false, false},
    [HEARTH_ARCH_MISTRAL3] = {"mistral3", false, false, HEARTH_ROPE_NORM, false, false},
    [HEARTH_ARCH_QWEN2MOE] = {"qwen2moe", true, false, HEARTH_ROPE_NEOX, false, false},
};

const char *hearth_pooling_name(int pooling) {
    static const char *const names[] = {"none", "mean", "cls", "last", "rank"};
    return pooling >= 0 && pooling <= HEARTH_POOLING_RANK ? names[pooling] : "?";
}

const hearth_arch_info *hearth_arch_get(hearth_arch a) {
    return &arch_table[a];
}

const char *hearth_arch_supported_list(void) {
    return "llama (Llama 2/3, Mistral, Mixtral, TinyLlama, SmolLM), qwen2, qwen2moe, qwen3, qwen3moe, "
           "gemma2, gemma3 "
           "(text), phi3 (Phi-3, Phi-4), granite (Granite 3 dense), olmo2, mistral3 (Ministral 3 text); "
           "embedding models: bert, nomic-bert";
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ------------------------------------------------------------ hyperparameters */

static bool get_arch_u32(const hearth_gguf *g, const char *arch, const char *suffix, uint32_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return hearth_gguf_get_u32(g, key, out);
}
static bool get_arch_f32(const hearth_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return hearth_gguf_get_f32(g, key, out);
}

/* YaRN as llama.cpp sets it up (llama_context's yarn_* and the mistral3
 * loader): ext_factor 1, the blend range from beta_fast / beta_slow over
 * the original context, and the magnitude: mscale 1 + 0.1 ln(factor), or
 * with rope.scaling.yarn_log_multiplier m the ratio mscale(1) / mscale(m).
 * ggml multiplies its own 1 + 0.1 ln(factor) back in and llama.cpp divides
 * it out beforehand, so what is left is kept here in rope_attn_factor. */
static void read_yarn(const hearth_gguf *g, const char *arch, hearth_hparams *hp) {
    uint32_t v;
    if (get_arch_u32(g, arch, "rope.scaling.original_context_length", &v) && v > 0) hp->n_ctx_orig = (int)v;
    float beta_fast = 32.0f, beta_slow = 1.0f, log_mul = 0.0f, attn = 1.0f;
    get_arch_f32(g, arch, "rope.scaling.yarn_beta_fast", &beta_fast);
    get_arch_f32(g, arch, "rope.scaling.yarn_beta_slow", &beta_slow);
    get_arch_f32(g, arch, "rope.scaling.yarn_log_multiplier", &log_mul);
    get_arch_f32(g, arch, "rope.scaling.attn_factor", &attn);
    const float factor = 1.0f / hp->rope_freq_scale;
#define MSCALE(m) (factor <= 1.0f ? 1.0f : 0.1f * (m)*logf(factor) + 1.0f)
    hp->rope_attn_factor = attn * (log_mul != 0.0f ? MSCALE(1.0f) / MSCALE(log_mul) : MSCALE(1.0f));
#undef MSCALE
    hp->rope_ext_factor = 1.0f;
    hearth_rope_yarn_dims(hp->n_rot, hp->n_ctx_orig, hp->rope_freq_base, beta_fast, beta_slow,
                          &hp->rope_yarn_lo, &hp->rope_yarn_hi);
}

/* The family keys, with llama.cpp's defaults (llama_model_<arch>
 * load_arch_hparams): Granite's multipliers; Phi-3's LongRoPE original
 * context and attention factor (its sliding_window is ignored, as llama.cpp
 * does); OLMo 3's window (refused by the caller); Gemma's soft-caps, sliding
 * window, layer pattern and local RoPE, and its Q scaling (1/sqrt(n_embd /
 * n_head) for the 27B shapes, 46 or 62 layers, else 1/sqrt(head_dim)). */
static void read_family_hparams(const hearth_gguf *g, const char *arch, hearth_arch a, hearth_hparams *hp) {
    uint32_t v;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_freq_base_swa = hp->rope_freq_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    hp->n_ctx_orig = hp->n_ctx_train;
    hp->rope_attn_factor = 1.0f;
    if (a == HEARTH_ARCH_GRANITE) { /* llama_model_granite: each key optional but logit_scale */
        float f;
        if (get_arch_f32(g, arch, "attention.scale", &f) && f != 0) hp->attn_scale = f;
        get_arch_f32(g, arch, "embedding_scale", &hp->embd_scale);
        get_arch_f32(g, arch, "residual_scale", &hp->residual_scale);
        get_arch_f32(g, arch, "logit_scale", &hp->logit_scale);
        return;
    }
    if (a == HEARTH_ARCH_PHI3) {
        if (get_arch_u32(g, arch, "rope.scaling.original_context_length", &v) && v > 0)
            hp->n_ctx_orig = (int)v;
        get_arch_f32(g, arch, "rope.scaling.attn_factor", &hp->rope_attn_factor);
        return;
    }
    if (a == HEARTH_ARCH_OLMO2 && get_arch_u32(g, arch, "attention.sliding_window", &v) && v > 0)
        hp->n_swa = (int)v; /* OLMo 3's sliding window: refused at load (see hearth_hparams_read) */
    if (a != HEARTH_ARCH_GEMMA2 && a != HEARTH_ARCH_GEMMA3) return;
    const bool g2 = a == HEARTH_ARCH_GEMMA2;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    if ((g2 && hp->n_layer == 46) || (!g2 && hp->n_layer == 62))
        hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    hp->attn_softcap = g2 ? 50.0f : 0.0f;
    hp->final_softcap = g2 ? 30.0f : 0.0f;
    if (g2) get_arch_f32(g, arch, "attn_logit_softcapping", &hp->attn_softcap);
    get_arch_f32(g, arch, "final_logit_softcapping", &hp->final_softcap);
    hp->n_swa = g2 ? 4096 : 0;
    if (get_arch_u32(g, arch, "attention.sliding_window", &v)) hp->n_swa = (int)v;
    hp->swa_pattern = g2 ? 2 : 6;
    if (get_arch_u32(g, arch, "attention.sliding_window_pattern", &v)) hp->swa_pattern = (int)v;
    if (!g2) { /* gemma3: local layers keep the unscaled 10k base unless the file says */
        hp->rope_freq_base_swa = 10000.0f;
        hp->rope_freq_scale_swa = 1.0f;
    }
    get_arch_f32(g, arch, "rope.freq_base_swa", &hp->rope_freq_base_swa);
}

/* Experts (llama.cpp's keys): {arch}.expert_count / expert_used_count, for
 * qwen3moe (required there) and the llama-block architectures (Mixtral);
 * qwen3moe's expert width expert_feed_forward_length (else n_ff / used),
 * the others' n_ff. Other architectures' expert keys are refused: their MoE
 * variants (granitemoe, phimoe, ...) are architectures of their own. Both
 * route by softmax then top-k, renormalised, as llama.cpp hard-codes for
 * them; expert_weights_scale / _norm / gating_func are not read (llama.cpp
 * does not read them for these architectures either). mistral3's attention
 * temperature (Llama 4 style) is read here too: it scales the queries by
 * position, floor n_ctx_orig (what llama.cpp's mistral3 loader uses). */
static hearth_status read_moe_hparams(const hearth_gguf *g, const char *arch, hearth_arch a,
                                      hearth_hparams *hp, const char *file, hearth_error *err) {
    uint32_t v;
    float f;
    if (a == HEARTH_ARCH_MISTRAL3 && get_arch_f32(g, arch, "attention.temperature_scale", &f) && f != 0) {
        if (hp->n_ctx_orig <= 0)
            return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                    "%s: %s.attention.temperature_scale needs an original context length",
                                    file, arch);
        hp->attn_temp_scale = f;
    }
    if (get_arch_u32(g, arch, "expert_count", &v)) hp->n_expert = (int)v;
    if (get_arch_u32(g, arch, "expert_used_count", &v)) hp->n_expert_used = (int)v;
    const bool moe_arch = a == HEARTH_ARCH_QWEN3MOE || a == HEARTH_ARCH_LLAMA || a == HEARTH_ARCH_MISTRAL3 ||
                          a == HEARTH_ARCH_QWEN2MOE;
    if (hp->n_expert > 0 && !moe_arch)
        return hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "%s: %s with experts (%s.expert_count = %d) is not supported; mixture-of-experts "
            "models supported: qwen3moe, llama / mistral3 with experts (Mixtral)",
            file, arch, arch, hp->n_expert);
    if ((a == HEARTH_ARCH_QWEN3MOE || a == HEARTH_ARCH_QWEN2MOE) &&
        (hp->n_expert <= 0 || hp->n_expert_used <= 0))
        return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s needs %s.expert_count and expert_used_count",
                                file, arch, arch);
    if (hp->n_expert <= 0) {
        hp->n_expert = hp->n_expert_used = 0;
        return HEARTH_OK;
    }
    if (hp->n_expert > 1024 || hp->n_expert_used <= 0 || hp->n_expert_used > hp->n_expert ||
        hp->n_expert_used > 64)
        return hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: %s.expert_used_count = %d with expert_count = %d is out of range (1..min(64, "
            "experts), at most 1024 experts)",
            file, arch, hp->n_expert_used, hp->n_expert);
    hp->n_ff_exp = hp->n_ff;
    hp->expert_norm = a != HEARTH_ARCH_QWEN2MOE; /* llama.cpp: qwen2moe's weights are the plain softmax */
    if (a == HEARTH_ARCH_QWEN3MOE || a == HEARTH_ARCH_QWEN2MOE) {
        hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
        if (get_arch_u32(g, arch, "expert_feed_forward_length", &v) && v > 0) hp->n_ff_exp = (int)v;
    }
    if (a == HEARTH_ARCH_QWEN2MOE) {
        hp->n_ff_shexp = hp->n_ff;
        if (get_arch_u32(g, arch, "expert_shared_feed_forward_length", &v) && v > 0) hp->n_ff_shexp = (int)v;
    }
    return HEARTH_OK;
}

hearth_status hearth_hparams_read(const hearth_gguf *g, hearth_arch *arch_out, hearth_hparams *hp,
                                  hearth_error *err) {
    const char *file = base_name(hearth_gguf_path(g));
    hearth_str s;
    char arch[64];
    if (!hearth_gguf_get_str(g, "general.architecture", &s))
        return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                "%s: general.architecture is missing (not a model file?)", file);
    hearth_str_copy(s, arch, sizeof arch);
    int a = -1;
    for (int i = 0; i < HEARTH_ARCH_COUNT; i++)
        if (!strcmp(arch, arch_table[i].name)) a = i;
    if (a < 0)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "%s: architecture '%s' is not supported; supported: %s", file, arch,
                                hearth_arch_supported_list());
    *arch_out = (hearth_arch)a;
    memset(hp, 0, sizeof *hp);
    uint32_t v;
    struct {
        const char *key;
        int *dst;
        bool required;
    } ints[] = {
        {"embedding_length", &hp->n_embd, true},        {"block_count", &hp->n_layer, true},
        {"attention.head_count", &hp->n_head, true},    {"feed_forward_length", &hp->n_ff, true},
        {"context_length", &hp->n_ctx_train, false},    {"attention.head_count_kv", &hp->n_head_kv, false},
        {"attention.key_length", &hp->head_dim, false}, {"rope.dimension_count", &hp->n_rot, false},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (get_arch_u32(g, arch, ints[i].key, &v)) {
            if (v == 0 || v > (1u << 24))
                return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s.%s = %u is out of range", file, arch,
                                        ints[i].key, v);
            *ints[i].dst = (int)v;
        } else if (ints[i].required) {
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s.%s is missing", file, arch, ints[i].key);
        }
    }
    if (!hp->n_head_kv) hp->n_head_kv = hp->n_head;
    if (!hp->head_dim) hp->head_dim = hp->n_embd / hp->n_head;
    if (!hp->n_rot) hp->n_rot = hp->head_dim;
    if (!hp->n_ctx_train) hp->n_ctx_train = 2048;
    if (hp->n_head % hp->n_head_kv != 0)
        return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                "%s: head_count %d is not a multiple of head_count_kv %d", file, hp->n_head,
                                hp->n_head_kv);
    if (hp->head_dim > 1024)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "%s: head size %d is larger than this build supports (1024)", file,
                                hp->head_dim);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                "%s: rope.dimension_count %d does not fit head size %d", file, hp->n_rot,
                                hp->head_dim);
    hp->rms_eps = 1e-5f;
    get_arch_f32(g, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_freq_base = 10000.0f;
    get_arch_f32(g, arch, "rope.freq_base", &hp->rope_freq_base);
    hp->rope_freq_scale = 1.0f;
    float factor;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    hearth_str st;
    bool linear = hearth_gguf_get_str(g, key, &st) && hearth_str_eq(st, "linear");
    if ((linear || !hearth_gguf_find(g, key)) && get_arch_f32(g, arch, "rope.scaling.factor", &factor) &&
        factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    else if (get_arch_f32(g, arch, "rope.scale_linear", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    const bool longrope = a == HEARTH_ARCH_PHI3 && hearth_gguf_get_str(g, key, &st) &&
                          (hearth_str_eq(st, "longrope") || hearth_str_eq(st, "su"));
    const bool yarn = hearth_gguf_get_str(g, key, &st) && hearth_str_eq(st, "yarn");
    if (longrope) hp->rope_freq_scale = 1.0f; /* the factors tensors carry the scaling */
    if (yarn && get_arch_f32(g, arch, "rope.scaling.factor", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    if (!longrope && !yarn && hearth_gguf_get_str(g, key, &st) && !hearth_str_eq(st, "linear") &&
        !hearth_str_eq(st, "none")) {
        char t[32];
        return hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "%s: rope scaling type '%s' is not supported (linear, yarn, none; longrope on phi3)", file,
            hearth_str_copy(st, t, sizeof t));
    }
    read_family_hparams(g, arch, (hearth_arch)a, hp);
    if (yarn) read_yarn(g, arch, hp);
    if (read_moe_hparams(g, arch, (hearth_arch)a, hp, file, err)) return err ? err->code : HEARTH_ERR_FORMAT;
    if (a == HEARTH_ARCH_OLMO2 && hp->n_swa > 0)
        return hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "%s: olmo2 with a sliding window (%s.attention.sliding_window = %d, OLMo 3) is not "
            "supported yet",
            file, arch, hp->n_swa);
    const gguf_kv *toks = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    hp->n_vocab = toks ? (int)toks->arr_n : 0;
    hp->n_cls_out = 1;
    if (get_arch_u32(g, arch, "pooling_type", &v)) { /* encoders; decoder embedders (Qwen3-Embedding) too */
        if (v > HEARTH_POOLING_RANK)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                    "%s: %s.pooling_type = %u is not one of none/mean/cls/last/rank (0-4)", file,
                                    arch, v);
        hp->pooling = (int)v;
    }
    if (arch_table[a].encoder) {
        if (!get_arch_f32(g, arch, "attention.layer_norm_epsilon", &hp->norm_eps))
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s.attention.layer_norm_epsilon is missing",
                                    file, arch);
        snprintf(key, sizeof key, "%s.attention.causal", arch);
        hearth_gguf_get_bool(g, key, &hp->causal);
        if (hp->causal)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                    "%s: a causal %s encoder is not supported (attention.causal = true)",
                                    file, arch);
        snprintf(key, sizeof key, "%s.classifier.output_labels", arch);
        const gguf_kv *labels = hearth_gguf_get_arr(g, key, GGUF_STRING);
        if (labels && labels->arr_n > 0) hp->n_cls_out = (int)labels->arr_n;
    }
    return HEARTH_OK;
}

/* ------------------------------------------------------------ weights */

typedef struct loader {
    hearth_model *m;
    const char *file;
    hearth_error *err;
} loader;

static const char *backend_name(hearth_backend *b, char *buf, size_t cap) {
    hearth_backend_info bi;
    b->ops->info(b, &bi);
    snprintf(buf, cap, "%s", bi.name);
    return buf;
}

/* Find `name`, check its shape [ne0, ne1] and type, and place it on `b`.
 * Optional tensors that are absent leave out->data NULL and succeed. */
static hearth_status load_tensor(loader *L, hearth_backend *b, const char *name, int64_t ne0, int64_t ne1,
                                 bool optional, bool f32_only, hearth_tensor *out) {
    hearth_model *m = L->m;
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = hearth_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional) return HEARTH_OK;
        return hearth_error_set(L->err, HEARTH_ERR_FORMAT, "%s: tensor %s is missing", L->file, name);
    }
    int64_t t1 = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    if ((int64_t)t->ne[0] != ne0 || t1 != ne1)
        return hearth_error_set(
            L->err, HEARTH_ERR_FORMAT,
            "%s: tensor %s has shape [%llu, %lld], expected [%lld, %lld] from the hyperparameters", L->file,
            name, (unsigned long long)t->ne[0], (long long)t1, (long long)ne0, (long long)ne1);
    if (f32_only && t->type != HEARTH_F32)
        return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED,
                                "%s: tensor %s has type %s; this build expects f32 here", L->file, name,
                                hearth_dtype_name(t->type));
    if (!f32_only && !b->ops->supports_type(b, t->type)) {
        char bn[64];
        return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED,
                                "%s: tensor %s has type %s, which backend %s cannot run", L->file, name,
                                hearth_dtype_name(t->type), backend_name(b, bn, sizeof bn));
    }
    *out = hearth_tensor_2d(t->type, ne0, ne1, (void *)t->data);
    if (out != &m->output || strcmp(name, "token_embd.weight")) { /* a second copy counts once */
        m->n_params += (uint64_t)(ne0 * ne1);
        m->weight_bytes += t->nbytes;
    }
    hearth_backend_info bi;
    b->ops->info(b, &bi);
    if (!bi.host_visible) {
        void *mem = b->ops->alloc(b, t->nbytes, L->err);
        if (!mem) {
            hearth_error_prefix(L->err, "%s: uploading %s (try fewer --gpu-layers)", L->file, name);
            return L->err ? L->err->code : HEARTH_ERR_NOMEM;
        }
        b->ops->upload(b, mem, t->data, t->nbytes);
        if (!hearth_grow((void **)&m->owned, &m->cap_owned, (size_t)m->n_owned + 1, sizeof *m->owned)) {
            b->ops->dealloc(b, mem);
            return hearth_error_set(L->err, HEARTH_ERR_NOMEM, "%s: out of memory", L->file);
        }
        m->owned[m->n_owned++] = (hearth_model_alloc){b, mem};
        out->data = mem;
        if (b == m->backend) m->device_bytes += t->nbytes;
    }
    return HEARTH_OK;
}

/* Can `b` run tensor `name` (absent tensors are no obstacle)? */
static bool can_run(const hearth_model *m, hearth_backend *b, const char *name) {
    const gguf_tensor *t = hearth_gguf_find_tensor(m->gguf, name);
    return !t || b->ops->supports_type(b, t->type);
}

static const char *const layer_matrices[] = {"attn_q",       "attn_k",        "attn_v",      "attn_qkv",
                                             "attn_output",  "ffn_gate",      "ffn_up",      "ffn_down",
                                             "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};

/* The first weight type of layer l that `b` cannot run, or -1. */
static int layer_missing_type(const hearth_model *m, hearth_backend *b, int l) {
    for (size_t i = 0; i < sizeof layer_matrices / sizeof layer_matrices[0]; i++) {
        char n[96];
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, layer_matrices[i]);
        if (!can_run(m, b, n)) return (int)hearth_gguf_find_tensor(m->gguf, n)->type;
    }
    return -1;
}

/* Append "a-b on NAME" runs of layer placement to the plan. */
static void describe_plan(hearth_model *m, int missing_type) {
    char *p = m->plan;
    size_t cap = sizeof m->plan, len = 0;
    char bn[64];
#define ADD(...)                                                                                             \
    do {                                                                                                     \
        int w_ = snprintf(p + len, cap - len, __VA_ARGS__);                                                  \
        if (w_ > 0) len = (size_t)w_ < cap - len ? len + (size_t)w_ : cap - 1;                               \
    } while (0)
    ADD("layers ");
    for (int l = 0; l < m->hp.n_layer;) {
        int e = l;
        while (e + 1 < m->hp.n_layer && m->layer_be[e + 1] == m->layer_be[l])
            e++;
        if (l > 0) ADD(", ");
        if (e > l)
            ADD("%d-%d on %s", l, e, backend_name(m->layer_be[l], bn, sizeof bn));
        else
            ADD("%d on %s", l, backend_name(m->layer_be[l], bn, sizeof bn));
        l = e + 1;
    }
    ADD("; embeddings on %s", backend_name(m->embd_be, bn, sizeof bn));
    ADD(", output on %s", backend_name(m->out_be, bn, sizeof bn));
    if (missing_type >= 0)
        ADD(" (%s has no %s kernel: those tensors run on the cpu)", backend_name(m->backend, bn, sizeof bn),
            hearth_dtype_name((hearth_dtype)missing_type));
#undef ADD
}

/* With gpu_layers = all: how many leading layers fit in the device's memory,
 * leaving room for the KV cache and activations (a tenth of it, at least
 * 512 MiB). n when the device does not say how much memory it has. */
static bool is_expert_tensor(const char *name, size_t len) {
    return len > 12 && !memcmp(name + len - 12, "_exps.weight", 12);
}

static int layers_that_fit(const hearth_model *m, hearth_backend *dev, int n_cpu_moe, uint64_t *avail_out) {
    const int n = m->hp.n_layer;
    hearth_backend_info bi;
    dev->ops->info(dev, &bi);
    uint64_t avail = bi.mem_free ? bi.mem_free : bi.mem_total;
    *avail_out = avail;
    if (!avail) return n;
    uint64_t reserve = avail / 10 > (512ull << 20) ? avail / 10 : 512ull << 20;
    uint64_t budget = avail > reserve ? avail - reserve : 0, used = 0;
    const gguf_tensor *emb = hearth_gguf_find_tensor(m->gguf, "token_embd.weight");
    const gguf_tensor *out = hearth_gguf_find_tensor(m->gguf, "output.weight");
    used += (emb ? emb->nbytes : 0) + (out ? out->nbytes : emb ? emb->nbytes : 0);
    for (int l = 0; l < n; l++) {
        char prefix[32];
        int plen = snprintf(prefix, sizeof prefix, "blk.%d.", l);
        uint64_t bytes = 0;
        for (uint64_t i = 0; i < hearth_gguf_n_tensors(m->gguf); i++) {
            const gguf_tensor *t = hearth_gguf_tensor_at(m->gguf, i);
            if (t->name.len > (size_t)plen && !memcmp(t->name.ptr, prefix, (size_t)plen) &&
                !(l < n_cpu_moe && is_expert_tensor(t->name.ptr, t->name.len)))
                bytes += t->nbytes; /* experts kept on the host (--n-cpu-moe) take no device memory */
        }
        if (used + bytes > budget) return l;
        used += bytes;
    }
    return n;
}

/* Decide where every layer runs (see model.h). */
static void place_layers(hearth_model *m, int gpu_layers, int n_cpu_moe) {
    hearth_backend *dev = m->backend, *host = dev->host;
    const int n = m->hp.n_layer;
    int want = !host || gpu_layers < 0 || gpu_layers > n ? n : gpu_layers;
    const hearth_backend_ops *dop = dev->ops;
    const bool host_only =
        host && ((m->arch_info->gemma && !(dop->gelu_mul && dop->scale_cap && dop->attention_ext)) ||
                 (m->arch_info->scaled && !dop->scale_cap));
    if (host_only) want = 0; /* see model.h: these blocks run on the CPU backend for now */
    int fit = n;
    uint64_t avail = 0;
    if (host && (gpu_layers < 0 || gpu_layers > n)) {
        fit = layers_that_fit(m, dev, n_cpu_moe, &avail);
        if (fit < want) want = fit;
    }
    int missing = -1, moe_host = 0;
    m->n_device_layers = 0;
    for (int l = 0; l < n; l++) {
        hearth_backend *b = l < want ? dev : host;
        if (b == dev && host) {
            int t = layer_missing_type(m, dev, l);
            if (t >= 0) {
                b = host;
                missing = t;
            }
            if (!dop->moe_route && m->hp.n_expert > 0 && hearth_moe_layer(m->gguf, l) && l >= n_cpu_moe)
                moe_host++; /* see model.h */
        }
        m->layer_be[l] = b;
        if (b == dev) m->n_device_layers++;
    }
    m->embd_be = m->layer_be[0];
    if (host && !can_run(m, m->embd_be, "token_embd.weight")) {
        m->embd_be = host;
        missing = (int)hearth_gguf_find_tensor(m->gguf, "token_embd.weight")->type;
    }
    m->out_be = m->layer_be[n - 1];
    const char *out_name =
        hearth_gguf_find_tensor(m->gguf, "output.weight") ? "output.weight" : "token_embd.weight";
    if (host && !can_run(m, m->out_be, out_name)) {
        m->out_be = host;
        missing = (int)hearth_gguf_find_tensor(m->gguf, out_name)->type;
    }
    describe_plan(m, missing);
    if (host_only) {
        size_t len = strlen(m->plan);
        snprintf(m->plan + len, sizeof m->plan - len, " (%s runs on the cpu: this device backend lacks %s)",
                 m->arch_info->name,
                 m->arch_info->gemma ? "the gelu_mul, scale_cap and attention_ext ops" : "the scale_cap op");
    }
    if (moe_host) {
        size_t len = strlen(m->plan);
        snprintf(m->plan + len, sizeof m->plan - len,
                 " (%d mixture-of-experts layer%s: routing and the weighted sum on the host, the device "
                 "lacks the moe ops; the experts' matmuls run on the device)",
                 moe_host, moe_host == 1 ? "" : "s");
    }
    if (fit < n) {
        size_t len = strlen(m->plan);
        snprintf(m->plan + len, sizeof m->plan - len, " (%d of %d layers fit in the device's %.1f GiB)", fit,
                 n, (double)avail / (1024.0 * 1024.0 * 1024.0));
    }
}

/* An encoder (bert, nomic-bert) with llama.cpp's tensor names, all on one
 * backend: the CPU, or a device whose ops table has the encoder ops
 * (layer_norm, gelu); a backend without them is refused naming the missing
 * op, and so is a partial offload (gpu_layers below n_layer: the embedder
 * runs every op on one backend). Q/K/V come fused (attn_qkv) or separate,
 * for either architecture, as llama.cpp accepts. */
static hearth_status load_encoder(loader *L, int gpu_layers) {
    hearth_model *m = L->m;
    hearth_backend *b = m->backend;
    const hearth_hparams *hp = &m->hp;
    const hearth_arch_info *ai = m->arch_info;
    char bn[64];
    if (!b->ops->layer_norm || !b->ops->gelu)
        return hearth_error_set(
            L->err, HEARTH_ERR_UNSUPPORTED,
            "%s: this is an embedding model (%s); backend %s has no %s op, which encoders "
            "need: use --backend cpu",
            L->file, ai->name, backend_name(b, bn, sizeof bn), !b->ops->layer_norm ? "layer_norm" : "gelu");
    if (b->host && gpu_layers >= 0 && gpu_layers < hp->n_layer)
        return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED,
                                "%s: this is an embedding model (%s): encoders run wholly on one backend, "
                                "so --gpu-layers %d of %d is not supported; offload all layers or use "
                                "--backend cpu",
                                L->file, ai->name, gpu_layers, hp->n_layer);
    for (int l = 0; l < hp->n_layer; l++)
        m->layer_be[l] = b;
    m->embd_be = m->out_be = b;
    m->n_device_layers = hp->n_layer;
    describe_plan(m, -1);
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim,
                  KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff, V = hp->n_vocab;
    const gguf_tensor *tt = hearth_gguf_find_tensor(m->gguf, "token_types.weight");
    const int64_t n_types = tt ? (int64_t)tt->ne[1] : 1;
#define T(field, name, ne0, ne1, opt, f32)                                                                   \
    if (load_tensor(L, b, name, ne0, ne1, opt, f32, &(field)))                                               \
        return L->err ? L->err->code : HEARTH_ERR_FORMAT;
    T(m->token_embd, "token_embd.weight", E, V, false, false);
    T(m->token_types, "token_types.weight", E, n_types, true, false);
    T(m->pos_embd, "position_embd.weight", E, hp->n_ctx_train, ai->rotary, false);
    T(m->embd_norm, "token_embd_norm.weight", E, 1, false, true);
    T(m->embd_norm_b, "token_embd_norm.bias", E, 1, false, true);
    T(m->cls, "cls.weight", E, E, true, false);
    T(m->cls_b, "cls.bias", E, 1, true, true);
    T(m->cls_out, "cls.output.weight", E, hp->n_cls_out, true, false);
    T(m->cls_out_b, "cls.output.bias", hp->n_cls_out, 1, true, true);
    for (int l = 0; l < hp->n_layer; l++) {
        hearth_layer *ly = &m->layers[l];
        char n[96];
#define TL(field, suffix, ne0, ne1, opt, f32)                                                                \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                                           \
    T(ly->field, n, ne0, ne1, opt, f32)
        TL(wqkv, "attn_qkv.weight", E, Q + 2 * KV, true, false);
        if (ly->wqkv.data) {
            TL(bqkv, "attn_qkv.bias", Q + 2 * KV, 1, true, true);
        } else {
            TL(wq, "attn_q.weight", E, Q, false, false);
            TL(wk, "attn_k.weight", E, KV, false, false);
            TL(wv, "attn_v.weight", E, KV, false, false);
            TL(bq, "attn_q.bias", Q, 1, true, true);
            TL(bk, "attn_k.bias", KV, 1, true, true);
            TL(bv, "attn_v.bias", KV, 1, true, true);
        }
        TL(wo, "attn_output.weight", Q, E, false, false);
        TL(bo, "attn_output.bias", E, 1, true, true);
        TL(attn_out_norm, "attn_output_norm.weight", E, 1, false, true);
        TL(attn_out_norm_b, "attn_output_norm.bias", E, 1, false, true);
        TL(w_up, "ffn_up.weight", E, F, false, false);
        TL(b_up, "ffn_up.bias", F, 1, true, true);
        if (m->arch == HEARTH_ARCH_NOMIC_BERT) {
            TL(w_gate, "ffn_gate.weight", E, F, false, false);
        }
        TL(w_down, "ffn_down.weight", F, E, false, false);
        TL(b_down, "ffn_down.bias", E, 1, true, true);
        TL(out_norm, "layer_output_norm.weight", E, 1, false, true);
        TL(out_norm_b, "layer_output_norm.bias", E, 1, false, true);
#undef TL
    }
#undef T
    return HEARTH_OK;
}

/* Layer l's stacked expert tensors: on the layer's backend, or (--n-cpu-moe:
 * l < n_cpu_moe on the device) left in the host mapping for the host CPU
 * backend, their bytes counted as kept off the device. */
static hearth_status load_experts(loader *L, int l, int n_cpu_moe) {
    hearth_model *m = L->m;
    hearth_layer *ly = &m->layers[l];
    const int64_t E = m->hp.n_embd, NE = m->hp.n_expert, FE = m->hp.n_ff_exp;
    hearth_backend *b = m->layer_be[l];
    ly->experts_on_host = l < n_cpu_moe && b == m->backend && b->host;
    if (ly->experts_on_host) b = b->host;
    static const char *const names[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    hearth_tensor *dst[3] = {&ly->ffn_gate_exps, &ly->ffn_up_exps, &ly->ffn_down_exps};
    for (int i = 0; i < 3; i++) {
        char n[96];
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, names[i]);
        if (load_tensor(L, b, n, i < 2 ? E : FE, i < 2 ? FE * NE : E * NE, false, false, dst[i]))
            return L->err ? L->err->code : HEARTH_ERR_FORMAT;
        if (ly->experts_on_host) m->cpu_moe_bytes += hearth_gguf_find_tensor(m->gguf, n)->nbytes;
    }
    m->n_cpu_moe_layers += ly->experts_on_host;
    return HEARTH_OK;
}

/* The plan's note on --n-cpu-moe: which layers' experts stay on the host. */
static void describe_cpu_moe(hearth_model *m) {
    if (!m->n_cpu_moe_layers) return;
    int first = -1, last = -1;
    for (int l = 0; l < m->hp.n_layer; l++)
        if (m->layers[l].experts_on_host) {
            if (first < 0) first = l;
            last = l;
        }
    size_t len = strlen(m->plan);
    char range[32];
    if (last > first)
        snprintf(range, sizeof range, "%d-%d", first, last);
    else
        snprintf(range, sizeof range, "%d", first);
    snprintf(m->plan + len, sizeof m->plan - len,
             " (experts of %d layer%s (%s) on the cpu: %.1f MiB kept off the device)", m->n_cpu_moe_layers,
             m->n_cpu_moe_layers == 1 ? "" : "s", range, (double)m->cpu_moe_bytes / (1024.0 * 1024.0));
}

/* A MoE model: at least one layer has experts (qwen3moe: all), no layer has
 * the shared-expert or bias tensors Hearth would not read, and mistral3's
 * attention output bias is refused as well. Then the active counts: all but
 * the (n_expert - n_expert_used) unused experts' share of the expert tensors. */
static hearth_status check_moe_layers(loader *L) {
    hearth_model *m = L->m;
    const hearth_hparams *hp = &m->hp;
    m->n_params_active = m->n_params;
    m->active_bytes = m->weight_bytes;
    static const char *const unread[] = {"ffn_gate_shexp.weight", "ffn_up_shexp.weight",
                                         "ffn_down_shexp.weight", "ffn_gate_inp_shexp.weight",
                                         "exp_probs_b.bias",      "attn_output.bias"};
    for (int l = 0; l < hp->n_layer; l++)
        for (size_t i = hp->n_ff_shexp > 0 ? 4 : 0; i < sizeof unread / sizeof unread[0]; i++) {
            char n[96];
            snprintf(n, sizeof n, "blk.%d.%s", l, unread[i]);
            if (hearth_gguf_find_tensor(m->gguf, n))
                return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED,
                                        "%s: tensor %s (%s) is not supported yet", L->file, n,
                                        i < 4    ? "shared experts"
                                        : i == 4 ? "expert selection bias"
                                                 : "bias");
        }
    if (hp->n_expert <= 0) return HEARTH_OK;
    int n_moe = 0;
    for (int l = 0; l < hp->n_layer; l++)
        n_moe += m->layers[l].ffn_gate_inp.data != NULL;
    uint64_t up, ub;
    hearth_moe_unused(m->gguf, hp->n_expert, hp->n_expert_used, &up, &ub);
    m->n_params_active -= up;
    m->active_bytes -= ub;
    if (n_moe == 0)
        return hearth_error_set(L->err, HEARTH_ERR_FORMAT,
                                "%s: expert_count = %d but no layer has experts (blk.N.ffn_gate_inp.weight)",
                                L->file, hp->n_expert);
    return HEARTH_OK;
}

static void compute_fingerprint(hearth_model *m) {
    /* Identity of the weights without reading gigabytes: file size, every
     * tensor's name/type/shape/offset, and a sample of every tensor's bytes. */
    uint64_t h1 = hearth_hash64("hearth-model", 12, hearth_gguf_file_size(m->gguf));
    uint64_t h2 = h1 ^ 0x5bd1e995;
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(m->gguf); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(m->gguf, i);
        h1 = hearth_hash_mix(h1, hearth_hash64(t->name.ptr, t->name.len, 1));
        h1 = hearth_hash_mix(h1, (uint64_t)t->type ^ (t->ne[0] << 8) ^ (t->ne[1] << 32) ^ t->offset);
        size_t n = t->nbytes < 4096 ? t->nbytes : 4096;
        h2 = hearth_hash_mix(h2, hearth_hash64(t->data, n, i));
        if (t->nbytes > 8192)
            h2 = hearth_hash_mix(h2, hearth_hash64((const char *)t->data + t->nbytes - 4096, 4096, i));
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}

static bool bad_n_cpu_moe(int n, hearth_error *err) {
    hearth_error_set(err, HEARTH_ERR_INVALID,
                     "n_cpu_moe = %d: give how many leading layers keep their experts on the CPU (0 = none, "
                     "a number at or above the layer count = all)",
                     n);
    return true;
}

hearth_model *hearth_model_load(const char *path, const hearth_model_params *p, hearth_error *err) {
    hearth_model *m = calloc(1, sizeof *m);
    if (!m) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->backend = p->backend;
    snprintf(m->path, sizeof m->path, "%s", path);
    if (p->n_cpu_moe < 0 && bad_n_cpu_moe(p->n_cpu_moe, err)) goto fail;
    m->gguf = hearth_gguf_open(path, err);
    if (!m->gguf) goto fail;
    const char *file = base_name(path);
    if (hearth_gguf_n_tensors(m->gguf) == 0) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: the file has no tensors (a vocabulary-only file?)",
                         file);
        goto fail;
    }
    if (hearth_hparams_read(m->gguf, &m->arch, &m->hp, err)) goto fail;
    m->arch_info = &arch_table[m->arch];
    hearth_str s;
    if (hearth_gguf_get_str(m->gguf, "general.name", &s) && s.len)
        hearth_str_copy(s, m->name, sizeof m->name);
    else
        snprintf(m->name, sizeof m->name, "%s", file);

    m->tokenizer = hearth_tokenizer_from_gguf(m->gguf, err);
    if (!m->tokenizer) {
        hearth_error_prefix(err, "%s", file);
        goto fail;
    }
    hearth_hparams *hp = &m->hp;
    hp->n_vocab = hearth_tokenizer_n_vocab(m->tokenizer);

    loader L = {m, file, err};
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim,
                  KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t F = hp->n_ff, V = hp->n_vocab;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    m->layer_be = calloc((size_t)hp->n_layer, sizeof *m->layer_be);
    if (!m->layers || !m->layer_be) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (m->arch_info->encoder) {
        if (load_encoder(&L, p->gpu_layers)) goto fail;
        compute_fingerprint(m);
        hearth_gguf_prefetch(m->gguf);
        return m;
    }
    place_layers(m, p->gpu_layers, p->n_cpu_moe);
    if (load_tensor(&L, m->embd_be, "token_embd.weight", E, V, false, false, &m->token_embd)) goto fail;
    if (load_tensor(&L, m->out_be, "output_norm.weight", E, 1, false, true, &m->output_norm)) goto fail;
    if (load_tensor(&L, m->out_be, "output.weight", E, V, true, false, &m->output)) goto fail;
    if (!m->output.data) {
        hp->tied_output = true;
        m->output = m->token_embd;
        /* tied, but the head runs elsewhere: it needs its own copy there */
        if (m->out_be != m->embd_be &&
            load_tensor(&L, m->out_be, "token_embd.weight", E, V, false, false, &m->output))
            goto fail;
    }
    hearth_tensor rf;
    if (load_tensor(&L, m->backend->host ? m->backend->host : m->backend, "rope_freqs.weight", hp->n_rot / 2,
                    1, true, true, &rf))
        goto fail;
    m->rope_freqs = rf.data ? hearth_gguf_find_tensor(m->gguf, "rope_freqs.weight")->data : NULL;
    if (m->arch_info->fused) { /* phi3 LongRoPE: both or neither */
        hearth_backend *hb = m->backend->host ? m->backend->host : m->backend;
        hearth_tensor fl, fs;
        if (load_tensor(&L, hb, "rope_factors_long.weight", hp->n_rot / 2, 1, true, true, &fl) ||
            load_tensor(&L, hb, "rope_factors_short.weight", hp->n_rot / 2, 1, !fl.data, true, &fs))
            goto fail;
        m->rope_factors_long =
            fl.data ? hearth_gguf_find_tensor(m->gguf, "rope_factors_long.weight")->data : NULL;
        m->rope_factors_short =
            fs.data ? hearth_gguf_find_tensor(m->gguf, "rope_factors_short.weight")->data : NULL;
    }

    const hearth_arch_info *ai = m->arch_info;
    for (int l = 0; l < hp->n_layer; l++) {
        hearth_layer *ly = &m->layers[l];
        char n[96];
#define T(field, suffix, ne0, ne1, opt, f32)                                                                 \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                                           \
    if (load_tensor(&L, m->layer_be[l], n, ne0, ne1, opt, f32, &ly->field)) goto fail;
        T(attn_norm, "attn_norm.weight", E, 1, ai->post_only, true);
        if (ai->fused) {
            T(wqkv, "attn_qkv.weight", E, Q + 2 * KV, true, false);
        }
        if (ly->wqkv.data) { /* phi3: Q, K, V are row ranges of the fused matrix */
            ly->wq = hearth_tensor_rows(&ly->wqkv, 0, Q);
            ly->wk = hearth_tensor_rows(&ly->wqkv, Q, KV);
            ly->wv = hearth_tensor_rows(&ly->wqkv, Q + KV, KV);
        } else {
            T(wq, "attn_q.weight", E, Q, false, false);
            T(wk, "attn_k.weight", E, KV, false, false);
            T(wv, "attn_v.weight", E, KV, false, false);
        }
        T(wo, "attn_output.weight", Q, E, false, false);
        T(bq, "attn_q.bias", Q, 1, !ai->qkv_bias, true);
        T(bk, "attn_k.bias", KV, 1, !ai->qkv_bias, true);
        T(bv, "attn_v.bias", KV, 1, !ai->qkv_bias, true);
        T(q_norm, "attn_q_norm.weight", ai->post_only ? Q : hp->head_dim, 1, !ai->qk_norm, true);
        T(k_norm, "attn_k_norm.weight", ai->post_only ? KV : hp->head_dim, 1, !ai->qk_norm, true);
        T(ffn_norm, "ffn_norm.weight", E, 1, ai->post_only, true);
        if (ai->fused) { /* phi3: ffn_up holds gate rows [0, F) then up rows [F, 2F) */
            hearth_tensor gu;
            T(w_up, "ffn_up.weight", E, 2 * F, false, false);
            gu = ly->w_up;
            ly->w_gate = hearth_tensor_rows(&gu, 0, F);
            ly->w_up = hearth_tensor_rows(&gu, F, F);
        } else if (hp->n_expert > 0 && hearth_moe_layer(m->gguf, l)) { /* see model.h */
            const int64_t NE = hp->n_expert;
            T(ffn_gate_inp, "ffn_gate_inp.weight", E, NE, false, false);
            if (load_experts(&L, l, p->n_cpu_moe)) goto fail;
            if (hp->n_ff_shexp > 0) { /* qwen2moe's shared expert */
                const int64_t FS = hp->n_ff_shexp;
                T(ffn_gate_inp_shexp, "ffn_gate_inp_shexp.weight", E, 1, false, false);
                T(ffn_gate_shexp, "ffn_gate_shexp.weight", E, FS, false, false);
                T(ffn_up_shexp, "ffn_up_shexp.weight", E, FS, false, false);
                T(ffn_down_shexp, "ffn_down_shexp.weight", FS, E, false, false);
            }
        } else {
            T(w_gate, "ffn_gate.weight", E, F, false, false);
            T(w_up, "ffn_up.weight", E, F, false, false);
        }
        if (!ly->ffn_gate_inp.data) {
            T(w_down, "ffn_down.weight", F, E, false, false);
        }
        if (ai->gemma || ai->post_only) {
            T(attn_post_norm, "post_attention_norm.weight", E, 1, false, true);
            T(ffn_post_norm, "post_ffw_norm.weight", E, 1, false, true);
            ly->swa = hp->n_swa > 0 && (hp->swa_pattern <= 0 || l % hp->swa_pattern < hp->swa_pattern - 1);
        }
#undef T
    }
    if (check_moe_layers(&L)) goto fail;
    describe_cpu_moe(m);
    compute_fingerprint(m);
    /* weights read straight from the mapping: fault them in now, not during the first prompt */
    if (m->n_device_layers < hp->n_layer || m->n_cpu_moe_layers || !m->backend->host)
        hearth_gguf_prefetch(m->gguf);
    return m;
fail:
    hearth_model_free(m);
    return NULL;
}

void hearth_model_free(hearth_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++)
        m->owned[i].be->ops->dealloc(m->owned[i].be, m->owned[i].ptr);
    free(m->owned);
    free(m->layers);
    free(m->layer_be);
    hearth_tokenizer_free(m->tokenizer);
    hearth_gguf_close(m->gguf);
    free(m);
}
