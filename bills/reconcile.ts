/**
 * Reconciliation: a bill's money is recorded three times and the three must agree: the sum of its
 * line items (the ledger), bill_totals (kept by the insert trigger, final once closed) and, while
 * the bill is open, its workflow's live totals. An add in flight is in the database a moment
 * before the workflow counts it, so an open bill that differs is read again, both sides, before it
 * is reported.
 */
import { dataConverter } from '../core/payload-codec';
import { QueryRejectedError, WorkflowClient } from '@temporalio/client';
import type { Deps } from '../core/deps';
import { isWorkflowGone } from '../core/temporal';
import type { LiveBill } from './messages';
import { reconciliationRecords, type ReconciliationRecord } from './store';
import { invoiceBalanceRecords, toAmounts, type InvoiceBalanceRecord } from '../invoices/account-store';
import { statusOf } from '../invoices/account-rules';
import type { ReconcileQuery } from './requests';
import type { BillDifference, InvoiceDifference, ReconcileReport, TotalsText } from './types';
import { usageDifferences } from './usage-lines';
import { queryBill } from './workflow-client';

export type { BillDifference, DifferenceKind, InvoiceDifference, ReconcileReport, TotalsText } from './types';

export interface ReconcileOptions {
  /** Only these bills; all bills when absent. */
  billIds?: string[];
  /** Live queries in flight at once. */
  concurrency?: number;
  /** How often, and how far apart, an open bill that differs is read again. */
  settleAttempts?: number;
  settleMs?: number;
  /**
   * Deadline of one live query. Longer than a request's: a sweep over every open bill mostly meets
   * workflows the worker's cache has evicted, and one with a long run replays its history first
   * (seen here: a bill of 560 single adds missed 2 s five times in a sweep of 10,001 bills).
   */
  queryTimeoutMs?: number;
}

function sameTotals(a: TotalsText, b: TotalsText): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    // A currency with nothing in it is the same as an absent one.
    const x = a[k] ?? { amount: '0', count: '0' };
    const y = b[k] ?? { amount: '0', count: '0' };
    if (BigInt(x.amount) !== BigInt(y.amount) || BigInt(x.count) !== BigInt(y.count)) return false;
  }
  return true;
}

function liveText(live: LiveBill): TotalsText {
  return Object.fromEntries(live.totals.map((t) => [t.currency, { amount: String(t.amount), count: String(t.line_item_count) }]));
}

type LiveAnswer = { live: LiveBill } | { missing: true } | { unreachable: true };

async function queryLive(deps: Deps, workflows: WorkflowClient, billId: string, timeoutMs: number): Promise<LiveAnswer> {
  try {
    return { live: await queryBill(deps, billId, timeoutMs, workflows) };
  } catch (err) {
    return err instanceof QueryRejectedError || isWorkflowGone(err) ? { missing: true } : { unreachable: true };
  }
}

/** Queries that a workflow which is no longer running refuses (by default Temporal answers them from history). */
function runningWorkflows(deps: Deps): WorkflowClient {
  return new WorkflowClient({
    connection: deps.temporal.connection,
    namespace: deps.config.temporal.namespace,
    // The service's own converter: with encryption on, the answers are sealed.
    dataConverter: dataConverter(deps.config),
    queryRejectCondition: 'NOT_OPEN',
  });
}

/** Checks one open bill against its workflow; null when they agree (perhaps after settling). */
async function checkOpenBill(
  deps: Deps,
  workflows: WorkflowClient,
  first: ReconciliationRecord,
  attempts: number,
  settleMs: number,
  timeoutMs: number,
): Promise<BillDifference | null> {
  let record = first;
  let difference: BillDifference | null = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) {
      await new Promise((r) => setTimeout(r, settleMs));
      const [again] = await reconciliationRecords(deps.db, [record.bill_id]);
      record = again;
    }
    if (!sameTotals(record.line_items, record.stored)) {
      return { ...record, kind: 'stored_vs_line_items', live: null };
    }
    if (record.status === 'closed') return null; // closed meanwhile: its final totals were checked above
    const answer = await queryLive(deps, workflows, record.bill_id, timeoutMs);
    if ('live' in answer) {
      if ((answer.live.status === 'open' || answer.live.status === 'draft') && sameTotals(liveText(answer.live), record.stored))
        return null;
      // A closing bill is read again: its row turns closed when the close commits.
      difference = { ...record, kind: 'live_vs_stored', live: liveText(answer.live) };
    } else {
      difference = { ...record, kind: 'missing' in answer ? 'workflow_not_running' : 'workflow_unreachable', live: null };
    }
  }
  return difference;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

export async function reconcile(deps: Deps, options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const started = Date.now();
  const { concurrency = 32, settleAttempts = 5, settleMs = 200 } = options;
  const queryTimeoutMs = options.queryTimeoutMs ?? Math.max(deps.config.queryTimeoutMs, 10_000);
  const records = await reconciliationRecords(deps.db, options.billIds ?? null);
  const databaseMs = Date.now() - started;
  const differences: BillDifference[] = [];
  const open: ReconciliationRecord[] = [];
  let lineItems = 0n;
  for (const r of records) {
    for (const t of Object.values(r.line_items)) lineItems += BigInt(t.count);
    if (r.status === 'open') open.push(r);
    else if (!sameTotals(r.line_items, r.stored)) differences.push({ ...r, kind: 'stored_vs_line_items', live: null });
  }
  const workflows = runningWorkflows(deps);
  await forEachLimited(open, concurrency, async (r) => {
    const d = await checkOpenBill(deps, workflows, r, settleAttempts, settleMs, queryTimeoutMs);
    if (d) differences.push(d);
  });
  differences.sort((a, b) => a.bill_id.localeCompare(b.bill_id));
  const invoices = await invoiceDifferences(deps, options.billIds ?? null);
  const usage = await usageDifferences(deps.db, options.billIds ?? null);
  return {
    ok: differences.length === 0 && invoices.differences.length === 0 && usage.differences.length === 0,
    checked_at: new Date(started).toISOString(),
    bills_checked: records.length,
    open_bills_checked_live: open.length,
    line_items_checked: lineItems.toString(),
    differences,
    invoices_checked: invoices.checked,
    invoice_differences: invoices.differences,
    usage_checked: usage.checked,
    usage_differences: usage.differences,
    duration_ms: Date.now() - started,
    database_ms: databaseMs,
    live_ms: Date.now() - started - databaseMs,
  };
}

/**
 * Invoices: each currency's balance must equal what it sums (the bill's final total, its credit
 * notes' lines, its payments), and the status must be the one its amounts and dates give.
 */
async function invoiceDifferences(deps: Deps, billIds: string[] | null): Promise<{ checked: number; differences: InvoiceDifference[] }> {
  const records = await invoiceBalanceRecords(deps.db, billIds);
  const byBill = new Map<string, InvoiceBalanceRecord[]>();
  for (const r of records) byBill.set(r.bill_id, [...(byBill.get(r.bill_id) ?? []), r]);
  const differences: InvoiceDifference[] = [];
  const now = Date.now();
  for (const rows of byBill.values()) {
    const [first] = rows;
    const balances = rows.filter((r) => r.currency !== null) as (InvoiceBalanceRecord & { currency: string })[];
    const iso = (d: Date | null) => (d ? d.toISOString() : null);
    let expected = statusOf({
      due_at: first.due_at.toISOString(),
      overdue_at: iso(first.overdue_at),
      uncollectible_at: iso(first.uncollectible_at),
      voided_at: iso(first.voided_at),
      amounts: toAmounts(balances.map((b) => ({ ...b, tax: '0' }))),
    });
    // Its timer fires at due_at: a minute later, an invoice with something due is overdue.
    if ((expected === 'open' || expected === 'partially_paid') && first.due_at.getTime() < now - OVERDUE_LAG_MS) expected = 'overdue';
    const rowsToCheck = balances.length > 0 ? balances : [{ ...first, currency: '' }];
    for (const r of rowsToCheck) {
      if (r.total === r.invoiced && r.credited === r.credit_notes && r.paid === r.payments && r.status === expected) continue;
      const { bill_id, invoice_number, currency, status, total, invoiced, credited, credit_notes, paid, payments } = r;
      differences.push({
        bill_id,
        invoice_number,
        currency,
        status,
        expected_status: expected,
        total,
        invoiced,
        credited,
        credit_notes,
        paid,
        payments,
      });
    }
  }
  return { checked: byBill.size, differences };
}

/** How late an overdue mark may be before reconciliation reports it (the timer, a busy worker). */
const OVERDUE_LAG_MS = 60_000;

/** The admin endpoint: every bill, or the one named by `bill_id`. */
export async function reconcileBills(deps: Deps, query: ReconcileQuery): Promise<ReconcileReport> {
  return reconcile(deps, { billIds: query.bill_id === undefined ? undefined : [query.bill_id] });
}
