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

#include "backend.h"

#ifdef HEARTH_HAVE_CUDA
hearth_backend *hearth_cuda_backend_create(int device, hearth_error *err);
#endif
#ifdef HEARTH_HAVE_VULKAN
hearth_backend *hearth_vulkan_backend_create(int device, bool allow_software, hearth_error *err);
#endif

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
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
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
    hearth_error_set(err, HEARTH_ERR_INVALID, "unknown backend '%s': expected auto, cpu, cuda[:N] or vulkan[:N] (this build has: %s)",
                     name, hearth_backend_list());
    return NULL;
}

void hearth_backend_free(hearth_backend *b) {
    if (!b) return;
    hearth_backend *host = b->host;
    b->ops->destroy(b);
    if (host) host->ops->destroy(host);
}

const char *hearth_op_name(int op) {
    static const char *names[] = {"get_rows", "rms_norm", "matmul", "add",      "rope",
                                  "kv_store", "attention", "silu_mul", "copy"};
    return op >= 0 && op < HEARTH_OP_COUNT ? names[op] : "?";
}
