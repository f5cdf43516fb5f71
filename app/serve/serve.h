/*
 * serve.h - what the pieces of `hearth serve` share.
 *
 * Owner: the serve subsystem (app/serve/cmd_serve.c, app/serve/serve_*.c).
 *
 * Layout, one concept per file:
 *   cmd_serve.c     flags, lifetimes, signals, clean shutdown
 *   serve_http.c    transport: Unix/TCP listen sockets, libmicrohttpd daemons,
 *                   request bodies, auth, routing, replies, streaming, logging
 *   serve_gen.c     the bridge to the engine: one serve_gen per generation,
 *                   a queue filled by the engine's worker thread and drained
 *                   by the connection thread; metrics
 *   serve_prompt.c  chat messages -> prompt text -> token ids; model names
 *   serve_json.c    JSON values into a strbuf, typed JSON field readers
 *   serve_fields.c  the top-level fields each POST route takes (others: 400)
 *   serve_models.c  the registry: which models exist, loading on demand,
 *                   keep_alive, least-recently-used unloading, the reaper thread
 *   serve_model_routes.c /api/tags, /api/ps, /api/show, /api/pull, /api/delete,
 *                   /api/copy, /v1/models
 *   serve_embed.c   /v1/embeddings, /api/embed, /api/embeddings, /embedding, /v1/rerank
 *   serve_openai.c  /v1/chat/completions, /v1/completions
 *   serve_ollama.c  /api/chat, /api/generate, /api/version
 *   serve_llamacpp.c /completion, /infill, /tokenize, /detokenize, /health, /metrics
 *
 * Threads: libmicrohttpd runs one thread per connection; a route handler
 * may block in it (bounded waits, checking for a vanished client). Engine
 * events arrive on the engine's worker thread and only touch a serve_gen
 * under its mutex.
 *
 * Invariants:
 *  - a serve_gen is freed when both sides let go of it: the engine (after its
 *    DONE event) and the connection (serve_gen_release); a connection that
 *    goes away first cancels the request, so its KV pages are freed;
 *  - after serve_gen_take has returned true (done), finish/stats/error of the
 *    gen no longer change;
 *  - every reply carries the error shape of its API family (serve_req.api).
 */
#ifndef HEARTH_APP_SERVE_H
#define HEARTH_APP_SERVE_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/strbuf.h"
#include "runtime/serving/engine.h"
#include "runtime/template/tool_calls.h"

/* ---------------------------------------------------------------- JSON output (serve_json.c) */

/* Append a cJSON value printed compactly (the value is not freed); sets
 * b->oom when it cannot be printed. */
void serve_add_json(strbuf *b, const cJSON *v);

/* "2024-01-02T03:04:05.000000000Z" (Ollama's timestamps), UTC. */
void serve_iso_time(char *buf, size_t n, time_t t, long nsec);

/* ---------------------------------------------------------------- typed JSON fields (serve_json.c) */

/* Optional fields of a request object: absent or null leaves *out alone and
 * returns true; a present value of the wrong type or out of range returns
 * false with a message naming the field in err (e.g. "'temperature' must be
 * a number between 0 and 100"). */
typedef struct sj_err {
    char msg[256];
} sj_err;

bool sj_number(const cJSON *o, const char *key, double lo, double hi, double *out, sj_err *e);
bool sj_float(const cJSON *o, const char *key, double lo, double hi, float *out, sj_err *e);
bool sj_int(const cJSON *o, const char *key, long lo, long hi, int *out, sj_err *e);
bool sj_u64(const cJSON *o, const char *key, uint64_t *out, bool *given, sj_err *e);
bool sj_bool(const cJSON *o, const char *key, bool *out, sj_err *e);
/* A Go-style duration ("5m", "1h30m", "30s", "-1", "0") in seconds. */
bool serve_parse_duration(const char *s, double *out);
/* Ollama's keep_alive: a Go duration string or seconds; *out in seconds. */
bool sj_duration(const cJSON *o, const char *key, double *out, sj_err *e);
bool sj_string(const cJSON *o, const char *key, const char **out, sj_err *e);
/* "stop": a string or an array of strings (at most max); pointers borrow o. */
#define SJ_MAX_STOP 16
bool sj_stop(const cJSON *o, const char *key, const char **stops, int max, int *n, sj_err *e);
/* Sampling fields shared by every route (OpenAI names plus llama.cpp's
 * top_k, min_p, repeat_penalty, repeat_last_n); a negative seed keeps sp->seed. */
bool serve_parse_sampling(const cJSON *o, hearth_sampling_params *sp, sj_err *e);

/* ---------------------------------------------------------------- server context */

enum { SERVE_TTFT_BUCKETS = 11, SERVE_ITL_BUCKETS = 10 };

typedef struct serve_metrics {
    uint64_t requests_total;       /* finished HTTP requests */
    uint64_t requests_by_class[6]; /* [1]=1xx .. [5]=5xx */
    uint64_t generations;          /* completed generations */
    uint64_t prompt_tokens, generated_tokens, cached_tokens;
    uint64_t cancelled; /* generations cancelled (client gone, shutdown) */
    uint64_t ttft_bucket[SERVE_TTFT_BUCKETS];
    double ttft_sum_ms;
    uint64_t ttft_count;
    uint64_t itl_bucket[SERVE_ITL_BUCKETS];
    double itl_sum_ms;
    uint64_t itl_count;
} serve_metrics;

extern const double serve_ttft_bounds_ms[SERVE_TTFT_BUCKETS]; /* last is +Inf */
extern const double serve_itl_bounds_ms[SERVE_ITL_BUCKETS];

typedef struct serve_gen serve_gen;
struct hearth_config;
struct app_engine_opts;

/* ---------------------------------------------------------------- models (serve_models.c) */

typedef enum serve_model_state {
    SM_UNLOADED,
    SM_LOADING,
    SM_LOADED,
    SM_UNLOADING,
} serve_model_state;

/* One model the server can serve: the -m model, a config `models:` entry or
 * a pulled one. The metadata is read from the GGUF header when the entry is
 * made (without loading weights); the engine exists only while LOADED.
 * Entries live until the server stops (a deleted one is only marked), so a
 * pointer from serve_models_find stays valid. */
typedef struct serve_model {
    struct serve_ctx *srv;
    struct serve_model *next;
    /* identity and metadata, fixed once made */
    char name[256];      /* what clients name: the pulled or config name, else the file base name */
    char path[1024];     /* the GGUF file */
    char sha256[65];     /* from the manifest, "" when unknown */
    char digest[65];     /* sha256, else a hash of path, size and mtime */
    char arch[32];       /* general.architecture */
    char title[128];     /* general.name, else the base name */
    char quant[16];      /* "Q8_0", from general.file_type */
    char param_size[16]; /* "3.5M" */
    uint64_t n_params;
    uint64_t file_size;
    long mtime;
    hearth_hparams hp;
    char *chat_template; /* tokenizer.chat_template (malloc'd) or NULL */
    bool from_store;     /* pulled: /api/delete may remove it */
    bool encoder;        /* an embedding model (bert, nomic-bert): no text generation */
    bool fim;     /* the vocabulary has fill-in-the-middle tokens: /infill works ("insert") */
    int pooling;         /* {arch}.pooling_type (hearth_pooling), 0 when absent */
    /* under srv->models_mu */
    serve_model_state state;
    bool removed;      /* deleted: hidden from lists, refused to new requests */
    int refs;          /* requests and generations using the engine */
    double expires_ms; /* unloaded once idle past this (hearth_now_ms clock); INFINITY: kept */
    double last_used_ms;
    uint64_t load_seq; /* bumped by every finished load attempt */
    char load_error[1024];
    int load_status; /* HTTP status of the last failed load */
    /* while LOADED (set before, cleared after, the state changes) */
    hearth_backend *be;
    hearth_model *model;
    /* the engine's draft model (--draft, or the config entry's draft), or NULL */
    hearth_model *draft;
    hearth_engine *eng;          /* NULL for an encoder (embedding-only) model */
    struct hearth_embedder *emb; /* embeddings (serve_embed.c): encoders, models with a pooling_type, or
                                  * any model under --embeddings; else NULL */
    const hearth_tokenizer *tok;
    struct hearth_chat_template *tmpl; /* compiled: the model's template, else ChatML */
    int n_ctx;
    uint64_t mem_bytes; /* weights + KV pool */
    double load_ms;
} serve_model;

typedef struct serve_ctx {
    /* models (serve_models.c) */
    pthread_mutex_t models_mu;
    pthread_cond_t models_cv; /* a state changed, a model went idle, or the reaper should look */
    serve_model *models;
    serve_model *default_model;       /* the -m model (NULL: none; requests must name one) */
    const struct app_engine_opts *eo; /* backend, threads, layers for loading */
    hearth_engine_config ec;          /* every model's engine */
    int max_loaded;                   /* models loaded at once (--max-loaded) */
    uint64_t max_memory;              /* bytes for loaded models, 0: what the machine has free */
    double keep_alive_s;              /* default idle time before unloading (< 0: forever) */
    bool embeddings;                  /* --embeddings: generative models embed too (mean pooling) */
    pthread_t reaper;
    bool reaper_started, reaper_stop;

    int n_parallel;
    const char *api_key;       /* NULL: no auth */
    const char *cors_origins;  /* --cors-origins list, NULL: no CORS headers (serve_cors.c) */
    size_t max_body;           /* request body cap in bytes */
    double request_timeout_ms; /* a generation running longer is cancelled */
    long started;              /* unix time the server started */
    int verbose;

    atomic_bool stopping;     /* shutting down: new requests get 503 */
    atomic_int active;        /* HTTP requests in progress */
    atomic_uint_fast64_t seq; /* for response ids / default seeds */

    pthread_mutex_t mu;     /* guards live and metrics */
    struct serve_gen *live; /* generations in flight */
    serve_metrics metrics;
} serve_ctx;

/* Make the registry: the default model (path, may be NULL; name: what -m
 * said when it is a pulled or config name, else NULL for the base name), the
 * config's models and the store's, and start the reaper. Loads the default
 * model now (so a bad file fails at start). False with err set. */
bool serve_models_init(serve_ctx *srv, const char *default_path, const char *default_name,
                       const struct hearth_config *cfg, char *err, size_t cap);
/* Unload everything (cancelling what runs), stop the reaper, free entries. */
void serve_models_shutdown(serve_ctx *srv);
/* Re-read the store: pulled models appear, removed ones disappear. */
void serve_models_rescan(serve_ctx *srv);
/* The entry a client name means ("" or NULL: the default model; NAME,
 * NAME:latest, the file base name, general.name or the path), or NULL.
 * Metadata only: nothing is loaded. */
serve_model *serve_models_find(serve_ctx *srv, const char *name);
/* Find and take a reference, loading the model first when needed (waiting
 * for a load in progress, unloading idle models, least recently used first,
 * to make room). NULL with *status (404 unknown, 400 no name, 503 no room or
 * busy, 500 load failed) and err set. */
serve_model *serve_models_acquire(serve_ctx *srv, const char *name, int *status, char *err, size_t cap);
/* Another reference to an acquired model (a generation's). */
void serve_models_ref(serve_model *sm);
/* Drop a reference. keep_alive_s: the request's keep_alive (NAN: leave the
 * expiry; < 0: keep loaded; 0: unload once idle; > 0: seconds idle). */
void serve_models_release(serve_model *sm, double keep_alive_s);
/* Unload sm as soon as it is idle (keep_alive 0 without a request), waiting
 * a bounded time for that. */
void serve_models_unload(serve_model *sm);
/* Drop a generation's reference (leaves the expiry alone). */
void serve_models_unref(serve_model *sm);
/* The engine figures summed over the loaded models into *out; returns how
 * many are loaded. */
int serve_models_engine_stats(serve_ctx *srv, hearth_engine_stats *out);
/* Call fn for every (not removed) model, under the registry lock: fn reads
 * the entry and must not call back into the registry. */
void serve_models_each(serve_ctx *srv, bool loaded_only, void (*fn)(void *ctx, const serve_model *sm),
                       void *ctx);
/* /api/copy and /api/delete on pulled models (the store's manifest; a file is
 * removed with its last name). 0, or an HTTP status with err set. */
int serve_models_copy(serve_ctx *srv, const char *from, const char *to, char *err, size_t cap);
int serve_models_delete(serve_ctx *srv, const char *name, char *err, size_t cap);

/* ---------------------------------------------------------------- generation (serve_gen.c) */

struct serve_gen {
    serve_ctx *srv;
    serve_model *sm; /* holds a reference until the gen is freed */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;    /* engine (until DONE) + connection (until release) */
    uint64_t id; /* engine request id, 0 until submitted */
    bool cancel_asked;
    strbuf text;  /* generated text not yet taken */
    int n_tokens; /* generated so far */
    bool done;
    hearth_finish finish;
    hearth_status status;
    char error[HEARTH_ERROR_MSG_MAX];
    hearth_request_stats stats;
    double t_submit_ms;
    double t_max_predict_ms; /* > 0: stop this long after the first token (/infill) */
    double t_first_ms;
    bool time_limited; /* stopped by t_max_predict_ms: report "length" */
    hearth_logprobs *lps; /* token logprobs not yet taken (when asked) */
    int n_lps, cap_lps;
    serve_gen *live_prev, *live_next;
};

typedef struct serve_gen_params {
    const int32_t *prompt;
    int n_prompt;
    hearth_sampling_params sampling;
    int max_tokens; /* <= 0: until the context is full */
    const char *const *stop;
    int n_stop;
    bool ignore_eog;
    bool no_spec; /* the request's "speculative": false (speculative decoding opt-out) */
    bool logprobs; /* deliver each token's logprob (serve_logprobs.c) and top_logprobs alternatives */
    int top_logprobs;
    double t_max_predict_ms;
    hearth_grammar
        *grammar; /* structured output (serve_grammar.c), NULL = none; the engine takes a reference */
} serve_gen_params;

/* ---------------------------------------------------------------- CORS (serve_cors.c) */

/* Whether a browser page of `origin` may read replies under the --cors-origins
 * `list` ("*", "loopback", or exact origins, comma-separated). */
bool serve_cors_allowed(const char *list, const char *origin);
/* Whether every entry of list is "*", "loopback" or an http(s) origin without a
 * path; false with the first bad entry copied to bad. */
bool serve_cors_list_valid(const char *list, char *bad, size_t cap);

/* ---------------------------------------------------------------- structured output (serve_grammar.c) */

/* The grammar a request body asks for (response_format, format, grammar or
 * json_schema) into *out (NULL when none); false with e set: a 400. */
bool serve_grammar_from_body(const cJSON *body, hearth_grammar **out, sj_err *e);
/* Forced tool calls, Hermes/Qwen syntax: "<tool_call>\n" {"name": N,
 * "arguments": ARGS} "\n</tool_call>", ARGS by the tool's parameters schema.
 * only: the one function allowed (tool_choice naming it), NULL = any of
 * `tools`; parallel: one or more calls separated by newlines; think: an
 * optional <think>...</think> block first. The grammar starts with
 * "<tool_call>", so it can also be used lazily with that trigger. GBNF text
 * (malloc'd) or NULL, e set. */
char *serve_tool_call_gbnf(const cJSON *tools, const char *only, bool parallel, bool think, sj_err *e);
hearth_grammar *serve_tool_call_grammar(const cJSON *tools, const char *only, bool parallel, bool think,
                                        sj_err *e);

/* Submit; NULL with err set (HEARTH_ERR_CONTEXT, HEARTH_ERR_BUSY, ...). */
serve_gen *serve_gen_start(serve_model *sm, const serve_gen_params *p, hearth_error *err);
/* Move pending text into out (may be NULL to drop it), waiting up to wait_ms
 * when there is none. Returns true once the generation is done and all its
 * text has been taken. */
bool serve_gen_take(serve_gen *g, strbuf *out, int wait_ms);
void serve_gen_cancel(serve_gen *g);
/* The connection lets go: cancels the request if still running. */
void serve_gen_release(serve_gen *g);
/* Move the token logprobs delivered so far into *out (malloc'd, the caller
 * frees; NULL when none): returns how many. */
int serve_gen_take_logprobs(serve_gen *g, hearth_logprobs **out);
/* Cancel every generation in flight (shutdown). */
void serve_gen_cancel_all(serve_ctx *srv);
/* Finish reason as OpenAI names it: "stop" or "length". */
const char *serve_gen_finish_reason(const serve_gen *g);
/* HTTP status for an engine error code (CONTEXT/INVALID 400, BUSY 429, ...). */
int serve_status_for(hearth_status s);
/* Default sampling for a request: Hearth's defaults with a fresh seed. */
hearth_sampling_params serve_sampling_defaults(serve_ctx *srv);
void serve_metrics_request(serve_ctx *srv, int http_status);

/* ---------------------------------------------------------------- prompts and models (serve_prompt.c) */

typedef struct serve_msg {
    const char *role;
    char *content; /* malloc'd: text parts joined */
} serve_msg;

/* Parse an OpenAI/Ollama "messages" array. Returns false with e set. */
bool serve_messages_parse(const cJSON *arr, serve_msg **out, int *n, sj_err *e);
void serve_messages_free(serve_msg *m, int n);
/* Render a conversation into prompt text ending with the assistant's turn
 * (malloc'd), or NULL with e set. */
char *serve_chat_render(const serve_model *sm, const serve_msg *m, int n, sj_err *e);
/* Text -> ids (BOS by the model's default, special tokens parsed). */
bool serve_tokenize(const serve_model *sm, const char *text, size_t len, bool add_bos, hearth_tokens *out,
                    hearth_error *err);

/* ---------------------------------------------------------------- tools and reasoning (serve_tools.c) */

typedef enum {
    SERVE_TOOLS_AUTO,
    SERVE_TOOLS_NONE,
    SERVE_TOOLS_REQUIRED,
    SERVE_TOOLS_NAMED
} serve_tool_choice;

typedef struct serve_tools {
    char *tools_json; /* compact JSON array, NULL: no tools (or tool_choice none) */
    serve_tool_choice choice;
    char named[128]; /* SERVE_TOOLS_NAMED: the function */
    bool parallel;   /* parallel_tool_calls (default true): false keeps the first call */
    char *vars_json; /* template variables: chat_template_kwargs, or Ollama think -> enable_thinking */
} serve_tools;

/* tools / tool_choice / parallel_tool_calls; false with e set (a 400). */
bool serve_tools_parse(const cJSON *body, serve_tools *st, sj_err *e);
void serve_tools_free(serve_tools *st);
/* Render the request's messages (as JSON: tool_calls, tool messages, ...)
 * and tools with the model's template; malloc'd or NULL with e set. */
char *serve_chat_render_full(const serve_model *sm, const cJSON *messages, const serve_tools *st, sj_err *e);
/* The splitter for a generation whose prompt is `prompt`; NULL out of memory. */
hearth_out_parser *serve_out_parser_new(const serve_model *sm, const serve_tools *st, const char *prompt);
/* tool_choice required / named with a Hermes-syntax template (tools: the
 * request's "tools" array): *grammar gets
 * the forced-call grammar (an optional <think> block, then the call(s), the
 * arguments by each tool's schema), so the reply is always a valid call. Other
 * syntaxes keep the check after generation. A structured-output grammar
 * already in *grammar is a 400. False with e set. */
bool serve_tools_grammar(const serve_model *sm, const serve_tools *st, const cJSON *tools,
                         hearth_grammar **grammar, sj_err *e);
/* NULL when the calls satisfy tool_choice, else the error message. */
const char *serve_tools_check(const serve_tools *st, int n_calls, bool named_ok);

/* ---------------------------------------------------------------- HTTP (serve_http.c) */

typedef enum serve_api { SERVE_API_OPENAI, SERVE_API_OLLAMA, SERVE_API_LLAMA } serve_api;

typedef struct serve_req serve_req;

/* Formats generated text (and, when done, the closing chunks) into out. */
typedef void (*serve_stream_fn)(serve_req *rq, const char *text, size_t n, bool done, strbuf *out);

struct serve_req {
    serve_ctx *srv;
    struct MHD_Connection *conn;
    char method[16];
    char path[256];
    serve_api api;
    serve_model *sm;     /* the model the request uses (serve_req_model), released when it ends */
    double keep_alive_s; /* its keep_alive (NAN: the server's default) */
    strbuf body;
    bool body_too_large;
    bool started;
    bool replied;
    int status;
    double t_start_ms;
    /* generation, if any */
    serve_gen *gen;
    int prompt_tokens;
    /* streaming */
    serve_stream_fn stream_fn;
    strbuf out;
    size_t out_off;
    bool stream_done;
    /* what stream formatters need */
    char id[64];
    long created;
    bool include_usage;
    bool sent_first;
    int flags; /* route-private */
    /* tool calls and reasoning (serve_tools.c): the output splitter of a chat stream */
    hearth_out_parser *outp;
    serve_tools tools; /* owned: freed with the request */
    bool named_ok;     /* a call of tool_choice's named function was seen */
    /* token logprobs (serve_logprobs.c) */
    bool want_lp;
    bool lp_chat;  /* OpenAI chat's shape (else the route's API decides) */
    int lp_offset; /* completions' text_offset of the next token */
};

int serve_reply_json(serve_req *rq, int status, cJSON *obj); /* takes obj */
int serve_reply_text(serve_req *rq, int status, const char *content_type, const char *text, size_t len);
int serve_reply_error(serve_req *rq, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reply with a streaming body (SSE or NDJSON) that fn formats as rq->gen
 * produces text. */
int serve_reply_stream(serve_req *rq, const char *content_type, serve_stream_fn fn);
/* A body produced by fn(cls, pos, buf, max) -> bytes, or -1 (end) / -2
 * (error), as libmicrohttpd's content reader; free_fn(cls) when it is done
 * (also when the reply cannot be queued). */
typedef ssize_t (*serve_reader_fn)(void *cls, uint64_t pos, char *buf, size_t max);
int serve_reply_reader(serve_req *rq, const char *content_type, serve_reader_fn fn, void *cls,
                       void (*free_fn)(void *cls));
/* Whether the client closed its connection. */
bool serve_client_gone(serve_req *rq);
/* Block until rq->gen is done, collecting its text into out. Returns false
 * when the client went away or the request timed out (the gen is
 * cancelled; reply nothing). */
bool serve_wait_done(serve_req *rq, strbuf *out);
/* Parse the body as a JSON object; on failure replies 400 and returns NULL. */
cJSON *serve_body_json(serve_req *rq);

/* serve_fields.c: false with a message naming the first top-level field of
 * body that the POST route at path does not take (nulls count as absent). */
bool serve_fields_check(const char *path, const cJSON *body, char *msg, size_t cap);
/* The model a request names (NULL/"": the default), acquired (loaded when
 * needed) for the rest of the request as rq->sm; NULL after replying with
 * the error (404 unknown, 503 no room, ...). */
serve_model *serve_req_model(serve_req *rq, const char *name);
/* Submit and, on failure, reply with the mapped status. NULL when replied. */
serve_gen *serve_start_or_reply(serve_req *rq, const serve_gen_params *p);

typedef struct serve_listen {
    const char *socket_path; /* NULL: no Unix socket */
    const char *tcp;         /* "HOST:PORT" or NULL */
    unsigned timeout_s;      /* idle connection timeout */
    unsigned max_conns;
} serve_listen;

typedef struct serve_http serve_http;
serve_http *serve_http_start(serve_ctx *srv, const serve_listen *l, char *err, size_t errsz);
/* The listening socket systemd passed (LISTEN_PID/LISTEN_FDS: fd 3), or -1
 * (serve_activation.c). When there is one, serve_http_start serves on it
 * instead of --socket. */
int serve_activated_fd(void);
/* Stop accepting new connections (in-flight ones continue). */
void serve_http_quiesce(serve_http *h);
void serve_http_stop(serve_http *h);

/* ---------------------------------------------------------------- logprobs (serve_logprobs.c) */

/* The request's logprobs fields for its API: OpenAI chat logprobs (bool) +
 * top_logprobs, OpenAI completions logprobs (a number), Ollama logprobs +
 * top_logprobs, llama.cpp n_probs. False with e set (a 400). */
bool serve_logprobs_parse(const cJSON *body, serve_api api, bool chat, bool *want, int *top, sj_err *e);
/* Take the logprobs delivered so far from rq->gen and add them to obj[key]
 * in the API's shape; nothing (or null when always) if none were asked. */
void serve_logprobs_attach(serve_req *rq, cJSON *obj, const char *key, bool always);

/* ---------------------------------------------------------------- routes */

/* Each returns an MHD result after replying. */
int route_openai_chat(serve_req *rq);
int route_openai_completions(serve_req *rq);
int route_openai_models(serve_req *rq);
int route_openai_model(serve_req *rq, const char *id); /* GET /v1/models/{id} */
int route_ollama_chat(serve_req *rq);
int route_ollama_generate(serve_req *rq);
int route_ollama_tags(serve_req *rq);
int route_ollama_show(serve_req *rq);
int route_ollama_version(serve_req *rq);
int route_ollama_ps(serve_req *rq);
int route_ollama_pull(serve_req *rq);
int route_ollama_delete(serve_req *rq);
int route_ollama_copy(serve_req *rq);
int route_llama_completion(serve_req *rq);
int route_llama_infill(serve_req *rq);
int route_llama_tokenize(serve_req *rq);
int route_llama_detokenize(serve_req *rq);
int route_llama_health(serve_req *rq);
int route_llama_metrics(serve_req *rq);
int route_llama_props(serve_req *rq);
int route_openai_embeddings(serve_req *rq); /* serve_embed.c */
int route_ollama_embed(serve_req *rq);
int route_ollama_embeddings(serve_req *rq);
int route_llama_embedding(serve_req *rq);
int route_rerank(serve_req *rq);

#endif
