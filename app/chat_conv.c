/*
 * chat_conv.c - see chat_conv.h.
 *
 * Rendering is ChatML, one turn at a time (chatml_turn). Each turn's text
 * starts with a special token, so encoding turn by turn gives the same ids as
 * encoding the whole conversation at once (the tokenizer's fragment rules
 * restart at every special token).
 */
#include "chat_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {"system", "user", "assistant"};

const char *chat_role_name(chat_role r) { return (unsigned)r < 3 ? role_names[r] : "?"; }

bool chat_role_parse(const char *s, chat_role *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, role_names[i])) {
            *out = (chat_role)i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ rendering */

/* TODO(chat_template): use runtime/chat_template.h (the model's Jinja
 * template, ChatML fallback) once it lands. Until then every model gets
 * ChatML. `text` NULL renders only the header that opens a turn. */
static char *chatml_turn(chat_role role, const char *text) {
    const char *name = chat_role_name(role);
    size_t n = strlen(name) + (text ? strlen(text) : 0) + 40;
    char *s = malloc(n);
    if (!s) return NULL;
    if (text) snprintf(s, n, "<|im_start|>%s\n%s<|im_end|>\n", name, text);
    else snprintf(s, n, "<|im_start|>%s\n", name);
    return s;
}

static hearth_status encode_turn(const chat_conv *c, chat_role role, const char *text, hearth_tokens *out,
                                 hearth_error *err) {
    char *s = chatml_turn(role, text);
    if (!s) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    hearth_status st = hearth_tokenizer_encode(c->tok, s, strlen(s), false, true, out, err);
    free(s);
    return st;
}

/* ids = BOS + system + finished messages [first, end). */
static hearth_status render_base(chat_conv *c, int first, int end, hearth_tokens *ids, hearth_error *err) {
    ids->n = 0;
    if (hearth_tokenizer_add_bos_default(c->tok) && hearth_tokenizer_bos(c->tok) >= 0 &&
        !hearth_tokens_push(ids, hearth_tokenizer_bos(c->tok)))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    hearth_status st = HEARTH_OK;
    if (c->system) st = encode_turn(c, CHAT_ROLE_SYSTEM, c->system, ids, err);
    for (int i = first; i < end && !st; i++) st = encode_turn(c, c->msgs[i].role, c->msgs[i].text, ids, err);
    return st;
}

static hearth_status append_tokens(hearth_tokens *dst, const hearth_tokens *src, hearth_error *err) {
    for (size_t i = 0; i < src->n; i++)
        if (!hearth_tokens_push(dst, src->ids[i])) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    return HEARTH_OK;
}

/* prompt = base + user turn + assistant header. */
static hearth_status render_prompt(chat_conv *c, const char *user_text, hearth_error *err) {
    c->prompt.n = 0;
    hearth_status st = append_tokens(&c->prompt, &c->ids, err);
    if (!st) st = encode_turn(c, CHAT_ROLE_USER, user_text, &c->prompt, err);
    if (!st) st = encode_turn(c, CHAT_ROLE_ASSISTANT, NULL, &c->prompt, err);
    return st;
}

/* ------------------------------------------------------------ messages */

void chat_conv_init(chat_conv *c, const hearth_tokenizer *tok, int n_ctx) {
    memset(c, 0, sizeof *c);
    c->tok = tok;
    c->n_ctx = n_ctx;
}

static void drop_messages(chat_conv *c) {
    for (int i = 0; i < c->n_msgs; i++) free(c->msgs[i].text);
    c->n_msgs = 0;
    c->n_trimmed = 0;
    c->ids_valid = false;
}

void chat_conv_free(chat_conv *c) {
    drop_messages(c);
    free(c->msgs);
    free(c->system);
    free(c->answer);
    hearth_tokens_free(&c->ids);
    hearth_tokens_free(&c->prompt);
    hearth_tokens_free(&c->gen);
    memset(c, 0, sizeof *c);
}

void chat_conv_set_tokenizer(chat_conv *c, const hearth_tokenizer *tok, int n_ctx) {
    c->tok = tok;
    c->n_ctx = n_ctx;
    c->n_trimmed = 0;
    c->ids_valid = false;
}

hearth_status chat_conv_set_system(chat_conv *c, const char *text, hearth_error *err) {
    char *copy = NULL;
    if (text && *text && !(copy = strdup(text))) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    free(c->system);
    c->system = copy;
    c->ids_valid = false;
    return HEARTH_OK;
}

void chat_conv_clear(chat_conv *c) { drop_messages(c); }

hearth_status chat_conv_add(chat_conv *c, chat_role role, const char *text, hearth_error *err) {
    if (role == CHAT_ROLE_SYSTEM) return chat_conv_set_system(c, text, err);
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        chat_msg *m = realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = strdup(text ? text : "");
    if (!copy) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    c->msgs[c->n_msgs++] = (chat_msg){role, copy};
    c->ids_valid = false;
    return HEARTH_OK;
}

/* ------------------------------------------------------------ turns */

hearth_status chat_conv_begin(chat_conv *c, const char *user_text, int reserve, hearth_error *err) {
    if (c->in_turn) return hearth_error_set(err, HEARTH_ERR_BUSY, "an answer is still being generated");
    bool was_valid = c->ids_valid;
    hearth_status st = chat_conv_add(c, CHAT_ROLE_USER, user_text, err);
    if (st) return st;
    c->ids_valid = was_valid; /* adding the open turn's message does not change the finished ids */
    int last = c->n_msgs - 1;
    if (!c->ids_valid) st = render_base(c, c->n_trimmed, last, &c->ids, err);
    if (!st) st = render_prompt(c, user_text, err);
    /* drop the oldest user+assistant pairs from the prompt until it fits */
    while (!st && (int)c->prompt.n + reserve > c->n_ctx && c->n_trimmed + 2 <= last) {
        c->n_trimmed += 2;
        st = render_base(c, c->n_trimmed, last, &c->ids, err);
        if (!st) st = render_prompt(c, user_text, err);
    }
    if (!st && (int)c->prompt.n + 8 > c->n_ctx)
        st = hearth_error_set(err, HEARTH_ERR_CONTEXT,
                              "this message needs %zu tokens with the system prompt, but the context holds %d; "
                              "shorten it (or the /system prompt), or raise -c",
                              c->prompt.n, c->n_ctx);
    if (st) {
        free(c->msgs[--c->n_msgs].text);
        c->ids_valid = false;
        return st;
    }
    c->ids_valid = true;
    c->in_turn = true;
    c->gen.n = 0;
    c->answer_len = 0;
    if (c->answer) c->answer[0] = 0;
    return HEARTH_OK;
}

void chat_conv_feed(chat_conv *c, int32_t token, const char *text, size_t len) {
    if (!c->in_turn) return;
    if (token >= 0) hearth_tokens_push(&c->gen, token);
    if (!len) return;
    if (c->answer_len + len + 1 > c->answer_cap) {
        size_t cap = (c->answer_len + len + 1) * 2;
        char *a = realloc(c->answer, cap);
        if (!a) return;
        c->answer = a;
        c->answer_cap = cap;
    }
    memcpy(c->answer + c->answer_len, text, len);
    c->answer_len += len;
    c->answer[c->answer_len] = 0;
}

void chat_conv_end(chat_conv *c) {
    if (!c->in_turn) return;
    c->in_turn = false;
    hearth_error err = {0};
    if (chat_conv_add(c, CHAT_ROLE_ASSISTANT, c->answer ? c->answer : "", &err)) return; /* ids stay invalid */
    /* ids = prompt + the answer's own ids, closed like a rendered turn */
    hearth_tokens ids = c->prompt;
    c->prompt = c->ids;
    c->ids = ids;
    c->prompt.n = 0;
    bool ok = append_tokens(&c->ids, &c->gen, &err) == HEARTH_OK;
    int32_t end = hearth_tokenizer_find(c->tok, "<|im_end|>", 10);
    bool closed = c->gen.n && (c->gen.ids[c->gen.n - 1] == end ||
                               (end < 0 && hearth_tokenizer_is_eog(c->tok, c->gen.ids[c->gen.n - 1])));
    if (ok && !closed) ok = !hearth_tokenizer_encode(c->tok, "<|im_end|>", 10, false, true, &c->ids, &err);
    if (ok) ok = !hearth_tokenizer_encode(c->tok, "\n", 1, false, true, &c->ids, &err);
    c->ids_valid = ok;
}

void chat_conv_abort(chat_conv *c) {
    c->in_turn = false;
    if (c->n_msgs && c->msgs[c->n_msgs - 1].role == CHAT_ROLE_USER) free(c->msgs[--c->n_msgs].text);
}

int chat_conv_n_tokens(chat_conv *c) {
    if (c->in_turn) return (int)(c->prompt.n + c->gen.n);
    if (!c->ids_valid && c->tok) {
        if (c->n_trimmed > c->n_msgs) c->n_trimmed = 0;
        c->ids_valid = render_base(c, c->n_trimmed, c->n_msgs, &c->ids, NULL) == HEARTH_OK;
    }
    return c->ids_valid ? (int)c->ids.n : 0;
}
