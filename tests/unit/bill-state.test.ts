/**
 * The bill workflow's rules, on BillState alone: no Temporal, no Postgres. What an update may do
 * (validate), what it holds while its write is in flight (reserve), what a ledger snapshot changes
 * (apply), and what closing and continuing as new carry.
 */
import { AppError } from '../../core/errors';
import { BillState, MAX_WRITES_PER_TRANSACTION } from '../../bills/bill-state';
import type { WriteOutcome } from '../../bills/messages';
import { billHeader, lineItem } from '../helpers/bill-header';

const MAX_SAFE_MINOR_UNITS = Number.MAX_SAFE_INTEGER;

const header = billHeader;
const item = lineItem;

const recurring = { interval: 'P1M', billing_anchor_day: 1, policy: 'recurring' as const, series_id: 'b-1' };

/** The AppError a rule throws, as `{ code, message }` (undefined when the rule passes). */
function refusal(rule: () => void): { code: string; message: string } | undefined {
  try {
    rule();
    return undefined;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { code: err.code, message: err.message };
  }
}

const stored = (created_at = '2026-12-01T00:00:01.000Z'): WriteOutcome => ({ status: 'stored', created_at });

describe('validating a group of adds', () => {
  it('asks for a retry while the run drains to continue as new', () => {
    const bill = new BillState(header());
    bill.draining = true;
    expect(refusal(() => bill.checkGroup([item('a', 1)]))?.code).toBe('unavailable');
  });

  it('needs 1 to 500 items, each with its line item id', () => {
    const bill = new BillState(header());
    expect(refusal(() => bill.checkGroup([]))?.code).toBe('invalid_argument');
    expect(refusal(() => bill.checkGroup([{ amount: 1, currency: 'USD' }]))?.code).toBe('invalid_argument');
    expect(refusal(() => bill.checkGroup(Array.from({ length: 501 }, (_, i) => item(`i${i}`, 1))))?.code).toBe('invalid_argument');
    expect(refusal(() => bill.checkGroup(Array.from({ length: 500 }, (_, i) => item(`i${i}`, 1))))).toBeUndefined();
  });

  it('refuses the group whole only when every item is refused for the same reason', () => {
    const bill = new BillState(header({ currency: 'EUR' }));
    expect(refusal(() => bill.checkGroup([item('a', 1, 'USD'), item('b', 2, 'USD')]))).toEqual({
      code: 'failed_precondition',
      message: 'this bill accepts only EUR',
    });
    // One good item: the group goes on, and the bad one is refused on its own when admitted.
    expect(refusal(() => bill.checkGroup([item('a', 1, 'USD'), item('b', 2, 'EUR')]))).toBeUndefined();
  });

  it('counts the items before each one, so a group cannot overflow a total together', () => {
    const bill = new BillState(header());
    const half = Math.floor(MAX_SAFE_MINOR_UNITS / 2) + 1;
    expect(refusal(() => bill.checkGroup([item('a', half)]))).toBeUndefined();
    // Each alone would fit; both together pass 2^53 - 1, but the first is still storable.
    expect(refusal(() => bill.checkGroup([item('a', half), item('b', half)]))).toBeUndefined();
    bill.pending = { USD: { amount: half, count: 1 } };
    expect(refusal(() => bill.checkGroup([item('b', half)]))?.message).toMatch(/would exceed the largest exact amount/);
  });

  it('refuses everything on a bill id that belongs to another bill', () => {
    const bill = new BillState(header());
    bill.conflict = true;
    expect(refusal(() => bill.checkGroup([item('a', 1)]))).toEqual({ code: 'failed_precondition', message: 'bill b-1 is not open' });
    expect(refusal(() => bill.checkClose())?.code).toBe('failed_precondition');
  });

  it('refuses adds once the close has begun', () => {
    const bill = new BillState(header());
    bill.status = 'closing';
    expect(refusal(() => bill.checkGroup([item('a', 1)]))?.message).toMatch(/bill is closing/);
  });

  it('checks a staged batch by its declared sums', () => {
    const bill = new BillState(header({ currency: 'USD' }));
    const ref = { batch_id: 'batch-1', item_count: 2, totals: { USD: { amount: 300, count: 2 } } };
    expect(refusal(() => bill.checkStagedBatch(ref))).toBeUndefined();
    expect(refusal(() => bill.checkStagedBatch({ ...ref, item_count: 3 }))?.code).toBe('invalid_argument');
    expect(refusal(() => bill.checkStagedBatch({ ...ref, totals: { EUR: { amount: 300, count: 2 } } }))?.code).toBe('failed_precondition');
  });
});

describe('reserving while a write is in flight', () => {
  it('admits items in order, reserves them, and queues the admitted ones as one write', async () => {
    const bill = new BillState(header({ currency: 'USD' }));
    const outcomes = bill.admit([item('a', 100), item('b', 5, 'EUR'), item('c', 200)]);
    expect(bill.pending).toEqual({ USD: { amount: 300, count: 2 } });
    expect(bill.queue).toHaveLength(1);
    expect(bill.queue[0].writes).toEqual([{ item: item('a', 100) }, { item: item('c', 200) }]);

    const group = bill.takeGroup();
    expect(bill.writing).toBe(true);
    bill.settleGroup(group, { snapshot: { version: 2, totals: { USD: { amount: 300, count: 2 } } }, outcomes: [stored(), stored()] });
    const [a, b, c] = await outcomes;
    expect(a).toEqual(stored());
    expect(b).toMatchObject({ status: 'refused', refusal: { code: 'failed_precondition' } });
    expect(c).toEqual(stored());
    expect(bill.pending).toEqual({});
    expect(bill.writing).toBe(false);
    expect(bill.itemsThisRun).toBe(2);
  });

  it('refuses an item whose reservation would overflow the total, while the one before it is in flight', async () => {
    const bill = new BillState(header());
    const big = MAX_SAFE_MINOR_UNITS - 10;
    void bill.admit([item('a', big)]);
    const second = bill.admit([item('b', 11)]);
    expect(bill.queue).toHaveLength(1);
    expect((await second)[0]).toMatchObject({ status: 'refused', refusal: { code: 'failed_precondition' } });
  });

  it('hands the writer everything queued, up to one transaction of writes', () => {
    const bill = new BillState(header());
    bill.persisted = true;
    expect(bill.hasWork()).toBe(false);
    void bill.enqueue(
      Array.from({ length: MAX_WRITES_PER_TRANSACTION - 1 }, (_, i) => ({ item: item(`a${i}`, 1) })),
      {},
    );
    void bill.enqueue([{ item: item('b', 1) }], {});
    void bill.enqueue([{ item: item('c', 1) }, { item: item('d', 1) }], {});
    expect(bill.hasWork()).toBe(true);
    expect(bill.takeGroup()).toHaveLength(2);
    expect(bill.queue).toHaveLength(1);
  });

  it('has the writer wait until the bill row is written', () => {
    const bill = new BillState(header());
    void bill.enqueue([{ item: item('a', 1) }], {});
    expect(bill.hasWork()).toBe(false);
    bill.persisted = true;
    expect(bill.hasWork()).toBe(true);
  });
});

describe('applying ledger snapshots', () => {
  it('adopts only a newer version, so a late answer never moves the totals back', () => {
    const bill = new BillState(header());
    bill.adopt({ version: 5, totals: { USD: { amount: 500, count: 5 } } });
    bill.adopt({ version: 3, totals: { USD: { amount: 300, count: 3 } } });
    expect(bill.live()).toMatchObject({ version: 5, line_item_count: 5, totals: [{ currency: 'USD', amount: 500, line_item_count: 5 }] });
  });

  it('counts a staged batch by its items', () => {
    const bill = new BillState(header());
    bill.persisted = true;
    const ref = { batch_id: 'batch-1', item_count: 7, totals: { USD: { amount: 70, count: 7 } } };
    void bill.enqueue([{ batch: ref }], ref.totals);
    bill.settleGroup(bill.takeGroup(), { snapshot: { version: 1, totals: ref.totals }, outcomes: [{ status: 'applied' }] });
    expect(bill.itemsThisRun).toBe(7);
    expect(bill.pending).toEqual({});
  });

  it('is idle only with nothing queued or being written', () => {
    const bill = new BillState(header());
    bill.persisted = true;
    expect(bill.idle()).toBe(true);
    void bill.enqueueOne({ item: item('a', 1) }, 'USD', 1);
    expect(bill.idle()).toBe(false);
    const group = bill.takeGroup();
    expect(bill.idle()).toBe(false);
    bill.settleGroup(group, { snapshot: { version: 1, totals: { USD: { amount: 1, count: 1 } } }, outcomes: [stored()] });
    expect(bill.idle()).toBe(true);
  });
});

describe('closing, cancelling and continuing as new', () => {
  it('closes a recurring bill only at the end of its period, unless its series was cancelled', () => {
    const bill = new BillState(header(recurring));
    expect(refusal(() => bill.checkClose())?.message).toMatch(/closes at the end of its period/);
    bill.cancelled = true;
    expect(refusal(() => bill.checkClose())).toBeUndefined();
    expect(refusal(() => new BillState(header()).checkClose())).toBeUndefined();
  });

  it('cancels only an open recurring bill, or one whose cancel is already under way', () => {
    expect(refusal(() => new BillState(header()).checkCancel())?.message).toMatch(/only a recurring bill/);
    const bill = new BillState(header(recurring));
    expect(refusal(() => bill.checkCancel())).toBeUndefined();
    bill.status = 'closing';
    expect(refusal(() => bill.checkCancel())?.message).toBe('bill b-1 is closing');
    bill.cancelled = true;
    expect(refusal(() => bill.checkCancel())).toBeUndefined();
    bill.nextBillId = 'b-2';
    expect(refusal(() => bill.checkCancel())?.message).toMatch(/continues with bill b-2/);
  });

  it('answers the create of a recurring bill only once its fee is counted', () => {
    const bill = new BillState(header({ ...recurring, recurring_fee: { amount: 1000, currency: 'USD', description: 'fee' } }));
    bill.persisted = true;
    expect(bill.opened()).toBe(false);
    bill.feeCharged = true;
    expect(bill.opened()).toBe(true);
  });

  it('takes the stored totals at close', () => {
    const bill = new BillState(header());
    bill.adopt({ version: 4, totals: { USD: { amount: 40, count: 4 } } });
    bill.closedWith({ closed_at: '2026-12-02T00:00:00.000Z', totals: { USD: { amount: 41, count: 5 } }, version: 3 });
    expect(bill.live()).toMatchObject({ version: 4, closed_at: '2026-12-02T00:00:00.000Z', line_item_count: 5 });
  });

  it('carries the ledger and the series state into the next run', () => {
    const first = new BillState(header(recurring));
    first.adopt({ version: 9, totals: { USD: { amount: 90, count: 9 } } });
    first.feeCharged = true;
    first.cancelled = true;
    const carried = first.carried();
    expect(carried).toEqual({
      version: 9,
      totals: { USD: { amount: 90, count: 9 } },
      lineItemCount: 9,
      continuedAsNew: 1,
      feeCharged: true,
      cancelled: true,
      drafted: false,
      nextBillId: null,
    });
    const next = new BillState(header(recurring), carried);
    expect(next.persisted).toBe(true);
    expect(next.live()).toMatchObject({ version: 9, continued_as_new: 1, line_item_count: 9 });
  });

  it("carries a draft and its series' next bill into the next run", () => {
    const first = new BillState(header(recurring));
    first.status = 'draft';
    first.nextBillId = 'b-2';
    const next = new BillState(header(recurring), first.carried());
    expect({ status: next.status, nextBillId: next.nextBillId }).toEqual({ status: 'draft', nextBillId: 'b-2' });
  });
});
