/* cmd_plans.c - `paystreamctl plans load FILE` and `plans list`.
 *
 * The plans file, one item a line ('#' starts a comment, blank lines ignored):
 *     plan  ID  STRIPE_PRICE_ID  CREDITS_PER_PERIOD  [trial=N]  [NAME...]
 *     pack  ID  STRIPE_PRICE_ID  CREDITS                        [NAME...]
 * IDs are 1-64 of [A-Za-z0-9_.-]; credits are whole numbers (packs > 0). A
 * plan may have several lines, one per Stripe price (a new price for new
 * customers, the old ones kept): every price ever loaded keeps mapping to its
 * plan, a price never moves to another plan, and the plan's last line gives
 * its credits, trial credits and name. The whole file is checked first, then
 * loaded in one transaction, so a bad line changes nothing. */
#include "commands.h"
#include "alloc.h"
#include "fileio.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define PLANS_MAX_BYTES ((size_t)1 << 20)

typedef struct plan_line {
    const char *kind, *id, *price, *credits, *trial, *name;
} plan_line;

static bool valid_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i])) return false;
    return true;
}

static char *next_word(char **p) {
    while (**p == ' ' || **p == '\t')
        (*p)++;
    if (**p == '\0') return NULL;
    char *w = *p;
    while (**p && **p != ' ' && **p != '\t')
        (*p)++;
    if (**p) *(*p)++ = '\0';
    return w;
}

/* Split and check one line in place; NULL on success or the reason. */
static const char *parse_line(char *line, plan_line *pl) {
    char *p = line;
    pl->kind = next_word(&p);
    pl->id = next_word(&p);
    pl->price = next_word(&p);
    pl->credits = next_word(&p);
    pl->trial = "0";
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "trial=", 6) == 0) pl->trial = next_word(&p) + 6;
    while (*p == ' ' || *p == '\t')
        p++;
    pl->name = p;
    long credits, trial;
    if (pl->credits == NULL) return "expected: plan|pack ID STRIPE_PRICE_ID CREDITS [NAME]";
    if (strcmp(pl->kind, "plan") != 0 && strcmp(pl->kind, "pack") != 0)
        return "first word must be 'plan' or 'pack'";
    if (!valid_id(pl->id)) return "ID must be 1-64 of letters, digits, '_', '.', '-'";
    if (strlen(pl->price) > 255) return "STRIPE_PRICE_ID is too long";
    if (!str_to_long(pl->credits, &credits) || credits < 0 || credits > 1000000000)
        return "CREDITS must be a whole number from 0 to 1000000000";
    if (credits == 0 && strcmp(pl->kind, "pack") == 0) return "a pack must grant at least 1 credit";
    if (!str_to_long(pl->trial, &trial) || trial < 0 || trial > 1000000000)
        return "trial=N must be a whole number of credits from 0 to 1000000000";
    if (trial > 0 && strcmp(pl->kind, "pack") == 0) return "a pack has no trial credits";
    return NULL;
}

/* A pack, or a plan and one of its prices; -1 with a message printed. */
static int upsert(pg_conn *c, const plan_line *pl) {
    const char *params[5] = {pl->id, pl->price, pl->credits, pl->name, pl->trial};
    pg_result *r = NULL;
    if (strcmp(pl->kind, "pack") == 0)
        return pg_exec(c,
                       "INSERT INTO paystream.credit_packs (id, stripe_price_id, credits, name)"
                       " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET"
                       " stripe_price_id = EXCLUDED.stripe_price_id, credits = EXCLUDED.credits,"
                       " name = EXCLUDED.name, updated_at = now()",
                       4, params, NULL);
    if (pg_exec(c,
                "INSERT INTO paystream.plans (id, stripe_price_id, credits_per_period, name,"
                " trial_credits) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
                " stripe_price_id = EXCLUDED.stripe_price_id,"
                " credits_per_period = EXCLUDED.credits_per_period, name = EXCLUDED.name,"
                " trial_credits = EXCLUDED.trial_credits, updated_at = now()",
                5, params, NULL) != 0 ||
        pg_exec(c,
                "INSERT INTO paystream.plan_prices AS p (stripe_price_id, plan_id) VALUES ($2, $1)"
                " ON CONFLICT (stripe_price_id) DO UPDATE SET plan_id = p.plan_id"
                " RETURNING plan_id",
                2, params, &r) != 0)
        return -1;
    bool moved = strcmp(pg_value(r, 0, 0), pl->id) != 0;
    if (moved)
        ctl_fail(1, "plans load",
                 "price %s belongs to plan %s: a price never moves to another plan", pl->price,
                 pg_value(r, 0, 0));
    pg_result_free(r);
    return moved ? -2 : 0;
}

/* Parse every line; fill items. Returns count or -1 after printing the error. */
static int parse_file(const char *path, char *text, plan_line *items, int max) {
    int n = 0, lineno = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        size_t len = strlen(line);
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        if (strspn(line, " \t") == len) continue;
        if (n == max) return ctl_fail(1, "plans load", "%s: more than %d items", path, max), -1;
        const char *why = parse_line(line, &items[n]);
        if (why) return ctl_fail(1, "plans load", "%s:%d: %s", path, lineno, why), -1;
        n++;
    }
    return n;
}

static int plans_load(const ps_config *cfg, const char *path) {
    char err[512];
    plan_line items[1024];
    char *text = file_read_all(path, PLANS_MAX_BYTES, NULL, err, sizeof(err));
    if (text == NULL) return ctl_fail(1, "plans load", "%s", err);
    int rc = 1, n = parse_file(path, text, items, 1024);
    pg_conn *c = n >= 0 ? ctl_db_connect(cfg) : NULL;
    if (c == NULL) goto done;
    if (pg_exec(c, "BEGIN", 0, NULL, NULL) != 0) goto failed;
    for (int i = 0; i < n; i++) {
        int up = upsert(c, &items[i]);
        if (up == -1)
            ctl_fail(1, "plans load", "%s %s: %s", items[i].kind, items[i].id, pg_errstr(c));
        if (up != 0) goto done;
    }
    if (pg_exec(c, "COMMIT", 0, NULL, NULL) != 0) goto failed;
    printf("loaded %d plans and packs from %s\n", n, path);
    rc = 0;
    goto done;
failed:
    ctl_fail(1, "plans load", "%s", pg_errstr(c));
done:
    pg_close(c);
    ps_free(text);
    return rc;
}

static int plans_list(const ps_config *cfg) {
    pg_conn *c = ctl_db_connect(cfg);
    if (c == NULL) return 1;
    pg_result *r = NULL;
    int rc = pg_exec(c,
                     "SELECT 'plan', p.id, pp.stripe_price_id, p.credits_per_period"
                     " || CASE WHEN p.trial_credits > 0 THEN ' trial=' || p.trial_credits"
                     " ELSE '' END, p.name FROM paystream.plans p JOIN paystream.plan_prices pp"
                     " ON pp.plan_id = p.id UNION ALL SELECT 'pack', id, stripe_price_id,"
                     " credits::text, name FROM paystream.credit_packs ORDER BY 1 DESC, 2, 3",
                     0, NULL, &r);
    if (rc != 0) {
        ctl_fail(1, "plans list", "%s", pg_errstr(c));
    } else {
        for (int i = 0; i < pg_nrows(r); i++)
            printf("%s  %-16s %-32s %8s  %s\n", pg_value(r, i, 0), pg_value(r, i, 1),
                   pg_value(r, i, 2), pg_value(r, i, 3), pg_value(r, i, 4));
    }
    pg_result_free(r);
    pg_close(c);
    return rc == 0 ? 0 : 1;
}

int cmd_plans(const ps_config *cfg, int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "load") == 0) return plans_load(cfg, argv[2]);
    if (argc == 2 && strcmp(argv[1], "list") == 0) return plans_list(cfg);
    return ctl_fail(EXIT_USAGE, "plans", "usage: plans load FILE | plans list");
}
