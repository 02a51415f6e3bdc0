/**
 * A worker stopped by SIGTERM (`host/main.ts worker`, as a Deployment's pod gets it) while an
 * invoice email is in flight to a slow SMTP server: within WORKER_SHUTDOWN_GRACE_TIME_MS it lets
 * the send finish and exits; past WORKER_SHUTDOWN_FORCE_TIME_MS it stops regardless, and the send
 * is retried by another worker once its attempt times out. Either way the customer gets one email.
 */
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { invoiceWhen } from '../helpers/invoices';
import { startProcess } from '../helpers/processes';
import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { testTempDir } from '../helpers/tmp';

let stack: Stack;

/** An SMTP server that holds the answer to a message's DATA until the test lets it go. */
interface SlowSmtp {
  url: string;
  /** Resolves when a message's data has arrived and its answer is held. */
  holding: Promise<void>;
  /** Answers the held message (and any later one at once). */
  release: () => void;
  /** Messages answered "queued": the ones the sender saw accepted. */
  accepted: number;
  stop: () => Promise<void>;
}

async function slowSmtp(): Promise<SlowSmtp> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let holding!: () => void;
  const held = new Promise<void>((r) => (holding = r));
  const state = { accepted: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, done) {
      stream.resume();
      stream.on('end', () => {
        holding();
        void released.then(() => {
          state.accepted++;
          done(null, 'queued');
        });
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    holding: held,
    release,
    get accepted() {
      return state.accepted;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

beforeAll(async () => {
  stack = await startStack({ POSTPROCESS_RETRY_INITIAL_MS: '200' });
  await stack.stopWorker(); // the worker under test is a process of its own on this task queue
});
afterAll(() => stack?.stop());

/** A worker process sending invoices to `smtp`, with these shutdown times. */
function workerProcess(smtp: SlowSmtp, graceMs: number, forceMs: number) {
  return startProcess('host/main.ts', ['worker'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      DATABASE_URL: stack.config.databaseUrl,
      TEMPORAL_ADDRESS: stack.config.temporal.address,
      TEMPORAL_TASK_QUEUE: stack.config.temporal.taskQueue,
      DATA_DIR: testTempDir('worker-drain-'),
      WORKER_PORT: '0',
      SMTP_URL: smtp.url,
      // An attempt past its timeout is retried by another worker; the send itself gives up a little sooner.
      POSTPROCESS_ACTIVITY_TIMEOUT_MS: '8000',
      SMTP_TIMEOUT_MS: '6000',
      POSTPROCESS_RETRY_INITIAL_MS: '200',
      WORKER_SHUTDOWN_GRACE_TIME_MS: String(graceMs),
      WORKER_SHUTDOWN_FORCE_TIME_MS: String(forceMs),
    },
  });
}

/** A closed bill whose invoice email is now held by `smtp`. */
async function invoiceInFlight(smtp: SlowSmtp): Promise<string> {
  const billId = uid('drain');
  const email = `${uid('payer')}@example.com`;
  expect(
    (await call(stack, 'POST', '/bills', { bill_id: billId, customer_email: email, billing_period_end: inSeconds(3600) })).status,
  ).toBe(200);
  expect((await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 1234, currency: 'EUR', description: 'drain' })).status).toBe(
    200,
  );
  expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
  await smtp.holding;
  return billId;
}

/** Starts `worker`, holds an invoice's email at `smtp`, sends SIGTERM (releasing the email after `releaseAfterMs`, if given), and times the exit. */
async function sigtermDuringSend(worker: ReturnType<typeof workerProcess>, smtp: SlowSmtp, releaseAfterMs?: number) {
  await worker.waitFor('Fees API (worker) is up');
  const billId = await invoiceInFlight(smtp);
  const signalled = Date.now();
  worker.child.kill('SIGTERM');
  if (releaseAfterMs !== undefined) setTimeout(() => smtp.release(), releaseAfterMs);
  const code = await worker.exited;
  return { billId, code, took: Date.now() - signalled };
}

it('drains within its grace time: the send in flight finishes, then the process exits 0', async () => {
  const smtp = await slowSmtp();
  const worker = workerProcess(smtp, 10_000, 20_000);
  try {
    const { billId, code, took } = await sigtermDuringSend(worker, smtp, 1_500);
    expect(code).toBe(0);
    // It waited for the send (held 1.5 s) and no longer: well inside the 10 s grace time.
    expect(took).toBeGreaterThanOrEqual(1_500);
    expect(took).toBeLessThan(8_000);
    expect(worker.output()).not.toMatch(/stopping worker failed/);
    expect(smtp.accepted).toBe(1);
    await stack.startWorker();
    expect((await invoiceWhen(stack, billId, (i) => i.status === 'sent', 30_000)).status).toBe('sent');
    expect(smtp.accepted).toBe(1);
  } finally {
    await stack.stopWorker();
    if (worker.child.exitCode === null) await worker.stop('SIGKILL');
    await smtp.stop();
  }
});

it('is forced after its force time when a send does not finish; another worker sends the email once', async () => {
  const stuck = await slowSmtp();
  const worker = workerProcess(stuck, 1_000, 3_000);
  try {
    const { billId, took } = await sigtermDuringSend(worker, stuck);
    // Not before the force time, and not the 6 s the send would take to give up by itself.
    expect(took).toBeGreaterThanOrEqual(3_000);
    expect(took).toBeLessThan(5_500);
    expect(worker.output()).toMatch(/stopping worker failed: Error: forced after WORKER_SHUTDOWN_FORCE_TIME_MS \(3000 ms\)/);
    expect(stuck.accepted).toBe(0);

    // The attempt times out on the server and is retried by the next worker, to a server that answers.
    await stack.stopWorker();
    const healthy = await slowSmtp();
    healthy.release();
    const next = workerProcess(healthy, 10_000, 20_000);
    try {
      await next.waitFor('Fees API (worker) is up');
      expect((await invoiceWhen(stack, billId, (i) => i.status === 'sent', 40_000)).status).toBe('sent');
      expect(healthy.accepted + stuck.accepted).toBe(1);
    } finally {
      await next.stop();
      await healthy.stop();
    }
  } finally {
    if (worker.child.exitCode === null) await worker.stop('SIGKILL');
    stuck.release(); // lets its server close; the sender is long gone, so nothing is accepted by anyone who saw it
    await stuck.stop();
  }
}, 90_000);
