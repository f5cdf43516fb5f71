/*
 * serve_ollama.c - the Ollama-compatible routes: POST /api/chat and
 * /api/generate (NDJSON stream by default, or one object; an empty one
 * loads the model, or with keep_alive 0 unloads it), GET /api/version.
 * The model routes (/api/tags, /api/show, /api/ps, /api/pull, ...) are in
 * serve_model_routes.c.
 *
 * Owner: the serve subsystem.
 * Invariants: errors are {"error":"text"} (the ollama client prints an
 * object there as "[object Object]"); the last line of a generation has
 * done:true, done_reason and the counts and durations in nanoseconds.
 * Editors: Zed / codecompanion list /api/tags and read /api/show
 * capabilities; VS Code wants /api/version >= 0.6.4 and
 * model_info["<arch>.context_length"]. Every options key is one Hearth acts
 * on or a 400 naming it; options.num_ctx above the server's context is cut
 * to it (editors send fixed ones); tests/e2e/editors.mjs replays the
 * editors' own request shapes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "app/cli/common.h"
#include "core/os.h"
#include "runtime/template/chat_template.h"
#include "serve.h"

#define OLLAMA_VERSION "0.6.4"

enum { OL_CHAT = 1 };

static void add_now(cJSON *o) {
    double now = hearth_wall_seconds();
    time_t sec = (time_t)now;
    long nsec = (long)((now - (double)sec) * 1e9);
    char buf[64];
    serve_iso_time(buf, sizeof buf, sec, nsec > 999999999L ? 999999999L : nsec);
    cJSON_AddStringToObject(o, "created_at", buf);
}

/* A generation line of `model`: the text so far (chat: in message, generate: in response). */
static cJSON *line_head_of(serve_req *rq, const char *model, const char *text, size_t n) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    add_now(o);
    cJSON *t = cJSON_CreateString("");
    if (n) {
        char *s = strndup(text, n);
        if (s) cJSON_SetValuestring(t, s);
        free(s);
    }
    if (rq->flags & OL_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddItemToObject(m, "content", t);
    } else {
        cJSON_AddItemToObject(o, "response", t);
    }
    return o;
}

static cJSON *line_head(serve_req *rq, const char *text, size_t n) {
    cJSON *o = line_head_of(rq, rq->sm->name, text, n);
    serve_logprobs_attach(rq, o, "logprobs", false); /* the tokens delivered since the last line */
    return o;
}

static void add_final_fields(serve_req *rq, cJSON *o) {
    serve_gen *g = rq->gen;
    const hearth_request_stats *st = &g->stats;
    cJSON_AddStringToObject(o, "done_reason", serve_gen_finish_reason(g));
    cJSON_AddBoolToObject(o, "done", true);
    double total_ms = hearth_now_ms() - rq->t_start_ms;
    double load_ms = g->t_submit_ms - rq->t_start_ms; /* parsing, templating, tokenizing */
    cJSON_AddNumberToObject(o, "total_duration", (double)(int64_t)(total_ms * 1e6));
    cJSON_AddNumberToObject(o, "load_duration", (double)(int64_t)(load_ms * 1e6));
    cJSON_AddNumberToObject(o, "prompt_eval_count", st->prompt_tokens);
    cJSON_AddNumberToObject(o, "prompt_eval_duration",
                            (double)(int64_t)((st->queue_ms + st->prompt_ms) * 1e6));
    cJSON_AddNumberToObject(o, "eval_count", st->generated_tokens);
    cJSON_AddNumberToObject(o, "eval_duration", (double)(int64_t)(st->gen_ms * 1e6));
}

static void ndjson(strbuf *out, cJSON *o) {
    serve_add_json(out, o);
    strbuf_adds(out, "\n");
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------- tool calls and thinking */

typedef struct ol_sink {
    serve_req *rq;
    strbuf *out; /* streaming: NDJSON lines */
    strbuf content, thinking;
    cJSON *calls; /* message.tool_calls */
} ol_sink;

static cJSON *ol_call(const hearth_out_event *ev) {
    cJSON *c = cJSON_CreateObject();
    cJSON *f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddNumberToObject(f, "index", ev->index);
    cJSON_AddStringToObject(f, "name", ev->name);
    cJSON *a = cJSON_Parse(ev->arguments); /* Ollama: an object, not JSON text */
    cJSON_AddItemToObject(f, "arguments", a ? a : cJSON_CreateObject());
    return c;
}

static void ol_event(void *user, const hearth_out_event *ev) {
    ol_sink *k = user;
    if (ev->kind == HEARTH_OUT_TOOL_CALL && !k->rq->tools.parallel && ev->index > 0) return;
    if (!k->out) {
        if (ev->kind == HEARTH_OUT_CONTENT) strbuf_add(&k->content, ev->text, ev->len);
        if (ev->kind == HEARTH_OUT_REASONING) strbuf_add(&k->thinking, ev->text, ev->len);
        if (ev->kind == HEARTH_OUT_TOOL_CALL) cJSON_AddItemToArray(k->calls, ol_call(ev));
        return;
    }
    cJSON *o = line_head(k->rq, ev->kind == HEARTH_OUT_CONTENT ? ev->text : "",
                         ev->kind == HEARTH_OUT_CONTENT ? ev->len : 0);
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (ev->kind == HEARTH_OUT_REASONING) {
        char *t = strndup(ev->text, ev->len);
        cJSON_AddStringToObject(m, "thinking", t ? t : "");
        free(t);
    }
    if (ev->kind == HEARTH_OUT_TOOL_CALL)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(m, "tool_calls"), ol_call(ev));
    cJSON_AddBoolToObject(o, "done", false);
    ndjson(k->out, o);
}

static void ollama_stream(serve_req *rq, const char *text, size_t n, bool done, strbuf *out) {
    if (rq->outp) {
        ol_sink k = {.rq = rq, .out = out};
        hearth_error err = {0};
        if (n) hearth_out_parser_feed(rq->outp, text, n, ol_event, &k, &err);
        if (done) hearth_out_parser_finish(rq->outp, ol_event, &k, &err);
        n = 0;
    }
    if (n) {
        cJSON *o = line_head(rq, text, n);
        cJSON_AddBoolToObject(o, "done", false);
        ndjson(out, o);
    }
    if (!done) return;
    if (rq->gen->finish == HEARTH_FINISH_ERROR) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", rq->gen->error);
        ndjson(out, o);
        return;
    }
    cJSON *o = line_head(rq, "", 0);
    add_final_fields(rq, o);
    ndjson(out, o);
}

static bool parse_options(const cJSON *body, hearth_sampling_params *sp, int *num_predict, int *num_ctx,
                          const char **stops, int *n_stop, sj_err *e) {
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(body, "options");
    if (!opt || cJSON_IsNull(opt)) return true;
    if (!cJSON_IsObject(opt)) {
        snprintf(e->msg, sizeof e->msg, "'options' must be an object");
        return false;
    }
    /* Every key must be one Hearth acts on: a 400 names the others, never a
     * silent ignore. "think" is where litellm (aider's ollama_chat/) puts it;
     * ollama_generate moves it to the body before this runs. */
    static const char *const known[] = {
        "temperature",       "top_p",          "top_k",         "min_p",   "presence_penalty",
        "frequency_penalty", "repeat_penalty", "repeat_last_n", "seed",    "num_predict",
        "num_ctx",           "stop",           "think",         "mirostat"};
    const cJSON *it;
    cJSON_ArrayForEach(it, opt) {
        bool ok = cJSON_IsNull(it);
        for (size_t i = 0; !ok && i < sizeof known / sizeof known[0]; i++)
            ok = !strcmp(it->string, known[i]);
        if (!ok) {
            snprintf(e->msg, sizeof e->msg,
                     "options.%.60s is not supported by Hearth; remove it (threads, GPU layers and memory "
                     "mapping are set when the server starts: see hearth serve --help)",
                     it->string);
            return false;
        }
    }
    return serve_parse_sampling(opt, sp, e) && sj_int(opt, "num_predict", -2, 1 << 30, num_predict, e) &&
           sj_int(opt, "num_ctx", 1, 1 << 30, num_ctx, e) &&
           sj_stop(opt, "stop", stops, SJ_MAX_STOP, n_stop, e);
}

/* options.num_ctx: a request's own context, cut to the engine's (as Ollama
 * cuts it to the model's trained length: editors send a fixed one, Zed 4096
 * or more from a table of model names, Cline 32768, whatever the server
 * runs). The prompt must fit in it and the answer stops when it is full. */
static bool apply_num_ctx(const serve_model *sm, int num_ctx, int n_prompt, int *num_predict, sj_err *e) {
    if (num_ctx <= 0) return true;
    if (num_ctx > sm->n_ctx) num_ctx = sm->n_ctx;
    if (n_prompt >= num_ctx) {
        snprintf(e->msg, sizeof e->msg, "the prompt has %d tokens but options.num_ctx is %d", n_prompt,
                 num_ctx);
        return false;
    }
    const int room = num_ctx - n_prompt;
    if (*num_predict < 0 || *num_predict > room) *num_predict = room;
    return true;
}

/* litellm (aider's ollama_chat/ models) sends reasoning as options.think:
 * the same as a top-level "think", which wins when both are given. */
static bool think_from_options(cJSON *body, bool chat, sj_err *e) {
    cJSON *opt = cJSON_GetObjectItemCaseSensitive(body, "options");
    cJSON *t = cJSON_IsObject(opt) ? cJSON_GetObjectItemCaseSensitive(opt, "think") : NULL;
    if (!t || cJSON_IsNull(t)) return true;
    if (!chat) {
        snprintf(e->msg, sizeof e->msg, "'options.think' is supported on /api/chat only");
        return false;
    }
    if (!cJSON_IsBool(t)) {
        snprintf(e->msg, sizeof e->msg, "'options.think' must be true or false");
        return false;
    }
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(body, "think");
    if (!top || cJSON_IsNull(top)) {
        cJSON_DeleteItemFromObjectCaseSensitive(body, "think");
        cJSON_AddBoolToObject(body, "think", cJSON_IsTrue(t));
    }
    return true;
}

/* Images (Continue sends a pasted one as messages[].images, /api/generate
 * takes a top-level one): Hearth serves text models only, so a 400 that
 * says so, never a silent drop. /api/show lists no "vision" capability. */
static bool no_images(const cJSON *body, bool chat, sj_err *e) {
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(body, "images");
    if (cJSON_GetArraySize(im) > 0) {
        snprintf(e->msg, sizeof e->msg, "'images' is not supported: Hearth serves text models only");
        return false;
    }
    const cJSON *msgs = chat ? cJSON_GetObjectItemCaseSensitive(body, "messages") : NULL;
    if (!cJSON_IsArray(msgs)) return true;
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "images")) > 0) {
            snprintf(e->msg, sizeof e->msg,
                     "'messages[%d].images' is not supported: Hearth serves text models only", i);
            return false;
        }
        i++;
    }
    return true;
}

static int ollama_generate(serve_req *rq, bool chat) {
    serve_ctx *srv = rq->srv;
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    int rc = MHD_YES;
    sj_err e = {0};
    const char *model = NULL, *prompt = NULL, *system = NULL;
    bool stream = true, raw = false;
    int num_predict = -1, num_ctx = 0, top_lp = 0;
    const char *stops[SJ_MAX_STOP];
    int n_stop = 0;
    hearth_sampling_params sp = serve_sampling_defaults(srv);
    hearth_tokens ids = {0};
    serve_msg *msgs = NULL;
    int n_msgs = 0;
    char *text = NULL;
    strbuf out = {0};
    rq->flags = chat ? OL_CHAT : 0;

    double keep_alive = NAN; /* seconds idle before unloading (serve_models.c); NAN: the default */
    if (!sj_string(body, "model", &model, &e) || !sj_bool(body, "stream", &stream, &e) ||
        !sj_duration(body, "keep_alive", &keep_alive, &e) ||
        !serve_logprobs_parse(body, SERVE_API_OLLAMA, chat, &rq->want_lp, &top_lp, &e) ||
        !think_from_options(body, chat, &e) || !no_images(body, chat, &e) ||
        !parse_options(body, &sp, &num_predict, &num_ctx, stops, &n_stop, &e))
        goto bad;
    if (!model || !model[0]) {
        snprintf(e.msg, sizeof e.msg, "'model' is required");
        goto bad;
    }
    rq->keep_alive_s = keep_alive;
    if (!chat) {
        const cJSON *sfx = cJSON_GetObjectItemCaseSensitive(body, "suffix");
        if (cJSON_IsString(sfx) && sfx->valuestring[0]) {
            snprintf(e.msg, sizeof e.msg,
                     "'suffix' (fill in the middle) is not supported on /api/generate; use POST /infill "
                     "with input_prefix and input_suffix");
            goto bad;
        }
    }
    if (chat) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "messages");
        if (m && !cJSON_IsNull(m) && !serve_messages_parse(m, &msgs, &n_msgs, &e)) goto bad;
    } else {
        if (!sj_string(body, "prompt", &prompt, &e) || !sj_string(body, "system", &system, &e) ||
            !sj_bool(body, "raw", &raw, &e))
            goto bad;
    }
    if ((chat && n_msgs == 0) || (!chat && (!prompt || !prompt[0]))) {
        /* an empty request loads the model, or with keep_alive 0 unloads it */
        bool unload = keep_alive == 0;
        serve_model *sm = unload ? serve_models_find(srv, model) : serve_req_model(rq, model);
        if (!sm) {
            if (unload) rc = serve_reply_error(rq, 404, NULL, "model '%s' not found", model);
            goto done;
        }
        if (unload) serve_models_unload(sm);
        cJSON *o = line_head_of(rq, sm->name, "", 0);
        cJSON_AddStringToObject(o, "done_reason", unload ? "unload" : "load");
        cJSON_AddBoolToObject(o, "done", true);
        rc = serve_reply_json(rq, 200, o);
        goto done;
    }
    serve_model *sm = serve_req_model(rq, model);
    if (!sm) goto done;
    if (!chat && !raw) {
        serve_msg two[2] = {{"system", (char *)system}, {"user", (char *)prompt}};
        text = serve_chat_render(sm, system ? two : two + 1, system ? 2 : 1, &e);
        if (!text) goto bad;
    } else if (chat) {
        if (!serve_tools_parse(body, &rq->tools, &e)) goto bad;
        text = serve_chat_render_full(sm, cJSON_GetObjectItemCaseSensitive(body, "messages"), &rq->tools, &e);
        if (!text) goto bad;
        rq->outp = serve_out_parser_new(sm, &rq->tools, text);
        if (!rq->outp) {
            rc = serve_reply_error(rq, 500, NULL, "out of memory");
            goto done;
        }
    }
    hearth_error err = {0};
    const char *src = text ? text : prompt;
    if (!serve_tokenize(sm, src, strlen(src), true, &ids, &err)) {
        rc = serve_reply_error(rq, 500, NULL, "%s", err.msg);
        goto done;
    }
    if (!apply_num_ctx(sm, num_ctx, (int)ids.n, &num_predict, &e)) goto bad;
    hearth_grammar *grammar = NULL; /* structured output (serve_grammar.c) */
    if (!serve_grammar_from_body(body, &grammar, &e)) goto bad;
    if (!serve_tools_grammar(sm, &rq->tools, cJSON_GetObjectItemCaseSensitive(body, "tools"), &grammar, &e)) {
        hearth_grammar_release(grammar);
        goto bad;
    }
    serve_gen_params gp = {.prompt = ids.ids,
                           .n_prompt = (int)ids.n,
                           .sampling = sp,
                           .max_tokens = num_predict == 0 ? 1 : num_predict,
                           .stop = stops,
                           .n_stop = n_stop,
                           .logprobs = rq->want_lp,
                           .top_logprobs = top_lp};
    gp.grammar = grammar;
    bool started = serve_start_or_reply(rq, &gp);
    hearth_grammar_release(grammar); /* the engine holds its own reference */
    if (!started) goto done;
    if (stream) {
        rc = serve_reply_stream(rq, "application/x-ndjson", ollama_stream);
        goto done;
    }
    if (!serve_wait_done(rq, &out)) {
        rc = MHD_NO;
        goto done;
    }
    if (rq->gen->finish == HEARTH_FINISH_ERROR) {
        rc = serve_reply_error(rq, 500, NULL, "%s", rq->gen->error);
        goto done;
    }
    cJSON *o;
    if (rq->outp) {
        ol_sink k = {.rq = rq, .calls = cJSON_CreateArray()};
        hearth_error err = {0};
        hearth_out_parser_feed(rq->outp, out.p ? out.p : "", out.n, ol_event, &k, &err);
        hearth_out_parser_finish(rq->outp, ol_event, &k, &err);
        o = line_head(rq, k.content.p ? k.content.p : "", k.content.n);
        cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
        if (k.thinking.n) cJSON_AddStringToObject(m, "thinking", k.thinking.p);
        if (cJSON_GetArraySize(k.calls))
            cJSON_AddItemToObject(m, "tool_calls", k.calls);
        else
            cJSON_Delete(k.calls);
        strbuf_free(&k.content);
        strbuf_free(&k.thinking);
    } else
        o = line_head(rq, out.p ? out.p : "", out.n);
    add_final_fields(rq, o);
    rc = serve_reply_json(rq, 200, o);
    goto done;
bad:
    rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
done:
    strbuf_free(&out);
    free(text);
    serve_messages_free(msgs, n_msgs);
    hearth_tokens_free(&ids);
    cJSON_Delete(body);
    return rc;
}

int route_ollama_chat(serve_req *rq) {
    return ollama_generate(rq, true);
}
int route_ollama_generate(serve_req *rq) {
    return ollama_generate(rq, false);
}

int route_ollama_version(serve_req *rq) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", OLLAMA_VERSION);
    return serve_reply_json(rq, 200, o);
}
