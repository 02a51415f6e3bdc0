/**
 * Smoke check of the benchmark harnesses (`npm run bench -- --quick`, `npm run bench:sql`) against the test Postgres and
 * Temporal: every scenario runs and reports, and the one-bill run ends with exact totals. It
 * asserts nothing about speed: performance numbers come from `npm run bench`, not from tests.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_URL } from '../helpers/databases';
import { runScript } from '../helpers/processes';
import { testTempDir } from '../helpers/tmp';

interface Scenario {
  throughput: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
}

/** A number a scenario that did work must report: finite and above zero (JSON turns NaN and Infinity into null). */
const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

it('runs every scenario briefly and reports them, with exact totals', async () => {
  const results = path.join(testTempDir('bench-'), 'latest.json');
  const { code, stdout, stderr } = await runScript('bench/run.ts', ['--quick'], {
    DATABASE_URL: process.env.FEES_TEST_DATABASE_URL,
    TEMPORAL_ADDRESS: process.env.FEES_TEST_TEMPORAL_ADDRESS,
    BENCH_RESULTS: results,
  });
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toContain('| scenario | throughput |');
  const report = JSON.parse(readFileSync(results, 'utf8'));
  expect(report).toMatchObject({ quick: true, cores: os.cpus().length });
  expect(Object.keys(report.scenarios).sort()).toEqual([
    'add_line_item',
    'add_line_item_1_caller',
    'add_line_item_hot_bill',
    'add_line_items_batch',
    'append_update_bare',
    'append_update_bare_1',
    'create_bill',
    'http_floor',
    'ingest_events',
    'list_open_bills',
    'list_open_bills_8_callers',
    'list_open_bills_live',
    'one_bill_1m_items',
    'open_bills_10k',
    'payload_codec',
    'pg_insert_batch',
    'pg_insert_single',
    'rate_10m_events',
    'reconcile',
    'sql_sum_events',
    'temporal_batch_bare',
    'temporal_noop_start',
    'temporal_noop_update',
    'temporal_noop_update_1',
    'temporal_noop_update_hot',
    'temporal_query_bare',
    'temporal_write_activity',
    'temporal_write_eager',
    'temporal_write_local',
    'temporal_write_local_1',
    'usage_1m_events',
  ]);
  // Every target is checked against this run's own numbers (met or not: a quick run proves nothing).
  expect(report.targets).toHaveLength(18);
  for (const t of report.targets) expect(typeof t.met).toBe('boolean');
  // Every scenario did work, however briefly: a throughput and latencies that are real numbers
  // above zero. Listed by name, so a failure says which scenario measured nothing.
  const scenarios = Object.entries(report.scenarios as Record<string, Scenario>);
  const unmeasured = scenarios.filter(([, s]) => !positive(s.throughput)).map(([name, s]) => `${name}: ${s.throughput}`);
  expect(unmeasured).toEqual([]);
  // Latencies where a scenario reports them: real numbers, p99 no lower than p50 (autocannon's are
  // whole milliseconds, so a fast request's p50 may be 0).
  const badLatency = scenarios
    .filter(([, s]) => s.p50_ms !== null || s.p99_ms !== null)
    .filter(([, s]) => !(Number.isFinite(s.p50_ms) && Number.isFinite(s.p99_ms) && s.p50_ms! >= 0 && s.p99_ms! >= s.p50_ms!))
    .map(([name, s]) => `${name}: p50 ${s.p50_ms}, p99 ${s.p99_ms}`);
  expect(badLatency).toEqual([]);
  expect(report.scenarios.one_bill_1m_items.notes).toMatch(/totals exact/);
  expect(report.scenarios.reconcile.notes).toMatch(/ 0 differences$/);
}, 300_000);

it('measures what one add costs Postgres, statement by statement (npm run bench:sql)', async () => {
  const { code, stdout, stderr } = await runScript('bench/sql-costs.ts', [], { DATABASE_URL: ADMIN_URL, SQL_COSTS_CALLS: '200' });
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  for (const statement of [
    'one-row insert \\(the bound\\)',
    'idempotency claim \\+ completion',
    'ledger write \\(append_line_items, one item\\)',
  ]) {
    expect(stdout).toMatch(new RegExp(`^\\| ${statement} \\| \\d+\\.\\d{3}, \\d+\\.\\d{3}, \\d+\\.\\d{3} \\| `, 'm'));
  }
}, 120_000);
