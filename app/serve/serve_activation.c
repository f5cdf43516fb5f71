/*
 * serve_activation.c - systemd socket activation for `hearth serve`: when
 * started by systemd (hearth.socket) or systemd-socket-activate, the
 * listening socket is passed as fd 3 with LISTEN_PID = our pid and
 * LISTEN_FDS = 1 (sd_listen_fds(3) protocol, implemented here without
 * libsystemd). serve_http_start (serve_http.c) serves on that fd instead of
 * creating its own Unix socket; the socket stays systemd's (never unlinked).
 * The variables are unset after reading so child processes do not inherit
 * them.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/serve/serve.h"

int serve_activated_fd(void) {
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (!pid || !n) return -1;
    int ok = strtol(pid, NULL, 10) == (long)getpid() && strtol(n, NULL, 10) >= 1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!ok) return -1;
    struct stat st;
    if (fstat(3, &st) != 0 || !S_ISSOCK(st.st_mode)) return -1;
    fcntl(3, F_SETFD, FD_CLOEXEC);
    return 3;
}
