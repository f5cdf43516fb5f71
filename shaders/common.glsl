// common.glsl - helpers included by the Hearth compute shaders (not compiled alone).
// Weights and KV pools are bound as arrays of 32-bit words and addressed in
// bytes, so quant blocks (18..210 bytes, 2-byte aligned, rarely word aligned)
// are read in place. Type numbers and block layouts are ggml's
// (runtime/dtype.h); each decoder below computes the same float expression,
// in the same order, as the reference to_float in runtime/dtype.c (`precise`
// keeps the compiler from fusing a*b-c into an fma), so get_rows is bit-exact
// with the CPU backend.
// The includer defines WBUF, the uint[] array the reads go to, and WBIND, its
// binding. The _st.comp wrappers also define
//   STORAGE16 (GL_EXT_shader_16bit_storage): halves and BF16 are loaded
//     through float16_t / f16vec2 / uint16_t views of the same binding;
//   STORAGE8 (GL_EXT_shader_8bit_storage): quant bytes through int8_t /
//     i8vec2 / uint8_t views;
// otherwise each read is a 32-bit word load plus shifts (any device). Either
// way the value is widened to 32 bits at once and all arithmetic is F32 (or
// int32): a 16-bit load gives the very same number, so every variant returns
// bit-identical results.
// Every .comp depends on every .glsl in the build (cmake/backends.cmake).
#define T_F32 0u
#define T_F16 1u
#define T_Q4_0 2u
#define T_Q4_1 3u
#define T_Q5_0 6u
#define T_Q5_1 7u
#define T_Q8_0 8u
#define T_Q2_K 10u
#define T_Q3_K 11u
#define T_Q4_K 12u
#define T_Q5_K 13u
#define T_Q6_K 14u
#define T_BF16 30u
#define WG 64u
// The weight type of a typed pipeline (get_rows, matmul, matvec): one
// pipeline per type, so the decoders of the other types compile away.
layout(constant_id = 2) const uint WTYPE = 0u;

#ifdef STORAGE16
layout(std430, binding = WBIND) readonly buffer WbH { float16_t w_h[]; };    // byte o: w_h[o >> 1]
layout(std430, binding = WBIND) readonly buffer WbH2 { f16vec2 w_h2[]; };    // byte o: w_h2[o >> 2]
layout(std430, binding = WBIND) readonly buffer WbU16 { uint16_t w_u16[]; }; // BF16
#endif
#ifdef STORAGE8
layout(std430, binding = WBIND) readonly buffer WbU8 { uint8_t w_u8[]; };
layout(std430, binding = WBIND) readonly buffer WbI8 { int8_t w_i8[]; };
layout(std430, binding = WBIND) readonly buffer WbI82 { i8vec2 w_i82[]; }; // byte o: w_i82[o >> 1]
#endif

uint rd_byte(uint o) {
#ifdef STORAGE8
    return uint(w_u8[o]);
#else
    return (WBUF[o >> 2] >> ((o & 3u) * 8u)) & 0xffu;
#endif
}
int rd_sbyte(uint o) {
#ifdef STORAGE8
    return int(w_i8[o]);
#else
    return int(rd_byte(o) << 24) >> 24;
#endif
}
// Little-endian 32 bits at byte offset o (2-byte aligned).
uint rd_u32(uint o) {
    uint s = (o & 3u) * 8u;
    uint lo = WBUF[o >> 2];
    return s == 0u ? lo : (lo >> s) | (WBUF[(o >> 2) + 1u] << (32u - s));
}
// The 4 signed bytes at byte offset o (2-byte aligned), first byte in x.
ivec4 rd_sbyte4(uint o) {
#ifdef STORAGE8
    return ivec4(ivec2(w_i82[o >> 1]), ivec2(w_i82[(o >> 1) + 1u]));
#else
    uint w = rd_u32(o);
    return ivec4(int(w << 24) >> 24, int(w << 16) >> 24, int(w << 8) >> 24, int(w) >> 24);
#endif
}
// IEEE half at byte offset o (2-byte aligned).
float rd_half(uint o) {
#ifdef STORAGE16
    return float(w_h[o >> 1]);
#else
    uint x = WBUF[o >> 2];
    return unpackHalf2x16((o & 2u) != 0u ? (x >> 16) : x).x;
#endif
}
// The two halves of the word at byte offset o (4-byte aligned).
vec2 rd_half2(uint o) {
#ifdef STORAGE16
    return vec2(w_h2[o >> 2]);
#else
    return unpackHalf2x16(WBUF[o >> 2]);
#endif
}

// 6-bit scale (x) and min (y) of sub-block j (0..7) of a Q4_K/Q5_K block whose
// 12 scale bytes start at byte s (hearth_kquant_scale_min).
uvec2 kq_scale_min(uint s, uint j) {
    if (j < 4u) return uvec2(rd_byte(s + j) & 63u, rd_byte(s + j + 4u) & 63u);
    uint a = rd_byte(s + j + 4u);
    return uvec2((a & 15u) | ((rd_byte(s + j - 4u) >> 6) << 4), (a >> 4) | ((rd_byte(s + j) >> 6) << 4));
}

// Element j (0..255) of the 256-element K-quant block at byte bo.
float dq_k(uint type, uint bo, uint j) {
    if (type == T_Q2_K) { // scales[16] qs[64] d dmin
        uint hf = j >> 7, w = j & 127u, sg = w >> 5, part = (w >> 4) & 1u;
        uint sc = rd_byte(bo + hf * 8u + sg * 2u + part);
        uint q = (rd_byte(bo + 16u + hf * 32u + part * 16u + (w & 15u)) >> (2u * sg)) & 3u;
        float dl = rd_half(bo + 80u) * float(sc & 15u), ml = rd_half(bo + 82u) * float(sc >> 4);
        precise float y = dl * float(q) - ml;
        return y;
    }
    if (type == T_Q3_K) { // hmask[32] qs[64] scales[12] d
        uint hf = j >> 7, w = j & 127u, sg = w >> 5, l = w & 31u, is = hf * 8u + sg * 2u + (l >> 4);
        uint lo = is < 8u ? rd_byte(bo + 96u + is) & 15u : rd_byte(bo + 96u + is - 8u) >> 4;
        uint hi = (rd_byte(bo + 104u + (is & 3u)) >> (2u * (is >> 2))) & 3u;
        float dl = rd_half(bo + 108u) * float(int(lo | (hi << 4)) - 32);
        int q = int((rd_byte(bo + 32u + hf * 32u + l) >> (2u * sg)) & 3u);
        if ((rd_byte(bo + l) & (1u << (hf * 4u + sg))) == 0u) q -= 4;
        return dl * float(q);
    }
    if (type == T_Q4_K || type == T_Q5_K) { // d dmin scales[12] (qh[32]) qs[128]
        uint ch = j >> 6, hi = (j >> 5) & 1u, l = j & 31u;
        uvec2 sm = kq_scale_min(bo + 4u, 2u * ch + hi);
        uint qs = type == T_Q4_K ? 16u : 48u;
        uint q = (rd_byte(bo + qs + ch * 32u + l) >> (4u * hi)) & 15u;
        if (type == T_Q5_K) q += ((rd_byte(bo + 16u + l) >> (2u * ch + hi)) & 1u) << 4;
        float dl = rd_half(bo) * float(sm.x), ml = rd_half(bo + 2u) * float(sm.y);
        precise float y = dl * float(q) - ml;
        return y;
    }
    // Q6_K: ql[128] qh[64] scales[16] (int8) d
    uint hf = j >> 7, w = j & 127u, qt = w >> 5, l = w & 31u;
    uint nib = (rd_byte(bo + hf * 64u + l + 32u * (qt & 1u)) >> (4u * (qt >> 1))) & 15u;
    uint h = (rd_byte(bo + 128u + hf * 32u + l) >> (2u * qt)) & 3u;
    float dl = rd_half(bo + 208u) * float(rd_sbyte(bo + 192u + hf * 8u + (l >> 4) + 2u * qt));
    return dl * float(int(nib | (h << 4)) - 32);
}

// Element i of the weight row starting at byte ro, as float.
float dq(uint type, uint ro, uint i) {
    if (type == T_F32) return uintBitsToFloat(WBUF[(ro >> 2) + i]);
    if (type == T_F16) return rd_half(ro + 2u * i);
    if (type == T_BF16) {
        uint o = ro + 2u * i;
#ifdef STORAGE16
        return uintBitsToFloat(uint(w_u16[o >> 1]) << 16);
#else
        uint x = WBUF[o >> 2];
        return uintBitsToFloat((o & 2u) != 0u ? (x & 0xffff0000u) : (x << 16));
#endif
    }
    if (type >= T_Q2_K) return dq_k(type, ro + (i >> 8) * (type == T_Q2_K ? 84u : type == T_Q3_K ? 110u : type == T_Q4_K ? 144u : type == T_Q5_K ? 176u : 210u), i & 255u);
    uint b = i >> 5, j = i & 31u;
    if (type == T_Q8_0) {
        uint bo = ro + b * 34u;
        return rd_half(bo) * float(rd_sbyte(bo + 2u + j));
    }
    // 4/5-bit 32-blocks: element j in byte j%16, low nibble for j<16; 5th bit = bit j of qh.
    uint sz = type == T_Q4_0 ? 18u : type == T_Q4_1 ? 20u : type == T_Q5_0 ? 22u : 24u;
    uint bo = ro + b * sz;
    uint qs = type == T_Q4_0 ? 2u : type == T_Q4_1 ? 4u : type == T_Q5_0 ? 6u : 8u;
    uint by = rd_byte(bo + qs + (j & 15u));
    uint q = j < 16u ? (by & 15u) : (by >> 4);
    if (type == T_Q5_0 || type == T_Q5_1) q |= ((rd_u32(bo + (type == T_Q5_0 ? 2u : 4u)) >> j) & 1u) << 4;
    if (type == T_Q4_0) return (float(int(q)) - 8.0) * rd_half(bo);
    if (type == T_Q5_0) return float(int(q) - 16) * rd_half(bo);
    precise float y = float(q) * rd_half(bo) + rd_half(bo + 2u); // Q4_1 / Q5_1: q*d + m
    return y;
}

// Elements i..i+3 of a row (i % 4 == 0 and i + 3 < ne0 for F32/F16/BF16; any
// block type: blocks hold multiples of 4). Shares the block header reads.
vec4 dq4(uint type, uint ro, uint i) {
    if (type == T_F32) {
        uint o = (ro >> 2) + i;
        return vec4(uintBitsToFloat(WBUF[o]), uintBitsToFloat(WBUF[o + 1u]), uintBitsToFloat(WBUF[o + 2u]),
                    uintBitsToFloat(WBUF[o + 3u]));
    }
    if (type == T_F16 && (ro & 3u) == 0u) {
        uint o = ro + 2u * i;
        return vec4(rd_half2(o), rd_half2(o + 4u));
    }
    if (type == T_Q8_0) {
        uint bo = ro + (i >> 5) * 34u;
        return rd_half(bo) * vec4(rd_sbyte4(bo + 2u + (i & 31u)));
    }
    if (type == T_Q4_0) {
        uint j = i & 31u, bo = ro + (i >> 5) * 18u, w = rd_u32(bo + 2u + (j & 15u)) >> (j < 16u ? 0u : 4u);
        uvec4 q = uvec4(w & 15u, (w >> 8) & 15u, (w >> 16) & 15u, (w >> 24) & 15u);
        return (vec4(q) - 8.0) * rd_half(bo);
    }
    return vec4(dq(type, ro, i), dq(type, ro, i + 1u), dq(type, ro, i + 2u), dq(type, ro, i + 3u));
}

// Linear workgroup id of a 2-D grid (large row counts exceed one dimension).
uint wg_linear() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
