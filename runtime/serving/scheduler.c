/*
 * scheduler.c - the engine's scheduling policy; see scheduler.h.
 */
#include "scheduler.h"

int hearth_sched_pages_for(const hearth_sched_limits *lim, int n_tokens) {
    return (n_tokens + lim->page_size - 1) / lim->page_size;
}

bool hearth_sched_has_slot(const hearth_sched_limits *lim, int n_running) {
    return n_running < lim->n_parallel;
}

bool hearth_sched_pages_fit(const hearth_sched_limits *lim, int n_running, int n_tokens, int attached_pages,
                            int pages_available) {
    int need = hearth_sched_pages_for(lim, n_tokens + 1) - attached_pages;
    return need <= pages_available || n_running == 0;
}

hearth_sched_admission hearth_sched_next(const hearth_sched_limits *lim, int n_running, bool head_cancelled) {
    if (head_cancelled) return HEARTH_SCHED_DROP;
    return hearth_sched_has_slot(lim, n_running) ? HEARTH_SCHED_TRY : HEARTH_SCHED_WAIT;
}

int hearth_sched_plan_chunks(const hearth_sched_limits *lim, const int *pending, int n_running, int *chunk) {
    int budget = lim->n_batch;
    for (int i = 0; i < n_running; i++)
        chunk[i] = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_running && budget > 0; i++) {
            if ((pass == 0) != (pending[i] == 1)) continue;
            int c = pending[i] < budget ? pending[i] : budget;
            chunk[i] = c;
            budget -= c;
        }
    }
    return lim->n_batch - budget;
}

int hearth_sched_preempt_victim(int n_running) {
    return n_running > 1 ? n_running - 1 : -1;
}
