-- setup.sql - bench/deduct's data, run once after `paystreamctl migrate`.
-- paystream side: one hot user and :users other users, each with plenty of
-- overage credits (granted through grant_credits, so the ledger is consistent),
-- and a login for the app role. Plain side: the same transaction's tables
-- without paystream's functions, roles or triggers, with the same indexes.

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') THEN
        CREATE ROLE bench_app LOGIN IN ROLE paystream_app;
    END IF;
END $$;

SELECT paystream.grant_credits('00000000-0000-4000-8000-000000000000', 1000000000, 'overage',
                               'bench: hot user');
SELECT count(paystream.grant_credits(('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid,
                                     10000000, 'overage', 'bench'))
  FROM generate_series(1, :users) AS u;

CREATE SCHEMA plain;
CREATE TABLE plain.accounts (
    user_id uuid PRIMARY KEY,
    credits integer NOT NULL CHECK (credits >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE plain.usages (
    user_id    uuid NOT NULL,
    video_id   uuid NOT NULL,
    credits    integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, video_id)
);
CREATE TABLE plain.ledger (
    id            bigserial PRIMARY KEY,
    user_id       uuid NOT NULL,
    amount        integer NOT NULL,
    kind          text NOT NULL,
    reference     text NOT NULL,
    balance_after integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ledger_user_idx ON plain.ledger (user_id, id DESC);
INSERT INTO plain.accounts (user_id, credits)
SELECT ('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid,
       CASE WHEN u = 0 THEN 1000000000 ELSE 10000000 END
  FROM generate_series(0, :users) AS u;

VACUUM ANALYZE;
CHECKPOINT;
