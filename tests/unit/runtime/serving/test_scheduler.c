/*
 * test_scheduler.c - the engine's scheduling policy as plain functions:
 * pages per sequence, admission (free slots, first come first served,
 * cancelled requests, KV pages with and without cached prefix pages, zero
 * free pages, a request larger than the pool), the split of the token budget
 * into decode tokens and prefill chunks, and the choice of whom to preempt.
 */
#include "runtime/serving/scheduler.h"
#include "test.h"

static const hearth_sched_limits lim = {.n_parallel = 2, .n_batch = 8, .page_size = 4};

static void test_pages(void) {
    CHECK(hearth_sched_pages_for(&lim, 0) == 0);
    CHECK(hearth_sched_pages_for(&lim, 1) == 1);
    CHECK(hearth_sched_pages_for(&lim, 4) == 1);
    CHECK(hearth_sched_pages_for(&lim, 5) == 2);
    CHECK(hearth_sched_pages_for(&lim, 17) == 5);
}

static void test_admission(void) {
    /* slots */
    CHECK(hearth_sched_has_slot(&lim, 0));
    CHECK(hearth_sched_has_slot(&lim, 1));
    CHECK(!hearth_sched_has_slot(&lim, 2));
    /* the head of the queue: dropped when cancelled (even with no slot), tried
     * when a slot is free, else everything waits */
    CHECK(hearth_sched_next(&lim, 2, true) == HEARTH_SCHED_DROP);
    CHECK(hearth_sched_next(&lim, 0, true) == HEARTH_SCHED_DROP);
    CHECK(hearth_sched_next(&lim, 1, false) == HEARTH_SCHED_TRY);
    CHECK(hearth_sched_next(&lim, 2, false) == HEARTH_SCHED_WAIT);

    /* pages: 7 tokens + the next = 8 = 2 pages */
    CHECK(hearth_sched_pages_fit(&lim, 1, 7, 0, 2));
    CHECK(!hearth_sched_pages_fit(&lim, 1, 7, 0, 1));
    /* 8 tokens + the next = 9 = 3 pages */
    CHECK(hearth_sched_pages_fit(&lim, 1, 8, 0, 3));
    CHECK(!hearth_sched_pages_fit(&lim, 1, 8, 0, 2));
    /* pages attached from the prefix cache are not needed again: 9+1 = 3 pages */
    CHECK(hearth_sched_pages_fit(&lim, 1, 9, 2, 1));
    CHECK(!hearth_sched_pages_fit(&lim, 1, 9, 1, 1));
    CHECK(hearth_sched_pages_fit(&lim, 1, 9, 3, 0));
    /* zero free pages: nothing starts beside a running sequence */
    CHECK(!hearth_sched_pages_fit(&lim, 1, 1, 0, 0));
    /* an idle engine always starts the head, even with no page free or a
     * request larger than the pool (its reservation fails with an error) */
    CHECK(hearth_sched_pages_fit(&lim, 0, 1, 0, 0));
    CHECK(hearth_sched_pages_fit(&lim, 0, 100, 0, 3));
    CHECK(!hearth_sched_pages_fit(&lim, 1, 100, 0, 3));
}

static void test_chunks(void) {
    int chunk[4] = {-1, -1, -1, -1};
    /* decode tokens first (in order), then prefill with what is left */
    int pending[4] = {1, 10, 1, 3};
    CHECK(hearth_sched_plan_chunks(&lim, pending, 4, chunk) == 8);
    CHECK(chunk[0] == 1 && chunk[1] == 6 && chunk[2] == 1 && chunk[3] == 0);
    /* prefill chunks in admission order, each at most what is pending */
    int two[2] = {3, 2};
    CHECK(hearth_sched_plan_chunks(&lim, two, 2, chunk) == 5);
    CHECK(chunk[0] == 3 && chunk[1] == 2);
    /* a long prompt is split over steps: 20 pending, budget 8 */
    int one[1] = {20};
    CHECK(hearth_sched_plan_chunks(&lim, one, 1, chunk) == 8 && chunk[0] == 8);
    /* more decoders than budget: the later ones wait */
    hearth_sched_limits small = {.n_parallel = 4, .n_batch = 2, .page_size = 4};
    int dec[3] = {1, 1, 1};
    chunk[2] = -1;
    CHECK(hearth_sched_plan_chunks(&small, dec, 3, chunk) == 2);
    CHECK(chunk[0] == 1 && chunk[1] == 1 && chunk[2] == 0);
    /* nothing running */
    CHECK(hearth_sched_plan_chunks(&lim, dec, 0, chunk) == 0);
}

static void test_preempt(void) {
    CHECK(hearth_sched_preempt_victim(3) == 2);
    CHECK(hearth_sched_preempt_victim(2) == 1);
    CHECK(hearth_sched_preempt_victim(1) == -1); /* nothing to give up */
    CHECK(hearth_sched_preempt_victim(0) == -1);
}

int main(void) {
    test_pages();
    test_admission();
    test_chunks();
    test_preempt();
    return test_summary("scheduler");
}
