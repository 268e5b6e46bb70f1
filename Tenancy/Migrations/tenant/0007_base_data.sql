-- Base data of a community: rooms (with their unit inside a building), residents and the
-- rooms they live in over time, parking spaces and vehicles, pets, and the audit trail of
-- every unmasked read of personal data.
CREATE TABLE rooms (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    building_id uuid NOT NULL REFERENCES buildings (id),
    unit text NOT NULL DEFAULT '',           -- '2单元'; '' where a building has no units
    number text NOT NULL,                    -- '1201'
    floor integer,
    area_centi_m2 integer NOT NULL CHECK (area_centi_m2 > 0),  -- 89.50 m² = 8950
    kind text NOT NULL CHECK (kind IN ('residence', 'shop', 'office', 'storage')),
    state text NOT NULL DEFAULT 'vacant' CHECK (state IN ('vacant', 'occupied', 'renovating')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (building_id, unit, number)
);
CREATE INDEX rooms_community_number ON rooms (community_id, number);

CREATE TABLE residents (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL,
    phone text NOT NULL DEFAULT '',
    id_number text NOT NULL DEFAULT '',      -- 居民身份证号, 18 characters, checked
    user_id uuid REFERENCES users (id),      -- the resident's app account, when there is one
    verified_at timestamptz,
    verified_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX residents_phone ON residents (community_id, phone) WHERE phone <> '';
CREATE INDEX residents_phone_tail ON residents (community_id, right(phone, 4)) WHERE phone <> '';
CREATE INDEX residents_name ON residents (community_id, name);
CREATE UNIQUE INDEX residents_user ON residents (community_id, user_id) WHERE user_id IS NOT NULL;

-- Who lives in which room, from when to when; a resident may hold several rooms.
CREATE TABLE residencies (
    id uuid PRIMARY KEY,
    resident_id uuid NOT NULL REFERENCES residents (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    relation text NOT NULL CHECK (relation IN ('owner', 'renter', 'family')),
    move_in date NOT NULL,
    move_out date CHECK (move_out >= move_in),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One current residency per resident and room.
CREATE UNIQUE INDEX residencies_current ON residencies (resident_id, room_id) WHERE move_out IS NULL;
CREATE INDEX residencies_room ON residencies (room_id, move_in);

CREATE TABLE parking_spaces (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    code text NOT NULL,                      -- 'B1-023'
    kind text NOT NULL CHECK (kind IN ('owned', 'rented', 'temporary')),
    room_id uuid REFERENCES rooms (id),      -- the room it belongs to or is rented by
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE vehicles (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    plate text NOT NULL,
    parking_space_id uuid REFERENCES parking_spaces (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, plate)
);
CREATE UNIQUE INDEX vehicles_space ON vehicles (parking_space_id) WHERE parking_space_id IS NOT NULL;

-- Every read of a phone or ID number in full: who, whose, which fields, why.
CREATE TABLE personal_data_reads (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL,
    reader_id uuid NOT NULL,
    resident_id uuid NOT NULL REFERENCES residents (id),
    fields text[] NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personal_data_reads_feed ON personal_data_reads (community_id, at DESC, id DESC);

CREATE TABLE pets (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    name text NOT NULL,
    species text NOT NULL CHECK (species IN ('dog', 'cat', 'other')),
    breed text NOT NULL DEFAULT '',
    registered_by uuid NOT NULL REFERENCES users (id),
    removed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pets_room ON pets (room_id);

CREATE TABLE pet_vaccinations (
    id uuid PRIMARY KEY,
    pet_id uuid NOT NULL REFERENCES pets (id),
    vaccine text NOT NULL,                   -- 'rabies'
    given_on date NOT NULL,
    next_due_on date NOT NULL CHECK (next_due_on > given_on),
    recorded_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pet_vaccinations_pet ON pet_vaccinations (pet_id, vaccine, given_on DESC);
