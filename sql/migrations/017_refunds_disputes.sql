-- 017_refunds_disputes.sql: what refunds and disputes need (SPEC §4).
--  - invoices: each subscription invoice paystream applied, with what it
--    granted, for which subscription and period, and the payment (payment
--    intent, or a charge without one) that paid it: from the invoice itself
--    before 2025-03-31.basil (invoice.payment_intent, charge.invoice), from
--    invoice_payment.paid after. A row may name the payment before the
--    invoice is applied (applied false until then).
--  - payments: a payment that was refunded or disputed: what it paid for
--    (a credit pack's checkout or a subscription invoice), the most refunded
--    and the amount its disputes hold withdrawn, and the credits owed back,
--    taken back and not collectable (already spent).
--  - disputes: each dispute's newest state.
--  - pack_purchases: what the checkout charged; its refund state moves to
--    payments (kept as a share: amount = credits, refunded = credits owed;
--    the rule rescales a share when a charge names the amount).
--  - The batch row: a charge names its invoice (the invoice field) instead of
--    pays_invoice; a dispute's id and status.

ALTER DOMAIN paystream.credit_kind DROP CONSTRAINT credit_kind_check;
ALTER DOMAIN paystream.credit_kind ADD CONSTRAINT credit_kind_check CHECK (VALUE IN
    ('subscription_grant', 'subscription_upgrade', 'subscription_expire',
     'subscription_restore', 'subscription_refund', 'pack_grant', 'pack_refund',
     'dispute_withdrawal', 'dispute_reinstatement', 'usage', 'operator_grant'));

CREATE TABLE paystream.invoices (
    invoice      text PRIMARY KEY,
    user_id      uuid,
    subscription text,
    period_end   bigint,
    granted      paystream.credits_count NOT NULL DEFAULT 0,
    applied      boolean NOT NULL DEFAULT false,
    payment      text,
    amount_paid  bigint,
    event_id     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_payment_idx ON paystream.invoices (payment) WHERE payment IS NOT NULL;

CREATE TABLE paystream.payments (
    payment      text PRIMARY KEY,  -- pi_..., or ch_... for a charge without one
    user_id      uuid NOT NULL,
    source       text NOT NULL CHECK (source IN ('pack', 'invoice')),
    reference    text NOT NULL,     -- the checkout session or the invoice
    subscription text,              -- an invoice's, and its period
    period_end   bigint,
    granted      paystream.credits_count NOT NULL,
    amount       bigint NOT NULL CHECK (amount > 0),
    refunded     bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    disputed     bigint NOT NULL DEFAULT 0 CHECK (disputed >= 0),
    due          paystream.credits_count NOT NULL DEFAULT 0,
    taken        paystream.credits_count NOT NULL DEFAULT 0,
    uncollected  paystream.credits_count NOT NULL DEFAULT 0,
    event_id     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_user_idx ON paystream.payments (user_id);

CREATE TABLE paystream.disputes (
    dispute        text PRIMARY KEY,
    payment        text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    status         text NOT NULL,
    withdrawn      boolean NOT NULL,  -- its funds are withdrawn now
    state_final    boolean NOT NULL,
    state_created  bigint NOT NULL,
    state_event_id text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX disputes_payment_idx ON paystream.disputes (payment);

ALTER TABLE paystream.pack_purchases ADD COLUMN amount bigint;
INSERT INTO paystream.payments (payment, user_id, source, reference, granted, amount, refunded,
                                due, taken, uncollected, event_id)
SELECT payment_intent, user_id, 'pack', checkout_session_id, credits, credits, refund_due,
       refund_due, refund_taken, refund_uncollected, event_id
  FROM paystream.pack_purchases
 WHERE payment_intent IS NOT NULL AND status = 'granted' AND refund_due > 0;
ALTER TABLE paystream.pack_purchases DROP COLUMN refund_due, DROP COLUMN refund_taken,
    DROP COLUMN refund_uncollected;

ALTER TYPE paystream.batch_event DROP ATTRIBUTE pays_invoice,
    ADD ATTRIBUTE dispute text, ADD ATTRIBUTE dispute_status text;

DROP FUNCTION IF EXISTS
    paystream.ps_pack_paid(uuid, text, text, text, text, text, text),
    paystream._pack_paid(uuid, text, text, text, text, text, text),
    paystream.ps_charge_refunded(text, text, bigint, bigint, text),
    paystream._charge_refunded(text, text, bigint, bigint, boolean, text),
    paystream._pack_refund(text, text, bigint, bigint, text),
    paystream.ps_invoice_paid(uuid, text, text, text, text[], integer[], boolean, bigint, text),
    paystream._invoice_paid(uuid, text, text, text, text[], integer[], boolean, bigint, text);
