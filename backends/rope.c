/*
 * rope.c - the rotation angles of rotary position embeddings, computed once
 * here for every backend that builds its cos/sin on the host (the CPU, and
 * Vulkan's per-pass table) so they agree bit for bit; CUDA's kernel
 * computes the same formulas on the device.
 *
 * Plain RoPE: pair i of position pos turns by
 *     pos * freq_base^(-2i / n_rot) * freq_scale / freq_factor[i].
 * YaRN blends that (interpolated) angle with the unscaled (extrapolated)
 * one by a ramp over the pairs between yarn_lo and yarn_hi; the magnitude
 * (attn_factor) already holds YaRN's mscale, worked out at load time.
 * Stateless.
 */
#include <math.h>

#include "backend.h"

void hearth_rope_cos_sin(const hearth_rope_params *p, int32_t pos, float *cs, float *sn) {
    const int half = p->n_rot / 2;
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_rot);
    float mag = p->attn_factor;
    if (p->temp_scale != 0.0f && p->temp_floor > 0)
        mag *= 1.0f + p->temp_scale * logf(1.0f + floorf((float)pos / (float)p->temp_floor));
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        const float ff = p->freq_factors ? p->freq_factors[i] : 1.0f;
        const float extrap = theta / ff, interp = p->freq_scale * extrap;
        float th = interp;
        if (p->ext_factor != 0.0f) {
            const float y = ((float)i - p->yarn_lo) / fmaxf(0.001f, p->yarn_hi - p->yarn_lo);
            const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * p->ext_factor;
            th = interp * (1.0f - ramp) + extrap * ramp;
        }
        cs[i] = cosf(th) * mag;
        sn[i] = sinf(th) * mag;
        theta *= theta_scale;
    }
}

static float corr_dim(int n_rot, int n_ctx_orig, float beta, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (beta * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

void hearth_rope_yarn_dims(int n_rot, int n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                           float *lo, float *hi) {
    const float start = floorf(corr_dim(n_rot, n_ctx_orig, beta_fast, freq_base));
    const float end = ceilf(corr_dim(n_rot, n_ctx_orig, beta_slow, freq_base));
    *lo = fmaxf(0.0f, start);
    *hi = fminf((float)(n_rot - 1), end);
}
