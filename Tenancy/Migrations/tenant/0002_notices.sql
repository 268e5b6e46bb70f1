-- Community notices, their building audience, and who has read them.
CREATE TABLE notices (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    title text NOT NULL,
    body text NOT NULL,
    category smallint NOT NULL,
    pinned boolean NOT NULL DEFAULT false,
    audience_all boolean NOT NULL,
    published_by uuid NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX notices_feed ON notices (community_id, pinned DESC, published_at DESC, id DESC);

CREATE TABLE notice_buildings (
    notice_id uuid NOT NULL REFERENCES notices (id),
    building_id uuid NOT NULL REFERENCES buildings (id),
    PRIMARY KEY (notice_id, building_id)
);
CREATE INDEX notice_buildings_building ON notice_buildings (building_id);

CREATE TABLE notice_reads (
    notice_id uuid NOT NULL REFERENCES notices (id),
    user_id uuid NOT NULL,
    read_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notice_id, user_id)
);
