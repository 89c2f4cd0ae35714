-- one deduct_credits of 1 credit with a fresh video id, a random user of :users
\set u random(1, :users)
SELECT paystream.deduct_credits(('00000000-0000-4000-8000-' || lpad(:u::text, 12, '0'))::uuid, gen_random_uuid(), 1, 'bench');
