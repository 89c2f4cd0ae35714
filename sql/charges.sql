-- charges.sql: refunds (SPEC §4). A refund of a credit pack takes back the
-- refunded share (amount_refunded / amount, cumulative) of the pack's credits
-- from the overage bucket, never below zero; what cannot be taken back (it
-- was spent) is recorded on the purchase. A charge matches its purchase by
-- payment intent.

-- The pack's share back, or NULL when no granted pack purchase has this
-- payment intent.
CREATE OR REPLACE FUNCTION paystream._pack_refund(p_charge text, p_payment_intent text,
                                                   p_amount bigint, p_amount_refunded bigint,
                                                   p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
    v paystream.subscriptions;
    p paystream.pack_purchases;
    v_due integer;
    v_take integer;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount_refunded IS NULL OR p_amount_refunded < 0
       OR p_amount_refunded > p_amount THEN
        RAISE EXCEPTION 'charge %: bad amounts (amount %, amount_refunded %)', p_charge,
            p_amount, p_amount_refunded USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT user_id INTO v_user FROM paystream.pack_purchases
     WHERE payment_intent = p_payment_intent AND status = 'granted';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v := paystream._account_lock(v_user);
    SELECT * INTO p FROM paystream.pack_purchases WHERE payment_intent = p_payment_intent
       FOR UPDATE;
    v_due := (p.credits::bigint * p_amount_refunded / p_amount)::integer;
    IF v_due <= p.refund_due THEN
        RETURN 'nothing: refund already taken into account';
    END IF;
    v_take := least(v_due - p.refund_due, v.overage_credits);
    PERFORM paystream._ledger_add(v_user, 'overage', -v_take, 'pack_refund', p_charge,
                                  p_event_id, 'refund of credit pack ' || p.pack_id);
    UPDATE paystream.pack_purchases
       SET refund_due = v_due, refund_taken = refund_taken + v_take,
           refund_uncollected = refund_uncollected + (v_due - p.refund_due - v_take),
           updated_at = now()
     WHERE checkout_session_id = p.checkout_session_id;
    RETURN format('took back %s of %s credits', v_take, v_due - p.refund_due);
END $$;

-- charge.refunded: the pack's share back; a charge that pays an invoice is
-- no pack and is skipped; any other waits for its checkout to be applied
-- (retried), since Stripe may deliver the refund first.
CREATE OR REPLACE FUNCTION paystream._charge_refunded(p_charge text, p_payment_intent text,
                                                      p_amount bigint, p_amount_refunded bigint,
                                                      p_pays_invoice boolean, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_note text := paystream._pack_refund(p_charge, p_payment_intent, p_amount,
                                          p_amount_refunded, p_event_id);
BEGIN
    IF v_note IS NOT NULL THEN
        RETURN v_note;
    ELSIF p_pays_invoice THEN
        RETURN format('skipped: charge %s pays an invoice: not a credit pack', p_charge);
    END IF;
    RAISE EXCEPTION 'no credit-pack purchase with payment_intent % yet (its checkout may not be applied yet; retried)',
        p_payment_intent USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;

-- _pack_refund in one call (tools and tests; the worker: ps_apply_batch).
CREATE OR REPLACE FUNCTION paystream.ps_charge_refunded(p_charge text, p_payment_intent text,
                                                        p_amount bigint,
                                                        p_amount_refunded bigint,
                                                        p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._pack_refund(p_charge, p_payment_intent, p_amount, p_amount_refunded,
                                  p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION paystream.ps_charge_refunded(text, text, bigint, bigint, text)
TO paystream_worker;
