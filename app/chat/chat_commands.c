/*
 * chat_commands.c - see chat_commands.h.
 */
#include "chat_commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/os.h"

static const char help_text[] =
    "Commands\n"
    "  /system TEXT   set the system prompt (/system alone clears it)\n"
    "  /clear         start over (the system prompt stays)\n"
    "  /temp X        sampling temperature (0 = greedy)\n"
    "  /top-p X       nucleus sampling (1 = off)\n"
    "  /model NAME    switch to another model (a configured name or a GGUF path)\n"
    "  /save [NAME]   save the conversation; /load NAME resumes one\n"
    "  /history       list saved conversations\n"
    "  /stats         timings of the last answer and the prefix cache\n"
    "  /quit          leave (also Ctrl-D on an empty input)\n"
    "Keys\n"
    "  Enter sends · Alt-Enter or Ctrl-J inserts a newline\n"
    "  Esc or Ctrl-C stops the answer being generated\n"
    "  PgUp/PgDn scroll the transcript · Ctrl-U clears the input\n"
    "  Ctrl-T shows or folds a reasoning model's thinking";

const char *chat_help_text(void) {
    return help_text;
}

static void sayf(chat_say_fn say, void *user, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sayf(chat_say_fn say, void *user, bool error, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say(user, error, buf);
}

static bool parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    while (*end == ' ')
        end++;
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

typedef struct list_ctx {
    char buf[4096];
    size_t len;
    int n;
} list_ctx;

static void list_one(const chat_history_entry *e, void *user) {
    list_ctx *l = user;
    char when[32];
    time_t t = (time_t)e->updated;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    char preview[48];
    size_t k = 0;
    for (const char *p = e->preview; *p && k < 40; p++) /* first line, cut on a character boundary */
        if (*p == '\n')
            break;
        else
            preview[k++] = *p;
    while (k && ((unsigned char)preview[k - 1] & 0xC0) == 0x80)
        k--;
    if (k && (unsigned char)preview[k - 1] >= 0xC0) k--;
    preview[k] = 0;
    if (l->len < sizeof l->buf) {
        int w = snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s  %-20s %3d msgs  %s\n", when, e->name,
                         e->n_messages, preview);
        if (w > 0) l->len += (size_t)w;
        if (l->len > sizeof l->buf) l->len = sizeof l->buf;
    }
    l->n++;
}

chat_cmd_result chat_command_run(chat_session *s, const char *line, chat_say_fn say, void *user) {
    char cmd[32];
    size_t n = 0;
    const char *p = line + 1;
    while (*p && *p != ' ' && *p != '\n' && n + 1 < sizeof cmd)
        cmd[n++] = *p++;
    cmd[n] = 0;
    while (*p == ' ')
        p++;
    const char *arg = p; /* the rest of the line, may be "" */
    hearth_error err = {0};

    if (!strcmp(cmd, "help") || !strcmp(cmd, "?")) {
        say(user, false, help_text);
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit") || !strcmp(cmd, "q")) return CHAT_CMD_QUIT;
    if (!strcmp(cmd, "system")) {
        if (chat_session_busy(s)) goto busy;
        if (chat_conv_set_system(&s->conv, arg, &err)) goto fail;
        say(user, false, *arg ? "System prompt set." : "System prompt cleared.");
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "clear")) {
        if (chat_session_busy(s)) goto busy;
        chat_conv_clear(&s->conv);
        s->conv_name[0] = 0;
        s->have_last = false;
        return CHAT_CMD_RELOADED;
    }
    if (!strcmp(cmd, "temp") || !strcmp(cmd, "top-p")) {
        bool temp = cmd[0] == 't' && cmd[1] == 'e';
        float v;
        if (!*arg) {
            sayf(say, user, false, "%s is %g", cmd, temp ? s->sampling.temperature : s->sampling.top_p);
            return CHAT_CMD_OK;
        }
        if (!parse_float(arg, 0, temp ? 10.0f : 1.0f, &v)) {
            sayf(say, user, true, "/%s expects a number from 0 to %s, got '%s'", cmd, temp ? "10" : "1", arg);
            return CHAT_CMD_ERROR;
        }
        if (temp)
            s->sampling.temperature = v;
        else
            s->sampling.top_p = v;
        sayf(say, user, false, "%s set to %g (from the next answer).", cmd, v);
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "model")) {
        if (!*arg) {
            sayf(say, user, false, "Model: %s (%s)", s->model_label, s->model_path);
            return CHAT_CMD_OK;
        }
        if (chat_session_switch_model(s, arg, &err)) goto fail;
        sayf(say, user, false, "Now using %s.", s->model_label);
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "save")) {
        chat_history *h = chat_session_history(s, &err);
        if (!h) goto fail;
        char name[128];
        if (*arg)
            snprintf(name, sizeof name, "%s", arg);
        else if (s->conv_name[0])
            snprintf(name, sizeof name, "%s", s->conv_name);
        else {
            time_t t = (time_t)hearth_wall_seconds();
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(name, sizeof name, "chat-%Y%m%d-%H%M%S", &tm);
        }
        if (chat_history_save(h, name, s->model_path, &s->conv, &err)) goto fail;
        snprintf(s->conv_name, sizeof s->conv_name, "%s", name);
        sayf(say, user, false, "Saved as '%s' (%d messages). /load %s resumes it.", name,
             s->conv.n_msgs - (s->conv.in_turn ? 1 : 0), name);
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "load")) {
        if (chat_session_busy(s)) goto busy;
        if (!*arg) {
            say(user, true, "/load needs a name (/history lists them)");
            return CHAT_CMD_ERROR;
        }
        chat_history *h = chat_session_history(s, &err);
        if (!h) goto fail;
        if (chat_history_load(h, arg, &s->conv, NULL, 0, &err)) goto fail;
        snprintf(s->conv_name, sizeof s->conv_name, "%s", arg);
        s->have_last = false;
        return CHAT_CMD_RELOADED;
    }
    if (!strcmp(cmd, "history")) {
        chat_history *h = chat_session_history(s, &err);
        if (!h) goto fail;
        list_ctx *l = calloc(1, sizeof *l);
        if (!l) return CHAT_CMD_ERROR;
        if (chat_history_list(h, list_one, l, &err)) {
            free(l);
            goto fail;
        }
        if (!l->n)
            sayf(say, user, false, "No saved conversations yet (in %s). /save NAME keeps this one.",
                 chat_history_path(h));
        else {
            if (l->len && l->buf[l->len - 1] == '\n') l->buf[--l->len] = 0;
            say(user, false, l->buf);
        }
        free(l);
        return CHAT_CMD_OK;
    }
    if (!strcmp(cmd, "stats")) {
        hearth_engine_stats es;
        hearth_engine_stats_get(s->engine, &es);
        char last[512] = "No answer yet.";
        if (s->have_last) {
            const hearth_request_stats *st = &s->last;
            snprintf(last, sizeof last,
                     "Last answer (%s): prompt %d tokens, %d from the prefix cache; TTFT %.1f ms; "
                     "%d tokens at %.1f tok/s; total %.0f ms",
                     hearth_finish_name(s->last_finish), st->prompt_tokens, st->cached_tokens, st->ttft_ms,
                     st->generated_tokens, chat_stats_tok_s(st), st->total_ms);
        }
        sayf(say, user, false,
             "%s\nModel %s on %s; context %d/%d tokens%s.\nSampling: temperature %g, top-p %g, top-k %d, "
             "min-p %g.\nEngine: %llu requests, %llu prompt tokens (%llu cached), %llu generated.",
             last, s->model_label, s->backend_label, chat_conv_n_tokens(&s->conv), chat_session_n_ctx(s),
             s->conv.n_trimmed ? " (older turns dropped to fit)" : "", s->sampling.temperature,
             s->sampling.top_p, s->sampling.top_k, s->sampling.min_p, (unsigned long long)es.requests_done,
             (unsigned long long)es.prompt_tokens, (unsigned long long)es.cached_tokens,
             (unsigned long long)es.tokens_generated);
        if (es.spec != HEARTH_SPEC_OFF)
            sayf(say, user, false,
                 "Speculation (%s): %llu drafted, %llu accepted (%.0f%%); %.2f tokens per target pass; "
                 "%llu steps without it (load).",
                 hearth_spec_mode_name(es.spec), (unsigned long long)es.spec_drafted,
                 (unsigned long long)es.spec_accepted,
                 es.spec_drafted ? 100.0 * (double)es.spec_accepted / (double)es.spec_drafted : 0.0,
                 es.spec_passes ? (double)es.spec_tokens / (double)es.spec_passes : 0.0,
                 (unsigned long long)es.spec_off_load);
        return CHAT_CMD_OK;
    }
    sayf(say, user, true, "Unknown command /%s. /help lists the commands.", cmd);
    return CHAT_CMD_ERROR;
busy:
    say(user, true, "An answer is streaming: stop it first (Esc or Ctrl-C).");
    return CHAT_CMD_ERROR;
fail:
    say(user, true, err.msg);
    return CHAT_CMD_ERROR;
}
