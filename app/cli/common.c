/*
 * common.c - see common.h.
 */
#include "common.h"

#include "runtime/store/model_store.h"
#include "runtime/text/unicode.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *app_resolve_model(const char *spec) {
    static char kept[8][1024];
    static int n_kept;
    struct stat st;
    if (!spec || stat(spec, &st) == 0 || n_kept == 8) return spec;
    if (!hearth_model_store_resolve(spec, kept[n_kept], sizeof kept[n_kept])) return spec;
    return kept[n_kept++];
}

hearth_status app_open_model(const char *model_path, const char *backend_name, int threads, int gpu_layers,
                             int n_cpu_moe, hearth_backend **be_out, hearth_model **model_out,
                             hearth_error *err) {
    if (gpu_layers < HEARTH_GPU_LAYERS_ALL)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "--gpu-layers %d: give a layer count (0 = none on the GPU) or -1 for all",
                                gpu_layers);
    if (n_cpu_moe < 0)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "--n-cpu-moe %d: %s", n_cpu_moe,
                                APP_N_CPU_MOE_ACCEPTED);
    hearth_backend_config bc = {backend_name ? backend_name : "auto", threads};
    hearth_backend *be = hearth_backend_create(&bc, err);
    if (!be) return err ? err->code : HEARTH_ERR_BACKEND;
    hearth_model_params mp = {.backend = be, .gpu_layers = gpu_layers, .n_cpu_moe = n_cpu_moe};
    model_path = app_resolve_model(model_path);
    hearth_model *m = hearth_model_load(model_path, &mp, err);
    if (!m) {
        hearth_backend_free(be);
        return err ? err->code : HEARTH_ERR_IO;
    }
    *be_out = be;
    *model_out = m;
    return HEARTH_OK;
}

bool app_load(const char *cmd, const char *model_path, const char *backend_name, int threads, int gpu_layers,
              int n_cpu_moe, bool quiet, hearth_backend **be_out, hearth_model **model_out) {
    hearth_error err = {0};
    if (!model_path) {
        fprintf(stderr, "hearth %s: no model given: pass -m MODEL.gguf (see hearth %s --help)\n", cmd, cmd);
        return false;
    }
    if (app_open_model(model_path, backend_name, threads, gpu_layers, n_cpu_moe, be_out, model_out, &err)) {
        fprintf(stderr, "hearth %s: %s\n", cmd, err.msg);
        return false;
    }
    if (!quiet) {
        hearth_backend_info bi;
        hearth_backend_get_info(*be_out, &bi);
        fprintf(stderr, "hearth: backend %s (%s)\n", bi.name, bi.device);
        if (hearth_backend_host(*be_out)) fprintf(stderr, "hearth: %s\n", (*model_out)->plan);
    }
    return true;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *app_find_shared(const char *rel, char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 5; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if (snprintf(buf, cap, "%s/shared/%s", exe, rel) < (int)cap && file_exists(buf)) return buf;
        }
    }
    if (snprintf(buf, cap, "../shared/%s", rel) < (int)cap && file_exists(buf)) return buf;
    return NULL;
}

const char *app_sample_model(void) {
    static char buf[PATH_MAX + 64];
    const char *env = getenv("HEARTH_SAMPLE_MODEL");
    if (env && file_exists(env)) return env;
    return app_find_shared("models/hearth-kjv-llama-q8_0.gguf", buf, sizeof buf);
}

const char *app_config_arg(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9)) return argv[i] + 9;
        if (!strcmp(argv[i], "--")) break;
    }
    return NULL;
}

void app_human_bytes(double b, char *out, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

bool app_parse_kv_type(const char *cmd, const char *name, hearth_dtype *out) {
    if (hearth_dtype_from_name(name, out) &&
        (*out == HEARTH_F16 || *out == HEARTH_F32 || *out == HEARTH_Q8_0))
        return true;
    fprintf(stderr, "hearth %s: --kv-type '%s' is not one of f16, f32, q8_0\n", cmd, name);
    return false;
}

cJSON *app_json_piece(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t need = 0;
        const size_t len = hearth_utf8_valid_prefix((const unsigned char *)p + i, n - i, &need);
        if (len == 0 || len < need) break;
        i += len;
    }
    if (i == n) {
        char *s = malloc(n + 1);
        if (!s) return NULL;
        memcpy(s, p, n);
        s[n] = 0;
        cJSON *str = cJSON_CreateString(s);
        free(s);
        return str;
    }
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)p[k]));
    return a;
}

bool app_parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

char *app_read_file(const char *path, const char *what, size_t *len, hearth_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hearth_error_set(err, HEARTH_ERR_IO, "cannot open %s%s%s", what ? what : "", what ? " " : "", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory reading %s", path);
    *len = n;
    return buf;
}
