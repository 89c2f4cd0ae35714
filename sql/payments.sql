-- payments.sql: what a payment paid for, and taking back the share of it
-- that was refunded or disputed (SPEC §4). A payment is a payment intent, or
-- a charge without one; it paid for a credit pack (its checkout session) or
-- a subscription invoice (sql/invoices.sql remembers which payment paid it).
--
-- Refunds and disputes only ever set a payment's refunded amount (the most
-- any charge.refunded showed: it is cumulative) and the amount its disputes
-- hold withdrawn (each dispute's newest state, sql/charges.sql). The credits
-- owed back follow from those alone:
--     due = granted × min(amount, refunded + disputed) / amount   (rounded down)
-- so a refund and a dispute of one payment never take back more than it
-- granted, and the same events in any order owe the same. Settling moves the
-- balance towards what is owed: more owed is taken back (never below zero:
-- what was spent is recorded as uncollected), less owed (a dispute won)
-- first forgives the uncollected, then gives back what was taken. A
-- subscription invoice's credits move only while its period is its
-- subscription's credit period: after that they have expired anyway.

-- What the payment paid for, when paystream granted for it: a pack purchase
-- that granted, or an applied subscription invoice; no row otherwise.
CREATE OR REPLACE FUNCTION paystream._payment_source(p_payment text)
RETURNS TABLE (source text, reference text, user_id uuid, subscription text, period_end bigint,
               granted integer, amount bigint)
LANGUAGE plpgsql STABLE AS $$  -- PL/pgSQL: its plans are kept between calls
BEGIN
    RETURN QUERY
    SELECT 'pack'::text, p.checkout_session_id, p.user_id, NULL::text, NULL::bigint,
           p.credits::integer, p.amount
      FROM paystream.pack_purchases p
     WHERE p.payment_intent = p_payment AND p.status = 'granted';
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT 'invoice'::text, i.invoice, i.user_id, i.subscription, i.period_end,
               i.granted::integer, i.amount_paid
          FROM paystream.invoices i
         WHERE i.payment = p_payment AND i.applied
         ORDER BY i.invoice LIMIT 1;
    END IF;
END $$;

-- The payment's record, under its user's row lock (made on first use); a
-- payment paystream granted nothing for (yet) waits for its purchase
-- (SQLSTATE 55000, SPEC §3). p_amount: what a charge says was paid, when the
-- event is a charge's; p_fallback: the amount to assume when neither the
-- purchase nor a charge said (a dispute's amount: disputes are of the whole
-- payment but for rare partial ones).
CREATE OR REPLACE FUNCTION paystream._payment_open(p_payment text, p_amount bigint,
                                                   p_fallback bigint, p_what text,
                                                   p_event_id text)
RETURNS paystream.payments
LANGUAGE plpgsql AS $$
DECLARE
    v_account paystream.subscriptions;
    s record;
    p paystream.payments;
BEGIN
    SELECT * INTO s FROM paystream._payment_source(p_payment);
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: waiting for the purchase payment % paid for (no granted credit-pack checkout or applied subscription invoice has it yet)',
            p_what, p_payment USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_account := paystream._account_lock(s.user_id);
    INSERT INTO paystream.payments (payment, user_id, source, reference, subscription, period_end,
                                    granted, amount, event_id)
    VALUES (p_payment, s.user_id, s.source, s.reference, s.subscription, s.period_end,
            s.granted, coalesce(nullif(s.amount, 0), p_amount, p_fallback), p_event_id)
    ON CONFLICT (payment) DO NOTHING;
    SELECT * INTO p FROM paystream.payments WHERE payment = p_payment;
    IF p_amount > 0 AND p_amount <> p.amount THEN  -- the charge's own figure: shares kept
        p.refunded := p.refunded * p_amount / p.amount;
        p.disputed := p.disputed * p_amount / p.amount;
        p.amount := p_amount;
    END IF;
    RETURN p;
END $$;

-- Store p's refunded and disputed amounts and settle the balance with what
-- they owe (above). p_reference is the Stripe object of the ledger rows (the
-- charge, the dispute); p_take_kind their kind when taking back. The
-- caller holds the user's row lock (_payment_open).
CREATE OR REPLACE FUNCTION paystream._payment_settle(p paystream.payments, p_reference text,
                                                     p_take_kind text, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_moved integer;
    v paystream.subscriptions;
    h paystream.subscription_history;
    v_due integer := (p.granted::bigint * least(p.amount, p.refunded + p.disputed)
                      / p.amount)::integer;
    v_owed integer := p.taken + p.uncollected;  -- what earlier settling counted
    v_have integer;
    v_move integer;
    v_forgive integer := 0;
    v_note text;
BEGIN
    UPDATE paystream.payments
       SET amount = p.amount, refunded = p.refunded, disputed = p.disputed, due = v_due,
           updated_at = now()
     WHERE payment = p.payment;
    IF v_due = v_owed THEN
        RETURN format('nothing: %s of %s credits owed back, as before', v_due, p.granted);
    END IF;
    SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p.user_id;
    IF p.source = 'invoice' THEN
        h := paystream._sub_record(v, p.subscription, NULL, p_event_id);
        IF paystream._status_final(h.status) OR h.credit_period_end IS DISTINCT FROM p.period_end THEN
            RETURN format('nothing: invoice %s''s period is over (its credits expired)', p.reference);
        END IF;
        v_have := h.credits_held;
    ELSE
        v_have := v.overage_credits;
    END IF;
    IF v_due > v_owed THEN
        v_move := -least(v_due - v_owed, v_have);
        v_note := format('took back %s of %s credits', -v_move, v_due - v_owed);
    ELSE
        v_forgive := least(v_owed - v_due, p.uncollected);
        v_move := v_owed - v_due - v_forgive;
        v_note := format('gave back %s credits', v_move);
    END IF;
    IF p.source = 'pack' THEN
        v_moved := paystream._ledger_add(p.user_id, 'overage', v_move,
                                      CASE WHEN v_move < 0 THEN p_take_kind
                                           ELSE 'dispute_reinstatement' END,
                                      p_reference, p_event_id, 'credit pack ' || p.reference);
    ELSIF v_move <> 0 THEN
        v_moved := paystream._sub_credits(v, h, 0, v_move,
                                       CASE WHEN v_move < 0 THEN p_take_kind
                                            ELSE 'dispute_reinstatement' END,
                                       p_reference, p_event_id, 'invoice ' || p.reference,
                                       h.credit_period_end, h.credits_total);
    END IF;
    UPDATE paystream.payments
       SET taken = taken - v_move,
           uncollected = uncollected + greatest(v_due - v_owed + v_move, 0) - v_forgive
     WHERE payment = p.payment;
    RETURN v_note || format(' (%s of %s owed back)', v_due, p.granted);
END $$;

-- Whose payment it is, for the event's record: its purchase's user, or the
-- charge's customer's.
CREATE OR REPLACE FUNCTION paystream._payment_user(p_payment text, p_invoice text,
                                                   p_customer text)
RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT s.user_id FROM paystream._payment_source(p_payment) s),
                    (SELECT i.user_id FROM paystream.invoices i WHERE i.invoice = p_invoice),
                    (SELECT c.user_id FROM paystream.customers c
                      WHERE c.stripe_customer_id = p_customer));
END $$;
