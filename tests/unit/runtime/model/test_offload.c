/*
 * test_offload.c - partial offload: a model spread over two backends computes
 * exactly what it computes on one.
 *
 * The "device" here is a second CPU backend instance given a host (the
 * registry does the same for CUDA and Vulkan), so the placement, the per-layer
 * KV pools, the residual stream crossing between backends and the per-backend
 * activation sets all run for real on any machine; both sides use the same
 * kernels with the same thread count, so logits must be bit-identical. A
 * "picky" device that lacks a weight type checks the automatic fallback of
 * the layers it cannot run. (tests/cli/test_vulkan_offload.sh does the same
 * across a real Vulkan device and the CPU.)
 */
#include <string.h>

#include "backends/backend_impl.h" /* a fake device backend wrapping the CPU ops */
#include "runtime/model/forward.h"
#include "runtime/serving/engine.h"
#include "runtime/serving/sampling.h"
#include "test.h"

static bool last_argmax(hearth_model *m, const int32_t *prompt, int n, float *logits, int32_t *id);

/* Logits of the last token of `prompt`, one forward pass from an empty cache. */
static bool last_logits(hearth_model *m, const int32_t *prompt, int n, float *out) {
    return last_argmax(m, prompt, n, out, NULL);
}

static hearth_model *load(hearth_backend *be, const char *file, int gpu_layers) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = gpu_layers};
    hearth_model *m = hearth_model_load(test_shared_path(path, sizeof path, file), &mp, &err);
    if (!m) fprintf(stderr, "%s: %s\n", file, err.msg);
    return m;
}

static int count_on(const hearth_model *m, const hearth_backend *be) {
    int n = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        n += m->layer_be[l] == be;
    return n;
}

/* A device without Q6_K kernels: the CPU's ops with a narrower supports_type. */
static bool picky_supports(hearth_backend *b, hearth_dtype t) {
    (void)b;
    return t != HEARTH_Q6_K;
}
static void picky_destroy(hearth_backend *b) {
    (void)b;
}

/* ...with a device-side argmax (host-visible memory here), so the forward
 * pass's greedy path that fetches only ids is exercised. Ties: first index. */
static int g_argmax_calls;
static void picky_argmax(hearth_backend *b, const hearth_tensor *x, void *ids) {
    (void)b;
    g_argmax_calls++;
    for (int64_t r = 0; r < x->ne1; r++) {
        const float *row = (const float *)((const char *)x->data + (size_t)r * x->nb1);
        int32_t best = 0;
        for (int64_t i = 1; i < x->ne0; i++)
            if (row[i] > row[best]) best = (int32_t)i;
        ((int32_t *)ids)[r] = best;
    }
}

/* ...reporting little free memory, for the engine's KV sizing. */
static void (*g_real_info)(hearth_backend *, hearth_backend_info *);
static uint64_t g_free_bytes;
static void small_info(hearth_backend *b, hearth_backend_info *out) {
    g_real_info(b, out);
    out->mem_free = g_free_bytes;
}

/* The last token's logits (when `logits`) and greedy id (when `id`, through
 * hearth_forward_run_argmax), one forward pass from an empty cache. */
static bool last_argmax(hearth_model *m, const int32_t *prompt, int n, float *logits, int32_t *id) {
    hearth_error err = {0};
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, 8, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, n, &err) : NULL;
    int seq = kv ? hearth_kv_seq_create(kv, &err) : -1;
    int32_t pos[64], seqs[64];
    for (int i = 0; i < n; i++) {
        pos[i] = i;
        seqs[i] = seq;
    }
    hearth_ubatch ub = {n, prompt, pos, seqs, NULL};
    bool ok = fw && seq >= 0 &&
              (id ? hearth_forward_run_argmax(fw, &ub, logits, id, &err)
                  : hearth_forward_run(fw, &ub, logits, &err)) == 1;
    if (!ok) fprintf(stderr, "forward: %s\n", err.msg);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}

static void engine_outputs(hearth_model *m, const int32_t *prompt, int n, hearth_completion *out, int count) {
    hearth_error err = {0};
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.prefix_cache = true; /* second request reuses the first's pages (page transfer per layer) */
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    for (int i = 0; i < count; i++) {
        hearth_request r = {0};
        r.prompt = prompt;
        r.n_prompt = n;
        r.sampling = hearth_sampling_defaults();
        r.sampling.temperature = 0;
        r.max_tokens = 12;
        CHECKF(hearth_engine_generate(e, &r, &out[i], &err) == HEARTH_OK, "generate: %s", err.msg);
    }
    hearth_engine_free(e);
}

int main(void) {
    hearth_error err = {0};
    hearth_backend *dev = hearth_cpu_backend_create(1, &err), *host = hearth_cpu_backend_create(1, &err);
    REQUIRE(dev && host);
    const char *file = "models/hearth-kjv-llama-q8_0.gguf";
    int32_t prompt[40];
    prompt[0] = 1;
    for (int i = 1; i < 40; i++)
        prompt[i] = 300 + (i * 37) % 600;

    /* ---- reference: everything on one backend (no host: gpu_layers ignored) */
    hearth_model *ref = load(dev, file, 0);
    REQUIRE(ref);
    const int L = ref->hp.n_layer, V = ref->hp.n_vocab;
    CHECK(count_on(ref, dev) == L && ref->embd_be == dev && ref->out_be == dev);
    float *want = malloc((size_t)V * sizeof *want), *got = malloc((size_t)V * sizeof *got);
    REQUIRE(want && got && L >= 2);
    REQUIRE(last_logits(ref, prompt, 40, want));
    hearth_completion ref_out[2];
    engine_outputs(ref, prompt, 40, ref_out, 2);

    dev->host = host;
    /* ---- split at every layer boundary, and the extremes */
    for (int g = 0; g <= L; g++) {
        hearth_model *m = load(dev, file, g);
        REQUIRE(m);
        CHECKF(count_on(m, dev) == g && m->n_device_layers == g, "gpu_layers %d: %d layers on the device", g,
               count_on(m, dev));
        CHECK(m->embd_be == (g > 0 ? dev : host));
        CHECK(m->out_be == (g == L ? dev : host));
        CHECK_CONTAINS(m->plan, "layers ");
        REQUIRE(last_logits(m, prompt, 40, got));
        CHECKF(!memcmp(want, got, (size_t)V * sizeof *got),
               "gpu_layers %d of %d: logits differ from one backend", g, L);
        if (g == 1) {
            hearth_completion out[2];
            engine_outputs(m, prompt, 40, out, 2);
            for (int i = 0; i < 2; i++) {
                CHECKF(
                    out[i].tokens.n == ref_out[i].tokens.n &&
                        !memcmp(out[i].tokens.ids, ref_out[i].tokens.ids, out[i].tokens.n * sizeof(int32_t)),
                    "engine run %d on a split model differs", i);
                hearth_completion_free(&out[i]);
            }
        }
        hearth_model_free(m);
    }
    /* HEARTH_GPU_LAYERS_ALL: every layer fits in the host's memory */
    hearth_model *all = load(dev, file, HEARTH_GPU_LAYERS_ALL);
    REQUIRE(all);
    CHECK(count_on(all, dev) == L && all->out_be == dev);
    hearth_model_free(all);

    /* ---- a device without a kernel for some layers' types: those layers stay
     * on the host, the model still runs and says why */
    hearth_backend_ops ops = *dev->ops;
    ops.supports_type = picky_supports;
    ops.destroy = picky_destroy;
    hearth_backend picky = *dev;
    picky.ops = &ops;
    picky.host = host;
    const char *kfile = "models/hearth-kjv-llama-q4_k_m.gguf";
    hearth_model *kref = load(dev, kfile, HEARTH_GPU_LAYERS_ALL);
    dev->host = NULL;
    hearth_model *kone = load(dev, kfile, 0);
    REQUIRE(kref && kone);
    hearth_model *km = load(&picky, kfile, HEARTH_GPU_LAYERS_ALL);
    REQUIRE(km);
    int on_host = 0;
    for (int l = 0; l < km->hp.n_layer; l++) {
        bool has_q6k = km->layers[l].w_down.type == HEARTH_Q6_K || km->layers[l].wv.type == HEARTH_Q6_K ||
                       km->layers[l].wq.type == HEARTH_Q6_K || km->layers[l].w_up.type == HEARTH_Q6_K;
        CHECKF((km->layer_be[l] == host) == has_q6k, "layer %d: placed on %s", l,
               km->layer_be[l] == host ? "the host" : "the device");
        on_host += km->layer_be[l] == host;
    }
    CHECK(on_host > 0 && on_host < km->hp.n_layer);
    CHECK_CONTAINS(km->plan, "has no q6_K kernel");
    printf("picky device plan: %s\n", km->plan);
    float *kwant = malloc((size_t)km->hp.n_vocab * sizeof *kwant),
          *kgot = malloc((size_t)km->hp.n_vocab * sizeof *kgot);
    REQUIRE(kwant && kgot);
    REQUIRE(last_logits(kone, prompt, 40, kwant));
    REQUIRE(last_logits(km, prompt, 40, kgot));
    CHECK(!memcmp(kwant, kgot, (size_t)km->hp.n_vocab * sizeof *kgot));

    /* ---- greedy ids from the device's argmax op (head on the device), from
     * the host without it: both are hearth_argmax of the same logits */
    int32_t id_dev = -1, id_host = -1, id_none = -1;
    ops.argmax = picky_argmax;
    ops.supports_type = dev->ops->supports_type;
    picky.host = host;
    hearth_model *am = load(&picky, file, HEARTH_GPU_LAYERS_ALL);
    REQUIRE(am && am->out_be == &picky);
    REQUIRE(last_argmax(am, prompt, 40, got, &id_dev));
    CHECK(g_argmax_calls == 1);
    CHECK(!memcmp(want, got, (size_t)V * sizeof *got));
    CHECK(id_dev == hearth_argmax(want, V));
    REQUIRE(last_argmax(ref, prompt, 40, NULL, &id_none)); /* no op, no logits wanted */
    REQUIRE(last_argmax(ref, prompt, 40, got, &id_host));
    CHECK(id_none == id_dev && id_host == id_dev);
    /* the engine's greedy steps go through the op and decode the same text */
    hearth_completion aout[2];
    engine_outputs(am, prompt, 40, aout, 2);
    CHECK(g_argmax_calls > 10);
    for (int i = 0; i < 2; i++) {
        CHECKF(aout[i].tokens.n == ref_out[i].tokens.n &&
                   !memcmp(aout[i].tokens.ids, ref_out[i].tokens.ids, aout[i].tokens.n * sizeof(int32_t)),
               "engine run %d with device argmax differs", i);
        hearth_completion_free(&aout[i]);
    }
    hearth_model_free(am);
    ops.argmax = NULL;

    /* ---- the automatic KV pool is cut to the device's free memory, with a
     * note; when not even one full-context sequence fits, a clear error */
    {
        hearth_model *sm = load(&picky, file, L); /* explicit count: no auto-fit */
        REQUIRE(sm && sm->n_device_layers == L);
        const uint64_t page_all_layers = 2ull * 16 * 2 * (uint64_t)sm->hp.n_head_kv * sm->hp.head_dim * (uint64_t)L;
        ops.info = small_info;
        g_real_info = dev->ops->info;
        g_free_bytes = (256ull << 20) + 64 * page_all_layers;
        hearth_engine_config ec = hearth_engine_defaults();
        ec.n_ctx = 512; /* 32 pages a sequence; 8 parallel want 321 */
        hearth_engine *e = hearth_engine_create(sm, &ec, &err);
        REQUIRE(e);
        hearth_engine_stats est;
        hearth_engine_stats_get(e, &est);
        CHECKF(est.kv.n_pages == 64, "KV pool of %d pages", est.kv.n_pages);
        CHECK_CONTAINS(hearth_engine_note(e), "cut to 64 pages (2 full-context sequences)");
        hearth_engine_free(e);
        g_free_bytes = (256ull << 20) + 16 * page_all_layers;
        CHECK(hearth_engine_create(sm, &ec, &err) == NULL);
        CHECK_CONTAINS(err.msg, "use a smaller --ctx");
        ec.n_ctx = 256; /* 16 pages: one sequence fits */
        e = hearth_engine_create(sm, &ec, &err);
        CHECK(e != NULL);
        hearth_engine_free(e);
        ops.info = dev->ops->info;
        hearth_model_free(sm);
    }
    ops.supports_type = picky_supports;

    /* without a host there is nowhere to fall back to: a clear error */
    picky.host = NULL;
    char path[1024];
    hearth_model_params mp = {.backend = &picky, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    CHECK(hearth_model_load(test_shared_path(path, sizeof path, kfile), &mp, &err) == NULL);
    CHECK_CONTAINS(err.msg, "q6_K");

    free(kwant);
    free(kgot);
    hearth_model_free(km);
    hearth_model_free(kref);
    hearth_model_free(kone);
    for (int i = 0; i < 2; i++)
        hearth_completion_free(&ref_out[i]);
    hearth_model_free(ref);
    free(want);
    free(got);
    hearth_backend_free(dev);
    hearth_backend_free(host);
    return test_summary("test_offload");
}
