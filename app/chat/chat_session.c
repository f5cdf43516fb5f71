/*
 * chat_session.c - see chat_session.h.
 */
#include "chat_session.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/cli/common.h"

/* ------------------------------------------------------------ worker -> UI queue */

/* Runs on the engine's worker thread: copy, enqueue, wake the UI. */
static void on_engine_event(const hearth_event *ev, void *user) {
    chat_session *s = user;
    chat_event *e = calloc(1, sizeof *e);
    if (!e) return;
    e->kind = ev->kind;
    e->token = ev->token;
    e->text = malloc(ev->text_len + 1);
    if (e->text) {
        memcpy(e->text, ev->text, ev->text_len);
        e->text[ev->text_len] = 0;
        e->text_len = ev->text_len;
    }
    e->finish = ev->finish;
    if (ev->error) snprintf(e->error, sizeof e->error, "%s", ev->error);
    if (ev->stats) e->stats = *ev->stats;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    pthread_mutex_unlock(&s->mu);
    char b = 1;
    ssize_t w = write(s->pipe_wr, &b, 1); /* a full pipe already means "wake up" */
    (void)w;
    if (ev->kind == HEARTH_EVENT_TOKEN && s->opt.token_delay_ms > 0) {
        struct timespec ts = {s->opt.token_delay_ms / 1000, (long)(s->opt.token_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int chat_session_wait_fd(const chat_session *s) {
    return s->pipe_rd;
}

int chat_session_drain(chat_session *s, void (*fn)(const chat_event *ev, void *user), void *user) {
    char buf[256];
    while (read(s->pipe_rd, buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&s->mu);
    chat_event *e = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    int n = 0;
    while (e) {
        chat_event *next = e->next;
        const char *text = e->text ? e->text : "";
        if (e->kind == HEARTH_EVENT_TOKEN) {
            chat_conv_feed(&s->conv, e->token, text, e->text_len);
        } else {
            chat_conv_feed(&s->conv, -1, text, e->text_len);
            chat_conv_end(&s->conv);
            s->req_id = 0;
            s->have_last = true;
            s->last = e->stats;
            s->last_finish = e->finish;
        }
        if (fn) fn(e, user);
        free(e->text);
        free(e);
        e = next;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------ model + engine */

static void free_model(chat_session *s) {
    hearth_engine_free(s->engine);
    hearth_chat_template_free(s->tmpl);
    hearth_model_free(s->draft);
    hearth_model_free(s->model);
    hearth_backend_free(s->be);
    s->draft = NULL;
    s->engine = NULL;
    s->tmpl = NULL;
    s->model = NULL;
    s->be = NULL;
}

/* A configured model name, else a path; NULL: the configured default model,
 * else the sample model. *cm: the config entry, or NULL. */
static const char *resolve_model(const chat_session *s, const char *name, const hearth_config_model **cm,
                                 hearth_error *err) {
    *cm = NULL;
    const hearth_config *cfg = s->opt.config;
    if (cfg && cfg->n_models && (*cm = hearth_config_find_model(cfg, name && *name ? name : NULL)))
        return (*cm)->path;
    if (name && *name) return name;
    const char *sample = app_sample_model();
    if (!sample)
        hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "no model given and the sample model (../shared/models/hearth-kjv-llama-q8_0.gguf) is not "
            "here: pass -m MODEL.gguf, or list models in the config file (docs/CONFIG.md)");
    return sample;
}

/* Load path into fresh backend/model/template/engine; on success they replace
 * s's, with cm's settings (sampling, max_tokens) under the flags. */
static hearth_status load_model(chat_session *s, const char *path, const hearth_config_model *cm,
                                hearth_error *err) {
    const app_engine_opts *eo = s->opt.engine;
    hearth_backend *be;
    hearth_model *m;
    hearth_status st =
        app_open_model(path, eo->backend, eo->threads, eo->gpu_layers, eo->n_cpu_moe, &be, &m, err);
    if (st) return st;
    char note[256] = "";
    hearth_chat_template *tmpl =
        hearth_chat_template_for_model(m->gguf, cm ? cm->chat_template : NULL, note, sizeof note);
    hearth_engine_config ec;
    char db_default[1024];
    /* one conversation: one sequence, unless --parallel / parallel: asks for more */
    app_engine_opts_engine_config(eo, 1, &ec, db_default, sizeof db_default);
    hearth_model *draft = NULL;
    hearth_engine *e = tmpl && !app_engine_opts_open_draft(eo, cm, m, &ec, &draft, err)
                           ? hearth_engine_create(m, &ec, err)
                           : NULL;
    if (!tmpl) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    if (!e) {
        hearth_model_free(draft);
        hearth_chat_template_free(tmpl);
        hearth_model_free(m);
        hearth_backend_free(be);
        return err ? err->code : HEARTH_ERR_BACKEND;
    }
    free_model(s);
    s->be = be;
    s->model = m;
    s->draft = draft;
    s->tmpl = tmpl;
    s->engine = e;
    /* shown like the template note: one line in the conversation, cut to its buffer */
    const char *engine_note = hearth_engine_note(e);
    if (snprintf(s->template_note, sizeof s->template_note, "%s%s%s", note, *note && *engine_note ? "; " : "",
                 engine_note) >= (int)sizeof s->template_note)
        s->template_note[sizeof s->template_note - 1] = '\0';
    snprintf(s->model_path, sizeof s->model_path, "%s", path);
    /* settings: the model's configured ones, then the flags */
    s->sampling = hearth_config_sampling(cm);
    if (s->opt.temp >= 0) s->sampling.temperature = s->opt.temp;
    if (s->opt.top_p >= 0) s->sampling.top_p = s->opt.top_p;
    if (s->opt.seed) s->sampling.seed = s->opt.seed;
    s->max_tokens = s->opt.max_tokens ? s->opt.max_tokens : cm ? cm->max_tokens : 0;
    if (s->max_tokens < 0) s->max_tokens = 0;
    /* the weight type of the FFN matrices stands for the file's quantisation */
    char quant[16];
    snprintf(quant, sizeof quant, "%s", m->hp.n_layer ? hearth_dtype_name(m->layers[0].w_gate.type) : "?");
    for (char *p = quant; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    snprintf(s->model_label, sizeof s->model_label, "%s %s", cm ? cm->name : m->name, quant);
    hearth_backend_info bi;
    hearth_backend_get_info(be, &bi);
    if (hearth_backend_host(be) && m->n_device_layers < m->hp.n_layer) /* split: say how much is on the GPU */
        snprintf(s->backend_label, sizeof s->backend_label, "%s %d/%d layers", bi.name, m->n_device_layers,
                 m->hp.n_layer);
    else
        snprintf(s->backend_label, sizeof s->backend_label, "%s", bi.name);
    return HEARTH_OK;
}

hearth_status chat_session_open(chat_session *s, const chat_options *opt, hearth_error *err) {
    memset(s, 0, sizeof *s);
    s->opt = *opt;
    s->pipe_rd = s->pipe_wr = -1;
    pthread_mutex_init(&s->mu, NULL);
    int fds[2];
    if (pipe(fds)) return hearth_error_set(err, HEARTH_ERR_IO, "pipe: %s", strerror(errno));
    s->pipe_rd = fds[0];
    s->pipe_wr = fds[1];
    fcntl(s->pipe_rd, F_SETFL, fcntl(s->pipe_rd, F_GETFL) | O_NONBLOCK);
    fcntl(s->pipe_wr, F_SETFL, fcntl(s->pipe_wr, F_GETFL) | O_NONBLOCK);
    const char *hdb = opt->history_db ? opt->history_db : opt->config ? opt->config->chat.history_db : NULL;
    if (hdb)
        snprintf(s->history_path, sizeof s->history_path, "%s", hdb);
    else if (!chat_history_default_path(s->history_path, sizeof s->history_path))
        s->history_path[0] = 0;

    const hearth_config_model *cm;
    const char *path = resolve_model(s, opt->model, &cm, err);
    if (!path) return HEARTH_ERR_INVALID;
    hearth_status st = load_model(s, path, cm, err);
    if (st) return st;
    chat_conv_init(&s->conv, s->model->tokenizer, s->tmpl, hearth_engine_n_ctx(s->engine));
    return chat_conv_set_system(&s->conv, opt->system ? opt->system : cm ? cm->system_prompt : NULL, err);
}

void chat_session_close(chat_session *s) {
    free_model(s); /* cancels anything in flight; its events are queued */
    chat_session_drain(s, NULL, NULL);
    chat_conv_free(&s->conv);
    chat_history_close(s->history);
    s->history = NULL;
    if (s->pipe_rd >= 0) close(s->pipe_rd);
    if (s->pipe_wr >= 0) close(s->pipe_wr);
    s->pipe_rd = s->pipe_wr = -1;
    pthread_mutex_destroy(&s->mu);
}

hearth_status chat_session_switch_model(chat_session *s, const char *name, hearth_error *err) {
    if (s->req_id) return hearth_error_set(err, HEARTH_ERR_BUSY, "stop the answer first (Esc), then switch");
    const hearth_config_model *cm;
    const char *path = resolve_model(s, name, &cm, err);
    if (!path) return HEARTH_ERR_INVALID;
    hearth_status st = load_model(s, path, cm, err);
    if (st) return st;
    chat_conv_set_model(&s->conv, s->model->tokenizer, s->tmpl, hearth_engine_n_ctx(s->engine));
    s->have_last = false;
    return HEARTH_OK;
}

/* ------------------------------------------------------------ turns */

int chat_session_n_ctx(const chat_session *s) {
    return hearth_engine_n_ctx(s->engine);
}

bool chat_session_busy(const chat_session *s) {
    return s->req_id != 0;
}

hearth_status chat_session_send(chat_session *s, const char *text, hearth_error *err) {
    if (s->req_id)
        return hearth_error_set(err, HEARTH_ERR_BUSY, "an answer is still streaming (Esc stops it)");
    int n_ctx = chat_session_n_ctx(s);
    int reserve = s->max_tokens > 0 ? s->max_tokens : n_ctx / 4;
    if (reserve > n_ctx / 2) reserve = n_ctx / 2;
    hearth_status st = chat_conv_begin(&s->conv, text, reserve, err);
    if (st) return st;
    static const char *const stop[] = {
        "<|im_end|>"}; /* ChatML end of turn, for models without it as a token */
    hearth_request rq = {0};
    rq.prompt = s->conv.prompt.ids;
    rq.n_prompt = (int)s->conv.prompt.n;
    rq.sampling = s->sampling;
    rq.max_tokens = s->max_tokens;
    rq.stop = stop;
    rq.n_stop = s->opt.ignore_eos ? 0 : 1;
    rq.ignore_eog = s->opt.ignore_eos;
    rq.on_event = on_engine_event;
    rq.user = s;
    s->t_submit = hearth_now_ms();
    uint64_t id = hearth_engine_submit(s->engine, &rq, err);
    if (!id) {
        chat_conv_abort(&s->conv);
        return err ? err->code : HEARTH_ERR_INVALID;
    }
    s->req_id = id;
    return HEARTH_OK;
}

void chat_session_stop(chat_session *s) {
    if (s->req_id) hearth_engine_cancel(s->engine, s->req_id);
}

chat_history *chat_session_history(chat_session *s, hearth_error *err) {
    if (s->history) return s->history;
    if (!s->history_path[0]) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "no home directory for the history database: pass --history-db PATH");
        return NULL;
    }
    s->history = chat_history_open(s->history_path, err);
    return s->history;
}

/* ------------------------------------------------------------ status */

double chat_stats_tok_s(const hearth_request_stats *st) {
    return st->generated_tokens > 1 && st->gen_ms > 0 ? (st->generated_tokens - 1) * 1000.0 / st->gen_ms : 0;
}

void chat_session_status(chat_session *s, char *buf, size_t cap) {
    int w = snprintf(buf, cap, "%s · %s · ctx %d/%d", s->model_label, s->backend_label,
                     chat_conv_n_tokens(&s->conv), chat_session_n_ctx(s));
    if (w < 0 || (size_t)w >= cap) return;
    if (s->req_id) {
        snprintf(buf + w, cap - (size_t)w, " · generating %d tokens", (int)s->conv.gen.n);
    } else if (s->have_last) {
        const hearth_request_stats *st = &s->last;
        snprintf(buf + w, cap - (size_t)w, " · TTFT %.0f ms · %.1f tok/s · cached %d/%d", st->ttft_ms,
                 chat_stats_tok_s(st), st->cached_tokens, st->prompt_tokens);
    }
}
