/*
 * fuzz_url.c — Redis URLs (common/url.c): lw_url_parse and lw_url_redact.
 *
 * The input is the URL text (cut at a NUL byte, as a C string would be).
 * Beyond memory safety, what must hold:
 *  - a parse gives fields in range: TCP has a host and a port 1..65535 and no
 *    path; UNIX has an absolute path and neither host nor port; db >= 0;
 *  - `redacted` is what lw_url_redact gives for the same text;
 *  - redaction hides exactly the password: the redacted text parses too, to
 *    the same kind, host, port, path, user and db, with the password "***";
 *  - a password never shows: the input is also wrapped with a known password
 *    in the user info ("redis://u:MARK@" + input, input + ":MARK@host", ...,
 *    where user info may go) and MARK must appear in no message and no
 *    redacted text;
 *  - a refusal leaves a message that starts "bad Redis URL" (control
 *    characters of the input may show in it: the log and CLI writers make
 *    every message one line).
 */
#include <string.h>

#include "fuzz.h"
#include "url.h"

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_fields(const lw_url *u)
{
    FUZZ_CHECK(u->redacted != NULL);
    FUZZ_CHECK(u->db >= 0);
    if (u->kind == LW_URL_TCP) {
        FUZZ_CHECK(u->host != NULL && u->path == NULL);
        FUZZ_CHECK(u->port >= 1 && u->port <= 65535);
    } else {
        FUZZ_CHECK(u->kind == LW_URL_UNIX);
        FUZZ_CHECK(u->path != NULL && u->path[0] == '/' && u->host == NULL && u->port == 0);
    }
    FUZZ_CHECK(!u->password || u->password[0] != '\0');
    FUZZ_CHECK(!u->password || strstr(u->redacted, "***") != NULL);
}

/* A password no input holds by chance (checked). */
#define MARK "Pw0rd_M4rk"

/* Parses prefix + text + suffix, whose user info holds MARK as (part of)
 * the password, and checks that MARK shows nowhere. */
static void check_hidden(const char *prefix, const char *text, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(text) + strlen(suffix) + 1;
    char *url = malloc(n);
    char err[256];
    FUZZ_CHECK(url != NULL);
    snprintf(url, n, "%s%s%s", prefix, text, suffix);
    err[0] = '\0';
    lw_url *u = lw_url_parse(url, err, sizeof err);
    if (strstr(err, MARK)) {
        fprintf(stderr, "password shown in the message for %s: %s\n", url, err);
        FUZZ_CHECK(0);
    }
    if (u) {
        FUZZ_CHECK(u->password != NULL && strstr(u->password, MARK) != NULL);
        FUZZ_CHECK(strstr(u->redacted, MARK) == NULL);
        lw_url_free(u);
    }
    char *red = lw_url_redact(url);
    FUZZ_CHECK(red != NULL);
    if (strstr(red, MARK)) {
        fprintf(stderr, "password shown in the redacted form of %s: %s\n", url, red);
        FUZZ_CHECK(0);
    }
    free(red);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    char err[256];
    memset(err, 'x', sizeof err);

    char *red = lw_url_redact(text);
    FUZZ_CHECK(red != NULL);

    lw_url *u = lw_url_parse(text, err, sizeof err);
    if (!u) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(strncmp(err, "bad Redis URL", 13) == 0);
    } else {
        check_fields(u);
        FUZZ_CHECK(strcmp(u->redacted, red) == 0);

        char err2[256];
        lw_url *r = lw_url_parse(u->redacted, err2, sizeof err2);
        if (!r) {
            fprintf(stderr, "redacted URL does not parse: %s\n", err2);
            FUZZ_CHECK(r != NULL);
        }
        check_fields(r);
        FUZZ_CHECK(r->kind == u->kind && r->port == u->port && r->db == u->db);
        FUZZ_CHECK(same_str(r->host, u->host) && same_str(r->path, u->path));
        FUZZ_CHECK(same_str(r->user, u->user));
        FUZZ_CHECK(same_str(r->password, u->password ? "***" : NULL));
        FUZZ_CHECK(strcmp(r->redacted, u->redacted) == 0);
        lw_url_free(r);
        lw_url_free(u);
    }
    /* Without room for a message, or with none wanted, nothing is written. */
    lw_url_free(lw_url_parse(text, NULL, 0));

    if (!strstr(text, MARK)) {
        check_hidden("redis://u:" MARK "@", text, "");
        check_hidden("redis://:" MARK "@", text, "");
        check_hidden("unix://:" MARK "@", text, "");
        check_hidden("rediss://u:" MARK "@", text, "");
        check_hidden("redis://", text, ":" MARK "@h");
        /* unix:///... has no user info: the text is all path. */
        if (text[0] != '/')
            check_hidden("unix://", text, ":" MARK "@/s");
    }
    free(red);
    free(text);
    return 0;
}
