/*
 * cmd_serve.c - `hearth serve`: load a model, start the engine and serve the
 * local HTTP API (OpenAI-, Ollama- and llama.cpp-compatible routes) on a Unix
 * socket and, when asked, on TCP; see docs/API.md.
 *
 * Owner: the serve subsystem. This file owns the lifetimes: backend, model,
 * engine and HTTP daemons are created here and torn down in reverse order.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "runtime/template/chat_template.h"
#include "serve.h"

static const char *ftype_name(uint32_t t) {
    switch (t) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown";
    }
}

/* Everything the routes read about the model, computed once. */
static void describe_model(serve_ctx *srv, const hearth_model *m) {
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    snprintf(srv->model_id, sizeof srv->model_id, "%.250s", base);
    size_t n = strlen(srv->model_id);
    if (n > 5 && !strcmp(srv->model_id + n - 5, ".gguf")) srv->model_id[n - 5] = 0;
    snprintf(srv->arch, sizeof srv->arch, "%s", m->arch_info->name);
    hearth_str s;
    if (hearth_gguf_get_str(m->gguf, "tokenizer.chat_template", &s))
        srv->chat_template = strndup(s.ptr, s.len);
    char note[256] = "";
    srv->tmpl = hearth_chat_template_for_model(m->gguf, NULL, note, sizeof note);
    if (note[0]) fprintf(stderr, "hearth serve: chat template: %s\n", note);
    uint32_t ft;
    snprintf(srv->quant, sizeof srv->quant, "%s",
             hearth_gguf_get_u32(m->gguf, "general.file_type", &ft) ? ftype_name(ft) : "unknown");
    double p = (double)m->n_params;
    if (p >= 1e9)
        snprintf(srv->param_size, sizeof srv->param_size, "%.1fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(srv->param_size, sizeof srv->param_size, "%.1fM", p / 1e6);
    else
        snprintf(srv->param_size, sizeof srv->param_size, "%.0fK", p / 1e3);
    snprintf(srv->digest, sizeof srv->digest, "%s", m->fingerprint);
    struct stat st;
    if (!stat(m->path, &st)) {
        srv->model_size = (uint64_t)st.st_size;
        srv->model_mtime = (long)st.st_mtime;
    }
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
    int timeout_s, request_timeout_s;
    uint64_t max_body;
    bool verbose;
    char sock_buf[512];
} serve_opts;

/* Parse argv into so and eo, over what the config file gave. Returns -1 to
 * go on, else the exit status (0 after --help or --print-config, 2 on a
 * usage error). */
static int serve_parse_args(int argc, char **argv, const hearth_config *cfg, serve_opts *so,
                            app_engine_opts *eo) {
    *so = (serve_opts){.timeout_s = 120, .request_timeout_s = 600, .max_body = 8u << 20};
    const hearth_config_model *cm = hearth_config_find_model(cfg, NULL);
    if (cm) so->model_path = cm->path;
    so->socket_path = cfg->server.socket;
    so->listen_addr = cfg->server.listen;
    so->api_key = cfg->server.api_key;
    if (cfg->server.max_body) so->max_body = cfg->server.max_body;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &so->model_path, "PATH",
         "GGUF model file or a model name from the config"},
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
        {NULL, "--max-body", ARG_U64, &so->max_body, "BYTES",
         "largest request body (default 8 MiB; larger: 413)"},
        {NULL, "--timeout", ARG_INT, &so->timeout_s, "S", "close connections idle this long (default 120)"},
        {NULL, "--request-timeout", ARG_INT, &so->request_timeout_s, "S",
         "cancel generations running longer (default 600)"},
        {"-v", "--verbose", ARG_FLAG, &so->verbose, NULL, "log HTTP library errors"},
    };
    int n_pos;
    int r = app_engine_opts_parse(
        eo, "serve", "-m MODEL.gguf [--socket PATH] [--listen HOST:PORT] [options]",
        "Serve the model over HTTP: OpenAI (/v1/...), Ollama (/api/...) and llama.cpp-style "
        "routes (/completion, /infill, ...) on a Unix socket and optionally TCP. See "
        "docs/API.md.",
        opts, sizeof opts / sizeof opts[0], argc, argv, NULL, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    /* -m may name a configured model */
    const hearth_config_model *named = so->model_path ? hearth_config_find_model(cfg, so->model_path) : NULL;
    if (named && named != cm)
        so->model_path = named->path;
    else if (named && access(so->model_path, F_OK) != 0)
        so->model_path = named->path;
    if (eo->print_config) return app_engine_opts_print_json(eo, "serve", so->model_path, 8);
    if (so->max_body == 0 || so->timeout_s <= 0 || so->request_timeout_s < 0) {
        fprintf(stderr,
                "hearth serve: --max-body and --timeout must be positive, --request-timeout not negative "
                "(see hearth serve --help)\n");
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

    double t0 = hearth_now_ms();
    hearth_backend *be;
    hearth_model *m;
    if (!app_engine_opts_load(&eo, "serve", so.model_path, false, &be, &m)) return 1;

    int rc = 1;
    hearth_error err = {0};
    serve_ctx srv = {0};
    serve_http *http = NULL;
    pthread_mutex_init(&srv.mu, NULL);
    hearth_engine_config ec;
    char db_default[1024];
    app_engine_opts_engine_config(&eo, 8, &ec, db_default, sizeof db_default);
    srv.eng = hearth_engine_create(m, &ec, &err);
    if (!srv.eng) {
        fprintf(stderr, "hearth serve: %s\n", err.msg);
        goto done;
    }
    if (*hearth_engine_note(srv.eng)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(srv.eng));
    srv.model = m;
    srv.tok = m->tokenizer;
    srv.n_ctx = hearth_engine_n_ctx(srv.eng);
    srv.n_parallel = ec.n_parallel;
    srv.api_key = so.api_key && so.api_key[0] ? so.api_key : NULL;
    srv.cors_origins = so.cors_origins && so.cors_origins[0] ? so.cors_origins : NULL;
    srv.max_body = (size_t)so.max_body;
    srv.request_timeout_ms = so.request_timeout_s * 1000.0;
    srv.load_ms = hearth_now_ms() - t0;
    srv.started = (long)time(NULL);
    srv.verbose = so.verbose;
    describe_model(&srv, m);

    serve_listen l = {.socket_path = so.socket_path,
                      .tcp = so.listen_addr,
                      .timeout_s = (unsigned)so.timeout_s,
                      .max_conns = 512};
    char herr[1024] = "";
    http = serve_http_start(&srv, &l, herr, sizeof herr);
    if (!http) {
        fprintf(stderr, "hearth serve: %s\n", herr);
        goto done;
    }
    fprintf(stderr, "hearth serve: model %s (%s, %s, context %d, %d parallel)%s; Ctrl-C stops\n",
            srv.model_id, srv.arch, srv.quant, srv.n_ctx, ec.n_parallel,
            srv.api_key ? ", API key required" : "");
    serve_wait_and_quiesce(&srv, http, &sigs);
    rc = 0;
done:
    serve_http_stop(http);
    hearth_engine_free(srv.eng);
    free(srv.chat_template);
    hearth_chat_template_free(srv.tmpl);
    pthread_mutex_destroy(&srv.mu);
    hearth_model_free(m);
    hearth_backend_free(be);
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
