/*
 * threadpool.h - persistent worker threads for the CPU backend.
 *
 * One pool per CPU backend (no globals: two engines = two pools). A job is a
 * function called once per thread with (ith, nth); the caller's thread is
 * thread 0 and runs its share too. Workers spin briefly (yielding the CPU
 * every iteration, so a busy 2-vCPU machine does not collapse) and then sleep
 * on a condition variable. Jobs are dispatched from one thread at a time.
 */
#ifndef HEARTH_THREADPOOL_H
#define HEARTH_THREADPOOL_H

typedef struct hearth_threadpool hearth_threadpool;
typedef void (*hearth_job_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (including the caller). Returns NULL on failure. */
hearth_threadpool *hearth_threadpool_create(int n_threads);
void hearth_threadpool_free(hearth_threadpool *p);
int hearth_threadpool_size(const hearth_threadpool *p);
/* Run fn(arg, i, nth) for i in [0, nth) and wait for all. nth <= size. */
void hearth_threadpool_run(hearth_threadpool *p, hearth_job_fn fn, void *arg, int nth);

#endif
