-- Receipts can be voided with a reason; the payment's transfers are reversed by new transfers.
ALTER TABLE payments ADD COLUMN voided_at timestamptz;
ALTER TABLE payments ADD COLUMN voided_by uuid REFERENCES users (id);
ALTER TABLE payments ADD COLUMN void_reason text;
ALTER TABLE payments ADD COLUMN reversal_entry_id uuid;
CREATE INDEX payments_room ON payments (room_id, created_at DESC);
CREATE INDEX payments_cashier_day ON payments (community_id, cashier_id, created_at);
