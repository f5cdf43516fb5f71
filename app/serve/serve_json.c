/*
 * serve_json.c - JSON values appended to a strbuf, and typed readers for the
 * fields of JSON request bodies (see serve.h).
 *
 * Owner: the serve subsystem. Parsing itself is cJSON's; this file only
 * checks types and ranges so every 400 names the offending field.
 * Invariants: serve_add_json follows strbuf's rules (core/strbuf.h): a value
 * that cannot be printed sets oom and appends nothing.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* ---------------------------------------------------------------- JSON output */

void serve_add_json(strbuf *b, const cJSON *v) {
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        b->oom = true;
        return;
    }
    strbuf_adds(b, s);
    free(s);
}

/* ---------------------------------------------------------------- typed fields */

static const cJSON *field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

bool sj_number(const cJSON *o, const char *key, double lo, double hi, double *out, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be a number between %g and %g", key, lo, hi);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

bool sj_float(const cJSON *o, const char *key, double lo, double hi, float *out, sj_err *e) {
    double d = *out;
    if (!sj_number(o, key, lo, hi, &d, e)) return false;
    *out = (float)d;
    return true;
}

bool sj_int(const cJSON *o, const char *key, long lo, long hi, int *out, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be a whole number between %ld and %ld", key, lo, hi);
        return false;
    }
    *out = (int)v->valuedouble;
    return true;
}

bool sj_u64(const cJSON *o, const char *key, uint64_t *out, bool *given, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9.0e18) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be a whole number", key);
        return false;
    }
    /* negative seeds (llama.cpp uses -1 for "random") wrap like a C cast */
    *out = v->valuedouble < 0 ? (uint64_t)(int64_t)v->valuedouble : (uint64_t)v->valuedouble;
    if (given) *given = v->valuedouble >= 0;
    return true;
}

bool sj_bool(const cJSON *o, const char *key, bool *out, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsBool(v)) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be true or false", key);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

bool sj_string(const cJSON *o, const char *key, const char **out, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsString(v)) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be a string", key);
        return false;
    }
    *out = v->valuestring;
    return true;
}

/* A Go duration ("5m", "1h30m", "-1s", "250ms") or a plain number of seconds,
 * as Ollama's keep_alive takes it; seconds in *out (negative: forever). */
bool serve_parse_duration(const char *s, double *out) {
    static const struct {
        const char *unit;
        double secs;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3},
                 {"s", 1},     {"m", 60},    {"h", 3600}};
    char *end;
    double sign = 1, total = 0;
    if (*s == '-' || *s == '+') sign = *s++ == '-' ? -1 : 1;
    if (!*s) return false;
    double v = strtod(s, &end);
    if (end != s && !*end) return *out = sign * v, isfinite(v); /* "3600" */
    while (*s) {
        v = strtod(s, &end);
        if (end == s || !isfinite(v) || v < 0) return false;
        s = end;
        size_t best = 0;
        double mul = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            const size_t n = strlen(units[i].unit);
            if (n > best && !strncmp(s, units[i].unit, n)) best = n, mul = units[i].secs;
        }
        if (!best) return false;
        total += v * mul;
        s += best;
    }
    *out = sign * total;
    return true;
}

bool sj_duration(const cJSON *o, const char *key, double *out, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return *out = v->valuedouble, true;
    if (cJSON_IsString(v) && serve_parse_duration(v->valuestring, out)) return true;
    snprintf(e->msg, sizeof e->msg,
             "'%s' must be a duration such as \"5m\", \"1h\" or \"-1\", or a number of seconds", key);
    return false;
}

bool sj_stop(const cJSON *o, const char *key, const char **stops, int max, int *n, sj_err *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (cJSON_IsString(v)) {
        *n = 0;
        if (v->valuestring[0]) stops[(*n)++] = v->valuestring;
        return true;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > max) {
        snprintf(e->msg, sizeof e->msg, "'%s' must be a string or an array of at most %d strings", key, max);
        return false;
    }
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) {
            snprintf(e->msg, sizeof e->msg, "'%s' must be a string or an array of strings", key);
            return false;
        }
        if (it->valuestring[0]) stops[(*n)++] = it->valuestring;
    }
    return true;
}

/* ---------------------------------------------------------------- sampling fields */

bool serve_parse_sampling(const cJSON *o, hearth_sampling_params *sp, sj_err *e) {
    bool seed_given = false;
    uint64_t seed = sp->seed;
    if (!sj_float(o, "temperature", 0, 100, &sp->temperature, e) ||
        !sj_float(o, "top_p", 0, 1, &sp->top_p, e) || !sj_int(o, "top_k", 0, 1000000, &sp->top_k, e) ||
        !sj_float(o, "min_p", 0, 1, &sp->min_p, e) ||
        !sj_float(o, "presence_penalty", -2, 2, &sp->presence_penalty, e) ||
        !sj_float(o, "frequency_penalty", -2, 2, &sp->frequency_penalty, e) ||
        !sj_float(o, "repeat_penalty", 0, 10, &sp->repeat_penalty, e) ||
        !sj_int(o, "repeat_last_n", -1, 1 << 20, &sp->penalty_last_n, e) ||
        !sj_u64(o, "seed", &seed, &seed_given, e))
        return false;
    if (seed_given) sp->seed = seed;
    /* mirostat: Continue sends it when configured; 0 (off) is what Hearth
     * does, any other mode is a 400 rather than a silent ignore */
    const cJSON *mi = field(o, "mirostat");
    if (mi && !(cJSON_IsNumber(mi) && mi->valuedouble == 0)) {
        snprintf(e->msg, sizeof e->msg,
                 "'mirostat' sampling is not supported: send 0 (off) or leave it out, and use temperature, "
                 "top_k, top_p or min_p");
        return false;
    }
    return true;
}

void serve_iso_time(char *buf, size_t n, time_t t, long nsec) {
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%09ldZ", base, nsec);
}
