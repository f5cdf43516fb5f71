/*
 * spec_draft.c - see spec_draft.h. Every draft pass goes through
 * hearth_forward_run_argmax, so only the chosen ids leave the device, unless
 * a job of the pass samples its draft (pick): then the pass brings its logits
 * rows to the host and greedy jobs take the host argmax of theirs.
 */
#include "spec_draft.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/argmax.h"
#include "core/os.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward.h"

#define MAX_JOBS HEARTH_FORWARD_MAX_LOGITS

typedef struct dslot {
    bool used;
    int seq;           /* draft KV sequence */
    hearth_tokens fed; /* the tokens whose K/V the sequence holds, in order */
} dslot;

struct hearth_drafter {
    hearth_model *m;
    hearth_kv_cache *kv;
    hearth_forward *fw;
    int n_slots, n_batch;
    dslot *slots;
    int32_t *tok, *pos, *seq, *ids;
    bool *want;
    int *row_job;    /* [MAX_JOBS] which job each logits row belongs to */
    float *logits;   /* [MAX_JOBS, n_vocab] host rows, allocated at the first sampled draft */
    int cost_passes; /* hearth_drafter_take_cost */
    double cost_ms;
};

static void describe(const hearth_tokenizer *t, int32_t id, char *buf, size_t cap) {
    size_t len = 0;
    const char *s = id >= 0 && id < hearth_tokenizer_n_vocab(t) ? hearth_tokenizer_text(t, id, &len) : NULL;
    if (!s) {
        snprintf(buf, cap, "(none)");
        return;
    }
    if (len > 40) len = 40;
    snprintf(buf, cap, "'%.*s'", (int)len, s);
}

hearth_status hearth_spec_vocab_check(const hearth_model *target, const hearth_model *draft,
                                      hearth_error *err) {
    const hearth_tokenizer *tt = target->tokenizer, *dt = draft->tokenizer;
    int32_t nt = hearth_tokenizer_n_vocab(tt), nd = hearth_tokenizer_n_vocab(dt);
    int32_t first = -1; /* the first token whose text differs (or that only one has) */
    for (int32_t i = 0; i < (nt > nd ? nt : nd) && first < 0; i++) {
        size_t la = 0, lb = 0;
        const char *sa = i < nt ? hearth_tokenizer_text(tt, i, &la) : NULL;
        const char *sb = i < nd ? hearth_tokenizer_text(dt, i, &lb) : NULL;
        if (!sa != !sb || la != lb || (sa && la && memcmp(sa, sb, la))) first = i;
    }
    char a[64] = "", b[64] = "";
    if (first >= 0) {
        describe(dt, first, a, sizeof a);
        describe(tt, first, b, sizeof b);
    }
    if (nt != nd || target->hp.n_vocab != draft->hp.n_vocab)
        return hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "draft model: its vocabulary has %d tokens (%d logits), the target's %d (%d); "
            "the first difference is token %d, %s in the draft but %s in the target: a "
            "draft model must share the target's vocabulary",
            nd, draft->hp.n_vocab, nt, target->hp.n_vocab, (int)first, a, b);
    if (first >= 0)
        return hearth_error_set(
            err, HEARTH_ERR_INVALID,
            "draft model: token %d is %s in the draft but %s in the target: a draft model "
            "must share the target's vocabulary",
            (int)first, a, b);
    struct {
        const char *name;
        int32_t t, d;
    } sp[] = {{"BOS", hearth_tokenizer_bos(tt), hearth_tokenizer_bos(dt)},
              {"EOS", hearth_tokenizer_eos(tt), hearth_tokenizer_eos(dt)},
              {"EOT", hearth_tokenizer_eot(tt), hearth_tokenizer_eot(dt)}};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (sp[i].t != sp[i].d)
            return hearth_error_set(
                err, HEARTH_ERR_INVALID,
                "draft model: its %s token is %d, the target's %d: a draft model must share "
                "the target's special tokens",
                sp[i].name, (int)sp[i].d, (int)sp[i].t);
    return HEARTH_OK;
}

hearth_drafter *hearth_drafter_create(hearth_model *m, int n_slots, int n_ctx, int page_size, int n_batch,
                                      hearth_dtype kv_type, int64_t max_tokens, hearth_error *err) {
    hearth_drafter *d = calloc(1, sizeof *d);
    if (!d) goto oom;
    d->m = m;
    d->n_slots = n_slots;
    d->n_batch = n_batch;
    /* every slot at full context plus its draft, plus one page each for copy-on-write */
    int per_slot = (n_ctx + HEARTH_FORWARD_MAX_LOGITS + page_size - 1) / page_size + 1;
    int64_t pages = (int64_t)per_slot * n_slots;
    if (max_tokens > 0) { /* the cap, plus each slot's draft room and copy-on-write page */
        int64_t cap =
            (max_tokens + page_size - 1) / page_size + (int64_t)n_slots * (per_slot < 6 ? per_slot : 6);
        if (cap < pages) pages = cap;
    }
    if (pages > INT32_MAX / 2) pages = INT32_MAX / 2;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, kv_type,
                           page_size,     (int)pages,      m->layer_be};
    d->kv = hearth_kv_create(m->backend, &kc, err);
    if (!d->kv) goto fail;
    d->fw = hearth_forward_create(m, d->kv, n_batch, err);
    if (!d->fw) goto fail;
    d->slots = calloc((size_t)n_slots, sizeof *d->slots);
    d->tok = malloc((size_t)n_batch * sizeof *d->tok);
    d->pos = malloc((size_t)n_batch * sizeof *d->pos);
    d->seq = malloc((size_t)n_batch * sizeof *d->seq);
    d->want = malloc((size_t)n_batch * sizeof *d->want);
    d->ids = malloc(MAX_JOBS * sizeof *d->ids);
    d->row_job = malloc(MAX_JOBS * sizeof *d->row_job);
    if (!d->slots || !d->tok || !d->pos || !d->seq || !d->want || !d->ids || !d->row_job) goto oom;
    return d;
oom:
    hearth_error_set(err, HEARTH_ERR_NOMEM, "draft model: out of memory");
fail:
    hearth_drafter_free(d);
    return NULL;
}

void hearth_drafter_free(hearth_drafter *d) {
    if (!d) return;
    for (int i = 0; d->slots && i < d->n_slots; i++)
        hearth_drafter_slot_free(d, i);
    hearth_forward_free(d->fw);
    hearth_kv_free(d->kv);
    free(d->slots);
    free(d->tok);
    free(d->pos);
    free(d->seq);
    free(d->want);
    free(d->ids);
    free(d->row_job);
    free(d->logits);
    free(d);
}

int hearth_drafter_slot_take(hearth_drafter *d) {
    for (int i = 0; i < d->n_slots; i++) {
        if (d->slots[i].used) continue;
        int seq = hearth_kv_seq_create(d->kv, NULL);
        if (seq < 0) return -1;
        d->slots[i] = (dslot){.used = true, .seq = seq};
        return i;
    }
    return -1;
}

void hearth_drafter_slot_free(hearth_drafter *d, int slot) {
    if (slot < 0 || slot >= d->n_slots || !d->slots[slot].used) return;
    hearth_kv_seq_free(d->kv, d->slots[slot].seq);
    hearth_tokens_free(&d->slots[slot].fed);
    d->slots[slot] = (dslot){0};
}

/* Cut the slot back to at most `keep` tokens of its common prefix with toks[0..n). */
static void sync_slot(hearth_drafter *d, dslot *s, const int32_t *toks, int n, int keep) {
    int c = 0, fed = (int)s->fed.n;
    while (c < fed && c < n && c < keep && s->fed.ids[c] == toks[c])
        c++;
    if (c < fed) {
        hearth_kv_seq_truncate(d->kv, s->seq, fed - c);
        s->fed.n = (size_t)c;
    }
}

void hearth_drafter_keep(hearth_drafter *d, int slot, const int32_t *toks, int n) {
    if (slot < 0 || slot >= d->n_slots || !d->slots[slot].used) return;
    sync_slot(d, &d->slots[slot], toks, n, n);
}

/* One draft pass over the ubatch built in d's scratch (n tokens, rows logits
 * rows, row r belonging to jobs[row_job[r]]); d->ids[r] receives each row's
 * choice: the device argmax, or the job's pick from the host logits. */
static hearth_status pass_run(hearth_drafter *d, hearth_draft_job *jobs, int n, int rows, hearth_error *err);

static hearth_status pass(hearth_drafter *d, hearth_draft_job *jobs, int n, int rows, hearth_error *err) {
    const double t0 = hearth_now_ms();
    hearth_status st = pass_run(d, jobs, n, rows, err);
    if (!st && n <= 2 * rows) { /* about one token per job: the cost of drafting a token */
        d->cost_passes++;
        d->cost_ms += hearth_now_ms() - t0;
    }
    return st;
}

void hearth_drafter_take_cost(hearth_drafter *d, int *passes, double *ms) {
    *passes = d->cost_passes;
    *ms = d->cost_ms;
    d->cost_passes = 0;
    d->cost_ms = 0;
}

static hearth_status pass_run(hearth_drafter *d, hearth_draft_job *jobs, int n, int rows, hearth_error *err) {
    hearth_ubatch ub = {n, d->tok, d->pos, d->seq, d->want};
    bool host = false;
    for (int r = 0; r < rows && !host; r++)
        host = jobs[d->row_job[r]].pick != NULL;
    if (!host) {
        int got = hearth_forward_run_argmax(d->fw, &ub, NULL, d->ids, err);
        return got < 0 ? (hearth_status)got : HEARTH_OK;
    }
    const int nv = d->m->hp.n_vocab;
    if (!d->logits && !(d->logits = malloc((size_t)MAX_JOBS * (size_t)nv * sizeof *d->logits)))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "draft model: out of memory");
    int got = hearth_forward_run(d->fw, &ub, d->logits, err);
    if (got < 0) return (hearth_status)got;
    for (int r = 0; r < rows; r++) {
        hearth_draft_job *jb = &jobs[d->row_job[r]];
        const float *row = d->logits + (size_t)r * (size_t)nv;
        d->ids[r] = jb->pick ? jb->pick(jb->user, jb->n_out, row) : hearth_argmax(row, nv);
    }
    return HEARTH_OK;
}

/* Feed every job's unseen tokens toks[fed..n); the pass holding a job's last
 * token gives its first draft token. Jobs whose KV cannot grow get k = 0. */
static hearth_status catch_up(hearth_drafter *d, hearth_draft_job *jobs, int n_jobs, hearth_error *err) {
    for (int j = 0; j < n_jobs; j++) {
        dslot *s = &d->slots[jobs[j].slot];
        sync_slot(d, s, jobs[j].toks, jobs[j].n,
                  jobs[j].n - 1); /* the last token is fed again for its logits */
        if (hearth_kv_seq_reserve(d->kv, s->seq, jobs[j].n + jobs[j].k, NULL)) jobs[j].k = 0;
    }
    int j = 0;
    while (j < n_jobs) {
        int n = 0, rows = 0;
        while (j < n_jobs && n < d->n_batch) {
            hearth_draft_job *jb = &jobs[j];
            dslot *s = &d->slots[jb->slot];
            if (jb->k <= 0) {
                j++;
                continue;
            }
            int from = (int)s->fed.n, take = jb->n - from;
            if (take > d->n_batch - n) take = d->n_batch - n;
            for (int t = 0; t < take; t++, n++) {
                d->tok[n] = jb->toks[from + t];
                d->pos[n] = from + t;
                d->seq[n] = s->seq;
                d->want[n] = from + t == jb->n - 1;
                if (d->want[n]) d->row_job[rows++] = j;
                if (!hearth_tokens_push(&s->fed, jb->toks[from + t]))
                    return hearth_error_set(err, HEARTH_ERR_NOMEM, "draft model: out of memory");
            }
            if ((int)s->fed.n == jb->n) j++;
        }
        if (n == 0) break;
        hearth_status st = pass(d, jobs, n, rows, err);
        if (st) return st;
        for (int r = 0; r < rows; r++) {
            hearth_draft_job *jb = &jobs[d->row_job[r]];
            if (d->ids[r] < 0) continue; /* the pick ended the draft */
            jb->out[0] = d->ids[r];
            jb->n_out = 1;
        }
    }
    return HEARTH_OK;
}

hearth_status hearth_drafter_run(hearth_drafter *d, hearth_draft_job *jobs, int n_jobs, hearth_error *err) {
    if (n_jobs > MAX_JOBS) n_jobs = MAX_JOBS;
    int k_max = 0;
    for (int j = 0; j < n_jobs; j++) {
        jobs[j].n_out = 0;
        if (jobs[j].k > k_max) k_max = jobs[j].k;
    }
    hearth_status st = catch_up(d, jobs, n_jobs, err);
    if (st) return st;
    /* step s feeds each job's draft token s-1 and drafts token s */
    for (int step = 1; step < k_max; step++) {
        int n = 0;
        for (int j = 0; j < n_jobs; j++) {
            hearth_draft_job *jb = &jobs[j];
            if (jb->n_out != step || jb->k <= step) continue;
            dslot *s = &d->slots[jb->slot];
            d->tok[n] = jb->out[step - 1];
            d->pos[n] = (int)s->fed.n;
            d->seq[n] = s->seq;
            d->want[n] = true;
            d->row_job[n] = j;
            if (!hearth_tokens_push(&s->fed, jb->out[step - 1]))
                return hearth_error_set(err, HEARTH_ERR_NOMEM, "draft model: out of memory");
            n++;
        }
        if (n == 0) break;
        st = pass(d, jobs, n, n, err);
        if (st) return st;
        for (int r = 0; r < n; r++) {
            hearth_draft_job *jb = &jobs[d->row_job[r]];
            if (d->ids[r] >= 0) jb->out[jb->n_out++] = d->ids[r];
        }
    }
    return HEARTH_OK;
}
