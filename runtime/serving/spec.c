/*
 * spec.c - see spec.h. The n-gram search is a backwards scan (O(n * g) per
 * draft), cheap next to a forward pass for the contexts Hearth runs.
 */
#include "spec.h"

#include <string.h>

const char *hearth_spec_mode_name(hearth_spec_mode m) {
    return m == HEARTH_SPEC_NGRAM ? "ngram" : m == HEARTH_SPEC_DRAFT ? "draft" : "off";
}

bool hearth_spec_mode_parse(const char *s, hearth_spec_mode *out) {
    if (!s) return false;
    if (!strcmp(s, "ngram"))
        *out = HEARTH_SPEC_NGRAM;
    else if (!strcmp(s, "draft"))
        *out = HEARTH_SPEC_DRAFT;
    else if (!strcmp(s, "off"))
        *out = HEARTH_SPEC_OFF;
    else
        return false;
    return true;
}

int hearth_spec_ngram_draft(const int32_t *toks, int n, int ngram_min, int ngram_max, int k_max,
                            int32_t *out) {
    if (ngram_min < 1) ngram_min = 1;
    if (k_max <= 0 || n < ngram_min + 1) return 0;
    for (int g = ngram_max < n - 1 ? ngram_max : n - 1; g >= ngram_min; g--) {
        const int32_t *tail = toks + n - g;
        /* start of the earlier occurrence: latest first, never the tail itself */
        for (int s = n - g - 1; s >= 0; s--) {
            if (memcmp(toks + s, tail, (size_t)g * sizeof *toks)) continue;
            int from = s + g, k = n - from < k_max ? n - from : k_max;
            memcpy(out, toks + from, (size_t)k * sizeof *toks);
            return k;
        }
    }
    return 0;
}

int32_t hearth_spec_accept(const float *p, const float *q, int n_vocab, int32_t draft, double u_accept,
                           double u_resample, bool *accepted) {
    double pd = draft >= 0 && draft < n_vocab ? p[draft] : 0;
    double qd = q ? (draft >= 0 && draft < n_vocab ? q[draft] : 0) : 1.0;
    /* accept with min(1, p/q); q(draft) = 0 cannot have been drafted, treat as accept-if-p>0 */
    bool ok = qd > 0 ? u_accept * qd < pd : pd > 0;
    *accepted = ok;
    if (ok) return draft;
    /* residual r = max(0, p - q); for a point mass it is p without the draft */
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) {
        double qi = q ? q[i] : (i == draft ? 1.0 : 0.0);
        double r = p[i] - qi;
        if (r > 0) sum += r;
    }
    if (sum <= 0) return draft; /* p == q: rejection has probability 0; keep the draft */
    double t = u_resample * sum, acc = 0;
    int32_t last = -1;
    for (int i = 0; i < n_vocab; i++) {
        double qi = q ? q[i] : (i == draft ? 1.0 : 0.0);
        double r = p[i] - qi;
        if (r <= 0) continue;
        acc += r;
        last = i;
        if (t < acc) return i;
    }
    return last;
}

int32_t hearth_spec_draw(const float *p, int n_vocab, double u) {
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += p[i] > 0 ? p[i] : 0;
    if (sum <= 0) return -1;
    double t = u * sum, acc = 0;
    int32_t last = -1;
    for (int i = 0; i < n_vocab; i++) {
        if (p[i] <= 0) continue;
        acc += p[i];
        last = i;
        if (t < acc) return i;
    }
    return last;
}

hearth_spec_ctl hearth_spec_ctl_init(int k_min, int k_max) {
    if (k_min < 1) k_min = 1;
    if (k_max < k_min) k_max = k_min;
    return (hearth_spec_ctl){.k = k_max, .k_min = k_min, .k_max = k_max};
}

void hearth_spec_ctl_update(hearth_spec_ctl *c, int drafted, int accepted) {
    if (drafted <= 0) return;
    if (accepted == drafted && c->k < c->k_max)
        c->k++;
    else if (2 * accepted < drafted && c->k > c->k_min)
        c->k--;
}
