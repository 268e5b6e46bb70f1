-- Space reservations (README, "Parking"): a plate expected in a lot in a window, on a held space
-- or on any space of the lot. Two reservations of one space never overlap, and reservations
-- without a space never outnumber the lot's capacity: ReserveSpace counts under a lock on the
-- space row (the lot row without a space). An exclusion constraint would need btree_gist, an
-- extension a tenant schema cannot own.

CREATE TABLE parking_reservations (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    lot_id uuid NOT NULL REFERENCES parking_lots (id),
    plate text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('visitor', 'non_visitor')),
    space_id uuid REFERENCES parking_spaces (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    -- The stay the reservation let in.
    session_id uuid REFERENCES parking_sessions (id),
    used_at timestamptz,
    cancelled_at timestamptz,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (used_at IS NULL OR cancelled_at IS NULL)
);
CREATE INDEX parking_reservations_space ON parking_reservations (space_id, starts_at) WHERE space_id IS NOT NULL AND cancelled_at IS NULL;
CREATE INDEX parking_reservations_plate ON parking_reservations (lot_id, plate, starts_at)
    WHERE cancelled_at IS NULL AND used_at IS NULL;
CREATE INDEX parking_reservations_lot ON parking_reservations (lot_id, starts_at DESC, id DESC);
CREATE INDEX parking_reservations_resident ON parking_reservations (resident_id, created_at);
