/*
 * cmd_embed.c - `hearth embed`: embedding vectors (or rerank scores) of texts
 * from an encoder model (bert, nomic-bert) or a decoder embedder (llama,
 * qwen2, qwen3 with a pooling), through runtime/model/embed.h.
 *
 * All texts go to one hearth_embed call, so they share forward passes
 * (--alone gives each its own call: the same numbers, slower). Output: one
 * line per text with its vector's components separated by spaces, or with
 * --json one object with every vector and the token counts. Numbers are
 * printed with 9 significant digits (float round-trip).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "core/grow.h"
#include "runtime/model/embed.h"

enum { MAX_TEXTS = 1024 };

typedef struct embed_opts {
    const char *model, *backend, *pooling, *file;
    int threads, dimensions, batch, repeat;
    bool json, truncate, no_normalize, alone, profile;
} embed_opts;

static int embed_usage(const char *msg) {
    fprintf(stderr, "hearth embed: %s (see hearth embed --help)\n", msg);
    return 2;
}

static int parse_pooling(const char *s) {
    static const char *const names[] = {"mean", "cls", "last", "rank"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return i + 1; /* HEARTH_POOLING_MEAN .. RANK */
    return -2;
}

static void print_vectors(const embed_opts *o, const hearth_model *m, const char *pool_name, int n, int dim,
                          const float *vecs, const int *used, const int *given, int passes, double ms) {
    if (!o->json) {
        for (int i = 0; i < n; i++) {
            for (int d = 0; d < dim; d++)
                printf("%s%.9g", d ? " " : "", vecs[(size_t)i * (size_t)dim + (size_t)d]);
            printf("\n");
        }
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", m->name);
    cJSON_AddStringToObject(root, "architecture", m->arch_info->name);
    hearth_backend_info bi;
    hearth_backend_get_info(m->backend, &bi);
    cJSON_AddStringToObject(root, "backend", bi.name);
    cJSON_AddStringToObject(root, "pooling", pool_name);
    cJSON_AddBoolToObject(root, "normalized", !o->no_normalize && strcmp(pool_name, "rank"));
    cJSON_AddNumberToObject(root, "dimensions", dim);
    cJSON_AddNumberToObject(root, "passes", passes);
    long total = 0;
    for (int i = 0; i < n; i++)
        total += used[i];
    cJSON_AddNumberToObject(root, "n_tokens", (double)total);
    cJSON_AddNumberToObject(root, "threads", o->threads);
    cJSON_AddNumberToObject(root, "ms", ms); /* the fastest of --repeat runs, tokenizing excluded */
    cJSON_AddNumberToObject(root, "embeddings_per_s", ms > 0 ? n * 1000.0 / ms : 0);
    cJSON *embs = cJSON_AddArrayToObject(root, "embeddings"), *toks = cJSON_AddArrayToObject(root, "tokens"),
          *trunc = cJSON_AddArrayToObject(root, "truncated");
    for (int i = 0; i < n; i++) {
        cJSON *v = cJSON_CreateArray();
        for (int d = 0; d < dim; d++) {
            char num[32];
            snprintf(num, sizeof num, "%.9g", vecs[(size_t)i * (size_t)dim + (size_t)d]);
            cJSON_AddItemToArray(v, cJSON_CreateRaw(num));
        }
        cJSON_AddItemToArray(embs, v);
        cJSON_AddItemToArray(toks, cJSON_CreateNumber(used[i]));
        cJSON_AddItemToArray(trunc, cJSON_CreateBool(used[i] < given[i]));
    }
    char *s = cJSON_PrintUnformatted(root);
    puts(s ? s : "{}");
    free(s);
    cJSON_Delete(root);
}

/* --profile: time per op type of the last run, on stderr */
static void print_profile(const hearth_backend *be) {
    static const char *const names[HEARTH_OP_COUNT] = {[HEARTH_OP_GET_ROWS] = "get_rows",
                                                       [HEARTH_OP_RMS_NORM] = "norms",
                                                       [HEARTH_OP_MATMUL] = "matmul",
                                                       [HEARTH_OP_ADD] = "add",
                                                       [HEARTH_OP_ROPE] = "rope",
                                                       [HEARTH_OP_KV_STORE] = "kv_store",
                                                       [HEARTH_OP_ATTENTION] = "attention",
                                                       [HEARTH_OP_SILU_MUL] = "gelu/silu",
                                                       [HEARTH_OP_COPY] = "copy"};
    double us[HEARTH_OP_COUNT];
    uint64_t count[HEARTH_OP_COUNT];
    hearth_backend_profile_read(be, us, count);
    for (int i = 0; i < HEARTH_OP_COUNT; i++)
        if (count[i])
            fprintf(stderr, "profile: %-10s %9.1f ms in %llu calls\n", names[i] ? names[i] : "?",
                    us[i] / 1000, (unsigned long long)count[i]);
}

static int parse_embed_flags(int argc, char **argv, embed_opts *o, const char **texts, int *n_texts) {
    *o = (embed_opts){.backend = "cpu"};
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &o->model, "PATH",
         "embedding model: GGUF file or pulled name (bert, nomic-bert; llama/qwen2/qwen3 with a pooling)"},
        {"-f", "--file", ARG_STR, &o->file, "PATH",
         "also embed every non-empty line of PATH ('-': standard input), after the TEXT arguments"},
        {NULL, "--json", ARG_FLAG, &o->json, NULL,
         "print {\"embeddings\": [[...], ...], \"tokens\": [...], \"truncated\": [...], \"dimensions\", "
         "\"pooling\", \"backend\", ...}"},
        {NULL, "--dimensions", ARG_INT, &o->dimensions, "N",
         "keep the first N components (Matryoshka) and re-normalise (default: all)"},
        {NULL, "--truncate", ARG_FLAG, &o->truncate, NULL,
         "cut a text longer than the model's context to fit (default: refuse it)"},
        {NULL, "--pooling", ARG_STR, &o->pooling, "NAME",
         "mean, cls, last or rank (default: the model's pooling_type)"},
        {NULL, "--no-normalize", ARG_FLAG, &o->no_normalize, NULL,
         "print the pooled vectors without L2 norm"},
        {NULL, "--alone", ARG_FLAG, &o->alone, NULL, "embed each text in its own pass (default: pack them)"},
        {"-b", "--batch", ARG_INT, &o->batch, "N",
         "tokens per forward pass (default: the model's context, 512..8192)"},
        {"-t", "--threads", ARG_INT, &o->threads, "N", "CPU threads (default: physical cores)"},
        {NULL, "--repeat", ARG_INT, &o->repeat, "N",
         "embed everything N times and report the fastest (benchmarks; --json: \"ms\", "
         "\"embeddings_per_s\")"},
        {NULL, "--profile", ARG_FLAG, &o->profile, NULL,
         "print the time per op type of the last run to stderr"},
        {NULL, "--backend", ARG_STR, &o->backend, "NAME",
         "cpu (default), vulkan or cuda (the whole model on the device: encoders are not split with "
         "the CPU)"},
    };
    int r = arg_parse(
        "embed", "-m MODEL [--json] [--dimensions N] [--truncate] TEXT...",
        "Print the embedding vector of each TEXT (one line each; --json for one object). The texts "
        "share forward passes.\nWith a reranker (rank pooling) each line is the text's score; a TEXT "
        "\"QUERY<TAB>DOCUMENT\" scores the pair ([CLS] query [SEP] document [SEP]).",
        opts, sizeof opts / sizeof opts[0], argc, argv, texts, MAX_TEXTS, n_texts);
    if (r) return r > 0 ? 0 : 2;
    if (!o->model) return embed_usage("no model: pass -m MODEL");
    if (*n_texts == 0 && !o->file)
        return embed_usage("no TEXT to embed: give one or more texts after the options, or -f FILE");
    if (o->dimensions < 0) return embed_usage("--dimensions must be positive");
    if (o->batch < 0) return embed_usage("--batch must be positive");
    if (o->repeat < 0 || o->repeat > 1000) return embed_usage("--repeat wants 1 to 1000");
    if (!o->repeat) o->repeat = 1;
    if (o->threads < 0 || o->threads > 256) return embed_usage("-t wants 1 to 256 threads");
    if (o->pooling && parse_pooling(o->pooling) < 0) {
        fprintf(stderr, "hearth embed: --pooling '%s' is not one of mean, cls, last, rank\n", o->pooling);
        return 2;
    }
    if (!o->threads) o->threads = hearth_physical_cores();
    return -1;
}

/* -f PATH: append every non-empty line (without its \r\n) to the list;
 * *buf keeps the text. Returns false (message printed) when it cannot read. */
static bool read_lines(const char *path, char **buf, const char ***list, int *n) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "hearth embed: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t len = 0, cap = 0;
    char chunk[65536];
    for (size_t got; (got = fread(chunk, 1, sizeof chunk, f)) > 0;) {
        if (!hearth_grow((void **)buf, &cap, len + got + 1, 1)) {
            fprintf(stderr, "hearth embed: out of memory reading %s\n", path);
            if (f != stdin) fclose(f);
            return false;
        }
        memcpy(*buf + len, chunk, got);
        len += got;
    }
    if (f != stdin) fclose(f);
    if (!*buf) return true; /* empty file */
    (*buf)[len] = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += (*buf)[i] == '\n';
    const char **l = realloc(*list, ((size_t)*n + lines) * sizeof *l);
    if (!l) {
        fprintf(stderr, "hearth embed: out of memory reading %s\n", path);
        return false;
    }
    *list = l;
    for (char *line = *buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (ll) l[(*n)++] = line;
    }
    return true;
}

int cmd_embed(int argc, char **argv) {
    embed_opts o;
    const char *pos[MAX_TEXTS];
    int n = 0;
    int r = parse_embed_flags(argc, argv, &o, pos, &n);
    if (r >= 0) return r;
    char *filebuf = NULL;
    const char **texts = malloc(((size_t)n + 1) * sizeof *texts);
    if (!texts) return 1;
    memcpy(texts, pos, (size_t)n * sizeof *texts);
    if (o.file && !read_lines(o.file, &filebuf, &texts, &n)) {
        free(texts);
        free(filebuf);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "hearth embed: %s has no text (only empty lines)\n",
                strcmp(o.file, "-") ? o.file : "standard input");
        free(texts);
        free(filebuf);
        return 1;
    }
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (!app_load("embed", app_resolve_model(o.model), o.backend, o.threads, HEARTH_GPU_LAYERS_ALL, 0, true,
                  &be, &m))
        return 1;
    hearth_error err = {0};
    int rc = 1;
    hearth_embedder *e = hearth_embedder_create(m, o.batch, &err);
    hearth_tokens *toks = calloc((size_t)n, sizeof *toks);
    const int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *given = calloc((size_t)n, sizeof *given), *used = calloc((size_t)n, sizeof *used);
    float *vecs = NULL;
    hearth_embed_params p = hearth_embed_params_default();
    p.dimensions = o.dimensions;
    p.truncate = o.truncate;
    p.normalize = !o.no_normalize;
    if (o.pooling) p.pooling = parse_pooling(o.pooling);
    if (!e || !toks || !ids || !given || !used) goto done;
    int dim = hearth_embed_dim(e, &p, &err);
    if (dim < 0) goto done;
    for (int i = 0; i < n; i++) {
        const char *tab = hearth_embed_pooling(e, &p) == HEARTH_POOLING_RANK ? strchr(texts[i], '\t') : NULL;
        if (tab ? hearth_rerank_tokenize(m, texts[i], (size_t)(tab - texts[i]), tab + 1, strlen(tab + 1),
                                         &toks[i], &err)
                : hearth_embed_tokenize(m, texts[i], strlen(texts[i]), &toks[i], &err))
            goto done;
        ids[i] = toks[i].ids;
        given[i] = (int)toks[i].n;
    }
    vecs = malloc((size_t)n * (size_t)dim * sizeof *vecs);
    if (!vecs) {
        hearth_error_set(&err, HEARTH_ERR_NOMEM, "out of memory");
        goto done;
    }
    int passes = 0, pp;
    double best = 0;
    hearth_backend_profile_enable(be, o.profile);
    for (int rep = 0; rep < o.repeat; rep++) {
        passes = 0;
        hearth_backend_profile_reset(be);
        const double t0 = hearth_now_ms();
        for (int i = 0; i < n; i += o.alone ? 1 : n) {
            int k = o.alone ? 1 : n;
            if (hearth_embed(e, ids + i, given + i, k, &p, vecs + (size_t)i * (size_t)dim, used + i, &err)) {
                if (o.alone) hearth_error_prefix(&err, "text %d", i + 1);
                goto done;
            }
            hearth_embed_last_stats(e, &pp, NULL);
            passes += pp;
        }
        const double ms = hearth_now_ms() - t0;
        if (rep == 0 || ms < best) best = ms;
    }
    if (o.profile) print_profile(be);
    print_vectors(&o, m, hearth_pooling_name(hearth_embed_pooling(e, &p)), n, dim, vecs, used, given, passes,
                  best);
    rc = 0;
done:
    if (rc) fprintf(stderr, "hearth embed: %s\n", err.msg[0] ? err.msg : "out of memory");
    for (int i = 0; toks && i < n; i++)
        hearth_tokens_free(&toks[i]);
    free(toks);
    free(ids);
    free(given);
    free(used);
    free(vecs);
    hearth_embedder_free(e);
    hearth_model_free(m);
    hearth_backend_free(be);
    free(texts);
    free(filebuf);
    return rc;
}
