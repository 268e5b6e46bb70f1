-- Coupons (README, "Commerce"): templates issued by a merchant or the property company, coupons
-- claimed from them (never more than the stock, never more per person than the limit), one
-- redeemed per order, exactly once.
CREATE TABLE coupon_templates (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    merchant_id uuid REFERENCES merchants (id),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    kind text NOT NULL CHECK (kind IN ('amount_off', 'percent_off')),
    amount_off_fen bigint NOT NULL DEFAULT 0 CHECK (amount_off_fen BETWEEN 0 AND 100000000),
    percent_off integer NOT NULL DEFAULT 0 CHECK (percent_off BETWEEN 0 AND 99),
    cap_fen bigint NOT NULL DEFAULT 0 CHECK (cap_fen BETWEEN 0 AND 100000000),
    threshold_fen bigint NOT NULL DEFAULT 0 CHECK (threshold_fen BETWEEN 0 AND 100000000),
    scope text NOT NULL CHECK (scope IN ('shop', 'category', 'goods')),
    scope_ids uuid[] NOT NULL DEFAULT '{}',
    stock integer NOT NULL CHECK (stock BETWEEN 1 AND 1000000),
    claimed integer NOT NULL DEFAULT 0 CHECK (claimed BETWEEN 0 AND stock),
    per_person integer NOT NULL CHECK (per_person BETWEEN 1 AND 100),
    claim_from timestamptz NOT NULL,
    claim_until timestamptz NOT NULL CHECK (claim_until > claim_from),
    valid_days integer NOT NULL CHECK (valid_days BETWEEN 1 AND 365),
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'amount_off') = (amount_off_fen > 0)),
    CHECK ((kind = 'percent_off') = (percent_off > 0))
);
CREATE INDEX coupon_templates_community ON coupon_templates (community_id, claim_until);

CREATE TABLE coupons (
    id uuid PRIMARY KEY,
    template_id uuid NOT NULL REFERENCES coupon_templates (id),
    resident_id uuid NOT NULL REFERENCES residents (id),
    state text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'used')),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    order_id uuid REFERENCES orders (id),
    discount_fen bigint NOT NULL DEFAULT 0,
    used_at timestamptz
);
CREATE INDEX coupons_resident ON coupons (resident_id, state, expires_at);

ALTER TABLE orders ADD COLUMN coupon_id uuid REFERENCES coupons (id);
ALTER TABLE orders ADD COLUMN coupon_fen bigint NOT NULL DEFAULT 0 CHECK (coupon_fen >= 0);
ALTER TABLE orders DROP CONSTRAINT orders_check;
ALTER TABLE orders ADD CONSTRAINT orders_amounts_sum CHECK (goods_fen = pay_fen + points_value_fen + coupon_fen);
-- Who bears the coupon's discount: the property company (a cost on the ledger) or the merchant.
ALTER TABLE orders ADD COLUMN coupon_property boolean NOT NULL DEFAULT false;
