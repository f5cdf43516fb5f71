/*
 * common.h - pieces the subcommands share: loading a backend + model with
 * user-facing messages, timing, and file checks.
 */
#ifndef HEARTH_APP_COMMON_H
#define HEARTH_APP_COMMON_H

#include <stdbool.h>

#include "backends/backend.h"
#include "core/os.h" /* hearth_now_ms */
#include "runtime/model/model.h"

/* Create the backend `backend_name` with `threads` CPU threads and load the
 * model with the first `gpu_layers` layers on it (HEARTH_GPU_LAYERS_ALL: all;
 * see model.h) and the experts of the first `n_cpu_moe` of those in host
 * memory (--n-cpu-moe; 0: none). On failure nothing is left allocated and
 * err says why. */
hearth_status app_open_model(const char *model_path, const char *backend_name, int threads, int gpu_layers,
                             int n_cpu_moe, hearth_backend **be_out, hearth_model **model_out,
                             hearth_error *err);

/* app_open_model with user-facing messages: on failure print
 * "hearth CMD: <message>" to stderr and return false. Unless `quiet`, note
 * the backend on stderr (and the layer plan when a device is used). */
bool app_load(const char *cmd, const char *model_path, const char *backend_name, int threads, int gpu_layers,
              int n_cpu_moe, bool quiet, hearth_backend **be_out, hearth_model **model_out);

/* -m NAME: the file of a model pulled with `hearth pull` when spec is not an
 * existing path and the store knows the name, else spec itself. The returned
 * path stays valid for the process (at most 8 distinct names are kept). */
const char *app_resolve_model(const char *spec);

/* The --gpu-layers help line every model-loading command shows. */
#define APP_GPU_LAYERS_HELP "layers on the GPU, the rest on the CPU (default -1 = all; 0 = none)"
#define APP_N_CPU_MOE_HELP                                                                                   \
    "keep the mixture-of-experts expert tensors of the first N layers in RAM and run their matmuls on the "  \
    "CPU, attention, router and shared experts on the GPU (default 0; N at or above the layer count = all; " \
    "no effect on --backend cpu or dense models)"
#define APP_N_CPU_MOE_ACCEPTED "give a layer count, 0 (none) or more (at or above the layer count = all)"

/* shared/REL beside an ancestor of the executable (<root>/main/build/bin/hearth
 * -> <root>/shared/REL), else ../shared/REL from the working directory; into
 * buf. NULL when no such regular file exists. */
const char *app_find_shared(const char *rel, char *buf, size_t cap);

/* Sample model used when nothing is configured: ../shared/models/... next to
 * the source tree or the executable, or $HEARTH_SAMPLE_MODEL. NULL if none. */
const char *app_sample_model(void);

/* --kv-type NAME: f16, f32 or q8_0 into *out; otherwise prints
 * "hearth CMD: --kv-type 'NAME' is not one of f16, f32, q8_0" and returns false. */
bool app_parse_kv_type(const char *cmd, const char *name, hearth_dtype *out);

/* A whole decimal number from lo to hi (nothing else in s) into *out. */
bool app_parse_int(const char *s, int lo, int hi, int *out);

/* The whole file at path, malloc'd (not NUL-terminated), its size in *len;
 * NULL with err set: "cannot open WHAT PATH" (what may be NULL) or out of
 * memory. */
char *app_read_file(const char *path, const char *what, size_t *len, hearth_error *err);

/* "1.50 GiB": bytes in binary units, into out. */
void app_human_bytes(double bytes, char *out, size_t cap);

/* The value of --config PATH / --config=PATH in argv, or NULL (a pre-scan,
 * so a command can load the file before parsing the flags that override it). */
const char *app_config_arg(int argc, char **argv);

/* A token piece as JSON: a string when the bytes are valid UTF-8, else (a part
 * of a character) the array of its byte values, as llama-server's /tokenize
 * does, so JSON output stays valid. Caller owns the item (NULL on OOM). */
struct cJSON;
struct cJSON *app_json_piece(const char *p, size_t n);

#endif
