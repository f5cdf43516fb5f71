/*
 * test_embed.c - the embedding API (runtime/model/embed.h) as the server
 * calls it. A one-layer bert file is written here (bert-bge vocabulary from
 * ../shared/vocab, random F32 weights, context 16); on it: several inputs in
 * one call equal each input alone and a call split over small passes
 * (max_tokens 20); vectors are unit length and --dimensions is the
 * re-normalised prefix; an input over the context is HEARTH_ERR_CONTEXT, or
 * with truncate the first 15 tokens plus the closing [SEP] (n_used says 16);
 * bad ids, empty inputs, dimensions out of range, pooling none and rank
 * without a head are HEARTH_ERR_INVALID with a message; eight threads sharing
 * one embedder (different inputs, two output sizes) each get exactly their
 * own vectors while their calls are batched together. Then a decoder embedder on the
 * shared kjv llama model: batched equals alone (last and mean pooling), and
 * an input spanning several passes (max_tokens 8) equals one pass.
 * Backends: one whose ops table lacks layer_norm or gelu is refused at load
 * naming the op; a device backend (a host attached) takes the encoder whole
 * (gpu_layers all: every layer on it, vectors equal the CPU's) and refuses a
 * partial offload (gpu_layers 0 of 1), both shown with the CPU's ops table
 * standing in for a device (the real devices: tests/cli/test_vulkan_embed.sh).
 * (Parity of the numbers with llama.cpp: tests/cli/test_embed.sh.)
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/backend_impl.h"
#include "runtime/format/gguf_writer.h"
#include "runtime/model/embed.h"
#include "test.h"

enum { E = 32, HEADS = 2, F = 48, CTX = 16 };

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2 - 1);
}

typedef struct tdesc {
    const char *name;
    uint64_t ne0, ne1;
    int kind; /* 0 weight, 1 norm, 2 bias */
} tdesc;

/* A one-layer bert with llama.cpp's names, vocabulary copied from vocab. */
static bool write_bert(const char *path, const char *vocab, bool *skip) {
    hearth_error err = {0};
    hearth_gguf *v = hearth_gguf_open(vocab, &err);
    if (!v) {
        *skip = true;
        return false;
    }
    const uint64_t V = hearth_gguf_get_arr(v, "tokenizer.ggml.tokens", GGUF_STRING)->arr_n;
    hearth_gguf_writer *w = hearth_gguf_writer_create(&err);
    bool ok = !hearth_gguf_writer_set_str(w, "general.architecture", "bert", &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.context_length", CTX, &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.embedding_length", E, &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.block_count", 1, &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.feed_forward_length", F, &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.attention.head_count", HEADS, &err) &&
              !hearth_gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f, &err) &&
              !hearth_gguf_writer_set_u32(w, "bert.pooling_type", HEARTH_POOLING_MEAN, &err);
    for (uint64_t i = 0; ok && i < hearth_gguf_n_kv(v); i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(v, i);
        if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10))
            ok = !hearth_gguf_writer_copy_kv(w, kv, &err);
    }
    hearth_gguf_close(v);
    const tdesc ts[] = {
        {"token_embd.weight", E, V, 0},
        {"token_types.weight", E, 2, 0},
        {"position_embd.weight", E, CTX, 0},
        {"token_embd_norm.weight", E, 1, 1},
        {"token_embd_norm.bias", E, 1, 2},
        {"blk.0.attn_q.weight", E, E, 0},
        {"blk.0.attn_q.bias", E, 1, 2},
        {"blk.0.attn_k.weight", E, E, 0},
        {"blk.0.attn_k.bias", E, 1, 2},
        {"blk.0.attn_v.weight", E, E, 0},
        {"blk.0.attn_v.bias", E, 1, 2},
        {"blk.0.attn_output.weight", E, E, 0},
        {"blk.0.attn_output.bias", E, 1, 2},
        {"blk.0.attn_output_norm.weight", E, 1, 1},
        {"blk.0.attn_output_norm.bias", E, 1, 2},
        {"blk.0.ffn_up.weight", E, F, 0},
        {"blk.0.ffn_up.bias", F, 1, 2},
        {"blk.0.ffn_down.weight", F, E, 0},
        {"blk.0.ffn_down.bias", E, 1, 2},
        {"blk.0.layer_output_norm.weight", E, 1, 1},
        {"blk.0.layer_output_norm.bias", E, 1, 2},
    };
    const int nt = (int)(sizeof ts / sizeof ts[0]);
    for (int i = 0; ok && i < nt; i++) {
        uint64_t ne[2] = {ts[i].ne0, ts[i].ne1};
        ok = !hearth_gguf_writer_add_tensor(w, ts[i].name, HEARTH_F32, ts[i].ne1 > 1 ? 2 : 1, ne, &err);
    }
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && !hearth_gguf_writer_begin(w, f, path, &err);
    uint64_t seed = 7;
    for (int i = 0; ok && i < nt; i++) {
        const size_t n = (size_t)(ts[i].ne0 * ts[i].ne1);
        float *d = malloc(n * sizeof *d);
        for (size_t k = 0; k < n; k++)
            d[k] = ts[i].kind == 1 ? 1 + 0.1f * frand(&seed) : (ts[i].kind == 2 ? 0.1f : 0.3f) * frand(&seed);
        ok = !hearth_gguf_writer_write(w, d, n * sizeof *d, &err);
        free(d);
    }
    ok = ok && !hearth_gguf_writer_finish(w, &err);
    if (f) fclose(f);
    if (!ok) fprintf(stderr, "write_bert: %s\n", err.msg);
    hearth_gguf_writer_free(w);
    return ok;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

typedef struct tokset {
    hearth_tokens t[4];
    const int32_t *ids[4];
    int n[4];
} tokset;

static void tokenize_all(const hearth_model *m, const char *const *texts, int k, tokset *ts) {
    memset(ts, 0, sizeof *ts);
    hearth_error err = {0};
    for (int i = 0; i < k; i++) {
        REQUIRE(hearth_embed_tokenize(m, texts[i], strlen(texts[i]), &ts->t[i], &err) == HEARTH_OK);
        ts->ids[i] = ts->t[i].ids;
        ts->n[i] = (int)ts->t[i].n;
    }
}

static void tokset_free(tokset *ts) {
    for (int i = 0; i < 4; i++)
        hearth_tokens_free(&ts->t[i]);
}

/* One thread: input `which` of the set (dimensions 8 for odd threads, so a
 * batch must keep those apart), 20 calls, each checked against `want`. */
typedef struct thread_arg {
    hearth_embedder *e;
    const tokset *ts;
    int which, dims;
    const float *want;
    int bad;
} thread_arg;

static void *embed_thread(void *p) {
    thread_arg *a = p;
    float out[E];
    hearth_embed_params ep = hearth_embed_params_default();
    ep.dimensions = a->dims;
    const int dim = a->dims ? a->dims : E;
    for (int r = 0; r < 20; r++) {
        hearth_error err = {0};
        if (hearth_embed(a->e, &a->ts->ids[a->which], &a->ts->n[a->which], 1, &ep, out, NULL, &err) ||
            max_diff(out, a->want, (size_t)dim) > 1e-6)
            a->bad++;
    }
    return NULL;
}

static void test_encoder(hearth_model *m) {
    hearth_error err = {0};
    hearth_embedder *e = hearth_embedder_create(m, 0, &err), *small = hearth_embedder_create(m, 20, &err);
    REQUIRE(e && small);
    CHECK(hearth_embedder_n_ctx(e) == CTX);
    const char *texts[4] = {"hello world", "a somewhat longer sentence of text", "x", "what is it?"};
    tokset ts;
    tokenize_all(m, texts, 4, &ts);
    hearth_embed_params p = hearth_embed_params_default();
    REQUIRE(hearth_embed_dim(e, &p, &err) == E);
    float all[4 * E], one[E], split[4 * E];
    int used[4];
    REQUIRE(hearth_embed(e, ts.ids, ts.n, 4, &p, all, used, &err) == HEARTH_OK);
    int passes;
    hearth_embed_last_stats(e, &passes, NULL);
    CHECK(passes == 1);
    for (int i = 0; i < 4; i++) {
        CHECK(used[i] == ts.n[i]);
        REQUIRE(hearth_embed(e, &ts.ids[i], &ts.n[i], 1, &p, one, NULL, &err) == HEARTH_OK);
        CHECKF(max_diff(one, all + i * E, E) < 1e-6, "input %d alone differs by %g", i,
               max_diff(one, all + i * E, E));
        double ss = 0;
        for (int k = 0; k < E; k++)
            ss += (double)all[i * E + k] * all[i * E + k];
        CHECK(fabs(ss - 1) < 1e-5);
    }
    REQUIRE(hearth_embed(small, ts.ids, ts.n, 4, &p, split, NULL, &err) == HEARTH_OK);
    hearth_embed_last_stats(small, &passes, NULL);
    CHECKF(passes > 1 && max_diff(split, all, 4 * E) < 1e-6, "small passes: %d passes, diff %g", passes,
           max_diff(split, all, 4 * E));
    /* Matryoshka: the prefix, re-normalised */
    p.dimensions = 8;
    REQUIRE(hearth_embed_dim(e, &p, &err) == 8);
    float d8[4 * 8];
    REQUIRE(hearth_embed(e, ts.ids, ts.n, 4, &p, d8, NULL, &err) == HEARTH_OK);
    for (int i = 0; i < 4; i++) {
        double ss = 0;
        for (int k = 0; k < 8; k++)
            ss += (double)all[i * E + k] * all[i * E + k];
        for (int k = 0; k < 8; k++)
            CHECK(fabs(d8[i * 8 + k] - all[i * E + k] / sqrt(ss)) < 1e-6);
    }
    p = hearth_embed_params_default();

    /* over the context: refused, or the first 15 tokens and the closing [SEP] */
    hearth_tokens lt = {0};
    const char *longtext = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                           "fifteen sixteen seventeen";
    REQUIRE(hearth_embed_tokenize(m, longtext, strlen(longtext), &lt, &err) == HEARTH_OK);
    REQUIRE(lt.n > CTX);
    const int32_t *lid = lt.ids;
    int ln = (int)lt.n, lused = 0;
    CHECK(hearth_embed(e, &lid, &ln, 1, &p, one, NULL, &err) == HEARTH_ERR_CONTEXT);
    CHECK_CONTAINS(err.msg, "context of 16");
    p.truncate = true;
    REQUIRE(hearth_embed(e, &lid, &ln, 1, &p, one, &lused, &err) == HEARTH_OK);
    CHECK(lused == CTX);
    int32_t cut[CTX];
    memcpy(cut, lt.ids, sizeof cut);
    cut[CTX - 1] = lt.ids[lt.n - 1]; /* [SEP] */
    CHECK(cut[CTX - 1] == hearth_tokenizer_sep(m->tokenizer));
    const int32_t *cid = cut;
    int cn = CTX;
    float want[E];
    REQUIRE(hearth_embed(e, &cid, &cn, 1, &p, want, NULL, &err) == HEARTH_OK);
    CHECK(max_diff(one, want, E) < 1e-6);
    hearth_tokens_free(&lt);
    p.truncate = false;

    /* bad requests */
    int32_t bad_id = 1 << 30;
    const int32_t *bid = &bad_id;
    int bn = 1, zero = 0;
    CHECK(hearth_embed(e, &bid, &bn, 1, &p, one, NULL, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "outside the vocabulary");
    CHECK(hearth_embed(e, ts.ids, &zero, 1, &p, one, NULL, &err) == HEARTH_ERR_INVALID);
    p.dimensions = E + 1;
    CHECK(hearth_embed_dim(e, &p, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "out of range");
    p.dimensions = 0;
    p.pooling = HEARTH_POOLING_NONE;
    CHECK(hearth_embed(e, ts.ids, ts.n, 1, &p, one, NULL, &err) == HEARTH_ERR_INVALID);
    p.pooling = HEARTH_POOLING_RANK;
    CHECK(hearth_embed_dim(e, &p, &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "classification head");

    /* 8 threads on one embedder, different inputs and dimensions: each gets
     * exactly its own vectors whatever it shared a batch with */
    enum { NT = 8 };
    thread_arg a[NT];
    pthread_t th[NT];
    uint64_t calls0, batches0, calls1, batches1;
    hearth_embed_counters(e, &calls0, &batches0);
    for (int i = 0; i < NT; i++) {
        a[i] = (thread_arg){e, &ts, i % 4, i % 2 ? 8 : 0, i % 2 ? d8 + (i % 4) * 8 : all + (i % 4) * E, 0};
        REQUIRE(pthread_create(&th[i], NULL, embed_thread, &a[i]) == 0);
    }
    int bad = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
    }
    CHECKF(bad == 0, "%d of %d concurrent calls got wrong vectors", bad, NT * 20);
    hearth_embed_counters(e, &calls1, &batches1);
    CHECK(calls1 - calls0 == NT * 20 && batches1 - batches0 <= calls1 - calls0);
    printf("  concurrent: %llu calls in %llu batches\n", (unsigned long long)(calls1 - calls0),
           (unsigned long long)(batches1 - batches0));
    tokset_free(&ts);
    hearth_embedder_free(e);
    hearth_embedder_free(small);
}

static void test_decoder(hearth_backend *be) {
    char path[1024];
    hearth_error err = {0};
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m =
        hearth_model_load(test_shared_path(path, sizeof path, "models/hearth-kjv-llama-f32.gguf"), &mp, &err);
    if (!m) {
        printf("  (decoder: %s, not run)\n", err.msg);
        return;
    }
    const int D = m->hp.n_embd;
    CHECK(!hearth_model_is_embedding(m)); /* generative: embeds only when asked for a pooling */
    hearth_embedder *e = hearth_embedder_create(m, 0, &err), *tiny = hearth_embedder_create(m, 8, &err);
    REQUIRE(e && tiny);
    const char *texts[3] = {"In the beginning God created the heaven and the earth.", "And God said",
                            "Let there be light: and there was light, and it was good."};
    tokset ts;
    tokenize_all(m, texts, 3, &ts);
    hearth_embed_params p = hearth_embed_params_default();
    CHECK(hearth_embed_dim(e, &p, &err) == HEARTH_ERR_INVALID); /* a generative model has no pooling */
    CHECK_CONTAINS(err.msg, "pooling");
    const int pools[2] = {HEARTH_POOLING_LAST, HEARTH_POOLING_MEAN};
    float *all = malloc(sizeof(float) * 3 * (size_t)D), *one = malloc(sizeof(float) * (size_t)D),
          *chunked = malloc(sizeof(float) * 3 * (size_t)D);
    for (int k = 0; k < 2; k++) {
        p.pooling = pools[k];
        REQUIRE(hearth_embed(e, ts.ids, ts.n, 3, &p, all, NULL, &err) == HEARTH_OK);
        for (int i = 0; i < 3; i++) {
            REQUIRE(hearth_embed(e, &ts.ids[i], &ts.n[i], 1, &p, one, NULL, &err) == HEARTH_OK);
            CHECKF(max_diff(one, all + i * D, (size_t)D) < 1e-5, "decoder %s input %d alone differs by %g",
                   hearth_pooling_name(pools[k]), i, max_diff(one, all + i * D, (size_t)D));
        }
        REQUIRE(hearth_embed(tiny, ts.ids, ts.n, 3, &p, chunked, NULL, &err) == HEARTH_OK);
        CHECKF(max_diff(chunked, all, 3 * (size_t)D) < 1e-4, "decoder %s over 8-token passes differs by %g",
               hearth_pooling_name(pools[k]), max_diff(chunked, all, 3 * (size_t)D));
    }
    p.pooling = HEARTH_POOLING_RANK;
    CHECK(hearth_embed_dim(e, &p, &err) == HEARTH_ERR_INVALID);
    free(all);
    free(one);
    free(chunked);
    tokset_free(&ts);
    hearth_embedder_free(e);
    hearth_embedder_free(tiny);
    hearth_model_free(m);
}

/* Load the encoder at path on backends built from the CPU's (see the header). */
static void test_backends(const char *path, hearth_backend *cpu, const float *ref) {
    hearth_error err = {0};
    hearth_backend_ops ops = *cpu->ops;
    hearth_backend fake = *cpu;
    fake.ops = &ops;
    ops.gelu = NULL;
    hearth_model_params mp = {.backend = &fake, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(path, &mp, &err);
    CHECK(m == NULL && err.code == HEARTH_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "has no gelu op");
    CHECK_CONTAINS(err.msg, "--backend cpu");
    ops = *cpu->ops;
    ops.layer_norm = NULL;
    err = (hearth_error){0};
    CHECK(hearth_model_load(path, &mp, &err) == NULL);
    CHECK_CONTAINS(err.msg, "has no layer_norm op");
    ops = *cpu->ops;
    fake.host = cpu; /* a "device": partial offload refused, all layers taken */
    mp.gpu_layers = 0;
    err = (hearth_error){0};
    CHECK(hearth_model_load(path, &mp, &err) == NULL);
    CHECK_CONTAINS(err.msg, "--gpu-layers 0 of 1 is not supported");
    mp.gpu_layers = HEARTH_GPU_LAYERS_ALL;
    err = (hearth_error){0};
    m = hearth_model_load(path, &mp, &err);
    if (!m) fprintf(stderr, "load on the stand-in device: %s\n", err.msg);
    REQUIRE(m);
    CHECK(m->layer_be[0] == &fake && m->embd_be == &fake && m->n_device_layers == 1);
    hearth_embedder *e = hearth_embedder_create(m, 0, &err);
    REQUIRE(e);
    const int32_t ids[] = {101, 7592, 2088, 102}, *tok[] = {ids};
    const int n = 4;
    float got[E];
    hearth_embed_params p = hearth_embed_params_default();
    CHECK(hearth_embed(e, tok, &n, 1, &p, got, NULL, &err) == HEARTH_OK);
    CHECK(max_diff(ref, got, E) == 0);
    hearth_embedder_free(e);
    hearth_model_free(m);
}

int main(void) {
    char vocab[1024], path[] = "/tmp/hearth-test-embed-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    bool skip = false;
    if (!write_bert(path, test_shared_path(vocab, sizeof vocab, "vocab/ggml-vocab-bert-bge.gguf"), &skip)) {
        unlink(path);
        if (skip) {
            printf("SKIP: %s not found\n", vocab);
            return 0;
        }
        REQUIRE(!"write_bert");
    }
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(2, &err);
    REQUIRE(be);
    hearth_model_params mp = {.backend = be, .gpu_layers = HEARTH_GPU_LAYERS_ALL};
    hearth_model *m = hearth_model_load(path, &mp, &err);
    if (!m) unlink(path);
    if (!m) fprintf(stderr, "load: %s\n", err.msg);
    REQUIRE(m);
    CHECK(m->arch == HEARTH_ARCH_BERT && m->hp.pooling == HEARTH_POOLING_MEAN);
    CHECK(hearth_model_is_embedding(m));
    test_encoder(m);
    {
        hearth_embedder *e = hearth_embedder_create(m, 0, &err);
        REQUIRE(e);
        const int32_t ids[] = {101, 7592, 2088, 102}, *tok[] = {ids};
        const int n = 4;
        float ref[E];
        hearth_embed_params p = hearth_embed_params_default();
        CHECK(hearth_embed(e, tok, &n, 1, &p, ref, NULL, &err) == HEARTH_OK);
        hearth_embedder_free(e);
        test_backends(path, be, ref);
    }
    unlink(path);
    hearth_model_free(m);
    test_decoder(be);
    hearth_backend_free(be);
    return test_summary("test_embed");
}
