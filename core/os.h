/*
 * os.h - what the runtime asks of the operating system: clocks, memory, cores.
 *
 * Pure queries, no state, safe from any thread. The monotonic clock is for
 * durations (TTFT, ITL, timeouts); the wall clock for timestamps users see
 * (created fields, cache last-use times).
 */
#ifndef HEARTH_OS_H
#define HEARTH_OS_H

#include <stdint.h>

/* Monotonic time in milliseconds / microseconds since an arbitrary start. */
double hearth_now_ms(void);
double hearth_now_us(void);
/* Wall-clock time: seconds since the Unix epoch. */
double hearth_wall_seconds(void);
/* Host RAM: total and available bytes (MemAvailable: free plus reclaimable
 * page cache; the free pages where the kernel does not say; 0 if unknown). */
void hearth_host_memory(uint64_t *total, uint64_t *avail);
/* Online logical CPUs (at least 1). */
int hearth_online_cpus(void);
/* Physical core count (distinct core ids in /proc/cpuinfo; the online CPUs
 * when that cannot be read), for thread-count defaults. */
int hearth_physical_cores(void);

#endif
