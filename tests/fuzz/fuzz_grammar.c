/*
 * fuzz_grammar.c - libFuzzer target for the grammar parsers
 * (runtime/serving/grammar_parse.c, grammar_schema.c): GBNF and JSON Schema
 * are request input. The first byte picks the parser; the rest is the text.
 * A compile either fails with a message or gives a grammar whose matcher can
 * be created and fed the input's own bytes without crashing, looping or
 * leaking (the checks promised by grammar.h: no left recursion, no undefined
 * rule, a root that derives something).
 * Ownership: the input belongs to libFuzzer; everything else is freed here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/serving/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    hearth_error err = {0};
    hearth_grammar *g = NULL;
    if (data[0] & 1) {
        g = hearth_grammar_parse(text, len, NULL, &err);
    } else {
        g = hearth_grammar_from_json_schema(text, len, (data[0] & 2) != 0, &err);
    }
    if (!g) {
        if (!err.msg[0]) abort(); /* every failure says why */
        return 0;
    }
    hearth_grammar_matcher *m = hearth_grammar_matcher_create(g, &err);
    if (m) {
        for (size_t i = 0; i < len; i++)
            hearth_grammar_matcher_accept_bytes(m, text + i, 1);
        (void)hearth_grammar_matcher_can_end(m);
        hearth_grammar_matcher_free(m);
    }
    hearth_grammar_release(g);
    return 0;
}
