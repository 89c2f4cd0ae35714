-- subscriptions.sql: a user's subscriptions (SPEC §4): each one's record, the
-- plan its prices name, and which one is the user's current subscription.
--
-- Every subscription ever seen has a record (subscription_history): its user,
-- Stripe `created`, newest state (plan, status, period, trial end), whether it
-- ever went live (trialing or active), and its own credit account (the period
-- rule's credit period and allowance, sql/invoices.sql, and the credits it
-- holds while it is not current). The user's row (subscriptions) shows the
-- current subscription and holds the balances.
-- - The current subscription is the newest (created, then id) of those that
--   went live and are not final; if none is live, the newest that ever went
--   live; else the newest seen. One that never went live (incomplete, then
--   incomplete_expired) never takes over.
-- - When another subscription becomes current, the old one's leftover
--   subscription credits expire from the balance (a ledger row) and stay in
--   its record; should it become current again (the newer one ended), they
--   come back (subscription_restore). The final balance is therefore the
--   final current subscription's credits, whatever the order of delivery.
-- - An event of a subscription that is not current updates only its record
--   and is recorded `skipped` (a note starting with 'skipped: ', sql/batch.sql).
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

-- The plan lines among a subscription's items or an invoice's lines: the
-- plan of the line giving the most credits (the subscription's plan), X = the sum of each plan line's
-- credits × quantity, and the same for trial credits. Prices no plan has
-- (metered add-ons, one-off items) are ignored; when none is a plan, the
-- prices are named (an operator loads the plan's price and replays), unless
-- not p_required (then plan is NULL).
CREATE OR REPLACE FUNCTION paystream._plan_lines(p_prices text[], p_quantities integer[],
                                                 p_required boolean, OUT plan text,
                                                 OUT credits integer, OUT trial_credits integer)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF cardinality(p_prices) = 1 THEN  -- the usual subscription: one index read
        SELECT p.id, p.credits_per_period * greatest(coalesce(p_quantities[1], 1), 0),
               p.trial_credits * greatest(coalesce(p_quantities[1], 1), 0)
          INTO plan, credits, trial_credits
          FROM paystream.plan_prices pp JOIN paystream.plans p ON p.id = pp.plan_id
         WHERE pp.stripe_price_id = p_prices[1];
    ELSE
        SELECT (array_agg(p.id ORDER BY p.credits_per_period::bigint * greatest(coalesce(l.quantity, 1), 0)
                                        DESC, p.id))[1],
               sum(p.credits_per_period::bigint * greatest(coalesce(l.quantity, 1), 0)),
               sum(p.trial_credits::bigint * greatest(coalesce(l.quantity, 1), 0))
          INTO plan, credits, trial_credits
          FROM unnest(p_prices, p_quantities) AS l(price, quantity)
          JOIN paystream.plan_prices pp ON pp.stripe_price_id = l.price
          JOIN paystream.plans p ON p.id = pp.plan_id;
    END IF;
    IF plan IS NULL AND p_required THEN
        RAISE EXCEPTION 'unknown price%: no plan has % (add it with paystreamctl plans load, then replay)',
            CASE WHEN cardinality(p_prices) > 1 THEN 's ' ELSE ' ' END
                || coalesce(array_to_string(p_prices, ', '), '(none)'),
            CASE WHEN cardinality(p_prices) > 1 THEN 'any of them' ELSE 'this stripe_price_id' END
            USING ERRCODE = 'no_data_found';
    END IF;
END $$;

-- Remember p_sub for p_user_id (and its `created` when given): its record.
-- Its credit account (credit period, allowance, credits) is the user's row
-- while it is the current subscription (v), else its record's own. A
-- subscription never moves to another user silently. The caller holds the
-- user's row lock, which serialises every change of the user's records.
CREATE OR REPLACE FUNCTION paystream._sub_record(v paystream.subscriptions, p_sub text,
                                                 p_sub_created bigint, p_event_id text)
RETURNS paystream.subscription_history
LANGUAGE plpgsql AS $$
DECLARE
    h paystream.subscription_history;
BEGIN
    SELECT * INTO h FROM paystream.subscription_history WHERE stripe_subscription_id = p_sub;
    IF NOT FOUND THEN
        INSERT INTO paystream.subscription_history (stripe_subscription_id, user_id,
                                                    subscription_created, event_id)
        VALUES (p_sub, v.user_id, p_sub_created, p_event_id)
        ON CONFLICT (stripe_subscription_id) DO NOTHING;
        SELECT * INTO h FROM paystream.subscription_history WHERE stripe_subscription_id = p_sub;
    ELSIF h.subscription_created IS NULL AND p_sub_created IS NOT NULL
          AND h.user_id = v.user_id THEN
        UPDATE paystream.subscription_history SET subscription_created = p_sub_created
         WHERE stripe_subscription_id = p_sub RETURNING * INTO h;
    END IF;
    IF h.user_id <> v.user_id THEN
        RAISE EXCEPTION 'subscription % belongs to user %, but this event names user %',
            p_sub, h.user_id, v.user_id USING ERRCODE = 'unique_violation';
    END IF;
    IF v.stripe_subscription_id = p_sub THEN
        h.credit_period_end := v.credit_period_end;
        h.credits_total := v.credits_total;
        h.credits_held := v.credits_remaining;
    END IF;
    RETURN h;
END $$;

-- The user's row shows subscription c (and p_customer, when given); with
-- p_account, c's credit period and allowance too (c just became current).
CREATE OR REPLACE FUNCTION paystream._sub_show(p_user_id uuid, c paystream.subscription_history,
                                               p_customer text, p_account boolean)
RETURNS paystream.subscriptions
LANGUAGE plpgsql AS $$
DECLARE
    v paystream.subscriptions;
BEGIN
    UPDATE paystream.subscriptions
       SET stripe_subscription_id = c.stripe_subscription_id,
           stripe_customer_id = coalesce(p_customer, stripe_customer_id),
           subscription_created = c.subscription_created, plan = c.plan, status = c.status,
           current_period_start = c.current_period_start,
           current_period_end = c.current_period_end,
           cancel_at_period_end = c.cancel_at_period_end,
           credits_total = CASE WHEN p_account THEN c.credits_total ELSE credits_total END,
           credit_period_end = CASE WHEN p_account THEN c.credit_period_end
                                    ELSE credit_period_end END,
           state_created = c.state_created, state_rank = c.state_rank,
           state_event_id = c.state_event_id, updated_at = now()
     WHERE user_id = p_user_id
    RETURNING * INTO v;
    RETURN v;
END $$;

-- Make the user's row show its current subscription (the rule above), after
-- the record of p_changed changed: when that is another one than the row
-- shows, the old one's account (its leftover credits, a ledger row) goes to
-- its record and the new one's comes back from its record (its held
-- credits, a ledger row); the row takes the current one's state (and
-- p_customer, when given). The caller holds the row lock.
CREATE OR REPLACE FUNCTION paystream._sub_sync(p_user_id uuid, p_changed text, p_customer text,
                                               p_event_id text)
RETURNS paystream.subscriptions
LANGUAGE plpgsql AS $$
DECLARE
    v_moved integer;
    v paystream.subscriptions;
    c paystream.subscription_history;
    v_switch boolean;
BEGIN
    SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p_user_id;
    SELECT * INTO c FROM paystream.subscription_history h WHERE h.user_id = p_user_id
     ORDER BY (h.went_live AND NOT paystream._status_final(h.status)) DESC, h.went_live DESC,
              h.subscription_created DESC NULLS LAST, h.stripe_subscription_id DESC
     LIMIT 1;
    v_switch := v.stripe_subscription_id IS DISTINCT FROM c.stripe_subscription_id;
    IF NOT FOUND OR NOT (v_switch OR c.stripe_subscription_id = p_changed) THEN
        RETURN v;
    END IF;
    IF v_switch AND v.stripe_subscription_id IS NOT NULL THEN
        UPDATE paystream.subscription_history
           SET credits_held = v.credits_remaining, credit_period_end = v.credit_period_end,
               credits_total = v.credits_total
         WHERE stripe_subscription_id = v.stripe_subscription_id;
        v_moved := paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', v.stripe_subscription_id, p_event_id,
                                      'replaced by subscription ' || c.stripe_subscription_id);
    END IF;
    IF v_switch THEN
        v_moved := paystream._ledger_add(p_user_id, 'subscription', c.credits_held,
                                      'subscription_restore', c.stripe_subscription_id,
                                      p_event_id, 'subscription current again');
        UPDATE paystream.subscription_history SET credits_held = 0
         WHERE stripe_subscription_id = c.stripe_subscription_id AND credits_held <> 0;
    END IF;
    RETURN paystream._sub_show(p_user_id, c, p_customer, v_switch);
END $$;

-- Move the credits of subscription h's account by p_expire then p_grant,
-- and store its credit period and allowance: on the balance (ledger rows)
-- when h is current (v), in its record otherwise; returns that balance or
-- record's credits after. The caller holds the row lock.
CREATE OR REPLACE FUNCTION paystream._sub_credits(v paystream.subscriptions,
                                                  h paystream.subscription_history,
                                                  p_expire integer, p_grant integer,
                                                  p_kind text, p_reference text,
                                                  p_event_id text, p_description text,
                                                  p_period_end bigint, p_total integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_after integer;
BEGIN
    IF v.stripe_subscription_id = h.stripe_subscription_id THEN
        v_after := paystream._ledger_period(v.user_id, p_expire, p_grant, p_kind, p_reference,
                                            p_event_id, p_description, p_period_end, p_total);
    ELSE
        UPDATE paystream.subscription_history
           SET credit_period_end = p_period_end, credits_total = p_total,
               credits_held = credits_held + p_expire + p_grant
         WHERE stripe_subscription_id = h.stripe_subscription_id
        RETURNING credits_held INTO v_after;
    END IF;
    RETURN v_after;
END $$;

-- What a subscription that is not current says of its event.
CREATE OR REPLACE FUNCTION paystream._sub_replaced_note(p_sub text, p_current text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'skipped: subscription ' || p_sub || ' was replaced by ' || p_current
$$;

-- customer.subscription.created / .updated / .paused / .resumed / .deleted:
-- the subscription's state, unless newer state is stored (the subscription
-- went live all the same if it says so); reaching a final state expires its
-- credits (overage credits stay). A state showing a bigger plan for the
-- subscription's credit period tops its allowance up (Stripe's default
-- proration charges the upgrade only on the next invoice); a state never
-- opens a new period. Final states apply whatever the prices are.
CREATE OR REPLACE FUNCTION paystream._subscription_state(p_user_id uuid, p_sub text,
                                                         p_customer text, p_status text,
                                                         p_prices text[],
                                                         p_quantities integer[],
                                                         p_period_start bigint,
                                                         p_period_end bigint,
                                                         p_cancel_at_period_end boolean,
                                                         p_trial_end bigint,
                                                         p_sub_created bigint,
                                                         p_event_created bigint,
                                                         p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_moved integer;
    v paystream.subscriptions;
    h paystream.subscription_history;
    v_rank integer := paystream._status_rank(p_status);
    v_final boolean := paystream._status_final(p_status);
    v_plan text;
    v_credits integer;
    v_trial integer;
    v_note text;
    v_apply boolean := false;   -- the event's state is the newest
    v_shown boolean := false;   -- it shows the most credits yet for its period
    v_live boolean;             -- the subscription went live, now or before
    v_first boolean;            -- its first state: its Stripe `created` is learnt now
    x record;                   -- its plan lines (_plan_lines)
BEGIN
    IF v_rank < 0 THEN
        RAISE EXCEPTION 'unknown subscription status %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a final state applies whatever its prices are
    x := paystream._plan_lines(p_prices, p_quantities, NOT v_final);
    v_plan := x.plan;
    v_credits := x.credits;
    v_trial := x.trial_credits;
    v := paystream._account_open(p_user_id, p_customer, p_event_id);
    h := paystream._sub_record(v, p_sub, p_sub_created, p_event_id);
    v_first := h.state_created IS NULL;
    v_live := h.went_live OR p_status IN ('trialing', 'active');
    IF paystream._status_final(h.status) THEN
        v_note := 'ignored: subscription already ' || h.status;
    ELSIF NOT v_final AND h.state_created IS NOT NULL
          AND (p_event_created, v_rank, p_event_id)
              <= (h.state_created, h.state_rank, h.state_event_id) THEN
        v_note := 'ignored: older than the stored state';
    ELSE
        v_note := 'status ' || p_status;
        v_apply := true;
        h.status := p_status;
        h.plan := coalesce(v_plan, h.plan);
        h.plan_credits := coalesce(v_credits, h.plan_credits);
        h.plan_trial_credits := coalesce(v_trial, h.plan_trial_credits);
        h.current_period_start := to_timestamp(p_period_start);
        h.current_period_end := to_timestamp(p_period_end);
        h.cancel_at_period_end := coalesce(p_cancel_at_period_end, false);
        h.trial_end := p_trial_end;
        h.state_created := p_event_created;
        h.state_rank := v_rank;
        h.state_event_id := p_event_id;
    END IF;
    -- the upgrade rule, for any state, newest or not: the most credits the
    -- states showed for a period is kept (an invoice opening that period
    -- grants at least as much, sql/invoices.sql), and within the credit
    -- period the allowance only grows; so the order does not matter
    IF p_trial_end = p_period_end THEN
        v_credits := v_trial;
    END IF;
    IF v_credits IS NOT NULL AND p_period_end IS NOT NULL
       AND (h.shown_period_end IS NULL OR p_period_end > h.shown_period_end
            OR (p_period_end = h.shown_period_end AND v_credits > h.shown_credits)) THEN
        h.shown_period_end := p_period_end;
        h.shown_credits := v_credits;
        v_shown := true;
    END IF;
    IF v_apply OR v_shown OR v_live <> h.went_live THEN  -- one write of the record
        UPDATE paystream.subscription_history
           SET status = h.status, plan = h.plan, plan_credits = h.plan_credits,
               plan_trial_credits = h.plan_trial_credits,
               current_period_start = h.current_period_start,
               current_period_end = h.current_period_end,
               cancel_at_period_end = h.cancel_at_period_end, trial_end = h.trial_end,
               state_created = h.state_created, state_rank = h.state_rank,
               state_event_id = h.state_event_id, went_live = v_live,
               shown_period_end = h.shown_period_end, shown_credits = h.shown_credits,
               credits_held = CASE WHEN v_apply AND v_final THEN 0 ELSE credits_held END,
               updated_at = now()
         WHERE stripe_subscription_id = p_sub;
    END IF;
    IF v_apply AND v_final AND v.stripe_subscription_id = p_sub THEN
        v_moved := paystream._ledger_add(p_user_id, 'subscription', -v.credits_remaining,
                                      'subscription_expire', p_sub, p_event_id,
                                      'subscription ' || p_status);
    END IF;
    IF NOT paystream._status_final(h.status) AND h.credit_period_end = p_period_end
       AND v_credits > h.credits_total THEN
        v_moved := paystream._sub_credits(v, h, 0, v_credits - h.credits_total,
                                       'subscription_upgrade', p_event_id, p_event_id,
                                       'upgrade to plan ' || v_plan, h.credit_period_end,
                                       v_credits);
        v_note := v_note || '; upgraded by ' || (v_credits - h.credits_total);
    END IF;
    -- which subscription is current changes only with what orders them:
    -- going live, ending, or a `created` learnt
    IF v.stripe_subscription_id = p_sub AND NOT paystream._status_final(h.status) THEN
        IF v_apply THEN
            v := paystream._sub_show(p_user_id, h, p_customer, false);
        END IF;
    ELSIF v.stripe_subscription_id IS NULL OR v_live <> h.went_live OR (v_apply AND v_final)
          OR v_first THEN
        v := paystream._sub_sync(p_user_id, p_sub, p_customer, p_event_id);
    END IF;
    IF v.stripe_subscription_id <> p_sub THEN
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id) || ' (' || v_note
               || ')';
    END IF;
    RETURN v_note;
END $$;

-- invoice.payment_failed: recorded, no change of status or credits (only
-- subscription events set the status; Stripe sends one for what a failed
-- payment changes).
CREATE OR REPLACE FUNCTION paystream._invoice_payment_failed(p_user_id uuid, p_sub text,
                                                             p_customer text, p_invoice text,
                                                             p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_record paystream.subscription_history;
BEGIN
    v_record := paystream._sub_record(paystream._account_open(p_user_id, p_customer, p_event_id),
                                      p_sub, NULL, p_event_id);
    RETURN format('recorded: payment of invoice %s failed (the status comes from subscription %s''s events)',
                  p_invoice, p_sub);
END $$;

-- The user's current subscription, for the app (SPEC §5): no row when there
-- is none.
CREATE OR REPLACE FUNCTION paystream.get_subscription(p_user_id uuid)
RETURNS TABLE (plan text, status text, stripe_subscription_id text,
               current_period_start timestamptz, current_period_end timestamptz,
               cancel_at_period_end boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.plan, s.status::text, s.stripe_subscription_id, s.current_period_start,
           s.current_period_end, s.cancel_at_period_end
      FROM paystream.subscriptions s
     WHERE s.user_id = p_user_id AND s.stripe_subscription_id IS NOT NULL
$$;

-- The rules in one call each (tools and tests; the worker applies the same
-- rules through ps_apply_batch, sql/batch.sql).
CREATE OR REPLACE FUNCTION paystream.ps_subscription_state(p_user_id uuid, p_sub text,
                                                           p_customer text, p_status text,
                                                           p_prices text[],
                                                           p_quantities integer[],
                                                           p_period_start bigint,
                                                           p_period_end bigint,
                                                           p_cancel_at_period_end boolean,
                                                           p_trial_end bigint,
                                                           p_sub_created bigint,
                                                           p_event_created bigint,
                                                           p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._subscription_state(p_user_id, p_sub, p_customer, p_status, p_prices,
                                         p_quantities, p_period_start, p_period_end,
                                         p_cancel_at_period_end, p_trial_end, p_sub_created,
                                         p_event_created, p_event_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_invoice_payment_failed(p_user_id uuid, p_sub text,
                                                               p_customer text,
                                                               p_invoice text,
                                                               p_event_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._invoice_payment_failed(p_user_id, p_sub, p_customer, p_invoice,
                                             p_event_id);
END $$;

GRANT EXECUTE ON FUNCTION paystream.get_subscription(uuid) TO paystream_app;
GRANT EXECUTE ON FUNCTION
    paystream.ps_subscription_state(uuid, text, text, text, text[], integer[], bigint, bigint,
                                    boolean, bigint, bigint, bigint, text),
    paystream.ps_invoice_payment_failed(uuid, text, text, text, text)
TO paystream_worker;
