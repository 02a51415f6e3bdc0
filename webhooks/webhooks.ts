/**
 * Webhook use cases, shared by the Encore endpoints and the standalone host: register receivers,
 * change, rotate and remove them, and look at and retry their deliveries.
 */
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import { inTransaction } from '../core/db';
import { idempotently, type Deps } from '../core/deps';
import { failedPrecondition, invalidArgument, notFound, AppError } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { decodeCursor, encodeCursor, isId, isIsoInstant, pageSize } from '../core/validate';
import { checkResolved } from './addresses';
import { emitEvent } from './events';
import { generateSecret, secretBoxOf, type SecretBox } from './secrets';
import {
  deleteEndpoint,
  deliveryOf,
  findDelivery,
  findEndpoint,
  insertEndpoint,
  restartDelivery,
  rotateSecret,
  selectDeliveriesPage,
  selectEndpointsPage,
  updateEndpoint,
} from './store';
import type { CreateWebhookBody, ListDeliveriesQuery, ListWebhooksQuery, UpdateWebhookBody } from './requests';
import type { DeletedWebhook, Webhook, WebhookDelivery, WebhookDeliveryPage, WebhookPage, WebhookWithSecret } from './types';
import { createWebhookInput, updateWebhookInput, type UrlRules } from './validation';

// Fixed namespace: a webhook id derived from an idempotency key is the same on every retry.
const WEBHOOK_ID_NAMESPACE = '6b1f0f5e-2c8a-4f7d-9a43-0e5d7c2b9f18';

const boxes = new WeakMap<Deps['config'], SecretBox>();
function box(deps: Deps): SecretBox {
  let b = boxes.get(deps.config);
  if (!b) boxes.set(deps.config, (b = secretBoxOf(deps.config)));
  return b;
}

const urlRules = (deps: Deps): UrlRules => ({ httpsOnly: deps.config.production });

/** Refuses a receiver on a non-public address now, rather than on its first delivery. */
async function checkReceiver(deps: Deps, url: string): Promise<void> {
  if (deps.config.webhooks.allowPrivate) return;
  try {
    await checkResolved(new URL(url).hostname);
  } catch (err) {
    throw invalidArgument(`url is refused: ${(err as Error).message}`, { field: 'url', reason: 'address_not_public' });
  }
}

const webhookNotFound = (webhookId: string) => notFound(`webhook ${webhookId} not found`, { webhook_id: webhookId });

async function requireWebhook(deps: Deps, webhookId: string) {
  const found = await findEndpoint(deps.db, webhookId);
  if (!found) throw webhookNotFound(webhookId);
  return found;
}

/**
 * What an idempotent create or rotation stores as its answer: the secret sealed, as in the
 * table, so the idempotency store holds no secret in the clear; the answer opens it.
 */
interface SealedAnswer {
  webhook: Webhook;
  sealed_secret: string;
}

const opened = (deps: Deps, a: SealedAnswer): WebhookWithSecret => ({ ...a.webhook, secret: box(deps).open(a.sealed_secret) });

export async function createWebhook(deps: Deps, body: CreateWebhookBody, key: IdempotencyKey | undefined): Promise<WebhookWithSecret> {
  const input = createWebhookInput(body, urlRules(deps));
  await checkReceiver(deps, input.url);
  const operation = 'POST /webhooks';
  const requestFingerprint = fingerprint(operation, input);
  const answer = await idempotently(deps, key, operation, requestFingerprint, async (seed): Promise<SealedAnswer> => {
    // With a key, the id derives from it: a retry after a lost answer finds the endpoint its
    // first attempt registered instead of registering a second one.
    const webhookId = seed ? uuidv5(seed, WEBHOOK_ID_NAMESPACE) : uuidv7();
    const sealed = box(deps).seal(generateSecret());
    const webhook = await insertEndpoint(deps.db, {
      webhook_id: webhookId,
      ...input,
      secret_ciphertext: sealed,
      request_fingerprint: requestFingerprint,
    });
    if (webhook) return { webhook, sealed_secret: sealed };
    const existing = await findEndpoint(deps.db, webhookId);
    if (existing?.request_fingerprint === requestFingerprint)
      return { webhook: existing.webhook, sealed_secret: existing.secret_ciphertext };
    throw new AppError('already_exists', `webhook ${webhookId} already exists`, { webhook_id: webhookId });
  });
  return opened(deps, answer);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A page's position: (created_at, id), where the id is as strict as in a request. */
const positionOf = (cursor: string | undefined, isKey: (v: unknown) => boolean) =>
  decodeCursor(cursor, (p) => p.length === 2 && isIsoInstant(p[0]) && isKey(p[1])) as [string, string] | null;

export async function listWebhooks(deps: Deps, query: ListWebhooksQuery): Promise<WebhookPage> {
  const limit = pageSize(query.limit, 100, 100);
  const rows = await selectEndpointsPage(deps.db, limit + 1, positionOf(query.cursor, isId));
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { webhooks: page, next_cursor: rows.length > limit ? encodeCursor([last.created_at, last.webhook_id]) : null };
}

export async function getWebhook(deps: Deps, webhookId: string): Promise<Webhook> {
  return (await requireWebhook(deps, webhookId)).webhook;
}

export async function updateWebhook(
  deps: Deps,
  webhookId: string,
  body: UpdateWebhookBody,
  key: IdempotencyKey | undefined,
): Promise<Webhook> {
  const change = updateWebhookInput(body, urlRules(deps));
  if (change.url) await checkReceiver(deps, change.url);
  const operation = 'PATCH /webhooks/:webhookId';
  return idempotently(deps, key, operation, fingerprint(operation, { webhook_id: webhookId, ...change }), async () => {
    const updated = await inTransaction(deps.db, (tx) => updateEndpoint(tx, webhookId, change));
    if (!updated) throw webhookNotFound(webhookId);
    return updated;
  });
}

export async function deleteWebhook(deps: Deps, webhookId: string, key: IdempotencyKey | undefined): Promise<DeletedWebhook> {
  const operation = 'DELETE /webhooks/:webhookId';
  return idempotently(deps, key, operation, fingerprint(operation, { webhook_id: webhookId }), async () => {
    if (!(await deleteEndpoint(deps.db, webhookId))) throw webhookNotFound(webhookId);
    return { webhook_id: webhookId, deleted: true as const };
  });
}

/** A new secret, answered once; the previous one signs alongside it for WEBHOOK_SECRET_OVERLAP_MS (24 h). */
export async function rotateWebhookSecret(deps: Deps, webhookId: string, key: IdempotencyKey | undefined): Promise<WebhookWithSecret> {
  const operation = 'POST /webhooks/:webhookId/rotate-secret';
  const answer = await idempotently(
    deps,
    key,
    operation,
    fingerprint(operation, { webhook_id: webhookId }),
    async (): Promise<SealedAnswer> => {
      const sealed = box(deps).seal(generateSecret());
      const webhook = await rotateSecret(deps.db, webhookId, sealed, deps.config.webhooks.secretOverlapMs);
      if (!webhook) throw webhookNotFound(webhookId);
      return { webhook, sealed_secret: sealed };
    },
  );
  return opened(deps, answer);
}

export async function listDeliveries(deps: Deps, webhookId: string, query: ListDeliveriesQuery): Promise<WebhookDeliveryPage> {
  const limit = pageSize(query.limit, 50, 100);
  // (created_at, delivery_id): a forged id that is not a UUID is refused here, not by Postgres.
  const after = positionOf(query.cursor, (v) => typeof v === 'string' && UUID.test(v));
  await requireWebhook(deps, webhookId);
  const rows = await selectDeliveriesPage(deps.db, webhookId, { status: query.status ?? null, limit: limit + 1, after });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { deliveries: page, next_cursor: rows.length > limit ? encodeCursor([last.created_at, last.delivery_id]) : null };
}

/** Sends a failed, cancelled or delivered event again (same webhook-id); a pending one is left as it is. */
export async function retryDelivery(
  deps: Deps,
  webhookId: string,
  deliveryId: string,
  key: IdempotencyKey | undefined,
): Promise<WebhookDelivery> {
  const operation = 'POST /webhooks/:webhookId/deliveries/:deliveryId/retry';
  return idempotently(deps, key, operation, fingerprint(operation, { webhook_id: webhookId, delivery_id: deliveryId }), async () => {
    const { webhook } = await requireWebhook(deps, webhookId);
    if (!webhook.enabled) throw failedPrecondition(`webhook ${webhookId} is disabled: enable it first`, { enabled: false });
    const restarted = await inTransaction(deps.db, (tx) => restartDelivery(tx, webhookId, deliveryId));
    if (restarted === null) throw notFound(`delivery ${deliveryId} of webhook ${webhookId} not found`, { delivery_id: deliveryId });
    return (await findDelivery(deps.db, webhookId, deliveryId))!;
  });
}

/** Sends a `ping` event to this endpoint alone; the answer is its delivery, on its way. */
export async function testWebhook(deps: Deps, webhookId: string, key: IdempotencyKey | undefined): Promise<WebhookDelivery> {
  const operation = 'POST /webhooks/:webhookId/test';
  return idempotently(deps, key, operation, fingerprint(operation, { webhook_id: webhookId }), async () => {
    const { webhook } = await requireWebhook(deps, webhookId);
    if (!webhook.enabled) throw failedPrecondition(`webhook ${webhookId} is disabled: enable it first`, { enabled: false });
    // Through the same outbox and delivery path as every event, to this endpoint alone.
    const eventId = await emitEvent(
      deps.db,
      'ping',
      { webhook_id: webhookId, message: 'a test event from the Fees API' },
      { onlyWebhookId: webhookId },
    );
    return (await deliveryOf(deps.db, eventId, webhookId))!;
  });
}
