/*
 * os.c - clocks, host memory and core counts (contract in os.h).
 */
#include "os.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double hearth_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double hearth_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double hearth_wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int hearth_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* MemAvailable from /proc/meminfo (free memory plus what the kernel can
 * reclaim, page cache included: a model file just read counts as available),
 * bytes; 0 when the kernel does not report it. */
static uint64_t meminfo_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

void hearth_host_memory(uint64_t *total, uint64_t *avail) {
    long pages = sysconf(_SC_PHYS_PAGES), av = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    *total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    *avail = meminfo_available();
    if (!*avail) *avail = av > 0 && psz > 0 ? (uint64_t)av * (uint64_t)psz : 0; /* free pages only */
}

int hearth_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; fall back to online CPUs. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return hearth_online_cpus();
    char line[256];
    int phys = -1, pairs[1024][2], n_pairs = 0;
    while (fgets(line, sizeof line, f)) {
        int v;
        if (sscanf(line, "physical id : %d", &v) == 1)
            phys = v;
        else if (sscanf(line, "core id : %d", &v) == 1) {
            bool seen = false;
            for (int i = 0; i < n_pairs; i++)
                if (pairs[i][0] == phys && pairs[i][1] == v) seen = true;
            if (!seen && n_pairs < 1024) {
                pairs[n_pairs][0] = phys;
                pairs[n_pairs][1] = v;
                n_pairs++;
            }
        }
    }
    fclose(f);
    if (n_pairs <= 0) return hearth_online_cpus();
    return n_pairs;
}
