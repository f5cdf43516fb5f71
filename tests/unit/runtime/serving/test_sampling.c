/*
 * test_sampling.c - the sampler: greedy ties, determinism by seed, that each
 * filter (top-k, top-p, min-p) really removes what it should, temperature
 * shape, the penalties, and that sampling with an allowed-token check gives
 * exactly what sampling a masked row gives.
 */
#include <math.h>
#include <stdlib.h>

#include "runtime/serving/sampling.h"
#include "test.h"

#define NV 8

static int draw_counts(hearth_sampling_params p, const float *logits, int draws, int *counts) {
    hearth_error err = {0};
    hearth_sampler *s = hearth_sampler_create(&p, NV, &err);
    if (!s) return -1;
    for (int i = 0; i < NV; i++)
        counts[i] = 0;
    for (int i = 0; i < draws; i++)
        counts[hearth_sampler_sample(s, logits)]++;
    hearth_sampler_free(s);
    return 0;
}

/* ---- hearth_sampler_sample_allowed against mask-then-sample */

typedef struct {
    const uint8_t *ok;
    int calls;
} allow_set;

static bool allow_cb(void *ctx, int32_t t) {
    allow_set *a = ctx;
    a->calls++;
    return a->ok[t];
}

static uint64_t lcg(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Two samplers with one seed draw STEPS tokens from random rows with random
 * allowed sets: one through sample_allowed (falling back to the mask when it
 * says -1, as the engine does), one always masking. Every token must be the
 * same; returns how many steps the check alone decided. */
static int allowed_matches_mask(hearth_sampling_params p, int nv, int density_pct, uint64_t seed) {
    enum { STEPS = 300 };
    hearth_error err = {0};
    hearth_sampler *a = hearth_sampler_create(&p, nv, &err), *b = hearth_sampler_create(&p, nv, &err);
    float *lg = malloc(sizeof *lg * (size_t)nv), *masked = malloc(sizeof *masked * (size_t)nv);
    uint8_t *ok = malloc((size_t)nv);
    if (!a || !b || !lg || !masked || !ok) return -1;
    int decided = 0, differ = 0;
    uint64_t x = seed;
    for (int step = 0; step < STEPS; step++) {
        int any = 0;
        for (int i = 0; i < nv; i++) {
            lg[i] = (float)(lcg(&x) % 4000) / 400.0f - 5.0f; /* ties happen: 4000 values */
            ok[i] = (int)(lcg(&x) % 100) < density_pct;
            any |= ok[i];
        }
        if (!any) ok[step % nv] = 1;
        for (int i = 0; i < nv; i++)
            masked[i] = ok[i] ? lg[i] : -INFINITY;
        allow_set as = {ok, 0};
        int32_t ta = hearth_sampler_sample_allowed(a, lg, allow_cb, &as);
        if (ta >= 0) {
            decided++;
            if (!ok[ta]) differ++;
        } else {
            ta = hearth_sampler_sample(a, masked);
        }
        int32_t tb = hearth_sampler_sample(b, masked);
        differ += ta != tb;
        hearth_sampler_accept(a, ta); /* same history: penalties stay in step */
        hearth_sampler_accept(b, tb);
    }
    CHECKF(differ == 0, "nv %d density %d%% T %.2f top_k %d: %d of %d tokens differ", nv, density_pct,
           (double)p.temperature, p.top_k, differ, STEPS);
    hearth_sampler_free(a);
    hearth_sampler_free(b);
    free(lg);
    free(masked);
    free(ok);
    return decided;
}

static void test_sample_allowed(void) {
    hearth_sampling_params p = hearth_sampling_defaults(); /* T 0.8, top-k 40, top-p 0.95, min-p 0.05 */
    /* dense allowed sets: the check alone decides almost always */
    CHECK(allowed_matches_mask(p, 5000, 90, 1) > 250);
    CHECK(allowed_matches_mask(p, 5000, 50, 2) > 250);
    /* sparse: mostly the mask; the tokens still agree */
    CHECK(allowed_matches_mask(p, 5000, 2, 3) >= 0);
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.2f;
    CHECK(allowed_matches_mask(p, 3001, 70, 4) > 200);
    p.top_k = 3;
    p.top_p = 1;
    p.min_p = 0;
    p.temperature = 1.5f;
    CHECK(allowed_matches_mask(p, 777, 30, 5) > 200);
    p.temperature = 0; /* greedy, penalties on */
    CHECK(allowed_matches_mask(p, 5000, 20, 6) > 250);
    CHECK(allowed_matches_mask(p, 64, 1, 7) >= 0);
    /* top-k off with sampling: needs every allowed token, never decided alone */
    p = hearth_sampling_defaults();
    p.top_k = 0;
    CHECK(allowed_matches_mask(p, 500, 90, 8) == 0);
    /* the check looks at few candidates, not the vocabulary */
    {
        hearth_error err = {0};
        p = hearth_sampling_defaults();
        hearth_sampler *s = hearth_sampler_create(&p, 100000, &err);
        float *lg = malloc(sizeof *lg * 100000);
        uint8_t *ok = malloc(100000);
        REQUIRE(s && lg && ok);
        for (int i = 0; i < 100000; i++) {
            lg[i] = (float)((i * 7919) % 100003) / 1000.0f;
            ok[i] = 1;
        }
        allow_set as = {ok, 0};
        CHECK(hearth_sampler_sample_allowed(s, lg, allow_cb, &as) >= 0);
        CHECKF(as.calls == p.top_k, "%d checks for top-k %d", as.calls, p.top_k);
        hearth_sampler_free(s);
        free(lg);
        free(ok);
    }
}

int main(void) {
    test_sample_allowed();
    const float logits[NV] = {1.0f, 3.0f, 3.0f, 2.5f, 0.0f, -1.0f, 2.9f, -5.0f};
    hearth_error err = {0};

    /* greedy: argmax, lowest id on a tie */
    CHECK(hearth_argmax(logits, NV) == 1);
    {
        const float with_nan[4] = {NAN, -2.0f, NAN, -1.0f}, all_nan[2] = {NAN, NAN};
        CHECK(hearth_argmax(with_nan, 4) == 3);
        CHECK(hearth_argmax(all_nan, 2) == 0);
    }
    hearth_sampling_params p = hearth_sampling_defaults();
    p.temperature = 0;
    hearth_sampler *s = hearth_sampler_create(&p, NV, &err);
    REQUIRE(s);
    CHECK(hearth_sampler_sample(s, logits) == 1);
    hearth_sampler_free(s);

    /* same seed -> same sequence; another seed -> (almost surely) another */
    p = hearth_sampling_defaults();
    p.temperature = 1.5f;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    int seqa[64], seqb[64], seqc[64];
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 7 : 42;
        s = hearth_sampler_create(&p, NV, &err);
        int *out = run == 0 ? seqa : run == 1 ? seqb : seqc;
        for (int i = 0; i < 64; i++)
            out[i] = hearth_sampler_sample(s, logits);
        hearth_sampler_free(s);
    }
    CHECK(!memcmp(seqa, seqb, sizeof seqa));
    CHECK(memcmp(seqa, seqc, sizeof seqa) != 0);

    int counts[NV];
    /* top-k 2: only ids 1 and 2 */
    p.top_k = 2;
    REQUIRE(draw_counts(p, logits, 2000, counts) == 0);
    CHECK(counts[1] > 0 && counts[2] > 0 && counts[1] + counts[2] == 2000);

    /* top-p small: only the best few; probabilities of 1,2 (tied) then 6 */
    p.top_k = 0;
    p.top_p = 0.5f;
    REQUIRE(draw_counts(p, logits, 2000, counts) == 0);
    CHECK(counts[0] == 0 && counts[4] == 0 && counts[5] == 0 && counts[7] == 0);
    CHECK(counts[1] > 0);

    /* min-p 0.5: keep tokens with p >= 0.5 p_max -> logit >= 3 - ln 2 = 2.307 -> ids 1,2,3,6 */
    p.top_p = 1;
    p.min_p = 0.5f;
    REQUIRE(draw_counts(p, logits, 4000, counts) == 0);
    CHECK(counts[0] == 0 && counts[4] == 0 && counts[5] == 0 && counts[7] == 0);
    CHECK(counts[1] > 0 && counts[2] > 0 && counts[3] > 0 && counts[6] > 0);

    /* low temperature concentrates on the best tokens */
    p.min_p = 0;
    p.temperature = 0.05f;
    REQUIRE(draw_counts(p, logits, 1000, counts) == 0);
    /* id 6 (2.9) keeps e^(-0.1/0.05) = 13.5% of the weight of each of ids 1, 2 (3.0) */
    CHECK(counts[1] + counts[2] + counts[6] == 1000);
    CHECK(counts[6] > 20 && counts[6] < counts[1] && counts[6] < counts[2]);

    /* frequency distribution roughly matches softmax at T=1 (chi-square-ish bound) */
    p.temperature = 1.0f;
    REQUIRE(draw_counts(p, logits, 20000, counts) == 0);
    double z = 0, pr[NV];
    for (int i = 0; i < NV; i++)
        z += exp(logits[i]);
    for (int i = 0; i < NV; i++) {
        pr[i] = exp(logits[i]) / z;
        CHECKF(fabs(counts[i] / 20000.0 - pr[i]) < 0.02, "id %d: %g vs %g", i, counts[i] / 20000.0, pr[i]);
    }

    /* repetition penalty pushes a repeated best token below the next */
    p = hearth_sampling_defaults();
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    s = hearth_sampler_create(&p, NV, &err);
    hearth_sampler_accept(s, 1);
    hearth_sampler_accept(s, 2);
    CHECK(hearth_sampler_sample(s, logits) == 6); /* 3/2 = 1.5 < 2.9 */
    hearth_sampler_free(s);
    /* presence/frequency penalties subtract */
    p.repeat_penalty = 1;
    p.frequency_penalty = 0.3f;
    s = hearth_sampler_create(&p, NV, &err);
    hearth_sampler_accept(s, 1);
    hearth_sampler_accept(s, 1);
    CHECK(hearth_sampler_sample(s, logits) == 2); /* 3 - 0.6 < 3 */
    hearth_sampler_free(s);
    /* penalty window: only the last n count */
    p.frequency_penalty = 0;
    p.presence_penalty = 10;
    p.penalty_last_n = 2;
    s = hearth_sampler_create(&p, NV, &err);
    hearth_sampler_accept(s, 1);
    hearth_sampler_accept(s, 5);
    hearth_sampler_accept(s, 5); /* 1 falls out of the window */
    CHECK(hearth_sampler_sample(s, logits) == 1);
    hearth_sampler_free(s);

    /* logprobs: the log-softmax of the (penalised) logits, whatever the temperature */
    {
        float lg[NV];
        for (int i = 0; i < NV; i++)
            lg[i] = 0.37f * (float)((i * 7) % NV) - 1.0f;
        p = hearth_sampling_defaults();
        p.temperature = 0; /* greedy: logprobs are still the model's distribution */
        s = hearth_sampler_create(&p, NV, &err);
        hearth_logprobs lp;
        int32_t id = hearth_sampler_sample(s, lg);
        hearth_sampler_logprobs(s, lg, id, 3, &lp);
        double mx = -1e30, sum = 0;
        for (int i = 0; i < NV; i++)
            mx = lg[i] > mx ? lg[i] : mx;
        for (int i = 0; i < NV; i++)
            sum += exp(lg[i] - mx);
        double want = lg[id] - mx - log(sum);
        CHECKF(fabs(lp.logprob - want) < 1e-5, "logprob %f, want %f", lp.logprob, want);
        CHECK(lp.id == id && lp.n_top == 3 && lp.top_id[0] == id && lp.top_logprob[0] == lp.logprob);
        CHECK(lp.top_logprob[0] >= lp.top_logprob[1] && lp.top_logprob[1] >= lp.top_logprob[2]);
        CHECK(fabs(lp.top_logprob[1] - (lg[lp.top_id[1]] - mx - log(sum))) < 1e-5);
        hearth_sampler_logprobs(s, lg, 0, 50, &lp); /* any id, top capped */
        CHECK(lp.n_top == (NV < HEARTH_MAX_TOP_LOGPROBS ? NV : HEARTH_MAX_TOP_LOGPROBS));
        hearth_sampler_free(s);
        /* with a repeat penalty, a token already seen loses probability */
        p.repeat_penalty = 4;
        s = hearth_sampler_create(&p, NV, &err);
        hearth_logprobs before, after;
        hearth_sampler_logprobs(s, lg, id, 0, &before);
        hearth_sampler_accept(s, id);
        hearth_sampler_logprobs(s, lg, id, 0, &after);
        CHECKF(after.logprob < before.logprob - 0.1f, "penalised %f vs %f", after.logprob, before.logprob);
        hearth_sampler_free(s);
    }

    /* invalid settings are refused */
    p = hearth_sampling_defaults();
    p.temperature = -1;
    CHECK(hearth_sampler_create(&p, NV, &err) == NULL);
    CHECK_CONTAINS(err.msg, "temperature");
    return test_summary("sampling");
}
