/**
 * `npm run test:cluster`: the integration suite against the real Temporal server, as
 * `npm run cluster` runs it (v1.29.1, persistence and visibility on Postgres, 4 history shards, the
 * namespace and search attributes set up by its job), instead of the dev server. The suite's own
 * stacks (API and worker per test file) connect to it; the cluster's API and worker processes are
 * not started. On free ports, with its state in a temporary directory removed afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../core/config';
import { freeClusterPorts, startCluster } from '../host/cluster';

async function main(): Promise<number> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fees-test-cluster-'));
  const config = loadConfig({ ...process.env, ...(await freeClusterPorts(0, 0)), DATA_DIR: dataDir });
  const cluster = await startCluster(config, { apis: 0, workers: 0, output: () => undefined });
  console.log(`The integration suite against the Temporal server at ${cluster.temporalAddress}`);
  try {
    const jest = spawn(process.execPath, [require.resolve('jest/bin/jest'), '--selectProjects', 'integration', ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, TEST_TEMPORAL_ADDRESS: cluster.temporalAddress },
    });
    return await new Promise<number>((resolve) => jest.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
