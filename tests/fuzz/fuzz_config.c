/*
 * fuzz_config.c - libFuzzer target for the config reader (app/cli/config.c).
 *
 * Feeds arbitrary bytes to hearth_config_load_memory. On failure the error
 * must carry the "fuzz.yaml:" location prefix and the config must be back at
 * its defaults; on success every promise config.h makes must hold: strings
 * NUL-terminated (ASan reads them), values in range, default_model and every
 * draft naming a model, find_model agreeing with the list. Then a few
 * overrides go through hearth_config_set, which must either apply or leave
 * the config unchanged.
 * Ownership: the input belongs to libFuzzer; the config is freed here.
 */
#include "app/cli/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t sink;

static void check(int cond) {
    if (!cond) abort();
}

static void touch(const char *s) {
    if (s) sink += strlen(s);
}

static void check_model(const hearth_config *c, const hearth_config_model *m) {
    touch(m->name);
    touch(m->chat_template);
    touch(m->chat_template_file);
    touch(m->system_prompt);
    check(m->name && m->path && *m->path);
    check(hearth_config_find_model(c, m->name) != NULL);
    check(m->max_tokens >= -1);
    check(m->sampling.temperature >= 0 && m->sampling.top_k >= 0);
    check(m->sampling.top_p >= 0 && m->sampling.top_p <= 1 && m->sampling.min_p >= 0 &&
          m->sampling.min_p <= 1);
    check(m->sampling.repeat_penalty > 0);
    if (m->draft) check(strcmp(m->draft, m->name) && hearth_config_find_model(c, m->draft));
}

static void check_config(const hearth_config *c) {
    touch(c->backend);
    touch(c->prefix_cache.path);
    touch(c->server.socket);
    touch(c->server.listen);
    touch(c->server.api_key);
    touch(c->chat.history_db);
    check(memchr(c->backend, 0, sizeof c->backend) != NULL);
    check(c->threads >= 0 && c->gpu_layers >= -1 && c->parallel >= 0 && c->batch >= 0);
    check(c->context == 0 || c->context >= 16);
    check(c->kv_type == HEARTH_F16 || c->kv_type == HEARTH_F32 || c->kv_type == HEARTH_Q8_0);
    check(c->n_models >= 0 && (c->n_models == 0 || c->models));
    for (int i = 0; i < c->n_models; i++)
        check_model(c, &c->models[i]);
    if (c->default_model)
        check(hearth_config_find_model(c, NULL) == hearth_config_find_model(c, c->default_model));
    if (c->n_models) check(hearth_config_find_model(c, NULL) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hearth_config c;
    hearth_error err;
    if (hearth_config_load_memory((const char *)data, size, "fuzz.yaml", &c, &err) != HEARTH_OK) {
        check(err.code != HEARTH_OK && strncmp(err.msg, "fuzz.yaml", 9) == 0);
        check(c.n_models == 0 && c.models == NULL && c.default_model == NULL);
        hearth_config_free(&c);
        return 0;
    }
    check_config(&c);

    /* overrides: applied, or refused with the config unchanged */
    static const char *const sets[][2] = {
        {"threads", "four"},
        {"threads", "3"},
        {"context", "8"},
        {"backend", "vulkan:2"},
        {"server.listen", "[::1]:1"},
        {"prefix_cache.max_size", "1.5GiB"},
        {"default_model", "x"},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        int before = c.threads, ctx = c.context;
        if (hearth_config_set(&c, sets[i][0], sets[i][1], &err) != HEARTH_OK)
            check(c.threads == before && c.context == ctx && err.msg[0]);
    }
    if (c.n_models) {
        char key[300];
        size_t n = strlen(c.models[0].name);
        if (n < 200) {
            memcpy(key, "models.", 7);
            memcpy(key + 7, c.models[0].name, n);
            memcpy(key + 7 + n, ".top_p", 7);
            check(hearth_config_set(&c, key, "0.5", &err) == HEARTH_OK && c.models[0].sampling.top_p == 0.5f);
            check(hearth_config_set(&c, key, "2", &err) == HEARTH_ERR_INVALID &&
                  c.models[0].sampling.top_p == 0.5f);
        }
    }
    check_config(&c);
    hearth_config_free(&c);
    return 0;
}
