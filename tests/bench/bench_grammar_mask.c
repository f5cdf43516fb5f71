/*
 * bench_grammar_mask.c - per-token cost of grammar masks on a real
 * vocabulary: generates a JSON document under a JSON-Schema grammar by
 * taking, at each step, a pseudo-random allowed token (seeded), and reports
 * the mean / max time of hearth_grammar_matcher_mask and of accept_token,
 * plus the one-off trie build time. Not built by default (a measuring tool):
 *   cc -O2 -I. -isystem /usr/include/cjson tests/bench/bench_grammar_mask.c \
 *      build/lib/libhearth.a $(pkg-config --libs libcjson sqlite3 vulkan) -lm -lpthread -ldl
 *   ./a.out MODEL.gguf [steps] [free]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/serving/grammar.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* argv[3] "free": the same shape with unbounded strings (what zod's
 * z.string() and most tool schemas send) */
static const char SCHEMA_FREE[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":4}},"
    "\"required\":[\"name\",\"age\",\"tags\"]}";
static const char SCHEMA[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},\"age\":{\"type\":"
    "\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":4}},"
    "\"required\":[\"name\",\"age\",\"tags\"]}";

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [steps]\n", argv[0]);
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 200;
    hearth_error err = {0};
    hearth_gguf *gg = hearth_gguf_open(argv[1], &err);
    hearth_tokenizer *t = gg ? hearth_tokenizer_from_gguf(gg, &err) : NULL;
    if (!t) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t0 = now_ms();
    hearth_grammar_vocab *v = hearth_grammar_vocab_create(t, &err);
    double t_trie = now_ms() - t0;
    const char *schema = argc > 3 && !strcmp(argv[3], "free") ? SCHEMA_FREE : SCHEMA;
    hearth_grammar *g = hearth_grammar_from_json_schema(schema, strlen(schema), true, &err);
    if (!v || !g) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int32_t nv = hearth_tokenizer_n_vocab(t);
    uint32_t *bits = calloc(((size_t)nv + 31) / 32, sizeof *bits);
    int32_t *cand = malloc((size_t)nv * sizeof *cand);
    double sum_mask = 0, max_mask = 0, sum_acc = 0;
    int n = 0, docs = 1;
    uint64_t rng = 12345;
    hearth_grammar_matcher *m = hearth_grammar_matcher_create(g, &err);
    for (int s = 0; s < steps; s++) {
        double a = now_ms();
        int k = hearth_grammar_matcher_mask(m, v, bits);
        double b = now_ms();
        sum_mask += b - a;
        if (b - a > max_mask) max_mask = b - a;
        n++;
        int nc = 0;
        for (int32_t i = 0; i < nv; i++)
            if ((bits[i / 32] >> (i % 32)) & 1) cand[nc++] = i;
        if (!k || !nc || hearth_grammar_matcher_is_done(m)) { /* document complete: start another */
            hearth_grammar_matcher_free(m);
            m = hearth_grammar_matcher_create(g, &err);
            docs++;
            continue;
        }
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int32_t pick = cand[(rng >> 33) % (uint64_t)nc];
        a = now_ms();
        hearth_grammar_matcher_accept_token(m, v, pick);
        sum_acc += now_ms() - a;
    }
    printf("{\"model\":\"%s\",\"n_vocab\":%d,\"trie_ms\":%.1f,\"steps\":%d,\"documents\":%d,"
           "\"mask_ms_mean\":%.3f,\"mask_ms_max\":%.3f,\"accept_ms_mean\":%.4f}\n",
           argv[1], nv, t_trie, n, docs, sum_mask / n, max_mask, sum_acc / n);
    hearth_grammar_matcher_free(m);
    hearth_grammar_release(g);
    hearth_grammar_vocab_free(v);
    free(bits);
    free(cand);
    hearth_tokenizer_free(t);
    hearth_gguf_close(gg);
    return 0;
}
