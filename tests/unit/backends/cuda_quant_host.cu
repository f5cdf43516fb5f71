/*
 * cuda_quant_host.cu - the CUDA backend's weight decoders (backends/cuda/cuda_quant.h)
 * run on the host, for tests/unit/backends/test_cuda_quant.c.
 *
 * Owner: the CUDA backend (backends/cuda). Built into test_cuda_quant only when
 * HEARTH_HAVE_CUDA. Host code only: nothing here calls the CUDA runtime, so the
 * test runs on a machine without a GPU or a driver. Each function walks a row
 * the way the kernels do (dq8 on chunks of 8, dq1 on a plain-float tail, cq_q32
 * on whole 32-element blocks), so what the test compares is what the kernels
 * compute, minus the device-only loads (cq_load8's aligned path) and the F16
 * packing of the GEMM.
 */
#include "backends/cuda/cuda_quant.h"

#define TCQ_TYPES(X)                                                                                               \
    X(HEARTH_F32) X(HEARTH_F16) X(HEARTH_BF16) X(HEARTH_Q8_0) X(HEARTH_Q4_0) X(HEARTH_Q4_1) X(HEARTH_Q5_0)          \
        X(HEARTH_Q5_1) X(HEARTH_Q2_K) X(HEARTH_Q3_K) X(HEARTH_Q4_K) X(HEARTH_Q5_K) X(HEARTH_Q6_K)          \
        X(HEARTH_IQ4_NL) X(HEARTH_IQ4_XS)

template <int T> static void decode_row(const uint8_t *row, int64_t n, float *out) {
    const int64_t nch = n / 8;
    for (int64_t c = 0; c < nch; c++) dq8<T>(row, c * 8, out + c * 8);
    for (int64_t e = nch * 8; e < n; e++) out[e] = dq1<T>(row, e);
}

template <int T> static bool decode_q32(const uint8_t *blk, float out[32]) {
    if constexpr (!cq_is_q32(T)) {
        return false;
    } else {
        float q[32], d, m;
        cq_q32<T>(blk, q, &d, &m);
        for (int i = 0; i < 32; i++) out[i] = T == HEARTH_Q4_1 || T == HEARTH_Q5_1 ? cq_mul(q[i], d) + m : q[i] * d;
        return true;
    }
}

extern "C" {

bool tcq_supported(int t) { return cuda_type_supported(t); }

/* out[0..n) = the row of type t as k_get_rows decodes it; false if the helper
 * has no case for t (a type cuda_type_supported names must have one). */
bool tcq_decode_row(int t, const void *row, int64_t n, float *out) {
    switch (t) {
#define X(T)                                                                                                           \
    case T: decode_row<T>((const uint8_t *)row, n, out); return true;
        TCQ_TYPES(X)
#undef X
    default: return false;
    }
}

/* out[0..32) = one 32-element block of type t as the fast matvec decodes it;
 * false unless cq_is_q32(t). */
bool tcq_decode_q32(int t, const void *blk, float out[32]) {
    switch (t) {
#define X(T)                                                                                                           \
    case T: return decode_q32<T>((const uint8_t *)blk, out);
        TCQ_TYPES(X)
#undef X
    default: return false;
    }
}

bool tcq_is_q32(int t) { return cq_is_q32(t); }

} /* extern "C" */
