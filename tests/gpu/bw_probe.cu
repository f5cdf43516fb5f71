/*
 * bw_probe.cu - device-to-device copy bandwidth of one GPU (tests/gpu/run.sh).
 *
 * Owner: the CUDA backend (backends/cuda). Prints one line "bw_probe: <device>:
 * <GB/s> GB/s" where GB/s counts bytes read plus bytes written (2 x size per
 * copy), best of several cudaMemcpyAsync runs of a 1 GiB buffer (or a quarter
 * of free memory). That is the ceiling tg bandwidth is compared against.
 */
#include <cuda_runtime.h>
#include <stdio.h>

#define CK(x)                                                                           \
    do {                                                                                \
        cudaError_t e_ = (x);                                                           \
        if (e_ != cudaSuccess) {                                                        \
            fprintf(stderr, "bw_probe: %s: %s\n", #x, cudaGetErrorString(e_));          \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

int main(void) {
    cudaDeviceProp p;
    size_t fr = 0, tot = 0;
    CK(cudaGetDeviceProperties(&p, 0));
    CK(cudaMemGetInfo(&fr, &tot));
    size_t n = (size_t)1 << 30;
    if (n > fr / 4) n = fr / 4;
    void *a = NULL, *b = NULL;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float best = 1e30f;
    for (int i = 0; i < 8; i++) {
        CK(cudaEventRecord(e0));
        CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice));
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i > 0 && ms < best) best = ms; /* first run warms up */
    }
    printf("bw_probe: %s: %.1f GB/s (device-to-device copy, read+write, %zu MiB)\n", p.name,
           2.0 * (double)n / (best * 1e-3) / 1e9, n >> 20);
    return 0;
}
