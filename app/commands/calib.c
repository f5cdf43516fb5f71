/*
 * calib.c - the calibration driver of calib.h: tokenize, chunk, run every
 * chunk through the forward pass with a matmul-input tap.
 * Ownership: buffers allocated per call and freed before returning.
 */
#include "calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/common.h"
#include "core/os.h"
#include "runtime/kv/kv_cache.h"

bool calib_tokens(const hearth_model *m, const char *path, int n_ctx, int max_chunks, hearth_tokens *out,
                  int *n_chunk, hearth_error *err) {
    size_t len = 0;
    char *text = app_read_file(path, "calibration text", &len, err);
    if (!text) return false;
    bool ok = !hearth_tokenizer_encode(m->tokenizer, text, len, true, false, out, err);
    free(text);
    if (ok && out->n < (size_t)n_ctx) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "calibration text %s has %zu tokens, shorter than one context of %d: use a longer "
                         "text or a smaller -c",
                         path, out->n, n_ctx);
        ok = false;
    }
    if (!ok) return false;
    *n_chunk = (int)(out->n / (size_t)n_ctx);
    if (max_chunks > 0 && max_chunks < *n_chunk) *n_chunk = max_chunks;
    return true;
}

double calib_nll(const float *logits, int n_vocab, int32_t tok) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - mx);
    return -(logits[tok] - mx - log(sum));
}

/* The tap as the caller sees it: rows of ubatches of >= min_rows tokens. */
typedef struct calib_gate {
    hearth_forward_tap_fn fn;
    void *user;
    bool open;
} calib_gate;

static void gate_tap(void *user, hearth_tap_site site, int layer, const float *x, int n_rows, int64_t ne0) {
    calib_gate *g = user;
    if (g->open) g->fn(g->user, site, layer, x, n_rows, ne0);
}

typedef struct calib_buf {
    int32_t *chunk, *pos, *seqs;
    bool *want;
    float *logits;
} calib_buf;

/* One chunk (chunk[0] already BOS): ubatches of max_tok tokens; with ppl,
 * the part of an ubatch in the scored half runs in pieces of at most
 * HEARTH_FORWARD_MAX_LOGITS tokens, all with logits. */
static bool calib_chunk(hearth_forward *fw, hearth_kv_cache *kv, const hearth_model *m, int n_ctx,
                        int max_tok, calib_buf *b, calib_gate *g, int min_rows, calib_ppl *ppl,
                        hearth_error *err) {
    int seq = hearth_kv_seq_create(kv, err);
    if (seq < 0) return false;
    const int first = n_ctx / 2, n_vocab = m->hp.n_vocab;
    for (int i = 0; i < n_ctx; i++)
        b->pos[i] = i, b->seqs[i] = seq;
    bool ok = true;
    for (int p = 0; p < n_ctx && ok; p += max_tok) {
        const int n = n_ctx - p < max_tok ? n_ctx - p : max_tok;
        g->open = n >= min_rows;
        for (int q = p; q < p + n && ok;) {
            int k = p + n - q;
            if (ppl && q < first && q + k > first) k = first - q;
            const bool scored = ppl && q >= first;
            if (scored && k > HEARTH_FORWARD_MAX_LOGITS) k = HEARTH_FORWARD_MAX_LOGITS;
            for (int i = 0; i < k; i++)
                b->want[i] = scored;
            hearth_ubatch ub = {k, b->chunk + q, b->pos + q, b->seqs + q, b->want};
            ok = hearth_forward_run(fw, &ub, scored ? b->logits : NULL, err) >= 0;
            for (int i = 0; ok && scored && i < k && q + i <= n_ctx - 2; i++) {
                const double v = calib_nll(b->logits + (size_t)i * n_vocab, n_vocab, b->chunk[q + i + 1]);
                ppl->nll += v;
                ppl->nll2 += v * v;
                ppl->count++;
            }
            q += k;
        }
    }
    hearth_kv_seq_free(kv, seq);
    return ok;
}

bool calib_run(hearth_model *m, hearth_backend *be, const hearth_tokens *toks, int n_ctx, int n_chunk,
               hearth_forward_tap_fn fn, hearth_moe_tap_fn moe_fn, void *user, int min_rows, calib_ppl *ppl,
               bool progress, const char *label, hearth_error *err) {
    const int page = 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv,  m->hp.head_dim, HEARTH_F16,
                           page,          n_ctx / page + 2, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, err);
    const int max_tok = n_ctx < 512 ? n_ctx : 512;
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, max_tok, err) : NULL;
    calib_buf b = {malloc((size_t)n_ctx * sizeof *b.chunk), malloc((size_t)n_ctx * sizeof *b.pos),
                   malloc((size_t)n_ctx * sizeof *b.seqs), calloc((size_t)n_ctx, sizeof *b.want),
                   ppl ? malloc((size_t)HEARTH_FORWARD_MAX_LOGITS * (size_t)m->hp.n_vocab * sizeof(float))
                       : NULL};
    bool ok = kv && fw && b.chunk && b.pos && b.seqs && b.want && (!ppl || b.logits);
    if (!ok && !err->msg[0]) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    calib_gate g = {fn, user, true};
    if (ok) hearth_forward_set_tap(fw, gate_tap, &g);
    if (ok && moe_fn) hearth_forward_set_moe_tap(fw, moe_fn, user);
    const int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    const double t0 = hearth_now_ms();
    for (int c = 0; c < n_chunk && ok; c++) {
        memcpy(b.chunk, toks->ids + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *b.chunk);
        if (bos >= 0) b.chunk[0] = bos;
        ok = calib_chunk(fw, kv, m, n_ctx, max_tok, &b, &g, min_rows, ppl, err);
        if (ok && ppl && ppl->count) {
            const double cp = exp(ppl->nll / (double)ppl->count);
            if (ppl->chunk_ppl) ppl->chunk_ppl[c] = cp;
            if (ppl->print) {
                if (progress) fprintf(stderr, "\r\033[K");
                printf("[%d]%.4f,", c + 1, cp);
                fflush(stdout);
            }
        }
        if (ok && progress)
            fprintf(stderr, "\r%s: chunk %d/%d, %.1f s", label, c + 1, n_chunk,
                    (hearth_now_ms() - t0) / 1000);
    }
    if (progress) fprintf(stderr, "\r\033[K");
    if (ppl && ppl->print) printf("\n");
    free(b.want);
    free(b.seqs);
    free(b.pos);
    free(b.chunk);
    free(b.logits);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}
