-- The base order data from the core pipeline (DESIGN §3.2, §6), and the
-- change feed the tracking endpoint's in-process cache listens to.

-- +goose Up
CREATE TABLE orders (
    order_nr       TEXT PRIMARY KEY,
    eater_id       TEXT NOT NULL,
    -- the latest snapshot: {flow_type, status, place{id,name,phone?,address?}, courier?{name,phone?}, eta?}
    payload        JSONB NOT NULL,
    -- event time of the snapshot in force: an older event never overwrites it
    event_at       TIMESTAMPTZ NOT NULL,
    -- time of the order's first event (order.createdAt in the response)
    first_event_at TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- the tracking endpoint: an eater's orders
CREATE INDEX orders_eater_id_idx ON orders (eater_id);
-- cleanup: rows created before the retention cut-off
CREATE INDEX orders_created_at_idx ON orders (created_at);
-- the tracking cache's complete load selects the listed (mostly active)
-- orders by status: without statistics on the expression the planner
-- takes nearly every row for listed and picks a slow plan
CREATE STATISTICS orders_status_stats ON (payload->>'status') FROM orders;

-- Change feed: every committed change to what the tracking endpoint shows
-- sends NOTIFY eot_tracking_changes with 'e:<eater_id>' (orders) or
-- 'o:<order_nr>' (picker_orders, picker_phones), whoever writes the row
-- (ingest, updater, cleanup, an operator's SQL). Notifications arrive in
-- commit order, which lets each replica invalidate its cache within
-- milliseconds and prove how far behind it can be. A key too long for a
-- notification sends '*' (drop everything).
-- +goose StatementBegin
CREATE FUNCTION eot_tracking_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
    key TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'orders' THEN
        key := 'e:' || r.eater_id;
        IF TG_OP = 'UPDATE' THEN
            IF OLD.eater_id IS DISTINCT FROM NEW.eater_id THEN
                PERFORM pg_notify('eot_tracking_changes',
                    CASE WHEN octet_length(OLD.eater_id) > 7000 THEN '*' ELSE 'e:' || OLD.eater_id END);
            END IF;
        END IF;
    ELSE
        key := 'o:' || r.order_nr;
    END IF;
    PERFORM pg_notify('eot_tracking_changes', CASE WHEN octet_length(key) > 7000 THEN '*' ELSE key END);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- TRUNCATE fires no row trigger: it drops every cached answer.
-- +goose StatementBegin
CREATE FUNCTION eot_tracking_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eot_tracking_changes', '*');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER orders_tracking_notify AFTER INSERT ON orders
    FOR EACH ROW EXECUTE FUNCTION eot_tracking_notify();
-- Deleting a row the endpoint cannot show (cleanup's: finished long ago)
-- changes no answer: no notification.
CREATE TRIGGER orders_tracking_notify_delete AFTER DELETE ON orders
    FOR EACH ROW WHEN (OLD.payload->>'status' NOT IN ('delivered', 'cancelled') OR OLD.event_at > now() - interval '15 minutes')
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER orders_tracking_notify_update AFTER UPDATE ON orders
    FOR EACH ROW WHEN (OLD.payload IS DISTINCT FROM NEW.payload OR OLD.eater_id IS DISTINCT FROM NEW.eater_id
                       OR OLD.event_at IS DISTINCT FROM NEW.event_at OR OLD.first_event_at IS DISTINCT FROM NEW.first_event_at)
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER picker_orders_tracking_notify AFTER INSERT ON picker_orders
    FOR EACH ROW EXECUTE FUNCTION eot_tracking_notify();
-- A cancelled, complete or paid picker order shows the base view, as does
-- none at all: deleting it changes no answer.
CREATE TRIGGER picker_orders_tracking_notify_delete AFTER DELETE ON picker_orders
    FOR EACH ROW WHEN (OLD.payload->>'status' NOT IN ('cancelled', 'complete') AND OLD.payload->'status_history'->>'paid_at' IS NULL)
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER picker_orders_tracking_notify_update AFTER UPDATE ON picker_orders
    FOR EACH ROW WHEN (OLD.payload IS DISTINCT FROM NEW.payload)
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER picker_phones_tracking_notify AFTER INSERT ON picker_phones
    FOR EACH ROW EXECUTE FUNCTION eot_tracking_notify();
-- An expired phone is never shown: deleting it changes no answer.
CREATE TRIGGER picker_phones_tracking_notify_delete AFTER DELETE ON picker_phones
    FOR EACH ROW WHEN (OLD.expires_at > now())
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER picker_phones_tracking_notify_update AFTER UPDATE ON picker_phones
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION eot_tracking_notify();
CREATE TRIGGER orders_tracking_truncate AFTER TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION eot_tracking_notify_all();
CREATE TRIGGER picker_orders_tracking_truncate AFTER TRUNCATE ON picker_orders
    FOR EACH STATEMENT EXECUTE FUNCTION eot_tracking_notify_all();
CREATE TRIGGER picker_phones_tracking_truncate AFTER TRUNCATE ON picker_phones
    FOR EACH STATEMENT EXECUTE FUNCTION eot_tracking_notify_all();

-- +goose Down
DROP TRIGGER picker_phones_tracking_truncate ON picker_phones;
DROP TRIGGER picker_orders_tracking_truncate ON picker_orders;
DROP TRIGGER picker_phones_tracking_notify_update ON picker_phones;
DROP TRIGGER picker_phones_tracking_notify_delete ON picker_phones;
DROP TRIGGER picker_phones_tracking_notify ON picker_phones;
DROP TRIGGER picker_orders_tracking_notify_update ON picker_orders;
DROP TRIGGER picker_orders_tracking_notify_delete ON picker_orders;
DROP TRIGGER picker_orders_tracking_notify ON picker_orders;
DROP TABLE orders;
DROP FUNCTION eot_tracking_notify();
DROP FUNCTION eot_tracking_notify_all();
