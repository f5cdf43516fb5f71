/*
 * test_spec.c - speculative decoding.
 *  - the n-gram drafter continues the latest earlier match, longest n first;
 *  - the acceptance rule keeps the target's distribution: on fixed p and q
 *    (a full q, and a point mass as the n-gram drafter gives), the tokens it
 *    returns over many draws match p (chi-square, fixed seed);
 *  - adaptive K stays within its bounds and moves the right way;
 *  - on a real model (hearth-kjv-llama-q8_0), greedy output with n-gram
 *    speculation is token-identical to output without it: alone, 8 sequences
 *    batched, with prefix-cache hits and under preemption; drafts are
 *    accepted (the test fails if speculation never ran).
 */
#include <pthread.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "runtime/serving/spec.h"
#include "test.h"

static uint64_t g_rng = 88172645463325252ull;
static double uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static void test_ngram(void) {
    int32_t out[8];
    /* ... 5 6 7 8 9 ... 5 6 7 -> 8 9 ... */
    const int32_t t[] = {1, 5, 6, 7, 8, 9, 2, 3, 5, 6, 7};
    int d = hearth_spec_ngram_draft(t, 11, 2, 4, 3, out);
    CHECK(d == 3 && out[0] == 8 && out[1] == 9 && out[2] == 2);
    /* the most recent match wins: 4 4 a ... 4 4 b ... 4 4 -> b */
    const int32_t u[] = {4, 4, 10, 0, 4, 4, 11, 0, 4, 4};
    d = hearth_spec_ngram_draft(u, 10, 2, 2, 1, out);
    CHECK(d == 1 && out[0] == 11);
    /* longer n preferred: "1 2 3" occurred once followed by 7; "2 3" later followed by 9 */
    const int32_t w[] = {1, 2, 3, 7, 2, 3, 9, 1, 2, 3};
    d = hearth_spec_ngram_draft(w, 10, 2, 3, 1, out);
    CHECK(d == 1 && out[0] == 7);
    d = hearth_spec_ngram_draft(w, 10, 2, 2, 1, out);
    CHECK(d == 1 && out[0] == 9);
    /* no match, and a draft cut at the end of the context */
    const int32_t x[] = {1, 2, 3, 4};
    CHECK(hearth_spec_ngram_draft(x, 4, 2, 4, 4, out) == 0);
    const int32_t y[] = {7, 8, 7, 8};
    d = hearth_spec_ngram_draft(y, 4, 2, 4, 5, out);
    CHECK(d == 2 && out[0] == 7 && out[1] == 8);
    CHECK(hearth_spec_ngram_draft(y, 4, 2, 4, 0, out) == 0);
}

/* Draw the draft from q (or take `fixed` when q is NULL), run the rule, and
 * count the returned tokens; return the chi-square statistic against p. */
static double chi_square(const float *p, const float *q, int nv, int32_t fixed, int n_draws,
                         double *acc_rate) {
    int counts[16] = {0}, accepted = 0;
    for (int i = 0; i < n_draws; i++) {
        int32_t x = fixed;
        if (q) {
            double u = uniform(), c = 0;
            x = nv - 1;
            for (int j = 0; j < nv; j++) {
                c += q[j];
                if (u < c) {
                    x = j;
                    break;
                }
            }
        }
        bool ok;
        double ua = uniform(), ur = uniform();
        int32_t t = hearth_spec_accept(p, q, nv, x, ua, ur, &ok);
        accepted += ok;
        counts[t]++;
    }
    double chi = 0;
    for (int j = 0; j < nv; j++) {
        double expct = p[j] * n_draws;
        if (expct > 0)
            chi += (counts[j] - expct) * (counts[j] - expct) / expct;
        else if (counts[j])
            chi += 1e9; /* a token p never gives */
    }
    *acc_rate = (double)accepted / n_draws;
    return chi;
}

static void test_acceptance_rule(void) {
    /* 6 tokens, 5 degrees of freedom: chi-square 99.9th percentile is 20.5 */
    const float p[6] = {0.40f, 0.25f, 0.15f, 0.10f, 0.10f, 0.00f};
    const float q[6] = {0.10f, 0.40f, 0.05f, 0.05f, 0.20f, 0.20f};
    double rate;
    double chi = chi_square(p, q, 6, -1, 200000, &rate);
    CHECKF(chi < 20.5, "full q: chi-square %.2f", chi);
    /* acceptance rate of the rule is sum_x min(p, q) = 0.1+0.25+0.05+0.05+0.1 = 0.55 */
    CHECKF(fabs(rate - 0.55) < 0.01, "full q: acceptance %.3f", rate);
    /* point mass (n-gram drafter) on token 1: accepted with p(1) = 0.25 */
    chi = chi_square(p, NULL, 6, 1, 200000, &rate);
    CHECKF(chi < 20.5, "point mass: chi-square %.2f", chi);
    CHECKF(fabs(rate - 0.25) < 0.01, "point mass: acceptance %.3f", rate);
    /* a draft p gives no mass to is never kept */
    chi = chi_square(p, NULL, 6, 5, 50000, &rate);
    CHECKF(chi < 20.5 && rate == 0, "point mass on p=0: chi %.2f rate %.3f", chi, rate);
}

static void test_ctl(void) {
    hearth_spec_ctl c = hearth_spec_ctl_init(2, 5);
    CHECK(c.k == 5);
    hearth_spec_ctl_update(&c, 5, 1);
    CHECK(c.k == 4);
    for (int i = 0; i < 10; i++)
        hearth_spec_ctl_update(&c, 4, 0);
    CHECK(c.k == 2);
    hearth_spec_ctl_update(&c, 2, 2);
    CHECK(c.k == 3);
    for (int i = 0; i < 10; i++)
        hearth_spec_ctl_update(&c, c.k, c.k);
    CHECK(c.k == 5);
    hearth_spec_ctl_update(&c, 0, 0);
    CHECK(c.k == 5);
    hearth_spec_mode m;
    CHECK(hearth_spec_mode_parse("ngram", &m) && m == HEARTH_SPEC_NGRAM);
    CHECK(!hearth_spec_mode_parse("draft-typo", &m));
}

/* ---- on a real model */
enum { N = 8, GEN = 40, PLEN = 61 };

/* A "quoting" prompt: a random block of 20 ids, said three times. */
static void make_prompt(int32_t *out, uint32_t seed) {
    out[0] = 1;
    for (int i = 0; i < 20; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[1 + i] = 261 + (int32_t)((seed >> 8) % 700);
    }
    for (int i = 21; i < PLEN; i++)
        out[i] = out[i - 20];
}

typedef struct col {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    hearth_tokens toks[N];
} col;
typedef struct ref {
    col *c;
    int i;
} ref;

static void on_ev(const hearth_event *ev, void *user) {
    ref *r = user;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        hearth_tokens_push(&r->c->toks[r->i], ev->token);
        return;
    }
    pthread_mutex_lock(&r->c->mu);
    r->c->done++;
    pthread_cond_signal(&r->c->cv);
    pthread_mutex_unlock(&r->c->mu);
}

/* Run n prompts at once on an engine with the given settings; out[i] gets each output. */
static void run(hearth_model *m, hearth_engine_config cfg, int n, int32_t prompts[][PLEN], bool twice,
                hearth_tokens *out, hearth_engine_stats *st) {
    hearth_error err = {0};
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    for (int pass = 0; pass < (twice ? 2 : 1); pass++) {
        col c = {.done = 0};
        pthread_mutex_init(&c.mu, NULL);
        pthread_cond_init(&c.cv, NULL);
        ref refs[N];
        for (int i = 0; i < n; i++) {
            refs[i] = (ref){&c, i};
            hearth_request r = {
                .prompt = prompts[i], .n_prompt = PLEN, .max_tokens = GEN, .ignore_eog = true};
            r.sampling = hearth_sampling_defaults();
            r.sampling.temperature = 0;
            r.on_event = on_ev;
            r.user = &refs[i];
            CHECKF(hearth_engine_submit(e, &r, &err) > 0, "submit: %s", err.msg);
        }
        pthread_mutex_lock(&c.mu);
        while (c.done < n)
            pthread_cond_wait(&c.cv, &c.mu);
        pthread_mutex_unlock(&c.mu);
        for (int i = 0; i < n; i++) {
            if (pass == 0)
                out[i] = c.toks[i];
            else {
                CHECK(c.toks[i].n == out[i].n &&
                      !memcmp(c.toks[i].ids, out[i].ids, out[i].n * sizeof(int32_t)));
                hearth_tokens_free(&c.toks[i]);
            }
        }
        pthread_mutex_destroy(&c.mu);
        pthread_cond_destroy(&c.cv);
    }
    /* the snapshot that no longer counts the finished requests follows their DONE */
    for (int i = 0; i < 500; i++) {
        hearth_engine_stats_get(e, st);
        if (st->running == 0 && st->waiting == 0) break;
        usleep(2000);
    }
    hearth_engine_free(e);
}

static bool same(const hearth_tokens *a, const hearth_tokens *b) {
    return a->n == b->n && !memcmp(a->ids, b->ids, a->n * sizeof(int32_t));
}

static void test_engine(hearth_model *m) {
    int32_t prompts[N][PLEN];
    for (int i = 0; i < N; i++)
        make_prompt(prompts[i], 500 + (uint32_t)i);
    hearth_tokens ref_out[N], out[N];
    hearth_engine_stats st;
    hearth_engine_config base = hearth_engine_defaults();
    base.prefix_cache = false;
    run(m, base, N, prompts, false, ref_out, &st);
    for (int i = 0; i < N; i++)
        CHECK(ref_out[i].n == GEN);

    hearth_engine_config sc = base;
    sc.spec = HEARTH_SPEC_NGRAM;
    sc.spec_k = HEARTH_SPEC_K_STEP; /* always draft: these checks need verification passes */
    sc.spec_max_batch = N;
    /* alone */
    for (int i = 0; i < N; i++) {
        run(m, sc, 1, &prompts[i], false, &out[i], &st);
        CHECKF(same(&out[i], &ref_out[i]), "alone, prompt %d differs", i);
        hearth_tokens_free(&out[i]);
    }
    CHECKF(st.spec_accepted > 0, "no draft accepted (drafted %llu)", (unsigned long long)st.spec_drafted);
    /* 8 batched */
    run(m, sc, N, prompts, false, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "batched, prompt %d differs", i);
        hearth_tokens_free(&out[i]);
    }
    CHECK(st.spec_accepted > 0 && st.spec_off_load == 0);
    fprintf(stderr, "8 batched: drafted %llu accepted %llu, %.2f tokens per verification pass\n",
            (unsigned long long)st.spec_drafted, (unsigned long long)st.spec_accepted,
            st.spec_passes ? (double)st.spec_tokens / (double)st.spec_passes : 0.0);
    /* off under load: the threshold below the batch */
    sc.spec_max_batch = 4;
    run(m, sc, N, prompts, false, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "load threshold, prompt %d differs", i);
        hearth_tokens_free(&out[i]);
    }
    CHECK(st.spec_off_load > 0);
    sc.spec_max_batch = N;
    /* prefix-cache hits: the second round is served from the cache */
    sc.prefix_cache = true;
    run(m, sc, N, prompts, true, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "prefix cache, prompt %d differs", i);
        hearth_tokens_free(&out[i]);
    }
    CHECK(st.cached_tokens > 0);
    /* preemption: a pool too small for all 8 at once */
    sc.prefix_cache = false;
    sc.page_size = 16;
    sc.n_pages = 24;
    run(m, sc, N, prompts, false, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "preemption, prompt %d differs", i);
        hearth_tokens_free(&out[i]);
    }
    CHECKF(st.preemptions > 0, "no preemption happened");
    CHECK(st.kv.pages_used == 0);
    for (int i = 0; i < N; i++)
        hearth_tokens_free(&ref_out[i]);
}

int main(void) {
    test_ngram();
    test_acceptance_rule();
    test_ctl();
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    char path[1024];
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(
        test_shared_path(path, sizeof path, "models/hearth-kjv-llama-q8_0.gguf"), &mp, &err);
    if (!m) fprintf(stderr, "model: %s\n", err.msg);
    REQUIRE(m);
    test_engine(m);
    hearth_model_free(m);
    hearth_backend_free(be);
    return test_summary("spec");
}
