/** The delivery workflow's one activity; the attempt itself lives in delivery.ts. */
import type { Config } from '../core/config';
import type { Db } from '../core/db';
import type { Logger } from '../core/log';
import { attemptDelivery, type AttemptInput, type AttemptResult } from './delivery';
import { secretBoxOf } from './secrets';

export interface WebhookActivityDeps {
  db: Db;
  config: Config;
  log: Logger;
}

export function createWebhookActivities({ db, config, log }: WebhookActivityDeps) {
  const secrets = secretBoxOf(config);
  return {
    async attemptWebhookDelivery(input: AttemptInput): Promise<AttemptResult> {
      return attemptDelivery({ db, config, secrets, log }, input);
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
