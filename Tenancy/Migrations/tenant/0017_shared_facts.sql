-- Facts every module shares, each with one owner. Swift mirrors them in LinliTenancy
-- (BusinessDay, Residency, RoomLabel); an architecture test keeps copies from coming back.

-- Business day: a community's "today" and the instant its day starts, from its own time zone.
-- `local_today` is a plain expression, so PostgreSQL inlines it into the calling query.
CREATE FUNCTION local_today(zone text) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (now() AT TIME ZONE zone)::date
$$;
CREATE FUNCTION local_day_start(zone text, day date) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT day::timestamp AT TIME ZONE zone
$$;
CREATE FUNCTION local_day(zone text, at timestamptz) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (at AT TIME ZONE zone)::date
$$;
CREATE FUNCTION community_zone(community uuid) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT time_zone FROM communities WHERE id = community
$$;
CREATE FUNCTION community_today(community uuid) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT local_today(community_zone(community))
$$;
CREATE FUNCTION community_day_start(community uuid, day date) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT local_day_start(community_zone(community), day)
$$;

-- Residency: a person lives in a room on day D when they moved in on or before D and had not
-- moved out on or before D. A move-in dated next week takes effect next week; the move-out
-- day is the first day they no longer live there.
CREATE FUNCTION resides_on(move_in date, move_out date, day date) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT move_in <= day AND (move_out IS NULL OR move_out > day)
$$;

-- A room's printed label: building, unit and number ("3栋2单元1201").
CREATE FUNCTION room_label(building text, unit text, number text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT building || unit || number
$$;

-- The label of a room by id (NULL for NULL).
CREATE FUNCTION room_label_of(room uuid) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT room_label(b.name, r.unit, r.number) FROM rooms r JOIN buildings b ON b.id = r.building_id WHERE r.id = room
$$;

-- The rooms of a community with their building and label: what other modules read of base data.
CREATE FUNCTION community_rooms(community uuid)
RETURNS TABLE (room_id uuid, building_id uuid, building text, unit text, number text, label text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.id, r.building_id, b.name, r.unit, r.number, room_label(b.name, r.unit, r.number)
    FROM rooms r JOIN buildings b ON b.id = r.building_id WHERE r.community_id = community
$$;

-- The last late-fee day of a bill is a day of the bill's community.
CREATE OR REPLACE FUNCTION bill_ledger(bill uuid, OUT charged_fen bigint, OUT late_fee_fen bigint, OUT settled_fen bigint,
                                       OUT waived_fen bigint, OUT open_fen bigint, OUT late_fee_through date)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(amount_fen) FILTER (WHERE kind IN ('charge', 'late_fee')), 0)::bigint,
           coalesce(sum(amount_fen) FILTER (WHERE kind = 'late_fee'), 0)::bigint,
           coalesce(sum(CASE WHEN kind IN ('settle', 'offset') THEN amount_fen WHEN kind IN ('reversal', 'refund') THEN -amount_fen END), 0)::bigint,
           coalesce(sum(amount_fen) FILTER (WHERE kind = 'write_off'), 0)::bigint,
           coalesce(sum(CASE WHEN kind IN ('charge', 'late_fee', 'reversal', 'refund') THEN amount_fen ELSE -amount_fen END), 0)::bigint,
           local_day((SELECT c.time_zone FROM bills b JOIN communities c ON c.id = b.community_id WHERE b.id = bill),
                     max(created_at) FILTER (WHERE kind = 'late_fee'))
    FROM ledger_transfers WHERE bill_id = bill
$$;

-- Receipt and invoice numbers run per year of the community's calendar.
CREATE OR REPLACE FUNCTION next_document_no(of_community uuid, of_series text) RETURNS text LANGUAGE sql VOLATILE AS $$
    INSERT INTO document_counters (community_id, series, year, last_number)
    VALUES (of_community, of_series, extract(year FROM community_today(of_community))::int4, 1)
    ON CONFLICT (community_id, series, year) DO UPDATE SET last_number = document_counters.last_number + 1
    RETURNING CASE series WHEN 'invoice' THEN 'FP' ELSE '' END || to_char(year, 'FM0000') || '-' || to_char(last_number, 'FM000000')
$$;

-- A repair charged on completion becomes a one-time bill on its room, once per work order.
ALTER TABLE bills ADD COLUMN work_order_id uuid UNIQUE REFERENCES work_orders (id);
ALTER TABLE bills DROP CONSTRAINT bills_one_per_period;
ALTER TABLE bills ADD CONSTRAINT bills_one_per_period
    UNIQUE NULLS NOT DISTINCT (room_id, fee_item_id, period_start, parking_space_id, work_order_id);

-- The late-fee rule has one implementation, LateFee.due in LinliBilling (pure, unit-tested);
-- SQL loads its inputs (bill_ledger) and no longer computes it.
DROP FUNCTION bill_late_fee_fen(uuid, date);
