-- Picker orders and the customer→picker forwarding phones (DESIGN §6).

-- +goose Up
CREATE TABLE picker_orders (
    order_nr        TEXT PRIMARY KEY,
    -- exactly {picker_id?, status, status_history{<status>_at?}}
    payload         JSONB NOT NULL,
    -- event time of the status in force: an older event never overwrites it
    status_event_at TIMESTAMPTZ NOT NULL,
    -- event time and status of the event that set payload.picker_id (the
    -- latest event that named a picker; NULL until one did): an event
    -- without picker_id keeps the stored one, whatever order events arrive in
    picker_event_at     TIMESTAMPTZ,
    picker_event_status TEXT,
    -- kept as a column so the updater's index is a plain btree
    status          TEXT GENERATED ALWAYS AS (payload->>'status') STORED,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- the updater: one range scan per listed status, oldest updated_at first
CREATE INDEX picker_orders_status_updated_at_idx ON picker_orders (status, updated_at);
-- cleanup: rows created before the retention cut-off
CREATE INDEX picker_orders_created_at_idx ON picker_orders (created_at);

CREATE TABLE picker_phones (
    order_nr   TEXT NOT NULL,
    picker_id  TEXT NOT NULL,
    phone      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- created_at of the event that wrote the row, for the tie rule
    event_at   TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_nr, picker_id)
);
-- cleanup: phones whose expiry passed long ago
CREATE INDEX picker_phones_expires_at_idx ON picker_phones (expires_at);

-- +goose Down
DROP TABLE picker_phones;
DROP TABLE picker_orders;
