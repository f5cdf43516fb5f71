/*
 * cpu_features.c - CPUID probing; see cpu_features.h.
 */
#include "cpu_features.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define HEARTH_X86 1
#endif
#if HEARTH_HAVE_NEON_KERNELS
#include "backends/cpu/neon/neon_kernels.h"
#endif

static hearth_cpu_caps g_caps;
static hearth_cpu_level g_level;
static char g_desc[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef HEARTH_X86
static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static void detect(void) {
#ifdef HEARTH_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        bool osxsave = c & (1u << 27);
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
        g_caps.fma = (c & (1u << 12)) && ymm;
        g_caps.f16c = (c & (1u << 29)) && ymm;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            g_caps.avx2 = (b & (1u << 5)) && ymm;
            g_caps.avx512f = (b & (1u << 16)) && zmm;
            g_caps.avx512bw = (b & (1u << 30)) && zmm;
            g_caps.avx512vl = (b & (1u << 31)) && zmm;
            g_caps.avx512vnni = (c & (1u << 11)) && zmm;
        }
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
            g_caps.avxvnni = (a & (1u << 4)) && ymm;
            g_caps.avx512bf16 = (a & (1u << 5)) && zmm;
        }
    }
#endif
    g_level = HEARTH_CPU_SCALAR;
    if (g_caps.avx2 && g_caps.fma && g_caps.f16c) g_level = HEARTH_CPU_AVX2;
    if (g_level == HEARTH_CPU_AVX2 && g_caps.avx512f && g_caps.avx512bw && g_caps.avx512vl) g_level = HEARTH_CPU_AVX512;
    const char *cap = getenv("HEARTH_CPU_ISA");
    if (cap) {
        hearth_cpu_level want = !strcmp(cap, "scalar") ? HEARTH_CPU_SCALAR
                                : !strcmp(cap, "avx2") ? HEARTH_CPU_AVX2
                                                       : HEARTH_CPU_AVX512;
        if (want < g_level) g_level = want;
    }
    static const char *names[] = {"scalar", "avx2", "avx512"};
    snprintf(g_desc, sizeof g_desc, "%s%s%s%s%s%s", names[g_level], g_caps.fma ? " fma" : "",
             g_caps.f16c ? " f16c" : "", g_caps.avx512vnni ? " avx512vnni" : "", g_caps.avx512bf16 ? " avx512bf16" : "",
             g_caps.avxvnni ? " avxvnni" : "");
}

const hearth_cpu_caps *hearth_cpu_caps_get(void) {
    pthread_once(&g_once, detect);
    return &g_caps;
}
hearth_cpu_level hearth_cpu_level_get(void) {
    pthread_once(&g_once, detect);
    return g_level;
}
const char *hearth_cpu_features(void) {
    pthread_once(&g_once, detect);
#if HEARTH_HAVE_NEON_KERNELS
    /* arm64: CPUID says nothing; name the NEON family the dispatcher uses */
    static const char *neon_names[] = {"scalar", "neon", "neon dotprod"};
    return neon_names[hearth_cpu_neon_level()];
#else
    return g_desc;
#endif
}
