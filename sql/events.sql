-- events.sql: the record of every Stripe event the worker has seen
-- (webhook_events), which is what makes applying an event idempotent: an
-- event recorded `applied` or `skipped` changes nothing when it comes again.
-- The worker writes an event's row once, with its outcome, in the batch that
-- applies it (_batch_write, sql/batch.sql); a failed attempt is recorded after
-- the rollback (ps_event_failed). ps_event_begin / ps_event_finish apply one
-- event by hand in a transaction of one's own (tools, tests).

-- Record the event id and lock its row: its status before this attempt.
-- A new event (the usual case) is one INSERT.
CREATE OR REPLACE FUNCTION paystream._event_begin(p_event_id text, p_type text,
                                                  p_livemode boolean, p_api_version text,
                                                  p_created bigint, p_stream_id text)
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

-- Finish the transaction whose ps_event_begin wrote the row: a missing row is
-- an error, never a silent no-op. A note starting with 'skipped: ' (an event
-- of a replaced subscription, sql/subscriptions.sql) finishes it as skipped.
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
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % was not begun', p_event_id USING ERRCODE = 'no_data_found';
    END IF;
END $$;

-- First statement of a one-event transaction: 'applied' or 'skipped' mean
-- "already done, change nothing"; anything else means apply it now. The row
-- lock serialises two callers on one event.
CREATE OR REPLACE FUNCTION paystream.ps_event_begin(p_event_id text, p_type text,
                                                    p_livemode boolean, p_api_version text,
                                                    p_created bigint, p_stream_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN paystream._event_begin(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                  p_stream_id);
END $$;

CREATE OR REPLACE FUNCTION paystream.ps_event_finish(p_event_id text, p_status text,
                                                     p_user_id uuid, p_note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM paystream._event_finish(p_event_id, p_status, p_user_id, p_note);
END $$;

-- Record a failed attempt, in its own transaction after the rollback.
-- p_final marks the event dead-lettered. Never downgrades a done event.
CREATE OR REPLACE FUNCTION paystream.ps_event_failed(p_event_id text, p_type text,
                                                     p_livemode boolean, p_api_version text,
                                                     p_created bigint, p_stream_id text,
                                                     p_error text, p_attempts integer,
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

GRANT EXECUTE ON FUNCTION
    paystream.ps_event_begin(text, text, boolean, text, bigint, text),
    paystream.ps_event_finish(text, text, uuid, text),
    paystream.ps_event_failed(text, text, boolean, text, bigint, text, text, integer, boolean)
TO paystream_worker;
