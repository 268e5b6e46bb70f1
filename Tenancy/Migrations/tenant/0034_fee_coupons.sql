-- Coupons for property fees and parking (README, "Commerce"): issued by the property only,
-- spent on a fee payment at the cashier or on a temporary stay, and given back when the
-- payment is voided. The discount settles bills (or the stay) from the property's coupon cost
-- account, so the ledger says what was money and what was a coupon.
ALTER TABLE coupon_templates DROP CONSTRAINT coupon_templates_scope_check;
ALTER TABLE coupon_templates ADD CONSTRAINT coupon_templates_scope_check
    CHECK (scope IN ('shop', 'category', 'goods', 'property_fees', 'parking'));
ALTER TABLE coupon_templates ADD CONSTRAINT coupon_templates_property_scopes
    CHECK (scope NOT IN ('property_fees', 'parking') OR (merchant_id IS NULL AND scope_ids = '{}'));

-- A billing payment's id or a parking payment's: never both an order and a payment.
ALTER TABLE coupons ADD COLUMN payment_id uuid;
ALTER TABLE coupons ADD CONSTRAINT coupons_one_use CHECK (order_id IS NULL OR payment_id IS NULL);
CREATE UNIQUE INDEX coupons_payment ON coupons (payment_id) WHERE payment_id IS NOT NULL;

ALTER TABLE payments ADD COLUMN coupon_fen bigint NOT NULL DEFAULT 0 CHECK (coupon_fen >= 0);

-- A coupon may cover a whole stay: no money then, the coupon's value only.
ALTER TABLE parking_payments ADD COLUMN coupon_fen bigint NOT NULL DEFAULT 0 CHECK (coupon_fen >= 0);
ALTER TABLE parking_payments DROP CONSTRAINT parking_payments_amount_fen_check;
ALTER TABLE parking_payments ADD CONSTRAINT parking_payments_amount_fen_check CHECK (amount_fen >= 0 AND amount_fen + coupon_fen > 0);
