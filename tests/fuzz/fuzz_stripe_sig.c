/* fuzz_stripe_sig.c - libFuzzer target for common/stripe_sig.c.
 *
 * Input: a Stripe-Signature header, a newline, then the body. Checked:
 *  - the fuzzed header verifies without crashing, with a result and an
 *    explanation that make sense (a NUL-terminated sentence; "ok" only when
 *    a secret matched);
 *  - a genuine "t=…,v1=…" signature of the body put in front of the fuzzed
 *    items is accepted whatever follows (first t= wins, unknown items and
 *    extra v1 are ignored) unless those items make the header unparseable;
 *    signed with the second secret, as during a rotation, it alone names #2;
 *  - the same header never verifies against a body changed by one byte. */
#include "common/stripe_sig.h"

#include "tests/fuzz/fuzz_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sig_secrets secrets;

static void setup(void) {
    char err[256];
    if (secrets.count == 0 && sig_secrets_parse("whsec_old_test_secret, whsec_new_test_secret",
                                                &secrets, err, sizeof(err)) != 0)
        abort();
}

static void check_explained(sig_result r, const sig_detail *d) {
    char why[512];
    sig_explain(r, d, why, sizeof(why));
    CHECK(strlen(why) > 0 && strlen(why) < sizeof(why));
    CHECK(strcmp(sig_result_code(r), "unknown") != 0);
    CHECK(r != SIG_OK || (d->matched_secret >= 0 && d->matched_secret < secrets.count));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char header[SIG_MAX_HEADER + 256];
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = size - (size_t)(body - data);
    int64_t now = 1700000000;
    sig_detail d;
    setup();
    if (hlen > SIG_MAX_HEADER + 100) return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';

    sig_result r = sig_verify(header, body, blen, &secrets, 300, now, &d);
    check_explained(r, &d);

    /* a genuine signature first, the fuzzed items after it */
    char genuine[SIG_HEADER_LEN], *combined = malloc(SIG_HEADER_LEN + hlen + 2);
    CHECK(combined != NULL);
    CHECK(sig_sign(secrets.secret[1], now - 10, body, blen, genuine, sizeof(genuine)) == 0);
    snprintf(combined, SIG_HEADER_LEN + hlen + 2, "%s,%s", genuine, header);
    r = sig_verify(combined, body, blen, &secrets, 300, now, &d);
    check_explained(r, &d);
    CHECK(r == SIG_OK || r == SIG_BAD_HEADER);
    if (r == SIG_OK) {
        CHECK(sig_verify(genuine, body, blen, &secrets, 300, now, &d) == SIG_OK);
        CHECK(d.matched_secret == 1);
        if (blen > 0) { /* one byte changed: no longer authentic */
            uint8_t *copy = malloc(blen);
            CHECK(copy != NULL);
            memcpy(copy, body, blen);
            copy[blen / 2] ^= 0x20;
            CHECK(sig_verify(genuine, copy, blen, &secrets, 300, now, &d) == SIG_NO_MATCH);
            free(copy);
        }
    }
    free(combined);
    return 0;
}
