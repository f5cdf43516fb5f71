/*
 * registry.c - which backends this build has, and choosing one.
 *
 * "auto" prefers CUDA, then a Vulkan GPU (never a software rasteriser unless
 * named explicitly), then the CPU. A named backend that is not built in or has
 * no usable device is an error with a message saying what to do; "auto"
 * falls back silently (the caller logs which backend it got).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/vulkan/vk_backend.h"

const char *hearth_backend_list(void) {
    return "cpu"
#ifdef HEARTH_HAVE_CUDA
           ", cuda"
#endif
#ifdef HEARTH_HAVE_VULKAN
           ", vulkan"
#endif
        ;
}

__attribute__((unused)) static int parse_device(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    if (name[n] == ':') return atoi(name + n + 1);
    return -1;
}

static hearth_backend *create_device(const hearth_backend_config *cfg, hearth_error *err);

/* A device backend gets its host companion (see backend.h). */
hearth_backend *hearth_backend_create(const hearth_backend_config *cfg, hearth_error *err) {
    hearth_backend *b = create_device(cfg, err);
    if (b && b->ops->info && !b->host) {
        hearth_backend_info bi;
        b->ops->info(b, &bi);
        if (!bi.host_visible) {
            b->host = hearth_cpu_backend_create(cfg ? cfg->n_threads : 0, err);
            if (!b->host) {
                hearth_backend_free(b);
                return NULL;
            }
        }
    }
    return b;
}

static hearth_backend *create_device(const hearth_backend_config *cfg, hearth_error *err) {
    const char *name = cfg && cfg->name ? cfg->name : "auto";
    int threads = cfg ? cfg->n_threads : 0;
    if (!strcmp(name, "cpu")) return hearth_cpu_backend_create(threads, err);
    if (!strncmp(name, "cuda", 4) && (name[4] == 0 || name[4] == ':')) {
#ifdef HEARTH_HAVE_CUDA
        return hearth_cuda_backend_create(parse_device(name, "cuda"), err);
#else
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "backend '%s': this build has no CUDA backend (built with: %s); rebuild with "
                         "-DHEARTH_CUDA=ON on a machine with the CUDA toolkit, or use --backend cpu",
                         name, hearth_backend_list());
        return NULL;
#endif
    }
    if (!strncmp(name, "vulkan", 6) && (name[6] == 0 || name[6] == ':')) {
#ifdef HEARTH_HAVE_VULKAN
        return hearth_vulkan_backend_create(parse_device(name, "vulkan"), true, err);
#else
        hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "backend '%s': this build has no Vulkan backend (built with: %s); install the Vulkan "
            "headers and glslc (packaging/install-deps.sh) and rebuild, or use --backend cpu",
            name, hearth_backend_list());
        return NULL;
#endif
    }
    if (!strcmp(name, "auto")) {
#ifdef HEARTH_HAVE_CUDA
        {
            hearth_backend *b = hearth_cuda_backend_create(-1, NULL);
            if (b) return b;
        }
#endif
#ifdef HEARTH_HAVE_VULKAN
        {
            hearth_backend *b = hearth_vulkan_backend_create(-1, false, NULL);
            if (b) return b;
        }
#endif
        return hearth_cpu_backend_create(threads, err);
    }
    hearth_error_set(err, HEARTH_ERR_INVALID,
                     "unknown backend '%s': expected auto, cpu, cuda[:N] or vulkan[:N] (this build has: %s)",
                     name, hearth_backend_list());
    return NULL;
}

void hearth_backend_free(hearth_backend *b) {
    if (!b) return;
    hearth_backend *host = b->host;
    b->ops->destroy(b);
    if (host) host->ops->destroy(host);
}

/* The CPU: model name from /proc/cpuinfo, kernel families, cores, memory. */
static void cpu_device(hearth_device_desc *d) {
    memset(d, 0, sizeof *d);
    snprintf(d->select, sizeof d->select, "cpu");
    snprintf(d->kind, sizeof d->kind, "cpu");
    snprintf(d->name, sizeof d->name, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (colon && !strncmp(line, "model name", 10)) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = 0;
            snprintf(d->name, sizeof d->name, "%s", colon);
            break;
        }
    }
    if (f) fclose(f);
    snprintf(d->driver, sizeof d->driver, "%s kernels, %d physical core%s", hearth_cpu_features(),
             hearth_physical_cores(), hearth_physical_cores() == 1 ? "" : "s");
    hearth_host_memory(&d->mem_total, &d->mem_free);
    d->usable = true;
}

/* Append one problem line ("cuda: ...") to buf. */
__attribute__((unused)) static void add_problem(char *buf, size_t cap, const char *msg) {
    if (!buf || !cap) return;
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? "\n" : "", msg);
}

int hearth_backend_devices(hearth_device_desc *out, int cap, char *problems, size_t problems_cap) {
    if (problems && problems_cap) problems[0] = 0;
    int n = 0;
    hearth_device_desc tmp[16];
    cpu_device(&tmp[n++]);
    bool gpu_picked = false;
#ifdef HEARTH_HAVE_CUDA
    {
        hearth_error e = {0};
        int k = hearth_cuda_devices(tmp + n, 16 - n, &e);
        if (k < 0) add_problem(problems, problems_cap, e.msg);
        for (int i = 0; i < k; i++)
            if (tmp[n + i].usable && !gpu_picked) gpu_picked = tmp[n + i].auto_pick = true;
        n += k > 0 ? k : 0;
    }
#endif
#ifdef HEARTH_HAVE_VULKAN
    {
        hearth_error e = {0};
        int k = hearth_vulkan_devices(tmp + n, 16 - n, &e);
        if (k < 0) add_problem(problems, problems_cap, e.msg);
        /* auto takes the best-ranked usable non-software device; the backend
         * marks it, unless a CUDA device comes first */
        for (int i = 0; i < k && gpu_picked; i++)
            tmp[n + i].auto_pick = false;
        for (int i = 0; i < k; i++)
            gpu_picked |= tmp[n + i].auto_pick;
        n += k > 0 ? k : 0;
    }
#endif
    tmp[0].auto_pick = !gpu_picked;
    for (int i = 0; i < n && i < cap; i++)
        out[i] = tmp[i];
    return n;
}

const char *hearth_op_name(int op) {
    static const char *names[] = {"get_rows", "rms_norm",  "matmul",   "add", "rope",
                                  "kv_store", "attention", "silu_mul", "copy"};
    return op >= 0 && op < HEARTH_OP_COUNT ? names[op] : "?";
}

/* ------------------------------------------------------------ queries */

void hearth_backend_get_info(hearth_backend *b, hearth_backend_info *out) {
    b->ops->info(b, out);
}

hearth_backend *hearth_backend_host(const hearth_backend *b) {
    return b->host;
}

void hearth_backend_profile_enable(hearth_backend *b, bool on) {
    b->profile = on;
}

void hearth_backend_profile_reset(hearth_backend *b) {
    memset(b->op_time_us, 0, sizeof b->op_time_us);
    memset(b->op_count, 0, sizeof b->op_count);
}

void hearth_backend_profile_read(const hearth_backend *b, double time_us[HEARTH_OP_COUNT],
                                 uint64_t count[HEARTH_OP_COUNT]) {
    for (int op = 0; op < HEARTH_OP_COUNT; op++) {
        time_us[op] = b->op_time_us[op];
        count[op] = b->op_count[op];
    }
}
