-- roles.sql: the least-privilege roles (SPEC §5), and no privilege for
-- PUBLIC. Applied first, so that no function is ever executable by PUBLIC;
-- each code file grants its own entry points below its functions.
-- paystream_worker may execute the worker's entry points (ps_*) and the app
-- API; paystream_app only the app API. Neither has any table privilege: all
-- writes go through SECURITY DEFINER functions, and nobody can rewrite the
-- ledger (sql/ledger.sql's triggers refuse it even to the owner). Both are
-- NOLOGIN group roles: grant them to your logins, e.g.
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
-- functions created from now on (as this role) are not executable by PUBLIC:
-- PostgreSQL's default is a global grant, so revoke it globally for the
-- migrating role (a per-schema REVOKE cannot remove a global default)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA paystream TO paystream_worker, paystream_app;
