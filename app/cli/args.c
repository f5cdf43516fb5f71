/*
 * args.c - see args.h.
 */
#include "args.h"

#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void arg_print_help(const char *cmd, const char *usage, const char *desc, const arg_opt *opts, int n_opts) {
    printf("usage: hearth %s %s\n\n%s\n\noptions:\n", cmd, usage, desc);
    for (int i = 0; i < n_opts; i++) {
        if (!opts[i].help) continue; /* listed elsewhere (engine_opts.h) */
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", opts[i].short_name ? opts[i].short_name : "",
                 opts[i].short_name ? ", " : "", opts[i].long_name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        printf("  %-28s %s\n", left, opts[i].help);
    }
    printf("  %-28s %s\n", "-h, --help", "show this help");
}

static int set_value(const char *cmd, const arg_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case ARG_STR: /* -m/--model NAME: a pulled model's name works wherever a path does */
        *(const char **)o->target =
            o->long_name && !strcmp(o->long_name, "--model") ? app_resolve_model(v) : v;
        return 0;
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end || x < -2147483647L || x > 2147483647L) break;
        *(int *)o->target = (int)x;
        return 0;
    }
    case ARG_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || !*v || *end || *v == '-') break;
        *(uint64_t *)o->target = x;
        return 0;
    }
    case ARG_FLOAT: {
        float x = strtof(v, &end);
        if (errno || !*v || *end) break;
        *(float *)o->target = x;
        return 0;
    }
    case ARG_FLAG: return 0;
    }
    fprintf(stderr, "hearth %s: %s expects %s, got '%s' (see hearth %s --help)\n", cmd, o->long_name,
            o->kind == ARG_FLOAT ? "a number" : "a whole number", v, cmd);
    return -1;
}

int arg_parse(const char *cmd, const char *usage, const char *desc, const arg_opt *opts, int n_opts, int argc,
              char **argv, const char **pos, int max_pos, int *n_pos) {
    *n_pos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            if (*n_pos >= max_pos) {
                fprintf(stderr, "hearth %s: unexpected argument '%s' (see hearth %s --help)\n", cmd, a, cmd);
                return -1;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            arg_print_help(cmd, usage, desc, opts, n_opts);
            return 1;
        }
        const char *eq = strchr(a, '=');
        size_t name_len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        const arg_opt *o = NULL;
        for (int k = 0; k < n_opts && !o; k++) {
            if ((opts[k].short_name && strlen(opts[k].short_name) == name_len &&
                 !strncmp(a, opts[k].short_name, name_len)) ||
                (strlen(opts[k].long_name) == name_len && !strncmp(a, opts[k].long_name, name_len)))
                o = &opts[k];
        }
        if (!o) {
            fprintf(stderr, "hearth %s: unknown option '%.*s' (see hearth %s --help)\n", cmd, (int)name_len,
                    a, cmd);
            return -1;
        }
        if (o->kind == ARG_FLAG) {
            if (eq && name_len != strlen(a)) {
                fprintf(stderr, "hearth %s: %s takes no value\n", cmd, o->long_name);
                return -1;
            }
            *(bool *)o->target = true;
            continue;
        }
        const char *v;
        if (eq && name_len != strlen(a))
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            fprintf(stderr, "hearth %s: %s needs a value %s (see hearth %s --help)\n", cmd, o->long_name,
                    o->metavar ? o->metavar : "", cmd);
            return -1;
        }
        if (set_value(cmd, o, v)) return -1;
    }
    return 0;
}
