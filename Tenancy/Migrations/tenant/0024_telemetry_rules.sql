-- Energy telemetry and alarm rules (README, "Energy devices and alarm rules").

-- Measured values by month: a month's partition is dropped whole when it passes retention.
CREATE TABLE telemetry (
    device_id uuid NOT NULL,
    metric text NOT NULL,
    at timestamptz NOT NULL,
    value_milli bigint NOT NULL,
    PRIMARY KEY (device_id, metric, at)
) PARTITION BY RANGE (at);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;

-- Creates the partitions of the months from `first` for `months` months (idempotent).
CREATE FUNCTION telemetry_partitions(first date, months integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m date;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        m := date_trunc('month', first)::date + make_interval(months => i);
        IF to_regclass(format('telemetry_%s', to_char(m, 'YYYYMM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                           'telemetry_' || to_char(m, 'YYYYMM'), m::timestamptz, (m + interval '1 month')::timestamptz);
        END IF;
    END LOOP;
END
$$;
SELECT telemetry_partitions((now() - interval '1 month')::date, 4);

CREATE TABLE alarm_rules (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    device_kind text NOT NULL,
    metric text NOT NULL CHECK (metric ~ '^[a-z0-9_.]{1,32}$'),
    comparison text NOT NULL CHECK (comparison IN ('above', 'below')),
    threshold_milli bigint NOT NULL,
    duration_seconds integer NOT NULL DEFAULT 0 CHECK (duration_seconds BETWEEN 0 AND 86400),
    repeat_count integer NOT NULL DEFAULT 0 CHECK (repeat_count BETWEEN 0 AND 1000),
    clear_threshold_milli bigint NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    name text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,32}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, device_kind, metric, name)
);

-- Each rule's state per device, in the database: a restart does not reset a duration.
CREATE TABLE alarm_rule_state (
    rule_id uuid NOT NULL REFERENCES alarm_rules (id) ON DELETE CASCADE,
    device_id uuid NOT NULL REFERENCES devices (id),
    breaching_since timestamptz,
    consecutive integer NOT NULL DEFAULT 0,
    last_at timestamptz,
    PRIMARY KEY (rule_id, device_id)
);
