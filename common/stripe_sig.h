/* stripe_sig.h - Stripe-Signature verification, as Stripe's official SDKs do it.
 *
 * Used by ingest (every POST), by `paystreamctl verify-signature` (explains a
 * failure) and by `paystreamctl trigger` and the tests (sign a body). Knows
 * nothing of HTTP or JSON: it sees a header string, body bytes and secrets.
 * No function here ever puts a secret into a message. */
#ifndef PS_STRIPE_SIG_H
#define PS_STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>

#define SIG_MAX_HEADER  8192 /* longer Stripe-Signature headers are unparseable */
#define SIG_MAX_ITEMS   64   /* comma-separated items per header, at most */
#define SIG_MAX_SECRETS 16   /* secrets in one list (rotation needs two or three) */
#define SIG_MAX_SECRET  1024 /* bytes per secret */
#define SIG_HEADER_LEN  96   /* buffer size that always fits sig_sign() output */

/* Why a verification failed. Several values may share one machine code
 * (sig_result_code); the value itself is more precise, for the explanation. */
typedef enum {
    SIG_OK = 0,
    SIG_NO_HEADER,    /* header absent or blank */
    SIG_BAD_HEADER,   /* unparseable: see sig_detail.problem */
    SIG_NO_TIMESTAMP, /* parseable but no t= item (code: unparseable_header) */
    SIG_NO_V1,        /* no v1= item; v0 and unknown schemes are ignored */
    SIG_NO_MATCH,     /* no v1 value equals HMAC(secret, t "." body) for any secret */
    SIG_TOO_OLD,      /* authentic, but now - t > tolerance */
    SIG_NO_SECRET,    /* no secret to verify with (a configuration error) */
} sig_result;

/* What verification saw; filled as far as it got. Never holds secret bytes. */
typedef struct sig_detail {
    int64_t timestamp;   /* t= value; -1 when there is none */
    int64_t age;         /* now - timestamp in seconds; negative: signed "in the future" */
    long tolerance;      /* as passed; <= 0 means the age was not checked */
    int n_v1;            /* v1= items seen */
    int n_v1_malformed;  /* of those, not 64 lower-case hex digits (can never match) */
    int n_ignored;       /* v0= and unknown-scheme items skipped */
    int n_secrets;       /* secrets tried */
    int matched_secret;  /* 0-based index of the secret that matched; -1 when none */
    const char *problem; /* static text saying why the header is unparseable, or NULL */
} sig_detail;

struct evp_mac_ctx_st; /* OpenSSL's EVP_MAC_CTX */

/* A parsed secret list. Owns its strings and, per secret, an HMAC-SHA256
 * context keyed once (sig_verify re-initialises it without re-keying, so a
 * list is for one thread at a time). sig_secrets_free() wipes and frees them
 * and accepts a zeroed or already-freed list. A list built by hand with
 * mac[i] NULL also works, keying a context per call. */
typedef struct sig_secrets {
    int count;
    char *secret[SIG_MAX_SECRETS];
    struct evp_mac_ctx_st *mac[SIG_MAX_SECRETS];
} sig_secrets;

/* Parse a comma- or newline-separated list (STRIPE_WEBHOOK_SECRET, a secret
 * file). Items are trimmed of blanks; empty items are skipped. Any string is
 * accepted as a secret, as the SDKs do (see sig_secrets_check for warnings).
 * Returns 0, or -1 with a one-line reason in err (never a secret) and *out
 * left empty: no secret at all, more than SIG_MAX_SECRETS, a secret longer
 * than SIG_MAX_SECRET, out of memory, or OpenSSL without HMAC-SHA256. */
int sig_secrets_parse(const char *list, sig_secrets *out, char *err, size_t errlen);
void sig_secrets_free(sig_secrets *s);

/* Things an operator probably got wrong: a secret not starting with whsec_,
 * a secret containing blanks or control characters, the same secret twice.
 * Writes the first such warning (naming the secret by its 1-based position
 * only) into warn and returns how many were found; 0 means all looks right. */
int sig_secrets_check(const sig_secrets *s, char *warn, size_t warnlen);

/* Verify `header` (the Stripe-Signature value, NUL-terminated; NULL means
 * absent) for body[0..body_len) (any bytes, NULs included) against every
 * secret. Accepted when any v1 value equals the HMAC of any secret; every
 * pair is compared in constant time and the loop never stops early. The age
 * is checked only after a signature matched and only when tolerance > 0: a
 * timestamp in the future is accepted, as stripe-node, -python, -ruby, -go and
 * -java do (stripe-php and stripe-dotnet also reject now - t < -tolerance).
 * `now` is Unix seconds. detail may be NULL. */
sig_result sig_verify(const char *header, const void *body, size_t body_len,
                      const sig_secrets *secrets, long tolerance, int64_t now, sig_detail *detail);

/* Stable machine code for the JSON error body and the metrics label:
 * "ok", "missing_header", "unparseable_header", "no_v1_signature",
 * "no_matching_signature", "timestamp_outside_tolerance", "no_secret". */
const char *sig_result_code(sig_result r);

/* One operator-actionable sentence about r (no trailing newline), e.g.
 * "signed 2h 3m ago (tolerance 300 s): clock skew or a replayed request".
 * d may be NULL (the sentence is then less specific). */
void sig_explain(sig_result r, const sig_detail *d, char *buf, size_t len);

/* Write "t=<t>,v1=<hex>" for body signed with secret into out (see
 * SIG_HEADER_LEN). For tests and `paystreamctl trigger`. Returns 0, or -1
 * when t < 0, secret is empty, out is too small or OpenSSL fails. */
int sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *out, size_t outlen);

#endif
