/**
 * A typed client of the Fees API for other services: `import { FeesClient } from 'fees-api/client'`.
 *
 * Every endpoint is a method typed with the service's own request and response types. Every
 * mutating call carries an idempotency key, generated once per call (or given) and reused on each
 * retry; a call is retried with exponential backoff and full jitter on network errors, 503, 504,
 * 429 (after Retry-After) and 409 `aborted` (the same request still in flight), never on another
 * 4xx. Each call has a deadline and takes an AbortSignal. Errors are FeesApiError, with the
 * service's error code, message and details.
 */
import { randomUUID } from 'node:crypto';
import type {
  AddLineItemBody,
  AddLineItemsBody,
  CancelBillBody,
  CreateBillBody,
  ListAuditQuery,
  ListBillsQuery,
  ListLineItemsQuery,
  ReconcileQuery,
  RecurringFeeBody,
} from '../bills/requests';
import type { AddedLineItem, AddedLineItems, AuditPage, Bill, BillPage, ClosedBill, LineItemPage, ReconcileReport } from '../bills/types';
import type { CreateCustomerBody, ListCustomersQuery, UpdateCustomerBody } from '../customers/requests';
import type { Customer, CustomerPage } from '../customers/types';
import type { CreateTaxRateBody } from '../taxes/requests';
import type { TaxRate, TaxRateList } from '../taxes/types';
import type { CreateMeterBody, IngestEventsBody } from '../usage/requests';
import type { BillUsage, IngestResult, Meter, MeterList } from '../usage/types';
import type { ErrCode, ErrDetails } from '../core/errors';
import type { InvoiceActionBody, IssueCreditNoteBody, RecordPaymentBody } from '../invoices/requests';
import type {
  CreditNoteIssued,
  InvoiceAccount,
  InvoiceAccountDetails,
  InvoiceVoided,
  PaymentRecorded,
  RetryInvoiceResponse,
} from '../invoices/types';
import type { CreateWebhookBody, ListDeliveriesQuery, ListWebhooksQuery, UpdateWebhookBody } from '../webhooks/requests';
import type { DeletedWebhook, Webhook, WebhookDelivery, WebhookDeliveryPage, WebhookPage, WebhookWithSecret } from '../webhooks/types';

export type {
  AddLineItemBody,
  AddLineItemsBody,
  AddedLineItem,
  AddedLineItems,
  Bill,
  BillPage,
  CancelBillBody,
  ClosedBill,
  CreateBillBody,
  ErrCode,
  ErrDetails,
  LineItemPage,
  ListBillsQuery,
  ListLineItemsQuery,
  ReconcileQuery,
  ReconcileReport,
  RecurringFeeBody,
  RetryInvoiceResponse,
};
// What requests may hold, as the service declares it (the field types carry Encore's validation types).
export type * from '../invoices/requests';
export type * from '../webhooks/requests';
export type * from '../customers/requests';
export type * from '../customers/types';
export type * from '../taxes/requests';
export type * from '../taxes/types';
export type * from '../usage/requests';
export type * from '../usage/types';
// Everything a webhook receiver or manager needs: events, endpoints, deliveries.
export type * from '../webhooks/types';
// Invoices: summaries, accounts, payments, credit notes.
export type * from '../invoices/types';

/** What went wrong, as the service said it; or `deadline_exceeded` / `unavailable` from the client. */
export class FeesApiError extends Error {
  override readonly name = 'FeesApiError';
  constructor(
    /** The Encore error code, e.g. `invalid_argument`, `failed_precondition`, `not_found`. */
    readonly code: ErrCode,
    message: string,
    readonly details: ErrDetails | null,
    /** The HTTP status; 0 when no answer came (network error or deadline). */
    readonly status: number,
    /** The request id the service logged the call under, when it answered. */
    readonly requestId: string | null = null,
    /** Attempts made, retries included. */
    readonly attempts = 1,
  ) {
    super(message);
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included (default 6). */
  maxAttempts: number;
  /** Backoff before the second attempt (default 100 ms); doubles each time, up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface FeesClientOptions {
  /** Where the API listens, e.g. `http://127.0.0.1:4000`. */
  baseUrl: string;
  /** An API key (`fees_...`), sent as a bearer token. */
  token?: string;
  /** The default deadline of a call, retries included (default 30 s). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** For tests and instrumentation; default: the global fetch. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** The key of this logical operation; default: a new UUID, the same for all its retries. */
  idempotencyKey?: string;
  /** Cancels the call, including its retries and the wait between them. */
  signal?: AbortSignal;
  /** This call's deadline, retries included; default: the client's `timeoutMs`. */
  timeoutMs?: number;
}

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, initialDelayMs: 100, maxDelayMs: 5000 };

interface Request {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: object;
  body?: unknown;
  /** Returns the raw bytes instead of JSON (the invoice PDF). */
  binary?: boolean;
}

export class FeesClient {
  private readonly baseUrl: string;
  private readonly retry: RetryPolicy;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: FeesClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.retry.maxAttempts = Math.max(1, Math.floor(this.retry.maxAttempts));
    this.fetchImpl = options.fetch ?? fetch;
  }

  createBill(body: CreateBillBody, opts?: CallOptions): Promise<Bill> {
    return this.call({ method: 'POST', path: '/bills', body }, opts);
  }

  getBill(billId: string, opts?: CallOptions): Promise<Bill> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}` }, opts);
  }

  listBills(query: ListBillsQuery = {}, opts?: CallOptions): Promise<BillPage> {
    return this.call({ method: 'GET', path: '/bills', query }, opts);
  }

  closeBill(billId: string, opts?: CallOptions): Promise<ClosedBill> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/close` }, opts);
  }

  /** Finalizes a draft now (the same as closing it). */
  finalizeBill(billId: string, opts?: CallOptions): Promise<ClosedBill> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/finalize` }, opts);
  }

  cancelBill(billId: string, body: CancelBillBody = {}, opts?: CallOptions): Promise<Bill> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/cancel`, body }, opts);
  }

  addLineItem(billId: string, item: AddLineItemBody, opts?: CallOptions): Promise<AddedLineItem> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/line-items`, body: item }, opts);
  }

  addLineItems(billId: string, body: AddLineItemsBody, opts?: CallOptions): Promise<AddedLineItems> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/line-items/batch`, body }, opts);
  }

  listLineItems(billId: string, query: ListLineItemsQuery = {}, opts?: CallOptions): Promise<LineItemPage> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/line-items`, query }, opts);
  }

  /** Who changed the bill and its invoice, when and why; oldest first. */
  listAudit(billId: string, query: ListAuditQuery = {}, opts?: CallOptions): Promise<AuditPage> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/audit`, query }, opts);
  }

  /** The invoice PDF of a closed bill. */
  getInvoicePdf(billId: string, opts?: CallOptions): Promise<Uint8Array> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/invoice`, binary: true }, opts);
  }

  /** The invoice's EN 16931 UBL 2.1 document in `currency` (needed when the invoice has several). */
  getInvoiceUbl(billId: string, currency?: string, opts?: CallOptions): Promise<Uint8Array> {
    const query = { format: 'ubl', ...(currency ? { currency } : {}) };
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/invoice`, query, binary: true }, opts);
  }

  retryInvoice(billId: string, opts?: CallOptions): Promise<RetryInvoiceResponse> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/invoice/retry` }, opts);
  }

  /** A finalized invoice's account, with its payments and credit notes. */
  getInvoiceAccount(billId: string, opts?: CallOptions): Promise<InvoiceAccountDetails> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/invoice/account` }, opts);
  }

  recordPayment(billId: string, body: RecordPaymentBody, opts?: CallOptions): Promise<PaymentRecorded> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/invoice/payments`, body }, opts);
  }

  issueCreditNote(billId: string, body: IssueCreditNoteBody, opts?: CallOptions): Promise<CreditNoteIssued> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/credit-notes`, body }, opts);
  }

  voidInvoice(billId: string, body: InvoiceActionBody = {}, opts?: CallOptions): Promise<InvoiceVoided> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/invoice/void`, body }, opts);
  }

  markInvoiceUncollectible(billId: string, opts?: CallOptions): Promise<InvoiceAccount> {
    return this.call({ method: 'POST', path: `/bills/${enc(billId)}/invoice/mark-uncollectible` }, opts);
  }

  getCreditNotePdf(billId: string, creditNoteId: string, opts?: CallOptions): Promise<Uint8Array> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/credit-notes/${enc(creditNoteId)}/pdf`, binary: true }, opts);
  }

  createCustomer(body: CreateCustomerBody, opts?: CallOptions): Promise<Customer> {
    return this.call({ method: 'POST', path: '/customers', body }, opts);
  }

  listCustomers(query: ListCustomersQuery = {}, opts?: CallOptions): Promise<CustomerPage> {
    return this.call({ method: 'GET', path: '/customers', query }, opts);
  }

  getCustomer(customerId: string, opts?: CallOptions): Promise<Customer> {
    return this.call({ method: 'GET', path: `/customers/${enc(customerId)}` }, opts);
  }

  /** Invoices already issued keep the customer as it was when they were finalized. */
  updateCustomer(customerId: string, body: UpdateCustomerBody, opts?: CallOptions): Promise<Customer> {
    return this.call({ method: 'PATCH', path: `/customers/${enc(customerId)}`, body }, opts);
  }

  /** A rate never changes: the same code again with the same values answers it. */
  createTaxRate(body: CreateTaxRateBody, opts?: CallOptions): Promise<TaxRate> {
    return this.call({ method: 'POST', path: '/tax-rates', body }, opts);
  }

  listTaxRates(opts?: CallOptions): Promise<TaxRateList> {
    return this.call({ method: 'GET', path: '/tax-rates' }, opts);
  }

  /** A meter never changes: the same code again with the same values answers it. */
  createMeter(body: CreateMeterBody, opts?: CallOptions): Promise<Meter> {
    return this.call({ method: 'POST', path: '/meters', body }, opts);
  }

  listMeters(opts?: CallOptions): Promise<MeterList> {
    return this.call({ method: 'GET', path: '/meters' }, opts);
  }

  getMeter(code: string, opts?: CallOptions): Promise<Meter> {
    return this.call({ method: 'GET', path: `/meters/${enc(code)}` }, opts);
  }

  /** 1-1,000 usage events, each answered accepted, duplicate or refused; safe to send again as they were. */
  ingestEvents(body: IngestEventsBody, opts?: CallOptions): Promise<IngestResult> {
    return this.call({ method: 'POST', path: '/events', body }, opts);
  }

  /** A priced bill's usage so far: per meter the aggregate, the estimate and the tiers applied. */
  getBillUsage(billId: string, opts?: CallOptions): Promise<BillUsage> {
    return this.call({ method: 'GET', path: `/bills/${enc(billId)}/usage` }, opts);
  }

  /** Needs the `admin` scope. */
  reconcile(query: ReconcileQuery = {}, opts?: CallOptions): Promise<ReconcileReport> {
    return this.call({ method: 'GET', path: '/admin/reconcile', query }, opts);
  }

  // Webhooks: these need the `webhooks:manage` scope (or `admin`).

  /** Registers a receiver; the answer's `secret` is shown this once. */
  createWebhook(body: CreateWebhookBody, opts?: CallOptions): Promise<WebhookWithSecret> {
    return this.call({ method: 'POST', path: '/webhooks', body }, opts);
  }

  listWebhooks(query: ListWebhooksQuery = {}, opts?: CallOptions): Promise<WebhookPage> {
    return this.call({ method: 'GET', path: '/webhooks', query }, opts);
  }

  getWebhook(webhookId: string, opts?: CallOptions): Promise<Webhook> {
    return this.call({ method: 'GET', path: `/webhooks/${enc(webhookId)}` }, opts);
  }

  updateWebhook(webhookId: string, body: UpdateWebhookBody, opts?: CallOptions): Promise<Webhook> {
    return this.call({ method: 'PATCH', path: `/webhooks/${enc(webhookId)}`, body }, opts);
  }

  deleteWebhook(webhookId: string, opts?: CallOptions): Promise<DeletedWebhook> {
    return this.call({ method: 'DELETE', path: `/webhooks/${enc(webhookId)}` }, opts);
  }

  /** A new secret, shown this once; the previous one keeps signing alongside it for 24 hours. */
  rotateWebhookSecret(webhookId: string, opts?: CallOptions): Promise<WebhookWithSecret> {
    return this.call({ method: 'POST', path: `/webhooks/${enc(webhookId)}/rotate-secret` }, opts);
  }

  listWebhookDeliveries(webhookId: string, query: ListDeliveriesQuery = {}, opts?: CallOptions): Promise<WebhookDeliveryPage> {
    return this.call({ method: 'GET', path: `/webhooks/${enc(webhookId)}/deliveries`, query }, opts);
  }

  retryWebhookDelivery(webhookId: string, deliveryId: string, opts?: CallOptions): Promise<WebhookDelivery> {
    return this.call({ method: 'POST', path: `/webhooks/${enc(webhookId)}/deliveries/${enc(deliveryId)}/retry` }, opts);
  }

  /** Sends a `ping` event to this webhook alone. */
  testWebhook(webhookId: string, opts?: CallOptions): Promise<WebhookDelivery> {
    return this.call({ method: 'POST', path: `/webhooks/${enc(webhookId)}/test` }, opts);
  }

  private async call<T>(req: Request, opts: CallOptions = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    const deadlineAt = Date.now() + timeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    // One key per logical operation: every retry of it sends the same one.
    const key = req.method !== 'GET' ? (opts.idempotencyKey ?? randomUUID()) : undefined;
    const url = this.baseUrl + req.path + queryString(req.query);
    let last: FeesApiError | null = null;
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      let wait: number | null = null;
      try {
        const res = await this.fetchImpl(url, {
          method: req.method,
          headers: {
            accept: req.binary ? 'application/pdf' : 'application/json',
            ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(key ? { 'idempotency-key': key } : {}),
            ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
          },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
          signal,
        });
        if (res.ok) return (req.binary ? new Uint8Array(await res.arrayBuffer()) : await res.json()) as T;
        last = await errorOf(res, attempt);
        if (!isRetryable(last)) throw last;
        wait = retryAfterMs(res.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof FeesApiError && err === last && !isRetryable(err)) throw err;
        if (signal.aborted) throw abortError(opts.signal, timeoutMs, attempt, last);
        if (!(err instanceof FeesApiError)) {
          // No answer: the request may or may not have been applied; the key makes the retry safe.
          last = new FeesApiError('unavailable', `no answer from the Fees API: ${(err as Error).message}`, null, 0, null, attempt);
        }
      }
      if (attempt === this.retry.maxAttempts) break;
      const backoff = Math.random() * Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1));
      const delay = Math.max(wait ?? 0, backoff);
      // The service asked for a longer pause than the deadline leaves: its answer is the result.
      if (Date.now() + delay >= deadlineAt) break;
      await sleep(delay, signal).catch(() => {
        throw abortError(opts.signal, timeoutMs, attempt, last);
      });
    }
    throw last!;
  }
}

/**
 * Retried: no answer, overload and unavailability, and `aborted` (a duplicate of a request still in
 * flight, or an invoice still being written), but not an invoice that failed: only a retry of the
 * invoice changes that.
 */
function isRetryable(err: FeesApiError): boolean {
  const { status, code, details } = err;
  if (status === 409) return code === 'aborted' && details?.invoice_status !== 'failed';
  return status === 0 || status === 503 || status === 504 || status === 429;
}

async function errorOf(res: Response, attempt: number): Promise<FeesApiError> {
  const requestId = res.headers.get('x-request-id');
  let body: { code?: string; message?: string; details?: ErrDetails | null } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not the Encore error body (a proxy's answer): described by the status below
  }
  const code = (typeof body.code === 'string' ? body.code : res.status === 503 ? 'unavailable' : 'unknown') as ErrCode;
  return new FeesApiError(code, body.message ?? `HTTP ${res.status}`, body.details ?? null, res.status, requestId, attempt);
}

function abortError(callerSignal: AbortSignal | undefined, timeoutMs: number, attempts: number, last: FeesApiError | null): unknown {
  // The caller's own reason, whatever it is, as AbortSignal users expect.
  if (callerSignal?.aborted) return callerSignal.reason;
  const cause = last ? ` (last: ${last.code}: ${last.message})` : '';
  return new FeesApiError(
    'deadline_exceeded',
    `no answer within the ${timeoutMs} ms deadline${cause}`,
    null,
    0,
    last?.requestId ?? null,
    attempts,
  );
}

/** Retry-After in seconds or as an HTTP date. */
function retryAfterMs(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const enc = encodeURIComponent;

function queryString(query: object | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}
