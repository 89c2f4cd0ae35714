-- 001_ledger_tables.sql: the ledger's tables (SPEC section 5).
-- Everything lives in schema "paystream" (created by `paystreamctl migrate`).
-- Balances sit on "subscriptions" (one row per user); every change to them is
-- a row of the append-only "credit_transactions", written by _ledger_add() in
-- 002 and nowhere else, so that balance = sum of its ledger rows at every commit.

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

CREATE TABLE paystream.subscriptions (
    id                     bigserial PRIMARY KEY,
    user_id                uuid NOT NULL UNIQUE,
    stripe_customer_id     text,
    stripe_subscription_id text UNIQUE,
    subscription_created   bigint,  -- Stripe's `created` of that subscription, when known
    plan                   text REFERENCES paystream.plans (id),
    status                 text NOT NULL DEFAULT 'none' CHECK (status IN
        ('none', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due',
         'canceled', 'unpaid', 'paused')),
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    credits_remaining      integer NOT NULL DEFAULT 0 CHECK (credits_remaining >= 0),
    credits_total          integer NOT NULL DEFAULT 0 CHECK (credits_total >= 0),
    overage_credits        integer NOT NULL DEFAULT 0 CHECK (overage_credits >= 0),
    -- the period rule: end (unix seconds) of the period whose credits are held
    credit_period_end      bigint,
    -- ordering of subscription state: the (created, rank, event id) that set it
    state_created          bigint,
    state_rank             integer,
    state_event_id         text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_customer_idx ON paystream.subscriptions (stripe_customer_id);

CREATE TABLE paystream.credit_transactions (
    id            bigserial PRIMARY KEY,
    user_id       uuid NOT NULL,
    bucket        text NOT NULL CHECK (bucket IN ('subscription', 'overage')),
    amount        integer NOT NULL CHECK (amount <> 0),
    kind          text NOT NULL CHECK (kind IN
        ('subscription_grant', 'subscription_upgrade', 'subscription_expire', 'pack_grant',
         'pack_refund', 'usage', 'operator_grant')),
    reference     text NOT NULL,  -- Stripe object (in_, cs_, ch_, sub_), usage id, operator ref
    event_id      text,           -- the Stripe event that caused it; NULL for app and operator
    description   text NOT NULL DEFAULT '',
    balance_after integer NOT NULL CHECK (balance_after >= 0),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX credit_transactions_user_idx ON paystream.credit_transactions (user_id, id DESC);
CREATE INDEX credit_transactions_event_idx ON paystream.credit_transactions (event_id)
    WHERE event_id IS NOT NULL;
-- one Stripe object grants at most once: an invoice, a checkout session, an operator reference
CREATE UNIQUE INDEX credit_transactions_once_idx ON paystream.credit_transactions (kind, reference)
    WHERE kind IN ('subscription_grant', 'subscription_upgrade', 'pack_grant', 'operator_grant');

CREATE FUNCTION paystream._refuse_ledger_rewrite() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'correct a balance with a new row (grant_credits), never by rewriting history';
END $$;

CREATE TRIGGER credit_transactions_append_only
    BEFORE UPDATE OR DELETE ON paystream.credit_transactions
    FOR EACH ROW EXECUTE FUNCTION paystream._refuse_ledger_rewrite();
CREATE TRIGGER credit_transactions_no_truncate
    BEFORE TRUNCATE ON paystream.credit_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION paystream._refuse_ledger_rewrite();

-- A usage (one rendered video) is charged once, whatever the number of calls.
CREATE TABLE paystream.credit_usages (
    user_id     uuid NOT NULL,
    video_id    uuid NOT NULL,
    credits     integer NOT NULL CHECK (credits > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, video_id)
);

-- Credit-pack purchases: the grant's once-per-session key and the refund state.
CREATE TABLE paystream.pack_purchases (
    checkout_session_id text PRIMARY KEY,
    user_id             uuid NOT NULL,
    pack_id             text NOT NULL REFERENCES paystream.credit_packs (id),
    credits             integer NOT NULL CHECK (credits > 0),
    payment_intent      text UNIQUE,
    status              text NOT NULL CHECK (status IN ('granted', 'payment_failed')),
    refund_due          integer NOT NULL DEFAULT 0 CHECK (refund_due >= 0),  -- credits owed back
    refund_taken        integer NOT NULL DEFAULT 0 CHECK (refund_taken >= 0),
    refund_uncollected  integer NOT NULL DEFAULT 0 CHECK (refund_uncollected >= 0),
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
    status        text NOT NULL CHECK (status IN ('applied', 'skipped', 'retrying', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    error         text,           -- why the last attempt failed
    note          text,           -- what applying it did, or why it was skipped
    user_id       uuid,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz
);
CREATE INDEX webhook_events_status_idx ON paystream.webhook_events (status)
    WHERE status IN ('retrying', 'failed');
