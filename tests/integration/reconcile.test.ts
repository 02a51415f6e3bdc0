/**
 * Reconciliation (`npm run reconcile`, GET /admin/reconcile): it finds each kind of difference
 * by bill id, and finds none in a healthy database. Its own database, so "every bill" is ours.
 */
import { reconcile } from '../../bills/reconcile';
import { insertApiKey } from '../../core/auth';
import { billWorkflowId } from '../../bills/messages';
import { runScript } from '../helpers/processes';
import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ AUTH_REQUIRED: 'true', AUTH_CACHE_MS: '0' });
});
afterAll(() => stack.stop());

let admin: Record<string, string>;
async function openBillWithItems(amounts: number[]): Promise<string> {
  admin ??= { authorization: `Bearer ${(await insertApiKey(stack.db, 'test admin', ['admin'])).key}` };
  const billId = uid();
  expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) }, admin)).status).toBe(200);
  for (const amount of amounts) {
    expect((await call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency: 'USD', description: 'x' }, admin)).status).toBe(
      200,
    );
  }
  return billId;
}

/** The CLI, as an operator runs it, against this test's database and Temporal. */
const cli = (args: string[]) =>
  runScript('host/reconcile.ts', args, { DATABASE_URL: stack.config.databaseUrl, TEMPORAL_ADDRESS: stack.config.temporal.address });

describe('reconciliation', () => {
  it('finds nothing when open and closed bills agree, from the endpoint and the CLI', async () => {
    const open = await openBillWithItems([100, 250]);
    const closed = await openBillWithItems([7]);
    expect((await call(stack, 'POST', `/bills/${closed}/close`, undefined, admin)).status).toBe(200);

    const reply = await call(stack, 'GET', '/admin/reconcile', undefined, admin);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ ok: true, bills_checked: 2, open_bills_checked_live: 1, line_items_checked: '3', differences: [] });
    expect(await cli(['--bill', open])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^OK: 1 bills \(1 open, checked live\)/) });
  });

  it('needs the admin scope', async () => {
    const reader = (await insertApiKey(stack.db, 'reader', ['bills:read'])).key;
    const reply = await call(stack, 'GET', '/admin/reconcile', undefined, { authorization: `Bearer ${reader}` });
    expect(reply.status).toBe(403);
    expect(reply.body).toMatchObject({ code: 'permission_denied' });
  });

  it('reports each kind of difference with the bill id, and the CLI exits 1', async () => {
    // A row written behind the workflow's back: the database agrees with itself, not with the workflow.
    const behindBack = await openBillWithItems([100]);
    await stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 5, 'USD', 'by hand', 'test')`,
      [behindBack],
    );
    // Stored totals changed by hand.
    const tampered = await openBillWithItems([100]);
    await stack.db.query(`UPDATE bill_totals SET amount = amount + 1 WHERE bill_id = $1`, [tampered]);
    // An open bill whose workflow is gone.
    const orphan = await openBillWithItems([100]);
    await stack.deps.temporal.workflow.getHandle(billWorkflowId(orphan)).terminate('test');

    const reply = await call(stack, 'GET', '/admin/reconcile', undefined, admin);
    expect(reply.body.ok).toBe(false);
    const kinds = Object.fromEntries(reply.body.differences.map((d: { bill_id: string; kind: string }) => [d.bill_id, d.kind]));
    expect(kinds).toEqual({ [behindBack]: 'live_vs_stored', [tampered]: 'stored_vs_line_items', [orphan]: 'workflow_not_running' });
    const diff = reply.body.differences.find((d: { bill_id: string }) => d.bill_id === behindBack);
    expect(diff).toMatchObject({ live: { USD: { amount: '100', count: '1' } }, stored: { USD: { amount: '105', count: '2' } } });

    const { code, stdout } = await cli([]);
    expect(code).toBe(1);
    for (const id of [behindBack, tampered, orphan]) expect(stdout).toContain(id);
    // One bill at a time: a healthy one still passes.
    const healthy = await openBillWithItems([1]);
    expect((await call(stack, 'GET', `/admin/reconcile?bill_id=${healthy}`, undefined, admin)).body).toMatchObject({
      ok: true,
      bills_checked: 1,
    });
  });

  it('tells a workflow that does not answer within its deadline from one that disagrees', async () => {
    const billId = await openBillWithItems([7]);
    await stack.stopWorker();
    try {
      const report = await reconcile(stack.deps, { billIds: [billId], queryTimeoutMs: 300, settleAttempts: 1 });
      expect(report.differences).toMatchObject([{ bill_id: billId, kind: 'workflow_unreachable', live: null }]);
    } finally {
      await stack.startWorker();
    }
    expect((await reconcile(stack.deps, { billIds: [billId] })).ok).toBe(true);
  });

  it('a bill that closes with live totals other than its line items is reported by its workflow', async () => {
    const mismatches = async () => {
      const text = (await call(stack, 'GET', '/metrics', undefined, admin)).body as string;
      return Number(/^fees_close_totals_mismatches_total (\d+)/m.exec(text)?.[1]);
    };
    const before = await mismatches();
    const billId = await openBillWithItems([100]);
    await stack.db.query(
      `INSERT INTO line_items (line_item_id, bill_id, amount, currency, description, source_ref)
       VALUES (gen_random_uuid(), $1, 5, 'USD', 'by hand', 'test')`,
      [billId],
    );
    const closed = await call(stack, 'POST', `/bills/${billId}/close`, undefined, admin);
    // The stored line items are the bill; the difference is an alert.
    expect(closed.body.bill.totals).toMatchObject([{ currency: 'USD', amount: 105, line_item_count: 2 }]);
    expect(await mismatches()).toBe(before + 1);
    const history = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
    const activities = history.events!.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(activities).toContain('reportTotalsMismatch');
  });
});
