-- 001_ledger.sql: the ledger's tables, domains and indexes (SPEC §5).
-- Everything lives in schema "paystream" (created by `paystreamctl migrate`).
-- Balances sit on "subscriptions" (one row per user); every change to them is
-- a row of the append-only "credit_transactions", written by the ledger core
-- (sql/ledger.sql) and nowhere else, so that a balance is the sum of its rows.
-- Functions, triggers and grants are code, not migrations: see sql/code.list.
--
-- Single-column rules are domains rather than table CHECKs: PostgreSQL rebuilds
-- a table's CHECK expressions on every statement that writes it, while a
-- domain's stays parsed in the type cache (bench/README.md has the figures).
-- A violation is the same SQLSTATE, 23514.

CREATE DOMAIN paystream.credits_count AS integer CHECK (VALUE >= 0);
CREATE DOMAIN paystream.credits_positive AS integer CHECK (VALUE > 0);
CREATE DOMAIN paystream.credits_delta AS integer CHECK (VALUE <> 0);
CREATE DOMAIN paystream.credit_bucket AS text CHECK (VALUE IN ('subscription', 'overage'));
CREATE DOMAIN paystream.credit_kind AS text CHECK (VALUE IN
    ('subscription_grant', 'subscription_upgrade', 'subscription_expire', 'pack_grant',
     'pack_refund', 'usage', 'operator_grant'));
CREATE DOMAIN paystream.subscription_status AS text CHECK (VALUE IN
    ('none', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due',
     'canceled', 'unpaid', 'paused'));
CREATE DOMAIN paystream.event_status AS text CHECK (VALUE IN
    ('applied', 'skipped', 'retrying', 'failed'));
CREATE DOMAIN paystream.purchase_status AS text CHECK (VALUE IN ('granted', 'payment_failed'));

CREATE TABLE paystream.plans (
    id                 text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    stripe_price_id    text NOT NULL UNIQUE CHECK (stripe_price_id <> ''),
    credits_per_period integer NOT NULL CHECK (credits_per_period >= 0),
    name               text NOT NULL DEFAULT '',
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE paystream.credit_packs (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    stripe_price_id text NOT NULL UNIQUE CHECK (stripe_price_id <> ''),
    credits         integer NOT NULL CHECK (credits > 0),
    name            text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Stripe customer -> our user, remembered from checkout sessions.
CREATE TABLE paystream.customers (
    stripe_customer_id text PRIMARY KEY,
    user_id            uuid NOT NULL,
    event_id           text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_user_idx ON paystream.customers (user_id);

-- One row per user: the balances and the user's current subscription. A
-- batch updates a row several times before it commits; pages filled to half
-- keep those versions on the same page (no new index entries).
CREATE TABLE paystream.subscriptions (
    id                     bigserial PRIMARY KEY,
    user_id                uuid NOT NULL UNIQUE,
    stripe_customer_id     text,
    stripe_subscription_id text UNIQUE,
    subscription_created   bigint,  -- Stripe's `created` of that subscription, when known
    plan                   text REFERENCES paystream.plans (id),
    status                 paystream.subscription_status NOT NULL DEFAULT 'none'::text,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    credits_remaining      paystream.credits_count NOT NULL DEFAULT 0,
    credits_total          paystream.credits_count NOT NULL DEFAULT 0,
    overage_credits        paystream.credits_count NOT NULL DEFAULT 0,
    -- the period rule: end (unix seconds) of the period whose credits are held
    credit_period_end      bigint,
    -- ordering of subscription state: the (created, rank, event id) that set it
    state_created          bigint,
    state_rank             integer,
    state_event_id         text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
CREATE INDEX subscriptions_customer_idx ON paystream.subscriptions (stripe_customer_id);

-- Every subscription ever seen, with its user, its Stripe `created` and its
-- latest state: an event of a subscription the user's row no longer names is
-- still matched (sql/subscriptions.sql).
CREATE TABLE paystream.subscription_history (
    stripe_subscription_id text PRIMARY KEY,
    user_id                uuid NOT NULL,
    subscription_created   bigint,  -- Stripe's `created`, when known
    status                 paystream.subscription_status NOT NULL DEFAULT 'none'::text,
    state_created          bigint,
    state_rank             integer,
    state_event_id         text,
    event_id               text,    -- the event that first named it
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
CREATE INDEX subscription_history_user_idx ON paystream.subscription_history (user_id);

CREATE TABLE paystream.credit_transactions (
    id            bigserial PRIMARY KEY,
    user_id       uuid NOT NULL,
    bucket        paystream.credit_bucket NOT NULL,
    amount        paystream.credits_delta NOT NULL,
    kind          paystream.credit_kind NOT NULL,
    reference     text NOT NULL,  -- Stripe object (in_, cs_, ch_, sub_), usage id, operator ref
    event_id      text,           -- the Stripe event that caused it; NULL for app and operator
    description   text NOT NULL DEFAULT '',
    balance_after paystream.credits_count NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX credit_transactions_user_idx ON paystream.credit_transactions (user_id, id DESC);
CREATE INDEX credit_transactions_event_idx ON paystream.credit_transactions (event_id)
    WHERE event_id IS NOT NULL;
-- one Stripe object grants at most once: an invoice, a checkout session, an operator reference
CREATE UNIQUE INDEX credit_transactions_once_idx ON paystream.credit_transactions (kind, reference)
    WHERE kind IN ('subscription_grant', 'subscription_upgrade', 'pack_grant', 'operator_grant');

-- A usage (one rendered video) is charged once, whatever the number of calls.
CREATE TABLE paystream.credit_usages (
    user_id     uuid NOT NULL,
    video_id    uuid NOT NULL,
    credits     paystream.credits_positive NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, video_id)
);

-- Credit-pack purchases: the grant's once-per-session key and the refund state.
CREATE TABLE paystream.pack_purchases (
    checkout_session_id text PRIMARY KEY,
    user_id             uuid NOT NULL,
    pack_id             text NOT NULL REFERENCES paystream.credit_packs (id),
    credits             paystream.credits_positive NOT NULL,
    payment_intent      text UNIQUE,
    status              paystream.purchase_status NOT NULL,
    refund_due          paystream.credits_count NOT NULL DEFAULT 0,  -- credits owed back
    refund_taken        paystream.credits_count NOT NULL DEFAULT 0,
    refund_uncollected  paystream.credits_count NOT NULL DEFAULT 0,
    event_id            text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per Stripe event the worker has seen. The primary key is what makes
-- applying an event idempotent.
CREATE TABLE paystream.webhook_events (
    event_id      text PRIMARY KEY,
    type          text NOT NULL,
    livemode      boolean,
    api_version   text,
    event_created bigint,
    stream_id     text,
    status        paystream.event_status NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    error         text,           -- why the last attempt failed
    note          text,           -- what applying it did, or why it was skipped
    user_id       uuid,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz
);
CREATE INDEX webhook_events_status_idx ON paystream.webhook_events (status)
    WHERE status IN ('retrying', 'failed');
