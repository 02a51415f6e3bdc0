/**
 * The standalone host's route table. It must match the Encore endpoints (each service's `api.ts`) exactly:
 * tests/unit/route-parity.test.ts reads both and fails when they drift apart.
 */
import { cancelBill, createBill, getBill, listBills, requestClose } from '../bills/bills';
import { listAudit } from '../bills/audit-trail';
import { reconcileBills } from '../bills/reconcile';
import type {
  AddLineItemBody,
  AddLineItemsBody,
  CancelBillBody,
  CreateBillBody,
  ListBillsQuery,
  ListAuditQuery,
  ListLineItemsQuery,
  ReconcileQuery,
} from '../bills/requests';
import type { Principal, Scope } from '../core/auth';
import type { Deps } from '../core/deps';
import type { AppError } from '../core/errors';
import { IDEMPOTENCY_HEADERS, idempotencyKeyOf, type IdempotencyKey } from '../core/idempotency';
import { addLineItem, addLineItems, countRefusedAdd, countRefusedBatch, listLineItems } from '../bills/line-items';
import * as account from '../invoices/invoice-account';
import { getInvoiceFile, retryInvoice, type DocumentFile } from '../invoices/invoices';
import type { InvoiceActionBody, IssueCreditNoteBody, RecordPaymentBody } from '../invoices/requests';
import type { CreateWebhookBody, ListDeliveriesQuery, ListWebhooksQuery, UpdateWebhookBody } from '../webhooks/requests';
import * as webhooks from '../webhooks/webhooks';
import * as customers from '../customers/customers';
import type { CreateCustomerBody, ListCustomersQuery, UpdateCustomerBody } from '../customers/requests';
import type { CreateTaxRateBody } from '../taxes/requests';
import * as taxRates from '../taxes/tax-rates';
import { ingestEvents } from '../usage/events';
import * as meters from '../usage/meters';
import type { CreateMeterBody, IngestEventsBody } from '../usage/requests';
import { getBillUsage } from '../usage/usage';

/**
 * A request as a handler gets it: checked against its route's schemas first (host/server.ts), so
 * its body and query have the shapes the Encore declarations give them.
 */
export interface RouteRequest<Body = unknown, Query = unknown> {
  params: Record<string, string>;
  query: Query;
  body: Body;
  headers: Record<string, string | string[] | undefined>;
  /** Who is calling: set by the route guard (the shared scope when authentication is off). */
  principal: Principal;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  /** What an API key needs to call it (`admin` may call everything). */
  scope: Scope;
  /** Request headers the endpoint reads (Encore `Header<...>` fields). */
  headers: readonly string[];
  handle: (deps: Deps, req: RouteRequest) => Promise<unknown>;
  /** The answer is a file, not JSON (an Encore `api.raw` endpoint). */
  file?: (result: never) => { contentType: string; filename: string; body: Buffer };
  /** Told when the route's schemas refuse a request, which its handler then never sees. */
  refused?: (error: AppError) => void;
}

/** A route whose handler takes the body and query its schemas let through. */
const route = <Body = unknown, Query = unknown>(
  r: Omit<Route, 'handle'> & { handle: (deps: Deps, req: RouteRequest<Body, Query>) => Promise<unknown> },
) => r as Route;

/** The request's idempotency key (either header), in its caller's lane. */
function idempotencyKey(req: RouteRequest): IdempotencyKey | undefined {
  const value = (name: string) => {
    const v = req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  return idempotencyKeyOf(req.principal.key_id, ...IDEMPOTENCY_HEADERS.map(value));
}

export const routes: Route[] = [
  route<CreateBillBody>({
    method: 'POST',
    path: '/bills',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => createBill(d, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<never, ListBillsQuery>({
    method: 'GET',
    path: '/bills',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => listBills(d, r.query),
  }),
  { method: 'GET', path: '/bills/:billId', scope: 'bills:read', headers: [], handle: (d, r) => getBill(d, r.params.billId) },
  {
    method: 'POST',
    path: '/bills/:billId/close',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => requestClose(d, r.params.billId, idempotencyKey(r), r.principal.key_id),
  },
  {
    method: 'POST',
    path: '/bills/:billId/finalize',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => requestClose(d, r.params.billId, idempotencyKey(r), r.principal.key_id, 'POST /bills/:billId/finalize'),
  },
  route<CancelBillBody>({
    method: 'POST',
    path: '/bills/:billId/cancel',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => cancelBill(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<AddLineItemBody>({
    method: 'POST',
    path: '/bills/:billId/line-items',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => addLineItem(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
    refused: countRefusedAdd,
  }),
  route<AddLineItemsBody>({
    method: 'POST',
    path: '/bills/:billId/line-items/batch',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => addLineItems(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
    refused: countRefusedBatch,
  }),
  route<never, ListLineItemsQuery>({
    method: 'GET',
    path: '/bills/:billId/line-items',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => listLineItems(d, r.params.billId, r.query),
  }),
  route<never, ListAuditQuery>({
    method: 'GET',
    path: '/bills/:billId/audit',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => listAudit(d, r.params.billId, r.query),
  }),
  {
    method: 'GET',
    path: '/bills/:billId/invoice',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => getInvoiceFile(d, r.params.billId, r.query as Record<string, unknown>),
    file: (file: DocumentFile) => file,
  },
  {
    method: 'POST',
    path: '/bills/:billId/invoice/retry',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => retryInvoice(d, r.params.billId, idempotencyKey(r)),
  },
  {
    method: 'GET',
    path: '/bills/:billId/invoice/account',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => account.getInvoiceAccount(d, r.params.billId),
  },
  route<RecordPaymentBody>({
    method: 'POST',
    path: '/bills/:billId/invoice/payments',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => account.recordPayment(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<InvoiceActionBody>({
    method: 'POST',
    path: '/bills/:billId/invoice/void',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => account.voidInvoice(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<InvoiceActionBody | undefined>({
    method: 'POST',
    path: '/bills/:billId/invoice/mark-uncollectible',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => account.markUncollectible(d, r.params.billId, r.body ?? {}, idempotencyKey(r), r.principal.key_id),
  }),
  route<IssueCreditNoteBody>({
    method: 'POST',
    path: '/bills/:billId/credit-notes',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => account.issueCreditNote(d, r.params.billId, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  {
    method: 'GET',
    path: '/bills/:billId/credit-notes/:creditNoteId/pdf',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => account.getCreditNoteFile(d, r.params.billId, r.params.creditNoteId, r.query as Record<string, unknown>),
    file: (file: DocumentFile) => file,
  },
  route<never, ReconcileQuery>({
    method: 'GET',
    path: '/admin/reconcile',
    scope: 'admin',
    headers: [],
    handle: (d, r) => reconcileBills(d, r.query),
  }),
  route<CreateCustomerBody>({
    method: 'POST',
    path: '/customers',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => customers.createCustomer(d, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<never, ListCustomersQuery>({
    method: 'GET',
    path: '/customers',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => customers.listCustomers(d, r.query),
  }),
  {
    method: 'GET',
    path: '/customers/:customerId',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => customers.getCustomer(d, r.params.customerId),
  },
  route<UpdateCustomerBody>({
    method: 'PATCH',
    path: '/customers/:customerId',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => customers.updateCustomer(d, r.params.customerId, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  route<CreateTaxRateBody>({
    method: 'POST',
    path: '/tax-rates',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => taxRates.createTaxRate(d, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  {
    method: 'GET',
    path: '/tax-rates',
    scope: 'bills:read',
    headers: [],
    handle: (d) => taxRates.listTaxRates(d),
  },
  route<CreateMeterBody>({
    method: 'POST',
    path: '/meters',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => meters.createMeter(d, r.body, idempotencyKey(r), r.principal.key_id),
  }),
  {
    method: 'GET',
    path: '/meters',
    scope: 'bills:read',
    headers: [],
    handle: (d) => meters.listMeters(d),
  },
  {
    method: 'GET',
    path: '/meters/:code',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => meters.getMeter(d, r.params.code),
  },
  route<IngestEventsBody>({
    method: 'POST',
    path: '/events',
    scope: 'bills:write',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => ingestEvents(d, r.body),
  }),
  {
    method: 'GET',
    path: '/bills/:billId/usage',
    scope: 'bills:read',
    headers: [],
    handle: (d, r) => getBillUsage(d, r.params.billId),
  },
  route<CreateWebhookBody>({
    method: 'POST',
    path: '/webhooks',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.createWebhook(d, r.body, idempotencyKey(r)),
  }),
  route<never, ListWebhooksQuery>({
    method: 'GET',
    path: '/webhooks',
    scope: 'webhooks:manage',
    headers: [],
    handle: (d, r) => webhooks.listWebhooks(d, r.query),
  }),
  {
    method: 'GET',
    path: '/webhooks/:webhookId',
    scope: 'webhooks:manage',
    headers: [],
    handle: (d, r) => webhooks.getWebhook(d, r.params.webhookId),
  },
  route<UpdateWebhookBody>({
    method: 'PATCH',
    path: '/webhooks/:webhookId',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.updateWebhook(d, r.params.webhookId, r.body, idempotencyKey(r)),
  }),
  {
    method: 'DELETE',
    path: '/webhooks/:webhookId',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.deleteWebhook(d, r.params.webhookId, idempotencyKey(r)),
  },
  {
    method: 'POST',
    path: '/webhooks/:webhookId/rotate-secret',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.rotateWebhookSecret(d, r.params.webhookId, idempotencyKey(r)),
  },
  route<never, ListDeliveriesQuery>({
    method: 'GET',
    path: '/webhooks/:webhookId/deliveries',
    scope: 'webhooks:manage',
    headers: [],
    handle: (d, r) => webhooks.listDeliveries(d, r.params.webhookId, r.query),
  }),
  {
    method: 'POST',
    path: '/webhooks/:webhookId/deliveries/:deliveryId/retry',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.retryDelivery(d, r.params.webhookId, r.params.deliveryId, idempotencyKey(r)),
  },
  {
    method: 'POST',
    path: '/webhooks/:webhookId/test',
    scope: 'webhooks:manage',
    headers: IDEMPOTENCY_HEADERS,
    handle: (d, r) => webhooks.testWebhook(d, r.params.webhookId, idempotencyKey(r)),
  },
];
