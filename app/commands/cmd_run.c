/*
 * cmd_run.c - `hearth run`: generate text from a prompt, streaming it to
 * stdout, with timings on stderr (or one JSON object with --json).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/serving/engine.h"
#include "runtime/store/cache_store.h"

/* Stream each new piece of text to stdout as it arrives. */
static void stream_text(const hearth_event *ev, void *user) {
    if (ev->text_len) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
    }
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *backend = "auto", *kv_type_name = "f16";
    int n_predict = 128, threads = 0, gpu_layers = HEARTH_GPU_LAYERS_ALL, ctx = 0, batch = 512, top_k = -1;
    float temp = -1, top_p = -1, min_p = -1, repeat_penalty = 1.0f, presence = 0, frequency = 0;
    uint64_t seed = 0xC0FFEE;
    bool json = false, no_bos = false, ignore_eos = false, no_special = false, no_prefix_cache = false;
    const char *cache_db = NULL;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model file"},
        {"-p", "--prompt", ARG_STR, &prompt, "TEXT", "prompt text (special tokens like <|im_start|> are parsed)"},
        {"-n", "--n-predict", ARG_INT, &n_predict, "N", "tokens to generate (default 128; -1 = until the context is full)"},
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
        {"-ngl", "--gpu-layers", ARG_INT, &gpu_layers, "N", APP_GPU_LAYERS_HELP},
        {NULL, "--cache-db", ARG_STR, &cache_db, "PATH",
         "prefix-cache database (default $XDG_CACHE_HOME/hearth/prefix-cache.sqlite; 'none': memory only)"},
        {NULL, "--no-prefix-cache", ARG_FLAG, &no_prefix_cache, NULL, "compute every prompt token, cache nothing"},
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
    if (n_predict == 0 || n_predict < -1 || batch <= 0 || ctx < 0) {
        fprintf(stderr, "hearth run: -n must be at least 1 (or -1: until the context is full), -b positive, "
                        "-c not negative (see hearth run --help)\n");
        return 2;
    }
    hearth_dtype kv_type;
    if (!app_parse_kv_type("run", kv_type_name, &kv_type)) return 2;
    hearth_sampling_params sp = hearth_sampling_defaults();
    if (temp >= 0) sp.temperature = temp;
    if (top_k >= 0) sp.top_k = top_k;
    if (top_p >= 0) sp.top_p = top_p;
    if (min_p >= 0) sp.min_p = min_p;
    sp.repeat_penalty = repeat_penalty;
    sp.presence_penalty = presence;
    sp.frequency_penalty = frequency;
    sp.seed = seed;

    double t_load0 = hearth_now_ms();
    hearth_backend *be;
    hearth_model *m;
    if (!app_load("run", model_path, backend, threads, gpu_layers, json, &be, &m)) return 1;
    double load_ms = hearth_now_ms() - t_load0;

    int rc = 1;
    hearth_error err = {0};
    hearth_tokens prompt_ids = {0};
    hearth_engine *e = NULL;
    hearth_completion out = {0};
    cJSON *root = NULL;
    const hearth_tokenizer *tok = m->tokenizer;

    if (hearth_tokenizer_encode(tok, prompt, strlen(prompt), !no_bos && hearth_tokenizer_add_bos_default(tok),
                                !no_special, &prompt_ids, &err)) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    if (prompt_ids.n == 0) {
        fprintf(stderr, "hearth run: the prompt is empty and the model adds no BOS token; give a prompt\n");
        goto done;
    }
    hearth_engine_config ec = hearth_engine_defaults();
    ec.n_ctx = ctx;
    ec.n_parallel = 1;
    ec.n_batch = batch;
    ec.kv_type = kv_type;
    ec.prefix_cache = !no_prefix_cache;
    char db_default[1024];
    if (ec.prefix_cache && !(cache_db && !strcmp(cache_db, "none")))
        ec.cache_db = cache_db ? cache_db : hearth_cache_store_default_path(db_default, sizeof db_default);
    e = hearth_engine_create(m, &ec, &err);
    if (!e) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    if (*hearth_engine_note(e)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(e));
    int n_ctx = hearth_engine_n_ctx(e);
    if ((int)prompt_ids.n >= n_ctx) {
        fprintf(stderr, "hearth run: the prompt has %zu tokens but the context holds %d; shorten it or raise --ctx\n",
                prompt_ids.n, n_ctx);
        goto done;
    }
    hearth_request rq = {0};
    rq.prompt = prompt_ids.ids;
    rq.n_prompt = (int)prompt_ids.n;
    rq.sampling = sp;
    rq.max_tokens = n_predict;
    rq.ignore_eog = ignore_eos;
    rq.on_event = json ? NULL : stream_text;
    if (hearth_engine_generate(e, &rq, &out, &err)) {
        fprintf(stderr, "\nhearth run: %s\n", err.msg);
        goto done;
    }
    const hearth_request_stats *st = &out.stats;
    double prompt_tok_s = st->prompt_ms > 0 ? (st->prompt_tokens - st->cached_tokens) * 1000.0 / st->prompt_ms : 0;
    double gen_tok_s = st->generated_tokens > 1 && st->gen_ms > 0 ? (st->generated_tokens - 1) * 1000.0 / st->gen_ms : 0;
    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", m->name);
        cJSON *pt = cJSON_AddArrayToObject(root, "prompt_tokens");
        for (size_t i = 0; i < prompt_ids.n; i++) cJSON_AddItemToArray(pt, cJSON_CreateNumber(prompt_ids.ids[i]));
        cJSON *gt = cJSON_AddArrayToObject(root, "tokens");
        for (size_t i = 0; i < out.tokens.n; i++) cJSON_AddItemToArray(gt, cJSON_CreateNumber(out.tokens.ids[i]));
        cJSON_AddStringToObject(root, "text", out.text ? out.text : "");
        cJSON_AddStringToObject(root, "finish_reason", hearth_finish_name(out.finish));
        cJSON *tm = cJSON_AddObjectToObject(root, "timings");
        cJSON_AddNumberToObject(tm, "load_ms", load_ms);
        cJSON_AddNumberToObject(tm, "ttft_ms", st->ttft_ms);
        cJSON_AddNumberToObject(tm, "prompt_ms", st->prompt_ms);
        cJSON_AddNumberToObject(tm, "prompt_tok_s", prompt_tok_s);
        cJSON_AddNumberToObject(tm, "gen_tok_s", gen_tok_s);
        cJSON_AddNumberToObject(tm, "itl_ms", st->itl_ms_mean);
        cJSON_AddNumberToObject(tm, "prompt_n", st->prompt_tokens);
        cJSON_AddNumberToObject(tm, "cached_n", st->cached_tokens);
        cJSON_AddNumberToObject(tm, "gen_n", st->generated_tokens);
        char *s = cJSON_PrintUnformatted(root);
        if (s) puts(s);
        free(s);
    } else {
        printf("\n");
        fprintf(stderr,
                "hearth: load %.1f ms | prompt %d tokens (%d from cache), %.1f tok/s | ttft %.1f ms | "
                "generated %d tokens, %.1f tok/s\n",
                load_ms, st->prompt_tokens, st->cached_tokens, prompt_tok_s, st->ttft_ms, st->generated_tokens,
                gen_tok_s);
    }
    rc = 0;
done:
    cJSON_Delete(root);
    hearth_completion_free(&out);
    hearth_engine_free(e);
    hearth_tokens_free(&prompt_ids);
    hearth_model_free(m);
    hearth_backend_free(be);
    return rc;
}
