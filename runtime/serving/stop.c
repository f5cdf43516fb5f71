/*
 * stop.c - streaming stop-string matcher; see stop.h.
 *
 * Each feed looks for every stop string in the whole held text (it is
 * short: only what may still start a stop string survives a feed) and, when
 * none is there, keeps back the longest tail that is a proper prefix of some
 * stop string.
 */
#include "stop.h"

#include <stdlib.h>
#include <string.h>

hearth_status hearth_stop_init(hearth_stop *s, const char *const *stop, int n_stop, hearth_error *err) {
    memset(s, 0, sizeof *s);
    if (n_stop <= 0) return HEARTH_OK;
    s->stop = calloc((size_t)n_stop, sizeof *s->stop);
    if (!s->stop) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_stop; i++) {
        if (!stop[i] || !stop[i][0]) continue;
        s->stop[s->n_stop] = strdup(stop[i]);
        if (!s->stop[s->n_stop]) {
            hearth_stop_free(s);
            return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        }
        s->n_stop++;
    }
    return HEARTH_OK;
}

void hearth_stop_free(hearth_stop *s) {
    for (int i = 0; i < s->n_stop; i++)
        free(s->stop[i]);
    free(s->stop);
    strbuf_free(&s->hold);
    memset(s, 0, sizeof *s);
}

/* Bytes of the held text that may go out now; *matched as for feed. */
static size_t stop_release(const hearth_stop *s, bool *matched) {
    *matched = false;
    const char *text = s->hold.p;
    size_t len = s->hold.n;
    if (!s->n_stop) return len;
    if (!len) return 0;
    size_t best = len;
    for (int i = 0; i < s->n_stop; i++) {
        const char *hit = strstr(text, s->stop[i]);
        if (hit && (size_t)(hit - text) <= best) {
            best = (size_t)(hit - text);
            *matched = true;
        }
    }
    if (*matched) return best;
    /* keep back the longest tail that is a proper prefix of some stop string */
    size_t keep = 0;
    for (int i = 0; i < s->n_stop; i++) {
        size_t sl = strlen(s->stop[i]);
        for (size_t k = sl - 1; k > keep; k--)
            if (k <= len && !memcmp(text + len - k, s->stop[i], k)) {
                keep = k;
                break;
            }
    }
    return len - keep;
}

size_t hearth_stop_feed(hearth_stop *s, const char *text, size_t n, bool *matched) {
    if (n) strbuf_add(&s->hold, text, n);
    return stop_release(s, matched);
}

size_t hearth_stop_finish(hearth_stop *s, const char *text, size_t n, bool cut_at_stop) {
    if (n) strbuf_add(&s->hold, text, n);
    if (cut_at_stop && s->n_stop) {
        bool matched;
        size_t out = stop_release(s, &matched);
        if (matched) return out; /* nothing of the stop string goes out */
    }
    return s->hold.n;
}

const char *hearth_stop_text(const hearth_stop *s) {
    return s->hold.p ? s->hold.p : "";
}
size_t hearth_stop_held(const hearth_stop *s) {
    return s->hold.n;
}

void hearth_stop_consume(hearth_stop *s, size_t n) {
    if (!n) return;
    if (n > s->hold.n) n = s->hold.n;
    memmove(s->hold.p, s->hold.p + n, s->hold.n - n);
    s->hold.n -= n;
    s->hold.p[s->hold.n] = 0;
}

void hearth_stop_clear(hearth_stop *s) {
    strbuf_clear(&s->hold);
}
