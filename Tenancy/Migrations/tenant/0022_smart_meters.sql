-- Smart meters on the device gateway (README, "Smart meters").

CREATE TABLE smart_meters (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    room_id uuid NOT NULL REFERENCES rooms (id),
    kind text NOT NULL CHECK (kind IN ('water', 'electricity', 'gas')),
    last_value_centi bigint,
    last_read_at timestamptz,
    transferred_through date,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, code),
    UNIQUE (room_id, kind)
);
CREATE INDEX smart_meters_community ON smart_meters (community_id);

-- Every reading as the device sent it; a code nobody bound is kept too.
CREATE TABLE smart_meter_readings (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    smart_meter_id uuid REFERENCES smart_meters (id),
    meter_code text NOT NULL,
    value_centi bigint NOT NULL CHECK (value_centi >= 0),
    device_time timestamptz NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX smart_meter_readings_meter ON smart_meter_readings (smart_meter_id, device_time DESC);
