/*
 * test_kv_cache.c - paged KV cache bookkeeping on the CPU backend: page
 * allocation and freeing, reservation across page boundaries, sharing by
 * fork with reference counts, copy-on-write of a shared partly filled page,
 * truncation, running out of pages (clean error, nothing changed), stats,
 * and the prefix-cache retain/reclaim hooks. hearth_kv_check runs after every
 * operation, and must catch bookkeeping broken on purpose.
 */
#include "backends/backend.h"
#include "runtime/kv/kv_cache.h"
#include "test.h"

/* The invariants of kv_cache.h hold (printing the broken one if not). */
static bool kv_ok(const hearth_kv_cache *kv) {
    hearth_error err = {0};
    if (hearth_kv_check(kv, &err) == HEARTH_OK) return true;
    fprintf(stderr, "%s\n", err.msg);
    return false;
}
#define KV_OK(kv) CHECK(kv_ok(kv))

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

/* Break each kind of bookkeeping on purpose: hearth_kv_check must name it,
 * and be content again once it is repaired. */
static void test_check_catches(hearth_backend *be) {
    hearth_error err = {0};
    hearth_kv_config cfg = {
        .n_layer = 1, .n_kv_heads = 1, .head_dim = 4, .type = HEARTH_F32, .page_size = 4, .n_pages = 4};
    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    int s = hearth_kv_seq_create(kv, &err);
    REQUIRE(hearth_kv_seq_reserve(kv, s, 6, &err) == HEARTH_OK); /* pages 0 and 1 */
    hearth_kv_seq_set_len(kv, s, 6);
    KV_OK(kv);
    int np;
    const int32_t *pt = hearth_kv_seq_pages(kv, s, &np);
    REQUIRE(np == 2 && pt[0] == 0 && pt[1] == 1);
    int *rc = hearth_kv_test_refcounts(kv);
    int *n_free;
    int32_t *fl = hearth_kv_test_free_list(kv, &n_free);
    REQUIRE(*n_free == 2); /* pages 3 and 2, 2 on top */

    /* a refcount above the page-table entries naming the page */
    rc[1]++;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "page 1 has refcount 2 but 1 page-table entries name it");
    rc[1]--;
    KV_OK(kv);

    /* a refcount that dropped to 0 while a sequence still uses the page: lost */
    rc[0] = 0;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "page 0 has refcount 0 but is neither free nor retained");
    rc[0] = 1;
    KV_OK(kv);

    /* a negative refcount on a free page (a double unref) */
    rc[3] = -1;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "page 3 is on the free list with refcount -1");
    rc[3] = 0;
    KV_OK(kv);

    /* the same page twice on the free list */
    fl[(*n_free)++] = 3;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "page 3 is on the free list twice");
    (*n_free)--;
    KV_OK(kv);

    /* a page in use pushed onto the free list */
    fl[(*n_free)++] = 1;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "page 1 is on the free list with refcount 1");
    (*n_free)--;
    KV_OK(kv);

    /* a free-list entry outside the pool */
    int32_t saved = fl[0];
    fl[0] = 4;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "free list entry 0 is page 4, outside 0..3");
    fl[0] = saved;
    KV_OK(kv);

    /* a free page missing from the free list */
    (*n_free)--;
    CHECK(hearth_kv_check(kv, &err) == HEARTH_ERR_INTERNAL);
    CHECK_CONTAINS(err.msg, "has refcount 0 but is neither free nor retained");
    (*n_free)++;
    KV_OK(kv);

    hearth_kv_free(kv);
}

int main(void) {
    hearth_error err = {0};
    hearth_backend *be = hearth_cpu_backend_create(1, &err);
    REQUIRE(be);
    hearth_kv_config cfg = {
        .n_layer = 2, .n_kv_heads = 2, .head_dim = 4, .type = HEARTH_F32, .page_size = 4, .n_pages = 6};
    CHECK(hearth_kv_page_bytes(&cfg) == 2ull * 2 * 4 * 8 * sizeof(float));
    hearth_kv_cache *kv = hearth_kv_create(be, &cfg, &err);
    REQUIRE(kv);
    CHECK(hearth_kv_pages_free(kv) == 6);

    /* ---- reserve across a page boundary */
    int a = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(a == 0);
    CHECK(hearth_kv_seq_reserve(kv, a, 6, &err) == HEARTH_OK);
    KV_OK(kv);
    hearth_kv_seq_set_len(kv, a, 6);
    KV_OK(kv);
    int np;
    const int32_t *pt = hearth_kv_seq_pages(kv, a, &np);
    CHECK(np == 2);
    CHECK(hearth_kv_pages_free(kv) == 4);
    CHECK(hearth_kv_slot(kv, a, 5) == pt[1] * 4 + 1);
    for (int p = 0; p < 6; p++)
        k_row(kv, 0, hearth_kv_slot(kv, a, p))[0] = (float)(100 + p);

    /* ---- fork shares pages; writing into the shared partial page copies it */
    int b = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(hearth_kv_seq_fork(kv, a, b, &err) == HEARTH_OK);
    KV_OK(kv);
    CHECK(hearth_kv_seq_len(kv, b) == 6);
    CHECK(hearth_kv_page_refcount(kv, pt[0]) == 2 && hearth_kv_page_refcount(kv, pt[1]) == 2);
    CHECK(hearth_kv_pages_free(kv) == 4);
    CHECK(hearth_kv_seq_reserve(kv, b, 7, &err) == HEARTH_OK); /* writes position 6, in shared page 1 */
    KV_OK(kv);
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
    KV_OK(kv);
    CHECK(hearth_kv_seq_reserve(kv, c, 4 * 4, &err) == HEARTH_ERR_CONTEXT);
    KV_OK(kv);
    CHECK_CONTAINS(err.msg, "kv cache full");
    CHECK(hearth_kv_pages_free(kv) == 3);
    CHECK(hearth_kv_seq_pages(kv, c, &np) != NULL || np == 0);
    hearth_kv_seq_pages(kv, c, &np);
    CHECK(np == 0);

    /* ---- truncation frees whole pages only */
    hearth_kv_seq_set_len(kv, b, 7);
    KV_OK(kv);
    hearth_kv_seq_truncate(kv, b, 2); /* 7 -> 5: still two pages */
    KV_OK(kv);
    CHECK(hearth_kv_seq_len(kv, b) == 5);
    hearth_kv_seq_pages(kv, b, &npb);
    CHECK(npb == 2);
    hearth_kv_seq_truncate(kv, b, 1); /* 5 -> 4: one page */
    KV_OK(kv);
    hearth_kv_seq_pages(kv, b, &npb);
    CHECK(npb == 1 && hearth_kv_pages_free(kv) == 4);
    hearth_kv_seq_truncate(kv, b, 100);
    KV_OK(kv);
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
    KV_OK(kv);
    CHECK(hearth_kv_pages_free(kv) == 6);
    int d = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(d == a);

    /* ---- hooks: a retained page stays out of the free list until reclaimed */
    retain_state rs = {.kv = kv};
    hearth_kv_set_release_hook(kv, retain_hook, &rs);
    KV_OK(kv);
    CHECK(hearth_kv_seq_reserve(kv, d, 4, &err) == HEARTH_OK);
    KV_OK(kv);
    hearth_kv_seq_set_len(kv, d, 4);
    KV_OK(kv);
    hearth_kv_seq_pages(kv, d, &np);
    hearth_kv_seq_free(kv, d);
    KV_OK(kv);
    CHECK(rs.n == 1 && hearth_kv_pages_free(kv) == 5);
    hearth_kv_stats_get(kv, &st);
    CHECK(st.pages_cached == 1);
    /* attach the retained page to a new sequence (prefix-cache hit) */
    int e = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(hearth_kv_seq_append_page(kv, e, rs.held[0], &err) == HEARTH_OK);
    KV_OK(kv);
    CHECK(hearth_kv_seq_len(kv, e) == 4 && hearth_kv_page_refcount(kv, rs.held[0]) == 1);
    hearth_kv_seq_free(kv, e);
    KV_OK(kv);
    CHECK(rs.n == 2);
    hearth_kv_page_release(kv, rs.held[1]);
    KV_OK(kv);
    CHECK(hearth_kv_pages_free(kv) == 6);

    /* ---- reclaim: with every page in use or retained, allocation asks the hook */
    rs = (retain_state){.kv = kv};
    hearth_kv_set_reclaim_hook(kv, reclaim_hook, &rs);
    KV_OK(kv);
    int f = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(hearth_kv_seq_reserve(kv, f, 6 * 4, &err) == HEARTH_OK); /* all 6 pages */
    KV_OK(kv);
    hearth_kv_seq_set_len(kv, f, 24);
    KV_OK(kv);
    hearth_kv_seq_free(kv, f); /* all retained by the release hook */
    KV_OK(kv);
    CHECK(rs.n == 6 && hearth_kv_pages_free(kv) == 0);
    int g2 = hearth_kv_seq_create(kv, &err);
    KV_OK(kv);
    CHECK(hearth_kv_seq_reserve(kv, g2, 8, &err) == HEARTH_OK); /* 2 pages, both reclaimed */
    KV_OK(kv);
    CHECK(rs.reclaimed == 2 && rs.n == 4);
    hearth_kv_set_release_hook(kv, NULL, NULL);
    KV_OK(kv);
    hearth_kv_seq_free(kv, g2);
    KV_OK(kv);
    while (rs.n)
        hearth_kv_page_release(kv, rs.held[--rs.n]);
    KV_OK(kv);
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
    test_check_catches(be);
    hearth_backend_free(be);
    return test_summary("kv_cache");
}
