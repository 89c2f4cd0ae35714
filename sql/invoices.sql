-- invoices.sql: a paid invoice grants the period's subscription credits by
-- the period rule (SPEC §4). A billing period is named by its end P; a newer
-- P replaces the allowance (the leftover expires), the same P with a bigger
-- plan tops it up (an upgrade), anything else changes nothing. This is what
-- makes balances independent of the order and number of deliveries:
-- invoice.paid and invoice.payment_succeeded of one invoice grant once.

-- p_prices are the prices of the invoice's subscription lines for period P
-- (an upgrade's proration invoice has several); X is the largest plan among
-- them, and every one must be a known plan.
-- The second event of an invoice (invoice.paid and .payment_succeeded both
-- come) is told by one statement: a grant or upgrade row of this invoice
-- exists and the user's subscription is still this one and not final. The
-- period rule then gives nothing whatever the rest of the state: the credit
-- period only moves forward, and within it the allowance only grows. A
-- replaced or final subscription goes the full way, for its own note.
CREATE OR REPLACE FUNCTION paystream._invoice_paid(p_user_id uuid, p_sub text, p_customer text,
                                                   p_invoice text, p_prices text[],
                                                   p_period_end bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_plan paystream.plans;
    v_price text;
BEGIN
    IF EXISTS (SELECT FROM paystream.subscriptions s
                WHERE s.user_id = p_user_id AND s.stripe_subscription_id = p_sub
                  AND NOT paystream._status_final(s.status)
                  AND EXISTS (SELECT FROM paystream.credit_transactions t
                               WHERE t.kind IN ('subscription_grant', 'subscription_upgrade')
                                 AND t.reference = p_invoice AND t.user_id = p_user_id)) THEN
        RETURN 'nothing: period already granted';
    END IF;
    IF p_prices IS NULL OR cardinality(p_prices) = 0 THEN
        RAISE EXCEPTION 'invoice % has no subscription line with a price', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_price IN ARRAY p_prices LOOP
        v_plan := paystream._plan_for_price(v_price);
    END LOOP;
    IF cardinality(p_prices) > 1 THEN
        SELECT * INTO v_plan FROM paystream.plans WHERE stripe_price_id = ANY (p_prices)
         ORDER BY credits_per_period DESC, id LIMIT 1;
    END IF;
    IF p_period_end IS NULL THEN
        RAISE EXCEPTION 'invoice % has no subscription line period end', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    a := paystream._sub_place(p_user_id, p_sub, p_customer, NULL, p_event_id);
    v := a.v;
    IF a.role = 'undecided' THEN
        PERFORM paystream._sub_undecided('invoice ' || p_invoice, p_sub,
                                         v.stripe_subscription_id);
    ELSIF a.role = 'replaced' THEN
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id)
               || ': invoice ' || p_invoice || ' grants nothing';
    END IF;
    IF paystream._status_final(v.status) THEN
        RETURN 'nothing: subscription ' || v.status;
    END IF;
    IF v.credit_period_end IS NULL OR p_period_end > v.credit_period_end THEN
        PERFORM paystream._ledger_period(p_user_id, -v.credits_remaining,
                                         v_plan.credits_per_period, 'subscription_grant',
                                         p_invoice, p_event_id,
                                         'plan ' || v_plan.id || ' period credits',
                                         p_period_end, v_plan.credits_per_period);
        RETURN 'granted ' || v_plan.credits_per_period;
    END IF;
    IF p_period_end = v.credit_period_end AND v_plan.credits_per_period > v.credits_total THEN
        PERFORM paystream._ledger_period(p_user_id, 0,
                                         v_plan.credits_per_period - v.credits_total,
                                         'subscription_upgrade', p_invoice, p_event_id,
                                         'upgrade to plan ' || v_plan.id,
                                         v.credit_period_end, v_plan.credits_per_period);
        RETURN 'upgraded by ' || (v_plan.credits_per_period - v.credits_total);
    END IF;
    RETURN 'nothing: period already granted';
END $$;

-- The rule in one call (tools and tests; the worker: ps_apply_batch).
CREATE OR REPLACE FUNCTION paystream.ps_invoice_paid(p_user_id uuid, p_sub text,
                                                     p_customer text, p_invoice text,
                                                     p_prices text[], p_period_end bigint,
                                                     p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._invoice_paid(p_user_id, p_sub, p_customer, p_invoice, p_prices,
                                   p_period_end, p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION paystream.ps_invoice_paid(uuid, text, text, text, text[], bigint, text)
TO paystream_worker;
