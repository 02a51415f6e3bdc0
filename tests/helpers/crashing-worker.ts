/**
 * A worker process that dies (SIGKILL, no clean-up) at one point, chosen by CRASH_AT:
 * - `deliverInvoice` (default): the moment it is asked to email an invoice, after the PDF is
 *   stored and before anything is sent;
 * - `after-ledger-write`: right after a line-item write committed, before its workflow task
 *   completes (the local activity's result never reaches the server);
 * - `when-killed`: nowhere by itself; the test kills it (SIGKILL) when it chooses.
 * Configured from the environment like `npm run worker`; prints "ready" once it polls.
 */
import { loadConfig } from '../../core/config';
import { createPool } from '../../core/db';
import type { Activities } from '../../temporal/activities';
import { createWorker } from '../../temporal/worker';

const die = (): Promise<never> => {
  process.kill(process.pid, 'SIGKILL');
  return new Promise<never>(() => undefined);
};

function crashing(a: Activities): Activities {
  if (process.env.CRASH_AT === 'when-killed') return a;
  if (process.env.CRASH_AT === 'after-ledger-write') {
    return {
      ...a,
      writeLineItems: async (input) => {
        await a.writeLineItems(input);
        return die();
      },
    };
  }
  return { ...a, deliverInvoice: die };
}

async function main() {
  const config = loadConfig();
  const db = createPool(config.databaseUrl!, 4);
  const worker = await createWorker({
    config,
    address: config.temporal.address!,
    db,
    workflowBundlePath: process.env.FEES_TEST_BUNDLE,
    wrapActivities: crashing,
  });
  const running = worker.run();
  console.log('ready');
  await running;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
