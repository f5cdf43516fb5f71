/*
 * cmd_imatrix.c - `hearth imatrix -m MODEL -f CALIB.txt -o FILE`: collect,
 * over calibration text, the importance matrix llama-imatrix collects: for
 * every weight of the layers (attn_q/k/v, attn_output, ffn_gate/up/down),
 * the sum over all tokens of x^2 per input channel, and the token count.
 *
 * The model runs over the text in chunks (app/commands/calib.h) with a tap
 * on the matmul inputs; like llama-imatrix, ubatches under 16 tokens and
 * output.weight are left out. MoE layers: a second tap gives the expert
 * inputs, summed per expert (any ubatch size, as llama-imatrix). By default
 * the second half of each chunk is also scored (PPL alongside; --no-ppl).
 * --in-file files are added (sums and counts), without -f only merged.
 * Output: llama.cpp's imatrix GGUF (runtime/format/imatrix_file.h),
 * written to FILE.part and renamed.
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
#include "core/grow.h"
#include "core/os.h"
#include "runtime/format/imatrix_file.h"

enum { IM_MAX_IN = 64 };

typedef struct im_opts {
    const char *model, *text, *out, *backend;
    int n_ctx, n_chunks, threads, from_chunk;
    bool json, quiet, no_ppl, ctx_given;
    const char *in_files[IM_MAX_IN]; /* --in-file, merged in order */
    int n_in;
} im_opts;

static const char k_help[] =
    "usage: hearth imatrix -m MODEL.gguf -f CALIB.txt [-o FILE] [options]\n"
    "       hearth imatrix --in-file A.gguf --in-file B.gguf [-o FILE]   (merge only)\n"
    "\n"
    "Collect an importance matrix over calibration text, as llama-imatrix does: for every\n"
    "layer matrix, the sum of x^2 of its inputs per input channel. The file (llama.cpp's\n"
    "imatrix GGUF format) is read by `hearth quantize --imatrix` and `llama-quantize --imatrix`.\n"
    "\n"
    "options:\n"
    "  -m, --model PATH     GGUF model (best the full-precision one)\n"
    "  -f, --file PATH      calibration text (at least one context of tokens)\n"
    "  -o, --output FILE    output file (default imatrix.gguf)\n"
    "  -c, --ctx N          chunk length in tokens (default 512)\n"
    "  --chunks N           use at most N chunks (default: all)\n"
    "  --from-chunk N       skip the first N chunks of the text (llama-imatrix --chunk)\n"
    "  --in-file FILE       add an earlier imatrix (GGUF or legacy .dat; repeatable): sums and\n"
    "                       counts are added, as llama-imatrix merges; without -f only merges\n"
    "  --no-ppl             do not compute the perplexity alongside (by default each chunk's\n"
    "                       second half is scored, as llama-imatrix and hearth perplexity do)\n"
    "  -t, --threads N      CPU threads (default: physical cores)\n"
    "  --backend NAME       cpu (default), vulkan, cuda\n"
    "  --quiet              no progress line\n"
    "  --json               print the summary as one JSON object on stdout\n"
    "  -h, --help           this text\n";

static int im_usage(const char *msg) {
    fprintf(stderr, "hearth imatrix: %s (see hearth imatrix --help)\n", msg);
    return 2;
}

static int im_parse(int argc, char **argv, im_opts *o) {
    *o = (im_opts){.n_ctx = 512, .n_chunks = -1, .out = "imatrix.gguf", .backend = "cpu"};
    char msg[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
                     !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "-c") || !strcmp(a, "--ctx") ||
                     !strcmp(a, "--chunks") || !strcmp(a, "-t") || !strcmp(a, "--threads") ||
                     !strcmp(a, "--backend") || !strcmp(a, "--in-file") || !strcmp(a, "--from-chunk") ||
                     !strcmp(a, "--chunk");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--no-ppl"))
            o->no_ppl = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (takes && i + 1 >= argc) {
            snprintf(msg, sizeof msg, "missing value after %s", a);
            return im_usage(msg);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = argv[++i];
        else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            o->text = argv[++i];
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o->out = argv[++i];
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!app_parse_int(argv[++i], 16, 1 << 20, &o->n_ctx))
                return im_usage("-c wants a context of at least 16");
            o->ctx_given = true;
        } else if (!strcmp(a, "--chunks")) {
            if (!app_parse_int(argv[++i], 1, 1 << 30, &o->n_chunks))
                return im_usage("--chunks wants a count >= 1");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!app_parse_int(argv[++i], 1, 256, &o->threads)) return im_usage("-t wants 1 to 256 threads");
        } else if (!strcmp(a, "--from-chunk") || !strcmp(a, "--chunk")) {
            if (!app_parse_int(argv[++i], 0, 1 << 30, &o->from_chunk))
                return im_usage("--from-chunk wants a count >= 0");
        } else if (!strcmp(a, "--in-file")) {
            if (o->n_in == IM_MAX_IN) return im_usage("at most 64 --in-file files");
            o->in_files[o->n_in++] = argv[++i];
        } else if (!strcmp(a, "--backend"))
            o->backend = argv[++i];
        else {
            snprintf(msg, sizeof msg, "unknown option or argument '%s'", a);
            return im_usage(msg);
        }
    }
    if (!o->text && o->n_in == 0)
        return im_usage("no calibration text: pass -f CALIB.txt (or --in-file to merge)");
    if (o->text && !o->model) return im_usage("no model: pass -m MODEL.gguf");
    if (!o->threads) o->threads = hearth_physical_cores();
    return -1;
}

/* The entries one tap site feeds, per layer: the weights of the file whose
 * input that site is (unfused or fused names, whichever the model has). */
enum { SITES = 4, PER_SITE = 4 };
static const char *const k_names[SITES][PER_SITE] = {
    [HEARTH_TAP_ATTN_IN] = {"attn_q", "attn_k", "attn_v", "attn_qkv"},
    [HEARTH_TAP_ATTN_OUT] = {"attn_output"},
    [HEARTH_TAP_FFN_IN] = {"ffn_gate", "ffn_up"},
    [HEARTH_TAP_FFN_DOWN] = {"ffn_down"},
};

typedef struct im_state {
    hearth_imatrix *im;
    const hearth_model *m;
    int n_layer;
    int *idx;     /* [n_layer][SITES][PER_SITE] entry index + 1, 0 = none */
    int *moe_idx; /* [n_layer][3] the same for ffn_gate/up/down_exps */
    double *sq;   /* scratch [ne0] */
    size_t sq_cap;
    hearth_error err;
    bool failed;
} im_state;

static bool im_prepare(im_state *s, hearth_error *err) {
    s->idx = calloc((size_t)s->n_layer * SITES * PER_SITE, sizeof *s->idx);
    s->moe_idx = calloc((size_t)s->n_layer * 3 + 1, sizeof *s->moe_idx);
    if (!s->idx || !s->moe_idx) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
    char name[160];
    for (int l = 0; l < s->n_layer; l++)
        for (int site = 0; site < SITES; site++)
            for (int k = 0; k < PER_SITE && k_names[site][k]; k++) {
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, k_names[site][k]);
                const gguf_tensor *t = hearth_gguf_find_tensor(s->m->gguf, name);
                if (!t || t->n_dims != 2) continue;
                if (!hearth_imatrix_entry_for(s->im, name, (int64_t)t->ne[0], 1, err)) return false;
                s->idx[(l * SITES + site) * PER_SITE + k] = (int)s->im->n;
            }
    static const char *const k_exps[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    for (int l = 0; l < s->n_layer; l++)
        for (int k = 0; k < 3; k++) { /* experts: one matrix per expert, each with its own count */
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, k_exps[k]);
            const gguf_tensor *t = hearth_gguf_find_tensor(s->m->gguf, name);
            if (!t || t->n_dims != 3) continue;
            if (!hearth_imatrix_entry_for(s->im, name, (int64_t)t->ne[0], (int64_t)t->ne[2], err))
                return false;
            s->moe_idx[l * 3 + k] = (int)s->im->n;
        }
    if (!s->im->n)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "%s has no blk.N.attn_q/ffn_down/... weights to collect statistics for",
                                hearth_gguf_path(s->m->gguf)),
               false;
    return true;
}

static void im_tap(void *user, hearth_tap_site site, int layer, const float *x, int n_rows, int64_t ne0) {
    im_state *s = user;
    if (s->failed || layer < 0 || layer >= s->n_layer || (int)site >= SITES) return;
    if (!hearth_grow((void **)&s->sq, &s->sq_cap, (size_t)ne0, sizeof *s->sq)) {
        s->failed = true;
        hearth_error_set(&s->err, HEARTH_ERR_NOMEM, "out of memory");
        return;
    }
    bool summed = false;
    for (int k = 0; k < PER_SITE; k++) {
        int i = s->idx[(layer * SITES + (int)site) * PER_SITE + k];
        if (!i) continue;
        hearth_imatrix_entry *e = &s->im->e[i - 1];
        if (e->ne0 != ne0) continue; /* a view the tap does not describe */
        if (!summed) {
            memset(s->sq, 0, (size_t)ne0 * sizeof *s->sq);
            for (int r = 0; r < n_rows; r++) {
                const float *row = x + (size_t)r * (size_t)ne0;
                for (int64_t j = 0; j < ne0; j++)
                    s->sq[j] += (double)row[j] * row[j];
            }
            summed = true;
        }
        for (int64_t j = 0; j < ne0; j++)
            e->sums[j] += s->sq[j];
        e->counts[0] += n_rows;
    }
}

typedef struct im_result {
    size_t n_tokens;
    int n_chunk;    /* chunks collected here */
    int64_t merged; /* chunks from --in-file */
    calib_ppl ppl;  /* count == 0: no perplexity */
    double secs;
} im_result;

/* Expert inputs: row r adds to its expert's sums and count (llama-imatrix's
 * mul_mat_id collection). */
static void im_moe_tap(void *user, int layer, bool down, const float *x, const int32_t *expert, int n_rows,
                       int64_t ne0) {
    im_state *s = user;
    if (s->failed || layer < 0 || layer >= s->n_layer) return;
    for (int k = down ? 2 : 0; k < (down ? 3 : 2); k++) {
        const int i = s->moe_idx[layer * 3 + k];
        if (!i) continue;
        hearth_imatrix_entry *e = &s->im->e[i - 1];
        if (e->ne0 != ne0) continue;
        for (int r = 0; r < n_rows; r++) {
            if (expert[r] < 0 || expert[r] >= e->n_mat) continue;
            double *sum = e->sums + (size_t)expert[r] * (size_t)ne0;
            const float *row = x + (size_t)r * (size_t)ne0;
            for (int64_t j = 0; j < ne0; j++)
                sum[j] += (double)row[j] * row[j];
            e->counts[expert[r]]++;
        }
    }
}

static void im_summary(const im_opts *o, const hearth_imatrix *im, const im_result *r) {
    const calib_ppl *p = &r->ppl;
    const double nll = p->count ? p->nll / (double)p->count : 0, ppl = exp(nll);
    const double var = p->count > 1 ? p->nll2 / (double)p->count - nll * nll : 0;
    const double pe = var > 0 ? sqrt(var / (double)(p->count - 1)) * ppl : 0;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        if (o->model) cJSON_AddStringToObject(j, "model", o->model);
        if (o->text) cJSON_AddStringToObject(j, "dataset", o->text);
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddNumberToObject(j, "entries", (double)im->n);
        cJSON_AddNumberToObject(j, "chunks", im->chunk_count);
        cJSON_AddNumberToObject(j, "chunk_size", im->chunk_size);
        cJSON_AddNumberToObject(j, "tokens", (double)r->n_tokens);
        if (o->n_in) {
            cJSON *a = cJSON_AddArrayToObject(j, "in_files");
            for (int i = 0; i < o->n_in; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(o->in_files[i]));
            cJSON_AddNumberToObject(j, "merged_chunks", (double)r->merged);
        }
        if (p->count) {
            cJSON_AddNumberToObject(j, "ppl", ppl);
            cJSON_AddNumberToObject(j, "ppl_err", pe);
            cJSON_AddNumberToObject(j, "ppl_tokens", (double)p->count);
            cJSON *a = cJSON_AddArrayToObject(j, "ppl_chunks");
            for (int i = 0; p->chunk_ppl && i < r->n_chunk; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(p->chunk_ppl[i]));
        }
        cJSON_AddNumberToObject(j, "seconds", r->secs);
        char *txt = cJSON_PrintUnformatted(j);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(j);
        return;
    }
    if (p->count) printf("Final estimate: PPL = %.4f +/- %.5f (%ld tokens)\n", ppl, pe, p->count);
    printf("wrote %s: %zu entries from %u chunks of %u tokens", o->out, im->n, im->chunk_count,
           im->chunk_size);
    if (o->text) printf(" (%d of %s)", r->n_chunk, o->text);
    if (o->n_in)
        printf(" (%lld merged from %d file%s)", (long long)r->merged, o->n_in, o->n_in > 1 ? "s" : "");
    printf(" in %.2f s\n", r->secs);
}

/* --in-file: add each file, as llama-imatrix does (legacy files scaled by
 * the chunk size: -c, or the first GGUF file's when -c is not given). */
static bool im_merge(const im_opts *o, hearth_imatrix *im, int64_t *chunks, hearth_error *err) {
    *chunks = 0;
    for (int i = 0; i < o->n_in; i++) {
        hearth_imatrix *src = hearth_imatrix_load(o->in_files[i], err);
        if (!src) return false;
        if (!o->ctx_given && !o->text && !im->chunk_size && src->chunk_size) im->chunk_size = src->chunk_size;
        const int64_t cs = im->chunk_size ? im->chunk_size : (uint32_t)o->n_ctx;
        int64_t c = 0;
        hearth_status st = hearth_imatrix_merge(im, src, cs, &c, err);
        hearth_imatrix_free(src);
        if (st) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            hearth_error_set(err, st, "--in-file %s: %s", o->in_files[i], m);
            return false;
        }
        *chunks += c;
    }
    return true;
}

/* Tokenize, drop --from-chunk chunks, run with the tap (and the perplexity). */
static bool im_collect(const im_opts *o, hearth_model *m, hearth_backend *be, im_state *s, im_result *r,
                       hearth_error *err) {
    hearth_tokens toks = {0};
    int n_chunk = 0;
    bool ok = calib_tokens(m, o->text, o->n_ctx, -1, &toks, &n_chunk, err);
    if (ok && o->from_chunk >= n_chunk)
        ok = !hearth_error_set(err, HEARTH_ERR_INVALID,
                               "--from-chunk %d leaves no chunk: %s has only %d chunks of %d tokens",
                               o->from_chunk, o->text, n_chunk, o->n_ctx);
    if (ok && o->from_chunk > 0) {
        const size_t skip = (size_t)o->from_chunk * (size_t)o->n_ctx;
        memmove(toks.ids, toks.ids + skip, (toks.n - skip) * sizeof *toks.ids);
        toks.n -= skip;
        n_chunk -= o->from_chunk;
    }
    if (ok && o->n_chunks > 0 && o->n_chunks < n_chunk) n_chunk = o->n_chunks;
    r->n_chunk = n_chunk;
    r->n_tokens = (size_t)n_chunk * (size_t)o->n_ctx;
    if (ok && !o->no_ppl) {
        r->ppl.chunk_ppl = calloc((size_t)n_chunk, sizeof *r->ppl.chunk_ppl);
        r->ppl.print = !o->json;
        ok = r->ppl.chunk_ppl || !hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    }
    ok = ok && im_prepare(s, err) && !hearth_imatrix_add_dataset(s->im, o->text, err) &&
         calib_run(m, be, &toks, o->n_ctx, n_chunk, im_tap, im_moe_tap, s, 16, o->no_ppl ? NULL : &r->ppl,
                   !o->quiet && isatty(2) == 1, "imatrix", err);
    if (ok && s->failed) {
        *err = s->err;
        ok = false;
    }
    hearth_tokens_free(&toks);
    return ok;
}

int cmd_imatrix(int argc, char **argv) {
    im_opts o;
    int rc = im_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (o.text &&
        !app_load("imatrix", o.model, o.backend, o.threads, HEARTH_GPU_LAYERS_ALL, 0, true, &be, &m))
        return 1;
    hearth_error err = {0};
    im_state s = {.m = m, .n_layer = m ? m->hp.n_layer : 0};
    im_result r = {0};
    char part[4096];
    snprintf(part, sizeof part, "%s.part", o.out);
    double t0 = hearth_now_ms();
    bool ok = (s.im = hearth_imatrix_new(&err)) != NULL;
    if (ok && o.text) s.im->chunk_size = (uint32_t)o.n_ctx;
    ok = ok && (!o.text || im_collect(&o, m, be, &s, &r, &err)) && im_merge(&o, s.im, &r.merged, &err);
    if (ok && !s.im->chunk_size) s.im->chunk_size = (uint32_t)o.n_ctx;
    if (ok) {
        s.im->chunk_count = (uint32_t)(r.n_chunk + r.merged);
        ok = !hearth_imatrix_save(s.im, part, &err);
    }
    if (ok && rename(part, o.out) != 0) {
        hearth_error_set(&err, HEARTH_ERR_IO, "cannot rename %s to %s", part, o.out);
        ok = false;
    }
    r.secs = (hearth_now_ms() - t0) / 1000.0;
    if (ok)
        im_summary(&o, s.im, &r);
    else {
        unlink(part);
        fprintf(stderr, "hearth imatrix: %s\n", err.msg[0] ? err.msg : "failed");
    }
    free(r.ppl.chunk_ppl);
    free(s.idx);
    free(s.moe_idx);
    free(s.sq);
    hearth_imatrix_free(s.im);
    hearth_model_free(m);
    hearth_backend_free(be);
    return ok ? 0 : 1;
}
