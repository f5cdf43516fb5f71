/*
 * pretokenize.c - llama.cpp's BPE pre-tokenizer regexes as scanners over
 * code points (see pretokenize.h for the contract).
 *
 * Ownership: tokenizer engineer. Each call allocates its own scratch (code
 * points, class flags, two piece lists) and frees it before returning.
 *
 * How a regex becomes a scanner: a "pass" turns each piece [b, e) of the
 * previous pass into pieces covering it exactly. Simple regexes are written
 * as a match function (longest match at a position, leftmost position first,
 * as std::regex_iterator finds them; the text between matches becomes a
 * piece of its own). The GPT-2 and Llama-3 family regexes are written as
 * single scanners that try the alternatives in the regex's order, the way
 * llama.cpp's unicode_regex_split_custom_* do.
 */
#include "pretokenize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#include "core/grow.h"

/* ---------------------------------------------------------------- piece lists */

typedef struct span {
    uint32_t b, e; /* [b, e) in code points */
} span;

typedef struct span_list {
    span *v;
    size_t n, cap;
    bool oom;
} span_list;

static void spans_push(span_list *l, size_t b, size_t e) {
    if (b >= e || l->oom) return;
    if (!hearth_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) {
        l->oom = true;
        return;
    }
    l->v[l->n++] = (span){(uint32_t)b, (uint32_t)e};
}

/* The text being split: code points and their class flags. Reads outside
 * the current piece give cpt OUT and flags 0, like llama.cpp's _get_cpt. */
typedef struct scan {
    const uint32_t *cpt;
    const uint16_t *fl;
    size_t b, e; /* current piece */
} scan;

#define OUT 0xFFFFFFFFu

static inline uint32_t cp_at(const scan *s, size_t i) {
    return i >= s->b && i < s->e ? s->cpt[i] : OUT;
}
static inline unsigned fl_at(const scan *s, size_t i) {
    return i >= s->b && i < s->e ? s->fl[i] : 0;
}

enum {
    F_N = HEARTH_UCD_NUMBER,
    F_L = HEARTH_UCD_LETTER,
    F_P = HEARTH_UCD_PUNCT,
    F_M = HEARTH_UCD_MARK,
    F_WS = HEARTH_UCD_WHITESPACE
};

static inline uint32_t ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* ---------------------------------------------------------------- GPT-2 regex */

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 * A lone whitespace before a non-space matches nothing and becomes its own
 * piece, which is what the regex iterator's gap would give too. */
static void split_gpt2(scan *s, span_list *out) {
    size_t pos = s->b;
    while (pos < s->e) {
        const uint32_t c = cp_at(s, pos);
        const unsigned f = fl_at(s, pos);
        if (c == '\'' && pos + 1 < s->e) {
            const uint32_t c1 = cp_at(s, pos + 1);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                spans_push(out, pos, pos + 2);
                pos += 2;
                continue;
            }
            if (pos + 2 < s->e) {
                const uint32_t c2 = cp_at(s, pos + 2);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    spans_push(out, pos, pos + 3);
                    pos += 3;
                    continue;
                }
            }
        }
        const size_t start = pos;
        unsigned f2 = c == ' ' ? fl_at(s, pos + 1) : f;
        if (f2 & F_L) { /*  ?\p{L}+ */
            pos += c == ' ';
            while (fl_at(s, pos) & F_L)
                pos++;
            spans_push(out, start, pos);
            continue;
        }
        if (f2 & F_N) { /*  ?\p{N}+ */
            pos += c == ' ';
            while (fl_at(s, pos) & F_N)
                pos++;
            spans_push(out, start, pos);
            continue;
        }
        if (!(f2 & (F_WS | F_L | F_N)) && f2) { /*  ?[^\s\p{L}\p{N}]+ */
            pos += c == ' ';
            for (unsigned g = fl_at(s, pos); !(g & (F_WS | F_L | F_N)) && g; g = fl_at(s, pos))
                pos++;
            spans_push(out, start, pos);
            continue;
        }
        size_t n_ws = 0;
        while (fl_at(s, pos + n_ws) & F_WS)
            n_ws++;
        if (n_ws > 1 && cp_at(s, pos + n_ws) != OUT) { /* \s+(?!\S): leave the last one */
            pos += n_ws - 1;
        } else if (n_ws > 0) {
            pos += n_ws;
        } else {
            pos++;
        }
        spans_push(out, start, pos);
    }
}

/* ---------------------------------------------------------------- Llama-3 / Qwen2 regex */

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * marks: Qwen3.5's variant, where letters are [\p{L}\p{M}] and marks leave
 * the "other" class. */
static void split_llama3(scan *s, span_list *out, unsigned max_digits, bool marks) {
    const unsigned LET = marks ? (F_L | F_M) : F_L;
    size_t pos = s->b;
    while (pos < s->e) {
        const uint32_t c = cp_at(s, pos);
        const unsigned f = fl_at(s, pos);
        const size_t start = pos;
        if (c == '\'' && pos + 1 < s->e) { /* contractions, case-insensitive */
            const uint32_t c1 = ascii_lower(cp_at(s, pos + 1));
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                spans_push(out, pos, pos + 2);
                pos += 2;
                continue;
            }
            if (pos + 2 < s->e) {
                const uint32_t c2 = ascii_lower(cp_at(s, pos + 2));
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    spans_push(out, pos, pos + 3);
                    pos += 3;
                    continue;
                }
            }
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || (f & F_N)) && ((f & LET) || (fl_at(s, pos + 1) & LET))) {
            pos++;
            while (fl_at(s, pos) & LET)
                pos++;
            spans_push(out, start, pos);
            continue;
        }
        if (f & F_N) { /* \p{N}{1,max} */
            size_t ini = pos;
            while (fl_at(s, pos) & F_N) {
                if (++pos - ini >= max_digits) {
                    spans_push(out, ini, pos);
                    ini = pos;
                }
            }
            spans_push(out, ini, pos);
            continue;
        }
        /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
        const unsigned OTHER_STOP = F_WS | LET | F_N;
        unsigned f2 = c == ' ' ? fl_at(s, pos + 1) : f;
        if (!(f2 & OTHER_STOP) && f2) {
            pos += c == ' ';
            for (unsigned g = fl_at(s, pos); !(g & OTHER_STOP) && g; g = fl_at(s, pos))
                pos++;
            for (uint32_t c2 = cp_at(s, pos); c2 == '\r' || c2 == '\n'; c2 = cp_at(s, pos))
                pos++;
            spans_push(out, start, pos);
            continue;
        }
        size_t n_ws = 0, last_eol_end = 0;
        while (fl_at(s, pos + n_ws) & F_WS) {
            const uint32_t c2 = cp_at(s, pos + n_ws);
            if (c2 == '\r' || c2 == '\n') last_eol_end = pos + n_ws + 1;
            n_ws++;
        }
        if (last_eol_end > 0) { /* \s*[\r\n]+ */
            pos = last_eol_end;
        } else if (n_ws > 1 && cp_at(s, pos + n_ws) != OUT) { /* \s+(?!\S) */
            pos += n_ws - 1;
        } else if (n_ws > 0) { /* \s+ */
            pos += n_ws;
        } else { /* nothing matches: a piece of one code point */
            pos++;
        }
        spans_push(out, start, pos);
    }
}

/* ---------------------------------------------------------------- simple regexes */

typedef enum pass {
    PASS_GPT2,
    PASS_LLAMA3,
    PASS_QWEN2,
    PASS_QWEN35,
    PASS_PUNCT_RUN,    /* [\p{P}$+<=>^~|]+ */
    PASS_PUNCT_RUN_BT, /* [\p{P}$+<=>^~|`]+ */
    PASS_NUM_RUN,      /* \p{N}+ */
    PASS_NUM_ONE,      /* \p{N} */
    PASS_DIGIT3,       /* [0-9][0-9][0-9] */
    PASS_EOL,          /* [\r\n] */
    PASS_DS_LETTERS,   /* \s?[deepseek cased letters]+ */
    PASS_DS_PUNCT,     /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
    PASS_TRAILING_WS,  /* \s+$ */
    PASS_CJK,          /* [一-龥ࠀ-一가-퟿]+ */
    PASS_LETTERS,      /* \s?\p{L}+ */
    PASS_PUNCTS,       /* \s?\p{P}+ */
    PASS_PORO,         /*  ?[^(\s|.,!?…。，、।۔،)]+ */
} pass;

static bool in_class(pass p, const scan *s, size_t i) {
    const uint32_t c = cp_at(s, i);
    const unsigned f = fl_at(s, i);
    if (c == OUT) return false;
    switch (p) {
    case PASS_PUNCT_RUN_BT:
        if (c == '`') return true;
        /* fall through */
    case PASS_PUNCT_RUN:
        return (f & F_P) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
               c == '~' || c == '|';
    case PASS_NUM_RUN:
    case PASS_NUM_ONE: return f & F_N;
    case PASS_DIGIT3: return c >= '0' && c <= '9';
    case PASS_EOL: return c == '\r' || c == '\n';
    case PASS_DS_LETTERS: return hearth_unicode_in_set(HEARTH_USET_DEEPSEEK_LETTERS, c);
    case PASS_DS_PUNCT: return hearth_unicode_in_set(HEARTH_USET_DEEPSEEK_PUNCT, c);
    case PASS_CJK: return hearth_unicode_in_set(HEARTH_USET_CJK, c);
    case PASS_LETTERS: return f & F_L;
    case PASS_PUNCTS: return f & F_P;
    case PASS_PORO: return !(f & F_WS) && !hearth_unicode_in_set(HEARTH_USET_PORO_EXCLUDED, c);
    default: return false;
    }
}

/* End of the match starting exactly at pos, or 0 when none does. */
static size_t match_at(pass p, const scan *s, size_t pos) {
    size_t q = pos;
    switch (p) {
    case PASS_NUM_ONE:
    case PASS_EOL: return in_class(p, s, pos) ? pos + 1 : 0;
    case PASS_DIGIT3:
        return in_class(p, s, pos) && in_class(p, s, pos + 1) && in_class(p, s, pos + 2) ? pos + 3 : 0;
    case PASS_PUNCT_RUN:
    case PASS_PUNCT_RUN_BT:
    case PASS_NUM_RUN:
    case PASS_CJK:
        while (in_class(p, s, q))
            q++;
        return q > pos ? q : 0;
    case PASS_DS_LETTERS:
    case PASS_DS_PUNCT:
    case PASS_LETTERS:
    case PASS_PUNCTS:
    case PASS_PORO: {
        /* optional leading \s (or ' ' for poro), then one or more of the class;
         * the optional part is tried first, as a greedy regex would */
        const bool lead = p == PASS_PORO ? cp_at(s, pos) == ' ' : (fl_at(s, pos) & F_WS) != 0;
        if (lead && in_class(p, s, pos + 1))
            q = pos + 1;
        else if (!in_class(p, s, pos))
            return 0;
        while (in_class(p, s, q))
            q++;
        return q;
    }
    default: return 0;
    }
}

static void split_simple(pass p, scan *s, span_list *out) {
    if (p == PASS_TRAILING_WS) { /* the maximal whitespace run ending the piece */
        size_t t = s->e;
        while (t > s->b && (fl_at(s, t - 1) & F_WS))
            t--;
        spans_push(out, s->b, t);
        spans_push(out, t, s->e);
        return;
    }
    size_t pos = s->b, gap = s->b;
    while (pos < s->e) {
        size_t end = match_at(p, s, pos);
        if (end) {
            spans_push(out, gap, pos);
            spans_push(out, pos, end);
            pos = gap = end;
        } else {
            pos++;
        }
    }
    spans_push(out, gap, s->e);
}

static void run_pass(pass p, scan *s, span_list *out) {
    switch (p) {
    case PASS_GPT2: split_gpt2(s, out); break;
    case PASS_LLAMA3: split_llama3(s, out, 3, false); break;
    case PASS_QWEN2: split_llama3(s, out, 1, false); break;
    case PASS_QWEN35: split_llama3(s, out, 1, true); break;
    default: split_simple(p, s, out); break;
    }
}

/* ---------------------------------------------------------------- the kinds */

typedef struct kind_def {
    const char *name;
    pass passes[6];
    size_t n;
} kind_def;

static const kind_def KINDS[] = {
    [HEARTH_PRETOK_DEFAULT] = {"default", {PASS_PUNCT_RUN, PASS_GPT2, PASS_NUM_RUN, PASS_DIGIT3}, 4},
    [HEARTH_PRETOK_GPT2] = {"gpt2", {PASS_GPT2}, 1},
    [HEARTH_PRETOK_LLAMA3] = {"llama3", {PASS_LLAMA3}, 1},
    [HEARTH_PRETOK_QWEN2] = {"qwen2", {PASS_QWEN2}, 1},
    [HEARTH_PRETOK_QWEN35] = {"qwen35", {PASS_QWEN35}, 1},
    [HEARTH_PRETOK_DEEPSEEK_LLM] = {"deepseek-llm",
                                    {PASS_EOL, PASS_DS_LETTERS, PASS_DS_PUNCT, PASS_TRAILING_WS, PASS_CJK,
                                     PASS_NUM_RUN},
                                    6},
    [HEARTH_PRETOK_DEEPSEEK_CODER] = {"deepseek-coder",
                                      {PASS_EOL, PASS_LETTERS, PASS_PUNCTS, PASS_CJK, PASS_NUM_ONE},
                                      5},
    [HEARTH_PRETOK_FALCON] = {"falcon", {PASS_PUNCT_RUN_BT, PASS_GPT2, PASS_DIGIT3}, 3},
    [HEARTH_PRETOK_STARCODER] = {"starcoder", {PASS_NUM_ONE, PASS_GPT2}, 2},
    [HEARTH_PRETOK_PORO] = {"poro", {PASS_PORO}, 1},
};

const char *hearth_pretok_name(hearth_pretok kind) {
    if ((size_t)kind >= sizeof KINDS / sizeof KINDS[0]) return "unknown";
    return KINDS[kind].name;
}

hearth_status hearth_pretokenize(hearth_pretok kind, const char *text, size_t len, hearth_pretok_fn fn,
                                 void *user) {
    if ((size_t)kind >= sizeof KINDS / sizeof KINDS[0]) kind = HEARTH_PRETOK_DEFAULT;
    if (len == 0) return HEARTH_OK;
    if (len > UINT32_MAX / 4) return HEARTH_ERR_NOMEM;
    const kind_def *k = &KINDS[kind];
    hearth_status st = HEARTH_OK;

    uint32_t *cpt = malloc(len * sizeof *cpt);
    uint16_t *fl = malloc(len * sizeof *fl);
    char *piece = malloc(len * 4 > 4 ? len * 4 : 4);
    span_list a = {0}, b = {0};
    if (!cpt || !fl || !piece) {
        st = HEARTH_ERR_NOMEM;
        goto done;
    }
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t adv;
        cpt[n] = hearth_utf8_decode(text + off, len - off, &adv);
        fl[n] = (uint16_t)hearth_unicode_flags(cpt[n]);
        n++;
        off += adv;
    }

    spans_push(&a, 0, n);
    for (size_t i = 0; i < k->n; i++) {
        b.n = 0;
        for (size_t j = 0; j < a.n; j++) {
            scan s = {cpt, fl, a.v[j].b, a.v[j].e};
            run_pass(k->passes[i], &s, &b);
        }
        if (a.oom || b.oom) {
            st = HEARTH_ERR_NOMEM;
            goto done;
        }
        span_list t = a;
        a = b;
        b = t;
    }

    for (size_t j = 0; j < a.n; j++) {
        size_t m = 0;
        for (uint32_t i = a.v[j].b; i < a.v[j].e; i++)
            m += hearth_utf8_encode(cpt[i], piece + m);
        if (!fn(user, piece, m)) {
            st = HEARTH_ERR_CANCELLED;
            break;
        }
    }
done:
    free(cpt);
    free(fl);
    free(piece);
    free(a.v);
    free(b.v);
    return st;
}
