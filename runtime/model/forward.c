/*
 * forward.c - the transformer forward pass (llama / qwen2 / qwen3).
 *
 * For each layer l, on every token of the ubatch at once:
 *
 *   h   = rms_norm(x) * attn_norm
 *   q,k,v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
 *   q,k = rms_norm per head (qwen3 only)
 *   q,k = rope(q, pos), rope(k, pos)
 *   KV[slot(seq, pos)] = k, v                     (paged KV cache)
 *   a   = softmax(q K^T / sqrt(d), causal) V      (paged attention, GQA)
 *   x   = x + a Wo
 *   h   = rms_norm(x) * ffn_norm
 *   x   = x + (silu(h Wgate) * (h Wup)) Wdown     (SwiGLU)
 *
 * then logits = rms_norm(x) * output_norm Wout, only for the tokens that ask.
 *
 * Gemma 2/3 (arch_info->gemma) change the block: x starts as the embeddings
 * times sqrt(n_embd); the attention and FFN outputs are RMS-normed (post-norms)
 * before their residual adds; the FFN is GeGLU (gelu(h Wgate) * h Wup);
 * scores use Q scaled by attn_scale, soft-capped (gemma2) and, on the
 * sliding-window layers, only the last n_swa keys, with those layers' own
 * RoPE base; the logits are soft-capped (cap * tanh(logit / cap)). Phi-3 runs
 * the llama block on views of its fused weights, with LongRoPE factors;
 * Granite the llama block with its multipliers (embeddings, the attention
 * score scale, each block's output before the residual add, 1 / logits);
 * OLMo 2 has no pre-norms (Q/K/V and the FFN read x itself), RMS-norms Q and
 * K over all heads at once, and post-norms both outputs as Gemma does.
 * A layer with experts (qwen3moe, Mixtral) replaces the FFN by the
 * mixture-of-experts block of forward_moe.c.
 * Every step is one backend op; nothing here touches device memory directly.
 *
 * Partial offload: each layer runs on its model-assigned backend, and every
 * backend in use has its own set of activation buffers. When consecutive
 * layers run on different backends the residual stream x (n rows) moves
 * through host memory; nothing else crosses, since the KV pools of a layer
 * live on the layer's backend.
 */
#include "forward.h"
#include "forward_moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "core/argmax.h"
#include "core/grow.h"

/* Activation buffers on one backend, F32, [max_tokens rows]. */
typedef struct act_set {
    hearth_backend *be;
    hearth_tensor x;    /* residual stream, [n, n_embd] */
    hearth_tensor h;    /* normed input, [n, n_embd] */
    hearth_tensor q;    /* [n, n_head * head_dim] */
    hearth_tensor k, v; /* [n, n_head_kv * head_dim] */
    hearth_tensor att;  /* attention output, [n, n_head * head_dim] */
    hearth_tensor gate; /* [n, n_ff] */
    hearth_tensor up;   /* [n, n_ff] */
    hearth_tensor proj; /* projection back to n_embd, [n, n_embd] */

    hearth_moe_bufs moe; /* MoE layers' buffers (forward_moe.h), zeroed for dense models */
} act_set;

enum { MAX_BACKENDS = 4 };

struct hearth_forward {
    hearth_model *m;
    hearth_kv_cache *kv;
    int max_tokens;
    int max_logits; /* rows of logits one pass can return */
    act_set sets[MAX_BACKENDS];
    int n_sets;
    hearth_backend *out_be;
    hearth_tensor logits; /* [max_logits, n_vocab] on out_be */
    float *xfer;          /* host staging for x between backends, [max_tokens, n_embd] */
    void *ids_dev;        /* [max_logits] int32 on out_be, for its argmax op */
    float *host_logits;   /* [max_logits, n_vocab], argmax without the op and without logits_out */
    /* host-side per-pass metadata */
    int32_t *slots, *kv_len, *pt_offset, *page_table, *out_rows;
    int *seq_ids, *seq_new_len;
    size_t page_table_cap;
    hearth_forward_tap_fn tap_fn; /* hearth_forward_set_tap */
    void *tap_user;
    float *tap_buf;
    size_t tap_cap;
    hearth_moe_tap moe_tap; /* hearth_forward_set_moe_tap (fn NULL: none) */
};

static hearth_status alloc_act(hearth_forward *f, act_set *a, hearth_tensor *t, int64_t ne0,
                               hearth_error *err) {
    void *p = a->be->ops->alloc(a->be, (size_t)ne0 * (size_t)f->max_tokens * sizeof(float), err);
    if (!p) return err ? err->code : HEARTH_ERR_NOMEM;
    *t = hearth_tensor_2d(HEARTH_F32, ne0, f->max_tokens, p);
    return HEARTH_OK;
}

/* The activation set on `be`, created on first use. */
static act_set *set_for(hearth_forward *f, hearth_backend *be, hearth_error *err) {
    for (int i = 0; i < f->n_sets; i++)
        if (f->sets[i].be == be) return &f->sets[i];
    if (f->n_sets == MAX_BACKENDS) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "forward: a model spread over more than %d backends",
                         MAX_BACKENDS);
        return NULL;
    }
    const hearth_hparams *hp = &f->m->hp;
    act_set *a = &f->sets[f->n_sets++];
    a->be = be;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    if (alloc_act(f, a, &a->x, hp->n_embd, err) || alloc_act(f, a, &a->h, hp->n_embd, err) ||
        alloc_act(f, a, &a->q, Q, err) || alloc_act(f, a, &a->k, KV, err) ||
        alloc_act(f, a, &a->v, KV, err) || alloc_act(f, a, &a->att, Q, err) ||
        alloc_act(f, a, &a->gate, hp->n_ff, err) || alloc_act(f, a, &a->up, hp->n_ff, err) ||
        alloc_act(f, a, &a->proj, hp->n_embd, err) ||
        hearth_moe_bufs_alloc(be, hp, f->max_tokens, f->m->n_cpu_moe_layers > 0 && be == f->m->backend,
                              &a->moe, err))
        return NULL;
    return a;
}

hearth_forward *hearth_forward_create(hearth_model *m, hearth_kv_cache *kv, int max_tokens,
                                      hearth_error *err) {
    hearth_forward *f = calloc(1, sizeof *f);
    if (!f) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const hearth_hparams *hp = &m->hp;
    if (m->arch_info->encoder) { /* no decoder layers loaded: embed.h runs these */
        hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "%s is an embedding model (%s): it does not generate text; use `hearth embed` or the "
            "embeddings routes",
            m->name, m->arch_info->name);
        free(f);
        return NULL;
    }
    f->m = m;
    f->kv = kv;
    f->max_tokens = max_tokens > 0 ? max_tokens : 1;
    if (!set_for(f, m->embd_be, err)) goto fail;
    for (int l = 0; l < hp->n_layer; l++)
        if (!set_for(f, m->layer_be[l], err)) goto fail;
    if (!set_for(f, m->out_be, err)) goto fail;
    f->out_be = m->out_be;
    if (f->n_sets > 1) {
        f->xfer = malloc((size_t)f->max_tokens * (size_t)hp->n_embd * sizeof(float));
        if (!f->xfer) {
            hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    /* Logits are wanted for a few rows per pass (one per sequence); with
     * vocabularies of 150k a full [max_tokens, n_vocab] buffer would be huge. */
    f->max_logits = f->max_tokens < HEARTH_FORWARD_MAX_LOGITS ? f->max_tokens : HEARTH_FORWARD_MAX_LOGITS;
    {
        void *p = f->out_be->ops->alloc(f->out_be,
                                        (size_t)hp->n_vocab * (size_t)f->max_logits * sizeof(float), err);
        if (!p) goto fail;
        f->logits = hearth_tensor_2d(HEARTH_F32, hp->n_vocab, f->max_logits, p);
    }
    size_t n = (size_t)f->max_tokens;
    f->slots = malloc(n * sizeof(int32_t));
    f->kv_len = malloc(n * sizeof(int32_t));
    f->pt_offset = malloc(n * sizeof(int32_t));
    f->out_rows = malloc(n * sizeof(int32_t));
    f->seq_ids = malloc(n * sizeof(int));
    f->seq_new_len = malloc(n * sizeof(int));
    if (!f->slots || !f->kv_len || !f->pt_offset || !f->out_rows || !f->seq_ids || !f->seq_new_len) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return f;
fail:
    hearth_forward_free(f);
    return NULL;
}

void hearth_forward_free(hearth_forward *f) {
    if (!f) return;
    for (int s = 0; s < f->n_sets; s++) {
        act_set *a = &f->sets[s];
        hearth_tensor *acts[] = {&a->x, &a->h, &a->q, &a->k, &a->v, &a->att, &a->gate, &a->up, &a->proj};
        for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
            if (acts[i]->data) a->be->ops->dealloc(a->be, acts[i]->data);
        hearth_moe_bufs_free(a->be, &a->moe);
    }
    if (f->logits.data) f->out_be->ops->dealloc(f->out_be, f->logits.data);
    if (f->ids_dev) f->out_be->ops->dealloc(f->out_be, f->ids_dev);
    free(f->xfer);
    free(f->host_logits);
    free(f->tap_buf);
    free(f->slots);
    free(f->kv_len);
    free(f->pt_offset);
    free(f->page_table);
    free(f->out_rows);
    free(f->seq_ids);
    free(f->seq_new_len);
    free(f);
}

int hearth_forward_max_tokens(const hearth_forward *f) {
    return f->max_tokens;
}

/* A view of the first n rows of an activation buffer. */
static inline hearth_tensor rows(const hearth_tensor *t, int n) {
    hearth_tensor v = *t;
    v.ne1 = n;
    return v;
}

/* The same buffer seen as [n * heads, head_dim] (per-head norms). */
static inline hearth_tensor per_head(const hearth_tensor *t, int n, int heads, int head_dim) {
    hearth_tensor v = *t;
    v.ne0 = head_dim;
    v.ne1 = (int64_t)n * heads;
    v.nb1 = (size_t)head_dim * sizeof(float);
    return v;
}

/* Check positions, reserve KV pages, and build the slot / page-table metadata. */
static hearth_status prepare_kv(hearth_forward *f, const hearth_ubatch *ub, hearth_attn_meta *meta,
                                hearth_error *err) {
    hearth_kv_cache *kv = f->kv;
    const int n = ub->n_tokens;
    /* New length of each sequence touched = max(len, pos + 1). At most n
     * distinct sequences; a linear scan is fine for the handful in a batch. */
    int *ids = f->seq_ids, *new_len = f->seq_new_len, n_seqs = 0;
    for (int i = 0; i < n; i++) {
        int s = ub->seq[i], j = 0;
        while (j < n_seqs && ids[j] != s)
            j++;
        if (j == n_seqs) {
            ids[n_seqs] = s;
            new_len[n_seqs++] = hearth_kv_seq_len(kv, s);
        }
        /* a token may extend its sequence by exactly one position */
        if (ub->pos[i] < 0 || ub->pos[i] > new_len[j])
            return hearth_error_set(err, HEARTH_ERR_INVALID,
                                    "ubatch token %d: position %d of sequence %d leaves a gap (length %d)", i,
                                    ub->pos[i], s, new_len[j]);
        if (ub->pos[i] + 1 > new_len[j]) new_len[j] = ub->pos[i] + 1;
    }
    hearth_status st = HEARTH_OK;
    for (int j = 0; j < n_seqs && !st; j++)
        st = hearth_kv_seq_reserve(kv, ids[j], new_len[j], err);
    /* Concatenate page tables of the touched sequences. */
    int total = 0;
    for (int j = 0; j < n_seqs && !st; j++) {
        int np;
        hearth_kv_seq_pages(kv, ids[j], &np);
        total += np;
    }
    if (!st &&
        !hearth_grow((void **)&f->page_table, &f->page_table_cap, (size_t)total, sizeof *f->page_table))
        st = hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    if (!st) {
        int off = 0;
        for (int j = 0; j < n_seqs; j++) {
            int np;
            const int32_t *pages = hearth_kv_seq_pages(kv, ids[j], &np);
            memcpy(f->page_table + off, pages, (size_t)np * sizeof *pages);
            for (int i = 0; i < n; i++)
                if (ub->seq[i] == ids[j]) f->pt_offset[i] = off;
            off += np;
            hearth_kv_seq_set_len(kv, ids[j], new_len[j]);
        }
        for (int i = 0; i < n; i++) {
            f->slots[i] = hearth_kv_slot(kv, ub->seq[i], ub->pos[i]);
            f->kv_len[i] = ub->pos[i] + 1;
        }
        *meta = (hearth_attn_meta){
            n, hearth_kv_config_get(kv)->page_size, f->kv_len, f->pt_offset, f->page_table, total};
    }
    return st;
}

/* Phi-3 LongRoPE: the long factors when the cache holds more tokens than
 * the original context (llama.cpp compares its per-sequence context, here the
 * KV pool's capacity stands for it), else the short ones; other models: the
 * Llama-3 rope_freqs or none. */
static const float *rope_factors(const hearth_forward *f) {
    const hearth_model *m = f->m;
    if (!m->rope_factors_long) return m->rope_freqs;
    const hearth_kv_config *c = hearth_kv_config_get(f->kv);
    const int64_t cap = (int64_t)c->n_pages * c->page_size;
    return cap > m->hp.n_ctx_orig ? m->rope_factors_long : m->rope_factors_short;
}

/* The RoPE of the keys, of the queries (which also carry mistral3's
 * attention temperature) and of gemma's sliding-window layers. */
static void rope_params(const hearth_forward *f, hearth_rope_params *k, hearth_rope_params *q,
                        hearth_rope_params *swa) {
    const hearth_model *m = f->m;
    const hearth_hparams *hp = &m->hp;
    *k = (hearth_rope_params){.mode = m->arch_info->rope,
                              .n_rot = hp->n_rot,
                              .head_dim = hp->head_dim,
                              .freq_base = hp->rope_freq_base,
                              .freq_scale = hp->rope_freq_scale,
                              .freq_factors = rope_factors(f),
                              .attn_factor = hp->rope_attn_factor,
                              .ext_factor = hp->rope_ext_factor,
                              .yarn_lo = hp->rope_yarn_lo,
                              .yarn_hi = hp->rope_yarn_hi};
    *q = *k;
    q->temp_scale = hp->attn_temp_scale;
    q->temp_floor = hp->n_ctx_orig;
    *swa = *k;
    swa->freq_base = hp->rope_freq_base_swa;
    swa->freq_scale = hp->rope_freq_scale_swa;
}

void hearth_forward_set_moe_tap(hearth_forward *f, hearth_moe_tap_fn fn, void *user) {
    f->moe_tap = (hearth_moe_tap){fn, user, -1};
}

/* The MoE tap for layer l, or NULL without one. */
static const hearth_moe_tap *moe_tap_at(hearth_forward *f, int l) {
    f->moe_tap.layer = l;
    return f->moe_tap.fn ? &f->moe_tap : NULL;
}

void hearth_forward_set_tap(hearth_forward *f, hearth_forward_tap_fn fn, void *user) {
    f->tap_fn = fn;
    f->tap_user = user;
}

/* Hand a matmul input to the tap, through host memory. */
static void tap(hearth_forward *f, hearth_backend *be, hearth_tap_site site, int l, const hearth_tensor *t) {
    if (!f->tap_fn ||
        !hearth_grow((void **)&f->tap_buf, &f->tap_cap, (size_t)(t->ne0 * t->ne1), sizeof(float)))
        return;
    be->ops->download(be, f->tap_buf, t->data, (size_t)(t->ne0 * t->ne1) * sizeof(float));
    f->tap_fn(f->tap_user, site, l, f->tap_buf, (int)t->ne1, t->ne0);
}

/* Projections of one input (shown to the tap as `site`): one dispatch where the backend can. */
static void matmuls(hearth_forward *f, hearth_tap_site site, int l, hearth_backend *be, int n,
                    const hearth_tensor *const *w, const hearth_tensor *x, const hearth_tensor *const *bias,
                    hearth_tensor *const *out) {
    tap(f, be, site, l, x);
    if (be->ops->matmul_multi) {
        be->ops->matmul_multi(be, n, w, x, bias, out);
        return;
    }
    for (int i = 0; i < n; i++)
        be->ops->matmul(be, w[i], x, bias[i], out[i]);
}

/* One projection without bias (shown to the tap as `site`). */
static void matmul1(hearth_forward *f, hearth_tap_site site, int l, hearth_backend *be,
                    const hearth_tensor *w, const hearth_tensor *x, hearth_tensor *out) {
    tap(f, be, site, l, x);
    be->ops->matmul(be, w, x, NULL, out);
}

/* Move the residual stream's first n rows from set `from` to set `to`. */
static void move_x(hearth_forward *f, act_set *from, act_set *to, int n) {
    size_t bytes = (size_t)n * (size_t)f->m->hp.n_embd * sizeof(float);
    from->be->ops->download(from->be, f->xfer, from->x.data, bytes);
    to->be->ops->upload(to->be, to->x.data, f->xfer, bytes);
}

static int forward_pass(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, int32_t *ids_out,
                        float *hidden_out, hearth_error *err);

/* x = the ubatch's token embeddings (times embd_scale when the model has one). */
static void embed_tokens(const hearth_model *m, act_set *a, const hearth_ubatch *ub) {
    hearth_tensor x = rows(&a->x, ub->n_tokens);
    a->be->ops->get_rows(a->be, &m->token_embd, ub->tokens, ub->n_tokens, &x);
    if (m->hp.embd_scale != 0) a->be->ops->scale_cap(a->be, &x, m->hp.embd_scale, 0.0f, &x);
}

int hearth_forward_run(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, hearth_error *err) {
    return forward_pass(f, ub, logits_out, NULL, NULL, err);
}

int hearth_forward_run_argmax(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, int32_t *ids_out,
                              hearth_error *err) {
    return forward_pass(f, ub, logits_out, ids_out, NULL, err);
}

int hearth_forward_run_hidden(hearth_forward *f, const hearth_ubatch *ub, float *hidden_out,
                              hearth_error *err) {
    return forward_pass(f, ub, NULL, NULL, hidden_out, err);
}

/* The pass; the rows that want logits end as logits (logits_out / ids_out)
 * or, with hidden_out, as their final-norm hidden states (no output matmul). */
static int forward_pass(hearth_forward *f, const hearth_ubatch *ub, float *logits_out, int32_t *ids_out,
                        float *hidden_out, hearth_error *err) {
    const hearth_model *m = f->m;
    const hearth_hparams *hp = &m->hp;
    const int n = ub->n_tokens;
    if (n <= 0 || n > f->max_tokens)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "ubatch of %d tokens (this context takes 1..%d)", n,
                                f->max_tokens);
    for (int i = 0; i < n; i++)
        if (ub->tokens[i] < 0 || ub->tokens[i] >= hp->n_vocab)
            return hearth_error_set(err, HEARTH_ERR_INVALID, "token id %d is outside the vocabulary (0..%d)",
                                    ub->tokens[i], hp->n_vocab - 1);
    int n_out = 0;
    for (int i = 0; i < n; i++)
        if (ub->logits ? ub->logits[i] : i == n - 1) f->out_rows[n_out++] = i;
    if (n_out > f->max_logits)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "ubatch asks for %d rows of logits (at most %d per pass)", n_out,
                                f->max_logits);
    /* greedy: on the device when it has the op, else over host logits */
    const bool dev_argmax = ids_out && f->out_be->ops->argmax;
    if (dev_argmax && !f->ids_dev &&
        !(f->ids_dev = f->out_be->ops->alloc(f->out_be, (size_t)f->max_logits * sizeof(int32_t), err)))
        return err ? err->code : HEARTH_ERR_NOMEM;
    if (ids_out && !dev_argmax && !logits_out && !f->host_logits &&
        !(f->host_logits = malloc((size_t)f->max_logits * (size_t)hp->n_vocab * sizeof(float))))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    if (ids_out && !dev_argmax && !logits_out) logits_out = f->host_logits;
    hearth_attn_meta meta;
    hearth_status st = prepare_kv(f, ub, &meta, err);
    if (st) return st;

    const int H = hp->n_head, HKV = hp->n_head_kv, D = hp->head_dim;
    const bool gemma = m->arch_info->gemma;
    hearth_rope_params rope, rope_q, rope_swa;
    rope_params(f, &rope, &rope_q, &rope_swa);
    const float att_scale = hp->attn_scale;

    /* ---- token embeddings */
    act_set *a = set_for(f, m->embd_be, err), *next;
    embed_tokens(m, a, ub);

    for (int l = 0; l < hp->n_layer; l++) {
        const hearth_layer *L = &m->layers[l];
        if ((next = set_for(f, m->layer_be[l], err)) != a) {
            move_x(f, a, next, n);
            a = next;
        }
        hearth_backend *be = a->be;
        const hearth_backend_ops *op = be->ops;
        hearth_tensor x = rows(&a->x, n), h = rows(&a->h, n), q = rows(&a->q, n), k = rows(&a->k, n),
                      v = rows(&a->v, n), att = rows(&a->att, n), gate = rows(&a->gate, n),
                      up = rows(&a->up, n), proj = rows(&a->proj, n);

        /* ---- attention block: h = rmsnorm(x) * attn_norm (olmo2: no pre-norm, h = x) */
        const hearth_tensor *in = L->attn_norm.data ? &h : &x;
        if (L->attn_norm.data) op->rms_norm(be, &x, &L->attn_norm, hp->rms_eps, &h);
        {
            const hearth_tensor *w3[3] = {&L->wq, &L->wk, &L->wv};
            const hearth_tensor *b3[3] = {L->bq.data ? &L->bq : NULL, L->bk.data ? &L->bk : NULL,
                                          L->bv.data ? &L->bv : NULL};
            hearth_tensor *o3[3] = {&q, &k, &v};
            matmuls(f, HEARTH_TAP_ATTN_IN, l, be, 3, w3, in, b3, o3);
        }
        if (L->q_norm.data && L->q_norm.ne0 == D) { /* qwen3, gemma3: RMS norm over each head's vector */
            hearth_tensor qh = per_head(&q, n, H, D), kh = per_head(&k, n, HKV, D);
            op->rms_norm(be, &qh, &L->q_norm, hp->rms_eps, &qh);
            op->rms_norm(be, &kh, &L->k_norm, hp->rms_eps, &kh);
        } else if (L->q_norm.data) { /* olmo2: over all heads of the token at once */
            op->rms_norm(be, &q, &L->q_norm, hp->rms_eps, &q);
            op->rms_norm(be, &k, &L->k_norm, hp->rms_eps, &k);
        }
        op->rope(be, &q, H, ub->pos, L->swa ? &rope_swa : &rope_q);
        op->rope(be, &k, HKV, ub->pos, L->swa ? &rope_swa : &rope);

        /* ---- write this ubatch's K/V into the pages, then attend over the cache */
        op->kv_store(be, hearth_kv_k(f->kv, l), &k, f->slots);
        op->kv_store(be, hearth_kv_v(f->kv, l), &v, f->slots);
        if (gemma) { /* sliding window on the local layers, soft-capped scores (gemma2) */
            const hearth_attn_opts ao = {L->swa ? hp->n_swa : 0, hp->attn_softcap};
            op->attention_ext(be, &q, hearth_kv_k(f->kv, l), hearth_kv_v(f->kv, l), &meta, H, HKV, D,
                              att_scale, &ao, &att);
        } else {
            op->attention(be, &q, hearth_kv_k(f->kv, l), hearth_kv_v(f->kv, l), &meta, H, HKV, D, att_scale,
                          &att);
        }

        /* ---- x = x + att Wo (gemma: x + rmsnorm(att Wo) * attn_post_norm) */
        matmul1(f, HEARTH_TAP_ATTN_OUT, l, be, &L->wo, &att, &proj);
        if (L->attn_post_norm.data) op->rms_norm(be, &proj, &L->attn_post_norm, hp->rms_eps, &proj);
        if (hp->residual_scale != 0) op->scale_cap(be, &proj, hp->residual_scale, 0.0f, &proj);
        op->add(be, &x, &proj, &x);

        /* ---- feed-forward: x = x + (silu(h Wgate) * h Wup) Wdown */
        if (L->ffn_norm.data) op->rms_norm(be, &x, &L->ffn_norm, hp->rms_eps, &h);
        if (L->ffn_gate_inp.data) { /* mixture of experts (forward_moe.c): x += moe(h) */
            if ((st = hearth_moe_ffn(be, hp, L, &h, n, &a->moe, &proj, &x, moe_tap_at(f, l), err))) return st;
            continue;
        }
        {
            const hearth_tensor *w2[2] = {&L->w_gate, &L->w_up}, *b2[2] = {NULL, NULL};
            hearth_tensor *o2[2] = {&gate, &up};
            matmuls(f, HEARTH_TAP_FFN_IN, l, be, 2, w2, L->ffn_norm.data ? &h : &x, b2, o2);
        }
        if (gemma) /* GeGLU, and the FFN output's post-norm */
            op->gelu_mul(be, &gate, &up, &gate);
        else
            op->silu_mul(be, &gate, &up, &gate);
        matmul1(f, HEARTH_TAP_FFN_DOWN, l, be, &L->w_down, &gate, &proj);
        if (L->ffn_post_norm.data) op->rms_norm(be, &proj, &L->ffn_post_norm, hp->rms_eps, &proj);
        if (hp->residual_scale != 0) op->scale_cap(be, &proj, hp->residual_scale, 0.0f, &proj);
        op->add(be, &x, &proj, &x);
    }

    /* ---- logits for the tokens that want them */
    if (n_out > 0) {
        if ((next = set_for(f, f->out_be, err)) != a) {
            move_x(f, a, next, n);
            a = next;
        }
        hearth_backend *be = a->be;
        hearth_tensor x = rows(&a->x, n), sel = rows(&a->h, n_out), lg = rows(&f->logits, n_out);
        be->ops->get_rows_f32(be, &x, f->out_rows, n_out, &sel);
        be->ops->rms_norm(be, &sel, &m->output_norm, hp->rms_eps, &sel);
        if (hidden_out) /* embeddings: llama.cpp's result_norm */
            be->ops->download(be, hidden_out, sel.data, (size_t)n_out * (size_t)hp->n_embd * sizeof(float));
        else
            be->ops->matmul(be, &m->output, &sel, NULL, &lg);
        if (!hidden_out && (hp->final_softcap > 0 || hp->logit_scale != 0)) /* gemma: cap tanh(l / cap) */
            be->ops->scale_cap(be, &lg, hp->logit_scale != 0 ? 1.0f / hp->logit_scale : 1.0f,
                               hp->final_softcap, &lg);
        if (dev_argmax) {
            be->ops->argmax(be, &lg, f->ids_dev);
            be->ops->download(be, ids_out, f->ids_dev, (size_t)n_out * sizeof(int32_t));
        }
        if (logits_out)
            be->ops->download(be, logits_out, lg.data, (size_t)n_out * (size_t)hp->n_vocab * sizeof(float));
    }
    for (int i = 0; i < f->n_sets && !st; i++)
        st = f->sets[i].be->ops->synchronize(f->sets[i].be, err);
    if (!st && ids_out && !dev_argmax)
        for (int k = 0; k < n_out; k++)
            ids_out[k] = hearth_argmax(logits_out + (size_t)k * hp->n_vocab, hp->n_vocab);
    return st ? st : n_out;
}
