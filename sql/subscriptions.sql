-- subscriptions.sql: a user's subscriptions (SPEC §4): their state, the
-- plan a price names, and which subscription is the user's current one.
--
-- The user's row ("subscriptions") names the current subscription; every
-- subscription ever seen is in subscription_history with its user, its Stripe
-- `created` (once a customer.subscription event told it) and its latest
-- state, so that an event of a subscription the row no longer names is still
-- matched instead of being retried into the dead letters.
-- - The current subscription is the newest by (Stripe `created`, id) of all
--   seen. It only moves forward, so the same set of events always ends on the
--   same one; moving forward expires the leftover subscription credits of the
--   one left behind (a ledger row).
-- - An event of the current subscription applies by the rules below.
-- - An event of an older subscription updates only that subscription's record
--   (its state, by the same newest-state rule as the row), changes no
--   balance, and is recorded `skipped` with a note naming the subscription
--   that replaced it: a note starting with 'skipped: ' finishes an event as
--   `skipped` (sql/batch.sql).
-- - While the `created` of the event's subscription or of the current one is
--   unknown, which is newer cannot be told: a state event, invoice or failed
--   payment fails with SQLSTATE 55000 and is retried until the
--   customer.subscription event that carries it has been applied.
-- State order: an older event never overwrites newer state. States are
-- ordered by (event created, status rank, event id); canceled and
-- incomplete_expired are final and win over anything.

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

-- The plan a Stripe price names; an unknown price fails naming it (an
-- operator adds it and replays).
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

-- Remember p_sub for p_user_id (and its `created` when given); its stored
-- `created`. A subscription never moves to another user silently.
CREATE OR REPLACE FUNCTION paystream._sub_remember(p_user_id uuid, p_sub text, p_sub_created bigint,
                                        p_event_id text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
    v_created bigint;
BEGIN
    INSERT INTO paystream.subscription_history AS h (stripe_subscription_id, user_id,
                                                     subscription_created, event_id)
    VALUES (p_sub, p_user_id, p_sub_created, p_event_id)
    ON CONFLICT (stripe_subscription_id) DO UPDATE
       SET subscription_created = coalesce(h.subscription_created, EXCLUDED.subscription_created),
           updated_at = now()
    RETURNING h.user_id, h.subscription_created INTO v_user, v_created;
    IF v_user <> p_user_id THEN
        RAISE EXCEPTION 'subscription % belongs to user %, but this event names user %',
            p_sub, v_user, p_user_id USING ERRCODE = 'unique_violation';
    END IF;
    RETURN v_created;
END $$;

-- Store a state of p_sub in its record unless a newer one is there (the
-- row's rule: final states are final, else (created, rank, event id) wins).
-- PL/pgSQL rather than LANGUAGE sql: it keeps the UPDATE's plan.
CREATE OR REPLACE FUNCTION paystream._sub_record_state(p_sub text, p_status text,
                                                       p_rank integer,
                                                       p_event_created bigint,
                                                       p_event_id text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE paystream.subscription_history h
       SET status = p_status, state_created = p_event_created, state_rank = p_rank,
           state_event_id = p_event_id, updated_at = now()
     WHERE h.stripe_subscription_id = p_sub
       AND NOT paystream._status_final(h.status)
       AND (paystream._status_final(p_status) OR h.state_created IS NULL
            OR (p_event_created, p_rank, p_event_id)
               > (h.state_created, h.state_rank, h.state_event_id));
END $$;

-- Lock the user's row and place p_sub by the rule above. role: 'current'
-- (the row names p_sub, possibly just now: moving to it expired the previous
-- subscription's leftover credits), 'replaced' (the row names a newer one)
-- or 'undecided' (a `created` is unknown). v is the row afterwards.
-- The usual case, an event of the current subscription, reads nothing else.
CREATE OR REPLACE FUNCTION paystream._sub_place(p_user_id uuid, p_sub text, p_customer text,
                                     p_sub_created bigint, p_event_id text,
                                     OUT role text, OUT v paystream.subscriptions)
LANGUAGE plpgsql AS $$
DECLARE
    v_created bigint;
    v_cur_created bigint;
BEGIN
    v := paystream._account_lock(p_user_id);
    role := 'current';
    IF v.stripe_subscription_id = p_sub THEN
        IF (v.subscription_created IS NULL AND p_sub_created IS NOT NULL)
           OR (v.stripe_customer_id IS NULL AND p_customer IS NOT NULL) THEN
            v_created := paystream._sub_remember(p_user_id, p_sub, p_sub_created, p_event_id);
            UPDATE paystream.subscriptions
               SET subscription_created = v_created,
                   stripe_customer_id = coalesce(stripe_customer_id, p_customer)
             WHERE user_id = p_user_id RETURNING * INTO v;
        END IF;
        RETURN;
    END IF;
    v_created := paystream._sub_remember(p_user_id, p_sub, p_sub_created, p_event_id);
    IF v.stripe_subscription_id IS NOT NULL THEN
        v_cur_created := coalesce(v.subscription_created,
                                  (SELECT subscription_created FROM paystream.subscription_history
                                    WHERE stripe_subscription_id = v.stripe_subscription_id));
        IF v_created IS NULL OR v_cur_created IS NULL THEN
            role := 'undecided';
            RETURN;
        END IF;
        IF (v_created, p_sub) < (v_cur_created, v.stripe_subscription_id) THEN
            role := 'replaced';
            RETURN;
        END IF;
        PERFORM paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', v.stripe_subscription_id,
                                      p_event_id, 'replaced by subscription ' || p_sub);
    END IF;
    UPDATE paystream.subscriptions
       SET stripe_subscription_id = p_sub, subscription_created = v_created,
           stripe_customer_id = coalesce(p_customer, stripe_customer_id), plan = NULL,
           status = 'none', current_period_start = NULL, current_period_end = NULL,
           cancel_at_period_end = false, credits_total = 0, credit_period_end = NULL,
           state_created = NULL, state_rank = NULL, state_event_id = NULL, updated_at = now()
     WHERE user_id = p_user_id RETURNING * INTO v;
END $$;

-- The 55000 error of an event that must wait for a subscription's `created`.
CREATE OR REPLACE FUNCTION paystream._sub_undecided(p_what text, p_sub text, p_current text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: cannot tell yet whether subscription % is newer than the user''s subscription %; waiting for their customer.subscription events',
        p_what, p_sub, p_current USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;

CREATE OR REPLACE FUNCTION paystream._sub_replaced_note(p_sub text, p_current text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'skipped: subscription ' || p_sub || ' was replaced by ' || p_current
$$;

-- customer.subscription.created / .updated / .deleted: status, plan, period
-- and cancel_at_period_end of the current subscription, unless newer state
-- is stored. Reaching a final state expires the remaining subscription
-- credits; overage credits stay.
CREATE OR REPLACE FUNCTION paystream._subscription_state(p_user_id uuid, p_sub text,
                                              p_customer text, p_status text,
                                              p_price text, p_period_start bigint,
                                              p_period_end bigint,
                                              p_cancel_at_period_end boolean,
                                              p_sub_created bigint,
                                              p_event_created bigint,
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
    a := paystream._sub_place(p_user_id, p_sub, p_customer, p_sub_created, p_event_id);
    v := a.v;
    IF a.role = 'undecided' THEN
        PERFORM paystream._sub_undecided('subscription ' || p_sub, p_sub,
                                         v.stripe_subscription_id);
    END IF;
    PERFORM paystream._sub_record_state(p_sub, p_status, v_rank, p_event_created, p_event_id);
    IF a.role = 'replaced' THEN
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id);
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

-- invoice.payment_failed: past_due unless newer state says otherwise.
CREATE OR REPLACE FUNCTION paystream._subscription_past_due(p_user_id uuid, p_sub text,
                                                 p_customer text,
                                                 p_event_created bigint,
                                                 p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_rank integer := paystream._status_rank('past_due');
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    a := paystream._sub_place(p_user_id, p_sub, p_customer, NULL, p_event_id);
    v := a.v;
    IF a.role = 'undecided' THEN
        PERFORM paystream._sub_undecided('failed payment of subscription ' || p_sub, p_sub,
                                         v.stripe_subscription_id);
    END IF;
    PERFORM paystream._sub_record_state(p_sub, 'past_due', v_rank, p_event_created, p_event_id);
    IF a.role = 'replaced' THEN
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id);
    END IF;
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

-- The worker's entry points of one call each (tools and tests; the worker
-- applies the same rules through ps_apply_batch, sql/batch.sql).
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

GRANT EXECUTE ON FUNCTION
    paystream.ps_subscription_state(uuid, text, text, text, text, bigint, bigint, boolean,
                                    bigint, bigint, text),
    paystream.ps_subscription_past_due(uuid, text, text, bigint, text)
TO paystream_worker;
