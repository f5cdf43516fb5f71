/*
 * chat_tui.h - the interactive `hearth chat`: an ncurses loop over a
 * chat_session (see chat_view.h for the screen, chat_input.h for the editor,
 * chat_commands.h for the slash commands).
 *
 * Keys: Enter sends; Alt-Enter or Ctrl-J inserts a newline; Esc or Ctrl-C
 * stops the answer being generated (never quits); PgUp/PgDn (and
 * Shift-Up/Down) scroll; Up/Down move between input lines and, at the edge,
 * recall earlier messages; Ctrl-U clears the input; Ctrl-L redraws; Ctrl-D
 * on an empty input or /quit leaves.
 * The loop waits in poll() on the terminal and the session's event pipe, so
 * tokens appear as soon as the engine's worker produces them; redraws are
 * capped at about 60 per second while tokens stream.
 */
#ifndef HEARTH_APP_CHAT_TUI_H
#define HEARTH_APP_CHAT_TUI_H

#include "chat_session.h"

/* Runs until /quit or Ctrl-D; returns the exit status (0). */
int chat_tui_run(chat_session *s);

#endif
