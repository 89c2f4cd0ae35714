-- 011_subscription_records.sql: what the subscription rules of SPEC §4 keep.
--  - A plan has several Stripe prices (a new one for new customers, the old
--    ones kept for existing subscriptions): plan_prices maps every price ever
--    loaded to its plan; plans.stripe_price_id stays the plan's newest price.
--    A plan may give trial credits for a trialing period (0 unless set).
--  - Every subscription's record (subscription_history) holds its own state
--    (plan, status, period, trial end, whether it ever went live) and its own
--    credit account (credit period, allowance, credits held while it is not
--    the user's current subscription), so that which subscription is current
--    and what it holds never depend on the order Stripe delivered in.
--  - A subscription that becomes current again gets back the credits it held
--    (a ledger row of the new kind subscription_restore).
--  - The batch row carries the quantities of a subscription's or invoice's
--    price lines and the trial end.

CREATE TABLE paystream.plan_prices (
    stripe_price_id text PRIMARY KEY CHECK (stripe_price_id <> ''),
    plan_id         text NOT NULL REFERENCES paystream.plans (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_prices_plan_idx ON paystream.plan_prices (plan_id);
INSERT INTO paystream.plan_prices (stripe_price_id, plan_id)
SELECT stripe_price_id, id FROM paystream.plans;

ALTER TABLE paystream.plans ADD COLUMN trial_credits paystream.credits_count NOT NULL DEFAULT 0;

ALTER TABLE paystream.subscription_history
    ADD COLUMN went_live            boolean NOT NULL DEFAULT false,
    ADD COLUMN plan                 text,
    ADD COLUMN plan_credits         integer,  -- X of its plan lines, from its newest state
    ADD COLUMN plan_trial_credits   integer,  -- the same lines' trial credits
    ADD COLUMN current_period_start timestamptz,
    ADD COLUMN current_period_end   timestamptz,
    ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false,
    ADD COLUMN trial_end            bigint,
    -- the most credits its states showed for the newest period they named
    -- (upgrades billed on the next invoice), whatever their order
    ADD COLUMN shown_period_end     bigint,
    ADD COLUMN shown_credits        integer,
    ADD COLUMN credit_period_end    bigint,   -- the period rule, per subscription
    ADD COLUMN credits_total        paystream.credits_count NOT NULL DEFAULT 0,
    ADD COLUMN credits_held         paystream.credits_count NOT NULL DEFAULT 0;

-- records of the layout before: what the user's row knew of its subscription
UPDATE paystream.subscription_history h
   SET went_live = h.status NOT IN ('none', 'incomplete', 'incomplete_expired'),
       plan = s.plan, current_period_start = s.current_period_start,
       current_period_end = s.current_period_end,
       cancel_at_period_end = s.cancel_at_period_end,
       credit_period_end = s.credit_period_end, credits_total = s.credits_total
  FROM paystream.subscriptions s
 WHERE s.stripe_subscription_id = h.stripe_subscription_id;
UPDATE paystream.subscription_history
   SET went_live = status NOT IN ('none', 'incomplete', 'incomplete_expired')
 WHERE NOT went_live;

ALTER DOMAIN paystream.credit_kind DROP CONSTRAINT credit_kind_check;
ALTER DOMAIN paystream.credit_kind ADD CONSTRAINT credit_kind_check CHECK (VALUE IN
    ('subscription_grant', 'subscription_upgrade', 'subscription_expire',
     'subscription_restore', 'pack_grant', 'pack_refund', 'usage', 'operator_grant'));

ALTER TYPE paystream.batch_event
    ADD ATTRIBUTE quantities integer[],  -- of prices, line by line (NULL: 1 each)
    ADD ATTRIBUTE trial_end  bigint;

-- functions whose signature changes (sql/subscriptions.sql, sql/invoices.sql)
DROP FUNCTION IF EXISTS
    paystream.ps_subscription_state(uuid, text, text, text, text, bigint, bigint, boolean,
                                    bigint, bigint, text),
    paystream._subscription_state(uuid, text, text, text, text, bigint, bigint, boolean, bigint,
                                  bigint, text),
    paystream.ps_subscription_past_due(uuid, text, text, bigint, text),
    paystream._subscription_past_due(uuid, text, text, bigint, text),
    paystream.ps_invoice_paid(uuid, text, text, text, text[], bigint, text),
    paystream._invoice_paid(uuid, text, text, text, text[], bigint, text),
    paystream._plan_for_price(text),
    paystream._sub_place(uuid, text, text, bigint, text),
    paystream._sub_undecided(text, text, text),
    paystream._sub_remember(uuid, text, bigint, text),
    paystream._sub_record_state(text, text, integer, bigint, text);
