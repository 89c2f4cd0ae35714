-- 008_worker_fewer_writes.sql: the same rules in fewer statements: paid
-- invoices, and the batch's check for events already done; room on the
-- account pages for their updates.
--
-- A paid invoice comes as two events, invoice.paid and
-- invoice.payment_succeeded, and the second one finds nothing to do. Until
-- now it read the plan and the customer mapping and locked the account before
-- finding so; one statement now tells it (see _invoice_paid). Granting a new
-- period took three statements on the account row (expire the leftover, grant
-- the plan's credits, store the period) and an upgrade two; each is now one
-- (_ledger_period). The ledger rows, their order and their notes are those of
-- 005. ps_apply_batch finds the batch's events already applied or skipped in
-- one statement instead of one per event.
--
-- Fill factor. An account row is updated several times by one transaction
-- (a batch of events); the versions it leaves cannot be pruned before it
-- commits, so a full page sends the next version to another page and every
-- index of the table gets a new entry (30 % of the updates in bench/worker).
-- Pages filled to half leave room for the new versions on the same page.
-- ALTER TABLE does not rewrite the pages already there: new pages only.

ALTER TABLE paystream.subscriptions SET (fillfactor = 50);
ALTER TABLE paystream.subscription_history SET (fillfactor = 50);

-- The subscription bucket's two moves of a paid invoice and the credit period
-- they belong to, in one statement: p_expire (zero or the leftover taken
-- back, negative) then p_grant (the plan's credits of a new period, or an
-- upgrade's difference), each a ledger row with the balance after it unless
-- its amount is zero; then the period's end and allowance are stored. The
-- only writer of balances besides _ledger_add, with the same rule: one row
-- per change, in one statement with the balance. The caller holds the row
-- lock (_sub_place).
CREATE FUNCTION paystream._ledger_period(p_user_id uuid, p_expire integer, p_grant integer,
                                         p_grant_kind text, p_invoice text, p_event_id text,
                                         p_grant_description text, p_period_end bigint,
                                         p_total integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        UPDATE paystream.subscriptions
           SET credits_remaining = credits_remaining + p_expire + p_grant,
               credit_period_end = p_period_end, credits_total = p_total, updated_at = now()
         WHERE user_id = p_user_id
        RETURNING credits_remaining AS after)
    INSERT INTO paystream.credit_transactions (user_id, bucket, amount, kind, reference,
                                               event_id, description, balance_after)
    SELECT p_user_id, 'subscription', r.amount, r.kind, p_invoice, p_event_id, r.description,
           r.after
      FROM moved
     CROSS JOIN LATERAL (VALUES (1, p_expire, 'subscription_expire', 'period ended',
                                 moved.after - p_grant),
                                (2, p_grant, p_grant_kind, p_grant_description, moved.after))
           AS r(i, amount, kind, description, after)
     WHERE r.amount <> 0
     ORDER BY r.i;
END $$;

-- 005's _invoice_paid (the period rule of SPEC 4), with the two changes
-- above. The already-granted case: a grant or upgrade row of this invoice
-- exists, and the user's subscription is still this one and not final. Then
-- the period rule gives nothing whatever the rest of the state: the credit
-- period only moves forward, and within it the allowance only grows, so it is
-- at least this invoice's X. The full path would return the same note. A
-- replaced or final subscription goes the full way, for its own note.
CREATE OR REPLACE FUNCTION paystream._invoice_paid(p_user_id uuid, p_sub text, p_customer text,
                                                   p_invoice text, p_prices text[],
                                                   p_period_end bigint, p_event_id text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v paystream.subscriptions;
    v_plan paystream.plans;
    v_price text;
BEGIN
    IF EXISTS (SELECT FROM paystream.subscriptions s
                WHERE s.user_id = p_user_id AND s.stripe_subscription_id = p_sub
                  AND NOT paystream._status_final(s.status)
                  AND EXISTS (SELECT FROM paystream.credit_transactions t
                               WHERE t.kind IN ('subscription_grant', 'subscription_upgrade')
                                 AND t.reference = p_invoice AND t.user_id = p_user_id)) THEN
        RETURN 'nothing: period already granted';
    END IF;
    IF p_prices IS NULL OR cardinality(p_prices) = 0 THEN
        RAISE EXCEPTION 'invoice % has no subscription line with a price', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH v_price IN ARRAY p_prices LOOP
        v_plan := paystream._plan_for_price(v_price);
    END LOOP;
    IF cardinality(p_prices) > 1 THEN
        SELECT * INTO v_plan FROM paystream.plans WHERE stripe_price_id = ANY (p_prices)
         ORDER BY credits_per_period DESC, id LIMIT 1;
    END IF;
    IF p_period_end IS NULL THEN
        RAISE EXCEPTION 'invoice % has no subscription line period end', p_invoice
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM paystream._customer_link(p_customer, p_user_id, p_event_id);
    a := paystream._sub_place(p_user_id, p_sub, p_customer, NULL, p_event_id);
    v := a.v;
    IF a.role = 'undecided' THEN
        PERFORM paystream._sub_undecided('invoice ' || p_invoice, p_sub,
                                         v.stripe_subscription_id);
    ELSIF a.role = 'replaced' THEN
        RETURN paystream._sub_replaced_note(p_sub, v.stripe_subscription_id)
               || ': invoice ' || p_invoice || ' grants nothing';
    END IF;
    IF paystream._status_final(v.status) THEN
        RETURN 'nothing: subscription ' || v.status;
    END IF;
    IF v.credit_period_end IS NULL OR p_period_end > v.credit_period_end THEN
        PERFORM paystream._ledger_period(p_user_id, -v.credits_remaining,
                                         v_plan.credits_per_period, 'subscription_grant',
                                         p_invoice, p_event_id,
                                         'plan ' || v_plan.id || ' period credits',
                                         p_period_end, v_plan.credits_per_period);
        RETURN 'granted ' || v_plan.credits_per_period;
    END IF;
    IF p_period_end = v.credit_period_end AND v_plan.credits_per_period > v.credits_total THEN
        PERFORM paystream._ledger_period(p_user_id, 0,
                                         v_plan.credits_per_period - v.credits_total,
                                         'subscription_upgrade', p_invoice, p_event_id,
                                         'upgrade to plan ' || v_plan.id,
                                         v.credit_period_end, v_plan.credits_per_period);
        RETURN 'upgraded by ' || (v_plan.credits_per_period - v.credits_total);
    END IF;
    RETURN 'nothing: period already granted';
END $$;

REVOKE EXECUTE ON FUNCTION
    paystream._ledger_period(uuid, integer, integer, text, text, text, text, bigint, integer)
FROM PUBLIC;

-- 006's ps_apply_batch, with the events already done found by one statement
-- for the whole batch instead of one primary-key read per event (5 µs each).
-- The read is made once, before the first event: an event that another
-- worker commits after it is applied here too, and the batch's one INSERT of
-- event rows then fails the whole call with PS001, as for an event that
-- worker has not committed yet (006). It takes up to 64 rows (006: 32), one
-- read of a worker (worker/batch.h); a worker of this version against a
-- database without 008 has its full reads refused (22023) and applies them
-- one event per transaction.
CREATE OR REPLACE FUNCTION paystream.ps_apply_batch(p_events text[])
RETURNS TABLE (k integer, status text, user_id uuid, note text, err_code text,
               err_message text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r text[];
    v_done text[];  -- applied or skipped before this event
    v_ids text[] := '{}';
    v_types text[] := '{}';
    v_livemode boolean[] := '{}';
    v_versions text[] := '{}';
    v_created bigint[] := '{}';
    v_streams text[] := '{}';
    v_statuses text[] := '{}';
    v_users uuid[] := '{}';
    v_notes text[] := '{}';
BEGIN
    IF array_ndims(p_events) IS DISTINCT FROM 2 OR array_length(p_events, 2) <> 22
       OR array_length(p_events, 1) > 64 THEN
        RAISE EXCEPTION 'ps_apply_batch takes 1 to 64 rows of 22 columns'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one primary-key read per event, as a subplan: a plan that stays an
    -- index scan however small the table was when it was made (a join or
    -- = ANY would not)
    SELECT coalesce(array_agg(i.id), '{}') INTO v_done
      FROM unnest(p_events[:][2:2]) AS i(id)
     WHERE (SELECT w.status FROM paystream.webhook_events w WHERE w.event_id = i.id)
           IN ('applied', 'skipped');
    k := 0;
    FOREACH r SLICE 1 IN ARRAY p_events LOOP
        k := k + 1;
        user_id := NULL;
        note := NULL;
        err_code := NULL;
        err_message := NULL;
        IF r[2] = ANY (v_done) THEN
            status := 'duplicate';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            IF r[1] <> 'ps_charge_refunded' THEN
                user_id := r[12]::uuid;
            END IF;
            IF r[1] = 'record' THEN
                status := r[8];
                note := r[9];
                IF status IS NULL OR status NOT IN ('applied', 'skipped') THEN
                    RAISE EXCEPTION 'bad final status %', status
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
            ELSIF r[1] = 'ps_charge_refunded' THEN
                SELECT b.status, b.note INTO status, note FROM paystream._batch_refund(r) b;
            ELSE
                IF user_id IS NULL THEN
                    user_id := paystream._batch_user(r[10], r[11]);
                END IF;
                note := paystream._batch_rule(r, user_id);
                status := CASE WHEN starts_with(note, 'skipped: ') THEN 'skipped'
                               ELSE 'applied' END;
            END IF;
        EXCEPTION
            WHEN deadlock_detected OR serialization_failure THEN
                RAISE;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
                status := 'failed';
                note := NULL;
        END;
        IF status <> 'failed' THEN
            v_done := v_done || r[2];
            v_ids := v_ids || r[2];
            v_types := v_types || r[3];
            v_livemode := v_livemode || r[4]::boolean;
            v_versions := v_versions || r[5];
            v_created := v_created || r[6]::bigint;
            v_streams := v_streams || r[7];
            v_statuses := v_statuses || status;
            v_users := v_users || user_id;
            v_notes := v_notes || note;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM paystream._batch_write(v_ids, v_types, v_livemode, v_versions, v_created, v_streams,
                                   v_statuses, v_users, v_notes);
END $$;
