/*
 * test_quant_iq2_model.c - the IQ2/IQ1 quantizers on a real model against
 * llama-quantize: every IQ tensor of llama.cpp's IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ1_S and IQ1_M files of hearth-kjv-llama (made from the F32 file with
 * the Esther imatrix, tests/data/iq/README.md) must come out byte for byte
 * the same from hearth_quantize_row_weighted on the F32 tensor with the
 * importance vector llama-quantize uses (hearth_imatrix_weights; none for
 * token_embd and output, which the imatrix does not cover: the unweighted
 * search of IQ2_S and IQ1_M). The reference is the FNV-1a 64 of each
 * tensor's bytes (tests/data/iq/kjv-llama-iq-tensors.txt); llama.cpp itself
 * is not needed. Rows are split over 2 threads, as `hearth quantize` does.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant_weighted.h"
#include "runtime/format/gguf.h"
#include "runtime/format/imatrix_file.h"
#include "test.h"
#include "quant_test_data.h"

typedef struct {
    hearth_dtype t;
    const float *x, *qw;
    uint8_t *out;
    int64_t ne0, r0, r1;
    bool ok;
} rows_job;

static void *run_rows(void *arg) {
    rows_job *j = arg;
    const size_t rb = hearth_dtype_row_size(j->t, j->ne0);
    j->ok = true;
    for (int64_t r = j->r0; r < j->r1 && j->ok; r++)
        j->ok = hearth_quantize_row_weighted(j->t, j->x + r * j->ne0, j->out + (size_t)r * rb, j->ne0, j->qw);
    return NULL;
}

/* FNV-1a of tensor `name` of the F32 model quantized to t; false on error. */
static bool quantize_tensor(const hearth_gguf *g, const hearth_imatrix *im, hearth_dtype t, const char *name,
                            uint64_t *hash) {
    const gguf_tensor *ts = hearth_gguf_find_tensor(g, name);
    if (!ts || ts->type != HEARTH_F32 || ts->n_dims != 2) return false;
    const int64_t ne0 = (int64_t)ts->ne[0], rows = (int64_t)ts->ne[1];
    const size_t bytes = hearth_dtype_row_size(t, ne0) * (size_t)rows;
    uint8_t *out = malloc(bytes);
    float *qw = NULL;
    const hearth_imatrix_entry *e = hearth_imatrix_find(im, name);
    if (e && e->ne0 * e->n_mat == ne0) {
        qw = malloc((size_t)ne0 * sizeof *qw);
        hearth_imatrix_weights(im, e, qw);
    }
    rows_job jobs[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        jobs[k] = (rows_job){t, ts->data, qw, out, ne0, rows * k / 2, rows * (k + 1) / 2, false};
        pthread_create(&th[k], NULL, run_rows, &jobs[k]);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    *hash = test_fnv1a(out, bytes, TEST_FNV_OFFSET);
    free(out);
    free(qw);
    return jobs[0].ok && jobs[1].ok;
}

int main(void) {
    const char *src = getenv("HEARTH_SOURCE"), *shared = getenv("HEARTH_SHARED");
    if (!src || !shared) {
        printf("SKIP: HEARTH_SOURCE and HEARTH_SHARED are needed (run through ctest)\n");
        return 77;
    }
    char path[1024];
    hearth_error err = {0};
    snprintf(path, sizeof path, "%s/models/hearth-kjv-llama-f32.gguf", shared);
    hearth_gguf *g = hearth_gguf_open(path, &err);
    REQUIRE(g != NULL);
    snprintf(path, sizeof path, "%s/tests/data/imatrix/imatrix-kjv-llama-esther.gguf", src);
    hearth_imatrix *im = hearth_imatrix_load(path, &err);
    REQUIRE(im != NULL);
    snprintf(path, sizeof path, "%s/tests/data/iq/kjv-llama-iq-tensors.txt", src);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char line[512], type[32], name[160];
    unsigned long long want;
    int seen[HEARTH_DTYPE_COUNT] = {0}, same[HEARTH_DTYPE_COUNT] = {0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%31s %159s %llx", type, name, &want) != 3) continue;
        hearth_dtype t;
        REQUIRE(hearth_dtype_from_name(type, &t));
        uint64_t h = 0;
        const bool ok = quantize_tensor(g, im, t, name, &h);
        CHECKF(ok && h == want, "%s %s: fnv %016llx, llama-quantize's %016llx", type, name,
               (unsigned long long)h, want);
        seen[t]++;
        same[t] += ok && h == want;
    }
    fclose(f);
    const hearth_dtype types[] = {HEARTH_IQ2_XXS, HEARTH_IQ2_XS, HEARTH_IQ2_S, HEARTH_IQ1_S, HEARTH_IQ1_M};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        printf("%-8s %d of %d tensors byte-identical to llama-quantize --imatrix\n",
               hearth_dtype_name(types[i]), same[types[i]], seen[types[i]]);
        CHECK(seen[types[i]] >= 28);
    }
    hearth_imatrix_free(im);
    hearth_gguf_close(g);
    return test_summary("test_quant_iq2_model");
}
