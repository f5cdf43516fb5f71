/*
 * test_arch_parity.c - Gemma 2, Gemma 3, Phi-3, Granite, OLMo 2, Qwen3-MoE,
 * Mixtral-style llama MoE, Qwen2-MoE (a gated shared expert, weights not
 * renormalised), mistral3 and Ministral 3's YaRN + attention temperature
 * (ministral3-test) against native llama.cpp.
 *
 * Each case regenerates a small look-alike with `hearth mkmodel` (F32, seed
 * 42: gemma2-test, gemma3-test, phi3-test, granite-test, olmo2-test) and
 * compares the logits at the
 * last prompt position with llama.cpp's, stored in tests/data/arch/CASE.json
 * (top 10 ids and logits, and the largest logit; see its README for how they
 * were made): every stored logit within 1e-3 of the largest logit's size,
 * and the greedy continuation equal token for token, or parting at a
 * near-tie (the two candidates within that tolerance in Hearth's logits),
 * which is printed. The prompts are longer than the look-alikes' sliding
 * windows (8 and 6 positions), so a window applied wrongly, or on the wrong
 * layers, changes the logits. Phi-3 runs twice: a context of 256 (not over
 * the original 512: the short LongRoPE factors) and of 1024 (the long ones;
 * llama.cpp's contexts are at least 256).
 * Also: the families' end-of-turn tokens end generation (is_eog), the model
 * table and the error for other architectures name the list, and a device
 * backend without the Gemma ops gets the Gemma/Granite layers placed on its
 * host CPU backend, saying so.
 * Needs HEARTH_BIN (ctest sets it) and HEARTH_SOURCE; skips without them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend_impl.h"
#include "runtime/model/forward.h"
#include "runtime/serving/engine.h"
#include "runtime/serving/sampling.h"
#include "test.h"

typedef struct arch_case {
    const char *json, *shape;
    int n_ctx;
    const char *eog; /* an end-of-turn token the vocabulary must treat as end of generation */
} arch_case;

static const arch_case k_cases[] = {
    {"gemma2-test.json", "gemma2-test", 256, "<end_of_turn>"},
    {"gemma3-test.json", "gemma3-test", 256, "<end_of_turn>"},
    {"phi3-test-short.json", "phi3-test", 256, "<|end|>"},
    {"phi3-test-long.json", "phi3-test", 1024, "<|end|>"},
    {"granite-test.json", "granite-test", 256, "<|end_of_text|>"},
    {"olmo2-test.json", "olmo2-test", 256, "<|endoftext|>"},
    /* mixture of experts (forward_moe.c) and the mistral3 naming */
    {"qwen3moe-tiny.json", "qwen3moe-tiny", 256, "<|endoftext|>"},
    {"mixtral-tiny.json", "mixtral-tiny", 256, "<|endoftext|>"},
    {"qwen2moe-tiny.json", "qwen2moe-tiny", 256, "<|endoftext|>"},
    {"mistral3-test.json", "mistral3-test", 256, "<|endoftext|>"},
    /* YaRN x16 over an original context of 16, and the attention temperature */
    {"ministral3-test.json", "ministral3-test", 256, "<|endoftext|>"},
};

enum { MAX_PROMPT = 128, MAX_GEN = 16, TOP = 10 };

typedef struct ref_case {
    int32_t prompt[MAX_PROMPT];
    int n_prompt;
    double max_logit;
    int32_t top_id[TOP];
    double top_logit[TOP];
    int n_top;
    int32_t greedy[MAX_GEN];
    int n_greedy;
} ref_case;

/* Numbers of the JSON array that follows `key` in [p, end): flat (ints or
 * pairs alike), up to cap; *pn the count. Returns the position after ']'
 * of the outer array, or NULL. */
static const char *read_numbers(const char *p, const char *key, double *out, int cap, int *pn) {
    const char *k = strstr(p, key);
    if (!k) return NULL;
    const char *s = strchr(k, '[');
    if (!s) return NULL;
    int depth = 0, n = 0;
    for (; *s; s++) {
        if (*s == '[') {
            depth++;
        } else if (*s == ']') {
            if (--depth == 0) break;
        } else if (*s == '-' || (*s >= '0' && *s <= '9')) {
            char *e;
            double v = strtod(s, &e);
            if (n < cap) out[n++] = v;
            s = e - 1;
        }
    }
    *pn = n;
    return *s ? s + 1 : NULL;
}

/* The cases of one reference file, one JSON object per "prompt". */
static int parse_ref(const char *text, ref_case *out, int cap) {
    int n = 0;
    const char *p = text;
    double buf[2 * MAX_PROMPT];
    while (n < cap && (p = strstr(p, "\"prompt\""))) {
        ref_case *c = &out[n];
        int k;
        const char *q = read_numbers(p, "\"prompt\"", buf, MAX_PROMPT, &k);
        if (!q) break;
        c->n_prompt = k;
        for (int i = 0; i < k; i++)
            c->prompt[i] = (int32_t)buf[i];
        const char *ml = strstr(q, "\"max_logit\"");
        if (!ml) break;
        c->max_logit = strtod(strchr(ml, ':') + 1, NULL);
        q = read_numbers(q, "\"top\"", buf, 2 * TOP, &k);
        if (!q) break;
        c->n_top = k / 2;
        for (int i = 0; i < c->n_top; i++) {
            c->top_id[i] = (int32_t)buf[2 * i];
            c->top_logit[i] = buf[2 * i + 1];
        }
        q = read_numbers(q, "\"greedy\"", buf, MAX_GEN, &k);
        if (!q) break;
        c->n_greedy = k;
        for (int i = 0; i < k; i++)
            c->greedy[i] = (int32_t)buf[i];
        p = q;
        n++;
    }
    return n;
}

static int argmax_row(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* One prompt: logits against the reference, then the greedy continuation. */
static void run_case(hearth_model *m, const arch_case *ac, const ref_case *rc, int idx) {
    hearth_error err = {0};
    const int V = m->hp.n_vocab, page = 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv,  m->hp.head_dim, HEARTH_F16,
                           page,          ac->n_ctx / page, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, MAX_PROMPT, &err) : NULL;
    int seq = kv ? hearth_kv_seq_create(kv, &err) : -1;
    float *lg = malloc((size_t)V * sizeof *lg);
    CHECKF(fw && seq >= 0 && lg, "%s: setup: %s", ac->json, err.msg);
    if (!fw || seq < 0 || !lg) goto done;
    int32_t pos[MAX_PROMPT], seqs[MAX_PROMPT];
    for (int i = 0; i < rc->n_prompt; i++) {
        pos[i] = i;
        seqs[i] = seq;
    }
    hearth_ubatch ub = {rc->n_prompt, rc->prompt, pos, seqs, NULL};
    int r = hearth_forward_run(fw, &ub, lg, &err);
    CHECKF(r == 1, "%s case %d: forward: %s", ac->json, idx, err.msg);
    if (r != 1) goto done;
    const double tol = 1e-3 * fabs(rc->max_logit);
    double worst = 0;
    for (int i = 0; i < rc->n_top; i++) {
        double d = fabs((double)lg[rc->top_id[i]] - rc->top_logit[i]);
        if (d > worst) worst = d;
    }
    double dmax = fabs((double)lg[argmax_row(lg, V)] - rc->max_logit);
    if (dmax > worst) worst = dmax;
    CHECKF(worst <= tol, "%s case %d: logit error %.3g over the tolerance %.3g", ac->json, idx, worst, tol);
    /* greedy: the prompt's next token, then one token per pass */
    int equal = 0;
    const char *how = "all equal";
    char parted[160] = "";
    int32_t t = argmax_row(lg, V);
    int p = rc->n_prompt;
    for (int g = 0; g < rc->n_greedy; g++) {
        if (t != rc->greedy[g]) {
            const float gap = fabsf(lg[t] - lg[rc->greedy[g]]);
            snprintf(parted, sizeof parted, "parted at step %d: hearth %d, llama.cpp %d, gap %.3g (tol %.3g)",
                     g, t, rc->greedy[g], gap, tol);
            CHECKF(gap <= tol, "%s case %d: greedy %s", ac->json, idx, parted);
            how = parted;
            break;
        }
        equal++;
        if (g + 1 == rc->n_greedy) break;
        int32_t ps = p++;
        hearth_ubatch one = {1, &t, &ps, &seq, NULL};
        if (hearth_forward_run(fw, &one, lg, &err) != 1) {
            CHECKF(false, "%s case %d: decode: %s", ac->json, idx, err.msg);
            break;
        }
        t = argmax_row(lg, V);
    }
    printf("  %-20s case %d (%3d tokens): max |logit error| %.2e (tol %.2e), greedy %d/%d: %s\n", ac->json,
           idx, rc->n_prompt, worst, tol, equal, rc->n_greedy, how);
done:
    free(lg);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
}

/* An end-of-generation token ends a generation: find a two-token prompt
 * whose greedy next token is the family's end-of-turn token `eog` ([a, eog],
 * [eog, a] or [a, a] over every a; deterministic for the seed-42 file), or
 * failing that another end-of-generation token (printed), then the engine,
 * asked for 8 tokens, stops there with finish = stop and emits nothing after
 * it. */
static void test_stop_token(hearth_model *m, const char *shape, int32_t eog) {
    hearth_error err = {0};
    const int V = m->hp.n_vocab;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, HEARTH_F16, 16, 4, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, 4, &err) : NULL;
    float *lg = malloc((size_t)V * sizeof *lg);
    REQUIRE(fw && lg);
    int32_t prompt[2] = {-1, -1}, stop = -1;
    bool found = false;
    /* first the family's end-of-turn token; failing that any end-of-generation token */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (int32_t i = 0; i < 3 * V && !found; i++) {
            const int32_t a = i % V, form = i / V;
            prompt[0] = form == 1 ? eog : a;
            prompt[1] = form == 0 ? eog : a;
            int seq = hearth_kv_seq_create(kv, &err);
            int32_t pos[2] = {0, 1}, seqs[2] = {seq, seq};
            hearth_ubatch ub = {2, prompt, pos, seqs, NULL};
            if (seq >= 0 && hearth_forward_run(fw, &ub, lg, &err) == 1) {
                stop = argmax_row(lg, V);
                found = pass == 0 ? stop == eog : hearth_tokenizer_is_eog(m->tokenizer, stop);
            }
            hearth_kv_seq_free(kv, seq);
        }
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    free(lg);
    CHECKF(found, "%s: no two-token prompt makes an end-of-generation token the greedy choice", shape);
    if (!found) return;
    hearth_engine_config cfg = hearth_engine_defaults();
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    hearth_request r = {0};
    r.prompt = prompt;
    r.n_prompt = 2;
    r.sampling = hearth_sampling_defaults();
    r.sampling.temperature = 0;
    r.max_tokens = 8;
    hearth_completion out = {0};
    CHECKF(hearth_engine_generate(e, &r, &out, &err) == HEARTH_OK, "%s: generate: %s", shape, err.msg);
    CHECKF(out.finish == HEARTH_FINISH_STOP, "%s: finish %s, want stop", shape,
           hearth_finish_name(out.finish));
    size_t after = 0;
    for (size_t i = 0; i < out.tokens.n; i++)
        if (out.tokens.ids[i] != stop) after++;
    CHECKF(after == 0, "%s: %zu tokens generated past the end-of-turn token", shape, after);
    char text[64] = "";
    size_t tl = 0;
    const char *tt = hearth_tokenizer_text(m->tokenizer, stop, &tl);
    snprintf(text, sizeof text, "%.*s", (int)tl, tt ? tt : "?");
    printf("  %s: prompt [%d, %d] -> greedy %s (%d): generation stops (%s, %zu token)\n", shape, prompt[0],
           prompt[1], text, stop, hearth_finish_name(out.finish), out.tokens.n);
    hearth_completion_free(&out);
    hearth_engine_free(e);
}

static void run_file(hearth_backend *be, const char *bin, const char *src, const char *dir,
                     const arch_case *ac) {
    char path[1024], cmd[3072], model[1024];
    snprintf(path, sizeof path, "%s/tests/data/arch/%s", src, ac->json);
    char *text = test_read_file(path, NULL);
    CHECKF(text, "cannot read %s", path);
    if (!text) return;
    static ref_case cases[16];
    int n = parse_ref(text, cases, 16);
    free(text);
    CHECKF(n >= 3, "%s: %d cases parsed (want several)", path, n);
    snprintf(model, sizeof model, "%s/%s.gguf", dir, ac->shape);
    if (access(model, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "'%s' mkmodel --shape %s --type f32 --seed 42 -o '%s' >/dev/null 2>&1", bin,
                 ac->shape, model);
        CHECKF(system(cmd) == 0, "mkmodel %s failed", ac->shape);
    }
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(model, &mp, &err);
    CHECKF(m, "%s: %s", model, err.msg);
    if (!m) return;
    int32_t eog = hearth_tokenizer_find(m->tokenizer, ac->eog, strlen(ac->eog));
    CHECKF(eog >= 0 && hearth_tokenizer_is_eog(m->tokenizer, eog), "%s: %s is not an end-of-generation token",
           ac->shape, ac->eog);
    for (int i = 0; i < n; i++)
        run_case(m, ac, &cases[i], i);
    if (eog >= 0 && strstr(ac->json, "-long") == NULL) test_stop_token(m, ac->shape, eog);
    hearth_model_free(m);
}

/* A file whose general.architecture is one Hearth does not run (the
 * gemma2-test file with its architecture renamed mamba2) is refused with an
 * error naming it and the supported list. */
static void test_unsupported(hearth_backend *be, const char *dir) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/gemma2-test.gguf", dir);
    snprintf(dst, sizeof dst, "%s/mamba2.gguf", dir);
    size_t len = 0;
    char *buf = test_read_file(src, &len);
    REQUIRE(buf);
    char *key = memmem(buf, len, "general.architecture", 20);
    char *val = key ? memmem(key, len - (size_t)(key - buf), "gemma2", 6) : NULL;
    REQUIRE(val);
    memcpy(val, "mamba2", 6);
    FILE *f = fopen(dst, "wb");
    REQUIRE(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(dst, &mp, &err);
    CHECK(!m && err.code == HEARTH_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "'mamba2' is not supported");
    CHECK_CONTAINS(err.msg, "gemma3");
    CHECK_CONTAINS(err.msg, "phi3");
    printf("  unsupported architecture: %s\n", err.msg);
    hearth_model_free(m);
}

/* Placement on a device backend that lacks gelu_mul, scale_cap and
 * attention_ext (CUDA for now): the CPU backend's ops minus those, with a
 * host. gemma2 and granite layers go to the host and the plan says why;
 * olmo2 and phi3 stay on the device. */
static void test_placement(hearth_backend *cpu_be, const char *dir) {
    hearth_error err = {0};
    hearth_backend *host = hearth_cpu_backend_create(1, &err);
    REQUIRE(host);
    static hearth_backend_ops ops;
    ops = *cpu_be->ops;
    ops.gelu_mul = NULL;
    ops.scale_cap = NULL;
    ops.attention_ext = NULL;
    hearth_backend dev = *cpu_be; /* shares the CPU context; used by this test alone */
    dev.ops = &ops;
    dev.host = host;
    static const struct {
        const char *shape;
        bool on_host;
    } want[] = {{"gemma2-test", true}, {"granite-test", true}, {"olmo2-test", false}, {"phi3-test", false}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[1024], cmd[3072];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, want[i].shape);
        if (access(path, R_OK) != 0) {
            snprintf(cmd, sizeof cmd, "'%s' mkmodel --shape %s --type f32 --seed 42 -o '%s' >/dev/null 2>&1",
                     getenv("HEARTH_BIN"), want[i].shape, path);
            CHECK(system(cmd) == 0);
        }
        hearth_model_params mp = {.backend = &dev, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
        hearth_model *m = hearth_model_load(path, &mp, &err);
        CHECKF(m, "%s: %s", path, err.msg);
        if (!m) continue;
        int on_host = 0;
        for (int l = 0; l < m->hp.n_layer; l++)
            on_host += m->layer_be[l] == host;
        CHECKF(on_host == (want[i].on_host ? m->hp.n_layer : 0), "%s: %d of %d layers on the host",
               want[i].shape, on_host, m->hp.n_layer);
        CHECKF((strstr(m->plan, "runs on the cpu") != NULL) == want[i].on_host, "%s: plan '%s'",
               want[i].shape, m->plan);
        printf("  placement on a device without the Gemma ops: %s: %s\n", want[i].shape, m->plan);
        hearth_model_free(m);
    }
    hearth_backend_free(host);
}

int main(void) {
    const char *bin = getenv("HEARTH_BIN"), *src = getenv("HEARTH_SOURCE");
    if (!bin || !src) {
        printf("SKIP: HEARTH_BIN and HEARTH_SOURCE are needed (run through ctest)\n");
        return 77;
    }
    char dir[] = "/tmp/hearth-arch-XXXXXX";
    REQUIRE(mkdtemp(dir));
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++)
        run_file(be, bin, src, dir, &k_cases[i]);
    test_unsupported(be, dir);
    test_placement(be, dir);
    /* the supported list names the new architectures */
    const char *list = hearth_arch_supported_list();
    CHECK(strstr(list, "gemma2") && strstr(list, "gemma3") && strstr(list, "phi3"));
    hearth_backend_free(be);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary("test_arch_parity");
}
