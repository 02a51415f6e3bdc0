/**
 * The floor's worker, a process of its own like the service's: TEMPORAL_ADDRESS, TASK_QUEUE and
 * DATABASE_URL from the environment; prints "http <port>" and "ready" once it polls.
 *
 * It also serves the HTTP bound (`http_floor`): a bare Fastify route that reads a line item's JSON
 * body and answers an add's JSON, with none of our code, so the bench can set what HTTP alone
 * costs beside what the service spends per add.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { NativeConnection, Worker } from '@temporalio/worker';
import Fastify from 'fastify';
import * as activities from './activities';

async function serveHttpFloor() {
  const http = Fastify();
  http.post<{ Params: { billId: string }; Body: Record<string, unknown> }>('/bills/:billId/line-items', async (req) => ({
    line_item: { line_item_id: randomUUID(), bill_id: req.params.billId, ...req.body, created_at: new Date().toISOString() },
    totals: [{ currency: 'USD', amount: 100, line_item_count: 1 }],
  }));
  await http.listen({ host: '127.0.0.1', port: 0 });
  console.log(`http ${(http.server.address() as AddressInfo).port}`);
  return http;
}

async function main() {
  activities.useDatabase(process.env.DATABASE_URL!);
  const http = await serveHttpFloor();
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
  await http.close();
  await activities.closeDatabase();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
