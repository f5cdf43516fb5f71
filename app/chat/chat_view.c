/*
 * chat_view.c - see chat_view.h.
 */
#define NCURSES_WIDECHAR 1
#include "chat_view.h"

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include "core/grow.h"

enum { PAIR_USER = 1, PAIR_MODEL, PAIR_ERROR, PAIR_ACCENT };

#define TEXT_X 3  /* transcript text column (labels at 1) */
#define INPUT_X 2 /* input text column (the prompt mark at 0) */
#define INPUT_MAX_ROWS 6

/* Display width of one character; unprintables were replaced on entry. */
static int char_width(wchar_t c) {
    int w = wcwidth(c);
    return w < 0 ? 1 : w;
}

/* ------------------------------------------------------------ terminal */

void chat_view_start(chat_view *v) {
    initscr();
    raw(); /* Ctrl-C arrives as a key: it stops an answer, it does not kill us */
    noecho();
    nonl(); /* Enter is '\r', Ctrl-J is '\n' */
    keypad(stdscr, TRUE);
    set_escdelay(25);
    v->colour = has_colors();
    if (v->colour) {
        start_color();
        use_default_colors();
        init_pair(PAIR_USER, COLOR_CYAN, -1);
        init_pair(PAIR_MODEL, COLOR_GREEN, -1);
        init_pair(PAIR_ERROR, COLOR_RED, -1);
        init_pair(PAIR_ACCENT, COLOR_CYAN, -1);
    }
}

void chat_view_stop(chat_view *v) {
    endwin();
}

/* ------------------------------------------------------------ entries */

static void entry_free(chat_entry *e) {
    free(e->text);
    free(e->lines);
}

void chat_view_free(chat_view *v) {
    for (int i = 0; i < v->n; i++)
        entry_free(&v->entries[i]);
    free(v->entries);
    v->entries = NULL;
    v->n = 0;
    v->cap = 0;
}

void chat_view_reset(chat_view *v) {
    for (int i = 0; i < v->n; i++)
        entry_free(&v->entries[i]);
    v->n = 0;
    v->scroll = 0;
}

static void entry_append(chat_entry *e, const char *utf8, size_t len) {
    size_t n;
    wchar_t *w = chat_utf8_to_wcs(utf8, len, &n);
    if (!w) return;
    if (!hearth_grow((void **)&e->text, &e->cap, e->len + n + 1, sizeof *e->text)) {
        free(w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        wchar_t c = w[i];
        if (c == L'\r') continue;
        if (c == L'\t' || (c < 0x20 && c != L'\n') || c == 0x7F) c = L' ';
        e->text[e->len++] = c;
    }
    e->text[e->len] = 0;
    e->wrap_width = 0; /* re-wrap */
    free(w);
}

void chat_view_add(chat_view *v, chat_entry_kind kind, const char *utf8) {
    if (!hearth_grow((void **)&v->entries, &v->cap, (size_t)v->n + 1, sizeof *v->entries)) return;
    chat_entry *e = &v->entries[v->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    entry_append(e, utf8, strlen(utf8));
}

void chat_view_append(chat_view *v, const char *utf8, size_t len) {
    if (v->n && len) entry_append(&v->entries[v->n - 1], utf8, len);
}

void chat_view_tag_last(chat_view *v, const char *tag) {
    if (v->n) snprintf(v->entries[v->n - 1].tag, sizeof v->entries[v->n - 1].tag, "%s", tag ? tag : "");
}

void chat_view_scroll(chat_view *v, int lines) {
    v->scroll += lines;
    if (v->scroll < 0) v->scroll = 0; /* the upper bound is applied when drawing */
}

void chat_view_scroll_page(chat_view *v, int pages) {
    int page = v->page > 2 ? v->page - 2 : 1;
    chat_view_scroll(v, pages * page);
}

/* ------------------------------------------------------------ word wrap */

static void push_line(chat_entry *e, size_t start, size_t len, size_t *cap, chat_line_style style) {
    if (!hearth_grow((void **)&e->lines, cap, (size_t)e->n_lines + 1, sizeof *e->lines)) return;
    e->lines[e->n_lines++] = (chat_line){start, len, style};
}

/* Break text [from, to) into lines of at most `width` columns: at '\n', else
 * after the last space that fits, else (one long word) at the width. */
static void wrap_range(chat_entry *e, size_t from, size_t to, int width, size_t *cap, chat_line_style style) {
    const wchar_t *t = e->text ? e->text : L"";
    size_t i = from;
    for (;;) {
        size_t pe = i;
        while (pe < to && t[pe] != L'\n')
            pe++;
        size_t s = i;
        if (s == pe) push_line(e, s, 0, cap, style);
        while (s < pe) {
            int w = 0;
            size_t j = s, brk = 0;
            while (j < pe) {
                int c = char_width(t[j]);
                if (w + c > width) break;
                w += c;
                j++;
                if (t[j - 1] == L' ') brk = j;
            }
            while (j < pe && char_width(t[j]) == 0)
                j++; /* combining marks stay with their base */
            if (j >= pe) {
                push_line(e, s, pe - s, cap, style);
                break;
            }
            size_t end = brk > s ? brk : j;
            if (end == s) end = s + 1; /* a character wider than the screen */
            size_t le = end;
            while (le > s && t[le - 1] == L' ')
                le--;
            push_line(e, s, le - s, cap, style);
            s = end;
            while (s < pe && t[s] == L' ')
                s++;
        }
        if (pe >= to) break;
        i = pe + 1;
    }
}

/* A model turn's <think> block: the text inside [*in0, *in1) and where the
 * answer starts (*after), or false when the turn does not start with one.
 * *closed: </think> has come. */
static bool think_block(const chat_entry *e, size_t *in0, size_t *in1, size_t *after, bool *closed) {
    if (e->kind != CHAT_ENTRY_MODEL || !e->text) return false;
    size_t i = 0;
    while (i < e->len && (e->text[i] == L' ' || e->text[i] == L'\n'))
        i++;
    if (wcsncmp(e->text + i, L"<think>", 7)) return false;
    *in0 = i + 7;
    const wchar_t *end = wcsstr(e->text + *in0, L"</think>");
    *closed = end != NULL;
    *in1 = end ? (size_t)(end - e->text) : e->len;
    *after = end ? *in1 + 8 : e->len;
    while (*after < e->len && e->text[*after] == L'\n')
        (*after)++;
    return true;
}

static size_t count_words(const wchar_t *t, size_t from, size_t to) {
    size_t n = 0;
    bool in = false;
    for (size_t i = from; i < to; i++) {
        bool sp = iswspace((wint_t)t[i]);
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static void wrap_entry(chat_entry *e, int width, bool show_thinking) {
    if (e->wrap_width == width && e->lines) return;
    free(e->lines);
    e->lines = NULL;
    e->n_lines = 0;
    size_t cap = 0, in0, in1, after;
    bool closed;
    if (think_block(e, &in0, &in1, &after, &closed)) {
        while (in0 < in1 && e->text[in0] == L'\n')
            in0++;
        if (closed && !show_thinking)
            push_line(e, in0, count_words(e->text, in0, in1), &cap, CHAT_LINE_FOLDED);
        else if (in1 > in0)
            wrap_range(e, in0, in1, width, &cap, CHAT_LINE_THINKING);
        if (closed && after < e->len) wrap_range(e, after, e->len, width, &cap, CHAT_LINE_TEXT);
    } else {
        wrap_range(e, 0, e->len, width, &cap, CHAT_LINE_TEXT);
    }
    if (!e->n_lines) push_line(e, 0, 0, &cap, CHAT_LINE_TEXT);
    while (e->n_lines > 1 && e->lines[e->n_lines - 1].len == 0 &&
           e->lines[e->n_lines - 1].style != CHAT_LINE_FOLDED)
        e->n_lines--; /* trailing blank lines */
    e->wrap_width = width;
}

void chat_view_toggle_thinking(chat_view *v) {
    v->show_thinking = !v->show_thinking;
    for (int i = 0; i < v->n; i++)
        v->entries[i].wrap_width = 0; /* lay out again */
}

static bool has_label(const chat_entry *e) {
    return e->kind == CHAT_ENTRY_USER || e->kind == CHAT_ENTRY_MODEL;
}

/* Rows an entry takes: label, text, one blank line after. */
static int entry_rows(const chat_entry *e) {
    return (has_label(e) ? 1 : 0) + e->n_lines + 1;
}

/* ------------------------------------------------------------ drawing */

/* Draw at most `width` columns of w[0..n) at (y, x). Returns columns used. */
static int put_wcs(int y, int x, const wchar_t *w, size_t n, int width) {
    int used = 0;
    size_t k = 0;
    while (k < n) {
        int c = char_width(w[k]);
        if (used + c > width) break;
        used += c;
        k++;
        while (k < n && char_width(w[k]) == 0)
            k++;
    }
    if (k) mvaddnwstr(y, x, w, (int)k);
    return used;
}

static int put_utf8(int y, int x, const char *s, int width) {
    size_t n;
    wchar_t *w = chat_utf8_to_wcs(s, strlen(s), &n);
    if (!w) return 0;
    int used = put_wcs(y, x, w, n, width);
    free(w);
    return used;
}

static attr_t label_attr(const chat_view *v, chat_entry_kind k) {
    if (!v->colour) return A_BOLD;
    return A_BOLD | COLOR_PAIR(k == CHAT_ENTRY_USER ? PAIR_USER : PAIR_MODEL);
}

static attr_t text_attr(const chat_view *v, chat_entry_kind k) {
    switch (k) {
    case CHAT_ENTRY_NOTE: return A_DIM;
    case CHAT_ENTRY_ERROR: return v->colour ? COLOR_PAIR(PAIR_ERROR) : A_BOLD;
    default: return A_NORMAL;
    }
}

static void draw_entry_row(chat_view *v, const chat_entry *e, int row, int y, int width) {
    if (has_label(e)) {
        if (row == 0) {
            attrset(label_attr(v, e->kind));
            int w = put_utf8(y, 1, e->kind == CHAT_ENTRY_USER ? "you" : v->model_name, width);
            attrset(A_DIM);
            if (e->tag[0]) put_utf8(y, 1 + w + 2, e->tag, width - w - 2);
            attrset(A_NORMAL);
            return;
        }
        row--;
    }
    if (row >= e->n_lines) return; /* the blank row after the entry */
    const chat_line *l = &e->lines[row];
    if (l->style == CHAT_LINE_FOLDED) {
        char fold[96];
        snprintf(fold, sizeof fold, "\u25B8 thought for %zu word%s (Ctrl-T shows it)", l->len,
                 l->len == 1 ? "" : "s");
        attrset(A_DIM);
        put_utf8(y, TEXT_X, fold, width);
        attrset(A_NORMAL);
        return;
    }
    attrset(l->style == CHAT_LINE_THINKING ? A_DIM : text_attr(v, e->kind));
    put_wcs(y, TEXT_X, e->text + l->start, l->len, width);
    attrset(A_NORMAL);
}

typedef struct input_layout {
    int rows;
    int cur_row, cur_col;
    size_t row_start[256]; /* index where each row starts (rows beyond 256 are not drawn) */
} input_layout;

/* Hard-wrap the input at `width` columns and find the cursor. */
static void layout_input(const chat_input *in, int width, input_layout *L) {
    int row = 0, col = 0;
    L->row_start[0] = 0;
    L->cur_row = L->cur_col = 0;
    for (size_t i = 0; i <= in->len; i++) {
        if (i == in->cur) {
            L->cur_row = row;
            L->cur_col = col;
        }
        if (i == in->len) break;
        wchar_t c = in->buf[i];
        int w = c == L'\n' ? 0 : char_width(c);
        if (c != L'\n' && col + w > width) {
            row++;
            col = 0;
            if (row < 256) L->row_start[row] = i;
            if (i == in->cur) {
                L->cur_row = row;
                L->cur_col = 0;
            }
        }
        if (c == L'\n') {
            row++;
            col = 0;
            if (row < 256) L->row_start[row] = i + 1;
        } else {
            col += w;
        }
    }
    if (L->cur_col >= width) { /* cursor after a full row: show it at the next row's start */
        L->cur_row++;
        L->cur_col = 0;
        if (L->cur_row > row) row = L->cur_row;
        if (row < 256) L->row_start[row] = in->len;
    }
    L->rows = row + 1 < 256 ? row + 1 : 256;
}

void chat_view_draw(chat_view *v, const chat_input *in, const char *status, const char *placeholder) {
    int H = LINES, W = COLS;
    erase();
    if (H < 3 || W < 8) {
        mvaddstr(0, 0, "(too small)");
        refresh();
        return;
    }
    /* input box */
    int iw = W - INPUT_X - 1;
    input_layout L;
    layout_input(in, iw, &L);
    int ih = L.rows < INPUT_MAX_ROWS ? L.rows : INPUT_MAX_ROWS;
    if (ih > H - 2) ih = H - 2;
    int top = L.cur_row - ih + 1 > 0 ? L.cur_row - ih + 1 : 0;
    int y_input = H - ih, y_status = y_input - 1, th = y_status;

    /* transcript: lay out every entry, draw the window that ends `scroll` rows above the bottom */
    int tw = W - TEXT_X - 1, total = 0;
    for (int i = 0; i < v->n; i++) {
        wrap_entry(&v->entries[i], tw, v->show_thinking);
        total += entry_rows(&v->entries[i]);
    }
    int max_scroll = total - th > 0 ? total - th : 0;
    if (v->scroll > max_scroll) v->scroll = max_scroll;
    v->page = th;
    int first = total - th - v->scroll > 0 ? total - th - v->scroll : 0;
    int line = 0;
    for (int i = 0; i < v->n && line < first + th; i++) {
        chat_entry *e = &v->entries[i];
        int rows = entry_rows(e);
        if (line + rows > first)
            for (int r = 0; r < rows; r++)
                if (line + r >= first && line + r < first + th) draw_entry_row(v, e, r, line + r - first, tw);
        line += rows;
    }

    /* status rule */
    attrset(A_DIM);
    mvhline(y_status, 0, ACS_HLINE, W);
    int sx = 2;
    if (status && *status) {
        mvaddch(y_status, sx - 1, ' ');
        int used = put_utf8(y_status, sx, status, W - 6);
        mvaddch(y_status, sx + used, ' ');
        sx += used + 2;
    }
    if (v->scroll > 0 && W - sx > 24) {
        char more[64];
        snprintf(more, sizeof more, " ↑ %d more below · PgDn ", v->scroll);
        size_t n;
        wchar_t *w = chat_utf8_to_wcs(more, strlen(more), &n);
        if (w) {
            int width = 0;
            for (size_t i = 0; i < n; i++)
                width += char_width(w[i]);
            attrset(A_BOLD);
            put_wcs(y_status, W - width - 1, w, n, width);
            free(w);
        }
    }
    attrset(A_NORMAL);

    /* input rows */
    attrset(v->colour ? A_BOLD | COLOR_PAIR(PAIR_ACCENT) : A_BOLD);
    mvaddwstr(y_input, 0, L"›");
    attrset(A_NORMAL);
    if (in->len == 0 && placeholder) {
        attrset(A_DIM);
        put_utf8(y_input, INPUT_X, placeholder, iw);
        attrset(A_NORMAL);
    }
    for (int r = 0; r < ih && top + r < L.rows; r++) {
        size_t s = L.row_start[top + r];
        size_t e = top + r + 1 < L.rows ? L.row_start[top + r + 1] : in->len;
        while (e > s && in->buf[e - 1] == L'\n')
            e--;
        if (e > s) put_wcs(y_input + r, INPUT_X, in->buf + s, e - s, iw);
    }
    move(y_input + L.cur_row - top, INPUT_X + L.cur_col);
    refresh();
}
