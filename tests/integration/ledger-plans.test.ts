/**
 * The ledger's write must cost the same on a young database as on an old one. Its first version
 * found each written item again by joining the write's items to line_items, which the planner ran
 * as a hash join over a sequential scan of line_items while the table was small (migration 2 says
 * how much that cost): an add read every line item of every bill. Here the table holds a few
 * thousand rows, as a new deployment's does, and one add must not scan it.
 */
import { randomUUID } from 'node:crypto';
import { createPool, inTransaction, type Db } from '../../core/db';
import { appendLineItems, type LedgerItem } from '../../bills/line-item-store';
import { uid } from '../helpers/stack';

let db: Db;
beforeAll(() => {
  db = createPool(process.env.FEES_TEST_DATABASE_URL!, 2);
});
afterAll(() => db.end());

async function openBill(): Promise<string> {
  const billId = uid();
  await db.query(
    `INSERT INTO bills (bill_id, policy, billing_period_start, billing_period_end, created_at, request_fingerprint)
     VALUES ($1, 'usage_based', now(), now() + interval '1 month', now(), 'test')`,
    [billId],
  );
  return billId;
}

const item = (n: number): LedgerItem => ({
  line_item_id: randomUUID(),
  amount: n,
  currency: 'USD',
  description: `item ${n}`,
  metadata: null,
});

it('writes a line item without reading through line_items', async () => {
  const crowded = await openBill();
  await appendLineItems(
    db,
    crowded,
    Array.from({ length: 3_000 }, (_, i) => item(i + 1)),
    [],
    'test',
  );
  await db.query('ANALYZE line_items');

  const billId = await openBill();
  const again = item(7);
  const scans = await inTransaction(db, async (tx) => {
    const written = await appendLineItems(tx, billId, [item(5), again], [], 'test');
    // A retried write (the same id) is answered from the stored row, through the same lookup.
    const retried = await appendLineItems(tx, billId, [again], [], 'test');
    expect(written.items.map((i) => i.same)).toEqual([true, true]);
    expect(retried.items).toEqual([written.items[1]]);
    expect(retried.snapshot.totals).toEqual({ USD: { amount: 12, count: 2 } });
    const { rows } = await tx.query<{ seq_scan: string }>(
      `SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'line_items'::regclass`,
    );
    return Number(rows[0].seq_scan);
  });
  expect(scans).toBe(0);
});
