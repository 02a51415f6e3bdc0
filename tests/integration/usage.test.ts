/**
 * Usage metering on the real stack: meters; events in with duplicates and retries, each stored
 * once; usage read live while the bill is open; rated into line items by the close (priced by
 * hand here); a late event in the grace period counted; an event after the final close refused
 * (and a retry of a counted one still answered `duplicate`); an event routed by its series; and
 * bad input refused with a 400 naming the field, writing nothing.
 */
import { accountOf, invoiceEvents, issuedInvoice, pdfAt } from '../helpers/invoices';
import { pdfText } from '../helpers/smtp';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const code = (name: string) => `${name.replace(/\W+/g, '-')}-${uid('m').slice(2)}`;
const meter = async (name: string, aggregation: string, field?: string) => {
  const reply = await call(stack, 'POST', '/meters', { code: code(name), name, aggregation, ...(field ? { field } : {}) });
  expect(reply.status).toBe(200);
  return reply.body.code as string;
};
const send = (events: Record<string, unknown>[]) => call(stack, 'POST', '/events', { events });
const statuses = (reply: { body: { results: { status: string }[] } }) => reply.body.results.map((r) => r.status);
const storedEvents = async (billId: string) =>
  Number((await stack.db.query('SELECT count(*) FROM usage_events WHERE bill_id = $1', [billId])).rows[0].count);

describe('usage', () => {
  let calls: string;
  let storage: string;
  let seats: string;

  beforeAll(async () => {
    calls = await meter('API calls', 'count');
    storage = await meter('Storage GB', 'sum');
    seats = await meter('Active seats', 'unique_count', 'user');
  });

  it('refuses bad input with a 400 naming the field, and writes nothing', async () => {
    const field = async (reply: Promise<{ status: number; body: { details?: { field?: string } } }>) => {
      const r = await reply;
      return [r.status, r.body.details?.field];
    };
    expect(await field(call(stack, 'POST', '/meters', { code: code('x'), name: 'x', aggregation: 'unique_count' }))).toEqual([
      400,
      'field',
    ]);
    expect(await field(call(stack, 'POST', '/meters', { code: code('x'), name: 'x', aggregation: 'median' }))).toEqual([
      400,
      'aggregation',
    ]);
    expect(await field(call(stack, 'POST', '/meters', { code: calls, name: 'API calls', aggregation: 'sum' }))).toEqual([
      400,
      'aggregation',
    ]);

    const bill = (prices: unknown[], extra = {}) =>
      call(stack, 'POST', '/bills', { billing_period_end: inSeconds(3600), prices, ...extra });
    expect(await field(bill([{ meter: 'no-such-meter', currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' }]))).toEqual([
      400,
      'prices[0].meter',
    ]);
    const tiers = [
      { up_to: 100, unit_amount_decimal: '1' },
      { up_to: 50, unit_amount_decimal: '1' },
      { up_to: 'inf', unit_amount_decimal: '1' },
    ];
    expect(await field(bill([{ meter: calls, currency: 'USD', model: 'graduated', tiers }]))).toEqual([400, 'prices[0].tiers[1].up_to']);
    expect(
      await field(bill([{ meter: calls, currency: 'USD', model: 'graduated', tiers: [{ up_to: 5, unit_amount_decimal: '1' }] }])),
    ).toEqual([400, 'prices[0].tiers[0].up_to']);
    expect(
      await field(bill([{ meter: calls, currency: 'EUR', model: 'per_unit', unit_amount_decimal: '1' }], { currency: 'USD' })),
    ).toEqual([400, 'prices[0].currency']);
    expect(await field(bill([{ meter: calls, currency: 'USD', model: 'per_unit', unit_amount_decimal: '0.0000000000001' }]))).toEqual([
      400,
      'prices[0].unit_amount_decimal',
    ]);

    const billId = uid();
    expect((await bill([], { bill_id: billId })).status).toBe(200);
    const event = (over: Record<string, unknown>) => ({
      event_id: uid('e'),
      meter: calls,
      bill_id: billId,
      timestamp: new Date().toISOString(),
      ...over,
    });
    for (const [events, expected] of [
      [[event({}), event({ meter: 'no-such-meter' })], 'events[1].meter'],
      [[event({ quantity: -1 })], 'events[0].quantity'],
      [[event({ quantity: '1e3' })], 'events[0].quantity'],
      [[event({ timestamp: inSeconds(7200) })], 'events[0].timestamp'],
      [[event({ bill_id: undefined })], 'events[0].bill_id'],
      [[event({ bill_id: 'no-such-bill' })], 'events[0].bill_id'],
      [[], 'events'],
    ] as const) {
      expect(await field(send(events as unknown as Record<string, unknown>[]))).toEqual([400, expected]);
    }
    expect(await storedEvents(billId)).toBe(0);
  });

  it('stores each event once, shows usage while open, and rates it into line items at the close', async () => {
    const billId = uid();
    const prices = [
      // 0.5 of a cent per call after 2 free calls.
      { meter: calls, currency: 'USD', model: 'per_unit', unit_amount_decimal: '0.5', free_units: 2 },
      // Graduated: the first 10 GB at 1.00, the rest at 0.25 and a 3.00 flat fee once past 10.
      {
        meter: storage,
        currency: 'USD',
        model: 'graduated',
        tiers: [
          { up_to: 10, unit_amount_decimal: '100' },
          { up_to: 'inf', unit_amount_decimal: '25', flat_amount: 300 },
        ],
      },
      // Seats in packages of 5 at 20.00, with a committed minimum of 50.00.
      { meter: seats, currency: 'USD', model: 'package', package_size: 5, package_amount: 2000, minimum_amount: 5000 },
    ];
    const created = await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), prices });
    expect(created.status).toBe(200);
    expect(created.body.prices).toHaveLength(3);

    const now = new Date().toISOString();
    const callEvents = Array.from({ length: 9 }, (_, i) => ({ event_id: `call-${i}`, meter: calls, bill_id: billId, timestamp: now }));
    const first = await send([
      ...callEvents,
      { event_id: 'gb-1', meter: storage, bill_id: billId, timestamp: now, quantity: 7.5 },
      { event_id: 'gb-2', meter: storage, bill_id: billId, timestamp: now, quantity: '6.25' },
      ...['ann', 'bob', 'ann', 'cy'].map((user, i) => ({
        event_id: `seat-${i}`,
        meter: seats,
        bill_id: billId,
        timestamp: now,
        properties: { user },
      })),
      // The same event twice in one call: counted once.
      { event_id: 'call-0', meter: calls, bill_id: billId, timestamp: now },
    ]);
    expect(first.status).toBe(200);
    expect(statuses(first)).toEqual([...Array(15).fill('accepted'), 'duplicate']);
    // A client's retry of the whole call: every event a duplicate, nothing stored twice.
    const retried = await send([...callEvents, { event_id: 'gb-1', meter: storage, bill_id: billId, timestamp: now, quantity: 7.5 }]);
    expect(statuses(retried)).toEqual(Array(10).fill('duplicate'));
    expect(await storedEvents(billId)).toBe(15);

    // Live: calls 9 − 2 free = 7 × 0.5 = 3.5 → 4; storage 13.75 GB = 10 × 100 + 3.75 × 25 + 300 = 1393.75 → 1394;
    // seats ann, bob, cy = 3 → one package of 5: 2000, short of the 5000 minimum by 3000.
    const usage = (await call(stack, 'GET', `/bills/${billId}/usage`)).body;
    expect(
      usage.meters.map((m: { aggregate: string; estimated_amount: number; minimum_shortfall: number }) => [
        m.aggregate,
        m.estimated_amount,
        m.minimum_shortfall,
      ]),
    ).toEqual([
      ['9', 4, 0],
      ['13.75', 1394, 0],
      ['3', 2000, 3000],
    ]);
    expect((await call(stack, 'GET', `/bills/${billId}`)).body.usage).toEqual(usage.meters);

    expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
    const items = (await call(stack, 'GET', `/bills/${billId}/line-items`)).body.line_items as {
      amount: number;
      description: string;
      metadata: { usage?: { meter: string } };
    }[];
    expect(items.map((i) => [i.metadata.usage?.meter, i.amount])).toEqual([
      [calls, 4],
      [storage, 1394],
      [seats, 2000],
      [seats, 3000],
    ]);
    expect(items[1].description).toBe('Storage GB: 13.75: 10 × 100 + 3.75 × 25 + 300');
    const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(bill.totals).toEqual([expect.objectContaining({ currency: 'USD', amount: 6398, line_item_count: 4 })]);

    // After the final close: a new event is refused; a retry of a counted one is still a duplicate.
    const late = await send([
      { event_id: 'call-late', meter: calls, bill_id: billId, timestamp: now },
      { event_id: 'call-1', meter: calls, bill_id: billId, timestamp: now },
    ]);
    expect(late.body.results).toEqual([
      expect.objectContaining({ status: 'refused', reason: expect.stringContaining('closed') }),
      expect.objectContaining({ status: 'duplicate' }),
    ]);
    expect(await storedEvents(billId)).toBe(15);

    // Reconciliation rates the closed bill again from its events: the same lines. An event stored
    // behind the API's back (after the close) is found: two more calls, 9 billable × 0.5 = 4.5 → 5.
    const reconciled = (await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body;
    expect(reconciled).toMatchObject({ ok: true, usage_checked: 1, usage_differences: [] });
    await stack.db.query(
      `INSERT INTO usage_events (meter, event_id, bill_id, ts, quantity) VALUES ($1, 'sneaked', $2, $3, 1), ($1, 'sneaked-2', $2, $3, 1)`,
      [calls, billId, now],
    );
    expect((await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body).toMatchObject({
      ok: false,
      usage_differences: [
        { bill_id: billId, meter: calls, currency: 'USD', events: 11, events_in_period: 11, aggregate: '11', rated: 5, invoiced: 4 },
      ],
    });

    // The invoice lists the usage lines with their quantities and tiers.
    await issuedInvoice(stack, billId);
    expect((await accountOf(stack, billId)).invoice.amounts[0]).toMatchObject({ currency: 'USD', total: 6398 });
    // Long descriptions wrap in the table: read the text as one line.
    const text = (await pdfText(await pdfAt(stack, `/bills/${billId}/invoice`))).replace(/\s+/g, ' ');
    expect(text).toContain('Storage GB: 13.75: 10 × 100 + 3.75 × 25 + 300');
    expect(text).toContain('Active seats: committed minimum, shortfall');
  });

  it('counts an event that arrives in the grace period with a timestamp inside the period', async () => {
    const billId = uid();
    const end = inSeconds(2);
    const prices = [{ meter: calls, currency: 'EUR', model: 'per_unit', unit_amount_decimal: '100' }];
    expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: end, grace_period: 'PT4S', prices })).status).toBe(
      200,
    );
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'draft', 15_000);
    const inPeriod = new Date(Date.parse(end) - 500).toISOString();
    const late = await send([{ event_id: 'late-1', meter: calls, bill_id: billId, timestamp: inPeriod }]);
    expect(statuses(late)).toEqual(['accepted']);
    const invoice = await issuedInvoice(stack, billId);
    expect(invoice.amounts).toEqual([expect.objectContaining({ currency: 'EUR', net: 100 })]);
  });

  it('aggregates max and latest by value and by timestamp, whatever order the events arrive in', async () => {
    const peak = await meter('Peak GB', 'max');
    const gauge = await meter('Seats now', 'latest');
    const billId = uid();
    const prices = [peak, gauge].map((m) => ({ meter: m, currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' }));
    expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), prices })).status).toBe(200);
    const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const e = (m: string, id: string, s: number, quantity: number) => ({
      event_id: id,
      meter: m,
      bill_id: billId,
      timestamp: at(s),
      quantity,
    });
    // Sent newest first, in two calls: the latest is the event of the latest timestamp, not the last to arrive.
    expect(statuses(await send([e(gauge, 'g3', 30, 7), e(peak, 'p1', 10, 4.5)]))).toEqual(['accepted', 'accepted']);
    const rest = await send([e(gauge, 'g1', 10, 9), e(gauge, 'g2', 20, 2), e(peak, 'p2', 20, 12.25), e(peak, 'p3', 30, 3)]);
    expect(statuses(rest)).toEqual(Array(4).fill('accepted'));
    const usage = (await call(stack, 'GET', `/bills/${billId}/usage`)).body.meters.map((m: { aggregate: string }) => m.aggregate);
    expect(usage).toEqual(['12.25', '7']);
    await call(stack, 'POST', `/bills/${billId}/close`);
    expect((await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body).toMatchObject({
      usage_checked: 1,
      usage_differences: [],
    });
  });

  it('folds the aggregates of a bill fed one event per call, and still counts every event', async () => {
    const sum = await meter('Folded GB', 'sum');
    const billId = uid();
    const prices = [{ meter: sum, currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' }];
    expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), prices })).status).toBe(200);
    for (let i = 0; i < 150; i++) {
      await send([{ event_id: `one-${i}`, meter: sum, bill_id: billId, timestamp: new Date().toISOString(), quantity: '0.5' }]);
    }
    const deltas = await stack.db.query('SELECT count(*)::int AS n FROM usage_aggregate_deltas WHERE bill_id = $1', [billId]);
    expect(deltas.rows[0].n).toBeLessThanOrEqual(65);
    expect((await call(stack, 'GET', `/bills/${billId}/usage`)).body.meters[0].aggregate).toBe('75');
    await call(stack, 'POST', `/bills/${billId}/close`);
  });

  it('emits usage.threshold_reached once per threshold as the estimate crosses it', async () => {
    const billId = uid();
    const prices = [{ meter: calls, currency: 'USD', model: 'per_unit', unit_amount_decimal: '100' }];
    const usage_alerts = [
      { currency: 'USD', amount: 300 },
      { currency: 'USD', amount: 1000 },
    ];
    expect(
      (await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), prices, usage_alerts })).status,
    ).toBe(200);
    const calls2 = (n: number) =>
      send(Array.from({ length: n }, () => ({ event_id: uid('e'), meter: calls, bill_id: billId, timestamp: new Date().toISOString() })));
    const alerts = async () =>
      (await invoiceEvents(stack, billId))
        .filter((e) => e.type === 'usage.threshold_reached')
        .map((e) => [e.data.threshold, e.data.estimated_amount]);
    await calls2(2); // 2.00: below both
    expect(await alerts()).toEqual([]);
    await calls2(2); // 4.00: past 3.00
    await calls2(1); // 5.00: past it still, nothing new
    expect(await alerts()).toEqual([[300, 400]]);
    await calls2(6); // 11.00: past 10.00
    expect(await alerts()).toEqual([
      [300, 400],
      [1000, 1100],
    ]);
    await call(stack, 'POST', `/bills/${billId}/close`);
  });

  it('routes an event by its series to the bill whose period holds its timestamp', async () => {
    const prices = [{ meter: calls, currency: 'USD', model: 'per_unit', unit_amount_decimal: '1' }];
    const series = (await call(stack, 'POST', '/bills', { policy: 'recurring', interval: 'P1D', prices })).body;
    const routed = await send([{ event_id: uid('e'), meter: calls, series_id: series.series_id, timestamp: new Date().toISOString() }]);
    expect(routed.body.results).toEqual([expect.objectContaining({ status: 'accepted', bill_id: series.bill_id })]);
    const before = await send([{ event_id: uid('e'), meter: calls, series_id: series.series_id, timestamp: '2020-01-01T00:00:00Z' }]);
    expect([before.status, before.body.details?.field]).toEqual([400, 'events[0].timestamp']);
    await call(stack, 'POST', `/bills/${series.bill_id}/cancel`, { close_now: true });
  });
});
