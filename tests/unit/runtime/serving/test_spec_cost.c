/*
 * test_spec_cost.c - choosing K by the cost model (runtime/serving/spec_cost.h).
 *  - E(K) = 1 + alpha + ... + alpha^K;
 *  - the pass-time fit t(n) = a + b n recovers a and b from per-size
 *    running low quantiles (stalls, even in half the passes, do not move
 *    it, a lasting change of speed does), needs two sizes of three passes
 *    each, caps a size at a larger size's estimate, clamps a negative
 *    slope;
 *  - the choice is the argmax of E(K) / cost(K) over {0} U [k_min, k_max]
 *    (checked against a brute force here over a grid of costs, acceptance
 *    rates, draft costs and sequence counts), K = 0 when nothing beats
 *    plain decoding by 1 %, all K when verification is free, none when every
 *    position costs a full pass; not ready (-1) without a fit or, for a draft
 *    model, without a measured draft pass;
 *  - the acceptance estimate follows the text (high, low, and a simulated
 *    geometric rate);
 *  - on hearth-kjv-llama-q8_0 (n-gram) and with hearth-kjv-draft-q8_0, the
 *    engine's default policy (cost) gives greedy output token-identical to
 *    plain decoding, and its measurements reach the stats.
 */
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "runtime/serving/spec_cost.h"
#include "test.h"

static void test_names(void) {
    hearth_spec_k_policy k = HEARTH_SPEC_K_STEP;
    CHECK(hearth_spec_k_parse("cost", &k) && k == HEARTH_SPEC_K_COST);
    CHECK(hearth_spec_k_parse("step", &k) && k == HEARTH_SPEC_K_STEP);
    CHECK(!hearth_spec_k_parse("adaptive", &k) && k == HEARTH_SPEC_K_STEP);
    CHECK(!hearth_spec_k_parse(NULL, &k));
    CHECK(!strcmp(hearth_spec_k_name(HEARTH_SPEC_K_COST), "cost"));
    CHECK(!strcmp(hearth_spec_k_name(HEARTH_SPEC_K_STEP), "step"));
    CHECK(hearth_engine_defaults().spec_k == HEARTH_SPEC_K_COST);
}

static void test_expected(void) {
    CHECK(hearth_spec_expected_tokens(0.7, 0) == 1.0);
    CHECK(fabs(hearth_spec_expected_tokens(0.5, 3) - 1.875) < 1e-12);
    CHECK(fabs(hearth_spec_expected_tokens(1.0, 8) - 9.0) < 1e-12);
    CHECK(fabs(hearth_spec_expected_tokens(0.0, 8) - 1.0) < 1e-12);
}

/* A cost model that saw passes of sizes ns[] following t(n) = a + b n (plus noise). */
static hearth_spec_cost model(double a, double b, const int *ns, int k, double noise) {
    hearth_spec_cost c;
    hearth_spec_cost_init(&c);
    for (int rep = 0; rep < 40; rep++)
        for (int i = 0; i < k; i++)
            hearth_spec_cost_pass(&c, ns[i], a + b * ns[i] + noise * ((rep % 2) ? 1 : -1));
    return c;
}

static void test_fit(void) {
    double a = -1, b = -1;
    hearth_spec_cost c;
    hearth_spec_cost_init(&c);
    CHECK(!hearth_spec_cost_fit(&c, &a, &b) && a == -1);
    CHECK(hearth_spec_cost_choose(&c, 0.9, 1, 8, 1, false, NULL) == -1);
    const int one[] = {5};
    c = model(0.2, 0.1, one, 1, 0);
    CHECK(c.count[5] == 40);
    CHECK(!hearth_spec_cost_fit(&c, &a, &b)); /* one size: the line is not determined */
    const int ns[] = {1, 3, 9};
    c = model(0.2, 0.1, ns, 3, 0);
    CHECK(hearth_spec_cost_fit(&c, &a, &b));
    CHECKF(fabs(a - 0.2) < 1e-9 && fabs(b - 0.1) < 1e-9, "fit %g + %g n", a, b);
    c = model(0.2, 0.1, ns, 3, 0.01); /* noise averages out in the means */
    CHECK(hearth_spec_cost_fit(&c, &a, &b));
    CHECKF(fabs(a - 0.2) < 0.02 && fabs(b - 0.1) < 0.004, "noisy fit %g + %g n", a, b);
    /* stalls (another process ran), even in half the passes, do not move the
     * estimate; two stalls in a size's first three samples neither */
    hearth_spec_cost_init(&c);
    for (int i = 0; i < 300; i++) {
        hearth_spec_cost_pass(&c, 1, i % 10 == 3 ? 30.0 : 0.3);
        hearth_spec_cost_pass(&c, 9, i % 2 ? 20.0 + i % 5 : 1.1);
    }
    hearth_spec_cost_pass(&c, 4, 21.0);
    hearth_spec_cost_pass(&c, 4, 0.6);
    hearth_spec_cost_pass(&c, 4, 19.5);
    CHECK(hearth_spec_cost_fit(&c, &a, &b));
    CHECKF(fabs(a + b - 0.3) < 0.03 && fabs(a + 9 * b - 1.1) < 0.08, "stalls ignored: %g + %g n", a, b);
    CHECK(fabs(c.mean_ms[4] - 0.6) < 1e-12);
    /* a pass costlier than a larger one is noise: flat at the larger's time */
    hearth_spec_cost_init(&c);
    for (int i = 0; i < HEARTH_SPEC_COST_MIN_SAMPLES; i++) {
        CHECK(!hearth_spec_cost_fit(&c, &a, &b)); /* a size counts from its third pass */
        hearth_spec_cost_pass(&c, 1, 0.5);
        hearth_spec_cost_pass(&c, 9, 0.3);
    }
    CHECK(hearth_spec_cost_fit(&c, &a, &b) && fabs(b) < 1e-12 && fabs(a - 0.3) < 1e-9); /* capped by size 9 */
    /* a size whose estimate is above a larger size's is taken at the larger's */
    const int six[] = {1, 2, 3, 4, 8, 9};
    c = model(0.2, 0.1, six, 6, 0);
    for (int i = 0; i < 40; i++)
        hearth_spec_cost_pass(&c, 8, 10.0); /* stalled, all of them */
    c.mean_ms[8] = 10.0;
    CHECK(hearth_spec_cost_fit(&c, &a, &b));
    CHECKF(fabs(a - 0.2) < 0.05 && fabs(b - 0.1) < 0.02, "size 8 capped by size 9: %g + %g n", a, b);
    /* sizes out of range and negative times are ignored */
    hearth_spec_cost_init(&c);
    hearth_spec_cost_pass(&c, 0, 1);
    hearth_spec_cost_pass(&c, HEARTH_SPEC_COST_MAX_N + 1, 1);
    hearth_spec_cost_pass(&c, 2, -1);
    CHECK(!hearth_spec_cost_fit(&c, &a, &b));
    /* the estimate follows a machine whose speed changes for good */
    hearth_spec_cost_init(&c);
    for (int i = 0; i < 400; i++) {
        hearth_spec_cost_pass(&c, 1, i < 200 ? 1.0 : 2.0);
        hearth_spec_cost_pass(&c, 2, i < 200 ? 1.5 : 3.0);
    }
    CHECK(hearth_spec_cost_fit(&c, &a, &b));
    CHECKF(fabs(a + b - 2.0) < 0.1 && fabs(a + 2 * b - 3.0) < 0.15,
           "the estimate moved to the new speed: %g + %g n", a, b);
}

/* The brute force: the best K of {0} U [k_min, k_max], K = 0 unless it gains over 1 %. */
static int oracle(double a, double b, double dr, double alpha, int k_min, int k_max, int ns) {
    const double t0 = a / ns + b;
    int best = 0;
    double bg = 1.0;
    for (int k = k_min; k <= k_max; k++) {
        double e = 0, p = 1;
        for (int i = 0; i <= k; i++, p *= alpha)
            e += p;
        const double g = e * t0 / (a / ns + b * (1 + k) + dr / ns * k);
        if (g > (best ? bg : 1.01)) {
            best = k;
            bg = g;
        }
    }
    return best;
}

static void test_choose(void) {
    const int ns[] = {1, 2, 5, 9};
    double gain = 0;
    /* verification free (b = 0, a GPU): draft all that is allowed */
    hearth_spec_cost c = model(0.5, 0, ns, 4, 0);
    CHECK(hearth_spec_cost_choose(&c, 0.8, 1, 8, 1, false, &gain) == 8);
    CHECK(fabs(gain - hearth_spec_expected_tokens(0.8, 8)) < 1e-9);
    /* every position a full pass (a = 0): never pays below alpha = 1 */
    c = model(0, 0.1, ns, 4, 0);
    CHECK(hearth_spec_cost_choose(&c, 0.95, 1, 8, 1, false, &gain) == 0 && gain == 1.0);
    /* the kjv Q8_0 target on one thread (measured: t(1) 0.28 ms, t(9) 1.4 ms) */
    c = model(0.14, 0.14, ns, 4, 0);
    CHECK(hearth_spec_cost_choose(&c, 0.5, 1, 8, 1, false, NULL) == 0);
    const int k9 = hearth_spec_cost_choose(&c, 0.97, 1, 8, 1, false, &gain);
    CHECKF(k9 >= 4 && gain > 1.3, "high acceptance: K %d, gain %g", k9, gain);
    /* draft_min is the least K when drafting */
    c = model(1.0, 0.01, ns, 4, 0);
    CHECK(hearth_spec_cost_choose(&c, 0.01, 3, 8, 1, false, NULL) == 0);
    CHECK(hearth_spec_cost_choose(&c, 0.6, 3, 8, 1, false, NULL) >= 3);
    /* a draft model: not ready until its passes were timed three times */
    CHECK(hearth_spec_cost_choose(&c, 0.9, 1, 8, 1, true, NULL) == -1);
    hearth_spec_cost_draft(&c, 4, 2.0); /* 0.5 ms a pass */
    CHECK(c.draft_count == 1 && fabs(c.draft_ms - 0.5) < 1e-12);
    hearth_spec_cost_draft(&c, 1, 40.0); /* a stall: the first samples' minimum keeps it out */
    CHECK(hearth_spec_cost_choose(&c, 0.9, 1, 8, 1, true, NULL) == -1);
    hearth_spec_cost_draft(&c, 1, 0.6);
    CHECK(c.draft_count == 3 && fabs(c.draft_ms - 0.5) < 1e-12);
    CHECK(hearth_spec_cost_choose(&c, 0.9, 1, 8, 1, true, NULL) >= 1);
    hearth_spec_cost_draft(&c, 0, 5.0); /* ignored */
    CHECK(c.draft_count == 3);
    /* the brute force over a grid */
    const double as[] = {0, 0.05, 0.3, 1.0}, bs[] = {0, 0.02, 0.1, 0.3}, drs[] = {0, 0.1, 0.5};
    const double alphas[] = {0, 0.3, 0.6, 0.8, 0.95, 1.0};
    const int seqs[] = {1, 2, 4};
    int bad = 0, cases = 0;
    for (size_t ia = 0; ia < 4; ia++)
        for (size_t ib = 0; ib < 4; ib++) {
            if (as[ia] + bs[ib] == 0) continue;
            hearth_spec_cost m = model(as[ia], bs[ib], ns, 4, 0);
            for (size_t id = 0; id < 3; id++) {
                m.draft_count = HEARTH_SPEC_COST_MIN_SAMPLES;
                m.draft_ms = drs[id];
                for (size_t il = 0; il < 6; il++)
                    for (size_t is = 0; is < 3; is++)
                        for (int kmin = 1; kmin <= 2; kmin++) {
                            const bool dp = drs[id] > 0;
                            int got = hearth_spec_cost_choose(&m, alphas[il], kmin, 8, seqs[is], dp, NULL);
                            int want =
                                oracle(as[ia], bs[ib], dp ? drs[id] : 0, alphas[il], kmin, 8, seqs[is]);
                            bad += got != want;
                            cases++;
                        }
            }
        }
    CHECKF(bad == 0, "cost choice differs from the brute force in %d of %d cases", bad, cases);
    /* more sequences share the fixed cost: K never grows with them */
    c = model(1.0, 0.1, ns, 4, 0);
    const int k1 = hearth_spec_cost_choose(&c, 0.7, 1, 8, 1, false, NULL);
    const int k8 = hearth_spec_cost_choose(&c, 0.7, 1, 8, 8, false, NULL);
    CHECKF(k1 > 0 && k8 <= k1, "K %d alone, %d of 8", k1, k8);
    /* the probe's K: the best one even when it does not pay */
    c = model(0.14, 0.14, ns, 4, 0);
    CHECK(hearth_spec_cost_choose(&c, 0.5, 1, 8, 1, false, NULL) == 0);
    CHECK(hearth_spec_cost_best(&c, 0.5, 1, 8, 1, false) == 1);
    CHECK(hearth_spec_cost_best(&c, 0.5, 3, 8, 1, false) == 3);
    hearth_spec_cost_init(&c);
    CHECK(hearth_spec_cost_best(&c, 0.5, 1, 8, 1, false) == -1);
}

static void test_acc(void) {
    hearth_spec_acc s = hearth_spec_acc_init();
    CHECK(hearth_spec_acc_alpha(&s) == 0.5);
    hearth_spec_acc_update(&s, 0, 0); /* no draft: no trial */
    CHECK(hearth_spec_acc_alpha(&s) == 0.5);
    for (int i = 0; i < 50; i++)
        hearth_spec_acc_update(&s, 4, 4);
    CHECKF(hearth_spec_acc_alpha(&s) > 0.95, "all kept: alpha %g", hearth_spec_acc_alpha(&s));
    for (int i = 0; i < 50; i++)
        hearth_spec_acc_update(&s, 4, 0);
    CHECKF(hearth_spec_acc_alpha(&s) < 0.1, "none kept: alpha %g", hearth_spec_acc_alpha(&s));
    /* a geometric acceptance of 0.7 per token, drafts of 6: the estimate centres on it */
    uint64_t x = 0x243F6A8885A308D3ull;
    double sum = 0;
    int n = 0;
    for (int v = 0; v < 4000; v++) {
        int a = 0;
        for (;;) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (a == 6 || (double)(x >> 11) / 9007199254740992.0 >= 0.7) break;
            a++;
        }
        hearth_spec_acc_update(&s, 6, a);
        if (v >= 100) {
            sum += hearth_spec_acc_alpha(&s);
            n++;
        }
    }
    CHECKF(fabs(sum / n - 0.7) < 0.06, "mean estimate %g for a rate of 0.7", sum / n);
}

/* ---- the engine, default policy: greedy output identical to plain decoding */

enum { PLEN = 61, GEN = 64, N = 4 };

typedef struct one {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    hearth_tokens toks;
} one;

static void on_ev(const hearth_event *ev, void *user) {
    one *o = user;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        hearth_tokens_push(&o->toks, ev->token);
        return;
    }
    pthread_mutex_lock(&o->mu);
    o->done = true;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static hearth_tokens generate(hearth_engine *e, const int32_t *prompt) {
    one o = {.done = false};
    pthread_mutex_init(&o.mu, NULL);
    pthread_cond_init(&o.cv, NULL);
    hearth_request r = {.prompt = prompt, .n_prompt = PLEN, .max_tokens = GEN, .ignore_eog = true};
    r.sampling = hearth_sampling_defaults();
    r.sampling.temperature = 0;
    r.on_event = on_ev;
    r.user = &o;
    hearth_error err = {0};
    CHECKF(hearth_engine_submit(e, &r, &err) > 0, "submit: %s", err.msg);
    pthread_mutex_lock(&o.mu);
    while (!o.done)
        pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    pthread_mutex_destroy(&o.mu);
    pthread_cond_destroy(&o.cv);
    return o.toks;
}

/* A random block of 20 ids said three times, BOS first. */
static void make_prompt(int32_t *out, uint32_t seed) {
    out[0] = 1;
    for (int i = 0; i < 20; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[1 + i] = 261 + (int32_t)((seed >> 8) % 700);
    }
    for (int i = 21; i < PLEN; i++)
        out[i] = out[i - 20];
}

static void test_engine(hearth_model *m, hearth_model *draft) {
    hearth_engine_config off = hearth_engine_defaults();
    off.prefix_cache = false;
    hearth_engine_config cost = off;
    cost.spec = draft ? HEARTH_SPEC_DRAFT : HEARTH_SPEC_NGRAM;
    cost.draft = draft;
    hearth_error err = {0};
    hearth_engine *e0 = hearth_engine_create(m, &off, &err), *e1 = hearth_engine_create(m, &cost, &err);
    REQUIRE(e0 && e1);
    int differ = 0;
    for (int rep = 0; rep < 3; rep++) /* later rounds run with the model fitted */
        for (int i = 0; i < N; i++) {
            int32_t p[PLEN];
            make_prompt(p, 7919u * (uint32_t)(i + 1));
            hearth_tokens a = generate(e0, p), b = generate(e1, p);
            differ += !(a.n == GEN && a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof *a.ids));
            hearth_tokens_free(&a);
            hearth_tokens_free(&b);
        }
    CHECKF(differ == 0, "%s: %d of %d outputs differ with the cost policy", draft ? "draft" : "ngram", differ,
           3 * N);
    hearth_engine_stats st;
    hearth_engine_stats_get(e1, &st);
    fprintf(stderr,
            "%s, cost policy: %llu drafted, %llu accepted, %llu sequence-steps without a draft; "
            "t(n) = %.4f + %.4f n ms, draft pass %.4f ms\n",
            draft ? "draft" : "ngram", (unsigned long long)st.spec_drafted,
            (unsigned long long)st.spec_accepted, (unsigned long long)st.spec_cost_skips,
            st.spec_pass_ms_fixed, st.spec_pass_ms_per_pos, st.spec_draft_pass_ms);
    CHECKF(st.spec_pass_ms_fixed + st.spec_pass_ms_per_pos > 0, "the pass time was fitted");
    CHECKF(st.spec_drafted + st.spec_cost_skips > 0, "the policy decided something");
    if (draft) CHECKF(st.spec_draft_pass_ms > 0, "a draft pass was timed");
    hearth_engine_free(e0);
    hearth_engine_free(e1);
}

int main(void) {
    test_names();
    test_expected();
    test_fit();
    test_choose();
    test_acc();
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    REQUIRE(be);
    char path[1024];
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(
        test_shared_path(path, sizeof path, "models/hearth-kjv-llama-q8_0.gguf"), &mp, &err);
    hearth_model *d =
        m ? hearth_model_load(test_shared_path(path, sizeof path, "models/hearth-kjv-draft-q8_0.gguf"), &mp,
                              &err)
          : NULL;
    if (!d) fprintf(stderr, "model: %s\n", err.msg);
    REQUIRE(m && d);
    test_engine(m, NULL);
    test_engine(m, d);
    hearth_model_free(d);
    hearth_model_free(m);
    hearth_backend_free(be);
    return test_summary("spec_cost");
}
