/**
 * Every committed history (tests/replay/histories, recorded by `npm run record-histories`) replays
 * against the current workflow code. A change that would break bills already running (a command
 * added, removed or reordered without patched()) fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Runtime, Worker } from '@temporalio/worker';
import { sdkRunLogger } from '../helpers/run-logs';
import { historyFromFile } from './history-file';

const DIR = path.join(__dirname, 'histories');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

it('has the recorded scenarios', () => {
  expect(files.map((f) => f.replace(/\.json$/, ''))).toEqual(
    expect.arrayContaining([
      'close-by-request',
      'close-by-timer',
      'continue-as-new-first-run',
      'continue-as-new-last-run',
      'post-process-delivered',
      'post-process-failed',
      'recurring-cancelled',
      'recurring-renewed',
      'rejected-updates',
      'staged-batches-first-run',
      'staged-batches-last-run',
      'totals-mismatch-at-close',
      'totals-mismatch-reported',
      // Ledger snapshots (migration 7), and a bill of the previous release taken over by this one.
      'ledger-adds',
      'ledger-continue-as-new-first-run',
      'ledger-continue-as-new-last-run',
      'ledger-recurring-renewed',
      'ledger-recurring-cancelled',
      'ledger-totals-mismatch',
      'upgrade-mid-bill',
      // Grace periods (drafts) and the invoice's lifecycle after its delivery.
      'draft-grace-period',
      'draft-finalized',
      'invoice-lifecycle-paid',
      'invoice-lifecycle-voided',
      // With the history cap and the close waiting for a cancel (migration 9).
      'series-close-after-cancel-renewed',
      // Search attributes: kept current, on the invoice too, and given to a bill of the release before.
      'search-attributes-close',
      'search-attributes-invoice',
      'search-attributes-invoice-failed',
      'search-attributes-series-renewed',
      'search-attributes-series-cancelled',
      'search-attributes-upgrade',
      'series-close-after-cancel-cancelled',
      // A webhook delivery retried twice with durable timers in between.
      'webhook-delivery-retried',
    ]),
  );
});

it('replays every recorded history with the current workflow code', async () => {
  try {
    Runtime.install({ logger: sdkRunLogger() });
  } catch {
    // installed by an earlier test in this process
  }
  const histories = files.map((f) => ({
    workflowId: f.replace(/\.json$/, ''),
    history: historyFromFile(readFileSync(path.join(DIR, f), 'utf8')),
  }));
  const outcomes: [string, string | undefined][] = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! } }, histories)) {
    outcomes.push([r.workflowId, r.error ? String(r.error) : undefined]);
  }
  expect(outcomes).toEqual(histories.map((h) => [h.workflowId, undefined]));
});
