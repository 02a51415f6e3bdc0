-- A closed bill changes no more: not its status (as before), nor any other column of its row. Only
-- the records that move on after the close (bill_postprocess, invoices) live in other tables. An
-- update that writes the same values (a retried cancel of a cancelled bill) changes nothing and
-- passes.
DROP TRIGGER bills_no_reopen ON bills;
DROP FUNCTION bills_refuse_reopen();

CREATE FUNCTION bills_closed_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'bill % is closed and cannot change', OLD.bill_id USING ERRCODE = 'FE002';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bills_closed_immutable
    BEFORE UPDATE ON bills
    FOR EACH ROW WHEN (OLD.status = 'closed' AND NEW IS DISTINCT FROM OLD)
    EXECUTE FUNCTION bills_closed_immutable();

-- A row inserted without a position takes the next one only from an open bill (it used to update
-- the counter of a closed bill before refusing, which the trigger above now refuses first).
CREATE OR REPLACE FUNCTION line_items_take_position() RETURNS trigger AS $$
BEGIN
    UPDATE bills SET line_item_seq = line_item_seq + 1 WHERE bill_id = NEW.bill_id AND status = 'open'
        RETURNING line_item_seq INTO NEW.position;
    IF NEW.position IS NULL THEN
        IF EXISTS (SELECT 1 FROM bills WHERE bill_id = NEW.bill_id) THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
        RAISE EXCEPTION 'bill % does not exist', NEW.bill_id USING ERRCODE = '23503';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
