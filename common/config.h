/* config.h - settings of all three programs, from environment and long flags.
 *
 * One table in config.c lists every setting (environment name, flag, type,
 * default, which programs use it, which need it). A flag overrides its
 * variable (PAYSTREAM_LISTEN <=> --listen). Loading fails with one line that
 * names the setting; a program never starts half-configured. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { PROG_INGEST = 1, PROG_WORKER = 2, PROG_CTL = 4 };

typedef enum { LIVEMODE_ANY = 0, LIVEMODE_TEST, LIVEMODE_LIVE } livemode_filter;

typedef struct ps_config {
    char *admin_listen; /* NULL: no admin listener (ingest serves /metrics on its main one) */
    long claim_idle_ms;
    long concurrency;
    char *database_url;
    char *group;
    char *listen;
    int livemode;  /* livemode_filter */
    int log_level; /* log_level */
    long max_attempts;
    long max_body;
    long max_connections;
    long redis_min_replicas; /* ingest: WAIT for this many replicas before 200 */
    long redis_timeout_ms;
    char *redis_url;
    long retention; /* seconds */
    char *secret_file;
    char *stream;
    char *stripe_api_base; /* paystreamctl backfill: where Stripe's API is */
    char *stripe_api_key;  /* paystreamctl backfill: rk_/sk_ key; never logged */
    long timeout;          /* seconds, ingest read/write timeout */
    char *tls_cert;
    char *tls_key;
    long tolerance; /* seconds */
    long wait_max;  /* seconds an event may wait for another (SPEC 3) */
    char *webhook_path;
    char *webhook_secret; /* comma-separated whsec_... list; never logged */
} ps_config;

/* Fill cfg for `program` (one PROG_* value) from defaults, environment and the
 * flags in argv. Recognised flags are removed from argv and *argc updated;
 * everything else (subcommands, --help, program-specific flags) is kept in
 * order. Returns 0, or -1 with a one-line message naming the setting in err. */
int config_load(ps_config *cfg, unsigned program, int *argc, char **argv, char *err, size_t errlen);
void config_free(ps_config *cfg);

/* The settings section of --help for `program`, generated from the table. */
void config_print_help(FILE *out, unsigned program);
/* Effective values, one `NAME=value` per line; secrets are masked. */
void config_show(FILE *out, const ps_config *cfg, unsigned program);

#endif
