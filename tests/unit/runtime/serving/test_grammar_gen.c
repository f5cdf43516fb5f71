/*
 * test_grammar_gen.c - constrained generation through the engine on the
 * shared sample models: a property test (random seeds, temperature >= 1,
 * penalties on) whose every output must parse as JSON and validate against
 * its schema (a small validator below, independent of the grammar code), the
 * greedy path with a grammar (the device argmax is bypassed), EOS only where
 * the grammar can end, a lazy grammar that switches on at a trigger, and
 * that choosing tokens by checking candidates gives token for token what a
 * whole-vocabulary mask gives (an engine with grammar_full_mask beside).
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "runtime/serving/engine.h"
#include "test.h"

/* ---- a validator for the schema subset the test uses */
static bool validate(const cJSON *v, const cJSON *s) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (en) {
        for (const cJSON *e = en->child; e; e = e->next)
            if (cJSON_Compare(e, v, true)) return true;
        return false;
    }
    if (!t) return true;
    const char *ty = t->valuestring;
    if (!strcmp(ty, "string")) {
        if (!cJSON_IsString(v)) return false;
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
        return !mx || strlen(v->valuestring) <= (size_t)mx->valueint * 4; /* bytes bound code points x4 */
    }
    if (!strcmp(ty, "integer"))
        return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble;
    if (!strcmp(ty, "number")) return cJSON_IsNumber(v);
    if (!strcmp(ty, "boolean")) return cJSON_IsBool(v);
    if (!strcmp(ty, "array")) {
        if (!cJSON_IsArray(v)) return false;
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxItems"),
                    *mn = cJSON_GetObjectItemCaseSensitive(s, "minItems");
        int n = cJSON_GetArraySize(v);
        if ((mx && n > mx->valueint) || (mn && n < mn->valueint)) return false;
        for (const cJSON *e = v->child; e; e = e->next)
            if (!validate(e, cJSON_GetObjectItemCaseSensitive(s, "items"))) return false;
        return true;
    }
    if (!strcmp(ty, "object")) {
        if (!cJSON_IsObject(v)) return false;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        for (const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "required")->child; r; r = r->next)
            if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) return false;
        for (const cJSON *k = v->child; k; k = k->next) {
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, k->string);
            if (!ps || !validate(k, ps)) return false; /* additionalProperties: false */
        }
        return true;
    }
    return false;
}

static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"book\":{\"type\":\"string\",\"maxLength\":12},"
    "\"chapter\":{\"type\":\"integer\"},\"verses\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},"
    "\"maxItems\":3},"
    "\"kind\":{\"enum\":[\"law\",\"poetry\",\"gospel\"]},\"canon\":{\"type\":\"boolean\"}},"
    "\"required\":[\"book\",\"chapter\",\"kind\"],\"additionalProperties\":false}";

static void run_model(const char *file, hearth_backend *be) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(test_shared_path(path, sizeof path, file), &mp, &err);
    if (!m) {
        fprintf(stderr, "%s: %s\n", file, err.msg);
        CHECK(m != NULL);
        return;
    }
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.n_ctx = 512;
    cfg.n_parallel = 4;
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    cfg.grammar_full_mask = true;
    hearth_engine *full = hearth_engine_create(m, &cfg, &err);
    REQUIRE(full);
    hearth_grammar *g = hearth_grammar_from_json_schema(SCHEMA, strlen(SCHEMA), true, &err);
    REQUIRE(g);
    cJSON *schema = cJSON_Parse(SCHEMA);
    const char *prompt_text = "In the beginning God created the heaven and the earth.";
    hearth_tokens prompt = {0};
    REQUIRE(hearth_tokenizer_encode(m->tokenizer, prompt_text, strlen(prompt_text), true, false, &prompt,
                                    &err) == HEARTH_OK);
    int valid = 0, total = 0, ended = 0;
    for (int i = 0; i < 12; i++) {
        hearth_request r = {0};
        r.prompt = prompt.ids;
        r.n_prompt = (int)prompt.n;
        r.sampling = hearth_sampling_defaults();
        r.sampling.temperature = i < 10 ? 1.0f + 0.1f * (float)(i % 5) : 0.0f; /* the last two greedy */
        r.sampling.top_k = i % 2 ? 0 : 40;
        r.sampling.repeat_penalty = i % 3 ? 1.0f : 1.3f;
        r.sampling.seed = 1000 + (uint64_t)i;
        r.max_tokens = 300;
        r.grammar = g;
        hearth_completion c, cf;
        hearth_status st = hearth_engine_generate(e, &r, &c, &err);
        CHECKF(st == HEARTH_OK, "%s", err.msg);
        REQUIRE(hearth_engine_generate(full, &r, &cf, &err) == HEARTH_OK);
        CHECKF(c.tokens.n == cf.tokens.n &&
                   !memcmp(c.tokens.ids, cf.tokens.ids, c.tokens.n * sizeof *c.tokens.ids),
               "%s seed %d: checked and masked outputs differ:\n  %s\n  %s", file, i, c.text, cf.text);
        hearth_completion_free(&cf);
        total++;
        if (c.finish == HEARTH_FINISH_STOP) {
            ended++;
            cJSON *v = cJSON_Parse(c.text);
            bool ok = v && validate(v, schema);
            if (!ok) fprintf(stderr, "%s seed %d: invalid output: %s\n", file, i, c.text);
            valid += ok;
            cJSON_Delete(v);
        } else {
            fprintf(stderr, "%s seed %d: finish %s (%s) after %d tokens: %.200s\n", file, i,
                    hearth_finish_name(c.finish), c.error, c.stats.generated_tokens, c.text);
        }
        hearth_completion_free(&c);
    }
    hearth_engine_stats es, fs;
    hearth_engine_stats_get(e, &es);
    hearth_engine_stats_get(full, &fs);
    /* both ways were taken (this model knows no JSON, so its best candidates
     * are mostly refused and the mask decides most steps); the other engine
     * masks every one */
    CHECKF(es.grammar_checked > 0 && es.grammar_masked > 0 && fs.grammar_checked == 0 &&
               fs.grammar_masked == es.grammar_checked + es.grammar_masked,
           "%s: checked %llu masked %llu; full-mask engine checked %llu masked %llu", file,
           (unsigned long long)es.grammar_checked, (unsigned long long)es.grammar_masked,
           (unsigned long long)fs.grammar_checked, (unsigned long long)fs.grammar_masked);
    fprintf(stderr, "%s: %llu tokens by candidate check, %llu by mask\n", file,
            (unsigned long long)es.grammar_checked, (unsigned long long)es.grammar_masked);
    hearth_engine_free(full);
    /* every output that ended is valid; the model reaches the end in most runs */
    CHECKF(valid == ended && ended >= total / 2, "%s: %d valid of %d ended of %d", file, valid, ended, total);

    /* lazy: free text until "<json>" appears, then a JSON object (a
     * grammar that starts with the trigger). Forcing the trigger into the
     * prompt continuation is unreliable on a tiny model, so the trigger is
     * a common word of the corpus. */
    const char *lazy =
        "root ::= \"the\" [a-z]{0,8} [ ]? \"{\" [a-z ]{0,10} \"}\""; /* the token that brings the trigger may
                                                                        carry more letters */
    hearth_grammar *lg = hearth_grammar_parse(lazy, strlen(lazy), NULL, &err);
    REQUIRE(lg);
    const char *trig[] = {"the"};
    hearth_request r = {0};
    r.prompt = prompt.ids;
    r.n_prompt = (int)prompt.n;
    r.sampling = hearth_sampling_defaults();
    r.sampling.seed = 7;
    r.max_tokens = 120;
    r.grammar = lg;
    r.grammar_triggers = trig;
    r.n_grammar_triggers = 1;
    hearth_completion c;
    hearth_status lst = hearth_engine_generate(e, &r, &c, &err);
    CHECKF(lst == HEARTH_OK, "%s: lazy: %s: %s", file, err.msg, c.text);
    const char *at = strstr(c.text, "the");
    if (at) { /* after the trigger the text is exactly the grammar's */
        const char *close = strchr(at, '}');
        CHECKF(close && (c.finish == HEARTH_FINISH_STOP || c.finish == HEARTH_FINISH_LENGTH) &&
                   strchr(at, '{') && close[1] == 0,
               "lazy output: %s (%s)", c.text, hearth_finish_name(c.finish));
    }
    hearth_completion_free(&c);
    hearth_grammar_release(lg);

    cJSON_Delete(schema);
    hearth_tokens_free(&prompt);
    hearth_grammar_release(g);
    hearth_engine_free(e);
    hearth_model_free(m);
}

int main(void) {
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    run_model("models/hearth-kjv-llama-q8_0.gguf", be);
    run_model("models/hearth-kjv-qwen2-q8_0.gguf", be);
    hearth_backend_free(be);
    return test_summary("grammar_gen");
}
