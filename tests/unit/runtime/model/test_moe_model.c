/*
 * test_moe_model.c - loading mixture-of-experts models (qwen3moe-tiny,
 * mixtral-tiny from `hearth mkmodel`):
 *   - the hyperparameters (experts, experts used, expert width) and the
 *     active counts: parameters and bytes of everything but the unused
 *     experts, exact for the F32 and Q8_0 files;
 *   - a device backend without the moe ops (the CPU ops minus moe_*, with a
 *     host): the layers stay on the device, run the host-assisted path, and
 *     give the logits the moe ops give (F32 and Q8_0; qwen2moe's shared
 *     expert too); the plan says so for MoE models only;
 *   - on Vulkan (skipped without a device) the same logits as the CPU, the
 *     layers on the device (F32 within 1e-3 of the largest logit, Q8_0 2e-2);
 *   - a batch of tokens from several sequences gives each token the logits
 *     it gets alone (grouping tokens by expert mixes no rows), Q8_0 experts;
 *   - --n-cpu-moe 0, 1, all (a fake device with the moe ops; Vulkan when
 *     present): the first N layers' experts stay in the mapping, the device
 *     memory drops by their bytes, logits and greedy tokens match the CPU;
 *     a negative count is refused;
 *   - bad metadata: expert_used_count above expert_count, and qwen3moe
 *     without expert_count, are refused with errors naming the key.
 * Needs HEARTH_BIN (ctest sets it); skips without it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend_impl.h"
#include "runtime/model/forward.h"
#include "test.h"

static char g_dir[] = "/tmp/hearth-moe-XXXXXX";

static const char *model_path(const char *shape, const char *type, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s-%s.gguf", g_dir, shape, type);
    if (access(buf, R_OK) != 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' mkmodel --shape %s --type %s --seed 42 -o '%s' >/dev/null 2>&1",
                 getenv("HEARTH_BIN"), shape, type, buf);
        CHECKF(system(cmd) == 0, "mkmodel %s %s", shape, type);
    }
    return buf;
}

static void test_counts(hearth_backend *be) {
    static const struct {
        const char *shape, *arch;
        int n_expert, used, ff_exp, dim, layers;
    } want[] = {{"qwen3moe-tiny", "qwen3moe", 8, 2, 256, 512, 4},
                {"mixtral-tiny", "llama", 8, 2, 384, 256, 2}};
    for (size_t i = 0; i < 2; i++)
        for (int q = 0; q < 2; q++) {
            char path[1024];
            hearth_error err = {0};
            hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
            hearth_model *m = hearth_model_load(
                model_path(want[i].shape, q ? "q8_0" : "f32", path, sizeof path), &mp, &err);
            CHECKF(m, "%s: %s", path, err.msg);
            if (!m) continue;
            const hearth_hparams *hp = &m->hp;
            CHECK(!strcmp(m->arch_info->name, want[i].arch));
            CHECK(hp->n_expert == want[i].n_expert && hp->n_expert_used == want[i].used &&
                  hp->n_ff_exp == want[i].ff_exp);
            const uint64_t per_expert = 3ull * (uint64_t)want[i].dim * (uint64_t)want[i].ff_exp;
            const uint64_t unused = (uint64_t)(want[i].n_expert - want[i].used) * (uint64_t)want[i].layers;
            CHECKF(m->n_params - m->n_params_active == unused * per_expert, "%s: %llu total, %llu active",
                   want[i].shape, (unsigned long long)m->n_params, (unsigned long long)m->n_params_active);
            /* bytes: F32 4 per parameter; Q8_0 34 per 32 */
            const uint64_t bytes = q ? unused * per_expert / 32 * 34 : unused * per_expert * 4;
            CHECKF(m->weight_bytes - m->active_bytes == bytes, "%s %s: %llu bytes, %llu active",
                   want[i].shape, q ? "q8_0" : "f32", (unsigned long long)m->weight_bytes,
                   (unsigned long long)m->active_bytes);
            for (int l = 0; l < hp->n_layer; l++)
                CHECK(m->layers[l].ffn_gate_inp.data && m->layers[l].ffn_down_exps.data &&
                      !m->layers[l].w_down.data);
            printf("  %s %s: %d experts, %d used, width %d; %.2fM params, %.2fM active; %.1f MB, %.1f MB "
                   "active\n",
                   want[i].shape, q ? "q8_0" : "f32", hp->n_expert, hp->n_expert_used, hp->n_ff_exp,
                   m->n_params / 1e6, m->n_params_active / 1e6, m->weight_bytes / 1e6, m->active_bytes / 1e6);
            hearth_model_free(m);
        }
}

/* Logits of a 20-token prompt and of 4 decode steps after it, [5, n_vocab]. */
static float *prompt_logits(hearth_model *m, hearth_backend *be) {
    hearth_error err = {0};
    const int V = m->hp.n_vocab;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, 4, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, 32, &err) : NULL;
    int seq = kv ? hearth_kv_seq_create(kv, &err) : -1;
    float *lg = malloc((size_t)5 * V * sizeof *lg);
    CHECKF(fw && seq >= 0 && lg, "setup: %s", err.msg);
    int32_t toks[20], pos[20], seqs[20];
    for (int i = 0; i < 20; i++) {
        toks[i] = (int32_t)((i * 37 + 11) % V);
        pos[i] = i;
        seqs[i] = seq;
    }
    hearth_ubatch ub = {20, toks, pos, seqs, NULL};
    bool ok = fw && hearth_forward_run(fw, &ub, lg, &err) == 1;
    for (int g = 1; g < 5 && ok; g++) { /* fixed tokens, not greedy: both sides see the same input */
        int32_t t = (int32_t)((g * 211 + 5) % V), p = 19 + g;
        hearth_ubatch one = {1, &t, &p, &seq, NULL};
        ok = hearth_forward_run(fw, &one, lg + (size_t)g * V, &err) == 1;
    }
    CHECKF(ok, "forward: %s", err.msg);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return lg;
}

/* A device backend without the moe ops (the CPU ops minus moe_*, with a
 * host): the MoE layers stay on the device and run forward_moe.c's
 * host-assisted path, the plan says so, and the logits equal the CPU's
 * (the same kernels on the same rows); a dense model's plan says nothing. */
static void test_host_path(hearth_backend *cpu_be) {
    hearth_error err = {0};
    hearth_backend *host = hearth_cpu_backend_create(1, &err);
    REQUIRE(host);
    static hearth_backend_ops ops;
    ops = *cpu_be->ops;
    ops.moe_route = NULL;
    ops.moe_matmul = NULL;
    ops.moe_combine = NULL;
    hearth_backend dev = *cpu_be; /* shares the CPU context; used by this test alone */
    dev.ops = &ops;
    dev.host = host;
    static const struct {
        const char *shape, *type;
        bool moe;
    } want[] = {{"qwen3moe-tiny", "f32", true},
                {"qwen3moe-tiny", "q8_0", true},
                {"mixtral-tiny", "f32", true},
                {"qwen2moe-tiny", "f32", true},
                {"mistral3-test", "f32", false}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[1024];
        model_path(want[i].shape, want[i].type, path, sizeof path);
        hearth_model_params mp = {.backend = &dev, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
        hearth_model *m = hearth_model_load(path, &mp, &err);
        hearth_model_params cp = {.backend = cpu_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
        hearth_model *mc = hearth_model_load(path, &cp, &err);
        CHECKF(m && mc, "%s: %s", path, err.msg);
        if (!m || !mc) continue;
        int on_host = 0;
        for (int l = 0; l < m->hp.n_layer; l++)
            on_host += m->layer_be[l] == host;
        CHECKF(on_host == 0, "%s: %d of %d layers on the host", want[i].shape, on_host, m->hp.n_layer);
        CHECKF((strstr(m->plan, "routing and the weighted sum on the host") != NULL) == want[i].moe,
               "%s: plan '%s'", want[i].shape, m->plan);
        float *a = prompt_logits(m, &dev), *b = prompt_logits(mc, cpu_be);
        double worst = 0;
        for (size_t v = 0; a && b && v < (size_t)5 * m->hp.n_vocab; v++)
            if (fabs((double)a[v] - b[v]) > worst) worst = fabs((double)a[v] - b[v]);
        CHECKF(a && b && worst <= 1e-5, "%s %s: host path vs cpu ops: %.3g", want[i].shape, want[i].type,
               worst);
        printf("  device without the moe ops: %s %s: max |logit diff| vs the moe ops %.2e over 5 positions; "
               "%s\n",
               want[i].shape, want[i].type, worst, m->plan);
        free(a);
        free(b);
        hearth_model_free(m);
        hearth_model_free(mc);
    }
    hearth_backend_free(host);
}

/* On Vulkan (lavapipe in CI; skipped without a device): the MoE layers on the
 * device through the host-assisted path, logits within 1e-3 x |max logit| of
 * the CPU's at every one of 5 positions, F32 and Q8_0 experts. */
static void test_vulkan(hearth_backend *cpu_be) {
    hearth_error err = {0};
    hearth_backend_config bc = {"vulkan", 2};
    hearth_backend *vb = hearth_backend_create(&bc, &err);
    if (!vb) {
        printf("  vulkan: skipped (%s)\n", err.msg);
        return;
    }
    static const char *const files[][2] = {{"qwen3moe-tiny", "f32"},
                                           {"qwen3moe-tiny", "q8_0"},
                                           {"mixtral-tiny", "f32"},
                                           {"qwen2moe-tiny", "f32"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        model_path(files[i][0], files[i][1], path, sizeof path);
        hearth_model_params vp = {.backend = vb, .gpu_layers = HEARTH_GPU_LAYERS_ALL},
                            cp = {.backend = cpu_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
        hearth_model *mv = hearth_model_load(path, &vp, &err), *mc = hearth_model_load(path, &cp, &err);
        CHECKF(mv && mc, "%s: %s", path, err.msg);
        if (!mv || !mc) continue;
        CHECKF(mv->n_device_layers == mv->hp.n_layer, "%s: %s", files[i][0], mv->plan);
        const int V = mc->hp.n_vocab;
        float *a = prompt_logits(mv, vb), *b = prompt_logits(mc, cpu_be);
        double worst = 0, tol = 0;
        for (int r = 0; a && b && r < 5; r++) {
            double mx = 0, w = 0;
            for (int v = 0; v < V; v++) {
                if (fabs(b[(size_t)r * V + v]) > mx) mx = fabs(b[(size_t)r * V + v]);
                if (fabs((double)a[(size_t)r * V + v] - b[(size_t)r * V + v]) > w)
                    w = fabs((double)a[(size_t)r * V + v] - b[(size_t)r * V + v]);
            }
            /* Q8_0: the CPU quantizes the activations to Q8_0, Vulkan does not */
            const double t = (strcmp(files[i][1], "f32") ? 2e-2 : 1e-3) * mx;
            CHECKF(w <= t, "%s %s position %d: vulkan vs cpu %.3g (tol %.3g)", files[i][0], files[i][1], r, w,
                   t);
            if (w > worst) worst = w, tol = t;
        }
        printf("  vulkan vs cpu: %s %s: max |logit diff| %.2e (tol %.2e) over 5 positions; %s\n", files[i][0],
               files[i][1], worst, tol, mv->plan);
        free(a);
        free(b);
        hearth_model_free(mv);
        hearth_model_free(mc);
    }
    hearth_backend_free(vb);
}

/* Three sequences in one ubatch (tokens interleaved), each token wanting
 * logits, against each sequence run alone. */
static void test_batch_independence(hearth_backend *be) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(model_path("qwen3moe-tiny", "q8_0", path, sizeof path), &mp, &err);
    REQUIRE(m);
    const int V = m->hp.n_vocab, S = 3, L = 6;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, 8, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, &err);
    REQUIRE(kv);
    hearth_forward *fw = hearth_forward_create(m, kv, 32, &err);
    REQUIRE(fw);
    int32_t toks[18], pos[18], seq[18];
    bool want[18];
    int sid[3];
    for (int s = 0; s < S; s++)
        REQUIRE((sid[s] = hearth_kv_seq_create(kv, &err)) >= 0);
    for (int i = 0; i < S * L; i++) {
        toks[i] = (int32_t)((i * 131 + 17) % V);
        pos[i] = i / S;
        seq[i] = sid[i % S];
        want[i] = true;
    }
    float *batch = malloc((size_t)(S * L) * V * sizeof(float)),
          *alone = malloc((size_t)L * V * sizeof(float));
    REQUIRE(batch && alone);
    hearth_ubatch ub = {S * L, toks, pos, seq, want};
    CHECK(hearth_forward_run(fw, &ub, batch, &err) == S * L);
    double worst = 0;
    for (int s = 0; s < S; s++) {
        int32_t t1[6], p1[6], q1[6];
        int one = hearth_kv_seq_create(kv, &err);
        REQUIRE(one >= 0);
        for (int i = 0; i < L; i++) {
            t1[i] = toks[i * S + s];
            p1[i] = i;
            q1[i] = one;
        }
        hearth_ubatch u1 = {L, t1, p1, q1, want};
        CHECK(hearth_forward_run(fw, &u1, alone, &err) == L);
        for (int i = 0; i < L; i++)
            for (int v = 0; v < V; v++) {
                double d = fabs((double)alone[(size_t)i * V + v] - batch[(size_t)(i * S + s) * V + v]);
                if (d > worst) worst = d;
            }
        hearth_kv_seq_free(kv, one);
    }
    CHECKF(worst <= 1e-4, "batched vs alone: %.3g", worst);
    printf("  qwen3moe-tiny q8_0: 3 interleaved sequences in one ubatch vs alone: max |diff| %.2e\n", worst);
    free(batch);
    free(alone);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    hearth_model_free(m);
}

/* A copy of `src` with the u32 value of metadata key `key` set to v
 * (GGUF: key length, key, type u32, value), or the key renamed when v < 0. */
static bool patch_u32(const char *src, const char *dst, const char *key, int64_t v) {
    size_t len = 0;
    char *buf = test_read_file(src, &len);
    if (!buf) return false;
    char *k = memmem(buf, len, key, strlen(key));
    if (!k) {
        free(buf);
        return false;
    }
    if (v < 0) {
        k[0] = 'X'; /* an unknown key: as if absent */
    } else {
        uint32_t u = (uint32_t)v;
        memcpy(k + strlen(key) + 4, &u, 4);
    }
    FILE *f = fopen(dst, "wb");
    bool ok = f && fwrite(buf, 1, len, f) == len;
    if (f) fclose(f);
    free(buf);
    return ok;
}

static void test_bad_metadata(hearth_backend *be) {
    char src[1024], dst[1024];
    model_path("qwen3moe-tiny", "f32", src, sizeof src);
    snprintf(dst, sizeof dst, "%s/bad.gguf", g_dir);
    static const struct {
        const char *key;
        int64_t v;
        const char *msg;
    } cases[] = {{"qwen3moe.expert_used_count", 9, "expert_used_count = 9 with expert_count = 8"},
                 {"qwen3moe.expert_count", -1, "qwen3moe needs qwen3moe.expert_count"}};
    for (size_t i = 0; i < 2; i++) {
        REQUIRE(patch_u32(src, dst, cases[i].key, cases[i].v));
        hearth_error err = {0};
        hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
        hearth_model *m = hearth_model_load(dst, &mp, &err);
        CHECK(!m && err.code != HEARTH_OK);
        CHECK_CONTAINS(err.msg, cases[i].msg);
        printf("  refused: %s\n", err.msg);
        hearth_model_free(m);
    }
}

/* Largest |a - b| over 5 positions relative to the largest |b| of each,
 * and whether every position's argmax (the greedy token) agrees. */
static double rel_diff(const float *a, const float *b, int V, bool *same_argmax) {
    double worst = 0;
    *same_argmax = true;
    for (int r = 0; r < 5; r++) {
        double mx = 0, w = 0;
        int ia = 0, ib = 0;
        for (int v = 0; v < V; v++) {
            const size_t i = (size_t)r * V + v;
            if (fabs(b[i]) > mx) mx = fabs(b[i]);
            if (fabs((double)a[i] - b[i]) > w) w = fabs((double)a[i] - b[i]);
            if (a[i] > a[(size_t)r * V + ia]) ia = v;
            if (b[i] > b[(size_t)r * V + ib]) ib = v;
        }
        if (mx > 0 && w / mx > worst) worst = w / mx;
        *same_argmax = *same_argmax && ia == ib;
    }
    return worst;
}

/* --n-cpu-moe on one device backend: for 0, 1 and all layers, the experts of
 * exactly the first min(N, n_layer) layers stay in the file's mapping (no
 * copy), the device memory drops by their bytes (counted from the file's
 * tensors here), and the logits at 5 positions match the CPU-only model's
 * within tol x the largest logit, the greedy tokens equal. */
static void check_cpu_moe(hearth_backend *dev, hearth_backend *cpu_be, const char *shape, double tol,
                          bool count_device) {
    char path[1024];
    model_path(shape, "f32", path, sizeof path);
    hearth_error err = {0};
    hearth_model_params cp = {.backend = cpu_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *mc = hearth_model_load(path, &cp, &err);
    CHECKF(mc, "%s: %s", path, err.msg);
    if (!mc) return;
    float *ref = prompt_logits(mc, cpu_be);
    const int NL = mc->hp.n_layer, ns[3] = {0, 1, HEARTH_CPU_MOE_ALL};
    uint64_t dev0 = 0;
    for (int k = 0; k < 3 && ref; k++) {
        hearth_model_params mp = {.backend = dev, .gpu_layers = HEARTH_GPU_LAYERS_ALL, .n_cpu_moe = ns[k]};
        hearth_model *m = hearth_model_load(path, &mp, &err);
        CHECKF(m, "%s n_cpu_moe %d: %s", shape, ns[k], err.msg);
        if (!m) continue;
        const int want = ns[k] < NL ? ns[k] : NL;
        uint64_t bytes = 0;
        int on_host = 0, mapped = 0;
        for (int l = 0; l < NL; l++) {
            on_host += m->layers[l].experts_on_host && l < want;
            static const char *const names[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
            const hearth_tensor *ts[3] = {&m->layers[l].ffn_gate_exps, &m->layers[l].ffn_up_exps,
                                          &m->layers[l].ffn_down_exps};
            for (int i = 0; i < 3 && l < want; i++) {
                char n[96];
                snprintf(n, sizeof n, "blk.%d.%s.weight", l, names[i]);
                const gguf_tensor *t = hearth_gguf_find_tensor(m->gguf, n);
                bytes += t->nbytes;
                mapped += ts[i]->data == t->data;
            }
        }
        CHECKF(on_host == want && m->n_cpu_moe_layers == want,
               "%s n_cpu_moe %d: %d layers' experts on the host", shape, ns[k], m->n_cpu_moe_layers);
        CHECKF(mapped == 3 * want, "%s: %d of %d expert tensors left in the mapping", shape, mapped,
               3 * want);
        CHECKF(m->cpu_moe_bytes == bytes, "%s: cpu_moe_bytes %llu, want %llu", shape,
               (unsigned long long)m->cpu_moe_bytes, (unsigned long long)bytes);
        if (k == 0) dev0 = m->device_bytes;
        if (count_device)
            CHECKF(dev0 - m->device_bytes == bytes, "%s n_cpu_moe %d: device bytes %llu, %llu with none",
                   shape, ns[k], (unsigned long long)m->device_bytes, (unsigned long long)dev0);
        CHECKF(m->n_device_layers == NL, "%s: %s", shape, m->plan);
        CHECKF(!want || strstr(m->plan, "on the cpu"), "%s: plan '%s'", shape, m->plan);
        float *a = prompt_logits(m, dev);
        bool same = false;
        const double w = a ? rel_diff(a, ref, mc->hp.n_vocab, &same) : 1e9;
        CHECKF(w <= tol && same, "%s n_cpu_moe %d: logits vs cpu %.3g x max (tol %.3g), greedy %s", shape,
               ns[k], w, tol, same ? "equal" : "differs");
        printf(
            "  n_cpu_moe %d on %s: %s: %d layers' experts on the host (%.1f MiB), device weights %.1f MiB; "
            "max |logit diff| vs cpu %.2e x max (tol %.0e), greedy %s\n",
            want, dev->ops == cpu_be->ops ? "a fake device" : "the device", shape, m->n_cpu_moe_layers,
            m->cpu_moe_bytes / 1048576.0, m->device_bytes / 1048576.0, w, tol, same ? "equal" : "differs");
        free(a);
        hearth_model_free(m);
    }
    free(ref);
    hearth_model_free(mc);
}

/* --n-cpu-moe: a fake device (the CPU ops, with the moe ops, so the layers
 * with host experts take the host-assisted path where the others do not),
 * Vulkan when there is one (lavapipe in CI), and a negative count refused. */
static void test_cpu_moe(hearth_backend *cpu_be) {
    hearth_error err = {0};
    hearth_backend *host = hearth_cpu_backend_create(1, &err);
    REQUIRE(host);
    hearth_backend dev = *cpu_be; /* shares the CPU context; used by this test alone */
    dev.host = host;
    check_cpu_moe(&dev, cpu_be, "qwen2moe-tiny", 1e-5, false); /* with a shared expert */
    hearth_backend_config bc = {"vulkan", 2};
    hearth_backend *vb = hearth_backend_create(&bc, &err);
    if (vb) {
        check_cpu_moe(vb, cpu_be, "qwen3moe-tiny", 1e-3, true);
        check_cpu_moe(vb, cpu_be, "mixtral-tiny", 1e-3, true);
        hearth_backend_free(vb);
    } else {
        printf("  n_cpu_moe on vulkan: skipped (%s)\n", err.msg);
    }
    char path[1024];
    hearth_model_params mp = {.backend = &dev, .gpu_layers = HEARTH_GPU_LAYERS_ALL, .n_cpu_moe = -1};
    hearth_model *m = hearth_model_load(model_path("qwen3moe-tiny", "f32", path, sizeof path), &mp, &err);
    CHECK(!m && err.code == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "n_cpu_moe = -1");
    printf("  refused: %s\n", err.msg);
    hearth_model_free(m);
    hearth_backend_free(host);
}

int main(void) {
    if (!getenv("HEARTH_BIN")) {
        printf("SKIP: HEARTH_BIN is needed (run through ctest)\n");
        return 77;
    }
    REQUIRE(mkdtemp(g_dir));
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    test_counts(be);
    test_host_path(be);
    test_vulkan(be);
    test_cpu_moe(be);
    test_batch_independence(be);
    test_bad_metadata(be);
    hearth_backend_free(be);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_moe_model");
}
