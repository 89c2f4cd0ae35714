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
    -- the payment rules find their user by the payment (sql/payments.sql)
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

-- A run of paid credit-pack checkouts in a batch, the events from p_from on
-- that are pack purchases with their user named, not done before (p_done),
-- and of distinct events and sessions: two or more are applied in one
-- _packs_paid call (a few statements for all of them instead of seven each),
-- under one savepoint. A run keeps its place in the batch, and _packs_paid
-- does what applying them one by one would (each account locked in the
-- order the run first names it), so the batch's order, and its lock order,
-- hold. Returns the run's length, and its events and notes when they were
-- applied; none when the run is shorter than two or one of them failed: they
-- then run one by one, where that one fails alone.
CREATE OR REPLACE FUNCTION paystream._batch_packs(p_events paystream.batch_event[],
                                                  p_from integer, p_done text[],
                                                  OUT run integer, OUT events text[],
                                                  OUT notes text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_code text;
    e paystream.batch_event;
    v_sessions text[] := '{}';
    v_events text[] := '{}';
BEGIN
    run := 0;
    FOR i IN p_from..cardinality(p_events) LOOP
        e := p_events[i];
        EXIT WHEN e.rule IS DISTINCT FROM 'pack_paid' OR e.user_id IS NULL
                  OR e.event_id = ANY (p_done) OR e.event_id = ANY (v_events)
                  OR e.session = ANY (v_sessions) OR e.session IS NULL;
        v_events := v_events || e.event_id;
        v_sessions := v_sessions || e.session;
        run := run + 1;
    END LOOP;
    IF run < 2 THEN
        RETURN;
    END IF;
    BEGIN
        SELECT array_agg(r.event_id), array_agg(r.note) INTO events, notes
          FROM (SELECT array_agg(p.user_id ORDER BY p.ordinality) AS users,
                       array_agg(p.session ORDER BY p.ordinality) AS sessions,
                       array_agg(p.pack_id ORDER BY p.ordinality) AS packs,
                       array_agg(p.price ORDER BY p.ordinality) AS prices,
                       array_agg(p.payment_intent ORDER BY p.ordinality) AS intents,
                       array_agg(p.customer ORDER BY p.ordinality) AS customers,
                       array_agg(p.amount ORDER BY p.ordinality) AS amounts,
                       array_agg(p.event_id ORDER BY p.ordinality) AS events
                  FROM unnest(p_events[p_from:p_from + run - 1]) WITH ORDINALITY AS p) a
         CROSS JOIN LATERAL paystream._packs_paid(a.users, a.sessions, a.packs, a.prices,
                                                  a.intents, a.customers, a.amounts,
                                                  a.events) r;
    EXCEPTION
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE;
            IF v_code IN ('40P01', '40001') THEN  -- these fail the whole call (see below)
                RAISE;
            END IF;
            events := NULL;
            notes := NULL;
    END;
END $$;

-- The events already done are found by one statement for the whole batch,
-- made once before the first event: an event that another worker commits
-- after it is applied here too, and the one INSERT of event rows then fails
-- the whole call with PS001. Generic plans (plan_cache_mode): with a few
-- events per call the duplicate check would otherwise be planned again on
-- every call.
CREATE OR REPLACE FUNCTION paystream.ps_apply_batch(p_events paystream.batch_event[])
RETURNS TABLE (k integer, status text, user_id uuid, note text, err_code text,
               err_message text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    e paystream.batch_event;
    v_done text[];  -- applied or skipped before this event
    v_packs record; -- a run of pack purchases done at once (_batch_packs)
    v_run_end integer := 0;
    v_run_events text[];
    v_run_notes text[];
    v_at integer;
    v_ids text[] := '{}';
    v_types text[] := '{}';
    v_livemode boolean[] := '{}';
    v_versions text[] := '{}';
    v_created bigint[] := '{}';
    v_streams text[] := '{}';
    v_statuses text[] := '{}';
    v_users uuid[] := '{}';
    v_notes text[] := '{}';
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
    FOR i IN 1..cardinality(p_events) LOOP
        e := p_events[i];
        k := i;
        user_id := NULL;
        note := NULL;
        err_code := NULL;
        err_message := NULL;
        IF e.event_id = ANY (v_done) THEN
            status := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF i > v_run_end AND e.rule = 'pack_paid' THEN
            v_packs := paystream._batch_packs(p_events, i, v_done);
            v_run_end := i + v_packs.run - 1;
            v_run_events := v_packs.events;
            v_run_notes := v_packs.notes;
        END IF;
        v_at := CASE WHEN i <= v_run_end THEN array_position(v_run_events, e.event_id) END;
        IF v_at IS NOT NULL THEN  -- (a pack's note is never 'skipped: ')
            status := 'applied';
            user_id := e.user_id;
            note := v_run_notes[v_at];
        ELSE
            -- a savepoint: an event that fails rolls back alone. A 'record' row
            -- carries its outcome; a rule runs for the row's user, or the one
            -- the stored mappings give at the event's turn (an earlier event
            -- of this batch may have stored them)
            BEGIN
                user_id := e.user_id;
                IF e.rule = 'record' THEN
                    status := e.status;
                    note := e.note;
                    IF status IS NULL OR status NOT IN ('applied', 'skipped') THEN
                        RAISE EXCEPTION 'bad final status %', status
                            USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                ELSE
                    IF e.rule IN ('charge_refunded', 'charge_dispute', 'invoice_payment_paid') THEN
                        note := paystream._batch_rule(e, NULL);
                        user_id := paystream._payment_user(coalesce(e.payment_intent, e.charge),
                                                           e.invoice, e.customer);
                    ELSE
                        IF user_id IS NULL THEN
                            user_id := paystream._find_user(e.customer, e.subscription);
                        END IF;
                        note := paystream._batch_rule(e, user_id);
                    END IF;
                    status := CASE WHEN starts_with(note, 'skipped: ') THEN 'skipped'
                                   ELSE 'applied' END;
                END IF;
            EXCEPTION
                WHEN deadlock_detected OR serialization_failure THEN
                    RAISE;
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE,
                                            err_message = MESSAGE_TEXT;
                    status := 'failed';
                    note := NULL;
            END;
        END IF;
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
