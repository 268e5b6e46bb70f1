-- The in-app inbox: the channel every tenant has. The outbox relay moves each message with
-- a recipient into it exactly once (unique outbox_id), after the writing transaction has
-- committed; a statement trigger wakes the relay with NOTIFY, which PostgreSQL delivers
-- only on commit. Messages for other consumers (billing.*) stay in the outbox for them.
CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    outbox_id bigint NOT NULL UNIQUE REFERENCES outbox (id),
    recipient_id uuid NOT NULL,
    topic text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz
);
CREATE INDEX notifications_inbox ON notifications (recipient_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread ON notifications (recipient_id) WHERE read_at IS NULL;

CREATE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linli_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_wake AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();
