/**
 * An add whose outcome the API does not learn (a worker killed after the write, a deadline, the
 * server's own update failures) is "maybe stored": it is looked up by id and answered if stored,
 * else the same update is resent until the deadline, then 503. Never a 500, never counted twice.
 */
import { ServiceError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  call,
  inSeconds,
  ledgerSums,
  liveTotals,
  mismatchReports,
  startCrashingWorker,
  startStack,
  uid,
  type Stack,
  KILLED_WORKER_ENV,
} from '../helpers/stack';

let stack: Stack;

beforeAll(async () => {
  // Room for a workflow task to time out (10 s) and be retried on another worker.
  stack = await startStack({ UPDATE_TIMEOUT_MS: '60000', ...KILLED_WORKER_ENV });
});
afterAll(() => stack.stop());

const openBill = async () => {
  const billId = uid();
  expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);
  return billId;
};

describe('a worker killed after the line-item write committed, before its workflow task completed', () => {
  it('answers the add, and counts it once when the same add is sent again', async () => {
    const billId = await openBill();
    await stack.stopWorker();
    const { exited } = await startCrashingWorker(stack, 'after-ledger-write');

    const item = { amount: 250, currency: 'USD', description: 'written, then the worker died' };
    const headers = { 'Idempotency-Key': `${billId}-crash` };
    const pending = call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
    expect(await exited).toBe('SIGKILL');
    // The write committed; the workflow task that carried the update never completed.
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '250' });

    await stack.startWorker();
    const first = await pending;
    expect(first.status).toBe(200);
    // The same add once more, as a new update (its key's record has expired, say).
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [headers['Idempotency-Key']]);
    const again = await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
    expect(again.status).toBe(200);
    expect(again.body.line_item.line_item_id).toBe(first.body.line_item.line_item_id);

    const live = await liveTotals(stack, billId);
    expect(live.totals).toEqual([expect.objectContaining({ currency: 'USD', amount: 250, line_item_count: 1 })]);
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '250' });
    expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
    expect(await mismatchReports(stack, billId)).toBe(0);
  }, 120_000);
});

/** A server-side failure, thrown before the update is sent or after it was applied. */
interface Fault {
  when: 'before' | 'after';
  error: () => Error;
}

const serverFailure = (type: string, message: string) => () =>
  new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ type, message, nonRetryable: true }));
const grpcFailure = (code: number, details: string) => () =>
  new ServiceError(details, { cause: Object.assign(new Error(details), { code, details, metadata: {} }) });

const FAULTS: Record<string, Fault> = {
  'UnprocessedUpdate (not applied)': {
    when: 'before',
    error: serverFailure('UnprocessedUpdate', "Workflow Update is rejected because it wasn't processed by worker"),
  },
  'AcceptedUpdateCompletedWorkflow (applied)': {
    when: 'after',
    error: serverFailure(
      'AcceptedUpdateCompletedWorkflow',
      'Workflow Update failed because the Workflow completed before the Update completed',
    ),
  },
  'WorkflowNotReady (not applied)': { when: 'before', error: grpcFailure(9, 'Workflow is not ready to handle the request') },
  'the update deadline (applied)': {
    when: 'after',
    error: () => new WorkflowUpdateRPCTimeoutOrCancelledError('Timed out waiting for the update', { cause: new Error('deadline') }),
  },
  'a lost connection (not applied)': { when: 'before', error: grpcFailure(14, 'connection reset') },
};

/** The next updates sent through the API fail as `faults` say, once each; the rest go through. */
function injectUpdateFaults(faults: Fault[]): () => void {
  const workflow = stack.deps.temporal.workflow;
  const original = workflow.getHandle;
  workflow.getHandle = ((...args: Parameters<typeof original>) => {
    const handle = original.apply(workflow, args);
    const send = handle.executeUpdate.bind(handle) as (...a: unknown[]) => Promise<unknown>;
    const executeUpdate = async (...a: unknown[]) => {
      const fault = faults.shift();
      if (fault?.when === 'before') throw fault.error();
      const result = await send(...a);
      if (fault?.when === 'after') throw fault.error();
      return result;
    };
    return Object.assign(Object.create(handle), { executeUpdate });
  }) as typeof original;
  return () => {
    workflow.getHandle = original;
  };
}

describe.each(Object.entries(FAULTS))('an update that fails with %s', (_name, fault) => {
  it('answers a single add once, stored once', async () => {
    const billId = await openBill();
    const faults = [fault];
    const restore = injectUpdateFaults(faults);
    try {
      const reply = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 70, currency: 'EUR', description: 'x' });
      expect(reply.status).toBe(200);
      expect(reply.body.line_item).toMatchObject({ amount: 70, currency: 'EUR' });
    } finally {
      restore();
    }
    expect(faults).toEqual([]); // the fault fired
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '70' });
    expect((await liveTotals(stack, billId)).line_item_count).toBe(1);
  });

  it('answers a batch once, applied once', async () => {
    const billId = await openBill();
    const items = [
      { amount: 1, currency: 'EUR', description: 'a' },
      { amount: 2, currency: 'EUR', description: 'b' },
    ];
    const faults = [fault];
    const restore = injectUpdateFaults(faults);
    try {
      const reply = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items });
      expect(reply.status).toBe(200);
      expect(reply.body.line_item_ids).toHaveLength(2);
    } finally {
      restore();
    }
    expect(faults).toEqual([]);
    expect(await ledgerSums(stack, billId)).toEqual({ n: 2, total: '3' });
    expect((await liveTotals(stack, billId)).line_item_count).toBe(2);
  });
});

describe('an update whose outcome stays unknown until the deadline', () => {
  it('answers 503 unavailable (never 500), stores nothing, and lands once when retried with the key', async () => {
    const billId = await openBill();
    const saved = stack.config.updateTimeoutMs;
    stack.config.updateTimeoutMs = 1_500;
    const restore = injectUpdateFaults(Array.from({ length: 1000 }, () => FAULTS['UnprocessedUpdate (not applied)']));
    const headers = { 'Idempotency-Key': `${billId}-unknown` };
    const item = { amount: 9, currency: 'USD', description: 'unknown' };
    try {
      const single = await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
      expect(single).toMatchObject({ status: 503, body: { code: 'unavailable' } });
      const batch = await call(stack, 'POST', `/bills/${billId}/line-items/batch`, { items: [item] });
      expect(batch).toMatchObject({ status: 503, body: { code: 'unavailable' } });
    } finally {
      restore();
      stack.config.updateTimeoutMs = saved;
    }
    const retried = await call(stack, 'POST', `/bills/${billId}/line-items`, item, headers);
    expect(retried.status).toBe(200);
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '9' });
  });

  it('answers an add that was applied every time although no answer ever came back', async () => {
    const billId = await openBill();
    const lost = FAULTS['the update deadline (applied)'];
    const restore = injectUpdateFaults(Array.from({ length: 1000 }, () => lost));
    try {
      const reply = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 12, currency: 'USD', description: 'lost answer' });
      expect(reply.status).toBe(200);
      expect(reply.body.line_item).toMatchObject({ amount: 12, description: 'lost answer' });
    } finally {
      restore();
    }
    expect(await ledgerSums(stack, billId)).toEqual({ n: 1, total: '12' });
    expect((await liveTotals(stack, billId)).line_item_count).toBe(1);
  });
});
