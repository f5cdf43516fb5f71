/*
 * chat_input.h - the multi-line input editor of `hearth chat`, and the
 * UTF-8 <-> wide-character helpers the screen code shares.
 *
 * The editor is a buffer of wide characters (code points) with a cursor;
 * '\n' separates lines. It knows nothing about ncurses: the TUI maps keys to
 * these calls and the view lays the text out (chat_view.c).
 * Ownership: the editor owns its buffer. Invariant: 0 <= cur <= len, buf[len] == 0.
 */
#ifndef HEARTH_APP_CHAT_INPUT_H
#define HEARTH_APP_CHAT_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <wchar.h>

typedef struct chat_input {
    wchar_t *buf;
    size_t len, cap;
    size_t cur; /* cursor, an index into buf */
} chat_input;

void chat_input_free(chat_input *in);
bool chat_input_insert(chat_input *in, wchar_t c);
void chat_input_backspace(chat_input *in);
void chat_input_delete(chat_input *in);
void chat_input_left(chat_input *in);
void chat_input_right(chat_input *in);
void chat_input_home(chat_input *in); /* start of the current line */
void chat_input_end(chat_input *in);  /* end of the current line */
/* Move to the previous / next line at the same column; false at the edge. */
bool chat_input_up(chat_input *in);
bool chat_input_down(chat_input *in);
void chat_input_clear(chat_input *in);
bool chat_input_empty(const chat_input *in);
/* The text as UTF-8 (malloc'd), trailing whitespace removed. */
char *chat_input_text(const chat_input *in);
/* Replace the content with UTF-8 text, cursor at the end. */
void chat_input_set(chat_input *in, const char *utf8);

/* Decode UTF-8 into code points (invalid bytes become U+FFFD). Returns a
 * malloc'd, NUL-terminated array and its length in *n. */
wchar_t *chat_utf8_to_wcs(const char *s, size_t len, size_t *n);
/* Encode code points as UTF-8 (malloc'd, NUL-terminated). */
char *chat_wcs_to_utf8(const wchar_t *w, size_t n);

#endif
