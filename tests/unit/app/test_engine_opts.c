/*
 * test_engine_opts.c - the shared engine option table (app/cli/engine_opts.h):
 * defaults, the config file over them, flags over both, bad flag values
 * (rejected, the options unchanged), the generated arg_opt entries, the
 * engine config they give, bench's memory-only cache, and the write-back
 * into a hearth_config.
 */
#include <stdio.h>
#include <string.h>

#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "runtime/serving/engine.h"
#include "test.h"

/* Parse argv (NULL-terminated after argv[0]) through the table. */
static int parse(app_engine_opts *eo, char **argv) {
    int argc = 0;
    while (argv[argc])
        argc++;
    int n_pos;
    return app_engine_opts_parse(eo, "test", "", "", NULL, 0, argc, argv, NULL, 0, &n_pos);
}

static void test_defaults(void) {
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    CHECK(!strcmp(eo.backend, "auto"));
    CHECK(eo.threads == 0 && eo.gpu_layers == -1 && eo.ctx == 0 && eo.batch == 512 && eo.parallel == 0);
    CHECK(eo.max_waiting == 256 && eo.kv_type == HEARTH_F16 && eo.prefix_cache && !eo.cache_memory_only);
    hearth_engine_config ec;
    char db[1024];
    app_engine_opts_engine_config(&eo, 8, &ec, db, sizeof db);
    CHECK(ec.n_parallel == 8 && ec.n_batch == 512 && ec.prefix_cache);
    CHECK(ec.cache_db && strstr(ec.cache_db, "prefix-cache.sqlite")); /* the XDG file */
    app_engine_opts_bench_defaults(&eo);
    app_engine_opts_engine_config(&eo, 8, &ec, db, sizeof db);
    CHECK(ec.cache_db == NULL); /* bench: memory only */
}

static void test_config_then_flags(void) {
    const char *yaml = "threads: 3\ncontext: 256\nbatch: 64\nkv_type: q8_0\nbackend: cpu\nparallel: 2\n"
                       "prefix_cache:\n  path: /tmp/x.sqlite\n  max_size: 1MiB\nserver:\n  max_waiting: 9\n";
    hearth_config cfg;
    hearth_error err = {0};
    REQUIRE(hearth_config_load_memory(yaml, strlen(yaml), NULL, &cfg, &err) == HEARTH_OK);
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    app_engine_opts_apply_config(&eo, &cfg);
    CHECK(eo.threads == 3 && eo.ctx == 256 && eo.batch == 64 && eo.kv_type == HEARTH_Q8_0 &&
          eo.parallel == 2);
    CHECK(!strcmp(eo.backend, "cpu") && !strcmp(eo.cache_db, "/tmp/x.sqlite") &&
          eo.cache_max_bytes == 1048576);
    CHECK(eo.max_waiting == 9 && eo.gpu_layers == -1);
    CHECK(!strcmp(eo.source[1], "config") && !strcmp(eo.source[2], "default"));
    char *argv[] = {"test", "-t", "5", "--ctx=512", "--cache-db", "none", "--no-prefix-cache", NULL};
    CHECK(parse(&eo, argv) == 0);
    CHECK(eo.threads == 5 && eo.ctx == 512 && eo.batch == 64 && eo.cache_memory_only && !eo.prefix_cache);
    CHECK(!strcmp(eo.source[1], "flag"));
    hearth_engine_config ec;
    char db[1024];
    app_engine_opts_engine_config(&eo, 1, &ec, db, sizeof db);
    CHECK(ec.n_ctx == 512 && ec.n_parallel == 2 && ec.cache_db == NULL && !ec.prefix_cache);
    hearth_config_free(&cfg);
}

static void test_bad_flags(void) {
    const char *bad[][2] = {
        {"--threads", "abc"}, {"--threads", "-1"},  {"--gpu-layers", "-5"},       {"--ctx", "8"},
        {"--batch", "0"},     {"--parallel", "-1"}, {"--max-waiting", "0"},       {"--kv-type", "q4_0"},
        {"--backend", "tpu"}, {"--cache-db", ""},   {"--cache-max-size", "lots"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        app_engine_opts eo;
        app_engine_opts_defaults(&eo);
        char *argv[] = {"test", (char *)bad[i][0], (char *)bad[i][1], NULL};
        CHECKF(parse(&eo, argv) == -1, "%s %s accepted", bad[i][0], bad[i][1]);
        CHECK(eo.threads == 0 && eo.batch == 512 && eo.kv_type == HEARTH_F16 && !strcmp(eo.backend, "auto"));
    }
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    char *argv[] = {"test", "--bogus", NULL};
    CHECK(parse(&eo, argv) == -1);
}

static void test_args_table(void) {
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    const char *x = NULL;
    arg_opt own[] = {{"-t", "--threads", ARG_STR, &x, "LIST", "a command's own -t wins"}};
    arg_opt out[APP_ARGS_MAX];
    int n = app_engine_opts_args(&eo, own, 1, out, APP_ARGS_MAX);
    CHECK(n == 1 + (APP_ENGINE_OPTS_N - 1) + 1); /* the engine's --threads is left out: own wins */
    int n_threads = 0;
    for (int i = 0; i < n; i++)
        n_threads += !strcmp(out[i].long_name, "--threads");
    CHECK(n_threads == 1);
    char *help = NULL;
    size_t help_n = 0;
    FILE *f = open_memstream(&help, &help_n);
    REQUIRE(f);
    app_engine_opts_print_help(&eo, f);
    fclose(f);
    CHECK(help && !strstr(help, "--threads") && strstr(help, "--batch")); /* listed once, with bench's */
    free(help);
    CHECK(out[0].help && !out[1].help); /* engine lines come from app_engine_opts_print_help */
    CHECK(!strcmp(out[n - 1].long_name, "--print-config"));
    char *argv[] = {"test", "-t", "1,2", "-b", "8", NULL};
    int n_pos;
    CHECK(arg_parse("test", "", "", out, n, 5, argv, NULL, 0, &n_pos) == 0);
    CHECK(x && !strcmp(x, "1,2"));
    CHECK(app_engine_opts_apply_flags(&eo, "test") && eo.batch == 8 && eo.threads == 0);
}

int main(void) {
    test_defaults();
    test_config_then_flags();
    test_bad_flags();
    test_args_table();
    return test_summary("test_engine_opts");
}
