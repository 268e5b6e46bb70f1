-- Group buys (README, "Group buys"): campaigns the property company publishes, the merchants'
-- deals in them (reviewed), and the groups residents open and join. A member is an ordinary
-- order with group_buy_id set; the group counts its seats and its paid members under its row lock.
CREATE TABLE group_buy_campaigns (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 60),
    description text NOT NULL DEFAULT '',
    group_size integer NOT NULL CHECK (group_size BETWEEN 2 AND 50),
    form_hours integer NOT NULL CHECK (form_hours BETWEEN 1 AND 168),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    closed boolean NOT NULL DEFAULT false,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_buy_campaigns_community ON group_buy_campaigns (community_id, ends_at DESC);

CREATE TABLE group_buy_deals (
    id uuid PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES group_buy_campaigns (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    sku_id uuid NOT NULL REFERENCES skus (id),
    group_price_fen bigint NOT NULL CHECK (group_price_fen > 0),
    state text NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'approved', 'rejected')),
    reason text NOT NULL DEFAULT '',
    reviewed_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, sku_id)
);

CREATE TABLE group_buys (
    id uuid PRIMARY KEY,
    deal_id uuid NOT NULL REFERENCES group_buy_deals (id),
    size integer NOT NULL CHECK (size BETWEEN 2 AND 50),
    joined integer NOT NULL DEFAULT 0 CHECK (joined BETWEEN 0 AND size),
    paid integer NOT NULL DEFAULT 0 CHECK (paid BETWEEN 0 AND joined),
    state text NOT NULL DEFAULT 'forming' CHECK (state IN ('forming', 'succeeded', 'failed')),
    deadline timestamptz NOT NULL,
    opened_by uuid NOT NULL REFERENCES residents (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
CREATE INDEX group_buys_deal ON group_buys (deal_id, deadline) WHERE state = 'forming';
CREATE INDEX group_buys_due ON group_buys (deadline) WHERE state = 'forming';

ALTER TABLE orders ADD COLUMN group_buy_id uuid REFERENCES group_buys (id);
CREATE INDEX orders_group_buy ON orders (group_buy_id) WHERE group_buy_id IS NOT NULL;
-- One seat per resident in a group: a second order of theirs in it is refused while the first stands.
CREATE UNIQUE INDEX orders_group_member ON orders (group_buy_id, resident_id) WHERE group_buy_id IS NOT NULL AND state <> 'cancelled';

-- Brands (品牌): the platform's (merchant_id NULL) or a shop's own.
CREATE TABLE brands (
    id uuid PRIMARY KEY,
    merchant_id uuid REFERENCES merchants (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    logo_ref text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (merchant_id, name)
);
ALTER TABLE goods ADD COLUMN brand_id uuid REFERENCES brands (id);

-- A SKU's price in one community, where it differs from the SKU's own.
CREATE TABLE sku_community_prices (
    sku_id uuid NOT NULL REFERENCES skus (id),
    community_id uuid NOT NULL REFERENCES communities (id),
    price_fen bigint NOT NULL CHECK (price_fen BETWEEN 1 AND 100000000),
    PRIMARY KEY (sku_id, community_id)
);

-- The resident's cart (购物车): what they mean to buy, priced when they order.
CREATE TABLE cart_items (
    resident_id uuid NOT NULL REFERENCES residents (id),
    sku_id uuid NOT NULL REFERENCES skus (id),
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, sku_id)
);
