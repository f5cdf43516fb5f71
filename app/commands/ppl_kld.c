/*
 * ppl_kld.c - KL divergence of a model against a base model's saved
 * distributions, for `hearth perplexity --kl-divergence-base FILE` (save the
 * base, usually the F16/F32 model) and `--kl-divergence` (compare a
 * quantized model with them), as llama-perplexity does it.
 *
 * File (little-endian): "HKLD" u32 version(1) u32 n_vocab u32 n_ctx u32
 * n_chunk u64 tokens_hash, then per scored position: f32 min, f32 scale,
 * n_vocab u16 q, where log p_base(v) = min + scale * q(v) (16-bit like
 * llama.cpp's, so a 150k vocabulary costs 300 KB a position). The tokens'
 * hash makes sure both runs scored the same text the same way.
 * Per position: KLD = sum_v p_base(v) (log p_base(v) - log p(v)); "same top"
 * = the argmaxes agree; both models' NLL of the actual next token (PPL ratio).
 * Ownership: ppl_kld owns its FILE and buffers; ppl_kld_free releases them.
 */
#include "app/commands/ppl_kld.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KLD_MAGIC "HKLD"
#define KLD_VERSION 1u

struct ppl_kld {
    FILE *f;
    bool writing;
    int n_vocab;
    float *base; /* a position's base log-probs */
    float *lp;   /* the model's */
    uint16_t *q;
    double *klds; /* every position's KLD, for the percentiles */
    long n, cap;
    double kld, kld2, nll_base, nll, dlogp;
    long same_top;
    char path[1024];
};

uint64_t ppl_kld_tokens_hash(const int32_t *t, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)t[i];
        for (int b = 0; b < 4; b++)
            h = (h ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    }
    return h;
}

/* log_softmax of logits into out. */
static void log_softmax(const float *logits, int n, float *out) {
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    float lse = mx + (float)log(sum);
    for (int i = 0; i < n; i++)
        out[i] = logits[i] - lse;
}

ppl_kld *ppl_kld_open(const char *path, bool writing, int n_vocab, int n_ctx, int n_chunk, uint64_t hash,
                      char *err, size_t cap) {
    ppl_kld *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    snprintf(k->path, sizeof k->path, "%s", path);
    k->writing = writing;
    k->n_vocab = n_vocab;
    k->base = malloc(sizeof(float) * (size_t)n_vocab);
    k->lp = malloc(sizeof(float) * (size_t)n_vocab);
    k->q = malloc(sizeof(uint16_t) * (size_t)n_vocab);
    k->f = fopen(path, writing ? "wb" : "rb");
    if (!k->base || !k->lp || !k->q || !k->f) {
        snprintf(err, cap, "%s: cannot %s it", path, writing ? "create" : "open");
        ppl_kld_free(k);
        return NULL;
    }
    uint32_t hdr[4] = {KLD_VERSION, (uint32_t)n_vocab, (uint32_t)n_ctx, (uint32_t)n_chunk};
    if (writing) {
        if (fwrite(KLD_MAGIC, 1, 4, k->f) != 4 || fwrite(hdr, sizeof hdr, 1, k->f) != 1 ||
            fwrite(&hash, sizeof hash, 1, k->f) != 1) {
            snprintf(err, cap, "%s: write failed", path);
            ppl_kld_free(k);
            return NULL;
        }
        return k;
    }
    char magic[4];
    uint32_t got[4];
    uint64_t h;
    if (fread(magic, 1, 4, k->f) != 4 || memcmp(magic, KLD_MAGIC, 4) ||
        fread(got, sizeof got, 1, k->f) != 1 || fread(&h, sizeof h, 1, k->f) != 1 || got[0] != KLD_VERSION) {
        snprintf(err, cap, "%s is not a file hearth perplexity --kl-divergence-base wrote", path);
        ppl_kld_free(k);
        return NULL;
    }
    if (got[1] != hdr[1] || got[2] != hdr[2] || got[3] != hdr[3] || h != hash) {
        snprintf(err, cap,
                 "%s was written for another run (vocabulary %u, context %u, %u chunks%s); this one has "
                 "vocabulary %d, context %d, %d chunks: use the same text, -c and --chunks, and a model of "
                 "the same vocabulary",
                 path, got[1], got[2], got[3], h != hash ? ", other tokens" : "", n_vocab, n_ctx, n_chunk);
        ppl_kld_free(k);
        return NULL;
    }
    return k;
}

bool ppl_kld_position(ppl_kld *k, const float *logits, int32_t next, char *err, size_t cap) {
    const int nv = k->n_vocab;
    log_softmax(logits, nv, k->lp);
    if (k->writing) {
        float mn = k->lp[0], mx = k->lp[0];
        for (int i = 1; i < nv; i++) {
            mn = k->lp[i] < mn ? k->lp[i] : mn;
            mx = k->lp[i] > mx ? k->lp[i] : mx;
        }
        if (mn < -60.0f) mn = -60.0f; /* p < 1e-26 rounds to the floor: it weighs nothing in the KLD */
        float scale = mx > mn ? (mx - mn) / 65535.0f : 1.0f;
        for (int i = 0; i < nv; i++) {
            float v = (k->lp[i] - mn) / scale;
            k->q[i] = (uint16_t)(v < 0 ? 0 : v > 65535.0f ? 65535 : lrintf(v));
        }
        if (fwrite(&mn, 4, 1, k->f) != 1 || fwrite(&scale, 4, 1, k->f) != 1 ||
            fwrite(k->q, sizeof *k->q, (size_t)nv, k->f) != (size_t)nv) {
            snprintf(err, cap, "%s: write failed (disk full?)", k->path);
            return false;
        }
        return true;
    }
    float mn, scale;
    if (fread(&mn, 4, 1, k->f) != 1 || fread(&scale, 4, 1, k->f) != 1 ||
        fread(k->q, sizeof *k->q, (size_t)nv, k->f) != (size_t)nv) {
        snprintf(err, cap, "%s ends early: it holds fewer positions than this run scores", k->path);
        return false;
    }
    double kld = 0, psum = 0;
    int top_b = 0, top_q = 0;
    for (int i = 0; i < nv; i++) {
        k->base[i] = mn + scale * k->q[i];
        psum += exp(k->base[i]);
        if (k->base[i] > k->base[top_b]) top_b = i;
        if (k->lp[i] > k->lp[top_q]) top_q = i;
    }
    /* the 16-bit rounding leaves the base's sum a hair off 1: renormalise */
    double lnorm = log(psum);
    for (int i = 0; i < nv; i++) {
        double lb = k->base[i] - lnorm;
        kld += exp(lb) * (lb - k->lp[i]);
    }
    if (kld < 0) kld = 0;
    if (k->n == k->cap) {
        long c = k->cap ? k->cap * 2 : 4096;
        double *n = realloc(k->klds, sizeof *n * (size_t)c);
        if (!n) {
            snprintf(err, cap, "out of memory");
            return false;
        }
        k->klds = n;
        k->cap = c;
    }
    k->klds[k->n++] = kld;
    k->kld += kld;
    k->kld2 += kld * kld;
    k->same_top += top_b == top_q;
    double nb = -(k->base[next] - lnorm), nq = -k->lp[next];
    k->nll_base += nb;
    k->nll += nq;
    k->dlogp += nq - nb;
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bool ppl_kld_result(ppl_kld *k, ppl_kld_stats *out) {
    memset(out, 0, sizeof *out);
    if (k->writing || k->n == 0) return false;
    double n = (double)k->n;
    out->positions = k->n;
    out->mean = k->kld / n;
    double var = k->kld2 / n - out->mean * out->mean;
    out->mean_err = k->n > 1 && var > 0 ? sqrt(var / (n - 1)) : 0;
    qsort(k->klds, (size_t)k->n, sizeof *k->klds, cmp_double);
    out->median = k->klds[k->n / 2];
    out->p99 = k->klds[(long)(0.99 * (n - 1))];
    out->max = k->klds[k->n - 1];
    out->same_top = (double)k->same_top / n;
    out->ppl_base = exp(k->nll_base / n);
    out->ppl = exp(k->nll / n);
    out->ln_ppl_ratio = k->dlogp / n;
    return true;
}

bool ppl_kld_finish(ppl_kld *k, char *err, size_t cap) {
    if (!k->writing) {
        int c = fgetc(k->f);
        if (c != EOF) {
            snprintf(err, cap,
                     "%s holds more positions than this run scored: use the same text, -c and --chunks",
                     k->path);
            return false;
        }
        return true;
    }
    if (fflush(k->f) != 0) {
        snprintf(err, cap, "%s: write failed", k->path);
        return false;
    }
    return true;
}

void ppl_kld_free(ppl_kld *k) {
    if (!k) return;
    if (k->f) fclose(k->f);
    free(k->base);
    free(k->lp);
    free(k->q);
    free(k->klds);
    free(k);
}
