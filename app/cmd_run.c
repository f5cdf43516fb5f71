/*
 * cmd_run.c - `hearth run`: generate text from a prompt, streaming it to
 * stdout, with timings on stderr (or one JSON object with --json).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"
#include "forward.h"
#include "kv_cache.h"
#include "sampling.h"

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *backend = "auto", *kv_type_name = "f16";
    int n_predict = 128, threads = 0, ctx = 0, batch = 512, top_k = -1;
    float temp = -1, top_p = -1, min_p = -1, repeat_penalty = 1.0f, presence = 0, frequency = 0;
    uint64_t seed = 0xC0FFEE;
    bool json = false, no_bos = false, ignore_eos = false, no_special = false;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model file"},
        {"-p", "--prompt", ARG_STR, &prompt, "TEXT", "prompt text (special tokens like <|im_start|> are parsed)"},
        {"-n", "--n-predict", ARG_INT, &n_predict, "N", "tokens to generate (default 128)"},
        {NULL, "--temp", ARG_FLOAT, &temp, "T", "temperature; 0 = greedy (default 0.8)"},
        {NULL, "--top-k", ARG_INT, &top_k, "K", "keep the K most likely tokens (default 40, 0 = off)"},
        {NULL, "--top-p", ARG_FLOAT, &top_p, "P", "nucleus sampling (default 0.95, 1 = off)"},
        {NULL, "--min-p", ARG_FLOAT, &min_p, "P", "drop tokens below P x the best (default 0.05)"},
        {NULL, "--repeat-penalty", ARG_FLOAT, &repeat_penalty, "F", "penalise repeated tokens (default 1 = off)"},
        {NULL, "--presence-penalty", ARG_FLOAT, &presence, "F", "default 0"},
        {NULL, "--frequency-penalty", ARG_FLOAT, &frequency, "F", "default 0"},
        {NULL, "--seed", ARG_U64, &seed, "S", "random seed (same seed, same text)"},
        {"-t", "--threads", ARG_INT, &threads, "N", "CPU threads (default: physical cores)"},
        {"-c", "--ctx", ARG_INT, &ctx, "N", "context length (default: the model's, at most 4096)"},
        {"-b", "--batch", ARG_INT, &batch, "N", "prompt tokens per forward pass (default 512)"},
        {NULL, "--kv-type", ARG_STR, &kv_type_name, "TYPE", "KV cache type: f16 (default), f32, q8_0"},
        {NULL, "--backend", ARG_STR, &backend, "NAME", "auto, cpu, cuda[:N], vulkan[:N] (default auto)"},
        {NULL, "--no-bos", ARG_FLAG, &no_bos, NULL, "do not add the BOS token"},
        {NULL, "--no-special", ARG_FLAG, &no_special, NULL, "treat special-token text in the prompt as plain text"},
        {NULL, "--ignore-eos", ARG_FLAG, &ignore_eos, NULL, "keep generating past end-of-generation tokens"},
        {NULL, "--json", ARG_FLAG, &json, NULL, "print one JSON object (ids, text, timings) instead of streaming"},
    };
    const char *posargs[1];
    int n_pos;
    int r = arg_parse("run", "-m MODEL.gguf -p PROMPT [options]",
                      "Generate text from a prompt. Text streams to stdout; timings go to stderr.", opts,
                      sizeof opts / sizeof opts[0], argc, argv, posargs, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (n_pos && !prompt) prompt = posargs[0];
    if (!prompt) prompt = "";
    if (n_predict < 0 || batch <= 0 || ctx < 0) {
        fprintf(stderr, "hearth run: -n, -b and -c must not be negative (see hearth run --help)\n");
        return 2;
    }
    hearth_dtype kv_type;
    if (!hearth_dtype_from_name(kv_type_name, &kv_type) ||
        (kv_type != HEARTH_F16 && kv_type != HEARTH_F32 && kv_type != HEARTH_Q8_0)) {
        fprintf(stderr, "hearth run: --kv-type '%s' is not one of f16, f32, q8_0\n", kv_type_name);
        return 2;
    }
    hearth_sampling_params sp = hearth_sampling_defaults();
    if (temp >= 0) sp.temperature = temp;
    if (top_k >= 0) sp.top_k = top_k;
    if (top_p >= 0) sp.top_p = top_p;
    if (min_p >= 0) sp.min_p = min_p;
    sp.repeat_penalty = repeat_penalty;
    sp.presence_penalty = presence;
    sp.frequency_penalty = frequency;
    sp.seed = seed;

    double t_load0 = app_now_ms();
    hearth_backend *be;
    hearth_model *m;
    if (!app_load("run", model_path, backend, threads, json, &be, &m)) return 1;
    double load_ms = app_now_ms() - t_load0;

    int rc = 1;
    hearth_error err = {0};
    hearth_tokens prompt_ids = {0}, out_ids = {0};
    hearth_kv_cache *kv = NULL;
    hearth_forward *fw = NULL;
    hearth_sampler *smp = NULL;
    float *logits = NULL;
    cJSON *root = NULL;
    const hearth_tokenizer *tok = m->tokenizer;
    const int n_vocab = m->hp.n_vocab;

    if (hearth_tokenizer_encode(tok, prompt, strlen(prompt), !no_bos && hearth_tokenizer_add_bos_default(tok),
                                !no_special, &prompt_ids, &err)) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    int n_ctx = ctx ? ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (prompt_ids.n == 0) {
        fprintf(stderr, "hearth run: the prompt is empty and the model adds no BOS token; give a prompt\n");
        goto done;
    }
    if ((int)prompt_ids.n >= n_ctx) {
        fprintf(stderr, "hearth run: the prompt has %zu tokens but the context holds %d; shorten it or raise --ctx\n",
                prompt_ids.n, n_ctx);
        goto done;
    }
    if ((int)prompt_ids.n + n_predict > n_ctx) n_predict = n_ctx - (int)prompt_ids.n;
    const int page_size = 16;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, kv_type, page_size,
                           (n_ctx + page_size - 1) / page_size};
    kv = hearth_kv_create(be, &kc, &err);
    if (!kv) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    int max_batch = batch < n_ctx ? batch : n_ctx;
    fw = hearth_forward_create(m, kv, max_batch, &err);
    smp = fw ? hearth_sampler_create(&sp, n_vocab, &err) : NULL;
    logits = malloc((size_t)n_vocab * sizeof *logits);
    if (!fw || !smp || !logits) {
        fprintf(stderr, "hearth run: %s\n", err.msg[0] ? err.msg : "out of memory");
        goto done;
    }
    int seq = hearth_kv_seq_create(kv, &err);

    /* ---- prompt processing, in batches */
    double t0 = app_now_ms();
    int32_t *pos = malloc((size_t)max_batch * sizeof *pos), *seqs = malloc((size_t)max_batch * sizeof *seqs);
    if (!pos || !seqs) {
        free(pos);
        free(seqs);
        fprintf(stderr, "hearth run: out of memory\n");
        goto done;
    }
    for (int i = 0; i < max_batch; i++) seqs[i] = seq;
    for (size_t i = 0; i < prompt_ids.n; i++) hearth_sampler_accept(smp, prompt_ids.ids[i]);
    for (size_t done_n = 0; done_n < prompt_ids.n;) {
        int nb = (int)(prompt_ids.n - done_n < (size_t)max_batch ? prompt_ids.n - done_n : (size_t)max_batch);
        for (int i = 0; i < nb; i++) pos[i] = (int32_t)(done_n + (size_t)i);
        hearth_ubatch ub = {nb, prompt_ids.ids + done_n, pos, seqs, NULL};
        if (hearth_forward_run(fw, &ub, logits, &err) < 0) {
            fprintf(stderr, "hearth run: %s\n", err.msg);
            free(pos);
            free(seqs);
            goto done;
        }
        done_n += (size_t)nb;
    }
    double t_prompt = app_now_ms();

    /* ---- generation */
    hearth_detok dt;
    hearth_detok_init(&dt, tok, false, false);
    char piece[1024];
    size_t text_cap = 4096, text_len = 0;
    char *text = malloc(text_cap);
    double t_first = 0;
    int n_gen = 0;
    for (int i = 0; i < n_predict; i++) {
        int32_t id = hearth_sampler_sample(smp, logits);
        if (i == 0) t_first = app_now_ms();
        hearth_sampler_accept(smp, id);
        hearth_tokens_push(&out_ids, id);
        n_gen++;
        size_t k = hearth_detok_feed(&dt, id, piece, sizeof piece);
        if (k) {
            if (!json) {
                fwrite(piece, 1, k, stdout);
                fflush(stdout);
            }
            while (text && text_len + k + 1 > text_cap) {
                text_cap *= 2;
                char *t2 = realloc(text, text_cap);
                if (!t2) free(text);
                text = t2;
            }
            if (text) {
                memcpy(text + text_len, piece, k);
                text_len += k;
            }
        }
        if (!ignore_eos && hearth_tokenizer_is_eog(tok, id)) break;
        if (i + 1 == n_predict) break;
        int32_t p = (int32_t)(prompt_ids.n + (size_t)i);
        hearth_ubatch ub = {1, &id, &p, &seq, NULL};
        if (hearth_forward_run(fw, &ub, logits, &err) < 0) {
            fprintf(stderr, "\nhearth run: %s\n", err.msg);
            break;
        }
    }
    size_t k = hearth_detok_flush(&dt, piece, sizeof piece);
    if (k && !json) fwrite(piece, 1, k, stdout);
    if (k && text && text_len + k + 1 <= text_cap) {
        memcpy(text + text_len, piece, k);
        text_len += k;
    }
    if (text) text[text_len] = 0;
    double t_end = app_now_ms();
    free(pos);
    free(seqs);

    double prompt_ms = t_prompt - t0, ttft_ms = t_first - t0;
    double prompt_tok_s = prompt_ms > 0 ? prompt_ids.n * 1000.0 / prompt_ms : 0;
    double gen_ms = t_end - t_first;
    double gen_tok_s = n_gen > 1 && gen_ms > 0 ? (n_gen - 1) * 1000.0 / gen_ms : 0;
    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", m->name);
        cJSON *pt = cJSON_AddArrayToObject(root, "prompt_tokens");
        for (size_t i = 0; i < prompt_ids.n; i++) cJSON_AddItemToArray(pt, cJSON_CreateNumber(prompt_ids.ids[i]));
        cJSON *gt = cJSON_AddArrayToObject(root, "tokens");
        for (size_t i = 0; i < out_ids.n; i++) cJSON_AddItemToArray(gt, cJSON_CreateNumber(out_ids.ids[i]));
        cJSON_AddStringToObject(root, "text", text ? text : "");
        cJSON *tm = cJSON_AddObjectToObject(root, "timings");
        cJSON_AddNumberToObject(tm, "load_ms", load_ms);
        cJSON_AddNumberToObject(tm, "ttft_ms", ttft_ms);
        cJSON_AddNumberToObject(tm, "prompt_ms", prompt_ms);
        cJSON_AddNumberToObject(tm, "prompt_tok_s", prompt_tok_s);
        cJSON_AddNumberToObject(tm, "gen_tok_s", gen_tok_s);
        cJSON_AddNumberToObject(tm, "prompt_n", (double)prompt_ids.n);
        cJSON_AddNumberToObject(tm, "gen_n", n_gen);
        char *s = cJSON_PrintUnformatted(root);
        if (s) puts(s);
        free(s);
    } else {
        printf("\n");
        fprintf(stderr,
                "hearth: load %.1f ms | prompt %zu tokens, %.1f tok/s | ttft %.1f ms | generated %d tokens, %.1f tok/s\n",
                load_ms, prompt_ids.n, prompt_tok_s, ttft_ms, n_gen, gen_tok_s);
    }
    free(text);
    rc = 0;
done:
    cJSON_Delete(root);
    free(logits);
    hearth_sampler_free(smp);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    hearth_tokens_free(&prompt_ids);
    hearth_tokens_free(&out_ids);
    hearth_model_free(m);
    hearth_backend_free(be);
    return rc;
}
