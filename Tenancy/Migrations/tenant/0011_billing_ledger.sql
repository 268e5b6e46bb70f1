-- Billing on a double-entry ledger, in integer fen.
--
-- Accounts keep posted debits and credits; they change only through transfers: a statement
-- trigger adds every inserted transfer to both of its accounts in the same statement, and
-- transfers can be neither updated nor deleted (a correction is a new transfer). A guarded
-- account cannot go below zero on its normal side (prepaid and deposit balances): the CHECK
-- fails the whole transaction.
CREATE TABLE ledger_accounts (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    -- receivable (per room and fee item), revenue (per fee item), prepaid and deposit (per
    -- resident or room), channel (per payment method: cash, wechat, alipay, bank_card)
    kind text NOT NULL CHECK (kind IN ('receivable', 'revenue', 'prepaid', 'deposit', 'channel', 'write_off')),
    subtype text NOT NULL DEFAULT '',
    room_id uuid REFERENCES rooms (id),
    resident_id uuid REFERENCES residents (id),
    fee_item_id uuid,
    normal text NOT NULL CHECK (normal IN ('debit', 'credit')),
    guarded boolean NOT NULL DEFAULT false,
    frozen boolean NOT NULL DEFAULT false,
    debits_fen bigint NOT NULL DEFAULT 0 CHECK (debits_fen >= 0),
    credits_fen bigint NOT NULL DEFAULT 0 CHECK (credits_fen >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_not_negative CHECK (
        NOT guarded OR (normal = 'debit' AND debits_fen >= credits_fen) OR (normal = 'credit' AND credits_fen >= debits_fen)),
    UNIQUE NULLS NOT DISTINCT (community_id, kind, subtype, room_id, resident_id, fee_item_id)
);

CREATE TABLE ledger_transfers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id uuid NOT NULL,                  -- the business event: a bill run, a payment, a top-up
    debit_account uuid NOT NULL REFERENCES ledger_accounts (id),
    credit_account uuid NOT NULL REFERENCES ledger_accounts (id),
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    kind text NOT NULL CHECK (kind IN ('charge', 'settle', 'topup', 'offset', 'withdraw', 'reversal')),
    bill_id uuid,                            -- the bill a transfer charges or settles
    reverses bigint REFERENCES ledger_transfers (id),
    memo text NOT NULL DEFAULT '',
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account <> credit_account)
);
CREATE INDEX ledger_transfers_bill ON ledger_transfers (bill_id) WHERE bill_id IS NOT NULL;
CREATE INDEX ledger_transfers_entry ON ledger_transfers (entry_id);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account, id);

CREATE FUNCTION ledger_post() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_accounts a SET debits_fen = a.debits_fen + s.debits, credits_fen = a.credits_fen + s.credits
    FROM (SELECT account, sum(debits)::bigint AS debits, sum(credits)::bigint AS credits FROM (
              SELECT debit_account AS account, amount_fen AS debits, 0 AS credits FROM posted
              UNION ALL
              SELECT credit_account, 0, amount_fen FROM posted) legs
          GROUP BY account) s
    WHERE a.id = s.account;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_post AFTER INSERT ON ledger_transfers REFERENCING NEW TABLE AS posted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_post();

CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger transfers are append-only; post a reversal instead' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER ledger_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();

-- Fee items (收费项目): periodic monthly items charged by area or a fixed amount, and one-time items.
CREATE TABLE fee_items (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'yearly', 'one_time')),
    rule text NOT NULL CHECK (rule IN ('area', 'fixed')),
    unit_price_fen bigint NOT NULL CHECK (unit_price_fen >= 0),   -- per m² per month for area, per period for fixed
    surcharge_fen bigint NOT NULL DEFAULT 0 CHECK (surcharge_fen >= 0),
    due_day smallint NOT NULL DEFAULT 1 CHECK (due_day BETWEEN 1 AND 28),
    late_fee_per_mille_daily integer NOT NULL DEFAULT 0 CHECK (late_fee_per_mille_daily BETWEEN 0 AND 10),
    grace_days integer NOT NULL DEFAULT 0 CHECK (grace_days >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, name)
);

-- An item bound to a room from a date, until a date.
CREATE TABLE fee_bindings (
    id uuid PRIMARY KEY,
    fee_item_id uuid NOT NULL REFERENCES fee_items (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    starts_on date NOT NULL,
    ends_on date CHECK (ends_on >= starts_on),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fee_bindings_item ON fee_bindings (fee_item_id);

-- Bills (应收): one per room, item and period, however often generation runs.
CREATE TABLE bills (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    fee_item_id uuid NOT NULL REFERENCES fee_items (id),
    period_start date NOT NULL,
    period_end date NOT NULL,              -- inclusive
    billed_days integer NOT NULL,          -- the days of the period the binding covers
    period_days integer NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    due_on date NOT NULL,
    entry_id uuid NOT NULL,                -- the generation run that charged it
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (room_id, fee_item_id, period_start)
);
CREATE INDEX bills_community_due ON bills (community_id, due_on);
CREATE INDEX bills_room ON bills (room_id, due_on);

-- Payments (实收) and their receipts, numbered without gaps per community and year.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id),
    room_id uuid NOT NULL REFERENCES rooms (id),
    entry_id uuid NOT NULL,
    total_fen bigint NOT NULL CHECK (total_fen > 0),
    settled_fen bigint NOT NULL,
    to_prepaid_fen bigint NOT NULL,
    cashier_id uuid NOT NULL REFERENCES users (id),
    receipt_no text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, receipt_no)
);
CREATE TABLE receipt_counters (
    community_id uuid NOT NULL REFERENCES communities (id),
    year integer NOT NULL,
    last_number integer NOT NULL,
    PRIMARY KEY (community_id, year)
);
