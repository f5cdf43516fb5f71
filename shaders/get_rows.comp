// get_rows.comp - get_rows.glsl reading 16-bit and 8-bit data out of 32-bit words (any Vulkan 1.2 device).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "get_rows.glsl"
