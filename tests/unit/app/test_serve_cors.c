/*
 * test_serve_cors.c - the --cors-origins matcher (app/serve/serve_cors.c):
 * loopback origins on any port, exact origins case-insensitively, "*", and
 * what must never match (other hosts, look-alike hosts, paths, empty input).
 */
#include <string.h>

#include "app/serve/serve.h"
#include "test.h"

int main(void) {
    const char *lb = "loopback";
    CHECK(serve_cors_allowed(lb, "http://localhost:5173"));
    CHECK(serve_cors_allowed(lb, "http://127.0.0.1"));
    CHECK(serve_cors_allowed(lb, "https://[::1]:8443"));
    CHECK(serve_cors_allowed(lb, "HTTP://LOCALHOST:3000"));
    CHECK(!serve_cors_allowed(lb, "http://localhost.evil.example"));
    CHECK(!serve_cors_allowed(lb, "http://127.0.0.1.evil.example:80"));
    CHECK(!serve_cors_allowed(lb, "http://localhost:"));
    CHECK(!serve_cors_allowed(lb, "http://localhost:80x"));
    CHECK(!serve_cors_allowed(lb, "ftp://localhost"));
    CHECK(!serve_cors_allowed(lb, "null"));
    CHECK(!serve_cors_allowed(lb, "https://example.org"));

    const char *list = "https://app.example.org, loopback ,http://10.0.0.2:8080";
    CHECK(serve_cors_allowed(list, "https://app.example.org"));
    CHECK(serve_cors_allowed(list, "https://APP.example.org"));
    CHECK(serve_cors_allowed(list, "http://10.0.0.2:8080"));
    CHECK(serve_cors_allowed(list, "http://localhost:1"));
    CHECK(!serve_cors_allowed(list, "https://app.example.org.evil"));
    CHECK(!serve_cors_allowed(list, "https://app.example"));
    CHECK(!serve_cors_allowed(list, "http://10.0.0.2"));

    CHECK(serve_cors_allowed("*", "https://anything.example"));
    CHECK(!serve_cors_allowed("*", ""));
    CHECK(!serve_cors_allowed("*", NULL));
    CHECK(!serve_cors_allowed(NULL, "http://localhost"));
    CHECK(!serve_cors_allowed("", "http://localhost"));

    char bad[256];
    CHECK(serve_cors_list_valid("loopback,*,https://a.example:8443", bad, sizeof bad));
    CHECK(!serve_cors_list_valid("loopback,localhost:5173", bad, sizeof bad) && !strcmp(bad, "localhost:5173"));
    CHECK(!serve_cors_list_valid("https://a.example/", bad, sizeof bad) && !strcmp(bad, "https://a.example/"));
    CHECK(!serve_cors_list_valid("loopback,,*", bad, sizeof bad) && !strcmp(bad, ""));
    return test_summary("serve_cors");
}
