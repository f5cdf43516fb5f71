/*
 * pull.h - what `hearth pull` shares between its files: turning a model spec
 * (catalog name, hf.co/ORG/REPO[:QUANT], URL) into the URLs and file names
 * to download (pull_resolve.c), and the HTTP helpers of cmd_pull.c.
 * Ownership: every output is a caller-owned buffer; nothing is kept.
 */
#ifndef HEARTH_APP_PULL_H
#define HEARTH_APP_PULL_H

#include <stddef.h>

/* The Hugging Face base URL: $HEARTH_HF_ENDPOINT or https://huggingface.co. */
const char *pull_hf_endpoint(void);

/* GET url; returns a malloc'd body (the caller frees) and the HTTP status, or
 * NULL with errbuf set when the transfer failed. */
char *pull_http_get(const char *url, long *status, char *errbuf, size_t cap);

/* Resolve spec into *n parts (url[i], file[i] = base name), the name to store
 * it under, the expected sha256 from the catalog ("" when unknown; sha holds
 * 65 bytes), the Hugging Face repository the files come from (hf_repo, 512
 * bytes; "" for a plain URL) and a source description. Returns 0, or -1 with
 * errbuf set. */
int pull_resolve(const char *spec, int *n, char (*url)[2048], char (*file)[512], int max, char *name,
                 size_t name_cap, char *sha, char *hf_repo, char *source, size_t source_cap, char *errbuf,
                 size_t cap);

/* The sha256 Hugging Face publishes for each of repo's files (the LFS oid in
 * its /api/models/REPO/tree/main listing) into the empty entries of sha[0..n);
 * returns how many were found (0 when the listing is unavailable). */
int pull_hf_published_sha(const char *repo, int n, const char (*file)[512], char (*sha)[65]);

/* The catalog file: $HEARTH_CATALOG, /usr/share/hearth/catalog.yaml, or the
 * source tree's models/catalog.yaml; NULL when none is readable. */
const char *pull_catalog_path(void);

#endif
