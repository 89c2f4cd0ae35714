-- plain_hot.sql's transaction for a random user of :users
\set u random(1, :users)
BEGIN;
SELECT credits FROM plain.accounts WHERE user_id = ('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid FOR UPDATE;
UPDATE plain.accounts SET credits = credits - 1, updated_at = now() WHERE user_id = ('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid AND credits >= 1 RETURNING credits \gset
INSERT INTO plain.usages (user_id, video_id, credits) VALUES (('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid, gen_random_uuid(), 1) RETURNING video_id \gset
INSERT INTO plain.ledger (user_id, amount, kind, reference, balance_after) VALUES (('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid, -1, 'usage', :video_id, :credits);
END;
