// kv_store.comp - pool row slots[t] = src row t, converted to the pool type
// (F32, or F16 two elements per 32-bit word: rows of an even length).
// One invocation per destination word.
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Pb { uint pool[]; };
layout(std430, binding = 1) readonly buffer Sb { float src[]; };
layout(std430, binding = 2) readonly buffer Lb { int slots[]; };
layout(push_constant) uniform P {
    uint p_off, p_nb1, s_off, s_nb1, ne0, n, type, sl_off;
} p;

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    uint words = p.type == 0u ? p.ne0 : p.ne0 / 2u;
    if (id >= words * p.n) return;
    uint t = id / words, wi = id % words;
    uint dst = (p.p_off + uint(slots[p.sl_off + t]) * p.p_nb1) / 4u + wi;
    uint so = p.s_off + t * p.s_nb1;
    if (p.type == 0u) pool[dst] = floatBitsToUint(src[so + wi]);
    else pool[dst] = packHalf2x16(vec2(src[so + 2u * wi], src[so + 2u * wi + 1u]));
}
