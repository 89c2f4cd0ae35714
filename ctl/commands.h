/* commands.h - the paystreamctl commands, one cmd_*.c file each.
 *
 * Every command gets the loaded settings and its own argv (argv[0] is the
 * command word; settings flags are already removed). It returns the process
 * exit status: 0 success, 1 the check or operation failed, 2 usage error. */
#ifndef PS_CTL_COMMANDS_H
#define PS_CTL_COMMANDS_H

#include "config.h"
#include "pg.h"
#include "redis.h"

#define EXIT_USAGE 2

int cmd_migrate(const ps_config *cfg, int argc, char **argv);
int cmd_plans(const ps_config *cfg, int argc, char **argv);
int cmd_balance(const ps_config *cfg, int argc, char **argv);
int cmd_reconcile(const ps_config *cfg, int argc, char **argv);
int cmd_verify_signature(const ps_config *cfg, int argc, char **argv);
int cmd_events(const ps_config *cfg, int argc, char **argv);
int cmd_dead(const ps_config *cfg, int argc, char **argv);
int cmd_replay(const ps_config *cfg, int argc, char **argv);
int cmd_status(const ps_config *cfg, int argc, char **argv);
/* `dead drop ID --reason TEXT` (dead_drop.c), called by cmd_dead. */
int dead_drop(const ps_config *cfg, const char *id, const char *reason);
int cmd_backfill(const ps_config *cfg, int argc, char **argv);

/* Helpers shared by the commands (ctl_util.c). */
pg_conn *ctl_db_connect(const ps_config *cfg); /* prints a one-line error on failure */
bool ctl_is_uuid(const char *s);
redis_conn *ctl_redis_connect(const ps_config *cfg); /* prints a one-line error on failure */
/* Print every row of r as `column: value` blocks, or a table with a header. */
void ctl_print_rows(const pg_result *r, bool as_table);
/* Print a one-line error "paystreamctl: <cmd>: <msg>" to stderr and return code. */
int ctl_fail(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
