-- One alarm model for every device (README, "Alarms"), and fire points.

ALTER TABLE device_alarms
    ADD COLUMN community_id uuid REFERENCES communities (id),
    -- The point within the device (a fire point's code); '' for the device itself.
    ADD COLUMN source text NOT NULL DEFAULT '',
    ADD COLUMN detail text NOT NULL DEFAULT '',
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by uuid REFERENCES users (id),
    ADD COLUMN assignee_id uuid REFERENCES users (id),
    ADD COLUMN cleared_by uuid REFERENCES users (id),
    ADD COLUMN false_alarm boolean NOT NULL DEFAULT false,
    ADD COLUMN clear_reason text NOT NULL DEFAULT '',
    ADD COLUMN escalated_at timestamptz,
    ADD COLUMN work_order_id uuid REFERENCES work_orders (id);
UPDATE device_alarms a SET community_id = d.community_id FROM devices d WHERE d.id = a.device_id;
ALTER TABLE device_alarms ALTER COLUMN community_id SET NOT NULL;
ALTER TABLE device_alarms ADD CONSTRAINT device_alarms_false_alarm_reason CHECK (NOT false_alarm OR clear_reason <> '');
-- One active alarm per (device, type, source).
DROP INDEX device_alarms_one_active;
CREATE UNIQUE INDEX device_alarms_one_active ON device_alarms (device_id, type, source) WHERE status <> 'cleared';
CREATE INDEX device_alarms_community ON device_alarms (community_id, raised_at DESC, id);
CREATE INDEX device_alarms_unacknowledged ON device_alarms (raised_at) WHERE status = 'active' AND escalated_at IS NULL;

CREATE TABLE fire_points (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    kind text NOT NULL CHECK (kind IN ('smoke', 'heat', 'manual_call_point', 'hydrant_button')),
    building_id uuid REFERENCES buildings (id),
    floor integer NOT NULL DEFAULT 0 CHECK (floor BETWEEN -10 AND 200),
    location text NOT NULL DEFAULT '' CHECK (length(location) <= 100),
    disabled boolean NOT NULL DEFAULT false,
    remediation_flagged_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, code)
);
CREATE INDEX fire_points_community ON fire_points (community_id, code);

-- Every fire event as received, kept (GB 25506: logs of at least 10,000 records).
CREATE TABLE fire_events (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    community_id uuid NOT NULL REFERENCES communities (id),
    point_id uuid REFERENCES fire_points (id),
    point_code text NOT NULL,
    kind text NOT NULL,
    detail text NOT NULL,
    device_time timestamptz NOT NULL,
    late boolean NOT NULL,
    alarm_id uuid REFERENCES device_alarms (id),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX fire_events_community ON fire_events (community_id, device_time);

CREATE TABLE fire_settings (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    escalate_after_seconds integer NOT NULL DEFAULT 180 CHECK (escalate_after_seconds BETWEEN 30 AND 3600),
    false_alarm_daily_limit integer NOT NULL DEFAULT 5 CHECK (false_alarm_daily_limit BETWEEN 1 AND 100)
);
