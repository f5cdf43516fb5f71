/*
 * backend.h - the public face of a compute device: what the runtime and the
 * app need to pick, create, describe and free one.
 *
 * Owns the types the ops take (tensor descriptors, rope and attention
 * parameters), the backend info and device list, the registry
 * (hearth_backend_create / _free / _list / _devices) and the CPU backend's
 * constructor. A hearth_backend is opaque here: the ops vtable, its
 * contract per op and the struct a backend fills are in backend_impl.h, for
 * backend authors and for the runtime code that enqueues ops.
 *
 * Tensors are plain descriptors (type, 2-D shape, row stride, device pointer);
 * the memory behind `data` belongs to whoever allocated it through the
 * backend (or, for host-visible backends, may point into a mapped file).
 * Index arrays (token ids, positions, KV slots, page tables) are host
 * pointers that need to stay valid only for the duration of the call.
 *
 * Nothing under runtime/ or app/ includes a device header: adding a backend
 * means adding a folder under backends/ and a line in the registry.
 */
#ifndef HEARTH_BACKEND_H
#define HEARTH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/os.h" /* hearth_physical_cores, hearth_host_memory */

/* Opaque here; the layout is in backend_impl.h. */
typedef struct hearth_backend hearth_backend;

/* A 2-D tensor view: ne1 rows of ne0 elements, rows nb1 bytes apart. */
typedef struct hearth_tensor {
    hearth_dtype type;
    int64_t ne0; /* row length (elements), contiguous */
    int64_t ne1; /* number of rows */
    size_t nb1;  /* bytes between rows */
    void *data;  /* backend memory (host pointer on the CPU backend) */
} hearth_tensor;

typedef enum hearth_rope_mode {
    HEARTH_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    HEARTH_ROPE_NEOX = 2, /* rotate halves (x[i], x[i + n_rot/2]): qwen2/3, gpt-neox */
} hearth_rope_mode;

typedef struct hearth_rope_params {
    hearth_rope_mode mode;
    int n_rot; /* rotated dims per head (<= head_dim) */
    int head_dim;
    float freq_base;
    float freq_scale;          /* linear scaling: 1 / factor */
    const float *freq_factors; /* per-pair divisors (n_rot/2), e.g. Llama-3 rope_freqs; NULL = none */
    float attn_factor;         /* magnitude of cos/sin: YaRN's mscale, LongRoPE's factor; 1 otherwise */
    /* YaRN (ext_factor > 0): pair i turns by the extrapolated angle below
     * yarn_lo, the interpolated one (x freq_scale) above yarn_hi, a linear
     * blend between (ggml's rope_yarn; attn_factor already holds mscale). */
    float ext_factor;
    float yarn_lo, yarn_hi;
    /* Llama-4 / Ministral 3 attention temperature, queries only (0: off):
     * every pair of position pos is scaled by
     * 1 + temp_scale * log(1 + floor(pos / temp_floor)). */
    float temp_scale;
    int temp_floor;
} hearth_rope_params;

/* The cos/sin of every pair (n_rot / 2 of each) of position pos, as all
 * backends rotate them (backends/rope.c). */
void hearth_rope_cos_sin(const hearth_rope_params *p, int32_t pos, float *cs, float *sn);
/* YaRN's correction range [lo, hi] in pairs for beta_fast / beta_slow
 * (ggml_rope_yarn_corr_dims). */
void hearth_rope_yarn_dims(int n_rot, int n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                           float *lo, float *hi);

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
    char name[64];      /* "cpu", "cuda:0", "vulkan:1" */
    char device[128];   /* human-readable device description */
    uint64_t mem_total; /* bytes, 0 if unknown */
    uint64_t mem_free;
    bool host_visible; /* tensors may point straight into host memory (mmap) */
} hearth_backend_info;

/* Op ids of the per-op profile (`hearth bench --profile`): indexes of the
 * backend's op_time_us / op_count arrays (backend_impl.h). */
enum {
    HEARTH_OP_GET_ROWS,
    HEARTH_OP_RMS_NORM,
    HEARTH_OP_MATMUL,
    HEARTH_OP_ADD,
    HEARTH_OP_ROPE,
    HEARTH_OP_KV_STORE,
    HEARTH_OP_ATTENTION,
    HEARTH_OP_SILU_MUL,
    HEARTH_OP_COPY,
    HEARTH_OP_COUNT
};
const char *hearth_op_name(int op);

/* ------------------------------------------------------------ registry */

typedef struct hearth_backend_config {
    const char *name; /* "auto", "cpu", "cuda", "cuda:1", "vulkan", "vulkan:0" */
    int n_threads;    /* CPU threads; <= 0 = physical cores */
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
    char select[32];              /* what --backend takes to pick it: "cpu", "cuda:0", "vulkan:1" */
    char name[128];               /* "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char kind[32];                /* "cpu", "discrete gpu", "integrated gpu", "virtual gpu", "software" */
    char driver[96];              /* driver name and version, "" if unknown */
    uint64_t mem_total, mem_free; /* bytes; 0 if unknown */
    bool usable;                  /* Hearth can run on it (else `note` says why not) */
    bool auto_pick;               /* what --backend auto would choose */
    char note[128];
} hearth_device_desc;

/* Fill up to `cap` devices (the CPU first, then CUDA, then Vulkan) and return
 * how many there are. A backend that is built in but finds no driver adds
 * one line to `problems` (may be NULL) saying so. Touches each driver, so it
 * takes a moment; it creates no backend. */
int hearth_backend_devices(hearth_device_desc *out, int cap, char *problems, size_t problems_cap);

/* The CPU backend (always present). */
hearth_backend *hearth_cpu_backend_create(int n_threads, hearth_error *err);

/* ------------------------------------------------------------ queries (for the app and tests) */

/* What the backend is (name, device, memory). */
void hearth_backend_get_info(hearth_backend *b, hearth_backend_info *out);
/* The CPU backend a device backend hands the layers it does not take (a
 * split model runs on both); NULL on the CPU backend itself. */
hearth_backend *hearth_backend_host(const hearth_backend *b);
/* Per-op profile (`hearth bench --profile`): switch timing on or off, zero
 * the counters, read them (op ids above). Backends that cannot time ops
 * leave the times at 0. */
void hearth_backend_profile_enable(hearth_backend *b, bool on);
void hearth_backend_profile_reset(hearth_backend *b);
void hearth_backend_profile_read(const hearth_backend *b, double time_us[HEARTH_OP_COUNT],
                                 uint64_t count[HEARTH_OP_COUNT]);

/* Convenience wrappers. */
static inline hearth_tensor hearth_tensor_2d(hearth_dtype type, int64_t ne0, int64_t ne1, void *data) {
    hearth_tensor t = {type, ne0, ne1, hearth_dtype_row_size(type, ne0), data};
    return t;
}
/* Rows [r0, r0 + n) of t as a tensor of its own (a view: same data, same row stride). */
static inline hearth_tensor hearth_tensor_rows(const hearth_tensor *t, int64_t r0, int64_t n) {
    hearth_tensor v = *t;
    v.data = (char *)t->data + (size_t)r0 * t->nb1;
    v.ne1 = n;
    return v;
}

#endif
