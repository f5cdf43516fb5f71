/*
 * test_engine.c - the engine on a real model (hearth-kjv-llama-q8_0):
 *  - batching changes nothing: 8 prompts at once give the tokens each gives alone;
 *  - preemption under KV pressure changes nothing either;
 *  - the prefix cache: a repeated long prefix is served from cache with the
 *    same output; persisted in SQLite, it survives a new engine; a cache
 *    written for one model is never used by another;
 *  - cancel, stop strings, max_tokens, a prompt too long for the context,
 *    too many waiting requests; no KV pages leak.
 */
#include <pthread.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "test.h"

static hearth_backend *g_be;

static hearth_model *load(const char *file) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = g_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(test_shared_path(path, sizeof path, file), &mp, &err);
    if (!m) fprintf(stderr, "%s: %s\n", file, err.msg);
    return m;
}

/* Deterministic "prompt" of n ids in the normal-token range of the KJV vocab. */
static void make_prompt(int32_t *out, int n, uint32_t seed) {
    out[0] = 1; /* BOS */
    for (int i = 1; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        out[i] = 261 + (int32_t)((seed >> 8) % 700);
    }
}

static hearth_request greedy_req(const int32_t *prompt, int n, int max_tokens) {
    hearth_request r = {0};
    r.prompt = prompt;
    r.n_prompt = n;
    r.sampling = hearth_sampling_defaults();
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    return r;
}

/* ---- concurrent collection */
typedef struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    hearth_tokens toks[16];
    hearth_finish finish[16];
    hearth_request_stats stats[16];
    uint64_t ids[16];
    int cancel_after; /* cancel request 0 after this many tokens (0: never) */
    hearth_engine *e;
} collect;

typedef struct slot_ref {
    collect *c;
    int i;
} slot_ref;

static void on_event(const hearth_event *ev, void *user) {
    slot_ref *s = user;
    collect *c = s->c;
    if (ev->kind == HEARTH_EVENT_TOKEN) {
        hearth_tokens_push(&c->toks[s->i], ev->token);
        if (c->cancel_after && s->i == 0 && (int)c->toks[0].n == c->cancel_after)
            hearth_engine_cancel(c->e, ev->id);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->finish[s->i] = ev->finish;
    c->stats[s->i] = *ev->stats;
    c->done++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void run_concurrent(hearth_engine *e, int n, int32_t prompts[][64], const int *lens, int max_tokens,
                           collect *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->e = e;
    slot_ref refs[16];
    hearth_error err = {0};
    for (int i = 0; i < n; i++) {
        refs[i] = (slot_ref){c, i};
        hearth_request r = greedy_req(prompts[i], lens[i], max_tokens);
        r.on_event = on_event;
        r.user = &refs[i];
        c->ids[i] = hearth_engine_submit(e, &r, &err);
        CHECKF(c->ids[i] > 0, "submit: %s", err.msg);
    }
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void collect_free(collect *c, int n) {
    for (int i = 0; i < n; i++)
        hearth_tokens_free(&c->toks[i]);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static void wait_idle(hearth_engine *e) {
    hearth_engine_stats st;
    for (int i = 0; i < 500; i++) {
        hearth_engine_stats_get(e, &st);
        if (st.running == 0 && st.waiting == 0) return;
        usleep(2000);
    }
}

int main(void) {
    hearth_error err = {0};
    g_be = hearth_cpu_backend_create(2, &err);
    REQUIRE(g_be);
    hearth_model *m = load("models/hearth-kjv-llama-q8_0.gguf");
    REQUIRE(m);

    enum { N = 8, GEN = 24 };
    int32_t prompts[N][64];
    int lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = 5 + 7 * i;
        make_prompt(prompts[i], lens[i], 100 + (uint32_t)i);
    }

    /* ---- reference: each prompt alone, prefix cache off */
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.prefix_cache = false;
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    hearth_completion alone[N];
    for (int i = 0; i < N; i++) {
        hearth_request r = greedy_req(prompts[i], lens[i], GEN);
        CHECK(hearth_engine_generate(e, &r, &alone[i], &err) == HEARTH_OK);
        CHECK(alone[i].tokens.n == GEN || alone[i].finish == HEARTH_FINISH_STOP);
    }

    /* ---- batching changes nothing */
    collect c;
    run_concurrent(e, N, prompts, lens, GEN, &c);
    for (int i = 0; i < N; i++) {
        CHECKF(c.toks[i].n == alone[i].tokens.n &&
                   !memcmp(c.toks[i].ids, alone[i].tokens.ids, c.toks[i].n * sizeof(int32_t)),
               "prompt %d: batched output differs from alone", i);
    }
    collect_free(&c, N);
    hearth_engine_stats st;
    wait_idle(e);
    hearth_engine_stats_get(e, &st);
    CHECK(st.kv.pages_used == 0);
    CHECK(st.requests_done == 2 * N);
    hearth_engine_free(e);

    /* ---- preemption under KV pressure changes nothing: 8 sequences in a pool
     * that holds about three of them */
    cfg.n_pages = 3 * ((64 + GEN) / 16 + 1);
    cfg.n_batch = 32; /* chunked prefill, several steps per prompt */
    e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    run_concurrent(e, N, prompts, lens, GEN, &c);
    for (int i = 0; i < N; i++)
        CHECKF(c.toks[i].n == alone[i].tokens.n &&
                   !memcmp(c.toks[i].ids, alone[i].tokens.ids, c.toks[i].n * sizeof(int32_t)),
               "prompt %d: output under preemption differs", i);
    collect_free(&c, N);
    wait_idle(e);
    hearth_engine_stats_get(e, &st);
    printf("preemption run: %llu preemptions, %llu steps\n", (unsigned long long)st.preemptions,
           (unsigned long long)st.steps);
    CHECK(st.preemptions > 0);
    CHECK(st.kv.pages_used == 0);
    hearth_engine_free(e);

    /* ---- cancel mid-stream; pages come back */
    cfg = hearth_engine_defaults();
    cfg.prefix_cache = false;
    e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    memset(&c, 0, sizeof c);
    {
        collect *cc = &c;
        pthread_mutex_init(&cc->mu, NULL);
        pthread_cond_init(&cc->cv, NULL);
        cc->e = e;
        cc->cancel_after = 3;
        slot_ref ref = {cc, 0};
        hearth_request r = greedy_req(prompts[7], lens[7], 200);
        r.ignore_eog = true;
        r.on_event = on_event;
        r.user = &ref;
        CHECK(hearth_engine_submit(e, &r, &err) > 0);
        pthread_mutex_lock(&cc->mu);
        while (cc->done < 1)
            pthread_cond_wait(&cc->cv, &cc->mu);
        pthread_mutex_unlock(&cc->mu);
        CHECK(cc->finish[0] == HEARTH_FINISH_CANCELLED);
        CHECK(cc->toks[0].n >= 3 && cc->toks[0].n < 10);
        collect_free(cc, 1);
    }
    wait_idle(e);
    hearth_engine_stats_get(e, &st);
    CHECK(st.kv.pages_used == 0);

    /* ---- a Q8_0 KV cache works and stays close to F16: the first tokens agree */
    {
        hearth_engine_config qc = hearth_engine_defaults();
        qc.prefix_cache = false;
        qc.kv_type = HEARTH_Q8_0;
        hearth_engine *eq = hearth_engine_create(m, &qc, &err);
        REQUIRE(eq);
        hearth_completion cq;
        hearth_request rq8 = greedy_req(prompts[3], lens[3], GEN);
        CHECK(hearth_engine_generate(eq, &rq8, &cq, &err) == HEARTH_OK);
        CHECK(cq.tokens.n > 0 && alone[3].tokens.n > 0 && cq.tokens.ids[0] == alone[3].tokens.ids[0]);
        hearth_completion_free(&cq);
        hearth_engine_free(eq);
    }

    /* ---- limits */
    int32_t big[600];
    make_prompt(big, 600, 5);
    hearth_request r = greedy_req(big, 600, 4);
    CHECK(hearth_engine_submit(e, &r, &err) == 0);
    CHECK(err.code == HEARTH_ERR_CONTEXT);
    CHECK_CONTAINS(err.msg, "600 tokens");
    CHECK_CONTAINS(err.msg, "512");
    r = greedy_req(big, 0, 4);
    CHECK(hearth_engine_submit(e, &r, &err) == 0 && err.code == HEARTH_ERR_INVALID);
    int32_t badtok[2] = {1, 99999};
    r = greedy_req(badtok, 2, 4);
    CHECK(hearth_engine_submit(e, &r, &err) == 0);
    CHECK_CONTAINS(err.msg, "outside the vocabulary");

    /* ---- max_tokens gives finish=length */
    hearth_completion comp;
    r = greedy_req(prompts[2], lens[2], 5);
    r.ignore_eog = true;
    CHECK(hearth_engine_generate(e, &r, &comp, &err) == HEARTH_OK);
    CHECK(comp.tokens.n == 5 && comp.finish == HEARTH_FINISH_LENGTH);
    /* ---- a stop string cuts the text before it */
    if (comp.text_len > 3) {
        char stop[8];
        snprintf(stop, sizeof stop, "%.2s", comp.text + comp.text_len / 2);
        const char *stops[1] = {stop};
        hearth_completion c2;
        r.stop = stops;
        r.n_stop = 1;
        CHECK(hearth_engine_generate(e, &r, &c2, &err) == HEARTH_OK);
        CHECK(c2.finish == HEARTH_FINISH_STOP);
        CHECK(strstr(c2.text, stop) == NULL);
        CHECK(c2.text_len <= comp.text_len / 2 + 1);
        CHECK(!strncmp(c2.text, comp.text, c2.text_len));
        hearth_completion_free(&c2);
        r.stop = NULL;
        r.n_stop = 0;
    }
    hearth_completion_free(&comp);
    hearth_engine_free(e);

    /* ---- prefix cache in memory: a second request sharing a 400-token prefix */
    int32_t shared[460];
    make_prompt(shared, 460, 77);
    cfg = hearth_engine_defaults();
    cfg.prefix_cache = true;
    e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    hearth_completion first, second;
    r = greedy_req(shared, 420, 16);
    CHECK(hearth_engine_generate(e, &r, &first, &err) == HEARTH_OK);
    CHECK(first.stats.cached_tokens == 0);
    r = greedy_req(shared, 420, 16);
    CHECK(hearth_engine_generate(e, &r, &second, &err) == HEARTH_OK);
    CHECKF(second.stats.cached_tokens == 416, "cached %d", second.stats.cached_tokens);
    CHECK(first.tokens.n == second.tokens.n &&
          !memcmp(first.tokens.ids, second.tokens.ids, first.tokens.n * sizeof(int32_t)));
    printf("prefix cache (memory): TTFT cold %.1f ms, cached %.1f ms\n", first.stats.ttft_ms,
           second.stats.ttft_ms);
    /* a longer prompt sharing the prefix reuses it too; output equals a cold run */
    hearth_completion third, cold;
    r = greedy_req(shared, 460, 8);
    CHECK(hearth_engine_generate(e, &r, &third, &err) == HEARTH_OK);
    CHECK(third.stats.cached_tokens >= 416);
    hearth_engine_free(e);
    cfg.prefix_cache = false;
    e = hearth_engine_create(m, &cfg, &err);
    CHECK(hearth_engine_generate(e, &r, &cold, &err) == HEARTH_OK);
    CHECK(cold.tokens.n == third.tokens.n &&
          !memcmp(cold.tokens.ids, third.tokens.ids, cold.tokens.n * sizeof(int32_t)));
    hearth_engine_free(e);
    hearth_completion_free(&third);
    hearth_completion_free(&cold);

    /* ---- persistent: a new engine (as after a restart) reads the pages from SQLite */
    char dir[] = "/tmp/hearth-engine-test-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char db[256];
    snprintf(db, sizeof db, "%s/cache.sqlite", dir);
    cfg = hearth_engine_defaults();
    cfg.cache_db = db;
    e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    hearth_completion p1, p2;
    r = greedy_req(shared, 420, 16);
    CHECK(hearth_engine_generate(e, &r, &p1, &err) == HEARTH_OK);
    hearth_engine_free(e); /* flushes the store */
    e = hearth_engine_create(m, &cfg, &err);
    REQUIRE(e);
    CHECK(hearth_engine_generate(e, &r, &p2, &err) == HEARTH_OK);
    CHECKF(p2.stats.cached_tokens == 416, "cached from disk: %d", p2.stats.cached_tokens);
    CHECK(p1.tokens.n == p2.tokens.n && !memcmp(p1.tokens.ids, p2.tokens.ids, p1.tokens.n * sizeof(int32_t)));
    CHECK(p1.tokens.n == first.tokens.n &&
          !memcmp(p1.tokens.ids, first.tokens.ids, p1.tokens.n * sizeof(int32_t)));
    wait_idle(e);
    hearth_engine_stats_get(e, &st);
    CHECK(st.prefix.hits_disk == 26);
    printf("prefix cache (SQLite, new engine): TTFT cold %.1f ms, from disk %.1f ms\n", p1.stats.ttft_ms,
           p2.stats.ttft_ms);
    hearth_engine_free(e);

    /* ---- another model (same vocabulary) never uses these pages */
    hearth_model *m2 = load("models/hearth-kjv-draft-q8_0.gguf");
    REQUIRE(m2);
    e = hearth_engine_create(m2, &cfg, &err);
    REQUIRE(e);
    hearth_completion q;
    CHECK(hearth_engine_generate(e, &r, &q, &err) == HEARTH_OK);
    CHECK(q.stats.cached_tokens == 0);
    hearth_engine_free(e);
    hearth_completion_free(&q);
    hearth_model_free(m2);

    hearth_completion_free(&first);
    hearth_completion_free(&second);
    hearth_completion_free(&p1);
    hearth_completion_free(&p2);
    for (int i = 0; i < N; i++)
        hearth_completion_free(&alone[i]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup of %s failed\n", dir);
    /* ---- the automatic context: the model's trained one, cut to what fits in memory */
    {
        int train = m->hp.n_ctx_train;
        hearth_engine_config ac = hearth_engine_defaults();
        ac.prefix_cache = false;
        e = hearth_engine_create(m, &ac, &err);
        REQUIRE(e);
        CHECKF(hearth_engine_n_ctx(e) == train, "small model: context %d = its trained %d",
               hearth_engine_n_ctx(e), train);
        hearth_engine_free(e);
        m->hp.n_ctx_train = 1 << 30; /* far more than any machine's memory holds */
        e = hearth_engine_create(m, &ac, &err);
        CHECKF(e != NULL, "huge trained context: %s", err.msg);
        if (e) {
            CHECKF(hearth_engine_n_ctx(e) < (1 << 30) && hearth_engine_n_ctx(e) >= 256, "cut to %d",
                   hearth_engine_n_ctx(e));
            CHECK_CONTAINS(hearth_engine_note(e), "does not fit in the free memory");
            hearth_engine_free(e);
        }
        m->hp.n_ctx_train = 100000; /* fits: one full-context sequence, the rest 4096 each */
        e = hearth_engine_create(m, &ac, &err);
        CHECKF(e != NULL, "100k context: %s", err.msg);
        if (e) {
            hearth_engine_stats es;
            hearth_engine_stats_get(e, &es);
            int ps = 16;
            CHECKF(hearth_engine_n_ctx(e) == 100000 || strstr(hearth_engine_note(e), "does not fit"),
                   "context %d", hearth_engine_n_ctx(e));
            CHECKF(es.kv.n_pages * ps >= 100000 || strstr(hearth_engine_note(e), "cut"), "pool of %d pages",
                   es.kv.n_pages);
            CHECKF(es.kv.n_pages * ps < 8 * 100000, "the pool is not 8 full contexts (%d pages)",
                   es.kv.n_pages);
            hearth_engine_free(e);
        }
        m->hp.n_ctx_train = train;
    }

    hearth_model_free(m);
    hearth_backend_free(g_be);
    return test_summary("engine");
}
