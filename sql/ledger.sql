-- ledger.sql: the ledger core. Every balance change goes through _ledger_add
-- or _ledger_period: one ledger row per change, written in the same statement
-- as the balance it moves, so that a balance always equals the sum of its
-- bucket's rows (`paystreamctl reconcile` checks it). The ledger is
-- append-only: the triggers refuse UPDATE, DELETE and TRUNCATE to everyone.
--
-- search_path. The internal helpers (_*) of every code file set none and name
-- everything schema-qualified: only the owner may execute them (sql/roles.sql),
-- so they run only inside a SECURITY DEFINER caller's fixed search_path, and a
-- SET on each would save and restore the GUC state on every call.
-- Lock order, everywhere: the user's subscriptions row first (_account_lock),
-- then any pack_purchases row.
--
-- Calls. A helper is called in an assignment (`v := paystream._f(...)`), even
-- where its result is not needed, never with PERFORM: PERFORM runs a query
-- through the executor (about 16,000 instructions of set-up per call on the
-- worker's paths), an assignment of a function call is evaluated directly.
-- So every helper returns something: the balance after, the user, the row.

CREATE OR REPLACE FUNCTION paystream._refuse_ledger_rewrite() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'credit_transactions is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'correct a balance with a new row (grant_credits), never by rewriting history';
END $$;

CREATE OR REPLACE TRIGGER credit_transactions_append_only
    BEFORE UPDATE OR DELETE ON paystream.credit_transactions
    FOR EACH ROW EXECUTE FUNCTION paystream._refuse_ledger_rewrite();
CREATE OR REPLACE TRIGGER credit_transactions_no_truncate
    BEFORE TRUNCATE ON paystream.credit_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION paystream._refuse_ledger_rewrite();

-- Lock (creating if needed) the user's row; every balance change starts here.
CREATE OR REPLACE FUNCTION paystream._account_lock(p_user_id uuid)
RETURNS paystream.subscriptions
LANGUAGE plpgsql AS $$
DECLARE
    v paystream.subscriptions;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'user id is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO paystream.subscriptions (user_id) VALUES (p_user_id)
            ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO v FROM paystream.subscriptions WHERE user_id = p_user_id FOR UPDATE;
    END IF;
    RETURN v;
END $$;

-- The user's account, locked (_account_lock), after the customer is linked to
-- the user (_customer_link, sql/customers.sql). Both are usually there: then
-- one statement reads the mapping and locks the row.
CREATE OR REPLACE FUNCTION paystream._account_open(p_user_id uuid, p_customer text,
                                                   p_event_id text)
RETURNS paystream.subscriptions
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_owner uuid;
BEGIN
    SELECT s AS account, (SELECT c.user_id FROM paystream.customers c
                           WHERE c.stripe_customer_id = p_customer) AS owner
      INTO r
      FROM paystream.subscriptions s
     WHERE s.user_id = p_user_id
       FOR UPDATE;
    IF FOUND AND (p_customer IS NULL OR r.owner = p_user_id) THEN
        RETURN r.account;
    END IF;
    v_owner := paystream._customer_link(p_customer, p_user_id, p_event_id);
    RETURN paystream._account_lock(p_user_id);
END $$;

-- Append one ledger row and move the bucket's balance by the same amount, in
-- one statement. The domains make a negative balance an error, never a
-- state. The caller holds the user's row lock (_account_lock).
CREATE OR REPLACE FUNCTION paystream._ledger_add(p_user_id uuid, p_bucket text,
                                                 p_amount integer, p_kind text,
                                                 p_reference text, p_event_id text,
                                                 p_description text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_after integer;
BEGIN
    IF p_amount = 0 THEN
        RETURN NULL;
    END IF;
    IF p_bucket IS NULL OR p_bucket NOT IN ('overage', 'subscription') THEN
        RAISE EXCEPTION 'unknown bucket %', p_bucket USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH moved AS (
        UPDATE paystream.subscriptions
           SET overage_credits = overage_credits
                                 + CASE WHEN p_bucket = 'overage' THEN p_amount ELSE 0 END,
               credits_remaining = credits_remaining
                                   + CASE WHEN p_bucket = 'subscription' THEN p_amount ELSE 0 END,
               updated_at = now()
         WHERE user_id = p_user_id
        RETURNING CASE WHEN p_bucket = 'overage' THEN overage_credits
                       ELSE credits_remaining END AS after)
    INSERT INTO paystream.credit_transactions (user_id, bucket, amount, kind, reference,
                                               event_id, description, balance_after)
    SELECT p_user_id, p_bucket, p_amount, p_kind, p_reference, p_event_id,
           coalesce(p_description, ''), moved.after
      FROM moved
    RETURNING balance_after INTO v_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no account for user %', p_user_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_after;
END $$;

-- The subscription bucket's two moves of a paid invoice and the credit period
-- they belong to, in one statement: p_expire (zero or the leftover taken
-- back, negative) then p_grant (a new period's credits, or an upgrade's
-- difference), each a ledger row with the balance after it unless its amount
-- is zero; then the period's end and allowance are stored. Returns the
-- bucket's balance after. The caller holds the row lock (_account_lock).
CREATE OR REPLACE FUNCTION paystream._ledger_period(p_user_id uuid, p_expire integer,
                                                    p_grant integer, p_grant_kind text,
                                                    p_invoice text, p_event_id text,
                                                    p_grant_description text,
                                                    p_period_end bigint, p_total integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_after integer;
BEGIN
    WITH moved AS (
        UPDATE paystream.subscriptions
           SET credits_remaining = credits_remaining + p_expire + p_grant,
               credit_period_end = p_period_end, credits_total = p_total, updated_at = now()
         WHERE user_id = p_user_id
        RETURNING credits_remaining AS after),
    added AS (
        INSERT INTO paystream.credit_transactions (user_id, bucket, amount, kind, reference,
                                                   event_id, description, balance_after)
        SELECT p_user_id, 'subscription', r.amount, r.kind, p_invoice, p_event_id,
               r.description, r.after
          FROM moved
         CROSS JOIN LATERAL (VALUES (1, p_expire, 'subscription_expire', 'period ended',
                                     moved.after - p_grant),
                                    (2, p_grant, p_grant_kind, p_grant_description, moved.after))
               AS r(i, amount, kind, description, after)
         WHERE r.amount <> 0
         ORDER BY r.i)
    SELECT after INTO v_after FROM moved;
    RETURN v_after;
END $$;
