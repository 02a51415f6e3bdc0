/** Webhook endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { encoreDeps, run } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import type {
  CreateWebhookBody,
  DeliveryIdPattern,
  ListDeliveriesQuery,
  ListWebhooksQuery,
  UpdateWebhookBody,
  WebhookIdPattern,
} from './requests';
import type { DeletedWebhook, Webhook, WebhookDelivery, WebhookDeliveryPage, WebhookPage, WebhookWithSecret } from './types';
import * as webhooks from './webhooks';

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');
const deps = () => encoreDeps(database);

/**
 * Registers a receiver for events; the answer holds its signing secret, shown this once. Events
 * are POSTed to the URL signed per Standard Webhooks and retried for up to 3 days.
 */
export interface CreateWebhookRequest extends CreateWebhookBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const create = api(
  { expose: true, auth: true, method: 'POST', path: '/webhooks' },
  async (req: CreateWebhookRequest): Promise<WebhookWithSecret> =>
    run('webhooks:manage', async (caller) => {
      const { idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return webhooks.createWebhook(await deps(), body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/** Lists registered webhooks, newest first. */
export interface ListWebhooksRequest extends ListWebhooksQuery {}
export const list = api(
  { expose: true, auth: true, method: 'GET', path: '/webhooks' },
  async (req: ListWebhooksRequest): Promise<WebhookPage> => run('webhooks:manage', async () => webhooks.listWebhooks(await deps(), req)),
);

/** Returns one webhook (without its secret). */
export interface GetWebhookRequest {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
}
export const get = api(
  { expose: true, auth: true, method: 'GET', path: '/webhooks/:webhookId' },
  async (req: GetWebhookRequest): Promise<Webhook> => run('webhooks:manage', async () => webhooks.getWebhook(await deps(), req.webhookId)),
);

/** Changes a webhook's URL, events, description, or enables or disables it. */
export interface UpdateWebhookRequest extends UpdateWebhookBody {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const update = api(
  { expose: true, auth: true, method: 'PATCH', path: '/webhooks/:webhookId' },
  async (req: UpdateWebhookRequest): Promise<Webhook> =>
    run('webhooks:manage', async (caller) => {
      const { webhookId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return webhooks.updateWebhook(await deps(), webhookId, body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt));
    }),
);

/** Removes a webhook and its delivery records; deliveries on their way stop. */
export interface DeleteWebhookRequest {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const remove = api(
  { expose: true, auth: true, method: 'DELETE', path: '/webhooks/:webhookId' },
  async (req: DeleteWebhookRequest): Promise<DeletedWebhook> =>
    run('webhooks:manage', async (caller) =>
      webhooks.deleteWebhook(await deps(), req.webhookId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/**
 * Gives the webhook a new signing secret, shown this once. The previous secret keeps signing
 * alongside it for 24 hours, so receivers can switch without missing a delivery.
 */
export interface RotateWebhookSecretRequest {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const rotateSecret = api(
  { expose: true, auth: true, method: 'POST', path: '/webhooks/:webhookId/rotate-secret' },
  async (req: RotateWebhookSecretRequest): Promise<WebhookWithSecret> =>
    run('webhooks:manage', async (caller) =>
      webhooks.rotateWebhookSecret(await deps(), req.webhookId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);

/** Lists a webhook's deliveries, newest first: the event, attempts, the last answer and the next attempt. */
export interface ListDeliveriesRequest extends ListDeliveriesQuery {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
}
export const listDeliveries = api(
  { expose: true, auth: true, method: 'GET', path: '/webhooks/:webhookId/deliveries' },
  async (req: ListDeliveriesRequest): Promise<WebhookDeliveryPage> =>
    run('webhooks:manage', async () => {
      const { webhookId, ...query } = req;
      return webhooks.listDeliveries(await deps(), webhookId, query);
    }),
);

/** Sends a failed, cancelled or delivered event again, with the same webhook-id; a pending one is left as it is. */
export interface RetryDeliveryRequest {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
  /** The delivery's id (`delivery_id`). */
  deliveryId: string & DeliveryIdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const retryDelivery = api(
  { expose: true, auth: true, method: 'POST', path: '/webhooks/:webhookId/deliveries/:deliveryId/retry' },
  async (req: RetryDeliveryRequest): Promise<WebhookDelivery> =>
    run('webhooks:manage', async (caller) =>
      webhooks.retryDelivery(
        await deps(),
        req.webhookId,
        req.deliveryId,
        idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt),
      ),
    ),
);

/** Sends a `ping` event to this webhook alone; the answer is its delivery, on its way. */
export interface TestWebhookRequest {
  /** The webhook's id (`webhook_id`). */
  webhookId: string & WebhookIdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const test = api(
  { expose: true, auth: true, method: 'POST', path: '/webhooks/:webhookId/test' },
  async (req: TestWebhookRequest): Promise<WebhookDelivery> =>
    run('webhooks:manage', async (caller) =>
      webhooks.testWebhook(await deps(), req.webhookId, idempotencyKeyOf(caller.key_id, req.idempotencyKey, req.idempotencyKeyAlt)),
    ),
);
