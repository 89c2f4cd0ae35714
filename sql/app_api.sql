-- app_api.sql: the app's SQL API (SPEC §5): read balances, spend credits,
-- page through the history, and operators' grants. All SECURITY DEFINER with
-- a fixed search_path, so a caller cannot redirect the names they use; which
-- role may call which is in sql/roles.sql. Balances change only through the
-- ledger core (sql/ledger.sql).

CREATE OR REPLACE FUNCTION paystream.get_credit_balance(p_user_id uuid)
RETURNS TABLE (subscription_credits integer, overage_credits integer, total bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
    SELECT coalesce(s.credits_remaining, 0), coalesce(s.overage_credits, 0),
           coalesce(s.credits_remaining, 0)::bigint + coalesce(s.overage_credits, 0)
      FROM (SELECT 1) AS one
      LEFT JOIN subscriptions s ON s.user_id = p_user_id
$$;

-- Spending (SPEC §4): subscription credits can be spent unless the current
-- subscription is paused, unpaid or incomplete (then they are kept); overage
-- credits always. The one definition of what can be spent.
CREATE OR REPLACE FUNCTION paystream._spendable(v paystream.subscriptions) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT v.overage_credits::bigint
           + CASE WHEN v.status IN ('paused', 'unpaid', 'incomplete') THEN 0
                  ELSE v.credits_remaining END
$$;

CREATE OR REPLACE FUNCTION paystream.check_credits(p_user_id uuid, p_required integer)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
BEGIN
    IF p_required IS NULL OR p_required <= 0 THEN
        RAISE EXCEPTION 'p_required must be a positive number of credits, got %', p_required
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce((SELECT _spendable(s) FROM subscriptions s WHERE s.user_id = p_user_id), 0)
           >= p_required;
END $$;

-- Spend p_credits for one unit of work: overage first, then spendable
-- subscription credits. False and no change when that total is short. The same p_video_id charges
-- once: a repeated call returns true and changes nothing.
CREATE OR REPLACE FUNCTION paystream.deduct_credits(p_user_id uuid, p_video_id uuid, p_credits integer,
                                         p_description text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v_moved integer;
    v subscriptions;
    v_over integer;
BEGIN
    IF p_credits IS NULL OR p_credits <= 0 THEN
        RAISE EXCEPTION 'p_credits must be a positive number of credits, got %', p_credits
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_user_id IS NULL OR p_video_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id and p_video_id are required'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO v FROM subscriptions WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- checked under the row lock, so concurrent repeats of one video serialise here
    PERFORM 1 FROM credit_usages WHERE user_id = p_user_id AND video_id = p_video_id;
    IF FOUND THEN
        RETURN true;
    END IF;
    IF _spendable(v) < p_credits THEN
        RETURN false;
    END IF;
    INSERT INTO credit_usages (user_id, video_id, credits) VALUES (p_user_id, p_video_id, p_credits);
    v_over := least(v.overage_credits, p_credits);
    v_moved := _ledger_add(p_user_id, 'overage', -v_over, 'usage', p_video_id::text, NULL,
                        p_description);
    v_moved := _ledger_add(p_user_id, 'subscription', v_over - p_credits, 'usage',
                        p_video_id::text, NULL, p_description);
    RETURN true;
END $$;

-- Operators' grants (promotions, support; paystream_operator only). With
-- p_reference the grant happens once per user and reference: a repeated call
-- returns the balance and changes nothing.
CREATE OR REPLACE FUNCTION paystream.grant_credits(p_user_id uuid, p_credits integer, p_bucket text,
                                        p_description text, p_reference text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
DECLARE
    v subscriptions;
BEGIN
    IF p_credits IS NULL OR p_credits <= 0 THEN
        RAISE EXCEPTION 'p_credits must be a positive number of credits, got %', p_credits
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_bucket IS NULL OR p_bucket NOT IN ('subscription', 'overage') THEN
        RAISE EXCEPTION 'p_bucket must be ''subscription'' or ''overage'', got %', p_bucket
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v := _account_lock(p_user_id);
    IF p_reference IS NOT NULL AND EXISTS (SELECT 1 FROM credit_transactions
            WHERE kind = 'operator_grant' AND reference = p_reference
              AND user_id = p_user_id) THEN
        RETURN CASE p_bucket WHEN 'overage' THEN v.overage_credits ELSE v.credits_remaining END;
    END IF;
    RETURN _ledger_add(p_user_id, p_bucket, p_credits, 'operator_grant',
                       coalesce(p_reference, 'operator:' || gen_random_uuid()), NULL,
                       p_description);
END $$;

-- Newest first; pass the last row's id as p_before for the next page.
CREATE OR REPLACE FUNCTION paystream.get_credit_history(p_user_id uuid, p_limit integer DEFAULT 50,
                                             p_before bigint DEFAULT NULL)
RETURNS TABLE (id bigint, created_at timestamptz, bucket text, amount integer, kind text,
               reference text, description text, balance_after integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = paystream, pg_temp AS $$
    SELECT t.id, t.created_at, t.bucket, t.amount, t.kind, t.reference, t.description,
           t.balance_after
      FROM credit_transactions t
     WHERE t.user_id = p_user_id AND (p_before IS NULL OR t.id < p_before)
     ORDER BY t.id DESC
     LIMIT greatest(1, least(coalesce(p_limit, 50), 1000))
$$;

GRANT EXECUTE ON FUNCTION
    paystream.check_credits(uuid, integer),
    paystream.deduct_credits(uuid, uuid, integer, text)
TO paystream_app;
GRANT EXECUTE ON FUNCTION
    paystream.get_credit_balance(uuid),
    paystream.get_credit_history(uuid, integer, bigint)
TO paystream_app, paystream_operator;
GRANT EXECUTE ON FUNCTION paystream.grant_credits(uuid, integer, text, text, text)
TO paystream_operator;
