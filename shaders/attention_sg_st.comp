// attention_sg_st.comp - attention.glsl with subgroup arithmetic and 16/8-bit storage views
// (both _sg.comp and _st.comp apply).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#define STORAGE16 1
#define STORAGE8 1
#define USE_SUBGROUP 1
#include "attention.glsl"
