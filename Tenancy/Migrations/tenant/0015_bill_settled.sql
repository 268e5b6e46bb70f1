-- What has been settled on a bill, in one place: payments and offsets, less their reversals
-- (voids). A bill's open amount is amount_fen - bill_settled_fen(id).
CREATE FUNCTION bill_settled_fen(bill uuid) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(CASE kind WHEN 'reversal' THEN -amount_fen ELSE amount_fen END), 0)::bigint
    FROM ledger_transfers WHERE bill_id = bill AND kind IN ('settle', 'offset', 'reversal')
$$;
