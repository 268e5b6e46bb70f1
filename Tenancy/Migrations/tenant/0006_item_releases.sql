-- Applications to move items out of the community, reviewed by staff, checked at the gate.
CREATE TABLE item_releases (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    resident_id uuid NOT NULL REFERENCES users (id),
    items text NOT NULL,
    mover text NOT NULL DEFAULT '',
    planned_date date NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'released')),
    code text,
    reviewed_by uuid REFERENCES users (id),
    review_note text NOT NULL DEFAULT '',
    released_by uuid REFERENCES users (id),
    released_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX item_releases_live_code ON item_releases (community_id, code) WHERE state = 'approved';
CREATE INDEX item_releases_feed ON item_releases (community_id, created_at DESC, id DESC);
