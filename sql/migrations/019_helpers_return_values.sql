-- 019_helpers_return_values.sql: the ledger helpers that returned nothing
-- return what they did (the customer's user, the balance after, what an
-- invoice granted), so that the rules call them in assignments rather than
-- with PERFORM, which runs a query through the executor on every call
-- (sql/ledger.sql). A function's result type cannot change in place: the
-- old ones go here, the code files create the new ones.
DROP FUNCTION IF EXISTS paystream._customer_link(text, uuid, text);
DROP FUNCTION IF EXISTS paystream._invoice_record(text, uuid, text, bigint, integer, text, bigint, text);
DROP FUNCTION IF EXISTS paystream._ledger_period(uuid, integer, integer, text, text, text, text, bigint,
                                                 integer);
DROP FUNCTION IF EXISTS paystream._sub_credits(paystream.subscriptions, paystream.subscription_history,
                                               integer, integer, text, text, text, text, bigint,
                                               integer);
