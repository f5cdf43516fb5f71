/*
 * calib.c - the calibration driver of calib.h: tokenize, chunk, run every
 * chunk through the forward pass with a matmul-input tap.
 * Ownership: buffers allocated per call and freed before returning.
 */
#include "calib.h"

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

bool calib_run(hearth_model *m, hearth_backend *be, const hearth_tokens *toks, int n_ctx, int n_chunk,
               hearth_forward_tap_fn fn, void *user, bool progress, const char *label, hearth_error *err) {
    const int page = 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv,  m->hp.head_dim, HEARTH_F16,
                           page,          n_ctx / page + 2, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, err);
    const int max_tok = n_ctx < 512 ? n_ctx : 512;
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, max_tok, err) : NULL;
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk), *pos = malloc((size_t)n_ctx * sizeof *pos),
            *seqs = malloc((size_t)n_ctx * sizeof *seqs);
    bool *want = calloc((size_t)n_ctx, sizeof *want);
    bool ok = kv && fw && chunk && pos && seqs && want;
    if (!ok && !err->msg[0]) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    if (ok) hearth_forward_set_tap(fw, fn, user);
    const int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    const double t0 = hearth_now_ms();
    for (int c = 0; c < n_chunk && ok; c++) {
        memcpy(chunk, toks->ids + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        int seq = hearth_kv_seq_create(kv, err);
        if (seq < 0) {
            ok = false;
            break;
        }
        for (int i = 0; i < n_ctx; i++)
            pos[i] = i, seqs[i] = seq;
        for (int p = 0; p < n_ctx && ok; p += max_tok) {
            int n = n_ctx - p < max_tok ? n_ctx - p : max_tok;
            hearth_ubatch ub = {n, chunk + p, pos + p, seqs + p, want}; /* no logits needed */
            ok = hearth_forward_run(fw, &ub, NULL, err) >= 0;
        }
        hearth_kv_seq_free(kv, seq);
        if (ok && progress)
            fprintf(stderr, "\r%s: chunk %d/%d, %.1f s", label, c + 1, n_chunk,
                    (hearth_now_ms() - t0) / 1000);
    }
    if (progress) fprintf(stderr, "\r\033[K");
    free(want);
    free(seqs);
    free(pos);
    free(chunk);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}
