/**
 * Temporal forgets a closed workflow after its namespace's retention period and then lets its id
 * start again, while Postgres still holds the bill. A bill row with no workflow stands in for that.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { requestedBill } from '../../bills/bills';
import { createBillInput, type BillRequest } from '../../bills/validation';
import { fingerprint } from '../../core/idempotency';
import { billWorkflowId } from '../../bills/messages';
import { postProcessWorkflowId } from '../../invoices/messages';
import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.stop());

/** Writes a bill as an earlier, forgotten workflow would have left it. */
async function billWithoutWorkflow(body: BillRequest, status: 'open' | 'closed', fp?: string): Promise<void> {
  const input = createBillInput(body, new Date());
  const created = new Date(Date.now() - 60_000).toISOString();
  await stack.db.query(
    `INSERT INTO bills (bill_id, status, policy, currency, billing_period_start, billing_period_end, created_at, closed_at, request_fingerprint)
     VALUES ($1, $2, 'usage_based', $3, $4, $5, $4, $6, $7)`,
    [
      input.bill_id,
      status,
      input.currency,
      created,
      input.billing_period_end,
      status === 'closed' ? created : null,
      fp ?? fingerprint('bill', requestedBill(input)),
    ],
  );
}

describe('after the workflow history of a bill has expired', () => {
  it('answers a repeated create of a closed bill from Postgres and runs nothing twice', async () => {
    const billId = uid();
    const body = { bill_id: billId, billing_period_end: inSeconds(3600) };
    await billWithoutWorkflow(body, 'closed');

    const again = await call(stack, 'POST', '/bills', body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ bill_id: billId, status: 'closed', totals_source: 'stored' });
    // The new run saw the bill closed and ended at once: no second close, no post-process.
    const result = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).result();
    expect(result.status).toBe('closed');
    const postProcess = stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(billId)).describe();
    await expect(postProcess).rejects.toBeInstanceOf(WorkflowNotFoundError);
    await expect(postProcess).rejects.toMatchObject({ workflowId: postProcessWorkflowId(billId) });
    expect((await stack.db.query('SELECT 1 FROM bill_postprocess WHERE bill_id = $1', [billId])).rowCount).toBe(0);
  });

  it('refuses a create that reuses the id of a different bill, and changes nothing', async () => {
    const billId = uid();
    await billWithoutWorkflow({ bill_id: billId, billing_period_end: inSeconds(3600), currency: 'USD' }, 'open', 'another request');
    const other = await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), currency: 'GEL' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('already_exists');
    const row = await stack.db.query('SELECT currency, status FROM bills WHERE bill_id = $1', [billId]);
    expect(row.rows).toEqual([{ currency: 'USD', status: 'open' }]);
    // The workflow that found the conflict ended instead of running a lifecycle for a bill not its own.
    await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).result();
  });
});
