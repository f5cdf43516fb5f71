// attention.comp - causal paged attention with GQA, flash style.
// One workgroup per (token, query head). Keys are visited in tiles of WG
// through the token's page table: each invocation scores one key, the tile's
// max and sum come from shared-memory reductions, and an online softmax
// (running max m, sum l, unnormalised acc) folds tiles together; each
// invocation owns head dims d = tid + j*WG of the output (head_dim <= 256).
// K/V pools are F32 or F16 words; Q is rounded to F16 for an F16 K pool, as
// the CPU backend's F16 dot product does. meta (int) holds kv_len[n_tok],
// pt_offset[n_tok] and the page table at the given offsets.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, binding = 1) readonly buffer Kb { uint kp[]; };
layout(std430, binding = 2) readonly buffer Vb { uint vp[]; };
layout(std430, binding = 3) readonly buffer Mb { int meta[]; };
layout(std430, binding = 4) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint q_off, q_nb1, k_off, k_nb1, v_off, v_nb1, o_off, o_nb1;
    uint n_heads, n_kv_heads, hd, n_tok, ktype, vtype, page_size, m_kvlen, m_ptoff, m_pt;
    float scale;
} p;
#define WBUF kp
#include "common.glsl"
#define MAXD 256u
#define NEG (-1.0e30)

float kval(uint ro, uint d) { return p.ktype == T_F32 ? uintBitsToFloat(kp[(ro >> 2) + d]) : rd_half(ro + 2u * d); }
float vval(uint ro, uint d) {
    if (p.vtype == T_F32) return uintBitsToFloat(vp[(ro >> 2) + d]);
    uint x = vp[(ro + 2u * d) >> 2];
    return unpackHalf2x16(((ro + 2u * d) & 2u) != 0u ? (x >> 16) : x).x;
}

shared float qs[MAXD];
shared float red[WG];
shared float pw[WG];
shared uint slot_s[WG];

void main() {
    uint wid = wg_linear();
    if (wid >= p.n_tok * p.n_heads) return;
    uint tid = gl_LocalInvocationID.x;
    uint t = wid / p.n_heads, h = wid % p.n_heads;
    uint g = h / (p.n_heads / p.n_kv_heads);
    uint esz_k = p.ktype == T_F32 ? 4u : 2u, esz_v = p.vtype == T_F32 ? 4u : 2u;
    for (uint d = tid; d < p.hd; d += WG) {
        float v = q[p.q_off + t * p.q_nb1 + h * p.hd + d];
        if (p.ktype == T_F16) v = unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x;
        qs[d] = v;
    }
    barrier();
    float acc[MAXD / WG];
    for (uint j = 0u; j < MAXD / WG; j++) acc[j] = 0.0;
    float m = NEG, l = 0.0;
    uint n_kv = uint(meta[p.m_kvlen + t]);
    uint pt = p.m_pt + uint(meta[p.m_ptoff + t]);
    for (uint p0 = 0u; p0 < n_kv; p0 += WG) {
        uint pos = p0 + tid;
        float s = NEG;
        if (pos < n_kv) {
            uint slot = uint(meta[pt + pos / p.page_size]) * p.page_size + pos % p.page_size;
            slot_s[tid] = slot;
            uint ko = p.k_off + slot * p.k_nb1 + g * p.hd * esz_k;
            float dot = 0.0;
            for (uint d = 0u; d < p.hd; d++) dot += qs[d] * kval(ko, d);
            s = dot * p.scale;
        }
        red[tid] = s;
        barrier();
        for (uint st = WG / 2u; st > 0u; st >>= 1) {
            if (tid < st) red[tid] = max(red[tid], red[tid + st]);
            barrier();
        }
        float tmax = max(m, red[0]);
        barrier();
        float e = pos < n_kv ? exp(s - tmax) : 0.0;
        pw[tid] = e;
        red[tid] = e;
        barrier();
        for (uint st = WG / 2u; st > 0u; st >>= 1) {
            if (tid < st) red[tid] += red[tid + st];
            barrier();
        }
        float c = exp(m - tmax);
        l = l * c + red[0];
        m = tmax;
        uint nt = min(WG, n_kv - p0);
        for (uint j = 0u; j < MAXD / WG; j++) {
            uint d = tid + j * WG;
            if (d >= p.hd) break;
            float a = acc[j] * c;
            for (uint i = 0u; i < nt; i++) a += pw[i] * vval(p.v_off + slot_s[i] * p.v_nb1 + g * p.hd * esz_v, d);
            acc[j] = a;
        }
        barrier();
    }
    for (uint j = 0u; j < MAXD / WG; j++) {
        uint d = tid + j * WG;
        if (d < p.hd) o[p.o_off + t * p.o_nb1 + h * p.hd + d] = acc[j] / l;
    }
}
