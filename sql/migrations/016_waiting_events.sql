-- 016_waiting_events.sql: an event that needs another event first waits
-- (SPEC §3, "Waiting is not failing"). Its rule raised SQLSTATE 55000; the
-- worker keeps it here, in PostgreSQL, with what it needs to apply it again
-- and to dead-letter it later without Redis, and takes it off the stream's
-- pending list only once this row is committed (sql/events.sql:
-- ps_event_wait, ps_waiting_due). webhook_events records it `waiting`.
ALTER DOMAIN paystream.event_status DROP CONSTRAINT event_status_check;
ALTER DOMAIN paystream.event_status ADD CONSTRAINT event_status_check CHECK (VALUE IN
    ('applied', 'skipped', 'retrying', 'failed', 'waiting'));

DROP INDEX paystream.webhook_events_status_idx;
CREATE INDEX webhook_events_status_idx ON paystream.webhook_events (status)
    WHERE status IN ('retrying', 'failed', 'waiting');

CREATE TABLE paystream.waiting_events (
    event_id        text PRIMARY KEY,
    stream_id       text NOT NULL,     -- the entry it came in (its dead letter names it)
    type            text NOT NULL,
    body            text NOT NULL,     -- the raw event JSON, as ingest received it
    received_ms     bigint,
    reason          text NOT NULL,     -- what it waits for: the rule's message
    first_wait_at   timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL,
    waits           integer NOT NULL DEFAULT 0,  -- re-applies that still waited
    failures        integer NOT NULL DEFAULT 0,  -- real failures since it started waiting
    error           text,                        -- the last real failure
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX waiting_events_next_idx ON paystream.waiting_events (next_attempt_at);
