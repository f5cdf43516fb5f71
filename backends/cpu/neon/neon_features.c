/*
 * neon_features.c - which arm64 kernel family this CPU runs, and the choice
 * of family per type that the dispatcher (cpu_quants_ref.c) asks for.
 * Detection reads the kernel's hardware capabilities once (getauxval), then
 * applies HEARTH_CPU_ISA: "scalar" switches the NEON families off, "neon"
 * keeps plain NEON but not SDOT. The result is cached (pthread_once).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "neon_kernels.h"

#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

static hearth_neon_level g_level;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void neon_detect(void) {
    const unsigned long hw = getauxval(AT_HWCAP);
    hearth_neon_level level = HEARTH_NEON_OFF;
    if (hw & HWCAP_ASIMD) level = (hw & HWCAP_ASIMDDP) ? HEARTH_NEON_DOTPROD : HEARTH_NEON_PLAIN;
    const char *cap = getenv("HEARTH_CPU_ISA");
    if (cap && !strcmp(cap, "scalar")) level = HEARTH_NEON_OFF;
    if (cap && !strcmp(cap, "neon") && level > HEARTH_NEON_PLAIN) level = HEARTH_NEON_PLAIN;
    g_level = level;
}

hearth_neon_level hearth_cpu_neon_level(void) {
    pthread_once(&g_once, neon_detect);
    return g_level;
}

hearth_vec_dot_fn hearth_cpu_vec_dot_neon_best(hearth_dtype weight_type) {
    const hearth_neon_level level = hearth_cpu_neon_level();
    hearth_vec_dot_fn f = NULL;
    if (level >= HEARTH_NEON_DOTPROD) f = hearth_cpu_vec_dot_neon_dotprod(weight_type);
    if (!f && level >= HEARTH_NEON_PLAIN) f = hearth_cpu_vec_dot_neon(weight_type);
    return f;
}

/* Both families' tiles are bit-identical to either family's vec_dot, so the
 * GEMM family need not match the vec_dot pick; the faster one is taken. */
hearth_gemm_fn hearth_cpu_gemm_neon_best(hearth_dtype weight_type, int *max_rows, int *max_toks) {
    const hearth_neon_level level = hearth_cpu_neon_level();
    if (level >= HEARTH_NEON_DOTPROD) return hearth_cpu_gemm_neon_dotprod(weight_type, max_rows, max_toks);
    if (level >= HEARTH_NEON_PLAIN) return hearth_cpu_gemm_neon(weight_type, max_rows, max_toks);
    return NULL;
}

hearth_quantize_act_fn hearth_cpu_quantize_act_neon_best(hearth_dtype vec_dot_type) {
    return hearth_cpu_neon_level() >= HEARTH_NEON_PLAIN ? hearth_cpu_quantize_act_neon(vec_dot_type) : NULL;
}
