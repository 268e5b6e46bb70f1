-- A bill's room and fee item belong to its community: checked once per statement, not per row.
--
-- The composite foreign keys of 0037 cost two row checks per bill, 246 of the ~1,300 ms of a
-- bill run of 30,000 bills (auto_explain: bills_room_of_community 133 ms, bills_item_of_community
-- 113 ms). The same guarantee, per statement: the rows a statement inserts lock their rooms and fee
-- items against deletion and re-keying (FOR KEY SHARE, what each row check took), and then one
-- anti-join each finds any bill whose room or item is missing or of another community (SQLSTATE
-- 23503, as the keys raised). 10,000 rooms locked and 60,000 bills checked took 22 + 11 + 9 ms.
-- A billed room or fee item is not deleted or moved to another community, and neither table is
-- truncated while bills exist; a bill's room, item and community do not change.
ALTER TABLE bills DROP CONSTRAINT bills_room_of_community, DROP CONSTRAINT bills_item_of_community;

CREATE FUNCTION bills_of_their_community() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    strays bigint;
BEGIN
    PERFORM 1 FROM rooms WHERE id IN (SELECT room_id FROM billed) ORDER BY id FOR KEY SHARE;
    PERFORM 1 FROM fee_items WHERE id IN (SELECT fee_item_id FROM billed) ORDER BY id FOR KEY SHARE;
    SELECT (SELECT count(*) FROM billed b
            WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = b.room_id AND r.community_id = b.community_id))
         + (SELECT count(*) FROM billed b
            WHERE NOT EXISTS (SELECT 1 FROM fee_items i WHERE i.id = b.fee_item_id AND i.community_id = b.community_id))
    INTO strays;
    IF strays > 0 THEN
        RAISE EXCEPTION 'a bill names a room or fee item that is not of its community' USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER bills_of_their_community AFTER INSERT ON bills REFERENCING NEW TABLE AS billed
    FOR EACH STATEMENT EXECUTE FUNCTION bills_of_their_community();

CREATE FUNCTION bills_keep_their_community() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.room_id, NEW.fee_item_id, NEW.community_id) IS DISTINCT FROM (OLD.room_id, OLD.fee_item_id, OLD.community_id) THEN
        RAISE EXCEPTION 'a bill''s room, fee item and community do not change' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER bills_keep_their_community BEFORE UPDATE OF room_id, fee_item_id, community_id ON bills
    FOR EACH ROW EXECUTE FUNCTION bills_keep_their_community();

-- The referenced side: the row is locked before a BEFORE trigger runs, so a bill inserted by a
-- transaction still open (holding its FOR KEY SHARE lock) is seen once that transaction commits
-- (each statement here takes a fresh snapshot: the server's transactions are READ COMMITTED).
CREATE FUNCTION billed_row_kept() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    billed boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.id, NEW.community_id) IS NOT DISTINCT FROM (OLD.id, OLD.community_id) THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'rooms' THEN
        billed := EXISTS (SELECT 1 FROM bills WHERE room_id = OLD.id);
    ELSE
        billed := EXISTS (SELECT 1 FROM bills WHERE fee_item_id = OLD.id);
    END IF;
    IF billed THEN
        RAISE EXCEPTION '% % has bills: it is not deleted or moved to another community', TG_TABLE_NAME, OLD.id USING ERRCODE = '23503';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER rooms_billed_kept BEFORE DELETE OR UPDATE OF id, community_id ON rooms
    FOR EACH ROW EXECUTE FUNCTION billed_row_kept();
CREATE TRIGGER fee_items_billed_kept BEFORE DELETE OR UPDATE OF id, community_id ON fee_items
    FOR EACH ROW EXECUTE FUNCTION billed_row_kept();

CREATE FUNCTION billed_table_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM bills) THEN
        RAISE EXCEPTION '% is not truncated while bills exist', TG_TABLE_NAME USING ERRCODE = '23503';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER rooms_billed_kept_truncate BEFORE TRUNCATE ON rooms FOR EACH STATEMENT EXECUTE FUNCTION billed_table_kept();
CREATE TRIGGER fee_items_billed_kept_truncate BEFORE TRUNCATE ON fee_items FOR EACH STATEMENT EXECUTE FUNCTION billed_table_kept();
