/*
 * engine_opts.c - see engine_opts.h. The table k_opts is the one place an
 * engine option is defined: its flag, config-file key, type, range, default
 * and help line. Adding a row adds the flag to run, chat, serve and bench,
 * its config key, its --help line and its --print-config field (and it must
 * be added to docs/CONFIG.md and tests/cli/test_engine_flags.sh).
 *
 * Invariants: the options are resolved as defaults < config file < flags;
 * a failed flag leaves the options as they were before that flag; every
 * string is copied into the app_engine_opts.
 */
#include "engine_opts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/common.h"
#include "runtime/store/cache_store.h"

typedef enum eo_type {
    EO_INT,     /* int in [min, max] (or 0 when zero_ok) */
    EO_BACKEND, /* char[16], checked like the config file's backend */
    EO_KV_TYPE, /* f16, f32, q8_0 */
    EO_OFF,     /* a flag that turns a bool off (--no-prefix-cache) */
    EO_CACHE_DB,
    EO_SIZE,    /* uint64_t bytes with an optional unit */
    EO_SPEC,    /* speculative decoding mode: ngram, draft, off */
    EO_PATH,    /* char[1024]: a model path or name */
    EO_SPEC_K,  /* how speculation chooses K: cost, step */
    EO_ALL_MOE, /* a flag that sets n_cpu_moe to every layer (--cpu-moe) */
} eo_type;

enum {
    OPT_BACKEND,
    OPT_THREADS,
    OPT_GPU_LAYERS,
    OPT_CTX,
    OPT_BATCH,
    OPT_PARALLEL,
    OPT_MAX_WAITING,
    OPT_KV_TYPE,
    OPT_NO_PREFIX_CACHE,
    OPT_CACHE_DB,
    OPT_CACHE_MAX_SIZE,
    OPT_SPEC,
    OPT_DRAFT_MAX,
    OPT_DRAFT_MIN,
    OPT_DRAFT,
    OPT_SPEC_MAX_BATCH,
    OPT_DRAFT_GPU_LAYERS,
    OPT_SPEC_K,
    OPT_N_CPU_MOE,
    OPT_CPU_MOE,
};

typedef struct eo_def {
    const char *short_name; /* "-t" or NULL */
    const char *long_name;  /* "--threads" */
    const char *key;        /* config-file key; also the --print-config field */
    eo_type type;
    size_t off; /* into app_engine_opts */
    int min, max;
    bool zero_ok;
    const char *metavar;
    const char *help;     /* includes the default */
    const char *accepted; /* what a bad value is told */
} eo_def;

#define EO(f) offsetof(app_engine_opts, f)

static const eo_def k_opts[APP_ENGINE_OPTS_N] = {
    [OPT_BACKEND] = {NULL, "--backend", "backend", EO_BACKEND, EO(backend), 0, 0, false, "NAME",
                     "auto, cpu, cuda[:N], vulkan[:N] (default auto)",
                     "expected auto, cpu, cuda, cuda:N, vulkan or vulkan:N"},
    [OPT_THREADS] = {"-t", "--threads", "threads", EO_INT, EO(threads), 1, 4096, true, "N",
                     "CPU threads (default 0: physical cores)", "expected 0 (physical cores) to 4096"},
    [OPT_GPU_LAYERS] = {"-ngl", "--gpu-layers", "gpu_layers", EO_INT, EO(gpu_layers), -1, 100000, false, "N",
                        APP_GPU_LAYERS_HELP, "give a layer count (0 = none on the GPU) or -1 for all"},
    [OPT_CTX] =
        {"-c", "--ctx", "context", EO_INT, EO(ctx), 16, 16777216, true, "N",
         "context length per sequence (default 0: the model's trained context, cut to what fits in memory)",
         "expected 0 (the model's) or 16 to 16777216"},
    [OPT_BATCH] = {"-b", "--batch", "batch", EO_INT, EO(batch), 1, 1048576, false, "N",
                   "token budget per engine step (default 512)", "expected 1 to 1048576"},
    [OPT_PARALLEL] = {"-np", "--parallel", "parallel", EO_INT, EO(parallel), 1, 4096, true, "N",
                      "sequences decoded at once (default 0: run and chat 1, serve 8, bench --concurrency)",
                      "expected 0 (the command's default) or 1 to 4096"},
    [OPT_MAX_WAITING] = {NULL, "--max-waiting", "server.max_waiting", EO_INT, EO(max_waiting), 1, 1000000,
                         false, "N", "queued requests before the engine refuses more (default 256)",
                         "expected 1 to 1000000"},
    [OPT_KV_TYPE] = {NULL, "--kv-type", "kv_type", EO_KV_TYPE, EO(kv_type), 0, 0, false, "TYPE",
                     "KV cache type: f16 (default), f32, q8_0", "is not one of f16, f32, q8_0"},
    [OPT_NO_PREFIX_CACHE] = {NULL, "--no-prefix-cache", "prefix_cache.enabled", EO_OFF, EO(prefix_cache), 0,
                             0, false, NULL, "compute every prompt token, cache nothing", NULL},
    [OPT_CACHE_DB] =
        {NULL, "--cache-db", "prefix_cache.path", EO_CACHE_DB, EO(cache_db), 0, 0, false, "PATH",
         "prefix-cache database (default $XDG_CACHE_HOME/hearth/prefix-cache.sqlite; 'none': memory "
         "only)",
         "expected a file path, or none"},
    [OPT_CACHE_MAX_SIZE] = {NULL, "--cache-max-size", "prefix_cache.max_size", EO_SIZE, EO(cache_max_bytes),
                            0, 0, false, "SIZE", "largest prefix-cache database, e.g. 512MiB (default 2GiB)",
                            "expected a size such as 512MiB or 2GB"},
    [OPT_SPEC] = {NULL, "--spec", "speculative.mode", EO_SPEC, EO(spec), 0, 0, false, "MODE",
                  "speculative decoding (greedy and sampled requests, not grammars): ngram (draft from "
                  "earlier text), draft (a draft "
                  "model, the default with --draft), off (default)",
                  "is not a speculation mode (ngram, draft, off)"},
    [OPT_DRAFT_MAX] = {NULL, "--draft-max", "speculative.draft_max", EO_INT, EO(draft_max), 1, 32, false, "K",
                       "most tokens drafted per step: the cost rule's cap, where the step rule starts "
                       "(default 8)",
                       "is not a whole number from 1 to 32"},
    [OPT_DRAFT_MIN] = {NULL, "--draft-min", "speculative.draft_min", EO_INT, EO(draft_min), 1, 32, false, "K",
                       "adaptive K never drafts fewer than this (default 1)",
                       "is not a whole number from 1 to 32"},
    [OPT_DRAFT] = {NULL, "--draft", "models.NAME.draft", EO_PATH, EO(draft), 0, 0, false, "MODEL",
                   "draft model for speculative decoding (a GGUF file, pulled name or config model name) "
                   "with the model's vocabulary; turns on --spec draft",
                   "expected a model file or name"},
    [OPT_SPEC_MAX_BATCH] = {NULL, "--spec-max-batch", "speculative.max_batch", EO_INT, EO(spec_max_batch), 1,
                            64, false, "N",
                            "speculate only in steps running at most N sequences; larger steps decode "
                            "plainly (default 4, measured: docs/BENCHMARKS.md)",
                            "is not a whole number from 1 to 64"},
    [OPT_DRAFT_GPU_LAYERS] = {NULL, "--draft-gpu-layers", "speculative.draft_gpu_layers", EO_INT,
                              EO(draft_gpu_layers), -1, 100000, false, "N",
                              "the draft model's layers on the GPU, the rest on the CPU (default: as "
                              "--gpu-layers; 0 runs the draft on the CPU beside a GPU target)",
                              "expected -1 (all) or 0 to 100000"},
    [OPT_SPEC_K] = {NULL, "--spec-k", "speculative.k", EO_SPEC_K, EO(spec_k), 0, 0, false, "HOW",
                    "how many tokens to draft: cost (default: the K with the most tokens per unit of "
                    "measured time, 0 when a draft would not pay) or step (+1 when all drafts were kept, "
                    "-1 when under half were); within --draft-min..--draft-max",
                    "is not a way to choose K (cost, step)"},
    [OPT_N_CPU_MOE] = {NULL, "--n-cpu-moe", "n_cpu_moe", EO_INT, EO(n_cpu_moe), 0, HEARTH_CPU_MOE_ALL, true,
                       "N", APP_N_CPU_MOE_HELP, APP_N_CPU_MOE_ACCEPTED},
    [OPT_CPU_MOE] = {NULL, "--cpu-moe", "cpu_moe", EO_ALL_MOE, EO(n_cpu_moe), 0, 0, false, NULL,
                     "every layer's experts on the CPU: --n-cpu-moe with all layers", NULL},
};

#define BENCH_CACHE_DB_HELP                                                                                  \
    "prefix-cache database (bench default: memory only, so a cache left by earlier runs cannot warm cold "   \
    "figures; the config file's prefix_cache.path is not used)"

static void *field_of(app_engine_opts *eo, int i) {
    return (char *)eo + k_opts[i].off;
}

/* ------------------------------------------------------------ (a) defaults */

void app_engine_opts_defaults(app_engine_opts *eo) {
    memset(eo, 0, sizeof *eo);
    snprintf(eo->backend, sizeof eo->backend, "auto");
    eo->gpu_layers = HEARTH_GPU_LAYERS_ALL;
    eo->batch = 512;
    eo->max_waiting = 256;
    eo->kv_type = HEARTH_F16;
    eo->draft_max = 8;
    eo->draft_min = 1;
    eo->spec_max_batch = hearth_engine_defaults().spec_max_batch;
    eo->draft_gpu_layers = -2;
    eo->prefix_cache = true;
    for (int i = 0; i < APP_ENGINE_OPTS_N; i++)
        eo->source[i] = "default";
}

void app_engine_opts_bench_defaults(app_engine_opts *eo) {
    eo->bench_defaults = true;
    eo->cache_memory_only = true;
    eo->source[OPT_CACHE_DB] = "bench default";
}

/* ------------------------------------------------------------ (b) the config file */

static void set_cache_db(app_engine_opts *eo, const char *path) {
    eo->cache_memory_only = !strcmp(path, "none");
    snprintf(eo->cache_db, sizeof eo->cache_db, "%s", eo->cache_memory_only ? "" : path);
}

void app_engine_opts_apply_config(app_engine_opts *eo, const hearth_config *cfg) {
    if (!cfg) return;
    eo->config = cfg;
    hearth_config d; /* what the file says when it says nothing */
    hearth_config_init(&d);
    const char *src = "config";
    if (cfg->backend[0] && strcmp(cfg->backend, d.backend)) {
        snprintf(eo->backend, sizeof eo->backend, "%s", cfg->backend);
        eo->source[OPT_BACKEND] = src;
    }
    struct {
        int opt, value, unset;
    } ints[] = {
        {OPT_THREADS, cfg->threads, d.threads},
        {OPT_GPU_LAYERS, cfg->gpu_layers, d.gpu_layers},
        {OPT_CTX, cfg->context, d.context},
        {OPT_BATCH, cfg->batch, d.batch},
        {OPT_PARALLEL, cfg->parallel, d.parallel},
        {OPT_MAX_WAITING, cfg->server.max_waiting, 0},
        {OPT_DRAFT_MAX, cfg->speculative.draft_max, d.speculative.draft_max},
        {OPT_DRAFT_MIN, cfg->speculative.draft_min, d.speculative.draft_min},
        {OPT_SPEC_MAX_BATCH, cfg->speculative.max_batch, d.speculative.max_batch},
        {OPT_DRAFT_GPU_LAYERS, cfg->speculative.draft_gpu_layers, d.speculative.draft_gpu_layers},
        {OPT_N_CPU_MOE, cfg->n_cpu_moe, d.n_cpu_moe},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        if (ints[k].value == ints[k].unset) continue;
        *(int *)field_of(eo, ints[k].opt) = ints[k].value;
        eo->source[ints[k].opt] = src;
    }
    if (cfg->cpu_moe) { /* cpu_moe: true wins over n_cpu_moe, as --cpu-moe over --n-cpu-moe */
        eo->n_cpu_moe = HEARTH_CPU_MOE_ALL;
        eo->source[OPT_CPU_MOE] = eo->source[OPT_N_CPU_MOE] = src;
    }
    if (cfg->speculative.mode != d.speculative.mode) {
        eo->spec = (hearth_spec_mode)cfg->speculative.mode;
        eo->source[OPT_SPEC] = src;
    }
    if (cfg->speculative.k != d.speculative.k) {
        eo->spec_k = (hearth_spec_k_policy)cfg->speculative.k;
        eo->source[OPT_SPEC_K] = src;
    }
    if (cfg->kv_type != d.kv_type) {
        eo->kv_type = cfg->kv_type;
        eo->source[OPT_KV_TYPE] = src;
    }
    if (cfg->prefix_cache.enabled != d.prefix_cache.enabled) {
        eo->prefix_cache = cfg->prefix_cache.enabled;
        eo->source[OPT_NO_PREFIX_CACHE] = src;
    }
    if (cfg->prefix_cache.path && !eo->bench_defaults) {
        set_cache_db(eo, cfg->prefix_cache.path);
        eo->source[OPT_CACHE_DB] = src;
    }
    if (cfg->prefix_cache.max_size) {
        eo->cache_max_bytes = cfg->prefix_cache.max_size;
        eo->source[OPT_CACHE_MAX_SIZE] = src;
    }
    hearth_config_free(&d);
}

bool app_engine_opts_load_config(const char *cmd, int argc, char **argv, hearth_config *cfg) {
    hearth_error err = {0};
    if (hearth_config_load(app_config_arg(argc, argv), cfg, &err) == HEARTH_OK) return true;
    fprintf(stderr, "hearth %s: %s\n", cmd, err.msg);
    return false;
}

/* ------------------------------------------------------------ (c) the flags */

int app_engine_opts_args(app_engine_opts *eo, const arg_opt *own, int n_own, arg_opt *out, int cap) {
    int n = 0;
    for (int i = 0; i < n_own && n < cap; i++)
        out[n++] = own[i];
    for (int i = 0; i < APP_ENGINE_OPTS_N && n < cap; i++) {
        const eo_def *d = &k_opts[i];
        eo->shadowed[i] = false;
        for (int j = 0; j < n_own; j++)
            if (own[j].long_name && !strcmp(own[j].long_name, d->long_name)) eo->shadowed[i] = true;
        if (eo->shadowed[i]) continue; /* the command's own flag of that name wins (bench's -t list) */
        if (d->type == EO_OFF || d->type == EO_ALL_MOE)
            out[n++] = (arg_opt){d->short_name, d->long_name, ARG_FLAG, &eo->raw_flag[i], NULL, NULL};
        else
            out[n++] = (arg_opt){d->short_name, d->long_name, ARG_STR, &eo->raw[i], d->metavar, NULL};
    }
    if (n < cap) out[n++] = (arg_opt){NULL, "--print-config", ARG_FLAG, &eo->print_config, NULL, NULL};
    return n;
}

static bool flag_error(const char *cmd, const eo_def *d, const char *v) {
    if (d->type == EO_KV_TYPE) /* the wording scripts already match */
        fprintf(stderr, "hearth %s: %s '%s' %s\n", cmd, d->long_name, v, d->accepted);
    else
        fprintf(stderr, "hearth %s: %s %s: %s (see hearth %s --help)\n", cmd, d->long_name, v, d->accepted,
                cmd);
    return false;
}

static bool parse_int(const eo_def *d, const char *v, int *out) {
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end) return false;
    if (!((x >= d->min && x <= d->max) || (d->zero_ok && x == 0))) return false;
    *out = (int)x;
    return true;
}

/* One flag's text into the options; false (nothing changed) when it is bad. */
static bool apply_flag(app_engine_opts *eo, int i, const char *v) {
    const eo_def *d = &k_opts[i];
    hearth_config scratch; /* the config file's checks, for the kinds it knows */
    hearth_config_init(&scratch);
    bool ok = true;
    switch (d->type) {
    case EO_INT: ok = parse_int(d, v, (int *)field_of(eo, i)); break;
    case EO_BACKEND:
        ok = *v && hearth_config_set(&scratch, d->key, v, NULL) == HEARTH_OK;
        if (ok) snprintf(eo->backend, sizeof eo->backend, "%s", scratch.backend);
        break;
    case EO_KV_TYPE: {
        hearth_dtype t;
        ok = hearth_dtype_from_name(v, &t) && (t == HEARTH_F16 || t == HEARTH_F32 || t == HEARTH_Q8_0);
        if (ok) eo->kv_type = t;
        break;
    }
    case EO_OFF: eo->prefix_cache = false; break;
    case EO_ALL_MOE: eo->n_cpu_moe = HEARTH_CPU_MOE_ALL; break;
    case EO_CACHE_DB:
        ok = *v != 0;
        if (ok) set_cache_db(eo, v);
        break;
    case EO_SIZE: ok = hearth_config_parse_size(v, &eo->cache_max_bytes); break;
    case EO_SPEC: ok = hearth_spec_mode_parse(v, &eo->spec); break;
    case EO_SPEC_K: ok = hearth_spec_k_parse(v, &eo->spec_k); break;
    case EO_PATH:
        ok = *v != 0 && strlen(v) < sizeof eo->draft;
        if (ok) snprintf((char *)field_of(eo, i), sizeof eo->draft, "%s", v);
        break;
    }
    hearth_config_free(&scratch);
    return ok;
}

bool app_engine_opts_apply_flags(app_engine_opts *eo, const char *cmd) {
    for (int i = 0; i < APP_ENGINE_OPTS_N; i++) {
        const bool flag = k_opts[i].type == EO_OFF || k_opts[i].type == EO_ALL_MOE;
        const char *v = flag ? (eo->raw_flag[i] ? "" : NULL) : eo->raw[i];
        if (!v) continue;
        if (!apply_flag(eo, i, v)) return flag_error(cmd, &k_opts[i], v);
        eo->source[i] = "flag";
    }
    return true;
}

/* ------------------------------------------------------------ (d) help */

void app_engine_opts_print_help(const app_engine_opts *eo, FILE *f) {
    fprintf(f, "\nengine options (the same in run, chat, serve and bench; config-file key in []):\n");
    for (int i = 0; i < APP_ENGINE_OPTS_N; i++) {
        const eo_def *d = &k_opts[i];
        if (eo->shadowed[i]) continue; /* listed with the command's own options */
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", d->short_name ? d->short_name : "",
                 d->short_name ? ", " : "", d->long_name, d->metavar ? " " : "",
                 d->metavar ? d->metavar : "");
        const char *help = i == OPT_CACHE_DB && eo->bench_defaults ? BENCH_CACHE_DB_HELP : d->help;
        fprintf(f, "  %-28s %s [%s]\n", left, help, d->key);
    }
    fprintf(f, "  %-28s %s\n", "--print-config", "print the resolved engine options as JSON and exit");
}

int app_engine_opts_parse(app_engine_opts *eo, const char *cmd, const char *usage, const char *desc,
                          const arg_opt *own, int n_own, int argc, char **argv, const char **pos, int max_pos,
                          int *n_pos) {
    arg_opt all[APP_ARGS_MAX];
    int n = app_engine_opts_args(eo, own, n_own, all, APP_ARGS_MAX);
    int r = arg_parse(cmd, usage, desc, all, n, argc, argv, pos, max_pos, n_pos);
    if (r > 0) app_engine_opts_print_help(eo, stdout);
    if (r) return r;
    return app_engine_opts_apply_flags(eo, cmd) ? 0 : -1;
}

/* ------------------------------------------------------------ (e) what the options give */

void app_engine_opts_engine_config(const app_engine_opts *eo, int default_parallel, hearth_engine_config *ec,
                                   char *db_buf, size_t db_cap) {
    *ec = hearth_engine_defaults();
    ec->n_ctx = eo->ctx;
    ec->n_parallel = eo->parallel ? eo->parallel : default_parallel;
    ec->n_batch = eo->batch;
    ec->kv_type = eo->kv_type;
    ec->max_waiting = eo->max_waiting;
    ec->prefix_cache = eo->prefix_cache;
    ec->cache_db = NULL;
    if (eo->prefix_cache && !eo->cache_memory_only)
        ec->cache_db = eo->cache_db[0] ? eo->cache_db : hearth_cache_store_default_path(db_buf, db_cap);
    ec->cache_db_max_bytes = eo->cache_max_bytes;
    ec->spec = eo->spec;
    ec->draft_max = eo->draft_max;
    ec->draft_min = eo->draft_min;
    ec->spec_max_batch = eo->spec_max_batch;
    ec->spec_k = eo->spec_k;
    /* a measuring switch (docs/BENCHMARKS.md): the whole-vocabulary mask at every constrained step,
       the same tokens as the default candidate check */
    const char *fm = getenv("HEARTH_GRAMMAR_FULL_MASK");
    ec->grammar_full_mask = fm && *fm && strcmp(fm, "0") != 0;
}

int app_engine_opts_draft_gpu_layers(const app_engine_opts *eo) {
    return eo->draft_gpu_layers >= -1 ? eo->draft_gpu_layers : eo->gpu_layers;
}

hearth_status app_engine_opts_open_draft(const app_engine_opts *eo, const hearth_config_model *cm,
                                         hearth_model *m, hearth_engine_config *ec, hearth_model **draft_out,
                                         hearth_error *err) {
    *draft_out = NULL;
    const char *name = eo->draft[0] ? eo->draft : cm ? cm->draft : NULL;
    /* --spec / speculative.mode chose another mode: the draft would go unused */
    bool mode_default = !strcmp(eo->source[OPT_SPEC], "default");
    if (!name || (!mode_default && eo->spec != HEARTH_SPEC_DRAFT)) return HEARTH_OK;
    const hearth_config_model *dm = eo->config ? hearth_config_find_model(eo->config, name) : NULL;
    const char *path = dm ? dm->path : app_resolve_model(name);
    hearth_model_params mp = {.backend = m->backend, .gpu_layers = app_engine_opts_draft_gpu_layers(eo)};
    hearth_error e = {0};
    hearth_model *d = hearth_model_load(path, &mp, &e);
    if (!d) return hearth_error_set(err, e.code, "draft model '%s': %s", name, e.msg);
    ec->draft = d;
    ec->spec = HEARTH_SPEC_DRAFT;
    *draft_out = d;
    return HEARTH_OK;
}

bool app_engine_opts_load(const app_engine_opts *eo, const char *cmd, const char *model_path, bool quiet,
                          hearth_backend **be_out, hearth_model **model_out) {
    return app_load(cmd, model_path, eo->backend, eo->threads, eo->gpu_layers, eo->n_cpu_moe, quiet, be_out,
                    model_out);
}

int app_engine_opts_print_json(const app_engine_opts *eo, const char *cmd, const char *model,
                               int default_parallel) {
    hearth_engine_config ec;
    char db[1024];
    app_engine_opts_engine_config(eo, default_parallel, &ec, db, sizeof db);
    cJSON *o = cJSON_CreateObject();
    if (!o) return 1;
    cJSON_AddStringToObject(o, "command", cmd);
    if (model)
        cJSON_AddStringToObject(o, "model", model);
    else
        cJSON_AddNullToObject(o, "model");
    cJSON_AddStringToObject(o, "backend", eo->backend);
    cJSON_AddNumberToObject(o, "threads", eo->threads);
    cJSON_AddNumberToObject(o, "gpu_layers", eo->gpu_layers);
    cJSON_AddNumberToObject(o, "n_cpu_moe", eo->n_cpu_moe);
    cJSON_AddNumberToObject(o, "context", ec.n_ctx);
    cJSON_AddNumberToObject(o, "batch", ec.n_batch);
    cJSON_AddNumberToObject(o, "parallel", ec.n_parallel);
    cJSON_AddNumberToObject(o, "max_waiting", ec.max_waiting);
    cJSON_AddStringToObject(o, "kv_type", hearth_dtype_name(ec.kv_type));
    cJSON_AddBoolToObject(o, "prefix_cache", ec.prefix_cache);
    if (ec.cache_db)
        cJSON_AddStringToObject(o, "cache_db", ec.cache_db);
    else
        cJSON_AddNullToObject(o, "cache_db");
    cJSON_AddNumberToObject(o, "cache_max_size", (double)ec.cache_db_max_bytes);
    cJSON_AddStringToObject(o, "speculative", hearth_spec_mode_name(ec.spec));
    cJSON_AddNumberToObject(o, "draft_max", ec.draft_max);
    cJSON_AddNumberToObject(o, "draft_min", ec.draft_min);
    cJSON_AddNumberToObject(o, "spec_max_batch", ec.spec_max_batch);
    cJSON_AddStringToObject(o, "spec_k", hearth_spec_k_name(ec.spec_k));
    cJSON_AddNumberToObject(o, "draft_gpu_layers", app_engine_opts_draft_gpu_layers(eo));
    if (eo->draft[0]) {
        cJSON_AddStringToObject(o, "draft", eo->draft);
        if (!strcmp(eo->source[OPT_SPEC], "default"))
            cJSON_ReplaceItemInObject(o, "speculative", cJSON_CreateString("draft"));
    } else {
        cJSON_AddNullToObject(o, "draft");
    }
    cJSON *src = cJSON_AddObjectToObject(o, "source");
    for (int i = 0; i < APP_ENGINE_OPTS_N; i++)
        cJSON_AddStringToObject(src, k_opts[i].key, eo->source[i]);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return 1;
    puts(s);
    free(s);
    return 0;
}
