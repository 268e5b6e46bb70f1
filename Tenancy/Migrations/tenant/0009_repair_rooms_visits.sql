-- Repairs name the room they are for, now that rooms exist; staff call residents back
-- after completion (回访) and record what they heard.
ALTER TABLE work_orders ADD COLUMN room_id uuid REFERENCES rooms (id);

CREATE TABLE work_order_return_visits (
    id uuid PRIMARY KEY,
    work_order_id uuid NOT NULL REFERENCES work_orders (id),
    visited_by uuid NOT NULL REFERENCES users (id),
    reached boolean NOT NULL,                -- did the resident answer
    satisfaction smallint CHECK (satisfaction BETWEEN 1 AND 5),
    note text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now(),
    CHECK (reached OR satisfaction IS NULL)
);
CREATE INDEX work_order_return_visits_order ON work_order_return_visits (work_order_id, at);
