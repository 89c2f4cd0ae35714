-- 015_drop_resolve_user.sql: ps_resolve_user and its lookup _stored_user go. The worker finds the user
-- of an event that names none inside ps_apply_batch, at the event's turn
-- (sql/customers.sql, _find_user); nothing calls the one-call lookup.
DROP FUNCTION IF EXISTS paystream.ps_resolve_user(text, text),
    paystream._stored_user(text, text);
