-- Points (README, "Points"): a double-entry ledger per community. Every transfer takes points
-- from one account and gives them to another, so a community's accounts sum to zero; guarded
-- accounts (everything but issuance) never go below zero.
CREATE TABLE points_accounts (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    kind text NOT NULL CHECK (kind IN ('issuance', 'budget', 'available', 'frozen', 'spent', 'expired')),
    -- available and frozen: whose.
    resident_id uuid REFERENCES residents (id),
    -- The budget is kept in 16 shards, so that concurrent grants do not queue on one row.
    shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15),
    balance bigint NOT NULL DEFAULT 0,
    -- Moves with every change of a resident's accounts (kept on the available account): the
    -- cache's version.
    version bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'issuance' OR balance >= 0),
    CHECK ((resident_id IS NOT NULL) = (kind IN ('available', 'frozen'))),
    CHECK (shard = 0 OR kind = 'budget'),
    UNIQUE NULLS NOT DISTINCT (community_id, kind, resident_id, shard)
);

CREATE TABLE points_transfers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    from_account uuid NOT NULL REFERENCES points_accounts (id),
    to_account uuid NOT NULL REFERENCES points_accounts (id),
    points bigint NOT NULL CHECK (points > 0),
    kind text NOT NULL CHECK (kind IN ('fund', 'grant', 'freeze', 'commit', 'release', 'expire')),
    operation_key text NOT NULL,
    lot_id uuid,
    hold_id uuid,
    memo text NOT NULL DEFAULT '',
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_account <> to_account)
);
CREATE INDEX points_transfers_to ON points_transfers (to_account, created_at);
CREATE INDEX points_transfers_from ON points_transfers (from_account, created_at);

-- One operation per key and community: a replay answers the first result.
CREATE TABLE points_operations (
    community_id uuid NOT NULL REFERENCES communities (id),
    operation_key text NOT NULL CHECK (length(operation_key) BETWEEN 1 AND 96),
    kind text NOT NULL,
    resident_id uuid,
    points bigint NOT NULL,
    result_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, operation_key)
);

-- A grant's points with their expiry; spending takes the soonest-expiring first.
CREATE TABLE points_lots (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    granted bigint NOT NULL CHECK (granted > 0),
    remaining bigint NOT NULL CHECK (remaining BETWEEN 0 AND granted),
    expires_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX points_lots_open ON points_lots (resident_id, expires_at) WHERE remaining > 0;
CREATE INDEX points_lots_expiring ON points_lots (expires_at) WHERE remaining > 0;

CREATE TABLE points_holds (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    points bigint NOT NULL CHECK (points > 0),
    state text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'committed', 'released')),
    operation_key text NOT NULL,
    -- [{"lot": uuid, "points": n}], soonest-expiring first: where a release gives them back.
    lots jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz,
    UNIQUE (community_id, operation_key)
);
