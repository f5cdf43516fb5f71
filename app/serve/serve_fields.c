/*
 * serve_fields.c - which top-level request fields each POST route takes, so
 * a field Hearth does not act on is a 400 naming it instead of being dropped
 * without a word (a client that sends "logit_bias" or "echo" must learn that
 * it had no effect).
 *
 * Owner: the serve subsystem; called by serve_body_json for every JSON body.
 * Invariants:
 *  - a field is either read by the route's handler (the route's list here),
 *    a no-op whose value cannot change the answer ("user", "cache_prompt"),
 *    or a sampler knob that is accepted only at its neutral value
 *    (typical_p 1, dry_multiplier 0, ...): any other value is a 400 too;
 *  - a JSON null counts as absent (clients send "suffix": null and the like);
 *  - a path without a table (GET routes, unknown paths) is not checked here.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "serve.h"

/* Field groups several routes share; each list ends with NULL. */
#define SAMPLING                                                                                             \
    "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "repeat_last_n", "presence_penalty",         \
        "frequency_penalty", "seed", "mirostat"
#define GRAMMAR "format", "grammar", "json_schema", "response_format"
#define OPENAI_GEN                                                                                           \
    "model", "stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "stop", "ignore_eos",   \
        "speculative", "logprobs", "top_logprobs", "user", "store", "metadata", SAMPLING, GRAMMAR
#define LLAMA_GEN                                                                                            \
    "model", "prompt", "stream", "n_predict", "max_tokens", "stop", "ignore_eos", "speculative", "n_probs",  \
        "t_max_predict_ms", "cache_prompt", "id_slot", "n_keep", "mirostat_tau", "mirostat_eta", SAMPLING,   \
        GRAMMAR
#define OLLAMA_GEN "model", "stream", "keep_alive", "logprobs", "top_logprobs", "options", "think", "format"

static const char *const k_openai_chat[] = {
    OPENAI_GEN, "messages", "tools", "tool_choice", "parallel_tool_calls", "chat_template_kwargs",
    "think",    NULL};
static const char *const k_openai_completions[] = {OPENAI_GEN, "prompt", NULL};
static const char *const k_ollama_chat[] = {
    OLLAMA_GEN, "messages", "tools", "tool_choice", "parallel_tool_calls", "chat_template_kwargs", NULL};
static const char *const k_ollama_generate[] = {OLLAMA_GEN, "prompt", "system", "raw",
                                                "suffix",   "images", NULL};
static const char *const k_llama_completion[] = {LLAMA_GEN, NULL};
static const char *const k_llama_infill[] = {LLAMA_GEN, "input_prefix", "input_suffix", "input_extra", NULL};
static const char *const k_tokenize[] = {"model",         "content",     "add_special",
                                         "parse_special", "with_pieces", NULL};
static const char *const k_detokenize[] = {"model", "tokens", NULL};
static const char *const k_openai_embed[] = {"model", "input", "encoding_format", "dimensions", "user", NULL};
static const char *const k_ollama_embed[] = {"model",   "input",      "truncate", "dimensions",
                                             "options", "keep_alive", NULL};
static const char *const k_ollama_embeddings[] = {"model", "prompt", "options", "keep_alive", NULL};
static const char *const k_llama_embed[] = {"model", "content", "input", "embd_normalize", NULL};
static const char *const k_rerank[] = {"model", "query", "documents", "top_n", "return_documents", NULL};
static const char *const k_model_name[] = {"model", "name", "verbose", NULL};
static const char *const k_pull[] = {"model", "name", "stream", "insecure", NULL};
static const char *const k_copy[] = {"source", "destination", NULL};

static const struct {
    const char *path;
    const char *const *known;
} k_routes[] = {
    {"/v1/chat/completions", k_openai_chat},
    {"/chat/completions", k_openai_chat},
    {"/v1/completions", k_openai_completions},
    {"/api/chat", k_ollama_chat},
    {"/api/generate", k_ollama_generate},
    {"/completion", k_llama_completion},
    {"/completions", k_llama_completion},
    {"/infill", k_llama_infill},
    {"/tokenize", k_tokenize},
    {"/detokenize", k_detokenize},
    {"/v1/embeddings", k_openai_embed},
    {"/api/embed", k_ollama_embed},
    {"/api/embeddings", k_ollama_embeddings},
    {"/embedding", k_llama_embed},
    {"/embeddings", k_llama_embed},
    {"/v1/rerank", k_rerank},
    {"/rerank", k_rerank},
    {"/v1/reranking", k_rerank},
    {"/api/show", k_model_name},
    {"/api/delete", k_model_name},
    {"/api/pull", k_pull},
    {"/api/copy", k_copy},
};

/* llama.cpp sampler knobs Hearth does not have: accepted at the value that
 * turns them off (what llama.cpp's own web UI sends by default). */
static const struct {
    const char *name;
    double off;
} k_neutral[] = {
    {"typical_p", 1},       {"tfs_z", 1},        {"dynatemp_range", 0}, {"dry_multiplier", 0},
    {"xtc_probability", 0}, {"top_n_sigma", -1}, {"penalize_nl", 0},    {"dynatemp_exponent", 1},
};

static bool in_list(const char *const *known, const char *key) {
    for (; *known; known++)
        if (!strcmp(*known, key)) return true;
    return false;
}

/* A neutral knob at its off value: true. A number or a boolean compares. */
static bool neutral_ok(const cJSON *v, int *idx) {
    for (size_t i = 0; i < sizeof k_neutral / sizeof k_neutral[0]; i++) {
        if (strcmp(v->string, k_neutral[i].name)) continue;
        *idx = (int)i;
        double x = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : cJSON_IsNumber(v) ? v->valuedouble : NAN;
        return fabs(x - k_neutral[i].off) < 1e-6;
    }
    *idx = -1;
    return false;
}

bool serve_fields_check(const char *path, const cJSON *body, char *msg, size_t cap) {
    const char *const *known = NULL;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (!strcmp(path, k_routes[i].path)) known = k_routes[i].known;
    if (!known) return true;
    const cJSON *v;
    cJSON_ArrayForEach(v, body) {
        if (!v->string || cJSON_IsNull(v) || in_list(known, v->string)) continue;
        int ni;
        if (neutral_ok(v, &ni)) continue;
        if (ni >= 0)
            snprintf(
                msg, cap,
                "'%.60s' is not supported by Hearth's sampler: leave it out or send %g (off); the samplers "
                "are temperature, top_k, top_p, min_p, the penalties and seed",
                v->string, k_neutral[ni].off);
        else
            snprintf(msg, cap,
                     "'%.60s' is not supported on %s; remove it (docs/API.md lists the fields each route "
                     "takes)",
                     v->string, path);
        return false;
    }
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(body, "store");
    if (store && in_list(known, "store") && cJSON_IsTrue(store)) {
        snprintf(msg, cap, "'store': true is not supported: Hearth keeps no copy of completions; send false");
        return false;
    }
    return true;
}
