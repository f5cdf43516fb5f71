/*
 * cmd_cache.c - `hearth cache stats|clear`: look at or empty the persistent
 * prefix cache (the SQLite database of KV pages, runtime/store/cache_store.c).
 *
 * stats: path, rows, page bytes, the cap, the file's size on disk (and its
 * write-ahead log), and rows per model fingerprint; --json prints one
 * object. clear: every row, or one model's rows (--model-fingerprint).
 * Both open the database through the store, so a damaged file is moved
 * aside and reported (a note on stderr, "recovered" in JSON) and a missing
 * one is created empty. Exit codes: 0 done, 1 the database failed, 2 usage.
 * Ownership: each subcommand opens the store and closes it before returning;
 * output goes to stdout, errors and notes to stderr.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/store/cache_store.h"

static const char CACHE_USAGE[] = "usage: hearth cache stats [--cache-db PATH] [--json]\n"
                                  "       hearth cache clear [--cache-db PATH] [--model-fingerprint FP]\n";

static void cache_usage(FILE *f) {
    fprintf(
        f,
        "%s\nShow or clear the persistent prefix cache: the SQLite database where Hearth keeps computed KV\n"
        "pages so a prompt prefix it has seen is not computed again, even after a restart.\n\n"
        "subcommands:\n"
        "  stats      rows, bytes, cap, file size and rows per model\n"
        "  clear      delete every cached page, or one model's (--model-fingerprint)\n\n"
        "The default database is $XDG_CACHE_HOME/hearth/prefix-cache.sqlite (or\n"
        "~/.cache/hearth/prefix-cache.sqlite). `hearth cache SUBCOMMAND --help` shows its options.\n",
        CACHE_USAGE);
}

static uint64_t file_size(const char *path, const char *suffix) {
    char p[4200];
    struct stat st;
    if (snprintf(p, sizeof p, "%s%s", path, suffix) >= (int)sizeof p) return 0;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Open the store for a subcommand; prints the error or the repair note. */
static hearth_cache_store *cache_open(const char *cmd, const char *path) {
    char def[4096];
    if (!path) path = hearth_cache_store_default_path(def, sizeof def);
    if (!*path) {
        fprintf(stderr,
                "hearth %s: no default cache location ($XDG_CACHE_HOME and $HOME are unset); pass --cache-db "
                "PATH\n",
                cmd);
        return NULL;
    }
    hearth_error err = {0};
    hearth_cache_store *s = hearth_cache_store_open(path, 0, &err);
    if (!s) {
        fprintf(stderr, "hearth %s: %s\n", cmd, err.msg);
        return NULL;
    }
    if (*hearth_cache_store_note(s))
        fprintf(stderr, "hearth %s: note: %s\n", cmd, hearth_cache_store_note(s));
    return s;
}

/* ------------------------------------------------------------ stats */

typedef struct model_rows {
    cJSON *json; /* array, or NULL for text */
    int count;
    char line[64][160];
} model_rows;

static void collect_model(void *ctx, const char *fp, uint64_t rows, uint64_t bytes, int64_t last_used_us) {
    model_rows *m = ctx;
    if (m->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "fingerprint", fp);
        cJSON_AddNumberToObject(o, "rows", (double)rows);
        cJSON_AddNumberToObject(o, "bytes", (double)bytes);
        /* milliseconds: microseconds since 1970 need 16 digits, more than cJSON prints exactly */
        cJSON_AddNumberToObject(o, "last_used_unix_ms", (double)(last_used_us / 1000));
        time_t t = (time_t)(last_used_us / 1000000);
        struct tm tm;
        char iso[32] = "";
        if (last_used_us > 0 && gmtime_r(&t, &tm)) strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cJSON_AddStringToObject(o, "last_used", iso);
        cJSON_AddItemToArray(m->json, o);
        m->count++;
        return;
    }
    char hb[32], when[32] = "-";
    app_human_bytes((double)bytes, hb, sizeof hb);
    time_t t = (time_t)(last_used_us / 1000000);
    struct tm tm;
    if (last_used_us > 0 && localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    if (m->count < 64)
        snprintf(m->line[m->count], sizeof m->line[0], "  %-40.40s %8llu %12s  %s", fp,
                 (unsigned long long)rows, hb, when);
    m->count++;
}

static int cache_stats(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    const arg_opt opts[] = {
        {NULL, "--cache-db", ARG_STR, &path, "PATH",
         "the cache database (default: under $XDG_CACHE_HOME/hearth/)"},
        {NULL, "--json", ARG_FLAG, &json, NULL, "print one JSON object"},
    };
    const char *pos[1];
    int n_pos;
    int r = arg_parse(
        "cache stats", "[--cache-db PATH] [--json]",
        "Show the persistent prefix cache: its file, rows, bytes, cap, and rows per model fingerprint. "
        "A missing database is created empty.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    hearth_cache_store *s = cache_open("cache stats", path);
    if (!s) return 1;
    hearth_cache_store_stats st;
    hearth_cache_store_stats_get(s, &st);
    const char *p = hearth_cache_store_path(s);
    model_rows *models = calloc(1, sizeof *models);
    if (!models) {
        hearth_cache_store_close(s);
        fprintf(stderr, "hearth cache stats: out of memory\n");
        return 1;
    }
    cJSON *root = NULL;
    if (json) {
        root = cJSON_CreateObject();
        models->json = cJSON_CreateArray();
    }
    hearth_error err = {0};
    int rc = 0;
    if (hearth_cache_store_each_model(s, collect_model, models, &err) != HEARTH_OK) {
        fprintf(stderr, "hearth cache stats: %s\n", err.msg);
        rc = 1;
    }
    uint64_t fsize = file_size(p, ""), wsize = file_size(p, "-wal");
    if (rc == 0 && json) {
        cJSON_AddStringToObject(root, "path", p);
        cJSON_AddNumberToObject(root, "rows", (double)st.rows);
        cJSON_AddNumberToObject(root, "bytes", (double)st.bytes);
        cJSON_AddNumberToObject(root, "max_bytes", (double)st.max_bytes);
        cJSON_AddNumberToObject(root, "file_bytes", (double)fsize);
        cJSON_AddNumberToObject(root, "wal_bytes", (double)wsize);
        cJSON_AddBoolToObject(root, "recovered", st.recovered != 0);
        cJSON_AddStringToObject(root, "note", hearth_cache_store_note(s));
        cJSON_AddItemToObject(root, "models", models->json);
        models->json = NULL;
        char *text = cJSON_Print(root);
        if (text) puts(text);
        free(text);
    } else if (rc == 0) {
        char b[32], mx[32], fb[32], wb[32];
        app_human_bytes((double)st.bytes, b, sizeof b);
        app_human_bytes((double)st.max_bytes, mx, sizeof mx);
        app_human_bytes((double)fsize, fb, sizeof fb);
        app_human_bytes((double)wsize, wb, sizeof wb);
        printf("database  %s\n", p);
        printf("on disk   %s (+ %s write-ahead log)\n", fb, wb);
        printf("pages     %llu rows, %s of %s max (%.1f%%)\n", (unsigned long long)st.rows, b, mx,
               st.max_bytes ? 100.0 * (double)st.bytes / (double)st.max_bytes : 0.0);
        printf("models    %d\n", models->count);
        if (models->count) printf("  %-40s %8s %12s  %s\n", "FINGERPRINT", "ROWS", "BYTES", "LAST USED");
        for (int i = 0; i < models->count && i < 64; i++)
            puts(models->line[i]);
        if (models->count > 64) printf("  ... and %d more\n", models->count - 64);
    }
    cJSON_Delete(models->json);
    cJSON_Delete(root);
    free(models);
    hearth_cache_store_close(s);
    return rc;
}

/* ------------------------------------------------------------ clear */

typedef struct model_find {
    const char *fp;
    uint64_t rows, bytes;
    int n_models;
    char names[256];
} model_find;

static void find_model(void *ctx, const char *fp, uint64_t rows, uint64_t bytes, int64_t last_used_us) {
    model_find *f = ctx;
    if (f->fp && !strcmp(fp, f->fp)) {
        f->rows = rows;
        f->bytes = bytes;
    }
    size_t len = strlen(f->names);
    if (len + 4 < sizeof f->names)
        snprintf(f->names + len, sizeof f->names - len, "%s%s", f->n_models ? ", " : "", fp);
    f->n_models++;
}

static int cache_clear(int argc, char **argv) {
    const char *path = NULL, *fp = NULL;
    const arg_opt opts[] = {
        {NULL, "--cache-db", ARG_STR, &path, "PATH",
         "the cache database (default: under $XDG_CACHE_HOME/hearth/)"},
        {NULL, "--model-fingerprint", ARG_STR, &fp, "FP",
         "clear only this model's pages (see hearth cache stats)"},
    };
    const char *pos[1];
    int n_pos;
    int r =
        arg_parse("cache clear", "[--cache-db PATH] [--model-fingerprint FP]",
                  "Delete cached KV pages from the persistent prefix cache: all of them, or one model's. The "
                  "pages are recomputed when next needed.",
                  opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (fp && !*fp) {
        fprintf(stderr, "hearth cache clear: --model-fingerprint is empty (see hearth cache stats for the "
                        "fingerprints)\n");
        return 2;
    }
    hearth_cache_store *s = cache_open("cache clear", path);
    if (!s) return 1;
    hearth_error err = {0};
    model_find found = {.fp = fp};
    hearth_cache_store_stats st;
    hearth_cache_store_stats_get(s, &st);
    if (hearth_cache_store_each_model(s, find_model, &found, &err) != HEARTH_OK) {
        fprintf(stderr, "hearth cache clear: %s\n", err.msg);
        hearth_cache_store_close(s);
        return 1;
    }
    int rc = 0;
    if (fp && found.rows == 0) {
        printf("nothing cached for model '%s' in %s (cached models: %s)\n", fp, hearth_cache_store_path(s),
               found.n_models ? found.names : "none");
    } else if (hearth_cache_store_clear(s, fp, &err) != HEARTH_OK) {
        fprintf(stderr, "hearth cache clear: %s\n", err.msg);
        rc = 1;
    } else {
        char b[32];
        app_human_bytes((double)(fp ? found.bytes : st.bytes), b, sizeof b);
        uint64_t rows = fp ? found.rows : st.rows;
        printf("cleared %llu %s (%s)%s%s%s from %s\n", (unsigned long long)rows, rows == 1 ? "row" : "rows",
               b, fp ? " of model '" : "", fp ? fp : "", fp ? "'" : "", hearth_cache_store_path(s));
    }
    hearth_cache_store_close(s);
    return rc;
}

/* ------------------------------------------------------------ dispatch */

int cmd_cache(int argc, char **argv) {
    if (argc < 2) {
        cache_usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        cache_usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "stats")) return cache_stats(argc - 1, argv + 1);
    if (!strcmp(sub, "clear")) return cache_clear(argc - 1, argv + 1);
    fprintf(stderr,
            "hearth cache: unknown subcommand '%s' (expected stats or clear; see hearth cache --help)\n",
            sub);
    return 2;
}
