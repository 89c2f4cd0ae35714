-- 006_worker_fast.sql: the worker API of 003 and 005, same rules, less CPU.
-- Only what a role may call runs with a fixed search_path: the ps_* entry
-- points and the app API, all SECURITY DEFINER with `SET search_path`. The
-- internal helpers (_*) no longer SET it: each SET made every call save and
-- restore the GUC state and recompute the search path, and kept the
-- LANGUAGE sql helpers from being inlined. They cannot be reached with a
-- caller's search_path: nobody but the owner may EXECUTE them (004 and the
-- REVOKEs below), so they only ever run inside a SECURITY DEFINER caller's
-- fixed path, and every name in them is schema-qualified anyway.
-- The ledger rules of each event live in one internal function (_invoice_paid
-- etc.), called by two entry points: ps_invoice_paid as in 003, and
-- ps_invoice_paid_event, which also records the event (ps_event_open, unless
-- p_open is false because the worker already sent it) and finishes it
-- (ps_event_finish 'applied' with the returned note): one call per event.
-- Statements per event are fewer too: no UPDATE that changes nothing, no
-- re-read of a row the function already holds.

-- ------------------------------------------------------------- helpers --

CREATE OR REPLACE FUNCTION paystream._status_rank(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    -- same-second ties between state events: the later stage of a
    -- subscription's life wins; equal ranks fall back to the event id
    SELECT CASE p_status WHEN 'incomplete' THEN 0 WHEN 'trialing' THEN 1 WHEN 'active' THEN 2
                         WHEN 'past_due' THEN 3 WHEN 'unpaid' THEN 4 WHEN 'paused' THEN 5
                         WHEN 'incomplete_expired' THEN 9 WHEN 'canceled' THEN 9 ELSE -1 END
$$;

CREATE OR REPLACE FUNCTION paystream._status_final(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_status IN ('canceled', 'incomplete_expired')
$$;

-- Append one ledger row and move the bucket's balance by the same amount, in
-- one statement. The CHECK constraints make a negative balance an error,
-- never a state. The caller must hold the user's row lock (_account_lock).
CREATE OR REPLACE FUNCTION paystream._ledger_add(p_user_id uuid, p_bucket text,
                                                 p_amount integer, p_kind text,
                                                 p_reference text, p_event_id text,
                                                 p_description text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_after integer;
BEGIN
    IF p_amount = 0 THEN
        RETURN NULL;
    END IF;
    IF p_bucket IS NULL OR p_bucket NOT IN ('overage', 'subscription') THEN
        RAISE EXCEPTION 'unknown bucket %', p_bucket USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH moved AS (
        UPDATE paystream.subscriptions
           SET overage_credits = overage_credits
                                 + CASE WHEN p_bucket = 'overage' THEN p_amount ELSE 0 END,
               credits_remaining = credits_remaining
                                   + CASE WHEN p_bucket = 'subscription' THEN p_amount ELSE 0 END,
               updated_at = now()
         WHERE user_id = p_user_id
        RETURNING CASE WHEN p_bucket = 'overage' THEN overage_credits
                       ELSE credits_remaining END AS after)
    INSERT INTO paystream.credit_transactions (user_id, bucket, amount, kind, reference,
                                               event_id, description, balance_after)
    SELECT p_user_id, p_bucket, p_amount, p_kind, p_reference, p_event_id,
           coalesce(p_description, ''), moved.after
      FROM moved
    RETURNING balance_after INTO v_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no account for user %', p_user_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_after;
END $$;

-- Lock (creating if needed) the user's row; every balance change starts here.
CREATE OR REPLACE FUNCTION paystream._account_lock(p_user_id uuid)
RETURNS paystream.subscriptions
LANGUAGE plpgsql AS $$
DECLARE
    v paystream.subscriptions;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO paystream.subscriptions (user_id) VALUES (p_user_id)
            ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p_user_id FOR UPDATE;
    END IF;
    RETURN v;
END $$;

-- Remember customer -> user. A customer never moves to another user silently.
-- The mapping is usually there already: one lookup then.
CREATE OR REPLACE FUNCTION paystream._customer_link(p_customer text, p_user_id uuid,
                                                    p_event_id text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
BEGIN
    IF p_customer IS NULL THEN
        RETURN;
    END IF;
    SELECT user_id INTO v_user FROM paystream.customers WHERE stripe_customer_id = p_customer;
    IF NOT FOUND THEN
        INSERT INTO paystream.customers (stripe_customer_id, user_id, event_id)
        VALUES (p_customer, p_user_id, p_event_id) ON CONFLICT DO NOTHING;
        SELECT user_id INTO v_user FROM paystream.customers
         WHERE stripe_customer_id = p_customer;
    END IF;
    IF v_user <> p_user_id THEN
        RAISE EXCEPTION 'customer % belongs to user %, but this event names user %',
            p_customer, v_user, p_user_id USING ERRCODE = 'unique_violation';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION paystream._plan_for_price(p_price text) RETURNS paystream.plans
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v paystream.plans;
BEGIN
    SELECT * INTO v FROM paystream.plans WHERE stripe_price_id = p_price;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown price %: no plan has this stripe_price_id (add it with paystreamctl plans load, then replay)',
            coalesce(p_price, '(none)') USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v;
END $$;

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

-- Lock the user's row and make p_sub its current subscription when it may be
-- (003's _subscription_attach: the row has none, has this one, holds a final
-- one, or holds an older one by Stripe's `created`; switching expires the old
-- subscription's leftover credits). Returns the row as it is afterwards, with
-- attached false when it keeps another, live subscription.
CREATE FUNCTION paystream._sub_attach(p_user_id uuid, p_sub text, p_customer text,
                                      p_sub_created bigint, p_event_id text,
                                      OUT attached boolean, OUT v paystream.subscriptions)
LANGUAGE plpgsql AS $$
BEGIN
    v := paystream._account_lock(p_user_id);
    attached := true;
    IF v.stripe_subscription_id = p_sub THEN
        IF (v.subscription_created IS NULL AND p_sub_created IS NOT NULL)
           OR (v.stripe_customer_id IS NULL AND p_customer IS NOT NULL) THEN
            UPDATE paystream.subscriptions
               SET subscription_created = coalesce(subscription_created, p_sub_created),
                   stripe_customer_id = coalesce(stripe_customer_id, p_customer)
             WHERE user_id = p_user_id RETURNING * INTO v;
        END IF;
        RETURN;
    END IF;
    IF v.stripe_subscription_id IS NOT NULL AND NOT paystream._status_final(v.status)
       AND (p_sub_created IS NULL OR v.subscription_created IS NULL
            OR p_sub_created <= v.subscription_created) THEN
        attached := false;
        RETURN;
    END IF;
    IF v.stripe_subscription_id IS NOT NULL THEN
        PERFORM paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', v.stripe_subscription_id,
                                      p_event_id, 'replaced by subscription ' || p_sub);
    END IF;
    UPDATE paystream.subscriptions
       SET stripe_subscription_id = p_sub, subscription_created = p_sub_created,
           stripe_customer_id = coalesce(p_customer, stripe_customer_id), plan = NULL,
           status = 'none', current_period_start = NULL, current_period_end = NULL,
           cancel_at_period_end = false, credits_total = 0, credit_period_end = NULL,
           state_created = NULL, state_rank = NULL, state_event_id = NULL, updated_at = now()
     WHERE user_id = p_user_id RETURNING * INTO v;
END $$;

DROP FUNCTION paystream._subscription_attach(uuid, text, text, bigint, text);

-- ---------------------------------------------------------------- events --

-- Record the event id and lock its row: its status before this attempt.
-- A new event (the usual case) is one INSERT.
CREATE FUNCTION paystream._event_begin(p_event_id text, p_type text, p_livemode boolean,
                                       p_api_version text, p_created bigint, p_stream_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    INSERT INTO paystream.webhook_events AS w (event_id, type, livemode, api_version,
                                               event_created, stream_id, status)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id, 'retrying')
    ON CONFLICT (event_id) DO UPDATE
       SET livemode = coalesce(w.livemode, EXCLUDED.livemode),
           api_version = coalesce(w.api_version, EXCLUDED.api_version),
           event_created = coalesce(w.event_created, EXCLUDED.event_created)
     WHERE w.status NOT IN ('applied', 'skipped')
       AND (w.livemode IS NULL OR w.event_created IS NULL)
    RETURNING w.status INTO v_status;
    IF NOT FOUND THEN
        SELECT status INTO v_status FROM paystream.webhook_events
         WHERE event_id = p_event_id FOR UPDATE;
    END IF;
    RETURN v_status;
END $$;

-- _event_begin for a pipeline: raises PS001 for an event already applied or
-- skipped (005's ps_event_open).
CREATE FUNCTION paystream._event_open(p_event_id text, p_type text, p_livemode boolean,
                                      p_api_version text, p_created bigint, p_stream_id text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_status text := paystream._event_begin(p_event_id, p_type, p_livemode, p_api_version,
                                             p_created, p_stream_id);
BEGIN
    IF v_status IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'event % already %', p_event_id, v_status USING ERRCODE = 'PS001';
    END IF;
END $$;

CREATE FUNCTION paystream._event_finish(p_event_id text, p_status text, p_user_id uuid,
                                        p_note text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'bad final status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE paystream.webhook_events
       SET status = p_status, user_id = p_user_id, note = p_note, error = NULL,
           attempts = attempts + 1,
           processed_at = now()
     WHERE event_id = p_event_id;
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_event_begin(p_event_id text, p_type text,
                                                    p_livemode boolean, p_api_version text,
                                                    p_created bigint, p_stream_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._event_begin(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_event_open(p_event_id text, p_type text,
                                                   p_livemode boolean, p_api_version text,
                                                   p_created bigint, p_stream_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_event_finish(p_event_id text, p_status text,
                                                     p_user_id uuid, p_note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM paystream._event_finish(p_event_id, p_status, p_user_id, p_note);
END $$;

-- A LANGUAGE sql function is parsed again on every call; PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION paystream.ps_resolve_user(p_customer text, p_subscription text)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN coalesce((SELECT user_id FROM paystream.customers
                      WHERE stripe_customer_id = p_customer),
                    (SELECT user_id FROM paystream.subscriptions
                      WHERE stripe_subscription_id = p_subscription));
END $$;

-- ---------------------------------------------------- the ledger rules --
-- 003's rules, unchanged; see there for why each is so.

CREATE FUNCTION paystream._checkout_subscription(p_user_id uuid, p_customer text, p_sub text,
                                                 p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    IF p_sub IS NULL THEN
        PERFORM paystream._account_lock(p_user_id);
        RETURN 'customer linked';
    END IF;
    IF NOT (paystream._sub_attach(p_user_id, p_sub, p_customer, NULL, p_event_id)).attached THEN
        RETURN 'customer linked; user already has another live subscription';
    END IF;
    RETURN 'customer and subscription linked';
END $$;

CREATE FUNCTION paystream._subscription_state(p_user_id uuid, p_sub text, p_customer text,
                                              p_status text, p_price text,
                                              p_period_start bigint, p_period_end bigint,
                                              p_cancel_at_period_end boolean,
                                              p_sub_created bigint, p_event_created bigint,
                                              p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_plan paystream.plans;
    v_rank integer := paystream._status_rank(p_status);
BEGIN
    IF v_rank < 0 THEN
        RAISE EXCEPTION 'unknown subscription status %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_plan := paystream._plan_for_price(p_price);
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    a := paystream._sub_attach(p_user_id, p_sub, p_customer, p_sub_created, p_event_id);
    v := a.v;
    IF NOT a.attached THEN
        -- dropping the event is right only when p_sub is known to be the older
        -- one; while either `created` is unknown, retry
        IF p_sub_created IS NULL OR v.subscription_created IS NULL THEN
            RAISE EXCEPTION 'subscription %: cannot tell yet whether it is newer than the user''s live subscription %; waiting for %''s customer.subscription event',
                p_sub, v.stripe_subscription_id, v.stripe_subscription_id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN 'ignored: the user has a newer live subscription';
    END IF;
    IF paystream._status_final(v.status) THEN
        RETURN 'ignored: subscription already ' || v.status;
    END IF;
    IF NOT paystream._status_final(p_status) AND v.state_created IS NOT NULL
       AND (p_event_created, v_rank, p_event_id)
           <= (v.state_created, v.state_rank, v.state_event_id) THEN
        RETURN 'ignored: older than the stored state';
    END IF;
    UPDATE paystream.subscriptions
       SET status = p_status, plan = v_plan.id,
           current_period_start = to_timestamp(p_period_start),
           current_period_end = to_timestamp(p_period_end),
           cancel_at_period_end = coalesce(p_cancel_at_period_end, false),
           state_created = p_event_created, state_rank = v_rank, state_event_id = p_event_id,
           updated_at = now()
     WHERE user_id = p_user_id;
    IF paystream._status_final(p_status) THEN
        PERFORM paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', p_sub, p_event_id,
                                      'subscription ' || p_status);
    END IF;
    RETURN 'status ' || p_status;
END $$;

CREATE FUNCTION paystream._subscription_past_due(p_user_id uuid, p_sub text, p_customer text,
                                                 p_event_created bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_rank integer := paystream._status_rank('past_due');
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    a := paystream._sub_attach(p_user_id, p_sub, p_customer, NULL, p_event_id);
    IF NOT a.attached THEN
        RETURN 'ignored: not the user''s current subscription';
    END IF;
    v := a.v;
    IF paystream._status_final(v.status) OR (v.state_created IS NOT NULL AND
       (p_event_created, v_rank, p_event_id)
       <= (v.state_created, v.state_rank, v.state_event_id)) THEN
        RETURN 'ignored: newer state stored';
    END IF;
    UPDATE paystream.subscriptions
       SET status = 'past_due', state_created = p_event_created, state_rank = v_rank,
           state_event_id = p_event_id, updated_at = now()
     WHERE user_id = p_user_id;
    RETURN 'status past_due';
END $$;

-- The period rule (SPEC 4, 003's ps_invoice_paid). X is looked up once more
-- only when the invoice has several prices.
CREATE FUNCTION paystream._invoice_paid(p_user_id uuid, p_sub text, p_customer text,
                                        p_invoice text, p_prices text[], p_period_end bigint,
                                        p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_plan paystream.plans;
    v_price text;
BEGIN
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
    a := paystream._sub_attach(p_user_id, p_sub, p_customer, NULL, p_event_id);
    IF NOT a.attached THEN
        RAISE EXCEPTION 'invoice % is for subscription %, but the user''s current subscription is still live; waiting for %''s customer.subscription event',
            p_invoice, p_sub, p_sub USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v := a.v;
    IF paystream._status_final(v.status) THEN
        RETURN 'nothing: subscription ' || v.status;
    END IF;
    IF v.credit_period_end IS NULL OR p_period_end > v.credit_period_end THEN
        PERFORM paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', p_invoice, p_event_id,
                                      'period ended');
        PERFORM paystream._ledger_add(p_user_id, 'subscription', v_plan.credits_per_period,
                                      'subscription_grant', p_invoice, p_event_id,
                                      'plan ' || v_plan.id || ' period credits');
        UPDATE paystream.subscriptions SET credit_period_end = p_period_end,
                                           credits_total = v_plan.credits_per_period
         WHERE user_id = p_user_id;
        RETURN 'granted ' || v_plan.credits_per_period;
    END IF;
    IF p_period_end = v.credit_period_end AND v_plan.credits_per_period > v.credits_total THEN
        PERFORM paystream._ledger_add(p_user_id, 'subscription',
                                      v_plan.credits_per_period - v.credits_total,
                                      'subscription_upgrade', p_invoice, p_event_id,
                                      'upgrade to plan ' || v_plan.id);
        UPDATE paystream.subscriptions SET credits_total = v_plan.credits_per_period
         WHERE user_id = p_user_id;
        RETURN 'upgraded by ' || (v_plan.credits_per_period - v.credits_total);
    END IF;
    RETURN 'nothing: period already granted';
END $$;

CREATE FUNCTION paystream._pack_paid(p_user_id uuid, p_session text, p_pack_id text,
                                     p_price text, p_payment_intent text, p_customer text,
                                     p_event_id text)
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
                                               payment_intent, status, event_id)
    VALUES (p_session, p_user_id, v_pack.id, v_pack.credits, p_payment_intent, 'granted',
            p_event_id)
    ON CONFLICT (checkout_session_id) DO UPDATE
       SET status = 'granted',
           payment_intent = coalesce(EXCLUDED.payment_intent, p.payment_intent),
           event_id = EXCLUDED.event_id, updated_at = now();
    PERFORM paystream._ledger_add(p_user_id, 'overage', v_pack.credits, 'pack_grant', p_session,
                                  p_event_id, 'credit pack ' || v_pack.id);
    RETURN 'granted ' || v_pack.credits;
END $$;

CREATE FUNCTION paystream._pack_failed(p_user_id uuid, p_session text, p_pack_id text,
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

CREATE OR REPLACE FUNCTION paystream.ps_charge_refunded(p_charge text, p_payment_intent text,
                                                        p_amount bigint,
                                                        p_amount_refunded bigint,
                                                        p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- ------------------------------------------------------- entry points --
-- ps_X: as in 003. ps_X_event: the event's open (when p_open), X, and its
-- finish as 'applied' with X's note, in one call. The event id is X's own
-- p_event_id.

CREATE OR REPLACE FUNCTION paystream.ps_checkout_subscription(p_user_id uuid, p_customer text,
                                                              p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._checkout_subscription(p_user_id, p_customer, p_sub, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_subscription_state(p_user_id uuid, p_sub text,
                                                           p_customer text, p_status text,
                                                           p_price text, p_period_start bigint,
                                                           p_period_end bigint,
                                                           p_cancel_at_period_end boolean,
                                                           p_sub_created bigint,
                                                           p_event_created bigint,
                                                           p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._subscription_state(p_user_id, p_sub, p_customer, p_status, p_price,
                                         p_period_start, p_period_end, p_cancel_at_period_end,
                                         p_sub_created, p_event_created, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_subscription_past_due(p_user_id uuid, p_sub text,
                                                              p_customer text,
                                                              p_event_created bigint,
                                                              p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._subscription_past_due(p_user_id, p_sub, p_customer, p_event_created,
                                            p_event_id);
END $$;

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

CREATE OR REPLACE FUNCTION paystream.ps_pack_paid(p_user_id uuid, p_session text,
                                                  p_pack_id text, p_price text,
                                                  p_payment_intent text, p_customer text,
                                                  p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._pack_paid(p_user_id, p_session, p_pack_id, p_price, p_payment_intent,
                                p_customer, p_event_id);
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

CREATE FUNCTION paystream.ps_checkout_subscription_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_customer text, p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._checkout_subscription(p_user_id, p_customer, p_sub, p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

CREATE FUNCTION paystream.ps_subscription_state_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_sub text, p_customer text, p_status text,
    p_price text, p_period_start bigint, p_period_end bigint, p_cancel_at_period_end boolean,
    p_sub_created bigint, p_event_created bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._subscription_state(p_user_id, p_sub, p_customer, p_status, p_price,
                                            p_period_start, p_period_end,
                                            p_cancel_at_period_end, p_sub_created,
                                            p_event_created, p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

CREATE FUNCTION paystream.ps_subscription_past_due_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_sub text, p_customer text, p_event_created bigint,
    p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._subscription_past_due(p_user_id, p_sub, p_customer, p_event_created,
                                               p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

CREATE FUNCTION paystream.ps_invoice_paid_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_sub text, p_customer text, p_invoice text,
    p_prices text[], p_period_end bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._invoice_paid(p_user_id, p_sub, p_customer, p_invoice, p_prices,
                                      p_period_end, p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

CREATE FUNCTION paystream.ps_pack_paid_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_session text, p_pack_id text, p_price text,
    p_payment_intent text, p_customer text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._pack_paid(p_user_id, p_session, p_pack_id, p_price, p_payment_intent,
                                   p_customer, p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

CREATE FUNCTION paystream.ps_pack_failed_event(
    p_open boolean, p_type text, p_livemode boolean, p_api_version text, p_created bigint,
    p_stream_id text, p_user_id uuid, p_session text, p_pack_id text, p_price text,
    p_payment_intent text, p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_note text;
BEGIN
    IF p_open THEN
        PERFORM paystream._event_open(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                      p_stream_id);
    END IF;
    v_note := paystream._pack_failed(p_user_id, p_session, p_pack_id, p_price,
                                     p_payment_intent, p_event_id);
    PERFORM paystream._event_finish(p_event_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

-- ---------------------------------------------------------- privileges --
-- Whoever runs this migration, nobody but the owner may call a helper.
REVOKE EXECUTE ON FUNCTION
    paystream._sub_attach(uuid, text, text, bigint, text),
    paystream._event_begin(text, text, boolean, text, bigint, text),
    paystream._event_open(text, text, boolean, text, bigint, text),
    paystream._event_finish(text, text, uuid, text),
    paystream._checkout_subscription(uuid, text, text, text),
    paystream._subscription_state(uuid, text, text, text, text, bigint, bigint, boolean, bigint,
                                  bigint, text),
    paystream._subscription_past_due(uuid, text, text, bigint, text),
    paystream._invoice_paid(uuid, text, text, text, text[], bigint, text),
    paystream._pack_paid(uuid, text, text, text, text, text, text),
    paystream._pack_failed(uuid, text, text, text, text, text),
    paystream.ps_checkout_subscription_event(boolean, text, boolean, text, bigint, text, uuid,
                                             text, text, text),
    paystream.ps_subscription_state_event(boolean, text, boolean, text, bigint, text, uuid, text,
                                          text, text, text, bigint, bigint, boolean, bigint,
                                          bigint, text),
    paystream.ps_subscription_past_due_event(boolean, text, boolean, text, bigint, text, uuid,
                                             text, text, bigint, text),
    paystream.ps_invoice_paid_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                    text, text[], bigint, text),
    paystream.ps_pack_paid_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                 text, text, text, text),
    paystream.ps_pack_failed_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                   text, text, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    paystream.ps_checkout_subscription_event(boolean, text, boolean, text, bigint, text, uuid,
                                             text, text, text),
    paystream.ps_subscription_state_event(boolean, text, boolean, text, bigint, text, uuid, text,
                                          text, text, text, bigint, bigint, boolean, bigint,
                                          bigint, text),
    paystream.ps_subscription_past_due_event(boolean, text, boolean, text, bigint, text, uuid,
                                             text, text, bigint, text),
    paystream.ps_invoice_paid_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                    text, text[], bigint, text),
    paystream.ps_pack_paid_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                 text, text, text, text),
    paystream.ps_pack_failed_event(boolean, text, boolean, text, bigint, text, uuid, text, text,
                                   text, text, text)
TO paystream_worker;
