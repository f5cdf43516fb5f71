// matvec.comp - the shared-memory-reduction variant of matvec.glsl (any Vulkan 1.2 device).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "matvec.glsl"
