/*
 * error.c - hearth_error helpers. No allocation; messages are truncated to
 * HEARTH_ERROR_MSG_MAX bytes.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hearth_status hearth_error_set(hearth_error *err, hearth_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void hearth_error_prefix(hearth_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[HEARTH_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[HEARTH_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* "<prefix>: <old>", truncated to the buffer */
    size_t cap = sizeof err->msg - 1, n = 0;
    for (const char *parts[] = {prefix, ": ", old}, **p = parts; p < parts + 3; p++)
        for (const char *c = *p; *c && n < cap; c++)
            err->msg[n++] = *c;
    err->msg[n] = '\0';
}

void hearth_error_clear(hearth_error *err) {
    if (!err) return;
    err->code = HEARTH_OK;
    err->msg[0] = '\0';
}

const char *hearth_status_name(hearth_status code) {
    switch (code) {
    case HEARTH_OK: return "ok";
    case HEARTH_ERR_IO: return "io";
    case HEARTH_ERR_FORMAT: return "format";
    case HEARTH_ERR_UNSUPPORTED: return "unsupported";
    case HEARTH_ERR_NOMEM: return "nomem";
    case HEARTH_ERR_INVALID: return "invalid";
    case HEARTH_ERR_CONTEXT: return "context";
    case HEARTH_ERR_BACKEND: return "backend";
    case HEARTH_ERR_CANCELLED: return "cancelled";
    case HEARTH_ERR_BUSY: return "busy";
    case HEARTH_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}
