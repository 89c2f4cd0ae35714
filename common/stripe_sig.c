/* stripe_sig.c - Stripe-Signature parsing, HMAC-SHA256 and explanations.
 *
 * Where the official SDKs disagree, the majority wins and the choice is noted
 * next to the code: first t= wins, v1 must be lower-case hex, blanks around
 * items are allowed, the signature is checked before the age, and only the
 * age (not a future timestamp) is limited. See stripe_sig.h for the contract. */
#include "stripe_sig.h"
#include "alloc.h"
#include "strbuf.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define MAC_LEN      32
#define HEX_LEN      ((size_t)2 * MAC_LEN)
#define T_MAX_DIGITS 18 /* < 10^18: now - t cannot overflow for any sane now */

/* The header once parsed: the first t= and every well-formed v1 value. */
typedef struct parsed_header {
    int64_t t; /* -1: no t= item */
    int n_sig; /* well-formed v1 values in sig[] */
    unsigned char sig[SIG_MAX_ITEMS][MAC_LEN];
} parsed_header;

/* ---------------------------------------------------------------- helpers */

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* upper case too: the SDKs compare lower-case hex strings */
}

/* Decode exactly HEX_LEN lower-case hex digits; false for anything else. */
static bool decode_v1(const char *v, size_t len, unsigned char out[MAC_LEN]) {
    if (len != HEX_LEN) return false;
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = hex_digit(v[2 * i]), lo = hex_digit(v[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* A whole number of seconds: 1 to T_MAX_DIGITS decimal digits, no sign, no
 * blanks. (stripe-go and stripe-java are this strict; the lenient parsers of
 * node/python/php would accept "12abc" or " 12", which Stripe never sends.) */
static bool parse_t(const char *v, size_t len, int64_t *out) {
    if (len == 0 || len > T_MAX_DIGITS) return false;
    int64_t t = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return false;
        t = t * 10 + (v[i] - '0');
    }
    *out = t;
    return true;
}

static int64_t sub_sat(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ------------------------------------------------------------------- HMAC */

/* An HMAC-SHA256 context keyed with the whole secret (the inner and outer
 * pad states are computed here, once), or NULL. */
static EVP_MAC_CTX *mac_keyed(const char *secret) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac == NULL) return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (ctx && !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* HMAC over "<t>." then the body bytes, fed in two pieces so a large body is
 * never copied. ctx is keyed: re-initialising it without a key restarts from
 * the pad states, with no allocation. */
static int mac_compute(EVP_MAC_CTX *ctx, int64_t t, const void *body, size_t len,
                       unsigned char out[MAC_LEN]) {
    char prefix[32];
    int n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", t);
    size_t outl = 0;
    if (n <= 0 || (size_t)n >= sizeof(prefix)) return -1;
    if (!EVP_MAC_init(ctx, NULL, 0, NULL)) return -1;
    if (!EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)n)) return -1;
    if (len > 0 && !EVP_MAC_update(ctx, body, len)) return -1;
    if (!EVP_MAC_final(ctx, out, &outl, MAC_LEN) || outl != MAC_LEN) return -1;
    return 0;
}

/* ----------------------------------------------------------------- parser */

/* One trimmed "key=value" item. Returns SIG_OK or SIG_BAD_HEADER. */
static sig_result parse_item(const char *p, size_t len, parsed_header *ph, sig_detail *d) {
    const char *eq = memchr(p, '=', len);
    if (eq == NULL) {
        d->problem = "an item without '='";
        return SIG_BAD_HEADER;
    }
    size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
    const char *v = eq + 1;
    if (klen == 1 && p[0] == 't') {
        if (ph->t >= 0) { /* python, ruby, php, java, .NET: the first t= wins */
            d->n_ignored++;
            return SIG_OK;
        }
        if (!parse_t(v, vlen, &ph->t)) {
            d->problem = "t= is not a whole number of seconds";
            return SIG_BAD_HEADER;
        }
        return SIG_OK;
    }
    if (klen == 2 && p[0] == 'v' && p[1] == '1') {
        d->n_v1++;
        if (decode_v1(v, vlen, ph->sig[ph->n_sig]))
            ph->n_sig++;
        else
            d->n_v1_malformed++; /* kept as a v1 that cannot match, like the SDKs */
        return SIG_OK;
    }
    d->n_ignored++; /* v0 (test-mode legacy scheme) and anything unknown */
    return SIG_OK;
}

/* Split on ',' and trim blanks around each item (as stripe-ruby and
 * stripe-dotnet do; Stripe itself sends none). Empty items are skipped. */
static sig_result parse_header(const char *h, parsed_header *ph, sig_detail *d) {
    size_t hlen = strnlen(h, SIG_MAX_HEADER + 1);
    int items = 0;
    if (hlen > SIG_MAX_HEADER) {
        d->problem = "header longer than 8192 bytes";
        return SIG_BAD_HEADER;
    }
    for (size_t i = 0; i < hlen;) {
        size_t start = i, end;
        while (i < hlen && h[i] != ',')
            i++;
        end = i++;
        while (start < end && is_blank(h[start]))
            start++;
        while (end > start && is_blank(h[end - 1]))
            end--;
        if (start == end) continue;
        if (++items > SIG_MAX_ITEMS) {
            d->problem = "more than 64 items";
            return SIG_BAD_HEADER;
        }
        sig_result r = parse_item(h + start, end - start, ph, d);
        if (r != SIG_OK) return r;
    }
    if (items == 0) return SIG_NO_HEADER; /* blank or only commas */
    if (ph->t < 0) return SIG_NO_TIMESTAMP;
    if (d->n_v1 == 0) return SIG_NO_V1;
    return SIG_OK;
}

/* ---------------------------------------------------------------- matcher */

/* Index of the first secret whose MAC equals any v1 value, or -1. Every
 * (secret, v1) pair is compared with CRYPTO_memcmp and the loops never exit
 * early, so the time taken does not depend on which pair matched. */
static int match_secrets(const parsed_header *ph, const sig_secrets *s, const void *body,
                         size_t len, sig_detail *d) {
    int matched = -1;
    for (int i = 0; i < s->count && i < SIG_MAX_SECRETS; i++) {
        unsigned char mac[MAC_LEN];
        unsigned hit = 0;
        EVP_MAC_CTX *ctx = s->mac[i] ? s->mac[i] : mac_keyed(s->secret[i]);
        int rc = ctx ? mac_compute(ctx, ph->t, body, len, mac) : -1;
        if (ctx != s->mac[i]) EVP_MAC_CTX_free(ctx);
        if (rc != 0) {
            d->problem = "OpenSSL failed to compute the HMAC";
            continue;
        }
        for (int j = 0; j < ph->n_sig; j++)
            hit |= (unsigned)(CRYPTO_memcmp(mac, ph->sig[j], MAC_LEN) == 0);
        unsigned take = hit & (unsigned)(matched < 0);
        int mask = -(int)take; /* all ones when this is the first match */
        matched = (matched & ~mask) | (i & mask);
        OPENSSL_cleanse(mac, sizeof(mac));
    }
    return matched;
}

/* ------------------------------------------------------------- public API */

sig_result sig_verify(const char *header, const void *body, size_t body_len,
                      const sig_secrets *secrets, long tolerance, int64_t now, sig_detail *detail) {
    sig_detail local = {0};
    sig_detail *d = detail ? detail : &local;
    parsed_header ph;
    *d = (sig_detail){.timestamp = -1, .tolerance = tolerance, .matched_secret = -1};
    ph.t = -1;
    ph.n_sig = 0;
    if (secrets == NULL || secrets->count <= 0) return SIG_NO_SECRET;
    d->n_secrets = secrets->count;
    if (header == NULL) return SIG_NO_HEADER;
    sig_result r = parse_header(header, &ph, d);
    d->timestamp = ph.t;
    if (ph.t >= 0) d->age = sub_sat(now, ph.t);
    if (r != SIG_OK) return r;
    if (body == NULL) body_len = 0;
    /* node, python, ruby, php, java: signature first, then age; so "too old"
     * is only ever said about a request that really came from Stripe. */
    d->matched_secret = match_secrets(&ph, secrets, body, body_len, d);
    OPENSSL_cleanse(ph.sig, sizeof(ph.sig));
    if (d->matched_secret < 0) return SIG_NO_MATCH;
    if (tolerance > 0 && d->age > tolerance) return SIG_TOO_OLD;
    return SIG_OK;
}

const char *sig_result_code(sig_result r) {
    switch (r) {
    case SIG_OK:
        return "ok";
    case SIG_NO_HEADER:
        return "missing_header";
    case SIG_BAD_HEADER:
    case SIG_NO_TIMESTAMP:
        return "unparseable_header";
    case SIG_NO_V1:
        return "no_v1_signature";
    case SIG_NO_MATCH:
        return "no_matching_signature";
    case SIG_TOO_OLD:
        return "timestamp_outside_tolerance";
    case SIG_NO_SECRET:
        return "no_secret";
    }
    return "unknown";
}

int sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
             size_t outlen) {
    unsigned char mac[MAC_LEN];
    char hex[HEX_LEN + 1];
    if (secret == NULL || *secret == '\0' || t < 0 || out == NULL) return -1;
    EVP_MAC_CTX *ctx = mac_keyed(secret);
    if (ctx == NULL) return -1;
    int rc = mac_compute(ctx, t, body, body ? len : 0, mac);
    EVP_MAC_CTX_free(ctx);
    if (rc != 0) return -1;
    hex_encode(mac, MAC_LEN, hex);
    int n = snprintf(out, outlen, "t=%" PRId64 ",v1=%s", t, hex);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* ---------------------------------------------------------------- secrets */

void sig_secrets_free(sig_secrets *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->count && i < SIG_MAX_SECRETS; i++) {
        EVP_MAC_CTX_free(s->mac[i]); /* OpenSSL wipes the key state */
        if (s->secret[i] == NULL) continue;
        OPENSSL_cleanse(s->secret[i], strlen(s->secret[i]));
        ps_free(s->secret[i]);
    }
    memset(s, 0, sizeof(*s));
}

static bool is_list_sep(char c) {
    return c == ',' || c == '\n' || c == '\r';
}

/* Add p[0..len) trimmed of blanks, unless empty. Returns 0, or -1 with err set. */
static int secrets_add(sig_secrets *out, const char *p, size_t len, char *err, size_t errlen) {
    while (len > 0 && (is_blank(*p) || *p == '\f' || *p == '\v'))
        p++, len--;
    while (len > 0 && (is_blank(p[len - 1]) || p[len - 1] == '\f' || p[len - 1] == '\v'))
        len--;
    if (len == 0) return 0;
    if (out->count >= SIG_MAX_SECRETS) {
        snprintf(err, errlen, "more than %d webhook secrets", SIG_MAX_SECRETS);
        return -1;
    }
    if (len > SIG_MAX_SECRET) {
        snprintf(err, errlen, "webhook secret #%d is longer than %d bytes", out->count + 1,
                 SIG_MAX_SECRET);
        return -1;
    }
    out->secret[out->count] = ps_strndup(p, len);
    if (out->secret[out->count] == NULL) {
        snprintf(err, errlen, "out of memory reading the webhook secrets");
        return -1;
    }
    out->count++;
    return 0;
}

int sig_secrets_parse(const char *list, sig_secrets *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (list == NULL) list = "";
    for (size_t i = 0;;) {
        size_t start = i;
        while (list[i] != '\0' && !is_list_sep(list[i]))
            i++;
        if (secrets_add(out, list + start, i - start, err, errlen) != 0) {
            sig_secrets_free(out);
            return -1;
        }
        if (list[i] == '\0') break;
        i++;
    }
    if (out->count == 0) {
        snprintf(err, errlen, "no webhook secret given (expected whsec_..., comma-separated)");
        return -1;
    }
    for (int i = 0; i < out->count; i++) {
        if ((out->mac[i] = mac_keyed(out->secret[i])) == NULL) {
            snprintf(err, errlen, "OpenSSL cannot compute HMAC-SHA256");
            sig_secrets_free(out);
            return -1;
        }
    }
    return 0;
}

static bool has_blank_or_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f) return true;
    return false;
}

/* The first warning about secret i, or NULL. `first_dup` gets the earlier twin. */
static const char *secret_warning(const sig_secrets *s, int i, int *first_dup) {
    for (int j = 0; j < i; j++) {
        if (strcmp(s->secret[i], s->secret[j]) == 0) {
            *first_dup = j; /* the caller words this one */
            return "is a duplicate";
        }
    }
    if (has_blank_or_control(s->secret[i]))
        return "contains a blank or control character: a copy-paste accident?";
    if (!str_starts_with(s->secret[i], "whsec_"))
        return "does not start with whsec_: is it the endpoint's signing secret (not an API key)?";
    return NULL;
}

int sig_secrets_check(const sig_secrets *s, char *warn, size_t warnlen) {
    int found = 0;
    if (warnlen > 0) warn[0] = '\0';
    for (int i = 0; s != NULL && i < s->count; i++) {
        int dup = -1;
        const char *w = secret_warning(s, i, &dup);
        if (w == NULL) continue;
        if (found++ > 0 || warnlen == 0) continue;
        int n = snprintf(warn, warnlen, "webhook secret #%d ", i + 1);
        if (n < 0 || (size_t)n >= warnlen) continue;
        if (dup >= 0)
            snprintf(warn + n, warnlen - (size_t)n, "is the same as secret #%d", dup + 1);
        else
            snprintf(warn + n, warnlen - (size_t)n, "%s", w);
    }
    return found;
}

/* ----------------------------------------------------------- explanations */

/* "45 s", "12m 5s", "2h 3m", "3d 4h". */
static void fmt_duration(int64_t s, char *buf, size_t len) {
    if (s < 0) s = s == INT64_MIN ? INT64_MAX : -s;
    if (s < 60)
        snprintf(buf, len, "%" PRId64 " s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h %" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
}

static void explain_ok(const sig_detail *d, char *buf, size_t len) {
    char dur[48];
    fmt_duration(d->age, dur, sizeof(dur));
    snprintf(buf, len, "valid: signed by secret #%d of %d, %s %s%s", d->matched_secret + 1,
             d->n_secrets, dur, d->age < 0 ? "in the future (clock skew)" : "ago",
             d->tolerance > 0 ? "" : " (age not checked: tolerance 0)");
}

static void explain_no_match(const sig_detail *d, char *buf, size_t len) {
    char malformed[96] = "";
    if (d->problem != NULL) {
        snprintf(buf, len, "could not verify: %s", d->problem);
        return;
    }
    if (d->n_v1 > 0 && d->n_v1_malformed == d->n_v1) {
        snprintf(buf, len,
                 "no v1 signature is 64 lower-case hex digits (%d seen): the header was "
                 "truncated or altered on the way, or not made by Stripe",
                 d->n_v1);
        return;
    }
    if (d->n_v1_malformed > 0)
        snprintf(malformed, sizeof(malformed), ", %d of them not 64 lower-case hex digits",
                 d->n_v1_malformed);
    snprintf(buf, len,
             "no secret matches (%d secret%s tried against %d v1 signature%s%s): test/live "
             "secret mix-up, a secret from another endpoint, or a body changed by a proxy "
             "(re-encoded JSON, changed newlines or charset)",
             d->n_secrets, d->n_secrets == 1 ? "" : "s", d->n_v1, d->n_v1 == 1 ? "" : "s",
             malformed);
}

static void explain_too_old(const sig_detail *d, char *buf, size_t len) {
    char dur[48];
    fmt_duration(d->age, dur, sizeof(dur));
    snprintf(buf, len, "signed %s ago (tolerance %ld s): clock skew or a replayed request%s", dur,
             d->tolerance,
             d->age > 86400 ? " (replays of old events go through `paystreamctl replay`)" : "");
}

void sig_explain(sig_result r, const sig_detail *d, char *buf, size_t len) {
    static const sig_detail none = {.timestamp = -1, .matched_secret = -1};
    if (buf == NULL || len == 0) return;
    if (d == NULL) d = &none;
    switch (r) {
    case SIG_OK:
        explain_ok(d, buf, len);
        return;
    case SIG_NO_HEADER:
        snprintf(buf, len,
                 "no Stripe-Signature header: the request did not come from Stripe, "
                 "or a proxy dropped the header");
        return;
    case SIG_BAD_HEADER:
        snprintf(buf, len,
                 "unparseable Stripe-Signature header (%s): expected t=<unix seconds>,v1=<64 hex "
                 "digits>; not a Stripe request, or mangled on the way",
                 d->problem ? d->problem : "malformed");
        return;
    case SIG_NO_TIMESTAMP:
        snprintf(buf, len,
                 "Stripe-Signature header has no t= timestamp: not a Stripe request, "
                 "or mangled on the way");
        return;
    case SIG_NO_V1:
        snprintf(buf, len,
                 "no v1 signature in the Stripe-Signature header (%d v0 or unknown item%s "
                 "ignored): not signed with an endpoint secret, or not sent by Stripe",
                 d->n_ignored, d->n_ignored == 1 ? "" : "s");
        return;
    case SIG_NO_MATCH:
        explain_no_match(d, buf, len);
        return;
    case SIG_TOO_OLD:
        explain_too_old(d, buf, len);
        return;
    case SIG_NO_SECRET:
        snprintf(buf, len,
                 "no webhook secret to verify with: set STRIPE_WEBHOOK_SECRET to the "
                 "endpoint's whsec_... signing secret");
        return;
    }
    snprintf(buf, len, "unknown verification result %d", (int)r);
}
