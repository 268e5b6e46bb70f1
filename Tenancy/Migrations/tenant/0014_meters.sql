-- Water, electricity and gas meters per room, their readings, and metered fee items billed
-- from the usage between readings.
CREATE TABLE meters (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    kind text NOT NULL CHECK (kind IN ('water', 'electricity', 'gas')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (room_id, kind)
);

-- Values in hundredths of a unit (m³ or kWh): 1234.56 kWh is 123456.
CREATE TABLE meter_readings (
    id uuid PRIMARY KEY,
    meter_id uuid NOT NULL REFERENCES meters (id),
    read_on date NOT NULL,
    value_centi bigint NOT NULL CHECK (value_centi >= 0),
    previous_centi bigint,                   -- the reading before, NULL for the first
    usage_centi bigint NOT NULL CHECK (usage_centi >= 0),
    replacement boolean NOT NULL DEFAULT false,  -- a new meter: value is its start; usage from the old one's final reading
    recorded_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, read_on)
);
CREATE INDEX meter_readings_meter ON meter_readings (meter_id, read_on DESC);

ALTER TABLE fee_items DROP CONSTRAINT fee_items_rule_check;
ALTER TABLE fee_items ADD CONSTRAINT fee_items_rule_check CHECK (rule IN ('area', 'fixed', 'metered'));
ALTER TABLE fee_items ADD COLUMN meter_kind text CHECK (meter_kind IN ('water', 'electricity', 'gas'));
ALTER TABLE fee_items ADD CONSTRAINT fee_items_metered_kind CHECK ((rule = 'metered') = (meter_kind IS NOT NULL));
