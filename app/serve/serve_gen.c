/*
 * serve_gen.c - the server's bridge to the engine: one serve_gen per
 * generation (see serve.h), plus the server-wide metrics it feeds.
 *
 * Owner: the serve subsystem.
 * The engine calls gen_event on its worker thread; it only appends text,
 * updates counters and signals the condition variable, so the worker is
 * never held up by a slow client. The connection thread drains the text
 * with bounded waits. Two references keep a gen alive: the engine's (dropped
 * on DONE, or never taken when submit fails) and the connection's (dropped
 * by serve_gen_release, which cancels a request still running).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/cli/common.h"
#include "core/os.h"
#include "serve.h"

const double serve_ttft_bounds_ms[SERVE_TTFT_BUCKETS] = {5,   10,   25,   50,    100,  250,
                                                         500, 1000, 2500, 10000, 1e300};
const double serve_itl_bounds_ms[SERVE_ITL_BUCKETS] = {1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 1e300};

static void bucket_add(uint64_t *b, const double *bounds, int n, double v) {
    for (int i = 0; i < n; i++)
        if (v <= bounds[i]) {
            b[i]++;
            return;
        }
}

static void gen_free(serve_gen *g) {
    serve_ctx *srv = g->srv;
    pthread_mutex_lock(&srv->mu);
    if (g->live_prev)
        g->live_prev->live_next = g->live_next;
    else if (srv->live == g)
        srv->live = g->live_next;
    if (g->live_next) g->live_next->live_prev = g->live_prev;
    pthread_mutex_unlock(&srv->mu);
    strbuf_free(&g->text);
    free(g->lps);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    serve_models_unref(g->sm);
    free(g);
}

/* Drop one reference; the last one frees. Called with g->mu held, releases it. */
static void gen_unref_locked(serve_gen *g) {
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) gen_free(g);
}

/* Engine worker thread. */
static void gen_event(const hearth_event *ev, void *user) {
    serve_gen *g = user;
    serve_ctx *srv = g->srv;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        bool over_time = false;
        pthread_mutex_lock(&g->mu);
        g->n_tokens++;
        if (ev->text_len) strbuf_add(&g->text, ev->text, ev->text_len);
        if (ev->logprobs) {
            if (g->n_lps == g->cap_lps) {
                int cap = g->cap_lps ? g->cap_lps * 2 : 64;
                hearth_logprobs *n = realloc(g->lps, sizeof *n * (size_t)cap);
                if (n) {
                    g->lps = n;
                    g->cap_lps = cap;
                }
            }
            if (g->n_lps < g->cap_lps) g->lps[g->n_lps++] = *ev->logprobs;
        }
        double now = hearth_now_ms();
        if (g->n_tokens == 1) g->t_first_ms = now;
        if (g->t_max_predict_ms > 0 && now - g->t_first_ms > g->t_max_predict_ms && !g->time_limited) {
            g->time_limited = true;
            over_time = true;
        }
        uint64_t id = g->id;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_mutex_lock(&srv->mu);
        if (ev->itl_ms > 0) {
            bucket_add(srv->metrics.itl_bucket, serve_itl_bounds_ms, SERVE_ITL_BUCKETS, ev->itl_ms);
            srv->metrics.itl_sum_ms += ev->itl_ms;
            srv->metrics.itl_count++;
        }
        pthread_mutex_unlock(&srv->mu);
        if (over_time && id) hearth_engine_cancel(g->sm->eng, id);
        return;
    }
    /* DONE */
    pthread_mutex_lock(&srv->mu);
    serve_metrics *mt = &srv->metrics;
    mt->generations++;
    if (ev->stats) {
        mt->prompt_tokens += (uint64_t)ev->stats->prompt_tokens;
        mt->generated_tokens += (uint64_t)ev->stats->generated_tokens;
        mt->cached_tokens += (uint64_t)ev->stats->cached_tokens;
        if (ev->stats->generated_tokens > 0) {
            bucket_add(mt->ttft_bucket, serve_ttft_bounds_ms, SERVE_TTFT_BUCKETS, ev->stats->ttft_ms);
            mt->ttft_sum_ms += ev->stats->ttft_ms;
            mt->ttft_count++;
        }
    }
    if (ev->finish == HEARTH_FINISH_CANCELLED) mt->cancelled++;
    pthread_mutex_unlock(&srv->mu);

    pthread_mutex_lock(&g->mu);
    if (ev->text_len) strbuf_add(&g->text, ev->text, ev->text_len);
    g->done = true;
    g->finish = ev->finish;
    g->status = ev->status;
    if (ev->stats) g->stats = *ev->stats;
    if (ev->finish == HEARTH_FINISH_ERROR)
        snprintf(g->error, sizeof g->error, "%s", ev->error ? ev->error : "generation failed");
    pthread_cond_broadcast(&g->cv);
    gen_unref_locked(g);
}

serve_gen *serve_gen_start(serve_model *sm, const serve_gen_params *p, hearth_error *err) {
    serve_ctx *srv = sm->srv;
    serve_gen *g = calloc(1, sizeof *g);
    if (!g) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->srv = srv;
    g->sm = sm;
    serve_models_ref(sm); /* the engine stays loaded while the gen exists */
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->refs = 2;
    g->t_submit_ms = hearth_now_ms();
    g->t_max_predict_ms = p->t_max_predict_ms;

    pthread_mutex_lock(&srv->mu);
    g->live_next = srv->live;
    if (srv->live) srv->live->live_prev = g;
    srv->live = g;
    pthread_mutex_unlock(&srv->mu);

    hearth_request r = {0};
    r.prompt = p->prompt;
    r.n_prompt = p->n_prompt;
    r.sampling = p->sampling;
    r.max_tokens = p->max_tokens;
    r.stop = p->stop;
    r.n_stop = p->n_stop;
    r.ignore_eog = p->ignore_eog;
    r.grammar = p->grammar;
    r.no_spec = p->no_spec;
    r.logprobs = p->logprobs;
    r.top_logprobs = p->top_logprobs;
    r.on_event = gen_event;
    r.user = g;
    uint64_t id = hearth_engine_submit(sm->eng, &r, err);
    pthread_mutex_lock(&g->mu);
    if (!id) {
        g->refs = 1; /* the engine never took its reference */
        g->done = true;
        pthread_mutex_unlock(&g->mu);
        gen_free(g);
        return NULL;
    }
    g->id = id;
    bool cancel = g->cancel_asked && !g->done;
    pthread_mutex_unlock(&g->mu);
    if (cancel) hearth_engine_cancel(sm->eng, id);
    return g;
}

bool serve_gen_take(serve_gen *g, strbuf *out, int wait_ms) {
    pthread_mutex_lock(&g->mu);
    if (!g->text.n && !g->done && wait_ms > 0) {
        /* pthread_cond_timedwait takes an absolute CLOCK_REALTIME deadline */
        double deadline = hearth_wall_seconds() + wait_ms / 1000.0;
        struct timespec ts = {.tv_sec = (time_t)deadline};
        ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!g->text.n && !g->done)
            if (pthread_cond_timedwait(&g->cv, &g->mu, &ts)) break;
    }
    if (g->text.n) {
        if (out) strbuf_add(out, g->text.p, g->text.n);
        g->text.n = 0;
    }
    bool done = g->done;
    pthread_mutex_unlock(&g->mu);
    return done;
}

int serve_gen_take_logprobs(serve_gen *g, hearth_logprobs **out) {
    pthread_mutex_lock(&g->mu);
    int n = g->n_lps;
    *out = g->lps;
    g->lps = NULL;
    g->n_lps = g->cap_lps = 0;
    pthread_mutex_unlock(&g->mu);
    return n;
}

void serve_gen_cancel(serve_gen *g) {
    pthread_mutex_lock(&g->mu);
    g->cancel_asked = true;
    uint64_t id = g->done ? 0 : g->id;
    pthread_mutex_unlock(&g->mu);
    if (id) hearth_engine_cancel(g->sm->eng, id);
}

void serve_gen_release(serve_gen *g) {
    if (!g) return;
    serve_gen_cancel(g);
    pthread_mutex_lock(&g->mu);
    gen_unref_locked(g);
}

void serve_gen_cancel_all(serve_ctx *srv) {
    pthread_mutex_lock(&srv->mu);
    for (serve_gen *g = srv->live; g; g = g->live_next) {
        /* ids only: cancel never calls back synchronously */
        pthread_mutex_lock(&g->mu);
        g->cancel_asked = true;
        uint64_t id = g->done ? 0 : g->id;
        pthread_mutex_unlock(&g->mu);
        if (id) hearth_engine_cancel(g->sm->eng, id);
    }
    pthread_mutex_unlock(&srv->mu);
}

const char *serve_gen_finish_reason(const serve_gen *g) {
    if (g->time_limited || g->finish == HEARTH_FINISH_LENGTH) return "length";
    return "stop";
}

int serve_status_for(hearth_status s) {
    switch (s) {
    case HEARTH_ERR_CONTEXT:
    case HEARTH_ERR_INVALID: return 400;
    case HEARTH_ERR_BUSY: return 429;
    case HEARTH_ERR_NOMEM: return 503;
    default: return 500;
    }
}

hearth_sampling_params serve_sampling_defaults(serve_ctx *srv) {
    hearth_sampling_params sp = hearth_sampling_defaults();
    double now = hearth_wall_seconds();
    uint64_t sec = (uint64_t)now, nsec = (uint64_t)((now - (double)sec) * 1e9);
    uint64_t x = nsec ^ (sec << 20) ^ (atomic_fetch_add(&srv->seq, 1) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    sp.seed = x;
    return sp;
}

void serve_metrics_request(serve_ctx *srv, int http_status) {
    pthread_mutex_lock(&srv->mu);
    srv->metrics.requests_total++;
    int cls = http_status / 100;
    if (cls >= 1 && cls <= 5) srv->metrics.requests_by_class[cls]++;
    pthread_mutex_unlock(&srv->mu);
}
