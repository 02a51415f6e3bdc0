/**
 * The API side of a bill's workflow: its handle, its live state and its updates under their
 * deadlines, with Temporal's failures mapped to API errors in one place.
 */
import type { WorkflowClient } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Deps } from '../core/deps';
import { isWorkflowGone, toAppError, updateWithDeadline, withDeadline } from '../core/temporal';
import { billWorkflowId, getBillQuery, type LiveBill } from './messages';

export function billWorkflow(deps: Deps, billId: string, workflows: WorkflowClient = deps.temporal.workflow) {
  return workflows.getHandle(billWorkflowId(billId));
}

/**
 * Sends `update` to the bill's workflow within the update deadline, again while the workflow asks
 * for a retry. `gone` when the workflow has completed (or never ran): the bill's row then tells
 * what happened. Any other failure is thrown as the API error a client should see.
 */
export async function updateBill<Ret, Args extends unknown[]>(
  deps: Deps,
  billId: string,
  update: UpdateDefinition<Ret, Args>,
  ...args: Args
): Promise<Ret | 'gone'> {
  const handle = billWorkflow(deps, billId);
  // The SDK types updates with and without arguments apart; both travel the same way.
  const send = () => handle.executeUpdate(update as unknown as UpdateDefinition<Ret, [unknown]>, { args: args as unknown as [unknown] });
  try {
    return await updateWithDeadline(deps.temporal, deps.config.updateTimeoutMs, send);
  } catch (err) {
    if (isWorkflowGone(err)) return 'gone';
    throw toAppError(err);
  }
}

/** The running bill's live state within `timeoutMs`; Temporal's failure is thrown as it is. */
export function queryBill(deps: Deps, billId: string, timeoutMs: number, workflows?: WorkflowClient): Promise<LiveBill> {
  const handle = billWorkflow(deps, billId, workflows);
  return withDeadline(deps.temporal, timeoutMs, () => handle.query(getBillQuery));
}
