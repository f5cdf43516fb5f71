// rms_norm.glsl - out = x / rms(x) * w per row; one workgroup of WG per row
// (body of rms_norm.comp and rms_norm_sg.comp; the sum of squares goes through
// reduce.glsl). out may alias x: each invocation reads its elements before the
// reduction barrier and writes only them afterwards.
#define WG 64u
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { float w[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint x_off, x_nb1, ne0, rows, w_off, o_off, o_nb1;
    float eps;
} p;
#include "reduce.glsl"

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint tid = gl_LocalInvocationID.x;
    uint xo = p.x_off + r * p.x_nb1;
    float ss = 0.0;
    for (uint i = tid; i < p.ne0; i += WG) ss += x[xo + i] * x[xo + i];
    float scale = 1.0 / sqrt(wg_sum(ss) / float(p.ne0) + p.eps);
    uint oo = p.o_off + r * p.o_nb1;
    for (uint i = tid; i < p.ne0; i += WG) o[oo + i] = x[xo + i] * scale * w[p.w_off + i];
}
