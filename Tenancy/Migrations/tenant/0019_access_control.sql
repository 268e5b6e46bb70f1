-- Access control on the device gateway (README, "Access control"): doors and their devices,
-- credentials, each device's whitelist as versioned desired state, the access log.

CREATE TABLE doors (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    building_id uuid REFERENCES buildings (id),      -- NULL: a community gate
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE door_devices (
    door_id uuid NOT NULL REFERENCES doors (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    PRIMARY KEY (door_id, device_id)
);
CREATE INDEX door_devices_device ON door_devices (device_id);

CREATE TABLE access_credentials (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid REFERENCES residents (id),
    staff_user_id uuid REFERENCES users (id),
    kind text NOT NULL CHECK (kind IN ('card', 'pin', 'face')),
    -- A card number; for a PIN the hex SHA-256 of '<id>:<pin>'; a face template reference.
    value text NOT NULL CHECK (length(value) BETWEEN 1 AND 64),
    valid_until timestamptz,
    face_consent_at timestamptz,
    revoked_at timestamptz,
    revoke_reason text NOT NULL DEFAULT '',
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((resident_id IS NULL) <> (staff_user_id IS NULL)),
    -- A face needs the person's separate consent.
    CHECK (kind <> 'face' OR face_consent_at IS NOT NULL)
);
-- A card opens for one holder at a time in a community.
CREATE UNIQUE INDEX access_credentials_card ON access_credentials (community_id, value)
    WHERE kind = 'card' AND revoked_at IS NULL;
CREATE INDEX access_credentials_community ON access_credentials (community_id, created_at, id);
CREATE INDEX access_credentials_resident ON access_credentials (resident_id) WHERE resident_id IS NOT NULL;

-- Per community: the stranger alarm rule and how long the access log is kept.
CREATE TABLE access_settings (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    stranger_threshold integer NOT NULL DEFAULT 5 CHECK (stranger_threshold BETWEEN 1 AND 100),
    stranger_window_minutes integer NOT NULL DEFAULT 10 CHECK (stranger_window_minutes BETWEEN 1 AND 1440),
    retention_days integer NOT NULL DEFAULT 30 CHECK (retention_days BETWEEN 1 AND 365)
);

-- The Ed25519 key that signs a community's QR codes; devices hold the public half.
CREATE TABLE access_qr_keys (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    private_key bytea NOT NULL CHECK (length(private_key) = 32),
    public_key bytea NOT NULL CHECK (length(public_key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- What each device holds, by version: an entry lives from added_version until removed_version.
-- The diff from version x is the entries added after x and still there (upserts) and the
-- entries the device had at x that are gone (removes); one added and removed after x is in
-- neither.
CREATE TABLE whitelist_entries (
    device_id uuid NOT NULL REFERENCES devices (id),
    key text NOT NULL,
    kind text NOT NULL,
    value text NOT NULL,
    valid_from timestamptz,
    valid_until timestamptz,
    door_codes text[] NOT NULL,
    added_version bigint NOT NULL,
    removed_version bigint,
    PRIMARY KEY (device_id, key, added_version)
);
CREATE INDEX whitelist_entries_current ON whitelist_entries (device_id, key) WHERE removed_version IS NULL;

ALTER TABLE devices
    ADD COLUMN whitelist_version bigint NOT NULL DEFAULT 0,
    ADD COLUMN whitelist_acked bigint NOT NULL DEFAULT 0,
    -- Something the whitelist depends on changed; the gateway reconciles it.
    ADD COLUMN whitelist_dirty boolean NOT NULL DEFAULT false,
    -- The doors (code:building) the device's whitelist was made for: a new door is a new version.
    ADD COLUMN whitelist_doors text NOT NULL DEFAULT '';
CREATE INDEX devices_whitelist_dirty ON devices (id) WHERE whitelist_dirty;

CREATE TABLE access_log (
    device_id uuid NOT NULL REFERENCES devices (id),
    seq bigint NOT NULL,
    community_id uuid NOT NULL REFERENCES communities (id),
    door_id uuid REFERENCES doors (id),
    door_code text NOT NULL,
    method text NOT NULL,
    granted boolean NOT NULL,
    credential text NOT NULL,
    resident_id uuid,
    staff_user_id uuid,
    visitor_pass_id uuid,
    reason text NOT NULL DEFAULT '',
    device_time timestamptz NOT NULL,
    late boolean NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX access_log_community ON access_log (community_id, device_time DESC, device_id, seq);
CREATE INDEX access_log_resident ON access_log (resident_id, device_time DESC) WHERE resident_id IS NOT NULL;
-- Unknown cards and faces: what the stranger rule counts.
CREATE INDEX access_log_strangers ON access_log (community_id, device_time) WHERE credential = '' AND NOT granted;

-- Who may open which doors of `device` now: the desired whitelist.
--   residents living in the community today: its gates and their buildings' doors;
--   active staff of the community: every door;
--   active visitor passes in their window: the gates.
CREATE FUNCTION device_whitelist(device uuid)
RETURNS TABLE (key text, kind text, value text, valid_from timestamptz, valid_until timestamptz, door_codes text[])
LANGUAGE sql STABLE AS $$
    WITH dev AS (
        SELECT id, community_id FROM devices WHERE id = device AND status = 'active'
    ), served AS (
        SELECT d.code, d.building_id FROM dev JOIN door_devices dd ON dd.device_id = dev.id JOIN doors d ON d.id = dd.door_id
    ), homes AS (
        SELECT DISTINCT res.resident_id, cr.building_id
        FROM dev CROSS JOIN LATERAL community_rooms(dev.community_id) cr
        JOIN residencies res ON res.room_id = cr.room_id
        WHERE resides_on(res.move_in, res.move_out, community_today(dev.community_id))
    )
    SELECT c.id::text, c.kind, c.value, c.created_at, c.valid_until, array_agg(DISTINCT s.code ORDER BY s.code)
    FROM dev
    JOIN access_credentials c ON c.community_id = dev.community_id AND c.resident_id IS NOT NULL
    JOIN homes h ON h.resident_id = c.resident_id
    JOIN served s ON s.building_id IS NULL OR s.building_id = h.building_id
    WHERE c.revoked_at IS NULL AND (c.valid_until IS NULL OR c.valid_until > now())
    GROUP BY c.id
    UNION ALL
    SELECT c.id::text, c.kind, c.value, c.created_at, c.valid_until, (SELECT array_agg(code ORDER BY code) FROM served)
    FROM dev
    JOIN access_credentials c ON c.community_id = dev.community_id AND c.staff_user_id IS NOT NULL
    JOIN users u ON u.id = c.staff_user_id AND u.status = 'active'
    JOIN user_communities uc ON uc.user_id = u.id AND uc.community_id = dev.community_id
    WHERE c.revoked_at IS NULL AND (c.valid_until IS NULL OR c.valid_until > now()) AND EXISTS (SELECT 1 FROM served)
    UNION ALL
    SELECT p.id::text, 'visitor_code', p.code, p.valid_from, p.valid_until,
           (SELECT array_agg(code ORDER BY code) FROM served WHERE building_id IS NULL)
    FROM dev JOIN visitor_passes p ON p.community_id = dev.community_id
    WHERE p.state = 'active' AND p.valid_until > now() AND EXISTS (SELECT 1 FROM served WHERE building_id IS NULL)
$$;

-- Brings the device's entries to its desired whitelist; when anything changed, the version
-- goes up by one and the gateway holding the device is woken. Returns the version.
CREATE FUNCTION whitelist_reconcile(device uuid) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    current_version bigint;
    changed bigint;
    old_doors text;
    new_doors text;
BEGIN
    SELECT whitelist_version, whitelist_doors INTO current_version, old_doors FROM devices WHERE id = device FOR UPDATE;
    IF NOT FOUND THEN RETURN 0; END IF;
    SELECT COALESCE(string_agg(d.code || ':' || COALESCE(d.building_id::text, ''), ',' ORDER BY d.code), '') INTO new_doors
    FROM door_devices dd JOIN doors d ON d.id = dd.door_id WHERE dd.device_id = device;
    WITH desired AS (
        SELECT * FROM device_whitelist(device)
    ), gone AS (
        UPDATE whitelist_entries w SET removed_version = current_version + 1
        WHERE w.device_id = device AND w.removed_version IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM desired d
              WHERE d.key = w.key AND d.kind = w.kind AND d.value = w.value
                AND d.valid_from IS NOT DISTINCT FROM w.valid_from AND d.valid_until IS NOT DISTINCT FROM w.valid_until
                AND d.door_codes = w.door_codes)
        RETURNING 1
    ), added AS (
        INSERT INTO whitelist_entries (device_id, key, kind, value, valid_from, valid_until, door_codes, added_version)
        SELECT device, d.key, d.kind, d.value, d.valid_from, d.valid_until, d.door_codes, current_version + 1
        FROM desired d
        WHERE NOT EXISTS (
              SELECT 1 FROM whitelist_entries w
              WHERE w.device_id = device AND w.removed_version IS NULL AND w.key = d.key AND w.kind = d.kind
                AND w.value = d.value AND w.valid_from IS NOT DISTINCT FROM d.valid_from
                AND w.valid_until IS NOT DISTINCT FROM d.valid_until AND w.door_codes = d.door_codes)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM added) INTO changed;
    UPDATE devices SET whitelist_dirty = false WHERE id = device;
    IF changed > 0 OR new_doors <> old_doors THEN
        UPDATE devices SET whitelist_version = current_version + 1, whitelist_doors = new_doors WHERE id = device;
        PERFORM pg_notify('linli_device_commands', current_schema() || ':' || device);
        RETURN current_version + 1;
    END IF;
    RETURN current_version;
END
$$;

-- What a whitelist depends on changed in a community: its devices are marked for the gateway
-- to reconcile, which NOTIFY wakes (delivered on commit). Owners of residents, rooms, visitor
-- passes and staff need not know that access control exists.
CREATE FUNCTION whitelist_touch(community uuid) RETURNS void LANGUAGE sql AS $$
    UPDATE devices SET whitelist_dirty = true
    WHERE community_id = community AND status = 'active' AND NOT whitelist_dirty
      AND EXISTS (SELECT 1 FROM door_devices dd WHERE dd.device_id = devices.id);
    SELECT pg_notify('linli_whitelist', current_schema());
$$;

CREATE FUNCTION whitelist_touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_community uuid;
BEGIN
    IF TG_TABLE_NAME = 'residencies' THEN
        SELECT community_id INTO row_community FROM rooms WHERE id = COALESCE(NEW.room_id, OLD.room_id);
    ELSIF TG_TABLE_NAME = 'door_devices' THEN
        SELECT community_id INTO row_community FROM doors WHERE id = COALESCE(NEW.door_id, OLD.door_id);
    ELSIF TG_TABLE_NAME = 'user_communities' THEN
        row_community := COALESCE(NEW.community_id, OLD.community_id);
    ELSE
        row_community := COALESCE(NEW.community_id, OLD.community_id);
    END IF;
    IF row_community IS NOT NULL THEN PERFORM whitelist_touch(row_community); END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER whitelist_touch AFTER INSERT OR UPDATE OR DELETE ON residencies FOR EACH ROW EXECUTE FUNCTION whitelist_touch_row();
CREATE TRIGGER whitelist_touch AFTER INSERT OR UPDATE OR DELETE ON access_credentials FOR EACH ROW EXECUTE FUNCTION whitelist_touch_row();
CREATE TRIGGER whitelist_touch AFTER INSERT OR UPDATE OR DELETE ON visitor_passes FOR EACH ROW EXECUTE FUNCTION whitelist_touch_row();
CREATE TRIGGER whitelist_touch AFTER INSERT OR DELETE ON door_devices FOR EACH ROW EXECUTE FUNCTION whitelist_touch_row();
CREATE TRIGGER whitelist_touch AFTER INSERT OR DELETE ON user_communities FOR EACH ROW EXECUTE FUNCTION whitelist_touch_row();

-- A user disabled or enabled: every community of theirs.
CREATE FUNCTION whitelist_touch_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM whitelist_touch(uc.community_id) FROM user_communities uc WHERE uc.user_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER whitelist_touch AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION whitelist_touch_user();
