/**
 * Bill use cases, shared by the Encore endpoints and the standalone host. One bill reads its totals
 * live from its workflow while open; closed bills, listings and open bills whose workflow is slow
 * read them from Postgres, whose running totals are exact for every committed line item.
 */
import { WithStartWorkflowOperation } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { v5 as uuidv5, v7 as uuidv7 } from 'uuid';
import type { Actor } from '../core/audit';
import type { Deps } from '../core/deps';
import { idempotently } from '../core/deps';
import { AppError, failedPrecondition } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { totalsFallbacks } from '../core/metrics';
import { toAppError, withDeadline, workflowStartOptions } from '../core/temporal';
import { decodeCursor, encodeCursor, fieldError, isId, isIsoInstant, pageSize } from '../core/validate';
import { findCustomer } from '../customers/store';
import { checkTaxRateCodes } from '../taxes/tax-rates';
import { requireMeters } from '../usage/meters';
import { getBillUsage } from '../usage/usage';
import { INVOICE_STATUSES, PAYMENT_STATUSES } from '../invoices/types';
import { listLineItemsPage } from './line-items';
import { requireBill } from './lookup';
import { billWorkflowId, cancelSeriesUpdate, closeBillUpdate, openBillUpdate, type LiveBill } from './messages';
import { billSearchAttributes, billSummary } from './search-attributes';
import { newBillRow, toBill } from './resource';
import { findBill, selectBillsPage, type BillRow } from './store';
import type { CancelBillBody, CreateBillBody, ListBillsQuery } from './requests';
import type { Bill, BillHeader, BillPage, ClosedBill } from './types';
import { createBillInput, type CreateBillInput } from './validation';
import { billLifecycleWorkflow } from './workflow';
import { queryBill, updateBill } from './workflow-client';

export type { BillPage, ClosedBill } from './types';

// Fixed namespace: a bill id generated from an idempotency key is the same on every retry.
const BILL_ID_NAMESPACE = '2d8f4b8e-3f0a-4c55-9f7e-1c9a3b6d5e21';

/** Live totals for open bills in parallel, each within `timeoutMs`; the row's stored totals otherwise. */
async function withLiveTotals(deps: Deps, rows: BillRow[], timeoutMs: number): Promise<Bill[]> {
  const live = await Promise.all(
    rows.map((row) => (row.status === 'closed' ? Promise.resolve(null) : queryLive(deps, row.bill_id, timeoutMs))),
  );
  return rows.map((row, i) => toBill(row, live[i]));
}

async function queryLive(deps: Deps, billId: string, timeoutMs: number): Promise<LiveBill | null> {
  try {
    return await queryBill(deps, billId, timeoutMs);
  } catch {
    totalsFallbacks.inc();
    return null; // a slow or missing workflow never fails a read: stored totals stand in
  }
}

/**
 * What identifies a create request: what the client sent. A period end computed from the clock
 * differs on every retry; the one the client gave does not.
 */
export function requestedBill(input: CreateBillInput) {
  const { requested_period_end, customer_id, tax_rates, prices, usage_alerts, ...rest } = input;
  // Named only when given: a request without them is the same request as before they existed.
  return {
    ...rest,
    billing_period_end: requested_period_end,
    customer_id: customer_id ?? undefined,
    tax_rates: tax_rates ?? undefined,
    prices: prices ?? undefined,
    usage_alerts: usage_alerts ?? undefined,
  };
}

/** The customer and the tax rates a bill names must exist (a customer's email may stand in for customer_email). */
async function checkParties(deps: Deps, input: CreateBillInput): Promise<void> {
  if (input.customer_id !== null && !(await findCustomer(deps.db, input.customer_id))) {
    throw fieldError('customer_id', `names customer ${input.customer_id}, which does not exist (POST /customers creates one)`);
  }
  await checkTaxRateCodes(deps, input.tax_rates, 'tax_rates');
  const meters = (input.prices ?? []).map((p) => p.meter);
  await requireMeters(deps, meters, (code) => `prices[${meters.indexOf(code)}].meter`);
}

export async function createBill(deps: Deps, body: CreateBillBody, key: IdempotencyKey | undefined, actor: Actor): Promise<Bill> {
  const now = new Date();
  const parsed = createBillInput(body, now);
  await checkParties(deps, parsed);
  const requested = requestedBill(parsed);
  const { requested_period_end: _, ...input } = parsed;
  return idempotently(deps, key, 'POST /bills', fingerprint('POST /bills', requested), async (seed) => {
    // With a key, a generated id is derived from it (in its caller's lane), so a retry after a
    // lost answer finds the bill its first attempt created instead of creating a second one.
    const billId = input.bill_id ?? (seed ? uuidv5(seed, BILL_ID_NAMESPACE) : uuidv7());
    const customerPrivate = deps.config.payloadKeys !== undefined;
    const { bill_id: _, ...fields } = input;
    const header: BillHeader = {
      ...fields,
      bill_id: billId,
      billing_period_start: now.toISOString(),
      created_at: now.toISOString(),
      request_fingerprint: fingerprint('bill', { ...requested, bill_id: billId }),
      // A recurring bill starts its series; the bills of later periods join it.
      series_id: input.interval ? billId : null,
      previous_bill_id: null,
      grace_period: input.grace_period ?? 'PT0S',
      payment_terms: input.payment_terms ?? 'P30D',
      created_by: actor,
    };
    const startWorkflowOperation = new WithStartWorkflowOperation(billLifecycleWorkflow, {
      workflowId: billWorkflowId(billId),
      ...workflowStartOptions(deps.config),
      args: [
        {
          bill: header,
          continueAsNewAfterItems: deps.config.continueAsNewAfterItems,
          activitySettings: deps.config.billActivities,
          ...(customerPrivate ? { customerPrivate } : {}),
        },
      ],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: billSearchAttributes(header, 'open', [], customerPrivate),
      staticSummary: billSummary(header),
    });
    try {
      const live = await withDeadline(deps.temporal, deps.config.updateTimeoutMs, () =>
        deps.temporal.workflow.executeUpdateWithStart(openBillUpdate, { startWorkflowOperation }),
      );
      // A bill closed long ago whose workflow history has expired: answer from Postgres.
      if (live.status === 'closed') return getBill(deps, billId);
      return toBill(newBillRow(header), live);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw toAppError(err);
      // The id is taken. A retry of the very same request gets the bill; anything else conflicts.
      const existing = await findBill(deps.db, billId);
      if (existing?.request_fingerprint === header.request_fingerprint) return getBill(deps, billId);
      if (existing === null) throw new AppError('aborted', `bill ${billId} is being created by another request; retry`);
      throw new AppError('already_exists', `bill ${billId} already exists`, { bill_id: billId });
    }
  });
}

export async function getBill(deps: Deps, billId: string): Promise<Bill> {
  const row = await requireBill(deps.db, billId);
  const [bill] = await withLiveTotals(deps, [row], deps.config.queryTimeoutMs);
  // A bill with prices shows its usage so far (for a closed one, what its close rated).
  return row.prices?.length ? { ...bill, usage: (await getBillUsage(deps, billId)).meters } : bill;
}

/** What a listing asks the store for: filters, page size and position, and where totals come from. */
export function billsPageQuery(query: ListBillsQuery, maxLimit: number) {
  // What the listing wrote: its last bill's created_at and id, each as strict as a body field.
  const cursor = decodeCursor(query.cursor, (p) => p.length === 2 && isIsoInstant(p[0]) && isId(p[1]));
  return {
    status: query.status ?? null,
    // invoice_status names a delivery state or a payment state.
    invoice_status: INVOICE_STATUSES.find((s) => s === query.invoice_status) ?? null,
    payment_status: PAYMENT_STATUSES.find((s) => s === query.invoice_status) ?? null,
    series_id: query.series_id ?? null,
    limit: pageSize(query.limit, Math.min(20, maxLimit), maxLimit),
    after: cursor ? { created_at: cursor[0] as string, bill_id: cursor[1] as string } : null,
    live: query.totals === 'live',
  };
}

/**
 * A page of bills in one query, totals from Postgres (`totals_source: "stored"`, with their
 * version); `totals=live` asks each open bill's workflow instead, as a single bill does.
 */
export async function listBills(deps: Deps, query: ListBillsQuery): Promise<BillPage> {
  const { live, ...q } = billsPageQuery(query, deps.config.listing.billsMaxLimit);
  const rows = await selectBillsPage(deps.db, { ...q, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    bills: live ? await withLiveTotals(deps, page, deps.config.listQueryTimeoutMs) : page.map((row) => toBill(row, null)),
    next_cursor: rows.length > q.limit ? encodeCursor([last.created_at, last.bill_id]) : null,
  };
}

export const CLOSE_LINE_ITEMS_LIMIT = 1000;

/**
 * Closes a bill now (POST /bills/:billId/close), or finalizes a draft (POST /bills/:billId/finalize,
 * the same request under its own name): final totals, its invoice numbered and sent. The
 * workflow's closeBill activity does the writing.
 */
export async function requestClose(
  deps: Deps,
  billId: string,
  key: IdempotencyKey | undefined,
  actor: Actor,
  operation: 'POST /bills/:billId/close' | 'POST /bills/:billId/finalize' = 'POST /bills/:billId/close',
): Promise<ClosedBill> {
  return idempotently(deps, key, operation, fingerprint(operation, { bill_id: billId }), async () => {
    // A completed workflow ('gone') means the bill closed already: answer with the same final bill.
    await updateBill(deps, billId, closeBillUpdate, { actor });
    const row = await requireBill(deps.db, billId);
    if (row.status !== 'closed') throw new AppError('unavailable', `bill ${billId} is not closed yet; retry`);
    const [bill] = await withLiveTotals(deps, [row], deps.config.queryTimeoutMs);
    const page = await listLineItemsPage(deps, billId, CLOSE_LINE_ITEMS_LIMIT, null);
    return { bill, ...page };
  });
}

/**
 * Cancels a recurring bill's series: it will not renew. The bill closes at the end of its period,
 * or now with `close_now`. Cancelling again answers the same bill.
 */
export async function cancelBill(
  deps: Deps,
  billId: string,
  body: CancelBillBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<Bill> {
  const input = { close_now: body.close_now === true };
  const operation = 'POST /bills/:billId/cancel';
  return idempotently(deps, key, operation, fingerprint(operation, { bill_id: billId, ...input }), async () => {
    if ((await updateBill(deps, billId, cancelSeriesUpdate, { ...input, actor })) === 'gone') {
      // Its workflow has completed: the bill closed, cancelled or renewed.
      const row = await requireBill(deps.db, billId);
      if (!row.interval) throw failedPrecondition('only a recurring bill has a series to cancel; close this one instead');
      if (!row.cancelled_at) {
        const next = row.next_bill_id ? `; its series continues with bill ${row.next_bill_id}` : '';
        throw failedPrecondition(`bill ${billId} has ended${next}`, { status: 'closed', next_bill_id: row.next_bill_id });
      }
    }
    return getBill(deps, billId);
  });
}
