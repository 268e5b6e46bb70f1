-- Complaints and suggestions with their message thread; 12345 hotline tickets with their
-- handling steps.
CREATE TABLE complaints (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    kind text NOT NULL CHECK (kind IN ('complaint', 'suggestion')),
    subject text NOT NULL,
    content text NOT NULL,
    photo_refs text[] NOT NULL DEFAULT '{}',
    filed_by uuid NOT NULL REFERENCES users (id),
    state text NOT NULL CHECK (state IN ('open', 'handling', 'resolved', 'closed', 'withdrawn')),
    resolution text NOT NULL DEFAULT '',
    satisfaction smallint CHECK (satisfaction BETWEEN 1 AND 5),
    satisfaction_comment text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX complaints_feed ON complaints (community_id, created_at DESC, id DESC);
CREATE INDEX complaints_filer ON complaints (filed_by, created_at DESC);

CREATE TABLE complaint_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints (id),
    author_id uuid NOT NULL REFERENCES users (id),
    from_staff boolean NOT NULL,
    body text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX complaint_messages_complaint ON complaint_messages (complaint_id, id);

CREATE TABLE hotline_tickets (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    external_id text NOT NULL UNIQUE,
    received_at timestamptz NOT NULL,
    deadline timestamptz NOT NULL,
    category text NOT NULL,
    content text NOT NULL,
    caller_name text NOT NULL DEFAULT '',
    caller_phone text NOT NULL DEFAULT '',
    state text NOT NULL CHECK (state IN ('received', 'handling', 'replied', 'closed')),
    reply text NOT NULL DEFAULT '',
    replied_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotline_tickets_feed ON hotline_tickets (community_id, received_at DESC, id DESC);
CREATE INDEX hotline_tickets_open_deadline ON hotline_tickets (community_id, deadline) WHERE state IN ('received', 'handling');

CREATE TABLE hotline_steps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id uuid NOT NULL REFERENCES hotline_tickets (id),
    actor_id uuid NOT NULL,
    note text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotline_steps_ticket ON hotline_steps (ticket_id, id);
