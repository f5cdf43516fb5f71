/*
 * cmd_tokenize.c - `hearth tokenize`: token ids and pieces of a text, like
 * llama.cpp's llama-tokenize. Works on vocabulary-only GGUF files.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli/args.h"
#include "app/cli/common.h"
#include "runtime/format/gguf.h"
#include "runtime/text/tokenizer.h"

int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL;
    bool json = false, no_bos = false, no_special = false, ids_only = false;
    const arg_opt opts[] = {
        {"-m", "--model", ARG_STR, &model_path, "PATH", "GGUF model or vocabulary file"},
        {"-p", "--prompt", ARG_STR, &prompt, "TEXT", "text to tokenize (or give it as the argument)"},
        {NULL, "--no-bos", ARG_FLAG, &no_bos, NULL, "do not add BOS even if the model's metadata says so"},
        {NULL, "--no-special", ARG_FLAG, &no_special, NULL, "treat special-token text as plain text"},
        {NULL, "--ids", ARG_FLAG, &ids_only, NULL, "print only the ids, as a list"},
        {NULL, "--json", ARG_FLAG, &json, NULL,
         "print {\"tokens\": [...], \"pieces\": [...]}; a piece that is part of a UTF-8 character is an "
         "array of its bytes"},
    };
    const char *pos[1];
    int n_pos;
    int r = arg_parse(
        "tokenize", "-m MODEL.gguf [options] TEXT",
        "Print the tokens of TEXT: one line per token (id and piece), BOS as the model's metadata says.",
        opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &n_pos);
    if (r) return r > 0 ? 0 : 2;
    if (n_pos) prompt = pos[0];
    if (!model_path || !prompt) {
        fprintf(stderr, "hearth tokenize: need -m MODEL.gguf and a TEXT (see hearth tokenize --help)\n");
        return 2;
    }
    hearth_error err = {0};
    hearth_gguf *g = hearth_gguf_open(model_path, &err);
    if (!g) {
        fprintf(stderr, "hearth tokenize: %s\n", err.msg);
        return 1;
    }
    hearth_tokenizer *tok = hearth_tokenizer_from_gguf(g, &err);
    hearth_gguf_close(g);
    if (!tok) {
        fprintf(stderr, "hearth tokenize: %s: %s\n", model_path, err.msg);
        return 1;
    }
    hearth_tokens ids = {0};
    if (hearth_tokenizer_encode(tok, prompt, strlen(prompt), !no_bos && hearth_tokenizer_add_bos_default(tok),
                                !no_special, &ids, &err)) {
        fprintf(stderr, "hearth tokenize: %s\n", err.msg);
        hearth_tokenizer_free(tok);
        return 1;
    }
    char piece[512];
    if (json) {
        cJSON *root = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(root, "tokens"),
              *p = cJSON_AddArrayToObject(root, "pieces");
        for (size_t i = 0; i < ids.n; i++) {
            size_t n = hearth_tokenizer_piece(tok, ids.ids[i], true, piece, sizeof piece - 1);
            piece[n < sizeof piece - 1 ? n : sizeof piece - 1] = 0;
            cJSON_AddItemToArray(a, cJSON_CreateNumber(ids.ids[i]));
            cJSON_AddItemToArray(p, app_json_piece(piece, n < sizeof piece - 1 ? n : sizeof piece - 1));
        }
        char *s = cJSON_PrintUnformatted(root);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(root);
    } else if (ids_only) {
        printf("[");
        for (size_t i = 0; i < ids.n; i++)
            printf("%s%d", i ? ", " : "", ids.ids[i]);
        printf("]\n");
    } else {
        for (size_t i = 0; i < ids.n; i++) {
            size_t n = hearth_tokenizer_piece(tok, ids.ids[i], true, piece, sizeof piece - 1);
            piece[n < sizeof piece - 1 ? n : sizeof piece - 1] = 0;
            printf("%6d -> '%s'\n", ids.ids[i], piece);
        }
    }
    hearth_tokens_free(&ids);
    hearth_tokenizer_free(tok);
    return 0;
}
