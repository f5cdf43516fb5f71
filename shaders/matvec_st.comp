// matvec_st.comp - matvec.glsl reading F16 data through 16-bit and int8 quants through 8-bit
// storage-buffer views (used when the device has storageBuffer16BitAccess and
// storageBuffer8BitAccess); arithmetic stays F32.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#define STORAGE16 1
#define STORAGE8 1
#include "matvec.glsl"
