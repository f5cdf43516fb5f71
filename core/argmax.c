/*
 * argmax.c - hearth_argmax (contract in argmax.h).
 */
#include "argmax.h"

int32_t hearth_argmax(const float *logits, int n) {
    int32_t best = -1; /* NaNs are never chosen (0 when every logit is NaN) */
    for (int i = 0; i < n; i++)
        if (logits[i] == logits[i] && (best < 0 || logits[i] > logits[best])) best = i;
    return best < 0 ? 0 : best;
}
