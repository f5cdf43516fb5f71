/*
 * serve_openai.c - the OpenAI-compatible routes: POST /v1/chat/completions,
 * POST /v1/completions (streamed as SSE or whole); plus the sampling-field
 * parser the llama.cpp-style routes share. /v1/models: serve_model_routes.c.
 *
 * Owner: the serve subsystem.
 * Invariants: errors use {"error":{"message","type","code"}}; a stream always
 * ends with a chunk carrying finish_reason, the usage chunk when
 * stream_options.include_usage was set, and "data: [DONE]"; n > 1 is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "serve.h"

enum { OA_CHAT = 1 };

static void add_usage(cJSON *o, const serve_gen *g) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", g->stats.prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", g->stats.generated_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", g->stats.prompt_tokens + g->stats.generated_tokens);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", g->stats.cached_tokens);
}

static cJSON *chunk_head(serve_req *rq, bool chat) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", rq->id);
    cJSON_AddStringToObject(o, "object", chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)rq->created);
    cJSON_AddStringToObject(o, "model", rq->sm->name);
    cJSON_AddStringToObject(o, "system_fingerprint", "hearth-" HEARTH_VERSION);
    return o;
}

static void sse_json(strbuf *out, cJSON *o) {
    strbuf_adds(out, "data: ");
    serve_add_json(out, o);
    strbuf_adds(out, "\n\n");
    cJSON_Delete(o);
}

/* One chunk: text (may be empty) and, when finish is set, the finish reason. */
static void add_chunk(serve_req *rq, const char *text, size_t n, const char *finish, strbuf *out) {
    bool chat = rq->flags & OA_CHAT;
    cJSON *o = chunk_head(rq, chat);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *t = cJSON_CreateString("");
    if (n) {
        char *s = strndup(text, n);
        if (s) cJSON_SetValuestring(t, s);
        free(s);
    }
    if (chat) {
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        if (!rq->sent_first) cJSON_AddStringToObject(delta, "role", "assistant");
        if (n || !finish)
            cJSON_AddItemToObject(delta, "content", t);
        else
            cJSON_Delete(t);
    } else {
        cJSON_AddItemToObject(c, "text", t);
    }
    serve_logprobs_attach(rq, c, "logprobs", true);
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    if (rq->include_usage) cJSON_AddNullToObject(o, "usage");
    rq->sent_first = true;
    sse_json(out, o);
}

/* ---------------------------------------------------------------- tool calls and reasoning */

/* A chunk whose delta is built by the caller (reasoning_content, tool_calls). */
static cJSON *delta_chunk(serve_req *rq, cJSON **delta) {
    cJSON *o = chunk_head(rq, true);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    *delta = cJSON_AddObjectToObject(c, "delta");
    if (!rq->sent_first) cJSON_AddStringToObject(*delta, "role", "assistant");
    serve_logprobs_attach(rq, c, "logprobs", true);
    cJSON_AddNullToObject(c, "finish_reason");
    if (rq->include_usage) cJSON_AddNullToObject(o, "usage");
    rq->sent_first = true;
    return o;
}

static void call_id(const serve_req *rq, int index, char *buf, size_t n) {
    snprintf(buf, n, "call_%s_%d", rq->id + (strncmp(rq->id, "chatcmpl-", 9) ? 0 : 9), index);
}

/* Whether a parsed call is kept (parallel_tool_calls false keeps the first). */
static bool keep_call(serve_req *rq, const hearth_out_event *ev) {
    if (!rq->tools.parallel && ev->index > 0) return false;
    if (rq->tools.choice == SERVE_TOOLS_NAMED && !strcmp(ev->name, rq->tools.named)) rq->named_ok = true;
    return true;
}

typedef struct oa_sink {
    serve_req *rq;
    strbuf *out; /* streaming: SSE text */
    strbuf content, reasoning;
    cJSON *calls; /* whole reply: message.tool_calls */
} oa_sink;

static void oa_event(void *user, const hearth_out_event *ev) {
    oa_sink *k = user;
    serve_req *rq = k->rq;
    if (ev->kind == HEARTH_OUT_TOOL_CALL && !keep_call(rq, ev)) return;
    if (!k->out) { /* collecting a whole reply */
        if (ev->kind == HEARTH_OUT_CONTENT) strbuf_add(&k->content, ev->text, ev->len);
        if (ev->kind == HEARTH_OUT_REASONING) strbuf_add(&k->reasoning, ev->text, ev->len);
        if (ev->kind == HEARTH_OUT_TOOL_CALL) {
            char id[96];
            call_id(rq, ev->index, id, sizeof id);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", id);
            cJSON_AddStringToObject(c, "type", "function");
            cJSON *f = cJSON_AddObjectToObject(c, "function");
            cJSON_AddStringToObject(f, "name", ev->name);
            cJSON_AddStringToObject(f, "arguments", ev->arguments);
            cJSON_AddItemToArray(k->calls, c);
        }
        return;
    }
    if (ev->kind == HEARTH_OUT_CONTENT) {
        add_chunk(rq, ev->text, ev->len, NULL, k->out);
        return;
    }
    cJSON *delta;
    cJSON *o = delta_chunk(rq, &delta);
    if (ev->kind == HEARTH_OUT_REASONING) {
        char *s = strndup(ev->text, ev->len);
        cJSON_AddStringToObject(delta, "reasoning_content", s ? s : "");
        free(s);
        sse_json(k->out, o);
        return;
    }
    /* as OpenAI streams a call: id, type and name with empty arguments, then argument fragments */
    char id[96];
    call_id(rq, ev->index, id, sizeof id);
    cJSON *tc = cJSON_AddArrayToObject(delta, "tool_calls");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(tc, c);
    cJSON_AddNumberToObject(c, "index", ev->index);
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(f, "name", ev->name);
    cJSON_AddStringToObject(f, "arguments", "");
    sse_json(k->out, o);
    o = delta_chunk(rq, &delta);
    tc = cJSON_AddArrayToObject(delta, "tool_calls");
    c = cJSON_CreateObject();
    cJSON_AddItemToArray(tc, c);
    cJSON_AddNumberToObject(c, "index", ev->index);
    f = cJSON_AddObjectToObject(c, "function");
    cJSON_AddStringToObject(f, "arguments", ev->arguments);
    sse_json(k->out, o);
}

static int kept_calls(const serve_req *rq) {
    int n = hearth_out_parser_n_calls(rq->outp);
    return !rq->tools.parallel && n > 1 ? 1 : n;
}

static const char *chat_finish_reason(serve_req *rq) {
    const char *f = serve_gen_finish_reason(rq->gen);
    if (rq->outp && kept_calls(rq) > 0 && strcmp(f, "length")) return "tool_calls";
    return f;
}

static void stream_error(strbuf *out, const char *msg, int code) {
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", "server_error");
    cJSON_AddNumberToObject(e, "code", code);
    sse_json(out, o);
}

static void openai_stream(serve_req *rq, const char *text, size_t n, bool done, strbuf *out) {
    if (rq->outp) {
        oa_sink k = {.rq = rq, .out = out};
        hearth_error err = {0};
        if (n) hearth_out_parser_feed(rq->outp, text, n, oa_event, &k, &err);
        if (done) hearth_out_parser_finish(rq->outp, oa_event, &k, &err);
        const char *why = done && rq->gen->finish != HEARTH_FINISH_ERROR
                              ? serve_tools_check(&rq->tools, kept_calls(rq), rq->named_ok)
                              : NULL;
        if (why) {
            stream_error(out, why, 500);
            strbuf_adds(out, "data: [DONE]\n\n");
            return;
        }
    } else if (n)
        add_chunk(rq, text, n, NULL, out);
    if (!done) return;
    serve_gen *g = rq->gen;
    if (g->finish == HEARTH_FINISH_ERROR) {
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", g->error);
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNumberToObject(e, "code", 500);
        sse_json(out, o);
    } else {
        add_chunk(rq, "", 0, chat_finish_reason(rq), out);
        if (rq->include_usage) {
            cJSON *o = chunk_head(rq, rq->flags & OA_CHAT);
            cJSON_AddArrayToObject(o, "choices");
            add_usage(o, g);
            sse_json(out, o);
        }
    }
    strbuf_adds(out, "data: [DONE]\n\n");
}

/* choices[0].message of a whole chat reply: content, reasoning_content,
 * tool_calls; the tool_choice error message, or NULL. */
static const char *chat_message(serve_req *rq, cJSON *c, const strbuf *out) {
    oa_sink k = {.rq = rq, .calls = cJSON_CreateArray()};
    hearth_error err = {0};
    hearth_out_parser_feed(rq->outp, out->p ? out->p : "", out->n, oa_event, &k, &err);
    hearth_out_parser_finish(rq->outp, oa_event, &k, &err);
    const char *why = serve_tools_check(&rq->tools, kept_calls(rq), rq->named_ok);
    if (!why) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        if (k.content.n || !cJSON_GetArraySize(k.calls))
            cJSON_AddStringToObject(m, "content", k.content.p ? k.content.p : "");
        else
            cJSON_AddNullToObject(m, "content");
        if (k.reasoning.n) cJSON_AddStringToObject(m, "reasoning_content", k.reasoning.p);
        if (cJSON_GetArraySize(k.calls)) {
            cJSON_AddItemToObject(m, "tool_calls", k.calls);
            k.calls = NULL;
        }
    }
    cJSON_Delete(k.calls);
    strbuf_free(&k.content);
    strbuf_free(&k.reasoning);
    return why;
}

/* The prompt of /v1/completions: a string, an array of one string, or an array of token ids. */
static bool completion_prompt(serve_req *rq, const cJSON *p, hearth_tokens *ids, sj_err *e) {
    hearth_error err = {0};
    if (cJSON_IsString(p))
        return serve_tokenize(rq->sm, p->valuestring, strlen(p->valuestring), true, ids, &err);
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0))) {
        const char *s = cJSON_GetArrayItem(p, 0)->valuestring;
        return serve_tokenize(rq->sm, s, strlen(s), true, ids, &err);
    }
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 0) {
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, p) {
            if (!cJSON_IsNumber(it)) break;
            hearth_tokens_push(ids, (int32_t)it->valuedouble);
            i++;
        }
        if (i == cJSON_GetArraySize(p)) return true;
    }
    snprintf(e->msg, sizeof e->msg,
             "'prompt' must be a string, an array of one string, or an array of token ids (one prompt per "
             "request)");
    return false;
}

static int openai_generate(serve_req *rq, bool chat) {
    serve_ctx *srv = rq->srv;
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    int rc = MHD_YES;
    sj_err e = {0};
    const char *model = NULL;
    bool stream = false, include_usage = false, ignore_eos = false, spec = true;
    int n = 1, max_tokens = -1;
    const char *stops[SJ_MAX_STOP];
    int n_stop = 0;
    hearth_sampling_params sp = serve_sampling_defaults(srv);
    hearth_tokens ids = {0};
    serve_msg *msgs = NULL;
    int n_msgs = 0;
    char *text = NULL;
    strbuf out = {0};

    if (!sj_string(body, "model", &model, &e) || !sj_bool(body, "stream", &stream, &e) ||
        !sj_int(body, "n", 1, 128, &n, &e) || !sj_int(body, "max_tokens", -1, 1 << 30, &max_tokens, &e) ||
        !sj_int(body, "max_completion_tokens", -1, 1 << 30, &max_tokens, &e) ||
        !sj_stop(body, "stop", stops, SJ_MAX_STOP, &n_stop, &e) || !serve_parse_sampling(body, &sp, &e) ||
        !sj_bool(body, "ignore_eos", &ignore_eos, &e) || !sj_bool(body, "speculative", &spec, &e))
        goto bad;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            snprintf(e.msg, sizeof e.msg, "'stream_options' must be an object");
            goto bad;
        }
        if (!sj_bool(so, "include_usage", &include_usage, &e)) goto bad;
    }
    bool want_lp = false;
    int top_lp = 0;
    if (!serve_logprobs_parse(body, SERVE_API_OPENAI, chat, &want_lp, &top_lp, &e)) goto bad;
    rq->want_lp = want_lp;
    rq->lp_chat = chat;
    if (n != 1) {
        snprintf(e.msg, sizeof e.msg, "'n' is %d but this server returns one choice per request (n=1)", n);
        goto bad;
    }
    serve_model *sm = serve_req_model(rq, model);
    if (!sm) goto done;
    if (chat) {
        if (!serve_messages_parse(cJSON_GetObjectItemCaseSensitive(body, "messages"), &msgs, &n_msgs, &e))
            goto bad;
        if (!serve_tools_parse(body, &rq->tools, &e)) goto bad;
        text = serve_chat_render_full(sm, cJSON_GetObjectItemCaseSensitive(body, "messages"), &rq->tools, &e);
        if (!text) goto bad;
        rq->outp = serve_out_parser_new(sm, &rq->tools, text);
        if (!rq->outp) {
            rc = serve_reply_error(rq, 500, NULL, "out of memory");
            goto done;
        }
        hearth_error err = {0};
        if (!serve_tokenize(sm, text, strlen(text), true, &ids, &err)) {
            rc = serve_reply_error(rq, 500, NULL, "%s", err.msg);
            goto done;
        }
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (!p) {
            snprintf(e.msg, sizeof e.msg, "'prompt' is required");
            goto bad;
        }
        if (!completion_prompt(rq, p, &ids, &e)) goto bad;
    }
    hearth_grammar *grammar = NULL; /* structured output (serve_grammar.c) */
    if (!serve_grammar_from_body(body, &grammar, &e)) goto bad;
    if (!serve_tools_grammar(sm, &rq->tools, cJSON_GetObjectItemCaseSensitive(body, "tools"), &grammar, &e)) {
        hearth_grammar_release(grammar);
        goto bad;
    }
    serve_gen_params gp = {.prompt = ids.ids,
                           .n_prompt = (int)ids.n,
                           .sampling = sp,
                           .max_tokens = max_tokens,
                           .stop = stops,
                           .n_stop = n_stop,
                           .ignore_eog = ignore_eos,
                           .no_spec = !spec,
                           .logprobs = want_lp,
                           .top_logprobs = top_lp};
    if (max_tokens == 0) gp.max_tokens = 1; /* OpenAI treats 0 as "as few as possible" */
    gp.grammar = grammar;
    bool started = serve_start_or_reply(rq, &gp);
    hearth_grammar_release(grammar); /* the engine holds its own reference */
    if (!started) goto done;
    rq->flags = chat ? OA_CHAT : 0;
    rq->include_usage = include_usage;
    snprintf(rq->id, sizeof rq->id, "%s-%llx%04llx", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)rq->created, (unsigned long long)(atomic_fetch_add(&srv->seq, 1) & 0xffff));
    if (stream) {
        rc = serve_reply_stream(rq, "text/event-stream", openai_stream);
        goto done;
    }
    if (!serve_wait_done(rq, &out)) {
        rc = MHD_NO; /* the client is gone */
        goto done;
    }
    serve_gen *g = rq->gen;
    if (g->finish == HEARTH_FINISH_ERROR) {
        rc = serve_reply_error(rq, 500, NULL, "%s", g->error);
        goto done;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", rq->id);
    cJSON_AddStringToObject(o, "object", chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)rq->created);
    cJSON_AddStringToObject(o, "model", sm->name);
    cJSON_AddStringToObject(o, "system_fingerprint", "hearth-" HEARTH_VERSION);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        const char *why = chat_message(rq, c, &out);
        if (why) {
            cJSON_Delete(o);
            rc = serve_reply_error(rq, 500, NULL, "%s", why);
            goto done;
        }
    } else {
        cJSON_AddStringToObject(c, "text", out.p ? out.p : "");
    }
    serve_logprobs_attach(rq, c, "logprobs", true);
    cJSON_AddStringToObject(c, "finish_reason", chat ? chat_finish_reason(rq) : serve_gen_finish_reason(g));
    add_usage(o, g);
    rc = serve_reply_json(rq, 200, o);
    goto done;
bad:
    rc = serve_reply_error(rq, 400, "invalid_request_error", "%s", e.msg);
done:
    strbuf_free(&out);
    free(text);
    serve_messages_free(msgs, n_msgs);
    hearth_tokens_free(&ids);
    cJSON_Delete(body);
    return rc;
}

int route_openai_chat(serve_req *rq) {
    return openai_generate(rq, true);
}
int route_openai_completions(serve_req *rq) {
    return openai_generate(rq, false);
}
