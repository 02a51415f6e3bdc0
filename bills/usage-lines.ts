/**
 * Usage rated into line items at the close, in the close's transaction, under the bill's row lock
 * (which every event's insert shares, usage/store.ts): each priced meter becomes one line per
 * currency (and its committed minimum's shortfall another), written through the ledger like any
 * other line, with ids derived from the bill and the meter, so a retried close writes nothing twice.
 */
import type { Queryable } from '../core/db';
import { addTotals, parseMinorUnits, type TotalsByCurrency } from '../core/money';
import type { Rating } from '../usage/rating';
import { pricedBill, rateBill } from '../usage/usage';
import { lineItemId } from './line-item-ids';
import { appendLineItems, type LedgerItem } from './line-item-store';
import type { UsageDifference } from './types';

const usageLineId = (billId: string, meter: string, currency: string) => lineItemId(billId, `\nusage ${meter} ${currency}`);
const minimumLineId = (billId: string, meter: string, currency: string) => lineItemId(billId, `\nminimum ${meter} ${currency}`);

/** "API calls: 1500 (1400 billable): 100 × 10 + 900 × 5 + 400 × 1 + 500": the quantity and each tier, in minor units. */
function describe(name: string, r: Rating): string {
  const billable = r.billable !== r.aggregate ? ` (${r.billable} billable)` : '';
  const tiers = r.applied
    .map((t) => [
      t.unit_amount_decimal === null ? null : `${t.units} × ${t.unit_amount_decimal}`,
      t.flat_amount ? String(t.flat_amount) : null,
    ])
    .flat()
    .filter((part) => part !== null);
  const how = r.model === 'package' ? `${r.applied[0]?.amount ?? 0} in packages` : tiers.join(' + ');
  return `${name}: ${r.aggregate}${billable}: ${how}`.slice(0, 500);
}

/**
 * Rates an open bill's usage and writes its lines; the totals they add (null: no prices). A bill
 * already closed (a retried close whose first attempt committed) answers the lines it has.
 */
export async function rateAtClose(tx: Queryable, billId: string, sourceRef: string): Promise<TotalsByCurrency | null> {
  const bill = await pricedBill(tx, billId, true);
  if (!bill || !bill.prices?.length) return null;
  if (bill.status !== 'open') {
    const ids = bill.prices.flatMap((p) => [usageLineId(billId, p.meter, p.currency), minimumLineId(billId, p.meter, p.currency)]);
    const { rows } = await tx.query<{ currency: string; amount: string; count: string }>(
      `SELECT currency, sum(amount)::text AS amount, count(*)::text AS count FROM line_items
        WHERE line_item_id = ANY($1::uuid[]) GROUP BY currency`,
      [ids],
    );
    return Object.fromEntries(rows.map((r) => [r.currency, { amount: parseMinorUnits(r.amount), count: parseMinorUnits(r.count) }]));
  }
  const items: LedgerItem[] = [];
  for (const { rating, meter } of await rateBill(tx, bill)) {
    const usage = { meter: meter.code, aggregation: meter.aggregation, model: rating.model, aggregate: rating.aggregate };
    if (rating.amount > 0) {
      items.push({
        line_item_id: usageLineId(billId, meter.code, rating.currency),
        amount: rating.amount,
        currency: rating.currency,
        description: describe(meter.name, rating),
        metadata: { usage: { ...usage, billable: rating.billable, tiers: rating.applied } },
        actor: 'system',
      });
    }
    if (rating.shortfall > 0) {
      items.push({
        line_item_id: minimumLineId(billId, meter.code, rating.currency),
        amount: rating.shortfall,
        currency: rating.currency,
        description: `${meter.name}: committed minimum, shortfall`,
        metadata: { usage: { ...usage, minimum_amount: rating.shortfall + rating.amount, rated: rating.amount } },
        actor: 'system',
      });
    }
  }
  if (items.length === 0) return {};
  await appendLineItems(tx, billId, items, [], sourceRef);
  return items.reduce<TotalsByCurrency>((t, i) => addTotals(t, { [i.currency]: { amount: i.amount, count: 1 } }), {});
}

/**
 * Rates every closed bill with prices again from its events (or those named) and compares with
 * the usage lines its close wrote: events stored vs aggregated vs rated vs invoiced.
 */
export async function usageDifferences(
  db: Queryable,
  billIds: string[] | null,
): Promise<{ checked: number; differences: UsageDifference[] }> {
  const { rows } = await db.query<{ bill_id: string }>(
    `SELECT bill_id FROM bills WHERE status = 'closed' AND jsonb_array_length(COALESCE(prices, '[]')) > 0
       AND ($1::text[] IS NULL OR bill_id = ANY($1)) ORDER BY bill_id`,
    [billIds],
  );
  const differences: UsageDifference[] = [];
  for (const { bill_id: billId } of rows) {
    const bill = (await pricedBill(db, billId))!;
    for (const { rating, meter } of await rateBill(db, bill, true)) {
      const ids = [usageLineId(billId, meter.code, rating.currency), minimumLineId(billId, meter.code, rating.currency)];
      const { rows: counts } = await db.query<{ events: string; in_period: string; invoiced: string }>(
        `SELECT (SELECT count(*) FROM usage_events WHERE bill_id = $1 AND meter = $2)::text AS events,
                (SELECT count(*) FROM usage_events WHERE bill_id = $1 AND meter = $2 AND ts >= $3 AND ts < $4)::text AS in_period,
                (SELECT COALESCE(sum(amount), 0) FROM line_items WHERE line_item_id = ANY($5::uuid[]))::text AS invoiced`,
        [billId, meter.code, bill.start, bill.end, ids],
      );
      const [c] = counts;
      const rated = rating.amount + rating.shortfall;
      const invoiced = parseMinorUnits(c.invoiced);
      if (rated !== invoiced || c.events !== c.in_period) {
        differences.push({
          bill_id: billId,
          meter: meter.code,
          currency: rating.currency,
          events: parseMinorUnits(c.events),
          events_in_period: parseMinorUnits(c.in_period),
          aggregate: rating.aggregate,
          rated,
          invoiced,
        });
      }
    }
  }
  return { checked: rows.length, differences };
}
