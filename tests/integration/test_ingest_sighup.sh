# test_ingest_sighup.sh - secret rotation without downtime: SIGHUP re-reads
# PAYSTREAM_SECRET_FILE (the environment's STRIPE_WEBHOOK_SECRET cannot change
# under a running process and stays as it was); a file that cannot be read or
# holds no secret leaves the secrets in use untouched; '#' lines are comments.
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

S1=whsec_rotation_one_$RANDOM$RANDOM
S2=whsec_rotation_two_$RANDOM$RANDOM
SFILE="$ING_DIR/secrets"

n=0
# signed_with SECRET: post a fresh event signed with SECRET; prints the status
signed_with() {
    local f
    n=$((n + 1))
    f=$(event_file "evt_hup_$n")
    post_status "$f" "$(sign "$1" "$f")"
}

# hup EXPECTED_LOG_TEXT: SIGHUP and wait for the log line that answers it
hup() {
    local before after
    before=$(grep -c 'SIGHUP' "$ING_DIR/ingest-0.log" || true)
    kill -HUP "$ING_PID"
    for _ in $(seq 1 50); do
        after=$(grep -c 'SIGHUP' "$ING_DIR/ingest-0.log" || true)
        [ "$after" -gt "$before" ] && break
        sleep 0.1
    done
    check "SIGHUP answered: $1" 1 "$(tail -n 5 "$ING_DIR/ingest-0.log" | grep -c "$1")"
}

printf '%s\n' "$S1" >"$SFILE"
ingest_start PAYSTREAM_SECRET_FILE="$SFILE"
ingest_wait_ready || check "ready" ready "not ready"
check "file secret accepted" 200 "$(signed_with "$S1")"
check "environment secret accepted too" 200 "$(signed_with "$ING_SECRET")"
check "unknown secret refused" 400 "$(signed_with "$S2")"

# rotation step 1: add the new secret next to the old one, with '#' comment
# lines an operator keeps to say which is which (not secrets themselves)
printf '# new endpoint secret, 2026-11\n%s\n  # old one: remove after the rollout, whsec_x\n%s\n' \
    "$S2" "$S1" >"$SFILE"
hup "3 webhook secrets loaded"
check "after adding: new secret accepted" 200 "$(signed_with "$S2")"
check "after adding: old secret still accepted" 200 "$(signed_with "$S1")"

# rotation step 2: drop the old one
printf '%s\n' "$S2" >"$SFILE"
hup "2 webhook secrets loaded"
check "after dropping: old secret refused" 400 "$(signed_with "$S1")"
check "after dropping: new secret accepted" 200 "$(signed_with "$S2")"
check "after dropping: environment secret unchanged" 200 "$(signed_with "$ING_SECRET")"

# a broken reload keeps what is in use
rm -f "$SFILE"
hup "secrets not reloaded, keeping the 2 in use"
check "file gone: secrets kept" 200 "$(signed_with "$S2")"
check "reload failure counted" 1 \
    "$(curl -s "$ING_URL/metrics" | grep -c '^paystream_ingest_secret_reloads_total{result="failed"} 1$')"
check "still running" 0 "$(kill -0 "$ING_PID" 2>/dev/null; echo $?)"
check "no secret in the log" 0 "$(grep -c -e "$S1" -e "$S2" -e "$ING_SECRET" "$ING_DIR/ingest-0.log")"
ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"

# only a secret file, no environment secret: the file alone is enough
printf '%s,%s\n' "$S1" "$S2" >"$SFILE"
ING_ENV_SECRET=0 ingest_start PAYSTREAM_SECRET_FILE="$SFILE"
ingest_wait_ready || true
check "secret file alone: first secret" 200 "$(signed_with "$S1")"
check "secret file alone: second secret (comma-separated)" 200 "$(signed_with "$S2")"
check "secret file alone: environment secret not configured" 400 "$(signed_with "$ING_SECRET")"
: >"$SFILE"
kill -HUP "$ING_PID"
sleep 0.5
check "empty file on reload: secrets kept" 200 "$(signed_with "$S1")"
ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"
done_testing
