/*
 * bench_spec.c - see bench_spec.h. Each side has its own engine; requests
 * run one at a time and the caller's thread waits for each DONE event.
 */
#include "bench_spec.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/serving/engine.h"

typedef struct one_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    hearth_finish finish;
    char error[256];
    hearth_tokens toks;
    hearth_request_stats st;
} one_run;

static void on_event(const hearth_event *ev, void *user) {
    one_run *r = user;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        hearth_tokens_push(&r->toks, ev->token);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->st = *ev->stats;
    r->finish = ev->finish;
    if (ev->error) snprintf(r->error, sizeof r->error, "%s", ev->error);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* One greedy request of n_gen tokens; *tok_s its tg speed. */
static bool generate(hearth_engine *e, const int32_t *prompt, int n_prompt, int n_gen, hearth_tokens *out,
                     double *tok_s, hearth_request_stats *st, hearth_error *err) {
    one_run r = {.done = false};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    hearth_request rq = {.prompt = prompt, .n_prompt = n_prompt, .max_tokens = n_gen, .ignore_eog = true};
    rq.sampling = hearth_sampling_defaults();
    rq.sampling.temperature = 0;
    rq.on_event = on_event;
    rq.user = &r;
    bool ok = hearth_engine_submit(e, &rq, err) > 0;
    if (ok) {
        pthread_mutex_lock(&r.mu);
        while (!r.done)
            pthread_cond_wait(&r.cv, &r.mu);
        pthread_mutex_unlock(&r.mu);
        ok = r.finish == HEARTH_FINISH_LENGTH && (int)r.toks.n == n_gen;
        if (!ok)
            hearth_error_set(err, HEARTH_ERR_INVALID, "speculation bench: the request ended early%s%s",
                             r.error[0] ? ": " : "", r.error);
    }
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    *tok_s = r.st.gen_ms > 0 ? (n_gen - 1) * 1000.0 / r.st.gen_ms : 0;
    *st = r.st;
    *out = r.toks;
    return ok;
}

static void mean_sd(const double *x, int n, double *mean, double *sd) {
    double s = 0, v = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    *mean = n ? s / n : 0;
    for (int i = 0; i < n; i++)
        v += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(v / (n - 1)) : 0;
}

/* The quoting prompt: BOS, then a block of random normal tokens said twice. */
static int32_t *quoting_prompt(const hearth_model *m, int n_prompt) {
    int nv = m->hp.n_vocab, n_normal = 0;
    int32_t *normal = malloc((size_t)nv * sizeof *normal), *p = malloc((size_t)n_prompt * sizeof *p);
    if (!normal || !p) {
        free(normal);
        free(p);
        return NULL;
    }
    for (int i = 0; i < nv; i++)
        if (hearth_tokenizer_token_type(m->tokenizer, i) == HEARTH_TOKEN_NORMAL) normal[n_normal++] = i;
    if (n_normal == 0)
        for (int i = 0; i < nv; i++)
            normal[n_normal++] = i;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int half = (n_prompt + 1) / 2;
    for (int i = 0; i < n_prompt; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = i < half ? normal[x % (uint64_t)n_normal] : p[i - half];
    }
    int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    if (bos >= 0) p[0] = p[half < n_prompt ? half : 0] = bos;
    free(normal);
    return p;
}

bool bench_spec_tg(const app_engine_opts *eo, hearth_model *m, int n_prompt, int n_gen, int reps,
                   bench_spec_result *out, hearth_error *err) {
    memset(out, 0, sizeof *out);
    out->n_prompt = n_prompt = n_prompt > 1 ? n_prompt : 2;
    out->n_gen = n_gen = n_gen > 1 ? n_gen : 2;
    out->reps = reps;
    out->same_tokens = true;
    hearth_engine_config ec[2];
    char db[1024];
    for (int s = 0; s < 2; s++) {
        app_engine_opts_engine_config(eo, 1, &ec[s], db, sizeof db);
        ec[s].prefix_cache = false;
        ec[s].cache_db = NULL;
        ec[s].n_ctx = n_prompt + n_gen + 1;
    }
    ec[0].spec = HEARTH_SPEC_OFF;
    hearth_model *draft = NULL;
    hearth_engine *e[2] = {NULL, NULL};
    int32_t *prompt = quoting_prompt(m, n_prompt);
    double *ts[2] = {calloc((size_t)reps, sizeof(double)), calloc((size_t)reps, sizeof(double))};
    hearth_tokens ref = {0};
    bool ok = false;
    if (!prompt || !ts[0] || !ts[1]) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "speculation bench: out of memory");
        goto done;
    }
    if (app_engine_opts_open_draft(eo, NULL, m, &ec[1], &draft, err)) goto done;
    out->mode = ec[1].spec;
    if (!(e[0] = hearth_engine_create(m, &ec[0], err)) || !(e[1] = hearth_engine_create(m, &ec[1], err)))
        goto done;
    hearth_engine_stats es0 = {0}, es;
    for (int r = -1; r < reps; r++) { /* r = -1: the warm-up */
        if (r == 0) hearth_engine_stats_get(e[1], &es0);
        for (int s = 0; s < 2; s++) {
            hearth_tokens got;
            hearth_request_stats st;
            double tok_s;
            bool g = generate(e[s], prompt, n_prompt, n_gen, &got, &tok_s, &st, err);
            if (g && s == 0 && !ref.n) {
                ref = got;
                got = (hearth_tokens){0};
            } else if (g && s == 1) {
                out->same_tokens &= got.n == ref.n && !memcmp(got.ids, ref.ids, ref.n * sizeof *ref.ids);
            }
            hearth_tokens_free(&got);
            if (!g) goto done;
            if (r < 0) continue;
            ts[s][r] = tok_s;
            if (s == 1) {
                out->drafted += (uint64_t)st.spec_drafted;
                out->accepted += (uint64_t)st.spec_accepted;
            }
        }
    }
    hearth_engine_stats_get(e[1], &es);
    out->passes = es.spec_passes - es0.spec_passes;
    out->pass_tokens = es.spec_tokens - es0.spec_tokens;
    out->spec_k = ec[1].spec_k;
    out->cost_skips = es.spec_cost_skips - es0.spec_cost_skips;
    out->pass_ms_fixed = es.spec_pass_ms_fixed;
    out->pass_ms_per_pos = es.spec_pass_ms_per_pos;
    out->draft_pass_ms = es.spec_draft_pass_ms;
    mean_sd(ts[0], reps, &out->off_mean, &out->off_sd);
    mean_sd(ts[1], reps, &out->on_mean, &out->on_sd);
    ok = true;
done:
    hearth_engine_free(e[0]);
    hearth_engine_free(e[1]);
    hearth_model_free(draft);
    hearth_tokens_free(&ref);
    free(prompt);
    free(ts[0]);
    free(ts[1]);
    return ok;
}
