-- The platform schema: tenant registry, operators, API keys, idempotency of operator calls,
-- and the national rollup tables. The migration ledger itself is created by the runner.
CREATE TABLE platform.tenants (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9_]{1,40}$'),
    name text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'suspended')),
    plan text NOT NULL DEFAULT 'standard',
    suspended_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform.operators (
    id uuid PRIMARY KEY,
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform.api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES platform.tenants (id),
    name text NOT NULL,
    prefix text NOT NULL,
    secret_hash bytea NOT NULL UNIQUE,
    community_ids uuid[] NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_tenant ON platform.api_keys (tenant_id, created_at);

CREATE TABLE platform.idempotency_keys (
    principal_id uuid NOT NULL,
    request_id text NOT NULL,
    method text NOT NULL,
    request_hash bytea NOT NULL,
    response bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, request_id)
);

-- Folded metric deltas: one row per tenant, community, local day and metric.
CREATE TABLE platform.national_daily (
    tenant_id uuid NOT NULL,
    community_id uuid NOT NULL,
    day date NOT NULL,
    metric text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (tenant_id, metric, community_id, day)
);

-- The rollup's watermark per tenant: every delta recorded before folded_through is folded.
CREATE TABLE platform.rollup_state (
    tenant_id uuid PRIMARY KEY,
    folded_through timestamptz NOT NULL,
    deltas_folded bigint NOT NULL DEFAULT 0
);
