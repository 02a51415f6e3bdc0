import { proxyActivities, sleep } from '@temporalio/workflow';
import type { WebhookActivities } from './activities';
import type { AttemptResult } from './delivery';
import type { DeliveryWorkflowInput } from './messages';

/**
 * Delivers one event to one endpoint: an attempt, then a durable timer until the next one, until
 * a 2xx, the end of the retry window, or the endpoint is disabled or deleted. The attempt's
 * activity decides and records everything (its result carries the jittered delay), so this loop
 * stays deterministic; an activity that fails (database down, worker killed) is retried by
 * Temporal, and its claim by attempt number keeps that from sending twice.
 */
export async function webhookDeliveryWorkflow(input: DeliveryWorkflowInput): Promise<AttemptResult> {
  const { attemptWebhookDelivery } = proxyActivities<WebhookActivities>({
    startToCloseTimeout: input.attempt_timeout_ms,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
  });
  let attempt = input.first_attempt;
  for (;;) {
    const result = await attemptWebhookDelivery({ delivery_id: input.delivery_id, generation: input.generation, attempt });
    if (result.done) return result;
    attempt = result.next_attempt;
    if (result.retry_in_ms > 0) await sleep(result.retry_in_ms);
  }
}
