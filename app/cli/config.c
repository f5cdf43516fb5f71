/*
 * config.c - reading config.yaml (libyaml document API) into hearth_config.
 *
 * The schema is a set of tables (field name, kind, offset, range): the same
 * tables drive the YAML walk, hearth_config_set, the "did you mean"
 * suggestions and the reset-to-default of a null value, so a key added to a
 * table is parsed, checked and overridable everywhere at once (and must be
 * added to docs/CONFIG.md).
 *
 * Invariants: a value is converted completely before it replaces the old one
 * (a failed set leaves the config unchanged); the walk only descends where
 * the schema has a mapping (depth <= 3), so YAML aliases cannot make it
 * recurse or loop; numbers are parsed without the C library's locale (the
 * TUI calls setlocale, which may make strtod expect a decimal comma).
 * Owns: every string in the config (malloc'd); nothing global.
 */
#include "config.h"

#include "runtime/serving/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_MAX_BYTES (4u << 20)   /* a config file larger than this is a mistake */
#define TEMPLATE_MAX_BYTES (1u << 20) /* chat_template_file */

/* ------------------------------------------------------------ the schema */

typedef enum field_kind {
    K_SECTION,       /* a mapping of the fields in `sub` */
    K_MODELS,        /* models: NAME -> settings */
    K_STR,           /* any string; empty = unset */
    K_TEXT,          /* free text (prompts, templates); empty = unset */
    K_PATH,          /* file path: "~" expanded, relative to the config's directory */
    K_MODEL_REF,     /* the name of an entry of models: */
    K_TEMPLATE_FILE, /* path whose contents become chat_template */
    K_INT,
    K_FLOAT,
    K_BOOL,
    K_SIZE, /* bytes, with optional unit */
    K_U64,
    K_BACKEND,
    K_KV_TYPE,
    K_LISTEN,    /* HOST:PORT */
    K_SPEC_MODE, /* speculative decoding mode (runtime/serving/spec.h), stored as int */
    K_SPEC_K,    /* how speculation chooses K (runtime/serving/spec_cost.h), stored as int */
} field_kind;

typedef struct field {
    const char *name;
    field_kind kind;
    size_t off;              /* into hearth_config, or into hearth_config_model for model fields */
    double min, max;         /* K_INT / K_FLOAT range */
    bool zero_ok;            /* K_INT: 0 ("default") is allowed besides [min, max] */
    const char *range;       /* the range as a message says it */
    const struct field *sub; /* K_SECTION */
} field;

#define CFG(f) offsetof(hearth_config, f)
#define MDL(f) offsetof(hearth_config_model, f)
#define FIELD(n, k, o)                                                                                       \
    { .name = n, .kind = k, .off = o }
#define RANGED(n, k, o, lo, hi, z, r)                                                                        \
    { .name = n, .kind = k, .off = o, .min = lo, .max = hi, .zero_ok = z, .range = r }
#define SECTION(n, s)                                                                                        \
    { .name = n, .kind = K_SECTION, .sub = s }
#define END                                                                                                  \
    { .name = NULL }

static const field k_prefix_cache_fields[] = {
    FIELD("enabled", K_BOOL, CFG(prefix_cache.enabled)),
    FIELD("path", K_PATH, CFG(prefix_cache.path)),
    FIELD("max_size", K_SIZE, CFG(prefix_cache.max_size)),
    END,
};

static const field k_speculative_fields[] = {
    FIELD("mode", K_SPEC_MODE, CFG(speculative.mode)),
    FIELD("k", K_SPEC_K, CFG(speculative.k)),
    RANGED("draft_max", K_INT, CFG(speculative.draft_max), 1, 32, true, "0 (the default, 8) or 1 to 32"),
    RANGED("draft_min", K_INT, CFG(speculative.draft_min), 1, 32, true, "0 (the default, 1) or 1 to 32"),
    RANGED("max_batch", K_INT, CFG(speculative.max_batch), 1, 64, true, "0 (the default, 4) or 1 to 64"),
    RANGED("draft_gpu_layers", K_INT, CFG(speculative.draft_gpu_layers), -1, 100000, false,
           "-1 (all) or 0 to 100000"),
    END,
};

static const field k_server_fields[] = {
    FIELD("socket", K_PATH, CFG(server.socket)),
    FIELD("listen", K_LISTEN, CFG(server.listen)),
    FIELD("api_key", K_STR, CFG(server.api_key)),
    FIELD("max_body", K_SIZE, CFG(server.max_body)),
    RANGED("max_waiting", K_INT, CFG(server.max_waiting), 0, 1000000, false,
           "0 (the engine's default) to 1000000"),
    END,
};

static const field k_chat_fields[] = {
    FIELD("history_db", K_PATH, CFG(chat.history_db)),
    END,
};

static const field k_model_fields[] = {
    FIELD("path", K_PATH, MDL(path)),
    FIELD("chat_template", K_TEXT, MDL(chat_template)),
    FIELD("chat_template_file", K_TEMPLATE_FILE, MDL(chat_template_file)),
    FIELD("draft", K_MODEL_REF, MDL(draft)),
    FIELD("system_prompt", K_TEXT, MDL(system_prompt)),
    RANGED("max_tokens", K_INT, MDL(max_tokens), -1, INT_MAX, false,
           "-1 (until the context is full), 0 (the command's default) or more"),
    RANGED("temperature", K_FLOAT, MDL(sampling.temperature), 0, 100, false, "0 (greedy) to 100"),
    RANGED("top_k", K_INT, MDL(sampling.top_k), 0, INT_MAX, false, "0 (off) or more"),
    RANGED("top_p", K_FLOAT, MDL(sampling.top_p), 0, 1, false, "0 to 1 (1: off)"),
    RANGED("min_p", K_FLOAT, MDL(sampling.min_p), 0, 1, false, "0 (off) to 1"),
    RANGED("repeat_penalty", K_FLOAT, MDL(sampling.repeat_penalty), 0.01, 100, false, "0.01 to 100 (1: off)"),
    RANGED("presence_penalty", K_FLOAT, MDL(sampling.presence_penalty), -100, 100, false,
           "-100 to 100 (0: off)"),
    RANGED("frequency_penalty", K_FLOAT, MDL(sampling.frequency_penalty), -100, 100, false,
           "-100 to 100 (0: off)"),
    FIELD("seed", K_U64, MDL(sampling.seed)),
    END,
};

static const field k_top_fields[] = {
    FIELD("default_model", K_MODEL_REF, CFG(default_model)),
    FIELD("models", K_MODELS, 0),
    FIELD("backend", K_BACKEND, CFG(backend)),
    RANGED("gpu_layers", K_INT, CFG(gpu_layers), -1, 100000, false, "-1 (all) or 0 to 100000"),
    RANGED("n_cpu_moe", K_INT, CFG(n_cpu_moe), 0, 1 << 30, true,
           "0 (none) or a layer count (at or above the model's = all)"),
    FIELD("cpu_moe", K_BOOL, CFG(cpu_moe)),
    RANGED("threads", K_INT, CFG(threads), 0, 4096, false, "0 (physical cores) to 4096"),
    RANGED("context", K_INT, CFG(context), 16, 16777216, true, "0 (the model's) or 16 to 16777216"),
    RANGED("parallel", K_INT, CFG(parallel), 1, 4096, true, "0 (the command's default) or 1 to 4096"),
    RANGED("batch", K_INT, CFG(batch), 1, 1048576, true, "0 (the engine's default) or 1 to 1048576"),
    FIELD("kv_type", K_KV_TYPE, CFG(kv_type)),
    SECTION("prefix_cache", k_prefix_cache_fields),
    SECTION("speculative", k_speculative_fields),
    SECTION("server", k_server_fields),
    SECTION("chat", k_chat_fields),
    END,
};

#define MAX_FIELDS 24 /* no table is longer */

static const char *kind_expects(field_kind k) {
    switch (k) {
    case K_SECTION: return "a mapping of settings";
    case K_MODELS: return "a mapping of model names to their settings";
    case K_STR: return "a string";
    case K_TEXT: return "text";
    case K_PATH: return "a file path";
    case K_MODEL_REF: return "a model name";
    case K_TEMPLATE_FILE: return "a file path";
    case K_INT: return "an integer";
    case K_FLOAT: return "a number";
    case K_BOOL: return "true or false";
    case K_SIZE: return "a size (e.g. 512MiB)";
    case K_U64: return "a non-negative integer";
    case K_BACKEND: return "a backend name";
    case K_KV_TYPE: return "a KV cache type";
    case K_SPEC_MODE: return "a speculative decoding mode";
    case K_SPEC_K: return "cost or step";
    case K_LISTEN: return "HOST:PORT";
    }
    return "a value";
}

/* ------------------------------------------------------------ defaults */

static void model_init(hearth_config_model *m) {
    memset(m, 0, sizeof *m);
    m->sampling = hearth_sampling_defaults();
}

void hearth_config_init(hearth_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->backend, "auto", 5);
    cfg->gpu_layers = -1;
    cfg->kv_type = HEARTH_F16;
    cfg->prefix_cache.enabled = true;
    cfg->speculative.mode = HEARTH_SPEC_OFF;
    cfg->speculative.draft_gpu_layers = -2; /* unset: as gpu_layers */
}

static void model_free(hearth_config_model *m) {
    free(m->name);
    free(m->path);
    free(m->chat_template);
    free(m->chat_template_file);
    free(m->draft);
    free(m->system_prompt);
}

void hearth_config_free(hearth_config *cfg) {
    if (!cfg) return;
    for (int i = 0; i < cfg->n_models; i++)
        model_free(&cfg->models[i]);
    free(cfg->models);
    free(cfg->path);
    free(cfg->default_model);
    free(cfg->prefix_cache.path);
    free(cfg->server.socket);
    free(cfg->server.listen);
    free(cfg->server.api_key);
    free(cfg->chat.history_db);
    hearth_config_init(cfg);
}

/* ------------------------------------------------------------ messages */

/* Where a parse is and who hears about failures. */
typedef struct cfg_parse {
    const char *name;     /* file name for "FILE:LINE:COL: "; NULL: messages carry no location */
    const char *base_dir; /* relative paths resolve here; NULL: they stay relative */
    hearth_error *err;
    char key[256]; /* dotted key being set ("server.listen"), for messages */
    /* per model (parallel to cfg->models): where its name and its draft are */
    yaml_mark_t *model_at, *draft_at;
    int marks_cap;
    yaml_mark_t default_model_at;
} cfg_parse;

static hearth_status fail(cfg_parse *p, const yaml_mark_t *at, hearth_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static hearth_status fail(cfg_parse *p, const yaml_mark_t *at, hearth_status code, const char *fmt, ...) {
    char msg[HEARTH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at && p->name)
        return hearth_error_set(p->err, code, "%s:%zu:%zu: %s", p->name, at->line + 1, at->column + 1, msg);
    return hearth_error_set(p->err, code, "%s", msg);
}

/* s (n bytes) made safe to quote in a one-line message: control bytes become
 * '?', long text is cut at a character boundary and ends in "...". */
static const char *quote(char *buf, size_t cap, const char *s, size_t n) {
    size_t max = cap - 4, o = 0;
    bool cut = n > max;
    if (cut) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* don't split a UTF-8 sequence */
    }
    for (size_t i = 0; i < n; i++)
        buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i];
    if (cut) buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = '\0';
    return buf;
}

static const char *quote_str(char *buf, size_t cap, const char *s) {
    return quote(buf, cap, s, strlen(s));
}

/* ------------------------------------------------------------ suggestions */

/* Levenshtein distance, case-insensitive, for strings up to 63 bytes
 * (longer ones get a large distance: no suggestion). */
static int edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63) return 1000;
    int row[64];
    for (size_t j = 0; j <= nb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1];
            int cb = b[j - 1] >= 'A' && b[j - 1] <= 'Z' ? b[j - 1] + 32 : b[j - 1];
            int best = diag + (ca != cb);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = row[j];
            row[j] = best;
        }
    }
    return row[nb];
}

/* "(did you mean 'threads'?)" or "(expected one of: a, b, c)". */
static const char *suggest(char *buf, size_t cap, const char *got, const field *fields) {
    const char *best = NULL;
    int best_d = 3;
    for (const field *f = fields; f->name; f++) {
        int d = edit_distance(got, f->name);
        if (d < best_d && (size_t)d * 2 < strlen(f->name)) best = f->name, best_d = d;
    }
    if (best) {
        snprintf(buf, cap, "(did you mean '%s'?)", best);
        return buf;
    }
    size_t o = (size_t)snprintf(buf, cap, "(expected one of:");
    for (const field *f = fields; f->name && o < cap; f++)
        o += (size_t)snprintf(buf + o, cap - o, "%s %s", f == fields ? "" : ",", f->name);
    if (o < cap) snprintf(buf + o, cap - o, ")");
    return buf;
}

static bool is_model_field(const field *f) {
    for (const field *g = k_model_fields; g->name; g++)
        if (g == f) return true;
    return false;
}

static const field *find_field(const field *fields, const char *name) {
    for (const field *f = fields; f->name; f++)
        if (!strcmp(f->name, name)) return f;
    return NULL;
}

/* ------------------------------------------------------------ scalar parsing */

/* Decimal number without the C locale: [+-]digits[.digits][e[+-]digits].
 * Sets *end to the first byte not taken; false when no digits. */
static bool parse_decimal(const char *s, double *out, const char **end) {
    const char *c = s;
    bool neg = *c == '-';
    if (*c == '+' || *c == '-') c++;
    uint64_t mant = 0;
    int exp10 = 0, digits = 0, sig = 0;
    for (; *c >= '0' && *c <= '9'; c++, digits++) {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(*c - '0');
            if (mant) sig++;
        } else {
            exp10++;
        }
    }
    if (*c == '.') {
        for (c++; *c >= '0' && *c <= '9'; c++, digits++) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*c - '0');
                if (mant) sig++;
                exp10--;
            }
        }
    }
    if (!digits) return false;
    if (*c == 'e' || *c == 'E') {
        const char *e = c + 1;
        bool eneg = *e == '-';
        if (*e == '+' || *e == '-') e++;
        if (*e >= '0' && *e <= '9') {
            int x = 0;
            for (; *e >= '0' && *e <= '9'; e++)
                if (x < 10000) x = x * 10 + (*e - '0');
            exp10 += eneg ? -x : x;
            c = e;
        }
    }
    double v = (double)mant;
    if (mant && exp10) v = exp10 < 0 ? v / pow(10.0, -exp10) : v * pow(10.0, exp10);
    *out = neg ? -v : v;
    *end = c;
    return true;
}

static bool parse_float(const char *s, double *out) {
    const char *end;
    return parse_decimal(s, out, &end) && !*end && isfinite(*out);
}

/* Whole string a base-10 integer; *range_err when it has too many digits. */
static bool parse_integer(const char *s, long long *out, bool *range_err) {
    *range_err = false;
    const char *c = s + (*s == '+' || *s == '-');
    if (*c < '0' || *c > '9') return false;
    for (const char *d = c; *d; d++)
        if (*d < '0' || *d > '9') return false;
    errno = 0;
    *out = strtoll(s, NULL, 10);
    if (errno == ERANGE) *range_err = true;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
    const char *c = s + (*s == '+');
    if (!*c) return false;
    for (const char *d = c; *d; d++)
        if (*d < '0' || *d > '9') return false;
    errno = 0;
    unsigned long long v = strtoull(c, NULL, 10);
    if (errno == ERANGE) return false;
    *out = v;
    return true;
}

static bool eq_nocase(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        int ca = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a, cb = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
        if (ca != cb) return false;
    }
    return *a == *b;
}

static bool parse_bool(const char *s, bool *out) {
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (eq_nocase(s, yes[i])) return *out = true, true;
        if (eq_nocase(s, no[i])) return *out = false, true;
    }
    return false;
}

bool hearth_config_parse_size(const char *s, uint64_t *out) {
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"kb", 1000ull},
        {"mb", 1000000ull},
        {"gb", 1000000000ull},
        {"tb", 1000000000000ull},
        {"kib", 1ull << 10},
        {"mib", 1ull << 20},
        {"gib", 1ull << 30},
        {"tib", 1ull << 40},
    };
    if (!s || *s == '-' || *s == '+') return false;
    /* whole numbers exactly; fractions and exponents through a double */
    uint64_t whole = 0;
    bool exact = true;
    const char *end = s;
    for (; *end >= '0' && *end <= '9'; end++) {
        if (whole > (UINT64_MAX - (uint64_t)(*end - '0')) / 10) exact = false;
        whole = whole * 10 + (uint64_t)(*end - '0');
    }
    double v = 0;
    if (end == s || *end == '.' || *end == 'e' || *end == 'E' || !exact) {
        exact = false;
        if (!parse_decimal(s, &v, &end) || !isfinite(v)) return false;
    }
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!eq_nocase(end, units[i].unit)) continue;
        if (exact) {
            if (whole > UINT64_MAX / units[i].mult) return false;
            *out = whole * units[i].mult;
            return true;
        }
        double bytes = floor(v * (double)units[i].mult);
        if (!(bytes < 18446744073709551616.0)) return false;
        *out = (uint64_t)bytes;
        return true;
    }
    return false;
}

/* "auto", "cpu", "cuda", "vulkan", "cuda:N", "vulkan:N" (N up to 3 digits). */
static bool valid_backend(const char *s) {
    static const char *names[] = {"auto", "cpu", "cuda", "vulkan"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return true;
    const char *colon = strchr(s, ':');
    if (!colon) return false;
    size_t n = (size_t)(colon - s), nd = strlen(colon + 1);
    if (!((n == 4 && !strncmp(s, "cuda", 4)) || (n == 6 && !strncmp(s, "vulkan", 6)))) return false;
    if (nd < 1 || nd > 3) return false;
    for (const char *d = colon + 1; *d; d++)
        if (*d < '0' || *d > '9') return false;
    return true;
}

/* HOST:PORT, HOST a name/IPv4 address or [IPv6], PORT 1..65535. */
static bool valid_listen(const char *s) {
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':') return false;
        for (const char *c = s + 1; c < close; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F') ||
                  *c == ':' || *c == '.' || *c == '%'))
                return false;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s) return false;
        for (const char *c = s; c < colon; c++)
            if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  *c == '.' || *c == '-' || *c == '_'))
                return false;
    }
    const char *port = colon + 1;
    size_t n = strlen(port);
    if (n < 1 || n > 5) return false;
    long v = 0;
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9') return false;
        v = v * 10 + (*c - '0');
    }
    return v >= 1 && v <= 65535;
}

/* ------------------------------------------------------------ paths and files */

static const char *home_dir(char *pwbuf, size_t cap) {
    const char *home = getenv("HOME");
    if (home && *home) return home;
    struct passwd pw, *found = NULL;
    if (getpwuid_r(getuid(), &pw, pwbuf, cap, &found) == 0 && found && found->pw_dir && *found->pw_dir)
        return found->pw_dir;
    return NULL;
}

/* "~" and "~/x" -> $HOME/x; a relative path -> base_dir/path (when base_dir
 * is set); anything else copied. NULL on allocation failure or when "~" is
 * used with no known home (sets *no_home). */
static char *resolve_path(const char *path, const char *base_dir, bool *no_home) {
    *no_home = false;
    char pwbuf[4096];
    char *out = NULL;
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        const char *home = home_dir(pwbuf, sizeof pwbuf);
        if (!home) {
            *no_home = true;
            return NULL;
        }
        if (asprintf(&out, "%s%s", home, path + 1) < 0) out = NULL;
    } else if (path[0] != '/' && base_dir && *base_dir) {
        if (asprintf(&out, "%s/%s", base_dir, path) < 0) out = NULL;
    } else {
        out = strdup(path);
    }
    return out;
}

/* Read a chat template: a regular file of at most TEMPLATE_MAX_BYTES without
 * NUL bytes (O_NONBLOCK so a FIFO or device cannot hang the load). */
static char *read_template(const char *path, char *why, size_t why_cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_cap, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_cap, "%s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_cap, "not a regular file");
    } else if (st.st_size > (off_t)TEMPLATE_MAX_BYTES) {
        snprintf(why, why_cap, "larger than %u bytes", TEMPLATE_MAX_BYTES);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        snprintf(why, why_cap, "out of memory");
    } else {
        size_t n = 0;
        while (n < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            n += (size_t)r;
        }
        buf[n] = '\0';
        if (n != (size_t)st.st_size) {
            snprintf(why, why_cap, "short read");
            free(buf);
            buf = NULL;
        } else if (memchr(buf, 0, n)) {
            snprintf(why, why_cap, "contains a NUL byte; a template is text");
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

/* ------------------------------------------------------------ setting one value */

/* A value to set: the text of a scalar, or the shape of something else. */
typedef struct cfg_value {
    const char *text;      /* NUL-terminated scalar text; NULL: not a scalar */
    size_t len;            /* bytes of text (a NUL inside means len != strlen) */
    bool is_null;          /* YAML null: reset to the default */
    const char *shape;     /* "a mapping", "a list" when text is NULL */
    const yaml_mark_t *at; /* where it is; NULL from hearth_config_set */
} cfg_value;

static const char *describe(char *buf, size_t cap, const cfg_value *v) {
    if (!v->text) return v->shape;
    if (v->is_null) return "nothing";
    char q[72];
    snprintf(buf, cap, "'%s'", quote(q, sizeof q, v->text, v->len));
    return buf;
}

static hearth_status wrong_type(cfg_parse *p, const field *f, const cfg_value *v) {
    char d[80];
    return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: expected %s, got %s", p->key, kind_expects(f->kind),
                describe(d, sizeof d, v));
}

static hearth_status nomem(cfg_parse *p, const yaml_mark_t *at) {
    return fail(p, at, HEARTH_ERR_NOMEM, "%s: out of memory", p->key);
}

/* Replace a string field: free the old one, keep `s` (may be NULL). */
static void put_str(void *base, size_t off, char *s) {
    char **slot = (char **)((char *)base + off);
    free(*slot);
    *slot = s;
}

/* Field f of `base` back to its default (a null value in the file). */
static hearth_status reset_field(const field *f, void *base) {
    char *slot = (char *)base + f->off;
    switch (f->kind) {
    case K_STR:
    case K_TEXT:
    case K_PATH:
    case K_MODEL_REF: put_str(base, f->off, NULL); return HEARTH_OK;
    case K_TEMPLATE_FILE:
        put_str(base, f->off, NULL);
        put_str(base, MDL(chat_template), NULL);
        return HEARTH_OK;
    default: break;
    }
    hearth_config dc;
    hearth_config_model dm;
    hearth_config_init(&dc);
    model_init(&dm);
    const char *defaults = is_model_field(f) ? (const char *)&dm : (const char *)&dc;
    size_t size = f->kind == K_INT || f->kind == K_SPEC_MODE || f->kind == K_SPEC_K ? sizeof(int)
                  : f->kind == K_FLOAT                       ? sizeof(float)
                  : f->kind == K_BOOL                        ? sizeof(bool)
                  : f->kind == K_BACKEND                     ? sizeof dc.backend
                  : f->kind == K_KV_TYPE                     ? sizeof(hearth_dtype)
                                                             : sizeof(uint64_t);
    memcpy(slot, defaults + f->off, size);
    return HEARTH_OK;
}

/* A K_PATH or K_TEMPLATE_FILE field: resolve the path (and read the template). */
static hearth_status set_path_field(cfg_parse *p, const field *f, void *base, const cfg_value *v) {
    const char *t = v->text;
    char q[72];
    if (!*t)
        return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: expected a file path, got an empty string", p->key);
    bool no_home;
    char *path = resolve_path(t, p->base_dir, &no_home);
    if (!path && no_home)
        return fail(p, v->at, HEARTH_ERR_FORMAT,
                    "%s: '%s' starts with ~ but no home directory is known ($HOME)", p->key,
                    quote_str(q, sizeof q, t));
    if (!path) return nomem(p, v->at);
    if (f->kind == K_TEMPLATE_FILE) {
        char why[128];
        char *text = read_template(path, why, sizeof why);
        if (!text) {
            hearth_status st = fail(p, v->at, HEARTH_ERR_FORMAT, "%s: cannot read the template '%s': %s",
                                    p->key, quote_str(q, sizeof q, path), why);
            free(path);
            return st;
        }
        put_str(base, MDL(chat_template), text);
    }
    put_str(base, f->off, path);
    return HEARTH_OK;
}

/* Set field f of `base` (a hearth_config, or a hearth_config_model for model
 * fields) from v. Converts fully before writing anything. */
static hearth_status set_field(cfg_parse *p, const field *f, void *base, const cfg_value *v) {
    char *slot = (char *)base + f->off;
    char d[80], q[72];
    if (!v->text) return wrong_type(p, f, v);
    if (strlen(v->text) != v->len)
        return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: contains a NUL character", p->key);
    const char *t = v->text;

    if (v->is_null) return reset_field(f, base); /* back to the default */

    switch (f->kind) {
    case K_SECTION:
    case K_MODELS: return wrong_type(p, f, v);

    case K_STR:
    case K_TEXT:
    case K_MODEL_REF: {
        char *s = NULL;
        if (*t && !(s = strdup(t))) return nomem(p, v->at);
        put_str(base, f->off, s);
        if (is_model_field(f) && !strcmp(f->name, "chat_template"))
            put_str(base, MDL(chat_template_file), NULL); /* inline text replaces a file */
        return HEARTH_OK;
    }

    case K_PATH:
    case K_TEMPLATE_FILE: return set_path_field(p, f, base, v);

    case K_INT: {
        long long x;
        bool range_err;
        if (!parse_integer(t, &x, &range_err)) return wrong_type(p, f, v);
        if (range_err || !((x >= f->min && x <= f->max) || (f->zero_ok && x == 0)))
            return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: %s is out of range (expected %s)", p->key,
                        quote_str(q, sizeof q, t), f->range);
        *(int *)slot = (int)x;
        return HEARTH_OK;
    }

    case K_FLOAT: {
        double x;
        if (!parse_float(t, &x)) return wrong_type(p, f, v);
        if (!(x >= f->min && x <= f->max))
            return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: %s is out of range (expected %s)", p->key,
                        quote_str(q, sizeof q, t), f->range);
        *(float *)slot = (float)x;
        return HEARTH_OK;
    }

    case K_BOOL: {
        bool b;
        if (!parse_bool(t, &b)) return wrong_type(p, f, v);
        *(bool *)slot = b;
        return HEARTH_OK;
    }

    case K_SIZE: {
        uint64_t n;
        if (!hearth_config_parse_size(t, &n))
            return fail(
                p, v->at, HEARTH_ERR_FORMAT,
                "%s: expected a size such as 512MiB or 2GB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), "
                "got %s",
                p->key, describe(d, sizeof d, v));
        *(uint64_t *)slot = n;
        return HEARTH_OK;
    }

    case K_U64: {
        uint64_t n;
        if (!parse_u64(t, &n)) return wrong_type(p, f, v);
        *(uint64_t *)slot = n;
        return HEARTH_OK;
    }

    case K_BACKEND:
        if (!valid_backend(t))
            return fail(p, v->at, HEARTH_ERR_FORMAT,
                        "%s: unknown backend %s (expected auto, cpu, cuda, cuda:N, vulkan or vulkan:N)",
                        p->key, describe(d, sizeof d, v));
        snprintf(slot, sizeof((hearth_config *)0)->backend, "%s", t);
        return HEARTH_OK;

    case K_KV_TYPE: {
        hearth_dtype dt;
        if (!hearth_dtype_from_name(t, &dt) || (dt != HEARTH_F16 && dt != HEARTH_F32 && dt != HEARTH_Q8_0))
            return fail(p, v->at, HEARTH_ERR_FORMAT,
                        "%s: unknown KV cache type %s (expected f16, f32 or q8_0)", p->key,
                        describe(d, sizeof d, v));
        *(hearth_dtype *)slot = dt;
        return HEARTH_OK;
    }

    case K_SPEC_MODE: {
        hearth_spec_mode m;
        if (!hearth_spec_mode_parse(t, &m))
            return fail(p, v->at, HEARTH_ERR_FORMAT,
                        "%s: unknown speculative decoding mode %s (expected ngram or off)", p->key,
                        describe(d, sizeof d, v));
        *(int *)slot = (int)m;
        return HEARTH_OK;
    }

    case K_SPEC_K: {
        hearth_spec_k_policy k;
        if (!hearth_spec_k_parse(t, &k))
            return fail(p, v->at, HEARTH_ERR_FORMAT, "%s: unknown way to choose K %s (expected cost or step)",
                        p->key, describe(d, sizeof d, v));
        *(int *)slot = (int)k;
        return HEARTH_OK;
    }

    case K_LISTEN: {
        if (!valid_listen(t))
            return fail(p, v->at, HEARTH_ERR_FORMAT,
                        "%s: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080, port 1 to 65535), got %s",
                        p->key, describe(d, sizeof d, v));
        char *s = strdup(t);
        if (!s) return nomem(p, v->at);
        put_str(base, f->off, s);
        return HEARTH_OK;
    }
    }
    return wrong_type(p, f, v);
}

/* ------------------------------------------------------------ the YAML walk */

static bool node_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static cfg_value node_value(const yaml_node_t *n) {
    cfg_value v = {.at = &n->start_mark};
    if (n->type == YAML_SCALAR_NODE) {
        v.text = (const char *)n->data.scalar.value;
        v.len = n->data.scalar.length;
        v.is_null = node_is_null(n);
    } else {
        v.shape = n->type == YAML_MAPPING_NODE    ? "a mapping"
                  : n->type == YAML_SEQUENCE_NODE ? "a list"
                                                  : "nothing";
    }
    return v;
}

/* The key of a mapping pair as a C string, or NULL (error set) when it is not
 * a plain string key. */
static const char *key_text(cfg_parse *p, const yaml_node_t *k, const char *where) {
    if (!k || k->type != YAML_SCALAR_NODE || node_is_null(k)) {
        const char *got = !k                              ? "nothing"
                          : k->type == YAML_MAPPING_NODE  ? "a mapping"
                          : k->type == YAML_SEQUENCE_NODE ? "a list"
                                                          : "an empty key";
        fail(p, k ? &k->start_mark : NULL, HEARTH_ERR_FORMAT, "%s: expected a key name, got %s", where, got);
        return NULL;
    }
    const char *s = (const char *)k->data.scalar.value;
    if (strlen(s) != k->data.scalar.length) {
        fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "%s: a key contains a NUL character", where);
        return NULL;
    }
    return s;
}

/* p->key = "prefix.name" (or "name"), truncated to fit. */
static void set_key(cfg_parse *p, const char *prefix, const char *name) {
    char q[200];
    quote_str(q, sizeof q, name);
    size_t cap = sizeof p->key - 1, o = 0;
    const char *parts[] = {prefix ? prefix : "", prefix && *prefix ? "." : "", q};
    for (int i = 0; i < 3; i++)
        for (const char *c = parts[i]; *c && o < cap; c++)
            p->key[o++] = *c;
    p->key[o] = '\0';
}

static hearth_status walk_models(cfg_parse *p, yaml_document_t *doc, yaml_node_t *n, hearth_config *cfg);

/* Walk a mapping whose keys are the fields of `fields`, setting them in
 * `base`. `where` names the mapping in messages ("" for the top level). */
static hearth_status walk_mapping(cfg_parse *p, yaml_document_t *doc, yaml_node_t *map, const field *fields,
                                  void *base, const char *where, hearth_config *cfg) {
    bool seen[MAX_FIELDS] = {0};
    yaml_mark_t seen_at[MAX_FIELDS];
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key),
                    *v = yaml_document_get_node(doc, pair->value);
        const char *name = key_text(p, k, *where ? where : "config");
        if (!name) return HEARTH_ERR_FORMAT;
        const field *f = find_field(fields, name);
        char q[72], s[200];
        if (!f)
            return fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "unknown key '%s'%s%s %s",
                        quote_str(q, sizeof q, name), *where ? " in " : "", where,
                        suggest(s, sizeof s, name, fields));
        size_t i = (size_t)(f - fields);
        set_key(p, where, name);
        if (seen[i])
            return fail(p, &k->start_mark, HEARTH_ERR_FORMAT,
                        "%s: duplicate key (first set at line %zu, column %zu)", p->key, seen_at[i].line + 1,
                        seen_at[i].column + 1);
        seen[i] = true;
        seen_at[i] = k->start_mark;
        if (fields == k_model_fields &&
            (!strcmp(name, "chat_template") || !strcmp(name, "chat_template_file"))) {
            const field *other = find_field(fields, name[13] ? "chat_template" : "chat_template_file");
            if (seen[other - fields])
                return fail(p, &k->start_mark, HEARTH_ERR_FORMAT,
                            "%s: chat_template and chat_template_file are both set; give one or the other",
                            where);
        }
        if (!v) return fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "%s: missing value", p->key);

        if (f->kind == K_SECTION) {
            if (node_is_null(v)) continue; /* "server:" alone: all defaults */
            if (v->type != YAML_MAPPING_NODE) {
                cfg_value cv = node_value(v);
                return wrong_type(p, f, &cv);
            }
            char sub_where[256];
            snprintf(sub_where, sizeof sub_where, "%s", p->key);
            hearth_status st = walk_mapping(p, doc, v, f->sub, base, sub_where, cfg);
            if (st) return st;
        } else if (f->kind == K_MODELS) {
            hearth_status st = walk_models(p, doc, v, cfg);
            if (st) return st;
        } else {
            cfg_value cv = node_value(v);
            hearth_status st = set_field(p, f, base, &cv);
            if (st) return st;
            if (f->kind == K_MODEL_REF && fields == k_top_fields) p->default_model_at = v->start_mark;
            if (f->kind == K_MODEL_REF && fields == k_model_fields)
                p->draft_at[cfg->n_models - 1] = v->start_mark;
        }
    }
    return HEARTH_OK;
}

static hearth_status walk_models(cfg_parse *p, yaml_document_t *doc, yaml_node_t *n, hearth_config *cfg) {
    if (node_is_null(n)) return HEARTH_OK;
    if (n->type != YAML_MAPPING_NODE) {
        cfg_value cv = node_value(n);
        return wrong_type(p, find_field(k_top_fields, "models"), &cv);
    }
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key),
                    *v = yaml_document_get_node(doc, pair->value);
        const char *name = key_text(p, k, "models");
        if (!name) return HEARTH_ERR_FORMAT;
        if (!*name) return fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "models: a model name cannot be empty");
        set_key(p, "models", name);
        for (int i = 0; i < cfg->n_models; i++)
            if (!strcmp(cfg->models[i].name, name))
                return fail(p, &k->start_mark, HEARTH_ERR_FORMAT,
                            "%s: duplicate model (first defined at line %zu, column %zu)", p->key,
                            p->model_at[i].line + 1, p->model_at[i].column + 1);
        if (cfg->n_models == p->marks_cap) {
            int cap = p->marks_cap ? p->marks_cap * 2 : 8;
            hearth_config_model *m = realloc(cfg->models, (size_t)cap * sizeof *m);
            if (m) cfg->models = m;
            yaml_mark_t *a = realloc(p->model_at, (size_t)cap * sizeof *a);
            if (a) p->model_at = a;
            yaml_mark_t *b = realloc(p->draft_at, (size_t)cap * sizeof *b);
            if (b) p->draft_at = b;
            if (!m || !a || !b) return nomem(p, &k->start_mark);
            p->marks_cap = cap;
        }
        hearth_config_model *m = &cfg->models[cfg->n_models];
        model_init(m);
        if (!(m->name = strdup(name))) return nomem(p, &k->start_mark);
        p->model_at[cfg->n_models] = k->start_mark;
        cfg->n_models++;
        char where[256];
        snprintf(where, sizeof where, "%s", p->key);

        if (!v) return fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "%s: missing value", where);
        if (v->type == YAML_MAPPING_NODE) {
            hearth_status st = walk_mapping(p, doc, v, k_model_fields, m, where, cfg);
            if (st) return st;
        } else if (v->type == YAML_SCALAR_NODE && !node_is_null(v)) { /* NAME: PATH shorthand */
            set_key(p, where, "path");
            cfg_value cv = node_value(v);
            hearth_status st = set_field(p, find_field(k_model_fields, "path"), m, &cv);
            if (st) return st;
        } else {
            cfg_value cv = node_value(v);
            char d[80];
            return fail(p, cv.at, HEARTH_ERR_FORMAT,
                        "%s: expected the model's settings (a mapping with 'path') or its GGUF path, got %s",
                        where, describe(d, sizeof d, &cv));
        }
        if (!m->path)
            return fail(p, &k->start_mark, HEARTH_ERR_FORMAT, "%s: no 'path' given (the model's GGUF file)",
                        where);
    }
    return HEARTH_OK;
}

/* "a, b, c" (as many as fit) for messages about unknown model names. */
static const char *model_names(char *buf, size_t cap, const hearth_config *cfg) {
    if (!cfg->n_models) {
        snprintf(buf, cap, "no models are configured");
        return buf;
    }
    size_t o = (size_t)snprintf(buf, cap, "configured:");
    for (int i = 0; i < cfg->n_models && o < cap; i++) {
        char q[48];
        o += (size_t)snprintf(buf + o, cap - o, "%s %s", i ? "," : "",
                              quote_str(q, sizeof q, cfg->models[i].name));
    }
    return buf;
}

static int model_index(const hearth_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_models; i++)
        if (!strcmp(cfg->models[i].name, name)) return i;
    return -1;
}

/* default_model and every draft must name a configured model (not itself). */
static hearth_status check_refs(cfg_parse *p, const hearth_config *cfg) {
    char q[72], names[200];
    if (cfg->default_model && model_index(cfg, cfg->default_model) < 0)
        return fail(p, &p->default_model_at, HEARTH_ERR_FORMAT,
                    "default_model: no model named '%s' in models (%s)",
                    quote_str(q, sizeof q, cfg->default_model), model_names(names, sizeof names, cfg));
    for (int i = 0; i < cfg->n_models; i++) {
        const hearth_config_model *m = &cfg->models[i];
        if (!m->draft) continue;
        set_key(p, "models", m->name);
        if (!strcmp(m->draft, m->name))
            return fail(p, &p->draft_at[i], HEARTH_ERR_FORMAT, "%s.draft: a model cannot be its own draft",
                        p->key);
        if (model_index(cfg, m->draft) < 0)
            return fail(p, &p->draft_at[i], HEARTH_ERR_FORMAT, "%s.draft: no model named '%s' in models (%s)",
                        p->key, quote_str(q, sizeof q, m->draft), model_names(names, sizeof names, cfg));
    }
    return HEARTH_OK;
}

/* ------------------------------------------------------------ loading */

static hearth_status syntax_error(cfg_parse *p, const yaml_parser_t *y, const char *data, size_t n) {
    if (y->error == YAML_MEMORY_ERROR)
        return hearth_error_set(p->err, HEARTH_ERR_NOMEM, "%s: out of memory parsing the config", p->name);
    yaml_mark_t at = y->problem_mark;
    if (y->error == YAML_READER_ERROR) { /* only an offset: count lines ourselves */
        size_t off = y->problem_offset < n ? y->problem_offset : n, line = 0, col = 0;
        for (size_t i = 0; i < off; i++) {
            if (data[i] == '\n')
                line++, col = 0;
            else
                col++;
        }
        at.line = line;
        at.column = col;
        if (y->problem_value != -1)
            return fail(p, &at, HEARTH_ERR_FORMAT, "invalid YAML: %s (0x%X)",
                        y->problem ? y->problem : "bad input", (unsigned)y->problem_value);
    }
    const char *problem = y->problem ? y->problem : "malformed input";
    if (y->context)
        return fail(p, &at, HEARTH_ERR_FORMAT, "invalid YAML: %s (%s that starts at line %zu, column %zu)",
                    problem, y->context, y->context_mark.line + 1, y->context_mark.column + 1);
    return fail(p, &at, HEARTH_ERR_FORMAT, "invalid YAML: %s", problem);
}

static void apply_env(hearth_config *cfg) {
    const char *key = getenv("HEARTH_API_KEY");
    if (key && *key) {
        char *s = strdup(key);
        if (s) put_str(cfg, CFG(server.api_key), s);
    }
}

static hearth_status parse_yaml(cfg_parse *p, const char *data, size_t n, hearth_config *cfg) {
    yaml_parser_t y;
    if (!yaml_parser_initialize(&y))
        return hearth_error_set(p->err, HEARTH_ERR_NOMEM, "%s: out of memory", p->name);
    yaml_parser_set_input_string(&y, (const unsigned char *)(data ? data : ""), data ? n : 0);
    yaml_document_t doc;
    hearth_status st = HEARTH_OK;
    if (!yaml_parser_load(&y, &doc)) {
        st = syntax_error(p, &y, data, n);
        yaml_parser_delete(&y);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) { /* one document only */
        yaml_document_t next;
        if (!yaml_parser_load(&y, &next)) {
            st = syntax_error(p, &y, data, n);
        } else {
            if (yaml_document_get_root_node(&next))
                st = fail(p, &next.start_mark, HEARTH_ERR_FORMAT,
                          "a config holds one YAML document; this is a second one (remove the '---')");
            yaml_document_delete(&next);
        }
    }
    if (!st && root && !node_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            char d[80];
            cfg_value cv = node_value(root);
            st = fail(p, &root->start_mark, HEARTH_ERR_FORMAT,
                      "the top level must be a mapping of settings (key: value lines), got %s",
                      describe(d, sizeof d, &cv));
        } else {
            st = walk_mapping(p, &doc, root, k_top_fields, cfg, "", cfg);
            if (!st) st = check_refs(p, cfg);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&y);
    return st;
}

static hearth_status load_impl(const char *data, size_t n, const char *name, const char *base_dir,
                               hearth_config *out, hearth_error *err) {
    hearth_config_init(out);
    cfg_parse p = {.name = name ? name : "<config>", .base_dir = base_dir, .err = err};
    hearth_status st = parse_yaml(&p, data, n, out);
    free(p.model_at);
    free(p.draft_at);
    if (st) {
        hearth_config_free(out);
        return st;
    }
    apply_env(out);
    return HEARTH_OK;
}

hearth_status hearth_config_load_memory(const char *data, size_t n, const char *name, hearth_config *out,
                                        hearth_error *err) {
    if (!out) return hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_config_load_memory: no output");
    char *dir = NULL;
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (slash) {
        dir = slash == name ? strdup("/") : strndup(name, (size_t)(slash - name));
        if (!dir) {
            hearth_config_init(out);
            return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", name);
        }
    }
    hearth_status st = load_impl(data, n, name, dir, out, err);
    free(dir);
    return st;
}

char *hearth_config_default_path(char *buf, size_t cap) {
    if (!buf || !cap) return NULL;
    int w = -1;
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/') { /* the XDG spec says relative values are ignored */
        w = snprintf(buf, cap, "%s/hearth/config.yaml", xdg);
    } else {
        char pwbuf[4096];
        const char *home = home_dir(pwbuf, sizeof pwbuf);
        if (home) w = snprintf(buf, cap, "%s/.config/hearth/config.yaml", home);
    }
    if (w < 0 || (size_t)w >= cap) { /* never hand out a truncated path */
        buf[0] = '\0';
        return NULL;
    }
    return buf;
}

hearth_status hearth_config_load(const char *path, hearth_config *out, hearth_error *err) {
    if (!out) return hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_config_load: no output");
    hearth_config_init(out);
    char defbuf[4096];
    bool explicit_path = path != NULL;
    if (!path && !(path = hearth_config_default_path(defbuf, sizeof defbuf))) {
        apply_env(out); /* no home directory: nothing to read */
        return HEARTH_OK;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (!explicit_path && (e == ENOENT || e == ENOTDIR)) {
            apply_env(out);
            return HEARTH_OK;
        }
        return hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot open the config file: %s", path, strerror(e));
    }
    struct stat st;
    bool stat_ok = fstat(fd, &st) == 0;
    if (!stat_ok || S_ISDIR(st.st_mode)) {
        int e = errno;
        close(fd);
        return hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot read the config file: %s", path,
                                stat_ok ? "it is a directory" : strerror(e));
    }
    size_t n = 0, cap = 4096;
    char *data = malloc(cap);
    for (;;) {
        if (!data) {
            close(fd);
            return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory reading the config file", path);
        }
        if (n == cap) {
            if (cap >= CONFIG_MAX_BYTES) {
                free(data);
                close(fd);
                return hearth_error_set(err, HEARTH_ERR_FORMAT,
                                        "%s: larger than %u bytes; is this a config file?", path,
                                        CONFIG_MAX_BYTES);
            }
            char *bigger = realloc(data, cap * 2);
            if (!bigger) free(data);
            data = bigger;
            cap *= 2;
            continue;
        }
        ssize_t r = read(fd, data + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(data);
            close(fd);
            return hearth_error_set(err, HEARTH_ERR_IO, "%s: cannot read the config file: %s", path,
                                    strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);

    /* relative paths in the file resolve against its (real) directory */
    char *real = realpath(path, NULL), *dir = NULL;
    if (real) {
        char *slash = strrchr(real, '/');
        dir = slash == real ? strdup("/") : strndup(real, (size_t)(slash - real));
        free(real);
    }
    char *saved = strdup(path);
    hearth_status rc = saved ? load_impl(data, n, path, dir, out, err)
                             : hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", path);
    free(dir);
    free(data);
    if (rc) {
        free(saved);
        return rc;
    }
    out->path = saved;
    return HEARTH_OK;
}

/* ------------------------------------------------------------ queries and overrides */

const hearth_config_model *hearth_config_find_model(const hearth_config *cfg, const char *name) {
    if (!cfg || !cfg->n_models) return NULL;
    if (!name) name = cfg->default_model;
    if (!name) return &cfg->models[0];
    int i = model_index(cfg, name);
    return i < 0 ? NULL : &cfg->models[i];
}

hearth_status hearth_config_set(hearth_config *cfg, const char *key, const char *value, hearth_error *err) {
    if (!cfg || !key || !value)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "hearth_config_set: missing argument");
    cfg_parse p = {.err = err};
    char q[72], s[200];
    snprintf(p.key, sizeof p.key, "%s", quote_str(s, sizeof s, key));
    const field *fields = k_top_fields;
    void *base = cfg;
    const char *name = key;
    hearth_config_model *model = NULL;

    if (!strncmp(key, "models.", 7)) { /* models.NAME.FIELD; NAME may hold dots */
        const char *last = strrchr(key + 7, '.');
        if (!last || last == key + 7)
            return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: expected models.NAME.SETTING", p.key);
        char *mname = strndup(key + 7, (size_t)(last - (key + 7)));
        if (!mname) return hearth_error_set(err, HEARTH_ERR_NOMEM, "%s: out of memory", p.key);
        int i = model_index(cfg, mname);
        free(mname);
        if (i < 0) {
            char names[200];
            return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: no such model (%s)", p.key,
                                    model_names(names, sizeof names, cfg));
        }
        model = &cfg->models[i];
        fields = k_model_fields;
        base = model;
        name = last + 1;
    } else if (strchr(key, '.')) { /* SECTION.FIELD */
        const char *dot = strchr(key, '.');
        const field *sec = NULL;
        for (const field *f = k_top_fields; f->name; f++)
            if (f->kind == K_SECTION && strlen(f->name) == (size_t)(dot - key) &&
                !strncmp(f->name, key, (size_t)(dot - key)))
                sec = f;
        if (!sec) return hearth_error_set(err, HEARTH_ERR_INVALID, "unknown setting '%s'", p.key);
        fields = sec->sub;
        name = dot + 1;
    }
    const field *f = find_field(fields, name);
    if (!f)
        return hearth_error_set(err, HEARTH_ERR_INVALID, "unknown setting '%s' %s", p.key,
                                suggest(s, sizeof s, name, fields));
    if (f->kind == K_SECTION || f->kind == K_MODELS)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "%s is a group of settings; set one of them (e.g. %s.%s)", p.key, p.key,
                                f->sub ? f->sub[0].name : "NAME.path");
    if (f->kind == K_MODEL_REF && *value) {
        char names[200];
        if (model_index(cfg, value) < 0)
            return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: no model named '%s' in models (%s)", p.key,
                                    quote_str(q, sizeof q, value), model_names(names, sizeof names, cfg));
        if (model && !strcmp(model->name, value))
            return hearth_error_set(err, HEARTH_ERR_INVALID, "%s: a model cannot be its own draft", p.key);
    }
    cfg_value v = {.text = value, .len = strlen(value)};
    hearth_status st = set_field(&p, f, base, &v);
    if (st == HEARTH_ERR_FORMAT) { /* a bad value from the caller, not a bad file */
        st = HEARTH_ERR_INVALID;
        if (err) err->code = st;
    }
    return st;
}

hearth_sampling_params hearth_config_sampling(const hearth_config_model *m) {
    return m ? m->sampling : hearth_sampling_defaults();
}
