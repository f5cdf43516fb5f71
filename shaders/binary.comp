// binary.comp - elementwise over rows: op 0: out = a + b; op 1: out = silu(a) * b;
// op 2: out = gelu(a) in the tanh form 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))),
// the backend contract (and ggml's GELU); b is bound but unread;
// op 3: out = gelu(a) * b (GeGLU, Gemma's FFN); op 4: out = s * a, or with cap > 0
// cap * tanh(s * a / cap) (soft-capping; b unread).
// out may alias a (each element is read and written by one invocation).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint a_off, a_nb1, b_off, b_nb1, o_off, o_nb1, ne0, ne1, op;
    float s, cap;
} p;

// tanh(u) = 1 - 2 / (e^2u + 1): saturates to +-1 without the inf/inf of the
// quotient form (e^2u overflows to inf for u > 44, giving exactly 1).
float tanh_sat(float u) { return 1.0 - 2.0 / (exp(2.0 * u) + 1.0); }

float gelu(float x) { return 0.5 * x * (1.0 + tanh_sat(0.79788456080286535588 * x * (1.0 + 0.044715 * x * x))); }

void main() {
    uint i = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
    if (i >= p.ne0 || r >= p.ne1) return;
    float av = a[p.a_off + r * p.a_nb1 + i];
    float y;
    if (p.op == 2u) {
        y = gelu(av);
    } else if (p.op == 4u) {
        y = p.cap > 0.0 ? p.cap * tanh_sat(p.s * av / p.cap) : p.s * av;
    } else {
        float bv = b[p.b_off + r * p.b_nb1 + i];
        y = p.op == 0u ? av + bv : p.op == 1u ? av / (1.0 + exp(-av)) * bv : gelu(av) * bv;
    }
    o[p.o_off + r * p.o_nb1 + i] = y;
}
