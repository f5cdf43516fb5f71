// layer_norm_sg.comp - the subgroup-arithmetic variant of layer_norm.glsl (used when the device
// reports ARITHMETIC subgroup operations in compute shaders).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define USE_SUBGROUP 1
#include "layer_norm.glsl"
