/** SQL for meters and usage events, and the aggregates rating reads. */
import type { Queryable } from '../core/db';
import type { Aggregation, Meter, UsageAlert } from './types';

interface MeterRaw extends Omit<Meter, 'created_at'> {
  created_at: Date;
}

const toMeter = (r: MeterRaw): Meter => ({ ...r, created_at: r.created_at.toISOString() });

export async function insertMeter(db: Queryable, m: Omit<Meter, 'created_at'>): Promise<{ meter: Meter; created: boolean }> {
  const inserted = await db.query<MeterRaw>(
    `INSERT INTO meters (code, name, aggregation, field) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING
     RETURNING code, name, aggregation, field, created_at`,
    [m.code, m.name, m.aggregation, m.field],
  );
  if (inserted.rows[0]) return { meter: toMeter(inserted.rows[0]), created: true };
  return { meter: (await findMeters(db, [m.code]))[0], created: false };
}

export async function findMeters(db: Queryable, codes: string[]): Promise<Meter[]> {
  const { rows } = await db.query<MeterRaw>(
    'SELECT code, name, aggregation, field, created_at FROM meters WHERE code = ANY($1::text[]) ORDER BY code',
    [codes],
  );
  return rows.map(toMeter);
}

export async function listMeters(db: Queryable): Promise<Meter[]> {
  const { rows } = await db.query<MeterRaw>('SELECT code, name, aggregation, field, created_at FROM meters ORDER BY code');
  return rows.map(toMeter);
}

/** What each aggregation reads of a bill's events of one meter in [start, end), as exact decimal text. */
const FROM_EVENTS: Record<Aggregation, string> = {
  count: 'count(*)',
  sum: 'COALESCE(sum(e.quantity), 0)',
  max: 'COALESCE(max(e.quantity), 0)',
  // Events without the property are not a value of it.
  unique_count: 'count(DISTINCT e.properties ->> $5)',
  // The event with the latest timestamp; the highest id among events of the same instant.
  latest: 'COALESCE((array_agg(e.quantity ORDER BY e.ts DESC, e.event_id DESC))[1], 0)',
};

/** The same from the aggregates the events' inserts append (migration 4): one row per ingestion call. */
const FROM_AGGREGATES: Record<Aggregation, string> = {
  count: 'COALESCE(sum(events), 0)',
  sum: 'COALESCE(sum(quantity_sum), 0)',
  max: 'COALESCE(max(quantity_max), 0)',
  unique_count: 'COALESCE(sum(distinct_values), 0)',
  latest: 'COALESCE((array_agg(latest_quantity ORDER BY latest_ts DESC, latest_event_id DESC))[1], 0)',
};

/** A bill's aggregate of `meter`, from the kept aggregates (every stored event lies in its bill's period). */
export async function aggregateOf(db: Queryable, billId: string, meter: Meter): Promise<string> {
  const { rows } = await db.query<{ value: string }>(
    `SELECT (${FROM_AGGREGATES[meter.aggregation]})::text AS value FROM usage_aggregate_deltas WHERE bill_id = $1 AND meter = $2`,
    [billId, meter.code],
  );
  return rows[0].value;
}

/** The aggregate recomputed from the events with a timestamp in [start, end): what reconciliation checks the kept one against. */
export async function aggregateFromEvents(db: Queryable, billId: string, meter: Meter, start: string, end: string): Promise<string> {
  const { rows } = await db.query<{ value: string }>(
    `SELECT (${FROM_EVENTS[meter.aggregation]})::text AS value FROM usage_events e
      WHERE e.bill_id = $1 AND e.meter = $2 AND e.ts >= $3 AND e.ts < $4`,
    meter.aggregation === 'unique_count' ? [billId, meter.code, start, end, meter.field] : [billId, meter.code, start, end],
  );
  return rows[0].value;
}

export interface StoredEvent {
  meter: string;
  event_id: string;
  bill_id: string;
  ts: string;
  quantity: string;
  properties: Record<string, unknown> | null;
}

/**
 * Stores the events whose bill is open, sharing each bill's row lock with the close (which takes
 * it for update): an event committed before its bill's close is rated by it; one after is refused.
 * Answers the keys stored now and the bills that were open.
 */
export async function insertEvents(db: Queryable, events: StoredEvent[]): Promise<{ stored: Set<string> | 'all'; openBills: Set<string> }> {
  const bills = [...new Set(events.map((e) => e.bill_id))];
  const unique = new Set(events.map((e) => `${e.meter}\n${e.event_id}`)).size;
  // One row back: when every distinct event was stored (the usual call) only their count, not
  // a row per event for the driver to parse.
  const { rows } = await db.query<{ stored: string; keys: string[] | null; open_bills: string[] | null }>(
    `WITH open_bills AS (SELECT bill_id FROM bills WHERE bill_id = ANY($1::text[]) AND status = 'open' ORDER BY bill_id FOR SHARE),
     stored AS (
       INSERT INTO usage_events (meter, event_id, bill_id, ts, quantity, properties)
       SELECT e.meter, e.event_id, e.bill_id, e.ts, e.quantity, e.properties
         FROM jsonb_to_recordset($2::jsonb)
              AS e(meter TEXT, event_id TEXT, bill_id TEXT, ts TIMESTAMPTZ, quantity NUMERIC, properties JSONB)
        WHERE e.bill_id IN (SELECT bill_id FROM open_bills)
       ON CONFLICT (meter, event_id) DO NOTHING
       RETURNING meter, event_id),
     counted AS (SELECT count(*) AS n FROM stored)
     SELECT (SELECT n FROM counted)::text AS stored,
            CASE WHEN (SELECT n FROM counted) < $3 THEN (SELECT array_agg(meter || chr(10) || event_id) FROM stored) END AS keys,
            (SELECT array_agg(bill_id) FROM open_bills) AS open_bills`,
    [bills, JSON.stringify(events), unique],
  );
  const r = rows[0];
  return { stored: Number(r.stored) === unique ? 'all' : new Set(r.keys ?? []), openBills: new Set(r.open_bills ?? []) };
}

/** The bills events may name: their period and status, and for a series, which bill holds an instant. */
export interface BillPeriod {
  bill_id: string;
  series_id: string | null;
  status: 'open' | 'closed';
  start: string;
  end: string;
  usage_alerts: UsageAlert[] | null;
}

export async function billPeriods(db: Queryable, billIds: string[], seriesIds: string[]): Promise<BillPeriod[]> {
  const { rows } = await db.query<{
    bill_id: string;
    series_id: string | null;
    status: 'open' | 'closed';
    start: Date;
    end: Date;
    usage_alerts: UsageAlert[] | null;
  }>(
    `SELECT bill_id, series_id, status, billing_period_start AS start, billing_period_end AS "end", usage_alerts FROM bills
      WHERE bill_id = ANY($1::text[]) OR series_id = ANY($2::text[])`,
    [billIds, seriesIds],
  );
  return rows.map((r) => ({ ...r, start: r.start.toISOString(), end: r.end.toISOString() }));
}

/** Which of these (meter, event id) keys are stored. */
export async function storedKeys(db: Queryable, keys: { meter: string; event_id: string }[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const { rows } = await db.query<{ meter: string; event_id: string }>(
    `SELECT e.meter, e.event_id FROM usage_events e
       JOIN jsonb_to_recordset($1::jsonb) AS k(meter TEXT, event_id TEXT) USING (meter, event_id)`,
    [JSON.stringify(keys)],
  );
  return new Set(rows.map((r) => `${r.meter}\n${r.event_id}`));
}

/** Records a threshold as reached, once; true when this call reached it. */
export async function markAlertReached(db: Queryable, billId: string, alert: UsageAlert, estimated: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO usage_alerts_reached (bill_id, currency, amount, estimated) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    [billId, alert.currency, alert.amount, estimated],
  );
  return rowCount === 1;
}

/** Deltas of one bill and meter past this many are folded into one row. */
export const COMPACT_AFTER = 64;

/**
 * Folds the aggregate deltas of these bills' meters into one row each once they pass
 * COMPACT_AFTER, so that a bill fed one event per call still reads a few rows. Safe beside
 * concurrent calls: it deletes (and sums) only the rows it locked and saw; a row appended
 * meanwhile is left for the next fold, and a fold racing this one finds nothing left to take.
 */
export async function compactAggregates(db: Queryable, billIds: string[]): Promise<void> {
  await db.query(
    `WITH heavy AS (
       SELECT bill_id, meter FROM usage_aggregate_deltas WHERE bill_id = ANY($1::text[])
        GROUP BY bill_id, meter HAVING count(*) > $2),
     folded AS (
       DELETE FROM usage_aggregate_deltas d USING heavy h WHERE d.bill_id = h.bill_id AND d.meter = h.meter
       RETURNING d.*)
     INSERT INTO usage_aggregate_deltas (bill_id, meter, events, quantity_sum, quantity_max, latest_ts, latest_event_id,
                                         latest_quantity, distinct_values)
     SELECT bill_id, meter, sum(events), sum(quantity_sum), max(quantity_max),
            (array_agg(latest_ts ORDER BY latest_ts DESC, latest_event_id DESC))[1],
            (array_agg(latest_event_id ORDER BY latest_ts DESC, latest_event_id DESC))[1],
            (array_agg(latest_quantity ORDER BY latest_ts DESC, latest_event_id DESC))[1],
            sum(distinct_values)
       FROM folded GROUP BY bill_id, meter`,
    [billIds, COMPACT_AFTER],
  );
}
