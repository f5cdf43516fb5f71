/*
 * test_kv_cache.c - paged KV cache bookkeeping on the CPU backend: page
 * allocation and freeing, reservation across page boundaries, sharing by
 * fork with reference counts, copy-on-write of a shared partly filled page,
 * truncation, running out of pages (clean error, nothing changed), stats,
 * and the prefix-cache retain/reclaim hooks.
 */
#include "backends/backend.h"
#include "runtime/kv/kv_cache.h"
#include "test.h"

static float *k_row(hearth_kv_cache *kv, int layer, int32_t slot) {
    hearth_tensor *t = hearth_kv_k(kv, layer);
    return (float *)((char *)t->data + (size_t)slot * t->nb1);
}

typedef struct retain_state {
    int32_t held[64];
    int n;
    hearth_kv_cache *kv;
    int reclaimed;
} retain_state;

static bool retain_hook(void *u, int32_t page) {
    retain_state *s = u;
    s->held[s->n++] = page;
    return true;
}

/* Give back the most recently retained page. */
static bool reclaim_hook(void *u) {
    retain_state *s = u;
    if (s->n == 0) return false;
    hearth_kv_page_release(s->kv, s->held[--s->n]);
    s->reclaimed++;
    return true;
}

int main(void) {
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    REQUIRE(be);
    hearth_kv_config cfg = {.n_layer = 2, .n_kv_heads = 2, .head_dim = 4, .type = HEARTH_F32, .page_size = 4, .n_pages = 6};
    CHECK(hearth_kv_page_bytes(&cfg) == 2ull * 2 * 4 * 8 * sizeof(float));
    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    CHECK(hearth_kv_pages_free(kv) == 6);

    /* ---- reserve across a page boundary */
    int a = hearth_kv_seq_create(kv, &err);
    CHECK(a == 0);
    CHECK(hearth_kv_seq_reserve(kv, a, 6, &err) == HEARTH_OK);
    hearth_kv_seq_set_len(kv, a, 6);
    int np;
    const int32_t *pt = hearth_kv_seq_pages(kv, a, &np);
    CHECK(np == 2);
    CHECK(hearth_kv_pages_free(kv) == 4);
    CHECK(hearth_kv_slot(kv, a, 5) == pt[1] * 4 + 1);
    for (int p = 0; p < 6; p++) k_row(kv, 0, hearth_kv_slot(kv, a, p))[0] = (float)(100 + p);

    /* ---- fork shares pages; writing into the shared partial page copies it */
    int b = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_fork(kv, a, b, &err) == HEARTH_OK);
    CHECK(hearth_kv_seq_len(kv, b) == 6);
    CHECK(hearth_kv_page_refcount(kv, pt[0]) == 2 && hearth_kv_page_refcount(kv, pt[1]) == 2);
    CHECK(hearth_kv_pages_free(kv) == 4);
    CHECK(hearth_kv_seq_reserve(kv, b, 7, &err) == HEARTH_OK); /* writes position 6, in shared page 1 */
    int npb;
    const int32_t *ptb = hearth_kv_seq_pages(kv, b, &npb);
    pt = hearth_kv_seq_pages(kv, a, &np);
    CHECK(npb == 2 && ptb[0] == pt[0] && ptb[1] != pt[1]);
    CHECK(hearth_kv_page_refcount(kv, pt[1]) == 1 && hearth_kv_page_refcount(kv, ptb[1]) == 1);
    CHECK(k_row(kv, 0, hearth_kv_slot(kv, b, 5))[0] == 105.0f); /* copied contents */
    CHECK(k_row(kv, 0, hearth_kv_slot(kv, b, 4))[0] == 104.0f);
    k_row(kv, 0, hearth_kv_slot(kv, b, 5))[0] = -1;
    CHECK(k_row(kv, 0, hearth_kv_slot(kv, a, 5))[0] == 105.0f); /* a is untouched */
    CHECK(hearth_kv_pages_free(kv) == 3);

    /* ---- out of pages: clean error, nothing allocated */
    int c = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_reserve(kv, c, 4 * 4, &err) == HEARTH_ERR_CONTEXT);
    CHECK_CONTAINS(err.msg, "kv cache full");
    CHECK(hearth_kv_pages_free(kv) == 3);
    CHECK(hearth_kv_seq_pages(kv, c, &np) != NULL || np == 0);
    hearth_kv_seq_pages(kv, c, &np);
    CHECK(np == 0);

    /* ---- truncation frees whole pages only */
    hearth_kv_seq_set_len(kv, b, 7);
    hearth_kv_seq_truncate(kv, b, 2); /* 7 -> 5: still two pages */
    CHECK(hearth_kv_seq_len(kv, b) == 5);
    hearth_kv_seq_pages(kv, b, &npb);
    CHECK(npb == 2);
    hearth_kv_seq_truncate(kv, b, 1); /* 5 -> 4: one page */
    hearth_kv_seq_pages(kv, b, &npb);
    CHECK(npb == 1 && hearth_kv_pages_free(kv) == 4);
    hearth_kv_seq_truncate(kv, b, 100);
    CHECK(hearth_kv_seq_len(kv, b) == 0);
    CHECK(hearth_kv_page_refcount(kv, pt[0]) == 1);

    /* ---- stats */
    hearth_kv_stats st;
    hearth_kv_stats_get(kv, &st);
    CHECK(st.pages_used == 2 && st.n_pages == 6);
    CHECK(st.tokens_stored == 6 && st.slots_wasted == 2);
    CHECK(st.bytes_used == 2 * hearth_kv_page_bytes(&cfg));

    /* ---- sequence ids are reused after free; freeing returns pages */
    hearth_kv_seq_free(kv, a);
    CHECK(hearth_kv_pages_free(kv) == 6);
    int d = hearth_kv_seq_create(kv, &err);
    CHECK(d == a);

    /* ---- hooks: a retained page stays out of the free list until reclaimed */
    retain_state rs = {.kv = kv};
    hearth_kv_set_release_hook(kv, retain_hook, &rs);
    CHECK(hearth_kv_seq_reserve(kv, d, 4, &err) == HEARTH_OK);
    hearth_kv_seq_set_len(kv, d, 4);
    hearth_kv_seq_pages(kv, d, &np);
    hearth_kv_seq_free(kv, d);
    CHECK(rs.n == 1 && hearth_kv_pages_free(kv) == 5);
    hearth_kv_stats_get(kv, &st);
    CHECK(st.pages_cached == 1);
    /* attach the retained page to a new sequence (prefix-cache hit) */
    int e = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_append_page(kv, e, rs.held[0], &err) == HEARTH_OK);
    CHECK(hearth_kv_seq_len(kv, e) == 4 && hearth_kv_page_refcount(kv, rs.held[0]) == 1);
    hearth_kv_seq_free(kv, e);
    CHECK(rs.n == 2);
    hearth_kv_page_release(kv, rs.held[1]);
    CHECK(hearth_kv_pages_free(kv) == 6);

    /* ---- reclaim: with every page in use or retained, allocation asks the hook */
    rs = (retain_state){.kv = kv};
    hearth_kv_set_reclaim_hook(kv, reclaim_hook, &rs);
    int f = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_reserve(kv, f, 6 * 4, &err) == HEARTH_OK); /* all 6 pages */
    hearth_kv_seq_set_len(kv, f, 24);
    hearth_kv_seq_free(kv, f); /* all retained by the release hook */
    CHECK(rs.n == 6 && hearth_kv_pages_free(kv) == 0);
    int g2 = hearth_kv_seq_create(kv, &err);
    CHECK(hearth_kv_seq_reserve(kv, g2, 8, &err) == HEARTH_OK); /* 2 pages, both reclaimed */
    CHECK(rs.reclaimed == 2 && rs.n == 4);
    hearth_kv_set_release_hook(kv, NULL, NULL);
    hearth_kv_seq_free(kv, g2);
    while (rs.n) hearth_kv_page_release(kv, rs.held[--rs.n]);
    CHECK(hearth_kv_pages_free(kv) == 6);

    /* ---- bad configs are refused with a reason */
    hearth_kv_config bad = cfg;
    bad.type = HEARTH_Q4_0;
    CHECK(hearth_kv_create(be, &bad, &err) == NULL);
    CHECK_CONTAINS(err.msg, "not supported");
    bad = cfg;
    bad.page_size = 0;
    CHECK(hearth_kv_create(be, &bad, &err) == NULL);

    hearth_kv_free(kv);
    hearth_backend_free(be);
    return test_summary("kv_cache");
}
