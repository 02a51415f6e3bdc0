/**
 * Workflow side of the bill's writes: its activities, and the one writer of its line items.
 * Postgres is the only counter: every write runs as a local activity and returns the ledger's
 * snapshot ({version, totals}), which the workflow adopts; it never adds amounts itself. Adds that
 * arrive while a write is in flight wait and go together in the next one: one transaction, one
 * snapshot. A local activity runs inside the workflow task, so an update's acceptance, its write's
 * marker and its answer reach the server in one completion.
 */
import { condition, isCancellation, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import { failureOf, refuseAsFailure, refusalIn, type Refusal } from '../core/refusals';
import type { BillActivities } from './activities';
import type { BillState } from './bill-state';
import type { BillActivitySettings, WriteLineItemsResult, WriteOutcome } from './messages';

/** Regular activities: the bill row's changes (draft, cancel, close) and the mismatch alert. */
export function databaseActivities(s: BillActivitySettings) {
  return proxyActivities<BillActivities>({
    startToCloseTimeout: s.timeoutMs,
    // No attempt limit: a database outage delays a bill, it never drops an accepted change.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
  });
}

/** Local activities: the bill row at the start and every write of line items. */
export function ledgerActivities(s: BillActivitySettings) {
  return proxyLocalActivities<BillActivities>({
    // Below the workflow task timeout (10 s), so a slow attempt is retried before the task times out.
    startToCloseTimeout: s.localTimeoutMs,
    // No attempt limit either; once the backoff passes a second, the SDK waits on a durable timer
    // between attempts instead of holding the workflow task open.
    retry: { initialInterval: s.retryInitialMs, backoffCoefficient: 2, maximumInterval: s.retryMaxIntervalMs },
    localRetryThreshold: 1_000,
  });
}

export type DatabaseActivities = ReturnType<typeof databaseActivities>;
export type LedgerActivities = ReturnType<typeof ledgerActivities>;

/** A write's outcome as an update's answer: stored or applied, else the refusal as the update's failure. */
export function settled(outcome: WriteOutcome): Exclude<WriteOutcome, { status: 'refused' }> {
  if (outcome.status === 'refused') throw failureOf(outcome.refusal);
  return outcome;
}

/**
 * The only writer of line items: waits for queued writes, sends them as one group, adopts the
 * snapshot and answers each update. Runs for the life of the run; `onSettled` hears the currencies
 * the bill held before each group (the workflow shows a new one).
 */
export async function runLedgerWriter(bill: BillState, ledger: LedgerActivities, onSettled: (before: string[]) => void): Promise<void> {
  for (;;) {
    await condition(() => bill.hasWork());
    const group = bill.takeGroup();
    const writes = group.flatMap((q) => q.writes);
    let result: WriteLineItemsResult;
    try {
      refuseAsFailure(() => bill.checkOurs());
      result = await ledger.writeLineItems({ bill_id: bill.bill.bill_id, writes });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Not reached in practice (the activity retries without limit and answers refusals as
      // outcomes). Whatever reaches here stands for the whole group, and its outcome is unknown.
      const found = refusalIn(err);
      const refusal: Refusal =
        found && found.code !== 'unavailable'
          ? { ...found, details: null }
          : { code: 'aborted', message: 'the line items could not be written; retry with the same idempotency key', details: null };
      result = { snapshot: { version: 0, totals: {} }, outcomes: writes.map(() => ({ status: 'refused', refusal })) };
    }
    const before = Object.keys(bill.totals);
    bill.settleGroup(group, result);
    onSettled(before);
  }
}
