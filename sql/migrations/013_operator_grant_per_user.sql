-- 013_operator_grant_per_user.sql: an operator grant's reference is once per
-- user (SPEC §5): SPRING25 granted to user A no longer stops the grant of
-- SPRING25 to user B. Stripe's objects still grant once, whoever the user.
DROP INDEX paystream.credit_transactions_once_idx;
CREATE UNIQUE INDEX credit_transactions_once_idx ON paystream.credit_transactions (kind, reference)
    WHERE kind IN ('subscription_grant', 'subscription_upgrade', 'pack_grant');
CREATE UNIQUE INDEX credit_transactions_operator_once_idx
    ON paystream.credit_transactions (user_id, reference) WHERE kind = 'operator_grant';
