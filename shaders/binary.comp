// binary.comp - elementwise over rows: op 0: out = a + b; op 1: out = silu(a) * b;
// op 2: out = gelu(a) * b (tanh form, GeGLU); op 3: out = s * a, or with cap > 0
// cap * tanh(s * a / cap) (soft-capping; b unused). out may alias a (each element is
// read and written by one invocation).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint a_off, a_nb1, b_off, b_nb1, o_off, o_nb1, ne0, ne1, op;
    float s, cap;
} p;

// tanh with the argument clamped: tanh(15) is 1.0 in float, and large
// arguments of the exp-based forms overflow.
float tanh_c(float x) { return tanh(clamp(x, -15.0, 15.0)); }

void main() {
    uint i = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
    if (i >= p.ne0 || r >= p.ne1) return;
    float av = a[p.a_off + r * p.a_nb1 + i];
    float res;
    if (p.op == 3u) {
        res = p.cap > 0.0 ? p.cap * tanh_c(p.s * av / p.cap) : p.s * av;
    } else {
        float bv = b[p.b_off + r * p.b_nb1 + i];
        if (p.op == 0u) res = av + bv;
        else if (p.op == 1u) res = av / (1.0 + exp(-av)) * bv;
        else res = 0.5 * av * (1.0 + tanh_c(0.79788456080286535588 * av * (1.0 + 0.044715 * av * av))) * bv;
    }
    o[p.o_off + r * p.o_nb1 + i] = res;
}
