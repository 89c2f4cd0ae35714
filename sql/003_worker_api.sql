-- 003_worker_api.sql: what the worker calls to apply Stripe events (SPEC
-- sections 3 and 4). The worker parses the event in C and calls one of these
-- inside the event's transaction; the rules that keep balances independent of
-- delivery order live here, next to the data they guard.
-- Lock order, everywhere: the user's subscriptions row first (_account_lock),
-- then any pack_purchases row.

CREATE FUNCTION paystream._status_rank(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    -- same-second ties between state events: the later stage of a
    -- subscription's life wins; equal ranks fall back to the event id
    SELECT CASE p_status WHEN 'incomplete' THEN 0 WHEN 'trialing' THEN 1 WHEN 'active' THEN 2
                         WHEN 'past_due' THEN 3 WHEN 'unpaid' THEN 4 WHEN 'paused' THEN 5
                         WHEN 'incomplete_expired' THEN 9 WHEN 'canceled' THEN 9 ELSE -1 END
$$;

CREATE FUNCTION paystream._status_final(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p_status IN ('canceled', 'incomplete_expired')
$$;

-- ---------------------------------------------------------------- events --

-- First statement of every event transaction. Returns the event's status:
-- 'applied' or 'skipped' mean "already done, change nothing"; anything else
-- means apply it now. The row lock serialises two workers on one event.
CREATE FUNCTION paystream.ps_event_begin(p_event_id text, p_type text, p_livemode boolean,
                                         p_api_version text, p_created bigint, p_stream_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_status text;
BEGIN
    INSERT INTO webhook_events AS w (event_id, type, livemode, api_version, event_created,
                                     stream_id, status)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id, 'retrying')
    ON CONFLICT (event_id) DO UPDATE
       SET livemode = coalesce(w.livemode, EXCLUDED.livemode),
           api_version = coalesce(w.api_version, EXCLUDED.api_version),
           event_created = coalesce(w.event_created, EXCLUDED.event_created)
     WHERE w.status NOT IN ('applied', 'skipped')
       AND (w.livemode IS NULL OR w.event_created IS NULL);
    SELECT status INTO v_status FROM webhook_events WHERE event_id = p_event_id FOR UPDATE;
    RETURN v_status;
END $$;

-- Last statement of a successful event transaction.
CREATE FUNCTION paystream.ps_event_finish(p_event_id text, p_status text, p_user_id uuid,
                                          p_note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
BEGIN
    IF p_status NOT IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'bad final status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE webhook_events
       SET status = p_status, user_id = p_user_id, note = p_note, error = NULL,
           attempts = attempts + 1,
           processed_at = now()
     WHERE event_id = p_event_id;
END $$;

-- Record a failed attempt, in its own transaction after the rollback.
-- p_final marks the event dead-lettered. Never downgrades a done event.
CREATE FUNCTION paystream.ps_event_failed(p_event_id text, p_type text, p_livemode boolean,
                                          p_api_version text, p_created bigint,
                                          p_stream_id text, p_error text, p_attempts integer,
                                          p_final boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
BEGIN
    INSERT INTO webhook_events AS w (event_id, type, livemode, api_version, event_created,
                                     stream_id, status, attempts, error, processed_at)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id,
            CASE WHEN p_final THEN 'failed' ELSE 'retrying' END, greatest(p_attempts, 1),
            p_error, now())
    ON CONFLICT (event_id) DO UPDATE
       SET status = EXCLUDED.status, error = EXCLUDED.error, processed_at = now(),
           attempts = greatest(w.attempts + 1, EXCLUDED.attempts),
           stream_id = coalesce(EXCLUDED.stream_id, w.stream_id)
     WHERE w.status NOT IN ('applied', 'skipped');
END $$;

-- ------------------------------------------------------------- customers --

-- Who a Stripe customer or subscription belongs to, from what earlier events
-- stored. NULL when unknown.
CREATE FUNCTION paystream.ps_resolve_user(p_customer text, p_subscription text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
    SELECT coalesce((SELECT user_id FROM customers WHERE stripe_customer_id = p_customer),
                    (SELECT user_id FROM subscriptions
                      WHERE stripe_subscription_id = p_subscription))
$$;

-- Remember customer -> user. A customer never moves to another user silently.
CREATE FUNCTION paystream._customer_link(p_customer text, p_user_id uuid, p_event_id text)
RETURNS void
LANGUAGE plpgsql SET search_path = paystream, pg_temp AS $$
DECLARE
    v_user uuid;
BEGIN
    IF p_customer IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO customers (stripe_customer_id, user_id, event_id)
    VALUES (p_customer, p_user_id, p_event_id) ON CONFLICT DO NOTHING;
    SELECT user_id INTO v_user FROM customers WHERE stripe_customer_id = p_customer;
    IF v_user <> p_user_id THEN
        RAISE EXCEPTION 'customer % belongs to user %, but this event names user %',
            p_customer, v_user, p_user_id USING ERRCODE = 'unique_violation';
    END IF;
END $$;

-- Make p_sub the user's current subscription when it may be: the row has
-- none, has this one, holds a final one, or holds an older one (by Stripe's
-- `created`). Switching expires the old subscription's leftover credits.
-- Returns false when the row keeps another, live subscription.
CREATE FUNCTION paystream._subscription_attach(p_user_id uuid, p_sub text, p_customer text,
                                               p_sub_created bigint, p_event_id text)
RETURNS boolean
LANGUAGE plpgsql SET search_path = paystream, pg_temp AS $$
DECLARE
    v subscriptions;
BEGIN
    v := _account_lock(p_user_id);
    IF v.stripe_subscription_id = p_sub THEN
        UPDATE subscriptions
           SET subscription_created = coalesce(subscription_created, p_sub_created),
               stripe_customer_id = coalesce(stripe_customer_id, p_customer)
         WHERE user_id = p_user_id;
        RETURN true;
    END IF;
    IF v.stripe_subscription_id IS NOT NULL AND NOT _status_final(v.status)
       AND (p_sub_created IS NULL OR v.subscription_created IS NULL
            OR p_sub_created <= v.subscription_created) THEN
        RETURN false;
    END IF;
    IF v.stripe_subscription_id IS NOT NULL THEN
        PERFORM _ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                            'subscription_expire', v.stripe_subscription_id, p_event_id,
                            'replaced by subscription ' || p_sub);
    END IF;
    UPDATE subscriptions
       SET stripe_subscription_id = p_sub, subscription_created = p_sub_created,
           stripe_customer_id = coalesce(p_customer, stripe_customer_id), plan = NULL,
           status = 'none', current_period_start = NULL, current_period_end = NULL,
           cancel_at_period_end = false, credits_total = 0, credit_period_end = NULL,
           state_created = NULL, state_rank = NULL, state_event_id = NULL, updated_at = now()
     WHERE user_id = p_user_id;
    RETURN true;
END $$;

-- checkout.session.completed, mode subscription: customer -> user, and link.
CREATE FUNCTION paystream.ps_checkout_subscription(p_user_id uuid, p_customer text,
                                                   p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
BEGIN
    PERFORM _customer_link(p_customer, p_user_id, p_event_id);
    IF p_sub IS NULL THEN
        PERFORM _account_lock(p_user_id);
        RETURN 'customer linked';
    END IF;
    IF NOT _subscription_attach(p_user_id, p_sub, p_customer, NULL, p_event_id) THEN
        RETURN 'customer linked; user already has another live subscription';
    END IF;
    RETURN 'customer and subscription linked';
END $$;

-- --------------------------------------------------------- subscriptions --

CREATE FUNCTION paystream._plan_for_price(p_price text) RETURNS paystream.plans
LANGUAGE plpgsql STABLE SET search_path = paystream, pg_temp AS $$
DECLARE
    v plans;
BEGIN
    SELECT * INTO v FROM plans WHERE stripe_price_id = p_price;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown price %: no plan has this stripe_price_id (add it with paystreamctl plans load, then replay)',
            coalesce(p_price, '(none)') USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END $$;

-- customer.subscription.created / .updated / .deleted.
-- An older event never overwrites newer state: states are ordered by
-- (event created, status rank, event id); canceled and incomplete_expired are
-- final and win over anything. Reaching a final state expires the remaining
-- subscription credits; overage credits stay.
CREATE FUNCTION paystream.ps_subscription_state(p_user_id uuid, p_sub text, p_customer text,
                                                p_status text, p_price text,
                                                p_period_start bigint, p_period_end bigint,
                                                p_cancel_at_period_end boolean,
                                                p_sub_created bigint, p_event_created bigint,
                                                p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v subscriptions;
    v_plan plans;
    v_rank integer := _status_rank(p_status);
BEGIN
    IF v_rank < 0 THEN
        RAISE EXCEPTION 'unknown subscription status %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_plan := _plan_for_price(p_price);
    PERFORM _customer_link(p_customer, p_user_id, p_event_id);
    IF NOT _subscription_attach(p_user_id, p_sub, p_customer, p_sub_created, p_event_id) THEN
        -- dropping the event is right only when p_sub is known to be the older
        -- one; when either `created` is still unknown (the row's subscription
        -- came from an invoice or checkout), retry until its own
        -- customer.subscription event has told us
        SELECT * INTO v FROM subscriptions WHERE user_id = p_user_id;
        IF p_sub_created IS NULL OR v.subscription_created IS NULL THEN
            RAISE EXCEPTION 'subscription %: cannot tell yet whether it is newer than the user''s live subscription %; waiting for %''s customer.subscription event',
                p_sub, v.stripe_subscription_id, v.stripe_subscription_id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN 'ignored: the user has a newer live subscription';
    END IF;
    SELECT * INTO v FROM subscriptions WHERE user_id = p_user_id;
    IF _status_final(v.status) THEN
        RETURN 'ignored: subscription already ' || v.status;
    END IF;
    IF NOT _status_final(p_status) AND v.state_created IS NOT NULL
       AND (p_event_created, v_rank, p_event_id) <= (v.state_created, v.state_rank, v.state_event_id) THEN
        RETURN 'ignored: older than the stored state';
    END IF;
    UPDATE subscriptions
       SET status = p_status, plan = v_plan.id,
           current_period_start = to_timestamp(p_period_start),
           current_period_end = to_timestamp(p_period_end),
           cancel_at_period_end = coalesce(p_cancel_at_period_end, false),
           state_created = p_event_created, state_rank = v_rank, state_event_id = p_event_id,
           updated_at = now()
     WHERE user_id = p_user_id;
    IF _status_final(p_status) THEN
        PERFORM _ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                            'subscription_expire', p_sub, p_event_id, 'subscription ' || p_status);
    END IF;
    RETURN 'status ' || p_status;
END $$;

-- invoice.payment_failed: past_due unless newer state says otherwise.
CREATE FUNCTION paystream.ps_subscription_past_due(p_user_id uuid, p_sub text, p_customer text,
                                                   p_event_created bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v subscriptions;
    v_rank integer := _status_rank('past_due');
BEGIN
    PERFORM _customer_link(p_customer, p_user_id, p_event_id);
    IF NOT _subscription_attach(p_user_id, p_sub, p_customer, NULL, p_event_id) THEN
        RETURN 'ignored: not the user''s current subscription';
    END IF;
    SELECT * INTO v FROM subscriptions WHERE user_id = p_user_id;
    IF _status_final(v.status) OR (v.state_created IS NOT NULL AND
       (p_event_created, v_rank, p_event_id) <= (v.state_created, v.state_rank, v.state_event_id)) THEN
        RETURN 'ignored: newer state stored';
    END IF;
    UPDATE subscriptions
       SET status = 'past_due', state_created = p_event_created, state_rank = v_rank,
           state_event_id = p_event_id, updated_at = now()
     WHERE user_id = p_user_id;
    RETURN 'status past_due';
END $$;

-- -------------------------------------------------------------- invoices --

-- invoice.paid / invoice.payment_succeeded, by the period rule (SPEC 4):
-- a period is named by its end P; newer P replaces the allowance (leftover
-- expires), the same P with a larger plan tops it up (upgrade), anything else
-- changes nothing. This is what makes balances independent of order and of
-- duplicates.
-- p_prices are the prices of the invoice's subscription lines for period P
-- (an upgrade's proration invoice has several); the largest plan among them
-- is X. Every one of them must be a known plan.
CREATE FUNCTION paystream.ps_invoice_paid(p_user_id uuid, p_sub text, p_customer text,
                                          p_invoice text, p_prices text[], p_period_end bigint,
                                          p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v subscriptions;
    v_plan plans;
    v_price text;
BEGIN
    IF p_prices IS NULL OR cardinality(p_prices) = 0 THEN
        RAISE EXCEPTION 'invoice % has no subscription line with a price', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_price IN ARRAY p_prices LOOP
        v_plan := _plan_for_price(v_price);
    END LOOP;
    SELECT * INTO v_plan FROM plans WHERE stripe_price_id = ANY (p_prices)
     ORDER BY credits_per_period DESC, id LIMIT 1;
    IF p_period_end IS NULL THEN
        RAISE EXCEPTION 'invoice % has no subscription line period end', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM _customer_link(p_customer, p_user_id, p_event_id);
    IF NOT _subscription_attach(p_user_id, p_sub, p_customer, NULL, p_event_id) THEN
        RAISE EXCEPTION 'invoice % is for subscription %, but the user''s current subscription is still live; waiting for %''s customer.subscription event',
            p_invoice, p_sub, p_sub USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO v FROM subscriptions WHERE user_id = p_user_id;
    IF _status_final(v.status) THEN
        RETURN 'nothing: subscription ' || v.status;
    END IF;
    IF v.credit_period_end IS NULL OR p_period_end > v.credit_period_end THEN
        PERFORM _ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                            'subscription_expire', p_invoice, p_event_id, 'period ended');
        PERFORM _ledger_add(p_user_id, 'subscription', v_plan.credits_per_period,
                            'subscription_grant', p_invoice, p_event_id,
                            'plan ' || v_plan.id || ' period credits');
        UPDATE subscriptions SET credit_period_end = p_period_end,
                                 credits_total = v_plan.credits_per_period
         WHERE user_id = p_user_id;
        RETURN 'granted ' || v_plan.credits_per_period;
    END IF;
    IF p_period_end = v.credit_period_end AND v_plan.credits_per_period > v.credits_total THEN
        PERFORM _ledger_add(p_user_id, 'subscription', v_plan.credits_per_period - v.credits_total,
                            'subscription_upgrade', p_invoice, p_event_id,
                            'upgrade to plan ' || v_plan.id);
        UPDATE subscriptions SET credits_total = v_plan.credits_per_period
         WHERE user_id = p_user_id;
        RETURN 'upgraded by ' || (v_plan.credits_per_period - v.credits_total);
    END IF;
    RETURN 'nothing: period already granted';
END $$;

-- ----------------------------------------------------------- credit packs --

CREATE FUNCTION paystream._pack_find(p_pack_id text, p_price text) RETURNS paystream.credit_packs
LANGUAGE plpgsql STABLE SET search_path = paystream, pg_temp AS $$
DECLARE
    v credit_packs;
BEGIN
    IF p_pack_id IS NOT NULL THEN
        SELECT * INTO v FROM credit_packs WHERE id = p_pack_id;
    ELSE
        SELECT * INTO v FROM credit_packs WHERE stripe_price_id = p_price;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown credit pack %: add it with paystreamctl plans load, then replay',
            coalesce(p_pack_id, 'with price ' || p_price, '(none named)')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END $$;

-- A paid credit-pack checkout: the pack's credits to the overage bucket,
-- once per checkout session.
CREATE FUNCTION paystream.ps_pack_paid(p_user_id uuid, p_session text, p_pack_id text,
                                       p_price text, p_payment_intent text, p_customer text,
                                       p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_pack credit_packs := _pack_find(p_pack_id, p_price);
    v_status text;
BEGIN
    PERFORM _customer_link(p_customer, p_user_id, p_event_id);
    PERFORM _account_lock(p_user_id);
    SELECT status INTO v_status FROM pack_purchases WHERE checkout_session_id = p_session
       FOR UPDATE;
    IF v_status = 'granted' THEN
        RETURN 'nothing: session already granted';
    END IF;
    INSERT INTO pack_purchases AS p (checkout_session_id, user_id, pack_id, credits,
                                     payment_intent, status, event_id)
    VALUES (p_session, p_user_id, v_pack.id, v_pack.credits, p_payment_intent, 'granted',
            p_event_id)
    ON CONFLICT (checkout_session_id) DO UPDATE
       SET status = 'granted', payment_intent = coalesce(EXCLUDED.payment_intent, p.payment_intent),
           event_id = EXCLUDED.event_id, updated_at = now();
    PERFORM _ledger_add(p_user_id, 'overage', v_pack.credits, 'pack_grant', p_session,
                        p_event_id, 'credit pack ' || v_pack.id);
    RETURN 'granted ' || v_pack.credits;
END $$;

-- checkout.session.async_payment_failed: recorded, no credits.
CREATE FUNCTION paystream.ps_pack_failed(p_user_id uuid, p_session text, p_pack_id text,
                                         p_price text, p_payment_intent text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_pack credit_packs := _pack_find(p_pack_id, p_price);
BEGIN
    INSERT INTO pack_purchases (checkout_session_id, user_id, pack_id, credits, payment_intent,
                                status, event_id)
    VALUES (p_session, p_user_id, v_pack.id, v_pack.credits, p_payment_intent, 'payment_failed',
            p_event_id)
    ON CONFLICT (checkout_session_id) DO NOTHING;
    RETURN 'payment failed recorded';
END $$;

-- charge.refunded of a credit pack: take back the refunded share
-- (amount_refunded / amount, cumulative) of the pack's credits from the
-- overage bucket, never below zero; what cannot be taken is recorded.
-- Returns NULL when no pack purchase has this payment intent.
CREATE FUNCTION paystream.ps_charge_refunded(p_charge text, p_payment_intent text,
                                             p_amount bigint, p_amount_refunded bigint,
                                             p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_user uuid;
    v subscriptions;
    p pack_purchases;
    v_due integer;
    v_take integer;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount_refunded IS NULL OR p_amount_refunded < 0
       OR p_amount_refunded > p_amount THEN
        RAISE EXCEPTION 'charge %: bad amounts (amount %, amount_refunded %)', p_charge,
            p_amount, p_amount_refunded USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT user_id INTO v_user FROM pack_purchases
     WHERE payment_intent = p_payment_intent AND status = 'granted';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v := _account_lock(v_user);
    SELECT * INTO p FROM pack_purchases WHERE payment_intent = p_payment_intent FOR UPDATE;
    v_due := (p.credits::bigint * p_amount_refunded / p_amount)::integer;
    IF v_due <= p.refund_due THEN
        RETURN 'nothing: refund already taken into account';
    END IF;
    v_take := least(v_due - p.refund_due, v.overage_credits);
    PERFORM _ledger_add(v_user, 'overage', -v_take, 'pack_refund', p_charge, p_event_id,
                        'refund of credit pack ' || p.pack_id);
    UPDATE pack_purchases
       SET refund_due = v_due, refund_taken = refund_taken + v_take,
           refund_uncollected = refund_uncollected + (v_due - p.refund_due - v_take),
           updated_at = now()
     WHERE checkout_session_id = p.checkout_session_id;
    RETURN format('took back %s of %s credits', v_take, v_due - p.refund_due);
END $$;
