/*
 * cmd_info.c - `hearth info`: what is in a GGUF model and what it needs to
 * run (capacity planning: weights + KV cache at a context and parallelism).
 * Reads metadata only; no weights are touched -- unless --backend is given:
 * then the model is loaded there (with --gpu-layers) and the offload plan
 * says which layers went to the device and what they take of its memory.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/format/gguf.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/model.h"

/* hearth info --devices: what each backend of this build sees. */
static int list_devices(bool json) {
    hearth_device_desc d[16];
    char problems[512];
    int n = hearth_backend_devices(d, 16, problems, sizeof problems);
    if (n > 16) n = 16;
    if (json) {
        cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "devices");
        cJSON_AddStringToObject(o, "backends", hearth_backend_list());
        for (int i = 0; i < n; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "select", d[i].select);
            cJSON_AddStringToObject(j, "name", d[i].name);
            cJSON_AddStringToObject(j, "kind", d[i].kind);
            cJSON_AddStringToObject(j, "driver", d[i].driver);
            cJSON_AddNumberToObject(j, "mem_total", (double)d[i].mem_total);
            cJSON_AddNumberToObject(j, "mem_free", (double)d[i].mem_free);
            cJSON_AddBoolToObject(j, "usable", d[i].usable);
            cJSON_AddBoolToObject(j, "auto", d[i].auto_pick);
            if (d[i].note[0]) cJSON_AddStringToObject(j, "note", d[i].note);
            cJSON_AddItemToArray(arr, j);
        }
        if (problems[0]) cJSON_AddStringToObject(o, "problems", problems);
        char *s = cJSON_PrintUnformatted(o);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(o);
        return 0;
    }
    printf("backends in this build: %s\n", hearth_backend_list());
    for (int i = 0; i < n; i++) {
        char tot[32] = "?", fr[32] = "?";
        if (d[i].mem_total) app_human_bytes((double)d[i].mem_total, tot, sizeof tot);
        if (d[i].mem_free) app_human_bytes((double)d[i].mem_free, fr, sizeof fr);
        printf("%-10s %s%s\n", d[i].select, d[i].name, d[i].auto_pick ? "   <- --backend auto" : "");
        printf("%-10s %s; %s; memory %s (%s free)\n", "", d[i].kind, d[i].driver[0] ? d[i].driver : "driver ?", tot,
               fr);
        if (!d[i].usable || d[i].note[0])
            printf("%-10s %s%s\n", "", d[i].usable ? "" : "not usable: ", d[i].note);
    }
    if (problems[0]) printf("%s\n", problems);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *model_path = NULL, *kv_type_name = "f16", *backend = NULL;
    int ctx = 0, parallel = 1, gpu_layers = HEARTH_GPU_LAYERS_ALL, threads = 0;
    bool json = false, devices = false;
    const arg_opt opts[] = {
        {NULL, "--devices", ARG_FLAG, &devices, NULL,
         "list the devices this build can run on (CPU, CUDA GPUs, Vulkan devices) and exit"},
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model file (or give it as the argument)"},
        {"-c", "--ctx", ARG_INT, &ctx, "N", "context length per sequence for the memory estimate (default: the model's)"},
        {NULL, "--parallel", ARG_INT, &parallel, "N", "sequences served at once (default 1)"},
        {NULL, "--kv-type", ARG_STR, &kv_type_name, "TYPE", "KV cache type: f16 (default), f32, q8_0"},
        {NULL, "--backend", ARG_STR, &backend, "NAME",
         "load the model on auto, cpu, cuda[:N] or vulkan[:N] and show the offload plan"},
        {"-ngl", "--gpu-layers", ARG_INT, &gpu_layers, "N", APP_GPU_LAYERS_HELP},
        {"-t", "--threads", ARG_INT, &threads, "N", "CPU threads for the host side (with --backend)"},
        {NULL, "--json", ARG_FLAG, &json, NULL, "print one JSON object"},
    };
    const char *pos[1];
    int n_pos;
    int r = arg_parse("info", "MODEL.gguf [--ctx N] [--parallel N] [--backend B [--gpu-layers N]] [--json] | --devices",
                      "Show a model's architecture, hyperparameters, tensor types, parameter count, and the memory "
                      "needed for its weights plus the KV cache.",
                      opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (devices) return list_devices(json);
    if (n_pos) model_path = pos[0];
    if (!model_path) {
        fprintf(stderr, "hearth info: no model given (see hearth info --help)\n");
        return 2;
    }
    if (ctx < 0 || parallel < 1) {
        fprintf(stderr, "hearth info: --ctx must be >= 0 and --parallel >= 1\n");
        return 2;
    }
    hearth_dtype kv_type;
    if (!app_parse_kv_type("info", kv_type_name, &kv_type)) return 2;
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(model_path, &err);
    if (!g) {
        fprintf(stderr, "hearth info: %s\n", err.msg);
        return 1;
    }
    hearth_arch arch;
    hearth_hparams hp;
    bool have_hp = hearth_hparams_read(g, &arch, &hp, &err) == HEARTH_OK;
    /* tensor statistics */
    uint64_t n_params = 0, weight_bytes = 0, type_count[HEARTH_DTYPE_COUNT] = {0}, type_bytes[HEARTH_DTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(g, i);
        n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        weight_bytes += t->nbytes;
        type_count[t->type]++;
        type_bytes[t->type] += t->nbytes;
    }
    hearth_str name = {0};
    hearth_gguf_get_str(g, "general.name", &name);
    char namebuf[128] = "";
    hearth_str_copy(name, namebuf, sizeof namebuf);
    int n_ctx = ctx ? ctx : (have_hp ? hp.n_ctx_train : 0);
    uint64_t kv_bytes = 0;
    const int page_size = 16;
    if (have_hp) {
        hearth_kv_config kc = {hp.n_layer, hp.n_head_kv, hp.head_dim, kv_type, page_size, 1, NULL};
        uint64_t pages = (uint64_t)parallel * (uint64_t)((n_ctx + page_size - 1) / page_size);
        kv_bytes = hearth_kv_page_bytes(&kc) * pages;
    }
    /* the offload plan: load the model where it would run */
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    hearth_backend_info bi = {0};
    uint64_t dev_kv = 0;
    if (backend && have_hp) {
        if (app_open_model(model_path, backend, threads, gpu_layers, &be, &m, &err)) {
            fprintf(stderr, "hearth info: %s\n", err.msg);
            hearth_gguf_close(g);
            return 1;
        }
        be->ops->info(be, &bi);
        dev_kv = hp.n_layer ? kv_bytes / (uint64_t)hp.n_layer * (uint64_t)m->n_device_layers : 0;
    }
    uint64_t act_bytes = have_hp ? (uint64_t)512 * sizeof(float) *
                                       (uint64_t)(4 * hp.n_embd + 2 * hp.n_ff + hp.n_vocab +
                                                  2 * hp.n_head * hp.head_dim + 2 * hp.n_head_kv * hp.head_dim)
                                 : 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", model_path);
        cJSON_AddNumberToObject(o, "file_bytes", (double)hearth_gguf_file_size(g));
        cJSON_AddNumberToObject(o, "gguf_version", hearth_gguf_version(g));
        cJSON_AddStringToObject(o, "name", namebuf);
        if (have_hp) {
            cJSON_AddStringToObject(o, "architecture", hearth_arch_get(arch)->name);
            cJSON *h = cJSON_AddObjectToObject(o, "hparams");
            cJSON_AddNumberToObject(h, "n_vocab", hp.n_vocab);
            cJSON_AddNumberToObject(h, "n_ctx_train", hp.n_ctx_train);
            cJSON_AddNumberToObject(h, "n_embd", hp.n_embd);
            cJSON_AddNumberToObject(h, "n_layer", hp.n_layer);
            cJSON_AddNumberToObject(h, "n_head", hp.n_head);
            cJSON_AddNumberToObject(h, "n_head_kv", hp.n_head_kv);
            cJSON_AddNumberToObject(h, "head_dim", hp.head_dim);
            cJSON_AddNumberToObject(h, "n_ff", hp.n_ff);
            cJSON_AddNumberToObject(h, "rope_freq_base", hp.rope_freq_base);
            cJSON_AddNumberToObject(h, "rms_eps", hp.rms_eps);
        } else {
            cJSON_AddStringToObject(o, "hparams_error", err.msg);
        }
        cJSON_AddNumberToObject(o, "n_tensors", (double)hearth_gguf_n_tensors(g));
        cJSON_AddNumberToObject(o, "n_params", (double)n_params);
        cJSON *tt = cJSON_AddObjectToObject(o, "tensor_types");
        for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
            if (type_count[t]) cJSON_AddNumberToObject(tt, hearth_dtype_name((hearth_dtype)t), (double)type_count[t]);
        cJSON *mem = cJSON_AddObjectToObject(o, "memory");
        cJSON_AddNumberToObject(mem, "ctx", n_ctx);
        cJSON_AddNumberToObject(mem, "parallel", parallel);
        cJSON_AddStringToObject(mem, "kv_type", hearth_dtype_name(kv_type));
        cJSON_AddNumberToObject(mem, "weights_bytes", (double)weight_bytes);
        cJSON_AddNumberToObject(mem, "kv_bytes", (double)kv_bytes);
        cJSON_AddNumberToObject(mem, "activations_bytes", (double)act_bytes);
        cJSON_AddNumberToObject(mem, "total_bytes", (double)(weight_bytes + kv_bytes + act_bytes));
        if (m) {
            cJSON *off = cJSON_AddObjectToObject(o, "offload");
            cJSON_AddStringToObject(off, "backend", bi.name);
            cJSON_AddStringToObject(off, "device", bi.device);
            cJSON_AddStringToObject(off, "plan", m->plan);
            cJSON_AddNumberToObject(off, "device_layers", m->n_device_layers);
            cJSON_AddNumberToObject(off, "n_layer", hp.n_layer);
            cJSON_AddNumberToObject(off, "device_weight_bytes",
                                    (double)(be->host ? m->device_bytes : m->weight_bytes));
            cJSON_AddNumberToObject(off, "device_kv_bytes", (double)dev_kv);
            cJSON_AddNumberToObject(off, "device_mem_total", (double)bi.mem_total);
            cJSON_AddNumberToObject(off, "device_mem_free", (double)bi.mem_free);
        }
        char *s = cJSON_PrintUnformatted(o);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        char b1[32], b2[32], b3[32], b4[32];
        app_human_bytes((double)hearth_gguf_file_size(g), b1, sizeof b1);
        printf("file:          %s (%s, GGUF v%u)\n", model_path, b1, hearth_gguf_version(g));
        if (namebuf[0]) printf("name:          %s\n", namebuf);
        if (have_hp) {
            printf("architecture:  %s\n", hearth_arch_get(arch)->name);
            printf("layers:        %d\n", hp.n_layer);
            printf("dim:           %d (ffn %d)\n", hp.n_embd, hp.n_ff);
            printf("heads:         %d query, %d key/value%s, head size %d\n", hp.n_head, hp.n_head_kv,
                   hp.n_head_kv < hp.n_head ? " (grouped-query attention)" : "", hp.head_dim);
            printf("vocabulary:    %d tokens\n", hp.n_vocab);
            printf("context:       %d tokens (trained)\n", hp.n_ctx_train);
            printf("rope:          base %g, %d dims%s\n", hp.rope_freq_base, hp.n_rot,
                   hp.rope_freq_scale != 1.0f ? ", linear scaling" : "");
        } else {
            printf("architecture:  (%s)\n", err.msg);
        }
        printf("parameters:    %.2fM in %llu tensors\n", n_params / 1e6, (unsigned long long)hearth_gguf_n_tensors(g));
        printf("tensor types: ");
        for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
            if (type_count[t]) {
                app_human_bytes((double)type_bytes[t], b2, sizeof b2);
                printf(" %s x%llu (%s)", hearth_dtype_name((hearth_dtype)t), (unsigned long long)type_count[t], b2);
            }
        printf("\n");
        if (have_hp) {
            app_human_bytes((double)weight_bytes, b2, sizeof b2);
            app_human_bytes((double)kv_bytes, b3, sizeof b3);
            app_human_bytes((double)(weight_bytes + kv_bytes + act_bytes), b4, sizeof b4);
            printf("memory at ctx %d x %d sequence%s (KV %s):\n", n_ctx, parallel, parallel == 1 ? "" : "s",
                   hearth_dtype_name(kv_type));
            printf("  weights      %s\n  kv cache     %s\n", b2, b3);
            app_human_bytes((double)act_bytes, b2, sizeof b2);
            printf("  activations  %s (512-token batches)\n  total        %s\n", b2, b4);
        }
        if (m) {
            app_human_bytes((double)(bi.mem_free ? bi.mem_free : bi.mem_total), b1, sizeof b1);
            printf("offload on %s (%s), %s %s:\n  %s\n", bi.name, bi.device, b1, bi.mem_free ? "free" : "in all",
                   m->plan);
            app_human_bytes((double)(be->host ? m->device_bytes : m->weight_bytes), b2, sizeof b2);
            app_human_bytes((double)dev_kv, b3, sizeof b3);
            printf("  on %s: %d of %d layers, weights %s, kv cache %s\n", bi.name, m->n_device_layers, hp.n_layer,
                   b2, b3);
        }
    }
    hearth_model_free(m);
    hearth_backend_free(be);
    hearth_gguf_close(g);
    return 0;
}
