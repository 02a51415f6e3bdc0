/** Builds the worker that runs bill workflows and their activities on one task queue. */
import path from 'node:path';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type LogEntry,
  type WorkerOptions as SdkWorkerOptions,
} from '@temporalio/worker';
import type { Config } from '../core/config';
import type { Db } from '../core/db';
import { createLogger, type Logger } from '../core/log';
import { createMailer, type Mailer } from '../invoices/mailer';
import { createActivities, type Activities } from './activities';
import { appRoot } from '../core/app-root';
import { dataConverter } from '../core/payload-codec';
import { connectionOptions } from '../core/temporal';
import { missingSearchAttributes } from './search-attributes';

export const WORKFLOWS_PATH = path.join(appRoot(), 'temporal', 'workflows.ts');

export interface WorkerOptions {
  config: Config;
  address: string;
  db: Db;
  /** A pre-built workflow bundle (tests build one per run); otherwise bundled at start. */
  workflowBundlePath?: string;
  /** Wraps the activities; tests use it to inject faults (a slow or failing database step). */
  wrapActivities?: (activities: Activities) => Activities;
  /** Where invoice emails go; by default from the configuration (SMTP_URL or the outbox). */
  mailer?: Mailer;
  /** Where activities log; by default JSON lines on stdout at LOG_LEVEL. */
  log?: Logger;
}

export async function createWorker({
  config,
  address,
  db,
  workflowBundlePath,
  wrapActivities,
  mailer,
  log,
}: WorkerOptions): Promise<Worker> {
  const connection = await NativeConnection.connect(connectionOptions(config, address));
  const logger = log ?? createLogger(config.logLevel, { component: 'worker' });
  await requireSearchAttributes(connection, config.temporal.namespace, address, logger);
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workerTuning(config.worker),
    // On shutdown (SIGTERM): running tasks get the grace time, then activities are cancelled; past the force time the worker stops regardless.
    shutdownGraceTime: config.worker.shutdownGraceTimeMs,
    shutdownForceTime: config.worker.shutdownForceTimeMs,
    dataConverter: dataConverter(config),
    ...(workflowBundlePath ? { workflowBundle: { codePath: workflowBundlePath } } : { workflowsPath: WORKFLOWS_PATH }),
    activities: (wrapActivities ?? ((a) => a))(
      createActivities({
        db,
        config,
        mailer: mailer ?? createMailer(config),
        log: logger,
      }),
    ),
  });
}

/** The configured worker limits; a 0 keeps the SDK's default. */
function workerTuning(w: Config['worker']): Partial<SdkWorkerOptions> {
  const set = (n: number) => (n > 0 ? n : undefined);
  const options: Partial<SdkWorkerOptions> = {
    maxCachedWorkflows: set(w.maxCachedWorkflows),
    maxConcurrentWorkflowTaskExecutions: set(w.maxConcurrentWorkflowTasks),
    maxConcurrentActivityTaskExecutions: set(w.maxConcurrentActivities),
    maxConcurrentWorkflowTaskPolls: set(w.workflowTaskPollers),
    maxConcurrentActivityTaskPolls: set(w.activityTaskPollers),
    stickyQueueScheduleToStartTimeout: set(w.stickyQueueTimeoutMs),
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/**
 * Installs the Temporal SDK runtime once per process: its log lines become JSON through our
 * logger (activity and workflow lines carry their workflow and run ids), and with
 * `metricsAddress` its Prometheus exporter listens there. We drive shutdown ourselves, so the SDK
 * must not react to signals on its own.
 */
export function installSdkRuntime(config: Config, log: Logger, metricsAddress?: string): void {
  const write = (entry: LogEntry) => {
    const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    log[level]({ ...entry.meta, sdk: true }, entry.message);
  };
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger(config.temporalLogLevel, write),
    ...(metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } } : {}),
  });
}

/**
 * Starting a bill sets search attributes the namespace must know, or the start fails: say so at
 * the worker's start, with the commands that add them, rather than at the first bill.
 */
async function requireSearchAttributes(connection: NativeConnection, namespace: string, address: string, log: Logger): Promise<void> {
  let missing: string[] | undefined;
  try {
    missing = await missingSearchAttributes(connection, namespace, address);
  } catch (err) {
    await connection.close();
    throw err;
  }
  if (missing === undefined) {
    log.warn(
      { namespace },
      'the server does not let the worker list search attributes (Temporal Cloud): bills need those of docs/operations.md',
    );
    return;
  }
  if (missing.length > 0) {
    await connection.close();
    throw new Error(`namespace ${namespace} lacks search attributes the workflows set; add them with:\n  ${missing.join('\n  ')}`);
  }
}
