/*
 * serve_cors.c - which browser origins may call the server (--cors-origins).
 *
 * Owner: the serve subsystem. Off by default: without --cors-origins no CORS
 * header is ever sent, so a page on another origin cannot read replies. The
 * list is comma-separated: "*" allows any origin, "loopback" any http(s)
 * origin on localhost, 127.0.0.1 or [::1] (any port), anything else must equal
 * the request's Origin exactly (scheme://host[:port], compared
 * case-insensitively, as browsers send it).
 * Invariants: pure functions of their arguments; nothing is allocated.
 */
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "serve.h"

/* http(s)://HOST[:PORT] with HOST a loopback name and PORT digits. */
static bool loopback_origin(const char *o) {
    if (!strncasecmp(o, "http://", 7))
        o += 7;
    else if (!strncasecmp(o, "https://", 8))
        o += 8;
    else
        return false;
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        const size_t n = strlen(hosts[i]);
        if (strncasecmp(o, hosts[i], n)) continue;
        const char *p = o + n;
        if (!*p) return true;
        if (*p++ != ':' || !*p) return false;
        for (; *p; p++)
            if (*p < '0' || *p > '9') return false;
        return true;
    }
    return false;
}

/* The next entry of a comma-separated list, spaces around it trimmed: *p
 * and *n get it; returns the rest of the list, or NULL after the last entry. */
static const char *next_entry(const char *list, const char **p, size_t *n) {
    const char *end = strchr(list, ',');
    size_t len = end ? (size_t)(end - list) : strlen(list);
    while (len && *list == ' ')
        list++, len--;
    while (len && list[len - 1] == ' ')
        len--;
    *p = list;
    *n = len;
    return end ? end + 1 : NULL;
}

bool serve_cors_allowed(const char *list, const char *origin) {
    if (!list || !*list || !origin || !*origin || strlen(origin) > 255) return false;
    const size_t on = strlen(origin);
    for (const char *rest = list; rest && *rest;) {
        const char *p;
        size_t n;
        rest = next_entry(rest, &p, &n);
        if ((n == 1 && *p == '*') || (n == 8 && !strncasecmp(p, "loopback", 8) && loopback_origin(origin)) ||
            (n == on && !strncasecmp(p, origin, n)))
            return true;
    }
    return false;
}

bool serve_cors_list_valid(const char *list, char *bad, size_t cap) {
    for (const char *rest = list; rest && *rest;) {
        const char *p;
        size_t n;
        rest = next_entry(rest, &p, &n);
        const bool ok =
            (n == 1 && *p == '*') || (n == 8 && !strncasecmp(p, "loopback", 8)) ||
            (n > 7 && (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) && p[n - 1] != '/');
        if (!ok) {
            snprintf(bad, cap, "%.*s", (int)(n > 200 ? 200 : n), p);
            return false;
        }
    }
    return true;
}
