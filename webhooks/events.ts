/**
 * The outbox: the features that change bills and invoices record their events here, inside the
 * transaction of the change (so a rolled-back change emits nothing and a committed one cannot
 * lose its event). webhook_emit() (a function of the schema) writes the event and one delivery per
 * subscribed, enabled endpoint; the relay hands each delivery to Temporal.
 */
import type { Queryable } from '../core/db';
import type { EventType } from './types';

/**
 * Records `type` with `data` (the resource as it is now) in the caller's transaction, made by
 * `actor` (an API key id, `anonymous`, or `system` by default); returns the event id. With
 * `onlyWebhookId` it goes to that endpoint alone (a test ping), subscribed or not.
 */
export async function emitEvent(
  tx: Queryable,
  type: EventType | 'ping',
  data: unknown,
  options: { actor?: string; onlyWebhookId?: string } = {},
): Promise<string> {
  const { rows } = await tx.query<{ id: string }>('SELECT webhook_emit($1, $2::json, $3, $4) AS id', [
    type,
    JSON.stringify(data),
    options.onlyWebhookId ?? null,
    options.actor ?? 'system',
  ]);
  return rows[0].id;
}

/**
 * The same as an SQL expression, for a statement that makes its change and records the event in
 * one round trip: `emitSql(typeParam, dataParam, actorParam)` with the numbers of the statement's parameters.
 */
export const emitSql = (typeParam: number, dataParam: number, actorParam: number) =>
  `webhook_emit($${typeParam}, $${dataParam}::json, NULL, $${actorParam})`;
