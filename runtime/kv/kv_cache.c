/*
 * kv_cache.c - paged KV cache; see kv_cache.h for the model and invariants.
 *
 * Free pages sit on a LIFO stack. Each sequence keeps a growable page table
 * and its length; capacity = n_pages_in_table * page_size >= len.
 * hearth_kv_check walks every invariant of kv_cache.h over this state.
 */
#include "kv_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend_impl.h"
#include "core/grow.h"

typedef struct kv_seq {
    bool live;
    int len;
    int32_t *pages;
    int n_pages;
    size_t cap_pages;
} kv_seq;

struct hearth_kv_cache {
    hearth_backend **be; /* [n_layer] */
    hearth_kv_config cfg;
    size_t row_bytes; /* one slot of one layer */
    hearth_tensor *k, *v;
    int *refcount;   /* per page */
    bool *retained;  /* per page: held by the release hook owner */
    bool *immutable; /* per page: copy before writing */
    int32_t *free_stack;
    int n_free;
    kv_seq *seqs;
    int n_seqs;
    size_t cap_seqs;
    hearth_kv_release_hook release_hook;
    void *release_user;
    hearth_kv_reclaim_hook reclaim_hook;
    void *reclaim_user;
};

uint64_t hearth_kv_page_bytes(const hearth_kv_config *cfg) {
    return 2ull * (uint64_t)cfg->n_layer * (uint64_t)cfg->page_size *
           hearth_dtype_row_size(cfg->type, (int64_t)cfg->n_kv_heads * cfg->head_dim);
}

hearth_kv_cache *hearth_kv_create(hearth_backend *b, const hearth_kv_config *cfg, hearth_error *err) {
    if (cfg->page_size <= 0 || cfg->n_pages <= 0 || cfg->n_layer <= 0) {
        hearth_error_set(err, HEARTH_ERR_INVALID,
                         "kv cache: page_size, n_pages and n_layer must be positive");
        return NULL;
    }
    if (cfg->type != HEARTH_F16 && cfg->type != HEARTH_F32 && cfg->type != HEARTH_Q8_0) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED,
                         "kv cache: type %s is not supported (use f16, f32 or q8_0)",
                         hearth_dtype_name(cfg->type));
        return NULL;
    }
    int64_t row = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    if (hearth_dtype_row_size(cfg->type, row) == 0 ||
        (cfg->type == HEARTH_Q8_0 && cfg->head_dim % QK8_0 != 0)) {
        hearth_error_set(err, HEARTH_ERR_UNSUPPORTED, "kv cache: head size %d does not fit %s blocks",
                         cfg->head_dim, hearth_dtype_name(cfg->type));
        return NULL;
    }
    hearth_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) goto oom;
    kv->cfg = *cfg;
    kv->be = malloc((size_t)cfg->n_layer * sizeof *kv->be);
    if (!kv->be) goto oom;
    for (int l = 0; l < cfg->n_layer; l++)
        kv->be[l] = cfg->layer_be && cfg->layer_be[l] ? cfg->layer_be[l] : b;
    kv->cfg.layer_be = kv->be;
    kv->row_bytes = hearth_dtype_row_size(cfg->type, row);
    kv->k = calloc((size_t)cfg->n_layer, sizeof *kv->k);
    kv->v = calloc((size_t)cfg->n_layer, sizeof *kv->v);
    kv->refcount = calloc((size_t)cfg->n_pages, sizeof *kv->refcount);
    kv->retained = calloc((size_t)cfg->n_pages, sizeof *kv->retained);
    kv->immutable = calloc((size_t)cfg->n_pages, sizeof *kv->immutable);
    kv->free_stack = malloc((size_t)cfg->n_pages * sizeof *kv->free_stack);
    if (!kv->k || !kv->v || !kv->refcount || !kv->retained || !kv->immutable || !kv->free_stack) goto oom;
    int64_t rows = (int64_t)cfg->n_pages * cfg->page_size;
    for (int l = 0; l < cfg->n_layer; l++) {
        hearth_tensor *pools[2] = {&kv->k[l], &kv->v[l]};
        for (int i = 0; i < 2; i++) {
            void *mem = kv->be[l]->ops->alloc(kv->be[l], kv->row_bytes * (size_t)rows, err);
            if (!mem) {
                hearth_error_prefix(err, "kv cache (%d pages of %d tokens)", cfg->n_pages, cfg->page_size);
                hearth_kv_free(kv);
                return NULL;
            }
            *pools[i] = hearth_tensor_2d(cfg->type, row, rows, mem);
        }
    }
    /* Push in reverse so page 0 is handed out first. */
    for (int i = cfg->n_pages - 1; i >= 0; i--)
        kv->free_stack[kv->n_free++] = i;
    return kv;
oom:
    hearth_kv_free(kv);
    hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory");
    return NULL;
}

void hearth_kv_free(hearth_kv_cache *kv) {
    if (!kv) return;
    for (int l = 0; l < kv->cfg.n_layer && kv->k && kv->v && kv->be; l++) {
        if (kv->k[l].data) kv->be[l]->ops->dealloc(kv->be[l], kv->k[l].data);
        if (kv->v[l].data) kv->be[l]->ops->dealloc(kv->be[l], kv->v[l].data);
    }
    free(kv->be);
    for (int s = 0; s < kv->n_seqs; s++)
        free(kv->seqs[s].pages);
    free(kv->seqs);
    free(kv->k);
    free(kv->v);
    free(kv->refcount);
    free(kv->retained);
    free(kv->immutable);
    free(kv->free_stack);
    free(kv);
}

const hearth_kv_config *hearth_kv_config_get(const hearth_kv_cache *kv) {
    return &kv->cfg;
}
hearth_tensor *hearth_kv_k(hearth_kv_cache *kv, int layer) {
    return &kv->k[layer];
}
hearth_tensor *hearth_kv_v(hearth_kv_cache *kv, int layer) {
    return &kv->v[layer];
}

/* ------------------------------------------------------------ pages */

void hearth_kv_set_release_hook(hearth_kv_cache *kv, hearth_kv_release_hook hook, void *user) {
    kv->release_hook = hook;
    kv->release_user = user;
}
void hearth_kv_set_reclaim_hook(hearth_kv_cache *kv, hearth_kv_reclaim_hook hook, void *user) {
    kv->reclaim_hook = hook;
    kv->reclaim_user = user;
}

int32_t hearth_kv_page_alloc(hearth_kv_cache *kv) {
    while (kv->n_free == 0) {
        if (!kv->reclaim_hook || !kv->reclaim_hook(kv->reclaim_user)) return -1;
    }
    int32_t p = kv->free_stack[--kv->n_free];
    kv->refcount[p] = 1;
    kv->immutable[p] = false;
    return p;
}

void hearth_kv_page_ref(hearth_kv_cache *kv, int32_t page) {
    assert(page >= 0 && page < kv->cfg.n_pages);
    /* a page on the free list must be allocated, not referenced */
    assert(kv->refcount[page] > 0 || kv->retained[page]);
    kv->refcount[page]++;
    kv->retained[page] = false;
}

int hearth_kv_page_refcount(const hearth_kv_cache *kv, int32_t page) {
    return kv->refcount[page];
}
int hearth_kv_pages_free(const hearth_kv_cache *kv) {
    return kv->n_free;
}

void hearth_kv_page_unref(hearth_kv_cache *kv, int32_t page) {
    assert(page >= 0 && page < kv->cfg.n_pages);
    assert(kv->refcount[page] > 0);
    if (--kv->refcount[page] > 0) return;
    if (kv->release_hook && kv->release_hook(kv->release_user, page)) {
        kv->retained[page] = true;
        return;
    }
    assert(kv->n_free < kv->cfg.n_pages);
    kv->free_stack[kv->n_free++] = page;
}

void hearth_kv_page_release(hearth_kv_cache *kv, int32_t page) {
    assert(page >= 0 && page < kv->cfg.n_pages);
    if (kv->refcount[page] != 0 || !kv->retained[page]) return;
    kv->retained[page] = false;
    assert(kv->n_free < kv->cfg.n_pages);
    kv->free_stack[kv->n_free++] = page;
}

/* Copy one page's slots in every layer (K and V) from src to dst. */
static void page_copy(hearth_kv_cache *kv, int32_t dst, int32_t src) {
    size_t bytes = kv->row_bytes * (size_t)kv->cfg.page_size;
    for (int l = 0; l < kv->cfg.n_layer; l++) {
        kv->be[l]->ops->copy(kv->be[l], (char *)kv->k[l].data + (size_t)dst * bytes,
                             (char *)kv->k[l].data + (size_t)src * bytes, bytes);
        kv->be[l]->ops->copy(kv->be[l], (char *)kv->v[l].data + (size_t)dst * bytes,
                             (char *)kv->v[l].data + (size_t)src * bytes, bytes);
    }
}

/* ------------------------------------------------------------ sequences */

int hearth_kv_seq_create(hearth_kv_cache *kv, hearth_error *err) {
    for (int s = 0; s < kv->n_seqs; s++)
        if (!kv->seqs[s].live) {
            kv->seqs[s].live = true;
            kv->seqs[s].len = 0;
            kv->seqs[s].n_pages = 0;
            return s;
        }
    if (!hearth_grow((void **)&kv->seqs, &kv->cap_seqs, (size_t)kv->n_seqs + 1, sizeof *kv->seqs)) {
        hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory for sequences");
        return -1;
    }
    kv->seqs[kv->n_seqs] = (kv_seq){.live = true};
    return kv->n_seqs++;
}

void hearth_kv_seq_free(hearth_kv_cache *kv, int seq) {
    assert(seq >= 0 && seq < kv->n_seqs);
    kv_seq *s = &kv->seqs[seq];
    if (!s->live) return;
    for (int i = s->n_pages - 1; i >= 0; i--)
        hearth_kv_page_unref(kv, s->pages[i]);
    free(s->pages);
    *s = (kv_seq){0};
}

int hearth_kv_seq_len(const hearth_kv_cache *kv, int seq) {
    return kv->seqs[seq].len;
}

static bool seq_grow_table(kv_seq *s, int need) {
    return hearth_grow((void **)&s->pages, &s->cap_pages, (size_t)need, sizeof *s->pages);
}

hearth_status hearth_kv_seq_reserve(hearth_kv_cache *kv, int seq, int new_len, hearth_error *err) {
    assert(seq >= 0 && seq < kv->n_seqs && kv->seqs[seq].live);
    kv_seq *s = &kv->seqs[seq];
    const int ps = kv->cfg.page_size;
    int need = (new_len + ps - 1) / ps;
    /* Writes start at position s->len: if that falls inside a shared page, copy it first. */
    int first_written = s->len / ps;
    bool cow = new_len > s->len && first_written < s->n_pages &&
               (kv->refcount[s->pages[first_written]] > 1 || kv->immutable[s->pages[first_written]]);
    int extra = (need > s->n_pages ? need - s->n_pages : 0) + (cow ? 1 : 0);
    if (extra == 0) return HEARTH_OK;
    if (!seq_grow_table(s, need)) return hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory");
    int32_t *got = malloc((size_t)extra * sizeof *got);
    if (!got) return hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory");
    for (int i = 0; i < extra; i++) {
        got[i] = hearth_kv_page_alloc(kv);
        if (got[i] < 0) {
            for (int j = 0; j < i; j++)
                hearth_kv_page_unref(kv, got[j]);
            free(got);
            return hearth_error_set(err, HEARTH_ERR_CONTEXT,
                                    "kv cache full: %d more pages of %d tokens needed, %d free of %d",
                                    extra - i, ps, kv->n_free, kv->cfg.n_pages);
        }
    }
    int gi = 0;
    if (cow) {
        int32_t old = s->pages[first_written];
        page_copy(kv, got[gi], old);
        s->pages[first_written] = got[gi++];
        hearth_kv_page_unref(kv, old);
    }
    while (s->n_pages < need)
        s->pages[s->n_pages++] = got[gi++];
    free(got);
    return HEARTH_OK;
}

void hearth_kv_seq_set_len(hearth_kv_cache *kv, int seq, int len) {
    /* only reserved positions may hold data */
    assert(len >= 0 && len <= kv->seqs[seq].n_pages * kv->cfg.page_size);
    kv->seqs[seq].len = len;
}

void hearth_kv_seq_truncate(hearth_kv_cache *kv, int seq, int n) {
    kv_seq *s = &kv->seqs[seq];
    int len = n >= s->len ? 0 : s->len - n;
    int keep = (len + kv->cfg.page_size - 1) / kv->cfg.page_size;
    while (s->n_pages > keep)
        hearth_kv_page_unref(kv, s->pages[--s->n_pages]);
    s->len = len;
}

hearth_status hearth_kv_seq_fork(hearth_kv_cache *kv, int src, int dst, hearth_error *err) {
    kv_seq *a = &kv->seqs[src], *b = &kv->seqs[dst];
    if (b->n_pages) return hearth_error_set(err, HEARTH_ERR_INVALID, "kv cache: fork target is not empty");
    if (!seq_grow_table(b, a->n_pages))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory");
    for (int i = 0; i < a->n_pages; i++) {
        b->pages[i] = a->pages[i];
        hearth_kv_page_ref(kv, a->pages[i]);
    }
    b->n_pages = a->n_pages;
    b->len = a->len;
    return HEARTH_OK;
}

hearth_status hearth_kv_seq_append_page(hearth_kv_cache *kv, int seq, int32_t page, hearth_error *err) {
    kv_seq *s = &kv->seqs[seq];
    const int ps = kv->cfg.page_size;
    if (s->len % ps != 0 || s->n_pages != s->len / ps)
        return hearth_error_set(err, HEARTH_ERR_INVALID,
                                "kv cache: append_page needs a page-aligned sequence");
    if (!seq_grow_table(s, s->n_pages + 1))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "kv cache: out of memory");
    hearth_kv_page_ref(kv, page);
    s->pages[s->n_pages++] = page;
    s->len += ps;
    return HEARTH_OK;
}

const int32_t *hearth_kv_seq_pages(const hearth_kv_cache *kv, int seq, int *n_pages) {
    *n_pages = kv->seqs[seq].n_pages;
    return kv->seqs[seq].pages;
}

int32_t hearth_kv_slot(const hearth_kv_cache *kv, int seq, int pos) {
    const int ps = kv->cfg.page_size;
    assert(pos >= 0 && pos / ps < kv->seqs[seq].n_pages);
    return kv->seqs[seq].pages[pos / ps] * ps + pos % ps;
}

void hearth_kv_page_set_immutable(hearth_kv_cache *kv, int32_t page, bool immutable) {
    kv->immutable[page] = immutable;
}

hearth_backend *hearth_kv_layer_backend(const hearth_kv_cache *kv, int layer) {
    return kv->be[layer];
}

size_t hearth_kv_page_bytes_per_layer(const hearth_kv_cache *kv) {
    return kv->row_bytes * (size_t)kv->cfg.page_size;
}

void hearth_kv_stats_get(const hearth_kv_cache *kv, hearth_kv_stats *out) {
    memset(out, 0, sizeof *out);
    out->n_pages = kv->cfg.n_pages;
    uint64_t page_bytes = hearth_kv_page_bytes(&kv->cfg);
    for (int p = 0; p < kv->cfg.n_pages; p++) {
        if (kv->refcount[p] > 0)
            out->pages_used++;
        else if (kv->retained[p])
            out->pages_cached++;
    }
    for (int s = 0; s < kv->n_seqs; s++) {
        if (!kv->seqs[s].live) continue;
        out->n_seqs++;
        out->tokens_stored += (uint64_t)kv->seqs[s].len;
        if (kv->seqs[s].n_pages)
            out->slots_wasted +=
                (uint64_t)kv->seqs[s].n_pages * kv->cfg.page_size - (uint64_t)kv->seqs[s].len;
    }
    out->bytes_total = page_bytes * (uint64_t)kv->cfg.n_pages;
    out->bytes_used = page_bytes * (uint64_t)(out->pages_used + out->pages_cached);
}

/* ------------------------------------------------------------ checking */

/* Page ownership: a page is exactly one of free (on the free list), retained
 * (refcount 0, held by the release hook's owner) or in use (refcount > 0). */
static hearth_status check_free_list(const hearth_kv_cache *kv, unsigned char *seen, hearth_error *err) {
    const int n = kv->cfg.n_pages;
    if (kv->n_free < 0 || kv->n_free > n)
        return hearth_error_set(err, HEARTH_ERR_INTERNAL, "kv check: free list holds %d pages of a pool of %d",
                                kv->n_free, n);
    for (int i = 0; i < kv->n_free; i++) {
        int32_t p = kv->free_stack[i];
        if (p < 0 || p >= n)
            return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                    "kv check: free list entry %d is page %d, outside 0..%d", i, p, n - 1);
        if (seen[p])
            return hearth_error_set(err, HEARTH_ERR_INTERNAL, "kv check: page %d is on the free list twice",
                                    p);
        seen[p] = 1;
        if (kv->refcount[p] != 0)
            return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                    "kv check: page %d is on the free list with refcount %d", p,
                                    kv->refcount[p]);
        if (kv->retained[p])
            return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                    "kv check: page %d is on the free list and retained", p);
    }
    for (int p = 0; p < n; p++) {
        if (kv->refcount[p] < 0)
            return hearth_error_set(err, HEARTH_ERR_INTERNAL, "kv check: page %d has refcount %d", p,
                                    kv->refcount[p]);
        if (kv->retained[p] && kv->refcount[p] != 0)
            return hearth_error_set(err, HEARTH_ERR_INTERNAL, "kv check: page %d is retained with refcount %d",
                                    p, kv->refcount[p]);
        if (kv->refcount[p] == 0 && !kv->retained[p] && !seen[p])
            return hearth_error_set(
                err, HEARTH_ERR_INTERNAL,
                "kv check: page %d has refcount 0 but is neither free nor retained (lost)", p);
    }
    return HEARTH_OK;
}

/* Sequences: lengths within the pages held, entries in range, and every
 * page's refcount equal to the page-table entries naming it. */
static hearth_status check_seqs(const hearth_kv_cache *kv, int *uses, hearth_error *err) {
    const int n = kv->cfg.n_pages, ps = kv->cfg.page_size;
    for (int q = 0; q < kv->n_seqs; q++) {
        const kv_seq *s = &kv->seqs[q];
        if (!s->live) {
            if (s->n_pages || s->len)
                return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                        "kv check: freed sequence %d still has %d pages", q, s->n_pages);
            continue;
        }
        if (s->len < 0 || s->n_pages < 0 || (size_t)s->n_pages > s->cap_pages)
            return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                    "kv check: sequence %d has length %d and %d pages (table room %zu)", q,
                                    s->len, s->n_pages, s->cap_pages);
        if ((s->len + ps - 1) / ps > s->n_pages)
            return hearth_error_set(
                err, HEARTH_ERR_INTERNAL,
                "kv check: sequence %d has length %d but holds only %d pages of %d tokens", q, s->len,
                s->n_pages, ps);
        for (int i = 0; i < s->n_pages; i++) {
            int32_t p = s->pages[i];
            if (p < 0 || p >= n)
                return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                        "kv check: sequence %d page-table entry %d is page %d, outside 0..%d",
                                        q, i, p, n - 1);
            uses[p]++;
        }
    }
    for (int p = 0; p < n; p++)
        if (kv->refcount[p] != uses[p])
            return hearth_error_set(err, HEARTH_ERR_INTERNAL,
                                    "kv check: page %d has refcount %d but %d page-table entries name it", p,
                                    kv->refcount[p], uses[p]);
    return HEARTH_OK;
}

hearth_status hearth_kv_check(const hearth_kv_cache *kv, hearth_error *err) {
    const int n = kv->cfg.n_pages;
    unsigned char *seen = calloc((size_t)n, 1);
    int *uses = calloc((size_t)n, sizeof *uses);
    hearth_status st = HEARTH_OK;
    if (!seen || !uses) st = hearth_error_set(err, HEARTH_ERR_NOMEM, "kv check: out of memory");
    if (!st) st = check_free_list(kv, seen, err);
    if (!st) st = check_seqs(kv, uses, err);
    free(seen);
    free(uses);
    return st;
}

int *hearth_kv_test_refcounts(hearth_kv_cache *kv) {
    return kv->refcount;
}

int32_t *hearth_kv_test_free_list(hearth_kv_cache *kv, int **n_free) {
    *n_free = &kv->n_free;
    return kv->free_stack;
}
