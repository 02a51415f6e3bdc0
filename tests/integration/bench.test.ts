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
import { createDatabase, dropDatabase } from '../helpers/global-setup';
import { testTempDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');

// Its own database: the bench leaves hundreds of open bills behind, which would slow other
// test files' listings down.
const dbName = `fees_bench_${process.pid}_${Date.now()}`;
let databaseUrl: string;
beforeAll(async () => {
  databaseUrl = await createDatabase(dbName);
});
afterAll(() => dropDatabase(dbName));

it('runs every scenario briefly and reports them, with exact totals', async () => {
  const results = path.join(testTempDir('bench-'), 'latest.json');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'run.ts'), '--quick'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: process.env.FEES_TEST_TEMPORAL_ADDRESS,
      BENCH_RESULTS: results,
    },
    maxBuffer: 16 * 1024 * 1024,
  });
  expect(stdout).toContain('| scenario | throughput |');
  const report = JSON.parse(readFileSync(results, 'utf8'));
  expect(report).toMatchObject({ quick: true, cores: os.cpus().length });
  expect(Object.keys(report.scenarios).sort()).toEqual([
    'add_line_item', 'add_line_item_hot_bill', 'add_line_items_batch', 'create_bill', 'list_open_bills', 'list_open_bills_8_callers',
    'one_bill_1m_items', 'open_bills_10k', 'pg_insert_batch', 'pg_insert_single', 'reconcile',
    'temporal_batch_bare', 'temporal_query_bare', 'temporal_update_bare',
  ]);
  for (const s of Object.values(report.scenarios) as { throughput: number }[]) expect(typeof s.throughput).toBe('number');
  expect(report.scenarios.one_bill_1m_items.notes).toMatch(/totals exact/);
  expect(report.scenarios.reconcile.notes).toMatch(/ 0 differences$/);
}, 300_000);
