/*
 * cmd_info.c - `hearth info`: what is in a GGUF model and what it needs to
 * run (capacity planning: weights + KV cache at a context and parallelism).
 * Reads metadata only; no weights are touched -- unless --backend is given:
 * then the model is loaded there (with --gpu-layers, --n-cpu-moe) and the
 * offload plan says which layers went to the device, what they take of its
 * memory, and how many layers' experts stay on the CPU (and their bytes).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/format/gguf.h"
#include "runtime/format/quant_rules.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward_moe.h"
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
        printf("%-10s %s; %s; memory %s (%s free)\n", "", d[i].kind,
               d[i].driver[0] ? d[i].driver : "driver ?", tot, fr);
        if (!d[i].usable || d[i].note[0])
            printf("%-10s %s%s\n", "", d[i].usable ? "" : "not usable: ", d[i].note);
    }
    if (problems[0]) printf("%s\n", problems);
    return 0;
}

/* What `hearth info` was asked. */
typedef struct info_opts {
    const char *model_path, *kv_type_name, *backend;
    int ctx, parallel, gpu_layers, threads, n_cpu_moe;
    bool json, devices, cpu_moe;
    hearth_dtype kv_type;
} info_opts;

/* What it found: metadata, tensor statistics, the memory estimate and, with
 * --backend, the loaded model whose offload plan is shown. */
typedef struct info_report {
    hearth_gguf *g;
    hearth_arch arch;
    hearth_hparams hp;
    bool have_hp;
    hearth_error err; /* why the hparams could not be read, when !have_hp */
    uint64_t n_params, weight_bytes, type_count[HEARTH_DTYPE_COUNT], type_bytes[HEARTH_DTYPE_COUNT];
    uint64_t unused_params, unused_bytes; /* MoE: the experts one token does not read */
    char name[128];
    int n_ctx;
    uint64_t kv_bytes, act_bytes;
    hearth_backend *be;
    hearth_model *m;
    hearth_backend_info bi;
    uint64_t dev_kv;
} info_report;

/* Parse the command line into o; returns -1 to go on, else the exit code. */
static int info_parse_flags(int argc, char **argv, info_opts *o) {
    *o = (info_opts){.kv_type_name = "f16", .parallel = 1, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    const arg_opt opts[] = {
        {NULL, "--devices", ARG_FLAG, &o->devices, NULL,
         "list the devices this build can run on (CPU, CUDA GPUs, Vulkan devices) and exit"},
        {"-m", "--model", ARG_STR, &o->model_path, "PATH", "GGUF model file (or give it as the argument)"},
        {"-c", "--ctx", ARG_INT, &o->ctx, "N",
         "context length per sequence for the memory estimate (default: the model's)"},
        {NULL, "--parallel", ARG_INT, &o->parallel, "N", "sequences served at once (default 1)"},
        {NULL, "--kv-type", ARG_STR, &o->kv_type_name, "TYPE", "KV cache type: f16 (default), f32, q8_0"},
        {NULL, "--backend", ARG_STR, &o->backend, "NAME",
         "load the model on auto, cpu, cuda[:N] or vulkan[:N] and show the offload plan"},
        {"-ngl", "--gpu-layers", ARG_INT, &o->gpu_layers, "N", APP_GPU_LAYERS_HELP},
        {NULL, "--n-cpu-moe", ARG_INT, &o->n_cpu_moe, "N", APP_N_CPU_MOE_HELP},
        {NULL, "--cpu-moe", ARG_FLAG, &o->cpu_moe, NULL,
         "every layer's experts on the CPU (--n-cpu-moe all)"},
        {"-t", "--threads", ARG_INT, &o->threads, "N", "CPU threads for the host side (with --backend)"},
        {NULL, "--json", ARG_FLAG, &o->json, NULL, "print one JSON object"},
    };
    const char *pos[1];
    int n_pos;
    int r = arg_parse(
        "info", "MODEL.gguf [--ctx N] [--parallel N] [--backend B [--gpu-layers N]] [--json] | --devices",
        "Show a model's architecture, hyperparameters, tensor types, parameter count, and the memory "
        "needed for its weights plus the KV cache.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (o->devices) return list_devices(o->json);
    if (n_pos) o->model_path = pos[0];
    if (o->n_cpu_moe < 0) {
        fprintf(stderr, "hearth info: --n-cpu-moe %d: %s\n", o->n_cpu_moe, APP_N_CPU_MOE_ACCEPTED);
        return 2;
    }
    if (o->cpu_moe) o->n_cpu_moe = HEARTH_CPU_MOE_ALL;
    o->model_path = app_resolve_model(o->model_path);
    if (!o->model_path) {
        fprintf(stderr, "hearth info: no model given (see hearth info --help)\n");
        return 2;
    }
    if (o->ctx < 0 || o->parallel < 1) {
        fprintf(stderr, "hearth info: --ctx must be >= 0 and --parallel >= 1\n");
        return 2;
    }
    if (!app_parse_kv_type("info", o->kv_type_name, &o->kv_type)) return 2;
    return -1;
}

/* Tensor statistics, the name, and weights + KV cache + activations at the
 * asked context and parallelism (from r->g, already open). */
static void info_compute(const info_opts *o, info_report *r) {
    r->have_hp = hearth_hparams_read(r->g, &r->arch, &r->hp, &r->err) == HEARTH_OK;
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(r->g); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(r->g, i);
        r->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        r->weight_bytes += t->nbytes;
        r->type_count[t->type]++;
        r->type_bytes[t->type] += t->nbytes;
    }
    hearth_str name = {0};
    hearth_gguf_get_str(r->g, "general.name", &name);
    hearth_str_copy(name, r->name, sizeof r->name);
    const hearth_hparams *hp = &r->hp;
    r->n_ctx = o->ctx ? o->ctx : (r->have_hp ? hp->n_ctx_train : 0);
    const int page_size = 16;
    if (r->have_hp && !hearth_arch_get(r->arch)->encoder) { /* encoders keep no KV cache */
        hearth_kv_config kc = {hp->n_layer, hp->n_head_kv, hp->head_dim, o->kv_type, page_size, 1, NULL};
        uint64_t pages = (uint64_t)o->parallel * (uint64_t)((r->n_ctx + page_size - 1) / page_size);
        r->kv_bytes = hearth_kv_page_bytes(&kc) * pages;
    }
    r->act_bytes = r->have_hp
                       ? (uint64_t)512 * sizeof(float) *
                             (uint64_t)(4 * hp->n_embd + 2 * hp->n_ff + hp->n_vocab +
                                        2 * hp->n_head * hp->head_dim + 2 * hp->n_head_kv * hp->head_dim)
                       : 0;
    if (r->have_hp && hp->n_expert > 0) { /* MoE: the experts' buffers (forward_moe.h) and the active share */
        const uint64_t k = (uint64_t)hp->n_expert_used;
        r->act_bytes +=
            512ull * sizeof(float) *
            ((uint64_t)hp->n_expert + k + k * (2ull * (uint64_t)hp->n_ff_exp + (uint64_t)hp->n_embd));
        hearth_moe_unused(r->g, hp->n_expert, hp->n_expert_used, &r->unused_params, &r->unused_bytes);
    }
}

/* --backend: load the model where it would run, for the offload plan.
 * Returns false (message printed) when loading fails. */
static bool info_load_offload(const info_opts *o, info_report *r) {
    if (!o->backend || !r->have_hp) return true;
    hearth_error err = {0};
    if (app_open_model(o->model_path, o->backend, o->threads, o->gpu_layers, o->n_cpu_moe, &r->be, &r->m,
                       &err)) {
        fprintf(stderr, "hearth info: %s\n", err.msg);
        return false;
    }
    hearth_backend_get_info(r->be, &r->bi);
    r->dev_kv = r->hp.n_layer ? r->kv_bytes / (uint64_t)r->hp.n_layer * (uint64_t)r->m->n_device_layers : 0;
    return true;
}

static void info_print_json(const info_opts *o, const info_report *r) {
    const hearth_hparams *hp = &r->hp;
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "file", o->model_path);
    cJSON_AddNumberToObject(obj, "file_bytes", (double)hearth_gguf_total_size(r->g)); /* every part */
    cJSON_AddNumberToObject(obj, "parts", hearth_gguf_n_parts(r->g));
    cJSON_AddNumberToObject(obj, "gguf_version", hearth_gguf_version(r->g));
    cJSON_AddStringToObject(obj, "name", r->name);
    uint32_t ft;
    if (hearth_gguf_get_u32(r->g, "general.file_type",
                            &ft)) /* what llama-quantize wrote: Q4_K_M, IQ2_M, ... */
        cJSON_AddStringToObject(obj, "file_type", hearth_ftype_name((hearth_ftype)ft));
    if (r->have_hp) {
        cJSON_AddStringToObject(obj, "architecture", hearth_arch_get(r->arch)->name);
        cJSON *h = cJSON_AddObjectToObject(obj, "hparams");
        cJSON_AddNumberToObject(h, "n_vocab", hp->n_vocab);
        cJSON_AddNumberToObject(h, "n_ctx_train", hp->n_ctx_train);
        cJSON_AddNumberToObject(h, "n_embd", hp->n_embd);
        cJSON_AddNumberToObject(h, "n_layer", hp->n_layer);
        cJSON_AddNumberToObject(h, "n_head", hp->n_head);
        cJSON_AddNumberToObject(h, "n_head_kv", hp->n_head_kv);
        cJSON_AddNumberToObject(h, "head_dim", hp->head_dim);
        cJSON_AddNumberToObject(h, "n_ff", hp->n_ff);
        cJSON_AddNumberToObject(h, "rope_freq_base", hp->rope_freq_base);
        cJSON_AddStringToObject(h, "rope_scaling",
                                hp->rope_ext_factor != 0.0f   ? "yarn"
                                : hp->rope_freq_scale != 1.0f ? "linear"
                                                              : "none");
        cJSON_AddNumberToObject(h, "rope_scaling_factor", 1.0 / hp->rope_freq_scale);
        cJSON_AddNumberToObject(h, "rms_eps", hp->rms_eps);
        if (hp->n_expert > 0) { /* mixture of experts */
            cJSON_AddNumberToObject(h, "n_expert", hp->n_expert);
            cJSON_AddNumberToObject(h, "n_expert_used", hp->n_expert_used);
            cJSON_AddNumberToObject(h, "n_ff_exp", hp->n_ff_exp);
            cJSON_AddBoolToObject(h, "expert_weights_norm", hp->expert_norm);
            cJSON_AddNumberToObject(h, "n_ff_shexp", hp->n_ff_shexp);
        }
        if (hearth_arch_get(r->arch)->encoder) { /* embedding model (runtime/model/embed.h) */
            cJSON *emb = cJSON_AddObjectToObject(obj, "embedding");
            cJSON_AddStringToObject(emb, "pooling", hearth_pooling_name(hp->pooling));
            cJSON_AddNumberToObject(emb, "layer_norm_eps", hp->norm_eps);
            cJSON_AddNumberToObject(emb, "n_cls_out", hp->n_cls_out);
        }
    } else {
        cJSON_AddStringToObject(obj, "hparams_error", r->err.msg);
    }
    cJSON_AddNumberToObject(obj, "n_tensors", (double)hearth_gguf_n_tensors(r->g));
    cJSON_AddNumberToObject(obj, "n_params", (double)r->n_params);
    cJSON_AddNumberToObject(obj, "n_params_active", (double)(r->n_params - r->unused_params));
    cJSON *tt = cJSON_AddObjectToObject(obj, "tensor_types");
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
        if (r->type_count[t])
            cJSON_AddNumberToObject(tt, hearth_dtype_name((hearth_dtype)t), (double)r->type_count[t]);
    cJSON *mem = cJSON_AddObjectToObject(obj, "memory");
    cJSON_AddNumberToObject(mem, "ctx", r->n_ctx);
    cJSON_AddNumberToObject(mem, "parallel", o->parallel);
    cJSON_AddStringToObject(mem, "kv_type", hearth_dtype_name(o->kv_type));
    cJSON_AddNumberToObject(mem, "weights_bytes", (double)r->weight_bytes);
    cJSON_AddNumberToObject(mem, "active_weights_bytes", (double)(r->weight_bytes - r->unused_bytes));
    cJSON_AddNumberToObject(mem, "kv_bytes", (double)r->kv_bytes);
    cJSON_AddNumberToObject(mem, "activations_bytes", (double)r->act_bytes);
    cJSON_AddNumberToObject(mem, "total_bytes", (double)(r->weight_bytes + r->kv_bytes + r->act_bytes));
    if (r->m) {
        cJSON *off = cJSON_AddObjectToObject(obj, "offload");
        cJSON_AddStringToObject(off, "backend", r->bi.name);
        cJSON_AddStringToObject(off, "device", r->bi.device);
        cJSON_AddStringToObject(off, "plan", r->m->plan);
        cJSON_AddNumberToObject(off, "device_layers", r->m->n_device_layers);
        cJSON_AddNumberToObject(off, "n_layer", hp->n_layer);
        cJSON_AddNumberToObject(off, "device_weight_bytes",
                                (double)(hearth_backend_host(r->be) ? r->m->device_bytes : r->m->weight_bytes));
        cJSON_AddNumberToObject(off, "device_kv_bytes", (double)r->dev_kv);
        cJSON_AddNumberToObject(off, "cpu_moe_layers", r->m->n_cpu_moe_layers);
        cJSON_AddNumberToObject(off, "cpu_moe_bytes", (double)r->m->cpu_moe_bytes);
        cJSON_AddNumberToObject(off, "device_mem_total", (double)r->bi.mem_total);
        cJSON_AddNumberToObject(off, "device_mem_free", (double)r->bi.mem_free);
    }
    char *s = cJSON_PrintUnformatted(obj);
    puts(s ? s : "{}");
    free(s);
    cJSON_Delete(obj);
}

/* The architecture and hyperparameter lines of the text report. */
static void info_print_hparams(const info_report *r) {
    const hearth_hparams *hp = &r->hp;
    if (!r->have_hp) {
        printf("architecture:  (%s)\n", r->err.msg);
        return;
    }
    printf("architecture:  %s\n", hearth_arch_get(r->arch)->name);
    uint32_t ft;
    if (hearth_gguf_get_u32(r->g, "general.file_type", &ft))
        printf("file type:     %s\n", hearth_ftype_name((hearth_ftype)ft));
    printf("layers:        %d\n", hp->n_layer);
    printf("dim:           %d (ffn %d)\n", hp->n_embd, hp->n_ff);
    printf("heads:         %d query, %d key/value%s, head size %d\n", hp->n_head, hp->n_head_kv,
           hp->n_head_kv < hp->n_head ? " (grouped-query attention)" : "", hp->head_dim);
    printf("vocabulary:    %d tokens\n", hp->n_vocab);
    printf("context:       %d tokens (trained)\n", hp->n_ctx_train);
    if (hp->n_expert > 0)
        printf("experts:       %d, %d used per token (softmax top-%d%s), expert ffn %d%s\n", hp->n_expert,
               hp->n_expert_used, hp->n_expert_used, hp->expert_norm ? ", renormalised" : "", hp->n_ff_exp,
               hp->n_ff_shexp > 0 ? ", a gated shared expert" : "");
    const hearth_arch_info *ai = hearth_arch_get(r->arch);
    if ((!ai->encoder || ai->rotary) && hp->rope_ext_factor != 0.0f)
        printf("rope:          base %g, %d dims, YaRN x%g over %d tokens (pairs %g-%g blended)%s\n",
               hp->rope_freq_base, hp->n_rot, 1.0 / hp->rope_freq_scale, hp->n_ctx_orig, hp->rope_yarn_lo,
               hp->rope_yarn_hi, hp->attn_temp_scale != 0.0f ? ", attention temperature" : "");
    else if (!ai->encoder || ai->rotary)
        printf("rope:          base %g, %d dims%s\n", hp->rope_freq_base, hp->n_rot,
               hp->rope_freq_scale != 1.0f ? ", linear scaling" : "");
    if (ai->encoder)
        printf("embedding:     pooling %s, bidirectional attention, layer norm eps %g (hearth embed, CPU)\n",
               hearth_pooling_name(hp->pooling), hp->norm_eps);
}

/* The memory estimate and, with --backend, the offload plan. */
static void info_print_memory(const info_opts *o, const info_report *r) {
    char b1[32], b2[32], b3[32], b4[32];
    if (r->have_hp) {
        app_human_bytes((double)r->weight_bytes, b2, sizeof b2);
        app_human_bytes((double)r->kv_bytes, b3, sizeof b3);
        app_human_bytes((double)(r->weight_bytes + r->kv_bytes + r->act_bytes), b4, sizeof b4);
        printf("memory at ctx %d x %d sequence%s (KV %s):\n", r->n_ctx, o->parallel,
               o->parallel == 1 ? "" : "s", hearth_dtype_name(o->kv_type));
        printf("  weights      %s\n", b2);
        if (r->unused_bytes) { /* MoE: what one token reads */
            app_human_bytes((double)(r->weight_bytes - r->unused_bytes), b1, sizeof b1);
            printf("               %s active per token (%d of %d experts)\n", b1, r->hp.n_expert_used,
                   r->hp.n_expert);
        }
        printf("  kv cache     %s\n", b3);
        app_human_bytes((double)r->act_bytes, b2, sizeof b2);
        printf("  activations  %s (512-token batches)\n  total        %s\n", b2, b4);
    }
    if (r->m) {
        const hearth_backend_info *bi = &r->bi;
        app_human_bytes((double)(bi->mem_free ? bi->mem_free : bi->mem_total), b1, sizeof b1);
        printf("offload on %s (%s), %s %s:\n  %s\n", bi->name, bi->device, b1,
               bi->mem_free ? "free" : "in all", r->m->plan);
        app_human_bytes((double)(hearth_backend_host(r->be) ? r->m->device_bytes : r->m->weight_bytes), b2, sizeof b2);
        app_human_bytes((double)r->dev_kv, b3, sizeof b3);
        printf("  on %s: %d of %d layers, weights %s, kv cache %s\n", bi->name, r->m->n_device_layers,
               r->hp.n_layer, b2, b3);
        if (r->m->n_cpu_moe_layers) {
            app_human_bytes((double)r->m->cpu_moe_bytes, b2, sizeof b2);
            printf("  experts on the cpu: %d layer%s, %s kept off %s\n", r->m->n_cpu_moe_layers,
                   r->m->n_cpu_moe_layers == 1 ? "" : "s", b2, bi->name);
        }
    }
}

static void info_print_text(const info_opts *o, const info_report *r) {
    char b1[32], b2[32];
    app_human_bytes((double)hearth_gguf_total_size(r->g), b1, sizeof b1);
    if (hearth_gguf_n_parts(r->g) > 1)
        printf("file:          %s (%s in %u parts, GGUF v%u)\n", o->model_path, b1, hearth_gguf_n_parts(r->g),
               hearth_gguf_version(r->g));
    else
        printf("file:          %s (%s, GGUF v%u)\n", o->model_path, b1, hearth_gguf_version(r->g));
    if (r->name[0]) printf("name:          %s\n", r->name);
    info_print_hparams(r);
    printf("parameters:    %.2fM in %llu tensors", r->n_params / 1e6,
           (unsigned long long)hearth_gguf_n_tensors(r->g));
    if (r->unused_params) printf(", %.2fM active per token", (r->n_params - r->unused_params) / 1e6);
    printf("\n");
    printf("tensor types: ");
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
        if (r->type_count[t]) {
            app_human_bytes((double)r->type_bytes[t], b2, sizeof b2);
            printf(" %s x%llu (%s)", hearth_dtype_name((hearth_dtype)t), (unsigned long long)r->type_count[t],
                   b2);
        }
    printf("\n");
    info_print_memory(o, r);
}

int cmd_info(int argc, char **argv) {
    info_opts o;
    int rc = info_parse_flags(argc, argv, &o);
    if (rc >= 0) return rc;
    info_report r = {0};
    hearth_error err = {0};
    r.g = hearth_gguf_open(o.model_path, &err);
    if (!r.g) {
        fprintf(stderr, "hearth info: %s\n", err.msg);
        return 1;
    }
    info_compute(&o, &r);
    rc = 1;
    if (info_load_offload(&o, &r)) {
        if (o.json)
            info_print_json(&o, &r);
        else
            info_print_text(&o, &r);
        rc = 0;
    }
    hearth_model_free(r.m);
    hearth_backend_free(r.be);
    hearth_gguf_close(r.g);
    return rc;
}
