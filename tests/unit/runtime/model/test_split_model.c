/*
 * test_split_model.c - split GGUF models (NAME-00001-of-0000N.gguf, as
 * llama.cpp's gguf-split writes them and Hugging Face serves large models):
 * the sample model is split into 3 parts by hearth_gguf_split_write
 * (runtime/format/gguf_split.c: the first with all the metadata, every part
 * with split.no / split.count / split.tensors.count and its share of the
 * tensors); opening the first part finds every tensor with the same bytes,
 * and the model loaded from the parts gives bit-identical logits to the
 * whole file. Broken sets (written here by hand) give errors that name the
 * part: a missing part, a part of another split, opening a later part, a
 * tensor in two parts.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/format/gguf_split.h"
#include "runtime/format/gguf_writer.h"
#include "runtime/model/forward.h"
#include "test.h"

/* Write src's tensors [lo, hi) as part `no` of `count` at path; part 0 gets
 * every key of src. split_no_override >= 0 writes that split.no instead. */
static bool write_part(const hearth_gguf *src, const char *path, uint32_t no, uint32_t count, uint64_t lo,
                       uint64_t hi, int split_no_override, const char *extra_tensor) {
    hearth_error err = {0};
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    if (!w) return false;
    bool ok = true;
    if (no == 0)
        for (uint64_t i = 0; i < hearth_gguf_n_kv(src) && ok; i++)
            ok = hearth_gguf_writer_copy_kv(w, hearth_gguf_kv_at(src, i), &err) == HEARTH_OK;
    ok = ok &&
         !hearth_gguf_writer_set_u16(
             w, "split.no", (uint16_t)(split_no_override >= 0 ? split_no_override : (int)no), &err) &&
         !hearth_gguf_writer_set_u16(w, "split.count", (uint16_t)count, &err) &&
         !hearth_gguf_writer_set_i32(w, "split.tensors.count", (int32_t)hearth_gguf_n_tensors(src), &err);
    char name[256];
    for (uint64_t i = lo; i < hi && ok; i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(src, i);
        ok = !hearth_gguf_writer_add_tensor(w, hearth_str_copy(t->name, name, sizeof name), t->type,
                                            t->n_dims, t->ne, &err);
    }
    const gguf_tensor *dup = extra_tensor ? hearth_gguf_find_tensor(src, extra_tensor) : NULL;
    if (dup && ok)
        ok = !hearth_gguf_writer_add_tensor(w, extra_tensor, dup->type, dup->n_dims, dup->ne, &err);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && !hearth_gguf_writer_begin(w, f, path, &err);
    for (uint64_t i = lo; i < hi && ok; i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(src, i);
        ok = !hearth_gguf_writer_write(w, t->data, (size_t)t->nbytes, &err);
    }
    if (dup && ok) ok = !hearth_gguf_writer_write(w, dup->data, (size_t)dup->nbytes, &err);
    ok = ok && !hearth_gguf_writer_finish(w, &err);
    if (f) fclose(f);
    if (!ok) fprintf(stderr, "write %s: %s\n", path, err.msg);
    hearth_gguf_writer_free(w);
    return ok;
}

/* Split src into 3 parts under dir/base-0000k-of-00003.gguf. */
static bool write_split(const hearth_gguf *src, const char *dir, const char *base, int bad_part_no,
                        const char *dup_in_last) {
    uint64_t n = hearth_gguf_n_tensors(src), cut[4] = {0, n / 3, 2 * n / 3, n};
    char path[1024];
    for (uint32_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s-%05u-of-00003.gguf", dir, base, k + 1);
        if (!write_part(src, path, k, 3, cut[k], cut[k + 1], k == 2 ? bad_part_no : -1,
                        k == 2 ? dup_in_last : NULL))
            return false;
    }
    return true;
}

static bool logits_of(hearth_model *m, float *out) {
    hearth_error err = {0};
    const int32_t prompt[] = {1, 450, 303, 310, 278};
    const int n = 5;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, 8, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, n, &err) : NULL;
    int seq = kv ? hearth_kv_seq_create(kv, &err) : -1;
    int32_t pos[5], seqs[5];
    for (int i = 0; i < n; i++) {
        pos[i] = i;
        seqs[i] = seq;
    }
    hearth_ubatch ub = {n, prompt, pos, seqs, NULL};
    bool ok = fw && seq >= 0 && hearth_forward_run(fw, &ub, out, &err) == 1;
    if (!ok) fprintf(stderr, "forward: %s\n", err.msg);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}

int main(void) {
    char src_path[1024], dir[] = "/tmp/hearth-split-XXXXXX", path[1200];
    test_shared_path(src_path, sizeof src_path, "models/hearth-kjv-llama-q8_0.gguf");
    REQUIRE(mkdtemp(dir));
    hearth_error err = {0};
    hearth_gguf *src = hearth_gguf_open(src_path, &err);
    REQUIRE(src);
    CHECK(hearth_gguf_n_parts(src) == 1);

    /* a whole split: every tensor, byte for byte */
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/m", dir);
    uint32_t n_parts = 0;
    CHECKF(hearth_gguf_split_write(src, prefix, 3, 0, NULL, NULL, &n_parts, &err) == HEARTH_OK, "split: %s",
           err.msg);
    CHECK(n_parts == 3);
    CHECK(hearth_gguf_split_write(src, prefix, 100000, 0, NULL, NULL, NULL, &err) == HEARTH_ERR_INVALID);
    CHECK(hearth_gguf_split_write(src, prefix, 0, 1000, NULL, NULL, NULL, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "does not fit");
    snprintf(path, sizeof path, "%s/m-00001-of-00003.gguf", dir);
    hearth_gguf *g = hearth_gguf_open(path, &err);
    CHECKF(g != NULL, "open split: %s", err.msg);
    if (g) {
        CHECK(hearth_gguf_n_parts(g) == 3);
        CHECK(hearth_gguf_n_tensors(g) == hearth_gguf_n_tensors(src));
        CHECK(hearth_gguf_total_size(g) > hearth_gguf_file_size(g));
        int same = 0;
        char name[256];
        for (uint64_t i = 0; i < hearth_gguf_n_tensors(src); i++) {
            const gguf_tensor *a = hearth_gguf_tensor_at(src, i);
            const gguf_tensor *b = hearth_gguf_find_tensor(g, hearth_str_copy(a->name, name, sizeof name));
            same += b && b->type == a->type && b->nbytes == a->nbytes && !memcmp(a->data, b->data, a->nbytes);
        }
        CHECKF(same == (int)hearth_gguf_n_tensors(src), "%d of %d tensors identical", same,
               (int)hearth_gguf_n_tensors(src));
        hearth_str s;
        CHECK(hearth_gguf_get_str(g, "general.architecture", &s) && hearth_str_eq(s, "llama"));
        hearth_gguf_close(g);
    }

    /* the model from the parts computes what the whole file computes */
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    REQUIRE(be);
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *whole = hearth_model_load(src_path, &mp, &err);
    hearth_model *split = hearth_model_load(path, &mp, &err);
    CHECKF(whole && split, "load: %s", err.msg);
    if (whole && split) {
        int nv = whole->hp.n_vocab;
        float *la = malloc(sizeof(float) * (size_t)nv), *lb = malloc(sizeof(float) * (size_t)nv);
        REQUIRE(la && lb);
        CHECK(logits_of(whole, la) && logits_of(split, lb));
        CHECK(!memcmp(la, lb, sizeof(float) * (size_t)nv));
        free(la);
        free(lb);
    }
    hearth_model_free(whole);
    hearth_model_free(split);
    hearth_backend_free(be);

    /* opening a later part says to open the first */
    snprintf(path, sizeof path, "%s/m-00002-of-00003.gguf", dir);
    g = hearth_gguf_open(path, &err);
    CHECK(!g);
    CHECK_CONTAINS(err.msg, "open the first part");

    /* a missing part is named */
    snprintf(path, sizeof path, "%s/m-00003-of-00003.gguf", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/m-00001-of-00003.gguf", dir);
    g = hearth_gguf_open(path, &err);
    CHECK(!g);
    CHECK_CONTAINS(err.msg, "part 3 of 3");
    CHECK_CONTAINS(err.msg, "m-00003-of-00003.gguf");

    /* a part that says it is another part */
    REQUIRE(write_split(src, dir, "x", 1, NULL));
    snprintf(path, sizeof path, "%s/x-00001-of-00003.gguf", dir);
    g = hearth_gguf_open(path, &err);
    CHECK(!g);
    CHECK_CONTAINS(err.msg, "expected part 2 of 3");

    /* a tensor in two parts */
    char first[256];
    hearth_str_copy(hearth_gguf_tensor_at(src, 0)->name, first, sizeof first); /* in part 1 */
    REQUIRE(write_split(src, dir, "d", -1, first));
    snprintf(path, sizeof path, "%s/d-00001-of-00003.gguf", dir);
    g = hearth_gguf_open(path, &err);
    CHECK(!g);
    CHECK_CONTAINS(err.msg, "in two parts");

    hearth_gguf_close(src);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_split_model");
}
