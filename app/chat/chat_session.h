/*
 * chat_session.h - everything `hearth chat` runs on, without the screen:
 * the backend, model and engine, the conversation, the sampling settings, the
 * history database, and the hand-over of engine events to the UI thread.
 *
 * Events: the engine calls back on its worker thread; the session copies each
 * event into a queue and writes one byte to a pipe (chat_session_wait_fd), so
 * a poll() loop (the ncurses loop, or the --once / stdin loop) wakes up and
 * calls chat_session_drain on its own thread. Only drain touches the
 * conversation; the worker thread touches only the queue.
 *
 * Settings: the config file (app/cli/config.h) gives the models by name, the
 * default model, per-model sampling, system prompt, max_tokens and chat
 * template; the engine settings come resolved (defaults < config < flags)
 * in chat_options.engine, the one resolution run, serve and bench use too.
 *
 * Ownership: the session owns backend, model, chat template, engine,
 * conversation, history handle, queue and pipe; it borrows opt.config and opt.engine. Invariants: at most one
 * request in flight (req_id != 0 exactly while a turn is open); switching models waits for no request (it
 * refuses while one is in flight).
 */
#ifndef HEARTH_APP_CHAT_SESSION_H
#define HEARTH_APP_CHAT_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "backends/backend.h"
#include "chat_conv.h"
#include "chat_history.h"
#include "runtime/model/model.h"
#include "runtime/serving/engine.h"
#include "runtime/template/chat_template.h"

typedef struct chat_options {
    const hearth_config *config;   /* borrowed, may be NULL: models, per-model settings, chat keys */
    const app_engine_opts *engine; /* borrowed: backend, threads, context, prefix cache ... (resolved) */
    const char *model;      /* configured name or path; NULL: the configured default, else the sample model */
    const char *system;     /* initial system prompt; NULL: the model's configured one */
    const char *history_db; /* NULL: the config's chat.history_db, else chat_history_default_path */
    float temp, top_p;      /* < 0: defaults */
    int max_tokens;         /* 0: the model's configured max_tokens; <= 0 there too: until the end of turn */
    bool ignore_eos;        /* keep generating past end-of-turn (tests, benchmarks) */
    uint64_t seed;
    int token_delay_ms; /* test hook ($HEARTH_CHAT_TOKEN_DELAY_MS): slow every token down */
} chat_options;

/* One engine event, copied for the UI thread. */
typedef struct chat_event {
    hearth_event_kind kind;
    int32_t token;
    char *text; /* malloc'd, NUL-terminated (may be "") */
    size_t text_len;
    hearth_finish finish;
    char error[256];
    hearth_request_stats stats;
    struct chat_event *next;
} chat_event;

typedef struct chat_session {
    chat_options opt;
    hearth_backend *be;
    hearth_model *model;
    hearth_model *draft; /* --draft or the config entry's draft: the engine's draft model, or NULL */
    hearth_engine *engine;
    hearth_chat_template *tmpl;
    char template_note[256]; /* why a fallback template is used, "" if none */
    int max_tokens;          /* per answer, 0: until the end of turn / context */
    char model_path[1024];
    char model_label[200];   /* "hearth-kjv-llama Q8_0" */
    char backend_label[200]; /* "cpu (avx2 fma, 8 threads)" */
    hearth_sampling_params sampling;
    chat_conv conv;
    chat_history *history; /* opened on first use */
    char history_path[1024];
    char conv_name[128]; /* the name last saved or loaded, "" if none */
    /* the turn in flight and the last finished one */
    uint64_t req_id;
    double t_submit;
    bool have_last;
    hearth_request_stats last;
    hearth_finish last_finish;
    /* worker -> UI hand-over */
    pthread_mutex_t mu;
    chat_event *head, *tail;
    int pipe_rd, pipe_wr;
} chat_session;

/* Load the model named by opt (see chat_options.model) and start the engine.
 * On failure err says what to do (e.g. how to pass -m). */
hearth_status chat_session_open(chat_session *s, const chat_options *opt, hearth_error *err);
void chat_session_close(chat_session *s);

/* Load another model (a configured name, or a path) and restart the engine;
 * the conversation is kept and re-rendered for the new model (its configured
 * sampling applies, then the flags). On failure the old model stays. */
hearth_status chat_session_switch_model(chat_session *s, const char *name, hearth_error *err);

/* Start a turn: the user's text is added and the whole conversation is
 * submitted. Fails while a turn is in flight. */
hearth_status chat_session_send(chat_session *s, const char *text, hearth_error *err);
/* Stop the turn in flight (its DONE event follows). No-op when idle. */
void chat_session_stop(chat_session *s);
bool chat_session_busy(const chat_session *s);

/* The fd that becomes readable when events wait. */
int chat_session_wait_fd(const chat_session *s);
/* Apply every queued event to the conversation (on the calling thread) and
 * pass each to fn (may be NULL). Returns how many were handled. */
int chat_session_drain(chat_session *s, void (*fn)(const chat_event *ev, void *user), void *user);

/* The history database, opened on first use. NULL with err set on failure. */
chat_history *chat_session_history(chat_session *s, hearth_error *err);

int chat_session_n_ctx(const chat_session *s);

/* One status line: model and quant, backend, context used/total, and the
 * last answer's TTFT, tok/s and cached prompt tokens. */
void chat_session_status(chat_session *s, char *buf, size_t cap);

/* Generation speed of a finished request in tokens per second (0 if unknown). */
double chat_stats_tok_s(const hearth_request_stats *st);

#endif
