/*
 * args.h - small command-line parsing kit shared by the subcommands.
 *
 * Each subcommand declares a table of options; arg_parse fills the targets,
 * collects positional arguments, and reports unknown flags, missing values
 * and malformed numbers with a message that names the flag and suggests
 * `--help`. No global state.
 */
#ifndef HEARTH_APP_ARGS_H
#define HEARTH_APP_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum arg_kind { ARG_FLAG, ARG_STR, ARG_INT, ARG_FLOAT, ARG_U64 } arg_kind;

typedef struct arg_opt {
    const char *short_name; /* "-m" or NULL */
    const char *long_name;  /* "--model" */
    arg_kind kind;
    void *target;        /* bool*, const char**, int*, float*, uint64_t* */
    const char *metavar; /* "PATH" (NULL for flags) */
    const char *help;    /* NULL: parsed but left out of arg_print_help (the
                            caller prints its line, as engine_opts.h does) */
} arg_opt;

/* Parse argv[1..argc). Positional args go to pos (up to max_pos). Returns 0,
 * 1 when --help was given (help printed to stdout), or -1 on error (message
 * printed to stderr). */
int arg_parse(const char *cmd, const char *usage, const char *desc, const arg_opt *opts, int n_opts, int argc,
              char **argv, const char **pos, int max_pos, int *n_pos);
void arg_print_help(const char *cmd, const char *usage, const char *desc, const arg_opt *opts, int n_opts);

#endif
