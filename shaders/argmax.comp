// argmax.comp - ids[r] = index of the largest value of F32 row r, the first
// one on ties, NaNs never chosen (0 when the whole row is NaN): the contract
// of the backend argmax op (backends/backend.h), same as hearth_argmax.
// One workgroup of 64 per row: each invocation scans a strided slice keeping
// its best (value, index), then a shared-memory tree keeps the better pair
// (larger value, or equal value and smaller index) -- so the result does not
// depend on the scan order.
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) writeonly buffer Ib { uint ids[]; };
layout(push_constant) uniform P {
    uint x_off, x_nb1, ne0, rows, i_off;
} p;
shared float sv[64];
shared uint si[64];

bool better(float v, uint i, float bv, uint bi) { return v > bv || (v == bv && i < bi); }

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (r >= p.rows) return;
    uint tid = gl_LocalInvocationID.x;
    float bv = uintBitsToFloat(0xff800000u); // -inf
    uint bi = 0xffffffffu;                    // none yet: loses to any real element
    uint xo = p.x_off + r * p.x_nb1;
    for (uint i = tid; i < p.ne0; i += 64u) {
        float v = x[xo + i];
        if (!isnan(v) && better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    sv[tid] = bv;
    si[tid] = bi;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s && better(sv[tid + s], si[tid + s], sv[tid], si[tid])) {
            sv[tid] = sv[tid + s];
            si[tid] = si[tid + s];
        }
        barrier();
    }
    if (tid == 0u) ids[p.i_off + r] = si[0] == 0xffffffffu ? 0u : si[0];
}
