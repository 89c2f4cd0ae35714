-- user_api.sql: what a signed-in user may call from the browser (SPEC §5),
-- through PostgREST or Supabase as a role granted paystream_user: their own
-- balance, history, subscription, and whether they can afford something;
-- never anyone else's, never spending or granting. The user is the verified
-- JWT's `sub` claim, which PostgREST and Supabase put in the setting
-- request.jwt.claims for each request; no argument names a user. A missing
-- or malformed claim is refused with a clear error (SQLSTATE 28000).

-- The signed-in user, from request.jwt.claims' `sub` (a UUID).
CREATE OR REPLACE FUNCTION paystream._jwt_user() RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_claims text := current_setting('request.jwt.claims', true);
    v_sub text;
BEGIN
    IF v_claims IS NULL OR v_claims = '' THEN
        RAISE EXCEPTION 'no signed-in user: request.jwt.claims is not set (call through PostgREST or Supabase with the user''s JWT)'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    BEGIN
        v_sub := v_claims::jsonb ->> 'sub';
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'request.jwt.claims is not JSON' USING ERRCODE = 'invalid_authorization_specification';
    END;
    IF v_sub IS NULL OR v_sub !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'the JWT''s sub claim must be the user''s UUID, got %',
            coalesce(left(v_sub, 64), '(none)') USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    RETURN v_sub::uuid;
END $$;

CREATE OR REPLACE FUNCTION paystream.my_credit_balance()
RETURNS TABLE (subscription_credits integer, overage_credits integer, total bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM paystream.get_credit_balance(paystream._jwt_user())
$$;

-- Newest first; pass the last row's id as p_before for the next page.
CREATE OR REPLACE FUNCTION paystream.my_credit_history(p_limit integer DEFAULT 50,
                                                       p_before bigint DEFAULT NULL)
RETURNS TABLE (id bigint, created_at timestamptz, bucket text, amount integer, kind text,
               reference text, description text, balance_after integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM paystream.get_credit_history(paystream._jwt_user(), p_limit, p_before)
$$;

CREATE OR REPLACE FUNCTION paystream.my_subscription()
RETURNS TABLE (plan text, status text, stripe_subscription_id text,
               current_period_start timestamptz, current_period_end timestamptz,
               cancel_at_period_end boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM paystream.get_subscription(paystream._jwt_user())
$$;

CREATE OR REPLACE FUNCTION paystream.my_check_credits(p_required integer)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT paystream.check_credits(paystream._jwt_user(), p_required)
$$;

GRANT EXECUTE ON FUNCTION
    paystream.my_credit_balance(),
    paystream.my_credit_history(integer, bigint),
    paystream.my_subscription(),
    paystream.my_check_credits(integer)
TO paystream_user;
