// rope.comp - rotary embedding in place on x [n_tok, n_heads, head_dim].
// cs holds [n_tok][n_rot/2] (cos, sin) pairs computed on the host exactly as
// the CPU backend does (iterated theta, freq_factors, attn_factor), so both
// backends rotate by bit-identical angles. mode 0: adjacent pairs (NORM),
// mode 2: halves (NEOX). One invocation per (token, head, pair).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Cb { float cs[]; };
layout(push_constant) uniform P {
    uint x_off, x_nb1, n_heads, hd, half_rot, n_tok, mode, cs_off;
} p;

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    uint per_tok = p.n_heads * p.half_rot;
    if (id >= per_tok * p.n_tok) return;
    uint t = id / per_tok, rem = id % per_tok, h = rem / p.half_rot, i = rem % p.half_rot;
    uint base = p.x_off + t * p.x_nb1 + h * p.hd;
    uint i0 = p.mode == 2u ? i : 2u * i, i1 = p.mode == 2u ? i + p.half_rot : 2u * i + 1u;
    uint c = p.cs_off + 2u * (t * p.half_rot + i);
    float co = cs[c], sn = cs[c + 1u];
    float a = x[base + i0], b = x[base + i1];
    x[base + i0] = a * co - b * sn;
    x[base + i1] = a * sn + b * co;
}
