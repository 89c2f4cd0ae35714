-- 007_subscription_history.sql: events of a user's replaced subscriptions.
-- "subscriptions" holds one row per user, naming the user's current
-- subscription. Every subscription id ever seen is remembered here with its
-- user, its Stripe `created` (once a customer.subscription event told it) and
-- its latest state, so that an event of a subscription the row no longer
-- names is still matched instead of being retried into the dead letters.
--
-- The rule. A user's current subscription is the newest by (Stripe `created`,
-- subscription id) of all the user's subscriptions seen so far; its status,
-- final or not, does not matter. The current subscription therefore only ever
-- moves forward, whatever the order of delivery, and the same set of events
-- always ends on the same one: the newest. Moving forward expires the
-- leftover subscription credits of the one left behind (as 006 did), so an
-- invoice of A applied while A was current leaves nothing once B replaces A:
-- the balances are those of an order in which A's invoice came after B.
-- - An event of the current subscription applies as in 006.
-- - An event of an older subscription updates that subscription's own record
--   here (state events and failed payments, with the same newest-state rule
--   as the row), changes neither the user's row nor any balance, and is
--   recorded `skipped` with a note naming the subscription that replaced it.
--   Its invoices grant nothing.
-- - While the `created` of the event's subscription or of the current one is
--   unknown, whether one replaced the other cannot be told: a state event,
--   invoice or failed payment fails with SQLSTATE 55000 and is retried until
--   the customer.subscription event that carries it has been applied (Stripe
--   sends one for every subscription); a subscription checkout only records
--   the subscription. A user without a subscription takes the first one seen.
-- - A note starting with 'skipped: ' finishes the event as `skipped`.
-- Known limit: a newer subscription that ends (e.g. incomplete_expired) while
-- an older one is still live stays the current one; the older one's events
-- are skipped.
-- The table is written only by the SECURITY DEFINER worker functions; neither
-- role has a privilege on it (004), like every other table.

CREATE TABLE paystream.subscription_history (
    stripe_subscription_id text PRIMARY KEY,
    user_id                uuid NOT NULL,
    subscription_created   bigint,  -- Stripe's `created`, when known
    status                 text NOT NULL DEFAULT 'none' CHECK (status IN
        ('none', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due',
         'canceled', 'unpaid', 'paused')),
    -- ordering of its state, as on "subscriptions": the (created, rank, event id) that set it
    state_created          bigint,
    state_rank             integer,
    state_event_id         text,
    event_id               text,    -- the event that first named it
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_history_user_idx ON paystream.subscription_history (user_id);
REVOKE ALL ON paystream.subscription_history FROM PUBLIC;

INSERT INTO paystream.subscription_history (stripe_subscription_id, user_id,
                                            subscription_created, status, state_created,
                                            state_rank, state_event_id)
SELECT stripe_subscription_id, user_id, subscription_created, status, state_created, state_rank,
       state_event_id
  FROM paystream.subscriptions WHERE stripe_subscription_id IS NOT NULL;

-- ------------------------------------------------------------- helpers --

-- Remember p_sub for p_user_id (and its `created` when given); its stored
-- `created`. A subscription never moves to another user silently.
CREATE FUNCTION paystream._sub_remember(p_user_id uuid, p_sub text, p_sub_created bigint,
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
CREATE FUNCTION paystream._sub_record_state(p_sub text, p_status text, p_rank integer,
                                            p_event_created bigint, p_event_id text)
RETURNS void
LANGUAGE sql AS $$
    UPDATE paystream.subscription_history h
       SET status = p_status, state_created = p_event_created, state_rank = p_rank,
           state_event_id = p_event_id, updated_at = now()
     WHERE h.stripe_subscription_id = p_sub
       AND NOT paystream._status_final(h.status)
       AND (paystream._status_final(p_status) OR h.state_created IS NULL
            OR (p_event_created, p_rank, p_event_id)
               > (h.state_created, h.state_rank, h.state_event_id))
$$;

-- Lock the user's row and place p_sub by the rule above. role: 'current'
-- (the row names p_sub, possibly just now: moving to it expired the previous
-- subscription's leftover credits), 'replaced' (the row names a newer one)
-- or 'undecided' (a `created` is unknown). v is the row afterwards.
-- The usual case, an event of the current subscription, reads nothing else.
CREATE FUNCTION paystream._sub_place(p_user_id uuid, p_sub text, p_customer text,
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
CREATE FUNCTION paystream._sub_undecided(p_what text, p_sub text, p_current text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: cannot tell yet whether subscription % is newer than the user''s subscription %; waiting for their customer.subscription events',
        p_what, p_sub, p_current USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;

CREATE FUNCTION paystream._sub_replaced_note(p_sub text, p_current text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'skipped: subscription ' || p_sub || ' was replaced by ' || p_current
$$;

-- ---------------------------------------------------- the ledger rules --
-- 006's rules with _sub_place instead of _sub_attach; the entry points of
-- 006 call these by name and stay as they are.

CREATE OR REPLACE FUNCTION paystream._checkout_subscription(p_user_id uuid, p_customer text,
                                                            p_sub text, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    IF p_sub IS NULL THEN
        PERFORM paystream._account_lock(p_user_id);
        RETURN 'customer linked';
    END IF;
    a := paystream._sub_place(p_user_id, p_sub, p_customer, NULL, p_event_id);
    IF a.role = 'undecided' THEN
        RETURN 'customer linked; subscription ' || p_sub
               || ' recorded: its customer.subscription events tell whether it replaces '
               || (a.v).stripe_subscription_id;
    ELSIF a.role = 'replaced' THEN
        RETURN paystream._sub_replaced_note(p_sub, (a.v).stripe_subscription_id);
    END IF;
    RETURN 'customer and subscription linked';
END $$;

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

-- The period rule (SPEC 4), for the current subscription only.
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

DROP FUNCTION paystream._sub_attach(uuid, text, text, bigint, text);

-- ---------------------------------------------------------------- events --

-- 006's _event_finish; a note starting with 'skipped: ' (an event of a
-- replaced subscription) finishes the event as skipped, on both paths: the
-- ps_*_event entry points and the worker's own ps_event_finish.
CREATE OR REPLACE FUNCTION paystream._event_finish(p_event_id text, p_status text,
                                                   p_user_id uuid, p_note text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'bad final status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE paystream.webhook_events
       SET status = CASE WHEN starts_with(p_note, 'skipped: ') THEN 'skipped' ELSE p_status END,
           user_id = p_user_id, note = p_note, error = NULL, attempts = attempts + 1,
           processed_at = now()
     WHERE event_id = p_event_id;
END $$;

-- The user of a subscription the row no longer names is found here too.
CREATE OR REPLACE FUNCTION paystream.ps_resolve_user(p_customer text, p_subscription text)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN coalesce((SELECT user_id FROM paystream.customers
                      WHERE stripe_customer_id = p_customer),
                    (SELECT user_id FROM paystream.subscriptions
                      WHERE stripe_subscription_id = p_subscription),
                    (SELECT user_id FROM paystream.subscription_history
                      WHERE stripe_subscription_id = p_subscription));
END $$;

-- ---------------------------------------------------------- privileges --
REVOKE EXECUTE ON FUNCTION
    paystream._sub_remember(uuid, text, bigint, text),
    paystream._sub_record_state(text, text, integer, bigint, text),
    paystream._sub_place(uuid, text, text, bigint, text),
    paystream._sub_undecided(text, text, text),
    paystream._sub_replaced_note(text, text)
FROM PUBLIC;
