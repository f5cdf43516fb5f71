/*
 * quantize_imatrix.c - the importance-matrix side of `hearth quantize`
 * (see quantize_imatrix.h). The checks run before any output is written,
 * so a wrong imatrix never leaves a partial file.
 */
#include "quantize_imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/quant_weighted.h"

static bool check_entry(const hearth_imatrix *im, const hearth_imatrix_entry *e, const hearth_gguf *g,
                        const char *path, hearth_error *err) {
    const gguf_tensor *t = hearth_gguf_find_tensor(g, e->name);
    const char *model = hearth_gguf_path(g);
    if (!t) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "%s is not an importance matrix of %s: its entry %s names no tensor of the model "
                         "(make one for this model with `hearth imatrix -m %s -f CALIB.txt`)",
                         path, model, e->name, model);
        return false;
    }
    const uint64_t want = t->ne[0] * (t->n_dims > 2 ? t->ne[2] : 1);
    if ((uint64_t)(e->ne0 * e->n_mat) != want && strcmp(e->name, "token_embd.weight")) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "%s is not an importance matrix of %s: %s has %lld values, the tensor %llu input "
                         "channels (make one for this model with `hearth imatrix`)",
                         path, model, e->name, (long long)(e->ne0 * e->n_mat), (unsigned long long)want);
        return false;
    }
    float *v = malloc((size_t)(e->ne0 * e->n_mat) * sizeof *v);
    if (!v) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    hearth_imatrix_weights(im, e, v);
    bool finite = true;
    for (int64_t i = 0; i < e->ne0 * e->n_mat && finite; i++)
        finite = isfinite(v[i]);
    free(v);
    if (!finite)
        hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: entry %s holds non-finite values", path, e->name);
    return finite;
}

hearth_imatrix *q_imatrix_open(const char *path, const hearth_gguf *g, hearth_error *err) {
    hearth_imatrix *im = hearth_imatrix_load(path, err);
    if (!im) return NULL;
    bool ok = true;
    if (!im->legacy && !im->has_metadata) {
        hearth_error_set(err, HEARTH_ERR_FORMAT,
                         "%s has no imatrix.datasets/chunk_count/chunk_size keys (llama-quantize refuses it "
                         "too): write it again with `hearth imatrix` or llama-imatrix",
                         path);
        ok = false;
    }
    for (size_t i = 0; i < im->n && ok; i++)
        ok = check_entry(im, &im->e[i], g, path, err);
    if (!ok) {
        hearth_imatrix_free(im);
        return NULL;
    }
    return im;
}

bool q_imatrix_type_ok(const hearth_imatrix *im, const char *name, hearth_dtype t, hearth_error *err) {
    if (!hearth_imatrix_find(im, name) || hearth_quant_weighted_kind(t) >= 0) return true;
    hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                     "%s would be %s, which has no importance-weighted quantizer in Hearth yet: quantize "
                     "without --imatrix, or to a Q*_0/Q*_1/Q*_K type",
                     name, hearth_dtype_name(t));
    return false;
}

bool q_imatrix_weights(const hearth_imatrix *im, const char *name, int64_t ne0, int64_t n_mat, float **buf,
                       size_t *cap, const float **qw, hearth_error *err) {
    *qw = NULL;
    const hearth_imatrix_entry *e = hearth_imatrix_find(im, name);
    /* none, or token_embd of another width (llama.cpp skips it too) */
    if (!e || e->ne0 * e->n_mat != ne0 * n_mat) return true;
    if (!hearth_grow((void **)buf, cap, (size_t)(ne0 * n_mat), sizeof **buf))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    hearth_imatrix_weights(im, e, *buf);
    *qw = *buf;
    return true;
}

bool q_imatrix_metadata(hearth_gguf_writer *w, const hearth_imatrix *im, const char *path,
                        hearth_error *err) {
    char v[128];
    snprintf(v, sizeof v, "%s", path);
    if (hearth_gguf_writer_set_str(w, "quantize.imatrix.file", v, err)) return false;
    if (im->n_datasets) {
        snprintf(v, sizeof v, "%s", im->datasets[0]);
        if (hearth_gguf_writer_set_str(w, "quantize.imatrix.dataset", v, err)) return false;
    }
    if (hearth_gguf_writer_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n, err)) return false;
    return !im->chunk_count ||
           !hearth_gguf_writer_set_u32(w, "quantize.imatrix.chunks_count", im->chunk_count, err);
}
