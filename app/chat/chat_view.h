/*
 * chat_view.h - the ncurses screen of `hearth chat`: transcript, status line,
 * input box.
 *
 * Layout, top to bottom: the transcript (word-wrapped turns, the newest at the
 * bottom unless scrolled back), one rule line carrying the status, and the
 * input box (1 to 6 rows, growing with its text). Every draw lays the whole
 * screen out again from the entries, so a resize needs nothing but a redraw.
 * Widths come from wcwidth(), so wide (CJK) and combining characters line up;
 * the locale must be a UTF-8 one (setlocale(LC_ALL, "") before start).
 * Colours are used when the terminal has them, bold/dim/reverse otherwise.
 * A model turn that starts with <think> (Qwen3, DeepSeek-R1 distills) shows
 * its reasoning dim, without the tags, while it streams; once </think> has
 * come the block folds to one line ("thought for N words") unless
 * show_thinking (Ctrl-T) unfolds it.
 *
 * Ownership: the view owns its entries (copies of the text). Only the UI
 * thread calls it. This is the only chat file that includes ncurses.
 */
#ifndef HEARTH_APP_CHAT_VIEW_H
#define HEARTH_APP_CHAT_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <wchar.h>

#include "chat_input.h"

typedef enum chat_entry_kind {
    CHAT_ENTRY_USER,
    CHAT_ENTRY_MODEL,
    CHAT_ENTRY_NOTE, /* command output, hints */
    CHAT_ENTRY_ERROR,
} chat_entry_kind;

typedef enum chat_line_style {
    CHAT_LINE_TEXT,
    CHAT_LINE_THINKING, /* inside the model's <think> block: drawn dim */
    CHAT_LINE_FOLDED,   /* the one line a finished, folded <think> block shows */
} chat_line_style;

typedef struct chat_line {
    size_t start, len; /* a slice of the entry's text (FOLDED: the block's word count in len) */
    chat_line_style style;
} chat_line;

typedef struct chat_entry {
    chat_entry_kind kind;
    wchar_t *text;
    size_t len, cap;
    char tag[32];     /* shown after a model turn, e.g. "stopped" */
    chat_line *lines; /* wrapped at wrap_width; NULL: not yet */
    int n_lines;
    int wrap_width;
} chat_entry;

typedef struct chat_view {
    chat_entry *entries;
    int n;
    size_t cap;
    int scroll; /* transcript lines scrolled back from the bottom */
    bool show_thinking; /* Ctrl-T: finished <think> blocks unfolded (dim) instead of one line */
    int page;   /* transcript rows at the last draw */
    bool colour;
    char model_name[128]; /* label of the model's turns */
} chat_view;

/* Take over the terminal / give it back. */
void chat_view_start(chat_view *v);
void chat_view_stop(chat_view *v);
void chat_view_free(chat_view *v);

void chat_view_add(chat_view *v, chat_entry_kind kind, const char *utf8);
/* Append text to the last entry. */
void chat_view_append(chat_view *v, const char *utf8, size_t len);
void chat_view_tag_last(chat_view *v, const char *tag);
void chat_view_reset(chat_view *v);
/* Scroll back (positive) or forward by `lines`; chat_view_scroll_page by pages. */
void chat_view_scroll(chat_view *v, int lines);
void chat_view_scroll_page(chat_view *v, int pages);
/* Fold or unfold every finished <think> block (a model that reasons first:
 * the block is shown dim while it streams, then folded to one line). */
void chat_view_toggle_thinking(chat_view *v);

/* Draw everything. placeholder: shown dim in an empty input box. */
void chat_view_draw(chat_view *v, const chat_input *in, const char *status, const char *placeholder);

#endif
