# test_ctl.sh - paystreamctl against a real database: help and version, usage
# errors, migrate twice, plans load (good and malformed files) and list,
# balance, reconcile (clean, then after a deliberately broken balance), and an
# unreachable database. Every failure must be one line on stderr and a
# non-zero exit. The ledger's SQL itself is tested by itest_ledger*.c.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/paystream-test-ctl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# run ARGS...: run paystreamctl; sets out, err, rc (never aborts the script)
run() {
    rc=0
    "$CTL" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}

# one_line NAME: the last run printed exactly one line on stderr
one_line() {
    check "$1: one line on stderr" 1 "$(printf '%s' "$err" | grep -c '')"
}

# has NAME TEXT PATTERN: TEXT matches the extended regex PATTERN
has() {
    if grep -Eq -- "$3" <<<"$2"; then check "$1" yes yes; else
        check "$1" "matches /$3/" "$2"
    fi
}

items() { sql "SELECT (SELECT count(*) FROM paystream.plans) + (SELECT count(*) FROM paystream.credit_packs)"; }

# ---------------------------------------------------------------- basics --

run --help
check "--help exit status" 0 "$rc"
for cmd in "migrate" "plans load FILE" "balance USER_ID" "reconcile" "PAYSTREAM_DATABASE_URL"; do
    has "--help mentions $cmd" "$out" "$cmd"
done
run --version
check "--version exit status" 0 "$rc"
has "--version prints the version" "$out" '^paystreamctl [0-9]+\.[0-9]+\.[0-9]+$'
run frobnicate
check "unknown command exit status" 2 "$rc"
one_line "unknown command"
has "unknown command is named" "$err" "unknown command 'frobnicate'"
run
check "no command exit status" 2 "$rc"
run plans
check "plans without a subcommand exit status" 2 "$rc"
one_line "plans without a subcommand"

# --------------------------------------------------------------- migrate --

nfiles=0
for f in "$PAYSTREAM_SQL_DIR"/migrations/[0-9][0-9][0-9]_*.sql; do [ -e "$f" ] && nfiles=$((nfiles + 1)); done
run migrate
check "migrate exit status" 0 "$rc"
check "migrate applies every file" "$nfiles" "$(printf '%s\n' "$out" | grep -c '^applied ')"
run migrate
check "second migrate exit status" 0 "$rc"
check "second migrate applies nothing" 0 "$(printf '%s\n' "$out" | grep -c '^applied ' || true)"
has "second migrate says so" "$out" "\(0 applied, $nfiles total\)"
check "one schema_migrations row per file" "$nfiles" \
    "$(sql "SELECT count(DISTINCT version) FROM paystream.schema_migrations")"
ncode=$(grep -c '^[a-z_]*\.sql' "$PAYSTREAM_SQL_DIR/code.list")
check "one schema_code row per code file" "$ncode" "$(sql "SELECT count(*) FROM paystream.schema_code")"
# an edited code file is applied again, alone, and its change is in the database
edited=$(mktemp -d)
cp -r "$PAYSTREAM_SQL_DIR"/. "$edited"/
echo "COMMENT ON FUNCTION paystream._invoice_paid(uuid, text, text, text, text[], integer[], boolean, bigint, text, bigint, text) IS 'edited';" \
    >>"$edited/invoices.sql"
run migrate --dir "$edited"
check "an edited code file is applied again, alone" "updated invoices.sql" \
    "$(printf '%s\n' "$out" | grep -E '^(applied|updated) ')"
check "its change is in the database" "edited" \
    "$(sql "SELECT obj_description('paystream._invoice_paid(uuid, text, text, text, text[], integer[], boolean, bigint, text, bigint, text)'::regprocedure)")"
run migrate --dir "$edited"
check "then nothing is applied" "schema up to date (0 applied, $nfiles total); code: 0 of $ncode files updated" \
    "$out"
run migrate
check "and back to the shipped file: it alone again" "updated invoices.sql" \
    "$(printf '%s\n' "$out" | grep -E '^(applied|updated) ')"
rm -rf "$edited"

# ----------------------------------------------------------------- plans --

example="$PS_SOURCE_DIR/deploy/plans.example"
nexample=$(grep -Ec '^[[:space:]]*(plan|pack)[[:space:]]' "$example")
run plans load "$example"
check "plans load of the example exit status" 0 "$rc"
has "plans load says how many" "$out" "loaded $nexample plans and packs"
check "every example item is in the database" "$nexample" "$(items)"
check "plan pro" "price_1PgafmB7WZ01zgkWProMonth 300" \
    "$(sql "SELECT stripe_price_id || ' ' || credits_per_period FROM paystream.plans WHERE id = 'pro'")"
check "pack credits_500" "500" \
    "$(sql "SELECT credits FROM paystream.credit_packs WHERE id = 'credits_500'")"
run plans load "$example"
check "loading the example again exit status" 0 "$rc"
check "loading again adds nothing" "$nexample" "$(items)"
run plans list
check "plans list exit status" 0 "$rc"
check "plans list shows every item" "$nexample" "$(printf '%s\n' "$out" | grep -c .)"
has "plans list shows a plan" "$out" '^plan +basic +price_1PgafmB7WZ01zgkWBasicMo +100 +Basic monthly$'
has "plans list shows a pack" "$out" '^pack +credits_100 +price_1PgafoD9YB23bimYPack100C +100 +100 credits$'

# bad_plans NAME LINE CONTENT: loading CONTENT fails on LINE, one line naming
# FILE:LINE, and loads nothing (its first line is always a good new plan)
bad_plans() {
    local name=$1 line=$2 f="$tmp/$1.plans"
    printf 'plan  fresh_plan  price_1FreshPlan000000000001  10  Fresh\n%b' "$3" >"$f"
    local before
    before=$(items)
    run plans load "$f"
    if [ "$rc" = 0 ]; then check "plans load of $name fails" "non-zero" "$rc"; fi
    one_line "plans load of $name"
    has "plans load of $name names $(basename "$f"):$line" "$err" "$f:$line: "
    check "plans load of $name loads nothing" "$before" "$(items)"
}
bad_plans bad-kind 3 '# a comment\nplna  extra  price_1Extra0000000000000001  10\n'
bad_plans bad-credits 2 'plan  extra  price_1Extra0000000000000001  ten  Extra\n'
bad_plans negative-credits 2 'plan  extra  price_1Extra0000000000000001  -5\n'
bad_plans huge-credits 2 'plan  extra  price_1Extra0000000000000001  99999999999\n'
bad_plans empty-pack 2 'pack  extra  price_1Extra0000000000000001  0  nothing\n'
bad_plans missing-credits 2 'plan  extra  price_1Extra0000000000000001\n'
bad_plans missing-price 4 '\n\npack  extra\n'
bad_plans bad-id 2 'plan  extra!plan  price_1Extra0000000000000001  10\n'
run plans load "$tmp/no-such-file.plans"
check "plans load of a missing file exit status" 1 "$rc"
one_line "plans load of a missing file"
has "plans load of a missing file names it" "$err" "no-such-file\.plans"
# a price already used by another plan: refused by the database, nothing loaded
printf 'plan  fresh_plan  price_1FreshPlan000000000001  10\nplan  dup  price_1PgafmB7WZ01zgkWProMonth  5\n' \
    >"$tmp/dup.plans"
before=$(items)
run plans load "$tmp/dup.plans"
check "plans load with a duplicate price exit status" 1 "$rc"
one_line "plans load with a duplicate price"
check "plans load with a duplicate price loads nothing" "$before" "$(items)"

# --------------------------------------------------------------- balance --

user=3b0f5e0c-8d7a-4c39-9b51-6f1e2a4d7c10
sql "SELECT paystream.grant_credits('$user', 40, 'overage', 'ctl test')" >/dev/null
sql "SELECT paystream.grant_credits('$user', 25, 'subscription', 'ctl test')" >/dev/null
run balance "$user" --history 5
check "balance exit status" 0 "$rc"
has "balance shows subscription credits" "$out" 'subscription credits +25$'
has "balance shows overage credits" "$out" 'overage credits +40$'
has "balance shows the total" "$out" 'total +65$'
has "balance --history shows the ledger" "$out" 'operator_grant'
run balance "$(echo "$user" | tr 'a-f' 'A-F')"
check "balance of an upper-case UUID exit status" 0 "$rc"
run balance 00000000-0000-4000-8000-000000000000
check "balance of an unknown user exit status" 0 "$rc"
has "balance of an unknown user is zero" "$out" 'total +0$'
run balance not-a-uuid
check "balance of a non-UUID exit status" 2 "$rc"
one_line "balance of a non-UUID"
has "balance of a non-UUID says so" "$err" "'not-a-uuid' is not a UUID"
run balance
check "balance without a user exit status" 2 "$rc"
one_line "balance without a user"
run balance "$user" --history 0
check "balance --history 0 exit status" 2 "$rc"

# ------------------------------------------------------------- reconcile --

run reconcile
check "reconcile of a clean ledger exit status" 0 "$rc"
has "reconcile says clean" "$out" '^reconcile: clean$'
sql "UPDATE paystream.subscriptions SET overage_credits = overage_credits + 5 WHERE user_id = '$user'" >/dev/null
run reconcile
check "reconcile after breaking a balance exit status" 1 "$rc"
has "reconcile names the failed check" "$out" '^FAIL +overage balance equals the sum of its ledger rows'
has "reconcile names the user and the drift" "$out" "user $user: balance 45, ledger sum 40"
has "reconcile sums up" "$out" '^reconcile: 1 check\(s\) failed, 1 breach\(es\)$'
sql "UPDATE paystream.subscriptions SET overage_credits = overage_credits - 5 WHERE user_id = '$user'" >/dev/null
run reconcile
check "reconcile after the repair exit status" 0 "$rc"
# a payment that owes back more than it granted (a rule gone wrong)
sql "INSERT INTO paystream.payments (payment, user_id, source, reference, granted, amount, due, taken)
     VALUES ('pi_broken', '$user', 'pack', 'cs_broken', 40, 1000, 40, 45)" >/dev/null
run reconcile
check "reconcile of a payment taking back more than it granted exit status" 1 "$rc"
has "reconcile names the payment" "$out" "payment pi_broken: granted 40, owed back 40, taken 45, uncollected 0"
sql "DELETE FROM paystream.payments WHERE payment = 'pi_broken'" >/dev/null
run reconcile extra
check "reconcile with an argument exit status" 2 "$rc"

# ---------------------------------------------------- unreachable database --

for args in "migrate" "plans list" "plans load $example" "balance $user" "reconcile"; do
    # shellcheck disable=SC2086
    run --database-url postgresql://127.0.0.1:1/x $args
    if [ "$rc" = 0 ]; then check "$args with an unreachable database fails" non-zero 0; fi
    one_line "$args with an unreachable database"
    has "$args with an unreachable database names the setting" "$err" \
        '^paystreamctl: PAYSTREAM_DATABASE_URL: cannot connect to PostgreSQL'
done
run --database-url postgresql://127.0.0.1:1/x migrate --dir "$tmp/none"
check "migrate of an empty folder exit status" 1 "$rc"
one_line "migrate of an empty folder"

done_testing
