-- Deposits (押金): collected into a deposit account per room and kind, then offset against
-- bills, turned into prepaid, or refunded; each is a transfer of its own kind.
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_kind_check;
ALTER TABLE ledger_transfers ADD CONSTRAINT ledger_transfers_kind_check
    CHECK (kind IN ('charge', 'settle', 'topup', 'offset', 'withdraw', 'reversal', 'collect', 'convert', 'refund'));
