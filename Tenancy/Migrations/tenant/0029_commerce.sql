-- Commerce (README, "Commerce"): merchants and the communities they sell in, the category tree,
-- goods with SKUs and stock, orders with their events and payments, reviews. Money moves on the
-- billing ledger (CommerceLedger); points on the points ledger (a hold per order).

-- The tenant's marketplace settings: one row.
CREATE TABLE commerce_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    unpaid_seconds integer NOT NULL DEFAULT 1800 CHECK (unpaid_seconds BETWEEN 1 AND 86400),
    confirm_days integer NOT NULL DEFAULT 7 CHECK (confirm_days BETWEEN 1 AND 30),
    review_days integer NOT NULL DEFAULT 7 CHECK (review_days BETWEEN 1 AND 30),
    fen_per_point integer NOT NULL DEFAULT 1 CHECK (fen_per_point BETWEEN 1 AND 100),
    max_points_percent integer NOT NULL DEFAULT 30 CHECK (max_points_percent BETWEEN 0 AND 100),
    default_commission_bp integer NOT NULL DEFAULT 500 CHECK (default_commission_bp BETWEEN 0 AND 3000)
);
INSERT INTO commerce_settings DEFAULT VALUES;

CREATE TABLE merchants (
    id uuid PRIMARY KEY,
    -- The applicant: a user with the merchant role; staff of the shop are its members.
    owner_user_id uuid NOT NULL UNIQUE REFERENCES users (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    shop_type text NOT NULL CHECK (shop_type IN ('supermarket', 'restaurant', 'greengrocer', 'pharmacy', 'mother_baby', 'housekeeping', 'other')),
    licence_no text NOT NULL CHECK (length(licence_no) = 18),
    contact_name text NOT NULL,
    contact_phone text NOT NULL,
    address text NOT NULL,
    hours text NOT NULL DEFAULT '',
    delivery_radius_tenths_km integer NOT NULL DEFAULT 0 CHECK (delivery_radius_tenths_km BETWEEN 0 AND 500),
    logo_ref text NOT NULL DEFAULT '',
    image_refs text[] NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'submitted' CHECK (state IN ('submitted', 'rejected', 'deposit_due', 'active')),
    reject_reason text NOT NULL DEFAULT '',
    commission_bp integer NOT NULL DEFAULT 0 CHECK (commission_bp BETWEEN 0 AND 3000),
    deposit_fen bigint NOT NULL DEFAULT 0 CHECK (deposit_fen BETWEEN 0 AND 10000000),
    deposit_entry uuid,
    reviewed_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (licence_no)
);

CREATE TABLE merchant_members (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    user_id uuid NOT NULL UNIQUE REFERENCES users (id),
    PRIMARY KEY (merchant_id, user_id)
);

CREATE TABLE merchant_communities (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    community_id uuid NOT NULL REFERENCES communities (id),
    state text NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'approved', 'rejected')),
    reason text NOT NULL DEFAULT '',
    reviewed_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, community_id)
);
CREATE INDEX merchant_communities_community ON merchant_communities (community_id) WHERE state = 'approved';

-- Images on the object store (local disk under .data/ in development): the reference is the
-- content's hash, so the same bytes are stored once.
CREATE TABLE images (
    ref text PRIMARY KEY,
    size integer NOT NULL CHECK (size > 0),
    content_type text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id uuid PRIMARY KEY,
    parent_id uuid REFERENCES categories (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 30),
    sort_order integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    UNIQUE NULLS NOT DISTINCT (parent_id, name)
);

CREATE TABLE goods (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    category_id uuid NOT NULL REFERENCES categories (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    description text NOT NULL DEFAULT '',
    image_refs text[] NOT NULL DEFAULT '{}',
    listed boolean NOT NULL DEFAULT false,
    review_count integer NOT NULL DEFAULT 0,
    score_sum integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX goods_merchant ON goods (merchant_id, id);
CREATE INDEX goods_listed ON goods (category_id, id) WHERE listed;

-- stock: what can still be ordered; reserved: held by unpaid orders; sold: paid. Reserving
-- moves stock to reserved in one guarded UPDATE, so no order can take what is not there.
CREATE TABLE skus (
    id uuid PRIMARY KEY,
    goods_id uuid NOT NULL REFERENCES goods (id),
    spec text NOT NULL CHECK (length(spec) BETWEEN 1 AND 40),
    price_fen bigint NOT NULL CHECK (price_fen BETWEEN 1 AND 100000000),
    stock integer NOT NULL CHECK (stock >= 0),
    reserved integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
    UNIQUE (goods_id, spec)
);

CREATE SEQUENCE order_numbers;

CREATE TABLE orders (
    id uuid PRIMARY KEY,
    order_no text NOT NULL UNIQUE,
    community_id uuid NOT NULL REFERENCES communities (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    placed_by uuid NOT NULL,
    state text NOT NULL DEFAULT 'unpaid'
        CHECK (state IN ('unpaid', 'paid', 'shipped', 'received', 'done', 'cancelled', 'returning', 'returned')),
    goods_fen bigint NOT NULL CHECK (goods_fen > 0),
    points bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    points_value_fen bigint NOT NULL DEFAULT 0 CHECK (points_value_fen >= 0),
    pay_fen bigint NOT NULL CHECK (pay_fen >= 0),
    points_hold_id uuid,
    address text NOT NULL,
    contact_phone text NOT NULL DEFAULT '',
    note text NOT NULL DEFAULT '',
    pay_deadline timestamptz NOT NULL,
    paid_at timestamptz,
    shipped_at timestamptz,
    received_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text NOT NULL DEFAULT '',
    tracking text NOT NULL DEFAULT '',
    refunded_fen bigint NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    settled_fen bigint NOT NULL DEFAULT 0 CHECK (settled_fen >= 0),
    commission_fen bigint NOT NULL DEFAULT 0 CHECK (commission_fen >= 0),
    -- Where a return came from, and its review.
    return_from text,
    return_state text CHECK (return_state IN ('requested', 'accepted', 'rejected')),
    return_reason text NOT NULL DEFAULT '',
    return_image_refs text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (goods_fen = pay_fen + points_value_fen)
);
CREATE INDEX orders_resident ON orders (resident_id, created_at DESC, id DESC);
CREATE INDEX orders_merchant ON orders (merchant_id, created_at DESC, id DESC);
CREATE INDEX orders_community ON orders (community_id, created_at DESC, id DESC);
CREATE INDEX orders_unpaid ON orders (pay_deadline) WHERE state = 'unpaid';
CREATE INDEX orders_shipped ON orders (shipped_at) WHERE state = 'shipped';
CREATE INDEX orders_received ON orders (received_at) WHERE state = 'received';

CREATE TABLE order_lines (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    sku_id uuid NOT NULL REFERENCES skus (id),
    goods_id uuid NOT NULL REFERENCES goods (id),
    name text NOT NULL,
    spec text NOT NULL,
    price_fen bigint NOT NULL CHECK (price_fen > 0),
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    amount_fen bigint NOT NULL CHECK (amount_fen = price_fen * quantity),
    reviewed boolean NOT NULL DEFAULT false
);
CREATE INDEX order_lines_order ON order_lines (order_id);

CREATE TABLE order_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    from_state text,
    to_state text NOT NULL,
    actor text NOT NULL CHECK (actor IN ('resident', 'merchant', 'staff', 'job', 'channel')),
    actor_id uuid,
    note text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order ON order_events (order_id, id);

-- Payment intents and what the channel said of them: one paid transaction per intent, applied
-- once (the channel's transaction id is unique).
CREATE TABLE commerce_payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    channel text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'paid', 'refunded', 'closed')),
    channel_txn text UNIQUE,
    expires_at timestamptz NOT NULL,
    paid_at timestamptz,
    refunded_at timestamptz,
    refund_txn text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commerce_payments_order ON commerce_payments (order_id);

CREATE TABLE reviews (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    line_id uuid NOT NULL UNIQUE REFERENCES order_lines (id),
    goods_id uuid NOT NULL REFERENCES goods (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    score integer NOT NULL CHECK (score BETWEEN 1 AND 5),
    text text NOT NULL DEFAULT '',
    image_refs text[] NOT NULL DEFAULT '{}',
    reply text,
    replied_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_goods ON reviews (goods_id, created_at DESC, id DESC);

-- Points given back when an order paid with points is refunded.
ALTER TABLE points_transfers DROP CONSTRAINT points_transfers_kind_check;
ALTER TABLE points_transfers ADD CONSTRAINT points_transfers_kind_check
    CHECK (kind IN ('fund', 'grant', 'freeze', 'commit', 'release', 'expire', 'reverse'));
ALTER TABLE points_holds DROP CONSTRAINT points_holds_state_check;
ALTER TABLE points_holds ADD CONSTRAINT points_holds_state_check CHECK (state IN ('held', 'committed', 'released', 'reversed'));
