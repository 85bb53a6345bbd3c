-- The base order data from the core pipeline (DESIGN §3.2, §6).

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

-- +goose Down
DROP TABLE orders;
