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
#include "runtime/store/cache_store.h"
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

static int serve_main(int argc, char **argv, const hearth_config *cfg) {
    const char *model_path = NULL, *socket_path = NULL, *listen_addr = NULL, *api_key = NULL,
               *backend = "auto";
    const char *cache_db = NULL, *kv_type_name = "f16";
    int threads = 0, gpu_layers = cfg->gpu_layers, ctx = 0, parallel = 8, max_waiting = 256, batch = 512, timeout_s = 120,
        request_timeout_s = 600;
    uint64_t max_body = 8u << 20;
    bool no_prefix_cache = false, verbose = false;
    /* The config file first (loaded by cmd_serve); the flags below override it. */
    const char *config_path = NULL;
    const hearth_config_model *cm = hearth_config_find_model(cfg, NULL);
    if (cm) model_path = cm->path;
    if (cfg->server.socket) socket_path = cfg->server.socket;
    if (cfg->server.listen) listen_addr = cfg->server.listen;
    if (cfg->server.api_key) api_key = cfg->server.api_key;
    if (cfg->server.max_body) max_body = cfg->server.max_body;
    if (cfg->server.max_waiting) max_waiting = cfg->server.max_waiting;
    if (cfg->backend[0]) backend = cfg->backend;
    if (cfg->threads) threads = cfg->threads;
    if (cfg->context) ctx = cfg->context;
    if (cfg->parallel) parallel = cfg->parallel;
    if (cfg->batch) batch = cfg->batch;
    kv_type_name = hearth_dtype_name(cfg->kv_type);
    if (cfg->prefix_cache.path) cache_db = cfg->prefix_cache.path;
    no_prefix_cache = !cfg->prefix_cache.enabled;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model file or a model name from the config"},
        {NULL, "--config", ARG_STR, &config_path, "PATH", "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {NULL, "--socket", ARG_STR, &socket_path, "PATH",
         "Unix socket (default $XDG_RUNTIME_DIR/hearth/hearth.sock; 'none': no Unix socket)"},
        {NULL, "--listen", ARG_STR, &listen_addr, "HOST:PORT",
         "also serve TCP, e.g. 127.0.0.1:8080 (port 0: any free port, printed on stderr)"},
        {NULL, "--api-key", ARG_STR, &api_key, "KEY",
         "require 'Authorization: Bearer KEY' (or set HEARTH_API_KEY)"},
        {"-t", "--threads", ARG_INT, &threads, "N", "CPU threads (default: physical cores)"},
        {"-c", "--ctx", ARG_INT, &ctx, "N",
         "context length per request (default: the model's, at most 4096)"},
        {"-np", "--parallel", ARG_INT, &parallel, "N", "sequences decoded at once (default 8)"},
        {"-b", "--batch", ARG_INT, &batch, "N", "token budget per engine step (default 512)"},
        {NULL, "--max-waiting", ARG_INT, &max_waiting, "N", "queued requests before 429 (default 256)"},
        {NULL, "--max-body", ARG_U64, &max_body, "BYTES",
         "largest request body (default 8 MiB; larger: 413)"},
        {NULL, "--timeout", ARG_INT, &timeout_s, "S", "close connections idle this long (default 120)"},
        {NULL, "--request-timeout", ARG_INT, &request_timeout_s, "S",
         "cancel generations running longer (default 600)"},
        {NULL, "--kv-type", ARG_STR, &kv_type_name, "TYPE", "KV cache type: f16 (default), f32, q8_0"},
        {NULL, "--backend", ARG_STR, &backend, "NAME", "auto, cpu, cuda[:N], vulkan[:N] (default auto)"},
        {"-ngl", "--gpu-layers", ARG_INT, &gpu_layers, "N", APP_GPU_LAYERS_HELP},
        {NULL, "--cache-db", ARG_STR, &cache_db, "PATH",
         "prefix-cache database (default $XDG_CACHE_HOME/hearth/prefix-cache.sqlite; 'none': memory only)"},
        {NULL, "--no-prefix-cache", ARG_FLAG, &no_prefix_cache, NULL,
         "compute every prompt token, cache nothing"},
        {"-v", "--verbose", ARG_FLAG, &verbose, NULL, "log HTTP library errors"},
    };
    int n_pos;
    int r =
        arg_parse("serve", "-m MODEL.gguf [--socket PATH] [--listen HOST:PORT] [options]",
                  "Serve the model over HTTP: OpenAI (/v1/...), Ollama (/api/...) and llama.cpp-style routes "
                  "(/completion, /infill, ...) on a Unix socket and optionally TCP. See docs/API.md.",
                  opts, sizeof opts / sizeof opts[0], argc, argv, NULL, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    /* -m may name a configured model */
    const hearth_config_model *named = model_path ? hearth_config_find_model(cfg, model_path) : NULL;
    if (named && named != cm) model_path = named->path;
    else if (named && access(model_path, F_OK) != 0) model_path = named->path;
    if (ctx < 0 || parallel <= 0 || max_waiting <= 0 || batch <= 0 || max_body == 0 || timeout_s <= 0 ||
        request_timeout_s < 0) {
        fprintf(stderr,
                "hearth serve: -c must not be negative; --parallel, --max-waiting, -b, --max-body and "
                "--timeout must be positive (see hearth serve --help)\n");
        return 2;
    }
    hearth_dtype kv_type;
    if (!app_parse_kv_type("serve", kv_type_name, &kv_type)) return 2;
    if (!api_key) api_key = getenv("HEARTH_API_KEY");
    char sock_buf[512];
    if (!socket_path)
        socket_path = default_socket(sock_buf, sizeof sock_buf);
    else if (!strcmp(socket_path, "none"))
        socket_path = NULL;
    if (!socket_path && !listen_addr) {
        fprintf(stderr,
                "hearth serve: --socket none needs --listen HOST:PORT, or there is nothing to serve on\n");
        return 2;
    }

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
    if (!app_load("serve", model_path, backend, threads, gpu_layers, false, &be, &m)) return 1;

    int rc = 1;
    hearth_error err = {0};
    serve_ctx srv = {0};
    serve_http *http = NULL;
    pthread_mutex_init(&srv.mu, NULL);
    hearth_engine_config ec = hearth_engine_defaults();
    ec.n_ctx = ctx;
    ec.n_parallel = parallel;
    ec.n_batch = batch;
    ec.kv_type = kv_type;
    ec.max_waiting = max_waiting;
    ec.prefix_cache = !no_prefix_cache;
    ec.cache_db_max_bytes = cfg->prefix_cache.max_size;
    char db_default[1024];
    if (ec.prefix_cache && !(cache_db && !strcmp(cache_db, "none")))
        ec.cache_db = cache_db ? cache_db : hearth_cache_store_default_path(db_default, sizeof db_default);
    srv.eng = hearth_engine_create(m, &ec, &err);
    if (!srv.eng) {
        fprintf(stderr, "hearth serve: %s\n", err.msg);
        goto done;
    }
    if (*hearth_engine_note(srv.eng)) fprintf(stderr, "hearth: %s\n", hearth_engine_note(srv.eng));
    srv.model = m;
    srv.tok = m->tokenizer;
    srv.n_ctx = hearth_engine_n_ctx(srv.eng);
    srv.n_parallel = parallel;
    srv.api_key = api_key && api_key[0] ? api_key : NULL;
    srv.max_body = (size_t)max_body;
    srv.request_timeout_ms = request_timeout_s * 1000.0;
    srv.load_ms = hearth_now_ms() - t0;
    srv.started = (long)time(NULL);
    srv.verbose = verbose;
    describe_model(&srv, m);

    serve_listen l = {
        .socket_path = socket_path, .tcp = listen_addr, .timeout_s = (unsigned)timeout_s, .max_conns = 512};
    char herr[1024] = "";
    http = serve_http_start(&srv, &l, herr, sizeof herr);
    if (!http) {
        fprintf(stderr, "hearth serve: %s\n", herr);
        goto done;
    }
    fprintf(stderr, "hearth serve: model %s (%s, %s, context %d, %d parallel)%s; Ctrl-C stops\n",
            srv.model_id, srv.arch, srv.quant, srv.n_ctx, parallel, srv.api_key ? ", API key required" : "");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "hearth serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&srv.stopping, true);
    serve_http_quiesce(http);
    serve_gen_cancel_all(&srv);
    for (int i = 0; i < 100 && atomic_load(&srv.active) > 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (i % 20 == 19) serve_gen_cancel_all(&srv); /* requests that arrived while quiescing */
    }
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
    hearth_error err = {0};
    if (hearth_config_load(app_config_arg(argc, argv), &cfg, &err)) {
        fprintf(stderr, "hearth serve: %s\n", err.msg);
        hearth_config_free(&cfg);
        return 2;
    }
    int rc = serve_main(argc, argv, &cfg);
    hearth_config_free(&cfg);
    return rc;
}
