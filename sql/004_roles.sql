-- 004_roles.sql: least-privilege roles.
-- paystream_worker may execute the worker API (003) and the app API; the app
-- role only the app API (002). Neither has any table privilege: all writes go
-- through SECURITY DEFINER functions, and nobody can rewrite the ledger (the
-- trigger in 001 refuses UPDATE/DELETE/TRUNCATE even to the owner).
-- Both are NOLOGIN group roles: grant them to your login roles, e.g.
--   CREATE ROLE app_login LOGIN PASSWORD '...' IN ROLE paystream_app;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paystream_worker') THEN
        CREATE ROLE paystream_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'paystream_app') THEN
        CREATE ROLE paystream_app NOLOGIN;
    END IF;
END $$;

REVOKE ALL ON SCHEMA paystream FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA paystream FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA paystream FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA paystream FROM PUBLIC;
-- functions later migrations create (as this role) are not executable by
-- PUBLIC either: PostgreSQL's default is a global grant, so revoke it globally
-- for the migrating role (a per-schema REVOKE cannot remove a global default)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA paystream TO paystream_worker, paystream_app;

GRANT EXECUTE ON FUNCTION
    paystream.check_credits(uuid, integer),
    paystream.deduct_credits(uuid, uuid, integer, text),
    paystream.grant_credits(uuid, integer, text, text, text),
    paystream.get_credit_balance(uuid),
    paystream.get_credit_history(uuid, integer, bigint)
TO paystream_app, paystream_worker;

GRANT EXECUTE ON FUNCTION
    paystream.ps_event_begin(text, text, boolean, text, bigint, text),
    paystream.ps_event_finish(text, text, uuid, text),
    paystream.ps_event_failed(text, text, boolean, text, bigint, text, text, integer, boolean),
    paystream.ps_resolve_user(text, text),
    paystream.ps_checkout_subscription(uuid, text, text, text),
    paystream.ps_subscription_state(uuid, text, text, text, text, bigint, bigint, boolean,
                                    bigint, bigint, text),
    paystream.ps_subscription_past_due(uuid, text, text, bigint, text),
    paystream.ps_invoice_paid(uuid, text, text, text, text[], bigint, text),
    paystream.ps_pack_paid(uuid, text, text, text, text, text, text),
    paystream.ps_pack_failed(uuid, text, text, text, text, text),
    paystream.ps_charge_refunded(text, text, bigint, bigint, text)
TO paystream_worker;
