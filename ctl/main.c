/* main.c - paystreamctl: the operator CLI.
 *
 * Loads the settings, then dispatches on the first word through one table of
 * {command, handler, usage, help}; --help is generated from that table. The
 * commands themselves live in cmd_*.c. */
#include "commands.h"
#include "log.h"
#include "trigger.h"

#include <stdio.h>
#include <string.h>

typedef struct ctl_command {
    const char *name;
    int (*handler)(const ps_config *cfg, int argc, char **argv);
    const char *usage;
    const char *help;
} ctl_command;

static const ctl_command commands[] = {
    {"migrate", cmd_migrate, "migrate [--dir DIR]",
     "apply the numbered SQL migrations, once each, under an advisory lock"},
    {"plans", cmd_plans, "plans load FILE | plans list", "load plans and credit packs from FILE"},
    {"balance", cmd_balance, "balance USER_ID [--history N]",
     "a user's credit balance by bucket (and last N ledger rows)"},
    {"reconcile", cmd_reconcile, "reconcile",
     "check every balance against its ledger rows; exit 1 with a report on drift"},
    {"events", cmd_events, "events show EVENT_ID",
     "an event's stream entry, its database record and the ledger rows it made"},
    {"replay", cmd_replay, "replay --from STREAM_ID [--to STREAM_ID] [--type T] [--dry-run]",
     "re-apply stream entries through the idempotent path; prints applied/skipped/failed"},
    {"dead", cmd_dead, "dead list | dead retry ID|--all | dead drop ID --reason TEXT",
     "dead letters: whose, why each failed; apply one or all now, or drop one that never can"},
    {"status", cmd_status, "status",
     "one screen: stream, group lag and pending, waiting and dead events, workers, last applied; "
     "exit 1 when something needs an operator"},
    {"verify-signature", cmd_verify_signature,
     "verify-signature --header H [--secret S] [--now T] [--tolerance S] < body",
     "say exactly why a Stripe-Signature header does or does not verify"},
    {"backfill", cmd_backfill, "backfill --since SPEC [--until SPEC] [--dry-run]",
     "list Stripe's events (GET /v1/events; SPEC: 90m, 72h, 30d or a unix time) and enqueue the "
     "ones paystream never received"},
    {"trigger", cmd_trigger,
     "trigger SCENARIO --url URL [--user UUID] [--secret S] [--api-version V]",
     "send signed, realistic Stripe events to a running ingest (trigger --help: scenarios)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out) {
    fprintf(out, "Usage: paystreamctl [settings] COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n      %s\n", commands[i].usage, commands[i].help);
    fprintf(out, "\nOptions:\n  --help, --version, --show-config\n\n");
    config_print_help(out, PROG_CTL);
}

int main(int argc, char **argv) {
    ps_config cfg;
    char err[512];
    if (config_load(&cfg, PROG_CTL, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystreamctl: %s\n", err);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    log_init("paystreamctl", (log_level)cfg.log_level);
    int rc = EXIT_USAGE;
    if (argc < 2) {
        usage(stderr);
    } else if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        rc = 0;
    } else if (strcmp(argv[1], "--version") == 0) {
        printf("paystreamctl %s\n", PAYSTREAM_VERSION);
        rc = 0;
    } else if (strcmp(argv[1], "--show-config") == 0) {
        config_show(stdout, &cfg, PROG_CTL);
        rc = 0;
    } else {
        size_t i = 0;
        while (i < NCOMMANDS && strcmp(argv[1], commands[i].name) != 0)
            i++;
        if (i == NCOMMANDS)
            fprintf(stderr, "paystreamctl: unknown command '%s' (see paystreamctl --help)\n",
                    argv[1]);
        else
            rc = commands[i].handler(&cfg, argc - 1, argv + 1);
    }
    config_free(&cfg);
    return rc;
}
