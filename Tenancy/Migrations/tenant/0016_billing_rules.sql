-- Billing, the rest of the rules: quarterly, yearly and one-time items, periods that start on
-- another day than the 1st (non-calendar months), rent with a yearly increase, tiered meter
-- prices, parking-space bindings, late fees, allocation order, typed prepaid accounts,
-- refunds with approval, write-offs and invoices.

ALTER TABLE fee_items DROP CONSTRAINT fee_items_rule_check;
ALTER TABLE fee_items ADD CONSTRAINT fee_items_rule_check CHECK (rule IN ('area', 'fixed', 'metered', 'rent'));
-- What the item is for: typed prepaid accounts pay only items of their category.
ALTER TABLE fee_items ADD COLUMN category text NOT NULL DEFAULT 'property'
    CHECK (category IN ('property', 'utilities', 'parking', 'rent', 'other'));
-- A period starts on this day of its first month: 1 is calendar months, 15 runs 15th to 14th.
ALTER TABLE fee_items ADD COLUMN cycle_day smallint NOT NULL DEFAULT 1 CHECK (cycle_day BETWEEN 1 AND 28);
-- Late fee: this many ten-thousandths of the open principal a day (5 is 万分之五), after grace_days.
ALTER TABLE fee_items DROP COLUMN late_fee_per_mille_daily;
ALTER TABLE fee_items ADD COLUMN late_fee_per_10k_daily integer NOT NULL DEFAULT 0 CHECK (late_fee_per_10k_daily BETWEEN 0 AND 100);
-- Allocation order "item priority": lower first.
ALTER TABLE fee_items ADD COLUMN priority integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000);
-- Tiered metered prices: usage up to tier_limits_centi[1] at tier_prices_fen[1], up to [2] at [2], …,
-- beyond the last limit at the last price (one price more than limits). NULL: unit_price_fen for all.
ALTER TABLE fee_items ADD COLUMN tier_limits_centi bigint[];
ALTER TABLE fee_items ADD COLUMN tier_prices_fen bigint[];
ALTER TABLE fee_items ADD CONSTRAINT fee_items_tiers CHECK (
    (tier_limits_centi IS NULL AND tier_prices_fen IS NULL)
    OR (rule = 'metered' AND cardinality(tier_prices_fen) = cardinality(tier_limits_centi) + 1));
-- Rent rises by this many basis points on each anniversary of the binding (300 is 3% a year).
ALTER TABLE fee_items ADD COLUMN yearly_increase_bp integer NOT NULL DEFAULT 0 CHECK (yearly_increase_bp BETWEEN 0 AND 10000);

-- A binding charges a room, or a parking space on behalf of its room; rent (and an agreed
-- price) is per binding.
ALTER TABLE fee_bindings ADD COLUMN parking_space_id uuid REFERENCES parking_spaces (id);
ALTER TABLE fee_bindings ADD COLUMN amount_fen bigint CHECK (amount_fen > 0);

ALTER TABLE bills ADD COLUMN parking_space_id uuid REFERENCES parking_spaces (id);
ALTER TABLE bills DROP CONSTRAINT bills_room_id_fee_item_id_period_start_key;
ALTER TABLE bills ADD CONSTRAINT bills_one_per_period UNIQUE NULLS NOT DISTINCT (room_id, fee_item_id, period_start, parking_space_id);
-- A generation run reads back the bills it inserted (to open accounts and charge them): by its
-- entry, not by scanning every bill the tenant ever had.
CREATE INDEX bills_entry ON bills (entry_id);

-- New transfer kinds: a late fee charged on a bill at payment, a write-off (减免) of a bill.
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
    CHECK (kind IN ('charge', 'late_fee', 'settle', 'topup', 'offset', 'withdraw', 'reversal', 'collect', 'convert', 'refund',
                    'write_off'));

-- A bill's figures from its transfers, defined once:
--   charged  = the charge + late fees charged
--   settled  = payments and offsets − their reversals (voids) − refunds
--   waived   = write-offs
--   open     = charged − settled − waived
-- and the last day a late fee was charged (Asia/Shanghai), from which the next one accrues.
CREATE FUNCTION bill_ledger(bill uuid, OUT charged_fen bigint, OUT late_fee_fen bigint, OUT settled_fen bigint, OUT waived_fen bigint,
                            OUT open_fen bigint, OUT late_fee_through date)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(amount_fen) FILTER (WHERE kind IN ('charge', 'late_fee')), 0)::bigint,
           coalesce(sum(amount_fen) FILTER (WHERE kind = 'late_fee'), 0)::bigint,
           coalesce(sum(CASE WHEN kind IN ('settle', 'offset') THEN amount_fen WHEN kind IN ('reversal', 'refund') THEN -amount_fen END), 0)::bigint,
           coalesce(sum(amount_fen) FILTER (WHERE kind = 'write_off'), 0)::bigint,
           coalesce(sum(CASE WHEN kind IN ('charge', 'late_fee', 'reversal', 'refund') THEN amount_fen ELSE -amount_fen END), 0)::bigint,
           max((created_at AT TIME ZONE 'Asia/Shanghai')::date) FILTER (WHERE kind = 'late_fee')
    FROM ledger_transfers WHERE bill_id = bill
$$;

DROP FUNCTION bill_settled_fen(uuid);
CREATE FUNCTION bill_open_fen(bill uuid) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(CASE WHEN kind IN ('charge', 'late_fee', 'reversal', 'refund') THEN amount_fen ELSE -amount_fen END), 0)::bigint
    FROM ledger_transfers WHERE bill_id = bill
$$;

-- The late fee accrued on a bill by `today` and not yet charged: the item's daily rate on the
-- open principal (payments go to late fees first), for each day after the due date and the
-- grace days, or after the last late fee charged; rounded half up once; all late fees of a
-- bill together never exceed its amount.
CREATE FUNCTION bill_late_fee_fen(bill uuid, today date) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN i.late_fee_per_10k_daily = 0 OR days <= 0 OR principal <= 0 THEN 0
                ELSE least(b.amount_fen - l.late_fee_fen,
                           round(principal::numeric * i.late_fee_per_10k_daily * days / 10000)::bigint) END
    FROM bills b JOIN fee_items i ON i.id = b.fee_item_id CROSS JOIN LATERAL bill_ledger(b.id) l
    CROSS JOIN LATERAL (SELECT today - greatest(b.due_on + i.grace_days, l.late_fee_through) AS days,
                               b.amount_fen - greatest(0, l.settled_fen + l.waived_fen - l.late_fee_fen) AS principal) x
    WHERE b.id = bill
$$;

-- How a community allocates payments and prepaid offsets over open bills.
CREATE TABLE billing_settings (
    community_id uuid PRIMARY KEY REFERENCES communities (id),
    allocation text NOT NULL DEFAULT 'oldest_due_first' CHECK (allocation IN ('oldest_due_first', 'item_priority')),
    updated_by uuid REFERENCES users (id),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Refunds (退款) of what a payment settled: requested by a cashier, decided by a manager.
CREATE TABLE refunds (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    payment_id uuid NOT NULL REFERENCES payments (id),
    state text NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'cancelled')),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    reason text NOT NULL,
    waive boolean NOT NULL,                  -- the charge was not owed: the bill is written off, not reopened
    requested_by uuid NOT NULL REFERENCES users (id),
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_by uuid REFERENCES users (id),
    decided_at timestamptz,
    decision_note text,
    entry_id uuid,                           -- the transfers of an approved refund
    CHECK ((state = 'approved') = (entry_id IS NOT NULL))
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_community_state ON refunds (community_id, state, requested_at);
CREATE TABLE refund_lines (
    refund_id uuid NOT NULL REFERENCES refunds (id),
    bill_id uuid NOT NULL REFERENCES bills (id),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    PRIMARY KEY (refund_id, bill_id)
);

-- Invoices (发票): one payment split over several, each for some of its bills; numbered per
-- community and year without gaps; voided with the receipt or by a refund of their bills.
CREATE TABLE invoices (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    payment_id uuid NOT NULL REFERENCES payments (id),
    invoice_no text NOT NULL,
    title text NOT NULL,                     -- 抬头
    tax_no text NOT NULL DEFAULT '',         -- 纳税人识别号, for a company
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    bill_ids uuid[] NOT NULL,
    voided_at timestamptz,
    void_reason text,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, invoice_no)
);
CREATE INDEX invoices_payment ON invoices (payment_id);
-- Gap-free numbers per community, series and year, for receipts and invoices alike: the
-- counter row moves inside the caller's transaction, so a rolled-back document takes no number.
ALTER TABLE receipt_counters RENAME TO document_counters;
ALTER TABLE document_counters ADD COLUMN series text NOT NULL DEFAULT 'receipt' CHECK (series IN ('receipt', 'invoice'));
ALTER TABLE document_counters ALTER COLUMN series DROP DEFAULT;
ALTER TABLE document_counters DROP CONSTRAINT receipt_counters_pkey;
ALTER TABLE document_counters ADD PRIMARY KEY (community_id, series, year);
-- The next number: "2026-000123" for a receipt, "FP2026-000042" for an invoice.
CREATE FUNCTION next_document_no(of_community uuid, of_series text) RETURNS text LANGUAGE sql VOLATILE AS $$
    INSERT INTO document_counters (community_id, series, year, last_number)
    VALUES (of_community, of_series, extract(year FROM now() AT TIME ZONE 'Asia/Shanghai')::int4, 1)
    ON CONFLICT (community_id, series, year) DO UPDATE SET last_number = document_counters.last_number + 1
    RETURNING CASE series WHEN 'invoice' THEN 'FP' ELSE '' END || to_char(year, 'FM0000') || '-' || to_char(last_number, 'FM000000')
$$;
