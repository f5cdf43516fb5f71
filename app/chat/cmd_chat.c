/*
 * cmd_chat.c - `hearth chat`: talk with a model.
 *
 * Three front ends over one chat_session (same conversation code):
 *   - the ncurses TUI (chat_tui.c) when stdin and stdout are terminals;
 *   - --once "question": print the answer to stdout and exit;
 *   - otherwise read stdin, one user turn per line (lines starting with '/'
 *     are commands, their output goes to stderr), answers to stdout, one per
 *     turn followed by a newline.
 * Settings come from the config file (--config, else the default path; see
 * docs/CONFIG.md), then the flags; the engine options are the shared ones
 * of app/cli/engine_opts.h. Exit status: 0; 1 when the model cannot
 * be loaded or a turn fails; 2 for usage errors and a config file with errors.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "chat_commands.h"
#include "chat_session.h"
#include "chat_tui.h"

/* ------------------------------------------------------------ non-interactive */

static void print_text(const chat_event *ev, void *user) {
    if (ev->text_len) {
        fwrite(ev->text, 1, ev->text_len, stdout);
        fflush(stdout);
    }
    if (ev->kind == HEARTH_EVENT_DONE && ev->finish == HEARTH_FINISH_ERROR)
        *(char **)user = strdup(ev->error);
}

/* One turn, streamed to stdout. Returns false (message on stderr) on failure. */
static bool run_turn(chat_session *s, const char *text, bool show_stats) {
    hearth_error err = {0};
    if (chat_session_send(s, text, &err)) {
        fprintf(stderr, "hearth chat: %s\n", err.msg);
        return false;
    }
    char *error = NULL;
    while (chat_session_busy(s)) {
        struct pollfd pfd = {chat_session_wait_fd(s), POLLIN, 0};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) break;
        chat_session_drain(s, print_text, &error);
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (error) {
        fprintf(stderr, "hearth chat: %s\n", error);
        free(error);
        return false;
    }
    if (show_stats) {
        char status[512];
        chat_session_status(s, status, sizeof status);
        fprintf(stderr, "hearth: %s\n", status);
    }
    return true;
}

static void say_stderr(void *user, bool error, const char *text) {
    (void)user;
    fprintf(stderr, "%s\n", text);
}

/* Lines from stdin: turns and commands. */
static int run_lines(chat_session *s, bool show_stats) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n) continue;
        if (line[0] == '/') {
            chat_cmd_result r = chat_command_run(s, line, say_stderr, NULL);
            if (r == CHAT_CMD_QUIT) break;
            if (r == CHAT_CMD_ERROR) rc = 1;
            continue;
        }
        if (!run_turn(s, line, show_stats)) rc = 1;
    }
    free(line);
    return rc;
}

/* ------------------------------------------------------------ command */

/* Parse argv. Returns -1 to go on, else the exit status. */
static int chat_parse_args(int argc, char **argv, chat_options *o, app_engine_opts *eo, const char **once,
                           const char **load, const char **save, bool *stats) {
    const char *config_path = NULL;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &o->model, "MODEL",
         "a configured model name or a GGUF file (default: the configured default, else the sample model)"},
        {NULL, "--config", ARG_STR, &config_path, "PATH",
         "config file (default $XDG_CONFIG_HOME/hearth/config.yaml)"},
        {NULL, "--once", ARG_STR, once, "TEXT", "ask one question, print the answer, exit"},
        {NULL, "--system", ARG_STR, &o->system, "TEXT", "system prompt"},
        {NULL, "--temp", ARG_FLOAT, &o->temp, "T", "temperature; 0 = greedy (default 0.8)"},
        {NULL, "--top-p", ARG_FLOAT, &o->top_p, "P", "nucleus sampling (default 0.95, 1 = off)"},
        {NULL, "--seed", ARG_U64, &o->seed, "S", "random seed"},
        {"-n", "--max-tokens", ARG_INT, &o->max_tokens, "N",
         "longest answer (default: until the end of the turn)"},
        {NULL, "--ignore-eos", ARG_FLAG, &o->ignore_eos, NULL, "keep generating past the end of the turn"},
        {NULL, "--history-db", ARG_STR, &o->history_db, "PATH",
         "saved conversations (default $XDG_DATA_HOME/hearth/history.sqlite)"},
        {NULL, "--load", ARG_STR, load, "NAME", "continue a saved conversation"},
        {NULL, "--save", ARG_STR, save, "NAME", "without the TUI: save the conversation at the end"},
        {NULL, "--stats", ARG_FLAG, stats, NULL,
         "without the TUI: print the status line to stderr after each answer"},
    };
    const char *pos[1];
    int n_pos;
    int r = app_engine_opts_parse(
        eo, "chat", "[-m MODEL] [--once TEXT] [options]",
        "Chat with a model in the terminal. Enter sends, Alt-Enter or Ctrl-J adds a newline, Esc stops\n"
        "an answer, /help lists the commands. With --once, or when stdin is not a terminal (one turn\n"
        "per line), answers go to stdout.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (n_pos) {
        fprintf(stderr,
                "hearth chat: unexpected argument '%s': use --once TEXT for a question (see --help)\n",
                pos[0]);
        return 2;
    }
    if (eo->print_config) return app_engine_opts_print_json(eo, "chat", o->model, 1);
    return -1;
}

/* One session over s: the TUI, --once, or stdin lines; then --save. */
static int chat_run(chat_session *s, const char *once, const char *load, const char *save, bool stats) {
    hearth_error err = {0};
    if (load) {
        chat_history *h = chat_session_history(s, &err);
        if (!h || chat_history_load(h, load, &s->conv, NULL, 0, &err)) {
            fprintf(stderr, "hearth chat: %s\n", err.msg);
            return 1;
        }
        snprintf(s->conv_name, sizeof s->conv_name, "%s", load);
    }
    int rc;
    bool interactive = !once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (interactive)
        rc = chat_tui_run(s);
    else if (once)
        rc = run_turn(s, once, stats) ? 0 : 1;
    else
        rc = run_lines(s, stats);
    if (!interactive && save) {
        chat_history *h = chat_session_history(s, &err);
        if (!h || chat_history_save(h, save, s->model_path, &s->conv, &err)) {
            fprintf(stderr, "hearth chat: %s\n", err.msg);
            rc = 1;
        }
    }
    return rc;
}

int cmd_chat(int argc, char **argv) {
    chat_options o = {.temp = -1, .top_p = -1};
    const char *once = NULL, *load = NULL, *save = NULL;
    bool stats = false;
    hearth_config cfg;
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    if (!app_engine_opts_load_config("chat", argc, argv, &cfg)) {
        hearth_config_free(&cfg);
        return 2;
    }
    app_engine_opts_apply_config(&eo, &cfg);
    int rc = chat_parse_args(argc, argv, &o, &eo, &once, &load, &save, &stats);
    if (rc >= 0) {
        hearth_config_free(&cfg);
        return rc;
    }
    o.config = &cfg;
    o.engine = &eo;
    const char *delay = getenv("HEARTH_CHAT_TOKEN_DELAY_MS");
    if (delay) o.token_delay_ms = atoi(delay);

    chat_session s;
    hearth_error err = {0};
    if (chat_session_open(&s, &o, &err)) {
        fprintf(stderr, "hearth chat: %s\n", err.msg);
        rc = 1;
    } else {
        rc = chat_run(&s, once, load, save, stats);
    }
    chat_session_close(&s);
    hearth_config_free(&cfg);
    return rc;
}
