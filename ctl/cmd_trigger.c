/* cmd_trigger.c - `paystreamctl trigger SCENARIO --url URL [--user UUID]
 * [--secret S] [--api-version V] [--plans FILE] [--period N] [--plan ID]
 * [--pack ID]`: sends correctly signed, realistic Stripe events to a running
 * ingest, like `stripe trigger`, for trying paystream without a Stripe account.
 *
 * This file owns the command line, the plans file, the scenario table and the
 * sending loop (sign, POST, retry, report). The events themselves are built in
 * trigger_events.c, the HTTP client is trigger_http.c. Exit 0 when every POST
 * got 200, 1 when one did not (after retries) or the run failed, 2 on usage. */
#include "commands.h"
#include "alloc.h"
#include "fileio.h"
#include "stripe_sig.h"
#include "strbuf.h"
#include "timeutil.h"
#include "trigger.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define CMD "trigger"
#define USAGE                                                                                      \
    "usage: trigger SCENARIO --url URL [--user UUID] [--secret S] [--api-version V] [--plans "     \
    "FILE] [--period N] [--plan ID] [--pack ID]"
#define API_BASIL  "2025-03-31.basil"
#define MAX_ITEMS  256
#define TRIES      3
#define TIMEOUT_MS 10000
#define TRIG_SEATS 5

typedef struct trig_args {
    const char *scenario, *url, *user, *secret, *api_version, *plans, *plan, *pack;
    long period; /* 0: the scenario's default */
    bool help;
} trig_args;

/* The first two plans and the first pack of the plans file, or those named. */
typedef struct trig_catalog {
    trig_item items[MAX_ITEMS];
    bool is_pack[MAX_ITEMS];
    int n;
    const trig_item *plan1, *plan2, *pack; /* defaults, after --plan/--pack */
    const trig_item *chosen_plan;          /* --plan, or NULL */
} trig_catalog;

/* ------------------------------------------------------------ scenarios -- */

typedef int (*scenario_fn)(trig_ctx *c, const trig_catalog *k, int period);

static int sc_subscription(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_subscription(c, p ? p : 1, k->chosen_plan ? k->chosen_plan : k->plan1);
}
static int sc_credit_pack(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_credit_pack(c, p ? p : 1, k->pack);
}
static int sc_renewal(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_renewal(c, p ? p : 2, k->chosen_plan ? k->chosen_plan : k->plan1);
}
static int sc_upgrade(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_upgrade(c, p ? p : 2, k->plan1, k->chosen_plan ? k->chosen_plan : k->plan2);
}
static int sc_refund(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_refund(c, p ? p : 1, k->pack);
}
static int sc_refund_subscription(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_refund_subscription(c, p ? p : 1, k->chosen_plan ? k->chosen_plan : k->plan1);
}
static int sc_dispute_lost(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_dispute(c, p ? p : 1, k->pack, false);
}
static int sc_dispute_won(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_dispute(c, p ? p : 1, k->pack, true);
}
static int sc_cancel(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_cancel(c, p ? p : 2, k->chosen_plan ? k->chosen_plan : k->plan2);
}
static int sc_seats(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_seats(c, p ? p : 1, k->chosen_plan ? k->chosen_plan : k->plan1, TRIG_SEATS);
}
static int sc_trial(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_trial(c, p ? p : 1, k->chosen_plan ? k->chosen_plan : k->plan1);
}
static int sc_pause(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_pause(c, p ? p : 2, k->chosen_plan ? k->chosen_plan : k->plan1);
}
static int sc_second_subscription(trig_ctx *c, const trig_catalog *k, int p) {
    return trig_second_subscription(c, p ? p : 2, k->chosen_plan ? k->chosen_plan : k->plan2);
}
/* All of them for one user, in this order; the pack is bought in period N,
 * renewed, upgraded and cancelled in N + 1. */
static int sc_lifecycle(trig_ctx *c, const trig_catalog *k, int p) {
    int n = p ? p : 1;
    if (trig_subscription(c, n, k->plan1) != 0 || trig_credit_pack(c, n, k->pack) != 0 ||
        trig_renewal(c, n + 1, k->plan1) != 0 || trig_upgrade(c, n + 1, k->plan1, k->plan2) != 0 ||
        trig_refund(c, n, k->pack) != 0 || trig_cancel(c, n + 1, k->plan2) != 0)
        return -1;
    return 0;
}

static const struct {
    const char *name;
    scenario_fn fn;
    const char *help;
} scenarios[] = {
    {"subscription", sc_subscription,
     "checkout, subscription created, first invoice paid (period 1; --plan, default plan 1)"},
    {"credit-pack", sc_credit_pack,
     "checkout of a pack, payment_intent.succeeded, charge.succeeded (period 1; --pack)"},
    {"renewal", sc_renewal,
     "next period: subscription updated, its invoice paid (period 2; --plan, default plan 1)"},
    {"upgrade", sc_upgrade, "plan 1 -> --plan (default plan 2), proration invoice paid (period 2)"},
    {"refund", sc_refund, "charge.refunded: half of the pack bought in the period (period 1)"},
    {"refund-subscription", sc_refund_subscription,
     "charge.refunded: the subscription's invoice of the period refunded in full (period 1; "
     "--plan, default plan 1)"},
    {"dispute-lost", sc_dispute_lost,
     "charge.dispute.*: a chargeback of the pack bought in the period, lost (period 1; --pack)"},
    {"dispute-won", sc_dispute_won,
     "charge.dispute.*: a chargeback of the pack bought in the period, won (period 1; --pack)"},
    {"cancel", sc_cancel, "customer.subscription.deleted (period 2; --plan, default plan 2)"},
    {"lifecycle", sc_lifecycle,
     "all of the above, in this order, for one user (--period N: periods N and N+1)"},
    {"seats", sc_seats, "a subscription of 5 seats of --plan (default plan 1), paid (period 1)"},
    {"trial", sc_trial,
     "a subscription trialing through period 1, its $0 invoice (--plan, default plan 1)"},
    {"pause", sc_pause, "customer.subscription.paused (period 2; --plan, default plan 1)"},
    {"second-subscription", sc_second_subscription,
     "a second subscription (--plan, default plan 2) whose payment fails: incomplete, "
     "incomplete_expired (period 2)"},
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

/* ------------------------------------------------------------ arguments -- */

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if not this flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0' || *i + 1 >= argc || argv[*i + 1] == NULL) return NULL;
    return argv[++*i];
}

static int parse_args(int argc, char **argv, trig_args *a) {
    const char *v;
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            a->help = true;
        else if ((v = flag_value(argc, argv, &i, "--url")) != NULL)
            a->url = v;
        else if ((v = flag_value(argc, argv, &i, "--user")) != NULL)
            a->user = v;
        else if ((v = flag_value(argc, argv, &i, "--secret")) != NULL)
            a->secret = v;
        else if ((v = flag_value(argc, argv, &i, "--api-version")) != NULL)
            a->api_version = v;
        else if ((v = flag_value(argc, argv, &i, "--plans")) != NULL)
            a->plans = v;
        else if ((v = flag_value(argc, argv, &i, "--plan")) != NULL)
            a->plan = v;
        else if ((v = flag_value(argc, argv, &i, "--pack")) != NULL)
            a->pack = v;
        else if ((v = flag_value(argc, argv, &i, "--period")) != NULL) {
            if (!str_to_long(v, &a->period) || a->period < 1 || a->period > 1200)
                return ctl_fail(EXIT_USAGE, CMD, "--period '%s' is not a period number (1, 2, ...)",
                                v);
        } else if (argv[i][0] != '-' && a->scenario == NULL)
            a->scenario = argv[i];
        else
            return ctl_fail(EXIT_USAGE, CMD, "unexpected '%s'; %s", argv[i], USAGE);
    }
    return 0;
}

static void print_help(void) {
    printf("%s\n\n"
           "Sends signed, realistic Stripe events (fresh ids, the shapes Stripe sends) to a\n"
           "running paystream-ingest, like `stripe trigger`. Scenarios:\n",
           USAGE);
    for (size_t i = 0; i < N_SCENARIOS; i++)
        printf("  %-19s %s\n", scenarios[i].name, scenarios[i].help);
    printf("  (plan 1, plan 2, the pack: the first two plans and the first pack of --plans)\n");
    printf("\n"
           "  --url URL          ingest's webhook URL, http:// only (e.g.\n"
           "                     http://127.0.0.1:8080/webhooks/stripe)\n"
           "  --user UUID        the app's user (default: a new random one, printed)\n"
           "  --secret S         whsec_... signing secret; the first of a comma list (default\n"
           "                     STRIPE_WEBHOOK_SECRET)\n"
           "  --api-version V    event shape: %s (default) or older, e.g. 2024-06-20\n"
           "  --plans FILE       plans and packs, `plans load` format (default:\n"
           "                     deploy/plans.example, as installed)\n"
           "  --period N         the billing period the scenario happens in; periods are\n"
           "                     30-day cycles, period 2 is the one holding now\n"
           "  --plan ID, --pack ID  a plan or pack of the plans file instead of the default\n\n"
           "The customer and subscription ids, and the ids of the pack bought in a\n"
           "period, come from the user id: `trigger renewal --user U` after `trigger\n"
           "subscription --user U` renews the same subscription. One line per event:\n"
           "id, type, HTTP status. A 503 or a connection error is retried (3 tries).\n"
           "Exit 0 all answered 200, 1 one was not (sending stops there), 2 usage error.\n",
           API_BASIL);
}

static bool valid_api_version(const char *v) {
    static const char shape[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof(shape) - 1; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)v[i]) : v[i] != '-') return false;
    const char *rest = v + sizeof(shape) - 1;
    if (*rest == '\0') return true;
    if (*rest != '.' || rest[1] == '\0') return false;
    for (rest++; *rest; rest++)
        if (!islower((unsigned char)*rest)) return false;
    return true;
}

/* -------------------------------------------------------------- inputs -- */

static const char *data_path(const char *given, const char *env, const char *install,
                             const char *build) {
    struct stat st;
    if (given) return given;
    if (env && getenv(env)) return getenv(env);
    if (stat(install, &st) == 0) return install;
    return build;
}

static const trig_item *find_item(const trig_catalog *k, const char *id, bool pack) {
    for (int i = 0; i < k->n; i++)
        if (k->is_pack[i] == pack && strcmp(k->items[i].id, id) == 0) return &k->items[i];
    return NULL;
}

/* Read the plans file (the `plans load` format) into k. 0, or -1 after
 * printing why. */
static int load_catalog(const char *path, const trig_args *a, trig_catalog *k) {
    char err[512];
    char *text = file_read_all(path, 1 << 20, NULL, err, sizeof(err));
    if (text == NULL) return ctl_fail(-1, CMD, "--plans: %s", err);
    memset(k, 0, sizeof(*k));
    int plans = 0;
    for (char *save = NULL, *ln = strtok_r(text, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        char kind[8], id[65], price[256], name[128] = "";
        long credits;
        int used = 0;
        char *hash = strchr(ln, '#');
        if (hash) *hash = '\0';
        if (sscanf(ln, "%7s %64s %255s %ld %n", kind, id, price, &credits, &used) < 4) continue;
        if ((strcmp(kind, "plan") != 0 && strcmp(kind, "pack") != 0) || k->n == MAX_ITEMS) continue;
        str_copy(name, ln + used, sizeof(name));
        for (size_t n = strlen(name); n > 0 && isspace((unsigned char)name[n - 1]); n--)
            name[n - 1] = '\0';
        trig_item *it = &k->items[k->n];
        k->is_pack[k->n++] = kind[1] == 'a';
        str_copy(it->id, id, sizeof(it->id));
        str_copy(it->price, price, sizeof(it->price));
        str_copy(it->name, name[0] ? name : id, sizeof(it->name));
        it->credits = credits;
        /* made-up prices: $0.09 a plan credit, $0.20 a pack credit */
        it->amount = kind[1] == 'a' ? credits * 20 : credits * 9;
        if (kind[1] == 'a' && k->pack == NULL) k->pack = it;
        if (kind[1] == 'l' && ++plans == 1) k->plan1 = it;
        if (kind[1] == 'l' && plans == 2) k->plan2 = it;
    }
    ps_free(text);
    if (a->plan && (k->chosen_plan = find_item(k, a->plan, false)) == NULL)
        return ctl_fail(-1, CMD, "--plan '%s': no such plan in %s", a->plan, path);
    if (a->pack && (k->pack = find_item(k, a->pack, true)) == NULL)
        return ctl_fail(-1, CMD, "--pack '%s': no such pack in %s", a->pack, path);
    if (k->plan2 == NULL || k->pack == NULL)
        return ctl_fail(-1, CMD, "%s: needs at least two plans and one pack", path);
    return 0;
}

/* The signing secret: --secret, else STRIPE_WEBHOOK_SECRET; the first of a list. */
static char *load_secret(const ps_config *cfg, const trig_args *a) {
    char err[256], warn[256];
    sig_secrets s;
    const char *list = a->secret ? a->secret : cfg->webhook_secret;
    if (list == NULL) {
        ctl_fail(EXIT_USAGE, CMD, "no secret: pass --secret or set STRIPE_WEBHOOK_SECRET");
        return NULL;
    }
    if (sig_secrets_parse(list, &s, err, sizeof(err)) != 0) {
        ctl_fail(EXIT_USAGE, CMD, "%s: %s", a->secret ? "--secret" : "STRIPE_WEBHOOK_SECRET", err);
        return NULL;
    }
    if (sig_secrets_check(&s, warn, sizeof(warn)) > 0)
        fprintf(stderr, "paystreamctl: " CMD ": warning: %s\n", warn);
    char *secret = ps_strdup(s.secret[0]);
    sig_secrets_free(&s);
    if (secret == NULL) ctl_fail(1, CMD, "out of memory");
    return secret;
}

/* A version 4 UUID for a new user. */
static void random_uuid(char *out, size_t size) {
    uint64_t r[2] = {(uint64_t)time_now_ms(), (uint64_t)time_mono_us() * 0x9E3779B97F4A7C15ULL};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) r[0] ^= r[1] << 7;
    uint64_t a = r[0], b = r[1];
    snprintf(out, size, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xFFFF, (unsigned)a & 0xFFF, 0x8000 | ((unsigned)b & 0x3FFF),
             (unsigned long long)(b >> 16) & 0xFFFFFFFFFFFFULL);
}

/* ------------------------------------------------------------- sending -- */

/* POST one event, retrying a 503 or a connection error; prints its line.
 * Returns 0 when it got 200. */
static int send_event(const trig_url *u, const char *secret, const trig_event *e) {
    char sig[SIG_HEADER_LEN], detail[256], err[512];
    size_t len = strlen(e->body);
    int status = 0;
    for (int try = 1; try <= TRIES; try++) {
        if (try > 1) time_sleep_ms(250L << (try - 2));
        if (sig_sign(secret, time_now_ms() / 1000, e->body, len, sig, sizeof(sig)) != 0) {
            printf("%-28s %-36s not sent: cannot sign\n", e->id, e->type);
            return -1;
        }
        status = trig_http_post(u, sig, e->body, len, TIMEOUT_MS, detail, sizeof(detail), err,
                                sizeof(err));
        if (status != 0 && status != 503) break;
    }
    if (status == 200) {
        printf("%-28s %-36s %d\n", e->id, e->type, status);
    } else if (status == 0) {
        printf("%-28s %-36s failed after %d tries: %s\n", e->id, e->type, TRIES, err);
    } else {
        printf("%-28s %-36s %d%s%s%s\n", e->id, e->type, status, detail[0] ? " " : "", detail,
               status == 503 ? " (after 3 tries)" : "");
    }
    fflush(stdout);
    return status == 200 ? 0 : -1;
}

static int send_all(const trig_ctx *c, const trig_url *u, const char *secret) {
    for (size_t i = 0; i < c->n_events; i++)
        if (send_event(u, secret, &c->events[i]) != 0)
            return ctl_fail(1, CMD, "stopped: %s (%s) was not accepted; %zu of %zu events sent",
                            c->events[i].id, c->events[i].type, i, c->n_events);
    return 0;
}

static void print_period(const trig_ctx *c) {
    char a[32], b[32];
    time_t s1 = (time_t)c->anchor, s2 = (time_t)(c->anchor + TRIG_PERIOD);
    struct tm t1, t2;
    gmtime_r(&s1, &t1);
    gmtime_r(&s2, &t2);
    strftime(a, sizeof(a), "%Y-%m-%d", &t1);
    strftime(b, sizeof(b), "%Y-%m-%d", &t2);
    fprintf(stderr, "  customer %s, subscription %s; period 1 from %s, period 2 from %s\n",
            c->customer, c->subscription, a, b);
}

int cmd_trigger(const ps_config *cfg, int argc, char **argv) {
    trig_args a;
    trig_url url;
    trig_catalog *k = NULL;
    trig_ctx c;
    char err[512], user[40];
    char *secret = NULL;
    size_t si = 0;
    int rc = EXIT_USAGE;
    memset(&c, 0, sizeof(c));
    if (parse_args(argc, argv, &a) != 0) return EXIT_USAGE;
    if (a.help) {
        print_help();
        return 0;
    }
    if (a.scenario == NULL) return ctl_fail(EXIT_USAGE, CMD, "which scenario? %s", USAGE);
    while (si < N_SCENARIOS && strcmp(a.scenario, scenarios[si].name) != 0)
        si++;
    if (si == N_SCENARIOS)
        return ctl_fail(
            EXIT_USAGE, CMD,
            "unknown scenario '%s' (subscription, credit-pack, renewal, upgrade, "
            "refund, refund-subscription, dispute-lost, dispute-won, cancel, lifecycle, "
            "seats, trial, pause, second-subscription)",
            a.scenario);
    if (a.url == NULL) return ctl_fail(EXIT_USAGE, CMD, "--url is required; %s", USAGE);
    if (trig_url_parse(a.url, &url, err, sizeof(err)) != 0)
        return ctl_fail(EXIT_USAGE, CMD, "--url %s", err);
    if (a.user && !ctl_is_uuid(a.user))
        return ctl_fail(EXIT_USAGE, CMD, "--user '%s' is not a UUID", a.user);
    if (a.api_version && !valid_api_version(a.api_version))
        return ctl_fail(EXIT_USAGE, CMD,
                        "--api-version '%s' is not a Stripe API version (e.g. %s, 2024-06-20)",
                        a.api_version, API_BASIL);
    if (a.plan && strcmp(a.scenario, "lifecycle") == 0)
        return ctl_fail(EXIT_USAGE, CMD,
                        "--plan does not apply to lifecycle (it uses the first "
                        "two plans)");
    if ((secret = load_secret(cfg, &a)) == NULL) return EXIT_USAGE;
    if ((k = ps_malloc(sizeof(*k))) == NULL ||
        load_catalog(data_path(a.plans, NULL, PS_PLANS_INSTALL, PS_PLANS_BUILD), &a, k) != 0)
        goto done;
    if (a.user)
        str_copy(user, a.user, sizeof(user));
    else
        random_uuid(user, sizeof(user));
    rc = 1;
    if (trig_ctx_init(&c,
                      data_path(NULL, "PAYSTREAM_TRIGGER_TEMPLATES", PS_TRIGGER_DIR_INSTALL,
                                PS_TRIGGER_DIR_BUILD),
                      user, a.api_version ? a.api_version : API_BASIL, time_now_ms() / 1000) != 0 ||
        scenarios[si].fn(&c, k, (int)a.period) != 0) {
        ctl_fail(1, CMD, "%s", c.err);
        goto done;
    }
    fprintf(stderr, "trigger %s: user %s, %zu events, API version %s, to %s\n", a.scenario, c.user,
            c.n_events, c.api_version, a.url);
    print_period(&c);
    rc = send_all(&c, &url, secret);
done:
    trig_ctx_free(&c);
    ps_free(k);
    ps_free(secret);
    return rc;
}
