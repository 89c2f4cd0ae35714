-- 006_worker_batch.sql: a worker's batch of events in one statement.
--
-- ps_apply_batch applies up to 32 events in the order given, each under its
-- own savepoint (a PL/pgSQL block with an EXCEPTION clause is one): an event
-- that fails rolls back alone and is reported with its error, the others
-- stand. It replaces, per event, a SAVEPOINT, a ps_*_event call and a RELEASE,
-- each a statement of its own with its round trip, and the event's own INSERT
-- into webhook_events, by one INSERT of all the batch's rows at the end. The
-- ledger rules are those of 005, called with the same arguments.
--
-- One row of p_events (a two-dimensional text array, 22 columns):
--    1 kind: 'record' (no ledger call: the worker decided; status and note
--      in 8 and 9), or the 005 entry point whose rule applies: ps_invoice_paid,
--      ps_subscription_state, ps_subscription_past_due, ps_checkout_subscription,
--      ps_pack_paid, ps_pack_failed, ps_charge_refunded
--  2-7 the event: id, type, livemode, api_version, created, stream id
--  8-9 status ('applied' or 'skipped') and note of a 'record' row
-- 10-11 customer and subscription to find the user by, when the event itself
--      names none (p1 NULL): the stored mapping, looked up at the event's turn,
--      so that an earlier event of the same batch may have stored it
-- 12-22 the entry point's arguments in order (p1 is the user, except for
--      ps_charge_refunded: charge, payment intent, amount, amount refunded,
--      event id, and 'true' when the charge pays an invoice)
--
-- Result, one row per input row, in order: k (1-based), status ('applied',
-- 'skipped', 'duplicate' or 'failed'), the user, the note, and for a failed
-- event its SQLSTATE and message (err_code, err_message). An event already applied or skipped (before
-- this batch, or earlier in it) is a duplicate and changes nothing. The rows
-- of the events that applied or were skipped are written in one INSERT at the
-- end (as 005's _event_done does one by one); when another worker applied one
-- of them meanwhile, the INSERT waits for its COMMIT and the whole call fails
-- with PS001, and the worker applies the batch's events one per transaction,
-- where that event is a duplicate. A deadlock or a serialization failure
-- fails the whole call too.

-- A LANGUAGE sql function doing an UPDATE is parsed and planned on every
-- call in PostgreSQL 15; PL/pgSQL keeps the plan. Same statement as 005's.
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

-- The user of an event that names none, from the stored mapping; the same
-- message as the worker's when there is none.
CREATE FUNCTION paystream._batch_user(p_customer text, p_sub text)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
BEGIN
    v_user := coalesce((SELECT user_id FROM paystream.customers
                         WHERE stripe_customer_id = p_customer),
                       (SELECT user_id FROM paystream.subscriptions
                         WHERE stripe_subscription_id = p_sub),
                       (SELECT user_id FROM paystream.subscription_history
                         WHERE stripe_subscription_id = p_sub));
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'user not found: no metadata.user_id or client_reference_id, and no stored mapping for customer % / subscription %',
            coalesce(p_customer, '(none)'), coalesce(p_sub, '(none)')
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_user;
END $$;

-- A charge refund: the pack's share back, or, when no pack purchase has the
-- charge's payment intent, skipped (it pays an invoice) or retried (its
-- checkout may not be applied yet), as the worker's one-event path decides.
CREATE FUNCTION paystream._batch_refund(r text[], OUT status text, OUT note text)
LANGUAGE plpgsql AS $$
BEGIN
    status := 'applied';
    note := paystream.ps_charge_refunded(r[12], r[13], r[14]::bigint, r[15]::bigint, r[16]);
    IF note IS NOT NULL THEN
        RETURN;
    ELSIF r[17] = 'true' THEN
        status := 'skipped';
        note := format('charge %s pays an invoice: not a credit pack', r[12]);
        RETURN;
    END IF;
    RAISE EXCEPTION 'no credit-pack purchase with payment_intent % yet (its checkout may not be applied yet; retried)',
        r[13] USING ERRCODE = 'no_data_found';
END $$;

-- One event's rule: its note (a note starting with 'skipped: ' makes it
-- skipped). p_user is r[12] or the user found by _batch_user.
CREATE FUNCTION paystream._batch_rule(r text[], p_user uuid)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    CASE r[1]
    WHEN 'ps_invoice_paid' THEN
        RETURN paystream._invoice_paid(p_user, r[13], r[14], r[15], r[16]::text[],
                                       r[17]::bigint, r[18]);
    WHEN 'ps_subscription_state' THEN
        RETURN paystream._subscription_state(p_user, r[13], r[14], r[15], r[16],
                                             r[17]::bigint, r[18]::bigint, r[19]::boolean,
                                             r[20]::bigint, r[21]::bigint, r[22]);
    WHEN 'ps_subscription_past_due' THEN
        RETURN paystream._subscription_past_due(p_user, r[13], r[14], r[15]::bigint, r[16]);
    WHEN 'ps_checkout_subscription' THEN
        RETURN paystream._checkout_subscription(p_user, r[13], r[14], r[15]);
    WHEN 'ps_pack_paid' THEN
        RETURN paystream._pack_paid(p_user, r[13], r[14], r[15], r[16], r[17], r[18]);
    WHEN 'ps_pack_failed' THEN
        RETURN paystream._pack_failed(p_user, r[13], r[14], r[15], r[16], r[17]);
    ELSE
        RAISE EXCEPTION 'unknown batch row kind %', r[1] USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;

-- Write the rows of the events that applied or were skipped, once each;
-- PS001 when one was applied by another worker meanwhile.
CREATE FUNCTION paystream._batch_write(p_ids text[], p_types text[], p_livemode boolean[],
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
END $$;

CREATE FUNCTION paystream.ps_apply_batch(p_events text[])
RETURNS TABLE (k integer, status text, user_id uuid, note text, err_code text,
               err_message text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r text[];
    v_done text[] := '{}';  -- applied or skipped earlier in this batch
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
    IF array_ndims(p_events) IS DISTINCT FROM 2 OR array_length(p_events, 2) <> 22
       OR array_length(p_events, 1) > 32 THEN
        RAISE EXCEPTION 'ps_apply_batch takes 1 to 32 rows of 22 columns'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    k := 0;
    FOREACH r SLICE 1 IN ARRAY p_events LOOP
        k := k + 1;
        user_id := NULL;
        note := NULL;
        err_code := NULL;
        err_message := NULL;
        -- one primary-key read per event: a plan that stays an index scan
        -- however small the table was when it was made
        IF r[2] = ANY (v_done) OR EXISTS (SELECT FROM paystream.webhook_events w
                                           WHERE w.event_id = r[2]
                                             AND w.status IN ('applied', 'skipped')) THEN
            status := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF r[1] <> 'ps_charge_refunded' THEN
                user_id := r[12]::uuid;
            END IF;
            IF r[1] = 'record' THEN
                status := r[8];
                note := r[9];
                IF status IS NULL OR status NOT IN ('applied', 'skipped') THEN
                    RAISE EXCEPTION 'bad final status %', status
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF r[1] = 'ps_charge_refunded' THEN
                SELECT b.status, b.note INTO status, note FROM paystream._batch_refund(r) b;
            ELSE
                IF user_id IS NULL THEN
                    user_id := paystream._batch_user(r[10], r[11]);
                END IF;
                note := paystream._batch_rule(r, user_id);
                status := CASE WHEN starts_with(note, 'skipped: ') THEN 'skipped'
                               ELSE 'applied' END;
            END IF;
        EXCEPTION
            WHEN deadlock_detected OR serialization_failure THEN
                RAISE;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                status := 'failed';
                note := NULL;
        END;
        IF status <> 'failed' THEN
            v_done := v_done || r[2];
            v_ids := v_ids || r[2];
            v_types := v_types || r[3];
            v_livemode := v_livemode || r[4]::boolean;
            v_versions := v_versions || r[5];
            v_created := v_created || r[6]::bigint;
            v_streams := v_streams || r[7];
            v_statuses := v_statuses || status;
            v_users := v_users || user_id;
            v_notes := v_notes || note;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM paystream._batch_write(v_ids, v_types, v_livemode, v_versions, v_created, v_streams,
                                   v_statuses, v_users, v_notes);
END $$;

-- ------------------------------------------------- what no worker calls --
-- 005's per-event batch entry points: ps_apply_batch replaces them. A worker
-- of before this migration that still runs meanwhile finds its batch call
-- missing, and applies each event in a transaction of its own
-- (ps_event_begin/ps_event_finish, which stay): slower, nothing lost.
DROP FUNCTION paystream.ps_event_open(text, text, boolean, text, bigint, text),
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
                                   text, text, text),
    paystream._event_open(text, text, boolean, text, bigint, text),
    paystream._event_done(text, text, boolean, text, bigint, text, text, uuid, text);

-- ---------------------------------------------------------- privileges --
REVOKE EXECUTE ON FUNCTION
    paystream._batch_user(text, text),
    paystream._batch_refund(text[]),
    paystream._batch_rule(text[], uuid),
    paystream._batch_write(text[], text[], boolean[], text[], bigint[], text[], text[], uuid[],
                           text[]),
    paystream.ps_apply_batch(text[])
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION paystream.ps_apply_batch(text[]) TO paystream_worker;
