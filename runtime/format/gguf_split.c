/*
 * gguf_split.c - a GGUF model written as N part files (gguf_split.h).
 *
 * Tensors keep their file order; part boundaries are chosen so each part
 * holds about total/N tensor bytes, and every part gets at least one
 * tensor. Part 1 carries every key of the source (split.* keys are set
 * fresh), the others only the split.* keys, as llama.cpp's gguf-split does.
 */
#include "gguf_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"

const char *hearth_gguf_split_path(const char *prefix, uint32_t k, uint32_t n, char *buf, size_t cap) {
    snprintf(buf, cap, "%s-%05u-of-%05u.gguf", prefix, k, n);
    return buf;
}

/* Write tensors [lo, hi) of src as part `no` (0-based) of `count`. */
static hearth_status write_part(const hearth_gguf *src, const char *path, uint32_t no, uint32_t count,
                                uint64_t lo, uint64_t hi, hearth_error *err) {
    hearth_gguf_writer *w = hearth_gguf_writer_create(err);
    if (!w) return err ? err->code : HEARTH_ERR_NOMEM;
    hearth_status st = HEARTH_OK;
    for (uint64_t i = 0; no == 0 && i < hearth_gguf_n_kv(src) && !st; i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(src, i);
        if (kv->key.len > 6 && !memcmp(kv->key.ptr, "split.", 6)) continue; /* a re-split: set fresh below */
        st = hearth_gguf_writer_copy_kv(w, kv, err);
    }
    if (!st) st = hearth_gguf_writer_set_u16(w, "split.no", (uint16_t)no, err);
    if (!st) st = hearth_gguf_writer_set_u16(w, "split.count", (uint16_t)count, err);
    if (!st)
        st = hearth_gguf_writer_set_i32(w, "split.tensors.count", (int32_t)hearth_gguf_n_tensors(src), err);
    char name[512];
    for (uint64_t i = lo; i < hi && !st; i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(src, i);
        st = hearth_gguf_writer_add_tensor(w, hearth_str_copy(t->name, name, sizeof name), t->type, t->n_dims,
                                           t->ne, err);
    }
    FILE *f = NULL;
    if (!st && !(f = fopen(path, "wb")))
        st = hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot create the part file", path);
    if (!st) st = hearth_gguf_writer_begin(w, f, path, err);
    for (uint64_t i = lo; i < hi && !st; i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(src, i);
        st = hearth_gguf_writer_write(w, t->data, (size_t)t->nbytes, err);
    }
    if (!st) st = hearth_gguf_writer_finish(w, err);
    if (f && fclose(f) != 0 && !st) st = hearth_error_set(err, HEARTH_ERR_IO, "%s: write failed", path);
    hearth_gguf_writer_free(w);
    if (st) remove(path);
    return st;
}

/* Bytes a part's header takes for tensor t (name, dims, type, offset) plus
 * the worst alignment padding. */
static uint64_t info_bytes(const gguf_tensor *t) {
    return 8 + t->name.len + 4 + 8ull * t->n_dims + 4 + 8 + 32;
}

/* The first tensor of each part into cut[0..n] (cut[n] = n_tensors): n parts
 * of about equal bytes, or (max_bytes) as few parts as keep each file under
 * max_bytes, filled in order. Returns the part count, 0 when a part cannot
 * fit (err says which tensor). */
static uint32_t plan_parts(const hearth_gguf *src, uint32_t n, uint64_t max_bytes, uint64_t *cut,
                           uint32_t cap, hearth_error *err) {
    uint64_t n_t = hearth_gguf_n_tensors(src), total = 0;
    for (uint64_t i = 0; i < n_t; i++)
        total += hearth_gguf_tensor_at(src, i)->nbytes;
    if (!max_bytes) {
        uint64_t lo = 0, acc = 0;
        for (uint32_t k = 0; k < n; k++) {
            cut[k] = lo;
            uint64_t hi = lo, goal = total / n * (k + 1);
            /* end this part at its share, leaving a tensor for each later part */
            while (hi < n_t - (n - 1 - k) && (hi == lo || acc < goal || k == n - 1))
                acc += hearth_gguf_tensor_at(src, hi++)->nbytes;
            lo = hi;
        }
        cut[n] = n_t;
        return n;
    }
    /* part 1 carries the metadata: the source's header without its tensor infos is an upper bound */
    uint64_t meta = hearth_gguf_header_bytes(src);
    uint32_t k = 0;
    uint64_t used = meta + 256;
    cut[0] = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(src, i);
        uint64_t need = t->nbytes + info_bytes(t);
        if (used + need > max_bytes && cut[k] != i) { /* start the next part */
            if (k + 1 >= cap) {
                hearth_error_set(err, HEARTH_ERR_INVALID, "more than %u parts would be needed", cap - 1);
                return 0;
            }
            cut[++k] = i;
            used = 256;
        }
        if (used + need > max_bytes) {
            char name[256];
            hearth_error_set(err, HEARTH_ERR_INVALID,
                             "tensor '%s' (%llu bytes) does not fit in a part of %llu bytes with its header",
                             hearth_str_copy(t->name, name, sizeof name), (unsigned long long)t->nbytes,
                             (unsigned long long)max_bytes);
            return 0;
        }
        used += need;
    }
    cut[k + 1] = n_t;
    return k + 1;
}

hearth_status hearth_gguf_split_write(const hearth_gguf *src, const char *prefix, uint32_t n_parts,
                                      uint64_t max_bytes,
                                      void (*progress)(void *ctx, uint32_t part, uint32_t n), void *ctx,
                                      uint32_t *parts_out, hearth_error *err) {
    uint64_t n_t = hearth_gguf_n_tensors(src);
    if ((n_parts == 0) == (max_bytes == 0) || n_parts > 9999 || n_parts > n_t)
        return hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "cannot split %llu tensors into %u parts (give 1 to 9999 parts, at most one per "
            "tensor, or a largest part size)",
            (unsigned long long)n_t, n_parts);
    enum { CAP = 10000 };
    uint64_t *cut = malloc(sizeof *cut * (CAP + 1));
    if (!cut) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    uint32_t n = plan_parts(src, n_parts, max_bytes, cut, CAP, err);
    hearth_status st = n ? HEARTH_OK : HEARTH_ERR_INVALID;
    char path[4200];
    for (uint32_t k = 0; k < n && !st; k++) {
        st = write_part(src, hearth_gguf_split_path(prefix, k + 1, n, path, sizeof path), k, n, cut[k],
                        cut[k + 1], err);
        if (!st && progress) progress(ctx, k + 1, n);
    }
    free(cut);
    if (!st && parts_out) *parts_out = n;
    return st;
}
