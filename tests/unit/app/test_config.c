/*
 * test_config.c - config.yaml: every key read right, every error a user can
 * see reported with its file, line and column, defaults, the XDG path,
 * relative and "~" paths, size units, $HEARTH_API_KEY, flags over the file,
 * and the shipped example (packaging/config.example.yaml) being valid.
 * Owns: a temporary directory under $TMPDIR, removed at the end.
 */
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/cli/config.h"
#include "app/cli/engine_opts.h"
#include "runtime/serving/engine.h"
#include "test.h"

/* The engine config a command gets from c alone (no flags), through the same
 * resolution every command uses (app/cli/engine_opts.h). */
static void engine_config_of(const hearth_config *c, int default_parallel, hearth_engine_config *ec) {
    static char db[1024]; /* ec->cache_db may point here */
    app_engine_opts eo;
    app_engine_opts_defaults(&eo);
    app_engine_opts_apply_config(&eo, c);
    app_engine_opts_engine_config(&eo, default_parallel, ec, db, sizeof db);
}

static char tmp[1024]; /* realpath of the temp dir */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

static const char *tmp_path(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", tmp, rel);
    return buf;
}

static void rm_rf(const char *dir) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static bool feq(float a, float b) {
    return fabsf(a - b) < 1e-6f;
}

/* Parse `yaml` as "cfg.yaml"; it must fail with HEARTH_ERR_FORMAT, a message
 * that starts with `where` ("cfg.yaml:L:C: ") and contains `what`, and leave
 * the defaults behind. */
static void expect_error_at(int line, const char *yaml, const char *where, const char *what) {
    hearth_config c;
    hearth_error err = {0};
    hearth_status st = hearth_config_load_memory(yaml, strlen(yaml), "cfg.yaml", &c, &err);
    CHECKF(st == HEARTH_ERR_FORMAT, "line %d: status %d for:\n%s", line, st, yaml);
    CHECKF(!strncmp(err.msg, where, strlen(where)), "line %d: '%s' does not start with '%s'", line, err.msg,
           where);
    CHECKF(strstr(err.msg, what) != NULL, "line %d: '%s' does not contain '%s'", line, err.msg, what);
    CHECK(c.n_models == 0 && c.models == NULL && c.threads == 0 && !strcmp(c.backend, "auto"));
    hearth_config_free(&c);
}
#define EXPECT_ERROR(yaml, where, what) expect_error_at(__LINE__, yaml, where, what)

/* ------------------------------------------------------------ defaults */

static void test_defaults(void) {
    hearth_config c;
    hearth_error err = {0};
    const char *empties[] = {"", "# only a comment\n", "---\n", "~\n", "\n\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        REQUIRE(hearth_config_load_memory(empties[i], strlen(empties[i]), "cfg.yaml", &c, &err) == HEARTH_OK);
        CHECK(c.path == NULL && c.default_model == NULL && c.n_models == 0);
        CHECK(!strcmp(c.backend, "auto") && c.gpu_layers == -1 && c.threads == 0 && c.context == 0);
        CHECK(c.parallel == 0 && c.batch == 0 && c.kv_type == HEARTH_F16);
        CHECK(c.prefix_cache.enabled && c.prefix_cache.path == NULL && c.prefix_cache.max_size == 0);
        CHECK(!c.server.socket && !c.server.listen && !c.server.api_key && !c.server.max_body);
        CHECK(c.server.max_waiting == 0 && !c.chat.history_db);
        CHECK(hearth_config_find_model(&c, NULL) == NULL && hearth_config_find_model(&c, "x") == NULL);
        hearth_config_free(&c);
    }
    /* null values reset to the defaults; empty sections are fine */
    const char *nulls = "backend:\nthreads: ~\nkv_type: null\nserver:\nprefix_cache: {}\nmodels:\n";
    REQUIRE(hearth_config_load_memory(nulls, strlen(nulls), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(!strcmp(c.backend, "auto") && c.threads == 0 && c.kv_type == HEARTH_F16 && c.n_models == 0);
    hearth_config_free(&c);

    /* an empty config leaves the engine and sampling defaults alone */
    hearth_config_init(&c);
    hearth_engine_config ec, before = hearth_engine_defaults();
    engine_config_of(&c, 1, &ec);
    CHECK(ec.n_ctx == before.n_ctx && ec.n_parallel == 1 && ec.n_batch == before.n_batch);
    CHECK(ec.kv_type == HEARTH_F16 && ec.prefix_cache && ec.cache_db_max_bytes == 0);
    CHECK(ec.cache_db && strstr(ec.cache_db, "hearth/prefix-cache.sqlite")); /* the default file */
    CHECK(ec.max_waiting == before.max_waiting);
    hearth_sampling_params sp = hearth_config_sampling(NULL), sd = hearth_sampling_defaults();
    CHECK(!memcmp(&sp, &sd, sizeof sp));
    hearth_config_free(&c);
}

/* ------------------------------------------------------------ every key */

static const char *k_full = "# every key\n"
                            "default_model: big\n"
                            "models:\n"
                            "  big:\n"
                            "    path: /models/big.gguf\n"
                            "    chat_template: \"{{ messages }}\"\n"
                            "    draft: small\n"
                            "    system_prompt: Be brief.\n"
                            "    max_tokens: 256\n"
                            "    temperature: 0.25\n"
                            "    top_k: 20\n"
                            "    top_p: 0.5\n"
                            "    min_p: 0.1\n"
                            "    repeat_penalty: 1.1\n"
                            "    presence_penalty: 0.5\n"
                            "    frequency_penalty: -0.5\n"
                            "    seed: 18446744073709551615\n"
                            "  small: /models/small.gguf\n"
                            "  tmpl:\n"
                            "    path: tmpl.gguf\n"
                            "    chat_template_file: t.jinja\n"
                            "backend: cuda:1\n"
                            "gpu_layers: 20\n"
                            "threads: 6\n"
                            "context: 8192\n"
                            "parallel: 4\n"
                            "batch: 256\n"
                            "kv_type: Q8_0\n"
                            "prefix_cache:\n"
                            "  enabled: no\n"
                            "  path: /var/cache/pc.sqlite\n"
                            "  max_size: 1.5 GiB\n"
                            "server:\n"
                            "  socket: /run/hearth.sock\n"
                            "  listen: \"[::1]:9000\"\n"
                            "  api_key: s3cret\n"
                            "  max_body: 64KB\n"
                            "  max_waiting: 32\n"
                            "chat:\n"
                            "  history_db: /data/history.sqlite\n";

static void test_full_file(void) {
    char dir[PATH_MAX], cfgp[PATH_MAX], tp[PATH_MAX];
    tmp_path(dir, sizeof dir, "full");
    mkdir(dir, 0700);
    tmp_path(cfgp, sizeof cfgp, "full/config.yaml");
    write_file(cfgp, k_full);
    write_file(tmp_path(tp, sizeof tp, "full/t.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}");
    unsetenv("HEARTH_API_KEY");

    hearth_config c;
    hearth_error err = {0};
    hearth_status st = hearth_config_load(cfgp, &c, &err);
    CHECKF(st == HEARTH_OK, "%s", err.msg);
    if (st) return;
    CHECK(c.path && !strcmp(c.path, cfgp));
    CHECK(!strcmp(c.default_model, "big"));
    REQUIRE(c.n_models == 3);
    const hearth_config_model *big = &c.models[0], *small = &c.models[1], *tm = &c.models[2];
    CHECK(!strcmp(big->name, "big") && !strcmp(big->path, "/models/big.gguf"));
    CHECK(!strcmp(big->chat_template, "{{ messages }}") && big->chat_template_file == NULL);
    CHECK(!strcmp(big->draft, "small") && !strcmp(big->system_prompt, "Be brief."));
    CHECK(big->max_tokens == 256);
    CHECK(feq(big->sampling.temperature, 0.25f) && big->sampling.top_k == 20 &&
          feq(big->sampling.top_p, 0.5f));
    CHECK(feq(big->sampling.min_p, 0.1f) && feq(big->sampling.repeat_penalty, 1.1f));
    CHECK(feq(big->sampling.presence_penalty, 0.5f) && feq(big->sampling.frequency_penalty, -0.5f));
    CHECK(big->sampling.seed == UINT64_MAX);
    CHECK(big->sampling.penalty_last_n == hearth_sampling_defaults().penalty_last_n);
    /* the short form: defaults for everything but the path */
    hearth_sampling_params sd = hearth_sampling_defaults(), ss = hearth_config_sampling(small);
    CHECK(!strcmp(small->name, "small") && !strcmp(small->path, "/models/small.gguf"));
    CHECK(!memcmp(&ss, &sd, sizeof ss) && !small->chat_template && !small->draft && small->max_tokens == 0);
    /* relative paths resolve against the file's directory; the template file is read */
    char want[PATH_MAX];
    CHECK(!strcmp(tm->path, tmp_path(want, sizeof want, "full/tmpl.gguf")));
    CHECK(!strcmp(tm->chat_template_file, tp));
    CHECK(tm->chat_template &&
          !strcmp(tm->chat_template, "{% for m in messages %}{{ m.content }}{% endfor %}"));

    CHECK(!strcmp(c.backend, "cuda:1") && c.gpu_layers == 20 && c.threads == 6 && c.context == 8192);
    CHECK(c.parallel == 4 && c.batch == 256 && c.kv_type == HEARTH_Q8_0);
    CHECK(!c.prefix_cache.enabled && !strcmp(c.prefix_cache.path, "/var/cache/pc.sqlite"));
    CHECK(c.prefix_cache.max_size == 1610612736ull);
    CHECK(!strcmp(c.server.socket, "/run/hearth.sock") && !strcmp(c.server.listen, "[::1]:9000"));
    CHECK(!strcmp(c.server.api_key, "s3cret") && c.server.max_body == 64000 && c.server.max_waiting == 32);
    CHECK(!strcmp(c.chat.history_db, "/data/history.sqlite"));

    CHECK(hearth_config_find_model(&c, NULL) == big);
    CHECK(hearth_config_find_model(&c, "small") == small);
    CHECK(hearth_config_find_model(&c, "nope") == NULL);

    hearth_engine_config ec;
    engine_config_of(&c, 1, &ec);
    CHECK(ec.n_ctx == 8192 && ec.n_parallel == 4 && ec.n_batch == 256 && ec.kv_type == HEARTH_Q8_0);
    CHECK(!ec.prefix_cache && ec.cache_db == NULL && ec.cache_db_max_bytes == 1610612736ull);
    app_engine_opts eo; /* the path is kept for when the cache is on */
    app_engine_opts_defaults(&eo);
    app_engine_opts_apply_config(&eo, &c);
    CHECK(!strcmp(eo.cache_db, c.prefix_cache.path));
    CHECK(ec.max_waiting == 32);
    hearth_config_free(&c);
    CHECK(c.n_models == 0 && c.path == NULL); /* free leaves the defaults */
    hearth_config_free(&c);                   /* and is safe twice */

    /* without default_model the first model listed is the default */
    const char *two = "models:\n  b: b.gguf\n  a: a.gguf\n";
    REQUIRE(hearth_config_load_memory(two, strlen(two), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(hearth_config_find_model(&c, NULL) == &c.models[0] && !strcmp(c.models[0].name, "b"));
    hearth_config_free(&c);

    /* anchors and aliases work (a shared settings block) */
    const char *alias = "models:\n  a: &m {path: x.gguf, temperature: 0.2}\n  b: *m\n";
    REQUIRE(hearth_config_load_memory(alias, strlen(alias), "dir/cfg.yaml", &c, &err) == HEARTH_OK);
    REQUIRE(c.n_models == 2);
    CHECK(feq(c.models[1].sampling.temperature, 0.2f) && !strcmp(c.models[1].path, "dir/x.gguf"));
    hearth_config_free(&c);

    /* booleans and numbers in their other spellings */
    const char *spell = "prefix_cache: {enabled: On}\nthreads: +3\nmodels: {m: {path: m.gguf, temperature: "
                        "1e-1, top_p: 1}}\n";
    REQUIRE(hearth_config_load_memory(spell, strlen(spell), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(c.prefix_cache.enabled && c.threads == 3 && feq(c.models[0].sampling.temperature, 0.1f));
    CHECK(feq(c.models[0].sampling.top_p, 1.0f));
    hearth_config_free(&c);

    /* a byte-order mark and Windows line ends are fine */
    const char *crlf = "\xEF\xBB\xBFthreads: 2\r\nbatch: 3\r\n";
    REQUIRE(hearth_config_load_memory(crlf, strlen(crlf), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(c.threads == 2 && c.batch == 3);
    hearth_config_free(&c);
}

/* ------------------------------------------------------------ paths */

static void test_paths(void) {
    char home[PATH_MAX], buf[PATH_MAX], want[PATH_MAX];
    const char *old_home = getenv("HOME");
    char saved_home[PATH_MAX];
    snprintf(saved_home, sizeof saved_home, "%s", old_home ? old_home : "");

    /* $XDG_CONFIG_HOME wins when absolute; else ~/.config */
    setenv("XDG_CONFIG_HOME", tmp, 1);
    REQUIRE(hearth_config_default_path(buf, sizeof buf) == buf);
    CHECK(!strcmp(buf, tmp_path(want, sizeof want, "hearth/config.yaml")));
    CHECK(hearth_config_default_path(buf, 8) == NULL); /* never truncated */
    tmp_path(home, sizeof home, "home");
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    setenv("XDG_CONFIG_HOME", "relative/dir", 1); /* ignored, as the XDG spec says */
    REQUIRE(hearth_config_default_path(buf, sizeof buf));
    CHECK(!strcmp(buf, tmp_path(want, sizeof want, "home/.config/hearth/config.yaml")));
    unsetenv("XDG_CONFIG_HOME");
    REQUIRE(hearth_config_default_path(buf, sizeof buf));
    CHECK(!strcmp(buf, want));

    /* no default file: the defaults, no error */
    hearth_config c;
    hearth_error err = {0};
    setenv("XDG_CONFIG_HOME", tmp, 1);
    CHECK(hearth_config_load(NULL, &c, &err) == HEARTH_OK && c.path == NULL && c.n_models == 0);
    hearth_config_free(&c);
    /* the default file, when there is one, is read */
    char dir[PATH_MAX];
    mkdir(tmp_path(dir, sizeof dir, "hearth"), 0700);
    write_file(tmp_path(buf, sizeof buf, "hearth/config.yaml"),
               "threads: 3\nmodels:\n  m: ../m.gguf\n  h: ~/h.gguf\n  a: /abs/a.gguf\n");
    hearth_status st = hearth_config_load(NULL, &c, &err);
    CHECKF(st == HEARTH_OK, "%s", err.msg);
    if (!st) {
        CHECK(c.path && !strcmp(c.path, buf) && c.threads == 3);
        REQUIRE(c.n_models == 3);
        CHECK(!strcmp(c.models[0].path, tmp_path(want, sizeof want, "hearth/../m.gguf")));
        CHECK(!strcmp(c.models[1].path, tmp_path(want, sizeof want, "home/h.gguf")));
        CHECK(!strcmp(c.models[2].path, "/abs/a.gguf"));
    }
    hearth_config_free(&c);
    /* an explicit file that is missing (or a directory) is an error */
    CHECK(hearth_config_load(tmp_path(buf, sizeof buf, "nope.yaml"), &c, &err) == HEARTH_ERR_IO);
    CHECK_CONTAINS(err.msg, "nope.yaml: cannot open the config file");
    CHECK(hearth_config_load(tmp, &c, &err) == HEARTH_ERR_IO);
    CHECK_CONTAINS(err.msg, "directory");
    /* errors in a file name the file */
    write_file(buf, "threads: lots\n");
    CHECK(hearth_config_load(buf, &c, &err) == HEARTH_ERR_FORMAT);
    char prefix[PATH_MAX + 16];
    snprintf(prefix, sizeof prefix, "%s:1:10: ", buf);
    CHECKF(!strncmp(err.msg, prefix, strlen(prefix)), "%s", err.msg);
    unsetenv("XDG_CONFIG_HOME");
    if (*saved_home) setenv("HOME", saved_home, 1);
}

/* ------------------------------------------------------------ errors */

/* speculative: the section reaches the engine options (the flags' defaults
 * otherwise), and a file that says nothing leaves them as they were. */
static void test_speculative(void) {
    char p[PATH_MAX];
    tmp_path(p, sizeof p, "spec.yaml");
    write_file(p, "speculative:\n  mode: ngram\n  draft_max: 4\n  draft_min: 2\n");
    hearth_config c;
    hearth_error err = {0};
    REQUIRE(hearth_config_load(p, &c, &err) == HEARTH_OK);
    CHECK(c.speculative.mode == HEARTH_SPEC_NGRAM && c.speculative.draft_max == 4 && c.speculative.draft_min == 2);
    hearth_engine_config ec;
    engine_config_of(&c, 1, &ec);
    CHECK(ec.spec == HEARTH_SPEC_NGRAM && ec.draft_max == 4 && ec.draft_min == 2);
    hearth_config_free(&c);
    write_file(p, "threads: 2\n");
    REQUIRE(hearth_config_load(p, &c, &err) == HEARTH_OK);
    engine_config_of(&c, 1, &ec);
    CHECK(ec.spec == HEARTH_SPEC_OFF && ec.draft_max == 8 && ec.draft_min == 1);
    hearth_config_free(&c);
}

static void test_errors(void) {
    /* YAML syntax, with libyaml's problem and its position */
    EXPECT_ERROR("threads: 4\nserver: a: b\n",
                 "cfg.yaml:2:10: ", "invalid YAML: mapping values are not allowed");
    EXPECT_ERROR("models:\n  a: [x.gguf\nthreads: 2\n",
                 "cfg.yaml:3:8: ", "invalid YAML: did not find expected ',' or ']'");
    EXPECT_ERROR("threads: \"4\n", "cfg.yaml:2:1: ", "invalid YAML: found unexpected end of stream");
    EXPECT_ERROR("threads: 4\n\tbatch: 2\n", "cfg.yaml:2:1: ", "invalid YAML:");
    EXPECT_ERROR("chat: *nowhere\n", "cfg.yaml:1:7: ", "invalid YAML: found undefined alias");
    EXPECT_ERROR("threads: 4\nbackend: \xff\n",
                 "cfg.yaml:2:10: ", "invalid YAML: invalid leading UTF-8 octet");
    /* unknown keys, with a suggestion or the list of keys */
    EXPECT_ERROR("speculative:\n  mode: turbo\n", "cfg.yaml:2:9: ",
                 "speculative.mode: unknown speculative decoding mode 'turbo' (expected ngram or off)");
    EXPECT_ERROR("speculative:\n  draft_max: 99\n", "cfg.yaml:2:14: ",
                 "speculative.draft_max: 99 is out of range (expected 0 (the default, 8) or 1 to 32)");
    EXPECT_ERROR("threads: 2\ntreads: 4\n",
                 "cfg.yaml:2:1: ", "unknown key 'treads' (did you mean 'threads'?)");
    EXPECT_ERROR("server:\n  lisen: x:1\n",
                 "cfg.yaml:2:3: ", "unknown key 'lisen' in server (did you mean 'listen'?)");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    temprature: 1\n",
                 "cfg.yaml:4:5: ", "unknown key 'temprature' in models.a (did you mean 'temperature'?)");
    EXPECT_ERROR("colour: red\n",
                 "cfg.yaml:1:1: ", "unknown key 'colour' (expected one of: default_model, models,");
    EXPECT_ERROR("prefix_cache:\n  size: 1GB\n", "cfg.yaml:2:3: ",
                 "unknown key 'size' in prefix_cache (expected one of: enabled, path, max_size)");
    EXPECT_ERROR("[1]: x\n", "cfg.yaml:1:1: ", "config: expected a key name, got a list");
    /* wrong types */
    EXPECT_ERROR("threads: four\n", "cfg.yaml:1:10: ", "threads: expected an integer, got 'four'");
    EXPECT_ERROR("threads: 4.5\n", "cfg.yaml:1:10: ", "threads: expected an integer, got '4.5'");
    EXPECT_ERROR("context: {n: 1}\n", "cfg.yaml:1:10: ", "context: expected an integer, got a mapping");
    EXPECT_ERROR("backend: [cpu]\n", "cfg.yaml:1:10: ", "backend: expected a backend name, got a list");
    EXPECT_ERROR("server: 8080\n", "cfg.yaml:1:9: ", "server: expected a mapping of settings, got '8080'");
    EXPECT_ERROR("models: [a, b]\n",
                 "cfg.yaml:1:9: ", "models: expected a mapping of model names to their settings");
    EXPECT_ERROR("models:\n  a: [x]\n", "cfg.yaml:2:6: ", "models.a: expected the model's settings");
    EXPECT_ERROR("models:\n  a:\n", "cfg.yaml:2:5: ", "models.a: expected the model's settings");
    EXPECT_ERROR("prefix_cache:\n  enabled: maybe\n",
                 "cfg.yaml:2:12: ", "prefix_cache.enabled: expected true or false, got 'maybe'");
    EXPECT_ERROR("models:\n  a: {path: a.gguf, temperature: hot}\n",
                 "cfg.yaml:2:34: ", "models.a.temperature: expected a number, got 'hot'");
    EXPECT_ERROR("models:\n  a: {path: a.gguf, seed: -1}\n",
                 "cfg.yaml:2:27: ", "models.a.seed: expected a non-negative integer, got '-1'");
    EXPECT_ERROR("server:\n  max_body: 10 parsecs\n",
                 "cfg.yaml:2:13: ", "server.max_body: expected a size such as 512MiB or 2GB");
    EXPECT_ERROR("server:\n  api_key: \"a\\0b\"\n",
                 "cfg.yaml:2:12: ", "server.api_key: contains a NUL character");
    EXPECT_ERROR("server:\n  socket: \"\"\n",
                 "cfg.yaml:2:11: ", "server.socket: expected a file path, got an empty string");
    /* out-of-range and unknown values */
    EXPECT_ERROR("threads: -1\n",
                 "cfg.yaml:1:10: ", "threads: -1 is out of range (expected 0 (physical cores) to 4096)");
    EXPECT_ERROR("context: 8\n",
                 "cfg.yaml:1:10: ", "context: 8 is out of range (expected 0 (the model's) or 16 to");
    EXPECT_ERROR("context: 99999999999999999999\n",
                 "cfg.yaml:1:10: ", "context: 99999999999999999999 is out of range");
    EXPECT_ERROR("gpu_layers: -2\n", "cfg.yaml:1:13: ", "gpu_layers: -2 is out of range");
    EXPECT_ERROR("\nbackend: cude\n", "cfg.yaml:2:10: ",
                 "backend: unknown backend 'cude' (expected auto, cpu, cuda, cuda:N, vulkan or vulkan:N)");
    EXPECT_ERROR("backend: cpu:1\n", "cfg.yaml:1:10: ", "unknown backend 'cpu:1'");
    EXPECT_ERROR("kv_type: q4_0\n",
                 "cfg.yaml:1:10: ", "kv_type: unknown KV cache type 'q4_0' (expected f16, f32 or q8_0)");
    EXPECT_ERROR("server:\n  listen: localhost\n", "cfg.yaml:2:11: ", "server.listen: expected HOST:PORT");
    EXPECT_ERROR("server:\n  listen: 0.0.0.0:99999\n",
                 "cfg.yaml:2:11: ", "server.listen: expected HOST:PORT");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    top_p: 1.5\n",
                 "cfg.yaml:4:12: ", "models.a.top_p: 1.5 is out of range (expected 0 to 1 (1: off))");
    EXPECT_ERROR("models:\n  a: {path: a.gguf, repeat_penalty: 0}\n", "cfg.yaml:2:37: ", "out of range");
    EXPECT_ERROR("models:\n  a: {path: a.gguf, max_tokens: -2}\n", "cfg.yaml:2:33: ", "out of range");
    /* references to models */
    EXPECT_ERROR("default_model: nope\nmodels:\n  a: a.gguf\n  b: b.gguf\n",
                 "cfg.yaml:1:16: ", "default_model: no model named 'nope' in models (configured: a, b)");
    EXPECT_ERROR("default_model: nope\n", "cfg.yaml:1:16: ", "(no models are configured)");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    draft: b\n",
                 "cfg.yaml:4:12: ", "models.a.draft: no model named 'b' in models (configured: a)");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    draft: a\n",
                 "cfg.yaml:4:12: ", "models.a.draft: a model cannot be its own draft");
    EXPECT_ERROR("models:\n  a:\n    temperature: 0\n", "cfg.yaml:2:3: ", "models.a: no 'path' given");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    chat_template: x\n    chat_template_file: t.jinja\n",
                 "cfg.yaml:5:5: ", "models.a: chat_template and chat_template_file are both set");
    EXPECT_ERROR(
        "models:\n  a:\n    path: a.gguf\n    chat_template_file: /nonexistent/t.jinja\n", "cfg.yaml:4:25: ",
        "models.a.chat_template_file: cannot read the template '/nonexistent/t.jinja': No such file");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    chat_template_file: /dev/null\n",
                 "cfg.yaml:4:25: ", "not a regular file");
    EXPECT_ERROR("models:\n  \"\": a.gguf\n", "cfg.yaml:2:3: ", "models: a model name cannot be empty");
    /* duplicates */
    EXPECT_ERROR("threads: 1\nbatch: 2\nthreads: 2\n",
                 "cfg.yaml:3:1: ", "threads: duplicate key (first set at line 1, column 1)");
    EXPECT_ERROR("server:\n  listen: a:1\n  listen: b:2\n",
                 "cfg.yaml:3:3: ", "server.listen: duplicate key (first set at line 2, column 3)");
    EXPECT_ERROR("models:\n  a: a.gguf\n  b: b.gguf\n  a: c.gguf\n",
                 "cfg.yaml:4:3: ", "models.a: duplicate model (first defined at line 2, column 3)");
    EXPECT_ERROR("models:\n  a:\n    path: a.gguf\n    path: b.gguf\n",
                 "cfg.yaml:4:5: ", "models.a.path: duplicate key");
    /* the shape of the file */
    EXPECT_ERROR("- threads: 4\n", "cfg.yaml:1:1: ",
                 "the top level must be a mapping of settings (key: value lines), got a list");
    EXPECT_ERROR("\n\nhello\n", "cfg.yaml:3:1: ",
                 "the top level must be a mapping of settings (key: value lines), got 'hello'");
    EXPECT_ERROR("threads: 1\n---\nthreads: 2\n", "cfg.yaml:2:1: ", "a config holds one YAML document");
    /* long or odd values are quoted safely */
    EXPECT_ERROR("threads: \"a\\nb\"\n", "cfg.yaml:1:10: ", "got 'a?b'");
    char long_yaml[400];
    snprintf(long_yaml, sizeof long_yaml, "threads: %0300d\n", 7);
    memset(long_yaml + 9, 'x', 300);
    EXPECT_ERROR(long_yaml, "cfg.yaml:1:10: ", "...'");
}

/* ------------------------------------------------------------ sizes, environment */

static void test_sizes(void) {
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"1KB", 1000},
        {"1kb", 1000},
        {"1KiB", 1024},
        {"64 MiB", 67108864},
        {"2GiB", 2147483648ull},
        {"2GB", 2000000000ull},
        {"1.5GiB", 1610612736ull},
        {"1TB", 1000000000000ull},
        {"1TiB", 1099511627776ull},
        {"0.5 KiB", 512},
        {"1e3", 1000},
        {"18446744073709551615", UINT64_MAX},
        {"4194304TiB", 1ull << 62},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t n = 1;
        CHECKF(hearth_config_parse_size(ok[i].text, &n) && n == ok[i].bytes, "'%s' -> %llu", ok[i].text,
               (unsigned long long)n);
    }
    static const char *bad[] = {"",
                                "GiB",
                                "-1",
                                "+1",
                                "1 XB",
                                "1K",
                                "1 G",
                                "1..5",
                                "20000000TiB",
                                "16777216TiB",
                                "18446744073709551616",
                                "99999999999999999999999",
                                "16EiB",
                                "1GiB ",
                                " 1",
                                "inf",
                                "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t n;
        CHECKF(!hearth_config_parse_size(bad[i], &n), "'%s' accepted", bad[i]);
    }
}

static void test_env_api_key(void) {
    const char *yaml = "server:\n  api_key: from-file\n";
    hearth_config c;
    hearth_error err = {0};
    setenv("HEARTH_API_KEY", "from-env", 1);
    REQUIRE(hearth_config_load_memory(yaml, strlen(yaml), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(!strcmp(c.server.api_key, "from-env"));
    hearth_config_free(&c);
    REQUIRE(hearth_config_load_memory("", 0, "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(c.server.api_key && !strcmp(c.server.api_key, "from-env"));
    hearth_config_free(&c);
    setenv("HEARTH_API_KEY", "", 1); /* empty: not set */
    REQUIRE(hearth_config_load_memory(yaml, strlen(yaml), "cfg.yaml", &c, &err) == HEARTH_OK);
    CHECK(!strcmp(c.server.api_key, "from-file"));
    hearth_config_free(&c);
    unsetenv("HEARTH_API_KEY");
}

/* ------------------------------------------------------------ flags over the file */

static void test_flags_override(void) {
    const char *yaml = "default_model: a\n"
                       "models:\n  a: {path: a.gguf, temperature: 0.3}\n  b.v2: b.gguf\n"
                       "threads: 8\nbackend: vulkan\ncontext: 2048\n"
                       "server: {listen: \"127.0.0.1:8080\"}\nprefix_cache: {max_size: 1GiB}\n";
    hearth_config c;
    hearth_error err = {0};
    REQUIRE(hearth_config_load_memory(yaml, strlen(yaml), "cfg.yaml", &c, &err) == HEARTH_OK);

    /* Pattern 1 (what app/ does with its flag tables): seed the flag
     * variables from the config, then let argv overwrite them. */
    int threads = c.threads, ctx = c.context;
    const char *backend = c.backend;
    const char *argv[] = {"chat", "--threads", "2", "--backend", "cpu"};
    for (int i = 1; i + 1 < 5; i += 2) { /* stands in for arg_parse */
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
    }
    CHECK(threads == 2 && !strcmp(backend, "cpu") && ctx == 2048); /* flags won, the rest is the file's */

    /* Pattern 2: apply each given flag to the config itself, with the file's
     * checks; the config then feeds the engine as usual. */
    CHECK(hearth_config_set(&c, "threads", "4", &err) == HEARTH_OK && c.threads == 4);
    CHECK(hearth_config_set(&c, "backend", "cuda:0", &err) == HEARTH_OK && !strcmp(c.backend, "cuda:0"));
    CHECK(hearth_config_set(&c, "kv_type", "f32", &err) == HEARTH_OK && c.kv_type == HEARTH_F32);
    CHECK(hearth_config_set(&c, "server.listen", "0.0.0.0:9999", &err) == HEARTH_OK);
    CHECK(!strcmp(c.server.listen, "0.0.0.0:9999"));
    CHECK(hearth_config_set(&c, "prefix_cache.max_size", "256MiB", &err) == HEARTH_OK);
    CHECK(c.prefix_cache.max_size == 268435456ull);
    CHECK(hearth_config_set(&c, "prefix_cache.enabled", "false", &err) == HEARTH_OK &&
          !c.prefix_cache.enabled);
    CHECK(hearth_config_set(&c, "prefix_cache.path", "rel/pc.sqlite", &err) == HEARTH_OK);
    CHECK(!strcmp(c.prefix_cache.path, "rel/pc.sqlite")); /* flags: relative to the current directory */
    CHECK(hearth_config_set(&c, "models.a.temperature", "0", &err) == HEARTH_OK);
    CHECK(c.models[0].sampling.temperature == 0.0f);
    CHECK(hearth_config_set(&c, "models.b.v2.top_k", "5", &err) == HEARTH_OK &&
          c.models[1].sampling.top_k == 5);
    CHECK(hearth_config_set(&c, "default_model", "b.v2", &err) == HEARTH_OK);
    CHECK(hearth_config_find_model(&c, NULL) == &c.models[1]);
    CHECK(hearth_config_set(&c, "models.a.draft", "b.v2", &err) == HEARTH_OK &&
          !strcmp(c.models[0].draft, "b.v2"));
    CHECK(hearth_config_set(&c, "server.api_key", "", &err) == HEARTH_OK && c.server.api_key == NULL);
    CHECK(hearth_config_set(&c, "models.a.chat_template", "{{ x }}", &err) == HEARTH_OK);
    CHECK(!strcmp(c.models[0].chat_template, "{{ x }}"));

    /* a bad override is refused with the key in the message, and changes nothing */
    CHECK(hearth_config_set(&c, "threads", "four", &err) == HEARTH_ERR_INVALID);
    CHECK(!strcmp(err.msg, "threads: expected an integer, got 'four'") && c.threads == 4);
    CHECK(hearth_config_set(&c, "context", "8", &err) == HEARTH_ERR_INVALID && c.context == 2048);
    CHECK_CONTAINS(err.msg, "context: 8 is out of range");
    CHECK(hearth_config_set(&c, "backend", "tpu", &err) == HEARTH_ERR_INVALID &&
          !strcmp(c.backend, "cuda:0"));
    CHECK(hearth_config_set(&c, "treads", "4", &err) == HEARTH_ERR_INVALID);
    CHECK(!strcmp(err.msg, "unknown setting 'treads' (did you mean 'threads'?)"));
    CHECK(hearth_config_set(&c, "server.lisen", "x:1", &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "did you mean 'listen'?");
    CHECK(hearth_config_set(&c, "nosuch.key", "1", &err) == HEARTH_ERR_INVALID);
    CHECK(hearth_config_set(&c, "server", "1", &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "server is a group of settings");
    CHECK(hearth_config_set(&c, "models.zz.top_k", "1", &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "models.zz.top_k: no such model (configured: a, b.v2)");
    CHECK(hearth_config_set(&c, "default_model", "zz", &err) == HEARTH_ERR_INVALID);
    CHECK(!strcmp(c.default_model, "b.v2"));
    CHECK(hearth_config_set(&c, "models.a.draft", "a", &err) == HEARTH_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "own draft");
    CHECK(hearth_config_set(&c, "models.a.top_p", "2", &err) == HEARTH_ERR_INVALID);
    CHECK(hearth_config_set(&c, "models.a.chat_template_file", "/nonexistent.jinja", &err) ==
          HEARTH_ERR_INVALID);
    CHECK(!strcmp(c.models[0].chat_template, "{{ x }}"));

    hearth_engine_config ec;
    engine_config_of(&c, 1, &ec);
    CHECK(ec.n_ctx == 2048 && ec.kv_type == HEARTH_F32 && !ec.prefix_cache &&
          ec.cache_db_max_bytes == 268435456ull);
    hearth_config_free(&c);
}

/* ------------------------------------------------------------ the shipped example */

static void test_example(void) {
    char path[PATH_MAX];
    const char *src = getenv("HEARTH_SOURCE");
    if (src) {
        snprintf(path, sizeof path, "%s/packaging/config.example.yaml", src);
    } else { /* tests/unit/app/test_config.c -> repo root */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *cut = strstr(path, "tests/unit/app/test_config.c");
        REQUIRE(cut);
        snprintf(cut, sizeof path - (size_t)(cut - path), "packaging/config.example.yaml");
    }
    unsetenv("HEARTH_API_KEY");
    hearth_config c;
    hearth_error err = {0};
    hearth_status st = hearth_config_load(path, &c, &err);
    CHECKF(st == HEARTH_OK, "%s", err.msg);
    if (st) return;
    REQUIRE(c.n_models == 3);
    const hearth_config_model *m = hearth_config_find_model(&c, NULL);
    CHECK(m && !strcmp(m->name, "kjv") && !strcmp(m->draft, "kjv-draft"));
    CHECK(hearth_config_find_model(&c, "qwen")->chat_template != NULL);
    CHECK(c.prefix_cache.max_size == 2147483648ull && c.server.max_body == 8388608);
    CHECK(!strcmp(c.server.listen, "127.0.0.1:8080") && c.context == 4096);
    hearth_config_free(&c);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/hearth-config-XXXXXX", t && *t ? t : "/tmp");
    REQUIRE(mkdtemp(tmpl));
    char real[PATH_MAX];
    REQUIRE(realpath(tmpl, real) && strlen(real) < sizeof tmp);
    memcpy(tmp, real, strlen(real) + 1);

    test_defaults();
    test_full_file();
    test_paths();
    test_speculative();
    test_errors();
    test_sizes();
    test_env_api_key();
    test_flags_override();
    test_example();

    rm_rf(tmp);
    return test_summary("test_config");
}
