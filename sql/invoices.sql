-- invoices.sql: a paid invoice grants the period's subscription credits by
-- the period rule (SPEC §4). A billing period is named by its end P; X is the
-- sum over the invoice's plan lines of the plan's credits × quantity (the
-- plan's trial credits when the subscription is trialing through P, i.e. its
-- trial_end is P, whatever the amount), or more when the subscription's
-- states showed a bigger plan for P (an upgrade billed on the next invoice). A newer P replaces the allowance
-- (the leftover expires), the same P with a bigger X tops it up (an
-- upgrade), anything else changes nothing. The rule runs on the invoice's
-- subscription's own account (sql/subscriptions.sql): on the balance when it
-- is the user's current subscription, in its record otherwise. This is what
-- makes balances independent of the order and number of deliveries:
-- invoice.paid and invoice.payment_succeeded of one invoice grant once.
-- Each applied invoice is remembered with what it granted and the payment
-- that paid it (invoice_payment.paid names it from 2025-03-31.basil on), for
-- refunds and disputes (sql/payments.sql).

-- What refunds and disputes need of an applied invoice (sql/payments.sql):
-- whose, its subscription and period, what it granted (the most any of its
-- events granted: the second of invoice.paid / .payment_succeeded grants
-- nothing) and, when the invoice names it (before 2025-03-31.basil), the
-- payment that paid it. Returns what the invoice has granted.
CREATE OR REPLACE FUNCTION paystream._invoice_record(p_invoice text, p_user_id uuid, p_sub text,
                                                     p_period_end bigint, p_granted integer,
                                                     p_payment text, p_amount_paid bigint,
                                                     p_event_id text)
RETURNS integer
LANGUAGE plpgsql AS $$  -- PL/pgSQL keeps the statement's plan; a SQL function plans it per call
DECLARE
    v_granted integer;
BEGIN
    INSERT INTO paystream.invoices AS i (invoice, user_id, subscription, period_end, granted,
                                         applied, payment, amount_paid, event_id)
    VALUES (p_invoice, p_user_id, p_sub, p_period_end, p_granted, true, p_payment,
            p_amount_paid, p_event_id)
    ON CONFLICT (invoice) DO UPDATE
       SET user_id = EXCLUDED.user_id, subscription = EXCLUDED.subscription,
           period_end = EXCLUDED.period_end, granted = greatest(i.granted, EXCLUDED.granted),
           applied = true, payment = coalesce(i.payment, EXCLUDED.payment),
           amount_paid = coalesce(EXCLUDED.amount_paid, i.amount_paid), updated_at = now()
    RETURNING granted INTO v_granted;
    RETURN v_granted;
END $$;

-- invoice_payment.paid (from 2025-03-31.basil; a charge names its invoice
-- before): remember that payment p_payment paid p_invoice, whether the
-- invoice is applied yet or not.
CREATE OR REPLACE FUNCTION paystream._invoice_payment(p_invoice text, p_payment text,
                                                      p_amount_paid bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF p_invoice IS NULL OR p_payment IS NULL THEN
        RAISE EXCEPTION 'invoice payment without an invoice or a payment (invoice %, payment %)',
            p_invoice, p_payment USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO paystream.invoices AS i (invoice, payment, amount_paid, event_id)
    VALUES (p_invoice, p_payment, p_amount_paid, p_event_id)
    ON CONFLICT (invoice) DO UPDATE
       SET payment = coalesce(i.payment, EXCLUDED.payment),
           amount_paid = coalesce(i.amount_paid, EXCLUDED.amount_paid), updated_at = now()
     WHERE i.payment IS NULL OR i.amount_paid IS NULL;
    RETURN format('recorded: payment %s paid invoice %s', p_payment, p_invoice);
END $$;

-- p_prices and p_quantities are the invoice's subscription lines for period P
-- (an upgrade's proration invoice has one for the new plan). An invoice whose
-- subscription's state (its trial) is not known yet waits for the
-- subscription's customer.subscription event (SQLSTATE 55000: it waits, SPEC §3),
-- unless p_lines_charged: a trial charges nothing for the plan, so a charged
-- plan line proves P is no trial period.
-- The second event of an invoice is told by one statement: a grant or
-- upgrade row of this invoice exists and the user's subscription is still
-- this one and not final. The period rule then gives nothing whatever the
-- rest of the state: the credit period only moves forward, and within it the
-- allowance only grows.
CREATE OR REPLACE FUNCTION paystream._invoice_paid(p_user_id uuid, p_sub text, p_customer text,
                                                   p_invoice text, p_prices text[],
                                                   p_quantities integer[],
                                                   p_lines_charged boolean,
                                                   p_period_end bigint, p_payment text,
                                                   p_amount_paid bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_moved integer;
    v paystream.subscriptions;
    h paystream.subscription_history;
    x record;
    v_x integer;
    v_granted integer := 0;
    v_note text;
BEGIN
    IF EXISTS (SELECT FROM paystream.subscriptions s
                WHERE s.user_id = p_user_id AND s.stripe_subscription_id = p_sub
                  AND NOT paystream._status_final(s.status)
                  AND EXISTS (SELECT FROM paystream.credit_transactions t
                               WHERE t.kind IN ('subscription_grant', 'subscription_upgrade')
                                 AND t.reference = p_invoice AND t.user_id = p_user_id)) THEN
        RETURN 'nothing: period already granted';
    END IF;
    IF p_period_end IS NULL THEN
        RAISE EXCEPTION 'invoice % has no subscription line period end', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    x := paystream._plan_lines(p_prices, p_quantities, true);
    v := paystream._account_open(p_user_id, p_customer, p_event_id);
    h := paystream._sub_record(v, p_sub, NULL, p_event_id);
    IF v.stripe_subscription_id IS NULL THEN  -- the user's first: current from now on
        v := paystream._sub_sync(p_user_id, p_sub, p_customer, p_event_id);
        h := paystream._sub_record(v, p_sub, NULL, p_event_id);
    END IF;
    IF h.state_created IS NULL AND NOT coalesce(p_lines_charged, false) THEN
        RAISE EXCEPTION 'invoice %: waiting for subscription %''s customer.subscription event (whether the period is a trial is not known yet)',
            p_invoice, p_sub USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_x := CASE WHEN h.trial_end = p_period_end THEN x.trial_credits ELSE x.credits END;
    IF h.shown_period_end = p_period_end THEN  -- an upgrade its states showed first
        v_x := greatest(v_x, h.shown_credits);
    END IF;
    IF paystream._status_final(h.status) THEN
        v_note := 'nothing: subscription ' || h.status;
    ELSIF h.credit_period_end IS NULL OR p_period_end > h.credit_period_end THEN
        v_moved := paystream._sub_credits(v, h, -h.credits_held, v_x, 'subscription_grant', p_invoice, p_event_id,
                                       'plan ' || x.plan || CASE WHEN h.trial_end = p_period_end
                                                                 THEN ' trial credits'
                                                                 ELSE ' period credits' END,
                                       p_period_end, v_x);
        v_note := 'granted ' || v_x;
        v_granted := v_x;
    ELSIF p_period_end = h.credit_period_end AND v_x > h.credits_total THEN
        v_moved := paystream._sub_credits(v, h, 0, v_x - h.credits_total, 'subscription_upgrade',
                                       p_invoice, p_event_id, 'upgrade to plan ' || x.plan,
                                       h.credit_period_end, v_x);
        v_note := 'upgraded by ' || (v_x - h.credits_total);
        v_granted := v_x - h.credits_total;
    ELSE
        v_note := 'nothing: period already granted';
    END IF;
    v_moved := paystream._invoice_record(p_invoice, p_user_id, p_sub, p_period_end, v_granted,
                                      p_payment, p_amount_paid, p_event_id);
    IF v.stripe_subscription_id <> p_sub THEN  -- its state event made the row current
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id)
               || ': invoice ' || p_invoice || ' grants nothing (its record: ' || v_note || ')';
    END IF;
    RETURN v_note;
END $$;

-- The rule in one call (tools and tests; the worker: ps_apply_batch).
CREATE OR REPLACE FUNCTION paystream.ps_invoice_paid(p_user_id uuid, p_sub text,
                                                     p_customer text, p_invoice text,
                                                     p_prices text[], p_quantities integer[],
                                                     p_lines_charged boolean,
                                                     p_period_end bigint, p_payment text,
                                                     p_amount_paid bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._invoice_paid(p_user_id, p_sub, p_customer, p_invoice, p_prices,
                                   p_quantities, p_lines_charged, p_period_end, p_payment,
                                   p_amount_paid, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_invoice_payment_paid(p_invoice text, p_payment text,
                                                             p_amount_paid bigint,
                                                             p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._invoice_payment(p_invoice, p_payment, p_amount_paid, p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION
    paystream.ps_invoice_paid(uuid, text, text, text, text[], integer[], boolean, bigint, text,
                              bigint, text),
    paystream.ps_invoice_payment_paid(text, text, bigint, text)
TO paystream_worker;
