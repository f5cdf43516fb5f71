/*
 * bench_load.c - `hearth bench --concurrency N`: the engine under load, like
 * genai-perf. R requests with P prompt tokens (optionally sharing their first
 * S tokens) and O output tokens each, N in flight at any time; measures time
 * to first token, inter-token latency and request latency (p50/p95/p99) and
 * total throughput. Output: a Markdown summary, or one JSON object (--json).
 *
 * Prompts are random ids of normal (non-control) tokens: speed does not depend
 * on the text. Requests ignore end-of-generation so each yields exactly O.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/model/forward.h"
#include "runtime/serving/engine.h"

typedef struct load_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hearth_engine *e;
    int n_requests, submitted, done, failed;
    int32_t **prompts;
    int *prompt_len;
    int out_tokens;
    hearth_sampling_params sp;
    double *ttft, *latency, *itl;
    int n_itl, cap_itl;
    uint64_t gen_tokens, cached_tokens, prompt_tokens;
    char first_error[HEARTH_ERROR_MSG_MAX];
} load_state;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile by nearest rank on a sorted array. */
static double pct(const double *v, int n, double p) {
    if (n <= 0) return 0;
    int k = (int)ceil(p / 100.0 * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return v[k];
}

static void submit_next(load_state *s);

static void on_event(const hearth_event *ev, void *user) {
    load_state *s = user;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        if (ev->itl_ms > 0) {
            pthread_mutex_lock(&s->mu);
            if (s->n_itl < s->cap_itl) s->itl[s->n_itl++] = ev->itl_ms;
            pthread_mutex_unlock(&s->mu);
        }
        return;
    }
    pthread_mutex_lock(&s->mu);
    int i = s->done++;
    s->ttft[i] = ev->stats->ttft_ms;
    s->latency[i] = ev->stats->total_ms;
    s->gen_tokens += (uint64_t)ev->stats->generated_tokens;
    s->cached_tokens += (uint64_t)ev->stats->cached_tokens;
    s->prompt_tokens += (uint64_t)ev->stats->prompt_tokens;
    if (ev->finish == HEARTH_FINISH_ERROR) {
        s->failed++;
        if (!s->first_error[0]) snprintf(s->first_error, sizeof s->first_error, "%s", ev->error ? ev->error : "error");
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    submit_next(s); /* keep N in flight */
}

static void submit_next(load_state *s) {
    pthread_mutex_lock(&s->mu);
    if (s->submitted >= s->n_requests) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int i = s->submitted++;
    pthread_mutex_unlock(&s->mu);
    hearth_request r = {0};
    r.prompt = s->prompts[i];
    r.n_prompt = s->prompt_len[i];
    r.sampling = s->sp;
    r.sampling.seed = (uint64_t)i + 1;
    r.max_tokens = s->out_tokens;
    r.ignore_eog = true;
    r.on_event = on_event;
    r.user = s;
    hearth_error err = {0};
    if (!hearth_engine_submit(s->e, &r, &err)) {
        pthread_mutex_lock(&s->mu);
        s->ttft[s->done] = s->latency[s->done] = 0;
        s->done++;
        s->failed++;
        if (!s->first_error[0]) snprintf(s->first_error, sizeof s->first_error, "%s", err.msg);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

static uint64_t rng_next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int bench_load_main(int argc, char **argv) {
    const char *model_path = NULL, *backend = "auto", *kv_type_name = "f16", *cache_db = NULL;
    int concurrency = 8, n_requests = 0, prompt_tokens = 128, output_tokens = 64, shared_prefix = 0, threads = 0,
        gpu_layers = HEARTH_GPU_LAYERS_ALL;
    int ctx = 0, batch = 512, jitter = 0;
    uint64_t seed = 1;
    bool json = false, no_prefix_cache = false;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model file"},
        {NULL, "--concurrency", ARG_INT, &concurrency, "N", "requests in flight at once (default 8)"},
        {NULL, "--requests", ARG_INT, &n_requests, "R", "total requests (default 4 x concurrency)"},
        {NULL, "--prompt-tokens", ARG_INT, &prompt_tokens, "P", "prompt length (default 128)"},
        {NULL, "--prompt-jitter", ARG_INT, &jitter, "PCT", "vary prompt lengths uniformly by +-PCT % (default 0)"},
        {NULL, "--output-tokens", ARG_INT, &output_tokens, "O", "tokens generated per request (default 64)"},
        {NULL, "--shared-prefix", ARG_INT, &shared_prefix, "S", "the first S prompt tokens are the same in every request"},
        {NULL, "--seed", ARG_U64, &seed, "S", "seed for the random prompts"},
        {"-t", "--threads", ARG_INT, &threads, "N", "CPU threads (default: physical cores)"},
        {"-c", "--ctx", ARG_INT, &ctx, "N", "context per sequence (default: prompt + output)"},
        {"-b", "--batch", ARG_INT, &batch, "N", "token budget per engine step (default 512)"},
        {NULL, "--kv-type", ARG_STR, &kv_type_name, "TYPE", "f16 (default), f32, q8_0"},
        {NULL, "--no-prefix-cache", ARG_FLAG, &no_prefix_cache, NULL, "disable prefix reuse"},
        {NULL, "--cache-db", ARG_STR, &cache_db, "PATH", "persist the prefix cache here (default: memory only)"},
        {NULL, "--backend", ARG_STR, &backend, "NAME", "auto, cpu, cuda[:N], vulkan[:N]"},
        {"-ngl", "--gpu-layers", ARG_INT, &gpu_layers, "N", APP_GPU_LAYERS_HELP},
        {NULL, "--json", ARG_FLAG, &json, NULL, "print one JSON object"},
    };
    const char *pos[1];
    int n_pos;
    int r = arg_parse("bench", "--concurrency N -m MODEL [--requests R] [--prompt-tokens P] [--output-tokens O] "
                               "[--shared-prefix S] [--json]",
                      "Load test of the engine: R requests, N at a time, continuously batched. Reports throughput,\n"
                      "time to first token (TTFT), inter-token latency (ITL) and request latency as p50/p95/p99.",
                      opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (!model_path) {
        fprintf(stderr, "hearth bench: no model given: pass -m MODEL.gguf\n");
        return 2;
    }
    if (concurrency < 1 || concurrency > HEARTH_FORWARD_MAX_LOGITS || prompt_tokens < 1 || output_tokens < 1 ||
        shared_prefix < 0 || shared_prefix > prompt_tokens || jitter < 0 || jitter > 90) {
        fprintf(stderr, "hearth bench: need 1 <= --concurrency <= %d, --prompt-tokens and --output-tokens >= 1, "
                        "0 <= --shared-prefix <= --prompt-tokens, 0 <= --prompt-jitter <= 90\n",
                HEARTH_FORWARD_MAX_LOGITS);
        return 2;
    }
    if (n_requests <= 0) n_requests = 4 * concurrency;
    hearth_dtype kv_type;
    if (!app_parse_kv_type("bench", kv_type_name, &kv_type)) return 2;
    hearth_backend *be;
    hearth_model *m;
    if (!app_load("bench", model_path, backend, threads, gpu_layers, json, &be, &m)) return 1;
    int max_prompt = prompt_tokens + prompt_tokens * jitter / 100;
    hearth_engine_config ec = hearth_engine_defaults();
    ec.n_parallel = concurrency;
    ec.n_ctx = ctx ? ctx : max_prompt + output_tokens + 1;
    ec.n_batch = batch;
    ec.kv_type = kv_type;
    ec.prefix_cache = !no_prefix_cache;
    ec.cache_db = cache_db;
    hearth_error err = {0};
    hearth_engine *e = hearth_engine_create(m, &ec, &err);
    if (!e) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        hearth_model_free(m);
        hearth_backend_free(be);
        return 1;
    }
    if (*hearth_engine_note(e)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(e));
    /* random prompts of normal tokens, sharing the first shared_prefix ids */
    int nv = m->hp.n_vocab, n_normal = 0;
    int32_t *normal = malloc((size_t)nv * sizeof *normal);
    for (int i = 0; i < nv; i++)
        if (hearth_tokenizer_token_type(m->tokenizer, i) == HEARTH_TOKEN_NORMAL) normal[n_normal++] = i;
    if (n_normal == 0)
        for (int i = 0; i < nv; i++) normal[n_normal++] = i;
    load_state s = {0};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.e = e;
    s.n_requests = n_requests;
    s.out_tokens = output_tokens;
    s.sp = hearth_sampling_defaults();
    s.sp.temperature = 0;
    s.prompts = calloc((size_t)n_requests, sizeof *s.prompts);
    s.prompt_len = calloc((size_t)n_requests, sizeof *s.prompt_len);
    s.ttft = calloc((size_t)n_requests, sizeof *s.ttft);
    s.latency = calloc((size_t)n_requests, sizeof *s.latency);
    s.cap_itl = n_requests * output_tokens;
    s.itl = calloc((size_t)s.cap_itl, sizeof *s.itl);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    for (int i = 0; i < n_requests; i++) {
        int len = prompt_tokens;
        if (jitter) len += (int)((int64_t)(rng_next(&x) % (uint64_t)(2 * prompt_tokens * jitter / 100 + 1)) -
                                 prompt_tokens * jitter / 100);
        if (len < shared_prefix + 1) len = shared_prefix + 1;
        s.prompt_len[i] = len;
        s.prompts[i] = malloc((size_t)len * sizeof(int32_t));
        uint64_t xs = 0x5eed5eed; /* the shared part: its own fixed stream, the same in every run */
        for (int k = 0; k < len; k++) {
            uint64_t v = k < shared_prefix ? rng_next(&xs) : rng_next(&x);
            s.prompts[i][k] = normal[v % (uint64_t)n_normal];
        }
        if (bos >= 0) s.prompts[i][0] = bos;
    }
    if (!json)
        fprintf(stderr, "hearth bench: %d requests, %d in flight, prompt %d (shared %d), output %d tokens\n",
                n_requests, concurrency, prompt_tokens, shared_prefix, output_tokens);
    double t0 = hearth_now_ms();
    for (int i = 0; i < concurrency && i < n_requests; i++) submit_next(&s);
    pthread_mutex_lock(&s.mu);
    while (s.done < n_requests) pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    double wall_ms = hearth_now_ms() - t0;
    hearth_engine_stats es;
    hearth_engine_stats_get(e, &es);

    qsort(s.ttft, (size_t)n_requests, sizeof *s.ttft, cmp_double);
    qsort(s.latency, (size_t)n_requests, sizeof *s.latency, cmp_double);
    qsort(s.itl, (size_t)s.n_itl, sizeof *s.itl, cmp_double);
    double thr = s.gen_tokens * 1000.0 / wall_ms;
    double prompt_thr = (double)(s.prompt_tokens - s.cached_tokens) * 1000.0 / wall_ms;
    hearth_backend_info bi;
    be->ops->info(be, &bi);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", m->name);
        cJSON_AddStringToObject(o, "backend", bi.name);
        cJSON_AddStringToObject(o, "device", bi.device);
        if (be->host) {
            cJSON_AddStringToObject(o, "plan", m->plan);
            cJSON_AddNumberToObject(o, "device_layers", m->n_device_layers);
        }
        cJSON_AddNumberToObject(o, "concurrency", concurrency);
        cJSON_AddNumberToObject(o, "requests", n_requests);
        cJSON_AddNumberToObject(o, "failed", s.failed);
        cJSON_AddNumberToObject(o, "prompt_tokens", prompt_tokens);
        cJSON_AddNumberToObject(o, "output_tokens", output_tokens);
        cJSON_AddNumberToObject(o, "shared_prefix", shared_prefix);
        cJSON_AddNumberToObject(o, "wall_ms", wall_ms);
        cJSON_AddNumberToObject(o, "throughput_tok_s", thr);
        cJSON_AddNumberToObject(o, "prompt_tok_s", prompt_thr);
        cJSON_AddNumberToObject(o, "cached_prompt_tokens", (double)s.cached_tokens);
        cJSON_AddNumberToObject(o, "preemptions", (double)es.preemptions);
        struct { const char *name; const double *v; int n; } dists[] = {
            {"ttft_ms", s.ttft, n_requests}, {"itl_ms", s.itl, s.n_itl}, {"latency_ms", s.latency, n_requests}};
        for (int d = 0; d < 3; d++) {
            cJSON *q = cJSON_AddObjectToObject(o, dists[d].name);
            cJSON_AddNumberToObject(q, "p50", pct(dists[d].v, dists[d].n, 50));
            cJSON_AddNumberToObject(q, "p95", pct(dists[d].v, dists[d].n, 95));
            cJSON_AddNumberToObject(q, "p99", pct(dists[d].v, dists[d].n, 99));
        }
        char *str = cJSON_PrintUnformatted(o);
        if (str) puts(str);
        free(str);
        cJSON_Delete(o);
    } else {
        printf("| model | backend | concurrency | requests | prompt | output | tok/s | TTFT p50/p95/p99 ms | "
               "ITL p50/p95/p99 ms | latency p50/p95/p99 ms |\n");
        printf("|---|---|---:|---:|---:|---:|---:|---|---|---|\n");
        printf("| %s | %s | %d | %d | %d%s | %d | %.1f | %.1f / %.1f / %.1f | %.2f / %.2f / %.2f | %.0f / %.0f / %.0f |\n",
               m->name, bi.name, concurrency, n_requests, prompt_tokens, shared_prefix ? " (shared)" : "",
               output_tokens, thr, pct(s.ttft, n_requests, 50), pct(s.ttft, n_requests, 95),
               pct(s.ttft, n_requests, 99), pct(s.itl, s.n_itl, 50), pct(s.itl, s.n_itl, 95), pct(s.itl, s.n_itl, 99),
               pct(s.latency, n_requests, 50), pct(s.latency, n_requests, 95), pct(s.latency, n_requests, 99));
        fprintf(stderr, "hearth bench: %llu of %llu prompt tokens from the prefix cache; %llu preemptions%s%s\n",
                (unsigned long long)s.cached_tokens, (unsigned long long)s.prompt_tokens,
                (unsigned long long)es.preemptions, s.failed ? "; failures: " : "", s.failed ? s.first_error : "");
    }
    int rc = s.failed ? 1 : 0;
    hearth_engine_free(e);
    for (int i = 0; i < n_requests; i++) free(s.prompts[i]);
    free(s.prompts);
    free(s.prompt_len);
    free(s.ttft);
    free(s.latency);
    free(s.itl);
    free(normal);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    hearth_model_free(m);
    hearth_backend_free(be);
    return rc;
}
