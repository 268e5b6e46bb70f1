-- Base of every tenant schema: communities, buildings, users and their scopes,
-- idempotency keys, and the metric deltas the national rollup consumes.
CREATE TABLE communities (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    address text NOT NULL DEFAULT '',
    time_zone text NOT NULL DEFAULT 'Asia/Shanghai',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE buildings (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, name)
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    phone text,
    password_hash text NOT NULL,
    role text NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_communities (
    user_id uuid NOT NULL REFERENCES users (id),
    community_id uuid NOT NULL REFERENCES communities (id),
    PRIMARY KEY (user_id, community_id)
);
CREATE INDEX user_communities_community ON user_communities (community_id);

CREATE TABLE user_buildings (
    user_id uuid NOT NULL REFERENCES users (id),
    building_id uuid NOT NULL REFERENCES buildings (id),
    PRIMARY KEY (user_id, building_id)
);
CREATE INDEX user_buildings_building ON user_buildings (building_id);

CREATE TABLE idempotency_keys (
    principal_id uuid NOT NULL,
    request_id text NOT NULL,
    method text NOT NULL,
    request_hash bytea NOT NULL,
    response bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, request_id)
);

CREATE TABLE metric_deltas (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL,
    day date NOT NULL,
    metric text NOT NULL,
    delta bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
