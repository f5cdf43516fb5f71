/*
 * cpu_features.h - what the CPU we run on can do (CPUID on x86-64), so the
 * CPU backend picks SIMD kernels at run time. Detection runs once and is
 * cached (thread-safe via pthread_once). HEARTH_CPU_ISA=scalar|avx2|avx512 in
 * the environment caps the level (for tests and comparisons).
 */
#ifndef HEARTH_CPU_FEATURES_H
#define HEARTH_CPU_FEATURES_H

#include <stdbool.h>

typedef struct hearth_cpu_caps {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni;
} hearth_cpu_caps;

typedef enum hearth_cpu_level { HEARTH_CPU_SCALAR = 0, HEARTH_CPU_AVX2 = 1, HEARTH_CPU_AVX512 = 2 } hearth_cpu_level;

const hearth_cpu_caps *hearth_cpu_caps_get(void);
/* Highest kernel level usable here (after the HEARTH_CPU_ISA cap). */
hearth_cpu_level hearth_cpu_level_get(void);
/* "avx512 (avx2 fma f16c avx512f ... )" */
const char *hearth_cpu_features(void);

#endif
