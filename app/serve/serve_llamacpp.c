/*
 * serve_llama.c - the llama.cpp-server-style routes editors call:
 * POST /completion (Continue's llama.cpp provider; SSE events with
 * `content`), POST /infill (llama.vim / llama.vscode fill-in-the-middle,
 * n_predict 0 = warm the prefix cache), POST /tokenize, POST /detokenize,
 * GET /health, GET /metrics (Prometheus text), GET /props.
 *
 * Owner: the serve subsystem.
 * Invariants: errors use the OpenAI shape as llama.cpp's server does; /infill
 * on a model without FIM tokens completes prefix (and input_extra) as plain
 * text and ignores the suffix (documented in docs/API.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "app/cli/common.h"
#include "serve.h"

/* ---------------------------------------------------------------- /completion, /infill */

static void add_timings(cJSON *o, const serve_gen *g) {
    const hearth_request_stats *st = &g->stats;
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    int pn = st->prompt_tokens - st->cached_tokens;
    cJSON_AddNumberToObject(t, "prompt_n", pn);
    cJSON_AddNumberToObject(t, "prompt_ms", st->prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_per_token_ms", pn > 0 ? st->prompt_ms / pn : 0);
    cJSON_AddNumberToObject(t, "prompt_per_second", st->prompt_ms > 0 ? pn * 1000.0 / st->prompt_ms : 0);
    int gn = st->generated_tokens;
    cJSON_AddNumberToObject(t, "predicted_n", gn);
    cJSON_AddNumberToObject(t, "predicted_ms", st->gen_ms);
    cJSON_AddNumberToObject(t, "predicted_per_token_ms", gn > 1 ? st->gen_ms / (gn - 1) : 0);
    cJSON_AddNumberToObject(t, "predicted_per_second",
                            gn > 1 && st->gen_ms > 0 ? (gn - 1) * 1000.0 / st->gen_ms : 0);
}

static cJSON *final_object(serve_req *rq, const char *text, size_t n, int predicted) {
    serve_gen *g = rq->gen;
    cJSON *o = cJSON_CreateObject();
    cJSON *t = cJSON_CreateString("");
    if (n) {
        char *s = strndup(text, n);
        if (s) cJSON_SetValuestring(t, s);
        free(s);
    }
    cJSON_AddItemToObject(o, "content", t);
    cJSON_AddNumberToObject(o, "id_slot", 0);
    cJSON_AddBoolToObject(o, "stop", true);
    cJSON_AddStringToObject(o, "model", rq->sm->name);
    cJSON_AddNumberToObject(o, "tokens_predicted", predicted);
    cJSON_AddNumberToObject(o, "tokens_evaluated", g->stats.prompt_tokens);
    cJSON_AddNumberToObject(o, "tokens_cached", g->stats.cached_tokens);
    const char *why = serve_gen_finish_reason(g);
    cJSON_AddStringToObject(o, "stop_type", !strcmp(why, "length") ? "limit" : "eos");
    cJSON_AddBoolToObject(o, "truncated", false);
    serve_logprobs_attach(rq, o, "completion_probabilities", false); /* n_probs: what is left */
    add_timings(o, g);
    return o;
}

static void llama_stream(serve_req *rq, const char *text, size_t n, bool done, strbuf *out) {
    if (n) {
        cJSON *o = cJSON_CreateObject();
        char *s = strndup(text, n);
        cJSON_AddStringToObject(o, "content", s ? s : "");
        free(s);
        cJSON_AddBoolToObject(o, "stop", false);
        serve_logprobs_attach(rq, o, "completion_probabilities", false);
        strbuf_adds(out, "data: ");
        serve_add_json(out, o);
        strbuf_adds(out, "\n\n");
        cJSON_Delete(o);
    }
    if (!done) return;
    cJSON *o;
    if (rq->gen->finish == HEARTH_FINISH_ERROR) {
        o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", rq->gen->error);
        cJSON_AddStringToObject(e, "type", "server_error");
        cJSON_AddNumberToObject(e, "code", 500);
    } else {
        o = final_object(rq, "", 0, rq->flags ? 0 : rq->gen->stats.generated_tokens);
    }
    strbuf_adds(out, "data: ");
    serve_add_json(out, o);
    strbuf_adds(out, "\n\n");
    cJSON_Delete(o);
}

/* Submit ids and reply (stream or whole). warm_up: generate one token, report none. */
static int run_generation(serve_req *rq, hearth_tokens *ids, const cJSON *body, int n_predict, bool warm_up) {
    serve_ctx *srv = rq->srv;
    sj_err e = {0};
    bool stream = false, ignore_eos = false, spec = true;
    double t_max = 0;
    const char *stops[SJ_MAX_STOP];
    int n_stop = 0, top_lp = 0;
    hearth_sampling_params sp = serve_sampling_defaults(srv);
    if (!sj_bool(body, "stream", &stream, &e) || !sj_bool(body, "ignore_eos", &ignore_eos, &e) ||
        !sj_stop(body, "stop", stops, SJ_MAX_STOP, &n_stop, &e) || !serve_parse_sampling(body, &sp, &e) ||
        !sj_number(body, "t_max_predict_ms", 0, 1e9, &t_max, &e) ||
        !sj_bool(body, "speculative", &spec, &e) ||
        !serve_logprobs_parse(body, SERVE_API_LLAMA, false, &rq->want_lp, &top_lp, &e))
        return serve_reply_error(rq, 400, NULL, "%s", e.msg);
    hearth_grammar *grammar = NULL; /* structured output (serve_grammar.c) */
    if (!serve_grammar_from_body(body, &grammar, &e)) return serve_reply_error(rq, 400, NULL, "%s", e.msg);
    serve_gen_params gp = {.prompt = ids->ids,
                           .n_prompt = (int)ids->n,
                           .sampling = sp,
                           .max_tokens = warm_up ? 1 : n_predict,
                           .stop = stops,
                           .n_stop = n_stop,
                           .ignore_eog = ignore_eos,
                           .no_spec = !spec,
                           .t_max_predict_ms = t_max,
                           .logprobs = rq->want_lp,
                           .top_logprobs = top_lp};
    gp.grammar = grammar;
    bool started = serve_start_or_reply(rq, &gp);
    hearth_grammar_release(grammar); /* the engine holds its own reference */
    if (!started) return MHD_YES;
    rq->flags = warm_up;
    if (stream && !warm_up) return serve_reply_stream(rq, "text/event-stream", llama_stream);
    strbuf out = {0};
    if (!serve_wait_done(rq, &out)) {
        strbuf_free(&out);
        return MHD_NO;
    }
    int rc;
    if (rq->gen->finish == HEARTH_FINISH_ERROR)
        rc = serve_reply_error(rq, 500, NULL, "%s", rq->gen->error);
    else if (warm_up)
        rc = serve_reply_json(rq, 200, final_object(rq, "", 0, 0));
    else
        rc = serve_reply_json(rq, 200,
                              final_object(rq, out.p ? out.p : "", out.n, rq->gen->stats.generated_tokens));
    strbuf_free(&out);
    return rc;
}

/* "prompt": a string, or an array of token ids and strings (llama.cpp's mixed form). */
static bool prompt_ids(const serve_model *sm, const cJSON *p, bool add_bos, hearth_tokens *ids, sj_err *e) {
    hearth_error err = {0};
    if (cJSON_IsString(p)) {
        if (!serve_tokenize(sm, p->valuestring, strlen(p->valuestring), add_bos, ids, &err)) goto tok;
        return true;
    }
    if (cJSON_IsArray(p)) {
        bool first = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, p) {
            if (cJSON_IsNumber(it))
                hearth_tokens_push(ids, (int32_t)it->valuedouble);
            else if (cJSON_IsString(it)) {
                if (!serve_tokenize(sm, it->valuestring, strlen(it->valuestring), add_bos && first, ids,
                                    &err))
                    goto tok;
            } else
                break;
            first = false;
        }
        if (!it) return true;
    }
    snprintf(e->msg, sizeof e->msg, "'prompt' must be a string or an array of token ids and strings");
    return false;
tok:
    snprintf(e->msg, sizeof e->msg, "%.250s", err.msg);
    return false;
}

int route_llama_completion(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    sj_err e = {0};
    int n_predict = -1;
    hearth_tokens ids = {0};
    const char *model = NULL;
    int rc;
    if (!sj_int(body, "n_predict", -1, 1 << 30, &n_predict, &e) ||
        !sj_int(body, "max_tokens", -1, 1 << 30, &n_predict, &e) || !sj_string(body, "model", &model, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    serve_model *sm = serve_req_model(rq, model);
    if (!sm) {
        rc = MHD_YES;
        goto done;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (!p) {
        rc = serve_reply_error(rq, 400, NULL, "'prompt' is required");
        goto done;
    }
    if (!prompt_ids(sm, p, true, &ids, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    rc = run_generation(rq, &ids, body, n_predict == 0 ? 1 : n_predict, n_predict == 0);
done:
    hearth_tokens_free(&ids);
    cJSON_Delete(body);
    return rc;
}

static int32_t find_any(const hearth_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = hearth_tokenizer_find(t, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

static bool encode_plain(const serve_model *sm, const char *s, hearth_tokens *out) {
    return hearth_tokenizer_encode(sm->tok, s, strlen(s), false, false, out, NULL) == HEARTH_OK;
}

static void append(hearth_tokens *dst, const int32_t *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        hearth_tokens_push(dst, src[i]);
}

int route_llama_infill(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    sj_err e = {0};
    int n_predict = -1, rc;
    const char *prefix = "", *suffix = "", *prompt = "", *model = NULL;
    hearth_tokens extra = {0}, pre = {0}, suf = {0}, mid = {0}, ids = {0};
    if (!sj_int(body, "n_predict", -1, 1 << 30, &n_predict, &e) ||
        !sj_string(body, "input_prefix", &prefix, &e) || !sj_string(body, "input_suffix", &suffix, &e) ||
        !sj_string(body, "prompt", &prompt, &e) || !sj_string(body, "model", &model, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    const serve_model *sm = serve_req_model(rq, model);
    if (!sm) {
        rc = MHD_YES;
        goto done;
    }
    static const char *const k_pre[] = {"<|fim_prefix|>", "<fim_prefix>", "<PRE>", "<fim-prefix>", NULL};
    static const char *const k_suf[] = {"<|fim_suffix|>", "<fim_suffix>", "<SUF>", "<fim-suffix>", NULL};
    static const char *const k_mid[] = {"<|fim_middle|>", "<fim_middle>", "<MID>", "<fim-middle>", NULL};
    static const char *const k_sep[] = {"<|file_sep|>", "<file_sep>", NULL};
    int32_t t_pre = find_any(sm->tok, k_pre), t_suf = find_any(sm->tok, k_suf),
            t_mid = find_any(sm->tok, k_mid);
    int32_t t_sep = find_any(sm->tok, k_sep);
    bool fim = t_pre >= 0 && t_suf >= 0 && t_mid >= 0;

    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(body, "input_extra");
    if (ex && !cJSON_IsNull(ex)) {
        if (!cJSON_IsArray(ex)) {
            rc = serve_reply_error(rq, 400, NULL, "'input_extra' must be an array of {filename, text}");
            goto done;
        }
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, ex) {
            const char *fn = "", *tx = "";
            if (!cJSON_IsObject(it) || !sj_string(it, "filename", &fn, &e) ||
                !sj_string(it, "text", &tx, &e)) {
                rc = serve_reply_error(
                    rq, 400, NULL, "'input_extra[%d]' must be {\"filename\": string, \"text\": string}", i);
                goto done;
            }
            if (t_sep >= 0) hearth_tokens_push(&extra, t_sep);
            strbuf chunk = {0};
            strbuf_printf(&chunk, "%s\n%s", fn, tx);
            if (t_sep < 0 && (!chunk.n || chunk.p[chunk.n - 1] != '\n')) strbuf_adds(&chunk, "\n");
            encode_plain(sm, chunk.p ? chunk.p : "", &extra);
            strbuf_free(&chunk);
            i++;
        }
    }
    encode_plain(sm, prefix, &pre);
    if (fim) encode_plain(sm, suffix, &suf);
    encode_plain(sm, prompt, &mid);

    /* fit the context: keep room for the answer; drop extra context first,
     * then the start of the prefix and the end of the suffix */
    int reserve = n_predict > 0 ? n_predict : 64;
    if (reserve > sm->n_ctx / 2) reserve = sm->n_ctx / 2;
    int budget = sm->n_ctx - reserve - 4;
    size_t fixed = mid.n + 1;
    if (extra.n + pre.n + suf.n + fixed > (size_t)budget) extra.n = 0;
    if (pre.n + suf.n + fixed > (size_t)budget) {
        size_t room = budget > (int)fixed ? (size_t)budget - fixed : 0;
        size_t suf_keep = suf.n < room / 4 ? suf.n : room / 4;
        suf.n = suf_keep;
        size_t pre_keep = room - suf_keep < pre.n ? room - suf_keep : pre.n;
        memmove(pre.ids, pre.ids + (pre.n - pre_keep), pre_keep * sizeof *pre.ids);
        pre.n = pre_keep;
    }
    int32_t bos = hearth_tokenizer_bos(sm->tok);
    if (bos >= 0 && hearth_tokenizer_add_bos_default(sm->tok)) hearth_tokens_push(&ids, bos);
    append(&ids, extra.ids, extra.n);
    if (fim) hearth_tokens_push(&ids, t_pre);
    append(&ids, pre.ids, pre.n);
    if (fim) {
        hearth_tokens_push(&ids, t_suf);
        append(&ids, suf.ids, suf.n);
        hearth_tokens_push(&ids, t_mid);
    }
    append(&ids, mid.ids, mid.n);
    if (!ids.n) {
        rc = serve_reply_error(rq, 400, NULL, "nothing to complete: 'input_prefix' and 'prompt' are empty");
        goto done;
    }
    rc = run_generation(rq, &ids, body, n_predict, n_predict == 0);
done:
    hearth_tokens_free(&extra);
    hearth_tokens_free(&pre);
    hearth_tokens_free(&suf);
    hearth_tokens_free(&mid);
    hearth_tokens_free(&ids);
    cJSON_Delete(body);
    return rc;
}

/* ---------------------------------------------------------------- tokens */

int route_llama_tokenize(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    sj_err e = {0};
    const char *content = NULL, *model = NULL;
    bool add_special = false, parse_special = true, with_pieces = false;
    int rc;
    if (!sj_string(body, "content", &content, &e) || !sj_bool(body, "add_special", &add_special, &e) ||
        !sj_bool(body, "parse_special", &parse_special, &e) ||
        !sj_bool(body, "with_pieces", &with_pieces, &e) || !sj_string(body, "model", &model, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto out;
    }
    if (!content) {
        rc = serve_reply_error(rq, 400, NULL, "'content' is required");
        goto out;
    }
    const serve_model *sm = serve_req_model(rq, model);
    if (!sm) {
        rc = MHD_YES;
        goto out;
    }
    hearth_tokens ids = {0};
    hearth_error err = {0};
    if (hearth_tokenizer_encode(sm->tok, content, strlen(content),
                                add_special && hearth_tokenizer_add_bos_default(sm->tok), parse_special, &ids,
                                &err)) {
        rc = serve_reply_error(rq, 500, NULL, "%s", err.msg);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < ids.n; i++) {
        if (!with_pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids.ids[i]));
            continue;
        }
        char piece[512];
        size_t n = hearth_tokenizer_piece(sm->tok, ids.ids[i], true, piece, sizeof piece - 1);
        if (n > sizeof piece - 1) n = sizeof piece - 1;
        piece[n] = 0;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", ids.ids[i]);
        cJSON_AddItemToObject(t, "piece", app_json_piece(piece, n));
        cJSON_AddItemToArray(arr, t);
    }
    hearth_tokens_free(&ids);
    rc = serve_reply_json(rq, 200, o);
out:
    cJSON_Delete(body);
    return rc;
}

int route_llama_detokenize(serve_req *rq) {
    cJSON *body = serve_body_json(rq);
    if (!body) return MHD_YES;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "tokens");
    const char *model = NULL;
    sj_err e = {0};
    int rc;
    if (!sj_string(body, "model", &model, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto out;
    }
    const serve_model *sm = serve_req_model(rq, model);
    if (!sm) {
        rc = MHD_YES;
        goto out;
    }
    int n_vocab = hearth_tokenizer_n_vocab(sm->tok);
    if (!cJSON_IsArray(arr)) {
        rc = serve_reply_error(rq, 400, NULL, "'tokens' must be an array of token ids");
        goto out;
    }
    strbuf text = {0};
    hearth_detok d;
    hearth_detok_init(&d, sm->tok, false, true); /* SPM: no leading space, so text round-trips */
    char buf[512];
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= n_vocab) {
            strbuf_free(&text);
            rc = serve_reply_error(rq, 400, NULL, "'tokens[%d]' must be a token id between 0 and %d", i,
                                   n_vocab - 1);
            goto out;
        }
        strbuf_add(&text, buf, hearth_detok_feed(&d, (int32_t)it->valuedouble, buf, sizeof buf));
        i++;
    }
    strbuf_add(&text, buf, hearth_detok_flush(&d, buf, sizeof buf));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", text.p ? text.p : "");
    strbuf_free(&text);
    rc = serve_reply_json(rq, 200, o);
out:
    cJSON_Delete(body);
    return rc;
}

/* ---------------------------------------------------------------- health, metrics, props */

int route_llama_health(serve_req *rq) {
    if (atomic_load(&rq->srv->stopping))
        return serve_reply_error(rq, 503, "unavailable_error", "shutting down");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return serve_reply_json(rq, 200, o);
}

static void histogram(strbuf *b, const char *name, const char *help, const uint64_t *buckets,
                      const double *bounds, int n, double sum_ms, uint64_t count) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += buckets[i];
        if (i == n - 1)
            strbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        else
            strbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i] / 1000.0,
                          (unsigned long long)cum);
    }
    strbuf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum_ms / 1000.0, name, (unsigned long long)count);
}

static void metric(strbuf *b, const char *name, const char *type, const char *help, double v) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

int route_llama_metrics(serve_req *rq) {
    serve_ctx *srv = rq->srv;
    hearth_engine_stats es;
    int n_loaded = serve_models_engine_stats(srv, &es);
    pthread_mutex_lock(&srv->mu);
    serve_metrics m = srv->metrics;
    pthread_mutex_unlock(&srv->mu);
    strbuf b = {0};
    strbuf_printf(&b, "# HELP hearth_http_requests_total HTTP requests finished, by status class.\n"
                      "# TYPE hearth_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        strbuf_printf(&b, "hearth_http_requests_total{code=\"%dxx\"} %llu\n", c,
                      (unsigned long long)m.requests_by_class[c]);
    metric(&b, "hearth_models_loaded", "gauge", "Models loaded now (the figures below sum over them).",
           n_loaded);
    metric(&b, "hearth_requests_done_total", "counter", "Generations finished by the engine.",
           (double)es.requests_done);
    metric(&b, "hearth_requests_cancelled_total", "counter", "Generations cancelled (client gone, shutdown).",
           (double)m.cancelled);
    metric(&b, "hearth_requests_running", "gauge", "Sequences being decoded now.", es.running);
    metric(&b, "hearth_requests_waiting", "gauge", "Requests queued for admission.", es.waiting);
    metric(&b, "hearth_prompt_tokens_total", "counter", "Prompt tokens submitted.", (double)es.prompt_tokens);
    metric(&b, "hearth_prompt_tokens_cached_total", "counter", "Prompt tokens taken from the prefix cache.",
           (double)es.cached_tokens);
    metric(&b, "hearth_tokens_generated_total", "counter", "Tokens generated.", (double)es.tokens_generated);
    metric(&b, "hearth_preemptions_total", "counter", "Sequences preempted for KV space.",
           (double)es.preemptions);
    metric(&b, "hearth_engine_steps_total", "counter", "Engine batching steps.", (double)es.steps);
    histogram(&b, "hearth_time_to_first_token_seconds", "Submit to first token.", m.ttft_bucket,
              serve_ttft_bounds_ms, SERVE_TTFT_BUCKETS, m.ttft_sum_ms, m.ttft_count);
    histogram(&b, "hearth_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.",
              m.itl_bucket, serve_itl_bounds_ms, SERVE_ITL_BUCKETS, m.itl_sum_ms, m.itl_count);
    metric(&b, "hearth_kv_pages_total", "gauge", "KV cache pages in the pool.", es.kv.n_pages);
    metric(&b, "hearth_kv_pages_used", "gauge", "KV pages held by running sequences.", es.kv.pages_used);
    metric(&b, "hearth_kv_pages_cached", "gauge", "KV pages held only by the prefix cache.",
           es.kv.pages_cached);
    metric(&b, "hearth_kv_bytes_used", "gauge", "Bytes of KV pages in use or cached.",
           (double)es.kv.bytes_used);
    metric(&b, "hearth_prefix_cache_lookups_total", "counter", "Prompt pages looked up in the prefix cache.",
           (double)es.prefix.lookups);
    uint64_t hits = es.prefix.hits_memory + es.prefix.hits_disk;
    metric(&b, "hearth_prefix_cache_hits_total", "counter", "Prompt pages found (memory or disk).",
           (double)hits);
    metric(&b, "hearth_prefix_cache_hits_disk_total", "counter", "Prompt pages loaded from the SQLite store.",
           (double)es.prefix.hits_disk);
    metric(&b, "hearth_prefix_cache_hit_ratio", "gauge", "Hits / lookups since start.",
           es.prefix.lookups ? (double)hits / (double)es.prefix.lookups : 0);
    metric(&b, "hearth_prefix_cache_evicted_total", "counter", "Cached pages evicted.",
           (double)es.prefix.evicted);
    metric(&b, "hearth_spec_passes_total", "counter", "Target passes that verified drafted tokens.",
           (double)es.spec_passes);
    metric(&b, "hearth_spec_tokens_total", "counter", "Tokens those verification passes produced.",
           (double)es.spec_tokens);
    metric(&b, "hearth_spec_drafted_total", "counter", "Tokens drafted for speculative decoding.",
           (double)es.spec_drafted);
    metric(&b, "hearth_spec_accepted_total", "counter", "Drafted tokens the target accepted.",
           (double)es.spec_accepted);
    metric(&b, "hearth_spec_off_load_steps_total", "counter",
           "Steps run without speculation because of load.", (double)es.spec_off_load);
    int rc = b.oom ? serve_reply_error(rq, 500, NULL, "out of memory")
                   : serve_reply_text(rq, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.n);
    strbuf_free(&b);
    return rc;
}

/* GET /props[?model=NAME]: the default model's settings, or NAME's (loaded). */
int route_llama_props(serve_req *rq) {
    serve_ctx *srv = rq->srv;
    const char *name = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "model");
    const serve_model *sm = serve_req_model(rq, name);
    if (!sm) return MHD_YES;
    cJSON *o = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(o, "default_generation_settings");
    cJSON_AddNumberToObject(d, "n_ctx", sm->n_ctx);
    cJSON_AddStringToObject(d, "model", sm->name);
    cJSON_AddNumberToObject(o, "total_slots", srv->n_parallel);
    cJSON_AddStringToObject(o, "model_path", sm->path);
    cJSON_AddStringToObject(o, "chat_template", sm->chat_template ? sm->chat_template : "");
    cJSON_AddStringToObject(o, "build_info", "hearth " HEARTH_VERSION);
    return serve_reply_json(rq, 200, o);
}
