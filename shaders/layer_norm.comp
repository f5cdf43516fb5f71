// layer_norm.comp - the shared-memory-reduction variant of layer_norm.glsl (any Vulkan 1.2 device).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "layer_norm.glsl"
