/*
 * imatrix_file.c - read and write importance matrices in llama.cpp's GGUF
 * and legacy .dat forms (see imatrix_file.h).
 *
 * Ownership: every entry's sums/counts and every dataset string belong to
 * the hearth_imatrix and are freed by hearth_imatrix_free.
 * Invariant: the GGUF written here has llama-imatrix's layout (keys in its
 * order, tensors sorted by name with trailing unit dimensions dropped, as
 * ggml stores them), so llama-quantize --imatrix reads it.
 */
#include "imatrix_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "runtime/format/gguf.h"
#include "runtime/format/gguf_writer.h"

hearth_imatrix *hearth_imatrix_new(hearth_error *err) {
    hearth_imatrix *im = calloc(1, sizeof *im);
    if (!im) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    return im;
}

void hearth_imatrix_free(hearth_imatrix *im) {
    if (!im) return;
    for (size_t i = 0; i < im->n; i++) {
        free(im->e[i].sums);
        free(im->e[i].counts);
    }
    for (size_t i = 0; i < im->n_datasets; i++)
        free(im->datasets[i]);
    free(im->datasets);
    free(im->e);
    free(im);
}

const hearth_imatrix_entry *hearth_imatrix_find(const hearth_imatrix *im, const char *name) {
    for (size_t i = 0; i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) return &im->e[i];
    return NULL;
}

hearth_imatrix_entry *hearth_imatrix_entry_for(hearth_imatrix *im, const char *name, int64_t ne0,
                                               int64_t n_mat, hearth_error *err) {
    hearth_imatrix_entry *e = (hearth_imatrix_entry *)hearth_imatrix_find(im, name);
    if (e) {
        if (e->ne0 == ne0 && e->n_mat == n_mat) return e;
        hearth_error_set(err, HEARTH_ERR_FORMAT, "imatrix entry %s has %lld x %lld values, not %lld x %lld",
                         name, (long long)e->ne0, (long long)e->n_mat, (long long)ne0, (long long)n_mat);
        return NULL;
    }
    if (strlen(name) >= sizeof e->name || ne0 <= 0 || n_mat <= 0) {
        hearth_error_set(err, HEARTH_ERR_FORMAT, "imatrix entry '%.60s...': bad name or shape", name);
        return NULL;
    }
    if (!hearth_grow((void **)&im->e, &im->cap, im->n + 1, sizeof *im->e)) goto nomem;
    e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ne0 = ne0;
    e->n_mat = n_mat;
    e->sums = calloc((size_t)(ne0 * n_mat), sizeof *e->sums);
    e->counts = calloc((size_t)n_mat, sizeof *e->counts);
    if (!e->sums || !e->counts) {
        free(e->sums);
        free(e->counts);
        goto nomem;
    }
    im->n++;
    return e;
nomem:
    hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    return NULL;
}

hearth_status hearth_imatrix_add_dataset(hearth_imatrix *im, const char *name, hearth_error *err) {
    size_t cap = im->n_datasets;
    char *s = strdup(name);
    if (!s || !hearth_grow((void **)&im->datasets, &cap, im->n_datasets + 1, sizeof *im->datasets)) {
        free(s);
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    }
    im->datasets[im->n_datasets++] = s;
    return HEARTH_OK;
}

hearth_status hearth_imatrix_merge(hearth_imatrix *dst, const hearth_imatrix *src, int64_t chunk_size,
                                   int64_t *chunks, hearth_error *err) {
    const double mul = src->legacy ? (double)chunk_size : 1.0;
    int64_t max_count = 0;
    for (size_t i = 0; i < src->n; i++) {
        const hearth_imatrix_entry *se = &src->e[i];
        hearth_imatrix_entry *de = hearth_imatrix_entry_for(dst, se->name, se->ne0, se->n_mat, err);
        if (!de) return err && err->code ? err->code : HEARTH_ERR_FORMAT;
        for (int64_t j = 0; j < se->n_mat * se->ne0; j++)
            de->sums[j] += se->sums[j] * mul;
        for (int64_t k = 0; k < se->n_mat; k++) {
            const int64_t c = (int64_t)((double)se->counts[k] * mul);
            de->counts[k] += c;
            max_count = c > max_count ? c : max_count;
        }
    }
    for (size_t i = 0; i < src->n_datasets; i++) {
        hearth_status st = hearth_imatrix_add_dataset(dst, src->datasets[i], err);
        if (st) return st;
    }
    *chunks = chunk_size > 0 ? max_count / chunk_size : 0;
    return HEARTH_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const hearth_imatrix_entry *const *)a)->name,
                  (*(const hearth_imatrix_entry *const *)b)->name);
}

static hearth_status save_data(hearth_gguf_writer *w, FILE *f, const char *path,
                               const hearth_imatrix_entry **ord, size_t n, hearth_error *err) {
    if (hearth_gguf_writer_begin(w, f, path, err)) return err->code;
    for (size_t i = 0; i < n; i++) {
        const hearth_imatrix_entry *e = ord[i];
        const size_t nv = (size_t)(e->ne0 * e->n_mat);
        float *buf = malloc((nv > (size_t)e->n_mat ? nv : (size_t)e->n_mat) * sizeof *buf);
        if (!buf) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < nv; j++)
            buf[j] = (float)e->sums[j];
        hearth_status st = hearth_gguf_writer_write(w, buf, nv * sizeof *buf, err);
        for (int64_t j = 0; j < e->n_mat && !st; j++)
            buf[j] = (float)e->counts[j];
        if (!st) st = hearth_gguf_writer_write(w, buf, (size_t)e->n_mat * sizeof *buf, err);
        free(buf);
        if (st) return st;
    }
    return hearth_gguf_writer_finish(w, err);
}

hearth_status hearth_imatrix_save(const hearth_imatrix *im, const char *path, hearth_error *err) {
    const hearth_imatrix_entry **ord = malloc((im->n ? im->n : 1) * sizeof *ord);
    hearth_gguf_writer *w = ord ? hearth_gguf_writer_create(err) : NULL;
    if (!ord) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    hearth_status st = w ? HEARTH_OK : err->code;
    for (size_t i = 0; i < im->n && !st; i++)
        ord[i] = &im->e[i];
    if (!st) qsort(ord, im->n, sizeof *ord, by_name);
    if (!st) st = hearth_gguf_writer_set_str(w, "general.type", "imatrix", err);
    if (!st)
        st = hearth_gguf_writer_set_str_arr(w, "imatrix.datasets", (const char *const *)im->datasets, NULL,
                                            im->n_datasets, err);
    if (!st) st = hearth_gguf_writer_set_u32(w, "imatrix.chunk_count", im->chunk_count, err);
    if (!st) st = hearth_gguf_writer_set_u32(w, "imatrix.chunk_size", im->chunk_size, err);
    char name[200];
    for (size_t i = 0; i < im->n && !st; i++) {
        const hearth_imatrix_entry *e = ord[i];
        /* ggml drops trailing dimensions of 1 */
        uint64_t ne_s[2] = {(uint64_t)e->ne0, (uint64_t)e->n_mat}, ne_c[2] = {1, (uint64_t)e->n_mat};
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        st = hearth_gguf_writer_add_tensor(w, name, HEARTH_F32, e->n_mat > 1 ? 2 : 1, ne_s, err);
        snprintf(name, sizeof name, "%s.counts", e->name);
        if (!st) st = hearth_gguf_writer_add_tensor(w, name, HEARTH_F32, e->n_mat > 1 ? 2 : 1, ne_c, err);
    }
    FILE *f = NULL;
    if (!st && !(f = fopen(path, "wb")))
        st = hearth_error_set(err, HEARTH_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    if (!st) st = save_data(w, f, path, ord, im->n, err);
    if (f && fclose(f) != 0 && !st)
        st = hearth_error_set(err, HEARTH_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    hearth_gguf_writer_free(w);
    free(ord);
    return st;
}

/* ---------------------------------------------------------------- loading */

static bool ends_with(const char *s, const char *suf, size_t *stem) {
    size_t n = strlen(s), m = strlen(suf);
    if (n <= m || strcmp(s + n - m, suf)) return false;
    *stem = n - m;
    return true;
}

static hearth_status load_gguf_tensors(hearth_imatrix *im, const hearth_gguf *g, const char *path,
                                       hearth_error *err) {
    char tn[256];
    size_t stem;
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        hearth_str_copy(t->name, tn, sizeof tn);
        if (!ends_with(tn, ".in_sum2", &stem)) continue;
        tn[stem] = 0;
        char cn[300];
        snprintf(cn, sizeof cn, "%s.counts", tn);
        const gguf_tensor *c = hearth_gguf_find_tensor(g, cn);
        if (!c) return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s.in_sum2 has no %s", path, tn, cn);
        if (t->type != HEARTH_F32 || c->type != HEARTH_F32)
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s: in_sum2/counts are not F32", path, tn);
        uint64_t nv = t->nbytes / 4, nc = c->nbytes / 4;
        if (!nc || nv % nc)
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s: %llu sums do not split over %llu counts",
                                    path, tn, (unsigned long long)nv, (unsigned long long)nc);
        hearth_imatrix_entry *e = hearth_imatrix_entry_for(im, tn, (int64_t)(nv / nc), (int64_t)nc, err);
        if (!e) return err->code;
        const float *sv = t->data, *cv = c->data;
        for (uint64_t j = 0; j < nv; j++)
            e->sums[j] = sv[j];
        for (uint64_t j = 0; j < nc; j++)
            e->counts[j] = lroundf(cv[j]); /* as llama.cpp's loader */
    }
    /* counts without sums: llama.cpp refuses these too */
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        hearth_str_copy(hearth_gguf_tensor_at(g, i)->name, tn, sizeof tn);
        if (ends_with(tn, ".counts", &stem)) {
            tn[stem] = 0;
            if (!hearth_imatrix_find(im, tn))
                return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: %s.counts has no in_sum2", path, tn);
        }
    }
    if (!im->n)
        return hearth_error_set(
            err, HEARTH_ERR_FORMAT,
            "%s: a GGUF file with no imatrix entries (no *.in_sum2 tensors): is it a model, "
            "not an importance matrix?",
            path);
    return HEARTH_OK;
}

static hearth_status load_gguf(hearth_imatrix *im, const char *path, hearth_error *err) {
    hearth_gguf *g = hearth_gguf_open(path, err);
    if (!g) return err->code;
    hearth_str ty = {0};
    char tbuf[64] = "";
    if (hearth_gguf_get_str(g, "general.type", &ty)) hearth_str_copy(ty, tbuf, sizeof tbuf);
    hearth_status st = HEARTH_OK;
    if (tbuf[0] && strcmp(tbuf, "imatrix"))
        st = hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: general.type is '%s', not 'imatrix'", path, tbuf);
    const gguf_kv *ds = st ? NULL : hearth_gguf_get_arr(g, "imatrix.datasets", GGUF_STRING);
    char buf[4096];
    for (uint64_t i = 0; ds && ds->strs && i < ds->arr_n && !st; i++)
        st = hearth_imatrix_add_dataset(im, hearth_str_copy(ds->strs[i], buf, sizeof buf), err);
    bool has_cc = hearth_gguf_get_u32(g, "imatrix.chunk_count", &im->chunk_count);
    bool has_cs = hearth_gguf_get_u32(g, "imatrix.chunk_size", &im->chunk_size);
    im->has_metadata = ds && has_cc && has_cs;
    if (!st) st = load_gguf_tensors(im, g, path, err);
    hearth_gguf_close(g);
    return st;
}

static bool rd(FILE *f, void *p, size_t n) {
    return fread(p, 1, n, f) == n;
}

static hearth_status load_legacy(hearth_imatrix *im, FILE *f, const char *path, hearth_error *err) {
    int32_t n_entries = 0;
    if (!rd(f, &n_entries, 4) || n_entries < 1 || n_entries > 1 << 20)
        return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                "%s: neither a GGUF imatrix nor a legacy .dat imatrix (bad entry count)",
                                path);
    char name[256];
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len = 0, ncall = 0, nval = 0;
        if (!rd(f, &len, 4) || len < 1 || len >= (int32_t)sizeof name || !rd(f, name, (size_t)len))
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: legacy imatrix: bad name of entry %d", path,
                                    (int)i + 1);
        name[len] = 0;
        if (!rd(f, &ncall, 4) || !rd(f, &nval, 4) || nval < 1 || nval > 1 << 28)
            return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: legacy imatrix: bad size of %s", path, name);
        hearth_imatrix_entry *e = hearth_imatrix_entry_for(im, name, nval, 1, err);
        if (!e) return err->code;
        for (int32_t j = 0; j < nval; j++) {
            float v;
            if (!rd(f, &v, 4))
                return hearth_error_set(err, HEARTH_ERR_FORMAT, "%s: legacy imatrix cut short in %s", path,
                                        name);
            e->sums[j] = v;
        }
        e->counts[0] = ncall;
    }
    int32_t n_calls = 0, len = 0;
    if (rd(f, &n_calls, 4)) {
        im->chunk_count = (uint32_t)n_calls;
        if (rd(f, &len, 4) && len > 0 && len < 4096) {
            char ds[4096];
            if (rd(f, ds, (size_t)len)) {
                ds[len] = 0;
                if (hearth_imatrix_add_dataset(im, ds, err)) return err->code;
            }
        }
    }
    im->legacy = true;
    return HEARTH_OK;
}

hearth_imatrix *hearth_imatrix_load(const char *path, hearth_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hearth_error_set(err, HEARTH_ERR_IO, "cannot open imatrix %s: %s", path, strerror(errno));
        return NULL;
    }
    char magic[4] = {0};
    bool is_gguf = rd(f, magic, 4) && !memcmp(magic, "GGUF", 4);
    hearth_imatrix *im = hearth_imatrix_new(err);
    hearth_status st = im ? HEARTH_OK : HEARTH_ERR_NOMEM;
    if (!st && !is_gguf) {
        rewind(f);
        st = load_legacy(im, f, path, err);
    }
    fclose(f);
    if (!st && is_gguf) st = load_gguf(im, path, err);
    if (st) {
        hearth_imatrix_free(im);
        return NULL;
    }
    return im;
}

void hearth_imatrix_weights(const hearth_imatrix *im, const hearth_imatrix_entry *e, float *out) {
    for (int64_t m = 0; m < e->n_mat; m++) {
        const double *s = e->sums + m * e->ne0;
        float *o = out + m * e->ne0;
        if (im->legacy) {
            const int64_t ncall = e->counts[0];
            for (int64_t i = 0; i < e->ne0; i++)
                o[i] = ncall > 0 ? (float)s[i] / (float)ncall : (float)s[i];
        } else {
            const float count = (float)e->counts[m];
            for (int64_t i = 0; i < e->ne0; i++)
                o[i] = count > 0.0f ? (float)s[i] / count : 1.0f;
        }
    }
}
