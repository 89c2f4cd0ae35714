-- 005_worker_fast.sql: the worker API of 003, same rules, less CPU per event;
-- batches of events in one transaction; events of a user's replaced
-- subscriptions (subscription_history); one write of each event's row.
--
-- search_path. Only what a role may call runs with a fixed search_path: the
-- ps_* entry points and the app API, all SECURITY DEFINER with `SET
-- search_path`. The internal helpers (_*) do not SET it: each SET made every
-- call save and restore the GUC state and recompute the search path, and kept
-- the LANGUAGE sql helpers from being inlined. They cannot be reached with a
-- caller's search_path: nobody but the owner may EXECUTE them (004 and the
-- REVOKEs at the end), so they only ever run inside a SECURITY DEFINER
-- caller's fixed path, and every name in them is schema-qualified anyway.
-- Statements per event are few: no UPDATE that changes nothing, no re-read of
-- a row the function already holds.
--
-- One call per event. The ledger rules of each event live in one internal
-- function (_invoice_paid etc.), called by two entry points: ps_invoice_paid
-- as in 003, and ps_invoice_paid_event, which also checks the event
-- (_event_open, unless p_open is false because the worker already sent it)
-- and writes its row with the returned note (_event_done 'applied').
--
-- Batches and duplicates: SQLSTATE PS001. A worker applies several events in
-- one transaction (one savepoint each) with few round trips. ps_event_open is
-- ps_event_begin for a pipeline: instead of returning the event's status for
-- the worker to look at before it sends the handler's statements, it raises
-- when the event is already done, so that the worker can send the event's
-- statements in one flight and the server skips the rest of them. SQLSTATE
-- PS001 means "already applied or skipped: change nothing".
--
-- One write of the event row. In a batch, an event's webhook_events row is
-- written once, with its final status, instead of INSERT 'retrying' at open
-- and UPDATE at finish (the UPDATE was never HOT: `status` is in a partial
-- index). _event_open (and so ps_event_open) only reads: it raises PS001 when
-- the event is already applied or skipped, and writes nothing. _event_done
-- writes the row once: INSERT, or, over a 'retrying'/'failed' row of earlier
-- attempts, UPDATE (attempts counted, error cleared).
-- Two workers applying the same event at once: the second one's INSERT waits
-- on the unique key for the first one's COMMIT, then finds the row applied
-- and raises PS001; the whole call (ledger work included) is undone with it,
-- and the worker rolls the event back to its savepoint and reports it as a
-- duplicate. If the first one rolls back instead, the second one's INSERT
-- goes through.
-- p_open of the ps_*_event entry points says whether to check the event
-- first; the event's fields (p_type ... p_stream_id) are always needed: the
-- write inserts them. The one-event transaction writes the row at
-- ps_event_begin and updates it at ps_event_finish, which raises when there
-- is no row to finish.
--
-- subscription_history: events of a user's replaced subscriptions.
-- "subscriptions" holds one row per user, naming the user's current
-- subscription. Every subscription id ever seen is remembered in
-- subscription_history with its user, its Stripe `created` (once a
-- customer.subscription event told it) and its latest state, so that an event
-- of a subscription the row no longer names is still matched instead of being
-- retried into the dead letters.
-- The rule. A user's current subscription is the newest by (Stripe `created`,
-- subscription id) of all the user's subscriptions seen so far; its status,
-- final or not, does not matter. The current subscription therefore only ever
-- moves forward, whatever the order of delivery, and the same set of events
-- always ends on the same one: the newest. Moving forward expires the
-- leftover subscription credits of the one left behind, so an invoice of A
-- applied while A was current leaves nothing once B replaces A: the balances
-- are those of an order in which A's invoice came after B.
-- - An event of the current subscription applies by the rules of 003.
-- - An event of an older subscription updates that subscription's own record
--   in subscription_history (state events and failed payments, with the same
--   newest-state rule as the row), changes neither the user's row nor any
--   balance, and is recorded `skipped` with a note naming the subscription
--   that replaced it. Its invoices grant nothing.
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

-- -------------------------------------------------- subscription_history --

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

-- 003's _subscription_attach, replaced by _sub_place.
DROP FUNCTION paystream._subscription_attach(uuid, text, text, bigint, text);

-- --------------------------------------------- placing a subscription --

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

-- _event_begin for a pipeline, reading only: raises PS001 for an event
-- already applied or skipped, and writes nothing.
CREATE FUNCTION paystream._event_open(p_event_id text, p_type text,
                                      p_livemode boolean, p_api_version text,
                                      p_created bigint, p_stream_id text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM paystream.webhook_events WHERE event_id = p_event_id;
    IF v_status IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'event % already %', p_event_id, v_status USING ERRCODE = 'PS001';
    END IF;
END $$;

-- The one write of a batched event's row, with its final status (a note
-- starting with 'skipped: ' makes it `skipped`). PS001 when another worker
-- applied the event meanwhile.
CREATE FUNCTION paystream._event_done(p_event_id text, p_type text, p_livemode boolean,
                                      p_api_version text, p_created bigint, p_stream_id text,
                                      p_status text, p_user_id uuid, p_note text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_status text := CASE WHEN starts_with(p_note, 'skipped: ') THEN 'skipped' ELSE p_status END;
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'bad final status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO paystream.webhook_events AS w (event_id, type, livemode, api_version,
                                               event_created, stream_id, status, attempts,
                                               user_id, note, processed_at)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id, v_status, 1,
            p_user_id, p_note, now())
    ON CONFLICT (event_id) DO UPDATE
       SET status = EXCLUDED.status, user_id = EXCLUDED.user_id, note = EXCLUDED.note,
           error = NULL, attempts = w.attempts + 1, processed_at = now(),
           livemode = coalesce(w.livemode, EXCLUDED.livemode),
           api_version = coalesce(w.api_version, EXCLUDED.api_version),
           event_created = coalesce(w.event_created, EXCLUDED.event_created),
           stream_id = coalesce(EXCLUDED.stream_id, w.stream_id)
     WHERE w.status NOT IN ('applied', 'skipped');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % already applied by another worker', p_event_id
            USING ERRCODE = 'PS001';
    END IF;
END $$;

-- Finish the one-event transaction whose ps_event_begin wrote the row: a
-- missing row is an error, never a silent no-op. A note starting with
-- 'skipped: ' (an event of a replaced subscription) finishes the event as
-- skipped.
CREATE FUNCTION paystream._event_finish(p_event_id text, p_status text,
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
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % was not begun', p_event_id USING ERRCODE = 'no_data_found';
    END IF;
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

CREATE FUNCTION paystream.ps_event_open(p_event_id text, p_type text,
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

CREATE FUNCTION paystream.ps_event_done(p_event_id text, p_type text, p_livemode boolean,
                                        p_api_version text, p_created bigint,
                                        p_stream_id text, p_status text, p_user_id uuid,
                                        p_note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, p_status, p_user_id, p_note);
END $$;

-- A LANGUAGE sql function is parsed again on every call; PL/pgSQL keeps the
-- plan. The user of a subscription the row no longer names is found in
-- subscription_history too.
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

-- ---------------------------------------------------- the ledger rules --
-- 003's rules, unchanged (see there for why each is so), with the event's
-- subscription placed by the subscription_history rule (_sub_place).

CREATE FUNCTION paystream._checkout_subscription(p_user_id uuid, p_customer text,
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

CREATE FUNCTION paystream._subscription_state(p_user_id uuid, p_sub text,
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

CREATE FUNCTION paystream._subscription_past_due(p_user_id uuid, p_sub text,
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

-- The period rule (SPEC 4, 003's ps_invoice_paid), for the current
-- subscription only. X is looked up once more only when the invoice has
-- several prices.
CREATE FUNCTION paystream._invoice_paid(p_user_id uuid, p_sub text, p_customer text,
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
-- ps_X: as in 003. ps_X_event: check the event (when p_open), X, and the one
-- write of the event's row as 'applied' with X's note, in one call. The
-- event id is X's own p_event_id.

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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
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
    PERFORM paystream._event_done(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id, 'applied', p_user_id, v_note);
    RETURN v_note;
END $$;

-- ---------------------------------------------------------- privileges --
-- Whoever runs this migration, nobody but the owner may call a helper.
REVOKE EXECUTE ON FUNCTION
    paystream._event_begin(text, text, boolean, text, bigint, text),
    paystream._event_open(text, text, boolean, text, bigint, text),
    paystream._event_finish(text, text, uuid, text),
    paystream._event_done(text, text, boolean, text, bigint, text, text, uuid, text),
    paystream._sub_remember(uuid, text, bigint, text),
    paystream._sub_record_state(text, text, integer, bigint, text),
    paystream._sub_place(uuid, text, text, bigint, text),
    paystream._sub_undecided(text, text, text),
    paystream._sub_replaced_note(text, text),
    paystream._checkout_subscription(uuid, text, text, text),
    paystream._subscription_state(uuid, text, text, text, text, bigint, bigint, boolean, bigint,
                                  bigint, text),
    paystream._subscription_past_due(uuid, text, text, bigint, text),
    paystream._invoice_paid(uuid, text, text, text, text[], bigint, text),
    paystream._pack_paid(uuid, text, text, text, text, text, text),
    paystream._pack_failed(uuid, text, text, text, text, text),
    paystream.ps_event_done(text, text, boolean, text, bigint, text, text, uuid, text),
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
    paystream.ps_event_open(text, text, boolean, text, bigint, text),
    paystream.ps_event_done(text, text, boolean, text, bigint, text, text, uuid, text),
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
