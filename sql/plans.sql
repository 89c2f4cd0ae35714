-- plans.sql: plans and their Stripe prices (SPEC §4). A plan may have several
-- prices (a new one for new customers, the old ones kept for existing
-- subscriptions); every price ever set as a plan's price keeps mapping to it
-- in plan_prices, however the plan was written (`paystreamctl plans load` or
-- by hand), so that a grandfathered subscription's renewals and cancellation
-- still find their plan.

CREATE OR REPLACE FUNCTION paystream._plan_price_remember() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO paystream.plan_prices (stripe_price_id, plan_id)
    VALUES (NEW.stripe_price_id, NEW.id) ON CONFLICT (stripe_price_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER plans_price_remembered
    AFTER INSERT OR UPDATE OF stripe_price_id ON paystream.plans
    FOR EACH ROW EXECUTE FUNCTION paystream._plan_price_remember();
