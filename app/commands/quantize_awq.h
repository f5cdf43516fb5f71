/*
 * quantize_awq.h - `hearth quantize --awq CALIB.txt`: activation-aware
 * scaling before INT4 quantization (AWQ-style, without AWQ's clipping
 * search).
 *
 * Per layer and per group of matmuls that share an input, a per-channel
 * scale s = mean|x|^alpha (alpha on the grid 0, 0.1, ..., 1; s normalised
 * so that max(s) * min(s) = 1) is chosen that minimises the group's output
 * error sum ||X W^T - (X / s) Q(W diag(s))^T||^2 on calibration rows X,
 * with Q the tensor's planned quantized type. alpha = 0 is s = 1 (plain
 * quantization), so on the sample the chosen scale is never worse. The
 * scales are folded so the F32 model computes the same function:
 *   attn_q/k/v columns * s, attn_norm / s          (input of Q/K/V)
 *   attn_output columns * s, attn_v rows (+bias) / s (GQA: one s per KV head
 *     dimension, shared by the query heads of the group)
 *   ffn_gate/up columns * s, ffn_norm / s           (input of gate/up)
 *   ffn_down columns * s, ffn_up rows / s           (silu(g) * u is linear in u)
 * Ownership: a q_awq owns the folded F32 tensors; q_awq_free frees them.
 */
#ifndef HEARTH_QUANTIZE_AWQ_H
#define HEARTH_QUANTIZE_AWQ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "runtime/format/gguf.h"

typedef struct q_awq_opts {
    const char *model_path; /* the model being quantized (run for calibration) */
    const char *calib;      /* calibration text */
    int n_ctx, max_chunks, threads;
    double fixed_alpha; /* >= 0: no search, this alpha everywhere (tests); < 0: search */
    int sample_rows;    /* calibration rows kept per matmul input for the search */
    bool progress;
} q_awq_opts;

/* The planned type of a tensor (what the search quantizes with). */
typedef hearth_dtype (*q_awq_type_fn)(void *user, const char *name);

typedef struct q_awq_tensor {
    char name[96];
    float *data; /* folded F32 values, the source tensor's shape */
} q_awq_tensor;

enum { Q_AWQ_GROUPS = 4 }; /* qkv, attn_output, gate/up, down */

typedef struct q_awq {
    q_awq_tensor *t;
    size_t n, cap;
    int n_layer, n_chunk;
    double *alpha;           /* [n_layer][Q_AWQ_GROUPS] chosen alpha */
    double *err_plain, *err; /* same shape: sample output error at alpha 0 and at the chosen one */
} q_awq;

/* Calibrate, search and fold. The model must be llama/qwen2/qwen3-style
 * (attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down, float types);
 * otherwise a clear error. */
q_awq *q_awq_run(const q_awq_opts *o, const hearth_gguf *g, q_awq_type_fn type_of, void *user,
                 hearth_error *err);
/* The folded values of tensor `name`, or NULL when AWQ left it unchanged. */
const float *q_awq_data(const q_awq *a, const char *name);
void q_awq_free(q_awq *a);

#endif
