/**
 * Smoke check of the benchmark harness (`npm run bench -- --quick`) against the test Postgres and
 * Temporal: every scenario runs and reports, and the one-bill run ends with exact totals. It
 * asserts nothing about speed: performance numbers come from `npm run bench`, not from tests.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { testTempDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');

it('runs every scenario briefly and reports them, with exact totals', async () => {
  const results = path.join(testTempDir('bench-'), 'latest.json');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'run.ts'), '--quick'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: process.env.FEES_TEST_DATABASE_URL,
      TEMPORAL_ADDRESS: process.env.FEES_TEST_TEMPORAL_ADDRESS,
      BENCH_RESULTS: results,
    },
    maxBuffer: 16 * 1024 * 1024,
  });
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
    'list_open_bills',
    'list_open_bills_8_callers',
    'list_open_bills_live',
    'one_bill_1m_items',
    'open_bills_10k',
    'pg_insert_batch',
    'pg_insert_single',
    'reconcile',
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
  ]);
  // Every target is checked against this run's own numbers (met or not: a quick run proves nothing).
  expect(report.targets).toHaveLength(10);
  for (const t of report.targets) expect(typeof t.met).toBe('boolean');
  for (const s of Object.values(report.scenarios) as { throughput: number }[]) expect(typeof s.throughput).toBe('number');
  expect(report.scenarios.one_bill_1m_items.notes).toMatch(/totals exact/);
  expect(report.scenarios.reconcile.notes).toMatch(/ 0 differences$/);
}, 300_000);
