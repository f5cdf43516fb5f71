/*
 * cmd_serve.c - `hearth serve`: serve the local models over the HTTP API
 * (OpenAI-, Ollama- and llama.cpp-compatible routes) on a Unix socket and,
 * when asked, on TCP; see docs/API.md. Models load on demand
 * (serve_models.c); -m names a default one, loaded at start.
 *
 * Owner: the serve subsystem. This file owns the lifetimes: the model
 * registry and the HTTP daemons are created here and torn down in reverse
 * order (HTTP first, so no request uses a model being unloaded).
 * Invariants: SIGINT/SIGTERM are blocked in every thread and taken here with
 * sigwait; on either the server stops accepting, cancels what is in flight,
 * waits (bounded) for the connections to finish, and exits 0.
 * Engine options come from app/cli/engine_opts.h (defaults, the config
 * file, then the flags); the server's own (socket, listen, ...) from the
 * config's server section, then the flags.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "runtime/template/chat_template.h"
#include "serve.h"

/* Room for max connections' sockets: the soft open-files limit up to the hard one. */
static void raise_fd_limit(unsigned want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want) return;
    rlim_t cur = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        fprintf(stderr, "hearth serve: at most about %llu connections (open files limit %llu; was %llu)\n",
                (unsigned long long)rl.rlim_cur / 2, (unsigned long long)rl.rlim_cur,
                (unsigned long long)cur);
}

static const char *default_socket(char *buf, size_t n) {
    const char *rt = getenv("XDG_RUNTIME_DIR");
    if (rt && rt[0])
        snprintf(buf, n, "%s/hearth/hearth.sock", rt);
    else
        snprintf(buf, n, "/tmp/hearth-%u/hearth.sock", (unsigned)getuid());
    return buf;
}

/* The flags of `hearth serve` that are not engine options. */
typedef struct serve_opts {
    const char *model_path, *socket_path, *listen_addr, *api_key, *config_path, *cors_origins;
    const char *model_name; /* what -m said when it named a pulled or configured model */
    const char *keep_alive, *max_body_arg, *max_memory_arg;
    int timeout_s, request_timeout_s, max_loaded, max_conns;
    bool embeddings;
    uint64_t max_body, max_memory;
    double keep_alive_s;
    bool verbose;
    char sock_buf[512];
} serve_opts;

/* The size and count options: each bad one named with its value. */
static bool serve_limits_ok(serve_opts *so) {
    const struct {
        const char *flag, *arg;
        uint64_t *out;
    } sizes[] = {{"--max-body", so->max_body_arg, &so->max_body},
                 {"--max-memory", so->max_memory_arg, &so->max_memory}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (!sizes[i].arg) continue;
        if (!hearth_config_parse_size(sizes[i].arg, sizes[i].out)) {
            fprintf(
                stderr,
                "hearth serve: %s '%s' is not a size: give bytes or a number with a unit (512MiB, 8GiB)\n",
                sizes[i].flag, sizes[i].arg);
            return false;
        }
        if (*sizes[i].out == 0) {
            fprintf(stderr, "hearth serve: %s 0: give a size above 0 (see hearth serve --help)\n",
                    sizes[i].flag);
            return false;
        }
    }
    const struct {
        const char *flag;
        int v, min;
    } counts[] = {{"--timeout", so->timeout_s, 1},
                  {"--max-loaded", so->max_loaded, 1},
                  {"--max-connections", so->max_conns, 1},
                  {"--request-timeout", so->request_timeout_s, 0}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].v < counts[i].min) {
            fprintf(stderr,
                    "hearth serve: %s %d: expected a whole number of at least %d (see hearth serve --help)\n",
                    counts[i].flag, counts[i].v, counts[i].min);
            return false;
        }
    return true;
}

/* Parse argv into so and eo, over what the config file gave. Returns -1 to
 * go on, else the exit status (0 after --help or --print-config, 2 on a
 * usage error). */
static int serve_parse_args(int argc, char **argv, const hearth_config *cfg, serve_opts *so,
                            app_engine_opts *eo) {
    *so = (serve_opts){.timeout_s = 30,
                       .max_conns = 4096,
                       .request_timeout_s = 600,
                       .max_body = 8u << 20,
                       .max_loaded = 3,
                       .keep_alive_s = 300};
    const hearth_config_model *cm = hearth_config_find_model(cfg, NULL);
    if (cm) {
        so->model_path = cm->path;
        so->model_name = cm->name;
    }
    so->socket_path = cfg->server.socket;
    so->listen_addr = cfg->server.listen;
    so->api_key = cfg->server.api_key;
    if (cfg->server.max_body) so->max_body = cfg->server.max_body;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &so->model_path, "MODEL",
         "the default model (loaded at start, kept loaded): a GGUF file, a pulled name or a config name; "
         "without it requests must name a model (every pulled and configured one is served)"},
        {NULL, "--keep-alive", ARG_STR, &so->keep_alive, "DURATION",
         "how long other models stay loaded when idle: 5m (default), 30s, 1h, 0 (unload at once), -1 "
         "(forever); a request's keep_alive overrides it"},
        {NULL, "--max-loaded", ARG_INT, &so->max_loaded, "N",
         "models loaded at once; loading another unloads the least recently used idle one (default 3)"},
        {NULL, "--max-memory", ARG_STR, &so->max_memory_arg, "SIZE",
         "memory for loaded models, weights and KV cache, e.g. 12GiB (default: what the machine has free)"},
        {NULL, "--config", ARG_STR, &so->config_path, "PATH",
         "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {NULL, "--socket", ARG_STR, &so->socket_path, "PATH",
         "Unix socket (default $XDG_RUNTIME_DIR/hearth/hearth.sock; 'none': no Unix socket)"},
        {NULL, "--listen", ARG_STR, &so->listen_addr, "HOST:PORT",
         "also serve TCP, e.g. 127.0.0.1:8080 (port 0: any free port, printed on stderr)"},
        {NULL, "--api-key", ARG_STR, &so->api_key, "KEY",
         "require 'Authorization: Bearer KEY' (or set HEARTH_API_KEY)"},
        {NULL, "--cors-origins", ARG_STR, &so->cors_origins, "LIST",
         "let browser pages of these origins call the API: 'loopback' (localhost, 127.0.0.1, [::1], any "
         "port), exact origins like http://localhost:5173, or '*'; comma-separated (default: none)"},
        {NULL, "--max-body", ARG_STR, &so->max_body_arg, "SIZE",
         "largest request body, e.g. 32MiB (default 8MiB; larger: 413)"},
        {NULL, "--timeout", ARG_INT, &so->timeout_s, "S",
         "close a connection silent this long: idle keep-alive, or a client that stalls sending its request "
         "(default 30; generations are not cut by it)"},
        {NULL, "--max-connections", ARG_INT, &so->max_conns, "N",
         "connections at once per listener (default 4096; the Unix socket has its own)"},
        {NULL, "--request-timeout", ARG_INT, &so->request_timeout_s, "S",
         "cancel generations running longer (default 600; 0: never)"},
        {NULL, "--embeddings", ARG_FLAG, &so->embeddings, NULL,
         "let generative models answer /v1/embeddings and /api/embed too (mean of the last hidden states); "
         "embedding models (bert, nomic-bert, files with a pooling type) always do"},
        {"-v", "--verbose", ARG_FLAG, &so->verbose, NULL, "log HTTP library errors"},
    };
    int n_pos;
    int r = app_engine_opts_parse(
        eo, "serve", "[-m MODEL] [--socket PATH] [--listen HOST:PORT] [options]",
        "Serve the local models over HTTP: OpenAI (/v1/...), Ollama (/api/...) and llama.cpp-style "
        "routes (/completion, /infill, ...) on a Unix socket and optionally TCP. A request names any "
        "pulled or configured model; it is loaded on demand and unloaded after its keep_alive or when "
        "another needs the room. See docs/API.md.",
        opts, sizeof opts / sizeof opts[0], argc, argv, NULL, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    /* -m may name a configured model or a pulled one */
    const hearth_config_model *named = so->model_path ? hearth_config_find_model(cfg, so->model_path) : NULL;
    if (named && (named != cm || access(so->model_path, F_OK) != 0)) {
        so->model_name = named->name;
        so->model_path = named->path;
    } else if (so->model_path && (!cm || so->model_path != cm->path)) {
        const char *file = app_resolve_model(so->model_path);
        so->model_name = file != so->model_path ? so->model_path : NULL;
        so->model_path = file;
    }
    if (eo->print_config) return app_engine_opts_print_json(eo, "serve", so->model_path, 8);
    if (!serve_limits_ok(so)) return 2;
    if (so->keep_alive && !serve_parse_duration(so->keep_alive, &so->keep_alive_s)) {
        fprintf(stderr,
                "hearth serve: --keep-alive '%s' is not a duration: give seconds or a number with s, m or h "
                "(5m, 30s, 1h), 0 or -1\n",
                so->keep_alive);
        return 2;
    }
    char bad[256];
    if (so->cors_origins && !serve_cors_list_valid(so->cors_origins, bad, sizeof bad)) {
        fprintf(stderr,
                "hearth serve: --cors-origins: '%s' is not an origin; give 'loopback', '*' or origins like "
                "http://localhost:5173 (scheme, host, optional port, no path)\n",
                bad);
        return 2;
    }
    if (!so->api_key) so->api_key = getenv("HEARTH_API_KEY");
    if (!so->socket_path)
        so->socket_path = default_socket(so->sock_buf, sizeof so->sock_buf);
    else if (!strcmp(so->socket_path, "none"))
        so->socket_path = NULL;
    if (!so->socket_path && !so->listen_addr && !getenv("LISTEN_FDS")) { /* activation: serve_activation.c */
        fprintf(stderr,
                "hearth serve: --socket none needs --listen HOST:PORT, or there is nothing to serve on\n");
        return 2;
    }
    return -1;
}

/* Wait for SIGINT/SIGTERM (blocked in every thread), then stop accepting,
 * cancel what is in flight and wait (bounded) for the connections. */
static void serve_wait_and_quiesce(serve_ctx *srv, serve_http *http, sigset_t *sigs) {
    int sig = 0;
    while (sigwait(sigs, &sig) != 0) {
    }
    fprintf(stderr, "hearth serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&srv->stopping, true);
    serve_http_quiesce(http);
    serve_gen_cancel_all(srv);
    for (int i = 0; i < 100 && atomic_load(&srv->active) > 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (i % 20 == 19) serve_gen_cancel_all(srv); /* requests that arrived while quiescing */
    }
}

static int serve_main(int argc, char **argv, const hearth_config *cfg) {
    serve_opts so;
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    app_engine_opts_apply_config(&eo, cfg);
    int r = serve_parse_args(argc, argv, cfg, &so, &eo);
    if (r >= 0) return r;

    /* Signals go to sigwait below, in no other thread: block them before any thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    serve_ctx srv = {0};
    serve_http *http = NULL;
    pthread_mutex_init(&srv.mu, NULL);
    char db_default[1024];
    app_engine_opts_engine_config(&eo, 8, &srv.ec, db_default, sizeof db_default);
    srv.eo = &eo;
    srv.n_parallel = srv.ec.n_parallel;
    srv.max_loaded = so.max_loaded;
    srv.max_memory = so.max_memory;
    srv.keep_alive_s = so.keep_alive_s;
    srv.embeddings = so.embeddings;
    srv.api_key = so.api_key && so.api_key[0] ? so.api_key : NULL;
    srv.cors_origins = so.cors_origins && so.cors_origins[0] ? so.cors_origins : NULL;
    srv.max_body = (size_t)so.max_body;
    srv.request_timeout_ms = so.request_timeout_s * 1000.0;
    srv.started = (long)time(NULL);
    srv.verbose = so.verbose;
    char err[2048] = "";
    bool models_ok = serve_models_init(&srv, so.model_path, so.model_name, cfg, err, sizeof err);
    if (!models_ok) {
        fprintf(stderr, "hearth serve: %s\n", err);
        goto done;
    }
    if (!srv.models)
        fprintf(stderr, "hearth serve: no models yet: `hearth pull NAME` (or POST /api/pull) adds one, and "
                        "requests name it\n");

    serve_listen l = {.socket_path = so.socket_path,
                      .tcp = so.listen_addr,
                      .timeout_s = (unsigned)so.timeout_s,
                      .max_conns = (unsigned)so.max_conns};
    raise_fd_limit(2u * (unsigned)so.max_conns + 256); /* two listeners, the model files, SQLite */
    http = serve_http_start(&srv, &l, err, sizeof err);
    if (!http) {
        fprintf(stderr, "hearth serve: %s\n", err);
        goto done;
    }
    const serve_model *dm = srv.default_model;
    int n_models = 0;
    for (const serve_model *sm = srv.models; sm; sm = sm->next)
        n_models++;
    if (dm)
        fprintf(
            stderr,
            "hearth serve: model %s (%s, %s, context %d, %d parallel), %d model%s in all%s; Ctrl-C stops\n",
            dm->name, dm->arch, dm->quant, dm->n_ctx, srv.ec.n_parallel, n_models, n_models == 1 ? "" : "s",
            srv.api_key ? ", API key required" : "");
    else
        fprintf(stderr, "hearth serve: %d model%s, loaded on demand%s; Ctrl-C stops\n", n_models,
                n_models == 1 ? "" : "s", srv.api_key ? ", API key required" : "");
    serve_wait_and_quiesce(&srv, http, &sigs);
    rc = 0;
done:
    serve_http_stop(http);
    serve_models_shutdown(&srv);
    pthread_mutex_destroy(&srv.mu);
    if (rc == 0) fprintf(stderr, "hearth serve: stopped\n");
    return rc;
}

int cmd_serve(int argc, char **argv) {
    hearth_config cfg;
    if (!app_engine_opts_load_config("serve", argc, argv, &cfg)) {
        hearth_config_free(&cfg);
        return 2;
    }
    int rc = serve_main(argc, argv, &cfg);
    hearth_config_free(&cfg);
    return rc;
}
