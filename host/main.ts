/**
 * Entry point of the standalone host.
 *   all    (npm start)       embedded Postgres + Temporal dev server (unless configured), worker, API
 *   api    (npm run api)     the HTTP API only
 *   worker (npm run worker)  the Temporal worker only
 *   infra  (npm run infra)   only the embedded Postgres and Temporal dev server
 * `api` and `worker` scale apart in production; locally they connect to DATABASE_URL and
 * TEMPORAL_ADDRESS, by default where `npm run infra` (or `npm start`) puts them.
 */
import type { FastifyInstance } from 'fastify';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../core/config';
import { createPool, migrate, type Db } from '../core/db';
import { pruneExpiredKeys } from '../core/idempotency';
import { createMailer } from '../postprocess/mailer';
import { connectClient } from '../temporal/client';
import { createWorker } from '../temporal/worker';
import { startEmbeddedPostgres } from './postgres';
import { buildServer } from './server';
import { startTemporalDevServer } from './temporal-dev';

type Mode = 'all' | 'api' | 'worker' | 'infra';
const MODES: Mode[] = ['all', 'api', 'worker', 'infra'];

// What has been started, stopped in reverse order on shutdown (or when start-up fails half-way,
// so no embedded server is left running behind a failed start).
const stops: (() => Promise<unknown>)[] = [];

async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) {
    await stop().catch((err) => console.error('shutdown step failed:', err));
  }
}

async function main(mode: Mode, config: Config): Promise<void> {
  // We drive shutdown ourselves (HTTP first, then the worker, then infrastructure), so the
  // SDK must not react to signals on its own.
  Runtime.install({ shutdownSignals: [], logger: new DefaultLogger(config.temporalLogLevel) });
  const report: string[] = [];
  const embedded = mode === 'all' || mode === 'infra';

  let databaseUrl = config.databaseUrl;
  if (!databaseUrl && embedded) {
    const pg = await startEmbeddedPostgres(config);
    stops.push(pg.stop);
    databaseUrl = pg.url;
    report.push(`Postgres     embedded, ${pg.url.replace(/:[^:@/]+@/, ':***@')} (data in ${pg.dataDir})`);
  } else {
    databaseUrl ??= `postgres://postgres:postgres@127.0.0.1:${config.embeddedPostgresPort}/fees`;
    report.push(`Postgres     ${databaseUrl.replace(/:[^:@/]+@/, ':***@')}`);
  }

  let temporalAddress = config.temporal.address;
  if (!temporalAddress && embedded) {
    const temporal = await startTemporalDevServer(config);
    stops.push(temporal.stop);
    temporalAddress = temporal.address;
    report.push(`Temporal     dev server at ${temporal.address}, UI ${temporal.uiUrl} (state in ${config.dataDir}/temporal.db)`);
  } else {
    temporalAddress ??= `127.0.0.1:${config.temporal.devServerPort}`;
    report.push(`Temporal     ${temporalAddress}, namespace ${config.temporal.namespace}`);
  }

  let db: Db | undefined;
  if (mode !== 'infra') {
    db = createPool(databaseUrl, config.dbPoolSize);
    stops.push(() => db!.end());
    const applied = await migrate(db);
    if (applied.length) report.push(`Migrations   applied ${applied.join(', ')}`);
  }

  let worker: Worker | undefined;
  let workerDone: Promise<void> | undefined;
  if (mode === 'all' || mode === 'worker') {
    const mailer = createMailer(config);
    worker = await createWorker({ config, address: temporalAddress, db: db!, mailer });
    workerDone = worker.run();
    stops.push(async () => {
      if (worker!.getState() === 'RUNNING') worker!.shutdown();
      await workerDone;
    });
    report.push(`Worker       polling task queue "${config.temporal.taskQueue}"`);
    report.push(`Invoices     ${mailer.target}${config.smtp.url ? '' : ' (set SMTP_URL to send real email)'}`);
  }

  let app: FastifyInstance | undefined;
  if (mode === 'all' || mode === 'api') {
    const temporal = await connectClient(config, temporalAddress);
    stops.push(() => temporal.connection.close());
    app = buildServer({ db: db!, temporal, config });
    const pruner = setInterval(() => void pruneExpiredKeys(db!).catch(() => undefined), 60 * 60 * 1000);
    pruner.unref();
    await app.listen({ port: config.port, host: config.host });
    stops.push(() => app!.close()); // first to stop: no new requests, in-flight ones finish
    report.push(`API          http://${config.host}:${config.port}  (try: curl http://${config.host}:${config.port}/bills)`);
  }

  console.log(`Fees API (${mode}) is up:\n  ${report.join('\n  ')}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down`);
    await stopAll();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  if (workerDone) {
    workerDone.catch((err) => {
      console.error('worker stopped:', err);
      void shutdown('worker failure');
    });
  }
}

const mode = (process.argv[2] ?? 'all') as Mode;
if (!MODES.includes(mode)) {
  console.error(`usage: tsx host/main.ts [${MODES.join('|')}]`);
  process.exit(2);
}
let config: Config;
try {
  config = loadConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
main(mode, config).catch(async (err) => {
  console.error(`Start-up failed: ${err instanceof Error ? err.message : err}`);
  await stopAll();
  process.exit(1);
});
