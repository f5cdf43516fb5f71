/*
 * forward_moe.c - the mixture-of-experts FFN block (see forward_moe.h).
 */
#include "forward_moe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"

static hearth_status alloc_f32(hearth_backend *be, int64_t ne0, int64_t ne1, hearth_tensor *t,
                               hearth_error *err) {
    void *p = be->ops->alloc(be, (size_t)ne0 * (size_t)ne1 * sizeof(float), err);
    if (!p) return err ? err->code : HEARTH_ERR_NOMEM;
    *t = hearth_tensor_2d(HEARTH_F32, ne0, ne1, p);
    return HEARTH_OK;
}

/* The host-assisted path's buffers; with cpu_experts also the host copies
 * the experts kept in host memory (--n-cpu-moe) run on. */
static hearth_status alloc_host_path(hearth_backend *be, const hearth_hparams *hp, int64_t n,
                                     bool cpu_experts, hearth_moe_bufs *out, hearth_error *err) {
    const size_t k = (size_t)hp->n_expert_used, E = (size_t)hp->n_embd, nn = (size_t)n,
                 F = (size_t)hp->n_ff_exp;
    out->host_path = !be->ops->moe_route;
    if (!be->host)
        return hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "mixture of experts: this backend has neither the moe ops nor a host CPU backend");
    if (alloc_f32(be, hp->n_embd, n * (int64_t)k, &out->xs, err)) return err ? err->code : HEARTH_ERR_NOMEM;
    out->h_logits = malloc(nn * (size_t)hp->n_expert * sizeof(float));
    out->h_weights = malloc(nn * k * sizeof(float));
    out->h_down = malloc(nn * k * E * sizeof(float));
    out->h_out = malloc(nn * E * sizeof(float));
    out->h_ids = malloc(nn * k * sizeof(int32_t));
    out->order = malloc(nn * k * sizeof(int32_t));
    out->inv = malloc(nn * k * sizeof(int32_t));
    out->xrows = malloc(nn * k * sizeof(int32_t));
    out->start = malloc(((size_t)hp->n_expert + 2) * sizeof(int64_t));
    if (!out->h_logits || !out->h_weights || !out->h_down || !out->h_out || !out->h_ids || !out->order ||
        !out->inv || !out->xrows || !out->start)
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory (mixture-of-experts buffers)");
    if (!cpu_experts) return HEARTH_OK;
    out->h_x = malloc(nn * E * sizeof(float));
    out->h_xs = malloc(nn * k * E * sizeof(float));
    out->h_g = malloc(nn * k * F * sizeof(float));
    out->h_u = malloc(nn * k * F * sizeof(float));
    if (!out->h_x || !out->h_xs || !out->h_g || !out->h_u)
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory (buffers of the experts on the cpu)");
    return HEARTH_OK;
}

hearth_status hearth_moe_bufs_alloc(hearth_backend *be, const hearth_hparams *hp, int max_tokens,
                                    bool cpu_experts, hearth_moe_bufs *out, hearth_error *err) {
    memset(out, 0, sizeof *out);
    if (hp->n_expert <= 0) return HEARTH_OK;
    const int64_t n = max_tokens, k = hp->n_expert_used;
    if (alloc_f32(be, hp->n_expert, n, &out->logits, err) || alloc_f32(be, k, n, &out->weights, err) ||
        alloc_f32(be, hp->n_ff_exp, n * k, &out->gate, err) ||
        alloc_f32(be, hp->n_ff_exp, n * k, &out->up, err) ||
        alloc_f32(be, hp->n_embd, n * k, &out->down, err))
        return err ? err->code : HEARTH_ERR_NOMEM;
    if (hp->n_ff_shexp > 0) { /* qwen2moe's shared expert */
        if (alloc_f32(be, 1, n, &out->sh_logit, err) || alloc_f32(be, 1, n, &out->sh_w, err) ||
            alloc_f32(be, hp->n_ff_shexp, n, &out->sh_gate, err) ||
            alloc_f32(be, hp->n_ff_shexp, n, &out->sh_up, err) ||
            alloc_f32(be, hp->n_embd, n, &out->sh_out, err))
            return err ? err->code : HEARTH_ERR_NOMEM;
        out->h_sg = malloc((size_t)n * sizeof(float));
        out->h_shout = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
        if (!out->h_sg || !out->h_shout) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    }
    if (!be->ops->moe_route || cpu_experts) {
        hearth_status st = alloc_host_path(be, hp, n, cpu_experts, out, err);
        if (st || !be->ops->moe_route) return st;
    }
    out->ids = be->ops->alloc(be, (size_t)(n * k) * sizeof(int32_t), err);
    return out->ids ? HEARTH_OK : (err ? err->code : HEARTH_ERR_NOMEM);
}

void hearth_moe_bufs_free(hearth_backend *be, hearth_moe_bufs *b) {
    hearth_tensor *ts[] = {&b->logits,   &b->weights, &b->gate,    &b->up,    &b->down,  &b->xs,
                           &b->sh_logit, &b->sh_w,    &b->sh_gate, &b->sh_up, &b->sh_out};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->data) be->ops->dealloc(be, ts[i]->data);
    if (b->ids) be->ops->dealloc(be, b->ids);
    void *host[] = {b->h_logits, b->h_weights, b->h_down,  b->h_out, b->h_ids, b->order, b->inv, b->xrows,
                    b->start,    b->h_sg,      b->h_shout, b->h_x,   b->h_xs,  b->h_g,   b->h_u};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
    memset(b, 0, sizeof *b);
}

/* qwen2moe's shared expert, enqueued: sh_out = SwiGLU(h) [n, n_embd], and
 * its gate logits h . g_sh [n, 1] on their way to B->h_sg (valid after the
 * caller's synchronize). */
static void shared_expert(hearth_backend *be, const hearth_layer *L, const hearth_tensor *h, int n,
                          hearth_moe_bufs *B) {
    const hearth_backend_ops *op = be->ops;
    hearth_tensor sl = hearth_tensor_rows(&B->sh_logit, 0, n), sg = hearth_tensor_rows(&B->sh_gate, 0, n),
                  su = hearth_tensor_rows(&B->sh_up, 0, n), so = hearth_tensor_rows(&B->sh_out, 0, n);
    op->matmul(be, &L->ffn_gate_inp_shexp, h, NULL, &sl);
    const hearth_tensor *w2[2] = {&L->ffn_gate_shexp, &L->ffn_up_shexp}, *b2[2] = {NULL, NULL};
    hearth_tensor *o2[2] = {&sg, &su};
    if (op->matmul_multi)
        op->matmul_multi(be, 2, w2, h, b2, o2);
    else
        for (int i = 0; i < 2; i++)
            op->matmul(be, w2[i], h, NULL, o2[i]);
    op->silu_mul(be, &sg, &su, &sg);
    op->matmul(be, &L->ffn_down_shexp, &sg, NULL, &so);
    op->download(be, B->h_sg, sl.data, (size_t)n * sizeof(float));
}

static void sigmoid_rows(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* Hand the expert inputs to the tap: xin [rows, E] and g [rows, F] on the
 * backend in expert order (expert e's rows start[e] .. start[e + 1]), or
 * (start == NULL) the token rows of h [n, E] once per choice, in choice
 * order, with the expert ids in `ids` on the backend. */
static hearth_status moe_tap(hearth_backend *be, const hearth_hparams *hp, const hearth_moe_tap *tap,
                             const hearth_tensor *xin, int n, const void *ids, const int64_t *start,
                             const hearth_tensor *g, hearth_error *err) {
    const bool expert = start != NULL;
    const hearth_backend_ops *op = be->ops;
    const int64_t k = hp->n_expert_used, rows = (int64_t)n * k, E = hp->n_embd, F = hp->n_ff_exp;
    const int64_t in_rows = expert ? rows : n;
    float *hx = malloc((size_t)(in_rows * E) * sizeof *hx),
          *hxr = expert ? NULL : malloc((size_t)(rows * E) * sizeof *hxr),
          *hg = malloc((size_t)(rows * F) * sizeof *hg);
    int32_t *ex = malloc((size_t)rows * sizeof *ex);
    hearth_status st = HEARTH_OK;
    if (!hx || !hg || !ex || (!expert && !hxr))
        st = hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory (the MoE tap)");
    if (!st) {
        op->download(be, hx, xin->data, (size_t)(in_rows * E) * sizeof *hx);
        op->download(be, hg, g->data, (size_t)(rows * F) * sizeof *hg);
        if (expert)
            for (int e = 0; e < hp->n_expert; e++)
                for (int64_t pos = start[e]; pos < start[e + 1]; pos++)
                    ex[pos] = e;
        else
            op->download(be, ex, ids, (size_t)rows * sizeof *ex);
        st = op->synchronize(be, err);
    }
    if (!st) {
        if (!expert)
            for (int64_t s = 0; s < rows; s++)
                memcpy(hxr + s * E, hx + (s / k) * E, (size_t)E * sizeof *hxr);
        tap->fn(tap->user, tap->layer, false, expert ? hx : hxr, ex, (int)rows, E);
        tap->fn(tap->user, tap->layer, true, hg, ex, (int)rows, F);
    }
    free(hx);
    free(hxr);
    free(hg);
    free(ex);
    return st;
}

/* Run the experts of one layer over their rows of xs (in expert order:
 * expert e's rows start[e] .. start[e + 1]) on `be`, where xs, g, u, d and
 * the layer's expert tensors live: g = silu(xs Wgate_e) * (xs Wup_e), then
 * the tap, then d = g Wdown_e. Only the chosen experts' weights are read. */
static hearth_status run_experts(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                                 const int64_t *start, const hearth_tensor *xs, hearth_tensor *g,
                                 hearth_tensor *u, hearth_tensor *d, int n, const hearth_moe_tap *tap,
                                 hearth_error *err) {
    const hearth_backend_ops *op = be->ops;
    const int ne = hp->n_expert;
    const int64_t E = hp->n_embd, F = hp->n_ff_exp;
    for (int e = 0; e < ne; e++) {
        const int64_t c = start[e + 1] - start[e];
        if (c == 0) continue; /* nobody chose it: its weights are not read */
        hearth_tensor xe = hearth_tensor_rows(xs, start[e], c), ge = hearth_tensor_rows(g, start[e], c),
                      ue = hearth_tensor_rows(u, start[e], c);
        hearth_tensor wg = hearth_tensor_rows(&L->ffn_gate_exps, e * F, F),
                      wu = hearth_tensor_rows(&L->ffn_up_exps, e * F, F);
        const hearth_tensor *w2[2] = {&wg, &wu}, *b2[2] = {NULL, NULL};
        hearth_tensor *o2[2] = {&ge, &ue};
        if (op->matmul_multi)
            op->matmul_multi(be, 2, w2, &xe, b2, o2);
        else
            for (int i = 0; i < 2; i++)
                op->matmul(be, w2[i], &xe, NULL, o2[i]);
    }
    op->silu_mul(be, g, u, g); /* elementwise: the expert order does not matter */
    hearth_status st;
    if (tap && tap->fn && (st = moe_tap(be, hp, tap, xs, n, NULL, start, g, err))) return st;
    for (int e = 0; e < ne; e++) {
        const int64_t c = start[e + 1] - start[e];
        if (c == 0) continue;
        hearth_tensor ge = hearth_tensor_rows(g, start[e], c), de = hearth_tensor_rows(d, start[e], c);
        hearth_tensor wd = hearth_tensor_rows(&L->ffn_down_exps, e * E, E);
        op->matmul(be, &wd, &ge, NULL, &de);
    }
    return HEARTH_OK;
}

/* The experts of a layer whose expert tensors stay in host memory
 * (--n-cpu-moe): h comes down (one sync), the rows are gathered and the
 * experts run on the host CPU backend, straight into B->h_down. */
static hearth_status experts_on_host(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                                     const hearth_tensor *h, int n, hearth_moe_bufs *B,
                                     const hearth_moe_tap *tap, hearth_error *err) {
    hearth_backend *host = be->host;
    const int64_t slots = (int64_t)n * hp->n_expert_used, E = hp->n_embd, F = hp->n_ff_exp;
    be->ops->download(be, B->h_x, h->data, (size_t)n * (size_t)E * sizeof(float));
    hearth_status st = be->ops->synchronize(be, err);
    if (st) return st;
    hearth_tensor hx = hearth_tensor_2d(HEARTH_F32, E, n, B->h_x),
                  xs = hearth_tensor_2d(HEARTH_F32, E, slots, B->h_xs),
                  g = hearth_tensor_2d(HEARTH_F32, F, slots, B->h_g),
                  u = hearth_tensor_2d(HEARTH_F32, F, slots, B->h_u),
                  d = hearth_tensor_2d(HEARTH_F32, E, slots, B->h_down);
    host->ops->get_rows_f32(host, &hx, B->xrows, (int)slots, &xs);
    if ((st = run_experts(host, hp, L, B->start, &xs, &g, &u, &d, n, tap, err))) return st;
    return host->ops->synchronize(host, err);
}

/* The experts on the device (see forward_moe.h): the rows gathered there in
 * expert order, the down outputs on their way to B->h_down (valid after the
 * caller's synchronize). */
static hearth_status experts_on_device(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                                       const hearth_tensor *h, int n, hearth_moe_bufs *B,
                                       const hearth_moe_tap *tap, hearth_error *err) {
    const int slots = n * hp->n_expert_used;
    hearth_tensor xs = hearth_tensor_rows(&B->xs, 0, slots);
    be->ops->get_rows_f32(be, h, B->xrows, slots, &xs);
    hearth_tensor g = hearth_tensor_rows(&B->gate, 0, slots), u = hearth_tensor_rows(&B->up, 0, slots),
                  d = hearth_tensor_rows(&B->down, 0, slots);
    hearth_status st = run_experts(be, hp, L, B->start, &xs, &g, &u, &d, n, tap, err);
    if (st) return st;
    be->ops->download(be, B->h_down, d.data, (size_t)slots * (size_t)hp->n_embd * sizeof(float));
    return HEARTH_OK;
}

/* The host-assisted path (see forward_moe.h). */
static hearth_status moe_ffn_host(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                                  const hearth_tensor *h, int n, hearth_moe_bufs *B, hearth_tensor *out,
                                  hearth_tensor *x, const hearth_moe_tap *tap, hearth_error *err) {
    const hearth_backend_ops *op = be->ops;
    hearth_backend *host = be->host;
    const int k = hp->n_expert_used, ne = hp->n_expert, slots = n * k;
    const int64_t E = hp->n_embd;
    hearth_tensor logits = hearth_tensor_rows(&B->logits, 0, n);
    op->matmul(be, &L->ffn_gate_inp, h, NULL, &logits);
    op->download(be, B->h_logits, logits.data, (size_t)n * (size_t)ne * sizeof(float));
    hearth_status st = op->synchronize(be, err);
    if (st) return st;
    hearth_tensor hl = hearth_tensor_2d(HEARTH_F32, ne, n, B->h_logits),
                  hw = hearth_tensor_2d(HEARTH_F32, k, n, B->h_weights);
    host->ops->moe_route(host, &hl, k, hp->expert_norm, B->h_ids, &hw);
    /* counting sort of the slots by expert: expert e's are order[start[e] .. start[e + 1]) */
    int64_t *start = B->start;
    memset(start, 0, ((size_t)ne + 2) * sizeof *start);
    for (int s = 0; s < slots; s++)
        start[B->h_ids[s] + 2]++;
    for (int e = 0; e < ne; e++)
        start[e + 2] += start[e + 1];
    for (int s = 0; s < slots; s++) {
        const int64_t pos = start[B->h_ids[s] + 1]++;
        B->order[pos] = s;
        B->inv[s] = (int32_t)pos;
        B->xrows[pos] = s / k;
    }
    st = L->experts_on_host ? experts_on_host(be, hp, L, h, n, B, tap, err)
                            : experts_on_device(be, hp, L, h, n, B, tap, err);
    if (st) return st;
    const bool shared = L->ffn_gate_inp_shexp.data != NULL;
    if (shared) {
        shared_expert(be, L, h, n, B);
        op->download(be, B->h_shout, B->sh_out.data, (size_t)n * (size_t)E * sizeof(float));
    }
    if ((st = op->synchronize(be, err))) return st;
    if (shared) sigmoid_rows(B->h_sg, n);
    for (int t = 0; t < n; t++) { /* the weighted sum, choices in order as moe_combine */
        float *o = B->h_out + (size_t)t * E;
        for (int j = 0; j < k; j++) {
            const float w = B->h_weights[t * k + j], *y = B->h_down + (size_t)B->inv[t * k + j] * E;
            for (int64_t i = 0; i < E; i++)
                o[i] = j ? o[i] + w * y[i] : w * y[i];
        }
        if (shared) /* + sigmoid(gate) x the shared expert, after the routed sum as llama.cpp */
            for (int64_t i = 0; i < E; i++)
                o[i] += B->h_sg[t] * B->h_shout[(size_t)t * E + i];
    }
    op->upload(be, out->data, B->h_out, (size_t)n * (size_t)E * sizeof(float));
    op->add(be, x, out, x);
    return HEARTH_OK;
}

hearth_status hearth_moe_ffn(hearth_backend *be, const hearth_hparams *hp, const hearth_layer *L,
                             const hearth_tensor *h, int n, hearth_moe_bufs *bufs, hearth_tensor *out,
                             hearth_tensor *x, const hearth_moe_tap *tap, hearth_error *err) {
    if (bufs->host_path || L->experts_on_host) return moe_ffn_host(be, hp, L, h, n, bufs, out, x, tap, err);
    const hearth_backend_ops *op = be->ops;
    const int k = hp->n_expert_used;
    hearth_tensor logits = hearth_tensor_rows(&bufs->logits, 0, n),
                  w = hearth_tensor_rows(&bufs->weights, 0, n),
                  g = hearth_tensor_rows(&bufs->gate, 0, (int64_t)n * k),
                  u = hearth_tensor_rows(&bufs->up, 0, (int64_t)n * k),
                  d = hearth_tensor_rows(&bufs->down, 0, (int64_t)n * k);
    op->matmul(be, &L->ffn_gate_inp, h, NULL, &logits);
    op->moe_route(be, &logits, k, hp->expert_norm, bufs->ids, &w);
    const hearth_tensor *w2[2] = {&L->ffn_gate_exps, &L->ffn_up_exps};
    hearth_tensor *o2[2] = {&g, &u};
    op->moe_matmul(be, 2, w2, h, bufs->ids, k, o2);
    op->silu_mul(be, &g, &u, &g);
    if (tap && tap->fn) {
        hearth_status st = moe_tap(be, hp, tap, h, n, bufs->ids, NULL, &g, err);
        if (st) return st;
    }
    const hearth_tensor *w1[1] = {&L->ffn_down_exps};
    hearth_tensor *o1[1] = {&d};
    op->moe_matmul(be, 1, w1, &g, bufs->ids, k, o1);
    op->moe_combine(be, &d, &w, k, out);
    if (L->ffn_gate_inp_shexp.data) { /* out += sigmoid(h . g_sh) * shared(h) */
        shared_expert(be, L, h, n, bufs);
        hearth_status st = op->synchronize(be, err);
        if (st) return st;
        sigmoid_rows(bufs->h_sg, n);
        hearth_tensor sw = hearth_tensor_rows(&bufs->sh_w, 0, n),
                      so = hearth_tensor_rows(&bufs->sh_out, 0, n);
        op->upload(be, sw.data, bufs->h_sg, (size_t)n * sizeof(float));
        op->moe_combine(be, &so, &sw, 1, &so); /* one row per token: a per-row scale */
        op->add(be, out, &so, out);
    }
    op->add(be, x, out, x);
    return HEARTH_OK;
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
        if (nl < 13 || memcmp(t->name.ptr + nl - 12, "_exps.weight", 12) || t->ne[2] != (uint64_t)n_expert)
            continue;
        *params += t->ne[0] * t->ne[1] * t->ne[2] / (uint64_t)n_expert * unused;
        *bytes += t->nbytes / (uint64_t)n_expert * unused;
    }
}
