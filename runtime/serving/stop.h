/*
 * stop.h - streaming stop-string matching for generated text.
 *
 * Generated text arrives in pieces (one per token, each made of whole UTF-8
 * characters). A request may name stop strings: the text it returns ends
 * just before the first of them. Because a stop string can be split across
 * pieces, the matcher holds back any tail of the text that could still be
 * the start of a stop string, and releases it once it cannot (or when the
 * request ends for another reason).
 *
 * Use: hearth_stop_feed appends a piece and says how many bytes at
 * hearth_stop_text may go out now (and whether a stop string was found:
 * then those bytes are the text before it, and nothing after matters). The
 * caller passes them on and calls hearth_stop_consume with that count.
 *
 * Ownership: the matcher owns copies of the stop strings and the held text.
 * Invariants: the held text never contains a whole stop string once feed
 * has reported no match; with no stop strings nothing is ever held back (feed
 * releases everything). Matching is by bytes, so a released prefix of valid
 * UTF-8 text always ends on a character boundary.
 */
#ifndef HEARTH_STOP_H
#define HEARTH_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/strbuf.h"

typedef struct hearth_stop {
    char **stop; /* non-empty stop strings (copies) */
    int n_stop;
    strbuf hold; /* text not yet released */
} hearth_stop;

/* Copy the stop strings (NULL and empty ones are skipped). On failure the
 * matcher is left empty (safe to free) and err says why. */
hearth_status hearth_stop_init(hearth_stop *s, const char *const *stop, int n_stop, hearth_error *err);
void hearth_stop_free(hearth_stop *s);

/* Append n bytes of text (n may be 0). Returns how many bytes at the front of
 * hearth_stop_text may be released now; *matched when a stop string was
 * found, the count then being the bytes before its earliest occurrence. */
size_t hearth_stop_feed(hearth_stop *s, const char *text, size_t n, bool *matched);
/* The request ends: append the final n bytes and return how many bytes of the
 * held text go out. cut_at_stop (the request stopped) cuts them before a stop
 * string found in them; otherwise everything held goes out, including
 * prefixes of stop strings that never completed. */
size_t hearth_stop_finish(hearth_stop *s, const char *text, size_t n, bool cut_at_stop);

/* The held text (always a C string, "" when empty) and its length. */
const char *hearth_stop_text(const hearth_stop *s);
size_t hearth_stop_held(const hearth_stop *s);
/* Drop the first n held bytes (released by the caller). */
void hearth_stop_consume(hearth_stop *s, size_t n);
/* Drop all held text (after a match: the stop string and what follows). */
void hearth_stop_clear(hearth_stop *s);

#endif
