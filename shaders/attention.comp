// attention.comp - the shared-memory-reduction variant of attention.glsl (any Vulkan 1.2 device).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "attention.glsl"
