-- Smart parking (README, "Parking"): lots, lanes on barrier devices, permits, black and white
-- lists, versioned fee rules, sessions opened and closed by plate reads, payments and merchant
-- coupons on the ledger.

CREATE TABLE parking_lots (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind text NOT NULL CHECK (kind IN ('above_ground', 'underground')),
    -- An inner lot inside another: its booths do not charge again.
    parent_lot_id uuid REFERENCES parking_lots (id),
    capacity integer NOT NULL CHECK (capacity BETWEEN 0 AND 100000),
    -- Staff corrections to the occupancy the sessions give (a car towed, a read missed).
    occupancy_correction integer NOT NULL DEFAULT 0,
    pay_window_minutes integer NOT NULL DEFAULT 15 CHECK (pay_window_minutes BETWEEN 0 AND 120),
    visitor_free_minutes integer NOT NULL DEFAULT 120 CHECK (visitor_free_minutes BETWEEN 0 AND 1440),
    -- Two reads of the same plate at the same lane within this many seconds are one read.
    visitor_daily_limit integer NOT NULL DEFAULT 3 CHECK (visitor_daily_limit BETWEEN 0 AND 100),
    duplicate_read_seconds integer NOT NULL DEFAULT 10 CHECK (duplicate_read_seconds BETWEEN 0 AND 300),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE parking_lanes (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid NOT NULL REFERENCES parking_lots (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    direction text NOT NULL CHECK (direction IN ('entry', 'exit')),
    temp_cars_enter boolean NOT NULL DEFAULT true,
    charges boolean NOT NULL DEFAULT true,
    reentry boolean NOT NULL DEFAULT false,
    exit_without_entry boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, code),
    UNIQUE (lot_id, code)
);

-- A mother space (子母车位) lets one of its cars in at a time as a permit car.
ALTER TABLE parking_spaces ADD COLUMN lot_id uuid REFERENCES parking_lots (id);
ALTER TABLE parking_spaces ADD COLUMN one_car_inside boolean NOT NULL DEFAULT false;

CREATE TABLE parking_permits (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid REFERENCES parking_lots (id),           -- NULL: every lot of the community
    plate text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('monthly', 'bought', 'internal', 'free')),
    space_id uuid REFERENCES parking_spaces (id),
    resident_id uuid REFERENCES residents (id),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz CHECK (valid_until > valid_from),
    monthly_fee_fen bigint NOT NULL DEFAULT 0 CHECK (monthly_fee_fen BETWEEN 0 AND 100000000),
    revoked_at timestamptz,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parking_permits_plate ON parking_permits (community_id, plate) WHERE revoked_at IS NULL;

CREATE TABLE parking_lists (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid REFERENCES parking_lots (id),
    plate text NOT NULL,
    list text NOT NULL CHECK (list IN ('black', 'white')),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz CHECK (valid_until > valid_from),
    reason text NOT NULL DEFAULT '',
    removed_at timestamptz,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parking_lists_plate ON parking_lists (community_id, plate) WHERE removed_at IS NULL;

-- Fee rules by version: a new tariff is a new row; a session keeps the version it was priced by.
CREATE TABLE parking_fee_rules (
    id uuid PRIMARY KEY,
    lot_id uuid NOT NULL REFERENCES parking_lots (id),
    version integer NOT NULL CHECK (version >= 1),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    spec jsonb NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (lot_id, version)
);

-- Visitor cars: a plate expected by a resident's visitor registration, with its free minutes.
CREATE TABLE parking_visitor_cars (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid NOT NULL REFERENCES parking_lots (id),
    plate text NOT NULL,
    resident_id uuid NOT NULL REFERENCES residents (id),
    visitor_pass_id uuid REFERENCES visitor_passes (id),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL CHECK (valid_until > valid_from),
    -- A reserved space, if any.
    space_id uuid REFERENCES parking_spaces (id),
    cancelled_at timestamptz,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parking_visitor_cars_plate ON parking_visitor_cars (community_id, plate) WHERE cancelled_at IS NULL;
CREATE INDEX parking_visitor_cars_resident ON parking_visitor_cars (resident_id, valid_from);

-- A stay: opened by an entry read, closed by an exit read (or by staff). At most one open
-- session per car and lot, whatever the concurrency: the unique partial index says so.
CREATE TABLE parking_sessions (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid NOT NULL REFERENCES parking_lots (id),
    plate text NOT NULL,
    car_class text NOT NULL CHECK (car_class IN ('white', 'permit', 'monthly', 'visitor', 'temp')),
    permit_id uuid REFERENCES parking_permits (id),
    space_id uuid REFERENCES parking_spaces (id),
    free_minutes integer NOT NULL DEFAULT 0,
    -- NULL: an exit read whose entry has not arrived yet (an offline lane flushing its buffer).
    entered_at timestamptz,
    entry_lane_id uuid REFERENCES parking_lanes (id),
    exited_at timestamptz,
    exit_lane_id uuid REFERENCES parking_lanes (id),
    rule_id uuid REFERENCES parking_fee_rules (id),
    gross_fen bigint NOT NULL DEFAULT 0,
    paid_fen bigint NOT NULL DEFAULT 0 CHECK (paid_fen >= 0),
    coupon_off_fen bigint NOT NULL DEFAULT 0 CHECK (coupon_off_fen >= 0),
    paid_at timestamptz,
    closed_by uuid,                                       -- staff who closed it by hand
    close_note text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (entered_at IS NOT NULL OR exited_at IS NOT NULL)
);
CREATE UNIQUE INDEX parking_sessions_open ON parking_sessions (lot_id, plate) WHERE exited_at IS NULL;
CREATE INDEX parking_sessions_plate ON parking_sessions (community_id, plate, created_at DESC);
CREATE INDEX parking_sessions_lot_exit ON parking_sessions (lot_id, exited_at);
CREATE INDEX parking_sessions_space_inside ON parking_sessions (space_id) WHERE exited_at IS NULL AND space_id IS NOT NULL;

-- Every plate read with the decision the lane got: the gate's audit trail.
CREATE TABLE parking_reads (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    community_id uuid NOT NULL,
    lot_id uuid,
    lane_id uuid,
    lane_code text NOT NULL,
    plate text NOT NULL,
    direction text NOT NULL,
    device_time timestamptz NOT NULL,
    late boolean NOT NULL,
    opened boolean NOT NULL,
    reason text NOT NULL,
    due_fen bigint NOT NULL DEFAULT 0,
    session_id uuid,
    duplicate boolean NOT NULL DEFAULT false,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX parking_reads_lane ON parking_reads (lane_id, device_time DESC);
CREATE INDEX parking_reads_plate ON parking_reads (community_id, plate, device_time DESC);

-- Money taken for parking: temporary stays and monthly renewals; each on the ledger, with a
-- receipt number of the community's parking series.
CREATE TABLE parking_payments (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    session_id uuid REFERENCES parking_sessions (id),
    permit_id uuid REFERENCES parking_permits (id),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    method text NOT NULL,
    entry_id uuid NOT NULL,
    receipt_no text NOT NULL,
    -- A payment that reached a session already closed goes straight back.
    refunded_fen bigint NOT NULL DEFAULT 0 CHECK (refunded_fen BETWEEN 0 AND amount_fen),
    refund_entry_id uuid,
    rule_version integer,
    paid_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((session_id IS NULL) <> (permit_id IS NULL)),
    UNIQUE (community_id, receipt_no)
);
CREATE INDEX parking_payments_session ON parking_payments (session_id);
CREATE INDEX parking_payments_day ON parking_payments (community_id, created_at);

-- Merchants who buy parking coupons in advance (the commerce module's merchants replace the
-- name when they exist).
CREATE TABLE parking_merchants (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, name)
);

-- A merchant's purchase of coupons: the money is a liability until each coupon is redeemed.
CREATE TABLE parking_coupon_batches (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    merchant_id uuid NOT NULL REFERENCES parking_merchants (id),
    kind text NOT NULL CHECK (kind IN ('time', 'money', 'discount', 'free')),
    value bigint NOT NULL CHECK (value >= 0),
    price_fen bigint NOT NULL CHECK (price_fen >= 0),
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100000),
    issued integer NOT NULL DEFAULT 0 CHECK (issued BETWEEN 0 AND quantity),
    valid_days integer NOT NULL CHECK (valid_days BETWEEN 1 AND 366),
    entry_id uuid NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE parking_coupons (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    batch_id uuid NOT NULL REFERENCES parking_coupon_batches (id),
    plate text NOT NULL,
    status text NOT NULL DEFAULT 'unused' CHECK (status IN ('unused', 'used', 'void')),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    session_id uuid REFERENCES parking_sessions (id),
    off_fen bigint NOT NULL DEFAULT 0,
    used_at timestamptz,
    redeem_entry_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'used') = (session_id IS NOT NULL))
);
CREATE INDEX parking_coupons_plate ON parking_coupons (community_id, plate) WHERE status = 'unused';

-- Parking receipts have their own gap-free series per community and year (printed "P2026-000001").
ALTER TABLE document_counters DROP CONSTRAINT document_counters_series_check;
ALTER TABLE document_counters ADD CONSTRAINT document_counters_series_check CHECK (series IN ('receipt', 'invoice', 'parking'));
