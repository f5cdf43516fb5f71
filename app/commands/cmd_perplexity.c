/*
 * cmd_perplexity.c - `hearth perplexity -m MODEL -f TEXT`: llama.cpp's
 * perplexity method, so figures compare with llama-perplexity's.
 *
 * Method: tokenize the whole file with BOS; split into floor(n/n_ctx) chunks
 * of n_ctx tokens (--chunks caps it); in each chunk the first token becomes
 * BOS, the chunk runs from an empty KV sequence, and only the second half
 * is scored: logits at positions n_ctx/2 .. n_ctx-2 predict the next token.
 * [k] is exp(mean NLL over chunks 1..k); the estimate's ± is ppl * the
 * standard error of the mean NLL.
 * Ownership: everything allocated here is freed before returning.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "app/cli/common.h"
#include "app/commands/calib.h"
#include "app/commands/ppl_kld.h"
#include "core/os.h"
#include "runtime/kv/kv_cache.h"
#include "runtime/model/forward.h"
#include "runtime/text/tokenizer.h"

typedef struct ppl_opts {
    const char *model, *text;
    const char *kld_base; /* --kl-divergence-base FILE */
    int n_ctx, n_chunks, threads;
    bool json, quiet, kld; /* kld: compare with kld_base (else write it) */
    hearth_dtype kv_type;
    const char *backend;
} ppl_opts;

static const char k_help[] =
    "usage: hearth perplexity -m MODEL.gguf -f TEXT [options]\n"
    "\n"
    "Perplexity of a model over a text file, by llama.cpp's method (llama-perplexity):\n"
    "chunks of the context length, each starting with BOS, the second half of each scored.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH     GGUF model\n"
    "  -f, --file PATH      text to score (needs at least 2 x the context in tokens)\n"
    "  -c, --ctx N          context (chunk) length in tokens (default 512)\n"
    "  --chunks N           score at most N chunks (default: all)\n"
    "  -t, --threads N      CPU threads (default: physical cores)\n"
    "  --kv-type T          KV cache type: f16 (default, as llama.cpp), f32, q8_0\n"
    "  --backend NAME       cpu (default), vulkan, cuda\n"
    "  --kl-divergence-base FILE\n"
    "                       alone: save this model's distributions to FILE (run it with the\n"
    "                       full-precision model); with --kl-divergence: compare with them\n"
    "  --kl-divergence      KL divergence from the base's distributions, same-top-token %,\n"
    "                       PPL ratio (llama-perplexity's figures; same text, -c and --chunks)\n"
    "  --quiet              no progress line\n"
    "  --json               print the result as one JSON object on stdout\n"
    "  -h, --help           this text\n";

static int ppl_usage(const char *msg) {
    fprintf(stderr, "hearth perplexity: %s (see hearth perplexity --help)\n", msg);
    return 2;
}

static int ppl_parse(int argc, char **argv, ppl_opts *o) {
    *o = (ppl_opts){.n_ctx = 512, .n_chunks = -1, .kv_type = HEARTH_F16, .backend = "cpu"};
    char msg[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
                     !strcmp(a, "-c") || !strcmp(a, "--ctx") || !strcmp(a, "--chunks") || !strcmp(a, "-t") ||
                     !strcmp(a, "--threads") || !strcmp(a, "--kv-type") || !strcmp(a, "--backend") ||
                     !strcmp(a, "--kl-divergence-base");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (!strcmp(a, "--kl-divergence"))
            o->kld = true;
        else if (takes && !v) {
            snprintf(msg, sizeof msg, "missing value after %s", a);
            return ppl_usage(msg);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = argv[++i];
        else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            o->text = argv[++i];
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!app_parse_int(argv[++i], 8, 1 << 20, &o->n_ctx))
                return ppl_usage("-c wants a context of at least 8");
        } else if (!strcmp(a, "--chunks")) {
            if (!app_parse_int(argv[++i], 1, 1 << 30, &o->n_chunks))
                return ppl_usage("--chunks wants a count >= 1");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!app_parse_int(argv[++i], 1, 256, &o->threads)) return ppl_usage("-t wants 1 to 256 threads");
        } else if (!strcmp(a, "--kv-type")) {
            if (!app_parse_kv_type("perplexity", argv[++i], &o->kv_type)) return 2;
        } else if (!strcmp(a, "--backend"))
            o->backend = argv[++i];
        else if (!strcmp(a, "--kl-divergence-base"))
            o->kld_base = argv[++i];
        else {
            snprintf(msg, sizeof msg, "unknown option or argument '%s'", a);
            return ppl_usage(msg);
        }
    }
    if (!o->model) return ppl_usage("no model: pass -m MODEL.gguf");
    if (!o->text) return ppl_usage("no text: pass -f TEXT");
    if (o->kld && !o->kld_base)
        return ppl_usage(
            "--kl-divergence compares with a saved base: give --kl-divergence-base FILE (written by "
            "a run of the base model with only that flag)");
    if (!o->threads) o->threads = hearth_physical_cores();
    return -1;
}

typedef struct ppl_state {
    double nll, nll2;
    long count;
} ppl_state;

/* Score one chunk: tokens [0, n_ctx) with tokens[0] already BOS. */
static bool ppl_chunk(hearth_forward *fw, hearth_kv_cache *kv, const hearth_model *m, const int32_t *tok,
                      int n_ctx, float *logits, int32_t *pos, int32_t *seqs, bool *want, ppl_state *st,
                      ppl_kld *kld, hearth_error *err) {
    int seq = hearth_kv_seq_create(kv, err);
    if (seq < 0) return false;
    const int first = n_ctx / 2, max_tok = hearth_forward_max_tokens(fw), n_vocab = m->hp.n_vocab;
    bool ok = true;
    for (int i = 0; i < n_ctx; i++)
        pos[i] = i, seqs[i] = seq;
    for (int p = 0; p < n_ctx && ok;) {
        /* before `first`: big ubatches with no logits; from it: at most
         * HEARTH_FORWARD_MAX_LOGITS tokens, all with logits */
        int n = p < first ? first - p : n_ctx - p;
        if (p >= first && n > HEARTH_FORWARD_MAX_LOGITS) n = HEARTH_FORWARD_MAX_LOGITS;
        if (n > max_tok) n = max_tok;
        for (int i = 0; i < n; i++)
            want[i] = p >= first;
        hearth_ubatch ub = {n, tok + p, pos + p, seqs + p, want};
        int rows = hearth_forward_run(fw, &ub, logits, err);
        if (rows < 0) {
            ok = false;
            break;
        }
        if (p >= first)
            for (int i = 0; i < n; i++) {
                int j = p + i;
                if (j > n_ctx - 2) break;
                double v = calib_nll(logits + (size_t)i * n_vocab, n_vocab, tok[j + 1]);
                char e[1200];
                if (kld && !ppl_kld_position(kld, logits + (size_t)i * n_vocab, tok[j + 1], e, sizeof e)) {
                    hearth_error_set(err, HEARTH_ERR_IO, "%s", e);
                    ok = false;
                    break;
                }
                st->nll += v;
                st->nll2 += v * v;
                st->count++;
            }
        p += n;
    }
    hearth_kv_seq_free(kv, seq);
    return ok;
}

static bool ppl_run(const ppl_opts *o, hearth_model *m, hearth_backend *be, const hearth_tokens *toks,
                    int n_chunk, hearth_error *err) {
    const int n_ctx = o->n_ctx, page = 16, n_vocab = m->hp.n_vocab;
    hearth_kv_config kc = {m->hp.n_layer, m->hp.n_head_kv,  m->hp.head_dim, o->kv_type,
                           page,          n_ctx / page + 2, m->layer_be};
    hearth_kv_cache *kv = hearth_kv_create(be, &kc, err);
    int max_tok = n_ctx < 512 ? n_ctx : 512;
    hearth_forward *fw = kv ? hearth_forward_create(m, kv, max_tok, err) : NULL;
    float *logits = malloc((size_t)HEARTH_FORWARD_MAX_LOGITS * n_vocab * sizeof *logits);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk), *pos = malloc((size_t)n_ctx * sizeof *pos),
            *seqs = malloc((size_t)n_ctx * sizeof *seqs);
    bool *want = malloc((size_t)n_ctx * sizeof *want);
    bool ok = kv && fw && logits && chunk && pos && seqs && want;
    if (!ok && !err->msg[0]) hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    ppl_state st = {0};
    ppl_kld *kld = NULL;
    char kerr[1400] = "";
    if (ok && o->kld_base) {
        uint64_t h = ppl_kld_tokens_hash(toks->ids, (size_t)n_chunk * (size_t)n_ctx);
        kld = ppl_kld_open(o->kld_base, !o->kld, n_vocab, n_ctx, n_chunk, h, kerr, sizeof kerr);
        if (!kld) {
            hearth_error_set(err, HEARTH_ERR_INVALID, "%s", kerr);
            ok = false;
        }
    }
    const bool tty = isatty(2) == 1 && !o->quiet;
    double t0 = hearth_now_ms();
    int32_t bos = hearth_tokenizer_bos(m->tokenizer);
    if (!o->json) printf("perplexity: %d chunks, n_ctx=%d\n", n_chunk, n_ctx);
    for (int c = 0; c < n_chunk && ok; c++) {
        memcpy(chunk, toks->ids + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        ok = ppl_chunk(fw, kv, m, chunk, n_ctx, logits, pos, seqs, want, &st, kld, err);
        if (!ok) break;
        if (!o->json) printf("[%d]%.4f,", c + 1, exp(st.nll / (double)st.count));
        if (!o->json) fflush(stdout);
        if (tty)
            fprintf(stderr, "\rperplexity: chunk %d/%d, %.1f s", c + 1, n_chunk,
                    (hearth_now_ms() - t0) / 1000);
    }
    if (tty) fprintf(stderr, "\r\033[K");
    if (ok && kld && !ppl_kld_finish(kld, kerr, sizeof kerr)) {
        hearth_error_set(err, HEARTH_ERR_INVALID, "%s", kerr);
        ok = false;
    }
    ppl_kld_stats ks;
    bool have_k = ok && kld && ppl_kld_result(kld, &ks);
    if (ok) {
        double nll = st.nll / st.count, nll2 = st.nll2 / st.count - nll * nll, ppl = exp(nll);
        double pm = nll2 > 0 && st.count > 1 ? ppl * sqrt(nll2 / (double)(st.count - 1)) : 0.0;
        double secs = (hearth_now_ms() - t0) / 1000.0;
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", o->model);
            cJSON_AddNumberToObject(j, "n_ctx", n_ctx);
            cJSON_AddNumberToObject(j, "chunks", n_chunk);
            cJSON_AddNumberToObject(j, "tokens", (double)toks->n);
            cJSON_AddNumberToObject(j, "scored", (double)st.count);
            cJSON_AddNumberToObject(j, "ppl", ppl);
            cJSON_AddNumberToObject(j, "ppl_err", pm);
            cJSON_AddNumberToObject(j, "mean_nll", nll);
            cJSON_AddNumberToObject(j, "seconds", secs);
            if (have_k) {
                cJSON *k = cJSON_AddObjectToObject(j, "kld");
                cJSON_AddStringToObject(k, "base", o->kld_base);
                cJSON_AddNumberToObject(k, "mean", ks.mean);
                cJSON_AddNumberToObject(k, "mean_err", ks.mean_err);
                cJSON_AddNumberToObject(k, "median", ks.median);
                cJSON_AddNumberToObject(k, "p99", ks.p99);
                cJSON_AddNumberToObject(k, "max", ks.max);
                cJSON_AddNumberToObject(k, "same_top", ks.same_top);
                cJSON_AddNumberToObject(k, "ppl_base", ks.ppl_base);
                cJSON_AddNumberToObject(k, "ln_ppl_ratio", ks.ln_ppl_ratio);
            } else if (kld) {
                cJSON_AddStringToObject(j, "kld_base_written", o->kld_base);
            }
            char *txt = cJSON_PrintUnformatted(j);
            if (txt) puts(txt);
            free(txt);
            cJSON_Delete(j);
        } else {
            printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, pm);
            if (have_k) {
                printf("\nKL divergence from %s (%ld positions):\n", o->kld_base, ks.positions);
                printf("Mean PPL(Q)/PPL(base): %.6f (PPL(base) %.4f)\n", exp(ks.ln_ppl_ratio), ks.ppl_base);
                printf("Mean ln(PPL(Q)/PPL(base)): %.6f\n", ks.ln_ppl_ratio);
                printf("Mean    KLD: %10.6f +/- %.6f\n", ks.mean, ks.mean_err);
                printf("Median  KLD: %10.6f\n99.0%%   KLD: %10.6f\nMaximum KLD: %10.6f\n", ks.median, ks.p99,
                       ks.max);
                printf("Same top p: %.3f %%\n", 100.0 * ks.same_top);
            } else if (kld) {
                printf("base distributions saved to %s\n", o->kld_base);
            }
        }
    }
    ppl_kld_free(kld);
    free(want);
    free(seqs);
    free(pos);
    free(chunk);
    free(logits);
    hearth_forward_free(fw);
    hearth_kv_free(kv);
    return ok;
}

int cmd_perplexity(int argc, char **argv) {
    ppl_opts o;
    int r = ppl_parse(argc, argv, &o);
    if (r >= 0) return r;
    hearth_error err = {0};
    size_t len = 0;
    char *text = app_read_file(o.text, NULL, &len, &err);
    if (!text) {
        fprintf(stderr, "hearth perplexity: %s\n", err.msg);
        return 1;
    }
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (!app_load("perplexity", o.model, o.backend, o.threads, HEARTH_GPU_LAYERS_ALL, 0, true, &be, &m)) {
        free(text);
        return 1;
    }
    hearth_tokens toks = {0};
    int rc = 1;
    if (hearth_tokenizer_encode(m->tokenizer, text, len, true, false, &toks, &err)) {
        fprintf(stderr, "hearth perplexity: %s\n", err.msg);
    } else if (toks.n < (size_t)2 * o.n_ctx) {
        fprintf(
            stderr,
            "hearth perplexity: %s has %zu tokens; a context of %d needs at least %d (use a longer text or a "
            "smaller -c)\n",
            o.text, toks.n, o.n_ctx, 2 * o.n_ctx);
    } else {
        int n_chunk = (int)(toks.n / (size_t)o.n_ctx);
        if (o.n_chunks > 0 && o.n_chunks < n_chunk) n_chunk = o.n_chunks;
        if (ppl_run(&o, m, be, &toks, n_chunk, &err))
            rc = 0;
        else
            fprintf(stderr, "hearth perplexity: %s\n", err.msg[0] ? err.msg : "failed");
    }
    hearth_tokens_free(&toks);
    hearth_model_free(m);
    hearth_backend_free(be);
    free(text);
    return rc;
}
