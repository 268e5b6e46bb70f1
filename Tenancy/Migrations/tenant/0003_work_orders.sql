-- Repair categories with their dispatch mode and deadlines, technicians' skills and duty,
-- work orders with every transition recorded, and the notification outbox.
CREATE TABLE repair_categories (
    community_id uuid NOT NULL REFERENCES communities (id),
    code text NOT NULL,
    name text NOT NULL,
    dispatch_mode text NOT NULL CHECK (dispatch_mode IN ('manual', 'grab', 'round_robin')),
    normal_minutes integer NOT NULL CHECK (normal_minutes > 0),
    emergency_minutes integer NOT NULL CHECK (emergency_minutes > 0),
    -- Round-robin turns come from a sequence per category, rotation_<md5(community:code)[0:20]>,
    -- created with the category: lock-free, shared by every server, kept across restarts.
    PRIMARY KEY (community_id, code)
);

CREATE TABLE technician_skills (
    user_id uuid NOT NULL REFERENCES users (id),
    community_id uuid NOT NULL,
    code text NOT NULL,
    PRIMARY KEY (community_id, code, user_id),
    FOREIGN KEY (community_id, code) REFERENCES repair_categories (community_id, code)
);

CREATE TABLE staff_duty (
    user_id uuid PRIMARY KEY REFERENCES users (id),
    on_duty boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE work_orders (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL,
    category text NOT NULL,
    priority text NOT NULL CHECK (priority IN ('normal', 'emergency')),
    channel text NOT NULL CHECK (channel IN ('app', 'phone', 'front_desk')),
    state text NOT NULL CHECK (state IN ('pending', 'dispatched', 'accepted', 'in_progress', 'paused',
                                         'completed', 'rated', 'closed', 'cancelled')),
    building_id uuid REFERENCES buildings (id),
    location text NOT NULL,
    description text NOT NULL,
    photo_refs text[] NOT NULL DEFAULT '{}',
    preferred_at timestamptz,
    requester_id uuid NOT NULL REFERENCES users (id),
    filed_by uuid NOT NULL REFERENCES users (id),
    assignee_id uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL,
    dispatched_at timestamptz,
    accepted_at timestamptz,
    completed_at timestamptz,
    closed_at timestamptz,
    reopen_count integer NOT NULL DEFAULT 0,
    labour_minutes integer CHECK (labour_minutes >= 0),
    materials text,
    charge_fen bigint CHECK (charge_fen >= 0),
    rating_speed smallint CHECK (rating_speed BETWEEN 1 AND 5),
    rating_attitude smallint CHECK (rating_attitude BETWEEN 1 AND 5),
    rating_quality smallint CHECK (rating_quality BETWEEN 1 AND 5),
    rating_comment text,
    FOREIGN KEY (community_id, category) REFERENCES repair_categories (community_id, code)
);
CREATE INDEX work_orders_feed ON work_orders (community_id, created_at DESC, id DESC);
CREATE INDEX work_orders_assignee ON work_orders (assignee_id, created_at DESC);
CREATE INDEX work_orders_requester ON work_orders (requester_id, created_at DESC);
CREATE INDEX work_orders_open_due ON work_orders (community_id, due_at)
    WHERE state IN ('pending', 'dispatched', 'accepted', 'in_progress', 'paused');

CREATE TABLE work_order_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_order_id uuid NOT NULL REFERENCES work_orders (id),
    action text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    actor_id uuid NOT NULL,
    assignee_id uuid,
    note text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_order_events_order ON work_order_events (work_order_id, id);

-- Messages to deliver after commit, by whichever channel the tenant configures.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    recipient_id uuid,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
