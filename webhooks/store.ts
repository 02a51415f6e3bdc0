/** SQL for webhook endpoints and their deliveries. Returns plain rows or null; never HTTP errors. */
import type { Queryable } from '../core/db';
import type { DeliveryStatus, Webhook, WebhookDelivery } from './types';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

interface EndpointRow {
  webhook_id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabled_at: Date | null;
  disabled_reason: string | null;
  failing_since: Date | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS = `webhook_id, url, events, description, enabled, disabled_at, disabled_reason, failing_since,
  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at,
  created_at, updated_at`;

function toWebhook(r: EndpointRow): Webhook {
  return {
    webhook_id: r.webhook_id,
    url: r.url,
    events: r.events,
    description: r.description,
    enabled: r.enabled,
    disabled_reason: r.disabled_reason,
    disabled_at: iso(r.disabled_at),
    failing_since: iso(r.failing_since),
    previous_secret_expires_at: iso(r.previous_secret_expires_at),
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export interface StoredWebhook {
  webhook: Webhook;
  request_fingerprint: string;
  secret_ciphertext: string;
}

/** Inserts the endpoint; null when the id is taken (the caller tells a retry from a conflict). */
export async function insertEndpoint(
  db: Queryable,
  e: {
    webhook_id: string;
    url: string;
    events: string[];
    description: string | null;
    secret_ciphertext: string;
    request_fingerprint: string;
  },
): Promise<Webhook | null> {
  const { rows } = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (webhook_id, url, events, description, secret_ciphertext, request_fingerprint)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (webhook_id) DO NOTHING RETURNING ${ENDPOINT_COLUMNS}`,
    [e.webhook_id, e.url, e.events, e.description, e.secret_ciphertext, e.request_fingerprint],
  );
  return rows[0] ? toWebhook(rows[0]) : null;
}

export async function findEndpoint(db: Queryable, webhookId: string): Promise<StoredWebhook | null> {
  const { rows } = await db.query<EndpointRow & { request_fingerprint: string; secret_ciphertext: string }>(
    `SELECT ${ENDPOINT_COLUMNS}, request_fingerprint, secret_ciphertext FROM webhook_endpoints WHERE webhook_id = $1`,
    [webhookId],
  );
  const r = rows[0];
  return r ? { webhook: toWebhook(r), request_fingerprint: r.request_fingerprint, secret_ciphertext: r.secret_ciphertext } : null;
}

/** Newest first, keyset-paginated on (created_at, webhook_id). */
export async function selectEndpointsPage(db: Queryable, limit: number, after: [string, string] | null): Promise<Webhook[]> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
     WHERE $2::timestamptz IS NULL OR (created_at, webhook_id) < ($2, $3)
     ORDER BY created_at DESC, webhook_id DESC LIMIT $1`,
    [limit, after?.[0] ?? null, after?.[1] ?? null],
  );
  return rows.map(toWebhook);
}

/**
 * Applies a change. Disabling cancels the endpoint's pending deliveries (they would go nowhere);
 * enabling clears the reason and the failure clock. Null when the endpoint does not exist.
 */
export async function updateEndpoint(
  tx: Queryable,
  webhookId: string,
  change: { url?: string; events?: string[]; description?: string | null; enabled?: boolean },
): Promise<Webhook | null> {
  const { rows } = await tx.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
       url = COALESCE($2, url),
       events = COALESCE($3, events),
       description = CASE WHEN $4 THEN $5 ELSE description END,
       enabled = COALESCE($6, enabled),
       disabled_at = CASE WHEN $6 IS NULL THEN disabled_at WHEN $6 THEN NULL ELSE COALESCE(disabled_at, now()) END,
       disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason WHEN $6 THEN NULL
                              ELSE COALESCE(disabled_reason, 'disabled by an API request') END,
       failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
       updated_at = now()
     WHERE webhook_id = $1 RETURNING ${ENDPOINT_COLUMNS}`,
    [
      webhookId,
      change.url ?? null,
      change.events ?? null,
      change.description !== undefined,
      change.description ?? null,
      change.enabled ?? null,
    ],
  );
  if (!rows[0]) return null;
  if (change.enabled === false) await cancelPending(tx, webhookId, 'the endpoint was disabled');
  return toWebhook(rows[0]);
}

export async function cancelPending(tx: Queryable, webhookId: string, reason: string): Promise<void> {
  await tx.query(
    `UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL, last_error = COALESCE(last_error || '; ', '') || $2
     WHERE webhook_id = $1 AND status = 'pending'`,
    [webhookId, reason],
  );
}

/** Deletes the endpoint and its deliveries (their workflows find nothing left to send). */
export async function deleteEndpoint(db: Queryable, webhookId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM webhook_endpoints WHERE webhook_id = $1', [webhookId]);
  return rowCount === 1;
}

/** The new secret signs from now on; the current one keeps signing alongside until `overlapMs` from now. */
export async function rotateSecret(db: Queryable, webhookId: string, secretCiphertext: string, overlapMs: number): Promise<Webhook | null> {
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
       previous_secret_ciphertext = CASE WHEN $3 > 0 THEN secret_ciphertext END,
       previous_secret_expires_at = CASE WHEN $3 > 0 THEN now() + $3 * interval '1 millisecond' END,
       secret_ciphertext = $2, updated_at = now()
     WHERE webhook_id = $1 RETURNING ${ENDPOINT_COLUMNS}`,
    [webhookId, secretCiphertext, overlapMs],
  );
  return rows[0] ? toWebhook(rows[0]) : null;
}

interface DeliveryRow {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  event_created_at: Date;
  status: DeliveryStatus;
  attempts: number;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  last_response_body: string | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
}

const DELIVERY_COLUMNS = `d.delivery_id, d.webhook_id, d.event_id, e.type AS event_type, e.created_at AS event_created_at, d.status,
  d.attempts, d.last_attempt_at, d.last_status_code, d.last_error, d.last_response_body, d.next_attempt_at, d.delivered_at, d.created_at`;

function toDelivery(r: DeliveryRow): WebhookDelivery {
  return {
    delivery_id: r.delivery_id,
    webhook_id: r.webhook_id,
    event: { id: r.event_id, type: r.event_type, created_at: r.event_created_at.toISOString() },
    status: r.status,
    attempts: r.attempts,
    last_attempt_at: iso(r.last_attempt_at),
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    last_response_body: r.last_response_body,
    next_attempt_at: iso(r.next_attempt_at),
    delivered_at: iso(r.delivered_at),
    created_at: r.created_at.toISOString(),
  };
}

/** Newest first, keyset-paginated on (created_at, delivery_id). */
export async function selectDeliveriesPage(
  db: Queryable,
  webhookId: string,
  q: { status: DeliveryStatus | null; limit: number; after: [string, string] | null },
): Promise<WebhookDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e USING (event_id)
     WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2)
       AND ($4::timestamptz IS NULL OR (d.created_at, d.delivery_id) < ($4, $5::uuid))
     ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT $3`,
    [webhookId, q.status, q.limit, q.after?.[0] ?? null, q.after?.[1] ?? null],
  );
  return rows.map(toDelivery);
}

export async function findDelivery(db: Queryable, webhookId: string, deliveryId: string): Promise<WebhookDelivery | null> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events e USING (event_id)
     WHERE d.webhook_id = $1 AND d.delivery_id = $2`,
    [webhookId, deliveryId],
  );
  return rows[0] ? toDelivery(rows[0]) : null;
}

/**
 * A finished delivery (failed, cancelled or succeeded) goes out again, in a new generation with a
 * fresh retry window; the relay starts its workflow. A pending one is left as it is. Null when
 * there is no such delivery.
 */
export async function restartDelivery(tx: Queryable, webhookId: string, deliveryId: string): Promise<boolean | null> {
  const { rowCount } = await tx.query(
    `UPDATE webhook_deliveries SET status = 'pending', generation = generation + 1, dispatched_at = NULL,
       retrying_since = now(), next_attempt_at = now(), delivered_at = NULL
     WHERE webhook_id = $1 AND delivery_id = $2 AND status <> 'pending'`,
    [webhookId, deliveryId],
  );
  if (rowCount === 1) {
    await tx.query(`SELECT pg_notify('webhook_deliveries', '')`);
    return true;
  }
  const { rows } = await tx.query('SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1 AND delivery_id = $2', [webhookId, deliveryId]);
  return rows.length ? false : null;
}

/** The delivery of an event to one endpoint. */
export async function deliveryOf(db: Queryable, eventId: string, webhookId: string): Promise<WebhookDelivery | null> {
  const { rows } = await db.query<{ delivery_id: string }>('SELECT delivery_id FROM webhook_deliveries WHERE event_id = $1', [eventId]);
  return rows[0] ? findDelivery(db, webhookId, rows[0].delivery_id) : null;
}
