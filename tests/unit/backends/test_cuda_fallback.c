/*
 * test_cuda_fallback.c - the CUDA backend's absence is handled cleanly.
 *
 * Owner: the CUDA backend (backends/cuda). CI builds the CUDA backend (nvcc is
 * there) but has no GPU: `--backend cuda` must fail with one clear line and a
 * backend/unsupported status, and `auto` must give the CPU backend. In a build
 * without CUDA, asking for it names the missing backend. On a machine with a
 * GPU the CUDA backend is created instead and the test checks its info().
 */
#include "backends/backend_impl.h"
#include "test.h"

static void test_auto_falls_back(void) {
    hearth_backend_config cfg = {"auto", 1};
    hearth_error err = {0};
    hearth_backend *b = hearth_backend_create(&cfg, &err);
    REQUIRE(b != NULL);
    hearth_backend_info bi;
    b->ops->info(b, &bi);
#ifdef HEARTH_HAVE_CUDA
    hearth_backend_config cu = {"cuda", 1};
    hearth_error e2 = {0};
    hearth_backend *g = hearth_backend_create(&cu, &e2);
    if (g) { /* a GPU is present: auto must have picked it */
        CHECKF(!strncmp(bi.name, "cuda", 4), "auto chose %s with a CUDA device present", bi.name);
        hearth_backend_free(g);
    } else {
        CHECKF(!strcmp(bi.name, "cpu"), "auto chose %s without a CUDA device", bi.name);
    }
#else
    CHECKF(!strcmp(bi.name, "cpu") || !strncmp(bi.name, "vulkan", 6), "auto chose %s", bi.name);
#endif
    hearth_backend_free(b);
}

static void test_named_cuda(const char *name) {
    hearth_backend_config cfg = {name, 1};
    hearth_error err = {0};
    hearth_backend *b = hearth_backend_create(&cfg, &err);
#ifdef HEARTH_HAVE_CUDA
    CHECK(strstr(hearth_backend_list(), "cuda") != NULL);
    if (b) {
        hearth_backend_info bi;
        b->ops->info(b, &bi);
        printf("%s: device present: %s (%s)\n", name, bi.name, bi.device);
        CHECK(!strncmp(bi.name, "cuda:", 5));
        CHECK(!bi.host_visible);
        CHECK(b->ops->supports_type(b, HEARTH_Q4_0));
        CHECK(b->ops->supports_type(b, HEARTH_Q5_1));
        CHECK(!b->ops->supports_type(b, HEARTH_Q8_K)); /* an activation format, never a weight */
        hearth_backend_free(b);
        return;
    }
    printf("%s: %s\n", name, err.msg);
    CHECKF(err.code == HEARTH_ERR_BACKEND, "code %d", err.code);
    CHECKF(!strncmp(err.msg, "cuda: no usable CUDA device (cudaGetDeviceCount: ", 49), "message: %s",
           err.msg);
    CHECKF(strchr(err.msg, '\n') == NULL && err.msg[strlen(err.msg) - 1] == ')', "one line: %s", err.msg);
#else
    CHECK(b == NULL);
    CHECKF(err.code == HEARTH_ERR_UNSUPPORTED, "code %d", err.code);
    CHECKF(strstr(err.msg, "this build has no CUDA backend") != NULL, "message: %s", err.msg);
    CHECK(strstr(hearth_backend_list(), "cuda") == NULL);
#endif
}

int main(void) {
    test_named_cuda("cuda");
    test_named_cuda("cuda:0");
    test_auto_falls_back();
    return test_summary("cuda_fallback");
}
