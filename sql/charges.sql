-- charges.sql: charge.refunded and charge.dispute.* (SPEC §4). Each sets
-- what its payment's record keeps (sql/payments.sql): a refund the most
-- amount_refunded seen (Stripe's figure is cumulative, so an older event
-- delivered late changes nothing), a dispute its newest state; then the
-- payment's balance is settled. A refund or dispute of a payment paystream
-- granted nothing for (yet) waits for its purchase (SPEC §3); when the wait
-- runs out it is skipped (sql/events.sql).

-- charge.refunded. Before 2025-03-31.basil the charge names the invoice it
-- paid (p_invoice), which is remembered as that invoice's payment.
CREATE OR REPLACE FUNCTION paystream._charge_refunded(p_charge text, p_payment_intent text,
                                                      p_invoice text, p_amount bigint,
                                                      p_amount_refunded bigint,
                                                      p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_payment text := coalesce(p_payment_intent, p_charge);
    p paystream.payments;
BEGIN
    IF p_charge IS NULL OR p_amount IS NULL OR p_amount <= 0 OR p_amount_refunded IS NULL
       OR p_amount_refunded < 0 OR p_amount_refunded > p_amount THEN
        RAISE EXCEPTION 'charge %: bad amounts (amount %, amount_refunded %)', p_charge,
            p_amount, p_amount_refunded USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_invoice IS NOT NULL THEN
        PERFORM paystream._invoice_payment(p_invoice, v_payment, NULL, p_event_id);
    END IF;
    p := paystream._payment_open(v_payment, p_amount, NULL, 'refund of charge ' || p_charge,
                                 p_event_id);
    p.refunded := greatest(p.refunded, p_amount_refunded);
    RETURN 'refund: ' || paystream._payment_settle(p, p_charge,
                                                  CASE p.source WHEN 'pack' THEN 'pack_refund'
                                                                ELSE 'subscription_refund' END,
                                                  p_event_id);
END $$;

-- A dispute's status: whether its funds are withdrawn now (needs_response,
-- under_review, lost, and an appeal of a loss) and whether it is final (won,
-- lost, prevented, an inquiry closed); inquiries (warning_*) withdraw
-- nothing. NULL for a status Stripe does not document.
CREATE OR REPLACE FUNCTION paystream._dispute_status(p_status text, OUT withdrawn boolean,
                                                     OUT final boolean)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_status IN ('needs_response', 'under_review', 'lost',
                                  'appeal_needs_response', 'appeal_under_review') THEN true
                WHEN p_status IN ('won', 'prevented', 'warning_needs_response',
                                  'warning_under_review', 'warning_closed') THEN false END,
           CASE WHEN p_status IN ('won', 'lost', 'prevented', 'warning_closed') THEN true
                WHEN p_status IS NOT NULL THEN false END
$$;

-- charge.dispute.created / .updated / .funds_withdrawn / .funds_reinstated /
-- .closed: the dispute's newest state decides, a final one over any open
-- one, then by the event's `created` and id; the payment's disputed amount
-- is what its disputes hold withdrawn.
CREATE OR REPLACE FUNCTION paystream._charge_dispute(p_dispute text, p_charge text,
                                                     p_payment_intent text, p_amount bigint,
                                                     p_status text, p_event_created bigint,
                                                     p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_payment text := coalesce(p_payment_intent, p_charge);
    s record := paystream._dispute_status(p_status);
    d paystream.disputes;
    p paystream.payments;
BEGIN
    IF p_dispute IS NULL OR v_payment IS NULL OR p_amount IS NULL OR p_amount <= 0
       OR p_event_created IS NULL THEN
        RAISE EXCEPTION 'dispute %: no charge, amount or event time (charge %, amount %)',
            p_dispute, p_charge, p_amount USING ERRCODE = 'invalid_parameter_value';
    ELSIF s.withdrawn IS NULL THEN
        RAISE EXCEPTION 'dispute %: unknown status %', p_dispute, p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p := paystream._payment_open(v_payment, NULL, p_amount, 'dispute ' || p_dispute,
                                 p_event_id);
    SELECT * INTO d FROM paystream.disputes WHERE dispute = p_dispute;
    IF FOUND AND (s.final, p_event_created, p_event_id)
                 <= (d.state_final, d.state_created, d.state_event_id) THEN
        RETURN format('dispute %s %s: older than its stored state (%s)', p_dispute, p_status,
                      d.status);
    END IF;
    INSERT INTO paystream.disputes AS x (dispute, payment, amount, status, withdrawn,
                                         state_final, state_created, state_event_id)
    VALUES (p_dispute, v_payment, p_amount, p_status, s.withdrawn, s.final, p_event_created,
            p_event_id)
    ON CONFLICT (dispute) DO UPDATE
       SET amount = EXCLUDED.amount, status = EXCLUDED.status, withdrawn = EXCLUDED.withdrawn,
           state_final = EXCLUDED.state_final, state_created = EXCLUDED.state_created,
           state_event_id = EXCLUDED.state_event_id, updated_at = now();
    p.disputed := (SELECT coalesce(sum(amount) FILTER (WHERE withdrawn), 0)
                     FROM paystream.disputes WHERE payment = v_payment);
    RETURN format('dispute %s %s: ', p_dispute, p_status)
           || paystream._payment_settle(p, p_dispute, 'dispute_withdrawal', p_event_id);
END $$;

-- The rules in one call each (tools and tests; the worker: ps_apply_batch).
CREATE OR REPLACE FUNCTION paystream.ps_charge_refunded(p_charge text, p_payment_intent text,
                                                        p_invoice text, p_amount bigint,
                                                        p_amount_refunded bigint,
                                                        p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._charge_refunded(p_charge, p_payment_intent, p_invoice, p_amount,
                                      p_amount_refunded, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_charge_dispute(p_dispute text, p_charge text,
                                                       p_payment_intent text, p_amount bigint,
                                                       p_status text, p_event_created bigint,
                                                       p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._charge_dispute(p_dispute, p_charge, p_payment_intent, p_amount, p_status,
                                     p_event_created, p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION
    paystream.ps_charge_refunded(text, text, text, bigint, bigint, text),
    paystream.ps_charge_dispute(text, text, text, bigint, text, bigint, text)
TO paystream_worker;
