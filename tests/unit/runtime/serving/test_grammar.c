/*
 * test_grammar.c - the grammar engine on its own: GBNF accept/reject for
 * every construct (rules, alternation, groups, * + ? {m} {m,} {m,n},
 * classes with ranges / negation / escapes, literals, `.`, comments), the
 * compile-time errors (syntax, undefined rule, left recursion, a root that
 * can never match), JSON Schema accept/reject for every supported keyword
 * and its unsatisfiable / strict errors, and token-level masks on real
 * vocabularies (a token spanning several symbols, partial UTF-8, EOS only
 * where the grammar can end, rejected input leaves the state alone).
 */
#include <string.h>

#include "runtime/serving/grammar.h"
#include "test.h"

/* Does grammar g (compiled) accept exactly s? */
static bool g_accepts(const hearth_grammar *g, const char *s) {
    hearth_grammar_matcher *m = hearth_grammar_matcher_create(g, NULL);
    if (!m) return false;
    bool ok = hearth_grammar_matcher_accept_bytes(m, s, strlen(s)) && hearth_grammar_matcher_can_end(m);
    hearth_grammar_matcher_free(m);
    return ok;
}

static bool accepts(const char *gbnf, const char *s) {
    hearth_error err = {0};
    hearth_grammar *g = hearth_grammar_parse(gbnf, strlen(gbnf), NULL, &err);
    if (!g) {
        fprintf(stderr, "grammar failed: %s\n", err.msg);
        return false;
    }
    bool ok = g_accepts(g, s);
    hearth_grammar_release(g);
    return ok;
}

/* Compile fails with a message containing `want`. */
static bool fails_with(const char *gbnf, const char *want) {
    hearth_error err = {0};
    hearth_grammar *g = hearth_grammar_parse(gbnf, strlen(gbnf), NULL, &err);
    if (g) {
        hearth_grammar_release(g);
        return false;
    }
    if (!strstr(err.msg, want)) fprintf(stderr, "error was: %s (wanted %s)\n", err.msg, want);
    return strstr(err.msg, want) != NULL;
}

static void test_gbnf_constructs(void) {
    CHECK(accepts("root ::= \"abc\"", "abc"));
    CHECK(!accepts("root ::= \"abc\"", "ab"));
    CHECK(!accepts("root ::= \"abc\"", "abcd"));
    CHECK(accepts("root ::= \"a\" | \"b\" | \"cd\"", "cd"));
    CHECK(!accepts("root ::= \"a\" | \"b\"", "c"));
    CHECK(accepts("root ::= x y\nx ::= \"x\"\ny ::= \"y\"", "xy"));
    /* a rule of the text named like a generated one stays its own rule, either order */
    CHECK(accepts("x-1 ::= \"b\"\nx ::= \"a\"*\nroot ::= x x-1", "aab"));
    CHECK(accepts("x ::= \"a\"*\nx-1 ::= \"b\"\nroot ::= x x-1", "aab"));
    CHECK(accepts("root ::= (\"a\" | \"b\") \"c\"", "bc"));
    CHECK(accepts("root ::= \"a\"*", ""));
    CHECK(accepts("root ::= \"a\"*", "aaaa"));
    CHECK(!accepts("root ::= \"a\"+", ""));
    CHECK(accepts("root ::= \"a\"+ \"b\"", "aaab"));
    CHECK(accepts("root ::= \"a\"? \"b\"", "b"));
    CHECK(!accepts("root ::= \"a\"? \"b\"", "aab"));
    CHECK(accepts("root ::= \"ab\"{3}", "ababab"));
    CHECK(!accepts("root ::= \"ab\"{3}", "abab"));
    CHECK(accepts("root ::= [0-9]{2,}", "12345"));
    CHECK(!accepts("root ::= [0-9]{2,}", "1"));
    CHECK(accepts("root ::= [0-9]{1,3}", "123"));
    CHECK(!accepts("root ::= [0-9]{1,3}", "1234"));
    CHECK(accepts("root ::= [a-zA-Z_]+", "Hello_World"));
    CHECK(!accepts("root ::= [a-z]+", "abC"));
    CHECK(accepts("root ::= [^\"\\\\]+", "no quotes here"));
    CHECK(!accepts("root ::= [^\"\\\\]+", "a\"b"));
    CHECK(accepts("root ::= [\\x41-\\x43]+", "ABC"));
    CHECK(accepts("root ::= \"\\u00e9t\\u00e9\"", "\xc3\xa9t\xc3\xa9"));
    CHECK(accepts("root ::= [\\u4e00-\\u9fff]", "\xe4\xb8\xad"));
    CHECK(accepts("root ::= \"\\U0001F600\"", "\xf0\x9f\x98\x80"));
    CHECK(accepts("root ::= \"\\n\\t\\\\\\\"\"", "\n\t\\\""));
    CHECK(accepts("root ::= . . .", "a\xc3\xa9z"));
    CHECK(accepts("# comment\nroot ::= \"a\" # trailing\n  # more\nb ::= \"b\"", "a"));
    CHECK(accepts("root ::= \"a\"\n  | \"b\"", "b")); /* a line starting with | continues */
    CHECK(accepts("root ::= (\n  \"a\"\n  \"b\"\n)", "ab"));
    CHECK(accepts("root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\nitem ::= [0-9]+ | list",
                  "[1,[2,[]],3]"));
    CHECK(!accepts("root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\nitem ::= [0-9]+ | list",
                   "[1,[2,]"));
    /* right recursion and an empty alternative */
    CHECK(accepts("root ::= \"a\" root | ", "aaa"));
    /* invalid UTF-8 is never accepted */
    CHECK(!accepts("root ::= .*", "\xc3("));
    CHECK(!accepts("root ::= .*", "\xed\xa0\x80")); /* a surrogate */
}

static void test_gbnf_errors(void) {
    CHECK(fails_with("root ::= foo", "'foo' is used but never defined"));
    CHECK(fails_with("root ::= root \"a\" | \"b\"", "left-recursive"));
    CHECK(fails_with("root ::= x\nx ::= \"a\"? root", "left-recursive"));
    CHECK(fails_with("root ::= \"a\" root", "can never match"));
    CHECK(fails_with("start ::= \"a\"", "no rule named 'root'"));
    CHECK(fails_with("root ::= \"abc", "unterminated string literal"));
    CHECK(fails_with("root ::= [abc", "unterminated character class"));
    CHECK(fails_with("root ::= (\"a\"", "expected ')'"));
    CHECK(fails_with("root = \"a\"", "expected '::='"));
    CHECK(fails_with("root ::= \"a\"{3,1}", "n < m"));
    CHECK(fails_with("root ::= \"a\"{9999}", "above 4096"));
    CHECK(fails_with("root ::= [z-a]", "end below its start"));
    CHECK(fails_with("root ::= \"\\q\"", "unknown escape"));
    CHECK(fails_with("root ::= \"a\"\nroot ::= \"b\"", "defined twice"));
    CHECK(fails_with("root ::= \"a\"\n\"b\"", "line 2 column 1"));
    CHECK(fails_with("root ::= * \"a\"", "unexpected character"));
}

/* ---------------------------------------------------------------- JSON Schema */

static bool schema_accepts(const char *schema, const char *json) {
    hearth_error err = {0};
    hearth_grammar *g = hearth_grammar_from_json_schema(schema, strlen(schema), false, &err);
    if (!g) {
        fprintf(stderr, "schema failed: %s\n", err.msg);
        return false;
    }
    bool ok = g_accepts(g, json);
    hearth_grammar_release(g);
    return ok;
}

static bool schema_fails(const char *schema, bool strict, const char *want) {
    hearth_error err = {0};
    hearth_grammar *g = hearth_grammar_from_json_schema(schema, strlen(schema), strict, &err);
    if (g) {
        hearth_grammar_release(g);
        fprintf(stderr, "schema compiled, wanted error %s\n", want);
        return false;
    }
    if (!strstr(err.msg, want)) fprintf(stderr, "error was: %s (wanted %s)\n", err.msg, want);
    return strstr(err.msg, want) != NULL;
}

static void test_schema_constructs(void) {
    const char *obj =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"name\"]}";
    CHECK(schema_accepts(obj, "{\"name\": \"Ann\", \"age\": 31, \"tags\": [\"a\", \"b\"]}"));
    CHECK(schema_accepts(obj, "{\"name\":\"Ann\"}"));
    CHECK(schema_accepts(obj, "{\"name\":\"Ann\",\"tags\":[]}"));
    CHECK(!schema_accepts(obj, "{\"age\":3}"));                  /* required missing */
    CHECK(!schema_accepts(obj, "{\"name\":\"A\",\"age\":1.5}")); /* integer */
    CHECK(!schema_accepts(obj, "{\"name\":\"A\",\"x\":1}"));     /* not listed */
    CHECK(!schema_accepts(obj, "{\"name\":\"A\",}"));
    CHECK(!schema_accepts(obj, "{,\"name\":\"A\"}"));
    /* all optional: commas right whichever appear */
    const char *opt = "{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"},\"c\":{"
                      "\"type\":\"integer\"}}}";
    CHECK(schema_accepts(opt, "{}"));
    CHECK(schema_accepts(opt, "{\"b\":1}"));
    CHECK(schema_accepts(opt, "{\"a\":1,\"c\":2}"));
    CHECK(!schema_accepts(opt, "{\"c\":1,\"a\":2}")); /* schema order */
    /* additionalProperties */
    CHECK(schema_accepts("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}",
                         "{\"x\":1.5,\"y\":-2e3}"));
    CHECK(!schema_accepts("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"}}",
                          "{\"x\":\"s\"}"));
    CHECK(schema_accepts("{\"properties\":{\"a\":{}},\"additionalProperties\":true}",
                         "{\"a\":null,\"z\":[1]}"));
    CHECK(!schema_accepts("{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1,\"z\":1}"));
    /* arrays */
    const char *arr = "{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":3}";
    CHECK(schema_accepts(arr, "[true,false]"));
    CHECK(schema_accepts(arr, "[true, false, true]"));
    CHECK(!schema_accepts(arr, "[true]"));
    CHECK(!schema_accepts(arr, "[true,true,true,true]"));
    CHECK(schema_accepts("{\"type\":\"array\",\"maxItems\":0}", "[]"));
    /* enum, const */
    CHECK(schema_accepts("{\"enum\":[\"red\",\"green\",3,null]}", "\"green\""));
    CHECK(schema_accepts("{\"enum\":[\"red\",\"green\",3,null]}", "null"));
    CHECK(!schema_accepts("{\"enum\":[\"red\",\"green\"]}", "\"blue\""));
    CHECK(schema_accepts("{\"const\":{\"k\":[1,2]}}", "{\"k\":[1,2]}"));
    CHECK(!schema_accepts("{\"const\":\"x\"}", "\"y\""));
    /* scalar types */
    CHECK(schema_accepts("{\"type\":\"number\"}", "-0.25e+2"));
    CHECK(!schema_accepts("{\"type\":\"number\"}", "01"));
    CHECK(schema_accepts("{\"type\":\"integer\"}", "-42"));
    CHECK(schema_accepts("{\"type\":\"boolean\"}", "false"));
    CHECK(schema_accepts("{\"type\":\"null\"}", "null"));
    CHECK(schema_accepts("{\"type\":[\"string\",\"null\"]}", "null"));
    CHECK(schema_accepts("{\"type\":\"string\"}", "\"a \\\"q\\\" \\u00e9 \xc3\xa9\""));
    CHECK(!schema_accepts("{\"type\":\"string\"}", "\"a\nb\""));
    /* strings: lengths and formats */
    CHECK(schema_accepts("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"abc\""));
    CHECK(!schema_accepts("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"a\""));
    CHECK(!schema_accepts("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", "\"abcd\""));
    CHECK(schema_accepts("{\"type\":\"string\",\"format\":\"date\"}", "\"2026-12-07\""));
    CHECK(!schema_accepts("{\"type\":\"string\",\"format\":\"date\"}", "\"2026-13-07\""));
    CHECK(schema_accepts("{\"type\":\"string\",\"format\":\"time\"}", "\"11:38:39Z\""));
    CHECK(
        schema_accepts("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2026-12-07T11:38:39.5+01:00\""));
    CHECK(schema_accepts("{\"type\":\"string\",\"format\":\"uuid\"}",
                         "\"123e4567-e89b-12d3-a456-426614174000\""));
    CHECK(!schema_accepts("{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456\""));
    /* anyOf / oneOf / allOf */
    CHECK(schema_accepts("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "\"x\""));
    CHECK(schema_accepts("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}", "7"));
    CHECK(!schema_accepts("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}", "true"));
    const char *all = "{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
                      "{\"properties\":{\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}]}";
    CHECK(schema_accepts(all, "{\"a\":1,\"b\":\"x\"}"));
    CHECK(!schema_accepts(all, "{\"a\":1}"));
    /* $ref / $defs, recursive */
    const char *tree =
        "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
        "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]}},"
        "\"$ref\":\"#/$defs/node\"}";
    CHECK(schema_accepts(tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[]}]}"));
    CHECK(!schema_accepts(tree, "{\"v\":1,\"kids\":[{\"w\":2}]}"));
    CHECK(schema_accepts(
        "{\"definitions\":{\"n\":{\"type\":\"null\"}},\"items\":{\"$ref\":\"#/definitions/n\"}}", "[null]"));
    /* any JSON value */
    CHECK(schema_accepts("{}", "[1, {\"a\": \"b\"}, null, true, -3.5]"));
    CHECK(schema_accepts("true", "\"s\""));
    hearth_error err = {0};
    hearth_grammar *jo = hearth_grammar_json_object(&err);
    REQUIRE(jo);
    CHECK(g_accepts(jo, "{\"a\": [1, 2, {\"b\": null}]}"));
    CHECK(!g_accepts(jo, "[1]"));
    CHECK(!g_accepts(jo, "{\"a\": 1"));
    hearth_grammar_release(jo);
}

static void test_schema_errors(void) {
    CHECK(schema_fails("{\"type\":\"array\",\"minItems\":3,\"maxItems\":1}", false,
                       "minItems is above maxItems"));
    CHECK(schema_fails("{\"type\":\"string\",\"minLength\":3,\"maxLength\":1}", false,
                       "minLength is above maxLength"));
    CHECK(schema_fails("{\"enum\":[]}", false, "'enum' is empty"));
    CHECK(schema_fails("false", false, "accepts nothing"));
    CHECK(schema_fails(
        "{\"type\":\"object\",\"properties\":{},\"required\":[\"x\"],\"additionalProperties\":false}", false,
        "required property 'x'"));
    CHECK(schema_fails("{\"anyOf\":[false,{\"enum\":[]}]}", false, "no alternative of 'anyOf'"));
    CHECK(schema_fails("{\"allOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", false,
                       "allOf asks for types"));
    CHECK(schema_fails("{\"type\":\"strng\"}", false, "unknown type 'strng'"));
    CHECK(schema_fails("{\"$ref\":\"http://x/y\"}", false, "is not supported"));
    CHECK(schema_fails("{\"$ref\":\"#/$defs/nope\"}", false, "points at nothing"));
    CHECK(schema_fails("{\"$ref\":\"#\"}", false, "left-recursive"));
    CHECK(schema_fails("{\"type\":", false, "not valid JSON"));
    CHECK(schema_fails("{\"type\":\"string\",\"pattern\":\"^a\"}", true,
                       "'pattern' is not supported with strict"));
    CHECK(
        schema_fails("{\"type\":\"number\",\"minimum\":1}", true, "'minimum' is not supported with strict"));
    CHECK(schema_fails("{\"type\":\"object\",\"patternProperties\":{}}", true,
                       "'patternProperties' is not supported"));
    CHECK(schema_fails("{\"type\":\"string\",\"format\":\"email\"}", true, "format 'email'"));
    /* without strict the unsupported keywords are ignored */
    CHECK(schema_accepts("{\"type\":\"number\",\"minimum\":1}", "0"));
}

/* ---------------------------------------------------------------- tokens */

static bool allowed(const uint32_t *bits, int32_t id) {
    return (bits[id / 32] >> (id % 32)) & 1;
}

static void test_tokens(const char *file) {
    char path[1024];
    hearth_error err = {0};
    hearth_gguf *gg = hearth_gguf_open(test_shared_path(path, sizeof path, file), &err);
    if (!gg) {
        fprintf(stderr, "skip token tests: %s\n", err.msg);
        return;
    }
    hearth_tokenizer *t = hearth_tokenizer_from_gguf(gg, &err);
    REQUIRE(t);
    hearth_grammar_vocab *v = hearth_grammar_vocab_create(t, &err);
    REQUIRE(v);
    int32_t nv = hearth_tokenizer_n_vocab(t);
    uint32_t *bits = calloc(((size_t)nv + 31) / 32, sizeof *bits);
    REQUIRE(bits);
    const char *gb = "root ::= \" \"? \"{\\\"a\\\": \" [0-9]+ \"}\""; /* SPM encodes a leading space */
    hearth_grammar *g = hearth_grammar_parse(gb, strlen(gb), NULL, &err);
    REQUIRE(g);
    hearth_grammar_matcher *m = hearth_grammar_matcher_create(g, &err);
    REQUIRE(m);
    int n = hearth_grammar_matcher_mask(m, v, bits);
    CHECK(n > 0);
    /* every allowed token really continues the grammar; EOS is not allowed yet */
    int32_t eos = hearth_tokenizer_eos(t);
    if (eos >= 0) CHECK(!allowed(bits, eos));
    int checked = 0, bad = 0;
    for (int32_t id = 0; id < nv; id++) {
        char piece[600];
        size_t k = hearth_tokenizer_piece(t, id, false, piece, sizeof piece);
        bool exp = false;
        if (k && k < sizeof piece) {
            hearth_grammar_matcher *c = hearth_grammar_matcher_create(g, NULL);
            exp = hearth_grammar_matcher_accept_bytes(c, piece, k);
            hearth_grammar_matcher_free(c);
        }
        int ty = hearth_tokenizer_token_type(t, id);
        if (ty == HEARTH_TOKEN_CONTROL || ty == HEARTH_TOKEN_UNKNOWN || ty == HEARTH_TOKEN_UNUSED ||
            hearth_tokenizer_is_eog(t, id))
            exp = false;
        if (exp != allowed(bits, id)) bad++;
        checked++;
    }
    CHECKF(bad == 0, "%s: %d of %d tokens disagree between mask and byte matcher", file, bad, checked);
    /* feed a multi-symbol text token by token via the tokenizer */
    const char *text = "{\"a\": 12345}";
    hearth_tokens ids = {0};
    REQUIRE(hearth_tokenizer_encode(t, text, strlen(text), false, false, &ids, &err) == HEARTH_OK);
    bool all_ok = true;
    for (size_t i = 0; i < ids.n; i++) {
        hearth_grammar_matcher_mask(m, v, bits);
        bool ok = allowed(bits, ids.ids[i]) && hearth_grammar_matcher_accept_token(m, v, ids.ids[i]);
        if (!ok) fprintf(stderr, "%s: token %zu (id %d) refused\n", file, i, ids.ids[i]);
        all_ok = all_ok && ok;
    }
    CHECK(all_ok);
    /* the mask cache: a matcher that has seen many states gives, at every step of a
     * random constrained walk, the mask a fresh matcher fed the same tokens computes */
    {
        const char *sch = "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"},\"n\":"
                          "{\"type\":\"integer\"}},\"required\":[\"s\",\"n\"]}";
        hearth_grammar *gs = hearth_grammar_from_json_schema(sch, strlen(sch), true, &err);
        REQUIRE(gs);
        hearth_grammar_matcher *warm = hearth_grammar_matcher_create(gs, &err);
        uint32_t *fresh_bits = calloc(((size_t)nv + 31) / 32, sizeof *fresh_bits);
        int32_t *path_ids = malloc(sizeof *path_ids * 64), n_path = 0;
        uint64_t rng = 7;
        int differ = 0, steps = 0, one_by_one_bad = 0;
        for (int step = 0; step < 64 && !hearth_grammar_matcher_is_done(warm); step++) {
            int na = hearth_grammar_matcher_mask(warm, v, bits);
            hearth_grammar_matcher *fresh = hearth_grammar_matcher_create(gs, &err);
            for (int k = 0; k < n_path; k++)
                hearth_grammar_matcher_accept_token(fresh, v, path_ids[k]);
            int nb = hearth_grammar_matcher_mask(fresh, v, fresh_bits);
            hearth_grammar_matcher_free(fresh);
            differ += na != nb || memcmp(bits, fresh_bits, (((size_t)nv + 31) / 32) * sizeof *bits);
            steps++;
            /* one token checked alone gives its mask bit, and leaves the state
             * as it was (the next step's mask is compared with a fresh matcher's) */
            for (int32_t id = 0; id < nv; id++)
                one_by_one_bad += hearth_grammar_matcher_allows_token(warm, v, id) != allowed(bits, id);
            int32_t pick = -1, seen = 0; /* a random allowed non-EOG token, preferring short ones */
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            for (int32_t id = 0; id < nv; id++)
                if (allowed(bits, id) && !hearth_tokenizer_is_eog(t, id) &&
                    (uint64_t)(++seen) * 2654435761u % 97 == (rng >> 40) % 97)
                    pick = id;
            for (int32_t id = 0; pick < 0 && id < nv; id++)
                if (allowed(bits, id) && !hearth_tokenizer_is_eog(t, id)) pick = id;
            if (pick < 0 || !hearth_grammar_matcher_accept_token(warm, v, pick)) break;
            path_ids[n_path++] = pick;
        }
        CHECKF(differ == 0 && steps > 4, "%s: cached masks differ from fresh ones at %d of %d steps", file,
               differ, steps);
        CHECKF(one_by_one_bad == 0, "%s: allows_token disagrees with the mask %d times", file,
               one_by_one_bad);
        free(path_ids);
        free(fresh_bits);
        hearth_grammar_matcher_free(warm);
        hearth_grammar_release(gs);
    }
    CHECK(hearth_grammar_matcher_can_end(m));
    hearth_grammar_matcher_mask(m, v, bits);
    if (eos >= 0) CHECK(allowed(bits, eos)); /* the sentence is complete: EOS allowed */
    CHECK(hearth_grammar_matcher_accept_token(m, v, eos));
    /* a rejected token leaves the state as it was */
    int32_t x = hearth_tokenizer_find(t, "x", 1);
    if (x >= 0) CHECK(!hearth_grammar_matcher_accept_token(m, v, x));
    CHECK(hearth_grammar_matcher_can_end(m));
    hearth_tokens_free(&ids);
    hearth_grammar_matcher_free(m);
    hearth_grammar_release(g);

    /* partial UTF-8: "é" (C3 A9) byte by byte */
    const char *ge = "root ::= \"\\u00e9\" | \"\\u00e8x\"";
    g = hearth_grammar_parse(ge, strlen(ge), NULL, &err);
    REQUIRE(g);
    m = hearth_grammar_matcher_create(g, &err);
    CHECK(hearth_grammar_matcher_accept_bytes(m, "\xc3", 1));
    CHECK(!hearth_grammar_matcher_can_end(m));                 /* inside a character: no EOS */
    CHECK(!hearth_grammar_matcher_accept_bytes(m, "\xaa", 1)); /* U+00EA is not in the grammar */
    CHECK(hearth_grammar_matcher_accept_bytes(m, "\xa9", 1));
    CHECK(hearth_grammar_matcher_can_end(m) && hearth_grammar_matcher_is_done(m));
    hearth_grammar_matcher_free(m);
    m = hearth_grammar_matcher_create(g, &err);
    CHECK(!hearth_grammar_matcher_accept_bytes(m, "\xe4", 1)); /* starts a 3-byte character: none possible */
    CHECK(!hearth_grammar_matcher_accept_bytes(m, "\xe0", 1)); /* E0 starts U+0800.. only, not U+00E9 */
    CHECK(!hearth_grammar_matcher_accept_bytes(m, "\xc3\xa9x", 3));
    CHECK(hearth_grammar_matcher_accept_bytes(m, "\xc3\xa8", 2));
    hearth_grammar_matcher_mask(m, v, bits);
    if (eos >= 0) CHECK(!allowed(bits, eos));
    hearth_grammar_matcher_free(m);
    hearth_grammar_release(g);

    free(bits);
    hearth_grammar_vocab_free(v);
    hearth_tokenizer_free(t);
    hearth_gguf_close(gg);
}

/* Integer bounds are exact: every integer of a window around each range is
 * accepted iff it is inside, in the integer rule's form (no leading zeros). */
static void test_integer_ranges(void) {
    const long long ranges[][2] = {{0, 0},    {3, 17},    {-25, 7},     {-300, -12}, {10, 99},
                                   {1, 1000}, {95, 1205}, {-1, 1},      {0, 9},      {7, 7},
                                   {-9, -9},  {19, 2001}, {-1000, -999}};
    int wrong = 0;
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        long long lo = ranges[r][0], hi = ranges[r][1];
        char schema[160];
        snprintf(schema, sizeof schema, "{\"type\":\"integer\",\"minimum\":%lld,\"maximum\":%lld}", lo, hi);
        hearth_error err = {0};
        hearth_grammar *g = hearth_grammar_from_json_schema(schema, strlen(schema), true, &err);
        CHECKF(g != NULL, "%s: %s", schema, err.msg);
        if (!g) continue;
        for (long long v = lo - 40; v <= hi + 40; v++) {
            char t[32];
            snprintf(t, sizeof t, "%lld", v);
            bool in = v >= lo && v <= hi;
            if (g_accepts(g, t) != in) {
                if (wrong++ < 5)
                    fprintf(stderr, "range %lld..%lld: %s %s\n", lo, hi, t, in ? "refused" : "accepted");
            }
        }
        char lead[32];
        snprintf(lead, sizeof lead, "0%lld", lo > 0 ? lo : 5);
        CHECK(!g_accepts(g, lead));
        hearth_grammar_release(g);
    }
    CHECKF(wrong == 0, "%d integers misjudged", wrong);
    CHECK(!schema_accepts("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":5}",
                          "-0")); /* not the integer rule's form */
    /* zod's z.number().int(): the safe-integer bounds */
    const char *zod = "{\"type\":\"integer\",\"minimum\":-9007199254740991,\"maximum\":9007199254740991}";
    CHECK(schema_accepts(zod, "9007199254740991") && schema_accepts(zod, "-9007199254740991"));
    CHECK(schema_accepts(zod, "0") && schema_accepts(zod, "42") && schema_accepts(zod, "-7"));
    CHECK(!schema_accepts(zod, "9007199254740992") && !schema_accepts(zod, "-9007199254740992"));
    CHECK(!schema_accepts(zod, "1.5"));
    /* exclusive bounds (numbers, JSON Schema 6+) and one-sided ranges */
    CHECK(schema_accepts("{\"type\":\"integer\",\"exclusiveMinimum\":0}", "1"));
    CHECK(!schema_accepts("{\"type\":\"integer\",\"exclusiveMinimum\":0}", "0"));
    CHECK(!schema_accepts("{\"type\":\"integer\",\"exclusiveMinimum\":0}", "-3"));
    CHECK(schema_accepts("{\"type\":\"integer\",\"exclusiveMaximum\":10}", "-123456"));
    CHECK(!schema_accepts("{\"type\":\"integer\",\"exclusiveMaximum\":10}", "10"));
    CHECK(schema_accepts("{\"type\":\"integer\",\"minimum\":2.5}", "3"));
    CHECK(!schema_accepts("{\"type\":\"integer\",\"minimum\":2.5}", "2"));
    CHECK(schema_fails("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", true, "no integer satisfies"));
    CHECK(schema_fails("{\"type\":\"integer\",\"exclusiveMinimum\":true}", false, "boolean form"));
    CHECK(schema_fails("{\"type\":\"integer\",\"multipleOf\":3}", true, "'multipleOf' is not supported"));
}

int main(void) {
    test_integer_ranges();
    test_gbnf_constructs();
    test_gbnf_errors();
    test_schema_constructs();
    test_schema_errors();
    test_tokens("models/hearth-kjv-llama-q8_0.gguf"); /* SPM vocabulary with byte tokens */
    test_tokens("models/hearth-kjv-qwen2-q8_0.gguf"); /* byte-level BPE */
    return test_summary("grammar");
}
