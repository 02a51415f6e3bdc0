/** Every activity the task queue serves, from the features that own them. */
import type { Config } from '../core/config';
import type { Db } from '../core/db';
import type { Logger } from '../core/log';
import { createBillActivities } from '../bills/activities';
import { createPostProcessActivities } from '../invoices/activities';
import type { Mailer } from '../invoices/mailer';
import { createWebhookActivities } from '../webhooks/activities';

export interface ActivityDeps {
  db: Db;
  config: Config;
  mailer: Mailer;
  log: Logger;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createBillActivities(deps), ...createPostProcessActivities(deps), ...createWebhookActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
