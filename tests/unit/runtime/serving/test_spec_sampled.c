/*
 * test_spec_sampled.c - speculative decoding of sampled requests keeps the
 * target's distribution.
 *  - hearth_sampler_probs is the distribution hearth_sampler_sample draws
 *    from (penalties, top-k, top-p, min-p, temperature): sampled frequencies
 *    match it (chi-square, fixed seed); copy_history gives a sampler the same
 *    penalty state (the draft model's sampler);
 *  - the acceptance rule over a real sampler chain (p and q from samplers
 *    with different settings over different logits, the draft drawn from q;
 *    and the n-gram point mass) returns tokens with p's frequencies, and
 *    three deliberately wrong rules (resample from p instead of the residual,
 *    always keep the draft, accept with min(1, q/p)) fail the same check, so
 *    the check can fail;
 *  - end to end on hearth-kjv-llama-q8_0 with hearth-kjv-draft-q8_0 and with
 *    n-gram lookup: the first two generated tokens of many seeded requests at
 *    temperature 1 (and with the default filters plus a repeat penalty) have
 *    the same frequencies with speculation as without (two-sample
 *    chi-square). The prompt's pages come from the prefix cache, so the very
 *    first token is chosen at a verified position; the test fails unless
 *    drafts were both accepted and rejected. A run at another temperature
 *    must fail the comparison (the test has the power to see a difference).
 */
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "runtime/serving/sampling.h"
#include "runtime/serving/spec.h"
#include "test.h"

/* REQUIRE with a message saying why (cond is evaluated twice: no side effects) */
#define REQUIRE_MSG(cond, ...)                                                                               \
    do {                                                                                                     \
        if (!(cond)) fprintf(stderr, __VA_ARGS__), fputc('\n', stderr);                                      \
        REQUIRE(cond);                                                                                       \
    } while (0)

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

/* The chi-square value a statistic with df degrees of freedom exceeds with
 * probability 0.001 (Wilson-Hilferty). */
static double chi_crit(int df) {
    if (df < 1) df = 1;
    double k = 2.0 / (9.0 * df), z = 3.09;
    double c = 1 - k + z * sqrt(k);
    return df * c * c * c;
}

/* Goodness of fit of counts[nv] (n draws) to p; cells with p == 0 that got a
 * draw make it infinite. *df gets the degrees of freedom. */
static double gof(const int *counts, const float *p, int nv, int n, int *df) {
    double chi = 0;
    int cells = 0;
    for (int i = 0; i < nv; i++) {
        double ex = p[i] * (double)n;
        if (ex > 0) {
            chi += (counts[i] - ex) * (counts[i] - ex) / ex;
            cells++;
        } else if (counts[i]) {
            chi = INFINITY;
        }
    }
    *df = cells - 1;
    return chi;
}

enum { NV = 12, DRAWS = 100000 };

static const float LOGITS_T[NV] = {2.0f, 1.6f, 1.5f, 0.9f, 0.4f, 0.1f, -0.3f, -1.0f, 1.1f, 0.0f, -2.0f, 0.7f};
static const float LOGITS_D[NV] = {1.2f, 2.1f, 0.8f, 1.0f, -0.2f, 0.5f, 0.3f, -0.5f, 0.6f, 0.9f, -1.0f, 0.0f};

static hearth_sampler *make(float temp, int top_k, float top_p, float min_p, float rep, uint64_t seed) {
    hearth_sampling_params sp = hearth_sampling_defaults();
    sp.temperature = temp;
    sp.top_k = top_k;
    sp.top_p = top_p;
    sp.min_p = min_p;
    sp.repeat_penalty = rep;
    sp.presence_penalty = rep != 1.0f ? 0.2f : 0.0f;
    sp.seed = seed;
    hearth_error err = {0};
    hearth_sampler *s = hearth_sampler_create(&sp, NV, &err);
    REQUIRE_MSG(s, "sampler: %s", err.msg);
    /* a history for the penalties: tokens 0, 1, 1, 8 */
    hearth_sampler_accept(s, 0);
    hearth_sampler_accept(s, 1);
    hearth_sampler_accept(s, 1);
    hearth_sampler_accept(s, 8);
    return s;
}

static void test_probs_are_what_sample_draws(void) {
    struct {
        float temp;
        int top_k;
        float top_p, min_p, rep;
    } cases[] = {{1.0f, 0, 1.0f, 0.0f, 1.0f},
                 {0.7f, 6, 0.9f, 0.05f, 1.0f},
                 {1.3f, 40, 0.95f, 0.05f, 1.3f},
                 {0.0f, 0, 1.0f, 0.0f, 1.3f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hearth_sampler *s =
            make(cases[c].temp, cases[c].top_k, cases[c].top_p, cases[c].min_p, cases[c].rep, 1234 + c);
        float p[NV];
        hearth_sampler_probs(s, LOGITS_T, p);
        double sum = 0;
        int nz = 0;
        for (int i = 0; i < NV; i++) {
            sum += p[i];
            nz += p[i] > 0;
        }
        CHECKF(fabs(sum - 1) < 1e-5, "case %zu: probabilities sum to %f", c, sum);
        if (cases[c].top_k == 6) CHECKF(nz <= 6, "case %zu: top-k 6 left %d tokens", c, nz);
        if (cases[c].temp == 0) CHECKF(nz == 1, "case %zu: greedy is a point mass (%d tokens)", c, nz);
        int counts[NV] = {0};
        for (int i = 0; i < DRAWS; i++)
            counts[hearth_sampler_sample(s, LOGITS_T)]++;
        int df;
        double chi = gof(counts, p, NV, DRAWS, &df);
        CHECKF(chi < chi_crit(df), "case %zu: sample() vs probs(): chi-square %.1f (df %d, limit %.1f)", c,
               chi, df, chi_crit(df));
        hearth_sampler_free(s);
    }
}

/* The draft's sampler starts each draft from the sequence's penalty history:
 * after copy_history its probs equal the source's, for a short history and
 * for one that wrapped the ring (penalty_last_n 3 over 5 tokens). */
static void test_copy_history(void) {
    for (int wrap = 0; wrap < 2; wrap++) {
        hearth_sampling_params sp = hearth_sampling_defaults();
        sp.temperature = 1.0f;
        sp.repeat_penalty = 1.5f;
        sp.frequency_penalty = 0.3f;
        sp.penalty_last_n = wrap ? 3 : 64;
        hearth_error err = {0};
        hearth_sampler *a = hearth_sampler_create(&sp, NV, &err), *b = hearth_sampler_create(&sp, NV, &err);
        REQUIRE(a && b);
        const int32_t hist[] = {0, 1, 1, 8, 2};
        for (int i = 0; i < 5; i++)
            hearth_sampler_accept(a, hist[i]);
        hearth_sampler_accept(b, 5); /* something to overwrite */
        hearth_sampler_copy_history(b, a);
        float pa[NV], pb[NV];
        hearth_sampler_probs(a, LOGITS_T, pa);
        hearth_sampler_probs(b, LOGITS_T, pb);
        CHECKF(!memcmp(pa, pb, sizeof pa), "copy_history (wrap %d): the copy gives other probabilities",
               wrap);
        hearth_sampler_accept(a, 3); /* and they stay in step after it */
        hearth_sampler_accept(b, 3);
        hearth_sampler_probs(a, LOGITS_T, pa);
        hearth_sampler_probs(b, LOGITS_T, pb);
        CHECKF(!memcmp(pa, pb, sizeof pa), "copy_history (wrap %d): out of step after one more token", wrap);
        hearth_sampler_free(a);
        hearth_sampler_free(b);
    }
}

typedef enum rule { RULE_RIGHT, RULE_RESAMPLE_P, RULE_KEEP_DRAFT, RULE_INVERSE } rule;

/* One verified position by rule `how`: the draft x (drawn from q, or the
 * point mass `fixed` when q is NULL) checked against p. */
static int32_t verify(rule how, const float *p, const float *q, int32_t fixed) {
    int32_t x = q ? hearth_spec_draw(q, NV, uniform()) : fixed;
    double ua = uniform(), ur = uniform();
    bool ok;
    switch (how) {
    case RULE_RIGHT: return hearth_spec_accept(p, q, NV, x, ua, ur, &ok);
    case RULE_KEEP_DRAFT: return x;
    case RULE_RESAMPLE_P: {
        double qx = q ? q[x] : 1.0;
        return ua * qx < p[x] ? x : hearth_spec_draw(p, NV, ur);
    }
    case RULE_INVERSE: {
        double qx = q ? q[x] : 1.0;
        return p[x] > 0 && ua * p[x] < qx ? x : hearth_spec_accept(p, q, NV, x, 1.0, ur, &ok);
    }
    }
    return -1;
}

static double rule_chi(rule how, const float *p, const float *q, int32_t fixed, int *df) {
    int counts[NV] = {0}, bad = 0;
    for (int i = 0; i < DRAWS; i++) {
        int32_t t = verify(how, p, q, fixed);
        if (t >= 0 && t < NV)
            counts[t]++;
        else
            bad++;
    }
    CHECKF(bad == 0, "%d draws returned no token", bad);
    return gof(counts, p, NV, DRAWS, df);
}

static void test_rule_over_sampler_chain(void) {
    /* target: the default filters and a repeat penalty; draft: other logits, another temperature */
    hearth_sampler *ts = make(0.8f, 40, 0.95f, 0.05f, 1.2f, 1);
    hearth_sampler *ds = make(1.1f, 0, 1.0f, 0.0f, 1.0f, 2);
    float p[NV], q[NV];
    hearth_sampler_probs(ts, LOGITS_T, p);
    hearth_sampler_probs(ds, LOGITS_D, q);
    int df;
    double chi = rule_chi(RULE_RIGHT, p, q, -1, &df);
    CHECKF(chi < chi_crit(df), "draft q: chi-square %.1f (df %d, limit %.1f)", chi, df, chi_crit(df));
    chi = rule_chi(RULE_RIGHT, p, NULL, 3, &df);
    CHECKF(chi < chi_crit(df), "n-gram point mass: chi-square %.1f (limit %.1f)", chi, chi_crit(df));
    chi = rule_chi(RULE_RIGHT, p, NULL, 10, &df); /* a draft the filters removed: always resampled */
    CHECKF(chi < chi_crit(df), "point mass on a filtered token: chi-square %.1f", chi);
    /* the wrong rules must fail the same check */
    static const char *const names[] = {"", "resample from p", "keep the draft", "accept with q/p"};
    for (rule how = RULE_RESAMPLE_P; how <= RULE_INVERSE; how++) {
        chi = rule_chi(how, p, q, -1, &df);
        CHECKF(chi > 10 * chi_crit(df), "wrong rule '%s' passes: chi-square %.1f (limit %.1f)", names[how],
               chi, chi_crit(df));
    }
    chi = rule_chi(RULE_KEEP_DRAFT, p, NULL, 3, &df);
    CHECKF(chi > 10 * chi_crit(df), "wrong rule 'keep the draft' passes on a point mass: %.1f", chi);
    hearth_sampler_free(ts);
    hearth_sampler_free(ds);
}

/* ---- end to end */
enum { WAVE = 64, GEN = 3, PAGE = 16 };
/* Requests per arm: 1000, a quarter under the sanitizers (TEST_SANITIZED), where
 * the chi-square keeps its 0.001 level with less power. */
static const int REQS = TEST_SANITIZED ? 250 : 1000;

typedef struct col {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int32_t first[WAVE][2];
    int n[WAVE];
    long drafted, accepted;
} col;
typedef struct ref {
    col *c;
    int i;
} ref;

static void on_ev(const hearth_event *ev, void *user) {
    ref *r = user;
    col *c = r->c;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        if (c->n[r->i] < 2) c->first[r->i][c->n[r->i]++] = ev->token;
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->drafted += ev->stats->spec_drafted;
    c->accepted += ev->stats->spec_accepted;
    c->done++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

typedef struct arm {
    int *counts[2]; /* [n_vocab] the first and second generated token */
    long drafted, accepted;
} arm;

static void submit_wave(hearth_engine *e, const int32_t *prompt, int n_prompt, hearth_sampling_params sp,
                        uint64_t seed0, int n, int max_tokens, col *c, ref *refs) {
    hearth_error err = {0};
    for (int i = 0; i < n; i++) {
        refs[i] = (ref){c, i};
        c->n[i] = 0;
        hearth_request rq = {
            .prompt = prompt, .n_prompt = n_prompt, .max_tokens = max_tokens, .ignore_eog = true};
        rq.sampling = sp;
        rq.sampling.seed = seed0 + (uint64_t)i;
        rq.on_event = on_ev;
        rq.user = &refs[i];
        uint64_t id = hearth_engine_submit(e, &rq, &err); /* REQUIRE_MSG evaluates its condition twice */
        REQUIRE_MSG(id > 0, "submit: %s", err.msg);
    }
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* REQS requests of prompt with sampling sp; the prompt's pages are cached first. */
static void run_arm(hearth_model *m, hearth_spec_mode mode, hearth_model *draft, const int32_t *prompt,
                    int n_prompt, hearth_sampling_params sp, arm *out) {
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.n_ctx = 256;
    cfg.n_parallel = 4;
    cfg.page_size = PAGE;
    cfg.spec = mode;
    cfg.spec_k = HEARTH_SPEC_K_STEP; /* always draft: the rule must be exercised */
    cfg.draft = draft;
    cfg.draft_max = GEN - 1;
    cfg.spec_max_batch = 4;
    hearth_error err = {0};
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE_MSG(e, "engine: %s", err.msg);
    const int nv = m->hp.n_vocab;
    out->counts[0] = calloc((size_t)nv, sizeof(int));
    out->counts[1] = calloc((size_t)nv, sizeof(int));
    REQUIRE(out->counts[0] && out->counts[1]);
    static col c;
    static ref refs[WAVE];
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    c.done = 0;
    c.drafted = c.accepted = 0;
    hearth_sampling_params greedy = hearth_sampling_defaults();
    greedy.temperature = 0;
    submit_wave(e, prompt, n_prompt, greedy, 0, 1, 1, &c, refs); /* publishes the prompt's pages */
    c.drafted = c.accepted = 0;
    for (int w = 0; w < REQS; w += WAVE) {
        int n = REQS - w < WAVE ? REQS - w : WAVE;
        c.done = 0;
        submit_wave(e, prompt, n_prompt, sp, 1000 + (uint64_t)w, n, GEN, &c, refs);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < c.n[i]; j++)
                out->counts[j][c.first[i][j]]++;
    }
    out->drafted = c.drafted;
    out->accepted = c.accepted;
    hearth_engine_stats st;
    hearth_engine_stats_get(e, &st);
    CHECKF(st.cached_tokens >= (uint64_t)REQS * (uint64_t)(n_prompt - 1),
           "the prompt came from the prefix cache (%llu cached tokens)",
           (unsigned long long)st.cached_tokens);
    hearth_engine_free(e);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
}

/* Two-sample chi-square of the count rows a and b (cells with an expected
 * count under 5 in either row pooled into one); true when they look like one
 * distribution at the 0.001 level. */
static bool same_dist(const int *a, const int *b, int nv, const char *what) {
    double na = 0, nb = 0;
    for (int i = 0; i < nv; i++)
        na += a[i], nb += b[i];
    double chi = 0, pa = 0, pb = 0;
    int cells = 0;
    for (int i = 0; i <= nv; i++) {
        double ca, cb;
        if (i < nv) {
            double tot = a[i] + b[i];
            if (tot == 0) continue;
            if (tot * (na < nb ? na : nb) / (na + nb) < 5) {
                pa += a[i], pb += b[i];
                continue;
            }
            ca = a[i], cb = b[i];
        } else {
            if (pa + pb == 0) break;
            ca = pa, cb = pb;
        }
        double tot = ca + cb, ea = tot * na / (na + nb), eb = tot * nb / (na + nb);
        chi += (ca - ea) * (ca - ea) / ea + (cb - eb) * (cb - eb) / eb;
        cells++;
    }
    double lim = chi_crit(cells - 1);
    fprintf(stderr, "%s: chi-square %.1f over %d cells (limit %.1f)\n", what, chi, cells, lim);
    return chi < lim;
}

static void free_arm(arm *a) {
    free(a->counts[0]);
    free(a->counts[1]);
}

static void test_end_to_end(hearth_model *m, hearth_model *draft) {
    /* a quoting prompt (n-gram lookup finds the continuation), cut to 2 pages + 1 token */
    const char *text = "In the beginning God created the heaven and the earth. And the earth was without "
                       "form, and void. In the beginning God created the heaven and the earth. And the earth";
    hearth_tokens t = {0};
    hearth_error err = {0};
    REQUIRE(hearth_tokenizer_encode(m->tokenizer, text, strlen(text), true, false, &t, &err) == HEARTH_OK);
    int n_prompt = 2 * PAGE + 1;
    REQUIRE_MSG((int)t.n >= n_prompt, "prompt has %zu tokens, want %d", t.n, n_prompt);
    const int nv = m->hp.n_vocab;
    hearth_sampling_params plain = hearth_sampling_defaults();
    plain.temperature = 1.0f;
    plain.top_k = 0;
    plain.top_p = 1.0f;
    plain.min_p = 0.0f;
    hearth_sampling_params filtered = hearth_sampling_defaults(); /* top-k 40, top-p 0.95, min-p 0.05 */
    filtered.temperature = 1.0f;
    filtered.repeat_penalty = 1.3f;
    struct {
        const char *name;
        hearth_sampling_params sp;
    } settings[] = {{"temperature 1", plain}, {"temperature 1, filters, repeat penalty 1.3", filtered}};
    for (int s = 0; s < 2; s++) {
        arm off, ng, dr;
        run_arm(m, HEARTH_SPEC_OFF, NULL, t.ids, n_prompt, settings[s].sp, &off);
        run_arm(m, HEARTH_SPEC_NGRAM, NULL, t.ids, n_prompt, settings[s].sp, &ng);
        run_arm(m, HEARTH_SPEC_DRAFT, draft, t.ids, n_prompt, settings[s].sp, &dr);
        fprintf(stderr, "%s: n-gram accepted %ld of %ld drafts, draft model %ld of %ld\n", settings[s].name,
                ng.accepted, ng.drafted, dr.accepted, dr.drafted);
        CHECKF(off.drafted == 0, "no speculation drafted %ld", off.drafted);
        CHECKF(ng.accepted > REQS / 10 && ng.accepted < ng.drafted, "n-gram: %ld of %ld accepted",
               ng.accepted, ng.drafted);
        CHECKF(dr.accepted > REQS / 10 && dr.accepted < dr.drafted, "draft: %ld of %ld accepted", dr.accepted,
               dr.drafted);
        for (int j = 0; j < 2; j++) {
            char what[128];
            snprintf(what, sizeof what, "%s, token %d, n-gram vs off", settings[s].name, j + 1);
            CHECKF(same_dist(ng.counts[j], off.counts[j], nv, what), "%s differs", what);
            snprintf(what, sizeof what, "%s, token %d, draft vs off", settings[s].name, j + 1);
            CHECKF(same_dist(dr.counts[j], off.counts[j], nv, what), "%s differs", what);
        }
        if (s == 0) { /* the comparison sees a different distribution: temperature 0.6 */
            arm cold;
            hearth_sampling_params sp = plain;
            sp.temperature = 0.6f;
            run_arm(m, HEARTH_SPEC_DRAFT, draft, t.ids, n_prompt, sp, &cold);
            CHECKF(!same_dist(cold.counts[0], off.counts[0], nv, "temperature 0.6 vs 1 (must differ)"),
                   "the check cannot tell temperature 0.6 from 1");
            free_arm(&cold);
        }
        free_arm(&off);
        free_arm(&ng);
        free_arm(&dr);
    }
    hearth_tokens_free(&t);
}

static hearth_model *load(hearth_backend *be, const char *file, hearth_error *err) {
    char path[1024];
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    return hearth_model_load(test_shared_path(path, sizeof path, file), &mp, err);
}

int main(void) {
    test_probs_are_what_sample_draws();
    test_rule_over_sampler_chain();
    test_copy_history();
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    hearth_model *m = load(be, "models/hearth-kjv-llama-q8_0.gguf", &err);
    REQUIRE_MSG(m, "target: %s", err.msg);
    hearth_model *d = load(be, "models/hearth-kjv-draft-q8_0.gguf", &err);
    REQUIRE_MSG(d, "draft: %s", err.msg);
    test_end_to_end(m, d);
    hearth_model_free(d);
    hearth_model_free(m);
    hearth_backend_free(be);
    return test_summary("spec_sampled");
}
