/*
 * test_golden.c - Hearth's CPU forward pass against independent references.
 *
 *  1. PyTorch float64 (../shared/golden/torch-*.jsonl) on every *-f32.gguf of
 *     the KJV models: prompt tokens equal, greedy tokens identical, and the
 *     logits at the first generated position within 1e-3 of the largest
 *     |logit| (F32 KV cache: exact arithmetic up to float32 rounding).
 *  2. llama.cpp (../shared/golden/llamacpp-*.jsonl, F16 KV cache) on every
 *     other file: greedy tokens identical, or, where they part, a near-tie:
 *     at the first differing step, Hearth's logit for llama.cpp's token is
 *     within NEAR_TIE of Hearth's best (two implementations that round
 *     differently may pick either of two almost equal logits). First-step
 *     logits within a per-type tolerance of llama.cpp's.
 *  3. llama.cpp's stories260K runs (greedy-stories260K-*.jsonl), same rules.
 *
 * HEARTH_TEST_THREADS sets the CPU thread count (default 2).
 */
#include <cjson/cJSON.h>

#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward.h"
#include "runtime/model/model.h"
#include "runtime/serving/sampling.h"
#include "test.h"

/* A divergence is a near-tie when the two tokens' logits are closer than the
 * two implementations disagree anyway: twice the largest absolute difference
 * between Hearth's and the reference's logits at the first position of the
 * same prompt, and never less than NEAR_TIE_FLOOR (the 1e-2). For
 * the F32 files that is the floor; for quantized files, where both programs
 * round activations to 8 bits in different orders, it is larger. Where the
 * reference logged per-step logits (stories260K), its own gap counts too. */
#define NEAR_TIE_FLOOR 0.01f

static int g_threads = 2;

typedef struct run_result {
    hearth_tokens ids;
    float *first_logits; /* n_vocab */
    float **step_logits; /* per generated step */
    int n_steps;
} run_result;

static void run_result_free(run_result *r) {
    hearth_tokens_free(&r->ids);
    free(r->first_logits);
    for (int i = 0; i < r->n_steps; i++) free(r->step_logits[i]);
    free(r->step_logits);
    memset(r, 0, sizeof *r);
}

/* Greedy generation of up to n tokens (stop after an EOG token when stop_eog). */
static bool greedy(hearth_model *m, hearth_dtype kv_type, const int32_t *prompt, int n_prompt, int n, bool stop_eog,
                   run_result *out) {
    hearth_error err = {0};
    int n_ctx = n_prompt + n + 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, kv_type, 16, (n_ctx + 15) / 16, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(m->backend, &kc, &err);
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, n_prompt > 0 ? n_prompt : 1, &err) : NULL;
    if (!fw) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        hearth_kv_free(kv);
        return false;
    }
    int nv = m->hp.n_vocab;
    int seq = hearth_kv_seq_create(kv, &err);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n_prompt), *seqs = malloc(sizeof(int32_t) * (size_t)n_prompt);
    for (int i = 0; i < n_prompt; i++) {
        pos[i] = i;
        seqs[i] = seq;
    }
    float *logits = malloc(sizeof(float) * (size_t)nv);
    hearth_ubatch ub = {n_prompt, prompt, pos, seqs, NULL};
    bool ok = hearth_forward_run(fw, &ub, logits, &err) == 1;
    if (!ok) fprintf(stderr, "forward failed: %s\n", err.msg);
    memset(out, 0, sizeof *out);
    out->first_logits = malloc(sizeof(float) * (size_t)nv);
    memcpy(out->first_logits, logits, sizeof(float) * (size_t)nv);
    out->step_logits = calloc((size_t)n, sizeof(float *));
    for (int i = 0; ok && i < n; i++) {
        out->step_logits[i] = malloc(sizeof(float) * (size_t)nv);
        memcpy(out->step_logits[i], logits, sizeof(float) * (size_t)nv);
        out->n_steps = i + 1;
        int32_t id = hearth_argmax(logits, nv);
        hearth_tokens_push(&out->ids, id);
        if (stop_eog && hearth_tokenizer_is_eog(m->tokenizer, id)) break;
        if (i + 1 == n) break;
        int32_t p = n_prompt + i;
        hearth_ubatch u1 = {1, &id, &p, &seq, NULL};
        ok = hearth_forward_run(fw, &u1, logits, &err) == 1;
        if (!ok) fprintf(stderr, "forward failed: %s\n", err.msg);
    }
    free(pos);
    free(seqs);
    free(logits);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}

static int json_ints(const cJSON *arr, int32_t *out, int cap) {
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (n < cap) out[n++] = (int32_t)it->valuedouble;
    return n;
}

static hearth_model *load(const char *file, hearth_backend *be) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(test_shared_path(path, sizeof path, file), &mp, &err);
    if (!m) fprintf(stderr, "%s: load failed: %s\n", file, err.msg);
    return m;
}

typedef struct case_stats {
    int prompts, exact, near_tie, bad;
    float max_logit_err;
} case_stats;

/* One golden file against one model file. */
static void check_file(hearth_backend *be, const char *model_file, const char *golden_file, hearth_dtype kv_type,
                       bool stop_eog, float logit_tol, const char *f_prompt_ids, const char *f_ids,
                       const char *f_logits, bool relative) {
    hearth_model *m = load(model_file, be);
    CHECKF(m != NULL, "%s", model_file);
    if (!m) return;
    char path[1024];
    size_t len;
    char *text = test_read_file(test_shared_path(path, sizeof path, golden_file), &len);
    CHECKF(text != NULL, "%s", golden_file);
    if (!text) {
        hearth_model_free(m);
        return;
    }
    case_stats st = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
        int32_t want_prompt[512], want_ids[128];
        int n_wp = json_ints(cJSON_GetObjectItem(j, f_prompt_ids), want_prompt, 512);
        int n_wi = json_ints(cJSON_GetObjectItem(j, f_ids), want_ids, 128);
        /* the tokenizer must give llama.cpp's prompt ids */
        hearth_tokens got_prompt = {0};
        hearth_error err = {0};
        hearth_tokenizer_encode(m->tokenizer, prompt, strlen(prompt), true, true, &got_prompt, &err);
        bool prompt_ok = (int)got_prompt.n == n_wp && !memcmp(got_prompt.ids, want_prompt, sizeof(int32_t) * (size_t)n_wp);
        CHECKF(prompt_ok, "%s: prompt \"%s\" tokenizes differently", model_file, prompt);
        hearth_tokens_free(&got_prompt);

        run_result r;
        bool ok = greedy(m, kv_type, want_prompt, n_wp, n_wi, stop_eog, &r);
        CHECKF(ok, "%s: generation failed", model_file);
        st.prompts++;
        /* first-position logits */
        const cJSON *jl = cJSON_GetObjectItem(j, f_logits);
        int nv = m->hp.n_vocab;
        float tie_tol = NEAR_TIE_FLOOR;
        if (jl && cJSON_GetArraySize(jl) == nv) {
            float max_ref = 0, max_err = 0;
            const cJSON *it;
            int i = 0;
            cJSON_ArrayForEach(it, jl) {
                float ref = (float)it->valuedouble;
                if (fabsf(ref) > max_ref) max_ref = fabsf(ref);
                float e = fabsf(ref - r.first_logits[i++]);
                if (e > max_err) max_err = e;
            }
            float e = relative ? max_err / max_ref : max_err;
            if (e > st.max_logit_err) st.max_logit_err = e;
            if (2 * max_err > tie_tol) tie_tol = 2 * max_err;
            CHECKF(e <= logit_tol, "%s \"%s\": first logits differ by %g (tolerance %g%s)", model_file, prompt, e,
                   logit_tol, relative ? " of max |logit|" : "");
        }
        /* tokens: identical, or a near-tie at the first difference */
        int n_cmp = (int)r.ids.n < n_wi ? (int)r.ids.n : n_wi;
        int diverge = -1;
        for (int i = 0; i < n_cmp && diverge < 0; i++)
            if (r.ids.ids[i] != want_ids[i]) diverge = i;
        if (diverge < 0 && (int)r.ids.n != n_wi) diverge = n_cmp;
        if (diverge < 0) {
            st.exact++;
        } else if (diverge < r.n_steps && diverge < n_wi) {
            const float *lg = r.step_logits[diverge];
            float gap = lg[r.ids.ids[diverge]] - lg[want_ids[diverge]];
            /* where the reference recorded its top logits at every step, its
             * own gap between the two tokens counts too */
            const cJSON *steps = cJSON_GetObjectItem(j, "top5_per_step");
            const cJSON *top = steps ? cJSON_GetArrayItem(steps, diverge) : NULL;
            float ref_best = NAN, ref_ours = NAN;
            const cJSON *pair;
            cJSON_ArrayForEach(pair, top) {
                int id = (int)cJSON_GetArrayItem(pair, 0)->valuedouble;
                float v = (float)cJSON_GetArrayItem(pair, 1)->valuedouble;
                if (id == want_ids[diverge]) ref_best = v;
                if (id == r.ids.ids[diverge]) ref_ours = v;
            }
            if (!isnan(ref_best) && !isnan(ref_ours) && ref_best - ref_ours < gap) gap = ref_best - ref_ours;
            if (gap <= tie_tol) {
                st.near_tie++;
                printf("  %s \"%s\": parts from the reference at token %d of %d, a near-tie (logit gap %.4f, "
                       "tolerance %.4f)\n",
                       model_file, prompt, diverge, n_wi, gap, tie_tol);
            } else {
                st.bad++;
                CHECKF(false, "%s \"%s\": token %d is %d, reference %d; logit gap %.4f is no near-tie (tolerance %.4f)",
                       model_file, prompt, diverge, r.ids.ids[diverge], want_ids[diverge], gap, tie_tol);
            }
        } else {
            st.bad++;
            CHECKF(false, "%s \"%s\": generated %zu tokens, reference %d", model_file, prompt, r.ids.n, n_wi);
        }
        run_result_free(&r);
        cJSON_Delete(j);
    }
    CHECKF(st.prompts > 0, "%s: no prompts read", golden_file);
    printf("%-32s vs %-40s %d prompts: %d identical, %d near-tie, %d wrong; max first-logit error %.2e\n", model_file,
           golden_file, st.prompts, st.exact, st.near_tie, st.bad, st.max_logit_err);
    free(text);
    hearth_model_free(m);
}

int main(void) {
    const char *t = getenv("HEARTH_TEST_THREADS");
    if (t) g_threads = atoi(t);
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(g_threads, &err);
    REQUIRE(be != NULL);
    printf("CPU backend, %d threads\n", g_threads);

    /* 1. PyTorch float64 on the F32 files: exact tokens, logits within 1e-3 relative. */
    const char *kjv[] = {"llama", "qwen2", "qwen3", "draft"};
    char mf[128], gf[128];
    for (int i = 0; i < 4; i++) {
        snprintf(mf, sizeof mf, "models/hearth-kjv-%s-f32.gguf", kjv[i]);
        snprintf(gf, sizeof gf, "golden/torch-hearth-kjv-%s.jsonl", kjv[i]);
        check_file(be, mf, gf, HEARTH_F32, true, 1e-3f, "prompt_tokens", "tokens", "logits", true);
    }
    /* 2. llama.cpp on every KJV file (F16 KV like llama.cpp). Tolerances on
     * the first logits, relative to the largest |logit|, are about 1.5x the
     * measured maximum: llama.cpp itself differs from float64 by 4.2e-4 on
     * F32 (its F16 KV cache); with quantized weights both programs round the
     * activations to 8-bit blocks, and a value that lands on a rounding edge
     * in one and not the other moves a logit by up to ~1.3% (measured). */
    struct { const char *file; float tol; } lc[] = {
        {"llama-f32", 2e-3f},  {"llama-f16", 2e-3f},  {"llama-bf16", 5e-3f}, {"llama-q8_0", 1.5e-2f},
        {"llama-q4_0", 2e-2f}, {"llama-q4_1", 2e-2f}, {"llama-q5_0", 2e-2f}, {"llama-q5_1", 2e-2f},
        {"llama-q4_k", 2e-2f}, {"llama-q5_k", 2e-2f}, {"llama-q6_k", 2e-2f}, {"llama-q4_k_m", 2e-2f},
        {"qwen2-f32", 2e-3f},  {"qwen2-f16", 2e-3f},  {"qwen2-q8_0", 1.5e-2f}, {"qwen2-q4_0", 2e-2f},
        {"qwen3-f32", 2e-3f},  {"qwen3-f16", 2e-3f},  {"qwen3-q8_0", 1.5e-2f}, {"qwen3-q4_0", 2e-2f},
        {"qwen3-q4_k", 2e-2f}, {"draft-f32", 2e-3f},  {"draft-f16", 2e-3f},  {"draft-q8_0", 1.5e-2f},
        {"draft-q4_0", 2e-2f},
    };
    for (size_t i = 0; i < sizeof lc / sizeof lc[0]; i++) {
        snprintf(mf, sizeof mf, "models/hearth-kjv-%s.gguf", lc[i].file);
        snprintf(gf, sizeof gf, "golden/llamacpp-hearth-kjv-%s.jsonl", lc[i].file);
        check_file(be, mf, gf, HEARTH_F16, true, lc[i].tol, "prompt_tokens", "tokens", "logits", true);
    }
    /* 3. stories260K (third-party model): llama.cpp, 48 tokens, no stop. */
    const char *st[] = {"f32", "f16", "q8_0", "q6_k", "q5_0", "q4_k_m", "q4_1", "q4_0"};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        snprintf(mf, sizeof mf, "models/stories260K-%s.gguf", st[i]);
        snprintf(gf, sizeof gf, "golden/greedy-stories260K-%s.jsonl", st[i]);
        check_file(be, mf, gf, HEARTH_F16, false, i < 2 ? 2e-3f : 2e-2f, "prompt_ids", "generated_ids",
                   "logits_first", true);
    }
    hearth_backend_free(be);
    return test_summary("golden");
}
