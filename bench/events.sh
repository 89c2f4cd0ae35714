# shellcheck shell=bash
# events.sh - the one definition of a bench stream's events, so that the
# worker's max (bench/worker/run), its CPU (bench/worker/cpu) and the latency
# at half of that max (bench/e2e/run) are measured on the same mix.
#
# bench_events ROOT N SEED: N realistic events on stdout (JSON lines of
# tests/events/stripe_events.py): whole lives of N/15 users, both API shapes,
# in time order, starting over 350 days so that past the first tenth every
# stretch has the same mix of sign-ups, packs, upgrades, renewals, refunds and
# cancels (over the generator's default 20 days the last events would be all
# renewals, refunds and cancels).
bench_events() {
    python3 "$1/tests/events/stripe_events.py" gen many --users $(($2 / 15 + 1)) --spread-days 350 \
        --seed "$3" --api-version mixed --plans "$1/tests/events/plans.txt" --limit "$2"
}
