/**
 * The floor's worker, a process of its own like the service's: TEMPORAL_ADDRESS, TASK_QUEUE and
 * DATABASE_URL from the environment; prints "ready" once it polls.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import * as activities from './activities';

async function main() {
  activities.useDatabase(process.env.DATABASE_URL!);
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! }),
    taskQueue: process.env.TASK_QUEUE!,
    workflowsPath: require.resolve('./workflows'),
    activities,
  });
  const running = worker.run();
  console.log('ready');
  process.once('SIGTERM', () => worker.shutdown());
  await running;
  await activities.closeDatabase();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
