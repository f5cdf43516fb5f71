/*
 * argmax.h - the greedy choice over a row of logits.
 *
 * One pure function, used by the sampler (runtime/serving) and by the forward
 * pass when a backend has no argmax op (runtime/model). Its contract is the
 * backends' argmax op's too: the lowest index wins ties, NaNs are never
 * chosen, and a row of only NaNs gives 0.
 */
#ifndef HEARTH_ARGMAX_H
#define HEARTH_ARGMAX_H

#include <stdint.h>

int32_t hearth_argmax(const float *logits, int n);

#endif
