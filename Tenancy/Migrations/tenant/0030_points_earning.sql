-- Points earning rules (README, "Points"): how many points a fee paid, an order done, an
-- activity or a piece of content earns. The newest enabled rule of a kind whose window holds is
-- the one in force.
CREATE TABLE points_rules (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    kind text NOT NULL CHECK (kind IN ('fee_paid', 'order_done', 'activity', 'content')),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    points bigint NOT NULL CHECK (points BETWEEN 1 AND 1000000),
    per_fen bigint NOT NULL CHECK (per_fen BETWEEN 0 AND 100000000),
    rounding text NOT NULL DEFAULT 'down' CHECK (rounding IN ('down', 'up', 'nearest')),
    min_fen bigint NOT NULL DEFAULT 0 CHECK (min_fen BETWEEN 0 AND 100000000),
    cap_points bigint NOT NULL DEFAULT 0 CHECK (cap_points BETWEEN 0 AND 1000000),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz CHECK (ends_at > starts_at),
    enabled boolean NOT NULL DEFAULT true,
    lifetime_days integer NOT NULL DEFAULT 0 CHECK (lifetime_days BETWEEN 0 AND 1095),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Amount-based kinds earn per fen; the others a fixed number each time.
    CHECK ((kind IN ('fee_paid', 'order_done')) = (per_fen > 0))
);
CREATE INDEX points_rules_in_force ON points_rules (community_id, kind, created_at DESC) WHERE enabled;

-- Every earning event once, with what came of it (a grant, no rule, the budget short): the
-- grant itself is the ledger's; this is the record the reports and a replay read.
CREATE TABLE points_earnings (
    community_id uuid NOT NULL REFERENCES communities (id),
    operation_key text NOT NULL,
    kind text NOT NULL,
    rule_id uuid REFERENCES points_rules (id),
    resident_id uuid REFERENCES residents (id),
    amount_fen bigint NOT NULL DEFAULT 0,
    points bigint NOT NULL DEFAULT 0,
    outcome text NOT NULL CHECK (outcome IN ('granted', 'no_rule', 'budget_exhausted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, operation_key)
);
CREATE INDEX points_earnings_period ON points_earnings (community_id, created_at);
