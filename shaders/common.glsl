// common.glsl - helpers included by the Hearth compute shaders (not compiled alone).
// Weights and KV pools are bound as arrays of 32-bit words and addressed in
// bytes, so quant blocks (18 or 34 bytes, not word aligned) are read in place
// without 8/16-bit storage features. Type numbers are ggml's (runtime/dtype.h).
// The includer defines WBUF: the uint[] array the reads go to.
#define T_F32 0u
#define T_F16 1u
#define T_Q4_0 2u
#define T_Q8_0 8u
#define WG 64u

uint rd_byte(uint o) { return (WBUF[o >> 2] >> ((o & 3u) * 8u)) & 0xffu; }
// IEEE half at byte offset o (2-byte aligned).
float rd_half(uint o) {
    uint x = WBUF[o >> 2];
    return unpackHalf2x16((o & 2u) != 0u ? (x >> 16) : x).x;
}
// Element i of the weight row starting at byte ro, as float (dtype.h layouts:
// q8_0 = {half d; int8 qs[32]}, q4_0 = {half d; uint8 qs[16]}, low nibbles first).
float dq(uint type, uint ro, uint i) {
    if (type == T_F32) return uintBitsToFloat(WBUF[(ro >> 2) + i]);
    if (type == T_F16) return rd_half(ro + 2u * i);
    uint b = i >> 5, j = i & 31u;
    if (type == T_Q8_0) {
        uint bo = ro + b * 34u;
        int q = int(rd_byte(bo + 2u + j) << 24) >> 24;
        return rd_half(bo) * float(q);
    }
    uint bo = ro + b * 18u;
    uint by = rd_byte(bo + 2u + (j & 15u));
    uint q = j < 16u ? (by & 15u) : (by >> 4);
    return (float(int(q)) - 8.0) * rd_half(bo);
}
// Linear workgroup id of a 2-D grid (large row counts exceed one dimension).
uint wg_linear() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
