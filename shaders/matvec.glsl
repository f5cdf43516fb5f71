// matvec.glsl - out[r] = sum_k w[r, k] * x[k] (+ bias[r]) for one token: the
// decode-step matmul (body of matvec.comp and matvec_sg.comp).
// Several rows per workgroup, ROWS of them (specialisation constant 1; the
// workgroup has BLOCK invocations, constant 0). Each row is reduced by its own
// group of lanes, which read 4 consecutive elements at a time (dq4: one word
// for Q8_0/Q4_0/F16), so there is no workgroup-wide tree:
//   USE_SUBGROUP: a row per subgroup, summed with subgroupAdd and no barrier;
//     rows wg*ROWS .. wg*ROWS+ROWS-1 are shared out over gl_NumSubgroups, so a
//     driver that picks another subgroup size than the one the host planned
//     for still covers every row exactly once.
//   otherwise: BLOCK/ROWS lanes per row, a shared-memory tree per row.
// The host sets BLOCK = ROWS * subgroupSize (or 64) within
// maxComputeWorkGroupInvocations; BLOCK/ROWS is a power of two.
layout(constant_id = 0) const uint BLOCK = 64u;
layout(constant_id = 1) const uint ROWS = 8u;
layout(local_size_x_id = 0) in;
#include "mm_io.glsl"

// Partial dot of row r over elements lane*4, lane*4 + 4*lanes, ...
float row_dot(uint r, uint lane, uint lanes) {
    uint ro = p.w_off + r * p.w_nb1;
    float acc = 0.0;
    uint i = lane * 4u;
    for (; i + 3u < p.ne0; i += 4u * lanes) {
        uint xo = p.x_off + i;
        acc += dot(dq4(WTYPE, ro, i), vec4(x[xo], x[xo + 1u], x[xo + 2u], x[xo + 3u]));
    }
    for (; i < p.ne0; i++) acc += dq(WTYPE, ro, i) * x[p.x_off + i]; // F32/F16/BF16 tail (ne0 % 4)
    return acc;
}

void put(uint r, float v) {
    if (p.has_bias != 0u) v += bias[p.b_off + r];
    o[p.o_off + r] = v;
}

#ifdef USE_SUBGROUP
void main() {
    uint r0 = wg_linear() * ROWS;
    for (uint r = r0 + gl_SubgroupID; r < min(r0 + ROWS, p.rows); r += gl_NumSubgroups) {
        float s = subgroupAdd(row_dot(r, gl_SubgroupInvocationID, gl_SubgroupSize));
        if (subgroupElect()) put(r, s);
    }
}
#else
shared float part[BLOCK];
void main() {
    const uint lanes = BLOCK / ROWS;
    uint tid = gl_LocalInvocationID.x, lane = tid % lanes;
    uint r = wg_linear() * ROWS + tid / lanes;
    part[tid] = r < p.rows ? row_dot(r, lane, lanes) : 0.0;
    barrier();
    for (uint s = lanes / 2u; s > 0u; s >>= 1) {
        if (lane < s) part[tid] += part[tid + s];
        barrier();
    }
    if (lane == 0u && r < p.rows) put(r, part[tid]);
}
#endif
