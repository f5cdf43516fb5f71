/*
 * cmd_models.c - `hearth list [--json]` and `hearth rm NAME`: the models in
 * the local store (runtime/store/model_store.h) that `hearth pull` wrote.
 *
 * list: one row per model, name first, then size, quantization (read from
 * the file name: Q4_K_M, Q8_0, F16, ...), pulled date; --json prints an
 * array of objects with every manifest column. rm: deletes the manifest row
 * and then the file (and the other parts of a split model).
 * Exit codes: 0 done, 1 failed (no such name, I/O), 2 usage.
 * Output: tables/JSON on stdout, errors on stderr.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/store/model_store.h"

static hearth_model_store *store_open(const char *cmd) {
    char dir[4096];
    hearth_error err = {0};
    hearth_model_store *s = hearth_model_store_open(hearth_model_store_dir(dir, sizeof dir), &err);
    if (!s) fprintf(stderr, "hearth %s: %s\n", cmd, err.msg);
    return s;
}

/* The quantization named in a GGUF file name ("Q4_K_M", "Q8_0", "F16"), or "-". */
static void quant_of(const char *file, char *out, size_t cap) {
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    snprintf(out, cap, "-");
    for (const char *p = b; *p; p++) {
        if (p != b && isalnum((unsigned char)p[-1])) continue;
        char c = (char)toupper((unsigned char)p[0]);
        bool q = (c == 'Q' || c == 'I') && isdigit((unsigned char)p[1]);
        bool fl = (c == 'F' || c == 'B') &&
                  (!strncasecmp(p, "f16", 3) || !strncasecmp(p, "f32", 3) || !strncasecmp(p, "bf16", 4));
        if (!q && !fl) continue;
        size_t n = 0;
        while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '_') && n + 1 < cap)
            n++;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)toupper((unsigned char)p[i]);
        out[n] = 0;
        return;
    }
}

typedef struct list_ctx {
    cJSON *arr;
} list_ctx;

static void list_row(void *ctx, const hearth_model_entry *e) {
    list_ctx *l = ctx;
    char q[32], sz[32], when[32];
    quant_of(e->file, q, sizeof q);
    time_t t = (time_t)e->pulled_at;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    if (l->arr) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddNumberToObject(o, "size", (double)e->size);
        cJSON_AddStringToObject(o, "quantization", q);
        cJSON_AddNumberToObject(o, "pulled_at", (double)e->pulled_at);
        cJSON_AddStringToObject(o, "file", e->file);
        cJSON_AddStringToObject(o, "source", e->source);
        cJSON_AddStringToObject(o, "sha256", e->sha256);
        cJSON_AddItemToArray(l->arr, o);
        return;
    }
    app_human_bytes((double)e->size, sz, sizeof sz);
    printf("%-40s %10s  %-8s  %s\n", e->name, sz, q, when);
}

int cmd_list(int argc, char **argv) {
    bool json = false;
    arg_opt opts[] = {{NULL, "--json", ARG_FLAG, &json, NULL, "print a JSON array"}};
    int npos = 0;
    int r = arg_parse("list", "[--json]",
                      "List the models pulled with `hearth pull` (name, size, quantization, pulled date).",
                      opts, 1, argc, argv, NULL, 0, &npos);
    if (r) return r > 0 ? 0 : 2;
    hearth_model_store *s = store_open("list");
    if (!s) return 1;
    list_ctx l = {json ? cJSON_CreateArray() : NULL};
    if (!json) printf("%-40s %10s  %-8s  %s\n", "NAME", "SIZE", "QUANT", "PULLED");
    hearth_error err = {0};
    int n = hearth_model_store_list(s, list_row, &l, &err);
    hearth_model_store_close(s);
    if (n < 0) {
        fprintf(stderr, "hearth list: %s\n", err.msg);
        cJSON_Delete(l.arr);
        return 1;
    }
    if (json) {
        char *txt = cJSON_Print(l.arr);
        printf("%s\n", txt);
        free(txt);
        cJSON_Delete(l.arr);
    }
    return 0;
}

int cmd_rm(int argc, char **argv) {
    const char *pos[1];
    int npos = 0;
    int r = arg_parse("rm", "NAME", "Remove a pulled model: its manifest row and its file(s).", NULL, 0, argc,
                      argv, pos, 1, &npos);
    if (r) return r > 0 ? 0 : 2;
    if (npos != 1) {
        fprintf(stderr, "hearth rm: give the name of a pulled model (see `hearth list`)\n");
        return 2;
    }
    hearth_model_store *s = store_open("rm");
    if (!s) return 1;
    hearth_error err = {0};
    hearth_model_entry e;
    int rc = 0;
    bool gone = false;
    if (hearth_model_store_get(s, pos[0], &e, &err) || hearth_model_store_delete(s, pos[0], &gone, &err)) {
        fprintf(stderr, "hearth rm: %s\n", err.msg);
        rc = 1;
    } else if (gone) {
        fprintf(stderr, "removed %s (%s)\n", e.name, e.file);
    } else {
        fprintf(stderr, "removed %s (%s stays: another name uses it)\n", e.name, e.file);
    }
    hearth_model_store_close(s);
    return rc;
}

int cmd_info(int argc, char **argv);

/* `hearth show NAME [--json]`: the manifest row, then (text) `hearth info` of the file. */
int cmd_show(int argc, char **argv) {
    bool json = false;
    arg_opt opts[] = {
        {NULL, "--json", ARG_FLAG, &json, NULL, "print the manifest row and the model as JSON"}};
    const char *pos[1];
    int npos = 0;
    int r = arg_parse(
        "show", "NAME [--json]",
        "Show a pulled model: its source, file, sha256, size and pull time, then what `hearth info`\n"
        "says of it (architecture, metadata, memory).",
        opts, 1, argc, argv, pos, 1, &npos);
    if (r) return r > 0 ? 0 : 2;
    if (npos != 1) {
        fprintf(stderr, "hearth show: give the name of a pulled model (see `hearth list`)\n");
        return 2;
    }
    hearth_model_store *s = store_open("show");
    if (!s) return 1;
    hearth_error err = {0};
    hearth_model_entry e;
    hearth_status st = hearth_model_store_get(s, pos[0], &e, &err);
    hearth_model_store_close(s);
    if (st) {
        fprintf(stderr, "hearth show: %s\n", err.msg);
        return 1;
    }
    char *info_argv[] = {"info", e.file, json ? "--json" : NULL, NULL};
    if (json) {
        list_ctx l = {cJSON_CreateArray()};
        list_row(&l, &e);
        char *txt = cJSON_PrintUnformatted(cJSON_GetArrayItem(l.arr, 0));
        printf("{\"manifest\":%s,\"info\":", txt);
        free(txt);
        cJSON_Delete(l.arr);
        fflush(stdout);
        int rc = cmd_info(3, info_argv);
        printf("}\n");
        return rc;
    }
    char sz[32], when[32];
    app_human_bytes((double)e.size, sz, sizeof sz);
    time_t t = (time_t)e.pulled_at;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    printf("name:          %s\nsource:        %s\nsha256:        %s\nsize:          %s\npulled:        %s\n",
           e.name, e.source, *e.sha256 ? e.sha256 : "(split model: per part)", sz, when);
    fflush(stdout);
    return cmd_info(2, info_argv);
}
