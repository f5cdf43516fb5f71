// kv_store.comp - kv_store.glsl reading 16-bit and 8-bit data out of 32-bit words (any Vulkan 1.2 device).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kv_store.glsl"
