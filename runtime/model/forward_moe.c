/*
 * forward_moe.c - the mixture-of-experts FFN block (see forward_moe.h).
 */
#include "forward_moe.h"

#include <stdio.h>
#include <string.h>

#include "backends/backend_impl.h"

static hearth_status alloc_f32(hearth_backend *be, int64_t ne0, int64_t ne1, hearth_tensor *t,
                               hearth_error *err) {
    void *p = be->ops->alloc(be, (size_t)ne0 * (size_t)ne1 * sizeof(float), err);
    if (!p) return err ? err->code : HEARTH_ERR_NOMEM;
    *t = hearth_tensor_2d(HEARTH_F32, ne0, ne1, p);
    return HEARTH_OK;
}

hearth_status hearth_moe_bufs_alloc(hearth_backend *be, const hearth_hparams *hp, int max_tokens,
                                    hearth_moe_bufs *out, hearth_error *err) {
    memset(out, 0, sizeof *out);
    if (hp->n_expert <= 0 || !be->ops->moe_route) return HEARTH_OK; /* no MoE layer can run here */
    const int64_t n = max_tokens, k = hp->n_expert_used;
    if (alloc_f32(be, hp->n_expert, n, &out->logits, err) || alloc_f32(be, k, n, &out->weights, err) ||
        alloc_f32(be, hp->n_ff_exp, n * k, &out->gate, err) ||
        alloc_f32(be, hp->n_ff_exp, n * k, &out->up, err) ||
        alloc_f32(be, hp->n_embd, n * k, &out->down, err))
        return err ? err->code : HEARTH_ERR_NOMEM;
    out->ids = be->ops->alloc(be, (size_t)(n * k) * sizeof(int32_t), err);
    return out->ids ? HEARTH_OK : (err ? err->code : HEARTH_ERR_NOMEM);
}

void hearth_moe_bufs_free(hearth_backend *be, hearth_moe_bufs *b) {
    hearth_tensor *ts[] = {&b->logits, &b->weights, &b->gate, &b->up, &b->down};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->data) be->ops->dealloc(be, ts[i]->data);
    if (b->ids) be->ops->dealloc(be, b->ids);
    memset(b, 0, sizeof *b);
}

static inline hearth_tensor first_rows(const hearth_tensor *t, int64_t n) {
    hearth_tensor v = *t;
    v.ne1 = n;
    return v;
}

void hearth_moe_ffn(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                    const hearth_tensor *h, int n, hearth_moe_bufs *bufs, hearth_tensor *out,
                    hearth_tensor *x) {
    const hearth_backend_ops *op = be->ops;
    const int k = hp->n_expert_used;
    hearth_tensor logits = first_rows(&bufs->logits, n), w = first_rows(&bufs->weights, n),
                  g = first_rows(&bufs->gate, (int64_t)n * k), u = first_rows(&bufs->up, (int64_t)n * k),
                  d = first_rows(&bufs->down, (int64_t)n * k);
    op->matmul(be, &L->ffn_gate_inp, h, NULL, &logits);
    op->moe_route(be, &logits, k, true, bufs->ids, &w);
    const hearth_tensor *w2[2] = {&L->ffn_gate_exps, &L->ffn_up_exps};
    hearth_tensor *o2[2] = {&g, &u};
    op->moe_matmul(be, 2, w2, h, bufs->ids, k, o2);
    op->silu_mul(be, &g, &u, &g);
    const hearth_tensor *w1[1] = {&L->ffn_down_exps};
    hearth_tensor *o1[1] = {&d};
    op->moe_matmul(be, 1, w1, &g, bufs->ids, k, o1);
    op->moe_combine(be, &d, &w, k, out);
    op->add(be, x, out, x);
}

bool hearth_moe_layer(const hearth_gguf *g, int l) {
    char name[64];
    snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", l);
    return hearth_gguf_find_tensor(g, name) != NULL;
}

void hearth_moe_unused(const hearth_gguf *g, int n_expert, int n_used, uint64_t *params, uint64_t *bytes) {
    *params = *bytes = 0;
    if (n_expert <= 0 || n_used >= n_expert) return;
    const uint64_t unused = (uint64_t)(n_expert - n_used);
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        const size_t nl = t->name.len;
        if (nl < 13 || memcmp(t->name.ptr + nl - 12, "_exps.weight", 12) || t->ne[2] != (uint64_t)n_expert) continue;
        *params += t->ne[0] * t->ne[1] * t->ne[2] / (uint64_t)n_expert * unused;
        *bytes += t->nbytes / (uint64_t)n_expert * unused;
    }
}
