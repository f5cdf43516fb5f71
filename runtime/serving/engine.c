/*
 * engine.c - continuous batching over the forward pass; see engine.h.
 *
 * Request life: submit (WAITING, in the FIFO) -> admitted by the worker
 * (a KV sequence is created and the longest cached prefix attached) ->
 * RUNNING: prefilled in chunks, then one decode token per step -> finished
 * (sequence freed, DONE event). Under KV pressure the newest running request
 * is preempted: its sequence is freed and it goes back to the front of the
 * queue with every token it has, to be recomputed (mostly from the prefix
 * cache) when pages allow.
 *
 * The policy (what to admit, how to split the token budget, whom to
 * preempt) lives in scheduler.c and stop-string matching in stop.c; this
 * file holds the queue, the worker thread and the step loop that act on them.
 *
 * Locking: `mu` guards the waiting queue, the id counter and the counters
 * read by stats; the running set, the KV cache, the prefix cache and the
 * forward context belong to the worker thread alone. Events are delivered
 * with no lock held.
 */
#include "engine.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend_impl.h"
#include "core/hash.h"
#include "core/os.h"
#include "core/strbuf.h"
#include "runtime/model/forward.h"
#include "runtime/store/cache_store.h"
#include "grammar_seq.h"
#include "scheduler.h"
#include "spec_draft.h"
#include "stop.h"

typedef struct req {
    uint64_t id;
    hearth_tokens toks; /* prompt + generated, in order */
    int n_prompt;
    int n_done; /* tokens whose K/V are in the cache (= KV sequence length) */
    int n_gen;
    int max_tokens;
    int seq; /* KV sequence, -1 when not running */
    hearth_sampler *smp;
    hearth_detok dt;
    hearth_stop stop;      /* stop strings, and the text held back for them */
    hearth_grammar_seq gs; /* constrained decoding (off when gs.g is NULL) */
    bool ignore_eog;
    atomic_bool cancel;
    hearth_event_fn fn;
    void *user;
    hearth_request_stats st;
    double t_submit, t_admit, t_first, t_last;
    uint64_t page_key; /* key of the last published page of this sequence */
    int n_keyed;       /* pages of the sequence that have keys */
    bool admitted_once;
    bool spec;                         /* speculating allowed (engine on, request did not opt out) */
    bool want_lp;                      /* logprobs asked: host logits every step, no speculation */
    int n_top_lp;                      /* top alternatives with each token's logprob */
    hearth_logprobs lp;                /* the last token's (delivered with its event) */
    hearth_spec_ctl ctl;               /* adaptive K (the STEP policy, and COST until it has measured) */
    hearth_spec_acc acc;               /* COST: this sequence's acceptance rate */
    int spec_idle;                     /* COST: steps in a row it drafted nothing */
    int probe_gap;                     /* COST: idle steps before the next probe (0: the first) */
    int32_t *shadow;                   /* COST, n-gram: a draft not sent (K = 0), checked against */
    int shadow_n, shadow_at;           /* the tokens that follow toks[shadow_at] to measure alpha */
    int n_draft;                       /* tokens drafted this step (0: plain decode) */
    int32_t *draft;                    /* [cfg.draft_max] */
    int dslot;                         /* draft-model slot (spec_draft.h), -1 when none */
    hearth_sampler *dsmp;              /* sampled drafts: the draft model's sampler (r's settings) */
    float *q;                          /* [draft_max, n_vocab] the draft's q of each drafted token */
    int n_vocab;                       /* the row size of q */
    float pick_prob;                   /* >= 0: the probability of the token take_token is given */
    struct req *next;                  /* waiting queue */
    struct req *live_prev, *live_next; /* all live requests (under mu) */
} req;

struct hearth_engine {
    hearth_model *m;
    hearth_engine_config cfg;
    hearth_kv_cache *kv;
    hearth_forward *fw;
    hearth_prefix_cache *pc;
    hearth_cache_store *store;
    hearth_drafter *drafter; /* HEARTH_SPEC_DRAFT: the draft model's KV and forward */
    hearth_draft_job *jobs;  /* [n_parallel] this step's draft requests */
    int *job_run;            /* [n_parallel] the running slot of each job */
    float *logits;           /* [n_parallel (speculating: HEARTH_FORWARD_MAX_LOGITS), n_vocab] */
    float *pbuf;             /* [n_vocab] sampled verification: the target's p at one position */
    /* ubatch scratch */
    int32_t *ub_tok, *ub_pos, *ub_seq;
    bool *ub_logits;
    int32_t *ub_ids; /* [n_parallel] greedy steps: the argmax of each logits row */
    char note[256];  /* see hearth_engine_note */
    req **ub_owner_of_logits;
    int *chunk;   /* per running slot: tokens in this step */
    int *pending; /* per running slot: tokens not yet in the KV cache */
    hearth_sched_limits lim;
    req **running; /* [n_parallel], admission order */
    int n_running;
    int n_running_pub; /* n_running as of the last snapshot (under mu) */

    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    req *wait_head, *wait_tail;
    int n_waiting;
    req *live; /* every submitted request until its DONE event */
    uint64_t next_id;
    /* counters (under mu) */
    uint64_t requests_done, tokens_generated, prompt_tokens, cached_tokens, preemptions, steps;
    uint64_t spec_passes, spec_tokens, spec_drafted, spec_accepted, spec_off_load;
    uint64_t spec_cost_skips;
    double cost_a, cost_b, cost_draft; /* the cost model's fit as of the last step */
    uint64_t grammar_checked, grammar_masked;
    hearth_kv_stats kv_stats;
    hearth_prefix_stats prefix_stats;
    /* constrained decoding: the token trie, built at the first grammar request
     * (under mu), and the worker's masking scratch */
    hearth_grammar_vocab *gvocab;
    float *gmasked;        /* [n_vocab] */
    uint32_t *gbits;       /* [(n_vocab + 31) / 32] */
    hearth_spec_cost cost; /* the K cost model's measurements (worker only) */
};

hearth_engine_config hearth_engine_defaults(void) {
    return (hearth_engine_config){.n_ctx = 0,
                                  .n_parallel = 8,
                                  .n_batch = 512,
                                  .page_size = 16,
                                  .n_pages = 0,
                                  .kv_type = HEARTH_F16,
                                  .prefix_cache = true,
                                  .cache_db = NULL,
                                  .cache_db_max_bytes = 0,
                                  .max_waiting = 256,
                                  .spec = HEARTH_SPEC_OFF,
                                  .draft_max = 8,
                                  .draft_min = 1,
                                  .spec_max_batch = 4};
}

const char *hearth_finish_name(hearth_finish f) {
    switch (f) {
    case HEARTH_FINISH_STOP: return "stop";
    case HEARTH_FINISH_LENGTH: return "length";
    case HEARTH_FINISH_CANCELLED: return "cancelled";
    case HEARTH_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* ------------------------------------------------------------ requests */

static void req_free(req *r) {
    if (!r) return;
    hearth_tokens_free(&r->toks);
    hearth_sampler_free(r->smp);
    hearth_sampler_free(r->dsmp);
    free(r->q);
    hearth_stop_free(&r->stop);
    hearth_grammar_seq_free(&r->gs);
    free(r->draft);
    free(r->shadow);
    free(r);
}

static void emit(req *r, const hearth_event *ev) {
    if (r->fn) r->fn(ev, r->user);
}

/* ------------------------------------------------------------ finishing */

static void finish(hearth_engine *e, req *r, hearth_finish why, hearth_status status, const char *msg) {
    double t = hearth_now_ms();
    if (r->seq >= 0) {
        hearth_kv_seq_free(e->kv, r->seq);
        r->seq = -1;
    }
    if (e->drafter) hearth_drafter_slot_free(e->drafter, r->dslot);
    r->dslot = -1;
    /* flush text: held bytes of a partial character, and held stop-string
     * prefixes that never completed (not when a stop string matched) */
    char tail[64];
    size_t k = hearth_detok_flush(&r->dt, tail, sizeof tail);
    size_t text_len = hearth_stop_finish(&r->stop, tail, k, why == HEARTH_FINISH_STOP);
    const char *text = hearth_stop_text(&r->stop);
    r->st.total_ms = t - r->t_submit;
    r->st.gen_ms = r->t_first > 0 ? r->t_last - r->t_first : 0;
    r->st.itl_ms_mean = r->n_gen > 1 ? r->st.gen_ms / (r->n_gen - 1) : 0;
    r->st.generated_tokens = r->n_gen;
    hearth_event ev = {.kind = HEARTH_EVENT_DONE,
                       .id = r->id,
                       .token = -1,
                       .text = text,
                       .text_len = text_len,
                       .finish = why,
                       .status = status,
                       .error = msg,
                       .stats = &r->st};
    pthread_mutex_lock(&e->mu);
    e->requests_done++;
    e->tokens_generated += (uint64_t)r->n_gen;
    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else
        e->live = r->live_next;
    if (r->live_next) r->live_next->live_prev = r->live_prev;
    pthread_mutex_unlock(&e->mu);
    emit(r, &ev);
    req_free(r);
}

/* ------------------------------------------------------------ admission */

static int pages_available(const hearth_engine *e) {
    int n = hearth_kv_pages_free(e->kv);
    if (e->pc) {
        hearth_prefix_stats ps;
        hearth_prefix_cache_stats_get(e->pc, &ps);
        n += ps.pages_cached;
    }
    return n;
}

/* Try to start r: create its sequence and attach the cached prefix. Returns
 * false (nothing changed) when the pages it needs are not free now
 * (hearth_sched_pages_fit decides). */
static bool admit(hearth_engine *e, req *r) {
    hearth_error err = {0};
    int seq = hearth_kv_seq_create(e->kv, &err);
    if (seq < 0) return false;
    const int ps = e->cfg.page_size;
    int attached = 0;
    uint64_t key = 0;
    double t0 = hearth_now_ms();
    hearth_prefix_stats ps0 = {0}, ps1 = {0}; /* the store's read times before and after */
    if (e->pc) {
        hearth_prefix_cache_stats_get(e->pc, &ps0);
        /* Only whole pages, and never the last token: its logits are needed. */
        int max_pages = hearth_prefix_pages_to_attach((int)r->toks.n, ps);
        for (int p = 0; p < max_pages; p++) {
            uint64_t k = hearth_prefix_hash(e->pc, key, r->toks.ids + (size_t)p * ps, ps);
            int32_t page = hearth_prefix_cache_acquire(e->pc, k);
            if (page < 0) break;
            hearth_status st = hearth_kv_seq_append_page(e->kv, seq, page, &err);
            hearth_kv_page_unref(e->kv, page); /* the sequence holds its own reference now */
            if (st) break;
            key = k;
            attached++;
        }
    }
    double t_attach = hearth_now_ms() - t0;
    if (e->pc) hearth_prefix_cache_stats_get(e->pc, &ps1);
    if (!hearth_sched_pages_fit(&e->lim, e->n_running, (int)r->toks.n, attached, pages_available(e))) {
        hearth_kv_seq_free(e->kv, seq); /* cached pages go back to the LRU */
        return false;
    }
    r->seq = seq;
    r->n_done = attached * ps;
    r->n_keyed = attached;
    r->page_key = key;
    if (!r->admitted_once) {
        r->admitted_once = true;
        r->t_admit = hearth_now_ms();
        r->st.queue_ms = r->t_admit - r->t_submit;
        r->st.cached_tokens = r->n_done;
        r->st.cache_ms = t_attach;
        r->st.cache_read_ms = ps1.disk_read_ms - ps0.disk_read_ms;
        r->st.cache_upload_ms = ps1.upload_ms - ps0.upload_ms;
        pthread_mutex_lock(&e->mu);
        e->prompt_tokens += (uint64_t)r->n_prompt;
        e->cached_tokens += (uint64_t)r->n_done;
        pthread_mutex_unlock(&e->mu);
    }
    e->running[e->n_running++] = r;
    return true;
}

static void remove_running(hearth_engine *e, int i) {
    assert(i >= 0 && i < e->n_running);
    memmove(&e->running[i], &e->running[i + 1], (size_t)(e->n_running - i - 1) * sizeof *e->running);
    e->n_running--;
}

/* Move running request i back to the front of the queue, to be recomputed. */
static void preempt(hearth_engine *e, int i) {
    req *r = e->running[i];
    remove_running(e, i);
    hearth_kv_seq_free(e->kv, r->seq);
    r->seq = -1;
    if (e->drafter) hearth_drafter_slot_free(e->drafter, r->dslot);
    r->dslot = -1;
    r->n_done = 0;
    r->n_keyed = 0;
    r->page_key = 0;
    r->st.preemptions++;
    pthread_mutex_lock(&e->mu);
    r->next = e->wait_head;
    e->wait_head = r;
    if (!e->wait_tail) e->wait_tail = r;
    e->n_waiting++;
    e->preemptions++;
    pthread_mutex_unlock(&e->mu);
}

/* Pull cancelled requests out of the queue and admit what fits. */
static void admit_waiting(hearth_engine *e) {
    for (;;) {
        pthread_mutex_lock(&e->mu);
        req *r = e->wait_head;
        hearth_sched_admission what =
            r ? hearth_sched_next(&e->lim, e->n_running, atomic_load(&r->cancel)) : HEARTH_SCHED_WAIT;
        bool take = what != HEARTH_SCHED_WAIT;
        if (take) {
            e->wait_head = r->next;
            if (!e->wait_head) e->wait_tail = NULL;
            e->n_waiting--;
            r->next = NULL;
        }
        pthread_mutex_unlock(&e->mu);
        if (!take) return;
        if (what == HEARTH_SCHED_DROP) {
            finish(e, r, HEARTH_FINISH_CANCELLED, HEARTH_OK, NULL);
            continue;
        }
        if (!admit(e, r)) {
            pthread_mutex_lock(&e->mu); /* back to the front; try again next step */
            r->next = e->wait_head;
            e->wait_head = r;
            if (!e->wait_tail) e->wait_tail = r;
            e->n_waiting++;
            pthread_mutex_unlock(&e->mu);
            return;
        }
    }
}

/* ------------------------------------------------------------ one step */

/* Give keys to the newly filled pages of r and publish them. */
static void publish_pages(hearth_engine *e, req *r) {
    if (!e->pc) return;
    assert(r->seq >= 0);
    const int ps = e->cfg.page_size;
    int np;
    const int32_t *pages = hearth_kv_seq_pages(e->kv, r->seq, &np);
    int n_full = hearth_prefix_pages_full(r->n_done, ps);
    while (r->n_keyed < n_full) {
        uint64_t k = hearth_prefix_hash(e->pc, r->page_key, r->toks.ids + (size_t)r->n_keyed * ps, ps);
        hearth_prefix_cache_publish(e->pc, k, pages[r->n_keyed]);
        r->page_key = k;
        r->n_keyed++;
    }
}

struct grammar_check {
    hearth_grammar_seq *gs;
    const hearth_grammar_vocab *v;
};

static bool grammar_allows(void *ctx, int32_t token) {
    struct grammar_check *c = ctx;
    return hearth_grammar_seq_allows(c->gs, c->v, token);
}

/* A constrained request's token chosen by checking the best candidates one by
 * one (the token a whole mask would give, at a fraction of its cost on a big
 * vocabulary), or -1 when a mask is needed: logprobs report the masked
 * distribution, and some filter settings need every allowed token. */
static int32_t pick_constrained(hearth_engine *e, req *r, const float *logits) {
    if (r->want_lp || e->cfg.grammar_full_mask) return -1;
    struct grammar_check c = {&r->gs, e->gvocab};
    return hearth_sampler_sample_allowed(r->smp, logits, grammar_allows, &c);
}

/* Sample r's next token from its logits row (or take `picked`, the argmax
 * the forward pass chose for a greedy step, when >= 0) and deliver it.
 * Returns the finish reason, or NONE to keep going. */
static hearth_finish take_token(hearth_engine *e, req *r, const float *logits, int32_t picked) {
    int32_t id = picked;
    double tg = r->gs.g ? hearth_now_ms() : 0;
    if (picked < 0 && hearth_grammar_seq_active(&r->gs)) {
        id = pick_constrained(e, r, logits);
        if (id < 0) logits = hearth_grammar_seq_mask(&r->gs, e->gvocab, logits, e->gmasked, e->gbits);
        if (!logits) return HEARTH_FINISH_ERROR;
        r->st.grammar_masked += id < 0;
        pthread_mutex_lock(&e->mu);
        *(id >= 0 ? &e->grammar_checked : &e->grammar_masked) += 1;
        pthread_mutex_unlock(&e->mu);
    }
    if (id < 0) id = hearth_sampler_sample(r->smp, logits);
    float prob = picked >= 0 ? 1.0f : hearth_sampler_last_prob(r->smp);
    if (r->want_lp)
        hearth_sampler_logprobs(r->smp, logits, id, r->n_top_lp, &r->lp); /* picked < 0: host logits */
    hearth_sampler_accept(r->smp, id);
    if (!hearth_grammar_seq_accept(&r->gs, e->gvocab, e->m->tokenizer, id)) return HEARTH_FINISH_ERROR;
    double t = hearth_now_ms();
    if (r->gs.g) r->st.grammar_ms += t - tg;
    double itl = r->t_last > 0 ? t - r->t_last : 0;
    if (r->n_gen == 0) {
        r->t_first = t;
        r->st.ttft_ms = t - r->t_submit;
        r->st.prompt_ms = t - r->t_admit;
    }
    r->t_last = t;
    r->n_gen++;
    r->st.generated_tokens = r->n_gen;
    if (!hearth_tokens_push(&r->toks, id)) return HEARTH_FINISH_ERROR;
    bool eog = !r->ignore_eog && hearth_tokenizer_is_eog(e->m->tokenizer, id);
    char piece[512];
    size_t k = eog ? 0 : hearth_detok_feed(&r->dt, id, piece, sizeof piece);
    bool stopped;
    size_t out = hearth_stop_feed(&r->stop, piece, k, &stopped);
    hearth_event ev = {.kind = HEARTH_EVENT_TOKEN,
                       .id = r->id,
                       .token = id,
                       .prob = r->pick_prob >= 0 ? r->pick_prob : prob,
                       .text = hearth_stop_text(&r->stop),
                       .text_len = out,
                       .stats = &r->st,
                       .itl_ms = itl,
                       .logprobs = r->want_lp ? &r->lp : NULL};
    emit(r, &ev);
    r->pick_prob = -1;
    if (stopped) {
        hearth_stop_clear(&r->stop); /* the stop string and what follows are dropped */
        return HEARTH_FINISH_STOP;
    }
    hearth_stop_consume(&r->stop, out);
    if (eog) return HEARTH_FINISH_STOP;
    if (r->max_tokens > 0 && r->n_gen >= r->max_tokens) return HEARTH_FINISH_LENGTH;
    if ((int)r->toks.n >= e->cfg.n_ctx) return HEARTH_FINISH_LENGTH;
    if (atomic_load(&r->cancel)) return HEARTH_FINISH_CANCELLED;
    return HEARTH_FINISH_NONE;
}

/* Reserve target KV for r's d drafted tokens (running slot i) and add them
 * to its chunk; a draft whose pages are not free is dropped. */
static bool commit_draft(hearth_engine *e, int i, int d) {
    req *r = e->running[i];
    if (d <= 0 || hearth_kv_seq_reserve(e->kv, r->seq, r->n_done + 1 + d, NULL)) return false;
    r->n_draft = d;
    e->chunk[i] += d;
    return true;
}

/* Run the draft model for this step's jobs (batched) and commit what it
 * drafted. A failed draft pass leaves the slots' state unknown: they are
 * freed (caught up from scratch next time) and the step runs without drafts. */
static void run_draft_model(hearth_engine *e, int n_jobs) {
    hearth_error err = {0};
    if (hearth_drafter_run(e->drafter, e->jobs, n_jobs, &err)) {
        for (int j = 0; j < n_jobs; j++) {
            req *r = e->running[e->job_run[j]];
            hearth_drafter_slot_free(e->drafter, r->dslot);
            r->dslot = -1;
        }
        return;
    }
    int passes;
    double ms;
    hearth_drafter_take_cost(e->drafter, &passes, &ms);
    hearth_spec_cost_draft(&e->cost, passes, ms);
    for (int j = 0; j < n_jobs; j++)
        commit_draft(e, e->job_run[j], e->jobs[j].n_out);
}

/* Draft model, sampled request: draft token `step` from the draft's own
 * distribution q (r's sampler settings over the draft's logits, with r's
 * history plus the draft so far), drawn with r's RNG; q is kept for the
 * acceptance rule. */
static int32_t draft_pick(void *user, int step, const float *logits) {
    req *r = user;
    if (step == 0) hearth_sampler_copy_history(r->dsmp, r->smp);
    float *q = r->q + (size_t)step * (size_t)r->n_vocab;
    hearth_sampler_probs(r->dsmp, logits, q);
    int32_t t = hearth_spec_draw(q, r->n_vocab, hearth_sampler_uniform(r->smp));
    if (t >= 0) hearth_sampler_accept(r->dsmp, t);
    return t;
}

/* Whether r may speculate this step. A grammar masks the logits before the
 * pick (drafts would be checked against the unmasked distribution) and
 * logprobs want every position's own pass: those never speculate. */
static bool spec_eligible(const req *r) {
    return r->spec && !r->gs.g && !r->want_lp;
}

/* A sampled request drafting with the draft model needs a sampler for the
 * draft (r's settings) and room for q; false when memory is short. */
static bool sampled_draft_ready(hearth_engine *e, req *r) {
    if (r->dsmp && r->q) return true;
    r->n_vocab = e->m->hp.n_vocab;
    if (!r->dsmp) r->dsmp = hearth_sampler_create(hearth_sampler_params(r->smp), r->n_vocab, NULL);
    if (!r->q) r->q = malloc((size_t)e->cfg.draft_max * (size_t)r->n_vocab * sizeof *r->q);
    return r->dsmp && r->q;
}

/* A COST sequence that drafted nothing this many steps in a row drafts once
 * with the best K all the same (a probe), so that the passes that K needs
 * stay timed and, with a draft model, its acceptance stays measured
 * (n-gram measures it without drafting: shadow_check). Each probe that
 * does not bring drafting back doubles the gap, up to SPEC_PROBE_MAX: a
 * draft model's probe also catches its KV up on the tokens it skipped. */
enum { SPEC_PROBE_DRAFT = 16, SPEC_PROBE_NGRAM = 64, SPEC_PROBE_MAX = 512 };

/* n-gram lookup costs nothing to draft, so a sequence that sends no draft
 * still measures its acceptance: the draft it would have sent (the shadow)
 * is compared with the tokens the target then chose, one step at a time.
 * Greedy: exactly what verification would have accepted; sampled: the same
 * chance, p(draft) per token. */
static void shadow_check(req *r) {
    if (!r->shadow_n) return;
    int have = (int)r->toks.n - r->shadow_at, j = 0;
    while (j < have && j < r->shadow_n && r->toks.ids[r->shadow_at + j] == r->shadow[j])
        j++;
    if (j == r->shadow_n || j < have) { /* settled: all kept, or rejected at j */
        hearth_spec_acc_update(&r->acc, r->shadow_n, j);
        r->shadow_n = 0;
    }
}

/* The most tokens r drafts this step, one of n_spec speculating sequences:
 * the cost model's choice (0: a draft would not pay), or the step
 * controller's K (the STEP policy, or while the model has not measured). */
static int spec_k(hearth_engine *e, req *r, int n_spec, int *skips) {
    if (e->cfg.spec_k == HEARTH_SPEC_K_STEP) return r->ctl.k;
    shadow_check(r);
    int k = hearth_spec_cost_choose(&e->cost, hearth_spec_acc_alpha(&r->acc), e->cfg.draft_min,
                                    e->cfg.draft_max, n_spec, e->drafter != NULL, NULL);
    if (k < 0) return r->ctl.k;
    const int gap0 = e->drafter ? SPEC_PROBE_DRAFT : SPEC_PROBE_NGRAM;
    if (k > 0) {
        r->spec_idle = 0;
        r->probe_gap = gap0;
        r->shadow_n = 0; /* a real draft measures now */
        return k;
    }
    if (++r->spec_idle >= (r->probe_gap ? r->probe_gap : gap0)) {
        r->spec_idle = 0;
        r->probe_gap = 2 * (r->probe_gap ? r->probe_gap : gap0);
        if (r->probe_gap > SPEC_PROBE_MAX) r->probe_gap = SPEC_PROBE_MAX;
        r->shadow_n = 0;
        return hearth_spec_cost_best(&e->cost, hearth_spec_acc_alpha(&r->acc), e->cfg.draft_min,
                                     e->cfg.draft_max, n_spec, e->drafter != NULL);
    }
    if (!e->drafter && !r->shadow_n) {
        r->shadow_at = (int)r->toks.n;
        r->shadow_n = hearth_spec_ngram_draft(r->toks.ids, r->shadow_at, 2, 4, e->cfg.draft_max, r->shadow);
    }
    (*skips)++;
    return 0;
}

/* Speculation for this step: a draft (n-gram lookup, or the draft model for
 * all of them in one batch) for each speculating sequence that is decoding,
 * while the token budget and the logits rows last, when the step holds at
 * most spec_max_batch sequences. Greedy sequences draft greedily; sampled
 * ones (temperature > 0 or penalties) draw their draft from the draft
 * model's q (n-gram: a point mass) and are verified by the acceptance rule.
 * Draft positions are reserved here; a draft whose pages are not free is
 * dropped. */
static void plan_drafts(hearth_engine *e) {
    for (int i = 0; i < e->n_running; i++)
        e->running[i]->n_draft = 0;
    if (e->cfg.spec == HEARTH_SPEC_OFF) return;
    bool any = false;
    for (int i = 0; i < e->n_running; i++)
        any |= spec_eligible(e->running[i]);
    if (!any) return;
    if (e->n_running > e->cfg.spec_max_batch) {
        pthread_mutex_lock(&e->mu);
        e->spec_off_load++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    int used = 0, rows = 0, n_jobs = 0, n_spec = 0, skips = 0;
    for (int i = 0; i < e->n_running; i++) {
        used += e->chunk[i];
        rows += e->chunk[i] && e->running[i]->n_done + e->chunk[i] == (int)e->running[i]->toks.n;
        n_spec += spec_eligible(e->running[i]) && e->chunk[i] == 1 && e->pending[i] == 1;
    }
    for (int i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        if (!spec_eligible(r) || e->chunk[i] != 1 || e->pending[i] != 1) continue;
        int n = (int)r->toks.n, k = spec_k(e, r, n_spec, &skips);
        if (r->max_tokens > 0 && r->max_tokens - r->n_gen - 1 < k) k = r->max_tokens - r->n_gen - 1;
        if (e->cfg.n_ctx - n - 1 < k) k = e->cfg.n_ctx - n - 1;
        if (e->cfg.n_batch - used < k) k = e->cfg.n_batch - used;
        if (HEARTH_FORWARD_MAX_LOGITS - rows < k) k = HEARTH_FORWARD_MAX_LOGITS - rows;
        if (k <= 0) continue;
        int d = k; /* the draft model's jobs count at their most until they are drafted */
        if (e->drafter) {
            bool sampled = !hearth_sampler_is_greedy(r->smp);
            if (sampled && !sampled_draft_ready(e, r)) continue;
            if (r->dslot < 0) r->dslot = hearth_drafter_slot_take(e->drafter);
            if (r->dslot < 0) continue;
            e->jobs[n_jobs] = (hearth_draft_job){.slot = r->dslot,
                                                 .toks = r->toks.ids,
                                                 .n = n,
                                                 .k = k,
                                                 .out = r->draft,
                                                 .pick = sampled ? draft_pick : NULL,
                                                 .user = r};
            e->job_run[n_jobs++] = i;
        } else {
            d = hearth_spec_ngram_draft(r->toks.ids, n, 2, 4, k, r->draft);
            if (!commit_draft(e, i, d)) continue;
        }
        used += d;
        rows += d;
    }
    if (n_jobs) run_draft_model(e, n_jobs);
    if (skips) {
        pthread_mutex_lock(&e->mu);
        e->spec_cost_skips += (uint64_t)skips;
        pthread_mutex_unlock(&e->mu);
    }
}

/* Keep the longest prefix of r's draft that the target's picks ids[0..d]
 * agree with, plus the target's next pick; drop the rest from the KV cache.
 * Returns the finish reason (NONE: keep going). */
static hearth_finish take_verified(hearth_engine *e, req *r, const int32_t *ids);
/* The same from host logits rows[0..d] (a step that brought logits to the
 * host): greedy sequences take the argmax of each row, sampled ones the
 * acceptance rule against the target's p. */
static hearth_finish take_verified_rows(hearth_engine *e, req *r, const float *rows);
static void count_verified(hearth_engine *e, req *r, int d, int a, int taken);

static void step(hearth_engine *e) {
    /* cancelled running requests leave first */
    for (int i = 0; i < e->n_running;) {
        if (atomic_load(&e->running[i]->cancel)) {
            req *r = e->running[i];
            remove_running(e, i);
            finish(e, r, HEARTH_FINISH_CANCELLED, HEARTH_OK, NULL);
        } else {
            i++;
        }
    }
    admit_waiting(e);
    if (e->n_running == 0) return;

    /* ---- plan: decode tokens first, then prefill chunks, within the budget;
     * reserve KV for each, preempting the newest under memory pressure */
    for (;;) {
        for (int i = 0; i < e->n_running; i++)
            e->pending[i] = (int)e->running[i]->toks.n - e->running[i]->n_done;
        hearth_sched_plan_chunks(&e->lim, e->pending, e->n_running, e->chunk);
        int fail = -1;
        for (int i = 0; i < e->n_running && fail < 0; i++) {
            if (!e->chunk[i]) continue;
            if (hearth_kv_seq_reserve(e->kv, e->running[i]->seq, e->running[i]->n_done + e->chunk[i], NULL))
                fail = i;
        }
        if (fail < 0) break;
        int victim = hearth_sched_preempt_victim(e->n_running);
        if (victim < 0) {
            req *r = e->running[0];
            e->n_running = 0;
            char msg[160];
            snprintf(msg, sizeof msg, "the KV cache (%d pages of %d tokens) cannot hold this sequence",
                     e->cfg.n_pages, e->cfg.page_size);
            finish(e, r, HEARTH_FINISH_LENGTH, HEARTH_ERR_CONTEXT, msg);
            return;
        }
        preempt(e, victim);
    }
    plan_drafts(e);

    /* ---- build the ubatch */
    int n = 0, n_logits = 0;
    bool decode_only = true; /* only decode and draft positions: a pass the K cost model learns from */
    for (int i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        decode_only &= !e->chunk[i] || (e->pending[i] == 1 && e->chunk[i] == 1 + r->n_draft);
        for (int j = 0; j < e->chunk[i]; j++) {
            int p = r->n_done + j;
            e->ub_tok[n] = p < (int)r->toks.n ? r->toks.ids[p] : r->draft[p - (int)r->toks.n];
            e->ub_pos[n] = p;
            e->ub_seq[n] = r->seq;
            e->ub_logits[n] = p >= (int)r->toks.n - 1;
            if (e->ub_logits[n]) e->ub_owner_of_logits[n_logits++] = r;
            n++;
        }
    }
    if (n == 0) return;
    hearth_error err = {0};
    hearth_ubatch ub = {n, e->ub_tok, e->ub_pos, e->ub_seq, e->ub_logits};
    /* every sequence greedy: only the chosen ids leave the device */
    bool greedy = n_logits > 0;
    for (int k = 0; k < n_logits && greedy; k++)
        greedy = hearth_sampler_is_greedy(e->ub_owner_of_logits[k]->smp) && !e->ub_owner_of_logits[k]->gs.g &&
                 !e->ub_owner_of_logits[k]->want_lp;
    const double t_pass = hearth_now_ms();
    int got = greedy ? hearth_forward_run_argmax(e->fw, &ub, NULL, e->ub_ids, &err)
                     : hearth_forward_run(e->fw, &ub, e->logits, &err);
    if (got >= 0 && decode_only && e->cfg.spec != HEARTH_SPEC_OFF)
        hearth_spec_cost_pass(&e->cost, n, hearth_now_ms() - t_pass);
    if (got < 0) {
        /* a device or input failure: fail the requests of this step */
        while (e->n_running) {
            req *r = e->running[--e->n_running];
            finish(e, r, HEARTH_FINISH_ERROR, err.code, err.msg);
        }
        return;
    }
    pthread_mutex_lock(&e->mu);
    e->steps++;
    if (e->cfg.spec != HEARTH_SPEC_OFF && !hearth_spec_cost_fit(&e->cost, &e->cost_a, &e->cost_b))
        e->cost_a = e->cost_b = 0;
    e->cost_draft = e->cost.draft_ms;
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->n_running; i++) {
        req *r = e->running[i];
        if (r->n_draft) { /* take_verified settles n_done and publishes */
            r->n_done += 1;
            continue;
        }
        r->n_done += e->chunk[i];
        publish_pages(e, r);
    }
    /* ---- sample, deliver, retire */
    for (int k = 0; k < n_logits; k++) {
        req *r = e->ub_owner_of_logits[k];
        hearth_finish why;
        if (r->spec && greedy) {
            why = take_verified(e, r, e->ub_ids + k);
            k += r->n_draft;
        } else if (r->n_draft) {
            why = take_verified_rows(e, r, e->logits + (size_t)k * (size_t)e->m->hp.n_vocab);
            k += r->n_draft;
        } else {
            why = greedy ? take_token(e, r, NULL, e->ub_ids[k])
                         : take_token(e, r, e->logits + (size_t)k * (size_t)e->m->hp.n_vocab, -1);
        }
        if (why == HEARTH_FINISH_NONE) continue;
        for (int i = 0; i < e->n_running; i++)
            if (e->running[i] == r) {
                remove_running(e, i);
                break;
            }
        bool gerr = why == HEARTH_FINISH_ERROR && r->gs.error[0]; /* the grammar stopped it */
        finish(e, r, why,
               why != HEARTH_FINISH_ERROR ? HEARTH_OK
               : gerr                     ? HEARTH_ERR_INVALID
                                          : HEARTH_ERR_NOMEM,
               why != HEARTH_FINISH_ERROR ? NULL
               : gerr                     ? r->gs.error
                                          : "out of memory");
    }
}

static hearth_finish take_verified(hearth_engine *e, req *r, const int32_t *ids) {
    int d = r->n_draft, a = 0;
    while (a < d && ids[a] == r->draft[a])
        a++;
    if (d > a) hearth_kv_seq_truncate(e->kv, r->seq, d - a);
    hearth_finish why = HEARTH_FINISH_NONE;
    int taken = 0;
    for (int j = 0; j <= a && why == HEARTH_FINISH_NONE; j++) {
        why = take_token(e, r, NULL, ids[j]);
        taken++;
        if (j < a) r->n_done++; /* an accepted draft: its K/V are in the cache */
    }
    count_verified(e, r, d, a, taken);
    if (why == HEARTH_FINISH_NONE) publish_pages(e, r);
    if (e->drafter) hearth_drafter_keep(e->drafter, r->dslot, r->toks.ids, (int)r->toks.n);
    return why;
}

/* Count a verification pass of d drafts, a accepted, taken tokens delivered. */
static void count_verified(hearth_engine *e, req *r, int d, int a, int taken) {
    r->st.spec_drafted += d;
    r->st.spec_accepted += a;
    hearth_spec_ctl_update(&r->ctl, d, a);
    hearth_spec_acc_update(&r->acc, d, a);
    if (d <= 0) return; /* a step without a draft is a plain decode: no counter moves */
    pthread_mutex_lock(&e->mu);
    e->spec_passes++;
    e->spec_drafted += (uint64_t)d;
    e->spec_accepted += (uint64_t)a;
    e->spec_tokens += (uint64_t)taken;
    pthread_mutex_unlock(&e->mu);
}

/* Sampled verification: at each drafted position the target's p (r's
 * sampler over that row and the history so far, as a plain step would
 * sample), accept the draft with min(1, p/q), else resample from
 * norm(max(0, p - q)) and stop; after all d accepted, the bonus token is the
 * sampler's own draw from the last row. */
static hearth_finish take_verified_sampled(hearth_engine *e, req *r, const float *rows) {
    const size_t nv = (size_t)e->m->hp.n_vocab;
    int d = r->n_draft, a = 0, taken = 0;
    bool rejected = false;
    hearth_finish why = HEARTH_FINISH_NONE;
    while (why == HEARTH_FINISH_NONE && a < d && !rejected) {
        hearth_sampler_probs(r->smp, rows + (size_t)a * nv, e->pbuf);
        const float *q = e->drafter ? r->q + (size_t)a * nv : NULL;
        double ua = hearth_sampler_uniform(r->smp), ur = hearth_sampler_uniform(r->smp);
        bool ok;
        int32_t t = hearth_spec_accept(e->pbuf, q, (int)nv, r->draft[a], ua, ur, &ok);
        /* p == q leaves nothing to resample: the draft stands, as accepted */
        ok = ok || t == r->draft[a];
        r->pick_prob = e->pbuf[t];
        why = take_token(e, r, NULL, t);
        taken++;
        if (ok) {
            a++;
            r->n_done++; /* its K/V are in the cache */
        } else {
            rejected = true;
        }
    }
    if (why == HEARTH_FINISH_NONE && !rejected) {
        why = take_token(e, r, rows + (size_t)d * nv, -1);
        taken++;
    }
    if (d > a) hearth_kv_seq_truncate(e->kv, r->seq, d - a);
    count_verified(e, r, d, a, taken);
    if (why == HEARTH_FINISH_NONE) publish_pages(e, r);
    if (e->drafter) hearth_drafter_keep(e->drafter, r->dslot, r->toks.ids, (int)r->toks.n);
    return why;
}

static hearth_finish take_verified_rows(hearth_engine *e, req *r, const float *rows) {
    if (!hearth_sampler_is_greedy(r->smp)) return take_verified_sampled(e, r, rows);
    int32_t ids[HEARTH_FORWARD_MAX_LOGITS];
    const size_t nv = (size_t)e->m->hp.n_vocab;
    for (int j = 0; j <= r->n_draft; j++)
        ids[j] = hearth_argmax(rows + (size_t)j * nv, (int)nv);
    return take_verified(e, r, ids);
}

/* Publish what stats readers on other threads see (called after each step,
 * so a request's DONE event precedes the snapshot that no longer counts it). */
static void snapshot_stats(hearth_engine *e) {
    hearth_kv_stats ks;
    hearth_kv_stats_get(e->kv, &ks);
    hearth_prefix_stats ps = {0};
    if (e->pc) hearth_prefix_cache_stats_get(e->pc, &ps);
    pthread_mutex_lock(&e->mu);
    e->kv_stats = ks;
    e->prefix_stats = ps;
    e->n_running_pub = e->n_running;
    pthread_mutex_unlock(&e->mu);
}

static void *worker_main(void *arg) {
    hearth_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->stop && !e->wait_head && e->n_running == 0)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->stop) break;
        pthread_mutex_unlock(&e->mu);
        step(e);
#ifndef NDEBUG
        hearth_error kv_err = {0};
        bool kv_ok = hearth_kv_check(e->kv, &kv_err) == HEARTH_OK;
        if (!kv_ok) fprintf(stderr, "engine: %s\n", kv_err.msg);
        assert(kv_ok && "KV cache bookkeeping broken after a step");
#endif
        snapshot_stats(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* Free everything the engine owns (the worker is not running, no request is live). */
static void engine_release(hearth_engine *e) {
    hearth_grammar_vocab_free(e->gvocab);
    free(e->gmasked);
    free(e->gbits);
    hearth_prefix_cache_free(e->pc);
    hearth_cache_store_close(e->store);
    hearth_drafter_free(e->drafter);
    free(e->jobs);
    free(e->job_run);
    hearth_forward_free(e->fw);
    hearth_kv_free(e->kv);
    free(e->logits);
    free(e->pbuf);
    free(e->ub_tok);
    free(e->ub_pos);
    free(e->ub_seq);
    free(e->ub_logits);
    free(e->ub_ids);
    free(e->ub_owner_of_logits);
    free(e->chunk);
    free(e->pending);
    free(e->running);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* With the automatic context, the pool holds one full-context sequence or
 * this many tokens for every parallel sequence, whichever is more. */
#define DEFAULT_SEQ_TOKENS 4096

/* The backend of layer l when l is the first layer on it and it reports its
 * free memory: how many layers it holds, its info, and the bytes the KV cache
 * may take there (the free memory less a tenth, at least 256 MiB, kept for
 * activations). False otherwise: each backend is looked at once. */
static bool kv_backend_at(const hearth_model *m, int l, int *n_on, hearth_backend_info *bi,
                          uint64_t *usable) {
    const int L = m->hp.n_layer;
    hearth_backend *be = m->layer_be[l];
    for (int j = 0; j < l; j++)
        if (m->layer_be[j] == be) return false;
    *n_on = 0;
    for (int j = 0; j < L; j++)
        *n_on += m->layer_be[j] == be;
    be->ops->info(be, bi);
    if (!bi->mem_free) return false; /* the backend does not say */
    uint64_t reserve = bi->mem_free / 10 > (256ull << 20) ? bi->mem_free / 10 : 256ull << 20;
    *usable = bi->mem_free > reserve ? bi->mem_free - reserve : 0;
    return true;
}

/* Cut an automatic KV pool (cfg->n_pages) to the free memory of every
 * backend that holds some of its layers, keeping a tenth (at least 256 MiB)
 * for activations. Fails when not even one full-context sequence fits. */
static hearth_status fit_pages(const hearth_model *m, hearth_engine_config *cfg, int per_seq, char *note,
                               size_t note_cap, hearth_error *err) {
    const int L = m->hp.n_layer;
    const uint64_t layer_page =
        2ull * (uint64_t)cfg->page_size *
        hearth_dtype_row_size(cfg->kv_type, (int64_t)m->hp.n_head_kv * m->hp.head_dim);
    for (int l = 0; l < L; l++) {
        int n_on;
        uint64_t usable;
        hearth_backend_info bi;
        if (!kv_backend_at(m, l, &n_on, &bi, &usable)) continue;
        uint64_t page_bytes = layer_page * (uint64_t)n_on, fit = usable / page_bytes;
        if (fit >= (uint64_t)cfg->n_pages) continue;
        if (fit < (uint64_t)per_seq)
            return hearth_error_set(
                err, HEARTH_ERR_NOMEM,
                "engine: one %d-token sequence needs %.1f MiB of KV cache on %s, which has %.1f "
                "MiB free: use a smaller --ctx, --kv-type q8_0, or fewer --gpu-layers",
                cfg->n_ctx, (double)(page_bytes * (uint64_t)per_seq) / 1048576.0, bi.name,
                (double)bi.mem_free / 1048576.0);
        snprintf(note, note_cap,
                 "KV cache cut to %llu pages (%llu full-context sequences) to fit the %.1f MiB free on %s",
                 (unsigned long long)fit, (unsigned long long)(fit / (uint64_t)per_seq),
                 (double)bi.mem_free / 1048576.0, bi.name);
        cfg->n_pages = (int)fit;
    }
    return HEARTH_OK;
}

/* The longest context one sequence can have in the free memory of the
 * backends holding the KV cache (a tenth kept for activations): the
 * automatic context is cut to it. */
static int ctx_that_fits(const hearth_model *m, const hearth_engine_config *cfg) {
    const int L = m->hp.n_layer;
    uint64_t row = 2ull * hearth_dtype_row_size(cfg->kv_type, (int64_t)m->hp.n_head_kv * m->hp.head_dim);
    int best = cfg->n_ctx;
    for (int l = 0; l < L; l++) {
        int n_on;
        uint64_t usable;
        hearth_backend_info bi;
        if (!kv_backend_at(m, l, &n_on, &bi, &usable)) continue;
        uint64_t tokens = usable / (row * (uint64_t)n_on) / 2; /* room for cached prefixes too */
        tokens -= tokens % (uint64_t)cfg->page_size;
        if (tokens < (uint64_t)best) best = tokens > 256 ? (int)tokens : 256;
    }
    return best;
}

/* HEARTH_SPEC_DRAFT: check the draft model's vocabulary against the target's
 * and make its KV pool and forward. */
static bool engine_drafter(hearth_engine *e, hearth_error *err) {
    const hearth_engine_config *c = &e->cfg;
    if (!c->draft) {
        hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "speculative mode 'draft' needs a draft model (--draft MODEL, or models.NAME.draft in "
            "the config)");
        return false;
    }
    if (hearth_spec_vocab_check(e->m, c->draft, err)) return false;
    e->drafter = hearth_drafter_create(c->draft, c->n_parallel, c->n_ctx, c->page_size, c->n_batch,
                                       c->kv_type, (int64_t)c->n_pages * c->page_size, err);
    e->jobs = malloc((size_t)c->n_parallel * sizeof *e->jobs);
    e->job_run = malloc((size_t)c->n_parallel * sizeof *e->job_run);
    if (e->drafter && (!e->jobs || !e->job_run))
        hearth_error_set(err, HEARTH_ERR_NOMEM, "engine: out of memory");
    return e->drafter && e->jobs && e->job_run;
}

const char *hearth_engine_note(const hearth_engine *e) {
    return e->note;
}

hearth_engine *hearth_engine_create(hearth_model *m, const hearth_engine_config *cfg_in, hearth_error *err) {
    hearth_engine_config cfg = cfg_in ? *cfg_in : hearth_engine_defaults();
    bool auto_ctx = cfg.n_ctx <= 0;
    if (auto_ctx) cfg.n_ctx = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
    if (cfg.n_parallel <= 0) cfg.n_parallel = 8;
    if (cfg.n_batch <= 0) cfg.n_batch = 512;
    if (cfg.page_size <= 0) cfg.page_size = 16;
    if (cfg.max_waiting <= 0) cfg.max_waiting = 256;
    if (cfg.draft_max <= 0) cfg.draft_max = 8;
    if (cfg.draft_max > HEARTH_FORWARD_MAX_LOGITS / 2) cfg.draft_max = HEARTH_FORWARD_MAX_LOGITS / 2;
    if (cfg.draft_min <= 0) cfg.draft_min = 1;
    if (cfg.draft_min > cfg.draft_max) cfg.draft_min = cfg.draft_max;
    if (cfg.spec_max_batch <= 0) cfg.spec_max_batch = 4;
    if (cfg.n_batch < cfg.n_parallel) cfg.n_batch = cfg.n_parallel;
    char note[256] = "";
    if (cfg.n_pages <= 0 && auto_ctx) {
        /* the model's context, cut to what one sequence can have in the free memory */
        int fit = ctx_that_fits(m, &cfg);
        if (fit < cfg.n_ctx) {
            snprintf(note, sizeof note, "context %d tokens: the model's %d does not fit in the free memory",
                     fit, cfg.n_ctx);
            cfg.n_ctx = fit;
        }
    }
    if (cfg.n_pages <= 0) {
        /* every sequence at full context (with the automatic context: one full-context sequence or
         * every sequence at DEFAULT_SEQ_TOKENS, whichever is more), plus a quarter for cached prefixes */
        int per_seq = (cfg.n_ctx + cfg.page_size - 1) / cfg.page_size;
        int typical = (DEFAULT_SEQ_TOKENS + cfg.page_size - 1) / cfg.page_size;
        long want = (long)per_seq * cfg.n_parallel;
        if (auto_ctx && per_seq > typical) {
            long small = (long)typical * cfg.n_parallel;
            want = small > per_seq ? small : per_seq;
        }
        if (want > INT_MAX / 2) want = INT_MAX / 2;
        cfg.n_pages = (int)(want + want / 4 + 1);
        if (fit_pages(m, &cfg, per_seq, note + strlen(note), sizeof note - strlen(note), err)) return NULL;
        if (auto_ctx && cfg.n_ctx > DEFAULT_SEQ_TOKENS && !note[0])
            snprintf(
                note, sizeof note,
                "context %d tokens (the model's); the KV cache holds %d tokens: one full-context sequence, "
                "or %d of %d at once (-c, --parallel)",
                cfg.n_ctx, cfg.n_pages * cfg.page_size, cfg.n_parallel, DEFAULT_SEQ_TOKENS);
    }
    hearth_engine *e = calloc(1, sizeof *e);
    if (!e) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "engine: out of memory");
        return NULL;
    }
    snprintf(e->note, sizeof e->note, "%s", note);
    e->m = m;
    e->cfg = cfg;
    e->lim = (hearth_sched_limits){
        .n_parallel = cfg.n_parallel, .n_batch = cfg.n_batch, .page_size = cfg.page_size};
    e->next_id = 1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, cfg.kv_type,
                           cfg.page_size, cfg.n_pages,     m->layer_be};
    e->kv = hearth_kv_create(m->backend, &kc, err);
    if (!e->kv) goto fail;
    hearth_kv_stats_get(e->kv, &e->kv_stats); /* stats read before the first step see the pool */
    e->fw = hearth_forward_create(m, e->kv, cfg.n_batch, err);
    if (!e->fw) goto fail;
    if (cfg.n_parallel > HEARTH_FORWARD_MAX_LOGITS) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "engine: at most %d parallel sequences",
                         HEARTH_FORWARD_MAX_LOGITS);
        goto fail;
    }
    if (cfg.prefix_cache) {
        char fp[128];
        snprintf(fp, sizeof fp, "%s-%s-p%d-r%g-%g", m->fingerprint, hearth_dtype_name(cfg.kv_type),
                 cfg.page_size, m->hp.rope_freq_base, m->hp.rope_freq_scale);
        if (cfg.cache_db) {
            e->store = hearth_cache_store_open(cfg.cache_db, cfg.cache_db_max_bytes, err);
            if (!e->store) goto fail;
        }
        e->pc = hearth_prefix_cache_create(e->kv, fp, e->store, err);
        if (!e->pc) goto fail;
    }
    if (cfg.spec == HEARTH_SPEC_DRAFT && !engine_drafter(e, err)) goto fail;
    size_t nb = (size_t)cfg.n_batch;
    /* a speculating step may bring a logits row per drafted position to the host */
    size_t rows = cfg.spec != HEARTH_SPEC_OFF ? HEARTH_FORWARD_MAX_LOGITS : (size_t)cfg.n_parallel;
    e->logits = malloc(rows * (size_t)m->hp.n_vocab * sizeof *e->logits);
    e->pbuf = malloc((size_t)m->hp.n_vocab * sizeof *e->pbuf);
    e->ub_tok = malloc(nb * sizeof *e->ub_tok);
    e->ub_pos = malloc(nb * sizeof *e->ub_pos);
    e->ub_seq = malloc(nb * sizeof *e->ub_seq);
    e->ub_logits = malloc(nb * sizeof *e->ub_logits);
    e->ub_ids = malloc((size_t)HEARTH_FORWARD_MAX_LOGITS * sizeof *e->ub_ids);
    e->ub_owner_of_logits = malloc(nb * sizeof *e->ub_owner_of_logits);
    e->chunk = malloc((size_t)cfg.n_parallel * sizeof *e->chunk);
    e->pending = malloc((size_t)cfg.n_parallel * sizeof *e->pending);
    e->running = malloc((size_t)cfg.n_parallel * sizeof *e->running);
    if (!e->logits || !e->pbuf || !e->ub_tok || !e->ub_pos || !e->ub_seq || !e->ub_logits ||
        !e->ub_owner_of_logits || !e->ub_ids || !e->chunk || !e->pending || !e->running) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    if (pthread_create(&e->worker, NULL, worker_main, e)) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "engine: cannot start the worker thread");
        goto fail;
    }
    return e;
fail:
    engine_release(e);
    return NULL;
}

void hearth_engine_free(hearth_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->worker, NULL);
    while (e->n_running)
        finish(e, e->running[--e->n_running], HEARTH_FINISH_CANCELLED, HEARTH_OK, NULL);
    while (e->wait_head) {
        req *r = e->wait_head;
        e->wait_head = r->next;
        finish(e, r, HEARTH_FINISH_CANCELLED, HEARTH_OK, NULL);
    }
    engine_release(e);
}

/* The token trie and masking scratch, made once per engine (model). The trie
 * (a quarter second on a 150k vocabulary) is built outside the engine lock,
 * so the worker and stats readers do not wait for it; a submitter that loses
 * the race to install it frees its copy. */
static bool engine_grammar_ready(hearth_engine *e, hearth_error *err) {
    pthread_mutex_lock(&e->mu);
    bool ready = e->gvocab != NULL;
    pthread_mutex_unlock(&e->mu);
    if (ready) return true;
    const int32_t nv = hearth_tokenizer_n_vocab(e->m->tokenizer),
                  nl = e->m->hp.n_vocab > nv ? e->m->hp.n_vocab : nv;
    float *masked = malloc((size_t)nl * sizeof *masked);
    uint32_t *bits = malloc(((size_t)nv + 31) / 32 * sizeof *bits);
    hearth_grammar_vocab *gv = NULL;
    if (masked && bits) {
        for (int32_t i = 0; i < nl; i++)
            masked[i] = -INFINITY; /* rows past the vocabulary stay out */
        gv = hearth_grammar_vocab_create(e->m->tokenizer, err);
    } else {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory");
    }
    if (!gv) {
        free(masked);
        free(bits);
        return false;
    }
    pthread_mutex_lock(&e->mu);
    if (!e->gvocab) { /* ours: the worker reads these only for grammar requests, all submitted after this */
        e->gvocab = gv;
        e->gmasked = masked;
        e->gbits = bits;
        gv = NULL, masked = NULL, bits = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    hearth_grammar_vocab_free(gv);
    free(masked);
    free(bits);
    return true;
}

uint64_t hearth_engine_submit(hearth_engine *e, const hearth_request *rq, hearth_error *err) {
    if (!rq->prompt || rq->n_prompt <= 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "the prompt is empty");
        return 0;
    }
    int n_vocab = e->m->hp.n_vocab;
    for (int i = 0; i < rq->n_prompt; i++)
        if (rq->prompt[i] < 0 || rq->prompt[i] >= n_vocab) {
            hearth_error_set(err, HEARTH_ERR_INVALID, "prompt token %d is %d, outside the vocabulary (0..%d)",
                             i, rq->prompt[i], n_vocab - 1);
            return 0;
        }
    if (rq->n_prompt >= e->cfg.n_ctx) {
        hearth_error_set(
            err, HEARTH_ERR_CONTEXT,
            "the prompt has %d tokens but the context holds %d (prompt plus at least one new token)",
            rq->n_prompt, e->cfg.n_ctx);
        return 0;
    }
    req *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->seq = -1;
    r->dslot = -1;
    r->pick_prob = -1;
    r->n_prompt = rq->n_prompt;
    r->max_tokens = rq->max_tokens;
    r->ignore_eog = rq->ignore_eog;
    r->fn = rq->on_event;
    r->user = rq->user;
    r->st.prompt_tokens = rq->n_prompt;
    r->spec = e->cfg.spec != HEARTH_SPEC_OFF && !rq->no_spec;
    r->want_lp = rq->logprobs;
    r->n_top_lp = rq->top_logprobs < 0                         ? 0
                  : rq->top_logprobs > HEARTH_MAX_TOP_LOGPROBS ? HEARTH_MAX_TOP_LOGPROBS
                                                               : rq->top_logprobs;
    r->ctl = hearth_spec_ctl_init(e->cfg.draft_min, e->cfg.draft_max);
    r->acc = hearth_spec_acc_init();
    if (r->spec && !(r->draft = malloc((size_t)e->cfg.draft_max * sizeof *r->draft))) goto oom;
    if (r->spec && !(r->shadow = malloc((size_t)e->cfg.draft_max * sizeof *r->shadow))) goto oom;
    atomic_init(&r->cancel, false);
    r->toks.cap = (size_t)rq->n_prompt + 16;
    r->toks.ids = malloc(r->toks.cap * sizeof *r->toks.ids);
    if (!r->toks.ids) goto oom;
    memcpy(r->toks.ids, rq->prompt, (size_t)rq->n_prompt * sizeof *rq->prompt);
    r->toks.n = (size_t)rq->n_prompt;
    r->smp = hearth_sampler_create(&rq->sampling, n_vocab, err);
    if (!r->smp) {
        req_free(r);
        return 0;
    }
    for (int i = 0; i < rq->n_prompt; i++)
        hearth_sampler_accept(r->smp, rq->prompt[i]);
    hearth_detok_init(&r->dt, e->m->tokenizer, false, false);
    if (hearth_stop_init(&r->stop, rq->stop, rq->n_stop, NULL)) goto oom;
    if (rq->grammar && !engine_grammar_ready(e, err)) {
        req_free(r);
        return 0;
    }
    if (hearth_grammar_seq_init(&r->gs, rq->grammar, rq->grammar_triggers, rq->n_grammar_triggers, err)) {
        req_free(r);
        return 0;
    }
    r->t_submit = hearth_now_ms();
    pthread_mutex_lock(&e->mu);
    if (e->n_waiting >= e->cfg.max_waiting) {
        pthread_mutex_unlock(&e->mu);
        req_free(r);
        hearth_error_set(err, HEARTH_ERR_BUSY, "too many requests waiting (%d); try again later",
                         e->cfg.max_waiting);
        return 0;
    }
    r->id = e->next_id++;
    r->live_next = e->live;
    if (e->live) e->live->live_prev = r;
    e->live = r;
    if (e->wait_tail)
        e->wait_tail->next = r;
    else
        e->wait_head = r;
    e->wait_tail = r;
    e->n_waiting++;
    uint64_t id = r->id;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return id;
oom:
    req_free(r);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    return 0;
}

void hearth_engine_cancel(hearth_engine *e, uint64_t id) {
    /* every live request is on the `live` list until its DONE event; the
     * worker notices the flag at its next step */
    pthread_mutex_lock(&e->mu);
    for (req *r = e->live; r; r = r->live_next)
        if (r->id == id) atomic_store(&r->cancel, true);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void hearth_engine_stats_get(hearth_engine *e, hearth_engine_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->mu);
    out->running = e->n_running_pub;
    out->waiting = e->n_waiting;
    out->requests_done = e->requests_done;
    out->tokens_generated = e->tokens_generated;
    out->prompt_tokens = e->prompt_tokens;
    out->cached_tokens = e->cached_tokens;
    out->preemptions = e->preemptions;
    out->steps = e->steps;
    out->kv = e->kv_stats;
    out->prefix = e->prefix_stats;
    out->prefix_enabled = e->pc != NULL;
    out->spec = e->cfg.spec;
    out->spec_passes = e->spec_passes;
    out->spec_tokens = e->spec_tokens;
    out->spec_drafted = e->spec_drafted;
    out->spec_accepted = e->spec_accepted;
    out->spec_off_load = e->spec_off_load;
    out->spec_cost_skips = e->spec_cost_skips;
    out->spec_pass_ms_fixed = e->cost_a;
    out->spec_pass_ms_per_pos = e->cost_b;
    out->spec_draft_pass_ms = e->cost_draft;
    out->grammar_checked = e->grammar_checked;
    out->grammar_masked = e->grammar_masked;
    pthread_mutex_unlock(&e->mu);
}

const hearth_model *hearth_engine_model(const hearth_engine *e) {
    return e->m;
}
int hearth_engine_n_ctx(const hearth_engine *e) {
    return e->cfg.n_ctx;
}

/* ------------------------------------------------------------ synchronous helper */

typedef struct sync_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    hearth_completion *out;
    strbuf text;         /* the text so far; handed to out at DONE */
    hearth_event_fn tap; /* the caller's own callback, called first */
    void *tap_user;
} sync_ctx;

static void sync_event(const hearth_event *ev, void *user) {
    sync_ctx *s = user;
    hearth_completion *c = s->out;
    if (s->tap) s->tap(ev, s->tap_user);
    if (ev->kind == HEARTH_EVENT_TOKEN) hearth_tokens_push(&c->tokens, ev->token);
    if (ev->text_len) strbuf_add(&s->text, ev->text, ev->text_len);
    if (ev->kind == HEARTH_EVENT_DONE) {
        /* what was appended before memory ran out, if it did */
        c->text = s->text.p;
        c->text_len = s->text.n;
        s->text = (strbuf){0};
        c->finish = ev->finish;
        c->stats = *ev->stats;
        if (ev->error) snprintf(c->error, sizeof c->error, "%s", ev->error);
        pthread_mutex_lock(&s->mu);
        s->done = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

hearth_status hearth_engine_generate(hearth_engine *e, const hearth_request *r, hearth_completion *out,
                                     hearth_error *err) {
    memset(out, 0, sizeof *out);
    sync_ctx s = {.out = out, .tap = r->on_event, .tap_user = r->user};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    hearth_request rq = *r;
    rq.on_event = sync_event;
    rq.user = &s;
    hearth_status st = HEARTH_OK;
    if (!hearth_engine_submit(e, &rq, err)) {
        st = err ? err->code : HEARTH_ERR_INVALID;
    } else {
        pthread_mutex_lock(&s.mu);
        while (!s.done)
            pthread_cond_wait(&s.cv, &s.mu);
        pthread_mutex_unlock(&s.mu);
        if (!out->text) out->text = calloc(1, 1);
        if (out->finish == HEARTH_FINISH_ERROR)
            st = hearth_error_set(err, HEARTH_ERR_BACKEND, "%s", out->error);
    }
    strbuf_free(&s.text);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return st;
}

void hearth_completion_free(hearth_completion *c) {
    hearth_tokens_free(&c->tokens);
    free(c->text);
    memset(c, 0, sizeof *c);
}
