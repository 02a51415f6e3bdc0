/**
 * The fault drills, reduced (`npm run chaos -- --quick`): each kills or stops a real part of its
 * own stack under load and checks that nothing acknowledged is lost or doubled and that every
 * bill reconciles, that every webhook event reaches a flaky receiver under its one id, and that
 * invoices finalized and paid across worker crashes are numbered once, paid exactly as acknowledged
 * and reconcile. Their numbers are reported by `npm run chaos`, not asserted here.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { testTempDir } from '../helpers/tmp';

const root = path.resolve(__dirname, '..', '..');

/** `bench/chaos.ts` with `args`, and the verdicts it wrote; its last lines in the error when it fails. */
async function drills(args: string[]): Promise<{ stdout: string; verdicts: [string, boolean][] }> {
  const results = path.join(testTempDir('chaos-'), 'chaos.json');
  const run = promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'chaos.ts'), ...args], {
    cwd: root,
    env: { ...process.env, CHAOS_RESULTS: results },
    maxBuffer: 64 * 1024 * 1024,
  });
  const { stdout } = await run.catch((err) => {
    throw new Error(
      `chaos ${args.join(' ')} failed:\n${String(err.stdout)
        .split('\n')
        .filter((l) => !l.startsWith('{'))
        .slice(-80)
        .join('\n')}`,
    );
  });
  const report = JSON.parse(readFileSync(results, 'utf8'));
  return { stdout, verdicts: report.verdicts.map((v: { drill: string; ok: boolean }) => [v.drill, v.ok]) };
}

it('every drill passes: worker and API killed, Temporal restarted, Postgres down, closes racing adds, webhooks to a flaky receiver, invoices finalized and paid across worker kills, usage events across worker and API kills', async () => {
  const { stdout, verdicts } = await drills(['--quick']);
  expect(verdicts).toEqual([
    ['worker_kill', true],
    ['api_kill', true],
    ['temporal_restart', true],
    ['postgres_outage', true],
    ['close_races', true],
    ['webhooks', true],
    ['invoices', true],
    ['usage', true],
  ]);
  expect(stdout).toContain('| close_races | PASS |');
}, 480_000);

it('every drill across processes passes (the Temporal server on Postgres, two APIs, two workers): a worker killed, the server killed, an API killed, our Postgres restarted, the workers restarted one by one', async () => {
  const { stdout, verdicts } = await drills(['--cluster', '--quick']);
  expect(verdicts).toEqual([
    ['worker_kill', true],
    ['temporal_kill', true],
    ['api_kill', true],
    ['postgres_restart', true],
    ['rolling_restart', true],
  ]);
  expect(stdout).toContain('| rolling_restart | PASS |');
}, 600_000);
