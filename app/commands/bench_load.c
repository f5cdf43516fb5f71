/*
 * bench_load.c - `hearth bench --concurrency N`: the engine under load, like
 * genai-perf. R requests with P prompt tokens (optionally sharing their first
 * S tokens) and O output tokens each, N in flight at any time; measures time
 * to first token, inter-token latency and request latency (p50/p95/p99) and
 * total throughput. Output: a Markdown summary, or one JSON object (--json).
 *
 * Prompts are random ids of normal (non-control) tokens: speed does not depend
 * on the text. Requests ignore end-of-generation so each yields exactly O.
 * Engine options come from app/cli/engine_opts.h like every command's, with
 * bench's one documented difference: the prefix cache stays in memory unless
 * --cache-db names a file (app_engine_opts_bench_defaults).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
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
        if (!s->first_error[0])
            snprintf(s->first_error, sizeof s->first_error, "%s", ev->error ? ev->error : "error");
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

/* The flags of `hearth bench --concurrency` that are not engine options. */
typedef struct load_opts {
    const char *model_path, *config_path;
    int concurrency, n_requests, prompt_tokens, output_tokens, shared_prefix, jitter;
    uint64_t seed;
    bool json;
} load_opts;

/* Parse argv into lo and eo. Returns -1 to go on, else the exit status. */
static int load_parse_args(int argc, char **argv, load_opts *lo, app_engine_opts *eo) {
    *lo = (load_opts){.concurrency = 8, .prompt_tokens = 128, .output_tokens = 64, .seed = 1};
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &lo->model_path, "PATH", "GGUF model file"},
        {NULL, "--config", ARG_STR, &lo->config_path, "PATH",
         "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {NULL, "--concurrency", ARG_INT, &lo->concurrency, "N", "requests in flight at once (default 8)"},
        {NULL, "--requests", ARG_INT, &lo->n_requests, "R", "total requests (default 4 x concurrency)"},
        {NULL, "--prompt-tokens", ARG_INT, &lo->prompt_tokens, "P", "prompt length (default 128)"},
        {NULL, "--prompt-jitter", ARG_INT, &lo->jitter, "PCT",
         "vary prompt lengths uniformly by +-PCT % (default 0)"},
        {NULL, "--output-tokens", ARG_INT, &lo->output_tokens, "O",
         "tokens generated per request (default 64)"},
        {NULL, "--shared-prefix", ARG_INT, &lo->shared_prefix, "S",
         "the first S prompt tokens are the same in every request"},
        {NULL, "--seed", ARG_U64, &lo->seed, "S", "seed for the random prompts"},
        {NULL, "--json", ARG_FLAG, &lo->json, NULL, "print one JSON object"},
    };
    const char *pos[1];
    int n_pos;
    int r = app_engine_opts_parse(
        eo, "bench",
        "--concurrency N -m MODEL [--requests R] [--prompt-tokens P] [--output-tokens O] [--shared-prefix S] "
        "[--json]",
        "Load test of the engine: R requests, N at a time, continuously batched. Reports throughput,\n"
        "time to first token (TTFT), inter-token latency (ITL) and request latency as p50/p95/p99.\n"
        "Engine options: --parallel defaults to --concurrency, --ctx to prompt + output.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (eo->print_config) return app_engine_opts_print_json(eo, "bench", lo->model_path, lo->concurrency);
    if (!lo->model_path) {
        fprintf(stderr, "hearth bench: no model given: pass -m MODEL.gguf\n");
        return 2;
    }
    if (lo->concurrency < 1 || lo->concurrency > HEARTH_FORWARD_MAX_LOGITS || lo->prompt_tokens < 1 ||
        lo->output_tokens < 1 || lo->shared_prefix < 0 || lo->shared_prefix > lo->prompt_tokens ||
        lo->jitter < 0 || lo->jitter > 90) {
        fprintf(stderr,
                "hearth bench: need 1 <= --concurrency <= %d, --prompt-tokens and --output-tokens >= 1, "
                "0 <= --shared-prefix <= --prompt-tokens, 0 <= --prompt-jitter <= 90\n",
                HEARTH_FORWARD_MAX_LOGITS);
        return 2;
    }
    if (lo->n_requests <= 0) lo->n_requests = 4 * lo->concurrency;
    return -1;
}

/* Random prompts of normal (non-control) tokens, the first shared_prefix ids
 * the same in every request. False when out of memory. */
static bool load_make_prompts(load_state *s, const load_opts *lo, const hearth_model *m) {
    int nv = m->hp.n_vocab, n_normal = 0;
    int32_t *normal = malloc((size_t)nv * sizeof *normal);
    if (!normal) return false;
    for (int i = 0; i < nv; i++)
        if (hearth_tokenizer_token_type(m->tokenizer, i) == HEARTH_TOKEN_NORMAL) normal[n_normal++] = i;
    if (n_normal == 0)
        for (int i = 0; i < nv; i++)
            normal[n_normal++] = i;
    uint64_t x = lo->seed * 0x9e3779b97f4a7c15ull + 1;
    int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    int p = lo->prompt_tokens, j = lo->jitter;
    for (int i = 0; i < lo->n_requests; i++) {
        int len = p;
        if (j) len += (int)((int64_t)(rng_next(&x) % (uint64_t)(2 * p * j / 100 + 1)) - p * j / 100);
        if (len < lo->shared_prefix + 1) len = lo->shared_prefix + 1;
        s->prompt_len[i] = len;
        s->prompts[i] = malloc((size_t)len * sizeof(int32_t));
        if (!s->prompts[i]) {
            free(normal);
            return false;
        }
        uint64_t xs = 0x5eed5eed; /* the shared part: its own fixed stream, the same in every run */
        for (int k = 0; k < len; k++) {
            uint64_t v = k < lo->shared_prefix ? rng_next(&xs) : rng_next(&x);
            s->prompts[i][k] = normal[v % (uint64_t)n_normal];
        }
        if (bos >= 0) s->prompts[i][0] = bos;
    }
    free(normal);
    return true;
}

static bool load_state_init(load_state *s, const load_opts *lo, hearth_engine *e) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->e = e;
    s->n_requests = lo->n_requests;
    s->out_tokens = lo->output_tokens;
    s->sp = hearth_sampling_defaults();
    s->sp.temperature = 0;
    size_t n = (size_t)lo->n_requests;
    s->prompts = calloc(n, sizeof *s->prompts);
    s->prompt_len = calloc(n, sizeof *s->prompt_len);
    s->ttft = calloc(n, sizeof *s->ttft);
    s->latency = calloc(n, sizeof *s->latency);
    s->cap_itl = lo->n_requests * lo->output_tokens;
    s->itl = calloc((size_t)s->cap_itl, sizeof *s->itl);
    return s->prompts && s->prompt_len && s->ttft && s->latency && s->itl;
}

static void load_state_free(load_state *s) {
    for (int i = 0; s->prompts && i < s->n_requests; i++)
        free(s->prompts[i]);
    free(s->prompts);
    free(s->prompt_len);
    free(s->ttft);
    free(s->latency);
    free(s->itl);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* What one run measured, for the report. */
typedef struct load_result {
    double wall_ms, thr, prompt_thr;
    hearth_engine_stats es;
} load_result;

static void load_print_json(const load_state *s, const load_opts *lo, const load_result *lr,
                            const hearth_model *m, const hearth_backend *be) {
    hearth_backend_info bi;
    hearth_backend_get_info((hearth_backend *)be, &bi);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->name);
    cJSON_AddStringToObject(o, "backend", bi.name);
    cJSON_AddStringToObject(o, "device", bi.device);
    if (hearth_backend_host(be)) {
        cJSON_AddStringToObject(o, "plan", m->plan);
        cJSON_AddNumberToObject(o, "device_layers", m->n_device_layers);
    }
    cJSON_AddNumberToObject(o, "concurrency", lo->concurrency);
    cJSON_AddNumberToObject(o, "requests", lo->n_requests);
    cJSON_AddNumberToObject(o, "failed", s->failed);
    cJSON_AddNumberToObject(o, "prompt_tokens", lo->prompt_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", lo->output_tokens);
    cJSON_AddNumberToObject(o, "shared_prefix", lo->shared_prefix);
    cJSON_AddNumberToObject(o, "wall_ms", lr->wall_ms);
    cJSON_AddNumberToObject(o, "throughput_tok_s", lr->thr);
    cJSON_AddNumberToObject(o, "prompt_tok_s", lr->prompt_thr);
    cJSON_AddNumberToObject(o, "cached_prompt_tokens", (double)s->cached_tokens);
    cJSON_AddNumberToObject(o, "preemptions", (double)lr->es.preemptions);
    const hearth_engine_stats *es = &lr->es; /* speculative decoding: what it drafted and what it saved */
    cJSON_AddStringToObject(o, "speculative", hearth_spec_mode_name(es->spec));
    cJSON_AddNumberToObject(o, "draft_n", (double)es->spec_drafted);
    cJSON_AddNumberToObject(o, "draft_accepted_n", (double)es->spec_accepted);
    cJSON_AddNumberToObject(o, "spec_passes", (double)es->spec_passes);
    cJSON_AddNumberToObject(o, "tokens_per_target_pass",
                            es->spec_passes ? (double)es->spec_tokens / (double)es->spec_passes : 0);
    cJSON_AddNumberToObject(o, "spec_off_load_steps", (double)es->spec_off_load);
    struct {
        const char *name;
        const double *v;
        int n;
    } dists[] = {{"ttft_ms", s->ttft, s->n_requests},
                 {"itl_ms", s->itl, s->n_itl},
                 {"latency_ms", s->latency, s->n_requests}};
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
}

static void load_print_table(const load_state *s, const load_opts *lo, const load_result *lr,
                             const hearth_model *m, const hearth_backend *be) {
    hearth_backend_info bi;
    hearth_backend_get_info((hearth_backend *)be, &bi);
    int n = s->n_requests;
    printf("| model | backend | concurrency | requests | prompt | output | tok/s | TTFT p50/p95/p99 ms | "
           "ITL p50/p95/p99 ms | latency p50/p95/p99 ms |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---|---|---|\n");
    printf("| %s | %s | %d | %d | %d%s | %d | %.1f | %.1f / %.1f / %.1f | %.2f / %.2f / %.2f | %.0f / %.0f / "
           "%.0f |\n",
           m->name, bi.name, lo->concurrency, n, lo->prompt_tokens, lo->shared_prefix ? " (shared)" : "",
           lo->output_tokens, lr->thr, pct(s->ttft, n, 50), pct(s->ttft, n, 95), pct(s->ttft, n, 99),
           pct(s->itl, s->n_itl, 50), pct(s->itl, s->n_itl, 95), pct(s->itl, s->n_itl, 99),
           pct(s->latency, n, 50), pct(s->latency, n, 95), pct(s->latency, n, 99));
    fprintf(stderr, "hearth bench: %llu of %llu prompt tokens from the prefix cache; %llu preemptions%s%s\n",
            (unsigned long long)s->cached_tokens, (unsigned long long)s->prompt_tokens,
            (unsigned long long)lr->es.preemptions, s->failed ? "; failures: " : "",
            s->failed ? s->first_error : "");
    const hearth_engine_stats *es = &lr->es;
    if (es->spec != HEARTH_SPEC_OFF)
        fprintf(
            stderr,
            "hearth bench: speculation (%s): %llu drafted, %llu accepted (%.0f%%), %.2f tokens per target "
            "pass; off for %llu steps under load\n",
            hearth_spec_mode_name(es->spec), (unsigned long long)es->spec_drafted,
            (unsigned long long)es->spec_accepted,
            es->spec_drafted ? 100.0 * (double)es->spec_accepted / (double)es->spec_drafted : 0.0,
            es->spec_passes ? (double)es->spec_tokens / (double)es->spec_passes : 0.0,
            (unsigned long long)es->spec_off_load);
}

/* Submit every request, N in flight, and wait for the last. */
static void load_run(load_state *s, const load_opts *lo, load_result *lr) {
    double t0 = hearth_now_ms();
    for (int i = 0; i < lo->concurrency && i < lo->n_requests; i++)
        submit_next(s);
    pthread_mutex_lock(&s->mu);
    while (s->done < lo->n_requests)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    lr->wall_ms = hearth_now_ms() - t0;
    hearth_engine_stats_get(s->e, &lr->es);
    qsort(s->ttft, (size_t)lo->n_requests, sizeof *s->ttft, cmp_double);
    qsort(s->latency, (size_t)lo->n_requests, sizeof *s->latency, cmp_double);
    qsort(s->itl, (size_t)s->n_itl, sizeof *s->itl, cmp_double);
    lr->thr = s->gen_tokens * 1000.0 / lr->wall_ms;
    lr->prompt_thr = (double)(s->prompt_tokens - s->cached_tokens) * 1000.0 / lr->wall_ms;
}

int bench_load_main(int argc, char **argv) {
    hearth_config cfg;
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    app_engine_opts_bench_defaults(&eo);
    if (!app_engine_opts_load_config("bench", argc, argv, &cfg)) {
        hearth_config_free(&cfg);
        return 2;
    }
    app_engine_opts_apply_config(&eo, &cfg);
    hearth_config_free(&cfg);
    eo.config = NULL; /* freed: --draft takes a file or pulled name here */
    load_opts lo;
    int r = load_parse_args(argc, argv, &lo, &eo);
    if (r >= 0) return r;
    hearth_backend *be;
    hearth_model *m;
    if (!app_engine_opts_load(&eo, "bench", lo.model_path, lo.json, &be, &m)) return 1;
    int max_prompt = lo.prompt_tokens + lo.prompt_tokens * lo.jitter / 100;
    hearth_engine_config ec;
    char db_default[1024];
    app_engine_opts_engine_config(&eo, lo.concurrency, &ec, db_default, sizeof db_default);
    if (!ec.n_ctx) ec.n_ctx = max_prompt + lo.output_tokens + 1;
    hearth_error err = {0};
    hearth_model *draft = NULL;
    hearth_engine *e = app_engine_opts_open_draft(&eo, NULL, m, &ec, &draft, &err)
                           ? NULL
                           : hearth_engine_create(m, &ec, &err);
    if (!e) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        hearth_model_free(draft);
        hearth_model_free(m);
        hearth_backend_free(be);
        return 1;
    }
    if (*hearth_engine_note(e)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(e));
    load_state s;
    int rc = 1;
    if (!load_state_init(&s, &lo, e) || !load_make_prompts(&s, &lo, m)) {
        fprintf(stderr, "hearth bench: out of memory for %d requests\n", lo.n_requests);
        goto done;
    }
    if (!lo.json)
        fprintf(stderr, "hearth bench: %d requests, %d in flight, prompt %d (shared %d), output %d tokens\n",
                lo.n_requests, lo.concurrency, lo.prompt_tokens, lo.shared_prefix, lo.output_tokens);
    load_result lr;
    load_run(&s, &lo, &lr);
    if (lo.json)
        load_print_json(&s, &lo, &lr, m, be);
    else
        load_print_table(&s, &lo, &lr, m, be);
    rc = s.failed ? 1 : 0;
done:
    hearth_engine_free(e);
    load_state_free(&s);
    hearth_model_free(draft);
    hearth_model_free(m);
    hearth_backend_free(be);
    return rc;
}
