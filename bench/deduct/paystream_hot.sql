-- one deduct_credits of 1 credit with a fresh video id, always the same user
SELECT paystream.deduct_credits('00000000-0000-4000-8000-000000000000', gen_random_uuid(), 1, 'bench');
