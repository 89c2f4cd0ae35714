-- 018_dropped_events.sql: an operator may drop a dead letter that can never
-- apply (SPEC §6, `paystreamctl dead drop ID --reason TEXT`): the event is
-- recorded `dropped`, with the reason (note) and who dropped it. A failed
-- attempt records the event's user when it is known (ps_event_failed gains
-- p_user_id): `dead list` shows whose each dead letter is.
ALTER DOMAIN paystream.event_status DROP CONSTRAINT event_status_check;
ALTER DOMAIN paystream.event_status ADD CONSTRAINT event_status_check CHECK (VALUE IN
    ('applied', 'skipped', 'retrying', 'failed', 'waiting', 'dropped'));
ALTER TABLE paystream.webhook_events ADD COLUMN dropped_by text;
DROP FUNCTION IF EXISTS
    paystream.ps_event_failed(text, text, boolean, text, bigint, text, text, integer, boolean);
