/* config.c - the settings table and its loader (see config.h).
 *
 * Rows are alphabetical by variable name. `programs` says who reads a setting,
 * `required` who cannot start without it. Secrets are masked by config_show()
 * and never copied into an error message. */
#include "config.h"
#include "alloc.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

typedef enum { CFG_STRING, CFG_INT, CFG_DURATION, CFG_LIVEMODE, CFG_LOGLEVEL } cfg_type;

#define CFG_SECRET 1 /* never printed */
#define CFG_RELOAD 2 /* re-read on SIGHUP (ingest) */

#define ALL (PROG_INGEST | PROG_WORKER | PROG_CTL)

typedef struct cfg_setting {
    const char *env;
    const char *flag;
    cfg_type type;
    size_t offset;
    const char *def; /* NULL: unset */
    unsigned programs;
    unsigned required;
    unsigned flags;
    long min, max;
    const char *help;
} cfg_setting;

#define F(field) offsetof(ps_config, field)

static const cfg_setting settings[] = {
    {"PAYSTREAM_ADMIN_LISTEN", "admin-listen", CFG_STRING, F(admin_listen), NULL,
     PROG_INGEST | PROG_WORKER, 0, 0, 0, 0,
     "HOST:PORT for /healthz, /readyz and /metrics (ingest: then not on PAYSTREAM_LISTEN)"},
    {"PAYSTREAM_CLAIM_IDLE_MS", "claim-idle-ms", CFG_INT, F(claim_idle_ms), "30000", PROG_WORKER, 0,
     0, 100, 86400000L, "idle ms after which another worker takes a pending event"},
    {"PAYSTREAM_CONCURRENCY", "concurrency", CFG_INT, F(concurrency), "4", PROG_WORKER, 0, 0, 1,
     256, "events a worker process applies at once (connections)"},
    {"PAYSTREAM_DATABASE_URL", "database-url", CFG_STRING, F(database_url),
     "postgresql:///paystream", PROG_WORKER | PROG_CTL, 0, CFG_SECRET, 0, 0,
     "libpq URI or conninfo; several hosts (postgresql://h1,h2/db) connect to the one taking "
     "writes"},
    {"PAYSTREAM_GROUP", "group", CFG_STRING, F(group), "paystream", PROG_WORKER | PROG_CTL, 0, 0, 0,
     0, "Redis consumer group"},
    {"PAYSTREAM_LISTEN", "listen", CFG_STRING, F(listen), "127.0.0.1:8080", PROG_INGEST, 0, 0, 0, 0,
     "ingest address, HOST:PORT ([::1]:8080 for IPv6)"},
    {"PAYSTREAM_LIVEMODE", "livemode", CFG_LIVEMODE, F(livemode), "any", PROG_WORKER | PROG_CTL, 0,
     0, 0, 0, "test, live or any: events of the other mode are recorded as skipped"},
    {"PAYSTREAM_LOG", "log", CFG_LOGLEVEL, F(log_level), "info", ALL, 0, 0, 0, 0,
     "debug, info, warn or error; one JSON object per line on stderr"},
    {"PAYSTREAM_MAX_ATTEMPTS", "max-attempts", CFG_INT, F(max_attempts), "8",
     PROG_WORKER | PROG_CTL, 0, 0, 1, 1000, "deliveries before an event is dead-lettered"},
    {"PAYSTREAM_MAX_BODY", "max-body", CFG_INT, F(max_body), "1048576", PROG_INGEST, 0, 0, 1024,
     64L * 1024 * 1024, "bytes; larger bodies get 413"},
    {"PAYSTREAM_MAX_CONNECTIONS", "max-connections", CFG_INT, F(max_connections), "4096",
     PROG_INGEST, 0, 0, 1, 1000000, "open connections at most; more are refused"},
    {"PAYSTREAM_REDIS_MIN_REPLICAS", "redis-min-replicas", CFG_INT, F(redis_min_replicas), "0",
     PROG_INGEST, 0, 0, 0, 100,
     "answer 200 only once WAIT confirms this many Redis replicas have the event"},
    {"PAYSTREAM_REDIS_TIMEOUT_MS", "redis-timeout-ms", CFG_INT, F(redis_timeout_ms), "2000",
     PROG_INGEST | PROG_WORKER | PROG_CTL, 0, 0, 10, 600000,
     "a Redis command not answered in this time fails (ingest answers 503)"},
    {"PAYSTREAM_REDIS_URL", "redis-url", CFG_STRING, F(redis_url), "redis://127.0.0.1:6379/0", ALL,
     0, CFG_SECRET, 0, 0,
     "redis://[:password@]host:port/db, unix:///path or "
     "redis-sentinel://[:password@]host:port[,host:port...][/db]#MASTER"},
    {"PAYSTREAM_RETENTION", "retention", CFG_DURATION, F(retention), "30d", PROG_WORKER | PROG_CTL,
     0, 0, 1, 0, "how long stream entries are kept for replay"},
    {"PAYSTREAM_SECRET_FILE", "secret-file", CFG_STRING, F(secret_file), NULL, PROG_INGEST, 0,
     CFG_RELOAD, 0, 0,
     "file holding the webhook secrets (comma or newline separated), re-read on SIGHUP"},
    {"PAYSTREAM_STREAM", "stream", CFG_STRING, F(stream), "paystream:events", ALL, 0, 0, 0, 0,
     "stream key; dead letters go to <stream>:dead"},
    {"PAYSTREAM_TIMEOUT", "timeout", CFG_INT, F(timeout), "10", PROG_INGEST, 0, 0, 1, 3600,
     "seconds a client may take to send a request or read a reply"},
    {"PAYSTREAM_TLS_CERT", "tls-cert", CFG_STRING, F(tls_cert), NULL, PROG_INGEST, 0, 0, 0, 0,
     "PEM certificate chain; with PAYSTREAM_TLS_KEY, ingest serves HTTPS"},
    {"PAYSTREAM_TLS_KEY", "tls-key", CFG_STRING, F(tls_key), NULL, PROG_INGEST, 0, 0, 0, 0,
     "PEM private key for PAYSTREAM_TLS_CERT"},
    {"PAYSTREAM_TOLERANCE", "tolerance", CFG_INT, F(tolerance), "300", PROG_INGEST | PROG_CTL, 0, 0,
     0, 86400L * 365, "seconds a signature timestamp may be old"},
    {"PAYSTREAM_WAIT_MAX", "wait-max", CFG_DURATION, F(wait_max), "72h", PROG_WORKER, 0, 0, 1, 0,
     "how long an event may wait for another event it needs (then: dead letter)"},
    {"PAYSTREAM_WEBHOOK_PATH", "webhook-path", CFG_STRING, F(webhook_path), "/webhooks/stripe",
     PROG_INGEST, 0, 0, 0, 0, "the path Stripe posts to"},
    {"STRIPE_API_BASE", "stripe-api-base", CFG_STRING, F(stripe_api_base), "https://api.stripe.com",
     PROG_CTL, 0, 0, 0, 0, "where backfill finds Stripe's API (http:// only for tests)"},
    {"STRIPE_API_KEY", "stripe-api-key", CFG_STRING, F(stripe_api_key), NULL, PROG_CTL, 0,
     CFG_SECRET, 0, 0, "restricted key (rk_...) with read access to Events, for backfill"},
    {"STRIPE_WEBHOOK_SECRET", "stripe-webhook-secret", CFG_STRING, F(webhook_secret), NULL,
     PROG_INGEST | PROG_CTL, 0, CFG_SECRET | CFG_RELOAD, 0, 0,
     "one or more whsec_... secrets, comma-separated, for rotation"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void *field_ptr(ps_config *cfg, const cfg_setting *s) {
    return (char *)cfg + s->offset;
}

static int set_value(ps_config *cfg, const cfg_setting *s, const char *value, char *err,
                     size_t errlen) {
    void *p = field_ptr(cfg, s);
    long v = 0;
    log_level lvl;
    const char *shown = (s->flags & CFG_SECRET) ? "(hidden)" : value;
    switch (s->type) {
    case CFG_STRING:
        if (*value == '\0') {
            snprintf(err, errlen, "%s: must not be empty", s->env);
            return -1;
        }
        ps_free(*(char **)p);
        *(char **)p = ps_strdup(value);
        if (*(char **)p == NULL) {
            snprintf(err, errlen, "%s: out of memory", s->env);
            return -1;
        }
        return 0;
    case CFG_INT:
        if (!str_to_long(value, &v) || v < s->min || v > s->max) {
            snprintf(err, errlen, "%s: '%s' is not a whole number from %ld to %ld", s->env, shown,
                     s->min, s->max);
            return -1;
        }
        *(long *)p = v;
        return 0;
    case CFG_DURATION:
        if (!duration_parse(value, &v)) {
            snprintf(err, errlen, "%s: '%s' is not a duration such as 3600, 90m, 12h or 30d",
                     s->env, shown);
            return -1;
        }
        *(long *)p = v;
        return 0;
    case CFG_LIVEMODE:
        if (strcmp(value, "any") == 0)
            *(int *)p = LIVEMODE_ANY;
        else if (strcmp(value, "test") == 0)
            *(int *)p = LIVEMODE_TEST;
        else if (strcmp(value, "live") == 0)
            *(int *)p = LIVEMODE_LIVE;
        else {
            snprintf(err, errlen, "%s: '%s' is not one of test, live, any", s->env, shown);
            return -1;
        }
        return 0;
    case CFG_LOGLEVEL:
        if (!log_level_parse(value, &lvl)) {
            snprintf(err, errlen, "%s: '%s' is not one of debug, info, warn, error", s->env, shown);
            return -1;
        }
        *(int *)p = (int)lvl;
        return 0;
    }
    return -1;
}

/* Find the setting for "--flag" or "--flag=value"; NULL when not ours. */
static const cfg_setting *match_flag(const char *arg, unsigned program, const char **inline_val) {
    if (strncmp(arg, "--", 2) != 0) return NULL;
    arg += 2;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting *s = &settings[i];
        size_t n = strlen(s->flag);
        if (!(s->programs & program) || strncmp(arg, s->flag, n) != 0) continue;
        if (arg[n] == '\0') {
            *inline_val = NULL;
            return s;
        }
        if (arg[n] == '=') {
            *inline_val = arg + n + 1;
            return s;
        }
    }
    return NULL;
}

static int load_flags(ps_config *cfg, unsigned program, int *argc, char **argv, const char **seen,
                      char *err, size_t errlen) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *val = NULL;
        const cfg_setting *s = match_flag(argv[i], program, &val);
        if (s == NULL) {
            argv[out++] = argv[i];
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= *argc) {
                snprintf(err, errlen, "%s: --%s needs a value", s->env, s->flag);
                return -1;
            }
            val = argv[++i];
        }
        if (set_value(cfg, s, val, err, errlen) != 0) return -1;
        seen[s - settings] = val;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int config_load(ps_config *cfg, unsigned program, int *argc, char **argv, char *err,
                size_t errlen) {
    const char *seen[NSETTINGS] = {0};
    memset(cfg, 0, sizeof(*cfg));
    err[0] = '\0';
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting *s = &settings[i];
        const char *env = getenv(s->env);
        const char *val = env ? env : s->def;
        if (val == NULL) continue;
        if (set_value(cfg, s, val, err, errlen) != 0) return -1;
        if (env) seen[i] = env;
    }
    if (load_flags(cfg, program, argc, argv, seen, err, errlen) != 0) return -1;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting *s = &settings[i];
        if ((s->required & program) && seen[i] == NULL) {
            snprintf(err, errlen, "%s: required setting is missing (or use --%s)", s->env, s->flag);
            return -1;
        }
    }
    return 0;
}

void config_free(ps_config *cfg) {
    if (cfg == NULL) return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].type == CFG_STRING) {
            char **p = field_ptr(cfg, &settings[i]);
            ps_free(*p);
            *p = NULL;
        }
    }
}

void config_print_help(FILE *out, unsigned program) {
    fprintf(out, "Settings (environment variable, or the flag after it):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const cfg_setting *s = &settings[i];
        if (!(s->programs & program)) continue;
        fprintf(out, "  %-27s --%-22s %s", s->env, s->flag, s->help);
        if (s->required & program)
            fprintf(out, " (required)");
        else if (s->def && !(s->flags & CFG_SECRET))
            fprintf(out, " [%s]", s->def);
        fprintf(out, "\n");
    }
}

static void show_value(FILE *out, const ps_config *cfg, const cfg_setting *s) {
    const void *p = (const char *)cfg + s->offset;
    static const char *modes[] = {"any", "test", "live"};
    static const char *levels[] = {"debug", "info", "warn", "error"};
    switch (s->type) {
    case CFG_STRING: {
        const char *v = *(char *const *)p;
        fprintf(out, "%s\n", v == NULL ? "" : (s->flags & CFG_SECRET) ? "(set, hidden)" : v);
        break;
    }
    case CFG_INT:
    case CFG_DURATION:
        fprintf(out, "%ld\n", *(const long *)p);
        break;
    case CFG_LIVEMODE:
        fprintf(out, "%s\n", modes[*(const int *)p]);
        break;
    case CFG_LOGLEVEL:
        fprintf(out, "%s\n", levels[*(const int *)p]);
        break;
    }
}

void config_show(FILE *out, const ps_config *cfg, unsigned program) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!(settings[i].programs & program)) continue;
        fprintf(out, "%s=", settings[i].env);
        show_value(out, cfg, &settings[i]);
    }
}
