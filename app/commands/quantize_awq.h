/*
 * quantize_awq.h - `hearth quantize --awq CALIB.txt`: activation-aware
 * scaling and clipping before quantization (AWQ-style).
 *
 * Calibration: the model runs over the calibration text (calib.h) with a
 * tap on the layer matmul inputs; per layer and input it keeps mean|x| per
 * channel, the block-diagonal X^T X over every calibration row
 * (awq_search.h) and an evenly spread sample of input rows.
 * Scale search, per layer and per group of matmuls that share an input: a
 * per-channel scale s = mean|x|^alpha (alpha on the grid 0, 0.1, ..., 1; s
 * normalised so that max(s) * min(s) = 1) minimising the group's output
 * error sum ||X W^T - (X / s) Q(W diag(s))^T||^2 on the sampled rows, with Q
 * the tensor's planned type (the real quantizer). alpha = 0 is s = 1. The
 * scales are folded so the F32 model computes the same function:
 *   attn_q/k/v columns * s, attn_norm / s          (input of Q/K/V)
 *   attn_output columns * s, attn_v rows (+bias) / s (GQA: one s per KV head
 *     dimension, shared by the query heads of the group)
 *   ffn_gate/up columns * s, ffn_norm / s           (input of gate/up)
 *   ffn_down columns * s, ffn_up rows / s           (silu(g) * u is linear in u)
 * Clipping search (unless no_clip): every folded matrix, and token_embd
 * (plain squared error: a lookup has no input), gets per quantizer block
 * the clip ratio with the least output error (awq_search.h). Q4_0/Q5_0
 * blocks also get their rounding refined (unless no_round): within the
 * block on its moments, then over the whole row on the full X^T X when
 * every layer's full moments fit 512 MiB.
 * Memory: the calibration statistics for all layers, and the folded F32
 * weights of ONE layer: a layer is searched when the writer first asks for
 * one of its tensors (q_awq_get) and the previous layer's are freed then.
 * The search runs on `threads` threads; the bytes do not depend on it.
 * Ownership: a q_awq owns its statistics and the current layer's tensors;
 * q_awq_free frees them. g, type_of and user must outlive the q_awq.
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
    bool no_clip;       /* skip the clipping search */
    bool no_round;      /* skip the rounding refinement of the clipping search */
    bool progress;
} q_awq_opts;

/* The planned type of a tensor (what the search quantizes with). */
typedef hearth_dtype (*q_awq_type_fn)(void *user, const char *name);

typedef struct q_awq_tensor {
    char name[96];
    float *data; /* folded F32 values, the source tensor's shape */
} q_awq_tensor;

enum { Q_AWQ_GROUPS = 4 }; /* qkv, attn_output, gate/up, down */

/* Sample output errors of one group (sum over its matrices and sampled rows). */
typedef struct q_awq_stat {
    double alpha;
    double err_plain;  /* s = 1, no clipping: plain quantization */
    double err_scaled; /* the chosen s, no clipping */
    double err_final;  /* the chosen s and the clipping (what is written) */
    bool done;
} q_awq_stat;

typedef struct q_awq_priv q_awq_priv;

typedef struct q_awq {
    q_awq_tensor *t; /* the current layer's folded tensors */
    size_t n, cap;
    int n_layer, n_chunk, cur_layer;      /* cur_layer: -1 token_embd, -2 none yet */
    q_awq_stat *stat;                     /* [n_layer][Q_AWQ_GROUPS] */
    double embd_err_plain, embd_err_clip; /* token_embd squared error, unclipped / clipped */
    bool embd_clipped;
    bool full_moments; /* the whole-row refinement had the full X^T X (it fit the budget) */
    double search_seconds;
    q_awq_priv *priv;
} q_awq;

/* Calibrate and check the model. The model must be llama/qwen2/qwen3-style
 * (attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down, float types);
 * otherwise a clear error. */
q_awq *q_awq_run(const q_awq_opts *o, const hearth_gguf *g, q_awq_type_fn type_of, void *user,
                 hearth_error *err);
/* *data = the folded values of tensor `name`, or NULL when AWQ leaves it
 * unchanged. Searches the tensor's layer first when it is not the current
 * one (freeing the current one's tensors). False with err on a failure. */
bool q_awq_get(q_awq *a, const char *name, const float **data, hearth_error *err);
void q_awq_free(q_awq *a);

#endif
