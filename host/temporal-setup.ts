/**
 * What a Temporal cluster needs before the Fees API runs on it, done once by one process, as
 * Temporal's Helm chart does with a job: the namespace, registered if missing, and our search
 * attributes (temporal/search-attributes.ts) on it. A Temporal server creates no namespace of its
 * own; the dev server does both itself. `npm run cluster` runs it; so can a deployment:
 * `node --import tsx host/temporal-setup.ts` with TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE.
 */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { loadConfig, type Config } from '../core/config';
import { connectionOptions } from '../core/temporal';
import { addMissingSearchAttributes, missingSearchAttributes } from '../temporal/search-attributes';

/** How long a namespace keeps a closed workflow's history: bills are read from Postgres after it. */
const RETENTION_DAYS = 30;

const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function setUpTemporal(config: Config, address: string, log: (line: string) => void = console.log): Promise<void> {
  const namespace = config.temporal.namespace;
  const connection = await Connection.connect(connectionOptions(config, address));
  try {
    const exists = await connection.workflowService.describeNamespace({ namespace }).then(
      () => true,
      (err: { code?: number }) => (err.code === NOT_FOUND ? false : Promise.reject(err)),
    );
    if (!exists) {
      await connection.workflowService
        .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(`${RETENTION_DAYS} days`) })
        .catch((err: { code?: number }) => (err.code === ALREADY_EXISTS ? undefined : Promise.reject(err)));
      log(`namespace ${namespace}: registered (histories kept ${RETENTION_DAYS} days after a workflow ends)`);
    }
    // A new namespace reaches every frontend's cache within seconds; until then calls on it fail.
    const added = await untilAnswered(() => addMissingSearchAttributes(connection, namespace));
    if (added.length > 0) log(`namespace ${namespace}: search attributes ${added.join(', ')} added`);
    // Visible to the worker's own check (temporal/worker.ts) once the namespace's cache has them too.
    await untilAnswered(async () => {
      const missing = await missingSearchAttributes(connection, namespace, address);
      if (missing?.length) throw new Error(`search attributes not visible yet: ${missing.length} missing`);
    });
    log(`namespace ${namespace}: ready`);
  } finally {
    await connection.close();
  }
}

async function untilAnswered<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1_000);
    }
  }
}

if (require.main === module) {
  const config = loadConfig();
  const address = config.temporal.address;
  if (!address) {
    console.error('TEMPORAL_ADDRESS is required: the Temporal cluster to set up (host:port)');
    process.exit(2);
  }
  setUpTemporal(config, address).then(
    () => process.exit(0),
    (err) => {
      console.error(`Temporal set-up failed: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    },
  );
}
