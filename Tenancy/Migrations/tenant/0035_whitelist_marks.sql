-- What a whitelist depends on changed: a mark per community and writing transaction, taken by
-- the reconcile (0019's flag on devices lost changes). A writer that found its devices already
-- flagged left the flag alone; a reconcile already running on a snapshot without the writer's
-- row then cleared it, and the writer's change (a new card) waited for the daily pass. A mark
-- is a row of its own writer: a reconcile can take it only once it is committed, and the
-- reconcile's later statements see what it marks. Writers never wait for each other or for a
-- reconcile; one transaction's many rows (an import) make one mark.
CREATE TABLE whitelist_marks (
    community_id uuid NOT NULL,
    xact bigint NOT NULL DEFAULT txid_current(),
    PRIMARY KEY (community_id, xact)
);
INSERT INTO whitelist_marks (community_id) SELECT DISTINCT community_id FROM devices WHERE whitelist_dirty;

CREATE OR REPLACE FUNCTION whitelist_touch(community uuid) RETURNS void LANGUAGE sql AS $$
    INSERT INTO whitelist_marks (community_id)
    SELECT community WHERE EXISTS (
        SELECT 1 FROM devices d JOIN door_devices dd ON dd.device_id = d.id
        WHERE d.community_id = community AND d.status = 'active')
    ON CONFLICT DO NOTHING;
    SELECT pg_notify('linli_whitelist', current_schema());
$$;

-- As in 0019, without the flag.
CREATE OR REPLACE FUNCTION whitelist_reconcile(device uuid) RETURNS bigint LANGUAGE plpgsql AS $$
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
    IF changed > 0 OR new_doors <> old_doors THEN
        UPDATE devices SET whitelist_version = current_version + 1, whitelist_doors = new_doors WHERE id = device;
        PERFORM pg_notify('linli_device_commands', current_schema() || ':' || device);
        RETURN current_version + 1;
    END IF;
    RETURN current_version;
END
$$;

DROP INDEX devices_whitelist_dirty;
ALTER TABLE devices DROP COLUMN whitelist_dirty;
