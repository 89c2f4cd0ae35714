-- 010_batch_event.sql: the worker's batch row as a named type, and the move
-- of every function, trigger and grant out of the migrations into sql/*.sql.
--
-- A database built by the nine migrations of before (001_ledger_tables.sql
-- .. 009_batch_generic_plans.sql, folded into 001_ledger.sql: versions 2 to
-- 9 are never used again) has the tables of 001_ledger.sql already, recorded
-- under version 1; its functions are dropped here and created again
-- from the code files in the same transaction (`paystreamctl migrate`), so it
-- ends with exactly the schema of a fresh database. A database that stopped
-- part-way through the old migrations is refused: migrate it with the
-- paystream that built it first.

DO $$
BEGIN
    IF EXISTS (SELECT FROM paystream.schema_migrations WHERE name = '001_ledger_tables.sql')
       AND NOT EXISTS (SELECT FROM paystream.schema_migrations
                        WHERE name = '009_batch_generic_plans.sql') THEN
        RAISE EXCEPTION 'this database stopped part-way through the old migrations (001_ledger_tables.sql .. 009_batch_generic_plans.sql): finish them with the paystream version that built it, then migrate again'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END $$;

-- Every function of the schema is code now (sql/code.list), the trigger
-- function included (its triggers go with it and come back from sql/ledger.sql).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'paystream'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
END $$;

-- One event of ps_apply_batch (sql/batch.sql): the event, then what the
-- worker's handler decided, every input by name. A row whose rule is
-- 'record' carries the outcome (status, note) and applies no rule; any other
-- rule reads the fields it needs, NULL elsewhere. worker/ledger_row.c writes
-- these fields in this order (test_sql_batch checks that the two agree).
CREATE TYPE paystream.batch_event AS (
    -- the event
    event_id             text,
    type                 text,
    livemode             boolean,
    api_version          text,
    created              bigint,
    stream_id            text,
    -- the rule to apply, or 'record' with the outcome in status and note
    rule                 text,
    status               text,
    note                 text,
    -- whose: the user, or NULL to find by customer / subscription at its turn
    user_id              uuid,
    customer             text,
    subscription         text,
    -- a subscription's state (subscription_state)
    sub_status           text,
    price                text,    -- a pack's price (pack_paid, pack_failed)
    period_start         bigint,
    period_end           bigint,  -- also an invoice's period (invoice_paid)
    cancel_at_period_end boolean,
    sub_created          bigint,
    -- a paid invoice (invoice_paid)
    invoice              text,
    prices               text[],  -- also a subscription's item prices
    -- a credit-pack checkout (pack_paid, pack_failed)
    session              text,
    pack_id              text,
    payment_intent       text,    -- also a charge's (charge_refunded)
    -- a refunded charge (charge_refunded)
    charge               text,
    amount               bigint,
    amount_refunded      bigint,
    pays_invoice         boolean
);
