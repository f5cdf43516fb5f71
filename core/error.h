/*
 * error.h - how the runtime reports failure.
 *
 * Every fallible runtime function takes a `hearth_error *` (may be NULL) and
 * returns a status (or NULL). On failure the error holds a code and a message
 * a user can act on ("model.gguf: tensor blk.3.attn_q has type 27 (unknown);
 * this build supports ..."). The runtime never prints and never exits.
 */
#ifndef HEARTH_ERROR_H
#define HEARTH_ERROR_H

#include <stddef.h>

typedef enum hearth_status {
    HEARTH_OK = 0,
    HEARTH_ERR_IO = -1,          /* open/read/mmap failed */
    HEARTH_ERR_FORMAT = -2,      /* malformed or hostile input file */
    HEARTH_ERR_UNSUPPORTED = -3, /* valid input this build cannot handle */
    HEARTH_ERR_NOMEM = -4,
    HEARTH_ERR_INVALID = -5, /* bad argument from the caller */
    HEARTH_ERR_CONTEXT = -6, /* out of context / KV space */
    HEARTH_ERR_BACKEND = -7, /* device failure */
    HEARTH_ERR_CANCELLED = -8,
    HEARTH_ERR_BUSY = -9,      /* too many requests waiting */
    HEARTH_ERR_INTERNAL = -10, /* a broken internal invariant: a bug (hearth_kv_check) */
} hearth_status;

#define HEARTH_ERROR_MSG_MAX 512

typedef struct hearth_error {
    hearth_status code;
    char msg[HEARTH_ERROR_MSG_MAX];
} hearth_error;

/* Set `err` (if non-NULL) and return `code`. printf-style message. */
hearth_status hearth_error_set(hearth_error *err, hearth_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "<prefix>: <old message>". */
void hearth_error_prefix(hearth_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void hearth_error_clear(hearth_error *err);

/* Short stable name of a status ("io", "format", ...). */
const char *hearth_status_name(hearth_status code);

#endif
