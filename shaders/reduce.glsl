// reduce.glsl - workgroup-wide sum and max of one float per invocation, for a
// 1-D workgroup of WG (a power of two) invocations. Included by the shader
// bodies (*.glsl); the _sg.comp wrapper of a shader defines USE_SUBGROUP.
//   USE_SUBGROUP: subgroupAdd/subgroupMax (GL_KHR_shader_subgroup_arithmetic),
//     then one shared slot per subgroup; two barriers whatever the size.
//   otherwise: a shared-memory tree, log2(WG) + 2 barriers.
// Invariant: every invocation of the workgroup calls them in uniform control
// flow (they contain barriers) and all receive the same result; the shared
// scratch is free again when they return.
// Every .comp depends on every .glsl in the build (cmake/backends.cmake).
#ifdef USE_SUBGROUP
shared float red_part[WG];
float wg_sum(float v) {
    float s = subgroupAdd(v);
    if (subgroupElect()) red_part[gl_SubgroupID] = s;
    barrier();
    float t = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) t += red_part[i];
    barrier();
    return t;
}
float wg_max(float v) {
    float s = subgroupMax(v);
    if (subgroupElect()) red_part[gl_SubgroupID] = s;
    barrier();
    float t = red_part[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) t = max(t, red_part[i]);
    barrier();
    return t;
}
#else
shared float red_part[WG];
float wg_sum(float v) {
    uint tid = gl_LocalInvocationID.x;
    red_part[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red_part[tid] += red_part[tid + s];
        barrier();
    }
    float t = red_part[0];
    barrier();
    return t;
}
float wg_max(float v) {
    uint tid = gl_LocalInvocationID.x;
    red_part[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red_part[tid] = max(red_part[tid], red_part[tid + s]);
        barrier();
    }
    float t = red_part[0];
    barrier();
    return t;
}
#endif
