/*
 * threadpool.c - see threadpool.h.
 *
 * Protocol: the dispatcher publishes (fn, arg, nth), bumps `generation` and
 * wakes the workers. Worker i (1..size-1) runs its share if i < nth, then
 * decrements `pending`. The dispatcher runs share 0 and waits until
 * `pending` reaches 0. Workers notice a new generation by spinning for a
 * short while (sched_yield each round) and then block on `wake`.
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define SPIN_ROUNDS 2000

struct hearth_threadpool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint generation;
    atomic_int pending;
    atomic_bool stop;
    int sleepers;
    hearth_job_fn fn;
    void *arg;
    int nth;
};

typedef struct worker_arg {
    hearth_threadpool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *wa = p;
    hearth_threadpool *pool = wa->pool;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int spin = 0; gen == seen && spin < SPIN_ROUNDS && !atomic_load(&pool->stop); spin++) {
            sched_yield();
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (gen == seen && !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->mu);
            pool->sleepers++;
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mu);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        if (ith < pool->nth) pool->fn(pool->arg, ith, pool->nth);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

hearth_threadpool *hearth_threadpool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    hearth_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->size = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads, sizeof *p->threads);
        if (!p->threads) {
            free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) *wa = (worker_arg){p, i};
            if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa)) {
                free(wa);
                p->size = i; /* only threads 1..i-1 exist */
                hearth_threadpool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void hearth_threadpool_free(hearth_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->size; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int hearth_threadpool_size(const hearth_threadpool *p) { return p->size; }

void hearth_threadpool_run(hearth_threadpool *p, hearth_job_fn fn, void *arg, int nth) {
    if (nth > p->size) nth = p->size;
    if (nth <= 1 || p->size == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->nth = nth;
    atomic_store(&p->pending, p->size - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, nth);
    for (int spin = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spin < SPIN_ROUNDS; spin++)
        sched_yield();
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
