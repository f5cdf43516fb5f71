/*
 * cmd_split.c - `hearth split MODEL.gguf [--parts N | --max-size SIZE] [-o PREFIX]`:
 * write a model as PREFIX-0000k-of-0000N.gguf parts (llama.cpp's gguf-split
 * layout, as Hugging Face hosts large models: files over 50 GB must be split
 * there). Every command loads such a model from its first part.
 *
 * Owner: commands. The writing is runtime/format/gguf_split.c; this file
 * parses the flags, picks the part count and reports.
 * Output: one line per part written on stderr; with --json, {"parts":[...],
 * "bytes":N} on stdout. Exit 0, 1 failed, 2 usage.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/format/gguf_split.h"

static void on_part(void *ctx, uint32_t part, uint32_t n) {
    const char *prefix = ctx;
    char path[4200];
    struct stat st;
    hearth_gguf_split_path(prefix, part, n, path, sizeof path);
    char b[32];
    app_human_bytes(stat(path, &st) == 0 ? (double)st.st_size : 0, b, sizeof b);
    fprintf(stderr, "wrote %s (%s)\n", path, b);
}

/* "2G", "500M", "4096K", "123" (bytes) */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return false;
    double mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'i' || *end == 'B') end++;
    if (*end == 'B') end++;
    if (*end) return false;
    *out = (uint64_t)(v * mul);
    return *out > 0;
}

int cmd_split(int argc, char **argv) {
    int parts = 0;
    const char *max_size = NULL, *prefix = NULL;
    bool json = false;
    const char *pos[1];
    int npos = 0;
    const arg_opt opts[] = {
        {NULL, "--parts", ARG_INT, &parts, "N", "number of parts"},
        {NULL, "--max-size", ARG_STR, &max_size, "SIZE",
         "largest part, e.g. 2G or 500M (the parts needed to stay under it; a tensor is never cut)"},
        {"-o", "--output", ARG_STR, &prefix, "PREFIX",
         "write PREFIX-00001-of-0000N.gguf, ... (default: the model's path without .gguf)"},
        {NULL, "--json", ARG_FLAG, &json, NULL, "print the parts written as JSON on stdout"},
    };
    int r = arg_parse(
        "split", "MODEL.gguf (--parts N | --max-size SIZE) [-o PREFIX]",
        "Write a model as NAME-00001-of-0000N.gguf part files (the layout of llama.cpp's gguf-split and "
        "of large models on Hugging Face). Hearth loads such a model from its first part.",
        opts, 4, argc, argv, pos, 1, &npos);
    if (r) return r > 0 ? 0 : 2;
    if (npos != 1 || (parts > 0) == (max_size != NULL)) {
        fprintf(stderr,
                "hearth split: give one model and either --parts N or --max-size SIZE (see hearth split "
                "--help)\n");
        return 2;
    }
    uint64_t limit = 0;
    if (max_size && !parse_size(max_size, &limit)) {
        fprintf(stderr,
                "hearth split: --max-size '%s' is not a size: give bytes or a number with K, M or G\n",
                max_size);
        return 2;
    }
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(pos[0], &err);
    if (!g) {
        fprintf(stderr, "hearth split: %s\n", err.msg);
        return 1;
    }
    char pre[4096];
    if (!prefix) {
        size_t n = strlen(pos[0]);
        snprintf(pre, sizeof pre, "%.*s", (int)(n > 5 && !strcmp(pos[0] + n - 5, ".gguf") ? n - 5 : n),
                 pos[0]);
        prefix = pre;
    }
    int rc = 0;
    uint32_t n = 0;
    if (hearth_gguf_split_write(g, prefix, (uint32_t)parts, limit, json ? NULL : on_part, (void *)prefix, &n,
                                &err)) {
        bool usage = err.code == HEARTH_ERR_INVALID;
        fprintf(stderr, "hearth split: %s%s\n", err.msg, usage && limit ? "; give a larger --max-size" : "");
        rc = usage ? 2 : 1;
    } else if (json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "parts");
        char path[4200];
        struct stat st;
        double bytes = 0;
        for (uint32_t k = 1; k <= n; k++) {
            hearth_gguf_split_path(prefix, k, n, path, sizeof path);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "file", path);
            double sz = stat(path, &st) == 0 ? (double)st.st_size : 0;
            cJSON_AddNumberToObject(p, "bytes", sz);
            bytes += sz;
            cJSON_AddItemToArray(arr, p);
        }
        cJSON_AddNumberToObject(o, "bytes", bytes);
        char *t = cJSON_PrintUnformatted(o);
        if (t) printf("%s\n", t);
        free(t);
        cJSON_Delete(o);
    }
    hearth_gguf_close(g);
    return rc;
}
