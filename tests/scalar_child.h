/*
 * scalar_child.h - for the kernel tests (test_simd, test_gemm): re-run this
 * test binary as a child with HEARTH_CPU_ISA=scalar and "--scalar-child", so
 * the dispatcher's scalar override is checked in a fresh process (the ISA
 * level is detected once per process). Under qemu-user there is no binfmt to
 * re-exec through: HEARTH_TEST_NO_REEXEC makes it a no-op and the caller runs
 * --scalar-child itself. Include after test.h.
 */
#ifndef HEARTH_TEST_SCALAR_CHILD_H
#define HEARTH_TEST_SCALAR_CHILD_H

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h" /* REQUIRE, CHECKF */

static void test_scalar_override(const char *self) {
    if (getenv("HEARTH_TEST_NO_REEXEC")) {
        printf("HEARTH_TEST_NO_REEXEC: scalar override not re-run here\n");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HEARTH_CPU_ISA", "scalar", 1);
        execl("/proc/self/exe", self, "--scalar-child", (char *)NULL);
        execl(self, self, "--scalar-child", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "HEARTH_CPU_ISA=scalar child passed (status %d)",
           status);
}

#endif
