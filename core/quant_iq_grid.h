/*
 * quant_iq_grid.h - what the grid IQ quantizers (quant_iq2.c, quant_iq1.c)
 * share: ggml's rounding and limits, and the IQ1 row entry points that
 * quant_iq2.c's dispatcher calls. Internal to core/; the public API is
 * core/quant_iq2.h.
 * Invariant: hearth_iq_nint is ggml's nearest_int (round half to even via the
 * float mantissa, |v| < 2^22), which the searches depend on for their bytes.
 */
#ifndef HEARTH_QUANT_IQ_GRID_H
#define HEARTH_QUANT_IQ_GRID_H

#include <stdint.h>
#include <string.h>

#include "core/dtype_iq.h"
#include "core/quant_iq2.h"

#define IQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define IQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define IQ_EPS 1e-15f       /* ggml's GROUP_MAX_EPS */
#define IQ_EPS_IQ2_S 1e-8f  /* GROUP_MAX_EPS_IQ2_S */
#define IQ_EPS_IQ1_M 1e-7f  /* GROUP_MAX_EPS_IQ1_M */
#define IQ_EPS_IQ1_S 1e-12f /* GROUP_MAX_EPS_IQ1_S */

static inline int hearth_iq_nint(float v) {
    float b = v + 12582912.f;
    uint32_t u;
    memcpy(&u, &b, sizeof u);
    return (int)(u & 0x007FFFFF) - 0x00400000;
}

/* The IQ1 rows (quant_iq1.c); t is the IQ1 table set, qw may be NULL. */
void hearth_iq1_s_row(const hearth_iq2_tables *t, const float *x, block_iq1_s *y, int64_t n, const float *qw);
void hearth_iq1_m_row(const hearth_iq2_tables *t, const float *x, block_iq1_m *y, int64_t n, const float *qw);

#endif
