/**
 * POST /events: usage events in, durably stored in Postgres before they are acknowledged, in one
 * statement per call (not one Temporal update per event). Each event counts once: its id is unique
 * per meter (a primary key), so a retry or a replay answers `duplicate`. An event lands on its
 * bill, or on the bill of its series whose period holds its timestamp; its bill rates it at the
 * close. An event for a period already final (its bill closed) is refused, never carried over:
 * a closed invoice never changes, and a later bill must not charge another period's usage.
 */
import Decimal from 'decimal.js';
import { type Deps } from '../core/deps';
import { checkStorable, fieldError } from '../core/validate';
import { requireMeters } from './meters';
import type { IngestEventsBody } from './requests';
import { inTransaction, type Queryable } from '../core/db';
import { emitEvent } from '../webhooks/events';
import { billPeriods, compactAggregates, insertEvents, markAlertReached, storedKeys, type BillPeriod, type StoredEvent } from './store';
import { pricedBill, rateBill } from './usage';
import type { EventResult, IngestResult } from './types';

/** An exact decimal of a quantity as sent: a JSON number is read as the shortest decimal that names it. */
const quantityOf = (q: number | string | null | undefined) => (q == null ? '1' : new Decimal(String(q)).toString());

const isStored = (stored: Set<string> | 'all', e: StoredEvent) => stored === 'all' || stored.has(`${e.meter}\n${e.event_id}`);

/**
 * Emits `usage.threshold_reached` for each threshold the bill's usage estimate (per currency, the
 * usage lines its close would write now, minimums aside) has reached and had not before.
 */
async function alertIfReached(tx: Queryable, bill: BillPeriod): Promise<void> {
  const priced = await pricedBill(tx, bill.bill_id);
  const estimates = new Map<string, number>();
  for (const { rating } of await rateBill(tx, priced!))
    estimates.set(rating.currency, (estimates.get(rating.currency) ?? 0) + rating.amount);
  for (const alert of bill.usage_alerts!) {
    const estimated = estimates.get(alert.currency) ?? 0;
    if (estimated < alert.amount || !(await markAlertReached(tx, bill.bill_id, alert, estimated))) continue;
    await emitEvent(tx, 'usage.threshold_reached', {
      bill_id: bill.bill_id,
      currency: alert.currency,
      threshold: alert.amount,
      estimated_amount: estimated,
      period: { start: bill.start, end: bill.end },
    });
  }
}

export async function ingestEvents(deps: Deps, body: IngestEventsBody): Promise<IngestResult> {
  const events = body.events;
  events.forEach((e, i) => {
    if ((e.bill_id == null) === (e.series_id == null)) throw fieldError(`events[${i}].bill_id`, 'or series_id is required, and not both');
    checkStorable({ [`events[${i}].properties`]: e.properties ?? null });
  });
  await requireMeters(
    deps,
    events.map((e) => e.meter),
    (code) => `events[${events.findIndex((e) => e.meter === code)}].meter`,
  );
  const periods = await billPeriods(
    deps.db,
    [...new Set(events.flatMap((e) => (e.bill_id ? [e.bill_id] : [])))],
    [...new Set(events.flatMap((e) => (e.series_id ? [e.series_id] : [])))],
  );
  // Parsed once per bill, not once per event: a call holds up to 1,000 events.
  const spans = periods.map((b) => ({ bill: b, start: Date.parse(b.start), end: Date.parse(b.end) }));
  const byId = new Map(spans.map((x) => [x.bill.bill_id, x]));
  // Every event's bill first, so that a bad one refuses the whole call before anything is written.
  const stored: StoredEvent[] = events.map((e, i) => {
    const ts = Date.parse(e.timestamp);
    const within = (x: { start: number; end: number }) => x.start <= ts && ts < x.end;
    let target: BillPeriod;
    if (e.bill_id) {
      const x = byId.get(e.bill_id);
      if (!x) throw fieldError(`events[${i}].bill_id`, `names bill ${e.bill_id}, which does not exist`);
      if (!within(x))
        throw fieldError(`events[${i}].timestamp`, `is outside the period of bill ${x.bill.bill_id} [${x.bill.start}, ${x.bill.end})`);
      target = x.bill;
    } else {
      const x = spans.find((y) => y.bill.series_id === e.series_id && within(y));
      if (!x) throw fieldError(`events[${i}].timestamp`, `is in no period of series ${e.series_id} (none started yet covers it)`);
      target = x.bill;
    }
    // The timestamp as sent (RFC 3339, checked by the request's schema): Postgres reads it exactly.
    return {
      meter: e.meter,
      event_id: e.event_id,
      bill_id: target.bill_id,
      ts: e.timestamp,
      quantity: quantityOf(e.quantity),
      properties: e.properties ?? null,
    };
  });
  // Stored, and any threshold their bills' estimates now reach recorded with its event, together.
  const written = await inTransaction(deps.db, async (tx) => {
    const inserted = await insertEvents(tx, stored);
    const grown = new Set(stored.filter((e) => isStored(inserted.stored, e)).map((e) => e.bill_id));
    for (const bill of periods.filter((b) => grown.has(b.bill_id) && b.usage_alerts?.length)) await alertIfReached(tx, bill);
    return inserted;
  });
  // Best effort, after the commit: a fold that fails (a deadlock with another) is done by a later call.
  await compactAggregates(deps.db, [...new Set(stored.map((e) => e.bill_id))]).catch(() => undefined);
  // An event of a closed bill that was stored before it closed is a retry of a counted event.
  const late = stored.filter((e) => !written.openBills.has(e.bill_id));
  const seen = await storedKeys(deps.db, late);
  const answered = new Set<string>();
  const results: EventResult[] = stored.map((e) => {
    const key = `${e.meter}\n${e.event_id}`;
    const base = { event_id: e.event_id, meter: e.meter };
    if (isStored(written.stored, e) && !answered.has(key)) {
      answered.add(key);
      return { ...base, status: 'accepted', bill_id: e.bill_id };
    }
    if (!written.openBills.has(e.bill_id) && !seen.has(key)) {
      return { ...base, status: 'refused', reason: `bill ${e.bill_id} is closed: its period is final and takes no more usage` };
    }
    return { ...base, status: 'duplicate' };
  });
  return { results };
}
