-- The device registry, what devices report, and commands to them (README, "Devices").
-- Devices talk to the gateway (wire.proto); staff and partner apps to DeviceService.
CREATE TABLE devices (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    serial text NOT NULL CHECK (length(serial) BETWEEN 1 AND 64),
    kind text NOT NULL CHECK (kind IN ('door', 'face_terminal', 'barrier', 'meter', 'detector', 'broadcast', 'elevator', 'energy')),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'revoked')),
    -- SHA-256(HMAC-SHA256(secret, 'Client Key')): enough to check a proof, not to make one.
    stored_key bytea NOT NULL CHECK (length(stored_key) = 32),
    -- Bumped by every new secret and status change: a connection opened under an older
    -- generation is dropped.
    generation integer NOT NULL DEFAULT 1,
    commit_point bigint NOT NULL DEFAULT 0 CHECK (commit_point >= 0),
    online boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz,
    firmware text NOT NULL DEFAULT '',
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, serial)
);
CREATE INDEX devices_community ON devices (community_id, id);
CREATE INDEX devices_online ON devices (id) WHERE online;

-- Each event once: (device, seq) is the key, a replay is a no-op.
CREATE TABLE device_events (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL CHECK (seq > 0),
    kind text NOT NULL,
    device_time timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    late boolean NOT NULL,
    -- The Event as the device sent it (linli.device.v1.Event).
    body bytea NOT NULL,
    PRIMARY KEY (device_id, seq)
);

CREATE TABLE device_commands (
    id uuid PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    action text NOT NULL,
    -- The Command as the device receives it (linli.device.v1.Command).
    body bytea NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sent', 'delivered', 'succeeded', 'failed', 'timed_out', 'expired')),
    expires_at timestamptz NOT NULL,
    detail text NOT NULL DEFAULT '',
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_commands_open ON device_commands (device_id, created_at)
    WHERE state IN ('queued', 'sent', 'delivered');
CREATE INDEX device_commands_device ON device_commands (device_id, created_at DESC);

-- One active alarm per (device, type): two identical events a millisecond apart raise one.
CREATE TABLE device_alarms (
    id uuid PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    type text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'cleared')),
    raised_at timestamptz NOT NULL DEFAULT now(),
    cleared_at timestamptz,
    CHECK ((status = 'cleared') = (cleared_at IS NOT NULL))
);
CREATE UNIQUE INDEX device_alarms_one_active ON device_alarms (device_id, type) WHERE status <> 'cleared';

-- A command queued for a device wakes the gateway process that holds its connection. The
-- payload names the schema and the device; PostgreSQL delivers it only on commit.
CREATE FUNCTION device_command_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linli_device_commands', TG_TABLE_SCHEMA || ':' || NEW.device_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER device_command_wake AFTER INSERT ON device_commands FOR EACH ROW EXECUTE FUNCTION device_command_wake();
