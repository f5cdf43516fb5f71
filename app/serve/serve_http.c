/*
 * serve_http.c - the transport of `hearth serve`: listen sockets, the
 * libmicrohttpd daemons, request bodies, auth, routing, replies (whole or
 * streamed) and the one-line-per-request log.
 *
 * Owner: the serve subsystem.
 * Why libmicrohttpd: a maintained, fuzzed HTTP/1.1 parser (chunked bodies,
 * keep-alive, 100-continue, timeouts) that accepts a listen socket we create
 * ourselves, which is how the Unix socket is served.
 * Threads: one MHD thread per connection; handlers and the streaming reader
 * block only in bounded waits and notice a vanished client (POLLRDHUP) so
 * its generation is cancelled and its KV pages freed.
 * Invariants: every request ends in request_completed, which logs it,
 * counts it and releases its generation exactly once; the Unix socket is
 * created mode 0600 and a live server's socket is never taken over.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "app/cli/common.h"
#include "core/os.h"
#include "serve.h"

struct serve_http {
    serve_ctx *srv;
    struct MHD_Daemon *d[2];
    int fd[2];
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---------------------------------------------------------------- replies */

/* The request's Origin when --cors-origins allows it, else NULL. */
static const char *cors_origin(const serve_req *rq) {
    if (!rq->srv->cors_origins) return NULL;
    const char *o = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Origin");
    return serve_cors_allowed(rq->srv->cors_origins, o) ? o : NULL;
}

static void add_common_headers(const serve_req *rq, struct MHD_Response *r) {
    MHD_add_response_header(r, "Server", "hearth/" HEARTH_VERSION);
    const char *o = cors_origin(rq);
    if (o) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

int serve_reply_text(serve_req *rq, int status, const char *content_type, const char *text, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", content_type);
    add_common_headers(rq, r);
    rq->status = status;
    rq->replied = true;
    enum MHD_Result ok = MHD_queue_response(rq->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

int serve_reply_json(serve_req *rq, int status, cJSON *obj) {
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) return serve_reply_text(rq, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    int ok = serve_reply_text(rq, status, "application/json", s, strlen(s));
    free(s);
    return ok;
}

static const char *openai_error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 413:
    case 400: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "unavailable_error";
    default: return "server_error";
    }
}

int serve_reply_error(serve_req *rq, int status, const char *type, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (rq->api == SERVE_API_OLLAMA) {
        /* the ollama client shows an object here as "[object Object]" */
        cJSON_AddStringToObject(o, "error", msg);
    } else {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddStringToObject(e, "type", type ? type : openai_error_type(status));
        cJSON_AddNumberToObject(e, "code", status);
    }
    return serve_reply_json(rq, status, o);
}

/* ---------------------------------------------------------------- client liveness */

bool serve_client_gone(serve_req *rq) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

bool serve_wait_done(serve_req *rq, strbuf *out) {
    serve_ctx *srv = rq->srv;
    double t0 = hearth_now_ms();
    bool cancelled = false;
    while (!serve_gen_take(rq->gen, out, 100)) {
        if (cancelled) continue; /* the DONE event follows a cancel quickly */
        if (serve_client_gone(rq)) {
            serve_gen_cancel(rq->gen);
            cancelled = true;
            rq->status = 499;
            continue;
        }
        if (srv->request_timeout_ms > 0 && hearth_now_ms() - t0 > srv->request_timeout_ms) {
            serve_gen_cancel(rq->gen);
            cancelled = true;
        }
    }
    return rq->status != 499;
}

/* ---------------------------------------------------------------- streaming */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    serve_req *rq = cls;
    serve_ctx *srv = rq->srv;
    while (rq->out_off >= rq->out.n) {
        rq->out.n = 0;
        rq->out_off = 0;
        if (rq->stream_done) return MHD_CONTENT_READER_END_OF_STREAM;
        strbuf text = {0};
        bool done = serve_gen_take(rq->gen, &text, 100);
        if (text.n || done) rq->stream_fn(rq, text.p ? text.p : "", text.n, done, &rq->out);
        bool got = text.n > 0;
        strbuf_free(&text);
        if (done) {
            rq->stream_done = true;
        } else if (!got) {
            if (serve_client_gone(rq)) {
                serve_gen_cancel(rq->gen);
                rq->status = 499;
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (srv->request_timeout_ms > 0 && hearth_now_ms() - rq->t_start_ms > srv->request_timeout_ms)
                serve_gen_cancel(rq->gen);
        }
        if (rq->out.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = rq->out.n - rq->out_off;
    if (n > max) n = max;
    memcpy(buf, rq->out.p + rq->out_off, n);
    rq->out_off += n;
    return (ssize_t)n;
}

int serve_reply_stream(serve_req *rq, const char *content_type, serve_stream_fn fn) {
    rq->stream_fn = fn;
    return serve_reply_reader(rq, content_type, stream_reader, rq, NULL);
}

int serve_reply_reader(serve_req *rq, const char *content_type, serve_reader_fn fn, void *cls,
                       void (*free_fn)(void *cls)) {
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, fn, cls, free_fn);
    if (!r) {
        if (free_fn) free_fn(cls);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    add_common_headers(rq, r);
    rq->status = 200;
    rq->replied = true;
    enum MHD_Result ok = MHD_queue_response(rq->conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---------------------------------------------------------------- request helpers */

cJSON *serve_body_json(serve_req *rq) {
    if (!rq->body.n) {
        serve_reply_error(rq, 400, NULL, "the request body is empty; send a JSON object");
        return NULL;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(rq->body.p, rq->body.n, &end, false);
    if (!o) {
        size_t at = end && end >= rq->body.p ? (size_t)(end - rq->body.p) : 0;
        serve_reply_error(rq, 400, NULL, "the request body is not valid JSON (near byte %zu)", at);
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        serve_reply_error(rq, 400, NULL, "the request body must be a JSON object");
        return NULL;
    }
    char msg[320];
    if (!serve_fields_check(rq->path, o, msg, sizeof msg)) {
        cJSON_Delete(o);
        serve_reply_error(rq, 400, NULL, "%s", msg);
        return NULL;
    }
    return o;
}

serve_model *serve_req_model(serve_req *rq, const char *name) {
    if (rq->sm) return rq->sm;
    int st = 500;
    char err[HEARTH_ERROR_MSG_MAX + 256];
    rq->sm = serve_models_acquire(rq->srv, name, &st, err, sizeof err);
    if (!rq->sm) serve_reply_error(rq, st, st == 404 ? "not_found_error" : NULL, "%s", err);
    return rq->sm;
}

serve_gen *serve_start_or_reply(serve_req *rq, const serve_gen_params *p) {
    hearth_error err = {0};
    rq->prompt_tokens = p->n_prompt;
    if (!rq->sm->eng) {
        serve_reply_error(
            rq, 400, NULL,
            "model '%s' is an embedding model (%s): it does not generate text; use /v1/embeddings or "
            "/api/embed",
            rq->sm->name, rq->sm->arch);
        return NULL;
    }
    serve_gen *g = serve_gen_start(rq->sm, p, &err);
    if (!g) {
        int st = serve_status_for(err.code);
        serve_reply_error(rq, st, NULL, "%s", err.msg[0] ? err.msg : "the engine refused the request");
    }
    rq->gen = g;
    return g;
}

/* ---------------------------------------------------------------- routing */

typedef struct route {
    const char *method;
    const char *path;
    serve_api api;
    int (*fn)(serve_req *);
} route;

static const route routes[] = {
    {"POST", "/v1/chat/completions", SERVE_API_OPENAI, route_openai_chat},
    {"POST", "/chat/completions", SERVE_API_OPENAI, route_openai_chat}, /* llama.cpp's; Copilot BYOK Ollama */
    {"POST", "/v1/completions", SERVE_API_OPENAI, route_openai_completions},
    {"GET", "/v1/models", SERVE_API_OPENAI, route_openai_models},
    {"POST", "/api/chat", SERVE_API_OLLAMA, route_ollama_chat},
    {"POST", "/api/generate", SERVE_API_OLLAMA, route_ollama_generate},
    {"GET", "/api/tags", SERVE_API_OLLAMA, route_ollama_tags},
    {"POST", "/api/show", SERVE_API_OLLAMA, route_ollama_show},
    {"GET", "/api/version", SERVE_API_OLLAMA, route_ollama_version},
    {"GET", "/api/ps", SERVE_API_OLLAMA, route_ollama_ps},
    {"POST", "/v1/embeddings", SERVE_API_OPENAI, route_openai_embeddings},
    {"POST", "/api/embed", SERVE_API_OLLAMA, route_ollama_embed},
    {"POST", "/api/embeddings", SERVE_API_OLLAMA, route_ollama_embeddings},
    {"POST", "/embedding", SERVE_API_LLAMA, route_llama_embedding},
    {"POST", "/embeddings", SERVE_API_LLAMA, route_llama_embedding},
    {"POST", "/v1/rerank", SERVE_API_LLAMA, route_rerank},
    {"POST", "/rerank", SERVE_API_LLAMA, route_rerank},
    {"POST", "/v1/reranking", SERVE_API_LLAMA, route_rerank},
    {"POST", "/api/pull", SERVE_API_OLLAMA, route_ollama_pull},
    {"DELETE", "/api/delete", SERVE_API_OLLAMA, route_ollama_delete},
    {"POST", "/api/copy", SERVE_API_OLLAMA, route_ollama_copy},
    {"POST", "/completion", SERVE_API_LLAMA, route_llama_completion},
    {"POST", "/completions", SERVE_API_LLAMA, route_llama_completion},
    {"POST", "/infill", SERVE_API_LLAMA, route_llama_infill},
    {"POST", "/tokenize", SERVE_API_LLAMA, route_llama_tokenize},
    {"POST", "/detokenize", SERVE_API_LLAMA, route_llama_detokenize},
    {"GET", "/health", SERVE_API_LLAMA, route_llama_health},
    {"GET", "/v1/health", SERVE_API_LLAMA, route_llama_health},
    {"GET", "/metrics", SERVE_API_LLAMA, route_llama_metrics},
    {"GET", "/props", SERVE_API_LLAMA, route_llama_props},
    {"HEAD", "/", SERVE_API_OLLAMA, route_ollama_version},
    {"GET", "/", SERVE_API_OLLAMA, NULL}, /* "Ollama is running" */
};

static serve_api api_of_path(const char *path) {
    if (!strncmp(path, "/v1/", 4)) return SERVE_API_OPENAI;
    if (!strncmp(path, "/api/", 5)) return SERVE_API_OLLAMA;
    return SERVE_API_LLAMA;
}

static bool auth_ok(serve_req *rq) {
    const char *key = rq->srv->api_key;
    if (!key || !key[0]) return true;
    if (!strcmp(rq->path, "/health") || !strcmp(rq->path, "/v1/health")) return true;
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t a = strlen(h), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

/* A browser's CORS preflight from an allowed origin: no auth (browsers send
 * none), 204 with the methods and the headers it asked for. */
static int cors_preflight(serve_req *rq) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    add_common_headers(rq, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", h && *h ? h : "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    rq->status = 204;
    rq->replied = true;
    enum MHD_Result ok = MHD_queue_response(rq->conn, 204, r);
    MHD_destroy_response(r);
    return ok;
}

static int dispatch(serve_req *rq) {
    serve_ctx *srv = rq->srv;
    if (rq->body_too_large)
        return serve_reply_error(rq, 413, NULL,
                                 "the request body is larger than the server's limit of %zu bytes "
                                 "(hearth serve --max-body)",
                                 srv->max_body);
    if (atomic_load(&srv->stopping)) return serve_reply_error(rq, 503, NULL, "the server is shutting down");
    if (!strcmp(rq->method, "OPTIONS") && cors_origin(rq)) return cors_preflight(rq);
    if (!auth_ok(rq))
        return serve_reply_error(rq, 401, NULL,
                                 "missing or wrong API key: send 'Authorization: Bearer <key>'");
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(rq->path, routes[i].path)) continue;
        path_known = true;
        if (strcmp(rq->method, routes[i].method)) continue;
        rq->api = routes[i].api;
        if (!routes[i].fn) return serve_reply_text(rq, 200, "text/plain", "Ollama is running", 17);
        return routes[i].fn(rq);
    }
    if (!strncmp(rq->path, "/v1/models/", 11) && rq->path[11]) {
        rq->api = SERVE_API_OPENAI;
        if (!strcmp(rq->method, "GET")) return route_openai_model(rq, rq->path + 11);
        path_known = true;
    }
    if (!strcmp(rq->method, "OPTIONS")) return serve_reply_text(rq, 204, "text/plain", "", 0);
    if (path_known) return serve_reply_error(rq, 405, NULL, "%s is not allowed on %s", rq->method, rq->path);
    return serve_reply_error(rq, 404, NULL, "no route %s %s (see docs/API.md)", rq->method, rq->path);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_size, void **con_cls) {
    serve_ctx *srv = cls;
    serve_req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        rq->srv = srv;
        rq->conn = conn;
        rq->t_start_ms = hearth_now_ms();
        rq->created = (long)hearth_wall_seconds();
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%s", url);
        rq->api = api_of_path(rq->path);
        rq->keep_alive_s = NAN;
        *con_cls = rq;
        atomic_fetch_add(&srv->active, 1);
        /* refuse an announced oversized body before reading it */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > srv->max_body) {
            rq->body_too_large = true;
            return (enum MHD_Result)dispatch(rq);
        }
        return MHD_YES;
    }
    if (rq->replied) {
        *upload_size = 0; /* discard the rest of a refused body */
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->body.n + *upload_size > srv->max_body)
            rq->body_too_large = true;
        else
            strbuf_add(&rq->body, upload_data, *upload_size);
        if (rq->body.oom) rq->body_too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    return (enum MHD_Result)dispatch(rq);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
    serve_ctx *srv = cls;
    serve_req *rq = *con_cls;
    if (!rq) return;
    *con_cls = NULL;
    int status = rq->status ? rq->status : 500;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->gen) status = 499; /* client closed the request */
    int gen_n = 0;
    double ttft = 0;
    int prompt_n = rq->prompt_tokens;
    if (rq->gen) {
        serve_gen *g = rq->gen;
        pthread_mutex_lock(&g->mu);
        gen_n = g->n_tokens;
        if (g->n_tokens > 0) ttft = g->t_first_ms - g->t_submit_ms;
        pthread_mutex_unlock(&g->mu);
        serve_gen_release(g); /* cancels it if still running */
        rq->gen = NULL;
    }
    serve_models_release(rq->sm, rq->keep_alive_s); /* after the gen: keep_alive 0 unloads once idle */
    serve_metrics_request(srv, status);
    fprintf(stderr, "hearth serve: %s %s %d prompt=%d gen=%d ttft=%.1fms %.1fms\n", rq->method, rq->path,
            status, prompt_n, gen_n, ttft, hearth_now_ms() - rq->t_start_ms);
    strbuf_free(&rq->body);
    strbuf_free(&rq->out);
    hearth_out_parser_free(rq->outp);
    serve_tools_free(&rq->tools);
    free(rq);
    atomic_fetch_sub(&srv->active, 1);
}

/* ---------------------------------------------------------------- listen sockets */

static int unix_listen(const char *path, char *err, size_t errsz) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errsz, "socket path '%s' is longer than %zu bytes; pass a shorter --socket", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* make the parent directory (private) when it is ours to make */
    char dir[sizeof sa.sun_path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir(dir, 0700) && errno != EEXIST) {
            snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errsz, "%s exists and is not a socket; remove it or pass another --socket", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            snprintf(err, errsz,
                     "another server is already listening on %s; stop it or pass another --socket", path);
            return -1;
        }
        if (probe >= 0) close(probe);
        unlink(path); /* stale: nobody answers */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(0177); /* the socket file is created 0600 */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc || chmod(path, 0600) || listen(fd, 128)) {
        snprintf(err, errsz, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (loopback). */
static int tcp_listen(const char *spec, char *bound, size_t boundsz, char *err, size_t errsz) {
    char host[256] = "127.0.0.1", port[32];
    const char *colon = strrchr(spec, ':');
    if (spec[0] == '[') {
        const char *close_br = strchr(spec, ']');
        if (!close_br || close_br[1] != ':' || (size_t)(close_br - spec - 1) >= sizeof host) goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(close_br - spec - 1), spec + 1);
        snprintf(port, sizeof port, "%s", close_br + 2);
    } else if (colon) {
        if ((size_t)(colon - spec) >= sizeof host) goto bad;
        if (colon != spec) snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        snprintf(port, sizeof port, "%s", colon + 1);
    } else {
        snprintf(port, sizeof port, "%s", spec);
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (!port[0] || *end || pn < 0 || pn > 65535) goto bad;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        snprintf(err, errsz, "--listen %s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
        snprintf(err, errsz, "cannot listen on %s: %s", spec, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    if (!is_loopback(ai->ai_addr))
        fprintf(stderr,
                "hearth serve: warning: %s is not a loopback address; anyone who can reach it can use "
                "this server\n",
                host);
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?";
    int p = 0;
    if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h, sizeof h);
            p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(bound, boundsz, "%s:%d", h, p);
        } else {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h, sizeof h);
            p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(bound, boundsz, "[%s]:%d", h, p);
        }
    }
    return fd;
bad:
    snprintf(err, errsz, "--listen '%s' is not HOST:PORT (e.g. 127.0.0.1:8080)", spec);
    return -1;
}

static struct MHD_Daemon *daemon_start(serve_ctx *srv, int fd, const serve_listen *l) {
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (srv->verbose) flags |= MHD_USE_ERROR_LOG;
    /* One thread per connection (handlers block on generations): small stacks, so thousands of
     * idle or slow clients cost little, and they time out after --timeout of silence. */
    return MHD_start_daemon(flags, 0, NULL, NULL, access_handler, srv, MHD_OPTION_LISTEN_SOCKET,
                            (MHD_socket)fd, MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)l->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)l->max_conns,
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_END);
}

serve_http *serve_http_start(serve_ctx *srv, const serve_listen *l, char *err, size_t errsz) {
    serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    h->srv = srv;
    h->fd[0] = h->fd[1] = -1;
    int act = serve_activated_fd(); /* systemd socket activation replaces --socket */
    if (act >= 0) {
        h->fd[0] = act;
        h->d[0] = daemon_start(srv, act, l);
        if (!h->d[0]) {
            snprintf(err, errsz, "cannot start the HTTP server on the socket systemd passed (fd 3)");
            goto fail;
        }
        fprintf(stderr, "hearth serve: listening on the socket systemd passed (LISTEN_FDS)\n");
    } else if (l->socket_path) {
        h->fd[0] = unix_listen(l->socket_path, err, errsz);
        if (h->fd[0] < 0) goto fail;
        snprintf(h->unix_path, sizeof h->unix_path, "%s", l->socket_path);
        h->d[0] = daemon_start(srv, h->fd[0], l);
        if (!h->d[0]) {
            snprintf(err, errsz, "cannot start the HTTP server on %s", l->socket_path);
            goto fail;
        }
        fprintf(stderr, "hearth serve: listening on unix:%s\n", l->socket_path);
    }
    if (l->tcp) {
        char bound[300] = "";
        h->fd[1] = tcp_listen(l->tcp, bound, sizeof bound, err, errsz);
        if (h->fd[1] < 0) goto fail;
        h->d[1] = daemon_start(srv, h->fd[1], l);
        if (!h->d[1]) {
            snprintf(err, errsz, "cannot start the HTTP server on %s", l->tcp);
            goto fail;
        }
        fprintf(stderr, "hearth serve: listening on http://%s\n", bound);
    }
    return h;
fail:
    serve_http_stop(h);
    return NULL;
}

void serve_http_quiesce(serve_http *h) {
    for (int i = 0; i < 2; i++)
        if (h->d[i]) {
            MHD_socket s = MHD_quiesce_daemon(h->d[i]);
            if (s != MHD_INVALID_SOCKET) close(s);
            h->fd[i] = -1;
        }
    if (h->unix_path[0]) {
        unlink(h->unix_path);
        h->unix_path[0] = 0;
    }
}

void serve_http_stop(serve_http *h) {
    if (!h) return;
    for (int i = 0; i < 2; i++) {
        if (h->d[i])
            MHD_stop_daemon(h->d[i]);
        else if (h->fd[i] >= 0)
            close(h->fd[i]);
    }
    if (h->unix_path[0]) unlink(h->unix_path);
    free(h);
}
