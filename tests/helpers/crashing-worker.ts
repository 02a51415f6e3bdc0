/**
 * A worker process that dies (SIGKILL, no clean-up) the moment it is asked to email an invoice:
 * after the PDF is stored, before anything is sent. Configured from the environment like
 * `npm run worker`; prints "ready" once it polls.
 */
import { loadConfig } from '../../core/config';
import { createPool } from '../../core/db';
import { createWorker } from '../../temporal/worker';

async function main() {
  const config = loadConfig();
  const db = createPool(config.databaseUrl!, 4);
  const worker = await createWorker({
    config,
    address: config.temporal.address!,
    db,
    workflowBundlePath: process.env.FEES_TEST_BUNDLE,
    wrapActivities: (a) => ({
      ...a,
      deliverInvoice: async () => {
        process.kill(process.pid, 'SIGKILL');
        return new Promise<never>(() => undefined);
      },
    }),
  });
  const running = worker.run();
  console.log('ready');
  await running;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
