-- 007_check_domains.sql: the same column rules, checked for less CPU.
--
-- PostgreSQL 15 rebuilds a table's CHECK constraints from their stored text
-- on every statement that writes the table (stringToNode, then expression
-- setup, per query). The worker's tables are written several times per event
-- by small statements, and the four CHECKs of credit_transactions cost more
-- than the INSERT itself: 34-49 µs against 16-18 µs without them. A domain's
-- CHECK is kept parsed in the type cache, so the single-column rules of 001
-- and 005 move to domains: the same rule on the same columns, the same
-- SQLSTATE (23514, check_violation); only the constraint named in the message
-- changes ("value for domain paystream.credits_count violates check
-- constraint ..."). Nothing else reads those names.

CREATE DOMAIN paystream.credits_count AS integer CHECK (VALUE >= 0);
CREATE DOMAIN paystream.credits_positive AS integer CHECK (VALUE > 0);
CREATE DOMAIN paystream.credits_delta AS integer CHECK (VALUE <> 0);
CREATE DOMAIN paystream.credit_bucket AS text CHECK (VALUE IN ('subscription', 'overage'));
CREATE DOMAIN paystream.credit_kind AS text CHECK (VALUE IN
    ('subscription_grant', 'subscription_upgrade', 'subscription_expire', 'pack_grant',
     'pack_refund', 'usage', 'operator_grant'));
CREATE DOMAIN paystream.subscription_status AS text CHECK (VALUE IN
    ('none', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due',
     'canceled', 'unpaid', 'paused'));
CREATE DOMAIN paystream.event_status AS text CHECK (VALUE IN
    ('applied', 'skipped', 'retrying', 'failed'));
CREATE DOMAIN paystream.purchase_status AS text CHECK (VALUE IN ('granted', 'payment_failed'));

ALTER TABLE paystream.subscriptions
    DROP CONSTRAINT subscriptions_status_check,
    DROP CONSTRAINT subscriptions_credits_remaining_check,
    DROP CONSTRAINT subscriptions_credits_total_check,
    DROP CONSTRAINT subscriptions_overage_credits_check,
    ALTER status TYPE paystream.subscription_status,
    ALTER credits_remaining TYPE paystream.credits_count,
    ALTER credits_total TYPE paystream.credits_count,
    ALTER overage_credits TYPE paystream.credits_count;

ALTER TABLE paystream.subscription_history
    DROP CONSTRAINT subscription_history_status_check,
    ALTER status TYPE paystream.subscription_status;

ALTER TABLE paystream.credit_transactions
    DROP CONSTRAINT credit_transactions_bucket_check,
    DROP CONSTRAINT credit_transactions_amount_check,
    DROP CONSTRAINT credit_transactions_kind_check,
    DROP CONSTRAINT credit_transactions_balance_after_check,
    ALTER bucket TYPE paystream.credit_bucket,
    ALTER amount TYPE paystream.credits_delta,
    ALTER kind TYPE paystream.credit_kind,
    ALTER balance_after TYPE paystream.credits_count;

ALTER TABLE paystream.credit_usages
    DROP CONSTRAINT credit_usages_credits_check,
    ALTER credits TYPE paystream.credits_positive;

ALTER TABLE paystream.pack_purchases
    DROP CONSTRAINT pack_purchases_credits_check,
    DROP CONSTRAINT pack_purchases_status_check,
    DROP CONSTRAINT pack_purchases_refund_due_check,
    DROP CONSTRAINT pack_purchases_refund_taken_check,
    DROP CONSTRAINT pack_purchases_refund_uncollected_check,
    ALTER credits TYPE paystream.credits_positive,
    ALTER status TYPE paystream.purchase_status,
    ALTER refund_due TYPE paystream.credits_count,
    ALTER refund_taken TYPE paystream.credits_count,
    ALTER refund_uncollected TYPE paystream.credits_count;

ALTER TABLE paystream.webhook_events
    DROP CONSTRAINT webhook_events_status_check,
    ALTER status TYPE paystream.event_status;
