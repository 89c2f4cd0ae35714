# test_ingest_stripe_node.sh - an event signed by Stripe's official Node library
# (stripe.webhooks.generateTestHeaderString, the package pinned in tests/node)
# is accepted by paystream-ingest and lands in the stream byte for byte; the
# same library's headers with a wrong secret or an old timestamp are refused.
# The event wraps a real checkout.session object from Stripe's OpenAPI fixtures.
# Fails (never skips) when node or the npm packages are missing:
#   npm ci --prefix tests/node
# shellcheck source=test_ingest_lib.sh
. "$(dirname "$0")/test_ingest_lib.sh"

NODE_DIR="$PS_SOURCE_DIR/tests/node"
FIXTURES="$PS_SOURCE_DIR/tests/fixtures/stripe-openapi-fixtures3.json"
command -v node >/dev/null || { echo "not ok - node is not on PATH (apt-get install nodejs)"; exit 1; }
[ -f "$NODE_DIR/node_modules/stripe/package.json" ] || {
    echo "not ok - the stripe npm package is missing: npm ci --prefix tests/node"
    exit 1
}
[ -f "$FIXTURES" ] || { echo "not ok - missing $FIXTURES"; exit 1; }

# sdk_sign ID SECRET [AGE_SECONDS]: write $ING_DIR/ID.json (a checkout.session.completed
# event around the fixture's session) and $ING_DIR/ID.hdr (the SDK's header)
sdk_sign() {
    NODE_PATH="$NODE_DIR/node_modules" EVT_ID=$1 SECRET=$2 AGE=${3:-0} OUT="$ING_DIR/$1" \
        FIXTURES="$FIXTURES" node - <<'JS'
const fs = require('fs');
const Stripe = require('stripe');
const stripe = new Stripe('sk_test_paystream_unused');
const env = process.env;
const session = JSON.parse(fs.readFileSync(env.FIXTURES, 'utf8')).resources['checkout.session'];
const now = Math.floor(Date.now() / 1000);
session.metadata = { user_id: '6f1c3f0e-4b8e-4c69-9f55-2a3c1d2e9b01', note: 'Zoë – ✓ "quoted"' };
const event = {
  id: env.EVT_ID,
  object: 'event',
  api_version: '2025-03-31.basil',
  created: now,
  data: { object: session },
  livemode: false,
  pending_webhooks: 1,
  request: { id: null, idempotency_key: null },
  type: 'checkout.session.completed',
};
// Stripe sends pretty-printed JSON; the signature covers these exact bytes
const payload = JSON.stringify(event, null, 2);
const timestamp = now - Number(env.AGE);
const header = stripe.webhooks.generateTestHeaderString({ payload, secret: env.SECRET, timestamp });
if (Number(env.AGE) === 0) stripe.webhooks.constructEvent(payload, header, env.SECRET); // the SDK agrees
fs.writeFileSync(env.OUT + '.json', payload);
fs.writeFileSync(env.OUT + '.hdr', header);
JS
}

ingest_start
ingest_wait_ready || check "ready" ready "not ready"
check "stripe-node version pinned" "$(node -p "require('$NODE_DIR/package.json').dependencies.stripe")" \
    "$(node -p "require('$NODE_DIR/node_modules/stripe/package.json').version")"

sdk_sign evt_node_ok "$ING_SECRET"
check "SDK event is realistic in size (> 3 KB)" 1 $(($(stat -c %s "$ING_DIR/evt_node_ok.json") > 3000))
check "SDK-signed event: 200" '200 {"received":true}' \
    "$(post "$ING_DIR/evt_node_ok.json" "$(cat "$ING_DIR/evt_node_ok.hdr")")"
stream_body evt_node_ok >"$ING_DIR/back.json"
check "SDK-signed event: byte for byte in the stream" same \
    "$(cmp -s "$ING_DIR/evt_node_ok.json" "$ING_DIR/back.json" && echo same || echo differ)"
check "SDK-signed event: type recorded" checkout.session.completed "$(stream_field evt_node_ok type)"

n=$(xlen)
sdk_sign evt_node_wrong whsec_not_ours
check "SDK header, wrong secret: 400" '400 {"error":"no_matching_signature"}' \
    "$(post "$ING_DIR/evt_node_wrong.json" "$(cat "$ING_DIR/evt_node_wrong.hdr")")"
sdk_sign evt_node_old "$ING_SECRET" 600
check "SDK header, 10 minutes old: 400" '400 {"error":"timestamp_outside_tolerance"}' \
    "$(post "$ING_DIR/evt_node_old.json" "$(cat "$ING_DIR/evt_node_old.hdr")")"
check "refused events add nothing" "$n" "$(xlen)"

ingest_stop
check "SIGTERM: exit 0" 0 "$ING_EXIT"
done_testing
