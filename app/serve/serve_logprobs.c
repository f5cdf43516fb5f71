/*
 * serve_logprobs.c - token log-probabilities in each API's shape: the
 * request fields (OpenAI chat `logprobs` + `top_logprobs`, OpenAI
 * completions `logprobs: N`, Ollama `logprobs` + `top_logprobs`, llama.cpp
 * `n_probs`) and the reply fields built from what the engine delivered
 * (hearth_logprobs per token, collected by serve_gen.c).
 *
 * Owner: the serve subsystem. What the numbers mean is the engine's
 * (runtime/serving/sampling.h): the log-softmax at temperature 1 of the
 * logits after penalties and grammar masks, so they are meaningful at any
 * temperature, greedy included.
 * Invariants: every generated token's entry is attached once, to the chunk
 * (or line) that is sent when it has arrived, or to the whole reply; token
 * text that is part of a UTF-8 character is shown with U+FFFD in "token"
 * and exactly in "bytes".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

bool serve_logprobs_parse(const cJSON *body, serve_api api, bool chat, bool *want, int *top, sj_err *e) {
    *want = false;
    *top = 0;
    if (api == SERVE_API_LLAMA) {
        int n = 0;
        if (!sj_int(body, "n_probs", 0, HEARTH_MAX_TOP_LOGPROBS, &n, e)) return false;
        *want = n > 0;
        *top = n;
        return true;
    }
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(body, "logprobs");
    if (api == SERVE_API_OPENAI && !chat) { /* completions: logprobs is the number of alternatives */
        int n = -1;
        if (lp && cJSON_IsBool(lp)) {
            snprintf(e->msg, sizeof e->msg,
                     "'logprobs' of /v1/completions is a number of alternatives (0 to %d)",
                     HEARTH_MAX_TOP_LOGPROBS);
            return false;
        }
        if (!sj_int(body, "logprobs", 0, HEARTH_MAX_TOP_LOGPROBS, &n, e)) return false;
        *want = n >= 0;
        *top = n > 0 ? n : 0;
        return true;
    }
    int n = -1;
    if (!sj_bool(body, "logprobs", want, e) ||
        !sj_int(body, "top_logprobs", 0, HEARTH_MAX_TOP_LOGPROBS, &n, e))
        return false;
    if (n >= 0 && !*want) {
        snprintf(e->msg, sizeof e->msg, "'top_logprobs' needs \"logprobs\": true");
        return false;
    }
    *top = n > 0 ? n : 0;
    return true;
}

/* The token's text, its bytes, and a valid-UTF-8 form for "token". */
static void piece_of(const serve_model *sm, int32_t id, char *raw, size_t cap, size_t *n, char *shown,
                     size_t scap) {
    *n = hearth_tokenizer_piece(sm->tok, id, true, raw, cap - 1);
    raw[*n] = 0;
    size_t o = 0;
    for (size_t i = 0; i < *n && o + 4 < scap;) {
        unsigned char c = (unsigned char)raw[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + (size_t)len <= *n;
        for (int k = 1; ok && k < len; k++)
            ok = ((unsigned char)raw[i + k] >> 6) == 2;
        if (ok) {
            memcpy(shown + o, raw + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(shown + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        }
    }
    shown[o] = 0;
}

static cJSON *bytes_of(const char *raw, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)raw[i]));
    return a;
}

/* {"token","logprob","bytes"} (+ "id" for llama.cpp) */
static cJSON *entry(const serve_model *sm, int32_t id, float logprob, bool with_id, bool with_bytes) {
    char raw[256], shown[800];
    size_t n;
    piece_of(sm, id, raw, sizeof raw, &n, shown, sizeof shown);
    cJSON *o = cJSON_CreateObject();
    if (with_id) cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "token", shown);
    cJSON_AddNumberToObject(o, "logprob", logprob < -9999.0f ? -9999.0 : (double)logprob);
    if (with_bytes) cJSON_AddItemToObject(o, "bytes", bytes_of(raw, n));
    return o;
}

/* The token entries of lp[0..n) in style: OpenAI chat / Ollama / llama.cpp
 * (arrays of objects), or the completions' parallel arrays (into obj). */
static cJSON *entries(serve_req *rq, const hearth_logprobs *lp, int n) {
    const serve_model *sm = rq->sm;
    bool llama = rq->api == SERVE_API_LLAMA;
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = entry(sm, lp[i].id, lp[i].logprob, llama, true);
        cJSON *top = cJSON_AddArrayToObject(o, "top_logprobs");
        for (int k = 0; k < lp[i].n_top; k++)
            cJSON_AddItemToArray(top, entry(sm, lp[i].top_id[k], lp[i].top_logprob[k], llama, true));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* OpenAI completions: {"tokens","token_logprobs","top_logprobs":[{text: lp}],"text_offset"} */
static cJSON *completion_shape(serve_req *rq, const hearth_logprobs *lp, int n) {
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
    char raw[256], shown[800];
    size_t len;
    for (int i = 0; i < n; i++) {
        piece_of(rq->sm, lp[i].id, raw, sizeof raw, &len, shown, sizeof shown);
        cJSON_AddItemToArray(toks, cJSON_CreateString(shown));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(lp[i].logprob));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber(rq->lp_offset));
        rq->lp_offset += (int)len;
        cJSON *t = cJSON_CreateObject();
        for (int k = 0; k < lp[i].n_top; k++) {
            piece_of(rq->sm, lp[i].top_id[k], raw, sizeof raw, &len, shown, sizeof shown);
            if (!cJSON_GetObjectItemCaseSensitive(t, shown))
                cJSON_AddNumberToObject(t, shown, lp[i].top_logprob[k]);
        }
        cJSON_AddItemToArray(tops, t);
    }
    return o;
}

void serve_logprobs_attach(serve_req *rq, cJSON *obj, const char *key, bool always) {
    if (!rq->want_lp) {
        if (always) cJSON_AddNullToObject(obj, key);
        return;
    }
    hearth_logprobs *lp = NULL;
    int n = rq->gen ? serve_gen_take_logprobs(rq->gen, &lp) : 0;
    if (n == 0 && !always) {
        free(lp);
        return;
    }
    cJSON *v;
    if (rq->api == SERVE_API_OPENAI && rq->lp_chat) {
        v = cJSON_CreateObject();
        cJSON_AddItemToObject(v, "content", entries(rq, lp, n));
    } else if (rq->api == SERVE_API_OPENAI) {
        v = completion_shape(rq, lp, n);
    } else {
        v = entries(rq, lp, n);
    }
    cJSON_AddItemToObject(obj, key, v);
    free(lp);
}
