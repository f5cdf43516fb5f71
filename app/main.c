/*
 * main.c - the `hearth` executable: dispatch to subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_embed(int argc, char **argv);

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"chat", cmd_chat, "talk with a model in the terminal (or --once / stdin for scripts)"},
    {"run", cmd_run, "generate text from a prompt"},
    {"serve", cmd_serve, "serve the OpenAI/Ollama-compatible HTTP API on a local socket"},
    {"info", cmd_info, "show a model's architecture, tensors and memory needs"},
    {"embed", cmd_embed, "print embedding vectors of texts (bert, nomic-bert models)"},
    {"tokenize", cmd_tokenize, "show the token ids of a text"},
    {"bench", cmd_bench, "measure prompt and generation speed (tok/s, bandwidth roofline)"},
    {"mkmodel", cmd_mkmodel, "write a synthetic GGUF model with random weights in a real shape"},
    {"pull", cmd_pull, "download a model (catalog name, hf.co/ORG/REPO[:QUANT] or URL) into the local store"},
    {"list", cmd_list, "list the pulled models"},
    {"rm", cmd_rm, "remove a pulled model"},
    {"show", cmd_show, "show a pulled model: source, sha256, metadata, memory"},
    {"quantize", cmd_quantize, "rewrite a model in another weight type (Q4_K_M, Q8_0, ... as llama.cpp)"},
    {"split", cmd_split, "write a model as NAME-00001-of-0000N.gguf parts (llama.cpp's gguf-split layout)"},
    {"perplexity", cmd_perplexity, "measure a model's perplexity over a text (llama.cpp's method)"},
    {"imatrix", cmd_imatrix, "collect an importance matrix over calibration text (llama-imatrix's format)"},
    {"cache", cmd_cache, "show or clear the persistent prefix cache"},
};

static void usage(FILE *f) {
    fprintf(f, "hearth %s - run open-weight LLMs (GGUF) on your own machine\n\nusage: hearth COMMAND [options]\n\ncommands:\n",
            HEARTH_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`hearth COMMAND --help` shows a command's options. Backends in this build: %s\n",
            hearth_backend_list());
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("hearth %s (commit %s; backends: %s)\n", HEARTH_VERSION, HEARTH_COMMIT, hearth_backend_list());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hearth: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
