// layer_norm.glsl - out = (x - mean) / sqrt(var + eps) * w (+ bias) per row,
// the encoders' LayerNorm (body of layer_norm.comp and layer_norm_sg.comp).
// One workgroup of WG per row; the mean, then the variance about it (two
// passes, as the CPU backend, which keeps both sums in double), go through
// reduce.glsl. has_bias = 0: no bias (binding 2 is then any buffer, unread).
// out may alias x: each invocation reads its elements before the second
// reduction's barrier and writes only them afterwards.
#define WG 64u
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { float w[]; };
layout(std430, binding = 2) readonly buffer Bb { float bias[]; };
layout(std430, binding = 3) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint x_off, x_nb1, ne0, rows, w_off, b_off, has_bias, o_off, o_nb1;
    float eps;
} p;
#include "reduce.glsl"

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint tid = gl_LocalInvocationID.x;
    uint xo = p.x_off + r * p.x_nb1;
    float s = 0.0;
    for (uint i = tid; i < p.ne0; i += WG) s += x[xo + i];
    float mean = wg_sum(s) / float(p.ne0);
    float ss = 0.0;
    for (uint i = tid; i < p.ne0; i += WG) {
        float d = x[xo + i] - mean;
        ss += d * d;
    }
    float scale = 1.0 / sqrt(wg_sum(ss) / float(p.ne0) + p.eps);
    uint oo = p.o_off + r * p.o_nb1;
    for (uint i = tid; i < p.ne0; i += WG) {
        float y = (x[xo + i] - mean) * scale * w[p.w_off + i];
        o[oo + i] = p.has_bias != 0u ? y + bias[p.b_off + i] : y;
    }
}
