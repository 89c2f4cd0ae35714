-- checkout.sql: checkout sessions (SPEC §4). A subscription checkout links
-- the customer and the subscription to the user (no credits: they come with
-- the paid invoice); a paid credit-pack checkout grants the pack's credits to
-- the overage bucket, once per session; a failed asynchronous payment is
-- recorded.

-- checkout.session.completed, mode subscription: customer -> user, and the
-- subscription placed (sql/subscriptions.sql).
CREATE OR REPLACE FUNCTION paystream._checkout_subscription(p_user_id uuid, p_customer text,
                                                            p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v paystream.subscriptions;
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    v := paystream._account_lock(p_user_id);
    IF p_sub IS NULL THEN
        RETURN 'customer linked';
    END IF;
    PERFORM paystream._sub_record(v, p_sub, NULL, p_event_id);
    v := paystream._sub_sync(p_user_id, p_sub, p_customer, p_event_id);
    IF v.stripe_subscription_id <> p_sub THEN
        RETURN 'customer linked; subscription ' || p_sub || ' recorded (the current one is '
               || v.stripe_subscription_id || ' until its own events say otherwise)';
    END IF;
    RETURN 'customer and subscription linked';
END $$;

-- The rules in one call each (tools and tests; the worker: ps_apply_batch).
CREATE OR REPLACE FUNCTION paystream.ps_checkout_subscription(p_user_id uuid, p_customer text,
                                                              p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._checkout_subscription(p_user_id, p_customer, p_sub, p_event_id);
END $$;

-- The pack a session names, by id (metadata.credit_pack) or by its price
-- (metadata.price_id); an unknown one fails naming it.
CREATE OR REPLACE FUNCTION paystream._pack_find(p_pack_id text, p_price text)
RETURNS paystream.credit_packs
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v paystream.credit_packs;
BEGIN
    IF p_pack_id IS NOT NULL THEN
        SELECT * INTO v FROM paystream.credit_packs WHERE id = p_pack_id;
    ELSE
        SELECT * INTO v FROM paystream.credit_packs WHERE stripe_price_id = p_price;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown credit pack %: add it with paystreamctl plans load, then replay',
            coalesce(p_pack_id, 'with price ' || p_price, '(none named)')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END $$;

-- A paid credit-pack checkout: the pack's credits to the overage bucket,
-- once per checkout session; its payment intent and amount are kept for
-- refunds and disputes (sql/payments.sql).
CREATE OR REPLACE FUNCTION paystream._pack_paid(p_user_id uuid, p_session text, p_pack_id text,
                                     p_price text, p_payment_intent text, p_customer text,
                                     p_amount bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_pack paystream.credit_packs := paystream._pack_find(p_pack_id, p_price);
    v_status text;
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    PERFORM paystream._account_lock(p_user_id);
    SELECT status INTO v_status FROM paystream.pack_purchases
     WHERE checkout_session_id = p_session FOR UPDATE;
    IF v_status = 'granted' THEN
        RETURN 'nothing: session already granted';
    END IF;
    INSERT INTO paystream.pack_purchases AS p (checkout_session_id, user_id, pack_id, credits,
                                               payment_intent, amount, status, event_id)
    VALUES (p_session, p_user_id, v_pack.id, v_pack.credits, p_payment_intent, p_amount,
            'granted', p_event_id)
    ON CONFLICT (checkout_session_id) DO UPDATE
       SET status = 'granted',
           payment_intent = coalesce(EXCLUDED.payment_intent, p.payment_intent),
           amount = coalesce(EXCLUDED.amount, p.amount),
           event_id = EXCLUDED.event_id, updated_at = now();
    PERFORM paystream._ledger_add(p_user_id, 'overage', v_pack.credits, 'pack_grant', p_session,
                                  p_event_id, 'credit pack ' || v_pack.id);
    RETURN 'granted ' || v_pack.credits;
END $$;

-- checkout.session.async_payment_failed: recorded, no credits.
CREATE OR REPLACE FUNCTION paystream._pack_failed(p_user_id uuid, p_session text, p_pack_id text,
                                       p_price text, p_payment_intent text, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_pack paystream.credit_packs := paystream._pack_find(p_pack_id, p_price);
BEGIN
    INSERT INTO paystream.pack_purchases (checkout_session_id, user_id, pack_id, credits,
                                          payment_intent, status, event_id)
    VALUES (p_session, p_user_id, v_pack.id, v_pack.credits, p_payment_intent,
            'payment_failed', p_event_id)
    ON CONFLICT (checkout_session_id) DO NOTHING;
    RETURN 'payment failed recorded';
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_pack_paid(p_user_id uuid, p_session text,
                                                  p_pack_id text, p_price text,
                                                  p_payment_intent text, p_customer text,
                                                  p_amount bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._pack_paid(p_user_id, p_session, p_pack_id, p_price, p_payment_intent,
                                p_customer, p_amount, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_pack_failed(p_user_id uuid, p_session text,
                                                    p_pack_id text, p_price text,
                                                    p_payment_intent text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._pack_failed(p_user_id, p_session, p_pack_id, p_price, p_payment_intent,
                                  p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION
    paystream.ps_checkout_subscription(uuid, text, text, text),
    paystream.ps_pack_paid(uuid, text, text, text, text, text, bigint, text),
    paystream.ps_pack_failed(uuid, text, text, text, text, text)
TO paystream_worker;
