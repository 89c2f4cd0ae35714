/* stripe_sig_vectors.h - what the test_stripe_sig_*.c programs share: the
 * SDKs' test secret, payload and fixed time, and helpers that sign a header
 * (as the SDKs' generate_header() does) and verify against a secret list.
 * It includes cmocka (after the headers cmocka needs) and common/stripe_sig.h. */
#ifndef PS_TEST_STRIPE_SIG_VECTORS_H
#define PS_TEST_STRIPE_SIG_VECTORS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/stripe_sig.h"

#define SECRET  "whsec_test_secret"
#define NOW     INT64_C(1700000000)
#define HDR_MAX 512 /* test headers; a derived one gets HDR_MAX, its source HDR_SRC */
#define HDR_SRC 256

/* The SDKs' shared test payload shape (an event with id and object). */
static const char PAYLOAD[] = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";

/* ---------------------------------------------------------------- helpers */

static inline sig_secrets secrets_of(const char *list) {
    sig_secrets s;
    char err[160];
    assert_int_equal(sig_secrets_parse(list, &s, err, sizeof(err)), 0);
    return s;
}

/* Like the SDKs' generate_header(): t, scheme and signature can be replaced. */
static inline void make_header(char *out, size_t len, int64_t t, const char *scheme,
                               const char *sig, const char *secret, const char *body) {
    char good[SIG_HEADER_LEN];
    assert_int_equal(sig_sign(secret, t, body, strlen(body), good, sizeof(good)), 0);
    const char *hex = strstr(good, ",v1=") + 4;
    snprintf(out, len, "t=%lld,%s=%s", (long long)t, scheme, sig ? sig : hex);
}

static inline void default_header(char *out, size_t len, int64_t t) {
    make_header(out, len, t, "v1", NULL, SECRET, PAYLOAD);
}

static inline sig_result verify_with(const char *header, const char *body, const char *secret_list,
                                     long tolerance, int64_t now, sig_detail *d) {
    sig_secrets s = secrets_of(secret_list);
    sig_result r = sig_verify(header, body, strlen(body), &s, tolerance, now, d);
    sig_secrets_free(&s);
    return r;
}

static inline sig_result verify(const char *header, long tolerance, sig_detail *d) {
    return verify_with(header, PAYLOAD, SECRET, tolerance, NOW, d);
}

#endif
