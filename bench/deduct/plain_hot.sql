-- the same work as deduct_credits in plain SQL: lock the balance, check and
-- move it, remember the usage, append a ledger row; always the same user
BEGIN;
SELECT credits FROM plain.accounts WHERE user_id = '00000000-0000-4000-8000-000000000000' FOR UPDATE;
UPDATE plain.accounts SET credits = credits - 1, updated_at = now() WHERE user_id = '00000000-0000-4000-8000-000000000000' AND credits >= 1 RETURNING credits \gset
INSERT INTO plain.usages (user_id, video_id, credits) VALUES ('00000000-0000-4000-8000-000000000000', gen_random_uuid(), 1) RETURNING video_id \gset
INSERT INTO plain.ledger (user_id, amount, kind, reference, balance_after) VALUES ('00000000-0000-4000-8000-000000000000', -1, 'usage', :video_id, :credits);
END;
