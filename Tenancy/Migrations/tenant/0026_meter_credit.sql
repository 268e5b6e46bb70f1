-- Prepaid meters (README, "Smart meters"): credit bought in billing, delivered to the meter by
-- command, sent again until the meter acknowledges.
ALTER TABLE smart_meters ADD COLUMN prepaid boolean NOT NULL DEFAULT false;

CREATE TABLE smart_meter_credits (
    id uuid PRIMARY KEY,
    smart_meter_id uuid NOT NULL REFERENCES smart_meters (id),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    method text NOT NULL,
    command_id uuid NOT NULL REFERENCES device_commands (id),
    attempts integer NOT NULL DEFAULT 1,
    entry_id uuid NOT NULL,
    delivered_at timestamptz,
    delivered_entry_id uuid,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smart_meter_credits_pending ON smart_meter_credits (created_at) WHERE delivered_at IS NULL;
