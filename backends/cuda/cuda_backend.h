/*
 * cuda_backend.h - what the CUDA backend offers beyond backend.h: creation,
 * and counters that let tests/gpu/test_cuda_ops.c see which paths ran.
 *
 * Owner: the CUDA backend (backends/cuda, internals in its README.md).
 * runtime/ never includes this (it knows devices only through backend.h);
 * the registry (backends/registry.c) and the backend's tests do.
 *
 * Environment, read when the backend is created:
 *   HEARTH_CUDA_KERNELS=simple      only the reference kernels (cuda_kernels.cuh)
 *   HEARTH_CUDA_GRAPHS=0            launch every op at once, never a CUDA graph
 *   HEARTH_CUDA_GRAPH_MAX_TOKENS=N  passes of up to N tokens become graphs (32)
 */
#ifndef HEARTH_CUDA_BACKEND_H
#define HEARTH_CUDA_BACKEND_H

#include <stdint.h>

#include "backends/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* device < 0: the first device. NULL with one clear line in err when there is none. */
hearth_backend *hearth_cuda_backend_create(int device, hearth_error *err);

/* The CUDA devices, for hearth info --devices: up to cap into out; the
 * count, or -1 with err saying why none can be used (no driver, ...). */
int hearth_cuda_devices(hearth_device_desc *out, int cap, hearth_error *err);

typedef struct hearth_cuda_counters {
    uint64_t eager_segments;  /* op sequences launched one kernel at a time */
    uint64_t graph_captures;  /* sequences captured and instantiated as a graph */
    uint64_t graph_replays;   /* graph launches (captures included) */
    uint64_t graph_evictions; /* graphs dropped: cache full, or a scratch buffer moved */
    uint64_t gemm;            /* tensor-core matmuls */
    uint64_t matvec_fast;     /* 16-byte-load matvecs */
    uint64_t attn_split;      /* split-K decode attentions */
} hearth_cuda_counters;

/* Counters since creation. b must be a CUDA backend. */
void hearth_cuda_get_counters(hearth_backend *b, hearth_cuda_counters *out);

#ifdef __cplusplus
}
#endif

#endif
