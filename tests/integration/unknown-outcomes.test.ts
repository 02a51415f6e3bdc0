/**
 * An add whose outcome the API does not learn (a worker killed after the write, a deadline, the
 * server's own update failures) is "maybe stored": it is looked up by id and answered if stored,
 * else the same update is resent until the deadline, then 503. Never a 500, never counted twice.
 *
 * The failures are real where the dev server can be made to give them: a worker killed mid-task,
 * a deadline that passes while a write is held, no worker polling at all, a workflow that ends
 * while an update it accepted is still running. The server's other answers (UnprocessedUpdate,
 * WorkflowNotReady, and UNAVAILABLE once the SDK's own retries have run out) come from races that
 * cannot be staged on demand: for those, @temporalio/client's own code makes the error from the
 * server's answer as the server sends it (its text is the server's, found in the Temporal CLI's
 * binary), a test below pins that shape, and the API then meets exactly that error.
 */
import { Metadata, status } from '@grpc/grpc-js';
import { callErrorFromStatus } from '@grpc/grpc-js/build/src/call';
import {
  ServiceError,
  WorkflowClient,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type ConnectionLike,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { Runtime } from '@temporalio/worker';
import { addStagedLineItemsUpdate, appendLineItemsUpdate, billWorkflowId } from '../../bills/messages';
import { classifyUpdateFailure } from '../../core/temporal';
import type { Activities } from '../../temporal/activities';
import { sdkRunLogger } from '../helpers/run-logs';
import {
  call,
  eventually,
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
/** Bills whose line-item writes are held once they have committed, until the test releases them. */
const holds = new Map<string, Promise<void>>();

beforeAll(async () => {
  // The SDK's native warnings (a held write that completes after its attempt timed out or its
  // workflow ended) go to the run's log like its other lines, not to the test output: installed
  // before the stack's own, which then finds a runtime in place.
  Runtime.install({ logger: sdkRunLogger(), telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } } });
  // A workflow task times out in 3 s, and a worker's is taken over a second after it died; a local
  // activity (each line-item write) times out in 2 s and is retried, held again if its bill is.
  stack = await startStack({ UPDATE_TIMEOUT_MS: '60000', ...KILLED_WORKER_ENV }, (a: Activities) => ({
    ...a,
    // Fault injection: a write that commits, then takes its time to say so.
    writeLineItems: async (input) => {
      const result = await a.writeLineItems(input);
      await holds.get(input.bill_id);
      return result;
    },
  }));
});
afterAll(async () => {
  await stack.stop();
  // Forwarding keeps collecting the native logs until the runtime is shut down.
  await Runtime.instance().shutdown();
});

const openBill = async () => {
  const billId = uid();
  expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);
  return billId;
};

/** Holds the bill's writes after they committed; the returned function lets them answer. */
function holdAfterWrite(billId: string): () => void {
  let release!: () => void;
  holds.set(billId, new Promise<void>((resolve) => (release = resolve)));
  return () => {
    holds.delete(billId);
    release();
  };
}

/** Runs `fn` with the API's update deadline at `ms`. */
async function withUpdateDeadline<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const saved = stack.config.updateTimeoutMs;
  stack.config.updateTimeoutMs = ms;
  try {
    return await fn();
  } finally {
    stack.config.updateTimeoutMs = saved;
  }
}

/**
 * Wraps the API's update calls while `fn` runs. `watch` sees each failure on its way (nothing is
 * changed); `fault`, when it gives one, fails the call in its place, before it is sent or after.
 */
async function withUpdateCalls<T>(
  hooks: { watch?: (err: unknown) => void; fault?: () => Fault | undefined },
  fn: () => Promise<T>,
): Promise<T> {
  const workflow = stack.deps.temporal.workflow;
  const original = workflow.getHandle;
  workflow.getHandle = ((...args: Parameters<typeof original>) => {
    const handle = original.apply(workflow, args);
    const send = handle.executeUpdate.bind(handle) as (...a: unknown[]) => Promise<unknown>;
    const executeUpdate = async (...a: unknown[]) => {
      const fault = hooks.fault?.();
      if (fault?.when === 'before') throw await fault.error();
      let result: unknown;
      try {
        result = await send(...a);
      } catch (err) {
        hooks.watch?.(err);
        throw err;
      }
      if (fault?.when === 'after') throw await fault.error();
      return result;
    };
    return Object.assign(Object.create(handle), { executeUpdate });
  }) as typeof original;
  try {
    return await fn();
  } finally {
    workflow.getHandle = original;
  }
}

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

/** The two ways to add: one item, or a batch. */
const ADDS = {
  'a single add': {
    send: (billId: string, headers: Record<string, string> = {}) =>
      call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 70, currency: 'EUR', description: 'x' }, headers),
    stored: { n: 1, total: '70' },
    answered: (body: any) => expect(body.line_item).toMatchObject({ amount: 70, currency: 'EUR' }),
    update: appendLineItemsUpdate.name,
  },
  'a batch': {
    send: (billId: string, headers: Record<string, string> = {}) =>
      call(
        stack,
        'POST',
        `/bills/${billId}/line-items/batch`,
        {
          items: [
            { amount: 1, currency: 'EUR', description: 'a' },
            { amount: 2, currency: 'EUR', description: 'b' },
          ],
        },
        headers,
      ),
    stored: { n: 2, total: '3' },
    answered: (body: any) => expect(body.line_item_ids).toHaveLength(2),
    update: addStagedLineItemsUpdate.name,
  },
};

describe.each(Object.entries(ADDS))('%s whose deadline passes', (_name, add) => {
  it('while its write, committed, is slow to answer: answers it from the ledger, stored once', async () => {
    const billId = await openBill();
    const release = holdAfterWrite(billId);
    const failures: unknown[] = [];
    const reply = await withUpdateCalls({ watch: (err) => failures.push(err) }, () => withUpdateDeadline(1_500, () => add.send(billId)));
    release();
    expect(reply.status).toBe(200);
    add.answered(reply.body);
    // The dev server's own answer: the update call ran into its deadline.
    expect(failures).toEqual([expect.any(WorkflowUpdateRPCTimeoutOrCancelledError)]);
    expect(await ledgerSums(stack, billId)).toEqual(add.stored);
    await eventually(async () => (await liveTotals(stack, billId)).line_item_count === add.stored.n);
  });

  it('while no worker polls: answers 503 unavailable (never 500), stores nothing, and lands once when retried with the key', async () => {
    const billId = await openBill();
    const headers = { 'Idempotency-Key': `${billId}-unknown` };
    const failures: unknown[] = [];
    await stack.stopWorker();
    try {
      const reply = await withUpdateCalls({ watch: (err) => failures.push(err) }, () =>
        withUpdateDeadline(1_500, () => add.send(billId, headers)),
      );
      expect(reply).toMatchObject({ status: 503, body: { code: 'unavailable' } });
      expect(await ledgerSums(stack, billId)).toEqual({ n: 0, total: '0' });
    } finally {
      await stack.startWorker();
    }
    expect(failures).toEqual([expect.any(WorkflowUpdateRPCTimeoutOrCancelledError)]);
    // The update the server still held may land meanwhile; the retry finds it, or lands it, once.
    const retried = await add.send(billId, headers);
    expect(retried.status).toBe(200);
    add.answered(retried.body);
    expect(await ledgerSums(stack, billId)).toEqual(add.stored);
    await eventually(async () => (await liveTotals(stack, billId)).line_item_count === add.stored.n);
  });
});

/** How many of `update` the bill's workflow has accepted, by its history. */
async function accepted(billId: string, update: string): Promise<number> {
  const { events } = await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).fetchHistory();
  return (events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === update).length;
}

describe.each(Object.entries(ADDS))('%s accepted by a workflow that then ends (AcceptedUpdateCompletedWorkflow)', (_name, add) => {
  it('answers it from the ledger, stored once', async () => {
    const billId = await openBill();
    const release = holdAfterWrite(billId);
    const failures: unknown[] = [];
    const reply = withUpdateCalls({ watch: (err) => failures.push(err) }, () => add.send(billId));
    try {
      // While its write is held, the workflow task that runs it is kept alive (past 80% of its
      // timeout the worker completes it and carries on in a new one): that completion accepts the
      // update. Then the workflow ends for good, the update still running.
      await eventually(async () => (await accepted(billId, add.update)) === 1, 15_000);
      await stack.deps.temporal.workflow.getHandle(billWorkflowId(billId)).terminate('ends while an update is accepted');
    } finally {
      release();
    }
    const answer = await reply;
    expect(answer.status).toBe(200);
    add.answered(answer.body);
    // The dev server's own answer.
    expect(failures).toEqual([expect.any(WorkflowUpdateFailedError)]);
    expect((failures[0] as WorkflowUpdateFailedError).cause).toMatchObject({
      type: 'AcceptedUpdateCompletedWorkflow',
      message: 'Workflow Update failed because the Workflow completed before the Update completed.',
    });
    expect(await ledgerSums(stack, billId)).toEqual(add.stored);
  });
});

// ---------------------------------------------------------------------------------------------
// The server's answers that cannot be staged on demand (a bill's workflow waits for an update sent
// before its first task instead of answering WorkflowNotReady, say), as the SDK makes errors of them.

const { UpdateWorkflowExecutionLifecycleStage } = temporal.api.enums.v1;

/**
 * What `handle.executeUpdate` of @temporalio/client throws when the server answers its
 * UpdateWorkflowExecution call with `answer`: the SDK's own WorkflowClient, on a connection whose
 * workflow service gives that answer (below the SDK's gRPC retries, so as they hand it on).
 */
async function sdkErrorFor(answer: () => Promise<unknown>): Promise<Error> {
  const connection = {
    workflowService: { updateWorkflowExecution: answer },
    withDeadline: <R>(_deadline: unknown, fn: () => Promise<R>) => fn(),
    withMetadata: <R>(_metadata: unknown, fn: () => Promise<R>) => fn(),
    withAbortSignal: <R>(_signal: unknown, fn: () => Promise<R>) => fn(),
    ensureConnected: async () => undefined,
    close: async () => undefined,
    plugins: [],
  };
  const client = new WorkflowClient({ connection: connection as unknown as ConnectionLike });
  const update = client.getHandle('bill-sdk-shape').executeUpdate(appendLineItemsUpdate, { args: [{ items: [] }], updateId: 'u' });
  return update.then(
    () => {
      throw new Error('the update succeeded');
    },
    (err: Error) => err,
  );
}

/**
 * The server's update outcome for a failure of its own: an ApplicationFailure from source "Server"
 * (go.temporal.io/server service/history/workflow/update; the messages are the server's, found in
 * the Temporal CLI binary the tests run).
 */
const serverOutcome = (type: string, message: string) => async () => ({
  updateRef: { workflowExecution: { workflowId: 'bill-sdk-shape', runId: 'r' }, updateId: 'u' },
  stage: UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
  outcome: { failure: { message, source: 'Server', applicationFailureInfo: { type, nonRetryable: true } } },
});

/** A failed call as @grpc/grpc-js raises it (build/src/call.js callErrorFromStatus). */
const grpcStatus = (code: status, details: string) => async () => {
  throw callErrorFromStatus({ code, details, metadata: new Metadata() }, 'test');
};

interface Fault {
  /** Thrown before the update is sent (not applied) or after it was applied. */
  when: 'before' | 'after';
  error: () => Promise<Error>;
  /** The SDK's shape for it, as workflow-client.js makes it. */
  shape: Record<string, unknown>;
}

const FAULTS: Record<string, Fault> = {
  // The server rejects an update the worker's task did not process (rejectUnprocessedUpdates):
  // workflow-client.js createWorkflowUpdateHandle -> result(): `new WorkflowUpdateFailedError('Workflow
  // Update failed', decodeOptionalFailureToOptionalError(outcome.failure))`.
  'UnprocessedUpdate (not applied)': {
    when: 'before',
    error: () =>
      sdkErrorFor(
        serverOutcome(
          'UnprocessedUpdate',
          "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
        ),
      ),
    shape: { class: WorkflowUpdateFailedError, message: 'Workflow Update failed', cause: ApplicationFailure, type: 'UnprocessedUpdate' },
  },
  // FAILED_PRECONDITION from the server (serviceerror.WorkflowNotReady): workflow-client.js
  // _startUpdateHandler -> rethrowUpdateGrpcError -> rethrowGrpcError: `new ServiceError('Workflow
  // Update failed', { cause: err })`.
  'WorkflowNotReady (not applied)': {
    when: 'before',
    error: () => sdkErrorFor(grpcStatus(status.FAILED_PRECONDITION, 'Workflow state is not ready to handle the request.')),
    shape: { class: ServiceError, message: 'Workflow Update failed', code: status.FAILED_PRECONDITION },
  },
  // UNAVAILABLE: the connection's gRPC retry interceptor (grpc-retry.js) retries it up to 10 times;
  // what it hands on after that is wrapped the same way.
  'a lost connection (not applied)': {
    when: 'before',
    error: () => sdkErrorFor(grpcStatus(status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7233')),
    shape: { class: ServiceError, message: 'Workflow Update failed', code: status.UNAVAILABLE },
  },
};

/** What an error looks like, in the terms of a Fault's shape. */
function shapeOf(err: Error, like: Record<string, unknown>): Record<string, unknown> {
  const cause = (err as { cause?: unknown }).cause as Record<string, unknown> | undefined;
  return {
    class: err.constructor,
    message: err.message,
    ...('cause' in like ? { cause: cause?.constructor } : {}),
    ...('type' in like ? { type: cause?.type } : {}),
    ...('code' in like ? { code: cause?.code } : {}),
  };
}

describe('the update failures the SDK makes of the server answers the API cannot stage', () => {
  it.each(Object.entries(FAULTS))('%s: the shape core/temporal.ts reads', async (_name, fault) => {
    const err = await fault.error();
    expect(shapeOf(err, fault.shape)).toEqual(fault.shape);
    // Not ours, not a refusal: the outcome is unknown, so the API looks the add up and resends.
    expect(classifyUpdateFailure(err)).toMatchObject({ kind: 'unknown' });
  });
});

describe.each(Object.entries(FAULTS))('an update that fails with %s', (_name, fault) => {
  /** The next update the API sends fails with `fault`, once; the rest go through. */
  const once = () => {
    const faults = [fault];
    return { faults, next: () => faults.shift() };
  };

  it.each(Object.entries(ADDS))('answers %s once, stored once', async (_add, add) => {
    const billId = await openBill();
    const { faults, next } = once();
    const reply = await withUpdateCalls({ fault: next }, () => add.send(billId));
    expect(reply.status).toBe(200);
    add.answered(reply.body);
    expect(faults).toEqual([]); // the fault fired
    expect(await ledgerSums(stack, billId)).toEqual(add.stored);
    expect((await liveTotals(stack, billId)).line_item_count).toBe(add.stored.n);
  });
});
