/*
 * serve_embed.c - the embedding and rerank routes: OpenAI POST /v1/embeddings,
 * Ollama POST /api/embed and the older /api/embeddings, llama.cpp POST
 * /embedding, and POST /v1/rerank (also /rerank, /v1/reranking: the shape
 * llama-server, Jina and Cohere use).
 *
 * Owner: the serve subsystem. The vectors come from runtime/model/embed.h
 * through the request's model's embedder (serve_models.c makes one for
 * encoders, for models whose file has a pooling_type, and for every model
 * under --embeddings); hearth_embed batches concurrent requests into shared
 * forward passes by itself.
 * Invariants: every input of a request is embedded in one hearth_embed call
 * (so they share passes); an input over the model's context is a 400 unless
 * the route truncates (Ollama's default, or "truncate": true); vectors are
 * printed with 9 significant digits (float32 round-trips), or as base64 of
 * the little-endian float32 bytes for encoding_format "base64".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "core/os.h"
#include "runtime/model/embed.h"
#include "serve.h"

#define EMBED_MAX_INPUTS 2048 /* OpenAI's limit per request */

/* ------------------------------------------------------------ inputs */

typedef struct embed_batch {
    hearth_tokens *toks; /* one per input */
    int n;
    float *out; /* n * dim */
    int dim;
    int *used; /* tokens per input after truncation */
    int n_tokens;
} embed_batch;

static void batch_free(embed_batch *b) {
    for (int i = 0; i < b->n; i++)
        hearth_tokens_free(&b->toks[i]);
    free(b->toks);
    free(b->out);
    free(b->used);
    memset(b, 0, sizeof *b);
}

/* A token-id array as one input; false when it is not one. */
static bool ids_input(const cJSON *arr, int n_vocab, hearth_tokens *out, char *err, size_t cap, int idx) {
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= n_vocab ||
            it->valuedouble != floor(it->valuedouble)) {
            snprintf(err, cap, "input %d: token ids must be integers between 0 and %d", idx, n_vocab - 1);
            return false;
        }
        hearth_tokens_push(out, (int32_t)it->valuedouble);
    }
    if (!out->n) {
        snprintf(err, cap, "input %d is an empty token array", idx);
        return false;
    }
    return true;
}

/* "input": a string, an array of strings, an array of token ids, or an array
 * of token-id arrays (allow_ids: OpenAI's and llama.cpp's forms). */
static bool parse_inputs(const serve_model *sm, const cJSON *input, bool allow_ids, embed_batch *b, char *err,
                         size_t cap) {
    int n_vocab = hearth_tokenizer_n_vocab(sm->tok);
    bool one_string = cJSON_IsString(input);
    bool one_ids = allow_ids && cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0 &&
                   cJSON_IsNumber(cJSON_GetArrayItem(input, 0));
    int n = one_string || one_ids ? 1 : cJSON_IsArray(input) ? cJSON_GetArraySize(input) : -1;
    if (n > EMBED_MAX_INPUTS) {
        snprintf(err, cap, "'input' has %d items; at most %d per request", n, EMBED_MAX_INPUTS);
        return false;
    }
    if (n <= 0) {
        snprintf(err, cap, "%s",
                 n == 0      ? "'input' is an empty array"
                 : allow_ids ? "'input' must be a string, an array of strings, or token ids"
                             : "'input' must be a string or an array of strings");
        return false;
    }
    b->toks = calloc((size_t)n, sizeof *b->toks);
    b->used = calloc((size_t)n, sizeof *b->used);
    if (!b->toks || !b->used) {
        snprintf(err, cap, "out of memory");
        return false;
    }
    b->n = n;
    for (int i = 0; i < n; i++) {
        const cJSON *it = one_string || one_ids ? input : cJSON_GetArrayItem(input, i);
        hearth_error e = {0};
        if (cJSON_IsString(it)) {
            if (hearth_embed_tokenize(sm->model, it->valuestring, strlen(it->valuestring), &b->toks[i], &e)) {
                snprintf(err, cap, "input %d: %s", i, e.msg);
                return false;
            }
        } else if (allow_ids && cJSON_IsArray(it)) {
            if (!ids_input(it, n_vocab, &b->toks[i], err, cap, i)) return false;
        } else {
            snprintf(err, cap, "'input[%d]' must be a string%s", i,
                     allow_ids ? " or an array of token ids" : "");
            return false;
        }
    }
    return true;
}

/* The embedder of sm and the params for it; 0, or an HTTP status with err. */
static int embed_params(const serve_model *sm, hearth_embed_params *p, char *err, size_t cap) {
    if (!sm->emb) {
        snprintf(err, cap,
                 "model '%s' is a generative model without a pooling type: start hearth serve with "
                 "--embeddings to "
                 "embed with it (mean of its last hidden states), or use an embedding model",
                 sm->name);
        return 400;
    }
    if (!sm->encoder && sm->model->hp.pooling == HEARTH_POOLING_NONE) p->pooling = HEARTH_POOLING_MEAN;
    return 0;
}

/* Embed b's inputs with sm; 0 or an HTTP status with err. rank: the model
 * must be a reranker (else must not be). */
static int run_embed(serve_model *sm, embed_batch *b, hearth_embed_params *p, bool rank, char *err,
                     size_t cap) {
    int st = embed_params(sm, p, err, cap);
    if (st) return st;
    if (rank) p->pooling = HEARTH_POOLING_RANK;
    bool is_rank = hearth_embed_pooling(sm->emb, p) == HEARTH_POOLING_RANK;
    if (is_rank != rank) {
        snprintf(err, cap,
                 rank ? "model '%s' is not a reranker (its pooling is %s): /v1/rerank needs a model with a "
                        "classification head (pooling_type rank)"
                      : "model '%s' is a reranker (pooling %s): it gives relevance scores on /v1/rerank, not "
                        "embeddings",
                 sm->name, hearth_pooling_name(hearth_embed_pooling(sm->emb, p)));
        return 400;
    }
    hearth_error e = {0};
    b->dim = hearth_embed_dim(sm->emb, p, &e);
    if (b->dim <= 0) {
        snprintf(err, cap, "%s", e.msg);
        return 400;
    }
    b->out = malloc(sizeof(float) * (size_t)b->n * (size_t)b->dim);
    const int32_t **ptrs = malloc(sizeof *ptrs * (size_t)b->n);
    int *lens = malloc(sizeof *lens * (size_t)b->n);
    if (!b->out || !ptrs || !lens) {
        free(ptrs);
        free(lens);
        snprintf(err, cap, "out of memory");
        return 500;
    }
    for (int i = 0; i < b->n; i++) {
        ptrs[i] = b->toks[i].ids;
        lens[i] = (int)b->toks[i].n;
    }
    hearth_status s = hearth_embed(sm->emb, ptrs, lens, b->n, p, b->out, b->used, &e);
    free(ptrs);
    free(lens);
    if (s) {
        snprintf(err, cap, "%s%s", e.msg,
                 s == HEARTH_ERR_CONTEXT ? " (send shorter inputs, or ask for truncation: \"truncate\": true)"
                                         : "");
        return s == HEARTH_ERR_CONTEXT || s == HEARTH_ERR_INVALID ? 400 : 500;
    }
    b->n_tokens = 0;
    for (int i = 0; i < b->n; i++)
        b->n_tokens += b->used[i];
    return 0;
}

/* ------------------------------------------------------------ output */

static void add_vector(strbuf *o, const float *v, int dim) {
    strbuf_addc(o, '[');
    for (int j = 0; j < dim; j++)
        strbuf_printf(o, j ? ",%.9g" : "%.9g", (double)v[j]);
    strbuf_addc(o, ']');
}

static void add_base64(strbuf *o, const float *v, int dim) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)v; /* little-endian hosts only, as the GGUF reader */
    size_t n = (size_t)dim * 4;
    strbuf_addc(o, '"');
    for (size_t i = 0; i < n; i += 3) {
        unsigned x =
            (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {tab[x >> 18 & 63], tab[x >> 12 & 63], i + 1 < n ? tab[x >> 6 & 63] : '=',
                     i + 2 < n ? tab[x & 63] : '='};
        strbuf_add(o, q, 4);
    }
    strbuf_addc(o, '"');
}

static int reply_buf(serve_req *rq, strbuf *o) {
    int rc = o->oom ? serve_reply_error(rq, 500, NULL, "out of memory")
                    : serve_reply_text(rq, 200, "application/json", o->p ? o->p : "", o->n);
    strbuf_free(o);
    return rc;
}

static void add_json_string(strbuf *o, const char *s) {
    cJSON *v = cJSON_CreateString(s);
    serve_add_json(o, v);
    cJSON_Delete(v);
}

/* ------------------------------------------------------------ routes */

/* The common start: body, model, keep_alive; NULL after replying. */
static cJSON *embed_start(serve_req *rq, serve_model **sm, const char *model_key) {
    cJSON *body = serve_body_json(rq);
    if (!body) return NULL;
    sj_err e = {0};
    const char *model = NULL;
    double ka = NAN;
    if (!sj_string(body, model_key, &model, &e) || !sj_duration(body, "keep_alive", &ka, &e)) {
        serve_reply_error(rq, 400, NULL, "%s", e.msg);
        cJSON_Delete(body);
        return NULL;
    }
    rq->keep_alive_s = ka;
    *sm = serve_req_model(rq, model);
    if (!*sm) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

int route_openai_embeddings(serve_req *rq) {
    serve_model *sm;
    cJSON *body = embed_start(rq, &sm, "model");
    if (!body) return MHD_YES;
    sj_err e = {0};
    const char *fmt = NULL, *user = NULL;
    int dims = 0, rc;
    char err[1024];
    embed_batch b = {0};
    hearth_embed_params p = hearth_embed_params_default();
    if (!sj_string(body, "encoding_format", &fmt, &e) || !sj_int(body, "dimensions", 1, 1 << 20, &dims, &e) ||
        !sj_string(body, "user", &user, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    if (fmt && strcmp(fmt, "float") && strcmp(fmt, "base64")) {
        rc = serve_reply_error(rq, 400, NULL, "'encoding_format' must be \"float\" or \"base64\"");
        goto done;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (!input) {
        rc = serve_reply_error(rq, 400, NULL, "'input' is required");
        goto done;
    }
    p.dimensions = dims;
    int st = parse_inputs(sm, input, true, &b, err, sizeof err)
                 ? run_embed(sm, &b, &p, false, err, sizeof err)
                 : 400;
    if (st) {
        rc = serve_reply_error(rq, st, NULL, "%s", err);
        goto done;
    }
    bool b64 = fmt && !strcmp(fmt, "base64");
    strbuf o = {0};
    strbuf_adds(&o, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < b.n; i++) {
        strbuf_printf(&o, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
        (b64 ? add_base64 : add_vector)(&o, b.out + (size_t)i * b.dim, b.dim);
        strbuf_addc(&o, '}');
    }
    strbuf_adds(&o, "],\"model\":");
    add_json_string(&o, sm->name);
    strbuf_printf(&o, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", b.n_tokens, b.n_tokens);
    rq->prompt_tokens = b.n_tokens;
    rc = reply_buf(rq, &o);
done:
    batch_free(&b);
    cJSON_Delete(body);
    return rc;
}

/* Ollama's /api/embed (input, truncate default true, dimensions) and the
 * older /api/embeddings (prompt; one vector, not normalised, as Ollama's). */
static int ollama_embed(serve_req *rq, bool legacy) {
    serve_model *sm;
    double t0 = hearth_now_ms();
    cJSON *body = embed_start(rq, &sm, "model");
    if (!body) return MHD_YES;
    sj_err e = {0};
    bool truncate = true;
    int dims = 0, rc;
    char err[1024];
    embed_batch b = {0};
    hearth_embed_params p = hearth_embed_params_default();
    if (!sj_bool(body, "truncate", &truncate, &e) || !sj_int(body, "dimensions", 1, 1 << 20, &dims, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(body, "options");
    if (opt && !cJSON_IsNull(opt) && !cJSON_IsObject(opt)) {
        rc = serve_reply_error(rq, 400, NULL, "'options' must be an object");
        goto done;
    }
    const cJSON *it, *opts = opt && cJSON_IsObject(opt) ? opt : NULL;
    cJSON_ArrayForEach(it, opts) { /* none applies to an embedding */
        if (cJSON_IsNull(it)) continue;
        rc = serve_reply_error(rq, 400, NULL,
                               "options.%.60s is not supported on the embedding routes; remove it (the "
                               "embedding uses the whole input: see 'truncate' and 'dimensions')",
                               it->string);
        goto done;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, legacy ? "prompt" : "input");
    if (!input || (legacy && !cJSON_IsString(input))) {
        rc = serve_reply_error(rq, 400, NULL, legacy ? "'prompt' must be a string" : "'input' is required");
        goto done;
    }
    p.truncate = truncate;
    p.dimensions = dims;
    p.normalize = !legacy;
    int st = parse_inputs(sm, input, false, &b, err, sizeof err)
                 ? run_embed(sm, &b, &p, false, err, sizeof err)
                 : 400;
    if (st) {
        rc = serve_reply_error(rq, st, NULL, "%s", err);
        goto done;
    }
    strbuf o = {0};
    if (legacy) {
        strbuf_adds(&o, "{\"embedding\":");
        add_vector(&o, b.out, b.dim);
        strbuf_addc(&o, '}');
    } else {
        strbuf_adds(&o, "{\"model\":");
        add_json_string(&o, sm->name);
        strbuf_adds(&o, ",\"embeddings\":[");
        for (int i = 0; i < b.n; i++) {
            if (i) strbuf_addc(&o, ',');
            add_vector(&o, b.out + (size_t)i * b.dim, b.dim);
        }
        long long ns = (long long)((hearth_now_ms() - t0) * 1e6);
        strbuf_printf(&o, "],\"total_duration\":%lld,\"load_duration\":0,\"prompt_eval_count\":%d}", ns,
                      b.n_tokens);
    }
    rq->prompt_tokens = b.n_tokens;
    rc = reply_buf(rq, &o);
done:
    batch_free(&b);
    cJSON_Delete(body);
    return rc;
}

int route_ollama_embed(serve_req *rq) {
    return ollama_embed(rq, false);
}
int route_ollama_embeddings(serve_req *rq) {
    return ollama_embed(rq, true);
}

/* llama.cpp's /embedding: "content" (a string, strings, or token ids),
 * embd_normalize 2 (L2, default) or -1 (none); [{"index","embedding":[[...]]}]. */
int route_llama_embedding(serve_req *rq) {
    serve_model *sm;
    cJSON *body = embed_start(rq, &sm, "model");
    if (!body) return MHD_YES;
    sj_err e = {0};
    int norm = 2, rc;
    char err[1024];
    embed_batch b = {0};
    hearth_embed_params p = hearth_embed_params_default();
    if (!sj_int(body, "embd_normalize", -1, 2, &norm, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    if (norm != 2 && norm != -1) {
        rc = serve_reply_error(
            rq, 400, NULL, "'embd_normalize' %d is not supported: 2 (Euclidean, default) or -1 (none)", norm);
        goto done;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "content");
    if (!input) input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (!input) {
        rc = serve_reply_error(rq, 400, NULL, "'content' is required");
        goto done;
    }
    p.normalize = norm == 2;
    int st = parse_inputs(sm, input, true, &b, err, sizeof err)
                 ? run_embed(sm, &b, &p, false, err, sizeof err)
                 : 400;
    if (st) {
        rc = serve_reply_error(rq, st, NULL, "%s", err);
        goto done;
    }
    strbuf o = {0};
    strbuf_addc(&o, '[');
    for (int i = 0; i < b.n; i++) {
        strbuf_printf(&o, "%s{\"index\":%d,\"embedding\":[", i ? "," : "", i);
        add_vector(&o, b.out + (size_t)i * b.dim, b.dim);
        strbuf_adds(&o, "]}");
    }
    strbuf_addc(&o, ']');
    rq->prompt_tokens = b.n_tokens;
    rc = reply_buf(rq, &o);
done:
    batch_free(&b);
    cJSON_Delete(body);
    return rc;
}

typedef struct scored {
    int index;
    float score;
} scored;

static int by_score(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : ((const scored *)a)->index - ((const scored *)b)->index;
}

/* /v1/rerank: {"model","query","documents":[string | {"text"}],"top_n","return_documents"}
 * -> {"model","object":"list","usage","results":[{"index","relevance_score"[,"document":{"text"}]}]},
 * best first. */
int route_rerank(serve_req *rq) {
    serve_model *sm;
    cJSON *body = embed_start(rq, &sm, "model");
    if (!body) return MHD_YES;
    sj_err e = {0};
    const char *query = NULL;
    int top_n = 0, rc;
    bool ret_docs = false;
    char err[1024];
    embed_batch b = {0};
    scored *sc = NULL;
    hearth_embed_params p = hearth_embed_params_default();
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(body, "documents");
    if (!sj_string(body, "query", &query, &e) || !sj_int(body, "top_n", 1, EMBED_MAX_INPUTS, &top_n, &e) ||
        !sj_bool(body, "return_documents", &ret_docs, &e)) {
        rc = serve_reply_error(rq, 400, NULL, "%s", e.msg);
        goto done;
    }
    int n = cJSON_IsArray(docs) ? cJSON_GetArraySize(docs) : -1;
    if (!query || n <= 0 || n > EMBED_MAX_INPUTS) {
        rc = serve_reply_error(rq, 400, NULL,
                               "'query' (a string) and 'documents' (1 to %d strings) are required",
                               EMBED_MAX_INPUTS);
        goto done;
    }
    b.toks = calloc((size_t)n, sizeof *b.toks);
    b.used = calloc((size_t)n, sizeof *b.used);
    sc = calloc((size_t)n, sizeof *sc);
    if (!b.toks || !b.used || !sc) {
        rc = serve_reply_error(rq, 500, NULL, "out of memory");
        goto done;
    }
    b.n = n;
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(docs, i),
                    *t = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, "text") : d;
        hearth_error he = {0};
        if (!cJSON_IsString(t)) {
            rc =
                serve_reply_error(rq, 400, NULL, "'documents[%d]' must be a string or {\"text\": string}", i);
            goto done;
        }
        if (sm->emb && hearth_rerank_tokenize(sm->model, query, strlen(query), t->valuestring,
                                              strlen(t->valuestring), &b.toks[i], &he)) {
            rc = serve_reply_error(rq, 400, NULL, "document %d: %s", i, he.msg);
            goto done;
        }
    }
    p.truncate = true; /* a long document is cut, as llama-server does */
    int st = run_embed(sm, &b, &p, true, err, sizeof err);
    if (st) {
        rc = serve_reply_error(rq, st, NULL, "%s", err);
        goto done;
    }
    for (int i = 0; i < n; i++)
        sc[i] = (scored){i, b.out[(size_t)i * b.dim]};
    qsort(sc, (size_t)n, sizeof *sc, by_score);
    int shown = top_n > 0 && top_n < n ? top_n : n;
    strbuf o = {0};
    strbuf_adds(&o, "{\"model\":");
    add_json_string(&o, sm->name);
    strbuf_adds(&o, ",\"object\":\"list\",\"results\":[");
    for (int i = 0; i < shown; i++) {
        strbuf_printf(&o, "%s{\"index\":%d,\"relevance_score\":%.9g", i ? "," : "", sc[i].index,
                      (double)sc[i].score);
        if (ret_docs) {
            const cJSON *d = cJSON_GetArrayItem(docs, sc[i].index);
            const cJSON *t = cJSON_IsObject(d) ? cJSON_GetObjectItemCaseSensitive(d, "text") : d;
            strbuf_adds(&o, ",\"document\":{\"text\":");
            add_json_string(&o, t->valuestring);
            strbuf_addc(&o, '}');
        }
        strbuf_addc(&o, '}');
    }
    strbuf_printf(&o, "],\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", b.n_tokens, b.n_tokens);
    rq->prompt_tokens = b.n_tokens;
    rc = reply_buf(rq, &o);
done:
    free(sc);
    batch_free(&b);
    cJSON_Delete(body);
    return rc;
}
