/**
 * `npm run cluster` when something it needs is missing: one line that names it and the fix, before
 * anything starts. (The cluster itself runs in the drills: `npm run test:drills`.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freeClusterPorts } from '../../host/cluster';
import { runScript } from '../helpers/processes';

let dataDir: string;
beforeAll(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'fees-cluster-start-'));
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** `npm run cluster` with `env` over free ports; its exit code and what it printed. */
async function cluster(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const ports = await freeClusterPorts();
  const run = await runScript('host/cluster.ts', [], { ...ports, DATA_DIR: dataDir, ...env }, { timeoutMs: 60_000 });
  return { code: run.code, out: run.stdout + run.stderr };
}

it('without Go and without the Temporal server, says how to install it', async () => {
  // A PATH with neither `go` nor `temporal-server` on it (node itself is run by its full path).
  const { code, out } = await cluster({ PATH: dataDir, TEMPORAL_SERVER_PATH: '' });
  expect(code).toBe(1);
  expect(out).toContain('Start-up failed: the Temporal server was not found and could not be built.');
  expect(out).toContain('go install go.temporal.io/server/cmd/server@v1.29.1');
  expect(out).toContain('TEMPORAL_SERVER_PATH=/path/to/it');
  expect(out).not.toContain('undefined');
});

it('with a server path that is not a program, names the variable', async () => {
  const { code, out } = await cluster({ TEMPORAL_SERVER_PATH: path.join(dataDir, 'no-such-server') });
  expect(code).toBe(1);
  expect(out).toContain(`Start-up failed: TEMPORAL_SERVER_PATH=${path.join(dataDir, 'no-such-server')} is not an executable file`);
});

it('with a port taken, names the port and the variable that moves it', async () => {
  const ports = await freeClusterPorts();
  const holder = net.createServer().listen(Number(ports.CLUSTER_TEMPORAL_PG_PORT), '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  try {
    const run = await runScript('host/cluster.ts', [], { ...ports, DATA_DIR: dataDir }, { timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain(
      `Start-up failed: port ${ports.CLUSTER_TEMPORAL_PG_PORT} is taken by another process: stop it, or move the cluster with CLUSTER_TEMPORAL_PG_PORT`,
    );
  } finally {
    holder.close();
  }
});
