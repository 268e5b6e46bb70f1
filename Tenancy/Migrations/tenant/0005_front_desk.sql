-- Visitor passes with their gate log; parcels kept for residents.
CREATE TABLE visitor_passes (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    host_id uuid NOT NULL REFERENCES users (id),
    visitor_name text NOT NULL,
    visitor_phone text NOT NULL DEFAULT '',
    plate text NOT NULL DEFAULT '',
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL CHECK (valid_until > valid_from),
    single_use boolean NOT NULL,
    code text NOT NULL,
    state text NOT NULL CHECK (state IN ('active', 'used', 'revoked')),
    walk_in boolean NOT NULL DEFAULT false,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A code names one live pass in a community.
CREATE UNIQUE INDEX visitor_passes_live_code ON visitor_passes (community_id, code) WHERE state = 'active';
CREATE INDEX visitor_passes_feed ON visitor_passes (community_id, created_at DESC, id DESC);
CREATE INDEX visitor_passes_host ON visitor_passes (host_id, created_at DESC);

CREATE TABLE visitor_gate_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pass_id uuid NOT NULL REFERENCES visitor_passes (id),
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    guard_id uuid NOT NULL REFERENCES users (id),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visitor_gate_log_pass ON visitor_gate_log (pass_id, id);

CREATE TABLE parcels (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid NOT NULL REFERENCES users (id),
    carrier text NOT NULL,
    tracking_number text NOT NULL,
    shelf text NOT NULL DEFAULT '',
    pickup_code text NOT NULL,
    logged_by uuid NOT NULL REFERENCES users (id),
    logged_at timestamptz NOT NULL DEFAULT now(),
    picked_up_at timestamptz,
    handed_by uuid REFERENCES users (id)
);
CREATE UNIQUE INDEX parcels_waiting_code ON parcels (community_id, pickup_code) WHERE picked_up_at IS NULL;
CREATE UNIQUE INDEX parcels_tracking ON parcels (community_id, carrier, tracking_number);
CREATE INDEX parcels_waiting ON parcels (community_id, logged_at) WHERE picked_up_at IS NULL;
