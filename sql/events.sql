-- events.sql: the record of every Stripe event the worker has seen
-- (webhook_events), which is what makes applying an event idempotent: an
-- event recorded `applied` or `skipped` changes nothing when it comes again.
-- The worker writes an event's row once, with its outcome, in the batch that
-- applies it (_batch_write, sql/batch.sql); a failed attempt is recorded after
-- the rollback (ps_event_failed).

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
    paystream.ps_event_failed(text, text, boolean, text, bigint, text, text, integer, boolean)
TO paystream_worker, paystream_operator;
