/* Tiny assertion helpers shared by the C tests. */
#ifndef CERTMAGIC_TEST_CHECK_H
#define CERTMAGIC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certmagic.h"

static int check_failures = 0;

/* The last error message on this thread (static buffer). */
static const char *last_error(void) {
    static char buf[2048];
    size_t n = 0;
    if (certmagic_last_error_message(buf, sizeof buf, &n) != CERTMAGIC_RESULT_OK) {
        return "(no message)";
    }
    return buf;
}

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

/* Expects `call` to return `want`; on mismatch prints both codes and the last error. */
#define CHECK_RC(call, want)                                                            \
    do {                                                                                \
        certmagic_result rc_ = (call);                                                  \
        if (rc_ != (want)) {                                                            \
            fprintf(stderr, "%s:%d: %s returned %s, wanted %s (%s)\n", __FILE__,        \
                    __LINE__, #call, certmagic_result_str(rc_), certmagic_result_str(want), \
                    last_error());                                                      \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

#define CHECK_OK(call) CHECK_RC(call, CERTMAGIC_RESULT_OK)

/* Expects the last error message to contain `needle`. */
#define CHECK_MESSAGE(needle)                                                           \
    do {                                                                                \
        const char *m_ = last_error();                                                  \
        if (strstr(m_, (needle)) == NULL) {                                             \
            fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__,        \
                    __LINE__, m_, (needle));                                            \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

static const char *need_env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "environment variable %s is not set (run through `make test`)\n", name);
        exit(2);
    }
    return v;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[n] = '\0';
    fclose(f);
    if (len != NULL) {
        *len = (size_t)n;
    }
    return buf;
}

static int check_summary(const char *name) {
    if (check_failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
