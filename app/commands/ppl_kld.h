/*
 * ppl_kld.h - KL divergence against a base model's saved distributions for
 * `hearth perplexity` (ppl_kld.c says the method and the file format).
 * Ownership: the caller frees the handle with ppl_kld_free.
 */
#ifndef HEARTH_APP_PPL_KLD_H
#define HEARTH_APP_PPL_KLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ppl_kld ppl_kld;

typedef struct ppl_kld_stats {
    long positions;
    double mean, mean_err, median, p99, max; /* KLD (nats) */
    double same_top;                         /* fraction of positions whose top token agrees */
    double ppl_base, ppl;                    /* over the scored positions */
    double ln_ppl_ratio;                     /* mean ln(PPL(model) / PPL(base)) */
} ppl_kld_stats;

/* A hash of the scored text's tokens: base and compared runs must match. */
uint64_t ppl_kld_tokens_hash(const int32_t *t, size_t n);
/* writing: save the base's distributions to path; else compare with them
 * (the header must match this run). NULL with err set. */
ppl_kld *ppl_kld_open(const char *path, bool writing, int n_vocab, int n_ctx, int n_chunk, uint64_t hash,
                      char *err, size_t cap);
/* One scored position: its logits and the actual next token. */
bool ppl_kld_position(ppl_kld *k, const float *logits, int32_t next, char *err, size_t cap);
/* After the last position: a compare run must have read the whole file. */
bool ppl_kld_finish(ppl_kld *k, char *err, size_t cap);
/* The comparison's figures (false when writing or nothing was scored). */
bool ppl_kld_result(ppl_kld *k, ppl_kld_stats *out);
void ppl_kld_free(ppl_kld *k);

#endif
