/*
 * test_spec_draft.c - speculative decoding with a draft model
 * (hearth-kjv-draft drafting for hearth-kjv-llama, Q8_0 and F16 targets):
 *  - the vocabulary check accepts the pair (and hearth-kjv-qwen2, which
 *    shares the KJV vocabulary) and refuses stories260K (another vocabulary),
 *    naming the first differing token, at engine create too; mode 'draft' without a draft model
 *    is a clear error at engine create;
 *  - the draft on another backend (Vulkan, when a device exists) changes nothing;
 *  - greedy output with the draft model is token-identical to output without
 *    speculation: each prompt alone, 8 sequences batched, with prefix-cache
 *    hits (the draft catches up on a prompt the target took from the cache)
 *    and under preemption; drafts are accepted (the test fails if the draft
 *    model never drafted), and no KV page leaks.
 */
#include <pthread.h>
#include <unistd.h>

#include "runtime/serving/engine.h"
#include "runtime/serving/spec_draft.h"
#include "test.h"

/* REQUIRE with a message saying why */
#define REQUIRE_MSG(cond, ...)                                                                               \
    do {                                                                                                     \
        if (!(cond)) fprintf(stderr, __VA_ARGS__), fputc('\n', stderr);                                      \
        REQUIRE(cond);                                                                                       \
    } while (0)

enum { N = 8, GEN = 40, PMAX = 96 };

static const char *const TEXTS[N] = {
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "The LORD is my shepherd; I shall not want.",
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "Blessed are the meek: for they shall inherit the earth.",
    "And it came to pass, when men began to multiply on the face of the earth,",
    "For God so loved the world, that he gave his only begotten Son,",
    "Then the LORD answered Job out of the whirlwind, and said,",
};

static hearth_backend *g_be;

static hearth_model *load(const char *file, hearth_error *err) {
    char path[1024];
    hearth_model_params mp = {.backend = g_be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    return hearth_model_load(test_shared_path(path, sizeof path, file), &mp, err);
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

typedef struct prompts {
    int32_t ids[N][PMAX];
    int len[N];
} prompts;

/* Run prompts [first, first + n) at once (twice: a second round after the
 * first, checked equal to it); out[i] gets each output, st the final stats. */
static void run(hearth_model *m, hearth_engine_config cfg, const prompts *p, int first, int n, bool twice,
                hearth_tokens *out, hearth_engine_stats *st) {
    hearth_error err = {0};
    hearth_engine *e = hearth_engine_create(m, &cfg, &err);
    REQUIRE_MSG(e, "engine: %s", err.msg);
    for (int pass = 0; pass < (twice ? 2 : 1); pass++) {
        col c = {.done = 0};
        pthread_mutex_init(&c.mu, NULL);
        pthread_cond_init(&c.cv, NULL);
        ref refs[N];
        for (int i = 0; i < n; i++) {
            refs[i] = (ref){&c, i};
            hearth_request r = {.prompt = p->ids[first + i],
                                .n_prompt = p->len[first + i],
                                .max_tokens = GEN,
                                .ignore_eog = true};
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
            if (pass == 0) {
                out[i] = c.toks[i];
            } else {
                CHECKF(c.toks[i].n == out[i].n &&
                           !memcmp(c.toks[i].ids, out[i].ids, out[i].n * sizeof(int32_t)),
                       "second round, prompt %d differs from the first", first + i);
                hearth_tokens_free(&c.toks[i]);
            }
        }
        pthread_mutex_destroy(&c.mu);
        pthread_cond_destroy(&c.cv);
    }
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

static void report(const char *what, const hearth_engine_stats *st) {
    fprintf(stderr, "%s: drafted %llu accepted %llu (%.0f%%), %.2f tokens per verification pass\n", what,
            (unsigned long long)st->spec_drafted, (unsigned long long)st->spec_accepted,
            st->spec_drafted ? 100.0 * (double)st->spec_accepted / (double)st->spec_drafted : 0.0,
            st->spec_passes ? (double)st->spec_tokens / (double)st->spec_passes : 0.0);
}

static void test_identical(hearth_model *m, hearth_model *draft, const char *name) {
    prompts p;
    for (int i = 0; i < N; i++) {
        hearth_tokens t = {0};
        hearth_error err = {0};
        REQUIRE(hearth_tokenizer_encode(m->tokenizer, TEXTS[i], strlen(TEXTS[i]), true, false, &t, &err) ==
                HEARTH_OK);
        REQUIRE(t.n > 0 && t.n <= PMAX);
        memcpy(p.ids[i], t.ids, t.n * sizeof(int32_t));
        p.len[i] = (int)t.n;
        hearth_tokens_free(&t);
    }
    hearth_tokens ref_out[N], out[N];
    hearth_engine_stats st;
    hearth_engine_config base = hearth_engine_defaults();
    base.prefix_cache = false;
    run(m, base, &p, 0, N, false, ref_out, &st);
    for (int i = 0; i < N; i++)
        CHECK(ref_out[i].n == GEN);

    hearth_engine_config sc = base;
    sc.spec = HEARTH_SPEC_DRAFT;
    sc.spec_k = HEARTH_SPEC_K_STEP; /* always draft: these checks need verification passes */
    sc.draft = draft;
    sc.spec_max_batch = N;
    uint64_t drafted = 0, accepted = 0;
    for (int i = 0; i < N; i++) {
        run(m, sc, &p, i, 1, false, &out[i], &st);
        CHECKF(same(&out[i], &ref_out[i]), "%s alone, prompt %d differs with the draft model", name, i);
        hearth_tokens_free(&out[i]);
        drafted += st.spec_drafted;
        accepted += st.spec_accepted;
        CHECK(st.kv.pages_used == 0);
    }
    fprintf(stderr, "%s alone: drafted %llu accepted %llu\n", name, (unsigned long long)drafted,
            (unsigned long long)accepted);
    CHECKF(drafted > 0 && accepted > 0, "%s alone: nothing accepted (drafted %llu)", name,
           (unsigned long long)drafted);
    run(m, sc, &p, 0, N, false, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "%s batched, prompt %d differs with the draft model", name, i);
        hearth_tokens_free(&out[i]);
    }
    report(name, &st);
    CHECK(st.spec == HEARTH_SPEC_DRAFT && st.spec_accepted > 0 && st.spec_off_load == 0);
    CHECK(st.spec_tokens > st.spec_passes); /* more than one token per verification pass */
    /* prefix-cache hits: the second round's prompts come from the cache, the draft catches up on them */
    sc.prefix_cache = true;
    run(m, sc, &p, 0, N, true, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "%s prefix cache, prompt %d differs", name, i);
        hearth_tokens_free(&out[i]);
    }
    CHECK(st.cached_tokens > 0 && st.spec_accepted > 0);
    /* preemption: a pool too small for all 8 at once, prefill in chunks */
    sc.prefix_cache = false;
    sc.n_pages = 16;
    sc.n_batch = 32;
    run(m, sc, &p, 0, N, false, out, &st);
    for (int i = 0; i < N; i++) {
        CHECKF(same(&out[i], &ref_out[i]), "%s preemption, prompt %d differs", name, i);
        hearth_tokens_free(&out[i]);
    }
    CHECKF(st.preemptions > 0, "%s: no preemption happened", name);
    CHECK(st.kv.pages_used == 0);
    for (int i = 0; i < N; i++)
        hearth_tokens_free(&ref_out[i]);
}

/* The draft on another backend than the target (Vulkan, lavapipe in CI; skipped without a
 * device): the drafts differ in rounding at most, the output not at all. */
static void test_other_backend(hearth_model *m) {
    hearth_error err = {0};
    hearth_backend_config bc = {"vulkan", 1};
    hearth_backend *vb = hearth_backend_create(&bc, &err);
    if (!vb) {
        fprintf(stderr, "draft on Vulkan: skipped (%s)\n", err.msg);
        return;
    }
    char path[1024];
    hearth_model_params mp = {.backend = vb, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *d = hearth_model_load(
        test_shared_path(path, sizeof path, "models/hearth-kjv-draft-q8_0.gguf"), &mp, &err);
    CHECKF(d != NULL, "draft on Vulkan: %s", err.msg);
    if (d) {
        prompts p;
        hearth_tokens t = {0};
        REQUIRE(hearth_tokenizer_encode(m->tokenizer, TEXTS[0], strlen(TEXTS[0]), true, false, &t, &err) ==
                HEARTH_OK);
        memcpy(p.ids[0], t.ids, t.n * sizeof(int32_t));
        p.len[0] = (int)t.n;
        hearth_tokens_free(&t);
        hearth_tokens ref_out, out;
        hearth_engine_stats st;
        hearth_engine_config cfg = hearth_engine_defaults();
        cfg.prefix_cache = false;
        run(m, cfg, &p, 0, 1, false, &ref_out, &st);
        cfg.spec = HEARTH_SPEC_DRAFT;
        cfg.spec_k = HEARTH_SPEC_K_STEP;
        cfg.draft = d;
        run(m, cfg, &p, 0, 1, false, &out, &st);
        CHECKF(same(&out, &ref_out), "draft on Vulkan: the output differs");
        CHECKF(st.spec_accepted > 0, "draft on Vulkan: nothing accepted (drafted %llu)",
               (unsigned long long)st.spec_drafted);
        fprintf(stderr, "draft on Vulkan, target on the CPU: drafted %llu accepted %llu\n",
                (unsigned long long)st.spec_drafted, (unsigned long long)st.spec_accepted);
        hearth_tokens_free(&ref_out);
        hearth_tokens_free(&out);
        hearth_model_free(d);
    }
    hearth_backend_free(vb);
}

static void test_errors(hearth_model *m, hearth_model *draft) {
    hearth_error err = {0};
    CHECKF(hearth_spec_vocab_check(m, draft, &err) == HEARTH_OK, "kjv pair: %s", err.msg);
    /* every KJV model shares one SentencePiece vocabulary: qwen2 may draft for llama */
    hearth_model *q2 = load("models/hearth-kjv-qwen2-q8_0.gguf", &err);
    REQUIRE_MSG(q2, "qwen2: %s", err.msg);
    CHECKF(hearth_spec_vocab_check(m, q2, &err) == HEARTH_OK, "kjv qwen2: %s", err.msg);
    hearth_model_free(q2);
    hearth_model *other = load("models/stories260K-q8_0.gguf", &err);
    REQUIRE_MSG(other, "stories260K: %s", err.msg);
    err = (hearth_error){0};
    CHECK(hearth_spec_vocab_check(m, other, &err) == HEARTH_ERR_INVALID);
    fprintf(stderr, "stories260K as draft: %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "its vocabulary has 512 tokens (512 logits), the target's 1024");
    CHECK_CONTAINS(err.msg, "token 3, '<0x00>' in the draft but '<|im_start|>' in the target");
    CHECK_CONTAINS(err.msg, "share the target's vocabulary");
    /* the engine refuses it the same way */
    hearth_engine_config cfg = hearth_engine_defaults();
    cfg.prefix_cache = false;
    cfg.spec = HEARTH_SPEC_DRAFT;
    cfg.draft = other;
    err = (hearth_error){0};
    CHECK(hearth_engine_create(m, &cfg, &err) == NULL && err.code == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "share the target's vocabulary");
    hearth_model_free(other);
    cfg.draft = NULL;
    err = (hearth_error){0};
    CHECK(hearth_engine_create(m, &cfg, &err) == NULL);
    CHECK_CONTAINS(err.msg, "needs a draft model");
    hearth_spec_mode md;
    CHECK(hearth_spec_mode_parse("draft", &md) && md == HEARTH_SPEC_DRAFT);
    CHECK(!strcmp(hearth_spec_mode_name(HEARTH_SPEC_DRAFT), "draft"));
}

int main(void) {
    hearth_error err = {0};
    g_be = hearth_cpu_backend_create(2, &err);
    REQUIRE(g_be);
    hearth_model *draft = load("models/hearth-kjv-draft-q8_0.gguf", &err);
    REQUIRE_MSG(draft, "draft: %s", err.msg);
    static const char *const targets[] = {"hearth-kjv-llama-q8_0", "hearth-kjv-llama-f16"};
    for (int t = 0; t < 2; t++) {
        char file[128];
        snprintf(file, sizeof file, "models/%s.gguf", targets[t]);
        hearth_model *m = load(file, &err);
        REQUIRE_MSG(m, "%s: %s", targets[t], err.msg);
        if (t == 0) {
            test_errors(m, draft);
            test_other_backend(m);
        }
        test_identical(m, draft, targets[t]);
        hearth_model_free(m);
    }
    hearth_model_free(draft);
    hearth_backend_free(g_be);
    return test_summary("spec_draft");
}
