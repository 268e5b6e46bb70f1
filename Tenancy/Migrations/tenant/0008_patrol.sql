-- Patrol and inspection (巡更巡检): checkpoints, routes of ordered checkpoints, plans that
-- the scheduler turns into tasks ahead of time, check-ins, and the supervisor's review.
CREATE TABLE patrol_points (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL,
    location text NOT NULL DEFAULT '',
    code text NOT NULL,                      -- printed on the NFC tag / QR code at the spot
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE patrol_routes (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('patrol', 'inspection')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, name)
);

CREATE TABLE patrol_route_points (
    route_id uuid NOT NULL REFERENCES patrol_routes (id),
    position integer NOT NULL CHECK (position >= 1),
    point_id uuid NOT NULL REFERENCES patrol_points (id),
    PRIMARY KEY (route_id, position),
    UNIQUE (route_id, point_id)
);

CREATE TABLE patrol_plans (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    route_id uuid NOT NULL REFERENCES patrol_routes (id),
    staff_id uuid NOT NULL REFERENCES users (id),
    times text[] NOT NULL,                   -- local start times, 'HH:MM'
    weekdays integer[] NOT NULL DEFAULT '{}',-- ISO 1 = Monday … 7; empty = every day
    every_days integer NOT NULL DEFAULT 1 CHECK (every_days BETWEEN 1 AND 365),
    starts_on date NOT NULL,
    ends_on date CHECK (ends_on >= starts_on),
    window_minutes integer NOT NULL CHECK (window_minutes BETWEEN 5 AND 1440),
    active boolean NOT NULL DEFAULT true,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patrol_tasks (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    plan_id uuid REFERENCES patrol_plans (id),   -- NULL for a temporary task
    route_id uuid NOT NULL REFERENCES patrol_routes (id),
    staff_id uuid NOT NULL REFERENCES users (id),
    starts_at timestamptz NOT NULL,
    due_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_progress', 'finished')),
    started_at timestamptz,
    finished_at timestamptz,
    review text CHECK (review IN ('passed', 'failed')),
    review_note text NOT NULL DEFAULT '',
    reviewed_by uuid REFERENCES users (id),
    reviewed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The scheduler's exactly-once guarantee: one task per plan and start time, whoever inserts it.
CREATE UNIQUE INDEX patrol_tasks_plan_start ON patrol_tasks (plan_id, starts_at) WHERE plan_id IS NOT NULL;
CREATE INDEX patrol_tasks_community ON patrol_tasks (community_id, starts_at);
CREATE INDEX patrol_tasks_staff ON patrol_tasks (staff_id, starts_at);

CREATE TABLE patrol_checkins (
    task_id uuid NOT NULL REFERENCES patrol_tasks (id),
    point_id uuid NOT NULL REFERENCES patrol_points (id),
    position integer NOT NULL,
    result text NOT NULL CHECK (result IN ('normal', 'abnormal')),
    note text NOT NULL DEFAULT '',
    photo_refs text[] NOT NULL DEFAULT '{}',
    by_id uuid NOT NULL REFERENCES users (id),
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, point_id)
);

-- A time-ordered UUIDv7 made in SQL, for rows that set-based jobs create (the scheduler):
-- 48 bits of Unix milliseconds over a random v4, with the version nibble turned to 7.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
        52, 1), 53, 1), 'hex')::uuid
$$;
