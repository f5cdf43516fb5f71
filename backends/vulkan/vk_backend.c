/*
 * vk_backend.c - the Vulkan implementation of backend.h (compute shaders).
 *
 * Owns: one VkInstance/VkDevice with one compute queue, a VkBuffer per
 * `alloc`, the compute pipelines of the embedded shaders (shaders/<name>.comp,
 * see vk_shaders.h), a per-pass staging arena for index arrays, a timestamp
 * query pool, and one command buffer that records every op of a forward pass;
 * it is submitted (and waited on) at synchronize, download and upload.
 *
 * Device pointers: `alloc` returns a synthetic address (not dereferenceable)
 * from a private address space; every allocation owns [addr, addr + size), so
 * the runtime's pointer arithmetic on tensor->data (page views, row offsets)
 * resolves back to (buffer, byte offset) by binary search. Shaders bind whole
 * buffers and take offsets in push constants, so no offset alignment applies.
 *
 * Invariants: ops only record (they never fail); any problem (a pointer that
 * is not ours, a KV type the shaders lack, head_dim > 256, a pipeline that
 * cannot be built) is kept and reported by the next synchronize. Barriers: a
 * dispatch that reads a buffer written since the last barrier, or writes one
 * read or written since then, gets a full compute/transfer memory barrier
 * first; independent dispatches (the q/k/v matmuls) run without one.
 * Weight types: every type the CPU backend loads (F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q2_K..Q6_K), one pipeline per type for the weight-reading
 * shaders, built on first use. KV pools: F32, F16, Q8_0. The encoder ops
 * (bert, nomic-bert): layer_norm (layer_norm.comp) and gelu (binary.comp op
 * 2); their bidirectional attention is the attention shader itself, which
 * takes every token's key range from the metadata (kv_len, page table).
 * Capabilities are queried, never assumed (query_caps): subgroup arithmetic
 * selects the *_sg shader variants (HEARTH_VK_SUBGROUPS=0 forces the
 * shared-memory ones), 16- and 8-bit storage-buffer access the *_st ones
 * (HEARTH_VK_STORAGE16=0 forces 32-bit word reads; both give bit-identical
 * results, arithmetic being F32 in all of them), the subgroup size sets matvec's rows per workgroup,
 * shared-memory needs are checked against maxComputeSharedMemorySize, and
 * buffers larger than maxStorageBufferRange (128 MiB on lavapipe) are refused
 * at alloc with a message naming the limit. With backend->profile set, each
 * command is bracketed by timestamps (when the queue has timestampValidBits)
 * and its device time lands in op_time_us/op_count at synchronize.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <vulkan/vulkan.h>

#include "backends/backend_impl.h"
#include "core/grow.h"
#include "vk_backend.h"
#include "vk_shaders.h"

/* ------------------------------------------------------------ types */

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;      /* host mapping when the memory is host visible, else NULL */
    size_t size;    /* bytes requested */
    uintptr_t addr; /* synthetic base address (device buffers only) */
} vk_buf;

/* One pipeline per shader, from shaders/<name><suffixes>.comp: `sg` shaders
 * have a subgroup-arithmetic variant (suffix _sg), used when the device has
 * it; `st` shaders read F16/BF16 data and int8 quants and have a variant
 * (suffix _st, after _sg) that loads them through 16-bit and 8-bit
 * storage-buffer views instead of 32-bit words, used when the device has
 * both storage features (see query_caps). `typed` shaders
 * read weights: they get one pipeline per weight type, the type being
 * specialisation constant 2 (so each pipeline holds only its own decoder;
 * with the type as a runtime switch lavapipe ran the prompt matmul 3x
 * slower), built on first use. `shared` is the shader's shared memory in
 * bytes, checked against maxComputeSharedMemorySize at startup. */
enum {
    SH_GET_ROWS,
    SH_MATMUL,
    SH_MATVEC,
    SH_RMS_NORM,
    SH_BINARY,
    SH_ROPE,
    SH_KV_STORE,
    SH_ATTENTION,
    SH_ARGMAX,
    SH_LAYER_NORM,
    SH_COUNT
};
static const struct {
    const char *name;
    bool sg, st;
    uint32_t n_bind;
    uint32_t shared;
    bool typed;
} shader_defs[SH_COUNT] = {
    {"get_rows", false, true, 3, 0, true},      {"matmul", false, true, 4, 8 * 64 * 4, true},
    {"matvec", true, true, 4, 64 * 4, true},    {"rms_norm", true, false, 3, 64 * 4, false},
    {"binary", false, false, 3, 0, false},      {"rope", false, false, 2, 0, false},
    {"kv_store", false, true, 3, 0, false},     {"attention", true, true, 5, (256 + 8 + 3 * 64) * 4, false},
    {"argmax", false, false, 2, 64 * 8, false}, {"layer_norm", true, false, 4, 64 * 4, false},
};

enum { MAX_PENDING = 48, STAGE_CHUNK = 1 << 20, PUSH_BYTES = 128, MAX_QUERIES = 4096 };

typedef struct vk_ctx {
    hearth_backend *self; /* for the profile arrays */
    int index;
    VkInstance inst;
    VkPhysicalDevice pdev;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    char driver[96];
    /* capabilities, queried at startup */
    uint32_t subgroup_size;     /* VkPhysicalDeviceSubgroupProperties */
    bool subgroup_arith;        /* ARITHMETIC ops in the COMPUTE stage */
    bool use_subgroups;         /* ... and not turned off by HEARTH_VK_SUBGROUPS=0 */
    bool storage16, storage8;   /* storageBuffer16BitAccess, storageBuffer8BitAccess */
    bool use_storage;           /* both, not turned off by HEARTH_VK_STORAGE16=0: the _st shaders */
    uint32_t mv_rows, mv_block; /* matvec: rows per workgroup, invocations per workgroup */
    /* --profile timestamps (when the queue has timestampValidBits) */
    VkQueryPool qpool;
    uint64_t ts_mask;
    float ts_period; /* ns per tick */
    int n_timed;     /* dispatches timed in the pass being recorded (2 queries each) */
    bool qpool_reset;
    uint8_t timed_op[MAX_QUERIES / 2];
    uint64_t ts_buf[MAX_QUERIES];
    VkPipelineCache pcache;
    char cache_path[512];
    VkDescriptorSetLayout dsl[SH_COUNT];
    VkPipelineLayout pl[SH_COUNT];
    VkPipeline pipe[SH_COUNT];                      /* untyped shaders */
    VkShaderModule mod[SH_COUNT];                   /* kept for the typed pipelines built on use */
    VkPipeline tpipe[SH_COUNT][HEARTH_DTYPE_COUNT]; /* typed shaders, by weight type */
    VkCommandPool cpool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool recording;
    VkDescriptorPool *dpools; /* per-pass descriptor sets; reset at flush */
    int n_dpools, cur_dpool;
    size_t cap_dpools;
    vk_buf **bufs; /* device buffers sorted by addr */
    int n_bufs;
    size_t cap_bufs;
    uintptr_t next_addr;
    vk_buf **stage; /* host-visible staging chunks, reused pass after pass */
    int n_stage, cur_stage;
    size_t cap_stage;
    size_t stage_used;
    const vk_buf *pend_w[MAX_PENDING], *pend_r[MAX_PENDING]; /* hazards since the last barrier */
    int n_w, n_r;
    /* rope angle table of this pass (the same for every layer) */
    int32_t *rope_pos;
    int rope_n;
    size_t rope_cap;
    hearth_rope_params rope_p;
    vk_buf *rope_buf;
    size_t rope_off;
    bool rope_valid;
    hearth_status err_code; /* first deferred error, reported by synchronize */
    char err_msg[384];
} vk_ctx;

static vk_ctx *ctx_of(hearth_backend *b) {
    return b->ctx;
}

static void defer_error(vk_ctx *c, hearth_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void defer_error(vk_ctx *c, hearth_status code, const char *fmt, ...) {
    if (c->err_code) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof c->err_msg, fmt, ap);
    va_end(ap);
    c->err_code = code;
}

static const char *vk_result_str(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    default: return "VkResult error";
    }
}

/* ------------------------------------------------------------ memory */

static int find_mem_type(vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->memprops.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

/* A buffer of `bytes`: device-local (mapped too when that memory is host
 * visible and coherent, as on lavapipe and UMA GPUs), or host-visible. */
static vk_buf *buf_create(vk_ctx *c, size_t bytes, bool host, hearth_error *err) {
    vk_buf *b = calloc(1, sizeof *b);
    if (!b) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "vulkan: out of host memory");
        return NULL;
    }
    b->size = bytes;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = (bytes + 15) & ~(size_t)15;
    if (bi.size == 0) bi.size = 16;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkResult r = vkCreateBuffer(c->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) goto fail;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int t = host ? find_mem_type(c, req.memoryTypeBits, hv)
                 : find_mem_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (t < 0) t = find_mem_type(c, req.memoryTypeBits, host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT : 0);
    if (t < 0) {
        r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
        goto fail;
    }
    VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, NULL, req.size, (uint32_t)t};
    r = vkAllocateMemory(c->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) goto fail;
    r = vkBindBufferMemory(c->dev, b->buf, b->mem, 0);
    if (r != VK_SUCCESS) goto fail;
    if ((c->memprops.memoryTypes[t].propertyFlags & hv) == hv) {
        r = vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
        if (r != VK_SUCCESS) goto fail;
    }
    return b;
fail:
    if (b->buf) vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
    hearth_error_set(err, r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? HEARTH_ERR_NOMEM : HEARTH_ERR_IO,
                     "vulkan: cannot allocate a %zu-byte buffer (%s)", bytes, vk_result_str(r));
    return NULL;
}

static void buf_destroy(vk_ctx *c, vk_buf *b) {
    if (!b) return;
    if (b->map) vkUnmapMemory(c->dev, b->mem);
    vkDestroyBuffer(c->dev, b->buf, NULL);
    vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
}

/* The allocation holding synthetic address p, and p's byte offset in it. */
static vk_buf *resolve(vk_ctx *c, const void *p, size_t *off) {
    uintptr_t a = (uintptr_t)p;
    *off = 0;
    int lo = 0, hi = c->n_bufs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        vk_buf *b = c->bufs[mid];
        if (a < b->addr)
            hi = mid - 1;
        else if (a >= b->addr + (b->size ? b->size : 1))
            lo = mid + 1;
        else {
            *off = a - b->addr;
            return b;
        }
    }
    defer_error(c, HEARTH_ERR_INVALID, "vulkan: pointer %p is not memory of this backend", p);
    return NULL;
}

/* Host-visible scratch for this pass (index arrays, rope tables). */
static vk_buf *stage_alloc(vk_ctx *c, size_t bytes, size_t *off) {
    *off = 0;
    bytes = (bytes + 15) & ~(size_t)15;
    for (;;) {
        if (c->cur_stage < c->n_stage) {
            vk_buf *s = c->stage[c->cur_stage];
            if (c->stage_used + bytes <= s->size) {
                *off = c->stage_used;
                c->stage_used += bytes;
                return s;
            }
            if (c->stage_used == 0 && bytes > s->size) { /* too small for this request: replace it */
                buf_destroy(c, s);
                hearth_error e = {0};
                c->stage[c->cur_stage] = buf_create(c, bytes, true, &e);
                if (!c->stage[c->cur_stage] || !c->stage[c->cur_stage]->map) goto oom;
                continue;
            }
            c->cur_stage++;
            c->stage_used = 0;
            continue;
        }
        if (!hearth_grow((void **)&c->stage, &c->cap_stage, (size_t)c->n_stage + 1, sizeof *c->stage))
            goto oom;
        hearth_error e = {0};
        vk_buf *s = buf_create(c, bytes > STAGE_CHUNK ? bytes : STAGE_CHUNK, true, &e);
        if (!s || !s->map) goto oom;
        c->stage[c->n_stage++] = s;
    }
oom:
    defer_error(c, HEARTH_ERR_NOMEM, "vulkan: cannot allocate %zu bytes of staging memory", bytes);
    return NULL;
}

static vk_buf *stage_copy(vk_ctx *c, const void *src, size_t bytes, size_t *off) {
    vk_buf *s = stage_alloc(c, bytes ? bytes : 4, off);
    if (s && bytes) memcpy((char *)s->map + *off, src, bytes);
    return s;
}

/* ------------------------------------------------------------ recording */

static void begin_recording(vk_ctx *c) {
    if (c->recording) return;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vkBeginCommandBuffer(c->cmd, &bi);
    c->recording = true;
    c->qpool_reset = false;
    c->n_timed = 0;
}

/* --profile: a timestamp pair around one recorded command of op `op`, when
 * profiling and the device can time it. Both stamps are taken at
 * BOTTOM_OF_PIPE (when everything recorded before has finished), so a
 * command's time is from the end of the previous work to its own end; on an
 * in-order device such as lavapipe that is its execution time. Read back and
 * summed into op_time_us/op_count by flush. Returns the pair index or -1. */
static int ts_begin(vk_ctx *c, int op) {
    if (op < 0 || !c->self->profile) return -1;
    if (!c->qpool || c->n_timed >= MAX_QUERIES / 2) {
        c->self->op_count[op]++; /* counted, not timed */
        return -1;
    }
    if (!c->qpool_reset) {
        vkCmdResetQueryPool(c->cmd, c->qpool, 0, MAX_QUERIES);
        c->qpool_reset = true;
    }
    int i = c->n_timed++;
    c->timed_op[i] = (uint8_t)op;
    vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, (uint32_t)(2 * i));
    return i;
}

static void ts_end(vk_ctx *c, int i) {
    if (i >= 0)
        vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, (uint32_t)(2 * i + 1));
}

/* Add the timed commands of the pass just completed to the profile arrays. */
static void ts_collect(vk_ctx *c) {
    if (!c->n_timed) return;
    VkResult r =
        vkGetQueryPoolResults(c->dev, c->qpool, 0, (uint32_t)(2 * c->n_timed), sizeof c->ts_buf, c->ts_buf,
                              sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    for (int i = 0; r == VK_SUCCESS && i < c->n_timed; i++) {
        uint64_t t0 = c->ts_buf[2 * i] & c->ts_mask, t1 = c->ts_buf[2 * i + 1] & c->ts_mask;
        int op = c->timed_op[i];
        c->self->op_time_us[op] += (double)((t1 - t0) & c->ts_mask) * c->ts_period / 1000.0;
        c->self->op_count[op]++;
    }
    c->n_timed = 0;
}

/* Submit what was recorded, wait, and recycle the per-pass resources. */
static void flush(vk_ctx *c) {
    if (c->recording) {
        c->recording = false;
        VkResult r = vkEndCommandBuffer(c->cmd);
        if (r == VK_SUCCESS) {
            VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO};
            si.commandBufferCount = 1;
            si.pCommandBuffers = &c->cmd;
            r = vkQueueSubmit(c->queue, 1, &si, c->fence);
            if (r == VK_SUCCESS) r = vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX);
            vkResetFences(c->dev, 1, &c->fence);
            if (r == VK_SUCCESS) ts_collect(c);
        }
        c->n_timed = 0;
        if (r != VK_SUCCESS)
            defer_error(c, HEARTH_ERR_IO, "vulkan: command submission failed (%s)", vk_result_str(r));
        vkResetCommandPool(c->dev, c->cpool, 0);
    }
    for (int i = 0; i <= c->cur_dpool && i < c->n_dpools; i++)
        vkResetDescriptorPool(c->dev, c->dpools[i], 0);
    c->cur_dpool = 0;
    c->cur_stage = 0;
    c->stage_used = 0;
    c->n_w = c->n_r = 0;
    c->rope_valid = false;
}

static bool in_list(const vk_buf *const *l, int n, const vk_buf *b) {
    for (int i = 0; i < n; i++)
        if (l[i] == b) return true;
    return false;
}

static void full_barrier(vk_ctx *c) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(c->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
    c->n_w = c->n_r = 0;
}

typedef struct vk_arg {
    vk_buf *b;
    bool write;
    bool track; /* device buffer (staging is host-written before submit) */
} vk_arg;

/* Barrier if any argument depends on work since the last barrier; then note its accesses. */
static void hazards(vk_ctx *c, const vk_arg *a, int n) {
    bool need = false;
    for (int i = 0; i < n && !need; i++) {
        if (!a[i].track) continue;
        if (in_list(c->pend_w, c->n_w, a[i].b)) need = true;
        if (a[i].write && in_list(c->pend_r, c->n_r, a[i].b)) need = true;
    }
    if (need || c->n_w + n > MAX_PENDING || c->n_r + n > MAX_PENDING) full_barrier(c);
    for (int i = 0; i < n; i++) {
        if (!a[i].track) continue;
        if (a[i].write)
            c->pend_w[c->n_w++] = a[i].b;
        else
            c->pend_r[c->n_r++] = a[i].b;
    }
}

static VkDescriptorPool new_dpool(vk_ctx *c) {
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 5 * 512};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pi.maxSets = 512;
    pi.poolSizeCount = 1;
    pi.pPoolSizes = &ps;
    VkDescriptorPool p = VK_NULL_HANDLE;
    if (vkCreateDescriptorPool(c->dev, &pi, NULL, &p) != VK_SUCCESS) return VK_NULL_HANDLE;
    if (!hearth_grow((void **)&c->dpools, &c->cap_dpools, (size_t)c->n_dpools + 1, sizeof *c->dpools)) {
        vkDestroyDescriptorPool(c->dev, p, NULL);
        return VK_NULL_HANDLE;
    }
    c->dpools[c->n_dpools++] = p;
    return p;
}

static VkDescriptorSet alloc_set(vk_ctx *c, int sh) {
    for (;;) {
        if (c->cur_dpool >= c->n_dpools && !new_dpool(c)) return VK_NULL_HANDLE;
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = c->dpools[c->cur_dpool];
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &c->dsl[sh];
        VkDescriptorSet s;
        if (vkAllocateDescriptorSets(c->dev, &ai, &s) == VK_SUCCESS) return s;
        c->cur_dpool++;
    }
}

static VkResult build_pipeline(vk_ctx *c, int s, hearth_dtype wt, VkPipeline *out);

/* The pipeline to bind for shader sh on weight type wt; a typed one is built
 * on first use (NULL and a deferred error if that fails). */
static VkPipeline pipeline_for(vk_ctx *c, int sh, hearth_dtype wt) {
    if (!shader_defs[sh].typed) return c->pipe[sh];
    if ((unsigned)wt >= HEARTH_DTYPE_COUNT) wt = HEARTH_F32;
    if (!c->tpipe[sh][wt]) {
        VkResult r = build_pipeline(c, sh, wt, &c->tpipe[sh][wt]);
        if (r != VK_SUCCESS) {
            c->tpipe[sh][wt] = VK_NULL_HANDLE;
            defer_error(c, HEARTH_ERR_UNSUPPORTED, "vulkan: %s: cannot build shader %s for %s weights (%s)",
                        c->props.deviceName, shader_defs[sh].name, hearth_dtype_name(wt), vk_result_str(r));
        }
    }
    return c->tpipe[sh][wt];
}

/* Record one dispatch of shader `sh` over gx * gy workgroups, timed as
 * profile op `op`. */
static void dispatch(vk_ctx *c, int op, int sh, hearth_dtype wt, const vk_arg *a, int n, const void *push,
                     size_t push_bytes, uint32_t gx, uint32_t gy) {
    for (int i = 0; i < n; i++)
        if (!a[i].b) return; /* resolve failed: error already deferred */
    if (gx == 0 || gy == 0) return;
    VkPipeline pipe = pipeline_for(c, sh, wt);
    if (!pipe) return;
    begin_recording(c);
    VkDescriptorSet set = alloc_set(c, sh);
    if (!set) {
        defer_error(c, HEARTH_ERR_NOMEM, "vulkan: cannot allocate a descriptor set");
        return;
    }
    VkDescriptorBufferInfo bi[5];
    VkWriteDescriptorSet w[5];
    for (int i = 0; i < n; i++) {
        bi[i] = (VkDescriptorBufferInfo){a[i].b->buf, 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w[i].dstSet = set;
        w[i].dstBinding = (uint32_t)i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &bi[i];
    }
    vkUpdateDescriptorSets(c->dev, (uint32_t)n, w, 0, NULL);
    hazards(c, a, n);
    vkCmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->pl[sh], 0, 1, &set, 0, NULL);
    vkCmdPushConstants(c->cmd, c->pl[sh], VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)push_bytes, push);
    int ts = ts_begin(c, op);
    vkCmdDispatch(c->cmd, gx, gy, 1);
    ts_end(c, ts);
}

/* n workgroups as a 2-D grid within the device's per-dimension limit. */
static void grid(vk_ctx *c, uint64_t n, uint32_t *gx, uint32_t *gy) {
    uint32_t mx = c->props.limits.maxComputeWorkGroupCount[0];
    if (mx > 65535) mx = 65535;
    *gx = n < mx ? (uint32_t)n : mx;
    *gy = *gx ? (uint32_t)((n + *gx - 1) / *gx) : 0;
}

static uint32_t u32(size_t v) {
    return (uint32_t)v;
}

/* ------------------------------------------------------------ memory ops */

static void *vk_alloc(hearth_backend *b, size_t bytes, hearth_error *err) {
    vk_ctx *c = ctx_of(b);
    if (bytes > c->props.limits.maxStorageBufferRange) {
        hearth_error_set(
            err, HEARTH_ERR_NOMEM,
            "vulkan: a %zu-byte tensor exceeds this device's maxStorageBufferRange (%u bytes, %s); use "
            "a smaller context/model or --backend cpu",
            bytes, c->props.limits.maxStorageBufferRange, c->props.deviceName);
        return NULL;
    }
    if (!hearth_grow((void **)&c->bufs, &c->cap_bufs, (size_t)c->n_bufs + 1, sizeof *c->bufs)) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "vulkan: out of host memory");
        return NULL;
    }
    vk_buf *vb = buf_create(c, bytes, false, err);
    if (!vb) return NULL;
    vb->addr = c->next_addr;
    c->next_addr += ((bytes + 0xFFFF) & ~(uintptr_t)0xFFFF) + 0x10000; /* a gap between allocations */
    c->bufs[c->n_bufs++] = vb; /* addresses only grow: the array stays sorted */
    return (void *)vb->addr;
}

static void vk_dealloc(hearth_backend *b, void *p) {
    vk_ctx *c = ctx_of(b);
    if (!p) return;
    flush(c); /* the buffer may be in the pass being recorded */
    for (int i = 0; i < c->n_bufs; i++)
        if (c->bufs[i]->addr == (uintptr_t)p) {
            buf_destroy(c, c->bufs[i]);
            memmove(c->bufs + i, c->bufs + i + 1, (size_t)(c->n_bufs - i - 1) * sizeof *c->bufs);
            c->n_bufs--;
            return;
        }
}

static void copy_cmd(vk_ctx *c, int op, vk_buf *dst, size_t doff, vk_buf *src, size_t soff, size_t n,
                     bool track_src, bool track_dst) {
    begin_recording(c);
    vk_arg a[2] = {{src, false, track_src}, {dst, true, track_dst}};
    hazards(c, a, 2);
    VkBufferCopy r = {soff, doff, n};
    int ts = ts_begin(c, op);
    vkCmdCopyBuffer(c->cmd, src->buf, dst->buf, 1, &r);
    ts_end(c, ts);
}

static void vk_upload(hearth_backend *b, void *dst, const void *src, size_t n) {
    vk_ctx *c = ctx_of(b);
    size_t off;
    vk_buf *d = resolve(c, dst, &off);
    if (!d || !n) return;
    flush(c);
    if (d->map) {
        memcpy((char *)d->map + off, src, n);
        return;
    }
    for (size_t done = 0; done < n;) {
        size_t part = n - done < (size_t)16 << 20 ? n - done : (size_t)16 << 20, so;
        vk_buf *s = stage_copy(c, (const char *)src + done, part, &so);
        if (!s) return;
        copy_cmd(c, -1, d, off + done, s, so, part, false, true);
        flush(c);
        done += part;
    }
}

static void vk_download(hearth_backend *b, void *dst, const void *src, size_t n) {
    vk_ctx *c = ctx_of(b);
    size_t off;
    vk_buf *s = resolve(c, src, &off);
    if (!s || !n) return;
    flush(c);
    if (s->map) {
        memcpy(dst, (const char *)s->map + off, n);
        return;
    }
    for (size_t done = 0; done < n;) {
        size_t part = n - done < (size_t)16 << 20 ? n - done : (size_t)16 << 20, so;
        vk_buf *st = stage_alloc(c, part, &so);
        if (!st) return;
        copy_cmd(c, -1, st, so, s, off + done, part, true, false);
        flush(c);
        memcpy((char *)dst + done, (const char *)st->map + so, part);
        done += part;
    }
}

static void vk_copy(hearth_backend *b, void *dst, const void *src, size_t n) {
    vk_ctx *c = ctx_of(b);
    size_t so, doff;
    vk_buf *s = resolve(c, src, &so), *d = resolve(c, dst, &doff);
    if (!s || !d || !n) return;
    copy_cmd(c, HEARTH_OP_COPY, d, doff, s, so, n, true, true);
}

/* Weight types the shaders decode (shaders/common.glsl): every type the CPU
 * backend loads. */
static bool vk_supports_type(hearth_backend *b, hearth_dtype t) {
    (void)b;
    switch (t) {
    case HEARTH_F32:
    case HEARTH_F16:
    case HEARTH_BF16:
    case HEARTH_Q8_0:
    case HEARTH_Q4_0:
    case HEARTH_Q4_1:
    case HEARTH_Q5_0:
    case HEARTH_Q5_1:
    case HEARTH_Q2_K:
    case HEARTH_Q3_K:
    case HEARTH_Q4_K:
    case HEARTH_Q5_K:
    case HEARTH_Q6_K: return true;
    default: return false;
    }
}

/* ------------------------------------------------------------ ops */

/* Offset of an F32 tensor in floats (views start on float boundaries). */
static uint32_t f32_off(size_t byte_off) {
    return u32(byte_off / 4);
}

static void gather_rows(vk_ctx *c, int op, const hearth_tensor *w, const int32_t *ids, int n,
                        hearth_tensor *out) {
    size_t wo, oo, io;
    vk_buf *wb = resolve(c, w->data, &wo), *ob = resolve(c, out->data, &oo);
    vk_buf *ib = stage_copy(c, ids, (size_t)n * sizeof *ids, &io);
    struct {
        uint32_t w_off, w_nb1, ne0, type, i_off, o_off, o_nb1, n;
    } pc = {u32(wo),     u32(w->nb1), u32((size_t)w->ne0), (uint32_t)w->type,
            u32(io / 4), f32_off(oo), u32(out->nb1 / 4),   (uint32_t)n};
    vk_arg a[3] = {{wb, false, true}, {ib, false, false}, {ob, true, true}};
    uint32_t gx, gy;
    grid(c, (uint64_t)n, &gx, &gy);
    dispatch(c, op, SH_GET_ROWS, w->type, a, 3, &pc, sizeof pc, gx, gy);
}

static void vk_get_rows(hearth_backend *b, const hearth_tensor *w, const int32_t *ids, int n,
                        hearth_tensor *out) {
    gather_rows(ctx_of(b), HEARTH_OP_GET_ROWS, w, ids, n, out);
}

static void vk_get_rows_f32(hearth_backend *b, const hearth_tensor *x, const int32_t *rows, int n,
                            hearth_tensor *out) {
    gather_rows(ctx_of(b), HEARTH_OP_COPY, x, rows, n, out);
}

static void vk_rms_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w, float eps,
                        hearth_tensor *out) {
    vk_ctx *c = ctx_of(b);
    size_t xo, wo, oo;
    vk_buf *xb = resolve(c, x->data, &xo), *wb = resolve(c, w->data, &wo), *ob = resolve(c, out->data, &oo);
    struct {
        uint32_t x_off, x_nb1, ne0, rows, w_off, o_off, o_nb1;
        float eps;
    } pc = {f32_off(xo), u32(x->nb1 / 4), u32((size_t)x->ne0), u32((size_t)x->ne1),
            f32_off(wo), f32_off(oo),     u32(out->nb1 / 4),   eps};
    vk_arg a[3] = {{xb, false, true}, {wb, false, true}, {ob, true, true}};
    uint32_t gx, gy;
    grid(c, (uint64_t)x->ne1, &gx, &gy);
    dispatch(c, HEARTH_OP_RMS_NORM, SH_RMS_NORM, HEARTH_F32, a, 3, &pc, sizeof pc, gx, gy);
}

/* Greedy sampling on the device: one uint per row of x into ids. */
static void vk_argmax(hearth_backend *b, const hearth_tensor *x, void *ids) {
    vk_ctx *c = ctx_of(b);
    size_t xo, io;
    vk_buf *xb = resolve(c, x->data, &xo), *ib = resolve(c, ids, &io);
    struct {
        uint32_t x_off, x_nb1, ne0, rows, i_off;
    } pc = {f32_off(xo), u32(x->nb1 / 4), u32((size_t)x->ne0), u32((size_t)x->ne1), u32(io / 4)};
    vk_arg a[2] = {{xb, false, true}, {ib, true, true}};
    uint32_t gx, gy;
    grid(c, (uint64_t)x->ne1, &gx, &gy);
    dispatch(c, HEARTH_OP_COPY, SH_ARGMAX, HEARTH_F32, a, 2, &pc, sizeof pc, gx, gy);
}

static void vk_matmul(hearth_backend *b, const hearth_tensor *w, const hearth_tensor *x,
                      const hearth_tensor *bias, hearth_tensor *out) {
    vk_ctx *c = ctx_of(b);
    if (!vk_supports_type(b, w->type)) {
        defer_error(c, HEARTH_ERR_UNSUPPORTED, "vulkan: matmul on %s weights is not implemented",
                    hearth_dtype_name(w->type));
        return;
    }
    size_t wo, xo, bo = 0, oo;
    vk_buf *wb = resolve(c, w->data, &wo), *xb = resolve(c, x->data, &xo), *ob = resolve(c, out->data, &oo);
    vk_buf *bb = bias ? resolve(c, bias->data, &bo) : xb;
    struct {
        uint32_t w_off, w_nb1, ne0, rows, x_off, x_nb1, n_tok, b_off, o_off, o_nb1, type, has_bias;
    } pc = {u32(wo),     u32(w->nb1),       u32((size_t)w->ne0), u32((size_t)w->ne1),
            f32_off(xo), u32(x->nb1 / 4),   u32((size_t)x->ne1), f32_off(bo),
            f32_off(oo), u32(out->nb1 / 4), (uint32_t)w->type,   bias != NULL};
    vk_arg a[4] = {{wb, false, true}, {xb, false, true}, {bb, false, true}, {ob, true, true}};
    uint32_t gx, gy;
    if (x->ne1 == 1) { /* decode: several rows per workgroup */
        grid(c, ((uint64_t)w->ne1 + c->mv_rows - 1) / c->mv_rows, &gx, &gy);
        dispatch(c, HEARTH_OP_MATMUL, SH_MATVEC, w->type, a, 4, &pc, sizeof pc, gx, gy);
        return;
    }
    grid(c, (uint64_t)w->ne1, &gx, &gy);
    dispatch(c, HEARTH_OP_MATMUL, SH_MATMUL, w->type, a, 4, &pc, sizeof pc, gx, gy);
}

/* binary.comp's ops: 0 add, 1 silu_mul, 2 gelu, 3 gelu_mul, 4 scale_cap (s, cap; y unread). */
static void binary(vk_ctx *c, const hearth_tensor *x, const hearth_tensor *y, hearth_tensor *out, uint32_t op,
                   float s, float cap) {
    size_t xo, yo, oo;
    vk_buf *xb = resolve(c, x->data, &xo), *yb = resolve(c, y->data, &yo), *ob = resolve(c, out->data, &oo);
    struct {
        uint32_t a_off, a_nb1, b_off, b_nb1, o_off, o_nb1, ne0, ne1, op;
        float s, cap;
    } pc = {f32_off(xo),
            u32(x->nb1 / 4),
            f32_off(yo),
            u32(y->nb1 / 4),
            f32_off(oo),
            u32(out->nb1 / 4),
            u32((size_t)x->ne0),
            u32((size_t)x->ne1),
            op,
            s,
            cap};
    vk_arg a[3] = {{xb, false, true}, {yb, false, true}, {ob, true, true}};
    dispatch(c, op == 0 || op == 4 ? HEARTH_OP_ADD : HEARTH_OP_SILU_MUL, SH_BINARY, HEARTH_F32, a, 3, &pc,
             sizeof pc, (uint32_t)((x->ne0 + 63) / 64), (uint32_t)x->ne1);
}

/* LayerNorm of the encoders (profiled as RMS_NORM, as on the CPU); without
 * a bias, binding 2 is x (unread). */
static void vk_layer_norm(hearth_backend *b, const hearth_tensor *x, const hearth_tensor *w,
                          const hearth_tensor *bias, float eps, hearth_tensor *out) {
    vk_ctx *c = ctx_of(b);
    size_t xo, wo, bo = 0, oo;
    vk_buf *xb = resolve(c, x->data, &xo), *wb = resolve(c, w->data, &wo), *ob = resolve(c, out->data, &oo);
    vk_buf *bb = bias ? resolve(c, bias->data, &bo) : xb;
    struct {
        uint32_t x_off, x_nb1, ne0, rows, w_off, b_off, has_bias, o_off, o_nb1;
        float eps;
    } pc = {f32_off(xo), u32(x->nb1 / 4), u32((size_t)x->ne0), u32((size_t)x->ne1), f32_off(wo),
            f32_off(bo), bias != NULL,    f32_off(oo),         u32(out->nb1 / 4),   eps};
    vk_arg a[4] = {{xb, false, true}, {wb, false, true}, {bb, false, true}, {ob, true, true}};
    uint32_t gx, gy;
    grid(c, (uint64_t)x->ne1, &gx, &gy);
    dispatch(c, HEARTH_OP_RMS_NORM, SH_LAYER_NORM, HEARTH_F32, a, 4, &pc, sizeof pc, gx, gy);
}

/* GELU (tanh form): binary.comp's op 2, b bound to x and unread; profiled
 * as SILU_MUL, as on the CPU. */
static void vk_gelu(hearth_backend *b, const hearth_tensor *x, hearth_tensor *out) {
    binary(ctx_of(b), x, x, out, 2, 0, 0);
}

static void vk_add(hearth_backend *b, const hearth_tensor *a, const hearth_tensor *c2, hearth_tensor *out) {
    binary(ctx_of(b), a, c2, out, 0, 0, 0);
}

static void vk_silu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                        hearth_tensor *out) {
    binary(ctx_of(b), gate, up, out, 1, 0, 0);
}

static void vk_gelu_mul(hearth_backend *b, const hearth_tensor *gate, const hearth_tensor *up,
                        hearth_tensor *out) {
    binary(ctx_of(b), gate, up, out, 3, 0, 0);
}

static void vk_scale_cap(hearth_backend *b, const hearth_tensor *x, float s, float cap, hearth_tensor *out) {
    binary(ctx_of(b), x, x, out, 4, s, cap);
}

/* The (cos, sin) table of a rope call, computed exactly as the CPU backend
 * does; q and k of every layer share one table per pass. */
static vk_buf *rope_table(vk_ctx *c, const int32_t *pos, int n, const hearth_rope_params *p, size_t *off) {
    const int half = p->n_rot / 2;
    if (c->rope_valid && c->rope_n == n && !memcmp(c->rope_pos, pos, (size_t)n * sizeof *pos) &&
        c->rope_p.n_rot == p->n_rot && c->rope_p.freq_base == p->freq_base &&
        c->rope_p.freq_scale == p->freq_scale && c->rope_p.freq_factors == p->freq_factors &&
        c->rope_p.attn_factor == p->attn_factor && c->rope_p.ext_factor == p->ext_factor &&
        c->rope_p.yarn_lo == p->yarn_lo && c->rope_p.yarn_hi == p->yarn_hi &&
        c->rope_p.temp_scale == p->temp_scale && c->rope_p.temp_floor == p->temp_floor) {
        *off = c->rope_off;
        return c->rope_buf;
    }
    vk_buf *s = stage_alloc(c, (size_t)n * (size_t)half * 2 * sizeof(float), off);
    if (!s) return NULL;
    float *cs = (float *)((char *)s->map + *off);
    float c1[512], s1[512];
    for (int t = 0; t < n; t++) {
        hearth_rope_cos_sin(p, pos[t], c1, s1);
        for (int i = 0; i < half; i++) {
            cs[2 * ((size_t)t * half + i)] = c1[i];
            cs[2 * ((size_t)t * half + i) + 1] = s1[i];
        }
    }
    if (!hearth_grow((void **)&c->rope_pos, &c->rope_cap, (size_t)n, sizeof *c->rope_pos))
        return s; /* still correct, just not cached */
    memcpy(c->rope_pos, pos, (size_t)n * sizeof *pos);
    c->rope_n = n;
    c->rope_p = *p;
    c->rope_buf = s;
    c->rope_off = *off;
    c->rope_valid = true;
    return s;
}

static void vk_rope(hearth_backend *b, hearth_tensor *x, int n_heads, const int32_t *pos,
                    const hearth_rope_params *p) {
    vk_ctx *c = ctx_of(b);
    size_t xo, co;
    vk_buf *xb = resolve(c, x->data, &xo);
    vk_buf *cb = rope_table(c, pos, (int)x->ne1, p, &co);
    struct {
        uint32_t x_off, x_nb1, n_heads, hd, half_rot, n_tok, mode, cs_off;
    } pc = {f32_off(xo),
            u32(x->nb1 / 4),
            (uint32_t)n_heads,
            (uint32_t)p->head_dim,
            (uint32_t)(p->n_rot / 2),
            u32((size_t)x->ne1),
            (uint32_t)p->mode,
            u32(co / 4)};
    vk_arg a[2] = {{xb, true, true}, {cb, false, false}};
    uint32_t gx, gy;
    grid(c, ((uint64_t)x->ne1 * (uint64_t)n_heads * (uint64_t)(p->n_rot / 2) + 63) / 64, &gx, &gy);
    dispatch(c, HEARTH_OP_ROPE, SH_ROPE, HEARTH_F32, a, 2, &pc, sizeof pc, gx, gy);
}

static void vk_kv_store(hearth_backend *b, hearth_tensor *pool, const hearth_tensor *src,
                        const int32_t *slots) {
    vk_ctx *c = ctx_of(b);
    if (pool->type != HEARTH_F32 && pool->type != HEARTH_F16 && pool->type != HEARTH_Q8_0) {
        defer_error(c, HEARTH_ERR_UNSUPPORTED,
                    "vulkan: a %s KV cache is not implemented (use f16, f32 or q8_0)",
                    hearth_dtype_name(pool->type));
        return;
    }
    if (pool->type == HEARTH_Q8_0 && src->ne0 % 32) {
        defer_error(c, HEARTH_ERR_UNSUPPORTED,
                    "vulkan: q8_0 KV rows must hold whole 32-element blocks (got %lld)", (long long)src->ne0);
        return;
    }
    size_t po, so, lo;
    vk_buf *pb = resolve(c, pool->data, &po), *sb = resolve(c, src->data, &so);
    if (pool->type == HEARTH_F16 && ((src->ne0 & 1) || (pool->nb1 & 3) || (po & 3))) {
        defer_error(c, HEARTH_ERR_UNSUPPORTED, "vulkan: f16 KV rows of odd length (%lld) are not implemented",
                    (long long)src->ne0);
        return;
    }
    vk_buf *lb = stage_copy(c, slots, (size_t)src->ne1 * sizeof *slots, &lo);
    struct {
        uint32_t p_off, p_nb1, s_off, s_nb1, ne0, n, type, sl_off;
    } pc = {u32(po),
            u32(pool->nb1),
            f32_off(so),
            u32(src->nb1 / 4),
            u32((size_t)src->ne0),
            u32((size_t)src->ne1),
            (uint32_t)pool->type,
            u32(lo / 4)};
    vk_arg a[3] = {{pb, true, true}, {sb, false, true}, {lb, false, false}};
    /* invocations: one per destination word (F32, F16) or per 32-block (Q8_0) */
    uint64_t words = pool->type == HEARTH_F32 ? (uint64_t)src->ne0
                                              : (uint64_t)src->ne0 / (pool->type == HEARTH_F16 ? 2 : 32);
    uint32_t gx, gy;
    grid(c, (words * (uint64_t)src->ne1 + 63) / 64, &gx, &gy);
    dispatch(c, HEARTH_OP_KV_STORE, SH_KV_STORE, HEARTH_F32, a, 3, &pc, sizeof pc, gx, gy);
}

static void vk_attention_ext(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                             const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads,
                             int n_kv_heads, int head_dim, float scale, const hearth_attn_opts *opt,
                             hearth_tensor *out) {
    vk_ctx *c = ctx_of(b);
    const bool q8 = k_pool->type == HEARTH_Q8_0 || v_pool->type == HEARTH_Q8_0;
    if (head_dim > 256 || n_kv_heads <= 0 || n_heads % n_kv_heads || (q8 && head_dim % 32)) {
        defer_error(c, HEARTH_ERR_UNSUPPORTED,
                    "vulkan: attention with head_dim %d, %d heads, %d KV heads is not "
                    "implemented (head_dim <= 256, a multiple of 32 for q8_0 KV)",
                    head_dim, n_heads, n_kv_heads);
        return;
    }
    for (int i = 0; i < 2; i++) {
        hearth_dtype t = (i ? v_pool : k_pool)->type;
        if (t != HEARTH_F32 && t != HEARTH_F16 && t != HEARTH_Q8_0) {
            defer_error(c, HEARTH_ERR_UNSUPPORTED, "vulkan: attention over a %s KV cache is not implemented",
                        hearth_dtype_name(t));
            return;
        }
    }
    size_t qo, ko, vo, oo, mo;
    vk_buf *qb = resolve(c, q->data, &qo), *kb = resolve(c, k_pool->data, &ko),
           *vb = resolve(c, v_pool->data, &vo), *ob = resolve(c, out->data, &oo);
    const size_t nt = (size_t)m->n_tokens;
    vk_buf *mb = stage_alloc(c, (2 * nt + (size_t)m->n_page_table) * sizeof(int32_t), &mo);
    if (!mb) return;
    int32_t *md = (int32_t *)((char *)mb->map + mo);
    memcpy(md, m->kv_len, nt * sizeof *md);
    memcpy(md + nt, m->pt_offset, nt * sizeof *md);
    if (m->n_page_table) memcpy(md + 2 * nt, m->page_table, (size_t)m->n_page_table * sizeof *md);
    const uint32_t mbase = u32(mo / 4);
    struct {
        uint32_t q_off, q_nb1, k_off, k_nb1, v_off, v_nb1, o_off, o_nb1;
        uint32_t n_heads, n_kv_heads, hd, n_tok, ktype, vtype, page_size, m_kvlen, m_ptoff, m_pt;
        float scale;
        uint32_t window;
        float softcap;
    } pc = {f32_off(qo),
            u32(q->nb1 / 4),
            u32(ko),
            u32(k_pool->nb1),
            u32(vo),
            u32(v_pool->nb1),
            f32_off(oo),
            u32(out->nb1 / 4),
            (uint32_t)n_heads,
            (uint32_t)n_kv_heads,
            (uint32_t)head_dim,
            u32(nt),
            (uint32_t)k_pool->type,
            (uint32_t)v_pool->type,
            (uint32_t)m->page_size,
            mbase,
            mbase + u32(nt),
            mbase + u32(2 * nt),
            scale,
            opt && opt->window > 0 ? (uint32_t)opt->window : 0u,
            opt && opt->softcap > 0 ? opt->softcap : 0.0f};
    vk_arg a[5] = {
        {qb, false, true}, {kb, false, true}, {vb, false, true}, {mb, false, false}, {ob, true, true}};
    uint32_t gx, gy;
    grid(c, (uint64_t)nt * (uint64_t)n_heads, &gx, &gy);
    dispatch(c, HEARTH_OP_ATTENTION, SH_ATTENTION, HEARTH_F32, a, 5, &pc, sizeof pc, gx, gy);
}

static void vk_attention(hearth_backend *b, const hearth_tensor *q, const hearth_tensor *k_pool,
                         const hearth_tensor *v_pool, const hearth_attn_meta *m, int n_heads, int n_kv_heads,
                         int head_dim, float scale, hearth_tensor *out) {
    vk_attention_ext(b, q, k_pool, v_pool, m, n_heads, n_kv_heads, head_dim, scale, NULL, out);
}

static hearth_status vk_synchronize(hearth_backend *b, hearth_error *err) {
    vk_ctx *c = ctx_of(b);
    flush(c);
    hearth_status st = c->err_code;
    if (st) hearth_error_set(err, st, "%s", c->err_msg);
    c->err_code = HEARTH_OK;
    c->err_msg[0] = 0;
    return st;
}

/* ------------------------------------------------------------ lifecycle */

static void vk_info(hearth_backend *b, hearth_backend_info *out) {
    vk_ctx *c = ctx_of(b);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "vulkan:%d", c->index);
    /* the shader variants in use: "subgroup ops, size 8; 16/8-bit storage" */
    char caps[64];
    if (c->use_subgroups)
        snprintf(caps, sizeof caps, "subgroup ops, size %u", c->subgroup_size);
    else
        snprintf(caps, sizeof caps, "no subgroup ops");
    size_t n = strlen(caps);
    snprintf(caps + n, sizeof caps - n, "; %s", c->use_storage ? "16/8-bit storage" : "no 16/8-bit storage");
    snprintf(out->device, sizeof out->device, "%.40s (%.36s) [%.44s]", c->props.deviceName, c->driver, caps);
    for (uint32_t i = 0; i < c->memprops.memoryHeapCount; i++)
        if (c->memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            out->mem_total += c->memprops.memoryHeaps[i].size;
    out->host_visible = false;
}

static void cache_path(vk_ctx *c) {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    char dir[400];
    if (x && *x)
        snprintf(dir, sizeof dir, "%s/hearth", x);
    else if (h && *h)
        snprintf(dir, sizeof dir, "%s/.cache/hearth", h);
    else {
        c->cache_path[0] = 0;
        return;
    }
    snprintf(c->cache_path, sizeof c->cache_path, "%s/vulkan-%04x-%04x-%08x.pipelines", dir,
             c->props.vendorID, c->props.deviceID, c->props.driverVersion);
}

static void cache_save(vk_ctx *c) {
    if (!c->pcache || !c->cache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, NULL) != VK_SUCCESS || !n) return;
    void *data = malloc(n);
    if (!data) return;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, data) == VK_SUCCESS) {
        char dir[512], tmp[600];
        snprintf(dir, sizeof dir, "%s", c->cache_path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = 0;
            char *p2 = strrchr(dir, '/'); /* make .cache then .cache/hearth */
            if (p2) {
                *p2 = 0;
                mkdir(dir, 0755);
                *p2 = '/';
            }
            mkdir(dir, 0755);
        }
        snprintf(tmp, sizeof tmp, "%s.tmp", c->cache_path);
        FILE *f = fopen(tmp, "wb");
        if (f) {
            bool ok = fwrite(data, 1, n, f) == n;
            ok = fclose(f) == 0 && ok;
            if (ok)
                rename(tmp, c->cache_path);
            else
                remove(tmp);
        }
    }
    free(data);
}

static void vk_destroy(hearth_backend *b) {
    vk_ctx *c = ctx_of(b);
    if (c->dev) {
        flush(c);
        vkDeviceWaitIdle(c->dev);
        cache_save(c);
        for (int i = 0; i < c->n_bufs; i++)
            buf_destroy(c, c->bufs[i]);
        for (int i = 0; i < c->n_stage; i++)
            buf_destroy(c, c->stage[i]);
        for (int i = 0; i < c->n_dpools; i++)
            vkDestroyDescriptorPool(c->dev, c->dpools[i], NULL);
        for (int i = 0; i < SH_COUNT; i++) {
            if (c->pipe[i]) vkDestroyPipeline(c->dev, c->pipe[i], NULL);
            for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
                if (c->tpipe[i][t]) vkDestroyPipeline(c->dev, c->tpipe[i][t], NULL);
            if (c->mod[i]) vkDestroyShaderModule(c->dev, c->mod[i], NULL);
            if (c->pl[i]) vkDestroyPipelineLayout(c->dev, c->pl[i], NULL);
            if (c->dsl[i]) vkDestroyDescriptorSetLayout(c->dev, c->dsl[i], NULL);
        }
        if (c->pcache) vkDestroyPipelineCache(c->dev, c->pcache, NULL);
        if (c->qpool) vkDestroyQueryPool(c->dev, c->qpool, NULL);
        if (c->fence) vkDestroyFence(c->dev, c->fence, NULL);
        if (c->cpool) vkDestroyCommandPool(c->dev, c->cpool, NULL);
        vkDestroyDevice(c->dev, NULL);
    }
    if (c->inst) vkDestroyInstance(c->inst, NULL);
    free(c->bufs);
    free(c->stage);
    free(c->dpools);
    free(c->rope_pos);
    free(c);
    free(b);
}

static const hearth_backend_ops vk_ops = {
    .destroy = vk_destroy,
    .info = vk_info,
    .supports_type = vk_supports_type,
    .alloc = vk_alloc,
    .dealloc = vk_dealloc,
    .upload = vk_upload,
    .download = vk_download,
    .copy = vk_copy,
    .get_rows = vk_get_rows,
    .rms_norm = vk_rms_norm,
    .matmul = vk_matmul,
    .add = vk_add,
    .rope = vk_rope,
    .kv_store = vk_kv_store,
    .attention = vk_attention,
    .silu_mul = vk_silu_mul,
    .layer_norm = vk_layer_norm,
    .gelu = vk_gelu,
    .gelu_mul = vk_gelu_mul,
    .scale_cap = vk_scale_cap,
    .attention_ext = vk_attention_ext,
    .get_rows_f32 = vk_get_rows_f32,
    .argmax = vk_argmax,
    .synchronize = vk_synchronize,
};

static int device_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 0;
    default: return 1;
    }
}

static bool compute_family(VkPhysicalDevice pd, uint32_t *fam) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties qf[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, qf);
    for (uint32_t i = 0; i < n; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *fam = i;
            return true;
        }
    return false;
}

/* Subgroup support, 16/8-bit storage, timestamps and the matvec shape, from
 * the device's properties (never assumed). HEARTH_VK_SUBGROUPS=0 forces the
 * shared-memory shader variants, HEARTH_VK_STORAGE16=0 the 32-bit word reads
 * (the tests run each). */
static void query_caps(vk_ctx *c) {
    VkPhysicalDeviceSubgroupProperties sp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &sp, {0}};
    vkGetPhysicalDeviceProperties2(c->pdev, &p2);
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    c->subgroup_size = sp.subgroupSize;
    c->subgroup_arith = (sp.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (sp.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (sp.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    /* the subgroup variants put WG=64 subgroups' partials in shared memory:
     * sizes from 1 to 64 work; a row per subgroup in matvec needs size <= the
     * workgroup limit */
    const bool sg_ok = sp.subgroupSize >= 1 && sp.subgroupSize <= 64 &&
                       (sp.subgroupSize & (sp.subgroupSize - 1)) == 0 &&
                       sp.subgroupSize <= lim->maxComputeWorkGroupInvocations;
    const char *env = getenv("HEARTH_VK_SUBGROUPS");
    c->use_subgroups = c->subgroup_arith && sg_ok && !(env && !strcmp(env, "0"));
    /* matvec: 64 invocations (every device allows 128), 8 lanes per row in the
     * fallback; with subgroups one row per subgroup */
    c->mv_block = 64;
    c->mv_rows = c->use_subgroups ? 64 / sp.subgroupSize : 8;
    if (c->mv_rows == 0) c->mv_rows = 1;
    /* 16/8-bit storage (Vulkan 1.2 core features): loads of halves and bytes
     * widened to 32 bits at once; shaderFloat16/shaderInt8 arithmetic is not
     * used (results stay those of the F32 word-read shaders, bit for bit).
     * One _st variant needs both; a device with only one gets the word reads. */
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(c->pdev, &f2);
    c->storage16 = f11.storageBuffer16BitAccess;
    c->storage8 = f12.storageBuffer8BitAccess;
    env = getenv("HEARTH_VK_STORAGE16");
    c->use_storage = c->storage16 && c->storage8 && !(env && !strcmp(env, "0"));
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &n, NULL);
    VkQueueFamilyProperties qf[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &n, qf);
    uint32_t bits = c->qfam < n ? qf[c->qfam].timestampValidBits : 0;
    c->ts_mask = bits == 0 ? 0 : bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
    c->ts_period = lim->timestampPeriod;
}

/* The pipeline of shader s for weight type wt (ignored by untyped shaders).
 * Specialisation constants: 0 = matvec's workgroup size, 1 = its rows per
 * workgroup, 2 = the weight type (entries a shader lacks are ignored). */
static VkResult build_pipeline(vk_ctx *c, int s, hearth_dtype wt, VkPipeline *out) {
    const uint32_t spec[3] = {c->mv_block, c->mv_rows, (uint32_t)wt};
    const VkSpecializationMapEntry spec_map[3] = {{0, 0, 4}, {1, 4, 4}, {2, 8, 4}};
    const VkSpecializationInfo spec_info = {3, spec_map, sizeof spec, spec};
    VkComputePipelineCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage =
        (VkPipelineShaderStageCreateInfo){.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = c->mod[s];
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = &spec_info;
    ci.layout = c->pl[s];
    return vkCreateComputePipelines(c->dev, c->pcache, 1, &ci, NULL, out);
}

static hearth_status create_pipelines(vk_ctx *c, hearth_error *err) {
    void *cdata = NULL;
    size_t cn = 0;
    cache_path(c);
    if (c->cache_path[0]) {
        FILE *f = fopen(c->cache_path, "rb");
        if (f) {
            if (!fseek(f, 0, SEEK_END)) {
                long n = ftell(f);
                if (n > 0 && (cdata = malloc((size_t)n)) != NULL) {
                    rewind(f);
                    cn = fread(cdata, 1, (size_t)n, f);
                }
            }
            fclose(f);
        }
    }
    VkPipelineCacheCreateInfo pci = {VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, NULL, 0, cn, cdata};
    if (vkCreatePipelineCache(c->dev, &pci, NULL, &c->pcache) != VK_SUCCESS) {
        pci.initialDataSize = 0; /* a stale or foreign cache file: start empty */
        pci.pInitialData = NULL;
        vkCreatePipelineCache(c->dev, &pci, NULL, &c->pcache);
    }
    free(cdata);
    for (int s = 0; s < SH_COUNT; s++) {
        char want[48];
        snprintf(want, sizeof want, "%s%s%s", shader_defs[s].name,
                 c->use_subgroups && shader_defs[s].sg ? "_sg" : "",
                 c->use_storage && shader_defs[s].st ? "_st" : "");
        const hearth_vk_shader *sh = NULL;
        for (const hearth_vk_shader *e = hearth_vk_shaders; e->name; e++)
            if (!strcmp(e->name, want)) sh = e;
        if (!sh)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                    "vulkan: shader %s.comp is not in this build", want);
        if (shader_defs[s].shared > c->props.limits.maxComputeSharedMemorySize)
            return hearth_error_set(
                err, HEARTH_ERR_UNSUPPORTED,
                "vulkan: %s: shader %s needs %u bytes of shared memory, the device has %u",
                c->props.deviceName, want, shader_defs[s].shared, c->props.limits.maxComputeSharedMemorySize);
        VkDescriptorSetLayoutBinding bind[5];
        for (uint32_t i = 0; i < shader_defs[s].n_bind; i++)
            bind[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                                     VK_SHADER_STAGE_COMPUTE_BIT, NULL};
        VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
        dli.bindingCount = shader_defs[s].n_bind;
        dli.pBindings = bind;
        VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, PUSH_BYTES};
        VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
        pli.setLayoutCount = 1;
        pli.pushConstantRangeCount = 1;
        pli.pPushConstantRanges = &pr;
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
        mi.codeSize = sh->size;
        mi.pCode = (const uint32_t *)(const void *)sh->spv;
        VkResult r = vkCreateDescriptorSetLayout(c->dev, &dli, NULL, &c->dsl[s]);
        pli.pSetLayouts = &c->dsl[s];
        if (r == VK_SUCCESS) r = vkCreatePipelineLayout(c->dev, &pli, NULL, &c->pl[s]);
        if (r == VK_SUCCESS) r = vkCreateShaderModule(c->dev, &mi, NULL, &c->mod[s]);
        if (r == VK_SUCCESS && !shader_defs[s].typed) r = build_pipeline(c, s, HEARTH_F32, &c->pipe[s]);
        if (r != VK_SUCCESS)
            return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "vulkan: %s: cannot build shader %s (%s)",
                                    c->props.deviceName, sh->name, vk_result_str(r));
    }
    return HEARTH_OK;
}

hearth_backend *hearth_vulkan_backend_create(int device, bool allow_software, hearth_error *err) {
    hearth_backend *b = calloc(1, sizeof *b);
    vk_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        hearth_error_set(err, HEARTH_ERR_NOMEM, "vulkan: out of memory");
        return NULL;
    }
    b->ops = &vk_ops;
    b->ctx = c;
    c->self = b;
    c->next_addr = (uintptr_t)1 << 44;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "hearth";
    app.apiVersion = VK_API_VERSION_1_2;
    VkInstanceCreateInfo ii = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ii.pApplicationInfo = &app;
    VkResult r = vkCreateInstance(&ii, NULL, &c->inst);
    if (r != VK_SUCCESS) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "vulkan: no Vulkan driver (vkCreateInstance: %s)",
                         vk_result_str(r));
        goto fail;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(c->inst, &n, NULL);
    VkPhysicalDevice pds[16];
    if (n > 16) n = 16;
    vkEnumeratePhysicalDevices(c->inst, &n, pds);
    int pick = -1, best = -1;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties pp;
        vkGetPhysicalDeviceProperties(pds[i], &pp);
        uint32_t fam;
        bool usable = pp.apiVersion >= VK_API_VERSION_1_2 && compute_family(pds[i], &fam);
        if (device >= 0) {
            if ((int)i == device) {
                if (!usable) {
                    hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                     "vulkan:%d (%s) has no compute queue or is older than Vulkan 1.2",
                                     device, pp.deviceName);
                    goto fail;
                }
                pick = (int)i;
            }
            continue;
        }
        int rank = device_rank(pp.deviceType);
        if (!usable || (rank == 0 && !allow_software)) continue;
        if (rank > best) {
            best = rank;
            pick = (int)i;
        }
    }
    if (pick < 0) {
        if (device >= 0)
            hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                             "vulkan:%d: no such device (%u Vulkan device%s found)", device, n,
                             n == 1 ? "" : "s");
        else
            hearth_error_set(
                err, HEARTH_ERR_UNSUPPORTED,
                "vulkan: no usable Vulkan GPU found (%u device%s; software drivers such as lavapipe are "
                "used only with --backend vulkan)",
                n, n == 1 ? "" : "s");
        goto fail;
    }
    c->index = pick;
    c->pdev = pds[pick];
    vkGetPhysicalDeviceProperties(c->pdev, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->pdev, &c->memprops);
    {
        VkPhysicalDeviceDriverProperties dp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &dp, {0}};
        vkGetPhysicalDeviceProperties2(c->pdev, &p2);
        snprintf(c->driver, sizeof c->driver, "%.40s %.50s", dp.driverName, dp.driverInfo);
    }
    compute_family(c->pdev, &c->qfam);
    query_caps(c);
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qi.queueFamilyIndex = c->qfam;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    /* the storage features the _st shaders declare (SPIR-V capabilities
     * StorageBuffer16BitAccess, StorageBuffer8BitAccess) */
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    f11.storageBuffer16BitAccess = c->use_storage;
    f12.storageBuffer8BitAccess = c->use_storage;
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &f11};
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    r = vkCreateDevice(c->pdev, &di, NULL, &c->dev);
    if (r != VK_SUCCESS) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "vulkan: %s: cannot create a device (%s)",
                         c->props.deviceName, vk_result_str(r));
        goto fail;
    }
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    cpi.queueFamilyIndex = c->qfam;
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    r = vkCreateCommandPool(c->dev, &cpi, NULL, &c->cpool);
    cai.commandPool = c->cpool;
    if (r == VK_SUCCESS) r = vkAllocateCommandBuffers(c->dev, &cai, &c->cmd);
    if (r == VK_SUCCESS) r = vkCreateFence(c->dev, &fi, NULL, &c->fence);
    if (r != VK_SUCCESS) {
        hearth_error_set(err, HEARTH_ERR_IO, "vulkan: %s: cannot create a command buffer (%s)",
                         c->props.deviceName, vk_result_str(r));
        goto fail;
    }
    if (c->ts_mask) {
        VkQueryPoolCreateInfo qpi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qpi.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qpi.queryCount = MAX_QUERIES;
        if (vkCreateQueryPool(c->dev, &qpi, NULL, &c->qpool) != VK_SUCCESS)
            c->qpool = VK_NULL_HANDLE; /* untimed */
    }
    if (create_pipelines(c, err)) goto fail;
    return b;
fail:
    vk_destroy(b);
    return NULL;
}

/* ------------------------------------------------------------ device list */

/* Every physical device the loader reports, ranked like create's "auto"
 * (the best non-software device is the one auto takes). */
int hearth_vulkan_devices(hearth_device_desc *out, int cap, hearth_error *err) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "hearth";
    app.apiVersion = VK_API_VERSION_1_2;
    VkInstanceCreateInfo ii = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ii.pApplicationInfo = &app;
    VkInstance inst;
    VkResult r = vkCreateInstance(&ii, NULL, &inst);
    if (r != VK_SUCCESS) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "vulkan: no Vulkan driver (vkCreateInstance: %s)",
                         vk_result_str(r));
        return -1;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice pds[16];
    if (n > 16) n = 16;
    vkEnumeratePhysicalDevices(inst, &n, pds);
    int best = -1, best_rank = 0;
    for (uint32_t i = 0; i < n && (int)i < cap; i++) {
        hearth_device_desc *d = &out[i];
        memset(d, 0, sizeof *d);
        VkPhysicalDeviceDriverProperties dp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &dp, {0}};
        vkGetPhysicalDeviceProperties2(pds[i], &p2);
        const VkPhysicalDeviceProperties *pp = &p2.properties;
        snprintf(d->select, sizeof d->select, "vulkan:%u", i);
        snprintf(d->name, sizeof d->name, "%.120s", pp->deviceName);
        static const char *kinds[] = {"other", "integrated gpu", "discrete gpu", "virtual gpu", "software"};
        snprintf(d->kind, sizeof d->kind, "%s", pp->deviceType <= 4 ? kinds[pp->deviceType] : "other");
        snprintf(d->driver, sizeof d->driver, "%.36s %.36s, Vulkan %u.%u", dp.driverName, dp.driverInfo,
                 VK_API_VERSION_MAJOR(pp->apiVersion), VK_API_VERSION_MINOR(pp->apiVersion));
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(pds[i], &mp);
        for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
            if (mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
                d->mem_total += mp.memoryHeaps[h].size;
        uint32_t fam;
        d->usable = pp->apiVersion >= VK_API_VERSION_1_2 && compute_family(pds[i], &fam);
        int rank = device_rank(pp->deviceType);
        if (!d->usable)
            snprintf(d->note, sizeof d->note, "no compute queue, or older than Vulkan 1.2");
        else if (rank == 0)
            snprintf(d->note, sizeof d->note, "a software driver: used only when named (--backend %s)",
                     d->select);
        else if (rank > best_rank) {
            best_rank = rank;
            best = (int)i;
        }
    }
    if (best >= 0) out[best].auto_pick = true;
    vkDestroyInstance(inst, NULL);
    return (int)n;
}
