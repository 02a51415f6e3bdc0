/** The webhook API's types: what clients send and get back, and the events receivers get. */

/** What a receiver can subscribe to. `ping` is sent only by POST /webhooks/:webhookId/test. */
export type EventType =
  | 'bill.created'
  | 'bill.drafted'
  | 'bill.closed'
  | 'bill.renewed'
  | 'series.cancelled'
  | 'invoice.finalized'
  | 'invoice.sent'
  | 'invoice.failed'
  | 'invoice.payment_recorded'
  | 'invoice.paid'
  | 'invoice.overdue'
  | 'invoice.marked_uncollectible'
  | 'invoice.voided'
  | 'credit_note.issued'
  | 'usage.threshold_reached';
export const EVENT_TYPES: readonly EventType[] = [
  'bill.created',
  'bill.drafted',
  'bill.closed',
  'bill.renewed',
  'series.cancelled',
  'invoice.finalized',
  'invoice.sent',
  'invoice.failed',
  'invoice.payment_recorded',
  'invoice.paid',
  'invoice.overdue',
  'invoice.marked_uncollectible',
  'invoice.voided',
  'credit_note.issued',
  'usage.threshold_reached',
];

/**
 * What a receiver gets, as the JSON body of a POST signed per Standard Webhooks (`webhook-id` is
 * `id`, the same on every attempt). `data` is the full resource right after the change: the bill
 * (as GET /bills/:billId shows it) for bill and series events, the invoice for `invoice.sent` and
 * `invoice.failed`, the invoice's account (InvoiceAccount) for the other invoice events, and
 * `{ payment, invoice }` or `{ credit_note, invoice }` for a payment or a credit note.
 */
export interface WebhookEvent<T = unknown> {
  /** `evt_...`: unique, the same on every attempt and for every endpoint. */
  id: string;
  type: EventType | 'ping';
  /** When the change committed (UTC). */
  created_at: string;
  /** Who made the change: an API key id, `anonymous` (authentication off), `system` (the service's own). */
  actor: string;
  data: T;
}

/** `data` of `invoice.sent` and `invoice.failed`. */
export interface InvoiceEventData {
  bill_id: string;
  invoice_number: string | null;
  status: 'sent' | 'failed';
  /** Where the invoice was emailed (`invoice.sent`). */
  recipient: string | null;
  sent_at: string | null;
  /** Which step failed and why (`invoice.failed`); POST /bills/:billId/invoice/retry starts it again. */
  failed_step: 'generate' | 'deliver' | null;
  error: string | null;
}

/** A registered receiver. Its signing secret is shown only when created or rotated. */
export interface Webhook {
  webhook_id: string;
  url: string;
  /** Event types it gets, or `["*"]` for all. */
  events: string[];
  description: string | null;
  enabled: boolean;
  /** Why it was disabled: by a PATCH, or after failing for WEBHOOK_DISABLE_AFTER_MS (3 days). */
  disabled_reason: string | null;
  disabled_at: string | null;
  /** Since when its deliveries fail (null while they succeed). */
  failing_since: string | null;
  /** Until when the secret before the last rotation still signs alongside the current one. */
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

/** A webhook as created or rotated: with its signing secret, shown this once. */
export interface WebhookWithSecret extends Webhook {
  /** `whsec_...`: verify deliveries with it (any Standard Webhooks library). */
  secret: string;
}

export interface WebhookPage {
  webhooks: Webhook[];
  next_cursor: string | null;
}

export interface DeletedWebhook {
  webhook_id: string;
  deleted: true;
}

/**
 * `pending`: waiting for its next attempt (or in one); `succeeded`: a 2xx came back; `failed`:
 * retried for WEBHOOK_RETRY_FOR_MS (3 days) without success; `cancelled`: the endpoint was
 * disabled. A failed or cancelled delivery can be retried by hand.
 */
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'cancelled';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'succeeded', 'failed', 'cancelled'];

/** One event on its way to one endpoint, with its attempts so far. */
export interface WebhookDelivery {
  delivery_id: string;
  webhook_id: string;
  event: { id: string; type: string; created_at: string };
  status: DeliveryStatus;
  /** Attempts made so far (an attempt cut off by a crash counts: it may have arrived). */
  attempts: number;
  last_attempt_at: string | null;
  /** The HTTP status of the last answer; null when none came (timeout, refused connection). */
  last_status_code: number | null;
  last_error: string | null;
  /** The start of the last answer's body (at most WEBHOOK_RESPONSE_BODY_LIMIT bytes). */
  last_response_body: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

export interface WebhookDeliveryPage {
  deliveries: WebhookDelivery[];
  next_cursor: string | null;
}
