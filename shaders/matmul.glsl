// matmul.glsl - out[t, r] = sum_k w[r, k] * x[t, k] (+ bias[r]).
// The prompt (n_tok > 1) path; one token goes to matvec.comp. One workgroup
// per weight row r; the row is dequantised once per tile of NT tokens, 4
// elements per read (dq4), each feeding NT accumulators, then a shared-memory
// tree reduction. Weight blocks are read in place (common.glsl). Body of
// matmul.comp and matmul_st.comp.
layout(local_size_x = 64) in;
#include "mm_io.glsl"
#define NT 8u

shared float red[NT * WG];

void main() {
    uint r = wg_linear();
    if (r >= p.rows) return;
    uint tid = gl_LocalInvocationID.x;
    uint ro = p.w_off + r * p.w_nb1;
    for (uint t0 = 0u; t0 < p.n_tok; t0 += NT) {
        uint nt = min(NT, p.n_tok - t0);
        float acc[NT];
        for (uint k = 0u; k < NT; k++) acc[k] = 0.0;
        uint i = 4u * tid;
        for (; i + 3u < p.ne0; i += 4u * WG) { // 4 elements per read (dq4)
            vec4 wv = dq4(WTYPE, ro, i);
            uint xo = p.x_off + t0 * p.x_nb1 + i;
            for (uint k = 0u; k < NT; k++)
                if (k < nt) {
                    uint o = xo + k * p.x_nb1;
                    acc[k] += dot(wv, vec4(x[o], x[o + 1u], x[o + 2u], x[o + 3u]));
                }
        }
        for (; i < p.ne0; i++) { // F32/F16/BF16 tail (ne0 % 4), one invocation
            float wv = dq(WTYPE, ro, i);
            uint xo = p.x_off + t0 * p.x_nb1 + i;
            for (uint k = 0u; k < NT; k++)
                if (k < nt) acc[k] += wv * x[xo + k * p.x_nb1];
        }
        for (uint k = 0u; k < NT; k++) red[k * WG + tid] = acc[k];
        barrier();
        for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s)
                for (uint k = 0u; k < NT; k++) red[k * WG + tid] += red[k * WG + tid + s];
            barrier();
        }
        if (tid < nt) {
            float v = red[tid * WG];
            if (p.has_bias != 0u) v += bias[p.b_off + r];
            o[p.o_off + (t0 + tid) * p.o_nb1 + r] = v;
        }
        barrier();
    }
}
