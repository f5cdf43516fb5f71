// rms_norm.comp - out = x / rms(x) * w per row; one workgroup per row.
// out may alias x: each invocation reads its elements before the reduction
// barrier and writes only them afterwards.
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { float w[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint x_off, x_nb1, ne0, rows, w_off, o_off, o_nb1;
    float eps;
} p;
#define WG 64u
shared float red[WG];

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint tid = gl_LocalInvocationID.x;
    uint xo = p.x_off + r * p.x_nb1;
    float ss = 0.0;
    for (uint i = tid; i < p.ne0; i += WG) ss += x[xo + i] * x[xo + i];
    red[tid] = ss;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    float scale = 1.0 / sqrt(red[0] / float(p.ne0) + p.eps);
    uint oo = p.o_off + r * p.o_nb1;
    for (uint i = tid; i < p.ne0; i += WG) o[oo + i] = x[xo + i] * scale * w[p.w_off + i];
}
