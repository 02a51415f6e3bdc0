/**
 * A bill's usage: each priced meter's aggregate over the bill's period and what it costs, the same
 * computation whether read while the bill is open (an estimate) or at its close (its line items).
 */
import type { Queryable } from '../core/db';
import type { Deps } from '../core/deps';
import { billNotFound } from '../core/errors';
import { rate, type Price, type Rating } from './rating';
import { aggregateFromEvents, aggregateOf, findMeters } from './store';
import type { BillUsage, Meter } from './types';

export interface PricedBill {
  bill_id: string;
  prices: Price[] | null;
  /** Usage counts when its timestamp lies in [start, end). */
  start: string;
  end: string;
}

/**
 * Each price rated over its meter's aggregate, in the order the bill lists them: the kept
 * aggregate, or with `fromEvents` one recomputed from the events (reconciliation).
 */
export async function rateBill(db: Queryable, bill: PricedBill, fromEvents = false): Promise<{ rating: Rating; meter: Meter }[]> {
  if (!bill.prices || bill.prices.length === 0) return [];
  const meters = new Map(
    (
      await findMeters(
        db,
        bill.prices.map((p) => p.meter),
      )
    ).map((m) => [m.code, m]),
  );
  const out: { rating: Rating; meter: Meter }[] = [];
  for (const price of bill.prices) {
    const meter = meters.get(price.meter)!;
    const aggregate = fromEvents
      ? await aggregateFromEvents(db, bill.bill_id, meter, bill.start, bill.end)
      : await aggregateOf(db, bill.bill_id, meter);
    out.push({ rating: rate(price, aggregate), meter });
  }
  return out;
}

/** The bill's row as rating needs it, locked for the close when `forUpdate`. */
export async function pricedBill(db: Queryable, billId: string, forUpdate = false): Promise<(PricedBill & { status: string }) | null> {
  const { rows } = await db.query<{ bill_id: string; status: string; prices: Price[] | null; start: Date; end: Date }>(
    `SELECT bill_id, status, prices, billing_period_start AS start, billing_period_end AS "end" FROM bills WHERE bill_id = $1
     ${forUpdate ? 'FOR UPDATE' : ''}`,
    [billId],
  );
  const r = rows[0];
  return r ? { bill_id: r.bill_id, status: r.status, prices: r.prices, start: r.start.toISOString(), end: r.end.toISOString() } : null;
}

/** GET /bills/:billId/usage: per priced meter, the aggregate so far, the estimate, the tiers applied. */
export async function getBillUsage(deps: Deps, billId: string): Promise<BillUsage> {
  const bill = await pricedBill(deps.db, billId);
  if (!bill) throw billNotFound(billId);
  const rated = await rateBill(deps.db, bill);
  return {
    bill_id: billId,
    period: { start: bill.start, end: bill.end },
    meters: rated.map(({ rating }, i) => ({
      price: bill.prices![i],
      aggregate: rating.aggregate,
      billable: rating.billable,
      tiers: rating.applied,
      estimated_amount: rating.amount,
      minimum_shortfall: rating.shortfall,
    })),
  };
}
