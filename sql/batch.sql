-- batch.sql: the worker's entry point. ps_apply_batch applies a worker's
-- read of events (up to 64, one row each of type paystream.batch_event) in
-- one statement, in the order given, each under its own savepoint (a
-- PL/pgSQL block with an EXCEPTION clause is one): an event that fails rolls
-- back alone and is reported with its error, the others stand.
--
-- Result, one row per input row, in order: k (1-based), status ('applied',
-- 'skipped', 'duplicate' or 'failed'), the user, the note, and for a failed
-- event its SQLSTATE and message. An event already applied or skipped
-- (before this call or earlier in it) is a duplicate and changes nothing.
-- The rows of the events that applied or were skipped are written in one
-- INSERT at the end; when another worker applied one of them meanwhile, that
-- INSERT waits for its COMMIT and the whole call fails with SQLSTATE PS001
-- (the worker then applies the events one per call, where that one is a
-- duplicate). A deadlock or a serialization failure fails the whole call too.

-- One event's rule, by the row's `rule`: its note (a note starting with
-- 'skipped: ' makes the event skipped). p_user is the row's user or the one
-- found for it.
CREATE OR REPLACE FUNCTION paystream._batch_rule(e paystream.batch_event, p_user uuid)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    CASE e.rule
    WHEN 'invoice_paid' THEN
        RETURN paystream._invoice_paid(p_user, e.subscription, e.customer, e.invoice, e.prices,
                                       e.quantities, e.lines_charged, e.period_end,
                                       e.payment_intent, e.amount, e.event_id);
    WHEN 'subscription_state' THEN
        RETURN paystream._subscription_state(p_user, e.subscription, e.customer, e.sub_status,
                                             e.prices, e.quantities, e.period_start,
                                             e.period_end, e.cancel_at_period_end, e.trial_end,
                                             e.sub_created, e.created, e.event_id);
    WHEN 'invoice_payment_failed' THEN
        RETURN paystream._invoice_payment_failed(p_user, e.subscription, e.customer, e.invoice,
                                                 e.event_id);
    WHEN 'checkout_subscription' THEN
        RETURN paystream._checkout_subscription(p_user, e.customer, e.subscription, e.event_id);
    WHEN 'pack_paid' THEN
        RETURN paystream._pack_paid(p_user, e.session, e.pack_id, e.price, e.payment_intent,
                                    e.customer, e.amount, e.event_id);
    WHEN 'pack_failed' THEN
        RETURN paystream._pack_failed(p_user, e.session, e.pack_id, e.price, e.payment_intent,
                                      e.event_id);
    -- the payment rules (_batch_by_payment) are given no user
    WHEN 'charge_refunded' THEN
        RETURN paystream._charge_refunded(e.charge, e.payment_intent, e.invoice, e.amount,
                                          e.amount_refunded, e.event_id);
    WHEN 'charge_dispute' THEN
        RETURN paystream._charge_dispute(e.dispute, e.charge, e.payment_intent, e.amount,
                                         e.dispute_status, e.created, e.event_id);
    WHEN 'invoice_payment_paid' THEN
        RETURN paystream._invoice_payment(e.invoice, e.payment_intent, e.amount, e.event_id);
    ELSE
        RAISE EXCEPTION 'unknown batch rule %', e.rule USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;

-- Write the rows of the events that applied or were skipped, once each, and
-- delete their waiting rows; PS001 when one was applied by another worker
-- meanwhile.
CREATE OR REPLACE FUNCTION paystream._batch_write(p_ids text[], p_types text[], p_livemode boolean[],
                                       p_versions text[], p_created bigint[],
                                       p_streams text[], p_statuses text[], p_users uuid[],
                                       p_notes text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_written integer;
BEGIN
    INSERT INTO paystream.webhook_events AS w (event_id, type, livemode, api_version,
                                               event_created, stream_id, status, attempts,
                                               user_id, note, processed_at)
    SELECT e.id, e.type, e.livemode, e.version, e.created, e.stream, e.status, 1, e.usr,
           e.note, now()
      FROM unnest(p_ids, p_types, p_livemode, p_versions, p_created, p_streams, p_statuses,
                  p_users, p_notes) AS e(id, type, livemode, version, created, stream, status,
                                         usr, note)
    ON CONFLICT (event_id) DO UPDATE
       SET status = EXCLUDED.status, user_id = EXCLUDED.user_id, note = EXCLUDED.note,
           error = NULL, attempts = w.attempts + 1, processed_at = now(),
           livemode = coalesce(w.livemode, EXCLUDED.livemode),
           api_version = coalesce(w.api_version, EXCLUDED.api_version),
           event_created = coalesce(w.event_created, EXCLUDED.event_created),
           stream_id = coalesce(EXCLUDED.stream_id, w.stream_id)
     WHERE w.status NOT IN ('applied', 'skipped');
    GET DIAGNOSTICS v_written = ROW_COUNT;
    IF v_written <> coalesce(cardinality(p_ids), 0) THEN
        RAISE EXCEPTION '% of % events of this batch were applied by another worker meanwhile',
            coalesce(cardinality(p_ids), 0) - v_written, coalesce(cardinality(p_ids), 0)
            USING ERRCODE = 'PS001';
    END IF;
    -- a waiting event that is done now waits no more (sql/events.sql)
    DELETE FROM paystream.waiting_events WHERE event_id = ANY (p_ids);
END $$;

-- The payment rules find their user by the payment (sql/payments.sql).
CREATE OR REPLACE FUNCTION paystream._batch_by_payment(e paystream.batch_event)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT e.rule IN ('charge_refunded', 'charge_dispute', 'invoice_payment_paid')
$$;

-- The user an event's rule runs for: the row's, or the one the stored
-- mappings give at the event's turn (an earlier event of this batch may have
-- stored them); the payment rules find theirs as they apply.
CREATE OR REPLACE FUNCTION paystream._batch_user(e paystream.batch_event)
RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    IF e.user_id IS NOT NULL OR e.rule = 'record' OR paystream._batch_by_payment(e) THEN
        RETURN e.user_id;
    END IF;
    RETURN paystream._find_user(e.customer, e.subscription);
END $$;

-- One event's outcome, for p_user (_batch_user): a 'record' row carries it,
-- else its rule decides. Errors propagate: the caller decides what rolls back.
CREATE OR REPLACE FUNCTION paystream._batch_event(e paystream.batch_event, p_user uuid,
                                                  OUT status text, OUT user_id uuid,
                                                  OUT note text)
LANGUAGE plpgsql AS $$
BEGIN
    user_id := p_user;
    IF e.rule = 'record' THEN
        status := e.status;
        note := e.note;
        IF status IS NULL OR status NOT IN ('applied', 'skipped') THEN
            RAISE EXCEPTION 'bad final status %', status USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN;
    END IF;
    note := paystream._batch_rule(e, p_user);
    IF paystream._batch_by_payment(e) THEN
        user_id := paystream._payment_user(coalesce(e.payment_intent, e.charge), e.invoice,
                                           e.customer);
    END IF;
    status := CASE WHEN starts_with(note, 'skipped: ') THEN 'skipped' ELSE 'applied' END;
END $$;

-- The events already done are found by one statement for the whole batch,
-- made once before the first event: an event that another worker commits
-- after it is applied here too, and the one INSERT of event rows then fails
-- the whole call with PS001. Generic plans (plan_cache_mode): with a few
-- events per call the duplicate check would otherwise be planned again on
-- every call.
--
-- Two paths, one outcome. First the whole batch under one savepoint: when
-- no event fails, that is the result (one subtransaction for the batch
-- instead of one per event). When one does, that savepoint rolls back and
-- the batch runs again with a savepoint per event, where it fails alone.
-- On the first path the batch's pack purchases are applied first, all in one
-- call (_packs_paid: a few statements for all instead of seven each), when
-- nothing else in the batch reads or writes packs and payments: they only
-- add to their users' overage buckets, so doing them first changes no
-- balance (a refund of one of them would, and stops this).
CREATE OR REPLACE FUNCTION paystream.ps_apply_batch(p_events paystream.batch_event[])
RETURNS TABLE (k integer, status text, user_id uuid, note text, err_code text,
               err_message text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    e paystream.batch_event;
    r record;
    v_done text[];  -- applied or skipped before this event
    v_ids text[] := '{}';
    v_types text[] := '{}';
    v_livemode boolean[] := '{}';
    v_versions text[] := '{}';
    v_created bigint[] := '{}';
    v_streams text[] := '{}';
    v_statuses text[] := '{}';
    v_users uuid[] := '{}';
    v_notes text[] := '{}';
    v_out text[] := '{}';    -- each event's status, in order (fast path)
    v_outu uuid[] := '{}';
    v_outn text[] := '{}';
    v_code text;
    v_pack_events text[];  -- the pack purchases applied first, and their notes
    v_pack_notes text[];
    v_at integer;
BEGIN
    IF cardinality(p_events) IS NULL OR cardinality(p_events) NOT BETWEEN 1 AND 64
       OR array_ndims(p_events) <> 1 THEN
        RAISE EXCEPTION 'ps_apply_batch takes 1 to 64 events'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one primary-key read per event, as a subplan: a plan that stays an
    -- index scan however small the table was when it was made (a join or
    -- = ANY would not)
    SELECT coalesce(array_agg(i.event_id), '{}') INTO v_done
      FROM unnest(p_events) AS i
     WHERE (SELECT w.status FROM paystream.webhook_events w WHERE w.event_id = i.event_id)
           IN ('applied', 'skipped');

    -- the fast path: every event, one savepoint
    BEGIN
        IF NOT EXISTS (SELECT FROM unnest(p_events) i
                        WHERE i.rule IN ('pack_failed', 'charge_refunded', 'charge_dispute',
                                         'invoice_payment_paid')
                           OR (i.rule = 'pack_paid' AND i.user_id IS NULL)) THEN
            SELECT array_agg(r.event_id), array_agg(r.note) INTO v_pack_events, v_pack_notes
              FROM (SELECT array_agg(p.user_id ORDER BY p.n) AS users,
                           array_agg(p.session ORDER BY p.n) AS sessions,
                           array_agg(p.pack_id ORDER BY p.n) AS packs,
                           array_agg(p.price ORDER BY p.n) AS prices,
                           array_agg(p.payment_intent ORDER BY p.n) AS intents,
                           array_agg(p.customer ORDER BY p.n) AS customers,
                           array_agg(p.amount ORDER BY p.n) AS amounts,
                           array_agg(p.event_id ORDER BY p.n) AS events
                      FROM (SELECT DISTINCT ON (i.event_id) i.*, i.ordinality AS n
                              FROM unnest(p_events) WITH ORDINALITY AS i
                             WHERE i.rule = 'pack_paid' AND NOT (i.event_id = ANY (v_done))
                             ORDER BY i.event_id, i.ordinality) p
                    HAVING count(*) > 0 AND count(*) = count(DISTINCT p.session)) a
             CROSS JOIN LATERAL paystream._packs_paid(a.users, a.sessions, a.packs, a.prices,
                                                      a.intents, a.customers, a.amounts,
                                                      a.events) r;
        END IF;
        FOREACH e IN ARRAY p_events LOOP
            IF e.event_id = ANY (v_done) THEN
                v_out := v_out || 'duplicate'::text;
                v_outu := v_outu || NULL::uuid;
                v_outn := v_outn || NULL::text;
                CONTINUE;
            END IF;
            v_at := array_position(v_pack_events, e.event_id);
            IF v_at IS NOT NULL THEN
                v_done := v_done || e.event_id;
                v_out := v_out || CASE WHEN starts_with(v_pack_notes[v_at], 'skipped: ')
                                       THEN 'skipped' ELSE 'applied' END;
                v_outu := v_outu || e.user_id;
                v_outn := v_outn || v_pack_notes[v_at];
                CONTINUE;
            END IF;
            r := paystream._batch_event(e, paystream._batch_user(e));
            v_done := v_done || e.event_id;
            v_out := v_out || r.status;
            v_outu := v_outu || r.user_id;
            v_outn := v_outn || r.note;
        END LOOP;
        PERFORM paystream._batch_write(
            array_agg((p_events[n]).event_id), array_agg((p_events[n]).type),
            array_agg((p_events[n]).livemode), array_agg((p_events[n]).api_version),
            array_agg((p_events[n]).created), array_agg((p_events[n]).stream_id),
            array_agg(v_out[n]), array_agg(v_outu[n]), array_agg(v_outn[n]))
           FROM generate_subscripts(v_out, 1) AS n
          WHERE v_out[n] <> 'duplicate';
        RETURN QUERY SELECT x.n::integer, x.status, x.usr, x.note, NULL::text, NULL::text
                       FROM unnest(v_out, v_outu, v_outn) WITH ORDINALITY AS x(status, usr, note, n)
                      ORDER BY x.n;
        RETURN;
    EXCEPTION
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE;
            -- the whole call fails on these (see above); any other error
            -- is one event's, found below
            IF v_code IN ('40P01', '40001', 'PS001') THEN
                RAISE;
            END IF;
    END;

    -- the slow path: a savepoint per event
    SELECT coalesce(array_agg(i.event_id), '{}') INTO v_done
      FROM unnest(p_events) AS i
     WHERE (SELECT w.status FROM paystream.webhook_events w WHERE w.event_id = i.event_id)
           IN ('applied', 'skipped');
    k := 0;
    FOREACH e IN ARRAY p_events LOOP
        k := k + 1;
        user_id := NULL;
        note := NULL;
        err_code := NULL;
        err_message := NULL;
        IF e.event_id = ANY (v_done) THEN
            status := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            user_id := paystream._batch_user(e); -- a failed event keeps the user found
            r := paystream._batch_event(e, user_id);
            status := r.status;
            user_id := r.user_id;
            note := r.note;
        EXCEPTION
            WHEN deadlock_detected OR serialization_failure THEN
                RAISE;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                status := 'failed';
                note := NULL;
        END;
        IF status <> 'failed' THEN
            v_done := v_done || e.event_id;
            v_ids := v_ids || e.event_id;
            v_types := v_types || e.type;
            v_livemode := v_livemode || e.livemode;
            v_versions := v_versions || e.api_version;
            v_created := v_created || e.created;
            v_streams := v_streams || e.stream_id;
            v_statuses := v_statuses || status;
            v_users := v_users || user_id;
            v_notes := v_notes || note;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM paystream._batch_write(v_ids, v_types, v_livemode, v_versions, v_created, v_streams,
                                   v_statuses, v_users, v_notes);
END $$;

GRANT EXECUTE ON FUNCTION paystream.ps_apply_batch(paystream.batch_event[])
TO paystream_worker, paystream_operator;
