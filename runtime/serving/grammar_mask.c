/*
 * grammar_mask.c - the per-vocabulary token trie and the allowed-token mask.
 *
 * The trie holds every token's detokenized bytes; its nodes are stored in
 * preorder (built from the byte strings sorted), so a subtree is the index
 * range [i, end[i]) and a walk is one loop: at node i the matcher state of its
 * parent is advanced by the node's byte, and a dead state skips the whole
 * subtree. Most of a 150k vocabulary is cut at the first byte or two. Tokens
 * with identical bytes share a node. A mask depends only on the matcher's
 * state (its stacks and a character begun), so each matcher keeps the masks
 * of its last MASK_CACHE states: inside a JSON string, where almost every
 * token is allowed and the walk is longest, the state repeats token after
 * token and the mask is a copy. Thread-safety: the vocab is immutable
 * after create; the walk's per-depth states live in the matcher.
 */
#include <stdlib.h>
#include <string.h>

#include "grammar_impl.h"

#define TRIE_MAX_DEPTH 512 /* longer tokens (none in real vocabularies) are never allowed */

struct hearth_grammar_vocab {
    int32_t n_vocab;
    uint32_t n_nodes;    /* node 0 is the root (no byte) */
    uint8_t *byte;       /* [n_nodes] */
    uint16_t *depth;     /* [n_nodes] */
    uint32_t *end;       /* [n_nodes] one past the subtree */
    uint32_t *tok_begin; /* [n_nodes + 1] tokens ending at node i: toks[tok_begin[i]..tok_begin[i+1]) */
    int32_t *toks;       /* token ids, grouped by node */
    char *blob;          /* every token's bytes */
    uint32_t *off;       /* [n_vocab + 1] token t's bytes: blob[off[t]..off[t+1]) */
    int32_t *eog;        /* end-of-generation tokens */
    uint32_t n_eog;
    uint16_t max_depth;
};

typedef struct sort_item {
    const char *s;
    uint32_t len;
    int32_t id;
} sort_item;

static int cmp_item(const void *a, const void *b) {
    const sort_item *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

void hearth_grammar_vocab_free(hearth_grammar_vocab *v) {
    if (!v) return;
    free(v->byte);
    free(v->depth);
    free(v->end);
    free(v->tok_begin);
    free(v->toks);
    free(v->blob);
    free(v->off);
    free(v->eog);
    free(v);
}

int32_t hearth_grammar_vocab_n_tokens(const hearth_grammar_vocab *v) {
    return v->n_vocab;
}

/* Token bytes into blob/off; eog list. */
static bool collect_pieces(hearth_grammar_vocab *v, const hearth_tokenizer *t) {
    size_t cap = 1 << 20, n = 0;
    v->blob = malloc(cap);
    v->off = malloc(((size_t)v->n_vocab + 1) * sizeof *v->off);
    v->eog = malloc(16 * sizeof *v->eog);
    if (!v->blob || !v->off || !v->eog) return false;
    char buf[TRIE_MAX_DEPTH + 1];
    for (int32_t id = 0; id < v->n_vocab; id++) {
        v->off[id] = (uint32_t)n;
        if (hearth_tokenizer_is_eog(t, id)) {
            if (v->n_eog < 16) v->eog[v->n_eog++] = id;
            continue;
        }
        int ty = hearth_tokenizer_token_type(t, id);
        if (ty == HEARTH_TOKEN_CONTROL || ty == HEARTH_TOKEN_UNUSED || ty == HEARTH_TOKEN_UNKNOWN) continue;
        size_t k = hearth_tokenizer_piece(t, id, false, buf, sizeof buf);
        if (k > TRIE_MAX_DEPTH) continue;
        if (n + k > cap) {
            cap *= 2;
            char *nb = realloc(v->blob, cap);
            if (!nb) return false;
            v->blob = nb;
        }
        memcpy(v->blob + n, buf, k);
        n += k;
    }
    v->off[v->n_vocab] = (uint32_t)n;
    return true;
}

/* Build the preorder trie from the token ids sorted by bytes. */
static bool build_trie(hearth_grammar_vocab *v, const int32_t *sorted, uint32_t n_sorted) {
    size_t cap = (size_t)v->off[v->n_vocab] + 2;
    v->byte = malloc(cap);
    v->depth = malloc(cap * sizeof *v->depth);
    v->end = malloc(cap * sizeof *v->end);
    v->tok_begin = calloc(cap + 1, sizeof *v->tok_begin);
    v->toks = malloc(((size_t)n_sorted + 1) * sizeof *v->toks);
    uint32_t *path = malloc((TRIE_MAX_DEPTH + 1) * sizeof *path); /* node at each depth on the current path */
    if (!v->byte || !v->depth || !v->end || !v->tok_begin || !v->toks || !path) {
        free(path);
        return false;
    }
    uint32_t nn = 1, nt = 0, plen = 0; /* path[0..plen] */
    path[0] = 0;
    v->depth[0] = 0;
    const char *prev = NULL;
    uint32_t prev_len = 0;
    for (uint32_t k = 0; k < n_sorted; k++) {
        int32_t id = sorted[k];
        const char *s = v->blob + v->off[id];
        uint32_t len = v->off[id + 1] - v->off[id], lcp = 0;
        while (prev && lcp < len && lcp < prev_len && s[lcp] == prev[lcp])
            lcp++;
        if (lcp > plen) lcp = plen;
        while (plen > lcp)
            v->end[path[plen--]] = nn; /* close subtrees that end here */
        for (uint32_t d = lcp; d < len; d++) {
            v->byte[nn] = (uint8_t)s[d];
            v->depth[nn] = (uint16_t)(d + 1);
            v->tok_begin[nn] = nt;
            path[++plen] = nn++;
        }
        v->toks[nt++] = id; /* tokens arrive grouped by node (sorted order) */
        if (len > v->max_depth) v->max_depth = (uint16_t)len;
        prev = s;
        prev_len = len;
    }
    while (plen > 0)
        v->end[path[plen--]] = nn;
    v->end[0] = nn;
    v->n_nodes = nn;
    /* tok_begin[i] was set when node i was created; tokens ending at node i
     * are those from tok_begin[i] up to tok_begin of the next created node. */
    v->tok_begin[nn] = nt;
    free(path);
    return true;
}

hearth_grammar_vocab *hearth_grammar_vocab_create(const hearth_tokenizer *t, hearth_error *err) {
    hearth_grammar_vocab *v = calloc(1, sizeof *v);
    int32_t *sorted = NULL;
    sort_item *items = NULL;
    if (!v) goto oom;
    v->n_vocab = hearth_tokenizer_n_vocab(t);
    if (!collect_pieces(v, t)) goto oom;
    sorted = malloc((size_t)v->n_vocab * sizeof *sorted);
    items = malloc((size_t)v->n_vocab * sizeof *items);
    if (!sorted || !items) goto oom;
    uint32_t n = 0;
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->off[id + 1] > v->off[id])
            items[n++] = (sort_item){v->blob + v->off[id], v->off[id + 1] - v->off[id], id};
    qsort(items, n, sizeof *items, cmp_item);
    for (uint32_t i = 0; i < n; i++)
        sorted[i] = items[i].id;
    if (!build_trie(v, sorted, n)) goto oom;
    free(items);
    free(sorted);
    return v;
oom:
    free(items);
    free(sorted);
    hearth_grammar_vocab_free(v);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "grammar: out of memory building the token trie");
    return NULL;
}

/* ---------------------------------------------------------------- mask */

static bool ensure_levels(hearth_grammar_matcher *m, uint32_t n) {
    if (m->n_levels >= n) return true;
    gstacks *nl = realloc(m->levels, n * sizeof *nl);
    if (!nl) return false;
    memset(nl + m->n_levels, 0, (n - m->n_levels) * sizeof *nl);
    m->levels = nl;
    m->n_levels = n;
    return true;
}

/* ---------------------------------------------------------------- mask cache */

#define MASK_CACHE 8

typedef struct mask_entry {
    uint64_t hash;
    uint32_t *key; /* the stacks' words, then n_stacks and the utf8 state */
    uint32_t n_key, cap_key;
    uint32_t *bits;
    int n_allowed;
    uint64_t used; /* last use, for replacement */
    bool valid;
} mask_entry;

struct mask_cache {
    const hearth_grammar_vocab *v; /* the vocabulary the masks are for */
    mask_entry e[MASK_CACHE];
    uint64_t clock;
    uint32_t *key; /* the current state's key */
    uint32_t cap_key;
};

static void mask_cache_free(struct mask_cache *c) {
    if (!c) return;
    for (int i = 0; i < MASK_CACHE; i++) {
        free(c->e[i].key);
        free(c->e[i].bits);
    }
    free(c->key);
    free(c);
}

/* The state's key words into c->key; their count, 0 when out of memory. */
static uint32_t state_key(struct mask_cache *c, const hearth_grammar_matcher *m, uint64_t *hash) {
    uint32_t n = m->cur.n_w + 4;
    if (n > c->cap_key) {
        uint32_t *k = realloc(c->key, n * sizeof *k);
        if (!k) return 0;
        c->key = k;
        c->cap_key = n;
    }
    if (m->cur.n_w) memcpy(c->key, m->cur.w, m->cur.n_w * sizeof *c->key);
    c->key[m->cur.n_w] = m->cur.n_stacks;
    c->key[m->cur.n_w + 1] = m->u.cp;
    c->key[m->cur.n_w + 2] = m->u.rem;
    c->key[m->cur.n_w + 3] = m->u.len;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ c->key[i]) * 0x100000001b3ull;
    *hash = h;
    return n;
}

static int mask_walk(hearth_grammar_matcher *m, const hearth_grammar_vocab *v, uint32_t *allowed);

int hearth_grammar_matcher_mask(hearth_grammar_matcher *m, const hearth_grammar_vocab *v, uint32_t *allowed) {
    size_t words = ((size_t)v->n_vocab + 31) / 32;
    if (!m->cache && (m->cache = calloc(1, sizeof *m->cache))) m->cache_free = mask_cache_free;
    struct mask_cache *c = m->cache;
    if (c && c->v != v) { /* another vocabulary: forget the masks */
        for (int i = 0; i < MASK_CACHE; i++)
            c->e[i].valid = false;
        c->v = v;
    }
    uint64_t h = 0;
    uint32_t n = c ? state_key(c, m, &h) : 0;
    if (n) {
        for (int i = 0; i < MASK_CACHE; i++) {
            mask_entry *e = &c->e[i];
            if (e->valid && e->hash == h && e->n_key == n && !memcmp(e->key, c->key, n * sizeof *c->key)) {
                memcpy(allowed, e->bits, words * sizeof *allowed);
                e->used = ++c->clock;
                return e->n_allowed;
            }
        }
    }
    int n_allowed = mask_walk(m, v, allowed);
    if (!n) return n_allowed;
    mask_entry *slot = &c->e[0];
    for (int i = 1; i < MASK_CACHE; i++)
        if (!c->e[i].valid || (slot->valid && c->e[i].used < slot->used)) slot = &c->e[i];
    if (!slot->bits) slot->bits = malloc(words * sizeof *slot->bits);
    if (n > slot->cap_key) {
        uint32_t *k = realloc(slot->key, n * sizeof *k);
        if (k) {
            slot->key = k;
            slot->cap_key = n;
        }
    }
    if (!slot->bits || n > slot->cap_key) return n_allowed; /* out of memory: just not cached */
    memcpy(slot->key, c->key, n * sizeof *c->key);
    memcpy(slot->bits, allowed, words * sizeof *allowed);
    slot->n_key = n;
    slot->hash = h;
    slot->n_allowed = n_allowed;
    slot->used = ++c->clock;
    slot->valid = true;
    return n_allowed;
}

/* The mask by walking the trie from the matcher's state. */
static int mask_walk(hearth_grammar_matcher *m, const hearth_grammar_vocab *v, uint32_t *allowed) {
    memset(allowed, 0, (((size_t)v->n_vocab + 31) / 32) * sizeof *allowed);
    int n_allowed = 0;
    if (hearth_grammar_matcher_can_end(m)) {
        for (uint32_t i = 0; i < v->n_eog; i++) {
            allowed[v->eog[i] / 32] |= 1u << (v->eog[i] % 32);
            n_allowed++;
        }
    }
    if (!ensure_levels(m, (uint32_t)v->max_depth + 1)) return n_allowed;
    const gstacks *S[TRIE_MAX_DEPTH + 1];
    gutf8 U[TRIE_MAX_DEPTH + 1];
    S[0] = &m->cur;
    U[0] = m->u;
    for (uint32_t i = 1; i < v->n_nodes;) {
        uint32_t d = v->depth[i];
        gutf8 u = U[d - 1];
        int r = gutf8_step(&u, v->byte[i]);
        if (r < 0) {
            i = v->end[i];
            continue;
        }
        if (r == 0) {
            uint32_t lo, hi;
            gutf8_range(&u, &lo, &hi);
            if (!gram_range_possible(m->g, S[d - 1], lo, hi)) {
                i = v->end[i];
                continue;
            }
            S[d] = S[d - 1];
        } else {
            gstacks *L = &m->levels[d];
            if (!gram_advance(m->g, S[d - 1], u.cp, L, &m->sc) || L->n_stacks == 0) {
                i = v->end[i];
                continue;
            }
            S[d] = L;
        }
        U[d] = u;
        for (uint32_t k = v->tok_begin[i]; k < v->tok_begin[i + 1]; k++) {
            int32_t id = v->toks[k];
            allowed[id / 32] |= 1u << (id % 32);
            n_allowed++;
        }
        i++;
    }
    return n_allowed;
}

/* Feed token's bytes (keep: as accept_bytes, else as allows_bytes); an
 * end-of-generation token is taken iff the sentence can end; an id out of
 * range or a token without text never is. */
static bool feed_token(hearth_grammar_matcher *m, const hearth_grammar_vocab *v, int32_t token, bool keep) {
    if (token < 0 || token >= v->n_vocab) return false;
    for (uint32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == token) return hearth_grammar_matcher_can_end(m);
    uint32_t len = v->off[token + 1] - v->off[token];
    const char *b = v->blob + v->off[token];
    return len && (keep ? hearth_grammar_matcher_accept_bytes(m, b, len)
                        : hearth_grammar_matcher_allows_bytes(m, b, len));
}

bool hearth_grammar_matcher_accept_token(hearth_grammar_matcher *m, const hearth_grammar_vocab *v,
                                         int32_t token) {
    return feed_token(m, v, token, true);
}

bool hearth_grammar_matcher_allows_token(hearth_grammar_matcher *m, const hearth_grammar_vocab *v,
                                         int32_t token) {
    return feed_token(m, v, token, false);
}
