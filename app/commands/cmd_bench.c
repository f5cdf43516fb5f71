/*
 * cmd_bench.c - `hearth bench`: prompt-processing and generation speed, like
 * llama-bench, with a memory-bandwidth roofline for every generation figure.
 *
 * For each model x thread count (one backend per thread count):
 *   warm-up   one short pass (min(P, 32) tokens) and two decode steps, untimed;
 *   pp        one forward pass over P random valid token ids on a fresh
 *             sequence (positions 0..P-1, logits for the last token only);
 *   tg        N single-token decode steps continuing that sequence (positions
 *             P..P+N-1; each step's input is a pre-drawn random id, so no
 *             sampling is timed);
 * repeated R times; tok/s is reported as mean +- sample stddev over the reps.
 *
 * Roofline: a STREAM-like read of a buffer much larger than the last-level
 * cache (default 1 GiB, at most a quarter of available memory), summed by T
 * threads, best of several passes, once per thread count. Bytes a decode step
 * must read = every weight matrix once (token_embd: one row, unless tied, when
 * it is the output matrix) + norms/biases + the K and V rows of the average
 * context of the tg phase (P + (N+1)/2 keys per layer). The fraction shown is
 * bytes_per_token x tg tok/s / bandwidth. The probe measures host memory, so
 * only host-visible (CPU) backends get a roofline; for a GPU it is left out.
 *
 * --profile turns on the backend's per-op timers and prints time per op type
 * for the pp and tg phases separately (averaged per rep), plus the wall time
 * spent outside ops.
 *
 * Options: the engine options of app/cli/engine_opts.h (defaults, the
 * config file, then the flags); pp/tg use the backend, GPU layers, KV type
 * and, unless -t lists thread counts, the threads.
 *
 * Output: a Markdown table on stdout (rows as they finish), or with --json one
 * JSON object per line per model x threads configuration. Progress notes go
 * to stderr only when it is a terminal.
 * Owner: the mkmodel/bench engineer.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "app/commands/bench_spec.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward.h"

#define MAX_MODELS 32
#define MAX_THREAD_COUNTS 32

// ---------------------------------------------------------------- statistics

typedef struct stats {
    double mean, stddev;
} stats;

static stats stats_of(const double *x, int n) {
    stats s = {0, 0};
    if (n <= 0) return s;
    for (int i = 0; i < n; i++)
        s.mean += x[i];
    s.mean /= n;
    if (n > 1) {
        double v = 0;
        for (int i = 0; i < n; i++)
            v += (x[i] - s.mean) * (x[i] - s.mean);
        s.stddev = sqrt(v / (n - 1));
    }
    return s;
}

// ---------------------------------------------------------------- bandwidth probe

/* 32-byte lanes through GCC vector extensions: wide loads on any x86-64 or
 * arm64 without ISA flags, so the probe is not limited by load width. */
typedef uint64_t bw_vec __attribute__((vector_size(32)));

typedef struct bw_job {
    bw_vec *p;
    size_t n; /* vectors */
    bool fill;
    uint64_t sink;
} bw_job;

static void *bw_worker(void *arg) {
    bw_job *j = arg;
    if (j->fill) {
        bw_vec v = {1, 2, 3, 4};
        for (size_t i = 0; i < j->n; i++)
            j->p[i] = v;
        return NULL;
    }
    bw_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t i = 0;
    for (; i + 4 <= j->n; i += 4) {
        a0 += j->p[i];
        a1 += j->p[i + 1];
        a2 += j->p[i + 2];
        a3 += j->p[i + 3];
    }
    for (; i < j->n; i++)
        a0 += j->p[i];
    bw_vec s = a0 + a1 + a2 + a3;
    j->sink = s[0] + s[1] + s[2] + s[3];
    return NULL;
}

/* One pass of nth threads over buf (fill or read); returns seconds, thread
 * start-up included (tens of microseconds against a pass of tens of ms). A
 * thread that cannot be started has its share done by the caller. */
static double bw_pass(bw_vec *buf, size_t n_vec, int nth, bool fill, uint64_t *sink) {
    bw_job jobs[256];
    pthread_t th[256];
    bool started[256] = {false};
    for (int i = 0; i < nth; i++) {
        size_t a = n_vec * (size_t)i / (size_t)nth, b = n_vec * (size_t)(i + 1) / (size_t)nth;
        jobs[i] = (bw_job){buf + a, b - a, fill, 0};
    }
    double t0 = hearth_now_ms();
    for (int i = 1; i < nth; i++)
        started[i] = pthread_create(&th[i], NULL, bw_worker, &jobs[i]) == 0;
    bw_worker(&jobs[0]);
    for (int i = 1; i < nth; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            bw_worker(&jobs[i]);
    }
    double t1 = hearth_now_ms();
    for (int i = 0; i < nth; i++)
        *sink += jobs[i].sink;
    return (t1 - t0) / 1000.0;
}

static uint64_t mem_available(void) {
    uint64_t total, avail;
    hearth_host_memory(&total, &avail);
    return avail;
}

static uint64_t llc_bytes(void) {
    uint64_t best = 0;
    for (int idx = 0; idx < 8; idx++) {
        char path[128], buf[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            char unit = 0;
            unsigned long long v = 0;
            if (sscanf(buf, "%llu%c", &v, &unit) >= 1) {
                uint64_t b = v * (unit == 'K' ? 1024ull : unit == 'M' ? 1048576ull : 1ull);
                if (b > best) best = b;
            }
        }
        fclose(f);
    }
    return best;
}

/* Best read bandwidth in GB/s (1e9 bytes/s) of nth threads over a buffer of
 * up to want_bytes; 0 when the buffer cannot be allocated. */
static double bw_probe(int nth, uint64_t want_bytes, uint64_t *used_bytes) {
    uint64_t avail = mem_available();
    uint64_t bytes = want_bytes;
    if (avail && bytes > avail / 4) bytes = avail / 4;
    bytes &= ~(uint64_t)((1 << 20) - 1);
    if (bytes < (16u << 20)) bytes = 16u << 20;
    *used_bytes = bytes;
    if (nth > 256) nth = 256;
    size_t n_vec = (size_t)(bytes / sizeof(bw_vec));
    const size_t huge = (size_t)2 << 20; /* 2 MiB: transparent huge pages, fewer faults and TLB misses */
    bw_vec *buf = aligned_alloc(huge, n_vec * sizeof(bw_vec));
    if (!buf) return 0;
    madvise(buf, n_vec * sizeof(bw_vec), MADV_HUGEPAGE);
    uint64_t sink = 0;
    bw_pass(buf, n_vec, nth, true, &sink); /* first touch, by the same threads */
    double best = 0, total = 0;
    for (int pass = 0; pass < 12 && (pass < 5 || total < 0.5); pass++) {
        double s = bw_pass(buf, n_vec, nth, false, &sink);
        total += s;
        double gbs = s > 0 ? (double)(n_vec * sizeof(bw_vec)) / s / 1e9 : 0;
        if (gbs > best) best = gbs;
    }
    free(buf);
    if (sink == 42) fputc(' ', stderr); /* keep the sums alive */
    return best;
}

// ---------------------------------------------------------------- model facts

typedef struct model_facts {
    hearth_dtype type; /* dominant weight type (most bytes) */
    uint64_t bytes_per_token_weights;
    uint64_t kv_bytes_per_key; /* K + V, all layers, one position */
} model_facts;

static uint64_t tensor_bytes(const hearth_tensor *t) {
    return t->data ? (uint64_t)t->nb1 * (uint64_t)t->ne1 : 0;
}

static model_facts model_facts_of(const hearth_model *m, hearth_dtype kv_type) {
    model_facts f = {0};
    uint64_t by_type[HEARTH_DTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < hearth_gguf_n_tensors(m->gguf); i++) {
        const gguf_tensor *t = hearth_gguf_tensor_at(m->gguf, i);
        if (t->ne[1] > 1) by_type[t->type] += t->nbytes;
    }
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
        if (by_type[t] > by_type[f.type]) f.type = (hearth_dtype)t;
    uint64_t w = 0;
    for (int l = 0; l < m->hp.n_layer; l++) {
        const hearth_layer *ly = &m->layers[l];
        const hearth_tensor *ts[] = {&ly->attn_norm, &ly->wq,     &ly->wk,   &ly->wv,     &ly->wo,
                                     &ly->bq,        &ly->bk,     &ly->bv,   &ly->q_norm, &ly->k_norm,
                                     &ly->ffn_norm,  &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++)
            w += tensor_bytes(ts[k]);
        w += tensor_bytes(&ly->ffn_gate_inp_shexp) + tensor_bytes(&ly->ffn_gate_shexp) + /* qwen2moe */
             tensor_bytes(&ly->ffn_up_shexp) + tensor_bytes(&ly->ffn_down_shexp);
        if (ly->ffn_gate_inp.data) /* MoE: the router, and the experts one token uses */
            w += tensor_bytes(&ly->ffn_gate_inp) +
                 (tensor_bytes(&ly->ffn_gate_exps) + tensor_bytes(&ly->ffn_up_exps) +
                  tensor_bytes(&ly->ffn_down_exps)) /
                     (uint64_t)m->hp.n_expert * (uint64_t)m->hp.n_expert_used;
    }
    w += tensor_bytes(&m->output_norm) + tensor_bytes(&m->output);
    if (!m->hp.tied_output) w += m->token_embd.nb1; /* one embedding row */
    f.bytes_per_token_weights = w;
    f.kv_bytes_per_key = 2ull * (uint64_t)m->hp.n_layer *
                         hearth_dtype_row_size(kv_type, (int64_t)m->hp.n_head_kv * m->hp.head_dim);
    return f;
}

static void human_size(double b, char *out, size_t cap) {
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(out, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else
        snprintf(out, cap, "%.2f MiB", b / (1024.0 * 1024));
}

static void human_params(double n, char *out, size_t cap) {
    if (n >= 1e9)
        snprintf(out, cap, "%.2f B", n / 1e9);
    else
        snprintf(out, cap, "%.2f M", n / 1e6);
}

// ---------------------------------------------------------------- one configuration

typedef struct bench_opts {
    int n_prompt, n_gen, reps;
    int depth; /* -d: tokens of context already in the cache before pp and tg (llama-bench's -d) */
    bool json, profile;
    uint64_t bw_bytes;    /* 0: no probe */
    hearth_dtype kv_type; /* of the KV cache the tg steps read */
    app_engine_opts eo;   /* backend, GPU layers (threads: the -t list) */
} bench_opts;

typedef struct phase_profile {
    double op_us[HEARTH_OP_COUNT];
    uint64_t op_count[HEARTH_OP_COUNT];
    double wall_us;
} phase_profile;

typedef struct bench_result {
    char model[160], file[1024], type[16], backend[64], device[160];
    char plan[512]; /* partial offload: where the layers ran ("" on the CPU backend) */
    int device_layers;
    uint64_t n_params, model_bytes;
    int threads;
    stats pp, tg;
    double bw_gbs;
    uint64_t bw_buffer;
    double bytes_per_token, roofline;
    phase_profile prof_pp, prof_tg;
    bool has_spec; /* --spec / --draft: tg through the engine with and without speculation */
    bench_spec_result spec;
} bench_result;

static void profile_take(hearth_backend *be, phase_profile *p, double wall_ms) {
    double us[HEARTH_OP_COUNT];
    uint64_t count[HEARTH_OP_COUNT];
    hearth_backend_profile_read(be, us, count);
    for (int op = 0; op < HEARTH_OP_COUNT; op++) {
        p->op_us[op] += us[op];
        p->op_count[op] += count[op];
    }
    p->wall_us += wall_ms * 1000.0;
}

static void note(bool tty, const char *model, int threads, const char *what, int i, int n) {
    if (!tty) return;
    fprintf(stderr, "\r\033[Khearth bench: %s, %d thread%s: %s %d/%d", model, threads,
            threads == 1 ? "" : "s", what, i, n);
    fflush(stderr);
}

/* Run pp/tg for a loaded model; false (message printed) on a runtime error. */
static bool bench_model(hearth_model *m, hearth_backend *be, int threads, const bench_opts *o,
                        bench_result *res) {
    const int P = o->n_prompt, N = o->n_gen, D = o->depth, page = 16, T = D + P + N + 1;
    const bool tty = isatty(2) == 1;
    hearth_error err = {0};
    bool ok = false;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, o->kv_type,
                           page,          T / page + 2,    m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, &err);
    int fw_max = P > 0 ? P : 1;
    if (D > 0 && fw_max < 512) fw_max = 512; /* the depth is filled in passes of this size */
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, fw_max, &err) : NULL;
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    int32_t *tokens = malloc((size_t)T * sizeof *tokens);
    int32_t *pos = malloc((size_t)T * sizeof *pos);
    int32_t *seqs = malloc((size_t)T * sizeof *seqs);
    int dseq = -1; /* -d: the sequence holding the depth */
    double *pp_s = calloc((size_t)o->reps, sizeof *pp_s), *tg_s = calloc((size_t)o->reps, sizeof *tg_s);
    if (!kv || !fw || !logits || !tokens || !pos || !seqs || !pp_s || !tg_s) {
        fprintf(stderr, "hearth bench: %s: %s\n", m->name, err.msg[0] ? err.msg : "out of memory");
        goto done;
    }
    uint64_t rs = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < T; i++) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        tokens[i] = (int32_t)(rs % (uint64_t)m->hp.n_vocab);
        pos[i] = i;
    }
    /* ---- warm-up: touch every weight page, start the workers */
    {
        int seq = hearth_kv_seq_create(kv, &err);
        if (seq < 0) goto fail;
        int wp = P > 0 ? (P < 32 ? P : 32) : 1;
        for (int i = 0; i < wp; i++)
            seqs[i] = seq;
        hearth_ubatch ub = {wp, tokens, pos, seqs, NULL};
        if (hearth_forward_run(fw, &ub, logits, &err) < 0) goto fail;
        for (int i = 0; i < 2 && N > 0; i++) {
            int32_t p = wp + i; /* positions past the pp warm-up; pos[] may be shorter */
            hearth_ubatch one = {1, tokens + (P + i) % (P + N + 1), &p, &seq, NULL};
            if (hearth_forward_run(fw, &one, logits, &err) < 0) goto fail;
        }
        hearth_kv_seq_free(kv, seq);
    }
    if (D > 0) { /* fill the depth once; each test runs after it and is cut back to it */
        dseq = hearth_kv_seq_create(kv, &err);
        if (dseq < 0) goto fail;
        for (int i = 0; i < D; i++)
            seqs[i] = dseq;
        for (int p = 0; p < D; p += fw_max) {
            note(tty, m->name, threads, "filling the depth, token", p, D);
            hearth_ubatch ub = {D - p < fw_max ? D - p : fw_max, tokens + p, pos + p, seqs + p, NULL};
            if (hearth_forward_run(fw, &ub, logits, &err) < 0) goto fail;
        }
    }
    hearth_backend_profile_enable(be, o->profile);
    for (int r = 0; r < o->reps && D > 0; r++) {
        for (int i = D; i < D + P; i++)
            seqs[i] = dseq;
        if (P > 0) {
            note(tty, m->name, threads, "pp rep", r + 1, o->reps);
            hearth_backend_profile_reset(be);
            hearth_ubatch ub = {P, tokens + D, pos + D, seqs + D, NULL};
            double t0 = hearth_now_ms();
            if (hearth_forward_run(fw, &ub, logits, &err) < 0) goto fail;
            double ms = hearth_now_ms() - t0;
            pp_s[r] = ms > 0 ? P * 1000.0 / ms : 0;
            if (o->profile) profile_take(be, &res->prof_pp, ms);
            hearth_kv_seq_truncate(kv, dseq, hearth_kv_seq_len(kv, dseq) - D); /* back to the depth */
        }
        if (N > 0) { /* tg after the depth alone, as llama-bench's "tg N @ d D" */
            note(tty, m->name, threads, "tg rep", r + 1, o->reps);
            hearth_backend_profile_reset(be);
            double t0 = hearth_now_ms();
            for (int i = 0; i < N; i++) {
                hearth_ubatch one = {1, tokens + D + P + i, pos + D + i, &dseq, NULL};
                if (hearth_forward_run(fw, &one, logits, &err) < 0) goto fail;
            }
            double ms = hearth_now_ms() - t0;
            tg_s[r] = ms > 0 ? N * 1000.0 / ms : 0;
            if (o->profile) profile_take(be, &res->prof_tg, ms);
            hearth_kv_seq_truncate(kv, dseq, hearth_kv_seq_len(kv, dseq) - D); /* back to the depth */
        }
    }
    for (int r = 0; r < o->reps && D == 0; r++) {
        int seq = hearth_kv_seq_create(kv, &err);
        if (seq < 0) goto fail;
        for (int i = 0; i < P; i++)
            seqs[i] = seq;
        if (P > 0) {
            note(tty, m->name, threads, "pp rep", r + 1, o->reps);
            hearth_backend_profile_reset(be);
            hearth_ubatch ub = {P, tokens, pos, seqs, NULL};
            double t0 = hearth_now_ms();
            if (hearth_forward_run(fw, &ub, logits, &err) < 0) goto fail;
            double ms = hearth_now_ms() - t0;
            pp_s[r] = ms > 0 ? P * 1000.0 / ms : 0;
            if (o->profile) profile_take(be, &res->prof_pp, ms);
        }
        if (N > 0) {
            note(tty, m->name, threads, "tg rep", r + 1, o->reps);
            hearth_backend_profile_reset(be);
            double t0 = hearth_now_ms();
            for (int i = 0; i < N; i++) {
                hearth_ubatch one = {1, tokens + P + i, pos + P + i, &seq, NULL};
                if (hearth_forward_run(fw, &one, logits, &err) < 0) goto fail;
            }
            double ms = hearth_now_ms() - t0;
            tg_s[r] = ms > 0 ? N * 1000.0 / ms : 0;
            if (o->profile) profile_take(be, &res->prof_tg, ms);
        }
        hearth_kv_seq_free(kv, seq);
    }
    hearth_backend_profile_enable(be, false);
    if (tty) fprintf(stderr, "\r\033[K");
    if (dseq >= 0) hearth_kv_seq_free(kv, dseq);
    res->pp = stats_of(pp_s, P > 0 ? o->reps : 0);
    res->tg = stats_of(tg_s, N > 0 ? o->reps : 0);
    ok = true;
    goto done;
fail:
    if (tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "hearth bench: %s: %s\n", m->name, err.msg);
done:
    free(pp_s);
    free(tg_s);
    free(seqs);
    free(pos);
    free(tokens);
    free(logits);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}

// ---------------------------------------------------------------- output

static void print_table_header(void) {
    printf("| model | type | size | params | backend | threads | test | t/s | roofline |\n");
    printf("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    fflush(stdout);
}

static void print_table_rows(const bench_result *r, const bench_opts *o) {
    char size[32], params[32];
    human_size((double)r->model_bytes, size, sizeof size);
    human_params((double)r->n_params, params, sizeof params);
    char at[32] = "";
    if (o->depth > 0) snprintf(at, sizeof at, " @ d%d", o->depth); /* llama-bench's label */
    if (o->n_prompt > 0)
        printf("| %s | %s | %s | %s | %s | %d | pp%d%s | %.2f ± %.2f | |\n", r->model, r->type, size, params,
               r->backend, r->threads, o->n_prompt, at, r->pp.mean, r->pp.stddev);
    if (o->n_gen > 0) {
        char roof[64] = "";
        if (r->bw_gbs > 0) snprintf(roof, sizeof roof, "%.0f%% of %.1f GB/s", r->roofline * 100, r->bw_gbs);
        printf("| %s | %s | %s | %s | %s | %d | tg%d%s | %.2f ± %.2f | %s |\n", r->model, r->type, size,
               params, r->backend, r->threads, o->n_gen, at, r->tg.mean, r->tg.stddev, roof);
    }
    if (r->has_spec) {
        const bench_spec_result *s = &r->spec;
        printf("| %s | %s | %s | %s | %s | %d | tg%d engine, spec off | %.2f ± %.2f | |\n", r->model, r->type,
               size, params, r->backend, r->threads, s->n_gen, s->off_mean, s->off_sd);
        printf("| %s | %s | %s | %s | %s | %d | tg%d engine, %s | %.2f ± %.2f | %.2fx; %.0f%% of %llu drafts "
               "accepted, %.2f tokens/pass, %s |\n",
               r->model, r->type, size, params, r->backend, r->threads, s->n_gen,
               hearth_spec_mode_name(s->mode), s->on_mean, s->on_sd,
               s->off_mean > 0 ? s->on_mean / s->off_mean : 0,
               s->drafted ? 100.0 * (double)s->accepted / (double)s->drafted : 0.0,
               (unsigned long long)s->drafted, s->passes ? (double)s->pass_tokens / (double)s->passes : 0.0,
               s->same_tokens ? "same tokens" : "TOKENS DIFFER");
        if (s->spec_k == HEARTH_SPEC_K_COST)
            fprintf(stderr,
                    "speculation, K by cost: target pass %.3f + %.3f ms a position, draft pass %.3f ms; %llu "
                    "sequence-steps without a draft (it would not pay)\n",
                    s->pass_ms_fixed, s->pass_ms_per_pos, s->draft_pass_ms,
                    (unsigned long long)s->cost_skips);
    }
    fflush(stdout);
}

static void print_profile(const bench_result *r, const bench_opts *o) {
    for (int ph = 0; ph < 2; ph++) {
        const phase_profile *p = ph ? &r->prof_tg : &r->prof_pp;
        int n = ph ? o->n_gen : o->n_prompt;
        if (n <= 0) continue;
        double ops = 0;
        for (int op = 0; op < HEARTH_OP_COUNT; op++)
            ops += p->op_us[op];
        double reps = o->reps;
        printf("\nprofile: %s (%s), %d thread%s, %s%d: %.2f ms per rep, %.3f ms per token\n\n", r->model,
               r->type, r->threads, r->threads == 1 ? "" : "s", ph ? "tg" : "pp", n,
               p->wall_us / reps / 1000.0, p->wall_us / reps / 1000.0 / n);
        printf("| op | calls/rep | ms/rep | µs/call | %% of wall |\n| --- | ---: | ---: | ---: | ---: |\n");
        for (int op = 0; op < HEARTH_OP_COUNT; op++) {
            if (!p->op_count[op]) continue;
            printf("| %s | %.0f | %.3f | %.2f | %.1f%% |\n", hearth_op_name(op), p->op_count[op] / reps,
                   p->op_us[op] / reps / 1000.0, p->op_us[op] / (double)p->op_count[op],
                   p->wall_us > 0 ? 100.0 * p->op_us[op] / p->wall_us : 0);
        }
        double other = p->wall_us - ops;
        printf("| (outside ops) | | %.3f | | %.1f%% |\n", other / reps / 1000.0,
               p->wall_us > 0 ? 100.0 * other / p->wall_us : 0);
    }
    fflush(stdout);
}

static cJSON *stats_json(stats s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "stddev", s.stddev);
    return o;
}

static cJSON *profile_json(const phase_profile *p, int reps) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "wall_ms_per_rep", p->wall_us / reps / 1000.0);
    cJSON *ops = cJSON_AddObjectToObject(o, "ops");
    for (int op = 0; op < HEARTH_OP_COUNT; op++) {
        if (!p->op_count[op]) continue;
        cJSON *e = cJSON_AddObjectToObject(ops, hearth_op_name(op));
        cJSON_AddNumberToObject(e, "ms_per_rep", p->op_us[op] / reps / 1000.0);
        cJSON_AddNumberToObject(e, "calls_per_rep", (double)p->op_count[op] / reps);
    }
    return o;
}

static void print_json(const bench_result *r, const bench_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", r->model);
    cJSON_AddStringToObject(j, "file", r->file);
    cJSON_AddStringToObject(j, "type", r->type);
    cJSON_AddNumberToObject(j, "n_params", (double)r->n_params);
    cJSON_AddNumberToObject(j, "model_bytes", (double)r->model_bytes);
    cJSON_AddNumberToObject(j, "threads", r->threads);
    cJSON_AddStringToObject(j, "backend", r->backend);
    cJSON_AddStringToObject(j, "device", r->device);
    if (r->plan[0]) {
        cJSON_AddStringToObject(j, "plan", r->plan);
        cJSON_AddNumberToObject(j, "device_layers", r->device_layers);
    }
    cJSON_AddNumberToObject(j, "pp", o->n_prompt);
    cJSON_AddNumberToObject(j, "tg", o->n_gen);
    cJSON_AddNumberToObject(j, "depth", o->depth);
    cJSON_AddNumberToObject(j, "reps", o->reps);
    if (o->n_prompt > 0)
        cJSON_AddItemToObject(j, "pp_tok_s", stats_json(r->pp));
    else
        cJSON_AddNullToObject(j, "pp_tok_s");
    if (o->n_gen > 0)
        cJSON_AddItemToObject(j, "tg_tok_s", stats_json(r->tg));
    else
        cJSON_AddNullToObject(j, "tg_tok_s");
    if (r->bw_gbs > 0) {
        cJSON_AddNumberToObject(j, "bandwidth_gbs", r->bw_gbs);
        cJSON_AddNumberToObject(j, "bandwidth_buffer_bytes", (double)r->bw_buffer);
    } else {
        cJSON_AddNullToObject(j, "bandwidth_gbs");
    }
    cJSON_AddNumberToObject(j, "bytes_per_token", r->bytes_per_token);
    if (r->bw_gbs > 0 && o->n_gen > 0)
        cJSON_AddNumberToObject(j, "tg_roofline_fraction", r->roofline);
    else
        cJSON_AddNullToObject(j, "tg_roofline_fraction");
    if (r->has_spec) {
        const bench_spec_result *s = &r->spec;
        cJSON *sp = cJSON_AddObjectToObject(j, "speculative");
        cJSON_AddStringToObject(sp, "mode", hearth_spec_mode_name(s->mode));
        cJSON_AddNumberToObject(sp, "prompt_tokens", s->n_prompt);
        cJSON_AddNumberToObject(sp, "tg", s->n_gen);
        cJSON_AddItemToObject(sp, "tg_off_tok_s", stats_json((stats){s->off_mean, s->off_sd}));
        cJSON_AddItemToObject(sp, "tg_spec_tok_s", stats_json((stats){s->on_mean, s->on_sd}));
        cJSON_AddNumberToObject(sp, "speedup", s->off_mean > 0 ? s->on_mean / s->off_mean : 0);
        cJSON_AddNumberToObject(sp, "draft_n", (double)s->drafted);
        cJSON_AddNumberToObject(sp, "draft_accepted_n", (double)s->accepted);
        cJSON_AddNumberToObject(sp, "acceptance", s->drafted ? (double)s->accepted / (double)s->drafted : 0);
        cJSON_AddNumberToObject(sp, "spec_passes", (double)s->passes);
        cJSON_AddNumberToObject(sp, "tokens_per_target_pass",
                                s->passes ? (double)s->pass_tokens / (double)s->passes : 0);
        cJSON_AddBoolToObject(sp, "same_tokens", s->same_tokens);
        cJSON_AddStringToObject(sp, "spec_k", hearth_spec_k_name(s->spec_k));
        cJSON_AddNumberToObject(sp, "cost_skips", (double)s->cost_skips);
        cJSON_AddNumberToObject(sp, "pass_ms_fixed", s->pass_ms_fixed);
        cJSON_AddNumberToObject(sp, "pass_ms_per_position", s->pass_ms_per_pos);
        cJSON_AddNumberToObject(sp, "draft_pass_ms", s->draft_pass_ms);
    }
    if (o->profile) {
        cJSON *p = cJSON_AddObjectToObject(j, "profile");
        if (o->n_prompt > 0) cJSON_AddItemToObject(p, "pp", profile_json(&r->prof_pp, o->reps));
        if (o->n_gen > 0) cJSON_AddItemToObject(p, "tg", profile_json(&r->prof_tg, o->reps));
    }
    char *s = cJSON_PrintUnformatted(j);
    if (s) puts(s);
    free(s);
    cJSON_Delete(j);
    fflush(stdout);
}

// ---------------------------------------------------------------- command

static int bench_usage_error(const char *msg) {
    fprintf(stderr, "hearth bench: %s (see hearth bench --help)\n", msg);
    return 2;
}

/* "1,2,4" -> list of positive ints. */
static bool parse_int_list(const char *s, int *out, int cap, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 1024 || *n >= cap) return false;
        out[(*n)++] = (int)v;
        if (*end == ',')
            p = end + 1;
        else if (*end == 0)
            p = end;
        else
            return false;
        if (*end == ',' && !*p) return false;
    }
    return *n > 0;
}

int bench_load_main(int argc, char **argv); /* bench_load.c: the engine under load */

/* Take every -m/--model out of argv (it may repeat) into models; the rest
 * goes to rest (argc + 1 entries, NULL-terminated). Returns how many are
 * left in rest, or -1 after a usage error (message printed). */
static int bench_take_models(int argc, char **argv, const char **models, int *n_models, char **rest) {
    int n_rest = 0;
    *n_models = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (i > 0 && (!strcmp(a, "-m") || !strcmp(a, "--model"))) {
            if (i + 1 >= argc) {
                bench_usage_error("-m needs a value PATH");
                return -1;
            }
            v = argv[++i];
        } else if (i > 0 && !strncmp(a, "--model=", 8)) {
            v = a + 8;
        } else {
            rest[n_rest++] = argv[i];
            continue;
        }
        if (*n_models >= MAX_MODELS) {
            bench_usage_error("too many -m models (at most 32)");
            return -1;
        }
        models[(*n_models)++] = v;
    }
    rest[n_rest] = NULL;
    return n_rest;
}

/* Parse the flags (after the -m list) into o and the thread list. Returns -1
 * to go on, else the exit status. */
static int bench_parse_args(int argc, char **argv, int n_models, bench_opts *o, int *thread_list,
                            int *n_threads) {
    int n_prompt = 512, n_gen = 128, reps = 3, bw_mib = 1024, depth = 0;
    const char *threads_s = NULL, *dummy_model = NULL, *config_path = NULL;
    bool json = false, profile = false;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &dummy_model, "PATH", "GGUF model file; repeat -m to bench several"},
        {NULL, "--config", ARG_STR, &config_path, "PATH",
         "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {"-p", "--n-prompt", ARG_INT, &n_prompt, "N",
         "prompt tokens for the pp test (default 512; 0 skips it)"},
        {"-n", "--n-gen", ARG_INT, &n_gen, "N",
         "tokens to generate for the tg test (default 128; 0 skips it)"},
        {"-t", "--threads", ARG_STR, &threads_s, "T[,T2...]",
         "CPU thread counts to test (default: the config's threads, else physical cores)"},
        {"-r", "--repetitions", ARG_INT, &reps, "R", "timed repetitions after one warm-up (default 3)"},
        {"-d", "--depth", ARG_INT, &depth, "D",
         "tokens already in the context before each test, like llama-bench -d: pp P after D, tg N after D "
         "(default 0; filled once, untimed)"},
        {NULL, "--json", ARG_FLAG, &json, NULL,
         "one JSON object per line per model x threads instead of a table"},
        {NULL, "--profile", ARG_FLAG, &profile, NULL,
         "time every backend op; print time per op type for pp and tg"},
        {NULL, "--bw-mib", ARG_INT, &bw_mib, "MIB",
         "bandwidth probe buffer in MiB (default 1024, capped at 1/4 of free memory; 0 skips the probe)"},
    };
    const char *pos[1];
    int n_pos;
    int r = app_engine_opts_parse(
        &o->eo, "bench",
        "-m MODEL.gguf [-m MODEL2.gguf ...] [-p 512] [-n 128] [-t 1,2] [-r 3] [--json] [--profile]",
        "Measure prompt processing (pp: one forward pass over P tokens) and token generation (tg: N\n"
        "decode steps after it) in tokens/s, mean ± stddev over R repetitions, like llama-bench. Each tg\n"
        "figure is also given as a fraction of the memory-bandwidth roofline (bytes read per token x tok/s\n"
        "/ bandwidth measured by a STREAM-like read test with the same thread count).\n"
        "pp/tg use the engine options --backend, --gpu-layers and --kv-type; the others apply to\n"
        "--concurrency N, which load-tests the engine instead (see hearth bench --concurrency 1 --help).\n"
        "--spec ngram or --draft MODEL adds tgN through the engine with speculation off and on (same\n"
        "greedy prompt: P/2 random tokens said twice; alternating repetitions): both speeds, the speedup,\n"
        "the drafts accepted, tokens per target pass and whether the tokens were the same.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (n_models == 0 && !o->eo.print_config)
        return bench_usage_error("no model given: pass -m MODEL.gguf (repeat -m for several)");
    if (n_prompt < 0 || n_gen < 0) return bench_usage_error("-p and -n must not be negative");
    if (n_prompt == 0 && n_gen == 0) return bench_usage_error("-p 0 and -n 0 leave nothing to measure");
    if (reps < 1) return bench_usage_error("-r must be at least 1");
    if (depth < 0 || depth > (1 << 24)) return bench_usage_error("-d must be 0 to 16777216 tokens");
    if ((o->eo.spec != HEARTH_SPEC_OFF || o->eo.draft[0]) && n_gen < 2)
        return bench_usage_error("--spec and --draft compare tg with and without speculation: they need -n 2 "
                                 "or more");
    if (bw_mib < 0) return bench_usage_error("--bw-mib must not be negative");
    if (threads_s && !parse_int_list(threads_s, thread_list, MAX_THREAD_COUNTS, n_threads)) {
        fprintf(stderr,
                "hearth bench: -t expects a comma-separated list of thread counts between 1 and 1024, like "
                "1,2,4; "
                "got '%s'\n",
                threads_s);
        return 2;
    }
    if (!threads_s) {
        thread_list[0] = o->eo.threads ? o->eo.threads : hearth_physical_cores();
        if (thread_list[0] < 1) thread_list[0] = 1;
        *n_threads = 1;
    }
    if (threads_s && *n_threads == 1) o->eo.threads = thread_list[0];
    if (o->eo.print_config) return app_engine_opts_print_json(&o->eo, "bench", NULL, 1);
    o->n_prompt = n_prompt;
    o->n_gen = n_gen;
    o->reps = reps;
    o->depth = depth;
    o->json = json;
    o->profile = profile;
    o->bw_bytes = (uint64_t)bw_mib << 20;
    o->kv_type = o->eo.kv_type;
    return -1;
}

/* The bandwidth probe for thread count t, once, before any backend exists
 * (so no thread of ours competes with it). */
static void bench_probe(int t, const bench_opts *o, double *bw, uint64_t *bw_buf) {
    /* (On the 2-vCPU dev VM the 2-thread figure still moves between ~47 and
     * ~64 GB/s from minute to minute: that is the host; a standalone copy of
     * the probe moves the same way.) */
    if (isatty(2))
        fprintf(stderr, "\r\033[Khearth bench: bandwidth probe, %d thread%s", t, t == 1 ? "" : "s");
    *bw = bw_probe(t, o->bw_bytes, bw_buf);
    uint64_t llc = llc_bytes();
    if (llc && *bw_buf < 4 * llc)
        fprintf(stderr,
                "hearth bench: note: the bandwidth probe buffer (%llu MiB) is less than 4x the "
                "last-level cache (%llu MiB); the figure may be too high\n",
                (unsigned long long)(*bw_buf >> 20), (unsigned long long)(llc >> 20));
}

/* Load model `path` with t threads, run pp/tg, print its rows. */
static bool bench_one(const char *path, int t, const bench_opts *o, double bw, uint64_t bw_buf,
                      bench_result *res) {
    hearth_backend *be;
    hearth_model *m;
    app_engine_opts eo = o->eo;
    eo.threads = t;
    if (!app_engine_opts_load(&eo, "bench", path, true, &be, &m)) return false;
    hearth_backend_info bi;
    hearth_backend_get_info(be, &bi);
    snprintf(res->model, sizeof res->model, "%s", m->name);
    snprintf(res->file, sizeof res->file, "%s", path);
    snprintf(res->backend, sizeof res->backend, "%s", bi.name);
    snprintf(res->device, sizeof res->device, "%s", bi.device);
    snprintf(res->plan, sizeof res->plan, "%s", hearth_backend_host(be) ? m->plan : "");
    res->device_layers = m->n_device_layers;
    model_facts mf = model_facts_of(m, o->kv_type);
    snprintf(res->type, sizeof res->type, "%s", hearth_dtype_name(mf.type));
    res->n_params = m->n_params;
    res->model_bytes = m->weight_bytes;
    res->threads = t;
    /* The probe measures host memory: it is the roofline of host-visible
     * (CPU) backends only; GPU backends get no roofline figure. */
    res->bw_gbs = bi.host_visible ? bw : 0;
    res->bw_buffer = bw_buf;
    double avg_ctx = o->n_prompt + (o->n_gen + 1) / 2.0;
    res->bytes_per_token = (double)mf.bytes_per_token_weights + avg_ctx * (double)mf.kv_bytes_per_key;
    bool ok = bench_model(m, be, t, o, res);
    if (ok && (o->eo.spec != HEARTH_SPEC_OFF || o->eo.draft[0])) {
        hearth_error err = {0};
        if (isatty(2)) fprintf(stderr, "\r\033[Khearth bench: %s, tg with and without speculation", m->name);
        ok = res->has_spec = bench_spec_tg(&eo, m, o->n_prompt, o->n_gen, o->reps, &res->spec, &err);
        if (isatty(2)) fprintf(stderr, "\r\033[K");
        if (!ok) fprintf(stderr, "hearth bench: %s: %s\n", m->name, err.msg);
    }
    if (ok) {
        res->roofline = res->bw_gbs > 0 ? res->bytes_per_token * res->tg.mean / (res->bw_gbs * 1e9) : 0;
        if (o->json)
            print_json(res, o);
        else
            print_table_rows(res, o);
    }
    hearth_model_free(m);
    hearth_backend_free(be);
    return ok;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--concurrency") || !strncmp(argv[i], "--concurrency=", 14))
            return bench_load_main(argc, argv);
    bench_opts o = {0};
    app_engine_opts_defaults(&o.eo);
    app_engine_opts_bench_defaults(&o.eo);
    hearth_config cfg;
    bool cfg_ok = app_engine_opts_load_config("bench", argc, argv, &cfg);
    app_engine_opts_apply_config(&o.eo, &cfg);
    hearth_config_free(&cfg);
    o.eo.config = NULL;
    if (!cfg_ok) return 2;
    const char *models[MAX_MODELS];
    int n_models = 0;
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest);
    if (!rest) return 1;
    int n_rest = bench_take_models(argc, argv, models, &n_models, rest);
    int thread_list[MAX_THREAD_COUNTS], n_threads = 0;
    int r = n_rest < 0 ? 2 : bench_parse_args(n_rest, rest, n_models, &o, thread_list, &n_threads);
    free(rest);
    if (r >= 0) return r;
    for (int i = 0; i < n_models; i++) {
        struct stat st;
        if (stat(models[i], &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "hearth bench: %s: no such model file\n", models[i]);
            return 1;
        }
    }
    double bw[MAX_THREAD_COUNTS] = {0};
    uint64_t bw_buf[MAX_THREAD_COUNTS] = {0};
    bool bw_done[MAX_THREAD_COUNTS] = {false};
    bench_result *results = calloc((size_t)(n_models * n_threads), sizeof *results);
    if (!results) return 1;
    int n_results = 0, rc = 0;
    if (!o.json) print_table_header();
    for (int mi = 0; mi < n_models && !rc; mi++) {
        for (int ti = 0; ti < n_threads && !rc; ti++) {
            if (!bw_done[ti] && o.bw_bytes) bench_probe(thread_list[ti], &o, &bw[ti], &bw_buf[ti]);
            bw_done[ti] = true;
            if (bench_one(models[mi], thread_list[ti], &o, bw[ti], bw_buf[ti], &results[n_results]))
                n_results++;
            else
                rc = 1;
        }
    }
    if (!o.json && o.profile)
        for (int i = 0; i < n_results; i++)
            print_profile(&results[i], &o);
    free(results);
    return rc;
}
