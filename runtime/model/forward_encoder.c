/*
 * forward_encoder.c - the encoder forward pass (bert, nomic-bert) and the
 * embedding API of embed.h: packing inputs into passes, pooling, the
 * classification head, Matryoshka truncation, L2 normalisation.
 *
 * One pass over n tokens of several sequences (inputs), all at once:
 *
 *   x = token_embd[id] + token_types[0] (+ position_embd[pos], bert)
 *   x = layer_norm(x) * embd_norm + embd_norm_b
 *   per layer (post-norm):
 *     q,k,v = x Wqkv + bqkv (fused) or x Wq + bq, x Wk + bk, x Wv + bv
 *     q,k   = rope_neox(q, pos), rope_neox(k, pos)          (nomic-bert)
 *     a     = softmax(q k^T / sqrt(d)) v over ALL tokens of the same sequence
 *     x     = layer_norm(x + a Wo + bo) (attn_output_norm)
 *     f     = gelu(x Wup + bup) Wdown + bdown                (bert)
 *           | (silu(x Wgate) * x Wup) Wdown                  (nomic-bert)
 *     x     = layer_norm(x + f) (layer_output_norm)
 *
 * Token types are all 0 ("sentence A"), as llama.cpp hard-codes them.
 * Bidirectional attention reuses the backend's paged attention op: K and V
 * are stored (F16, like the decoder's KV cache) in token order into a flat
 * "pool" (page size 1, the identity page table), each token's page table
 * starts at its sequence's first token and every token sees its sequence's
 * full length, so no mask is needed and sequences never see each other. Pooling reads the final x on the
 * host.
 *
 * Ownership: see embed.h. Every step is a backend op; the host touches only
 * downloaded copies (pooling, the head's tanh).
 */
#include "embed.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "forward.h"
#include "runtime/kv/kv_cache.h"

struct hearth_embedder {
    hearth_model *m;
    hearth_backend *be;
    int max_tokens, n_ctx;
    int64_t qkv_width;                                  /* Q + 2 KV */
    hearth_tensor x, h, qkv, att, up, gate, proj, head; /* [max_tokens rows] */
    hearth_tensor k16, v16;                             /* F16 copies of K and V, the attention's "pool" */
    int32_t *ids, *pos, *zeros, *kv_len, *pt_offset, *page_table; /* [max_tokens] */
    float *host;                                                  /* [max_tokens, max(E, n_cls_out)] */
    /* concurrent calls: the first caller runs a batch of every compatible
     * call queued meanwhile (its followers wait on `done`) */
    pthread_mutex_t lock;
    pthread_cond_t done;
    bool busy;
    struct embed_job *queue;
    uint64_t n_calls, n_batches;
    int last_passes, last_tokens; /* of the last call's batch (under lock) */
    int run_passes, run_tokens;   /* of the running batch (its runner only) */
    /* decoder embedders (llama, qwen2, qwen3): the causal forward pass over a
     * KV cache of their own; NULL for encoders */
    hearth_kv_cache *kv;
    hearth_forward *fwd;
    int32_t *seqv;  /* [max_tokens] KV sequence of each token */
    bool *want;     /* [max_tokens] the token's hidden state is pooled */
    int *row_input; /* [max_tokens] input of each returned row */
};

bool hearth_model_is_embedding(const hearth_model *m) {
    return m->arch_info->encoder || m->hp.pooling != HEARTH_POOLING_NONE;
}

hearth_embed_params hearth_embed_params_default(void) {
    return (hearth_embed_params){HEARTH_EMBED_POOLING_MODEL, true, 0, false};
}

static hearth_status alloc_rows(hearth_embedder *e, hearth_tensor *t, int64_t ne0, hearth_error *err) {
    void *p = e->be->ops->alloc(e->be, (size_t)ne0 * (size_t)e->max_tokens * sizeof(float), err);
    if (!p) return err ? err->code : HEARTH_ERR_NOMEM;
    *t = hearth_tensor_2d(HEARTH_F32, ne0, e->max_tokens, p);
    return HEARTH_OK;
}

static hearth_status alloc_f16(hearth_embedder *e, hearth_tensor *t, int64_t ne0, hearth_error *err) {
    void *p = e->be->ops->alloc(e->be, hearth_dtype_row_size(HEARTH_F16, ne0) * (size_t)e->max_tokens, err);
    if (!p) return err ? err->code : HEARTH_ERR_NOMEM;
    *t = hearth_tensor_2d(HEARTH_F16, ne0, e->max_tokens, p);
    return HEARTH_OK;
}

/* A decoder embedder: the decoder's forward pass, a KV cache for the
 * longest input plus a pass, and the per-token metadata. */
static hearth_embedder *decoder_create(hearth_model *m, int max_tokens, hearth_error *err) {
    hearth_embedder *e = calloc(1, sizeof *e);
    if (!e) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const hearth_hparams *hp = &m->hp;
    e->m = m;
    e->be = m->backend;
    e->max_tokens = max_tokens > 0 ? max_tokens : 512;
    e->n_ctx = hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192; /* an input may span passes */
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->done, NULL);
    enum { PAGE = 16 };
    const int n_pages = (e->n_ctx + e->max_tokens) / PAGE + HEARTH_FORWARD_MAX_LOGITS + 4;
    hearth_kv_config kc = {hp->n_layer, hp->n_head_kv, hp->head_dim, HEARTH_F16, PAGE, n_pages, m->layer_be};
    if (!(e->kv = hearth_kv_create(m->backend, &kc, err))) goto fail;
    if (!(e->fwd = hearth_forward_create(m, e->kv, e->max_tokens, err))) goto fail;
    size_t n = (size_t)e->max_tokens;
    e->ids = malloc(n * sizeof(int32_t));
    e->pos = malloc(n * sizeof(int32_t));
    e->seqv = malloc(n * sizeof(int32_t));
    e->want = malloc(n * sizeof(bool));
    e->row_input = malloc(n * sizeof(int));
    e->host = malloc((size_t)HEARTH_FORWARD_MAX_LOGITS * (size_t)hp->n_embd * sizeof(float));
    if (!e->ids || !e->pos || !e->seqv || !e->want || !e->row_input || !e->host) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return e;
fail:
    hearth_embedder_free(e);
    return NULL;
}

hearth_embedder *hearth_embedder_create(hearth_model *m, int max_tokens, hearth_error *err) {
    if (!m->arch_info->encoder) return decoder_create(m, max_tokens, err);
    hearth_embedder *e = calloc(1, sizeof *e);
    if (!e) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const hearth_hparams *hp = &m->hp;
    e->m = m;
    e->be = m->backend;
    if (max_tokens <= 0)
        max_tokens = hp->n_ctx_train < 512 ? 512 : hp->n_ctx_train > 8192 ? 8192 : hp->n_ctx_train;
    e->max_tokens = max_tokens;
    e->n_ctx = hp->n_ctx_train < max_tokens ? hp->n_ctx_train : max_tokens;
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    e->qkv_width = Q + 2 * KV;
    const int64_t head_w = hp->n_cls_out > hp->n_embd ? hp->n_cls_out : hp->n_embd;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->done, NULL);
    if (alloc_rows(e, &e->x, hp->n_embd, err) || alloc_rows(e, &e->h, hp->n_embd, err) ||
        alloc_rows(e, &e->qkv, e->qkv_width, err) || alloc_rows(e, &e->att, Q, err) ||
        alloc_rows(e, &e->up, hp->n_ff, err) || alloc_rows(e, &e->proj, hp->n_embd, err) ||
        alloc_rows(e, &e->head, head_w, err) || alloc_f16(e, &e->k16, KV, err) ||
        alloc_f16(e, &e->v16, KV, err) ||
        (m->arch == HEARTH_ARCH_NOMIC_BERT && alloc_rows(e, &e->gate, hp->n_ff, err)))
        goto fail;
    size_t n = (size_t)max_tokens;
    e->ids = malloc(n * sizeof(int32_t));
    e->pos = malloc(n * sizeof(int32_t));
    e->zeros = calloc(n, sizeof(int32_t));
    e->kv_len = malloc(n * sizeof(int32_t));
    e->pt_offset = malloc(n * sizeof(int32_t));
    e->page_table = malloc(n * sizeof(int32_t));
    e->host = malloc(n * (size_t)head_w * sizeof(float));
    if (!e->ids || !e->pos || !e->zeros || !e->kv_len || !e->pt_offset || !e->page_table || !e->host) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < max_tokens; i++)
        e->page_table[i] = i;
    return e;
fail:
    hearth_embedder_free(e);
    return NULL;
}

void hearth_embedder_free(hearth_embedder *e) {
    if (!e) return;
    hearth_tensor *bufs[] = {&e->x,    &e->h,    &e->qkv,  &e->att, &e->up,
                             &e->gate, &e->proj, &e->head, &e->k16, &e->v16};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->data) e->be->ops->dealloc(e->be, bufs[i]->data);
    free(e->ids);
    free(e->pos);
    free(e->zeros);
    free(e->kv_len);
    free(e->pt_offset);
    free(e->page_table);
    free(e->host);
    hearth_forward_free(e->fwd);
    hearth_kv_free(e->kv);
    free(e->seqv);
    free(e->want);
    free(e->row_input);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->done);
    free(e);
}

int hearth_embedder_n_ctx(const hearth_embedder *e) {
    return e->n_ctx;
}

void hearth_embed_last_stats(const hearth_embedder *e, int *n_passes, int *n_tokens) {
    hearth_embedder *m = (hearth_embedder *)e; /* the lock only */
    pthread_mutex_lock(&m->lock);
    if (n_passes) *n_passes = e->last_passes;
    if (n_tokens) *n_tokens = e->last_tokens;
    pthread_mutex_unlock(&m->lock);
}

int hearth_embed_pooling(const hearth_embedder *e, const hearth_embed_params *p) {
    return p->pooling == HEARTH_EMBED_POOLING_MODEL ? e->m->hp.pooling : p->pooling;
}

int hearth_embed_dim(const hearth_embedder *e, const hearth_embed_params *p, hearth_error *err) {
    const hearth_model *m = e->m;
    const int pool = hearth_embed_pooling(e, p), E = m->hp.n_embd;
    if (pool < HEARTH_POOLING_NONE || pool > HEARTH_POOLING_RANK)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "pooling %d is not one of mean, cls, last, rank",
                                pool);
    if (pool == HEARTH_POOLING_NONE)
        return hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "%s has pooling_type none (one vector per token), which Hearth does not serve; "
            "ask for a pooling: mean, cls or last",
            m->name);
    if (pool == HEARTH_POOLING_RANK) {
        if (e->fwd)
            return hearth_error_set(err, HEARTH_ERR_INVALID,
                                    "rank pooling needs a reranker with a classification head; %s is a %s "
                                    "decoder",
                                    m->name, m->arch_info->name);
        if (!m->cls_out.data && !m->cls.data)
            return hearth_error_set(err, HEARTH_ERR_INVALID,
                                    "%s has no classification head (cls, cls.output): rank pooling needs a "
                                    "reranker model",
                                    m->name);
        if (p->dimensions)
            return hearth_error_set(err, HEARTH_ERR_INVALID, "dimensions does not apply to rank scores");
        return m->cls_out.data ? m->hp.n_cls_out : E;
    }
    if (p->dimensions < 0 || p->dimensions > E)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "dimensions %d is out of range: this model gives 1..%d", p->dimensions, E);
    return p->dimensions ? p->dimensions : E;
}

hearth_status hearth_embed_tokenize(const hearth_model *m, const char *text, size_t len, hearth_tokens *out,
                                    hearth_error *err) {
    const hearth_tokenizer *t = m->tokenizer;
    const bool wpm = hearth_tokenizer_kind(t) == HEARTH_VOCAB_WPM;
    /* WordPiece: add_bos gives [CLS] ... [SEP]; others: the vocabulary's BOS
     * and EOS defaults, as llama.cpp's tokenize with add_special */
    hearth_status st =
        hearth_tokenizer_encode(t, text, len, wpm || hearth_tokenizer_add_bos_default(t), true, out, err);
    const int32_t eos = hearth_tokenizer_eos(t);
    if (!st && !wpm && hearth_tokenizer_add_eos_default(t) && eos >= 0 && !hearth_tokens_push(out, eos))
        st = hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    return st;
}

hearth_status hearth_rerank_tokenize(const hearth_model *m, const char *query, size_t query_len,
                                     const char *doc, size_t doc_len, hearth_tokens *out, hearth_error *err) {
    const hearth_tokenizer *t = m->tokenizer;
    hearth_status st = hearth_embed_tokenize(m, query, query_len, out, err);
    if (st) return st;
    const int32_t sep = hearth_tokenizer_sep(t), eos = hearth_tokenizer_eos(t);
    if (hearth_tokenizer_kind(t) != HEARTH_VOCAB_WPM) { /* WordPiece's [SEP] came with the query */
        if (eos >= 0 && !hearth_tokens_push(out, eos)) goto oom;
        if (sep >= 0 && sep != eos && !hearth_tokens_push(out, sep)) goto oom;
    }
    if ((st = hearth_tokenizer_encode(t, doc, doc_len, false, true, out, err))) return st;
    if (hearth_tokenizer_kind(t) == HEARTH_VOCAB_WPM && sep >= 0 && !hearth_tokens_push(out, sep)) goto oom;
    return HEARTH_OK;
oom:
    return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
}

/* A view of rows [0, n) of t, columns [col, col + width). */
static inline hearth_tensor view(const hearth_tensor *t, int n, int64_t col, int64_t width) {
    hearth_tensor v = *t;
    v.data = (char *)t->data + col * (int64_t)sizeof(float);
    v.ne0 = width;
    v.ne1 = n;
    return v;
}
static inline hearth_tensor rows(const hearth_tensor *t, int n) {
    return view(t, n, 0, t->ne0);
}
static inline const hearth_tensor *opt(const hearth_tensor *t) {
    return t->data ? t : NULL;
}

/* Embeddings, then every layer, over the n tokens staged in e->ids/pos and
 * the attention metadata; leaves the final hidden states in e->x. */
static void encoder_pass(hearth_embedder *e, int n) {
    const hearth_model *m = e->m;
    const hearth_hparams *hp = &m->hp;
    hearth_backend *be = e->be;
    const hearth_backend_ops *op = be->ops;
    const int H = hp->n_head, HKV = hp->n_head_kv, D = hp->head_dim;
    const int64_t Q = (int64_t)H * D, KV = (int64_t)HKV * D;
    const hearth_rope_params rope = {.mode = m->arch_info->rope,
                                     .n_rot = hp->n_rot,
                                     .head_dim = D,
                                     .freq_base = hp->rope_freq_base,
                                     .freq_scale = hp->rope_freq_scale,
                                     .attn_factor = 1.0f};
    const hearth_attn_meta meta = {n, 1, e->kv_len, e->pt_offset, e->page_table, n};
    hearth_tensor x = rows(&e->x, n), h = rows(&e->h, n), att = rows(&e->att, n), up = rows(&e->up, n),
                  proj = rows(&e->proj, n), gate = e->gate.data ? rows(&e->gate, n) : up;

    op->get_rows(be, &m->token_embd, e->ids, n, &x);
    if (m->token_types.data) {
        op->get_rows(be, &m->token_types, e->zeros, n, &h);
        op->add(be, &x, &h, &x);
    }
    if (m->pos_embd.data) {
        op->get_rows(be, &m->pos_embd, e->pos, n, &h);
        op->add(be, &x, &h, &x);
    }
    op->layer_norm(be, &x, &m->embd_norm, opt(&m->embd_norm_b), hp->norm_eps, &x);

    for (int l = 0; l < hp->n_layer; l++) {
        const hearth_layer *L = &m->layers[l];
        hearth_tensor q = view(&e->qkv, n, 0, Q), k = view(&e->qkv, n, Q, KV),
                      v = view(&e->qkv, n, Q + KV, KV);
        if (L->wqkv.data) {
            hearth_tensor all = rows(&e->qkv, n);
            op->matmul(be, &L->wqkv, &x, opt(&L->bqkv), &all);
        } else {
            const hearth_tensor *w3[3] = {&L->wq, &L->wk, &L->wv};
            const hearth_tensor *b3[3] = {opt(&L->bq), opt(&L->bk), opt(&L->bv)};
            hearth_tensor *o3[3] = {&q, &k, &v};
            if (op->matmul_multi)
                op->matmul_multi(be, 3, w3, &x, b3, o3);
            else
                for (int i = 0; i < 3; i++)
                    op->matmul(be, w3[i], &x, b3[i], o3[i]);
        }
        if (m->arch_info->rotary) {
            op->rope(be, &q, H, e->pos, &rope);
            op->rope(be, &k, HKV, e->pos, &rope);
        }
        /* K and V to F16 (as the decoder's KV cache keeps them): the CPU's
         * F16 group kernel reads each key once for a block of queries */
        op->kv_store(be, &e->k16, &k, e->page_table);
        op->kv_store(be, &e->v16, &v, e->page_table);
        op->attention(be, &q, &e->k16, &e->v16, &meta, H, HKV, D, 1.0f / sqrtf((float)D), &att);
        op->matmul(be, &L->wo, &att, opt(&L->bo), &proj);
        op->add(be, &x, &proj, &x);
        op->layer_norm(be, &x, &L->attn_out_norm, opt(&L->attn_out_norm_b), hp->norm_eps, &x);
        if (L->w_gate.data) { /* SwiGLU: silu(x Wgate) * x Wup */
            const hearth_tensor *w2[2] = {&L->w_gate, &L->w_up}, *b2[2] = {NULL, opt(&L->b_up)};
            hearth_tensor *o2[2] = {&gate, &up};
            if (op->matmul_multi)
                op->matmul_multi(be, 2, w2, &x, b2, o2);
            else
                for (int i = 0; i < 2; i++)
                    op->matmul(be, w2[i], &x, b2[i], o2[i]);
            op->silu_mul(be, &gate, &up, &gate);
        } else {
            op->matmul(be, &L->w_up, &x, opt(&L->b_up), &up);
            op->gelu(be, &up, &up);
        }
        op->matmul(be, &L->w_down, &gate, opt(&L->b_down), &proj);
        op->add(be, &x, &proj, &x);
        op->layer_norm(be, &x, &L->out_norm, opt(&L->out_norm_b), hp->norm_eps, &x);
    }
}

/* Rank pooling: the CLS rows (host, [n_seq, E]) through cls (+ bias, tanh)
 * and cls.output (+ bias); leaves [n_seq, dim] scores in e->host. */
static hearth_status rank_head(hearth_embedder *e, int n_seq, hearth_error *err) {
    const hearth_model *m = e->m;
    hearth_backend *be = e->be;
    const int E = m->hp.n_embd;
    hearth_tensor in = rows(&e->h, n_seq), mid = rows(&e->proj, n_seq);
    be->ops->upload(be, in.data, e->host, (size_t)n_seq * (size_t)E * sizeof(float));
    if (m->cls.data) {
        be->ops->matmul(be, &m->cls, &in, opt(&m->cls_b), &mid);
        hearth_status st = be->ops->synchronize(be, err);
        if (st) return st;
        be->ops->download(be, e->host, mid.data, (size_t)n_seq * (size_t)E * sizeof(float));
        for (size_t i = 0; i < (size_t)n_seq * (size_t)E; i++)
            e->host[i] = tanhf(e->host[i]);
        be->ops->upload(be, in.data, e->host, (size_t)n_seq * (size_t)E * sizeof(float));
    }
    if (m->cls_out.data) {
        const int C = m->hp.n_cls_out;
        hearth_tensor sc = view(&e->head, n_seq, 0, C);
        sc.nb1 = (size_t)C * sizeof(float); /* packed rows */
        be->ops->matmul(be, &m->cls_out, &in, opt(&m->cls_out_b), &sc);
        hearth_status st = be->ops->synchronize(be, err);
        if (st) return st;
        be->ops->download(be, e->host, sc.data, (size_t)n_seq * (size_t)C * sizeof(float));
    }
    return HEARTH_OK;
}

/* out = the first dim components of v, L2-normalised when asked (0 stays 0,
 * as llama.cpp's common_embd_normalize). */
static void finish_vector(const float *v, int dim, bool normalize, float *out) {
    double ss = 0;
    for (int i = 0; i < dim; i++)
        ss += (double)v[i] * v[i];
    const double scale = normalize && ss > 0 ? 1.0 / sqrt(ss) : 1.0;
    for (int i = 0; i < dim; i++)
        out[i] = (float)(v[i] * scale);
}

/* Pool the pass's sequences [first, first + n_seq) (starts/lens of each)
 * from e->x into out rows of `dim` floats. */
static hearth_status pool_pass(hearth_embedder *e, int pool, const int *starts, const int *lens, int n_seq,
                               int n, bool normalize, int dim, float *const *out, hearth_error *err) {
    const int E = e->m->hp.n_embd;
    hearth_backend *be = e->be;
    hearth_status st = be->ops->synchronize(be, err);
    if (st) return st;
    float *hx = malloc((size_t)n * (size_t)E * sizeof(float));
    if (!hx) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    be->ops->download(be, hx, e->x.data, (size_t)n * (size_t)E * sizeof(float));
    for (int s = 0; s < n_seq; s++) {
        float *v = e->host + (size_t)s * (size_t)E;
        const float *first = hx + (size_t)starts[s] * (size_t)E;
        if (pool == HEARTH_POOLING_MEAN) {
            for (int i = 0; i < E; i++) {
                double acc = 0;
                for (int t = 0; t < lens[s]; t++)
                    acc += first[(size_t)t * (size_t)E + (size_t)i];
                v[i] = (float)(acc / lens[s]);
            }
        } else {
            const int row = pool == HEARTH_POOLING_LAST ? lens[s] - 1 : 0; /* CLS, RANK: the first token */
            memcpy(v, first + (size_t)row * (size_t)E, (size_t)E * sizeof(float));
        }
    }
    free(hx);
    int stride = E;
    if (pool == HEARTH_POOLING_RANK) {
        if ((st = rank_head(e, n_seq, err))) return st;
        stride = dim;
    }
    for (int s = 0; s < n_seq; s++)
        finish_vector(e->host + (size_t)s * (size_t)stride, dim, normalize && pool != HEARTH_POOLING_RANK,
                      out[s]);
    return HEARTH_OK;
}

/* Decoder embedders: the inputs stream in order through causal passes of up
 * to max_tokens tokens and HEARTH_FORWARD_MAX_LOGITS pooled rows, each input
 * a KV sequence (an input may span passes); the pooled rows' final-norm
 * hidden states are summed (mean) or taken (last, first) per input. */
static hearth_status decoder_embed(hearth_embedder *e, const int32_t *const *tokens, const int *used,
                                   int n_inputs, int pool, bool normalize, int dim, float *const *out,
                                   hearth_error *err) {
    const int E = e->m->hp.n_embd;
    double *acc = calloc((size_t)n_inputs * (size_t)E, sizeof *acc);
    int *seq = malloc((size_t)n_inputs * sizeof *seq);
    float *v = malloc((size_t)E * sizeof *v);
    hearth_status st = acc && seq && v ? HEARTH_OK : hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    for (int i = 0; seq && i < n_inputs; i++)
        seq[i] = -1;
    int in = 0, pos = 0, done = 0; /* next token: input in, position pos; inputs < done are freed */
    while (!st && in < n_inputs) {
        int n = 0, n_rows = 0;
        while (in < n_inputs && n < e->max_tokens) {
            const bool want = pool == HEARTH_POOLING_MEAN ||
                              (pool == HEARTH_POOLING_LAST && pos == used[in] - 1) ||
                              (pool == HEARTH_POOLING_CLS && pos == 0);
            if (want && n_rows == HEARTH_FORWARD_MAX_LOGITS) break;
            if (pos == 0 && (seq[in] = hearth_kv_seq_create(e->kv, err)) < 0) {
                st = err ? err->code : HEARTH_ERR_NOMEM;
                break;
            }
            e->ids[n] = tokens[in][pos];
            e->pos[n] = pos;
            e->seqv[n] = seq[in];
            e->want[n] = want;
            if (want) e->row_input[n_rows++] = in;
            n++;
            if (++pos == used[in]) {
                in++;
                pos = 0;
            }
        }
        if (st) break;
        const hearth_ubatch ub = {n, e->ids, e->pos, e->seqv, e->want};
        const int got = hearth_forward_run_hidden(e->fwd, &ub, e->host, err);
        if (got < 0) {
            st = (hearth_status)got;
            break;
        }
        for (int r = 0; r < got; r++)
            for (int i = 0; i < E; i++)
                acc[(size_t)e->row_input[r] * (size_t)E + (size_t)i] +=
                    e->host[(size_t)r * (size_t)E + (size_t)i];
        for (; done < in; done++) { /* inputs finished in this pass give their pages back */
            hearth_kv_seq_free(e->kv, seq[done]);
            seq[done] = -1;
        }
        e->run_passes++;
        e->run_tokens += n;
    }
    for (int i = 0; seq && i < n_inputs; i++)
        if (seq[i] >= 0) hearth_kv_seq_free(e->kv, seq[i]);
    for (int i = 0; !st && i < n_inputs; i++) {
        const double div = pool == HEARTH_POOLING_MEAN ? used[i] : 1;
        for (int k = 0; k < E; k++)
            v[k] = (float)(acc[(size_t)i * (size_t)E + (size_t)k] / div);
        finish_vector(v, dim, normalize, out[i]);
    }
    free(acc);
    free(seq);
    free(v);
    return st;
}

/* Check every input and compute its length after truncation into used[]. */
static hearth_status check_inputs(const hearth_embedder *e, const int32_t *const *tokens, const int *n_tokens,
                                  int n_inputs, const hearth_embed_params *p, int *used, hearth_error *err) {
    const int V = e->m->hp.n_vocab;
    for (int i = 0; i < n_inputs; i++) {
        if (!tokens[i] || n_tokens[i] <= 0)
            return hearth_error_set(err, HEARTH_ERR_INVALID,
                                    "input %d is empty (at least one token is needed)", i);
        for (int t = 0; t < n_tokens[i]; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= V)
                return hearth_error_set(err, HEARTH_ERR_INVALID,
                                        "input %d: token id %d is outside the vocabulary (0..%d)", i,
                                        tokens[i][t], V - 1);
        used[i] = n_tokens[i];
        if (n_tokens[i] > e->n_ctx) {
            if (!p->truncate)
                return hearth_error_set(
                    err, HEARTH_ERR_CONTEXT,
                    "input %d has %d tokens, more than the model's context of %d; shorten it "
                    "or ask for truncation",
                    i, n_tokens[i], e->n_ctx);
            used[i] = e->n_ctx;
        }
    }
    return HEARTH_OK;
}

/* One call waiting in (or taken from) the embedder's queue. */
typedef struct embed_job {
    const int32_t *const *tokens;
    const int *n_tokens; /* as given (a truncated input's last token is checked for [SEP]) */
    const int *used;     /* after truncation */
    int n_inputs, pool, dim;
    bool normalize;
    float *out;
    hearth_status st;
    hearth_error err;
    bool done;
    int passes, tokens_run; /* of the batch that served it */
    struct embed_job *next;
} embed_job;

/* Encoder: pack inputs [0, n) into passes of at most max_tokens tokens. */
static hearth_status encoder_embed(hearth_embedder *e, const int32_t *const *tokens, const int *given,
                                   const int *used, int n_inputs, int pool, bool normalize, int dim,
                                   float *const *out, int *starts, int *lens, hearth_error *err) {
    const int32_t sep = hearth_tokenizer_sep(e->m->tokenizer);
    hearth_status st = HEARTH_OK;
    for (int first = 0; !st && first < n_inputs;) {
        int n = 0, last = first;
        while (last < n_inputs && n + used[last] <= e->max_tokens) {
            const int len = used[last];
            starts[last - first] = n;
            lens[last - first] = len;
            memcpy(e->ids + n, tokens[last], (size_t)len * sizeof(int32_t));
            if (len < given[last] && sep >= 0 && tokens[last][given[last] - 1] == sep)
                e->ids[n + len - 1] = sep; /* truncated: keep the closing [SEP] */
            for (int t = 0; t < len; t++) {
                e->pos[n + t] = t;
                e->kv_len[n + t] = len;
                e->pt_offset[n + t] = n;
            }
            n += len;
            last++;
        }
        encoder_pass(e, n);
        st = pool_pass(e, pool, starts, lens, last - first, n, normalize, dim, out + first, err);
        e->run_passes++;
        e->run_tokens += n;
        first = last;
    }
    return st;
}

/* Run the jobs of one batch (same pooling, dimensions and normalisation) as
 * one list of inputs; every job gets the batch's status. */
static void run_batch(hearth_embedder *e, embed_job *batch) {
    int total = 0;
    for (embed_job *j = batch; j; j = j->next)
        total += j->n_inputs;
    const int32_t **toks = malloc((size_t)total * sizeof *toks);
    int *ints = malloc((size_t)total * 4 * sizeof *ints);
    float **out = malloc((size_t)total * sizeof *out);
    hearth_error err = {0};
    hearth_status st = HEARTH_OK;
    if (!toks || !ints || !out) {
        st = hearth_error_set(&err, HEARTH_ERR_NOMEM, "out of memory");
    } else {
        int *given = ints, *used = ints + total, *starts = used + total, *lens = starts + total, k = 0;
        for (embed_job *j = batch; j; j = j->next)
            for (int i = 0; i < j->n_inputs; i++, k++) {
                toks[k] = j->tokens[i];
                given[k] = j->n_tokens[i];
                used[k] = j->used[i];
                out[k] = j->out + (size_t)i * (size_t)j->dim;
            }
        e->run_passes = e->run_tokens = 0;
        st = e->fwd
                 ? decoder_embed(e, toks, used, total, batch->pool, batch->normalize, batch->dim, out, &err)
                 : encoder_embed(e, toks, given, used, total, batch->pool, batch->normalize, batch->dim, out,
                                 starts, lens, &err);
    }
    for (embed_job *j = batch; j; j = j->next) {
        j->st = st;
        j->err = err;
        j->passes = e->run_passes;
        j->tokens_run = e->run_tokens;
    }
    free(toks);
    free(ints);
    free(out);
}

/* Take from the queue the first job and every later one it can share passes
 * with (called with the lock held). */
static embed_job *take_batch(hearth_embedder *e) {
    embed_job *head = e->queue, *j = head->next, **tail = &head->next, **rest = &e->queue;
    head->next = NULL;
    e->queue = NULL;
    while (j) {
        embed_job *next = j->next;
        j->next = NULL;
        if (j->pool == head->pool && j->dim == head->dim && j->normalize == head->normalize) {
            *tail = j;
            tail = &j->next;
        } else { /* waits for a later batch, in its order */
            *rest = j;
            rest = &j->next;
        }
        j = next;
    }
    return head;
}

hearth_status hearth_embed(hearth_embedder *e, const int32_t *const *tokens, const int *n_tokens,
                           int n_inputs, const hearth_embed_params *p, float *out, int *n_used,
                           hearth_error *err) {
    if (n_inputs <= 0) return hearth_error_set(err, HEARTH_ERR_INVALID, "no inputs to embed");
    const int dim = hearth_embed_dim(e, p, err);
    if (dim < 0) return (hearth_status)dim;
    int *used = malloc((size_t)n_inputs * sizeof(int));
    if (!used) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    hearth_status st = check_inputs(e, tokens, n_tokens, n_inputs, p, used, err);
    if (st) {
        free(used);
        return st;
    }
    embed_job job = {.tokens = tokens,
                     .n_tokens = n_tokens,
                     .used = used,
                     .n_inputs = n_inputs,
                     .pool = hearth_embed_pooling(e, p),
                     .dim = dim,
                     .normalize = p->normalize,
                     .out = out};
    pthread_mutex_lock(&e->lock);
    e->n_calls++;
    embed_job **q = &e->queue;
    while (*q)
        q = &(*q)->next;
    *q = &job;
    while (!job.done) {
        if (e->busy) {
            pthread_cond_wait(&e->done, &e->lock);
            continue;
        }
        e->busy = true; /* this caller runs the next batch, which may or may not hold its own job */
        embed_job *batch = take_batch(e);
        e->n_batches++;
        pthread_mutex_unlock(&e->lock);
        run_batch(e, batch);
        pthread_mutex_lock(&e->lock);
        for (embed_job *j = batch, *next; j; j = next) {
            next = j->next; /* a follower's job is gone once it sees done */
            j->done = true;
        }
        e->busy = false;
        pthread_cond_broadcast(&e->done);
    }
    e->last_passes = job.passes;
    e->last_tokens = job.tokens_run;
    pthread_mutex_unlock(&e->lock);
    if (job.st && err) *err = job.err;
    if (!job.st && n_used) memcpy(n_used, used, (size_t)n_inputs * sizeof(int));
    free(used);
    return job.st;
}

void hearth_embed_counters(const hearth_embedder *e, uint64_t *n_calls, uint64_t *n_batches) {
    hearth_embedder *m = (hearth_embedder *)e; /* the lock only */
    pthread_mutex_lock(&m->lock);
    if (n_calls) *n_calls = e->n_calls;
    if (n_batches) *n_batches = e->n_batches;
    pthread_mutex_unlock(&m->lock);
}
