/*
 * fuzz_http_request.c - libFuzzer target for the request-parsing path of
 * `hearth serve` that Hearth itself owns: a request body (JSON, parsed by
 * cJSON) read through the typed field readers (app/serve/serve_json.c), the
 * sampling fields of every route, and chat messages parsed and rendered
 * into a prompt (app/serve/serve_prompt.c). Model names are looked up in
 * the registry (serve_models.c, tests/cli/test_serve_models.sh), not here.
 * HTTP framing (request line, headers, chunked bodies) is libmicrohttpd's,
 * which is fuzzed upstream; this target covers what happens after it.
 *
 * Owner: serve. Invariants checked: no reader crashes or reads out of
 * bounds on any input; every failure leaves a NUL-terminated message that
 * names something; accepted values are in their documented ranges; a
 * rendered chat ends with the assistant turn.
 * The tokenizer is stubbed: the fuzzed path never tokenizes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/serve/serve.h"
#include "runtime/template/chat_template.h"

/* ---- stubs for the parts of libhearth serve_prompt.c links against */
hearth_status hearth_tokenizer_encode(const hearth_tokenizer *t, const char *text, size_t len, bool add_bos,
                                      bool parse_special, hearth_tokens *out, hearth_error *err) {
    return HEARTH_OK;
}
bool hearth_tokenizer_add_bos_default(const hearth_tokenizer *t) {
    return true;
}

static volatile size_t sink;

static void check(int cond) {
    if (!cond) abort();
}

static void check_err(const sj_err *e) {
    check(memchr(e->msg, 0, sizeof e->msg) != NULL);
    check(e->msg[0] != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static serve_model sm = {.name = "hearth-kjv-llama-q8_0", .path = "/models/hearth-kjv-llama-q8_0.gguf"};
    if (!sm.tmpl) sm.tmpl = hearth_chat_template_chatml(); /* the sample models' template */
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (!o) return 0;
    sj_err e = {0};
    hearth_sampling_params sp = {.temperature = 0.8f, .top_p = 0.95f, .penalty_last_n = 64};
    if (serve_parse_sampling(o, &sp, &e)) {
        check(sp.temperature >= 0 && sp.temperature <= 100 && sp.top_p >= 0 && sp.top_p <= 1);
        check(sp.presence_penalty >= -2 && sp.presence_penalty <= 2);
    } else {
        check_err(&e);
    }
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(o, "options");
    if (cJSON_IsObject(opt) && !serve_parse_sampling(opt, &sp, &e)) check_err(&e);

    int n = 1, max_tokens = -1;
    bool stream = false;
    const char *model_name = NULL;
    if (!sj_int(o, "n", 1, 128, &n, &e)) check_err(&e);
    check(n >= 1 && n <= 128);
    if (!sj_int(o, "max_tokens", 0, 1 << 30, &max_tokens, &e)) check_err(&e);
    if (!sj_bool(o, "stream", &stream, &e)) check_err(&e);
    if (!sj_string(o, "model", &model_name, &e)) check_err(&e);
    if (model_name) sink += strlen(model_name);

    const char *stops[SJ_MAX_STOP];
    int n_stop = 0;
    if (sj_stop(o, "stop", stops, SJ_MAX_STOP, &n_stop, &e)) {
        check(n_stop >= 0 && n_stop <= SJ_MAX_STOP);
        for (int i = 0; i < n_stop; i++)
            check(stops[i][0] != 0), sink += strlen(stops[i]);
    } else {
        check_err(&e);
    }

    serve_msg *msgs = NULL;
    int n_msgs = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (serve_messages_parse(m, &msgs, &n_msgs, &e)) {
        char *text = serve_chat_render(&sm, msgs, n_msgs, &e);
        if (text) {
            size_t len = strlen(text);
            const char *tail = "<|im_start|>assistant\n";
            check(len >= strlen(tail) && !strcmp(text + len - strlen(tail), tail));
        } else {
            check_err(&e);
        }
        free(text);
        serve_messages_free(msgs, n_msgs);
    } else {
        check_err(&e);
    }

    /* the per-route field check (serve_fields.c) on every POST route it knows:
     * a refusal names a field and stays within its buffer */
    static const char *const routes[] = {
        "/v1/chat/completions", "/v1/completions", "/api/chat",  "/api/generate", "/completion", "/infill",
        "/v1/embeddings",       "/api/embed",      "/v1/rerank", "/api/pull"};
    if (cJSON_IsObject(o))
        for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
            char msg[96];
            msg[0] = 0;
            if (!serve_fields_check(routes[r], o, msg, sizeof msg))
                check(msg[0] == '\'' && strlen(msg) < sizeof msg);
        }

    /* what the server prints it must be able to read back */
    strbuf b = {0};
    serve_add_json(&b, o);
    if (!b.oom && b.p) {
        cJSON *back = cJSON_ParseWithLength(b.p, b.n);
        check(back != NULL);
        cJSON_Delete(back);
    }
    strbuf_free(&b);
    cJSON_Delete(o);
    return 0;
}
