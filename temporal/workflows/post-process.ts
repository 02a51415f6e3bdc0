import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { recordPostProcessRun } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Runs after a bill closed, as an abandoned child with its own id, so closing never waits for it.
 * For now it records that it ran; rendering and mailing the invoice builds on it.
 */
export async function closedBillPostProcessWorkflow(input: { bill_id: string }): Promise<void> {
  await recordPostProcessRun({ bill_id: input.bill_id, workflow_id: workflowInfo().workflowId });
}
