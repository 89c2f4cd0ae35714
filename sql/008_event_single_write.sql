-- 008_event_single_write.sql: one write of the webhook_events row per event
-- in a batch instead of INSERT 'retrying' at open and UPDATE at finish (the
-- UPDATE was never HOT: `status` is in a partial index).
-- _event_open now only reads: it raises PS001 when the event is already
-- applied or skipped, and writes nothing. _event_done writes the row once,
-- with its final status: INSERT, or, over a 'retrying'/'failed' row of
-- earlier attempts, UPDATE (attempts counted, error cleared).
-- Two workers applying the same event at once: the second one's INSERT waits
-- on the unique key for the first one's COMMIT, then finds the row applied
-- and raises PS001; the whole call (ledger work included) is undone with it,
-- and the worker rolls the event back to its savepoint and reports it as a
-- duplicate. If the first one rolls back instead, the second one's INSERT
-- goes through.
-- The ps_*_event entry points keep their signatures; p_open still says
-- whether to check the event first, and the event's fields (p_type ...
-- p_stream_id) are now always needed: the finish inserts them. The one-event
-- transaction (ps_event_begin, then ps_event_finish) is unchanged, but
-- ps_event_finish now raises when there is no row to finish.

CREATE OR REPLACE FUNCTION paystream._event_open(p_event_id text, p_type text,
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

-- 007's _event_finish, for the one-event transaction whose ps_event_begin
-- wrote the row: a missing row is an error, never a silent no-op.
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

-- ------------------------------------------------------- entry points --
-- 006's ps_X_event: check (when p_open), X, and the one write of the row.

CREATE OR REPLACE FUNCTION paystream.ps_checkout_subscription_event(
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

CREATE OR REPLACE FUNCTION paystream.ps_subscription_state_event(
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

CREATE OR REPLACE FUNCTION paystream.ps_subscription_past_due_event(
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

CREATE OR REPLACE FUNCTION paystream.ps_invoice_paid_event(
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

CREATE OR REPLACE FUNCTION paystream.ps_pack_paid_event(
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

CREATE OR REPLACE FUNCTION paystream.ps_pack_failed_event(
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
REVOKE EXECUTE ON FUNCTION
    paystream._event_done(text, text, boolean, text, bigint, text, text, uuid, text),
    paystream.ps_event_done(text, text, boolean, text, bigint, text, text, uuid, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    paystream.ps_event_done(text, text, boolean, text, bigint, text, text, uuid, text)
TO paystream_worker;
