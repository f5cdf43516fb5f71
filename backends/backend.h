/*
 * backend.h - the one interface between the runtime and a compute device.
 *
 * A backend is a vtable of ops plus an opaque context. The forward pass
 * enqueues ops in order; a backend may run them at once (CPU, on its thread
 * pool) or record/launch them asynchronously (CUDA stream, Vulkan command
 * buffer) -- results are only guaranteed visible on the host after
 * `synchronize`. Device errors surface from synchronize (ops do not fail: the
 * runtime validates shapes before calling them).
 *
 * Tensors are plain descriptors (type, 2-D shape, row stride, device pointer);
 * the memory behind `data` belongs to whoever allocated it through
 * `alloc` (or, for host-visible backends, may point into a mapped file).
 * Index arrays (token ids, positions, KV slots, page tables) are passed as host
 * pointers that need to stay valid only for the duration of the call.
 *
 * Nothing under runtime/ includes a device header: adding a backend means
 * adding a folder under backends/ and a line in the registry.
 */
#ifndef HEARTH_BACKEND_H
#define HEARTH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/os.h" /* hearth_physical_cores, hearth_host_memory */

typedef struct hearth_backend hearth_backend;

/* A 2-D tensor view: ne1 rows of ne0 elements, rows nb1 bytes apart. */
typedef struct hearth_tensor {
    hearth_dtype type;
    int64_t ne0;      /* row length (elements), contiguous */
    int64_t ne1;      /* number of rows */
    size_t nb1;       /* bytes between rows */
    void *data;       /* backend memory (host pointer on the CPU backend) */
} hearth_tensor;

typedef enum hearth_rope_mode {
    HEARTH_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    HEARTH_ROPE_NEOX = 2, /* rotate halves (x[i], x[i + n_rot/2]): qwen2/3, gpt-neox */
} hearth_rope_mode;

typedef struct hearth_rope_params {
    hearth_rope_mode mode;
    int n_rot;                 /* rotated dims per head (<= head_dim) */
    int head_dim;
    float freq_base;
    float freq_scale;          /* linear scaling: 1 / factor */
    const float *freq_factors; /* per-pair divisors (n_rot/2), e.g. Llama-3 rope_freqs; NULL = none */
    float attn_factor;         /* YaRN magnitude scaling; 1 otherwise */
} hearth_rope_params;

/* Where the keys visible to each token of a ubatch live in the paged KV pool.
 * Token i sees kv_len[i] keys: positions 0..kv_len[i]-1 of its sequence,
 * position p stored at slot page_table[pt_offset[i] + p / page_size] *
 * page_size + p % page_size. */
typedef struct hearth_attn_meta {
    int n_tokens;
    int page_size;
    const int32_t *kv_len;     /* [n_tokens] */
    const int32_t *pt_offset;  /* [n_tokens] offset of the token's page table */
    const int32_t *page_table; /* concatenated page tables */
    int n_page_table;          /* total entries in page_table */
} hearth_attn_meta;

typedef struct hearth_backend_info {
    char name[64];        /* "cpu", "cuda:0", "vulkan:1" */
    char device[128];     /* human-readable device description */
    uint64_t mem_total;   /* bytes, 0 if unknown */
    uint64_t mem_free;
    bool host_visible;    /* tensors may point straight into host memory (mmap) */
} hearth_backend_info;

typedef struct hearth_backend_ops {
    void (*destroy)(hearth_backend *b);
    void (*info)(hearth_backend *b, hearth_backend_info *out);
    bool (*supports_type)(hearth_backend *b, hearth_dtype weight_type);

    /* Memory. alloc returns NULL and sets err on failure. */
    void *(*alloc)(hearth_backend *b, size_t bytes, hearth_error *err);
    void (*dealloc)(hearth_backend *b, void *ptr);
    void (*upload)(hearth_backend *b, void *dst, const void *host_src, size_t bytes);
    void (*download)(hearth_backend *b, void *host_dst, const void *src, size_t bytes);
    /* Device-to-device copy (KV page copy-on-write). */
    void (*copy)(hearth_backend *b, void *dst, const void *src, size_t bytes);

    /* Ops. Activations are F32 rows of `n_tokens`; weights any supported type. */
    /* out[i] = dequant(w row ids[i]) */
    void (*get_rows)(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n, hearth_tensor *out);
    /* out = x / rms(x) * w, per row of x (w has x.ne0 elements); out may alias x */
    void (*rms_norm)(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps,
                     hearth_tensor *out);
    /* out[t, r] = sum_k w[r, k] * x[t, k] (+ bias[r] when bias != NULL) */
    void (*matmul)(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x, const hearth_tensor *bias,
                   hearth_tensor *out);
    /* Optional (NULL: the runtime calls matmul n times). out[i] = w[i] x
     * (+ bias[i] when bias[i] != NULL) for i < n <= 4, all w[i] of one type
     * and row length: several projections of one input (Q/K/V, gate/up) in
     * one dispatch, the input converted once. Same results as n matmuls. */
    void (*matmul_multi)(hearth_backend *b, int n, const hearth_tensor *const *w, const hearth_tensor *x,
                         const hearth_tensor *const *bias, hearth_tensor *const *out);
    /* out = a + b (same shape); out may alias a */
    void (*add)(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c, hearth_tensor *out);
    /* In place on x viewed as [n_tokens, n_heads, head_dim]; pos[n_tokens] */
    void (*rope)(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos, const hearth_rope_params *p);
    /* pool row slots[i] = src row i (converted to pool->type) */
    void (*kv_store)(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src, const int32_t *slots);
    /* Causal paged attention, GQA: q [n_tokens, n_heads*head_dim] -> out same shape. */
    void (*attention)(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                      const hearth_tensor *v_pool, const hearth_attn_meta *meta, int n_heads, int n_kv_heads,
                      int head_dim, float scale, hearth_tensor *out);
    /* out = silu(gate) * up */
    void (*silu_mul)(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up, hearth_tensor *out);
    /* Copy rows: out[i] = x[rows[i]] (gathers the rows that need logits). */
    void (*get_rows_f32)(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n, hearth_tensor *out);
    /* Optional (NULL: the runtime downloads the logits and picks on the host).
     * ids[r] = the index of the largest value of F32 row r of x, the first
     * one on ties, NaNs never chosen; ids is backend memory of x->ne1 int32.
     * Lets greedy decoding fetch 4 bytes per sequence instead of a vocabulary
     * of logits. */
    void (*argmax)(hearth_backend *b, const hearth_tensor *x, void *ids);

    /* Wait for everything enqueued; report device errors. */
    hearth_status (*synchronize)(hearth_backend *b, hearth_error *err);
} hearth_backend_ops;

struct hearth_backend {
    const hearth_backend_ops *ops;
    void *ctx;
    /* Per-op timing for `--profile` (accumulated by backends that can). */
    bool profile;
    double op_time_us[16];
    uint64_t op_count[16];
    /* The CPU backend a device backend hands work it does not take: layers
     * beyond the offload count, weight types it has no kernel for. Created
     * and freed by the registry with the device; NULL on the CPU backend. */
    hearth_backend *host;
};

/* Op ids for the profile arrays. */
enum {
    HEARTH_OP_GET_ROWS, HEARTH_OP_RMS_NORM, HEARTH_OP_MATMUL, HEARTH_OP_ADD, HEARTH_OP_ROPE,
    HEARTH_OP_KV_STORE, HEARTH_OP_ATTENTION, HEARTH_OP_SILU_MUL, HEARTH_OP_COPY, HEARTH_OP_COUNT
};
const char *hearth_op_name(int op);

/* ------------------------------------------------------------ registry */

typedef struct hearth_backend_config {
    const char *name;  /* "auto", "cpu", "cuda", "cuda:1", "vulkan", "vulkan:0" */
    int n_threads;     /* CPU threads; <= 0 = physical cores */
} hearth_backend_config;

/* Create the backend `cfg->name` names ("auto" picks the best available).
 * Fails with a clear message when the named backend is not built in or has
 * no usable device. A device backend comes with its `host` CPU backend
 * (n_threads threads); hearth_backend_free frees both. */
hearth_backend *hearth_backend_create(const hearth_backend_config *cfg, hearth_error *err);
void hearth_backend_free(hearth_backend *b);

/* Backends compiled into this build, comma-separated ("cpu, vulkan"). */
const char *hearth_backend_list(void);

/* One device a backend of this build can run on (hearth info --devices). */
typedef struct hearth_device_desc {
    char select[32];   /* what --backend takes to pick it: "cpu", "cuda:0", "vulkan:1" */
    char name[128];    /* "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char kind[32];     /* "cpu", "discrete gpu", "integrated gpu", "virtual gpu", "software" */
    char driver[96];   /* driver name and version, "" if unknown */
    uint64_t mem_total, mem_free; /* bytes; 0 if unknown */
    bool usable;       /* Hearth can run on it (else `note` says why not) */
    bool auto_pick;    /* what --backend auto would choose */
    char note[128];
} hearth_device_desc;

/* Fill up to `cap` devices (the CPU first, then CUDA, then Vulkan) and return
 * how many there are. A backend that is built in but finds no driver adds
 * one line to `problems` (may be NULL) saying so. Touches each driver, so it
 * takes a moment; it creates no backend. */
int hearth_backend_devices(hearth_device_desc *out, int cap, char *problems, size_t problems_cap);

/* The CPU backend (always present). */
hearth_backend *hearth_cpu_backend_create(int n_threads, hearth_error *err);

/* Convenience wrappers. */
static inline hearth_tensor hearth_tensor_2d(hearth_dtype type, int64_t ne0, int64_t ne1, void *data) {
    hearth_tensor t = {type, ne0, ne1, hearth_dtype_row_size(type, ne0), data};
    return t;
}

#endif
