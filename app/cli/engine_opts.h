/*
 * engine_opts.h - the one set of engine options that `hearth run`, `chat`,
 * `serve` and `bench --concurrency` share: backend, threads, GPU layers,
 * context, batch, parallel sequences, queue length, KV cache type and the
 * prefix cache.
 *
 * One table (engine_opts.c) gives each option its flag, its config-file key,
 * its type, its default and its help line. A command resolves the options in
 * a fixed order: app_engine_opts_defaults, then app_engine_opts_apply_config
 * (the file's top-level engine keys, prefix_cache.* and server.max_waiting),
 * then the flags: app_engine_opts_args adds the table's flags to the
 * command's own arg_opt table, arg_parse stores their text, and
 * app_engine_opts_apply_flags checks and applies it. A bad value gives a
 * message that names the flag and says what is accepted.
 *
 * Flag values are checked by hearth_config_set (the same parsing and ranges
 * as the config file). The resolved options own their strings (copies), so
 * they outlive the config and argv they came from.
 * No global state; nothing here prints except app_engine_opts_print_json
 * (stdout, for --print-config) and app_engine_opts_load (stderr notes).
 */
#ifndef HEARTH_APP_ENGINE_OPTS_H
#define HEARTH_APP_ENGINE_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "app/cli/args.h"
#include "app/cli/config.h"
#include "backends/backend.h"
#include "runtime/model/model.h"
#include "runtime/serving/engine.h"

/* Engine options in the table (not counting --print-config). */
#define APP_ENGINE_OPTS_N 20
/* Room for a command's own options plus the engine's. */
#define APP_ARGS_MAX 64

typedef struct app_engine_opts {
    char backend[16];         /* "auto" (default), "cpu", "cuda[:N]", "vulkan[:N]" */
    int threads;              /* 0: physical cores */
    int gpu_layers;           /* HEARTH_GPU_LAYERS_ALL (-1, default) or a layer count */
    int n_cpu_moe;            /* --n-cpu-moe: leading layers whose experts stay on the CPU (--cpu-moe: all) */
    int ctx;                  /* 0: the model's trained context, cut to what fits in memory */
    int batch;                /* token budget per engine step (default 512) */
    int parallel;             /* 0: the command's default (run, chat 1; serve 8; bench --concurrency) */
    int max_waiting;          /* queued requests before the engine refuses (default 256) */
    hearth_dtype kv_type;     /* F16 (default), F32, Q8_0 */
    bool prefix_cache;        /* default true */
    bool cache_memory_only;   /* true: keep the prefix cache in memory (--cache-db none) */
    char cache_db[1024];      /* "": the default file (hearth_cache_store_default_path) */
    uint64_t cache_max_bytes; /* 0: the store's default (2 GiB) */
    hearth_spec_mode spec;    /* --spec (default off) */
    int draft_max, draft_min; /* --draft-max (default 8), --draft-min (default 1) */
    int spec_max_batch;       /* --spec-max-batch: speculate only in steps of at most this many sequences */
    int draft_gpu_layers;     /* --draft-gpu-layers: the draft's layers on the GPU (-2: as --gpu-layers) */
    hearth_spec_k_policy spec_k; /* --spec-k: how K is chosen (default cost) */
    bool print_config;           /* --print-config: print the resolved options as JSON and exit */
    bool bench_defaults;         /* bench: the prefix cache defaults to memory only (see below) */
    /* --draft MODEL: a GGUF path, pulled name or config model name ("": none) */
    char draft[1024];
    /* the config file app_engine_opts_apply_config read (borrowed; NULL: none, or freed) */
    const hearth_config *config;
    /* where each value came from: "default", "config" or "flag" */
    const char *source[APP_ENGINE_OPTS_N];
    /* arg_parse writes the flags' text here; app_engine_opts_apply_flags reads it */
    const char *raw[APP_ENGINE_OPTS_N];
    bool raw_flag[APP_ENGINE_OPTS_N];
    /* the command defines a flag of this name itself (bench's -t list), so
     * app_engine_opts_args and the help leave the engine's one out */
    bool shadowed[APP_ENGINE_OPTS_N];
} app_engine_opts;

/* (a) Every option at its default. */
void app_engine_opts_defaults(app_engine_opts *eo);

/* Bench's one documented difference: the prefix cache stays in memory unless
 * --cache-db names a file, so a persistent cache left by earlier runs cannot
 * make "cold" prompt figures warm (the config file's prefix_cache.path is not
 * used by bench). Call after the defaults, before the config. */
void app_engine_opts_bench_defaults(app_engine_opts *eo);

/* (b) The config file's engine keys over the current values; keys the file
 * leaves at "0 = default" change nothing. cfg may be NULL. */
void app_engine_opts_apply_config(app_engine_opts *eo, const hearth_config *cfg);

/* Copy the command's own n_own options into out (cap entries) and append the
 * engine options (their targets in eo) and --print-config. Returns how many
 * entries out holds; the engine entries have no help text of their own (so
 * arg_print_help skips them): app_engine_opts_print_help prints them. */
int app_engine_opts_args(app_engine_opts *eo, const arg_opt *own, int n_own, arg_opt *out, int cap);

/* (c) Check and apply the flags arg_parse stored. On a bad value prints
 * "hearth CMD: --FLAG 'VALUE': what is accepted (see hearth CMD --help)" to
 * stderr and returns false. */
bool app_engine_opts_apply_flags(app_engine_opts *eo, const char *cmd);

/* (d) The engine options' --help lines (after arg_print_help's). */
void app_engine_opts_print_help(const app_engine_opts *eo, FILE *f);

/* arg_parse with the engine options: parses, prints the full help for
 * --help, applies the flags. Returns 0, 1 after --help, -1 on a usage error
 * (message printed). */
int app_engine_opts_parse(app_engine_opts *eo, const char *cmd, const char *usage, const char *desc,
                          const arg_opt *own, int n_own, int argc, char **argv, const char **pos, int max_pos,
                          int *n_pos);

/* (e) The engine config: hearth_engine_defaults() with the options applied;
 * default_parallel is used when eo->parallel is 0. ec->cache_db may point
 * into eo (or into db_buf, which receives the default file's path), so eo
 * and db_buf must outlive ec. */
void app_engine_opts_engine_config(const app_engine_opts *eo, int default_parallel, hearth_engine_config *ec,
                                   char *db_buf, size_t db_cap);

/* (e) Open the backend and the model with the options (see app_load). */
bool app_engine_opts_load(const app_engine_opts *eo, const char *cmd, const char *model_path, bool quiet,
                          hearth_backend **be_out, hearth_model **model_out);

/* The draft model for target m: --draft, else the target's config entry's
 * draft (cm->draft; cm may be NULL), each a config model name, a pulled name
 * or a GGUF path. Loads it on m's backend (with --draft-gpu-layers, by
 * default the target's --gpu-layers) and sets
 * ec->draft and ec->spec to draft -- unless --spec or speculative.mode chose
 * another mode, when nothing is loaded. *draft_out: the model (the caller frees it after the
 * engine), NULL when none is asked for. On failure err says "draft model
 * 'NAME': why". */
hearth_status app_engine_opts_open_draft(const app_engine_opts *eo, const hearth_config_model *cm,
                                         hearth_model *m, hearth_engine_config *ec, hearth_model **draft_out,
                                         hearth_error *err);
/* The GPU layers the draft model loads with: --draft-gpu-layers /
 * speculative.draft_gpu_layers, else --gpu-layers. */
int app_engine_opts_draft_gpu_layers(const app_engine_opts *eo);

/* --print-config: the resolved options (and the engine config they give) as
 * one JSON object on stdout. model may be NULL. Returns 0, or 1 when out of
 * memory. */
int app_engine_opts_print_json(const app_engine_opts *eo, const char *cmd, const char *model,
                               int default_parallel);

/* Load the config file for command cmd: --config PATH from argv, else the
 * default file (missing: defaults). On an error prints "hearth CMD: ..." and
 * returns false; cfg is initialised either way (free it). */
bool app_engine_opts_load_config(const char *cmd, int argc, char **argv, hearth_config *cfg);

#endif
