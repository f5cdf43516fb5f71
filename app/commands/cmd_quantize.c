/*
 * cmd_quantize.c - `hearth quantize IN OUT TYPE`: rewrite a GGUF model with
 * its matrices in another type, using llama.cpp's file types and per-tensor
 * rules (runtime/format/quant_rules.h) and the reference quantizers of
 * core/dtype.h, so the output is byte-identical to llama-quantize's.
 *
 * Streams tensor by tensor: memory is bounded by the largest tensor (its f32
 * form plus its quantized form). Rows are split over threads. Writes to
 * OUT.part and renames it on success; on any error or SIGINT the part file
 * is removed, so no partial OUT ever exists.
 * Ownership: everything allocated here is freed before returning.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "app/commands/quantize_awq.h"
#include "app/commands/quantize_imatrix.h"
#include "core/dtype.h"
#include "core/os.h"
#include "core/quant_weighted.h"
#include "runtime/format/gguf.h"
#include "runtime/format/gguf_writer.h"
#include "runtime/format/quant_rules.h"

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct q_opts {
    const char *in, *out;
    hearth_ftype ftype;
    bool pure, allow_requant, quiet, json;
    bool has_out_type, has_embd_type;
    hearth_dtype out_type, embd_type;
    int threads;
    const char *imatrix_path;    /* --imatrix FILE */
    hearth_imatrix *imatrix;     /* loaded, checked against the model */
    q_awq_opts awq_o;            /* --awq CALIB (awq_o.calib), --awq-* */
    q_awq *awq;                  /* calibration statistics; searches layer by layer */
    const struct q_tensor *plan; /* the planned types, for the AWQ search */
    uint64_t n_plan;
} q_opts;

/* One tensor of the output, in llama.cpp's order. */
typedef struct q_tensor {
    const gguf_tensor *src;
    char name[128];
    hearth_dtype type;
    int layer; /* blk.N. number, -1 for others */
} q_tensor;

static const char k_help[] =
    "usage: hearth quantize [options] IN.gguf OUT.gguf TYPE\n"
    "\n"
    "Rewrite a model with its weight matrices in TYPE, as llama.cpp's llama-quantize does\n"
    "(same mixtures, per-tensor rules and bytes). TYPE is case-insensitive, one of:\n"
    "  %s\n"
    "  (Q3_K, Q4_K, Q5_K mean the _M mixtures). IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M,\n"
    "  IQ3_XXS and IQ3_XS need --imatrix for their IQ3_XXS/IQ2/IQ1 tensors (as llama-quantize);\n"
    "  a mixture that picks a tensor type this build cannot write says so before writing.\n"
    "\n"
    "options:\n"
    "  --pure                     every matrix gets TYPE's base type (no mixture rules)\n"
    "  --output-type T            type of output.weight\n"
    "  --token-embedding-type T   type of token_embd.weight\n"
    "  --allow-requantize         accept an input whose matrices are already quantized\n"
    "  --imatrix FILE             weight the rounding error by an importance matrix (from\n"
    "                             `hearth imatrix` or llama-imatrix; GGUF or legacy .dat), as\n"
    "                             llama-quantize --imatrix does: same bytes\n"
    "  --awq CALIB.txt            activation-aware scaling before quantizing (AWQ-style): per\n"
    "                             layer, scales s = mean|x|^alpha that minimise the output error\n"
    "                             on calibration text, folded into the norms and weights\n"
    "  --awq-ctx N                calibration chunk length in tokens (default 512)\n"
    "  --awq-chunks N             use at most N calibration chunks (default: all)\n"
    "  --awq-alpha A              no search: this alpha (0..1) for every scale\n"
    "  --awq-rows N               calibration rows per matmul input the search uses (default 128)\n"
    "  --awq-no-clip              --awq without its clipping search (scales only)\n"
    "  --awq-no-round             --awq without the rounding refinement of Q4_0/Q5_0 blocks (within\n"
    "                             blocks, then over whole rows on the full input moments)\n"
    "  -t, --threads N            quantizer threads (default: all cores)\n"
    "  --quiet                    no progress bar\n"
    "  --json                     print the summary as one JSON object on stdout\n"
    "  -h, --help                 this text\n"
    "\n"
    "Norms and biases stay as they are. The output is written to OUT.part and renamed\n"
    "when complete; on an error or Ctrl-C no OUT file is left.\n";

static int q_usage(const char *msg) {
    fprintf(stderr, "hearth quantize: %s (see hearth quantize --help)\n", msg);
    return 2;
}

static bool parse_weight_type(const char *s, hearth_dtype *t) {
    return hearth_dtype_from_name(s, t) && hearth_dtype_info(*t)->from_float != NULL;
}

static int q_parse(int argc, char **argv, q_opts *o) {
    memset(o, 0, sizeof *o);
    o->threads = hearth_online_cpus();
    o->awq_o = (q_awq_opts){.n_ctx = 512, .max_chunks = -1, .fixed_alpha = -1, .sample_rows = 128};
    const char *pos[3];
    int npos = 0;
    char msg[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_help, hearth_ftype_list());
            return 0;
        } else if (!strcmp(a, "--pure"))
            o->pure = true;
        else if (!strcmp(a, "--allow-requantize"))
            o->allow_requant = true;
        else if (!strcmp(a, "--quiet"))
            o->quiet = true;
        else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--awq-no-clip"))
            o->awq_o.no_clip = true;
        else if (!strcmp(a, "--awq-no-round"))
            o->awq_o.no_round = true;
        else if (!strcmp(a, "--awq") || !strcmp(a, "--awq-ctx") || !strcmp(a, "--awq-chunks") ||
                 !strcmp(a, "--awq-alpha") || !strcmp(a, "--awq-rows")) {
            if (!has_val) return q_usage("missing value after an --awq flag");
            const char *v = argv[++i];
            char *end;
            double d = strtod(v, &end);
            if (!strcmp(a, "--awq"))
                o->awq_o.calib = v;
            else if (*end || !*v || (a[6] == 'a' ? d < 0 || d > 1 : d < 1 || d > (1 << 20) || d != (int)d))
                return q_usage(a[6] == 'a'
                                   ? "--awq-alpha wants a number from 0 to 1"
                                   : "--awq-ctx / --awq-chunks / --awq-rows want a whole number >= 1");
            else if (a[6] == 'a')
                o->awq_o.fixed_alpha = d;
            else if (a[6] == 'r')
                o->awq_o.sample_rows = (int)d;
            else if (a[7] == 't')
                o->awq_o.n_ctx = (int)d;
            else
                o->awq_o.max_chunks = (int)d;
        } else if (!strcmp(a, "--imatrix")) {
            if (!has_val) return q_usage("missing file after --imatrix");
            o->imatrix_path = argv[++i];
        } else if (!strcmp(a, "--output-type") || !strcmp(a, "--token-embedding-type")) {
            if (!has_val) return q_usage("missing value after a type flag");
            bool embd = a[2] == 't';
            hearth_dtype t;
            if (!parse_weight_type(argv[++i], &t)) {
                snprintf(msg, sizeof msg, "unknown tensor type '%s' for %s (use e.g. q8_0, q6_k, f16)",
                         argv[i], a);
                return q_usage(msg);
            }
            if (embd)
                o->embd_type = t, o->has_embd_type = true;
            else
                o->out_type = t, o->has_out_type = true;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!has_val) return q_usage("missing value after -t");
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 256) return q_usage("-t wants a thread count from 1 to 256");
            o->threads = (int)n;
        } else if (a[0] == '-' && a[1]) {
            snprintf(msg, sizeof msg, "unknown option '%s'", a);
            return q_usage(msg);
        } else if (npos < 3)
            pos[npos++] = a;
        else
            return q_usage("too many arguments: want IN OUT TYPE");
    }
    if (npos < 3) return q_usage("want IN OUT TYPE");
    if (o->awq_o.calib && o->imatrix_path)
        return q_usage("--awq and --imatrix do not combine (the imatrix describes the unscaled inputs)");
    o->in = pos[0], o->out = pos[1];
    if (!hearth_ftype_from_name(pos[2], &o->ftype)) {
        snprintf(msg, sizeof msg, "unknown type '%s'; known types: %s", pos[2], hearth_ftype_list());
        return q_usage(msg);
    }
    return -1;
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) l = -1;
    return l;
}

/* llama.cpp's weight_name_comparer: by block number (non-block tensors
 * first), then by name. */
static int q_cmp(const void *pa, const void *pb) {
    const q_tensor *a = pa, *b = pb;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return strcmp(a->name, b->name);
}

static bool is_float_type(hearth_dtype t) {
    return t == HEARTH_F32 || t == HEARTH_F16 || t == HEARTH_BF16;
}

static void model_info(const hearth_gguf *g, hearth_quant_model *m) {
    hearth_str arch = {0};
    char key[160], a[64] = "llama";
    if (hearth_gguf_get_str(g, "general.architecture", &arch)) hearth_str_copy(arch, a, sizeof a);
    uint32_t v = 0, heads = 0, kv = 0;
    snprintf(key, sizeof key, "%s.block_count", a);
    m->n_layer = hearth_gguf_get_u32(g, key, &v) ? (int)v : 0;
    snprintf(key, sizeof key, "%s.attention.head_count", a);
    hearth_gguf_get_u32(g, key, &heads);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", a);
    if (!hearth_gguf_get_u32(g, key, &kv)) kv = heads;
    m->n_gqa = heads && kv ? (int)(heads / kv) : 1;
    snprintf(key, sizeof key, "%s.expert_count", a);
    m->n_expert = hearth_gguf_get_u32(g, key, &v) ? (int)v : 0;
    m->has_output = hearth_gguf_find_tensor(g, "output.weight") != NULL;
}

/* llama.cpp's "this quantization requires an importance matrix" check, and
 * a type the mixture picks that Hearth has no quantizer for (IQ2/IQ1). */
static bool q_type_writable(const q_opts *o, const char *name, hearth_dtype ty, hearth_error *err) {
    const char *ft = hearth_ftype_name(o->ftype), *tn = hearth_dtype_name(ty);
    if (!o->imatrix && hearth_quant_requires_imatrix(o->ftype, name, ty)) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "%s requires an importance matrix (%s would be %s, which llama.cpp only writes with "
                         "one): make one with `hearth imatrix -m %s -f CALIB.txt -o imatrix.gguf` and pass "
                         "--imatrix imatrix.gguf",
                         ft, name, tn, o->in);
        return false;
    }
    if (!hearth_dtype_info(ty)->from_float) {
        hearth_error_set(
            err, HEARTH_ERR_UNSUPPORTED,
            "no quantizer for %s yet (%s picks it for %s): Hearth runs %s files but cannot write "
            "them; make them with llama.cpp's llama-quantize, or choose another type",
            tn, ft, name, tn);
        return false;
    }
    return true;
}

/* Plan every tensor's type; fails on an already-quantized input without
 * --allow-requantize. */
static bool q_plan(const hearth_gguf *g, const q_opts *o, q_tensor *ts, uint64_t n, hearth_error *err) {
    hearth_quant_model m;
    model_info(g, &m);
    m.has_imatrix = o->imatrix != NULL;
    for (uint64_t i = 0; i < n; i++) {
        ts[i].src = hearth_gguf_tensor_at(g, i);
        hearth_str_copy(ts[i].src->name, ts[i].name, sizeof ts[i].name);
        ts[i].layer = layer_of(ts[i].name);
    }
    qsort(ts, n, sizeof *ts, q_cmp);
    hearth_quant_counters c = {0};
    for (uint64_t i = 0; i < n; i++) {
        q_tensor *t = &ts[i];
        t->type = t->src->type;
        if (!hearth_quant_wants(t->name, t->src->n_dims)) continue;
        if (!is_float_type(t->src->type) && !o->allow_requant) {
            hearth_error_set(err, HEARTH_ERR_INVALID,
                             "%s: tensor %s is already quantized (%s); quantizing it again loses quality: "
                             "start from an F32/F16/BF16 model, or pass --allow-requantize",
                             o->in, t->name, hearth_dtype_name(t->src->type));
            return false;
        }
        int64_t ne0 = (int64_t)t->src->ne[0];
        hearth_dtype ty = hearth_quant_tensor_type(o->ftype, o->pure, &m, &c, t->name, ne0);
        if (o->has_embd_type && !strcmp(t->name, "token_embd.weight"))
            ty = hearth_quant_fallback(o->embd_type, ne0);
        if (o->has_out_type && !strcmp(t->name, "output.weight"))
            ty = hearth_quant_fallback(o->out_type, ne0);
        t->type = ty;
        if (!q_type_writable(o, t->name, ty, err)) return false;
        if (o->imatrix && !q_imatrix_type_ok(o->imatrix, t->name, ty, err)) return false;
    }
    return true;
}

static hearth_dtype planned_type(void *user, const char *name) {
    const q_opts *o = user;
    for (uint64_t i = 0; i < o->n_plan; i++)
        if (!strcmp(o->plan[i].name, name)) return o->plan[i].type;
    return HEARTH_F32;
}

/* --awq: calibrate with the input model (before any output); the layers are
 * searched and folded as the writer reaches them (q_awq_get). */
static bool q_awq_step(q_opts *o, const hearth_gguf *g, const q_tensor *ts, uint64_t n, hearth_error *err) {
    if (!o->awq_o.calib) return true;
    o->plan = ts;
    o->n_plan = n;
    o->awq_o.model_path = o->in;
    o->awq_o.threads = o->threads;
    o->awq_o.progress = !o->quiet && isatty(2) == 1;
    o->awq = q_awq_run(&o->awq_o, g, planned_type, o, err);
    return o->awq != NULL;
}

typedef struct q_job {
    const float *x, *qw; /* qw: importance per column (per matrix of rows_per_mat rows), or NULL */
    uint8_t *out;
    hearth_dtype type;
    int64_t ne0, rows, rows_per_mat;
    int ith, nth;
    bool ok;
} q_job;

static void *q_rows(void *arg) {
    q_job *j = arg;
    size_t rb = hearth_dtype_row_size(j->type, j->ne0);
    j->ok = true;
    for (int64_t r = j->rows * j->ith / j->nth; r < j->rows * (j->ith + 1) / j->nth && j->ok; r++)
        j->ok = hearth_quantize_row_weighted(j->type, j->x + r * j->ne0, j->out + (size_t)r * rb, j->ne0,
                                             j->qw ? j->qw + (r / j->rows_per_mat) * j->ne0 : NULL);
    return NULL;
}

static bool quantize_parallel(const float *x, const float *qw, uint8_t *out, hearth_dtype type, int64_t ne0,
                              int64_t rows, int64_t rows_per_mat, int nth) {
    if (nth > rows) nth = (int)rows;
    if (nth > 64) nth = 64;
    if (nth < 1) nth = 1;
    q_job jobs[64];
    pthread_t th[64];
    bool started[64] = {false};
    for (int i = 0; i < nth; i++)
        jobs[i] = (q_job){x, qw, out, type, ne0, rows, rows_per_mat > 0 ? rows_per_mat : rows, i, nth, false};
    for (int i = 1; i < nth; i++)
        started[i] = pthread_create(&th[i], NULL, q_rows, &jobs[i]) == 0;
    q_rows(&jobs[0]);
    bool ok = jobs[0].ok;
    for (int i = 1; i < nth; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            q_rows(&jobs[i]);
        ok = ok && jobs[i].ok;
    }
    return ok;
}

typedef struct q_bufs {
    float *f, *w; /* w: the tensor's importance vector */
    uint8_t *q;
    size_t fcap, qcap, wcap;
} q_bufs;

static bool grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    void *n = realloc(*p, need);
    if (!n) return false;
    *p = n;
    *cap = need;
    return true;
}

/* Convert one tensor and stream it to the writer. */
static bool q_write_tensor(hearth_gguf_writer *w, const q_tensor *t, const q_opts *o, q_bufs *b,
                           hearth_error *err) {
    const gguf_tensor *s = t->src;
    const float *folded = NULL; /* --awq: the scaled, clipped F32 values */
    if (!q_awq_get(o->awq, t->name, &folded, err)) return false;
    if (t->type == s->type && !folded)
        return hearth_gguf_writer_write(w, s->data, (size_t)s->nbytes, err) == HEARTH_OK;
    int64_t ne0 = (int64_t)s->ne[0], rows = 1;
    for (uint32_t d = 1; d < s->n_dims; d++)
        rows *= (int64_t)s->ne[d];
    size_t fneed = (size_t)(ne0 * rows) * sizeof(float),
           qneed = hearth_dtype_row_size(t->type, ne0) * (size_t)rows;
    if (!grow((void **)&b->f, &b->fcap, fneed) || !grow((void **)&b->q, &b->qcap, qneed)) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory converting %s (%zu bytes)", t->name,
                         fneed + qneed);
        return false;
    }
    size_t srb = hearth_dtype_row_size(s->type, ne0);
    for (int64_t r = 0; r < rows && !folded; r++)
        hearth_dequantize_row(s->type, (const uint8_t *)s->data + (size_t)r * srb, b->f + r * ne0, ne0);
    if (folded) memcpy(b->f, folded, fneed);
    const float *qw = NULL;
    const int64_t n_mat = s->n_dims > 2 ? (int64_t)s->ne[2] : 1; /* experts: one importance vector each */
    if (o->imatrix && !q_imatrix_weights(o->imatrix, t->name, ne0, n_mat, &b->w, &b->wcap, &qw, err))
        return false;
    if (!quantize_parallel(b->f, qw, b->q, t->type, ne0, rows, rows / n_mat, o->threads)) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "cannot quantize %s to %s", t->name,
                         hearth_dtype_name(t->type));
        return false;
    }
    return hearth_gguf_writer_write(w, b->q, qneed, err) == HEARTH_OK;
}

static void q_progress(const q_opts *o, bool tty, uint64_t i, uint64_t n, const q_tensor *t) {
    if (o->quiet || !tty) return;
    const int width = 24;
    int fill = (int)(width * (i + 1) / n);
    char bar[32];
    for (int k = 0; k < width; k++)
        bar[k] = k < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\rquantize: [%s] %3llu/%llu %-28.28s %-5s", bar, (unsigned long long)(i + 1),
            (unsigned long long)n, t->name, hearth_dtype_name(t->type));
    if (i + 1 == n) fputc('\n', stderr);
    fflush(stderr);
}

/* Metadata: the input's keys in order, then quantization_version and
 * file_type appended last (llama.cpp removes and re-adds them). */
static bool q_metadata(hearth_gguf_writer *w, const hearth_gguf *g, const q_opts *o, hearth_error *err) {
    for (uint64_t i = 0; i < hearth_gguf_n_kv(g); i++) {
        const gguf_kv *kv = hearth_gguf_kv_at(g, i);
        if (hearth_str_eq(kv->key, "general.file_type") ||
            hearth_str_eq(kv->key, "general.quantization_version"))
            continue;
        if (hearth_gguf_writer_copy_kv(w, kv, err)) return false;
    }
    return !hearth_gguf_writer_set_u32(w, "general.quantization_version", 2, err) &&
           !hearth_gguf_writer_set_u32(w, "general.file_type", (uint32_t)o->ftype, err) &&
           (!o->imatrix || q_imatrix_metadata(w, o->imatrix, o->imatrix_path, err));
}

static double ratio(double a, double b) {
    return b > 0 ? a / b : 1.0;
}

static void q_awq_json(cJSON *j, const q_opts *o) {
    const q_awq *a = o->awq;
    cJSON *aj = cJSON_AddObjectToObject(j, "awq"), *layers = cJSON_AddArrayToObject(aj, "layers");
    cJSON_AddStringToObject(aj, "calibration", o->awq_o.calib);
    cJSON_AddNumberToObject(aj, "chunks", a->n_chunk);
    cJSON_AddNumberToObject(aj, "chunk_size", o->awq_o.n_ctx);
    cJSON_AddBoolToObject(aj, "clip", !o->awq_o.no_clip);
    cJSON_AddBoolToObject(aj, "round", !o->awq_o.no_clip && !o->awq_o.no_round);
    cJSON_AddBoolToObject(aj, "full_moments", a->full_moments);
    cJSON_AddNumberToObject(aj, "sample_rows", o->awq_o.sample_rows);
    cJSON_AddNumberToObject(aj, "search_seconds", a->search_seconds);
    if (a->embd_clipped)
        cJSON_AddNumberToObject(aj, "token_embd_err_ratio", ratio(a->embd_err_clip, a->embd_err_plain));
    static const char *const groups[Q_AWQ_GROUPS] = {"qkv", "attn_output", "gate_up", "down"};
    for (int l = 0; l < a->n_layer; l++) {
        cJSON *lj = cJSON_CreateObject();
        for (int k = 0; k < Q_AWQ_GROUPS; k++) {
            cJSON *g = cJSON_AddObjectToObject(lj, groups[k]);
            const int i = l * Q_AWQ_GROUPS + k;
            const q_awq_stat *st = &a->stat[i];
            cJSON_AddNumberToObject(g, "alpha", st->alpha);
            cJSON_AddNumberToObject(g, "err_plain", st->err_plain);
            cJSON_AddNumberToObject(g, "err_ratio", ratio(st->err_final, st->err_plain));
            cJSON_AddNumberToObject(g, "scale_err_ratio", ratio(st->err_scaled, st->err_plain));
            cJSON_AddNumberToObject(g, "clip_err_ratio", ratio(st->err_final, st->err_scaled));
        }
        cJSON_AddItemToArray(layers, lj);
    }
}

static void q_awq_text(const q_awq *a) {
    printf("awq: %d calibration chunks, search %.1f s; per layer alpha (sample output error: scaled and "
           "clipped / plain) for qkv, attn_output, gate/up, down:\n",
           a->n_chunk, a->search_seconds);
    for (int l = 0; l < a->n_layer; l++) {
        printf("  layer %d:", l);
        for (int k = 0; k < Q_AWQ_GROUPS; k++) {
            const int i = l * Q_AWQ_GROUPS + k;
            printf(" %.1f (%.3f)", a->stat[i].alpha, ratio(a->stat[i].err_final, a->stat[i].err_plain));
        }
        printf("\n");
    }
    if (a->embd_clipped)
        printf("  token_embd: clipped, squared error %.3f of plain\n",
               ratio(a->embd_err_clip, a->embd_err_plain));
}

static void q_summary(const q_opts *o, const q_tensor *ts, uint64_t n, uint64_t in_size, uint64_t out_size,
                      double secs) {
    int counts[HEARTH_DTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < n; i++)
        counts[ts[i].type]++;
    if (o->json) {
        cJSON *j = cJSON_CreateObject(), *tt = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "input", o->in);
        cJSON_AddStringToObject(j, "output", o->out);
        cJSON_AddStringToObject(j, "type", hearth_ftype_name(o->ftype));
        cJSON_AddBoolToObject(j, "pure", o->pure);
        if (o->imatrix_path) cJSON_AddStringToObject(j, "imatrix", o->imatrix_path);
        if (o->awq) q_awq_json(j, o);
        cJSON_AddNumberToObject(j, "tensors", (double)n);
        cJSON_AddNumberToObject(j, "input_bytes", (double)in_size);
        cJSON_AddNumberToObject(j, "output_bytes", (double)out_size);
        cJSON_AddNumberToObject(j, "seconds", secs);
        for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
            if (counts[t]) cJSON_AddNumberToObject(tt, hearth_dtype_name((hearth_dtype)t), counts[t]);
        cJSON_AddItemToObject(j, "tensor_types", tt);
        char *txt = cJSON_PrintUnformatted(j);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(j);
        return;
    }
    if (o->awq) q_awq_text(o->awq);
    printf("wrote %s: %s, %llu tensors (", o->out, hearth_ftype_name(o->ftype), (unsigned long long)n);
    bool first = true;
    for (int t = 0; t < HEARTH_DTYPE_COUNT; t++)
        if (counts[t]) {
            printf("%s%d %s", first ? "" : ", ", counts[t], hearth_dtype_name((hearth_dtype)t));
            first = false;
        }
    printf("), %.2f MB -> %.2f MB in %.2f s\n", in_size / 1e6, out_size / 1e6, secs);
}

static bool q_run(const q_opts *o, hearth_gguf *g, q_tensor *ts, uint64_t n, const char *part,
                  hearth_error *err, uint64_t *out_size) {
    hearth_gguf_writer *w = hearth_gguf_writer_create(err);
    FILE *f = NULL;
    q_bufs b = {0};
    bool ok = w && q_metadata(w, g, o, err);
    for (uint64_t i = 0; ok && i < n; i++) {
        const gguf_tensor *s = ts[i].src;
        ok = !hearth_gguf_writer_add_tensor(w, ts[i].name, ts[i].type, s->n_dims, s->ne, err);
    }
    if (ok && !(f = fopen(part, "wb"))) {
        hearth_error_set(err, HEARTH_ERR_IO, "cannot create %s: %s", part, strerror(errno));
        ok = false;
    }
    ok = ok && !hearth_gguf_writer_begin(w, f, o->out, err);
    bool tty = isatty(2) == 1;
    for (uint64_t i = 0; ok && i < n; i++) {
        if (g_interrupted) {
            hearth_error_set(err, HEARTH_ERR_INVALID, "interrupted; no output written");
            ok = false;
            break;
        }
        ok = q_write_tensor(w, &ts[i], o, &b, err);
        if (ok) q_progress(o, tty, i, n, &ts[i]);
    }
    ok = ok && !g_interrupted && !hearth_gguf_writer_finish(w, err);
    if (!ok && g_interrupted && !err->msg[0])
        hearth_error_set(err, HEARTH_ERR_INVALID, "interrupted; no output written");
    if (f && fclose(f) != 0 && ok) {
        hearth_error_set(err, HEARTH_ERR_IO, "%s: write failed: %s", o->out, strerror(errno));
        ok = false;
    }
    if (ok) *out_size = hearth_gguf_writer_file_size(w);
    free(b.f);
    free(b.w);
    free(b.q);
    hearth_gguf_writer_free(w);
    return ok;
}

int cmd_quantize(int argc, char **argv) {
    q_opts o;
    int r = q_parse(argc, argv, &o);
    if (r >= 0) return r;
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(o.in, &err);
    if (!g) {
        fprintf(stderr, "hearth quantize: %s\n", err.msg);
        return 1;
    }
    if (o.imatrix_path && !(o.imatrix = q_imatrix_open(o.imatrix_path, g, &err))) {
        fprintf(stderr, "hearth quantize: %s\n", err.msg);
        hearth_gguf_close(g);
        return 1;
    }
    uint64_t n = hearth_gguf_n_tensors(g), out_size = 0;
    q_tensor *ts = calloc(n ? n : 1, sizeof *ts);
    char part[PATH_MAX + 8];
    snprintf(part, sizeof part, "%s.part", o.out);
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    double t0 = hearth_now_ms();
    bool ok = ts != NULL;
    if (!ok) hearth_error_set(&err, HEARTH_ERR_NOMEM, "out of memory");
    ok = ok && q_plan(g, &o, ts, n, &err) && q_awq_step(&o, g, ts, n, &err) &&
         q_run(&o, g, ts, n, part, &err, &out_size);
    if (ok && rename(part, o.out) != 0) {
        hearth_error_set(&err, HEARTH_ERR_IO, "cannot rename %s to %s: %s", part, o.out, strerror(errno));
        ok = false;
    }
    int rc = 0;
    if (ok) {
        q_summary(&o, ts, n, hearth_gguf_file_size(g), out_size, (hearth_now_ms() - t0) / 1000.0);
    } else {
        unlink(part);
        fprintf(stderr, "hearth quantize: %s\n", err.msg[0] ? err.msg : "failed");
        rc = g_interrupted ? 130 : 1;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(ts);
    hearth_imatrix_free(o.imatrix);
    q_awq_free(o.awq);
    hearth_gguf_close(g);
    return rc;
}
