/*
 * cpu_moe.c - mixture-of-experts ops on the CPU: top-k routing, the grouped
 * expert matmul and the weighted sum of the experts' outputs.
 *
 * moe_matmul groups the ubatch's slots (token, choice) by expert with a
 * counting sort, gathers each expert's input rows into one block and runs
 * the backend's matmul (or matmul_multi for gate + up) on that block once:
 * an expert's weights are read once per ubatch however many tokens chose
 * it, and experts nobody chose are not read at all. The CPU matmul gives a
 * row the same numbers whatever batch it is in, so grouping changes no
 * result. Scratch (the gathered inputs and outputs) is allocated per call.
 * Route and combine are cheap (n x n_expert, n x k x n_embd) and run on the
 * calling thread.
 */
#include "cpu_moe.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float *row_f32(const hearth_tensor *t, int64_t r) {
    return (float *)((char *)t->data + r * t->nb1);
}

void hearth_cpu_moe_route(hearth_backend *b, const hearth_tensor *logits, int k, bool norm, void *ids_,
                          hearth_tensor *weights) {
    (void)b;
    int32_t *ids = ids_;
    const int64_t ne = logits->ne0;
    float *p = malloc((size_t)ne * sizeof *p);
    unsigned char *taken = malloc((size_t)ne);
    if (!p || !taken) abort(); /* a few KB: as the CPU matmul, nothing sane to do */
    for (int64_t t = 0; t < logits->ne1; t++) {
        const float *l = row_f32(logits, t);
        float mx = -INFINITY;
        for (int64_t i = 0; i < ne; i++)
            if (l[i] > mx) mx = l[i];
        double sum = 0;
        for (int64_t i = 0; i < ne; i++) {
            p[i] = expf(l[i] - mx);
            sum += p[i];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < ne; i++)
            p[i] *= inv;
        memset(taken, 0, (size_t)ne);
        float *w = row_f32(weights, t);
        double wsum = 0;
        for (int j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < ne; i++)
                if (!taken[i] && (best < 0 || p[i] > p[best])) best = i;
            taken[best] = 1;
            ids[t * k + j] = (int32_t)best;
            w[j] = p[best];
            wsum += p[best];
        }
        if (norm) { /* llama.cpp clamps the sum at F16's smallest normal */
            const float s = wsum < 6.103515625e-5 ? 6.103515625e-5f : (float)wsum;
            for (int j = 0; j < k; j++)
                w[j] /= s;
        }
    }
    free(p);
    free(taken);
}

/* Expert e's [ne0 -> rows] matrix inside the stacked weight. */
static hearth_tensor expert_view(const hearth_tensor *w, int64_t e, int64_t rows) {
    hearth_tensor v = *w;
    v.data = (char *)w->data + (size_t)(e * rows) * w->nb1;
    v.ne1 = rows;
    return v;
}

void hearth_cpu_moe_matmul(hearth_backend *b, int n_w, const hearth_tensor *const *w, const hearth_tensor *x,
                           const void *ids_, int k, hearth_tensor *const *out) {
    const int32_t *ids = ids_;
    const int64_t n_slots = out[0]->ne1, K = x->ne0;
    const bool per_slot = x->ne1 == n_slots;
    const int64_t n_expert = w[0]->ne1 / out[0]->ne0;
    int64_t *start = calloc((size_t)n_expert + 2, sizeof *start);
    int64_t *order = malloc((size_t)n_slots * sizeof *order);
    if (!start || !order) abort();
    for (int64_t s = 0; s < n_slots; s++) /* counting sort of the slots by expert */
        if (ids[s] >= 0 && ids[s] < n_expert) start[ids[s] + 2]++;
    int64_t max_c = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        if (start[e + 2] > max_c) max_c = start[e + 2];
        start[e + 2] += start[e + 1];
    }
    for (int64_t s = 0; s < n_slots; s++)
        if (ids[s] >= 0 && ids[s] < n_expert) order[start[ids[s] + 1]++] = s;
    /* now expert e's slots are order[start[e] .. start[e + 1]) */
    size_t floats = (size_t)(max_c * K);
    for (int i = 0; i < n_w; i++)
        floats += (size_t)(max_c * out[i]->ne0);
    float *scratch = malloc((floats ? floats : 1) * sizeof *scratch);
    if (!scratch) abort();
    for (int64_t e = 0; e < n_expert; e++) {
        const int64_t c = start[e + 1] - start[e];
        if (c == 0) continue; /* nobody chose it: its weights are not read */
        const int64_t *sl = order + start[e];
        for (int64_t i = 0; i < c; i++)
            memcpy(scratch + i * K, row_f32(x, per_slot ? sl[i] : sl[i] / k), (size_t)K * sizeof(float));
        hearth_tensor xe = hearth_tensor_2d(HEARTH_F32, K, c, scratch);
        hearth_tensor we[2], ye[2];
        const hearth_tensor *wp[2];
        hearth_tensor *yp[2];
        const hearth_tensor *bias[2] = {NULL, NULL};
        float *y = scratch + c * K;
        for (int i = 0; i < n_w; i++) {
            we[i] = expert_view(w[i], e, out[i]->ne0);
            ye[i] = hearth_tensor_2d(HEARTH_F32, out[i]->ne0, c, y);
            y += c * out[i]->ne0;
            wp[i] = &we[i];
            yp[i] = &ye[i];
        }
        if (n_w > 1 && b->ops->matmul_multi)
            b->ops->matmul_multi(b, n_w, wp, &xe, bias, yp);
        else
            for (int i = 0; i < n_w; i++)
                b->ops->matmul(b, wp[i], &xe, NULL, yp[i]);
        for (int i = 0; i < n_w; i++)
            for (int64_t r = 0; r < c; r++)
                memcpy(row_f32(out[i], sl[r]), row_f32(&ye[i], r), (size_t)out[i]->ne0 * sizeof(float));
    }
    for (int64_t s = 0; s < n_slots; s++) /* an id out of range (never from moe_route): zeros */
        if (ids[s] < 0 || ids[s] >= n_expert)
            for (int i = 0; i < n_w; i++)
                memset(row_f32(out[i], s), 0, (size_t)out[i]->ne0 * sizeof(float));
    free(scratch);
    free(order);
    free(start);
}

void hearth_cpu_moe_combine(hearth_backend *b, const hearth_tensor *y, const hearth_tensor *weights, int k,
                            hearth_tensor *out) {
    (void)b;
    const int64_t ne = out->ne0;
    for (int64_t t = 0; t < out->ne1; t++) {
        float *o = row_f32(out, t);
        const float *w = row_f32(weights, t);
        const float *y0 = row_f32(y, t * k);
        for (int64_t i = 0; i < ne; i++)
            o[i] = w[0] * y0[i];
        for (int j = 1; j < k; j++) {
            const float *yj = row_f32(y, t * k + j);
            const float wj = w[j];
            for (int64_t i = 0; i < ne; i++)
                o[i] += wj * yj[i];
        }
    }
}
