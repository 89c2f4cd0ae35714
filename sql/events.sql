-- events.sql: the record of every Stripe event the worker has seen
-- (webhook_events), which is what makes applying an event idempotent: an
-- event recorded `applied` or `skipped` changes nothing when it comes again.
-- The worker writes an event's row once, with its outcome, in the batch that
-- applies it (_batch_write, sql/batch.sql); a failed attempt is recorded after
-- the rollback (ps_event_failed).
--
-- An event whose rule needs another event first (SQLSTATE 55000) waits
-- (SPEC §3): ps_event_wait keeps it in waiting_events, recorded `waiting`
-- with what it waits for, and schedules its next attempt; the workers take
-- the due ones with ps_waiting_due and apply them through the same batch
-- path, whose write of a done event deletes its waiting row. When the wait
-- runs out, a refund or dispute is recorded skipped, anything else becomes a
-- dead letter (ps_event_failed with p_final deletes the waiting row).

-- Record a failed attempt, in its own transaction after the rollback, with
-- the event's user when it is known (`dead list` shows whose it is).
-- p_final marks the event dead-lettered. Never downgrades a done event.
CREATE OR REPLACE FUNCTION paystream.ps_event_failed(p_event_id text, p_type text,
                                                     p_livemode boolean, p_api_version text,
                                                     p_created bigint, p_stream_id text,
                                                     p_error text, p_attempts integer,
                                                     p_final boolean, p_user_id uuid)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
BEGIN
    INSERT INTO webhook_events AS w (event_id, type, livemode, api_version, event_created,
                                     stream_id, status, attempts, error, user_id, processed_at)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id,
            CASE WHEN p_final THEN 'failed' ELSE 'retrying' END, greatest(p_attempts, 1),
            p_error, p_user_id, now())
    ON CONFLICT (event_id) DO UPDATE
       SET status = EXCLUDED.status, error = EXCLUDED.error, processed_at = now(),
           attempts = greatest(w.attempts + 1, EXCLUDED.attempts),
           stream_id = coalesce(EXCLUDED.stream_id, w.stream_id),
           user_id = coalesce(EXCLUDED.user_id, w.user_id)
     WHERE w.status NOT IN ('applied', 'skipped');
    IF p_final THEN  -- its dead letter is written: it waits no more
        DELETE FROM waiting_events WHERE event_id = p_event_id;
    END IF;
END $$;

GRANT EXECUTE ON FUNCTION
    paystream.ps_event_failed(text, text, boolean, text, bigint, text, text, integer, boolean,
                              uuid)
TO paystream_worker, paystream_operator;

-- ------------------------------------------------------------- waiting --

-- The delay before the next attempt of an event that has waited p_waits
-- times already: 0.25 s, 0.5 s, 1 s, ... doubling, at most every 30 min
-- (SPEC §3: seconds, then minutes). The one place of the schedule.
CREATE OR REPLACE FUNCTION paystream._wait_delay(p_waits integer)
RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT least(make_interval(secs => 0.25 * 2 ^ least(greatest(p_waits, 0), 16)),
                 interval '30 minutes')
$$;

-- A wait's length for people: 72h0m, 1m30s, 4s.
CREATE OR REPLACE FUNCTION paystream._wait_span(p_seconds integer)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_seconds >= 3600 THEN format('%sh%sm', p_seconds / 3600, p_seconds % 3600 / 60)
                WHEN p_seconds >= 60 THEN format('%sm%ss', p_seconds / 60, p_seconds % 60)
                ELSE format('%ss', p_seconds) END
$$;

-- An event whose rule waits for another event (SQLSTATE 55000, p_reason its
-- message), called after the batch that rolled it back: keep it (a second
-- call updates the row and keeps its first_wait_at), record it `waiting`
-- and schedule its next attempt, no later than the end of the wait. Its
-- stream entry may be acknowledged once this committed. Outcome:
--  'waiting': next attempt in next_ms;
--  'done': another worker applied or skipped it meanwhile;
--  'skipped': the wait of a refund or dispute ran out: a payment paystream
--     never granted anything for; recorded skipped with detail as its note;
--  'dead': the wait ran out: dead-letter it with detail as its error, then
--     ps_event_failed(..., p_final) marks it failed and deletes its row.
CREATE OR REPLACE FUNCTION paystream.ps_event_wait(p_event_id text, p_type text,
                                                   p_livemode boolean, p_api_version text,
                                                   p_created bigint, p_stream_id text,
                                                   p_body text, p_received_ms bigint,
                                                   p_reason text, p_wait_max_s integer)
RETURNS TABLE (outcome text, detail text, next_ms bigint, n_waits integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    r waiting_events;
    v_n integer;
    v_end timestamptz;
BEGIN
    IF p_wait_max_s IS NULL OR p_wait_max_s < 1 OR p_body IS NULL OR p_stream_id IS NULL THEN
        RAISE EXCEPTION 'ps_event_wait: a body, a stream id and a wait of 1 s or more are needed'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the record first: it waits for a batch that is writing the event, and
    -- an event that batch applied or skipped waits for nothing
    INSERT INTO webhook_events AS w (event_id, type, livemode, api_version, event_created,
                                     stream_id, status, attempts, error, processed_at)
    VALUES (p_event_id, p_type, p_livemode, p_api_version, p_created, p_stream_id, 'waiting', 1,
            p_reason, now())
    ON CONFLICT (event_id) DO UPDATE
       SET status = 'waiting', error = EXCLUDED.error, processed_at = now(),
           attempts = w.attempts + 1, stream_id = coalesce(EXCLUDED.stream_id, w.stream_id)
     WHERE w.status NOT IN ('applied', 'skipped');
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        DELETE FROM waiting_events WHERE event_id = p_event_id;
        outcome := 'done';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO waiting_events AS x (event_id, stream_id, type, body, received_ms, reason,
                                     next_attempt_at)
    VALUES (p_event_id, p_stream_id, p_type, p_body, p_received_ms, p_reason, now())
    ON CONFLICT (event_id) DO UPDATE
       SET stream_id = EXCLUDED.stream_id, body = EXCLUDED.body,
           received_ms = EXCLUDED.received_ms, reason = EXCLUDED.reason, waits = x.waits + 1,
           updated_at = now()
    RETURNING * INTO r;
    v_end := r.first_wait_at + make_interval(secs => p_wait_max_s);
    n_waits := r.waits;
    IF now() < v_end THEN
        UPDATE waiting_events SET next_attempt_at = least(now() + _wait_delay(r.waits), v_end)
         WHERE event_id = p_event_id RETURNING next_attempt_at INTO v_end;
        outcome := 'waiting';
        detail := p_reason;
        next_ms := ceil(extract(epoch FROM v_end - now()) * 1000)::bigint;
    ELSIF p_type = 'charge.refunded' OR starts_with(p_type, 'charge.dispute.') THEN
        outcome := 'skipped';
        detail := format('skipped: waited %s for the payment it refunds or disputes, which paystream never granted anything for: %s',
                         _wait_span(p_wait_max_s), p_reason);
        UPDATE webhook_events SET status = 'skipped', note = detail, error = NULL,
                                  processed_at = now()
         WHERE event_id = p_event_id;
        DELETE FROM waiting_events WHERE event_id = p_event_id;
    ELSE
        outcome := 'dead';
        detail := format('waited %s for: %s', _wait_span(p_wait_max_s), p_reason);
    END IF;
    RETURN NEXT;
END $$;

-- Claim up to p_limit waiting events that are due, for one worker: each
-- one's next attempt moves p_lease_s ahead, so that no other worker takes it
-- meanwhile, and one that dies with it leaves it to come due again. The
-- worker applies them through ps_apply_batch (whose write deletes the rows
-- of the events done) or calls ps_event_wait or ps_waiting_failed.
CREATE OR REPLACE FUNCTION paystream.ps_waiting_due(p_limit integer, p_lease_s integer)
RETURNS TABLE (event_id text, stream_id text, type text, body text, received_ms bigint,
               failures integer)
LANGUAGE sql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
    WITH due AS (
        SELECT d.event_id FROM paystream.waiting_events d
         WHERE d.next_attempt_at <= now()
         ORDER BY d.next_attempt_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED)
    UPDATE paystream.waiting_events x
       SET next_attempt_at = now() + make_interval(secs => p_lease_s)
      FROM due
     WHERE x.event_id = due.event_id
    RETURNING x.event_id, x.stream_id, x.type, x.body, x.received_ms, x.failures
$$;

-- A waiting event that, applied again, failed for real (not 55000): it
-- stays waiting and is tried again in p_delay_ms (the worker's backoff;
-- after PAYSTREAM_MAX_ATTEMPTS such failures the worker dead-letters it).
-- Returns its real failures so far (0: it waits no more).
CREATE OR REPLACE FUNCTION paystream.ps_waiting_failed(p_event_id text, p_error text,
                                                       p_delay_ms integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_failures integer;
BEGIN
    UPDATE webhook_events SET status = 'retrying', error = p_error, attempts = attempts + 1,
                              processed_at = now()
     WHERE event_id = p_event_id AND status NOT IN ('applied', 'skipped');
    UPDATE waiting_events
       SET failures = failures + 1, error = p_error, updated_at = now(),
           next_attempt_at = now() + make_interval(secs => greatest(p_delay_ms, 0) / 1000.0)
     WHERE event_id = p_event_id
    RETURNING failures INTO v_failures;
    RETURN coalesce(v_failures, 0);
END $$;

GRANT EXECUTE ON FUNCTION
    paystream.ps_event_wait(text, text, boolean, text, bigint, text, text, bigint, text, integer),
    paystream.ps_waiting_due(integer, integer),
    paystream.ps_waiting_failed(text, text, integer)
TO paystream_worker;

-- `paystreamctl dead drop`: record that an operator dropped an event that
-- can never apply, with the reason and who (p_by, as the operator's machine
-- names them, and the database login). An event already applied or skipped
-- is refused (its dead letter is stale: `dead retry` removes it); dropping
-- again changes nothing. Its wait, if any, ends.
CREATE OR REPLACE FUNCTION paystream.drop_event(p_event_id text, p_type text,
                                                   p_stream_id text, p_reason text,
                                                   p_by text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_status text;
BEGIN
    IF p_event_id IS NULL OR p_reason IS NULL OR btrim(p_reason) = '' THEN
        RAISE EXCEPTION 'an event id and a reason are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT status INTO v_status FROM webhook_events WHERE event_id = p_event_id FOR UPDATE;
    IF v_status IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'event % is % already: nothing to drop (dead retry removes its stale dead letter)',
            p_event_id, v_status USING ERRCODE = 'object_not_in_prerequisite_state';
    ELSIF v_status = 'dropped' THEN
        RETURN 'already dropped';
    END IF;
    INSERT INTO webhook_events AS w (event_id, type, stream_id, status, note, dropped_by,
                                     processed_at)
    VALUES (p_event_id, coalesce(p_type, ''), p_stream_id, 'dropped', p_reason,
            format('%s (database login %s)', coalesce(p_by, '?'), session_user), now())
    ON CONFLICT (event_id) DO UPDATE
       SET status = 'dropped', note = EXCLUDED.note, dropped_by = EXCLUDED.dropped_by,
           processed_at = now();
    DELETE FROM waiting_events WHERE event_id = p_event_id;
    RETURN 'dropped';
END $$;

GRANT EXECUTE ON FUNCTION paystream.drop_event(text, text, text, text, text)
TO paystream_operator;

-- How many events wait and for how long the oldest has (seconds), for the
-- worker's /metrics (its login may not read the table) and for operators.
CREATE OR REPLACE FUNCTION paystream.ps_waiting_summary(OUT waiting bigint,
                                                        OUT oldest_age_s double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*), coalesce(extract(epoch FROM now() - min(first_wait_at))::double precision, 0)
      FROM paystream.waiting_events
$$;

GRANT EXECUTE ON FUNCTION paystream.ps_waiting_summary() TO paystream_worker, paystream_operator;
