-- Elevators on the device gateway (README, "Elevators"): the latest state of each car and
-- every state change as received.

CREATE TABLE elevator_status (
    device_id uuid NOT NULL REFERENCES devices (id),
    code text NOT NULL,
    community_id uuid NOT NULL REFERENCES communities (id),
    state text NOT NULL,
    floor integer NOT NULL,
    door_open boolean NOT NULL,
    fault_code text NOT NULL,
    trapped boolean NOT NULL,
    reported_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, code)
);

CREATE TABLE elevator_events (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    code text NOT NULL,
    state text NOT NULL,
    floor integer NOT NULL,
    door_open boolean NOT NULL,
    fault_code text NOT NULL,
    trapped boolean NOT NULL,
    device_time timestamptz NOT NULL,
    PRIMARY KEY (device_id, seq)
);
