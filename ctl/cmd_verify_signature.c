/* cmd_verify_signature.c - `paystreamctl verify-signature --header H [--secret S]
 * [--now T] [--tolerance S] < body`: checks a Stripe-Signature header against a
 * body on stdin with the exact code ingest uses (common/stripe_sig.c) and says
 * why it fails. Exit 0 valid, 1 invalid, 2 usage. --tolerance is a setting
 * (PAYSTREAM_TOLERANCE, cfg->tolerance); 0 skips the age check. */
#include "commands.h"
#include "alloc.h"
#include "strbuf.h"
#include "stripe_sig.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CMD      "verify-signature"
#define MAX_BODY (64L * 1024 * 1024)
#define USAGE    "usage: verify-signature --header H [--secret S] [--now T] [--tolerance S] < body"

typedef struct vs_args {
    const char *header; /* Stripe-Signature value */
    const char *secret; /* comma-separated list; NULL: STRIPE_WEBHOOK_SECRET */
    const char *now;    /* Unix seconds; NULL: the clock */
    bool help;
} vs_args;

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if not this flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static int parse_args(int argc, char **argv, vs_args *a) {
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            a->help = true;
        else if ((v = flag_value(argc, argv, &i, "--header")) != NULL)
            a->header = v;
        else if ((v = flag_value(argc, argv, &i, "--secret")) != NULL)
            a->secret = v;
        else if ((v = flag_value(argc, argv, &i, "--now")) != NULL)
            a->now = v;
        else
            return ctl_fail(EXIT_USAGE, CMD, "unexpected '%s'; %s", argv[i], USAGE);
    }
    return 0;
}

static void print_help(void) {
    printf("%s\n\n"
           "Checks a Stripe-Signature header against the raw body on stdin, as ingest does.\n"
           "  --header H     the Stripe-Signature value, e.g. 't=1700000000,v1=5257a8...'\n"
           "  --secret S     whsec_... secrets, comma-separated (default STRIPE_WEBHOOK_SECRET;\n"
           "                 prefer the variable: a flag shows up in ps and shell history)\n"
           "  --now T        Unix seconds to check the age against (default: now)\n"
           "  --tolerance S  seconds a signature may be old; 0 skips the check (default 300)\n"
           "Exit 0 valid, 1 invalid (with the reason), 2 usage error.\n",
           USAGE);
}

/* Read all of stdin into *out (ps_free it), refusing more than MAX_BODY.
 * Returns 0, or -1 after printing why. */
static int read_body(char **out, size_t *len) {
    strbuf sb;
    char chunk[16384];
    size_t got;
    const char *why = NULL;
    strbuf_init(&sb);
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "paystreamctl: " CMD ": reading the body from stdin (end with Ctrl-D)\n");
    while (why == NULL && (got = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (sb.len + got > (size_t)MAX_BODY)
            why = "the body on stdin is larger than 64 MiB (Stripe sends far less); wrong file?";
        else
            strbuf_append(&sb, chunk, got);
    }
    if (why == NULL && ferror(stdin)) why = "cannot read the body from stdin";
    *len = sb.len;
    *out = why ? NULL : strbuf_detach(&sb);
    if (why == NULL && *out == NULL) why = "out of memory reading the body";
    strbuf_free(&sb);
    if (why == NULL) return 0;
    ctl_fail(EXIT_USAGE, CMD, "%s", why);
    return -1;
}

/* The secrets: --secret, else STRIPE_WEBHOOK_SECRET. 0, or -1 after printing why. */
static int load_secrets(const ps_config *cfg, const vs_args *a, sig_secrets *s) {
    char err[256], warn[256];
    const char *list = a->secret ? a->secret : cfg->webhook_secret;
    if (list == NULL) {
        memset(s, 0, sizeof(*s));
        ctl_fail(EXIT_USAGE, CMD, "no secret: pass --secret or set STRIPE_WEBHOOK_SECRET");
        return -1;
    }
    if (sig_secrets_parse(list, s, err, sizeof(err)) != 0) {
        ctl_fail(EXIT_USAGE, CMD, "%s: %s", a->secret ? "--secret" : "STRIPE_WEBHOOK_SECRET", err);
        return -1;
    }
    if (sig_secrets_check(s, warn, sizeof(warn)) > 0)
        fprintf(stderr, "paystreamctl: " CMD ": warning: %s\n", warn);
    return 0;
}

static void print_valid(const sig_detail *d) {
    if (d->age >= 0)
        printf("valid: signed by secret #%d, %lld seconds ago", d->matched_secret + 1,
               (long long)d->age);
    else
        printf("valid: signed by secret #%d, %lld seconds in the future (clock skew?)",
               d->matched_secret + 1, -(long long)d->age);
    if (d->tolerance <= 0) printf(" (age not checked: tolerance 0)");
    putchar('\n');
}

/* What was seen, so the operator can compare it with what Stripe sent. */
static void print_facts(const sig_detail *d, size_t body_len) {
    printf("  seen: ");
    if (d->timestamp >= 0)
        printf("t=%lld (age %lld s), ", (long long)d->timestamp, (long long)d->age);
    else
        printf("no t=, ");
    printf("%d v1 signature%s, %d other item%s; body %zu bytes; %d secret%s; tolerance %ld s\n",
           d->n_v1, d->n_v1 == 1 ? "" : "s", d->n_ignored, d->n_ignored == 1 ? "" : "s", body_len,
           d->n_secrets, d->n_secrets == 1 ? "" : "s", d->tolerance);
}

/* A body saved with `echo` or an editor gains a newline Stripe never sent. */
static void hint_trailing_newline(const char *header, const char *body, size_t len,
                                  const sig_secrets *s) {
    if (len == 0 || body[len - 1] != '\n') return;
    size_t n = len - 1;
    if (n > 0 && body[n - 1] == '\r') n--;
    if (sig_verify(header, body, n, s, 0, 0, NULL) == SIG_OK)
        printf("hint: the body matches without its trailing newline, which was added when it "
               "was saved (echo, an editor): keep the raw request body byte for byte\n");
}

static int report(const vs_args *a, const char *body, size_t len, const sig_secrets *s,
                  long tolerance, long now) {
    sig_detail d;
    char why[512];
    sig_result r = sig_verify(a->header, body, len, s, tolerance, now, &d);
    if (r == SIG_OK) {
        print_valid(&d);
        return 0;
    }
    sig_explain(r, &d, why, sizeof(why));
    printf("invalid: %s (code %s)\n", why, sig_result_code(r));
    if (r != SIG_NO_HEADER && r != SIG_NO_SECRET) print_facts(&d, len);
    if (r == SIG_NO_MATCH) hint_trailing_newline(a->header, body, len, s);
    return 1;
}

int cmd_verify_signature(const ps_config *cfg, int argc, char **argv) {
    vs_args a;
    sig_secrets s;
    char *body = NULL;
    size_t len = 0;
    long now = (long)(time_now_ms() / 1000);
    if (parse_args(argc, argv, &a) != 0) return EXIT_USAGE;
    if (a.help) {
        print_help();
        return 0;
    }
    if (a.header == NULL) return ctl_fail(EXIT_USAGE, CMD, "--header is required; %s", USAGE);
    if (a.now != NULL && (!str_to_long(a.now, &now) || now < 0))
        return ctl_fail(EXIT_USAGE, CMD, "--now '%s' is not Unix seconds (e.g. 1700000000)", a.now);
    if (load_secrets(cfg, &a, &s) != 0) return EXIT_USAGE;
    if (read_body(&body, &len) != 0) {
        sig_secrets_free(&s);
        return EXIT_USAGE;
    }
    int rc = report(&a, body, len, &s, cfg->tolerance, now);
    ps_free(body);
    sig_secrets_free(&s);
    return rc;
}
