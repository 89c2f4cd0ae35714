-- 005_worker_batch.sql: what the worker needs to apply several events in one
-- transaction (one savepoint each) with few round trips.
-- ps_event_open is ps_event_begin for a pipeline: instead of returning the
-- event's status for the worker to look at before it sends the handler's
-- statements, it raises when the event is already done, so that the worker
-- can send the event's statements in one flight and the server skips the rest
-- of them. SQLSTATE PS001 means "already applied or skipped: change nothing".

CREATE FUNCTION paystream.ps_event_open(p_event_id text, p_type text, p_livemode boolean,
                                        p_api_version text, p_created bigint, p_stream_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_status text := ps_event_begin(p_event_id, p_type, p_livemode, p_api_version, p_created,
                                    p_stream_id);
BEGIN
    IF v_status IN ('applied', 'skipped') THEN
        RAISE EXCEPTION 'event % already %', p_event_id, v_status USING ERRCODE = 'PS001';
    END IF;
END $$;

GRANT EXECUTE ON FUNCTION paystream.ps_event_open(text, text, boolean, text, bigint, text)
TO paystream_worker;
