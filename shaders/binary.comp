// binary.comp - elementwise over rows: op 0: out = a + b; op 1: out = silu(a) * b.
// out may alias a (each element is read and written by one invocation).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint a_off, a_nb1, b_off, b_nb1, o_off, o_nb1, ne0, ne1, op;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
    if (i >= p.ne0 || r >= p.ne1) return;
    float av = a[p.a_off + r * p.a_nb1 + i], bv = b[p.b_off + r * p.b_nb1 + i];
    o[p.o_off + r * p.o_nb1 + i] = p.op == 0u ? av + bv : av / (1.0 + exp(-av)) * bv;
}
