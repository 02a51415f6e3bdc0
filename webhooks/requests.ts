/**
 * What the webhook endpoints take, declared once, as Encore declares request shapes (see
 * invoices/requests.ts for the tags the build reads). The rest is domain rules in
 * webhooks/validation.ts: the URL's scheme and parts, the event types.
 */
import type { IsURL, Max, MatchesRegexp, MaxLen, Min, MinLen } from 'encore.dev/validate';
import type { DeliveryStatus } from './types';

/**
 * A webhook's id (`webhook_id`), as every id of this API: 1-64 characters of A-Z, a-z, 0-9, `_ . : -`.
 * @errorMessage must be 1-64 characters of A-Z, a-z, 0-9, _ . : -
 */
// Path parameters are declared `string & WebhookIdPattern`: see Id in invoices/requests.ts.
export type WebhookIdPattern = MatchesRegexp<'^[A-Za-z0-9_.:-]{1,64}$'>;

/**
 * A delivery's id (`delivery_id`): a lower-case UUID.
 * @errorMessage must be a delivery id (a lower-case UUID)
 */
export type DeliveryIdPattern = MatchesRegexp<'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'>;

/** Where events are POSTed: an absolute URL, https (http only outside production), at most 2048 characters. */
export type WebhookUrl = string & MaxLen<2048> & IsURL;

/**
 * The body of POST /webhooks. A misspelt field is refused, not ignored: the change it meant would
 * otherwise not be made, silently.
 * @additionalProperties false
 */
export interface CreateWebhookBody {
  url: WebhookUrl;
  /**
   * Event types to receive, or `["*"]` for every type.
   * @errorMessage must be a non-empty list of event types, or ["*"]
   */
  events: string[] & MinLen<1>;
  /**
   * Up to 500 characters, for people.
   * @errorMessage { "pattern": "must not be blank" }
   */
  description?: (string & MatchesRegexp<'\\S'> & MaxLen<500>) | null;
}

/**
 * The body of PATCH /webhooks/:webhookId: only the fields given change.
 * @additionalProperties false
 */
export interface UpdateWebhookBody {
  url?: WebhookUrl;
  /** @errorMessage must be a non-empty list of event types, or ["*"] */
  events?: string[] & MinLen<1>;
  /** @errorMessage { "pattern": "must not be blank" } */
  description?: (string & MatchesRegexp<'\\S'> & MaxLen<500>) | null;
  /** false disables it (no new deliveries, pending ones are cancelled); true enables it again. */
  enabled?: boolean;
}

/** The query of GET /webhooks. */
export interface ListWebhooksQuery {
  /**
   * 1-100, default 100.
   * @asType integer
   */
  limit?: number & Min<1> & Max<100>;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

/** The query of GET /webhooks/:webhookId/deliveries. */
export interface ListDeliveriesQuery {
  status?: DeliveryStatus;
  /**
   * 1-100, default 50.
   * @asType integer
   */
  limit?: number & Min<1> & Max<100>;
  cursor?: string;
}
