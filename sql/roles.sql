-- roles.sql: the least-privilege roles (SPEC §5), the operators' table
-- privileges, and nothing for PUBLIC. Applied first, so that no function is
-- ever executable by PUBLIC; each code file grants its own functions below
-- them. The roles are NOLOGIN groups: grant them to logins, one per program,
--   CREATE ROLE app_login LOGIN PASSWORD '...' IN ROLE paystream_app;
--  - paystream_worker: the worker's entry points (ps_*), nothing else;
--  - paystream_app: the app's server side: check_credits, deduct_credits,
--    get_credit_balance, get_credit_history, get_subscription;
--  - paystream_operator: what paystreamctl needs without being a superuser:
--    grant_credits, the balance and history reads, the worker's batch entry
--    point (replay, dead retry), reading the tables (inspection, reconcile)
--    and writing plans, their prices and credit packs (plans load);
--  - paystream_user: safe for a browser-facing role (PostgREST's or
--    Supabase's `authenticated`): only the my_* functions (sql/user_api.sql).
-- No role has any other table privilege: every write goes through SECURITY
-- DEFINER functions, and nobody can rewrite the ledger (sql/ledger.sql's
-- triggers refuse it even to the owner). Code files only ever add grants: a
-- privilege taken away comes with a migration that revokes it (as 012 does).

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['paystream_worker', 'paystream_app', 'paystream_operator',
                             'paystream_user'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

REVOKE ALL ON SCHEMA paystream FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA paystream FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA paystream FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA paystream FROM PUBLIC;
-- functions created from now on (as this role) are not executable by PUBLIC:
-- PostgreSQL's default is a global grant, so revoke it globally for the
-- migrating role (a per-schema REVOKE cannot remove a global default)
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

GRANT USAGE ON SCHEMA paystream TO paystream_worker, paystream_app, paystream_operator,
                                   paystream_user;

GRANT SELECT ON paystream.subscriptions, paystream.subscription_history,
                paystream.credit_transactions, paystream.webhook_events, paystream.plans,
                paystream.plan_prices, paystream.credit_packs, paystream.pack_purchases,
                paystream.customers, paystream.credit_usages, paystream.invoices,
                paystream.payments, paystream.disputes, paystream.waiting_events
TO paystream_operator;
GRANT INSERT, UPDATE ON paystream.plans, paystream.plan_prices, paystream.credit_packs
TO paystream_operator;
