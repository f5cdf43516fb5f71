/*
 * chat_tui.c - see chat_tui.h.
 */
#define NCURSES_WIDECHAR 1
#include "chat_tui.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_commands.h"
#include "chat_view.h"
#include "app/cli/common.h"

#define KEY_CTRL(c) ((c)&0x1f)
#define RECALL_MAX 64

typedef struct tui {
    chat_session *s;
    chat_view view;
    chat_input in;
    bool quit;
    bool dirty;
    double last_draw;
    bool hinted_quit;
    char *recall[RECALL_MAX]; /* messages sent, oldest first */
    int n_recall, recall_pos; /* recall_pos == n_recall: editing a new message */
} tui;

/* ------------------------------------------------------------ transcript */

static void say_note(void *user, bool error, const char *text) {
    tui *t = user;
    chat_view_add(&t->view, error ? CHAT_ENTRY_ERROR : CHAT_ENTRY_NOTE, text);
    t->view.scroll = 0;
    t->dirty = true;
}

/* Show the session's conversation from scratch (start, /clear, /load). */
static void show_conversation(tui *t) {
    chat_session *s = t->s;
    chat_view_reset(&t->view);
    char note[512];
    snprintf(note, sizeof note, "hearth chat · %s · Enter sends · Alt-Enter newline · Esc stops · /help",
             s->model_label);
    chat_view_add(&t->view, CHAT_ENTRY_NOTE, note);
    if (s->template_note[0]) chat_view_add(&t->view, CHAT_ENTRY_NOTE, s->template_note);
    if (s->conv_name[0] && s->conv.n_msgs) {
        snprintf(note, sizeof note, "Conversation '%s', %d messages.", s->conv_name, s->conv.n_msgs);
        chat_view_add(&t->view, CHAT_ENTRY_NOTE, note);
    }
    if (s->conv.system) {
        chat_view_add(&t->view, CHAT_ENTRY_NOTE, "System prompt: ");
        chat_view_append(&t->view, s->conv.system, strlen(s->conv.system));
    }
    for (int i = 0; i < s->conv.n_msgs; i++)
        chat_view_add(&t->view, s->conv.msgs[i].role == CHAT_ROLE_USER ? CHAT_ENTRY_USER : CHAT_ENTRY_MODEL,
                      s->conv.msgs[i].text);
    t->dirty = true;
}

static void on_event(const chat_event *ev, void *user) {
    tui *t = user;
    if (ev->text_len) chat_view_append(&t->view, ev->text, ev->text_len);
    if (ev->kind == HEARTH_EVENT_DONE) {
        const char *tag = ev->finish == HEARTH_FINISH_CANCELLED ? "stopped"
                          : ev->finish == HEARTH_FINISH_LENGTH  ? "cut off (length)"
                          : ev->finish == HEARTH_FINISH_ERROR   ? "failed"
                                                                : "";
        chat_view_tag_last(&t->view, tag);
        if (ev->finish == HEARTH_FINISH_ERROR) chat_view_add(&t->view, CHAT_ENTRY_ERROR, ev->error);
    }
    t->dirty = true;
}

/* ------------------------------------------------------------ actions */

static void remember(tui *t, const char *text) {
    if (t->n_recall && !strcmp(t->recall[t->n_recall - 1], text)) {
        t->recall_pos = t->n_recall;
        return;
    }
    if (t->n_recall == RECALL_MAX) {
        free(t->recall[0]);
        memmove(t->recall, t->recall + 1, (RECALL_MAX - 1) * sizeof *t->recall);
        t->n_recall--;
    }
    char *c = strdup(text);
    if (c) t->recall[t->n_recall++] = c;
    t->recall_pos = t->n_recall;
}

static void submit(tui *t) {
    if (chat_input_empty(&t->in)) return;
    char *text = chat_input_text(&t->in);
    if (!text) return;
    const char *p = text;
    while (*p == ' ' || *p == '\n')
        p++;
    if (*p == '/') {
        remember(t, p);
        chat_input_clear(&t->in);
        chat_cmd_result r = chat_command_run(t->s, p, say_note, t);
        if (r == CHAT_CMD_QUIT) t->quit = true;
        if (r == CHAT_CMD_RELOADED) {
            show_conversation(t);
            if (!t->s->conv.n_msgs && !t->s->conv_name[0]) say_note(t, false, "Cleared.");
        }
    } else if (chat_session_busy(t->s)) {
        say_note(t, true, "An answer is still streaming: wait, or stop it with Esc.");
    } else {
        hearth_error err = {0};
        if (chat_session_send(t->s, p, &err)) {
            say_note(t, true, err.msg); /* the text stays in the input box */
        } else {
            remember(t, p);
            chat_input_clear(&t->in);
            chat_view_add(&t->view, CHAT_ENTRY_USER, p);
            chat_view_add(&t->view, CHAT_ENTRY_MODEL, "");
            chat_view_tag_last(&t->view, "…");
            t->view.scroll = 0;
        }
    }
    free(text);
    t->dirty = true;
}

static void recall(tui *t, int dir) {
    int pos = t->recall_pos + dir;
    if (pos < 0 || pos > t->n_recall) return;
    t->recall_pos = pos;
    if (pos == t->n_recall)
        chat_input_clear(&t->in);
    else
        chat_input_set(&t->in, t->recall[pos]);
}

static void stop_or_hint(tui *t, bool ctrl_c) {
    if (chat_session_busy(t->s)) {
        chat_session_stop(t->s);
    } else if (!chat_input_empty(&t->in)) {
        if (ctrl_c) chat_input_clear(&t->in);
    } else if (ctrl_c && !t->hinted_quit) {
        say_note(t, false, "Nothing to stop. /quit or Ctrl-D leaves.");
        t->hinted_quit = true;
    }
}

static void handle_key(tui *t, int kind, wint_t ch) {
    t->dirty = true;
    if (kind == KEY_CODE_YES) {
        switch (ch) {
        case KEY_ENTER: submit(t); break;
        case KEY_BACKSPACE: chat_input_backspace(&t->in); break;
        case KEY_DC: chat_input_delete(&t->in); break;
        case KEY_LEFT: chat_input_left(&t->in); break;
        case KEY_RIGHT: chat_input_right(&t->in); break;
        case KEY_HOME: chat_input_home(&t->in); break;
        case KEY_END: chat_input_end(&t->in); break;
        case KEY_UP:
            if (!chat_input_up(&t->in)) recall(t, -1);
            break;
        case KEY_DOWN:
            if (!chat_input_down(&t->in)) recall(t, +1);
            break;
        case KEY_PPAGE: chat_view_scroll_page(&t->view, +1); break;
        case KEY_NPAGE: chat_view_scroll_page(&t->view, -1); break;
        case KEY_SR: chat_view_scroll(&t->view, +1); break;
        case KEY_SF: chat_view_scroll(&t->view, -1); break;
        case KEY_RESIZE: break; /* LINES/COLS are new; the redraw lays out again */
        default: t->dirty = false; break;
        }
        return;
    }
    switch (ch) {
    case L'\r': submit(t); break;
    case L'\n': chat_input_insert(&t->in, L'\n'); break; /* Ctrl-J */
    case KEY_CTRL('c'): stop_or_hint(t, true); break;
    case 27: { /* Esc alone stops; Esc + Enter (Alt-Enter) is a newline; Alt + other keys: the key */
        wint_t next;
        timeout(30);
        int k = get_wch(&next);
        nodelay(stdscr, TRUE);
        if (k == ERR)
            stop_or_hint(t, false);
        else if (k == OK && (next == L'\r' || next == L'\n'))
            chat_input_insert(&t->in, L'\n');
        else if (k == KEY_CODE_YES && next == KEY_ENTER)
            chat_input_insert(&t->in, L'\n');
        else if (!(k == OK && next == 27))
            handle_key(t, k, next);
        break;
    }
    case KEY_CTRL('t'): chat_view_toggle_thinking(&t->view); break;
    case KEY_CTRL('d'):
        if (chat_input_empty(&t->in))
            t->quit = true;
        else
            chat_input_delete(&t->in);
        break;
    case 127:
    case KEY_CTRL('h'): chat_input_backspace(&t->in); break;
    case KEY_CTRL('a'): chat_input_home(&t->in); break;
    case KEY_CTRL('e'): chat_input_end(&t->in); break;
    case KEY_CTRL('u'): chat_input_clear(&t->in); break;
    case KEY_CTRL('l'): clearok(curscr, TRUE); break;
    case L'\t': chat_input_insert(&t->in, L' '); break;
    default:
        if (ch >= 0x20)
            chat_input_insert(&t->in, (wchar_t)ch);
        else
            t->dirty = false;
        break;
    }
}

/* ------------------------------------------------------------ loop */

static void draw(tui *t) {
    char status[512];
    chat_session_status(t->s, status, sizeof status);
    const char *placeholder = chat_session_busy(t->s)
                                  ? "answering… Esc stops it"
                                  : "Ask something · Enter sends · /help for commands and keys";
    chat_view_draw(&t->view, &t->in, status, placeholder);
    t->dirty = false;
    t->last_draw = hearth_now_ms();
}

int chat_tui_run(chat_session *s) {
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8"))
        setlocale(LC_CTYPE, "C.UTF-8"); /* wide characters need UTF-8 */
    tui *t = calloc(1, sizeof *t);
    if (!t) return 1;
    t->s = s;
    snprintf(t->view.model_name, sizeof t->view.model_name, "%s", s->model->name);
    chat_view_start(&t->view);
    nodelay(stdscr, TRUE);
    show_conversation(t);
    while (!t->quit) {
        const double frame_ms = 16;
        int wait = -1;
        if (t->dirty) {
            double since = hearth_now_ms() - t->last_draw;
            if (since >= frame_ms || !chat_session_busy(s))
                draw(t);
            else
                wait = (int)(frame_ms - since) + 1;
        }
        struct pollfd pfd[2] = {{STDIN_FILENO, POLLIN, 0}, {chat_session_wait_fd(s), POLLIN, 0}};
        int pr = poll(pfd, 2, wait);
        if (pr < 0 && errno != EINTR) break;
        if (pfd[1].revents & POLLIN) {
            chat_session_drain(s, on_event, t);
            if (!chat_session_busy(s)) t->dirty = true;
        }
        /* keys, and KEY_RESIZE after SIGWINCH (which may have interrupted poll) */
        wint_t ch;
        int k;
        while (!t->quit && (k = get_wch(&ch)) != ERR)
            handle_key(t, k, ch);
        if (pfd[0].revents & (POLLHUP | POLLERR)) t->quit = true;
    }
    chat_session_stop(s);
    chat_view_stop(&t->view);
    chat_view_free(&t->view);
    chat_input_free(&t->in);
    for (int i = 0; i < t->n_recall; i++)
        free(t->recall[i]);
    free(t);
    return 0;
}
