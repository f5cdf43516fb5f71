// get_rows.glsl - out[i] = dequant(w row ids[i]); one workgroup per output row
// (body of get_rows.comp and get_rows_st.comp). Also serves get_rows_f32
// (type F32: a gather of activation rows).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Wb { uint w[]; };
layout(std430, binding = 1) readonly buffer Ib { int ids[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint w_off, w_nb1, ne0, type, i_off, o_off, o_nb1, n; // type: informational (WTYPE decodes)
} p;
#define WBUF w
#define WBIND 0
#include "common.glsl"

void main() {
    uint r = wg_linear();
    if (r >= p.n) return;
    uint ro = p.w_off + uint(ids[p.i_off + r]) * p.w_nb1;
    for (uint i = gl_LocalInvocationID.x; i < p.ne0; i += WG) o[p.o_off + r * p.o_nb1 + i] = dq(WTYPE, ro, i);
}
