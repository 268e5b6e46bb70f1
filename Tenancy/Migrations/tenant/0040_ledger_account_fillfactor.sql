-- Balance updates stay on their page (heap-only tuples).
--
-- ledger_post updates the posted figures of every account a statement names: a bill run of
-- 10,000 rooms x 3 items updates 30,003 accounts in one statement. With a fifth of each page free
-- (0037) only a third of those updates found room on their page (n_tup_hot_upd 22,090 of 64,010
-- after two runs); the rest moved the row and added an entry to both of the table's indexes,
-- 337 ms of the statement under auto_explain. Half of each new page is kept free, so one update of
-- every row of a page fits beside it (63,977 of 64,010 stayed on their page); later ones reuse the
-- space that pruning frees once the old versions are dead. Pages written before keep their fill.
ALTER TABLE ledger_accounts SET (fillfactor = 50);
