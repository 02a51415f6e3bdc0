-- append_line_items, as 1_initial_schema defines it, found what became of each item of a write
-- by joining the write's items (jsonb_to_recordset, which the planner takes for 100 rows) to
-- line_items. While line_items is small (seen up to 8,000 rows; at 28,000 the planner chose index
-- lookups) that join was a hash join over a sequential scan of line_items, so every add of a young
-- database cost more than the one before. Measured on one connection, 100 bills, one item per
-- call (docs/performance.md): Postgres CPU per call grew from 0.75 to 1.79 ms over the first 8,000
-- items; this version looks each item up by its primary key and stays at about 0.5 ms. Nothing
-- else changes: same signature, same answers.
CREATE OR REPLACE FUNCTION append_line_items(p_bill_id TEXT, p_items JSONB, p_batches JSONB, p_source TEXT)
RETURNS TABLE (version BIGINT, totals JSONB, items JSONB, batches JSONB) AS $$
DECLARE
    reserve BIGINT;
    base BIGINT;
    next_position BIGINT;
    batch JSONB;
    staged RECORD;
    added JSONB;
    batch_results JSONB := '[]';
BEGIN
    reserve := jsonb_array_length(p_items)
        + COALESCE((SELECT sum((b ->> 'item_count')::bigint) FROM jsonb_array_elements(p_batches) b), 0);
    -- The bill's row lock, held to commit: versions and positions follow commit order.
    UPDATE bills SET line_item_seq = line_item_seq + reserve
     WHERE bill_id = p_bill_id AND status = 'open'
    RETURNING line_item_seq - reserve INTO base;
    IF base IS NULL THEN
        IF EXISTS (SELECT 1 FROM bills WHERE bill_id = p_bill_id) THEN
            RAISE EXCEPTION 'bill is closed: line items cannot be changed' USING ERRCODE = 'FE001';
        END IF;
        RAISE EXCEPTION 'bill % does not exist', p_bill_id USING ERRCODE = 'FE007';
    END IF;

    INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
    SELECT i.line_item_id, p_bill_id, base + i.ord, i.amount, i.currency, i.description, i.metadata, p_source
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
    ON CONFLICT (line_item_id) DO NOTHING;
    next_position := base + jsonb_array_length(p_items);

    -- A new statement, so a new snapshot: rows a concurrent writer committed while this insert
    -- waited on them are seen here. Each item's row is found by its primary key (the LATERAL
    -- subquery with LIMIT is never flattened into a join the planner may hash).
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'line_item_id', i.line_item_id,
               'created_at', li.created_at,
               'same', li.bill_id = p_bill_id AND li.amount = i.amount AND li.currency = i.currency
                   AND li.description = i.description AND li.metadata IS NOT DISTINCT FROM i.metadata)
             ORDER BY i.ord), '[]')
      INTO items
      FROM ROWS FROM (jsonb_to_recordset(p_items)
             AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
             WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
      CROSS JOIN LATERAL (SELECT l.bill_id, l.amount, l.currency, l.description, l.metadata, l.created_at
                            FROM line_items l WHERE l.line_item_id = i.line_item_id LIMIT 1) li;

    FOR batch IN SELECT * FROM jsonb_array_elements(p_batches) LOOP
        SELECT b.item_count, b.applied_by IS NOT NULL AS applied INTO staged
          FROM line_item_batches b
         WHERE b.batch_id = (batch ->> 'batch_id')::uuid AND b.bill_id = p_bill_id
           FOR UPDATE;
        IF NOT FOUND THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'missing');
            CONTINUE;
        ELSIF staged.applied THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'applied');
            CONTINUE;
        ELSIF staged.item_count <> (batch ->> 'item_count')::int THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'mismatch');
            CONTINUE;
        END IF;
        BEGIN
            -- Sums as text: a BIGINT sum must not pass through a float.
            WITH ins AS (
                INSERT INTO line_items (line_item_id, bill_id, position, amount, currency, description, metadata, source_ref)
                SELECT i.line_item_id, p_bill_id, next_position + i.ord, i.amount, i.currency, i.description, i.metadata, p_source
                  FROM line_item_batches b,
                       ROWS FROM (jsonb_to_recordset(b.items)
                         AS (line_item_id UUID, amount BIGINT, currency TEXT, description TEXT, metadata JSONB))
                         WITH ORDINALITY AS i(line_item_id, amount, currency, description, metadata, ord)
                 WHERE b.batch_id = (batch ->> 'batch_id')::uuid
                ON CONFLICT (line_item_id) DO NOTHING
                RETURNING currency, amount)
            SELECT COALESCE(jsonb_object_agg(currency, jsonb_build_object('amount', amount, 'count', n)), '{}')
              INTO added
              FROM (SELECT currency, sum(amount)::text AS amount, count(*)::text AS n FROM ins GROUP BY currency) s;
            -- The workflow reserved the declared sums: rows that say otherwise (some stored by
            -- another path) are rolled back and the batch refused as a whole.
            IF added IS DISTINCT FROM (SELECT COALESCE(jsonb_object_agg(key, jsonb_build_object(
                     'amount', value ->> 'amount', 'count', value ->> 'count')), '{}')
                   FROM jsonb_each(batch -> 'totals')) THEN
                RAISE EXCEPTION 'batch sums differ' USING ERRCODE = 'FE008';
            END IF;
            UPDATE line_item_batches SET items = NULL, applied_by = p_source, applied_totals = batch -> 'totals'
             WHERE batch_id = (batch ->> 'batch_id')::uuid;
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'applied');
        EXCEPTION WHEN SQLSTATE 'FE008' THEN
            batch_results := batch_results || jsonb_build_object('batch_id', batch ->> 'batch_id', 'status', 'mismatch');
        END;
        next_position := next_position + staged.item_count;
    END LOOP;

    RETURN QUERY
    SELECT b.line_item_seq,
           COALESCE((SELECT jsonb_object_agg(t.currency, jsonb_build_object('amount', t.amount::text, 'count', t.line_item_count::text))
                       FROM bill_totals t WHERE t.bill_id = p_bill_id), '{}'),
           items, batch_results
      FROM bills b WHERE b.bill_id = p_bill_id;
END;
$$ LANGUAGE plpgsql;
