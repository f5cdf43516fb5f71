// kv_store.glsl - pool row slots[t] = src row t, converted to the pool type:
//   F32 and F16 (two elements per 32-bit word: rows of an even length, word
//   aligned): one invocation per destination word;
//   Q8_0 (rows of whole 32-blocks): one invocation per block, quantized as the
//   CPU backend's activation quantizer does (d = amax/127 stored as F16,
//   q = rint(x * 127/amax), ties to even). A 34-byte block shares its first
//   and last words with its neighbours (and with other rows), so its words
//   are written with atomicAnd/atomicOr on just its own bytes; with STORAGE8
//   (kv_store_st.comp) its 34 bytes are stored through a uint8_t view of the
//   pool instead (byte stores need no atomics), the same bytes either way.
// Body of kv_store.comp and kv_store_st.comp.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Pb { uint pool[]; };
#ifdef STORAGE8
layout(std430, binding = 0) writeonly buffer PbU8 { uint8_t pool_u8[]; };
#endif
layout(std430, binding = 1) readonly buffer Sb { float src[]; };
layout(std430, binding = 2) readonly buffer Lb { int slots[]; };
layout(push_constant) uniform P {
    uint p_off, p_nb1, s_off, s_nb1, ne0, n, type, sl_off;
} p;

void store_q8_0(uint id) {
    uint nb = p.ne0 >> 5;
    uint t = id / nb, b = id % nb;
    uint so = p.s_off + t * p.s_nb1 + 32u * b;
    float amax = 0.0;
    for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(src[so + j]));
    float id_ = amax != 0.0 ? 127.0 / amax : 0.0;
    uint bytes[34];
    uint dh = packHalf2x16(vec2(amax / 127.0, 0.0));
    bytes[0] = dh & 0xffu;
    bytes[1] = (dh >> 8) & 0xffu;
    for (uint j = 0u; j < 32u; j++) bytes[2u + j] = uint(int(roundEven(src[so + j] * id_))) & 0xffu;
    uint dst = p.p_off + uint(slots[p.sl_off + t]) * p.p_nb1 + 34u * b;
#ifdef STORAGE8
    for (uint k = 0u; k < 34u; k++) pool_u8[dst + k] = uint8_t(bytes[k]);
#else
    for (uint wd = dst >> 2; wd <= (dst + 33u) >> 2; wd++) {
        uint mask = 0u, val = 0u;
        for (uint k = 0u; k < 4u; k++) {
            uint bi = wd * 4u + k;
            if (bi >= dst && bi < dst + 34u) {
                mask |= 0xffu << (8u * k);
                val |= bytes[bi - dst] << (8u * k);
            }
        }
        if (mask == 0xffffffffu) {
            pool[wd] = val;
        } else {
            atomicAnd(pool[wd], ~mask);
            atomicOr(pool[wd], val);
        }
    }
#endif
}

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (p.type == 8u) {
        if (id < (p.ne0 >> 5) * p.n) store_q8_0(id);
        return;
    }
    uint words = p.type == 0u ? p.ne0 : p.ne0 / 2u;
    if (id >= words * p.n) return;
    uint t = id / words, wi = id % words;
    uint dst = (p.p_off + uint(slots[p.sl_off + t]) * p.p_nb1) / 4u + wi;
    uint so = p.s_off + t * p.s_nb1;
    if (p.type == 0u) pool[dst] = floatBitsToUint(src[so + wi]);
    else pool[dst] = packHalf2x16(vec2(src[so + 2u * wi], src[so + 2u * wi + 1u]));
}
