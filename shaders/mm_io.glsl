// mm_io.glsl - the bindings and push constants matmul.glsl and matvec.glsl
// share (the host fills one struct for both, vk_backend.c), and the weight
// decoders of common.glsl reading binding 0.
layout(std430, binding = 0) readonly buffer Wb { uint w[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) readonly buffer Bb { float bias[]; };
layout(std430, binding = 3) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P {
    uint w_off, w_nb1, ne0, rows, x_off, x_nb1, n_tok, b_off, o_off, o_nb1, type, has_bias;
} p;
#define WBUF w
#define WBIND 0
#include "common.glsl"
