-- 012_revoke_function_grants.sql: the operator and browser roles take over
-- what the app and the workers could do beyond their job (SPEC §5): the app
-- no longer grants credits, the workers no longer call the app's functions.
-- Grants are code (each code file grants its functions) and code files only
-- ever add them; taking one away needs a migration like this one, after
-- which every code file is applied again and grants exactly what it says.
DO $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles
              WHERE rolname IN ('paystream_worker', 'paystream_app', 'paystream_operator',
                                'paystream_user') LOOP
        EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA paystream FROM %I', r);
    END LOOP;
END $$;
