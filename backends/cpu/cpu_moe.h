/*
 * cpu_moe.h - the CPU backend's mixture-of-experts ops (moe_route,
 * moe_matmul, moe_combine; contracts in backends/backend_impl.h).
 *
 * Owner: the MoE engineer. cpu_backend.c puts these in its ops table; they
 * run the expert matmuls through the backend's own matmul ops, so every
 * weight type with a CPU dot kernel works for experts too.
 */
#ifndef HEARTH_CPU_MOE_H
#define HEARTH_CPU_MOE_H

#include "backends/backend_impl.h"

void hearth_cpu_moe_route(hearth_backend *b, const hearth_tensor *logits, int k, bool norm, void *ids,
                          hearth_tensor *weights);
void hearth_cpu_moe_matmul(hearth_backend *b, int n_w, const hearth_tensor *const *w, const hearth_tensor *x,
                           const void *ids, int k, hearth_tensor *const *out);
void hearth_cpu_moe_combine(hearth_backend *b, const hearth_tensor *y, const hearth_tensor *weights, int k,
                            hearth_tensor *out);

#endif
