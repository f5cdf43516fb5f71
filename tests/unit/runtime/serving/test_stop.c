/*
 * test_stop.c - the streaming stop-string matcher on its own: a stop string
 * split across pieces, several stop strings (the earliest wins), a held
 * prefix that turns out not to match and is released, overlapping
 * candidates, UTF-8 pieces, empty input, no stop strings, and what the end
 * of a request releases.
 */
#include <string.h>

#include "runtime/serving/stop.h"
#include "test.h"

/* Feed piece and return the released bytes as a string in out (consuming
 * them unless a match was reported). */
static size_t feed(hearth_stop *s, const char *piece, bool *matched, char *out, size_t cap) {
    size_t n = hearth_stop_feed(s, piece, strlen(piece), matched);
    snprintf(out, cap, "%.*s", (int)n, hearth_stop_text(s));
    if (!*matched) hearth_stop_consume(s, n);
    return n;
}

static void test_split_across_pieces(void) {
    const char *stops[] = {"END"};
    hearth_stop s;
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    bool m;
    char out[64];
    CHECK(feed(&s, "abc", &m, out, sizeof out) == 3 && !m && !strcmp(out, "abc"));
    CHECK(feed(&s, "xE", &m, out, sizeof out) == 1 && !m && !strcmp(out, "x")); /* "E" may start "END" */
    CHECK(hearth_stop_held(&s) == 1 && !strcmp(hearth_stop_text(&s), "E"));
    CHECK(feed(&s, "N", &m, out, sizeof out) == 0 && !m); /* "EN" still may */
    CHECK(hearth_stop_held(&s) == 2);
    CHECK(feed(&s, "Dzz", &m, out, sizeof out) == 0 && m); /* "END" at 0: nothing before it */
    hearth_stop_clear(&s);
    CHECK(hearth_stop_held(&s) == 0 && !strcmp(hearth_stop_text(&s), ""));
    hearth_stop_free(&s);
}

static void test_several(void) {
    const char *stops[] = {"\n\n", "User:"};
    hearth_stop s;
    REQUIRE(hearth_stop_init(&s, stops, 2, NULL) == HEARTH_OK);
    CHECK(s.n_stop == 2);
    bool m;
    char out[64];
    CHECK(feed(&s, "hi User", &m, out, sizeof out) == 3 && !m && !strcmp(out, "hi "));
    CHECK(feed(&s, ":", &m, out, sizeof out) == 0 && m);
    hearth_stop_free(&s);

    /* both present: the earliest occurrence wins, whatever the list order */
    const char *ab[] = {"b", "a"};
    REQUIRE(hearth_stop_init(&s, ab, 2, NULL) == HEARTH_OK);
    CHECK(feed(&s, "xab", &m, out, sizeof out) == 1 && m && !strcmp(out, "x"));
    hearth_stop_free(&s);

    /* a newline pair split over pieces, after the other stop's prefix was released */
    REQUIRE(hearth_stop_init(&s, stops, 2, NULL) == HEARTH_OK);
    CHECK(feed(&s, "Us", &m, out, sizeof out) == 0 && !m);
    CHECK(feed(&s, "e\n", &m, out, sizeof out) == 3 && !m && !strcmp(out, "Use"));
    CHECK(feed(&s, "\nmore", &m, out, sizeof out) == 0 && m);
    hearth_stop_free(&s);
}

static void test_false_prefix_released(void) {
    const char *stops[] = {"END"};
    hearth_stop s;
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    bool m;
    char out[64];
    CHECK(feed(&s, "EN", &m, out, sizeof out) == 0 && !m);
    CHECK(feed(&s, "X", &m, out, sizeof out) == 3 && !m && !strcmp(out, "ENX"));
    CHECK(hearth_stop_held(&s) == 0);
    hearth_stop_free(&s);

    /* overlapping candidates: "aab" in "aaab" starts at 1, one "a" goes out */
    const char *aab[] = {"aab"};
    REQUIRE(hearth_stop_init(&s, aab, 1, NULL) == HEARTH_OK);
    CHECK(feed(&s, "aa", &m, out, sizeof out) == 0 && !m);
    CHECK(feed(&s, "a", &m, out, sizeof out) == 1 && !m && !strcmp(out, "a"));
    CHECK(feed(&s, "b", &m, out, sizeof out) == 0 && m);
    hearth_stop_free(&s);
}

static void test_utf8(void) {
    const char *stops[] = {"\xc3\xbcnd"}; /* "und" with u-umlaut */
    hearth_stop s;
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    bool m;
    char out[64];
    /* "grü": the two bytes of ü may start the stop string */
    CHECK(feed(&s, "gr\xc3\xbc", &m, out, sizeof out) == 2 && !m && !strcmp(out, "gr"));
    /* "üne" cannot: all four bytes go out, ending on a character boundary */
    CHECK(feed(&s, "ne", &m, out, sizeof out) == 4 && !m && !strcmp(out, "\xc3\xbcne"));
    CHECK(feed(&s, "\xc3\xbc", &m, out, sizeof out) == 0 && !m);
    CHECK(feed(&s, "nd!", &m, out, sizeof out) == 0 && m);
    hearth_stop_free(&s);

    /* a multi-byte stop string never matches a different character sharing its lead byte */
    const char *eacute[] = {"\xc3\xa9"};
    REQUIRE(hearth_stop_init(&s, eacute, 1, NULL) == HEARTH_OK);
    CHECK(feed(&s, "\xc3\xa8x", &m, out, sizeof out) == 3 && !m);
    hearth_stop_free(&s);
}

static void test_empty_and_none(void) {
    hearth_stop s;
    bool m = true;
    /* no stop strings: everything goes out at once */
    REQUIRE(hearth_stop_init(&s, NULL, 0, NULL) == HEARTH_OK);
    CHECK(hearth_stop_feed(&s, "", 0, &m) == 0 && !m);
    CHECK(!strcmp(hearth_stop_text(&s), ""));
    CHECK(hearth_stop_feed(&s, "END", 3, &m) == 3 && !m);
    hearth_stop_free(&s);

    /* NULL and empty stop strings are skipped */
    const char *odd[] = {"", NULL, "x"};
    REQUIRE(hearth_stop_init(&s, odd, 3, NULL) == HEARTH_OK);
    CHECK(s.n_stop == 1);
    m = true;
    CHECK(hearth_stop_feed(&s, "", 0, &m) == 0 && !m); /* empty input, nothing held */
    CHECK(hearth_stop_feed(&s, "abc", 3, &m) == 3 && !m);
    hearth_stop_consume(&s, 3);
    CHECK(hearth_stop_feed(&s, "", 0, &m) == 0 && !m);
    CHECK(hearth_stop_feed(&s, "yx", 2, &m) == 1 && m);
    hearth_stop_free(&s);

    /* only empty stop strings: none at all */
    const char *empty[] = {""};
    REQUIRE(hearth_stop_init(&s, empty, 1, NULL) == HEARTH_OK);
    CHECK(s.n_stop == 0 && hearth_stop_feed(&s, "ab", 2, &m) == 2 && !m);
    hearth_stop_free(&s);
}

static void test_finish(void) {
    const char *stops[] = {"END"};
    hearth_stop s;
    bool m;
    /* a prefix that never completed goes out when the request ends otherwise */
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    CHECK(hearth_stop_feed(&s, "okEN", 4, &m) == 2 && !m);
    hearth_stop_consume(&s, 2);
    CHECK(hearth_stop_finish(&s, NULL, 0, false) == 2 && !strcmp(hearth_stop_text(&s), "EN"));
    hearth_stop_free(&s);
    /* ... and when it stopped for another reason (end of generation) too */
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    CHECK(hearth_stop_feed(&s, "EN", 2, &m) == 0);
    CHECK(hearth_stop_finish(&s, NULL, 0, true) == 2);
    hearth_stop_free(&s);
    /* the final bytes complete the stop string: nothing of it goes out */
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    CHECK(hearth_stop_feed(&s, "aEN", 3, &m) == 1);
    CHECK(hearth_stop_finish(&s, "D", 1, true) == 1 && !strncmp(hearth_stop_text(&s), "aEND", 4));
    hearth_stop_free(&s);
    /* not cut when the request ended for another reason (length) */
    REQUIRE(hearth_stop_init(&s, stops, 1, NULL) == HEARTH_OK);
    CHECK(hearth_stop_feed(&s, "EN", 2, &m) == 0);
    CHECK(hearth_stop_finish(&s, "D", 1, false) == 3);
    hearth_stop_free(&s);
}

int main(void) {
    test_split_across_pieces();
    test_several();
    test_false_prefix_released();
    test_utf8();
    test_empty_and_none();
    test_finish();
    return test_summary("stop");
}
