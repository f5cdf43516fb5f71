/*
 * neon_greedy.c - greedy tokens of one model on the CPU backend, for
 * test_neon_qemu.sh: it is cross-built for arm64 (HEARTH_KERNELS_ONLY, which
 * has no sqlite3/libyaml/cJSON, so it cannot run `hearth run`) and its tokens
 * are compared with the x86-64 `hearth run --temp 0 --json` of the same model.
 *
 * usage: neon_greedy MODEL.gguf N_PREDICT PROMPT_IDS   (ids comma-separated)
 * Prints the N_PREDICT greedy token ids comma-separated on one line, with an
 * F16 KV cache, the whole prompt in one forward pass, then one token per pass
 * (what `hearth run` does). Exit 1 with a message on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward.h"
#include "runtime/model/model.h"
#include "runtime/serving/sampling.h"

static int fail(const char *what, const hearth_error *err) {
    fprintf(stderr, "neon_greedy: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: neon_greedy MODEL.gguf N_PREDICT PROMPT_IDS\n");
        return 2;
    }
    const int n_predict = atoi(argv[2]);
    int32_t prompt[512], pos[512], seqs[512];
    int n_prompt = 0;
    for (char *s = argv[3], *end; *s && n_prompt < 512; s = *end ? end + 1 : end) {
        prompt[n_prompt++] = (int32_t)strtol(s, &end, 10);
        if (end == s) break;
    }
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    if (!be) return fail("cpu backend", &err);
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(argv[1], &mp, &err);
    if (!m) return fail(argv[1], &err);
    const int n_ctx = n_prompt + n_predict + 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, (n_ctx + 15) / 16,
                           NULL};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    if (!kv) return fail("kv cache", &err);
    hearth_forward *fw = hearth_forward_create(m, kv, n_prompt, &err);
    if (!fw) return fail("forward", &err);
    const int seq = hearth_kv_seq_create(kv, &err);
    for (int i = 0; i < n_prompt; i++) {
        pos[i] = i;
        seqs[i] = seq;
    }
    const int nv = m->hp.n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)nv);
    hearth_ubatch ub = {n_prompt, prompt, pos, seqs, NULL};
    if (!logits || hearth_forward_run(fw, &ub, logits, &err) != 1) return fail("prompt", &err);
    for (int i = 0; i < n_predict; i++) {
        int32_t id = hearth_argmax(logits, nv), p = n_prompt + i;
        printf(i ? ",%d" : "%d", id);
        hearth_ubatch u1 = {1, &id, &p, &seqs[0], NULL};
        if (i + 1 < n_predict && hearth_forward_run(fw, &u1, logits, &err) != 1) return fail("decode", &err);
    }
    printf("\n");
    free(logits);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    hearth_model_free(m);
    hearth_backend_free(be);
    return 0;
}
