/** Request parsing for the webhook endpoints: every refusal is a 400 naming its field. */
import {
  asBody,
  decodeCursor,
  fieldError,
  intParam,
  isId,
  isIsoInstant,
  isStorableText,
  optionalString,
  type Body,
} from '../core/validate';
import { EVENT_TYPES, DELIVERY_STATUSES, type DeliveryStatus } from './types';

export interface UrlRules {
  /** https only (production). */
  httpsOnly: boolean;
}

/** An absolute http(s) URL without credentials or fragment, normalised as URL writes it. */
export function parseUrl(value: unknown, rules: UrlRules): URL {
  if (typeof value !== 'string') throw fieldError('url', value === undefined || value === null ? 'is required' : 'must be a string');
  if (value.length > 2048 || !isStorableText(value)) throw fieldError('url', 'must be a URL of at most 2048 characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fieldError('url', 'must be an absolute URL');
  }
  if (rules.httpsOnly && url.protocol !== 'https:') throw fieldError('url', 'must be an https:// URL');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fieldError('url', 'must be an http:// or https:// URL');
  // Credentials in a URL end up in logs and screenshots; the signature authenticates us instead.
  if (url.username || url.password) throw fieldError('url', 'must not contain a user name or password');
  if (url.hash) throw fieldError('url', 'must not contain a fragment');
  return url;
}

/** A list of known event types, or `["*"]`; duplicates dropped, order kept. */
export function parseEvents(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw fieldError('events', 'must be a non-empty list of event types, or ["*"]');
  const events = [...new Set(value)];
  for (const e of events) {
    if (e === '*' ? events.length > 1 : !(EVENT_TYPES as readonly unknown[]).includes(e)) {
      throw fieldError('events', `must list event types from ${EVENT_TYPES.join(', ')}, or be ["*"] alone`);
    }
  }
  return events as string[];
}

export interface CreateWebhookInput {
  url: string;
  events: string[];
  description: string | null;
}

export function parseCreateWebhook(body: unknown, rules: UrlRules): CreateWebhookInput {
  const b = asBody(body);
  refuseUnknown(b, ['url', 'events', 'description']);
  return { url: parseUrl(b.url, rules).href, events: parseEvents(b.events), description: optionalString(b, 'description', 500) };
}

export interface UpdateWebhookInput {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
}

export function parseUpdateWebhook(body: unknown, rules: UrlRules): UpdateWebhookInput {
  const b = asBody(body);
  refuseUnknown(b, ['url', 'events', 'description', 'enabled']);
  const input: UpdateWebhookInput = {};
  if (b.url !== undefined) input.url = parseUrl(b.url, rules).href;
  if (b.events !== undefined) input.events = parseEvents(b.events);
  if (b.description !== undefined) input.description = optionalString(b, 'description', 500);
  if (b.enabled !== undefined) {
    if (typeof b.enabled !== 'boolean') throw fieldError('enabled', 'must be true or false');
    input.enabled = b.enabled;
  }
  if (Object.keys(input).length === 0) throw fieldError('body', 'must change at least one of url, events, description, enabled');
  return input;
}

/** A misspelt field would otherwise be ignored silently and the change not made. */
function refuseUnknown(b: Body, known: string[]): void {
  const unknown = Object.keys(b).find((k) => !known.includes(k));
  if (unknown !== undefined) throw fieldError(unknown, `is not a field of this request (${known.join(', ')})`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseDeliveryId(value: unknown): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw fieldError('deliveryId', 'must be a delivery id (a lower-case UUID)');
  return value;
}

export interface Paging {
  limit: number;
  after: [string, string] | null;
}

const cursorOf = (isKey: (v: unknown) => boolean) => (p: unknown[]) => p.length === 2 && isIsoInstant(p[0]) && isKey(p[1]);

/** A page of webhooks: their cursor holds (created_at, webhook_id). */
export function parsePaging(query: { limit?: unknown; cursor?: unknown }): Paging {
  return {
    limit: intParam(query.limit, 'limit', 100, 1, 100),
    after: decodeCursor(query.cursor, cursorOf(isId)) as [string, string] | null,
  };
}

export function parseDeliveryQuery(query: {
  status?: unknown;
  limit?: unknown;
  cursor?: unknown;
}): Paging & { status: DeliveryStatus | null } {
  const status = query.status === undefined || query.status === '' ? null : query.status;
  if (status !== null && !(DELIVERY_STATUSES as readonly unknown[]).includes(status)) {
    throw fieldError('status', `must be one of ${DELIVERY_STATUSES.join(', ')}`);
  }
  return {
    limit: intParam(query.limit, 'limit', 50, 1, 100),
    // (created_at, delivery_id): a forged id that is not a UUID is refused here, not by Postgres.
    after: decodeCursor(
      query.cursor,
      cursorOf((v) => typeof v === 'string' && UUID.test(v)),
    ) as [string, string] | null,
    status: status as DeliveryStatus | null,
  };
}
