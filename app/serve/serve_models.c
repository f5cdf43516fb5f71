/*
 * serve_models.c - the models one `hearth serve` can serve, and when each is
 * loaded: the -m model, the config file's `models:` and every pulled model
 * (the store's manifest). A request names one; it is loaded on demand and
 * unloaded after its keep_alive (Ollama's: default 5 minutes, 0 = as soon
 * as it is idle, negative = kept), or sooner when another needs the room
 * (least recently used first; --max-loaded, --max-memory).
 *
 * Owner: the serve subsystem; serve.h documents the calls.
 * Threads: every field of the registry and the state fields of an entry are
 * under srv->models_mu. Loading and unloading run with the lock dropped,
 * the entry marked LOADING/UNLOADING so nobody else touches its engine;
 * models_cv is broadcast whenever a state or a reference count changes.
 * Unloading happens here (a request making room) or on the reaper thread
 * (expired keep_alive, deleted models), never on an engine worker thread,
 * because freeing an engine joins that thread.
 * Invariants:
 *  - be/model/eng/tok/tmpl are non-NULL exactly while LOADED (and while the
 *    UNLOADING code holds them);
 *  - a LOADED model with refs > 0 is never unloaded: requests and their
 *    generations each hold a reference;
 *  - entries are freed only by serve_models_shutdown, so a pointer from
 *    serve_models_find stays valid (metadata only: it never changes).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "runtime/format/quant_rules.h"
#include "runtime/model/embed.h"
#include "runtime/store/model_store.h"
#include "runtime/template/chat_template.h"
#include "serve.h"

/* How long a request waits for room (every loaded model busy) or for a
 * load by another request, before a 503. */
#define SM_WAIT_MS 120000.0

/* llama.cpp's file type name (general.file_type), "unknown" for a number
 * it does not have. */
static const char *ftype_name(uint32_t t) {
    const char *n = hearth_ftype_name((hearth_ftype)t);
    return strcmp(n, "?") ? n : "unknown";
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Whether the vocabulary has fill-in-the-middle prefix and middle tokens
 * (the names /infill looks for, serve_llamacpp.c): Ollama's "insert". */
static bool has_fim_tokens(const hearth_gguf *g) {
    uint32_t id;
    if (hearth_gguf_get_u32(g, "tokenizer.ggml.fim_pre_token_id", &id) &&
        hearth_gguf_get_u32(g, "tokenizer.ggml.fim_mid_token_id", &id))
        return true;
    const gguf_kv *kv = hearth_gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    static const char *const pre[] = {"<|fim_prefix|>", "<fim_prefix>", "<PRE>", "<fim-prefix>"};
    static const char *const mid[] = {"<|fim_middle|>", "<fim_middle>", "<MID>", "<fim-middle>"};
    bool p = false, m = false;
    for (uint64_t i = 0; kv && i < kv->arr_n && !(p && m); i++)
        for (int k = 0; k < 4; k++) {
            p |= hearth_str_eq(kv->strs[i], pre[k]);
            m |= hearth_str_eq(kv->strs[i], mid[k]);
        }
    return p && m;
}

/* The header of the file: architecture, sizes, template; no weights read. */
static bool read_metadata(serve_model *sm, char *err, size_t cap) {
    hearth_error e = {0};
    hearth_gguf *g = hearth_gguf_open(sm->path, &e);
    if (!g) {
        snprintf(err, cap, "%s", e.msg);
        return false;
    }
    hearth_str s;
    snprintf(sm->arch, sizeof sm->arch, "unknown");
    if (hearth_gguf_get_str(g, "general.architecture", &s)) hearth_str_copy(s, sm->arch, sizeof sm->arch);
    hearth_arch a;
    if (hearth_hparams_read(g, &a, &sm->hp, &e)) {
        memset(&sm->hp, 0, sizeof sm->hp); /* listed, not loadable */
    } else {
        sm->encoder = hearth_arch_get(a)->encoder;
        sm->pooling = sm->hp.pooling;
    }
    const char *b = base_name(sm->path);
    snprintf(sm->title, sizeof sm->title, "%.*s", (int)(strlen(b) > 5 ? strlen(b) - 5 : strlen(b)), b);
    if (hearth_gguf_get_str(g, "general.name", &s)) hearth_str_copy(s, sm->title, sizeof sm->title);
    uint32_t ft;
    snprintf(sm->quant, sizeof sm->quant, "%s",
             hearth_gguf_get_u32(g, "general.file_type", &ft) ? ftype_name(ft) : "unknown");
    if (hearth_gguf_get_str(g, "tokenizer.chat_template", &s)) sm->chat_template = strndup(s.ptr, s.len);
    sm->fim = has_fim_tokens(g);
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n *= t->ne[d];
        sm->n_params += n;
    }
    uint64_t total = hearth_gguf_total_size(g); /* every part of a split model */
    hearth_gguf_close(g);
    double p = (double)sm->n_params;
    if (p >= 1e9)
        snprintf(sm->param_size, sizeof sm->param_size, "%.1fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(sm->param_size, sizeof sm->param_size, "%.1fM", p / 1e6);
    else
        snprintf(sm->param_size, sizeof sm->param_size, "%.0fK", p / 1e3);
    struct stat st;
    sm->file_size = total;
    if (!stat(sm->path, &st)) sm->mtime = (long)st.st_mtime;
    if (sm->sha256[0]) {
        snprintf(sm->digest, sizeof sm->digest, "%s", sm->sha256);
    } else {
        uint64_t h = 0xcbf29ce484222325ull;
        h = fnv64(h, sm->path, strlen(sm->path));
        h = fnv64(h, &sm->file_size, sizeof sm->file_size);
        h = fnv64(h, &sm->mtime, sizeof sm->mtime);
        uint64_t h2 = fnv64(h, "2", 1), h3 = fnv64(h2, "3", 1), h4 = fnv64(h3, "4", 1);
        snprintf(sm->digest, sizeof sm->digest, "%016llx%016llx%016llx%016llx", (unsigned long long)h,
                 (unsigned long long)h2, (unsigned long long)h3, (unsigned long long)h4);
    }
    return true;
}

/* A new entry at the end of the list (caller holds the lock or runs alone). */
static serve_model *entry_add(serve_ctx *srv, const char *name, const char *path, const char *sha,
                              bool store) {
    serve_model *sm = calloc(1, sizeof *sm);
    if (!sm) return NULL;
    sm->srv = srv;
    snprintf(sm->path, sizeof sm->path, "%s", path);
    if (name) {
        snprintf(sm->name, sizeof sm->name, "%s", name);
    } else {
        const char *b = base_name(path);
        size_t n = strlen(b);
        snprintf(sm->name, sizeof sm->name, "%.*s", (int)(n > 5 && !strcmp(b + n - 5, ".gguf") ? n - 5 : n),
                 b);
    }
    if (sha) snprintf(sm->sha256, sizeof sm->sha256, "%s", sha);
    sm->from_store = store;
    sm->expires_ms = INFINITY;
    char err[HEARTH_ERROR_MSG_MAX];
    if (!read_metadata(sm, err, sizeof err)) {
        fprintf(stderr, "hearth serve: model %s is not listed: %s\n", sm->name, err);
        free(sm->chat_template);
        free(sm);
        return NULL;
    }
    serve_model **tail = &srv->models;
    while (*tail)
        tail = &(*tail)->next;
    *tail = sm;
    return sm;
}

static serve_model *by_name_locked(serve_ctx *srv, const char *name) {
    for (serve_model *sm = srv->models; sm; sm = sm->next)
        if (!sm->removed && !strcmp(sm->name, name)) return sm;
    return NULL;
}

/* NAME, NAME:latest, the base name, general.name or the path. */
static serve_model *find_locked(serve_ctx *srv, const char *name) {
    if (!name || !name[0])
        return srv->default_model && !srv->default_model->removed ? srv->default_model : NULL;
    serve_model *sm = by_name_locked(srv, name);
    if (sm) return sm;
    char bare[256];
    size_t n = strlen(name);
    if (n > 7 && n < sizeof bare && !strcmp(name + n - 7, ":latest")) {
        snprintf(bare, sizeof bare, "%.*s", (int)(n - 7), name);
        if ((sm = by_name_locked(srv, bare))) return sm;
        name = bare;
    }
    for (sm = srv->models; sm; sm = sm->next) {
        if (sm->removed) continue;
        const char *b = base_name(sm->path);
        size_t bl = strlen(b), nl = strlen(name);
        if (!strcmp(sm->title, name) || !strcmp(sm->path, name) ||
            (bl == nl + 5 && !strncmp(b, name, nl) && !strcmp(b + nl, ".gguf")))
            return sm;
    }
    return NULL;
}

serve_model *serve_models_find(serve_ctx *srv, const char *name) {
    pthread_mutex_lock(&srv->models_mu);
    serve_model *sm = find_locked(srv, name);
    pthread_mutex_unlock(&srv->models_mu);
    if (!sm && name && name[0]) {
        serve_models_rescan(srv);
        pthread_mutex_lock(&srv->models_mu);
        sm = find_locked(srv, name);
        pthread_mutex_unlock(&srv->models_mu);
    }
    return sm;
}

/* ------------------------------------------------------------ the store */

typedef struct scan_ctx {
    serve_ctx *srv;
    hearth_model_entry *rows;
    int n, cap;
} scan_ctx;

static void scan_row(void *ctx, const hearth_model_entry *e) {
    scan_ctx *c = ctx;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        hearth_model_entry *r = realloc(c->rows, (size_t)cap * sizeof *r);
        if (!r) return;
        c->rows = r;
        c->cap = cap;
    }
    c->rows[c->n++] = *e;
}

void serve_models_rescan(serve_ctx *srv) {
    char dir[4096], mpath[4200];
    struct stat st;
    if (!*hearth_model_store_dir(dir, sizeof dir)) return;
    snprintf(mpath, sizeof mpath, "%s/manifest.sqlite", dir);
    if (stat(mpath, &st) != 0) return; /* no store yet: nothing pulled */
    hearth_error err = {0};
    hearth_model_store *s = hearth_model_store_open(dir, &err);
    if (!s) {
        fprintf(stderr, "hearth serve: the models store: %s\n", err.msg);
        return;
    }
    scan_ctx c = {.srv = srv};
    int n = hearth_model_store_list(s, scan_row, &c, &err);
    hearth_model_store_close(s);
    if (n < 0) {
        fprintf(stderr, "hearth serve: the models store: %s\n", err.msg);
        free(c.rows);
        return;
    }
    pthread_mutex_lock(&srv->models_mu);
    for (serve_model *sm = srv->models; sm; sm = sm->next) { /* removed by `hearth rm` */
        if (!sm->from_store || sm->removed) continue;
        bool present = false;
        for (int i = 0; i < c.n && !present; i++)
            present = !strcmp(c.rows[i].name, sm->name) && !strcmp(c.rows[i].file, sm->path);
        if (!present) sm->removed = true;
    }
    for (int i = 0; i < c.n; i++)
        if (!by_name_locked(srv, c.rows[i].name))
            entry_add(srv, c.rows[i].name, c.rows[i].file, c.rows[i].sha256, true);
    pthread_cond_broadcast(&srv->models_cv);
    pthread_mutex_unlock(&srv->models_mu);
    free(c.rows);
}

/* ------------------------------------------------------------ loading */

/* Free memory the machine has (MemAvailable), bytes; 0 when unknown. */
static uint64_t mem_available(void) {
    uint64_t total, avail;
    hearth_host_memory(&total, &avail);
    return avail;
}

/* What loading sm will take: its weights and the KV pool the engine sizes. */
static uint64_t mem_estimate(const serve_model *sm) {
    if (sm->mem_bytes) return sm->mem_bytes; /* measured at the last load */
    const serve_ctx *srv = sm->srv;
    const hearth_hparams *hp = &sm->hp;
    if (sm->encoder) return sm->file_size + sm->file_size / 4; /* no KV cache: weights and activations */
    /* as hearth_engine_create sizes the pool: n_parallel full-context sequences, or with the
     * automatic context one full-context sequence or n_parallel * 4096 tokens; + a quarter */
    int par = srv->ec.n_parallel > 0 ? srv->ec.n_parallel : 1;
    double ctx = srv->ec.n_ctx > 0 ? srv->ec.n_ctx : hp->n_ctx_train > 0 ? hp->n_ctx_train : 4096;
    double tokens = ctx * par;
    if (srv->ec.n_ctx <= 0 && ctx > 4096) tokens = ctx > 4096.0 * par ? ctx : 4096.0 * par;
    double per_tok = (double)hp->n_layer * 2.0 * hp->n_head_kv * hp->head_dim *
                     (srv->ec.kv_type == HEARTH_F32 ? 4.0 : 2.0);
    return sm->file_size + (uint64_t)(per_tok * tokens * 1.25);
}

/* Load sm's weights and engine (lock not held; sm is LOADING). */
static bool load_now(serve_model *sm, int *status, char *err, size_t cap) {
    serve_ctx *srv = sm->srv;
    const app_engine_opts *eo = srv->eo;
    double t0 = hearth_now_ms();
    hearth_error e = {0};
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    /* encoders run on the CPU backend only (embed.h): "auto" means the CPU for them */
    const char *backend = sm->encoder && !strcmp(eo->backend, "auto") ? "cpu" : eo->backend;
    if (app_open_model(sm->path, backend, eo->threads, eo->gpu_layers, eo->n_cpu_moe, &be, &m, &e)) {
        *status = e.code == HEARTH_ERR_NOMEM ? 503 : 500;
        snprintf(err, cap, "cannot load model '%.200s': %s", sm->name, e.msg);
        return false;
    }
    bool encoder = m->arch_info->encoder;
    hearth_engine_config ec = srv->ec;
    hearth_model *draft = NULL;
    const hearth_config_model *cm = eo->config ? hearth_config_find_model(eo->config, sm->name) : NULL;
    hearth_engine *eng = encoder || app_engine_opts_open_draft(eo, cm, m, &ec, &draft, &e)
                             ? NULL
                             : hearth_engine_create(m, &ec, &e);
    hearth_embedder *emb = NULL;
    if (!encoder && !eng) {
        *status = e.code == HEARTH_ERR_NOMEM ? 503 : 500;
        snprintf(err, cap, "cannot start model '%.200s': %s", sm->name, e.msg);
        hearth_model_free(draft);
        hearth_model_free(m);
        hearth_backend_free(be);
        return false;
    }
    if (encoder || m->hp.pooling != HEARTH_POOLING_NONE || srv->embeddings) {
        emb = hearth_embedder_create(m, 0, &e);
        if (!emb) {
            *status = 500;
            snprintf(err, cap, "cannot start embeddings for model '%.200s': %s", sm->name, e.msg);
            hearth_engine_free(eng);
            hearth_model_free(draft);
            hearth_model_free(m);
            hearth_backend_free(be);
            return false;
        }
    }
    if (eng && *hearth_engine_note(eng))
        fprintf(stderr, "hearth serve: %s: %s\n", sm->name, hearth_engine_note(eng));
    char note[256] = "";
    sm->tmpl = hearth_chat_template_for_model(m->gguf, NULL, note, sizeof note);
    if (note[0]) fprintf(stderr, "hearth serve: %s: chat template: %s\n", sm->name, note);
    hearth_engine_stats es = {0};
    if (eng) hearth_engine_stats_get(eng, &es);
    sm->be = be;
    sm->model = m;
    sm->draft = draft;
    sm->eng = eng;
    sm->emb = emb;
    sm->tok = m->tokenizer;
    sm->n_ctx = eng ? hearth_engine_n_ctx(eng) : hearth_embedder_n_ctx(emb);
    sm->mem_bytes = sm->file_size + es.kv.bytes_total;
    sm->load_ms = hearth_now_ms() - t0;
    hearth_backend_info bi;
    hearth_backend_get_info(be, &bi);
    char mem[32];
    app_human_bytes((double)sm->mem_bytes, mem, sizeof mem);
    fprintf(stderr, "hearth serve: loaded %s (%s, %s, context %d, %s, backend %s) in %.0f ms\n", sm->name,
            sm->arch, sm->quant, sm->n_ctx, mem, bi.name, sm->load_ms);
    return true;
}

/* Unload sm (LOADED, refs 0): drops the lock while freeing. */
static void unload_locked(serve_model *sm, const char *why) {
    serve_ctx *srv = sm->srv;
    sm->state = SM_UNLOADING;
    hearth_engine *eng = sm->eng;
    hearth_embedder *emb = sm->emb;
    hearth_model *m = sm->model, *draft = sm->draft;
    hearth_backend *be = sm->be;
    struct hearth_chat_template *t = sm->tmpl;
    pthread_mutex_unlock(&srv->models_mu);
    hearth_embedder_free(emb);
    hearth_engine_free(eng);
    hearth_chat_template_free(t);
    hearth_model_free(draft);
    hearth_model_free(m);
    hearth_backend_free(be);
    fprintf(stderr, "hearth serve: unloaded %s (%s)\n", sm->name, why);
    pthread_mutex_lock(&srv->models_mu);
    sm->eng = NULL;
    sm->emb = NULL;
    sm->model = NULL;
    sm->draft = NULL;
    sm->be = NULL;
    sm->tok = NULL;
    sm->tmpl = NULL;
    sm->state = SM_UNLOADED;
    pthread_cond_broadcast(&srv->models_cv);
}

static double default_expiry(const serve_model *sm, double now) {
    const serve_ctx *srv = sm->srv;
    if (sm == srv->default_model || srv->keep_alive_s < 0) return INFINITY; /* -m stays unless asked */
    return now + srv->keep_alive_s * 1000.0;
}

static void abs_deadline(struct timespec *ts, double ms) {
    double d = hearth_wall_seconds() + ms / 1000.0;
    ts->tv_sec = (time_t)d;
    ts->tv_nsec = (long)((d - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

typedef enum { ROOM_YES, ROOM_FREED, ROOM_WAIT, ROOM_NEVER } room_t;

/* Whether sm can load now; unloads one idle model (ROOM_FREED) when that
 * helps. Lock held. */
static room_t make_room_locked(serve_model *sm, char *err, size_t cap) {
    serve_ctx *srv = sm->srv;
    uint64_t need = mem_estimate(sm), used = 0;
    int n_loaded = 0;
    serve_model *lru = NULL;
    for (serve_model *o = srv->models; o; o = o->next) {
        if (o->state == SM_UNLOADED) continue;
        n_loaded++;
        used += mem_estimate(o);
        if (o->state == SM_LOADED && o->refs == 0 && (!lru || o->last_used_ms < lru->last_used_ms)) lru = o;
    }
    uint64_t limit = srv->max_memory ? srv->max_memory : used + mem_available();
    char nb[32], lb[32];
    app_human_bytes((double)need, nb, sizeof nb);
    app_human_bytes((double)(srv->max_memory ? srv->max_memory : limit), lb, sizeof lb);
    if (need > limit && (n_loaded == 0 || srv->max_memory)) {
        if (srv->max_memory && need <= srv->max_memory) goto evict; /* fits once others go */
        snprintf(err, cap,
                 "model '%s' needs about %s (weights and KV cache) but %s %s; use a smaller quantization, "
                 "a shorter --ctx or fewer --parallel sequences",
                 sm->name, nb, srv->max_memory ? "--max-memory is" : "the machine has only", lb);
        return ROOM_NEVER;
    }
    if (n_loaded < srv->max_loaded && used + need <= limit) return ROOM_YES;
evict:
    if (lru) {
        unload_locked(lru, n_loaded >= srv->max_loaded ? "room for another model: --max-loaded"
                                                       : "memory for another model");
        return ROOM_FREED;
    }
    snprintf(err, cap, "model '%s' must wait: %d loaded model%s busy (--max-loaded %d%s%s)", sm->name,
             n_loaded, n_loaded == 1 ? " is" : "s are", srv->max_loaded,
             srv->max_memory ? ", --max-memory " : "", srv->max_memory ? lb : "");
    return ROOM_WAIT;
}

serve_model *serve_models_acquire(serve_ctx *srv, const char *name, int *status, char *err, size_t cap) {
    serve_model *sm = serve_models_find(srv, name);
    if (!sm) {
        *status = name && name[0] ? 404 : 400;
        if (name && name[0])
            snprintf(err, cap,
                     "model '%.200s' not found; pull it with `hearth pull %.200s` (GET /api/tags lists "
                     "the local models)",
                     name, name);
        else
            snprintf(err, cap,
                     "'model' is required: this server was started without -m (GET /api/tags lists "
                     "the local models)");
        return NULL;
    }
    pthread_mutex_lock(&srv->models_mu);
    double deadline = hearth_now_ms() + SM_WAIT_MS;
    uint64_t seen = sm->load_seq;
    serve_model *out = NULL;
    for (;;) {
        if (atomic_load(&srv->stopping) || srv->reaper_stop) {
            *status = 503;
            snprintf(err, cap, "the server is shutting down");
            break;
        }
        if (sm->removed) {
            *status = 404;
            snprintf(err, cap, "model '%s' was deleted", sm->name);
            break;
        }
        if (sm->state == SM_LOADED) {
            sm->refs++;
            sm->last_used_ms = hearth_now_ms();
            out = sm;
            break;
        }
        bool wait = sm->state != SM_UNLOADED;
        if (!wait && sm->load_seq != seen && sm->load_error[0]) { /* the load we waited for failed */
            *status = sm->load_status;
            snprintf(err, cap, "%s", sm->load_error);
            break;
        }
        if (!wait) {
            room_t r = make_room_locked(sm, err, cap);
            if (r == ROOM_NEVER) {
                *status = 500;
                break;
            }
            if (r == ROOM_FREED) continue;
            if (r == ROOM_WAIT) wait = true;
        }
        if (wait) {
            if (hearth_now_ms() > deadline) {
                *status = 503;
                if (sm->state != SM_UNLOADED)
                    snprintf(err, cap, "model '%s' is still loading; try again", sm->name);
                break;
            }
            struct timespec ts;
            abs_deadline(&ts, 250);
            pthread_cond_timedwait(&srv->models_cv, &srv->models_mu, &ts);
            continue;
        }
        sm->state = SM_LOADING;
        pthread_mutex_unlock(&srv->models_mu);
        int st = 500;
        char e[1024] = "";
        bool ok = load_now(sm, &st, e, sizeof e);
        pthread_mutex_lock(&srv->models_mu);
        sm->load_seq++;
        seen = sm->load_seq;
        if (ok) {
            sm->state = SM_LOADED;
            sm->load_error[0] = 0;
            sm->expires_ms = default_expiry(sm, hearth_now_ms());
        } else {
            sm->state = SM_UNLOADED;
            sm->load_status = st;
            snprintf(sm->load_error, sizeof sm->load_error, "%s", e);
            fprintf(stderr, "hearth serve: %s\n", e);
            *status = st;
            snprintf(err, cap, "%s", e);
        }
        pthread_cond_broadcast(&srv->models_cv);
        if (!ok) break;
    }
    pthread_mutex_unlock(&srv->models_mu);
    return out;
}

void serve_models_ref(serve_model *sm) {
    pthread_mutex_lock(&sm->srv->models_mu);
    sm->refs++;
    pthread_mutex_unlock(&sm->srv->models_mu);
}

void serve_models_release(serve_model *sm, double keep_alive_s) {
    if (!sm) return;
    serve_ctx *srv = sm->srv;
    pthread_mutex_lock(&srv->models_mu);
    sm->refs--;
    double now = hearth_now_ms();
    sm->last_used_ms = now;
    if (!isnan(keep_alive_s)) sm->expires_ms = keep_alive_s < 0 ? INFINITY : now + keep_alive_s * 1000.0;
    pthread_cond_broadcast(&srv->models_cv);
    pthread_mutex_unlock(&srv->models_mu);
}

void serve_models_unref(serve_model *sm) {
    pthread_mutex_lock(&sm->srv->models_mu);
    sm->refs--;
    pthread_cond_broadcast(&sm->srv->models_cv);
    pthread_mutex_unlock(&sm->srv->models_mu);
}

void serve_models_unload(serve_model *sm) {
    serve_ctx *srv = sm->srv;
    pthread_mutex_lock(&srv->models_mu);
    sm->expires_ms = hearth_now_ms();
    pthread_cond_broadcast(&srv->models_cv);
    for (int i = 0; i < 200 && sm->refs == 0 && sm->state != SM_UNLOADED; i++) { /* the reaper does it */
        struct timespec ts;
        abs_deadline(&ts, 25);
        pthread_cond_timedwait(&srv->models_cv, &srv->models_mu, &ts);
    }
    pthread_mutex_unlock(&srv->models_mu);
}

int serve_models_engine_stats(serve_ctx *srv, hearth_engine_stats *out) {
    memset(out, 0, sizeof *out);
    int n = 0;
    pthread_mutex_lock(&srv->models_mu);
    for (serve_model *sm = srv->models; sm; sm = sm->next) {
        if (sm->state != SM_LOADED || !sm->eng) continue;
        hearth_engine_stats es;
        hearth_engine_stats_get(sm->eng, &es);
        n++;
        out->running += es.running;
        out->waiting += es.waiting;
        out->requests_done += es.requests_done;
        out->tokens_generated += es.tokens_generated;
        out->prompt_tokens += es.prompt_tokens;
        out->cached_tokens += es.cached_tokens;
        out->preemptions += es.preemptions;
        out->steps += es.steps;
        out->kv.n_pages += es.kv.n_pages;
        out->kv.pages_used += es.kv.pages_used;
        out->kv.pages_cached += es.kv.pages_cached;
        out->kv.bytes_total += es.kv.bytes_total;
        out->kv.bytes_used += es.kv.bytes_used;
        out->prefix.lookups += es.prefix.lookups;
        out->prefix.hits_memory += es.prefix.hits_memory;
        out->prefix.hits_disk += es.prefix.hits_disk;
        out->prefix.evicted += es.prefix.evicted;
        out->spec_passes += es.spec_passes;
        out->spec_tokens += es.spec_tokens;
        out->spec_drafted += es.spec_drafted;
        out->spec_accepted += es.spec_accepted;
        out->spec_off_load += es.spec_off_load;
    }
    pthread_mutex_unlock(&srv->models_mu);
    return n;
}

void serve_models_each(serve_ctx *srv, bool loaded_only, void (*fn)(void *ctx, const serve_model *sm),
                       void *ctx) {
    pthread_mutex_lock(&srv->models_mu);
    for (serve_model *sm = srv->models; sm; sm = sm->next)
        if (!sm->removed && (!loaded_only || sm->state == SM_LOADED)) fn(ctx, sm);
    pthread_mutex_unlock(&srv->models_mu);
}

/* ------------------------------------------------------------ the reaper */

static void *reaper_main(void *arg) {
    serve_ctx *srv = arg;
    pthread_mutex_lock(&srv->models_mu);
    while (!srv->reaper_stop) {
        double now = hearth_now_ms(), next = now + 1000;
        serve_model *victim = NULL;
        for (serve_model *sm = srv->models; sm && !victim; sm = sm->next) {
            if (sm->state != SM_LOADED || sm->refs > 0) continue;
            if (sm->removed || sm->expires_ms <= now)
                victim = sm;
            else if (sm->expires_ms < next)
                next = sm->expires_ms;
        }
        if (victim) {
            unload_locked(victim, victim->removed ? "deleted" : "keep_alive expired");
            continue;
        }
        struct timespec ts;
        abs_deadline(&ts, next - now);
        pthread_cond_timedwait(&srv->models_cv, &srv->models_mu, &ts);
    }
    pthread_mutex_unlock(&srv->models_mu);
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

bool serve_models_init(serve_ctx *srv, const char *default_path, const char *default_name,
                       const hearth_config *cfg, char *err, size_t cap) {
    pthread_mutex_init(&srv->models_mu, NULL);
    pthread_cond_init(&srv->models_cv, NULL);
    if (default_path) {
        srv->default_model = entry_add(srv, default_name, default_path, NULL, false);
        if (!srv->default_model) {
            hearth_error e = {0};
            hearth_gguf *g = hearth_gguf_open(default_path, &e); /* for the message */
            hearth_gguf_close(g);
            snprintf(err, cap, "%s", e.msg[0] ? e.msg : "cannot read the model file");
            return false;
        }
    }
    for (int i = 0; cfg && i < cfg->n_models; i++) {
        const hearth_config_model *cm = &cfg->models[i];
        if (!by_name_locked(srv, cm->name) && (!srv->default_model || strcmp(cm->path, default_path)))
            entry_add(srv, cm->name, cm->path, NULL, false);
    }
    serve_models_rescan(srv);
    if (pthread_create(&srv->reaper, NULL, reaper_main, srv)) {
        snprintf(err, cap, "cannot start a thread");
        return false;
    }
    srv->reaper_started = true;
    if (srv->default_model) {
        int st;
        serve_model *sm = serve_models_acquire(srv, NULL, &st, err, cap);
        if (!sm) return false;
        serve_models_release(sm, NAN);
    }
    return true;
}

void serve_models_shutdown(serve_ctx *srv) {
    pthread_mutex_lock(&srv->models_mu);
    srv->reaper_stop = true;
    pthread_cond_broadcast(&srv->models_cv);
    pthread_mutex_unlock(&srv->models_mu);
    if (srv->reaper_started) pthread_join(srv->reaper, NULL);
    pthread_mutex_lock(&srv->models_mu);
    for (serve_model *sm = srv->models; sm; sm = sm->next) {
        /* bounded: requests still holding a model were cancelled and finish soon */
        for (int i = 0; i < 200 && sm->state == SM_LOADED && sm->refs > 0; i++) {
            struct timespec ts;
            abs_deadline(&ts, 25);
            pthread_cond_timedwait(&srv->models_cv, &srv->models_mu, &ts);
        }
        if (sm->state == SM_LOADED) unload_locked(sm, "shutdown");
    }
    serve_model *sm = srv->models;
    srv->models = NULL;
    pthread_mutex_unlock(&srv->models_mu);
    while (sm) {
        serve_model *next = sm->next;
        free(sm->chat_template);
        free(sm);
        sm = next;
    }
    pthread_cond_destroy(&srv->models_cv);
    pthread_mutex_destroy(&srv->models_mu);
}

/* ------------------------------------------------------------ copy and delete */

static hearth_model_store *open_store(char *err, size_t cap) {
    char dir[4096];
    hearth_error e = {0};
    if (!*hearth_model_store_dir(dir, sizeof dir)) {
        snprintf(err, cap, "no models folder: set $XDG_DATA_HOME or $HOME for the server");
        return NULL;
    }
    hearth_model_store *s = hearth_model_store_open(dir, &e);
    if (!s) snprintf(err, cap, "%s", e.msg);
    return s;
}

int serve_models_copy(serve_ctx *srv, const char *from, const char *to, char *err, size_t cap) {
    serve_model *sm = serve_models_find(srv, from);
    if (!sm) {
        snprintf(err, cap, "model '%.200s' not found", from);
        return 404;
    }
    if (!to[0] || strchr(to, '/') || strlen(to) >= sizeof sm->name) {
        snprintf(err, cap, "'destination' must be a model name (no '/', under 256 bytes)");
        return 400;
    }
    hearth_model_store *s = open_store(err, cap);
    if (!s) return 500;
    hearth_model_entry e = {0};
    hearth_error he = {0};
    hearth_model_entry src;
    if (sm->from_store && hearth_model_store_get(s, sm->name, &src, &he) == HEARTH_OK) e = src;
    snprintf(e.name, sizeof e.name, "%s", to);
    snprintf(e.file, sizeof e.file, "%s", sm->path);
    if (!sm->from_store) {
        snprintf(e.source, sizeof e.source, "copy of %s", sm->name);
        e.size = sm->file_size;
        e.pulled_at = (int64_t)time(NULL);
    }
    int rc = 0;
    if (hearth_model_store_put(s, &e, &he)) {
        snprintf(err, cap, "%s", he.msg);
        rc = 500;
    }
    hearth_model_store_close(s);
    if (!rc) {
        pthread_mutex_lock(&srv->models_mu); /* a copy replaces an entry of that name */
        serve_model *old = by_name_locked(srv, to);
        if (old) old->removed = true;
        pthread_mutex_unlock(&srv->models_mu);
        serve_models_rescan(srv);
    }
    return rc;
}

int serve_models_delete(serve_ctx *srv, const char *name, char *err, size_t cap) {
    serve_model *sm = serve_models_find(srv, name);
    if (!sm) {
        snprintf(err, cap, "model '%.200s' not found", name);
        return 404;
    }
    if (!sm->from_store) {
        snprintf(err, cap,
                 "model '%s' is %s, not a pulled model: the server deletes only what `hearth pull` stored",
                 sm->name, sm == srv->default_model ? "the one given with -m" : "in the config file");
        return 400;
    }
    hearth_model_store *s = open_store(err, cap);
    if (!s) return 500;
    hearth_error he = {0};
    int rc = 0;
    if (hearth_model_store_delete(s, sm->name, NULL, &he)) {
        snprintf(err, cap, "%s", he.msg);
        rc = he.code == HEARTH_ERR_INVALID ? 404 : 500;
    }
    hearth_model_store_close(s);
    pthread_mutex_lock(&srv->models_mu);
    sm->removed = true; /* the reaper unloads it once idle */
    pthread_cond_broadcast(&srv->models_cv);
    pthread_mutex_unlock(&srv->models_mu);
    return rc;
}
