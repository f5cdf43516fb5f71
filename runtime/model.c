/*
 * model.c - loading a GGUF model: architecture table, hyperparameters, weight
 * validation and placement, fingerprint.
 *
 * Every tensor the forward pass reads is checked here (present, right shape,
 * a type the backend runs) so the forward pass itself never validates.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* ------------------------------------------------------------ architectures */

static const hearth_arch_info arch_table[HEARTH_ARCH_COUNT] = {
    [HEARTH_ARCH_LLAMA] = {"llama", false, false, HEARTH_ROPE_NORM},
    [HEARTH_ARCH_QWEN2] = {"qwen2", true, false, HEARTH_ROPE_NEOX},
    [HEARTH_ARCH_QWEN3] = {"qwen3", false, true, HEARTH_ROPE_NEOX},
};

const hearth_arch_info *hearth_arch_get(hearth_arch a) { return &arch_table[a]; }

const char *hearth_arch_supported_list(void) { return "llama (Llama 2/3, Mistral, TinyLlama, SmolLM), qwen2, qwen3"; }

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

hearth_status hearth_hparams_read(const hearth_gguf *g, hearth_arch *arch_out, hearth_hparams *hp, hearth_error *err) {
    const char *file = base_name(hearth_gguf_path(g));
    hearth_str s;
    char arch[64];
    if (!hearth_gguf_get_str(g, "general.architecture", &s))
        return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: general.architecture is missing (not a model file?)", file);
    hearth_str_copy(s, arch, sizeof arch);
    int a = -1;
    for (int i = 0; i < HEARTH_ARCH_COUNT; i++)
        if (!strcmp(arch, arch_table[i].name)) a = i;
    if (a < 0)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported; supported: %s",
                                file, arch, hearth_arch_supported_list());
    *arch_out = (hearth_arch)a;
    memset(hp, 0, sizeof *hp);
    uint32_t v;
    struct { const char *key; int *dst; bool required; } ints[] = {
        {"embedding_length", &hp->n_embd, true},       {"block_count", &hp->n_layer, true},
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
        return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: head_count %d is not a multiple of head_count_kv %d", file,
                                hp->n_head, hp->n_head_kv);
    if (hp->head_dim > 1024)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: head size %d is larger than this build supports (1024)",
                                file, hp->head_dim);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: rope.dimension_count %d does not fit head size %d", file,
                                hp->n_rot, hp->head_dim);
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
    if ((linear || !hearth_gguf_find(g, key)) && get_arch_f32(g, arch, "rope.scaling.factor", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    else if (get_arch_f32(g, arch, "rope.scale_linear", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    if (hearth_gguf_get_str(g, key, &st) && !hearth_str_eq(st, "linear") && !hearth_str_eq(st, "none")) {
        char t[32];
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "%s: rope scaling type '%s' is not supported (linear, none)",
                                file, hearth_str_copy(st, t, sizeof t));
    }
    const gguf_kv *toks = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    hp->n_vocab = toks ? (int)toks->arr_n : 0;
    return HEARTH_OK;
}

/* ------------------------------------------------------------ weights */

typedef struct loader {
    hearth_model *m;
    const char *file;
    hearth_error *err;
} loader;

/* Find `name`, check its shape [ne0, ne1] and type, and place it. Optional
 * tensors that are absent leave out->data NULL and succeed. */
static hearth_status load_tensor(loader *L, const char *name, int64_t ne0, int64_t ne1, bool optional, bool f32_only,
                                 hearth_tensor *out) {
    hearth_model *m = L->m;
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = hearth_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional) return HEARTH_OK;
        return hearth_error_set(L->err, HEARTH_ERR_FORMAT, "%s: tensor %s is missing", L->file, name);
    }
    int64_t t1 = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    if ((int64_t)t->ne[0] != ne0 || t1 != ne1)
        return hearth_error_set(L->err, HEARTH_ERR_FORMAT,
                                "%s: tensor %s has shape [%llu, %lld], expected [%lld, %lld] from the hyperparameters",
                                L->file, name, (unsigned long long)t->ne[0], (long long)t1, (long long)ne0,
                                (long long)ne1);
    if (f32_only && t->type != HEARTH_F32)
        return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED, "%s: tensor %s has type %s; this build expects f32 here",
                                L->file, name, hearth_dtype_name(t->type));
    hearth_backend *b = m->backend;
    if (!f32_only && !b->ops->supports_type(b, t->type))
        return hearth_error_set(L->err, HEARTH_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which backend %s cannot run",
                                L->file, name, hearth_dtype_name(t->type), "selected");
    *out = hearth_tensor_2d(t->type, ne0, ne1, (void *)t->data);
    m->n_params += (uint64_t)(ne0 * ne1);
    m->weight_bytes += t->nbytes;
    hearth_backend_info bi;
    b->ops->info(b, &bi);
    if (!bi.host_visible) {
        void *mem = b->ops->alloc(b, t->nbytes, L->err);
        if (!mem) {
            hearth_error_prefix(L->err, "%s: uploading %s", L->file, name);
            return L->err ? L->err->code : HEARTH_ERR_NOMEM;
        }
        b->ops->upload(b, mem, t->data, t->nbytes);
        void **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
        if (!owned) {
            b->ops->dealloc(b, mem);
            return hearth_error_set(L->err, HEARTH_ERR_NOMEM, "%s: out of memory", L->file);
        }
        m->owned = owned;
        m->owned[m->n_owned++] = mem;
        out->data = mem;
    }
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
        if (t->nbytes > 8192) h2 = hearth_hash_mix(h2, hearth_hash64((const char *)t->data + t->nbytes - 4096, 4096, i));
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

hearth_model *hearth_model_load(const char *path, const hearth_model_params *p, hearth_error *err) {
    hearth_model *m = calloc(1, sizeof *m);
    if (!m) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->backend = p->backend;
    snprintf(m->path, sizeof m->path, "%s", path);
    m->gguf = hearth_gguf_open(path, err);
    if (!m->gguf) goto fail;
    const char *file = base_name(path);
    if (hearth_gguf_n_tensors(m->gguf) == 0) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: the file has no tensors (a vocabulary-only file?)", file);
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
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t F = hp->n_ff, V = hp->n_vocab;
    if (load_tensor(&L, "token_embd.weight", E, V, false, false, &m->token_embd)) goto fail;
    if (load_tensor(&L, "output_norm.weight", E, 1, false, true, &m->output_norm)) goto fail;
    if (load_tensor(&L, "output.weight", E, V, true, false, &m->output)) goto fail;
    if (!m->output.data) {
        hp->tied_output = true;
        m->output = m->token_embd;
    }
    hearth_tensor rf;
    if (load_tensor(&L, "rope_freqs.weight", hp->n_rot / 2, 1, true, true, &rf)) goto fail;
    m->rope_freqs = rf.data ? hearth_gguf_find_tensor(m->gguf, "rope_freqs.weight")->data : NULL;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const hearth_arch_info *ai = m->arch_info;
    for (int l = 0; l < hp->n_layer; l++) {
        hearth_layer *ly = &m->layers[l];
        char n[96];
#define T(field, suffix, ne0, ne1, opt, f32)                                  \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                            \
    if (load_tensor(&L, n, ne0, ne1, opt, f32, &ly->field)) goto fail;
        T(attn_norm, "attn_norm.weight", E, 1, false, true);
        T(wq, "attn_q.weight", E, Q, false, false);
        T(wk, "attn_k.weight", E, KV, false, false);
        T(wv, "attn_v.weight", E, KV, false, false);
        T(wo, "attn_output.weight", Q, E, false, false);
        T(bq, "attn_q.bias", Q, 1, !ai->qkv_bias, true);
        T(bk, "attn_k.bias", KV, 1, !ai->qkv_bias, true);
        T(bv, "attn_v.bias", KV, 1, !ai->qkv_bias, true);
        T(q_norm, "attn_q_norm.weight", hp->head_dim, 1, !ai->qk_norm, true);
        T(k_norm, "attn_k_norm.weight", hp->head_dim, 1, !ai->qk_norm, true);
        T(ffn_norm, "ffn_norm.weight", E, 1, false, true);
        T(w_gate, "ffn_gate.weight", E, F, false, false);
        T(w_up, "ffn_up.weight", E, F, false, false);
        T(w_down, "ffn_down.weight", F, E, false, false);
#undef T
    }
    compute_fingerprint(m);
    return m;
fail:
    hearth_model_free(m);
    return NULL;
}

void hearth_model_free(hearth_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) m->backend->ops->dealloc(m->backend, m->owned[i]);
    free(m->owned);
    free(m->layers);
    hearth_tokenizer_free(m->tokenizer);
    hearth_gguf_close(m->gguf);
    free(m);
}
