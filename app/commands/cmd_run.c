/*
 * cmd_run.c - `hearth run`: generate text from a prompt, streaming it to
 * stdout, with timings on stderr (or one JSON object with --json).
 *
 * Engine options (threads, context, backend, prefix cache, ...) come from
 * app/cli/engine_opts.h: defaults, then the config file, then the flags.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "core/strbuf.h"
#include "runtime/serving/engine.h"

/* The flags of `hearth run` that are not engine options. */
typedef struct run_opts {
    const char *model_path, *prompt, *config_path;
    int n_predict, top_k;
    float temp, top_p, min_p, repeat_penalty, presence, frequency;
    uint64_t seed;
    bool json, no_bos, ignore_eos, no_special;
    const char *grammar_file, *json_schema; /* constrained decoding */
} run_opts;

/* A whole file, malloc'd and NUL-terminated (NULL on failure). */
static char *run_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    strbuf b = {0};
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        strbuf_add(&b, buf, k);
    bool bad = ferror(f) || b.oom;
    fclose(f);
    if (bad) {
        strbuf_free(&b);
        return NULL;
    }
    *len = b.n;
    return b.p ? strbuf_take(&b) : calloc(1, 1);
}

/* The grammar --grammar-file / --json-schema ask for, or NULL. *failed is
 * set (after printing why) when one was asked for and cannot be had. */
static hearth_grammar *run_grammar(const run_opts *ro, bool *failed) {
    *failed = false;
    if (!ro->grammar_file && !ro->json_schema) return NULL;
    hearth_error err = {0};
    const char *src = ro->grammar_file ? ro->grammar_file : ro->json_schema;
    char *text = NULL;
    size_t len = 0;
    bool inline_json = ro->json_schema && (ro->json_schema[0] == '{' || !strcmp(ro->json_schema, "true"));
    if (inline_json) {
        len = strlen(ro->json_schema);
    } else if (!(text = run_read_file(src, &len))) {
        fprintf(stderr, "hearth run: cannot read %s: %s\n", src, strerror(errno));
        *failed = true;
        return NULL;
    }
    const char *t = inline_json ? ro->json_schema : text;
    hearth_grammar *g = ro->grammar_file ? hearth_grammar_parse(t, len, "root", &err)
                                         : hearth_grammar_from_json_schema(t, len, false, &err);
    if (!g) {
        fprintf(stderr, "hearth run: %s: %s\n", inline_json ? "--json-schema" : src, err.msg);
        *failed = true;
    }
    free(text);
    return g;
}

/* Stream each new piece of text to stdout as it arrives. */
static void stream_text(const hearth_event *ev, void *user) {
    if (ev->text_len) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
    }
}

/* Parse argv into ro and eo (over what the config gave eo). Returns 0, or
 * the exit status: 0 after --help, 2 on a usage error. -1: go on. */
static int run_parse_args(int argc, char **argv, run_opts *ro, app_engine_opts *eo) {
    *ro = (run_opts){.n_predict = 128,
                     .top_k = -1,
                     .temp = -1,
                     .top_p = -1,
                     .min_p = -1,
                     .repeat_penalty = 1.0f,
                     .seed = 0xC0FFEE};
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &ro->model_path, "PATH", "GGUF model file"},
        {"-p", "--prompt", ARG_STR, &ro->prompt, "TEXT",
         "prompt text (special tokens like <|im_start|> are parsed)"},
        {"-n", "--n-predict", ARG_INT, &ro->n_predict, "N",
         "tokens to generate (default 128; -1 = until the context is full)"},
        {NULL, "--temp", ARG_FLOAT, &ro->temp, "T", "temperature; 0 = greedy (default 0.8)"},
        {NULL, "--top-k", ARG_INT, &ro->top_k, "K", "keep the K most likely tokens (default 40, 0 = off)"},
        {NULL, "--top-p", ARG_FLOAT, &ro->top_p, "P", "nucleus sampling (default 0.95, 1 = off)"},
        {NULL, "--min-p", ARG_FLOAT, &ro->min_p, "P", "drop tokens below P x the best (default 0.05)"},
        {NULL, "--repeat-penalty", ARG_FLOAT, &ro->repeat_penalty, "F",
         "penalise repeated tokens (default 1 = off)"},
        {NULL, "--presence-penalty", ARG_FLOAT, &ro->presence, "F", "default 0"},
        {NULL, "--frequency-penalty", ARG_FLOAT, &ro->frequency, "F", "default 0"},
        {NULL, "--seed", ARG_U64, &ro->seed, "S", "random seed (same seed, same text)"},
        {NULL, "--config", ARG_STR, &ro->config_path, "PATH",
         "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {NULL, "--no-bos", ARG_FLAG, &ro->no_bos, NULL, "do not add the BOS token"},
        {NULL, "--no-special", ARG_FLAG, &ro->no_special, NULL,
         "treat special-token text in the prompt as plain text"},
        {NULL, "--ignore-eos", ARG_FLAG, &ro->ignore_eos, NULL,
         "keep generating past end-of-generation tokens"},
        {NULL, "--grammar-file", ARG_STR, &ro->grammar_file, "PATH",
         "constrain the output to a GBNF grammar (llama.cpp's format; start rule 'root')"},
        {NULL, "--json-schema", ARG_STR, &ro->json_schema, "FILE|JSON",
         "constrain the output to JSON valid for this schema (a file, or inline JSON starting with '{')"},
        {NULL, "--json", ARG_FLAG, &ro->json, NULL,
         "print one JSON object (ids, text, timings) instead of streaming"},
    };
    const char *posargs[1];
    int n_pos;
    int r =
        app_engine_opts_parse(eo, "run", "-m MODEL.gguf -p PROMPT [options]",
                              "Generate text from a prompt. Text streams to stdout; timings go to stderr.",
                              opts, sizeof opts / sizeof opts[0], argc, argv, posargs, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (n_pos && !ro->prompt) ro->prompt = posargs[0];
    if (!ro->prompt) ro->prompt = "";
    if (ro->grammar_file && ro->json_schema) {
        fprintf(stderr,
                "hearth run: give --grammar-file or --json-schema, not both (see hearth run --help)\n");
        return 2;
    }
    if (ro->n_predict == 0 || ro->n_predict < -1) {
        fprintf(
            stderr,
            "hearth run: -n must be at least 1 (or -1: until the context is full) (see hearth run --help)\n");
        return 2;
    }
    return -1;
}

static hearth_sampling_params run_sampling(const run_opts *ro) {
    hearth_sampling_params sp = hearth_sampling_defaults();
    if (ro->temp >= 0) sp.temperature = ro->temp;
    if (ro->top_k >= 0) sp.top_k = ro->top_k;
    if (ro->top_p >= 0) sp.top_p = ro->top_p;
    if (ro->min_p >= 0) sp.min_p = ro->min_p;
    sp.repeat_penalty = ro->repeat_penalty;
    sp.presence_penalty = ro->presence;
    sp.frequency_penalty = ro->frequency;
    sp.seed = ro->seed;
    return sp;
}

/* Where a fresh process's time goes before the request is submitted. */
typedef struct run_startup {
    double load_ms;   /* model load, warm-up included */
    double engine_ms; /* engine create: KV pool, prefix-cache database open and check */
    double setup_ms;  /* tokenizing, grammar: everything else before the submit */
} run_startup;

/* The --json object: ids, text, finish reason and timings. */
static void run_print_json(const hearth_model *m, const hearth_tokens *prompt_ids,
                           const hearth_completion *out, const run_startup *su, double prompt_tok_s,
                           double gen_tok_s) {
    const hearth_request_stats *st = &out->stats;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", m->name);
    cJSON *pt = cJSON_AddArrayToObject(root, "prompt_tokens");
    for (size_t i = 0; i < prompt_ids->n; i++)
        cJSON_AddItemToArray(pt, cJSON_CreateNumber(prompt_ids->ids[i]));
    cJSON *gt = cJSON_AddArrayToObject(root, "tokens");
    for (size_t i = 0; i < out->tokens.n; i++)
        cJSON_AddItemToArray(gt, cJSON_CreateNumber(out->tokens.ids[i]));
    cJSON_AddStringToObject(root, "text", out->text ? out->text : "");
    cJSON_AddStringToObject(root, "finish_reason", hearth_finish_name(out->finish));
    cJSON *tm = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(tm, "load_ms", su->load_ms);
    cJSON_AddNumberToObject(tm, "ttft_ms", st->ttft_ms);
    cJSON_AddNumberToObject(tm, "prompt_ms", st->prompt_ms);
    /* the fresh-process breakdown: start_ms (load to first token) = load_ms +
     * engine_ms + setup_ms + ttft_ms; ttft_ms = queue_ms + prompt_ms; cache_ms
     * (within queue_ms) = cache_read_ms + cache_upload_ms + index work */
    cJSON_AddNumberToObject(tm, "engine_ms", su->engine_ms);
    cJSON_AddNumberToObject(tm, "setup_ms", su->setup_ms);
    cJSON_AddNumberToObject(tm, "start_ms", su->load_ms + su->engine_ms + su->setup_ms + st->ttft_ms);
    cJSON_AddNumberToObject(tm, "queue_ms", st->queue_ms);
    cJSON_AddNumberToObject(tm, "cache_ms", st->cache_ms);
    cJSON_AddNumberToObject(tm, "cache_read_ms", st->cache_read_ms);
    cJSON_AddNumberToObject(tm, "cache_upload_ms", st->cache_upload_ms);
    cJSON_AddNumberToObject(tm, "prompt_tok_s", prompt_tok_s);
    cJSON_AddNumberToObject(tm, "gen_tok_s", gen_tok_s);
    cJSON_AddNumberToObject(tm, "itl_ms", st->itl_ms_mean);
    cJSON_AddNumberToObject(tm, "prompt_n", st->prompt_tokens);
    cJSON_AddNumberToObject(tm, "cached_n", st->cached_tokens);
    cJSON_AddNumberToObject(tm, "gen_n", st->generated_tokens);
    cJSON_AddNumberToObject(tm, "draft_n", st->spec_drafted);
    cJSON_AddNumberToObject(tm, "draft_accepted_n", st->spec_accepted);
    cJSON_AddNumberToObject(tm, "grammar_ms", st->grammar_ms);
    cJSON_AddNumberToObject(tm, "grammar_masked_n", st->grammar_masked);
    char *s = cJSON_PrintUnformatted(root);
    if (s) puts(s);
    free(s);
    cJSON_Delete(root);
}

/* Tokenize, start the engine, generate and report. Returns the exit status. */
static int run_generate(const run_opts *ro, const app_engine_opts *eo, hearth_model *m, double load_ms) {
    int rc = 1;
    hearth_error err = {0};
    hearth_tokens prompt_ids = {0};
    hearth_engine *e = NULL;
    hearth_completion out = {0};
    hearth_grammar *grammar = NULL;
    hearth_model *draft = NULL; /* --draft */
    const hearth_tokenizer *tok = m->tokenizer;
    run_startup su = {.load_ms = load_ms};
    double t_setup = hearth_now_ms();

    if (hearth_tokenizer_encode(tok, ro->prompt, strlen(ro->prompt),
                                !ro->no_bos && hearth_tokenizer_add_bos_default(tok), !ro->no_special,
                                &prompt_ids, &err)) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    if (prompt_ids.n == 0) {
        fprintf(stderr, "hearth run: the prompt is empty and the model adds no BOS token; give a prompt\n");
        goto done;
    }
    double t_engine = hearth_now_ms();
    hearth_engine_config ec;
    char db_default[1024];
    app_engine_opts_engine_config(eo, 1, &ec, db_default, sizeof db_default);
    if (app_engine_opts_open_draft(eo, NULL, m, &ec, &draft, &err)) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    e = hearth_engine_create(m, &ec, &err);
    if (!e) {
        fprintf(stderr, "hearth run: %s\n", err.msg);
        goto done;
    }
    su.engine_ms = hearth_now_ms() - t_engine;
    if (*hearth_engine_note(e)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(e));
    int n_ctx = hearth_engine_n_ctx(e);
    if ((int)prompt_ids.n >= n_ctx) {
        fprintf(stderr,
                "hearth run: the prompt has %zu tokens but the context holds %d; shorten it or raise --ctx\n",
                prompt_ids.n, n_ctx);
        goto done;
    }
    bool gfail;
    grammar = run_grammar(ro, &gfail);
    if (gfail) goto done;
    hearth_request rq = {0};
    rq.grammar = grammar;
    rq.prompt = prompt_ids.ids;
    rq.n_prompt = (int)prompt_ids.n;
    rq.sampling = run_sampling(ro);
    rq.max_tokens = ro->n_predict;
    rq.ignore_eog = ro->ignore_eos;
    rq.on_event = ro->json ? NULL : stream_text;
    su.setup_ms = hearth_now_ms() - t_setup - su.engine_ms;
    if (hearth_engine_generate(e, &rq, &out, &err)) {
        fprintf(stderr, "\nhearth run: %s\n", err.msg);
        goto done;
    }
    const hearth_request_stats *st = &out.stats;
    double prompt_tok_s =
        st->prompt_ms > 0 ? (st->prompt_tokens - st->cached_tokens) * 1000.0 / st->prompt_ms : 0;
    double gen_tok_s =
        st->generated_tokens > 1 && st->gen_ms > 0 ? (st->generated_tokens - 1) * 1000.0 / st->gen_ms : 0;
    if (ro->json) {
        run_print_json(m, &prompt_ids, &out, &su, prompt_tok_s, gen_tok_s);
    } else {
        printf("\n");
        fprintf(stderr,
                "hearth: load %.1f ms | prompt %d tokens (%d from cache), %.1f tok/s | ttft %.1f ms | "
                "generated %d tokens, %.1f tok/s\n",
                load_ms, st->prompt_tokens, st->cached_tokens, prompt_tok_s, st->ttft_ms,
                st->generated_tokens, gen_tok_s);
        if (ec.spec != HEARTH_SPEC_OFF)
            fprintf(stderr, "hearth: speculation (%s): %d drafted, %d accepted (%.0f%%)\n",
                    hearth_spec_mode_name(ec.spec), st->spec_drafted, st->spec_accepted,
                    st->spec_drafted ? 100.0 * st->spec_accepted / st->spec_drafted : 0.0);
    }
    rc = 0;
done:
    hearth_completion_free(&out);
    hearth_engine_free(e);
    hearth_model_free(draft);
    hearth_grammar_release(grammar);
    hearth_tokens_free(&prompt_ids);
    return rc;
}

int cmd_run(int argc, char **argv) {
    hearth_config cfg;
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    if (!app_engine_opts_load_config("run", argc, argv, &cfg)) {
        hearth_config_free(&cfg);
        return 2;
    }
    app_engine_opts_apply_config(&eo, &cfg);
    run_opts ro;
    int rc = run_parse_args(argc, argv, &ro, &eo);
    if (rc < 0 && eo.print_config) rc = app_engine_opts_print_json(&eo, "run", ro.model_path, 1);
    if (rc >= 0) {
        hearth_config_free(&cfg);
        return rc;
    }
    double t_load0 = hearth_now_ms();
    hearth_backend *be;
    hearth_model *m;
    if (!app_engine_opts_load(&eo, "run", ro.model_path, ro.json, &be, &m)) {
        hearth_config_free(&cfg);
        return 1;
    }
    rc = run_generate(&ro, &eo, m, hearth_now_ms() - t_load0);
    hearth_model_free(m);
    hearth_backend_free(be);
    hearth_config_free(&cfg);
    return rc;
}
