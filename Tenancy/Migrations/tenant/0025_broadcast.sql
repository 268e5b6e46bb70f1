-- IP broadcast (README, "IP broadcast"): zones of terminals, tasks, and each terminal's copy.

CREATE TABLE broadcast_zones (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, name)
);

CREATE TABLE broadcast_zone_devices (
    zone_id uuid NOT NULL REFERENCES broadcast_zones (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    PRIMARY KEY (zone_id, device_id)
);

CREATE TABLE broadcast_tasks (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    priority integer NOT NULL CHECK (priority BETWEEN 1 AND 8),
    source text NOT NULL CHECK (source IN ('file', 'tts', 'live')),
    content text NOT NULL CHECK (length(content) BETWEEN 1 AND 500),
    repeat text NOT NULL CHECK (repeat IN ('once', 'daily', 'weekly')),
    starts_at timestamptz,
    minute_of_day integer NOT NULL DEFAULT 0 CHECK (minute_of_day BETWEEN 0 AND 1439),
    weekdays integer NOT NULL DEFAULT 0 CHECK (weekdays BETWEEN 0 AND 127),
    duration_seconds integer NOT NULL CHECK (duration_seconds BETWEEN 1 AND 7200),
    valid_until timestamptz,
    version integer NOT NULL DEFAULT 1,
    cancelled_at timestamptz,
    emergency boolean NOT NULL DEFAULT false,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (repeat <> 'once' OR starts_at IS NOT NULL),
    CHECK (repeat <> 'weekly' OR weekdays > 0)
);
CREATE INDEX broadcast_tasks_community ON broadcast_tasks (community_id, created_at DESC);

-- Each terminal's copy of a task: the command that carries it (re-queued when it expired).
CREATE TABLE broadcast_deliveries (
    task_id uuid NOT NULL REFERENCES broadcast_tasks (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    version integer NOT NULL,
    command_id uuid NOT NULL REFERENCES device_commands (id),
    PRIMARY KEY (task_id, device_id)
);
