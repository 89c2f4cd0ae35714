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
    v_record paystream.subscription_history;
    v paystream.subscriptions;
BEGIN
    v := paystream._account_open(p_user_id, p_customer, p_event_id);
    IF p_sub IS NULL THEN
        RETURN 'customer linked';
    END IF;
    v_record := paystream._sub_record(v, p_sub, NULL, p_event_id);
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

-- Paid credit-pack checkouts: each pack's credits to the overage bucket, once
-- per checkout session; the payment intent and amount are kept for refunds
-- and disputes (sql/payments.sql). Set-based: element i of the arrays is one
-- checkout (sessions distinct), and each step is one statement for all of
-- them, so that a worker's batch of pack purchases costs a few statements in
-- all (ps_apply_batch; a single checkout is _pack_paid's). A step that fails
-- for one checkout fails the call with the error that checkout alone gives.
-- Result: each checkout's note, by its event. Each table is read by key, one
-- probe per checkout (a scalar subquery, or the locked rows' ctids), never
-- by a join: the plans are made once per session (force_generic_plan in
-- ps_apply_batch) and must stay index or TID scans however small the tables
-- were then.
CREATE OR REPLACE FUNCTION paystream._packs_paid(p_users uuid[], p_sessions text[],
                                                 p_packs text[], p_prices text[],
                                                 p_intents text[], p_customers text[],
                                                 p_amounts bigint[], p_events text[])
RETURNS TABLE (event_id text, note text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ids text[];       -- the pack of each checkout
    v_credits integer[];
    v_missing integer;  -- the first checkout naming no known pack
    v_bad record;
    v_all boolean;      -- every account was there
    v_tids tid[];       -- where the locked accounts are
    v_granted text[];   -- the sessions granted now
BEGIN
    SELECT array_agg(p.id ORDER BY c.k), array_agg(p.credits ORDER BY c.k),
           min(c.k) FILTER (WHERE p.id IS NULL)
      INTO v_ids, v_credits, v_missing
      FROM unnest(p_packs, p_prices) WITH ORDINALITY AS c(pack, price, k)
      LEFT JOIN paystream.credit_packs p
        ON p.id = c.pack OR (c.pack IS NULL AND p.stripe_price_id = c.price);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'unknown credit pack %: add it with paystreamctl plans load, then replay',
            coalesce(p_packs[v_missing], 'with price ' || p_prices[v_missing], '(none named)')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF array_position(p_users, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- customer -> user (as _customer_link does, for all): usually every
    -- mapping is there, and the first look finds that
    FOR v_look IN 1..2 LOOP
        SELECT count(*) FILTER (WHERE c.owner IS NULL) AS missing,
               min(c.k) FILTER (WHERE c.owner <> c.usr) AS k,
               (array_agg(c.owner ORDER BY c.k) FILTER (WHERE c.owner <> c.usr))[1] AS owner
          INTO v_bad
          FROM (SELECT u.usr, u.k, (SELECT m.user_id FROM paystream.customers m
                                     WHERE m.stripe_customer_id = u.customer) AS owner
                  FROM unnest(p_customers, p_users) WITH ORDINALITY AS u(customer, usr, k)
                 WHERE u.customer IS NOT NULL) c;
        EXIT WHEN v_bad.missing = 0 OR v_look = 2;
        INSERT INTO paystream.customers (stripe_customer_id, user_id, event_id)
        SELECT DISTINCT ON (c.customer) c.customer, c.usr, c.event_id
          FROM unnest(p_customers, p_users, p_events) WITH ORDINALITY
               AS c(customer, usr, event_id, k)
         WHERE c.customer IS NOT NULL
         ORDER BY c.customer, c.k
        ON CONFLICT DO NOTHING;
    END LOOP;
    IF v_bad.k IS NOT NULL THEN
        RAISE EXCEPTION 'customer % belongs to user %, but this event names user %',
            p_customers[v_bad.k], v_bad.owner, p_users[v_bad.k] USING ERRCODE = 'unique_violation';
    END IF;
    -- the accounts, locked in the order the checkouts first name them: the
    -- order applying them one by one would lock them in (as _account_lock)
    FOR v_look IN 1..2 LOOP
        SELECT array_agg(l.tid), count(l.tid) = count(*) INTO v_tids, v_all
          FROM (SELECT x.u, min(x.k) AS first FROM unnest(p_users) WITH ORDINALITY AS x(u, k)
                 GROUP BY x.u ORDER BY first) d
          LEFT JOIN LATERAL (SELECT s.ctid AS tid FROM paystream.subscriptions s
                              WHERE s.user_id = d.u FOR UPDATE) l ON true;
        EXIT WHEN v_all OR v_look = 2;
        INSERT INTO paystream.subscriptions (user_id)
        SELECT x.u FROM unnest(p_users) WITH ORDINALITY AS x(u, k)
         GROUP BY x.u ORDER BY min(x.k)
        ON CONFLICT (user_id) DO NOTHING;
    END LOOP;
    -- once per session: a session granted before grants nothing
    WITH up AS (
        INSERT INTO paystream.pack_purchases AS p (checkout_session_id, user_id, pack_id,
                                                   credits, payment_intent, amount, status,
                                                   event_id)
        SELECT c.session, c.usr, c.pack, c.credits, c.intent, c.amount, 'granted', c.event_id
          FROM unnest(p_sessions, p_users, v_ids, v_credits, p_intents, p_amounts, p_events)
               WITH ORDINALITY AS c(session, usr, pack, credits, intent, amount, event_id, k)
         ORDER BY c.k
        ON CONFLICT (checkout_session_id) DO UPDATE
           SET status = 'granted',
               payment_intent = coalesce(EXCLUDED.payment_intent, p.payment_intent),
               amount = coalesce(EXCLUDED.amount, p.amount),
               event_id = EXCLUDED.event_id, updated_at = now()
         WHERE p.status <> 'granted'
        RETURNING p.checkout_session_id)
    SELECT coalesce(array_agg(up.checkout_session_id), '{}') INTO v_granted FROM up;
    -- the grants: each user's balance moved once, a ledger row per checkout
    -- with the balance after it, in the checkouts' order (as _ledger_add)
    WITH g AS (
        SELECT c.* FROM unnest(p_users, p_sessions, v_ids, v_credits, p_events)
                        WITH ORDINALITY AS c(usr, session, pack, credits, event_id, k)
         WHERE c.session = ANY (v_granted)),
    t AS (SELECT g.usr, sum(g.credits)::integer AS total FROM g GROUP BY g.usr),
    moved AS (
        UPDATE paystream.subscriptions s
           SET overage_credits = s.overage_credits + (SELECT t.total FROM t WHERE t.usr = s.user_id),
               updated_at = now()
         WHERE s.ctid = ANY (v_tids) AND s.user_id IN (SELECT t.usr FROM t)
        RETURNING s.user_id, s.overage_credits AS after)
    INSERT INTO paystream.credit_transactions (user_id, bucket, amount, kind, reference,
                                               event_id, description, balance_after)
    SELECT g.usr, 'overage', g.credits, 'pack_grant', g.session, g.event_id,
           'credit pack ' || g.pack,
           m.after - coalesce(sum(g.credits) OVER (PARTITION BY g.usr ORDER BY g.k
                                                   ROWS BETWEEN 1 FOLLOWING
                                                            AND UNBOUNDED FOLLOWING), 0)
      FROM g JOIN moved m ON m.user_id = g.usr
     ORDER BY g.k;
    RETURN QUERY
        SELECT c.event_id, CASE WHEN c.session = ANY (v_granted) THEN 'granted ' || c.credits
                                ELSE 'nothing: session already granted' END
          FROM unnest(p_events, p_sessions, v_credits) WITH ORDINALITY AS c(event_id, session,
                                                                             credits, k)
         ORDER BY c.k;
END $$;

-- One paid credit-pack checkout: the same steps, one statement each. Keeping
-- it apart from _packs_paid costs a second copy of the rule (test_sql_batch
-- holds them to the same rows) and saves a single checkout most of the cost
-- of the set-based one: its arrays, and a result set.
CREATE OR REPLACE FUNCTION paystream._pack_paid(p_user_id uuid, p_session text, p_pack_id text,
                                     p_price text, p_payment_intent text, p_customer text,
                                     p_amount bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_pack paystream.credit_packs := paystream._pack_find(p_pack_id, p_price);
    v_account paystream.subscriptions;
    v_status text;
    v_moved integer;
BEGIN
    v_account := paystream._account_open(p_user_id, p_customer, p_event_id);
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
    v_moved := paystream._ledger_add(p_user_id, 'overage', v_pack.credits, 'pack_grant',
                                     p_session, p_event_id, 'credit pack ' || v_pack.id);
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
