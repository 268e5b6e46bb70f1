-- The monthly bill run writes one bill and one charge transfer per room and item; most of its
-- time went to per-row checks and rewrites, not to the rows (measured, 10,000 rooms x 3 items).

-- Every transfer rewrites its two accounts' posted figures (ledger_post). With room left on a
-- page the new row version stays there and no index changes (a HOT update: no indexed column
-- moves): 25 -> 10 us per account in a bill run, and the same on every payment. New pages keep
-- a fifth free; existing ones gain it as they are rewritten.
ALTER TABLE ledger_accounts SET (fillfactor = 80);

-- A bill's room and fee item belong to the bill's community: one composite key each instead of
-- three single ones (the community followed from neither before). Two checks per bill, not three.
ALTER TABLE rooms ADD CONSTRAINT rooms_id_community UNIQUE (id, community_id);
ALTER TABLE fee_items ADD CONSTRAINT fee_items_id_community UNIQUE (id, community_id);
ALTER TABLE bills
    DROP CONSTRAINT bills_community_id_fkey,
    DROP CONSTRAINT bills_room_id_fkey,
    DROP CONSTRAINT bills_fee_item_id_fkey,
    ADD CONSTRAINT bills_room_of_community FOREIGN KEY (room_id, community_id) REFERENCES rooms (id, community_id),
    ADD CONSTRAINT bills_item_of_community FOREIGN KEY (fee_item_id, community_id) REFERENCES fee_items (id, community_id);
