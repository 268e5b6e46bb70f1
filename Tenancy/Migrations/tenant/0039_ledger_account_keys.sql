-- A transfer's two accounts exist, checked once per statement instead of twice per row.
--
-- The foreign keys of ledger_transfers on ledger_accounts cost two row checks per transfer:
-- 335 of the 1,125 ms that the 30,000 charge transfers of a bill run (10,000 rooms x 3 items)
-- took (auto_explain). ledger_post already updates every account a statement's transfers name;
-- it now fails the statement when any of them is missing (the same SQLSTATE as the key did),
-- and an account can no longer be deleted, re-keyed or truncated, so what the keys guarded
-- still holds: every transfer's accounts exist for as long as the transfer does.
ALTER TABLE ledger_transfers
    DROP CONSTRAINT ledger_transfers_debit_account_fkey,
    DROP CONSTRAINT ledger_transfers_credit_account_fkey;

CREATE OR REPLACE FUNCTION ledger_post() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
    posted_to bigint;
BEGIN
    WITH legs AS (
        SELECT account, sum(debits)::bigint AS debits, sum(credits)::bigint AS credits FROM (
            SELECT debit_account AS account, amount_fen AS debits, 0 AS credits FROM posted
            UNION ALL
            SELECT credit_account, 0, amount_fen FROM posted) l
        GROUP BY account),
    updated AS (
        UPDATE ledger_accounts a SET debits_fen = a.debits_fen + s.debits, credits_fen = a.credits_fen + s.credits
        FROM legs s WHERE a.id = s.account
        RETURNING 1)
    SELECT (SELECT count(*) FROM legs), (SELECT count(*) FROM updated) INTO named, posted_to;
    IF posted_to <> named THEN
        RAISE EXCEPTION 'a ledger transfer names an account that does not exist' USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION ledger_account_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger accounts are kept for as long as their transfers' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER ledger_account_kept BEFORE DELETE OR UPDATE OF id ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_account_kept();
CREATE TRIGGER ledger_account_kept_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_account_kept();
-- Append-only held against TRUNCATE too (ledger_immutable covered rows only).
CREATE TRIGGER ledger_immutable_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_immutable();
