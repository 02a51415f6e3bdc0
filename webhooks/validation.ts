/**
 * The rules of a webhook request that its shape cannot say (webhooks/requests.ts declares the
 * shape): which URLs may receive events, and which event types there are. Each refusal is a 400
 * naming its field.
 */
import { checkStorable, fieldError } from '../core/validate';
import { EVENT_TYPES } from './types';

export interface UrlRules {
  /** https only (production). */
  httpsOnly: boolean;
}

/** An absolute http(s) URL without credentials or fragment, normalised as URL writes it. */
export function webhookUrl(value: string, rules: UrlRules): string {
  checkStorable({ url: value });
  const url = URL.parse(value);
  if (!url) throw fieldError('url', 'must be an absolute URL');
  if (rules.httpsOnly && url.protocol !== 'https:') throw fieldError('url', 'must be an https:// URL');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fieldError('url', 'must be an http:// or https:// URL');
  // Credentials in a URL end up in logs and screenshots; the signature authenticates us instead.
  if (url.username || url.password) throw fieldError('url', 'must not contain a user name or password');
  if (url.hash) throw fieldError('url', 'must not contain a fragment');
  return url.href;
}

/** A list of known event types, or `["*"]`; duplicates dropped, order kept. */
export function eventTypes(value: string[]): string[] {
  const events = [...new Set(value)];
  for (const e of events) {
    if (e === '*' ? events.length > 1 : !(EVENT_TYPES as readonly string[]).includes(e)) {
      throw fieldError('events', `must list event types from ${EVENT_TYPES.join(', ')}, or be ["*"] alone`);
    }
  }
  return events;
}

export interface CreateWebhookInput {
  url: string;
  events: string[];
  description: string | null;
}

/** A create request as its shape was checked. */
export type CreateWebhookRequest = Pick<CreateWebhookInput, 'url' | 'events'> & { description?: string | null };

export function createWebhookInput(request: CreateWebhookRequest, rules: UrlRules): CreateWebhookInput {
  const description = request.description ?? null;
  checkStorable({ description });
  return { url: webhookUrl(request.url, rules), events: eventTypes(request.events), description };
}

export interface UpdateWebhookInput {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
}

/** Only the fields given change; at least one must be. */
export function updateWebhookInput(request: UpdateWebhookInput, rules: UrlRules): UpdateWebhookInput {
  const input: UpdateWebhookInput = {};
  if (request.url !== undefined) input.url = webhookUrl(request.url, rules);
  if (request.events !== undefined) input.events = eventTypes(request.events);
  if (request.description !== undefined) input.description = request.description;
  if (request.enabled !== undefined) input.enabled = request.enabled;
  if (Object.keys(input).length === 0) throw fieldError('body', 'must change at least one of url, events, description, enabled');
  checkStorable({ description: input.description });
  return input;
}
