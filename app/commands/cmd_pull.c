/*
 * cmd_pull.c - `hearth pull NAME | hf.co/ORG/REPO[:QUANT] | URL [--sha256 HEX]`:
 * download a GGUF model into the local store (runtime/store/model_store.h).
 *
 * Sources: a catalog name (models/catalog.yaml, app/commands/catalog.c), a
 * Hugging Face repository (its API's file list -> the GGUF file(s) of the
 * asked quantization, every part of a split `-0000k-of-0000N` model), or a
 * plain http(s) URL. $HEARTH_HF_ENDPOINT replaces https://huggingface.co
 * (tests point it at a local server).
 *
 * Each file: a lock (FILE.lock, flock) so two pulls of one file do not
 * collide; the size asked with HEAD and checked against the free space; the
 * bytes go to FILE.part, resumed with an HTTP Range request when a .part is
 * left from an interrupted pull (the pull says so and from which byte); a
 * server that sends nothing for $HEARTH_PULL_STALL_S seconds (default 30)
 * is an error; the sha256 (the catalog's, --sha256, or for a Hugging Face file
 * the one its API publishes: the LFS oid in /api/models/REPO/tree/main) is checked before the
 * .part is renamed to FILE; only then is the manifest row written. A failed
 * pull leaves no manifest row (a .part is kept for a resume, except after a
 * sha256 mismatch, when it is deleted).
 * Output: progress and messages on stderr; with --json, progress as NDJSON
 * events on stdout instead (what `hearth serve`'s /api/pull relays):
 *   {"status":"downloading","file":F,"total":N,"completed":M}  (every 0.25 s)
 *   {"status":"resuming","file":F,"from":M}
 *   {"status":"verifying","file":F}
 *   {"status":"success","name":NAME,"file":PATH,"sha256":HEX}
 *   {"error":"..."}                                             (then exit 1)
 * Exit 0 done, 1 failed, 2 usage.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/commands/pull.h"
#include "runtime/store/model_store.h"

#define MAX_PARTS 64

/* snprintf into an error buffer (a long path is cut, never overflows). */
static void errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

typedef struct pull_plan {
    char name[256];
    char sha256[65];   /* expected from the catalog or --sha256, "" when unknown (single-file pulls only) */
    char hf_repo[512]; /* where the files come from, "" for a URL */
    char part_sha[MAX_PARTS][65]; /* expected per file: the above, else Hugging Face's published one */
    bool published[MAX_PARTS];    /* part_sha[i] came from Hugging Face */
    char source[2048];
    int n;
    char url[MAX_PARTS][2048];
    char file[MAX_PARTS][512]; /* base names */
} pull_plan;

typedef struct dl_state {
    FILE *out;
    int write_errno;
    uint64_t start, total; /* resume offset, whole file size (0 unknown) */
    double t0, last_print;
    const char *label;
    bool quiet;
    bool json; /* NDJSON progress on stdout */
} dl_state;

/* Print o as one NDJSON line on stdout, flushed, and free it. */
static void json_print(cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    if (t) printf("%s\n", t);
    fflush(stdout);
    free(t);
    cJSON_Delete(o);
}

/* One NDJSON progress event on stdout (--json). */
static void json_event(const char *status, const char *file, uint64_t total, uint64_t done, bool with_sizes) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    if (file) cJSON_AddStringToObject(o, "file", file);
    if (with_sizes) {
        cJSON_AddNumberToObject(o, "total", (double)total);
        cJSON_AddNumberToObject(o, "completed", (double)done);
    }
    json_print(o);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *pull_hf_endpoint(void) {
    const char *e = getenv("HEARTH_HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

/* ------------------------------------------------------------ HTTP */

static size_t on_write(char *p, size_t sz, size_t n, void *ctx) {
    dl_state *d = ctx;
    size_t w = fwrite(p, sz, n, d->out);
    if (w != n) d->write_errno = errno ? errno : EIO;
    return w * sz;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un) {
    (void)ut, (void)un;
    dl_state *d = ctx;
    double t = now_s();
    if ((d->quiet && !d->json) || (t - d->last_print < 0.25 && !(dltotal > 0 && dlnow == dltotal))) return 0;
    d->last_print = t;
    uint64_t have = d->start + (uint64_t)dlnow;
    uint64_t total = d->total ? d->total : (dltotal > 0 ? d->start + (uint64_t)dltotal : 0);
    if (d->json) {
        json_event("downloading", d->label, total, have, true);
        return 0;
    }
    double rate = t > d->t0 ? (double)dlnow / (t - d->t0) : 0;
    char h[32], tt[32], r[32];
    app_human_bytes((double)have, h, sizeof h);
    app_human_bytes(rate, r, sizeof r);
    if (total) {
        app_human_bytes((double)total, tt, sizeof tt);
        double eta = rate > 0 ? (double)(total - have) / rate : 0;
        int bar = (int)(30.0 * (double)have / (double)total);
        fprintf(stderr, "\r%s [%-30.*s] %s / %s  %s/s  ETA %d:%02d  ", d->label, bar,
                "##############################", h, tt, r, (int)eta / 60, (int)eta % 60);
    } else {
        fprintf(stderr, "\r%s %s  %s/s  ", d->label, h, r);
    }
    return 0;
}

static void curl_common(CURL *c, const char *url) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hearth-pull/1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    const char *stall = getenv("HEARTH_PULL_STALL_S");
    long s = stall && atol(stall) > 0 ? atol(stall) : 30;
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s);
    const char *tok = getenv("HF_TOKEN");
    (void)tok; /* proxies come from the environment (libcurl reads http_proxy/https_proxy itself) */
}

/* GET url into a malloc'd string (the HF API's JSON). */
char *pull_http_get(const char *url, long *status, char *errbuf, size_t cap) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    char *tmp = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&tmp, &len);
    dl_state d = {.out = mem, .quiet = true};
    curl_common(c, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    fclose(mem);
    if (rc != CURLE_OK) {
        errf(errbuf, cap, "%s: %s", url, curl_easy_strerror(rc));
        free(tmp);
        return NULL;
    }
    return tmp;
}

/* HEAD: the size of the file (0 when the server does not say). */
static int http_size(const char *url, uint64_t *size, char *errbuf, size_t cap) {
    CURL *c = curl_easy_init();
    if (!c) return -1;
    curl_common(c, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_off_t len = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        errf(errbuf, cap, "%s: %s", url, curl_easy_strerror(rc));
        return -1;
    }
    if (status >= 400) {
        errf(errbuf, cap, "%s: the server answered HTTP %ld%s", url, status,
             status == 404 ? " (not found: check the name, repository or URL)" : "");
        return -1;
    }
    *size = len > 0 ? (uint64_t)len : 0;
    return 0;
}

/* ------------------------------------------------------------ one file */

static int sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f);
    fclose(f);
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (bad) return -1;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static uint64_t file_len(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Download url to dest (via dest.part). expect: sha256 or "". */
static int fetch_one(const char *url, const char *dest, const char *expect, const char *label, bool quiet,
                     bool json, char hex[65], char *errbuf, size_t cap) {
    char part[4800], dir[4800];
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(dir, sizeof dir, "%s", dest);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    uint64_t total = 0;
    if (http_size(url, &total, errbuf, cap) != 0) return -1;
    uint64_t start = file_len(part);
    if (total && start > total) start = 0; /* a stale .part of another file: start over */
    struct statvfs vs;
    if (total && statvfs(dir, &vs) == 0) {
        uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
        if (avail < total - start) {
            char need[32], have[32];
            app_human_bytes((double)(total - start), need, sizeof need);
            app_human_bytes((double)avail, have, sizeof have);
            errf(errbuf, cap,
                 "not enough disk space in %s: %s needed, %s free (free some space and pull again)", dir,
                 need, have);
            return -1;
        }
    }
    if (start > 0 && start == total) {
        if (!quiet) fprintf(stderr, "%s: %s already downloaded, verifying\n", label, part);
    } else {
        if (start > 0 && json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "resuming");
            cJSON_AddStringToObject(o, "file", label);
            cJSON_AddNumberToObject(o, "from", (double)start);
            json_print(o);
        }
        if (start > 0 && !quiet) {
            char h[32];
            app_human_bytes((double)start, h, sizeof h);
            fprintf(stderr, "%s: resuming an interrupted download from byte %llu (%s)\n", label,
                    (unsigned long long)start, h);
        }
        FILE *out = fopen(part, start ? "ab" : "wb");
        if (!out) {
            errf(errbuf, cap, "cannot write %s: %s", part, strerror(errno));
            return -1;
        }
        dl_state d = {.out = out,
                      .start = start,
                      .total = total,
                      .t0 = now_s(),
                      .label = label,
                      .quiet = quiet,
                      .json = json};
        CURL *c = curl_easy_init();
        curl_common(c, url);
        char range[64];
        if (start) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)start);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        int ce = fclose(out);
        if (!quiet) fputc('\n', stderr);
        if (rc == CURLE_OK && start && status == 200) {
            errf(errbuf, cap,
                 "%s: the server ignored the resume request (HTTP 200, not 206); %s removed, pull again", url,
                 part);
            unlink(part);
            return -1;
        }
        if (d.write_errno || ce != 0) {
            int e = d.write_errno ? d.write_errno : errno;
            errf(errbuf, cap, "writing %s failed: %s%s", part, strerror(e),
                 e == ENOSPC ? " (free some space; `hearth pull` resumes where it stopped)" : "");
            return -1;
        }
        if (rc != CURLE_OK) {
            errf(errbuf, cap, "%s: %s%s (pull again to resume from byte %llu)", url, curl_easy_strerror(rc),
                 rc == CURLE_OPERATION_TIMEDOUT ? " (the server stopped sending)" : "",
                 (unsigned long long)file_len(part));
            return -1;
        }
    }
    uint64_t got = file_len(part);
    if (total && got != total) {
        errf(errbuf, cap, "%s: got %llu bytes of %llu (truncated; pull again to resume)", url,
             (unsigned long long)got, (unsigned long long)total);
        return -1;
    }
    if (json) json_event("verifying", label, 0, 0, false);
    if (sha256_file(part, hex) != 0) {
        errf(errbuf, cap, "cannot read %s back to check its sha256", part);
        return -1;
    }
    if (*expect && strcasecmp(expect, hex) != 0) {
        errf(errbuf, cap, "sha256 mismatch for %s: expected %s, got %s; the download was deleted", url,
             expect, hex);
        unlink(part);
        return -1;
    }
    if (rename(part, dest) != 0) {
        errf(errbuf, cap, "cannot rename %s to %s: %s", part, dest, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ command */

static const char PULL_USAGE[] = "NAME | hf.co/ORG/REPO[:QUANT] | URL [--sha256 HEX] [--name NAME] [-q]";

/* An error: on stderr, and as {"error":...} on stdout with --json. */
static void pull_error(bool json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pull_error(bool json, const char *fmt, ...) {
    char msg[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hearth pull: %s\n", msg);
    if (!json) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    json_print(o);
}

static int do_pull(pull_plan *p, bool quiet, bool json) {
    char dir[4096], errbuf[4096], dest[4700], lockp[4800], hex[65] = "";
    hearth_error err = {0};
    if (!*hearth_model_store_dir(dir, sizeof dir)) {
        pull_error(json, "no models folder: set $XDG_DATA_HOME or $HOME");
        return 1;
    }
    hearth_model_store *s = hearth_model_store_open(dir, &err);
    if (!s) {
        pull_error(json, "%s", err.msg);
        return 1;
    }
    uint64_t size = 0;
    int rc = 0;
    for (int i = 0; i < p->n && rc == 0; i++) {
        snprintf(dest, sizeof dest, "%s/%s", dir, p->file[i]);
        snprintf(lockp, sizeof lockp, "%s.lock", dest);
        int lk = open(lockp, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) != 0) {
            pull_error(json, "another pull of %s is running (lock %s); wait for it to finish", p->file[i],
                       lockp);
            if (lk >= 0) close(lk);
            rc = 1;
            break;
        }
        if (fetch_one(p->url[i], dest, p->part_sha[i], p->file[i], quiet, json, hex, errbuf, sizeof errbuf)) {
            bool theirs = p->published[i] && strstr(errbuf, "sha256 mismatch");
            pull_error(json, "%s%s", errbuf,
                       theirs ? " (expected: the sha256 Hugging Face publishes for the file)" : "");
            rc = 1;
        } else {
            size += file_len(dest);
        }
        unlink(lockp);
        close(lk);
    }
    if (rc == 0) {
        hearth_model_entry e = {0};
        snprintf(e.name, sizeof e.name, "%s", p->name);
        if (snprintf(e.file, sizeof e.file, "%s/%s", dir, p->file[0]) >= (int)sizeof e.file) {
            pull_error(json, "the models folder path %s is too long", dir);
            rc = 1;
        }
        snprintf(e.source, sizeof e.source, "%s", p->source);
        snprintf(e.sha256, sizeof e.sha256, "%s", p->n == 1 ? hex : "");
        e.size = size;
        e.pulled_at = (int64_t)time(NULL);
        if (rc) {
        } else if (hearth_model_store_put(s, &e, &err)) {
            pull_error(json, "%s", err.msg);
            rc = 1;
        } else if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "success");
            cJSON_AddStringToObject(o, "name", e.name);
            cJSON_AddStringToObject(o, "file", e.file);
            cJSON_AddStringToObject(o, "sha256", p->n == 1 ? hex : "");
            json_print(o);
        } else if (!quiet) {
            bool checked = p->part_sha[0][0];
            fprintf(stderr, "pulled %s -> %s (sha256 %s%s)\n", e.name, e.file, p->n == 1 ? hex : "per part",
                    !checked          ? "; none was published to check it against"
                    : p->published[0] ? ", as Hugging Face publishes it"
                                      : ", as expected");
        }
    }
    hearth_model_store_close(s);
    return rc;
}

static bool is_hex64(const char *s) {
    if (strlen(s) != 64) return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s)) return false;
    return true;
}

int cmd_pull(int argc, char **argv) {
    const char *sha = NULL, *name = NULL;
    bool quiet = false, json = false;
    const char *pos[2];
    int npos = 0;
    arg_opt opts[] = {
        {NULL, "--sha256", ARG_STR, &sha, "HEX", "expected sha256 of the file (checked before it is used)"},
        {NULL, "--name", ARG_STR, &name, "NAME",
         "name to store it under (default: the catalog name, the hf.co "
         "spec, or the URL's file name)"},
        {"-q", "--quiet", ARG_FLAG, &quiet, NULL, "no progress bar"},
        {NULL, "--json", ARG_FLAG, &json, NULL,
         "progress and the result as NDJSON events on stdout (status downloading/resuming/verifying/success, "
         "or "
         "error)"},
    };
    int r = arg_parse(
        "pull", PULL_USAGE,
        "Download a GGUF model into $XDG_DATA_HOME/hearth/models/ (resuming an interrupted pull),\n"
        "verify its sha256 and record it, so `-m NAME` works in every command.\n"
        "NAME is a catalog name (models/catalog.yaml, e.g. qwen2.5:0.5b); hf.co/ORG/REPO[:QUANT] picks\n"
        "the repository's GGUF of that quantization (default Q4_K_M); URL is any http(s) GGUF.\n"
        "Environment: HEARTH_HF_ENDPOINT (default https://huggingface.co), HEARTH_CATALOG,\n"
        "HEARTH_PULL_STALL_S (seconds without data before giving up, default 30), http(s)_proxy.",
        opts, 4, argc, argv, pos, 2, &npos);
    if (r) return r > 0 ? 0 : 2;
    if (npos != 1) {
        fprintf(stderr, "hearth pull: give one model to pull\nusage: hearth pull %s\n", PULL_USAGE);
        return 2;
    }
    if (sha && !is_hex64(sha)) {
        fprintf(stderr, "hearth pull: --sha256 wants 64 hex digits, got '%s'\n", sha);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static pull_plan plan;
    memset(&plan, 0, sizeof plan);
    char errbuf[4096] = "";
    int rc = pull_resolve(pos[0], &plan.n, plan.url, plan.file, MAX_PARTS, plan.name, sizeof plan.name,
                          plan.sha256, plan.hf_repo, plan.source, sizeof plan.source, errbuf, sizeof errbuf);
    if (rc == 0) {
        if (sha) snprintf(plan.sha256, sizeof plan.sha256, "%s", sha);
        if (name) snprintf(plan.name, sizeof plan.name, "%s", name);
        if (sha && plan.n > 1) {
            fprintf(stderr, "hearth pull: --sha256 names one file, but %s has %d parts\n", pos[0], plan.n);
            rc = 2;
        } else {
            if (plan.n == 1) snprintf(plan.part_sha[0], 65, "%s", plan.sha256);
            if (plan.hf_repo[0]) { /* what Hugging Face publishes checks every file the catalog does not */
                char before[MAX_PARTS];
                for (int i = 0; i < plan.n; i++)
                    before[i] = plan.part_sha[i][0];
                pull_hf_published_sha(plan.hf_repo, plan.n, (const char(*)[512])plan.file, plan.part_sha);
                for (int i = 0; i < plan.n; i++)
                    plan.published[i] = !before[i] && plan.part_sha[i][0];
            }
            rc = do_pull(&plan, quiet || json, json);
        }
    } else {
        pull_error(json, "%s", errbuf);
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
