/*
 * chat_conv.c - see chat_conv.h.
 *
 * Rendering goes through runtime/template/chat_template.h (the model's Jinja template,
 * a configured override, or ChatML); the rendered text is encoded with special
 * tokens parsed, BOS added unless the template wrote it.
 */
#include "chat_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

static const char *const role_names[] = {"system", "user", "assistant"};

const char *chat_role_name(chat_role r) {
    return (unsigned)r < 3 ? role_names[r] : "?";
}

bool chat_role_parse(const char *s, chat_role *out) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, role_names[i])) {
            *out = (chat_role)i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ rendering */

/* ids = the template's rendering of system + msgs[first, end), with the
 * assistant's generation prompt when add_gen. */
static hearth_status render(chat_conv *c, int first, int end, bool add_gen, hearth_tokens *ids,
                            hearth_error *err) {
    ids->n = 0;
    int n = 0;
    hearth_chat_msg *m = malloc((size_t)(end - first + 1) * sizeof *m);
    if (!m) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    if (c->system) m[n++] = (hearth_chat_msg){"system", c->system};
    for (int i = first; i < end; i++)
        m[n++] = (hearth_chat_msg){chat_role_name(c->msgs[i].role), c->msgs[i].text};
    char *text = hearth_chat_template_render(c->tmpl, m, n, add_gen, err);
    free(m);
    if (!text) return err ? err->code : HEARTH_ERR_FORMAT;
    /* the template may write the BOS text itself; then do not add another */
    const char *bos = hearth_chat_template_bos(c->tmpl);
    bool has_bos = bos[0] && !strncmp(text, bos, strlen(bos));
    bool add_bos = !has_bos && hearth_tokenizer_add_bos_default(c->tok);
    hearth_status st = hearth_tokenizer_encode(c->tok, text, strlen(text), add_bos, true, ids, err);
    free(text);
    return st;
}

/* ------------------------------------------------------------ messages */

void chat_conv_init(chat_conv *c, const hearth_tokenizer *tok, const hearth_chat_template *tmpl, int n_ctx) {
    memset(c, 0, sizeof *c);
    c->tok = tok;
    c->tmpl = tmpl;
    c->n_ctx = n_ctx;
}

static void drop_messages(chat_conv *c) {
    for (int i = 0; i < c->n_msgs; i++)
        free(c->msgs[i].text);
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

void chat_conv_set_model(chat_conv *c, const hearth_tokenizer *tok, const hearth_chat_template *tmpl,
                         int n_ctx) {
    c->tok = tok;
    c->tmpl = tmpl;
    c->n_ctx = n_ctx;
    c->n_trimmed = 0;
    c->ids_valid = false;
}

hearth_status chat_conv_set_system(chat_conv *c, const char *text, hearth_error *err) {
    char *copy = NULL;
    if (text && *text && !(copy = strdup(text)))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    free(c->system);
    c->system = copy;
    c->ids_valid = false;
    return HEARTH_OK;
}

void chat_conv_clear(chat_conv *c) {
    drop_messages(c);
}

hearth_status chat_conv_add(chat_conv *c, chat_role role, const char *text, hearth_error *err) {
    if (role == CHAT_ROLE_SYSTEM) return chat_conv_set_system(c, text, err);
    if (!hearth_grow((void **)&c->msgs, &c->cap_msgs, (size_t)c->n_msgs + 1, sizeof *c->msgs))
        return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    char *copy = strdup(text ? text : "");
    if (!copy) return hearth_error_set(err, HEARTH_ERR_NOMEM, "out of memory");
    c->msgs[c->n_msgs++] = (chat_msg){role, copy};
    c->ids_valid = false;
    return HEARTH_OK;
}

/* ------------------------------------------------------------ turns */

hearth_status chat_conv_begin(chat_conv *c, const char *user_text, int reserve, hearth_error *err) {
    if (c->in_turn) return hearth_error_set(err, HEARTH_ERR_BUSY, "an answer is still being generated");
    hearth_status st = chat_conv_add(c, CHAT_ROLE_USER, user_text, err);
    if (st) return st;
    int last = c->n_msgs - 1;
    if (c->n_trimmed > last) c->n_trimmed = 0;
    st = render(c, c->n_trimmed, c->n_msgs, true, &c->prompt, err);
    /* drop the oldest user+assistant pairs from the prompt until it fits */
    while (!st && (int)c->prompt.n + reserve > c->n_ctx && c->n_trimmed + 2 <= last) {
        c->n_trimmed += 2;
        st = render(c, c->n_trimmed, c->n_msgs, true, &c->prompt, err);
    }
    if (!st && (int)c->prompt.n + 8 > c->n_ctx)
        st = hearth_error_set(
            err, HEARTH_ERR_CONTEXT,
            "this message needs %zu tokens with the system prompt, but the context holds %d; "
            "shorten it (or the /system prompt), or raise -c",
            c->prompt.n, c->n_ctx);
    if (st) {
        free(c->msgs[--c->n_msgs].text);
        return st;
    }
    c->ids_valid = false;
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
    if (!hearth_grow((void **)&c->answer, &c->answer_cap, c->answer_len + len + 1, 1)) return;
    memcpy(c->answer + c->answer_len, text, len);
    c->answer_len += len;
    c->answer[c->answer_len] = 0;
}

void chat_conv_end(chat_conv *c) {
    if (!c->in_turn) return;
    c->in_turn = false;
    chat_conv_add(c, CHAT_ROLE_ASSISTANT, c->answer ? c->answer : "", NULL);
    c->ids_valid = false;
}

void chat_conv_abort(chat_conv *c) {
    c->in_turn = false;
    if (c->n_msgs && c->msgs[c->n_msgs - 1].role == CHAT_ROLE_USER) free(c->msgs[--c->n_msgs].text);
}

int chat_conv_n_tokens(chat_conv *c) {
    if (c->in_turn) return (int)(c->prompt.n + c->gen.n);
    if (!c->ids_valid && c->tok) {
        if (c->n_trimmed > c->n_msgs) c->n_trimmed = 0;
        c->ids_valid = render(c, c->n_trimmed, c->n_msgs, false, &c->ids, NULL) == HEARTH_OK;
    }
    return c->ids_valid ? (int)c->ids.n : 0;
}
