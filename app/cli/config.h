/*
 * config.h - the user's configuration file (YAML), read into one plain struct.
 *
 * Where it lives: --config PATH, else $XDG_CONFIG_HOME/hearth/config.yaml,
 * else ~/.config/hearth/config.yaml. A missing default file means "all
 * defaults"; a missing file the user named is an error. docs/CONFIG.md
 * documents every key; packaging/config.example.yaml is a commented example.
 *
 * Errors name the place: "FILE:LINE:COL: message" (1-based) for YAML syntax
 * errors, unknown keys (with a "did you mean" suggestion), wrong types,
 * out-of-range values, duplicate keys, a default_model or draft that names no
 * configured model, and a top level that is not a mapping. Errors are
 * HEARTH_ERR_FORMAT (content), HEARTH_ERR_IO (unreadable file) or
 * HEARTH_ERR_NOMEM.
 *
 * Flags over the file: a command loads the config first, then applies its
 * flags on top, either by seeding its flag variables from the struct before
 * parsing argv, or by calling hearth_config_set("threads", "4") per flag
 * (same parsing and range checks as the file; tests/unit/app/test_config.c
 * shows both).
 *
 * Ownership: every string in a hearth_config is owned by it (malloc'd) and
 * freed by hearth_config_free. Helpers that fill engine/sampling structs
 * borrow those strings: the config must outlive what they fill.
 * Invariants after a successful load: paths have "~" expanded and relative
 * file paths resolved against the config file's directory; every value is
 * within its documented range; default_model and every draft name a model in
 * `models`; $HEARTH_API_KEY (when set) has replaced server.api_key.
 * No global state; the runtime never prints.
 */
#ifndef HEARTH_CONFIG_H
#define HEARTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "runtime/serving/sampling.h"

typedef struct hearth_engine_config hearth_engine_config; /* engine.h */

/* One entry of `models:`. */
typedef struct hearth_config_model {
    char *name;          /* the key under models: */
    char *path;          /* GGUF file (resolved) */
    char *chat_template; /* Jinja text (inline, or read from chat_template_file); NULL: the model's own */
    char *chat_template_file;        /* where chat_template was read from (resolved), or NULL */
    char *draft;                     /* name of another model used for speculative decoding, or NULL */
    char *system_prompt;             /* NULL: none */
    int max_tokens;                  /* 0: the command's default; -1: until the context is full */
    hearth_sampling_params sampling; /* hearth_sampling_defaults() with the file's keys applied */
} hearth_config_model;

typedef struct hearth_config {
    char *path; /* the file read; NULL when the defaults were used */

    char *default_model;         /* NULL: the first model listed (see hearth_config_find_model) */
    hearth_config_model *models; /* in file order */
    int n_models;

    char backend[16];     /* "auto" (default), "cpu", "cuda", "cuda:N", "vulkan", "vulkan:N" */
    int gpu_layers;       /* layers offloaded to the GPU; -1: all (default) */
    int n_cpu_moe;        /* leading layers whose MoE experts stay on the CPU; 0 (default): none */
    bool cpu_moe;         /* every layer's experts on the CPU (n_cpu_moe = all) */
    int threads;          /* CPU threads; 0: physical cores (default) */
    int context;          /* tokens per sequence; 0: the model's trained context (default) */
    int parallel;         /* sequences at once; 0: the command's default */
    int batch;            /* token budget per step; 0: the engine's default (512) */
    hearth_dtype kv_type; /* F16 (default), F32 or Q8_0 */

    struct {
        bool enabled;      /* default true */
        char *path;        /* SQLite file; NULL: hearth_cache_store_default_path() */
        uint64_t max_size; /* bytes; 0: the store's default (2 GiB) */
    } prefix_cache;

    struct {
        int mode;      /* hearth_spec_mode: HEARTH_SPEC_OFF (default) or HEARTH_SPEC_NGRAM */
        int draft_max; /* 0: the engine's default (8) */
        int draft_min; /* 0: the engine's default (1) */
        int max_batch; /* 0: the engine's default (4): speculate only in steps of at most this many */
        int draft_gpu_layers; /* the draft model's GPU layers; -2 (unset): as gpu_layers */
        int k;                /* hearth_spec_k_policy: HEARTH_SPEC_K_COST (default) or HEARTH_SPEC_K_STEP */
    } speculative;

    struct {
        char *socket;      /* Unix socket path, or NULL */
        char *listen;      /* "HOST:PORT"; NULL: the server's default */
        char *api_key;     /* NULL: no authentication */
        uint64_t max_body; /* request body cap in bytes; 0: the server's default */
        int max_waiting;   /* queued requests before 503; 0: the engine's default */
    } server;

    struct {
        char *history_db; /* conversation database for `hearth chat`; NULL: its default */
    } chat;
} hearth_config;

/* All defaults, no models. Free with hearth_config_free (a no-op for this). */
void hearth_config_init(hearth_config *cfg);

/* Read `path` (NULL: hearth_config_default_path(), where a missing file
 * just gives the defaults) into *out. On failure *out is left initialised
 * (defaults) and err says where and why. */
hearth_status hearth_config_load(const char *path, hearth_config *out, hearth_error *err);

/* Parse n bytes of YAML. `name` is used in messages and to resolve relative
 * paths (against its directory; NULL: "<config>", paths relative to the
 * current directory). Same results and errors as hearth_config_load. */
hearth_status hearth_config_load_memory(const char *data, size_t n, const char *name, hearth_config *out,
                                        hearth_error *err);

void hearth_config_free(hearth_config *cfg);

/* $XDG_CONFIG_HOME/hearth/config.yaml (when it is absolute), else
 * $HOME/.config/hearth/config.yaml. Returns buf, or NULL when no home
 * directory is known or the path does not fit in cap. */
char *hearth_config_default_path(char *buf, size_t cap);

/* The model called `name`; name NULL: the default model (default_model, or
 * the first listed). NULL when there is none. */
const hearth_config_model *hearth_config_find_model(const hearth_config *cfg, const char *name);

/* Override one setting as if the file had said it: key is a dotted path
 * ("threads", "prefix_cache.max_size", "server.listen",
 * "models.NAME.temperature"), value its text ("4", "2GiB", "~/x.sqlite").
 * Paths are taken relative to the current directory ("~" expanded). The same
 * type and range checks apply; errors read "KEY: message". On failure the
 * config is unchanged. */
hearth_status hearth_config_set(hearth_config *cfg, const char *key, const char *value, hearth_error *err);

/* The config's engine keys reach an engine through app/cli/engine_opts.h
 * (defaults < config file < flags), the one path every command takes. */

/* Sampling for model m (hearth_sampling_defaults() when m is NULL). */
hearth_sampling_params hearth_config_sampling(const hearth_config_model *m);

/* Parse a size: a non-negative number with an optional unit B, KB, MB, GB,
 * TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), case-insensitive,
 * optional space: "512", "64 KiB", "1.5GB". False on junk or overflow. */
bool hearth_config_parse_size(const char *s, uint64_t *out);

#endif
