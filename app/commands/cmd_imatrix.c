/*
 * cmd_imatrix.c - `hearth imatrix -m MODEL -f CALIB.txt -o FILE`: collect,
 * over calibration text, the importance matrix llama-imatrix collects: for
 * every weight of the layers (attn_q/k/v, attn_output, ffn_gate/up/down),
 * the sum over all tokens of x^2 per input channel, and the token count.
 *
 * The model runs over the text in chunks (app/commands/calib.h) with a tap
 * on the matmul inputs; like llama-imatrix, ubatches under 16 tokens and
 * output.weight are left out. Output: llama.cpp's imatrix GGUF
 * (runtime/format/imatrix_file.h), written to FILE.part and renamed.
 * Ownership: everything allocated here is freed before returning.
 */
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

typedef struct im_opts {
    const char *model, *text, *out, *backend;
    int n_ctx, n_chunks, threads;
    bool json, quiet;
} im_opts;

static const char k_help[] =
    "usage: hearth imatrix -m MODEL.gguf -f CALIB.txt [-o FILE] [options]\n"
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
                     !strcmp(a, "--backend");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o->json = true;
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
        } else if (!strcmp(a, "--chunks")) {
            if (!app_parse_int(argv[++i], 1, 1 << 30, &o->n_chunks))
                return im_usage("--chunks wants a count >= 1");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!app_parse_int(argv[++i], 1, 256, &o->threads)) return im_usage("-t wants 1 to 256 threads");
        } else if (!strcmp(a, "--backend"))
            o->backend = argv[++i];
        else {
            snprintf(msg, sizeof msg, "unknown option or argument '%s'", a);
            return im_usage(msg);
        }
    }
    if (!o->model) return im_usage("no model: pass -m MODEL.gguf");
    if (!o->text) return im_usage("no calibration text: pass -f CALIB.txt");
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
    int *idx;   /* [n_layer][SITES][PER_SITE] entry index + 1, 0 = none */
    double *sq; /* scratch [ne0] */
    size_t sq_cap;
    hearth_error err;
    bool failed;
} im_state;

static bool im_prepare(im_state *s, hearth_error *err) {
    s->idx = calloc((size_t)s->n_layer * SITES * PER_SITE, sizeof *s->idx);
    if (!s->idx) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory"), false;
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
    if (!s->im->n)
        return hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                                "%s has no blk.N.attn_q/ffn_down/... weights to collect statistics for",
                                hearth_gguf_path(s->m->gguf)),
               false;
    return true;
}

static void im_tap(void *user, hearth_tap_site site, int layer, const float *x, int n_rows, int64_t ne0) {
    im_state *s = user;
    if (s->failed || n_rows < 16 || layer < 0 || layer >= s->n_layer || (int)site >= SITES) return;
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

static void im_summary(const im_opts *o, const hearth_imatrix *im, size_t n_tokens, double secs) {
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o->model);
        cJSON_AddStringToObject(j, "dataset", o->text);
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddNumberToObject(j, "entries", (double)im->n);
        cJSON_AddNumberToObject(j, "chunks", im->chunk_count);
        cJSON_AddNumberToObject(j, "chunk_size", im->chunk_size);
        cJSON_AddNumberToObject(j, "tokens", (double)n_tokens);
        cJSON_AddNumberToObject(j, "seconds", secs);
        char *txt = cJSON_PrintUnformatted(j);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("wrote %s: %zu entries from %u chunks of %u tokens of %s in %.2f s\n", o->out, im->n,
               im->chunk_count, im->chunk_size, o->text, secs);
    }
}

int cmd_imatrix(int argc, char **argv) {
    im_opts o;
    int r = im_parse(argc, argv, &o);
    if (r >= 0) return r;
    hearth_backend *be = NULL;
    hearth_model *m = NULL;
    if (!app_load("imatrix", o.model, o.backend, o.threads, HEARTH_GPU_LAYERS_ALL, true, &be, &m)) return 1;
    hearth_error err = {0};
    hearth_tokens toks = {0};
    im_state s = {.m = m, .n_layer = m->hp.n_layer};
    char part[4096];
    snprintf(part, sizeof part, "%s.part", o.out);
    int n_chunk = 0;
    double t0 = hearth_now_ms();
    bool ok = calib_tokens(m, o.text, o.n_ctx, o.n_chunks, &toks, &n_chunk, &err) &&
              (s.im = hearth_imatrix_new(&err)) && im_prepare(&s, &err) &&
              !hearth_imatrix_add_dataset(s.im, o.text, &err);
    ok = ok &&
         calib_run(m, be, &toks, o.n_ctx, n_chunk, im_tap, &s, !o.quiet && isatty(2) == 1, "imatrix", &err);
    if (ok && s.failed) {
        err = s.err;
        ok = false;
    }
    if (ok) {
        s.im->chunk_count = (uint32_t)n_chunk;
        s.im->chunk_size = (uint32_t)o.n_ctx;
        ok = !hearth_imatrix_save(s.im, part, &err);
    }
    if (ok && rename(part, o.out) != 0) {
        hearth_error_set(&err, HEARTH_ERR_IO, "cannot rename %s to %s", part, o.out);
        ok = false;
    }
    if (ok)
        im_summary(&o, s.im, (size_t)n_chunk * (size_t)o.n_ctx, (hearth_now_ms() - t0) / 1000.0);
    else {
        unlink(part);
        fprintf(stderr, "hearth imatrix: %s\n", err.msg[0] ? err.msg : "failed");
    }
    free(s.idx);
    free(s.sq);
    hearth_imatrix_free(s.im);
    hearth_tokens_free(&toks);
    hearth_model_free(m);
    hearth_backend_free(be);
    return ok ? 0 : 1;
}
