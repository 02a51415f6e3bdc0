/**
 * Entry point of the standalone host.
 *   all    (npm start)       embedded Postgres + Temporal dev server (unless configured), worker, API
 *   api    (npm run api)     the HTTP API only
 *   worker (npm run worker)  the Temporal worker only
 *   infra  (npm run infra)   only the embedded Postgres and Temporal dev server
 *   migrate (npm run migrate) applies pending migrations to DATABASE_URL, then exits (the job a
 *                            deployment runs before its API and worker processes start)
 * `api` and `worker` scale apart in production; locally they connect to DATABASE_URL and
 * TEMPORAL_ADDRESS, by default where `npm run infra` (or `npm start`) puts them.
 */
import { spawn } from 'node:child_process';
import { getHeapStatistics } from 'node:v8';
import net from 'node:net';
import { config as loadDotEnv } from 'dotenv';
import type { FastifyInstance } from 'fastify';
import type { Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { Authenticator } from '../core/auth';
import { ConfigError, embeddedDatabaseUrl, loadConfig, type Config } from '../core/config';
import { createPool, migrate, verifyMigrated, type Db } from '../core/db';
import { pruneExpiredKeys } from '../core/idempotency';
import { createLogger } from '../core/log';
import { createMailer } from '../invoices/mailer';
import { payloadCodec } from '../core/payload-codec';
import { connectClient } from '../core/temporal';
import { createWorker, installSdkRuntime } from '../temporal/worker';
import { startWebhookRelay } from '../webhooks/relay';
import { apiArtifacts } from './api-artifacts';
import { postgresCheck, registerOps, withTimeout } from './ops';
import { startEmbeddedPostgres } from './postgres';
import { buildServer, closeWithin, createApp, guardWith } from './server';
import { startTemporalDevServer } from './temporal-dev';

type Mode = 'all' | 'api' | 'worker' | 'infra' | 'migrate';

const OPEN_WARNING =
  'AUTHENTICATION IS OFF: every endpoint is open to anyone who can reach it (development only; AUTH_REQUIRED=true turns it on).';

/** A port free right now, for the Temporal SDK's metrics exporter when none is configured. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
const POOL_END_TIMEOUT_MS = 2_000;
const MODES: Mode[] = ['all', 'api', 'worker', 'infra', 'migrate'];

// What has been started, stopped in reverse order on shutdown (or when start-up fails half-way,
// so no embedded server is left running behind a failed start).
const stops: { what: string; stop: () => Promise<unknown> }[] = [];
const onStop = (what: string, stop: () => Promise<unknown>) => stops.push({ what, stop });

async function stopAll(): Promise<void> {
  for (const { what, stop } of stops.splice(0).reverse()) {
    const started = Date.now();
    await stop().then(
      () => console.log(`stopped ${what} (${Date.now() - started} ms)`),
      (err) => console.error(`stopping ${what} failed:`, err),
    );
  }
}

async function main(mode: Mode, config: Config): Promise<void> {
  // Before anything starts: the API validates with, and serves, what `npm run build` made (dist/api).
  if (mode === 'all' || mode === 'api') apiArtifacts();
  const runsWorker = mode === 'all' || mode === 'worker';
  const temporalMetrics = runsWorker ? (config.temporalMetricsAddress ?? `127.0.0.1:${await freePort()}`) : undefined;
  installSdkRuntime(config, createLogger(config.logLevel, { component: 'temporal-sdk' }), temporalMetrics);
  const temporalMetricsUrl = temporalMetrics ? `http://${temporalMetrics}/metrics` : undefined;
  const report: string[] = [];
  const embedded = mode === 'all' || mode === 'infra';

  let databaseUrl = config.databaseUrl;
  if (!databaseUrl && embedded) {
    const pg = await startEmbeddedPostgres(config);
    onStop('Postgres', pg.stop);
    databaseUrl = pg.url;
    report.push(`Postgres     embedded, ${pg.url.replace(/:[^:@/]+@/, ':***@')} (data in ${pg.dataDir})`);
  } else {
    databaseUrl ??= embeddedDatabaseUrl(config);
    report.push(`Postgres     ${databaseUrl.replace(/:[^:@/]+@/, ':***@')}`);
  }

  let temporalAddress = config.temporal.address;
  if (!temporalAddress && embedded) {
    const temporal = await startTemporalDevServer(config);
    onStop('Temporal dev server', temporal.stop);
    temporalAddress = temporal.address;
    report.push(`Temporal     dev server at ${temporal.address}, UI ${temporal.uiUrl} (state in ${config.dataDir}/temporal.db)`);
  } else {
    temporalAddress ??= `127.0.0.1:${config.temporal.devServerPort}`;
    report.push(`Temporal     ${temporalAddress}, namespace ${config.temporal.namespace}`);
  }

  let db: Db | undefined;
  if (mode !== 'infra') {
    db = createPool(databaseUrl, config.dbPoolSize);
    // A task a forced worker abandoned may still hold a connection: past this the process exits with it.
    onStop('database pool', () =>
      withTimeout(db!.end(), 'the pool (a connection held by a task the worker abandoned closes with the process)', POOL_END_TIMEOUT_MS),
    );
    if (mode === 'migrate' || config.migrations === 'apply') {
      const applied = await migrate(db);
      report.push(`Migrations   ${applied.length ? `applied ${applied.join(', ')}` : 'none pending'}`);
    } else {
      await verifyMigrated(db);
    }
  }
  if (mode === 'migrate') {
    console.log(`Fees API (migrate):\n  ${report.join('\n  ')}`);
    await stopAll();
    return;
  }

  const codec = payloadCodec(config);
  report.push(
    codec
      ? `Payloads     encrypted (AES-256-GCM) with key "${codec.currentKeyId}"; ${config.payloadKeys!.length} key(s) decrypt`
      : 'Payloads     plaintext in Temporal (set PAYLOAD_ENCRYPTION_KEYS to encrypt them: docs/operations.md)',
  );

  // One Temporal client per process, for the API and the webhook relay.
  let client: Client | undefined;
  const temporalClient = async () => {
    if (!client) {
      client = await connectClient(config, temporalAddress);
      onStop('Temporal client', () => client!.connection.close());
    }
    return client;
  };

  let worker: Worker | undefined;
  let workerDone: Promise<void> | undefined;
  if (runsWorker) {
    // Beside the worker: it hands the outbox's webhook deliveries to Temporal. Started first so it
    // stops after the worker has drained, still dispatching what the last activities wrote.
    const relay = startWebhookRelay({
      db: db!,
      temporal: await temporalClient(),
      config,
      log: createLogger(config.logLevel, { component: 'webhook-relay' }),
    });
    onStop('webhook relay', relay.stop);
    const mailer = createMailer(config);
    worker = await createWorker({ config, address: temporalAddress, db: db!, mailer });
    workerDone = worker.run();
    // SIGTERM: running tasks get WORKER_SHUTDOWN_GRACE_TIME_MS, then their activities are cancelled;
    // past WORKER_SHUTDOWN_FORCE_TIME_MS the SDK gives up on them (their attempts time out and are retried elsewhere).
    onStop('worker', async () => {
      const started = Date.now();
      if (worker!.getState() === 'RUNNING') worker!.shutdown();
      await workerDone!.catch((err: Error) => {
        // The SDK reports a forced stop as "Worker still in use", not as an error of its own kind: the time says it.
        const forced = Date.now() - started >= config.worker.shutdownForceTimeMs - 50;
        throw forced
          ? new Error(
              `forced after WORKER_SHUTDOWN_FORCE_TIME_MS (${config.worker.shutdownForceTimeMs} ms): tasks still running were abandoned and will be retried by another worker (${err.message})`,
            )
          : err;
      });
    });
    report.push(
      `Worker       polling task queue "${config.temporal.taskQueue}"; caches up to ${worker.options.maxCachedWorkflows} bill workflows (heap limit ${heapLimitMb()} MB)`,
    );
    report.push(`Invoices     ${mailer.target}${config.smtp.url ? '' : ' (set SMTP_URL to send real email)'}`);
    report.push(
      `Webhooks     relay running; receivers on private addresses ${config.webhooks.allowPrivate ? 'allowed' : 'refused'}` +
        (config.webhooks.secretsKey ? '' : ` (signing secrets sealed with ${config.dataDir}/webhook-secrets.key)`),
    );
    if (mode === 'worker' && config.workerPort > 0) {
      // The worker alone has no API server: a small one for its probes and metrics.
      const ops = createApp(config, 'worker');
      registerOps(ops, {
        checks: {
          postgres: postgresCheck(db!),
          worker: async () => {
            if (worker!.getState() !== 'RUNNING') throw new Error(`worker is ${worker!.getState()}`);
          },
        },
        temporalMetricsUrl,
        guard: guardWith(new Authenticator(db!, config.auth)),
        healthPublic: config.auth.healthPublic,
        metricsPublic: config.auth.metricsPublic,
      });
      await ops.listen({ port: config.workerPort, host: config.host });
      onStop('probe server', () => ops.close());
      report.push(`Probes       http://${config.host}:${config.workerPort}/healthz, /readyz, /metrics`);
    }
  }

  let app: FastifyInstance | undefined;
  if (mode === 'all' || mode === 'api') {
    const temporal = await temporalClient();
    app = buildServer({ db: db!, temporal, config }, { temporalMetricsUrl });
    const pruner = setInterval(() => void pruneExpiredKeys(db!).catch(() => undefined), 60 * 60 * 1000);
    pruner.unref();
    await app.listen({ port: config.port, host: config.host });
    onStop('HTTP server', () => closeWithin(app!, config.http.shutdownTimeoutMs)); // first to stop: no new requests, in-flight ones finish
    report.push(`API          http://${config.host}:${config.port}  (try: curl http://${config.host}:${config.port}/bills)`);
    report.push(`Explorer     http://${config.host}:${config.port}/docs   metrics /metrics   probes /healthz /readyz`);
    report.push(
      config.auth.required
        ? 'Auth         API keys required (create one: npm run keys -- create --scopes bills:read,bills:write)'
        : `Auth         ${OPEN_WARNING}`,
    );
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down`);
    await stopAll();
    process.exit(0);
  };
  // Before the banner: whoever waits for it (a supervisor, a test, a terminal user) may signal at once.
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  if (process.env.FEES_SUPERVISED === '1') {
    // Our supervisor was killed (it passes no signal then): stop in order rather than run on unseen.
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && void shutdown('supervisor gone'), 1_000).unref();
  }
  console.log(`Fees API (${mode}) is up:\n  ${report.join('\n  ')}`);
  if ((mode === 'all' || mode === 'api') && !config.auth.required) {
    console.warn(`\n${'!'.repeat(78)}\n!! ${OPEN_WARNING}\n${'!'.repeat(78)}\n`);
  }

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
  // An optional .env file; variables already in the environment win.
  loadDotEnv({ quiet: true });
  config = loadConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(2);
}
/**
 * A terminal's Ctrl-C signals its whole foreground process group, and the embedded Postgres and dev
 * server are our children in it: they would stop before the worker drained (a run once logged 102
 * refused connections). So the process a terminal starts in `all` and `infra` only supervises: it
 * runs the service in a process group of its own, which no terminal signal reaches, passes SIGINT
 * and SIGTERM on to it, and exits with it; the service stops its parts in order.
 */
function supervise(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, FEES_SUPERVISED: '1' },
  });
  let signals = 0;
  const pass = (signal: NodeJS.Signals) => {
    // A second Ctrl-C while it drains is the impatient kind: end it now.
    child.kill(++signals > 1 ? 'SIGKILL' : signal);
  };
  process.on('SIGINT', () => pass('SIGINT'));
  process.on('SIGTERM', () => pass('SIGTERM'));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if ((mode === 'all' || mode === 'infra') && process.env.FEES_SUPERVISED !== '1') supervise();
else
  main(mode, config).catch(async (err) => {
    console.error(`Start-up failed: ${err instanceof Error ? err.message : err}`);
    await stopAll();
    process.exit(1);
  });

/** The process's V8 heap limit: the SDK sizes its workflow cache from it (docs/performance.md). */
function heapLimitMb(): number {
  return Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
}
