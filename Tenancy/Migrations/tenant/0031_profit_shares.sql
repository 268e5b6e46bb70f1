-- Profit sharing (分账) of order payments: the platform's commission split out of the money a
-- channel holds for the merchant, as a persisted state machine. A share is checked before it is
-- sent (amounts only, at most 30 % of what was paid, never above the net after the channel's
-- fee), sent no sooner than a minute after the payment, retried while the channel answers
-- PROCESSING or fails, and returned (分账回退) before any refund of its payment.
CREATE TABLE profit_shares (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    payment_id uuid NOT NULL UNIQUE REFERENCES commerce_payments (id),
    channel text NOT NULL,
    channel_txn text NOT NULL,
    receiver text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    paid_fen bigint NOT NULL CHECK (paid_fen > 0),
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processing', 'succeeded', 'failed', 'rejected', 'returned', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    not_before timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    channel_share_id text,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profit_shares_due ON profit_shares (next_attempt_at) WHERE state IN ('pending', 'processing', 'failed');
