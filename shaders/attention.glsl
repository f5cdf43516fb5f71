// attention.glsl - causal paged attention with GQA, flash style (body of
// attention.comp and attention_sg.comp).
// One workgroup per (token, query head). Keys are visited in tiles of WG
// through the token's page table: each invocation scores one key, the tile's
// max and sum come from reduce.glsl (subgroup or shared-memory variant), and
// an online softmax (running max m, sum l, unnormalised acc) folds tiles
// together; each invocation owns head dims d = tid + j*WG of the output
// (head_dim <= 256).
// K/V pools are F32, F16 or Q8_0 (head_dim % 32 == 0), read in place: as
// words, or (STORAGE16/STORAGE8, the _st variants) halves and int8 quants
// through 16/8-bit views of the same bindings (common.glsl for K, below for V).
// Q follows the CPU backend's dot product for the K type: rounded to F16 for
// an F16 pool; for a Q8_0 pool quantized per 32 to Q8_0 (d = amax/127 stored
// as F16, q = rint(x * 127/amax)) and scored by integer block dots, as ggml
// does. meta (int) holds kv_len[n_tok], pt_offset[n_tok] and the page table
// at the given offsets. attention_ext's options: a sliding window (the loop
// starts at the window's first key) and soft-capped scores.
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
    uint window;   // > 0: only the last `window` keys (sliding window)
    float softcap; // > 0: scores soft-capped, softcap * tanh(s / softcap)
} p;
#define WBUF kp
#define WBIND 1
#include "common.glsl"
#include "reduce.glsl"
#define MAXD 256u
#define NEG (-1.0e30)

#ifdef STORAGE16
layout(std430, binding = 2) readonly buffer VbH { float16_t vp_h[]; }; // byte o: vp_h[o >> 1]
#endif
#ifdef STORAGE8
layout(std430, binding = 2) readonly buffer VbI8 { int8_t vp_i8[]; };
#endif

// IEEE half at byte o of the V pool.
float v_half(uint o) {
#ifdef STORAGE16
    return float(vp_h[o >> 1]);
#else
    uint x = vp[o >> 2];
    return unpackHalf2x16((o & 2u) != 0u ? (x >> 16) : x).x;
#endif
}

// Element d of the V head row at byte ro.
float vval(uint ro, uint d) {
    if (p.vtype == T_F32) return uintBitsToFloat(vp[(ro >> 2) + d]);
    if (p.vtype == T_F16) return v_half(ro + 2u * d);
    uint bo = ro + (d >> 5) * 34u, qo = bo + 2u + (d & 31u); // Q8_0
#ifdef STORAGE8
    int q = int(vp_i8[qo]);
#else
    int q = int(vp[qo >> 2] << (24u - 8u * (qo & 3u))) >> 24;
#endif
    return v_half(bo) * float(q);
}

// Byte offset of KV head g within a pool row of type t.
uint head_off(uint t, uint g) { return t == T_F32 ? g * p.hd * 4u : t == T_F16 ? g * p.hd * 2u : g * (p.hd >> 5) * 34u; }

shared float qs[MAXD];  // Q of this head (as F32, F16-rounded, or Q8_0 integer levels)
shared float qd[MAXD / 32u]; // Q8_0 block scales of Q
shared float pw[WG];
shared uint slot_s[WG];

// q . k for the K head row at byte ko.
float score(uint ko) {
    float dot = 0.0;
    if (p.ktype == T_F32) {
        for (uint d = 0u; d < p.hd; d++) dot += qs[d] * uintBitsToFloat(kp[(ko >> 2) + d]);
    } else if (p.ktype == T_F16) {
        for (uint d = 0u; d < p.hd; d++) dot += qs[d] * rd_half(ko + 2u * d);
    } else {
        for (uint b = 0u; b < (p.hd >> 5); b++) {
            uint bo = ko + 34u * b;
            int isum = 0;
            for (uint j = 0u; j < 32u; j += 4u) {
                ivec4 kq = rd_sbyte4(bo + 2u + j);
                isum += int(qs[32u * b + j]) * kq.x + int(qs[32u * b + j + 1u]) * kq.y +
                        int(qs[32u * b + j + 2u]) * kq.z + int(qs[32u * b + j + 3u]) * kq.w;
            }
            dot += rd_half(bo) * qd[b] * float(isum);
        }
    }
    return dot;
}

void main() {
    uint wid = wg_linear();
    if (wid >= p.n_tok * p.n_heads) return;
    uint tid = gl_LocalInvocationID.x;
    uint t = wid / p.n_heads, h = wid % p.n_heads;
    uint g = h / (p.n_heads / p.n_kv_heads);
    for (uint d = tid; d < p.hd; d += WG) {
        float v = q[p.q_off + t * p.q_nb1 + h * p.hd + d];
        if (p.ktype == T_F16) v = unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x;
        qs[d] = v;
    }
    barrier();
    if (p.ktype == T_Q8_0 && tid < (p.hd >> 5)) { // one invocation per 32-block of Q
        float amax = 0.0;
        for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(qs[32u * tid + j]));
        float id = amax != 0.0 ? 127.0 / amax : 0.0;
        qd[tid] = unpackHalf2x16(packHalf2x16(vec2(amax / 127.0, 0.0))).x;
        for (uint j = 0u; j < 32u; j++) qs[32u * tid + j] = roundEven(qs[32u * tid + j] * id);
    }
    barrier();
    float acc[MAXD / WG];
    for (uint j = 0u; j < MAXD / WG; j++) acc[j] = 0.0;
    float m = NEG, l = 0.0;
    uint n_kv = uint(meta[p.m_kvlen + t]);
    uint pt = p.m_pt + uint(meta[p.m_ptoff + t]);
    uint kh = head_off(p.ktype, g), vh = head_off(p.vtype, g);
    uint first = p.window > 0u && n_kv > p.window ? n_kv - p.window : 0u;
    for (uint p0 = first; p0 < n_kv; p0 += WG) {
        uint pos = p0 + tid;
        float s = NEG;
        if (pos < n_kv) {
            uint slot = uint(meta[pt + pos / p.page_size]) * p.page_size + pos % p.page_size;
            slot_s[tid] = slot;
            s = score(p.k_off + slot * p.k_nb1 + kh) * p.scale;
            if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
        }
        float tmax = max(m, wg_max(s));
        float e = pos < n_kv ? exp(s - tmax) : 0.0;
        pw[tid] = e;
        float c = exp(m - tmax);
        l = l * c + wg_sum(e); // wg_sum's barrier also publishes pw and slot_s
        m = tmax;
        uint nt = min(WG, n_kv - p0);
        for (uint j = 0u; j < MAXD / WG; j++) {
            uint d = tid + j * WG;
            if (d >= p.hd) break;
            float a = acc[j] * c;
            for (uint i = 0u; i < nt; i++) a += pw[i] * vval(p.v_off + slot_s[i] * p.v_nb1 + vh, d);
            acc[j] = a;
        }
        barrier();
    }
    for (uint j = 0u; j < MAXD / WG; j++) {
        uint d = tid + j * WG;
        if (d < p.hd) o[p.o_off + t * p.o_nb1 + h * p.hd + d] = acc[j] / l;
    }
}
