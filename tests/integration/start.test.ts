/**
 * `npm start` as a newcomer runs it: embedded Postgres and Temporal dev server, worker and API in
 * one process, state in DATA_DIR that survives a restart, and a clean exit on SIGTERM.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../core/config';
import { findTemporalCli } from '../../host/temporal-dev';
import { eventually, inSeconds, uid } from '../helpers/stack';
import { holdToContract } from '../helpers/contract';
import { freePort } from '../helpers/ports';
import { runCommand, startProcess, type Running } from '../helpers/processes';

/** `npm start`, as it runs it, once it says it is up. */
async function start(env: Record<string, string>): Promise<Running> {
  const service = startProcess('host/main.ts', ['all'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    nodeArgs: ['--max-old-space-size=1024'],
  });
  await service.waitFor('is up');
  return service;
}

/** SIGTERM, then the exit code, with the output attached when it is not 0. */
async function stop(service: Running): Promise<string> {
  const code = await service.stop('SIGTERM');
  return code === 0 ? 'exit 0' : `exit ${code}\n${service.output()}`;
}

/**
 * SIGKILL for the service process, leaving its children (Postgres, the dev server) behind. That is
 * the process `npm start`'s supervisor runs (host/main.ts), not the supervisor: killed itself, the
 * supervisor's service notices and stops in order.
 */
async function crash(service: Running): Promise<void> {
  const { code, stdout } = await runCommand('pgrep', ['-P', String(service.child.pid)]);
  expect(code).toBe(0);
  for (const pid of stdout.trim().split('\n')) process.kill(Number(pid), 'SIGKILL');
  await service.exited;
}

async function devServersOn(port: number): Promise<string[]> {
  // pgrep exits 1 when nothing matches.
  const { code, stdout } = await runCommand('pgrep', ['-f', `start-dev --port ${port}`]);
  return code === 0 ? stdout.trim().split('\n') : [];
}

describe('npm start on embedded defaults', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let api: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'fees-start-'));
    chmodSync(dataDir, 0o755); // as root, Postgres runs as the postgres user and must reach it
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    holdToContract(api);
    env = {
      DATA_DIR: dataDir,
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      TEMPORAL_DEV_PORT: String(await freePort()),
      TEMPORAL_DEV_UI_PORT: String(await freePort()),
      TEMPORAL_CLI_PATH: findTemporalCli(loadConfig({}))!,
      LOG_LEVEL: 'warn',
    };
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('starts everything, keeps bills across restarts and a hard kill, and stops cleanly on SIGTERM', async () => {
    const first = await start(env);
    expect(first.output()).toMatch(/Postgres\s+embedded/);
    expect(first.output()).toMatch(/Temporal\s+dev server/);
    const billId = uid();
    const post = (p: string, body: unknown) =>
      fetch(api + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post('/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);
    expect((await post(`/bills/${billId}/line-items`, { amount: 4200, currency: 'GEL', description: 'kept' })).status).toBe(200);
    // Development runs open, and says so loudly.
    expect(first.output()).toContain('AUTHENTICATION IS OFF');
    // Ready once the worker polls; /metrics carries ours and the Temporal SDK's own.
    await eventually(async () => (await fetch(`${api}/readyz`)).status === 200);
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toContain('fees_http_request_duration_seconds');
    expect(metrics).toMatch(/^temporal_\w+/m);
    expect(await stop(first)).toBe('exit 0');

    const second = await start(env);
    try {
      const read = async () => (await (await fetch(`${api}/bills/${billId}`)).json()) as { totals_source: string };
      expect(await read()).toMatchObject({ status: 'open', totals: [{ currency: 'GEL', amount: 4200 }] });
      // The first live query after a restart replays the workflow; until then stored totals stand in.
      const live = await eventually(async () => {
        const bill = await read();
        return bill.totals_source === 'live' && bill;
      });
      expect(live).toMatchObject({ status: 'open', totals: [{ currency: 'GEL', amount: 4200 }] });
    } finally {
      await crash(second);
    }

    // After a hard kill, Postgres and the Temporal dev server are still running: the next start
    // adopts them, and they stop with it.
    const third = await start(env);
    try {
      expect(third.output()).toMatch(/already listens/);
      expect((await post(`/bills/${billId}/close`, undefined)).status).toBe(200);
    } finally {
      expect(await stop(third)).toBe('exit 0');
    }
    expect(await devServersOn(Number(env.TEMPORAL_DEV_PORT))).toEqual([]);
  }, 180_000);
});
