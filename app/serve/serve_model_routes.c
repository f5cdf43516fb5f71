/*
 * serve_model_routes.c - the routes about models rather than generations:
 * Ollama's GET /api/tags (every local model), GET /api/ps (the loaded ones,
 * with memory and expiry), POST /api/show, POST /api/pull (a download,
 * streamed as NDJSON progress), DELETE /api/delete, POST /api/copy; OpenAI's
 * GET /v1/models and /v1/models/{id}.
 *
 * Owner: the serve subsystem. The registry (serve_models.c) owns the
 * entries; these routes read their metadata, which never changes, so /api/show
 * and /api/tags never load a model.
 * /api/pull runs `hearth pull --json NAME` (this same executable) as a child
 * process and relays its events in Ollama's shape ({"status":"pulling
 * manifest"}, {"status":"pulling FILE","digest","total","completed"},
 * {"status":"verifying sha256 digest"}, {"status":"success"}, or
 * {"error":...}); a client that goes away stops the child (the .part file
 * stays, so the next pull resumes). The download code stays in one place,
 * and a failed download cannot take the server with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "app/cli/common.h"
#include "core/os.h"
#include "runtime/template/chat_template.h"
#include "serve.h"

extern char **environ;

/* ------------------------------------------------------------ model objects */

static cJSON *details(const serve_model *sm) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", "gguf");
    cJSON_AddStringToObject(d, "family", sm->arch);
    cJSON *f = cJSON_AddArrayToObject(d, "families");
    cJSON_AddItemToArray(f, cJSON_CreateString(sm->arch));
    cJSON_AddStringToObject(d, "parameter_size", sm->param_size);
    cJSON_AddStringToObject(d, "quantization_level", sm->quant);
    return d;
}

static cJSON *tag_entry(const serve_model *sm) {
    cJSON *m = cJSON_CreateObject();
    char buf[64];
    cJSON_AddStringToObject(m, "name", sm->name);
    cJSON_AddStringToObject(m, "model", sm->name);
    serve_iso_time(buf, sizeof buf, (time_t)sm->mtime, 0);
    cJSON_AddStringToObject(m, "modified_at", buf);
    cJSON_AddNumberToObject(m, "size", (double)sm->file_size);
    cJSON_AddStringToObject(m, "digest", sm->digest);
    cJSON_AddItemToObject(m, "details", details(sm));
    return m;
}

/* The context a request gets: the engine's when loaded, else what it will
 * be (the model's trained context unless -c says otherwise; the engine may
 * cut it to the free memory when it loads). */
static int ctx_of(const serve_model *sm) {
    if (sm->state == SM_LOADED) return sm->n_ctx;
    int want = sm->srv->ec.n_ctx;
    if (want > 0) return want;
    return sm->hp.n_ctx_train > 0 ? sm->hp.n_ctx_train : 4096;
}

static void add_tag(void *ctx, const serve_model *sm) {
    cJSON_AddItemToArray(ctx, tag_entry(sm));
}

int route_ollama_tags(serve_req *rq) {
    serve_models_rescan(rq->srv);
    cJSON *o = cJSON_CreateObject();
    serve_models_each(rq->srv, false, add_tag, cJSON_AddArrayToObject(o, "models"));
    return serve_reply_json(rq, 200, o);
}

static void add_ps(void *ctx, const serve_model *sm) {
    cJSON *m = tag_entry(sm);
    char buf[64];
    double left_s = (sm->expires_ms - hearth_now_ms()) / 1000.0;
    if (isinf(sm->expires_ms)) /* never: the date Ollama shows for keep_alive -1 */
        snprintf(buf, sizeof buf, "2318-01-01T00:00:00.000000000Z");
    else
        serve_iso_time(buf, sizeof buf, (time_t)(hearth_wall_seconds() + (left_s > 0 ? left_s : 0)), 0);
    cJSON_AddStringToObject(m, "expires_at", buf);
    cJSON_ReplaceItemInObject(m, "size",
                              cJSON_CreateNumber((double)sm->mem_bytes)); /* in memory, not on disk */
    bool dev = sm->model && sm->model->n_device_layers > 0 && hearth_backend_host(sm->be);
    cJSON_AddNumberToObject(m, "size_vram", dev ? (double)sm->model->device_bytes : 0);
    cJSON_AddNumberToObject(m, "context_length", sm->n_ctx);
    cJSON_AddNumberToObject(m, "in_use", sm->refs); /* requests holding it now (Hearth's) */
    cJSON_AddItemToArray(ctx, m);
}

int route_ollama_ps(serve_req *rq) {
    cJSON *o = cJSON_CreateObject();
    serve_models_each(rq->srv, true, add_ps, cJSON_AddArrayToObject(o, "models"));
    return serve_reply_json(rq, 200, o);
}

/* "model", or Ollama's older "name"; false after replying 400. */
static bool model_field(serve_req *rq, const cJSON *body, const char **model) {
    sj_err e = {0};
    *model = NULL;
    if (!sj_string(body, "model", model, &e) || (!*model && !sj_string(body, "name", model, &e))) {
        serve_reply_error(rq, 400, NULL, "%s", e.msg);
        return false;
    }
    if (!*model || !**model) {
        serve_reply_error(rq, 400, NULL, "'model' is required");
        return false;
    }
    return true;
}

int route_ollama_show(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    const char *model;
    if (!model_field(rq, body, &model)) {
        cJSON_Delete(body);
        return MHD_YES;
    }
    serve_model *sm = serve_models_find(rq->srv, model);
    if (!sm) {
        int rc = serve_reply_error(rq, 404, NULL,
                                   "model '%s' not found (GET /api/tags lists the local models)", model);
        cJSON_Delete(body);
        return rc;
    }
    cJSON_Delete(body);
    const hearth_hparams *hp = &sm->hp;
    cJSON *o = cJSON_CreateObject();
    char buf[1400];
    snprintf(buf, sizeof buf, "# served by hearth %s\nFROM %s\n", HEARTH_VERSION, sm->path);
    cJSON_AddStringToObject(o, "license", "");
    cJSON_AddStringToObject(o, "modelfile", buf);
    cJSON_AddStringToObject(o, "parameters", "");
    cJSON_AddStringToObject(o, "template", sm->chat_template ? sm->chat_template : "");
    cJSON_AddItemToObject(o, "details", details(sm));
    cJSON *mi = cJSON_AddObjectToObject(o, "model_info");
    cJSON_AddStringToObject(mi, "general.architecture", sm->arch);
    cJSON_AddStringToObject(mi, "general.name", sm->title);
    cJSON_AddStringToObject(mi, "general.basename", sm->title);
    cJSON_AddNumberToObject(mi, "general.parameter_count", (double)sm->n_params);
    struct {
        const char *suffix;
        int v;
    } kv[] = {{"context_length", ctx_of(sm)},       {"embedding_length", hp->n_embd},
              {"block_count", hp->n_layer},         {"feed_forward_length", hp->n_ff},
              {"attention.head_count", hp->n_head}, {"attention.head_count_kv", hp->n_head_kv},
              {"vocab_size", hp->n_vocab}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        snprintf(buf, sizeof buf, "%s.%s", sm->arch, kv[i].suffix);
        cJSON_AddNumberToObject(mi, buf, kv[i].v);
    }
    cJSON *caps = cJSON_AddArrayToObject(o, "capabilities");
    if (!sm->encoder) cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
    if (sm->fim && !sm->encoder) cJSON_AddItemToArray(caps, cJSON_CreateString("insert"));
    if (sm->encoder || sm->pooling || rq->srv->embeddings)
        cJSON_AddItemToArray(caps, cJSON_CreateString("embedding"));
    if (hearth_template_renders_tools(sm->chat_template))
        cJSON_AddItemToArray(caps, cJSON_CreateString("tools"));
    if (hearth_template_has_thinking(sm->chat_template))
        cJSON_AddItemToArray(caps, cJSON_CreateString("thinking"));
    serve_iso_time(buf, sizeof buf, (time_t)sm->mtime, 0);
    cJSON_AddStringToObject(o, "modified_at", buf);
    return serve_reply_json(rq, 200, o);
}

/* ------------------------------------------------------------ OpenAI */

static cJSON *model_object(const serve_model *sm) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", sm->name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)sm->mtime);
    cJSON_AddStringToObject(m, "owned_by", "hearth");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddNumberToObject(meta, "n_ctx", ctx_of(sm));
    cJSON_AddNumberToObject(meta, "n_ctx_train", sm->hp.n_ctx_train);
    cJSON_AddNumberToObject(meta, "n_vocab", sm->hp.n_vocab);
    cJSON_AddNumberToObject(meta, "n_params", (double)sm->n_params);
    cJSON_AddNumberToObject(meta, "size", (double)sm->file_size);
    cJSON_AddBoolToObject(meta, "loaded", sm->state == SM_LOADED);
    return m;
}

static void add_model_object(void *ctx, const serve_model *sm) {
    cJSON_AddItemToArray(ctx, model_object(sm));
}

int route_openai_models(serve_req *rq) {
    serve_models_rescan(rq->srv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    serve_models_each(rq->srv, false, add_model_object, cJSON_AddArrayToObject(o, "data"));
    return serve_reply_json(rq, 200, o);
}

/* GET /v1/models/{id}: the model when the id names one, else a 404. */
int route_openai_model(serve_req *rq, const char *id) {
    serve_model *sm = serve_models_find(rq->srv, id);
    if (!sm) return serve_reply_error(rq, 404, "not_found_error", "model '%.200s' not found", id);
    pthread_mutex_lock(&rq->srv->models_mu); /* state and n_ctx */
    cJSON *o = model_object(sm);
    pthread_mutex_unlock(&rq->srv->models_mu);
    return serve_reply_json(rq, 200, o);
}

/* ------------------------------------------------------------ copy, delete */

int route_ollama_copy(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    sj_err e = {0};
    const char *from = NULL, *to = NULL;
    int rc;
    if (!sj_string(body, "source", &from, &e) || !sj_string(body, "destination", &to, &e) || !from || !to) {
        rc = serve_reply_error(rq, 400, NULL, "%s",
                               e.msg[0] ? e.msg : "'source' and 'destination' are required");
    } else {
        char err[1024];
        int st = serve_models_copy(rq->srv, from, to, err, sizeof err);
        rc = st ? serve_reply_error(rq, st, NULL, "%s", err)
                : serve_reply_text(rq, 200, "application/json", "", 0);
    }
    cJSON_Delete(body);
    return rc;
}

int route_ollama_delete(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    const char *model;
    int rc = MHD_YES;
    if (model_field(rq, body, &model)) {
        char err[1024];
        int st = serve_models_delete(rq->srv, model, err, sizeof err);
        rc = st ? serve_reply_error(rq, st, NULL, "%s", err)
                : serve_reply_text(rq, 200, "application/json", "", 0);
    }
    cJSON_Delete(body);
    return rc;
}

/* ------------------------------------------------------------ pull */

typedef struct pull_job {
    serve_req *rq;
    pid_t pid;
    int fd;      /* the child's stdout, -1 at EOF */
    strbuf line; /* a partial line from the child */
    strbuf out;  /* NDJSON not yet sent */
    size_t out_off;
    bool ended; /* the final line (success or error) is queued */
    bool ok;    /* the child reported success */
    char error[1024];
} pull_job;

static void job_line(pull_job *j, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        strbuf_adds(&j->out, s);
        strbuf_add(&j->out, "\n", 1);
    }
    free(s);
    cJSON_Delete(o);
}

static void job_status(pull_job *j, const char *status) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    job_line(j, o);
}

/* One event of `hearth pull --json` into Ollama's shape. */
static void job_event(pull_job *j, const char *text) {
    cJSON *ev = cJSON_Parse(text);
    if (!ev) return;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(ev, "status");
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(ev, "error");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(ev, "file");
    const char *f = cJSON_IsString(file) ? file->valuestring : "";
    if (cJSON_IsString(er)) {
        snprintf(j->error, sizeof j->error, "%s", er->valuestring);
    } else if (cJSON_IsString(st) &&
               (!strcmp(st->valuestring, "downloading") || !strcmp(st->valuestring, "resuming"))) {
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(ev, "total");
        const cJSON *done = cJSON_GetObjectItemCaseSensitive(ev, "completed");
        if (!cJSON_IsNumber(done)) done = cJSON_GetObjectItemCaseSensitive(ev, "from");
        cJSON *o = cJSON_CreateObject();
        char s[600];
        snprintf(s, sizeof s, "pulling %s", f);
        cJSON_AddStringToObject(o, "status", s);
        cJSON_AddStringToObject(o, "digest", f);
        if (cJSON_IsNumber(total) && total->valuedouble > 0)
            cJSON_AddNumberToObject(o, "total", total->valuedouble);
        if (cJSON_IsNumber(done)) cJSON_AddNumberToObject(o, "completed", done->valuedouble);
        job_line(j, o);
    } else if (cJSON_IsString(st) && !strcmp(st->valuestring, "verifying")) {
        job_status(j, "verifying sha256 digest");
    } else if (cJSON_IsString(st) && !strcmp(st->valuestring, "success")) {
        j->ok = true;
    }
    cJSON_Delete(ev);
}

/* Read what the child wrote (waiting up to wait_ms); false at EOF. */
static bool job_read(pull_job *j, int wait_ms) {
    if (j->fd < 0) return false;
    struct pollfd p = {.fd = j->fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0) return true;
    char buf[4096];
    ssize_t n = read(j->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
        close(j->fd);
        j->fd = -1;
        return false;
    }
    strbuf_add(&j->line, buf, (size_t)n);
    char *start = j->line.p, *nl;
    while ((nl = memchr(start, '\n', j->line.n - (size_t)(start - j->line.p)))) {
        *nl = 0;
        job_event(j, start);
        start = nl + 1;
    }
    size_t rest = j->line.n - (size_t)(start - j->line.p);
    memmove(j->line.p, start, rest);
    j->line.n = rest;
    return true;
}

/* The child has closed its stdout: reap it and queue the last lines. */
static void job_finish(pull_job *j) {
    int status = 0;
    while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR) {
    }
    j->pid = 0;
    bool ok = j->ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        serve_models_rescan(j->rq->srv);
        job_status(j, "writing manifest");
        job_status(j, "success");
    } else {
        if (!j->error[0]) snprintf(j->error, sizeof j->error, "the download failed (see the server's log)");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", j->error);
        job_line(j, o);
    }
    j->ok = ok;
    j->ended = true;
}

static void job_free(void *cls) {
    pull_job *j = cls;
    if (j->pid > 0) { /* the client left: stop the download (its .part stays for a resume) */
        kill(j->pid, SIGTERM);
        while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    if (j->fd >= 0) close(j->fd);
    strbuf_free(&j->line);
    strbuf_free(&j->out);
    free(j);
}

static ssize_t job_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    pull_job *j = cls;
    while (j->out_off >= j->out.n) {
        j->out.n = 0;
        j->out_off = 0;
        if (j->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!job_read(j, 100)) {
            job_finish(j);
        } else if (!j->out.n && serve_client_gone(j->rq)) {
            j->rq->status = 499;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = j->out.n - j->out_off;
    if (n > max) n = max;
    memcpy(buf, j->out.p + j->out_off, n);
    j->out_off += n;
    return (ssize_t)n;
}

/* Start `hearth pull --json NAME` with its stdout on a pipe. */
static pull_job *job_start(serve_req *rq, const char *name, char *err, size_t cap) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        snprintf(err, cap, "cannot start the download: %s", strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    char *argv[] = {"hearth", "pull", "--json", (char *)name, NULL};
    pid_t pid;
    int e = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (e) {
        close(pfd[0]);
        snprintf(err, cap, "cannot start the download: %s", strerror(e));
        return NULL;
    }
    pull_job *j = calloc(1, sizeof *j);
    if (!j) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        close(pfd[0]);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    j->rq = rq;
    j->pid = pid;
    j->fd = pfd[0];
    return j;
}

int route_ollama_pull(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    const char *model;
    bool stream = true, insecure = false;
    sj_err e = {0};
    int rc = MHD_YES;
    if (!model_field(rq, body, &model)) goto done;
    if (!sj_bool(body, "stream", &stream, &e) || !sj_bool(body, "insecure", &insecure, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    if (insecure) {
        rc = serve_reply_error(rq, 400, NULL,
                               "'insecure' is not supported: Hearth checks TLS certificates always");
        goto done;
    }
    if (model[0] == '-') {
        rc =
            serve_reply_error(rq, 400, NULL, "'model' must be a model name, hf.co/ORG/REPO[:QUANT] or a URL");
        goto done;
    }
    char err[1024];
    pull_job *j = job_start(rq, model, err, sizeof err);
    if (!j) {
        rc = serve_reply_error(rq, 500, NULL, "%s", err);
        goto done;
    }
    job_status(j, "pulling manifest");
    if (stream) {
        rc = serve_reply_reader(rq, "application/x-ndjson", job_reader, j, job_free);
        goto done;
    }
    double deadline = hearth_now_ms() + 6 * 3600 * 1000.0; /* bounded; the child stops on stalls itself */
    while (job_read(j, 200)) {
        if (serve_client_gone(rq) || hearth_now_ms() > deadline) {
            rq->status = 499;
            job_free(j);
            rc = MHD_NO;
            goto done;
        }
    }
    job_finish(j);
    if (j->ok) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "success");
        rc = serve_reply_json(rq, 200, o);
    } else {
        rc = serve_reply_error(rq, 500, NULL, "%s", j->error);
    }
    job_free(j);
done:
    cJSON_Delete(body);
    return rc;
}
