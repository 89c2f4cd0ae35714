-- customers.sql: whose event it is. A Stripe customer belongs to one user,
-- remembered from the first event that names both (a checkout session, a
-- subscription with metadata.user_id); a subscription belongs to the user of
-- its record (sql/subscriptions.sql). An event that names no user is found
-- through these mappings (SPEC §4: after metadata.user_id and
-- client_reference_id, which the worker reads from the event itself).

-- Remember customer -> user, and return the customer's user (NULL without a
-- customer). A customer never moves to another user silently. The mapping is
-- usually there already: one lookup then.
CREATE OR REPLACE FUNCTION paystream._customer_link(p_customer text, p_user_id uuid,
                                                    p_event_id text)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
BEGIN
    IF p_customer IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT user_id INTO v_user FROM paystream.customers WHERE stripe_customer_id = p_customer;
    IF NOT FOUND THEN
        INSERT INTO paystream.customers (stripe_customer_id, user_id, event_id)
        VALUES (p_customer, p_user_id, p_event_id) ON CONFLICT DO NOTHING;
        SELECT user_id INTO v_user FROM paystream.customers
         WHERE stripe_customer_id = p_customer;
    END IF;
    IF v_user <> p_user_id THEN
        RAISE EXCEPTION 'customer % belongs to user %, but this event names user %',
            p_customer, v_user, p_user_id USING ERRCODE = 'unique_violation';
    END IF;
    RETURN v_user;
END $$;

-- The user of an event that names none, from the stored mappings (a
-- subscription the user's row no longer names is found in its record), or an
-- error that says what is missing: SQLSTATE 55000, the event waits (SPEC §3)
-- for a later event that stores the mapping.
CREATE OR REPLACE FUNCTION paystream._find_user(p_customer text, p_sub text)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid := coalesce((SELECT user_id FROM paystream.customers
                              WHERE stripe_customer_id = p_customer),
                            (SELECT user_id FROM paystream.subscriptions
                              WHERE stripe_subscription_id = p_sub),
                            (SELECT user_id FROM paystream.subscription_history
                              WHERE stripe_subscription_id = p_sub));
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'user not found: no metadata.user_id or client_reference_id, and no stored mapping for customer % / subscription %',
            coalesce(p_customer, '(none)'), coalesce(p_sub, '(none)')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN v_user;
END $$;
