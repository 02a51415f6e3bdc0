import { Service } from 'encore.dev/service';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { config, temporalAddress } from '../core/encore';
import { createPool } from '../core/db';
import { createLogger } from '../core/log';
import { connectClient } from '../core/temporal';
import { startWebhookRelay } from '../webhooks/relay';
import { createWorker } from './worker';

async function startEncoreWorker(database: SQLDatabase): Promise<void> {
  const db = createPool(database.connectionString, config.dbPoolSize);
  const worker = await createWorker({ config, address: temporalAddress(), db });
  // The outbox relay runs beside the worker, as under `npm start`.
  startWebhookRelay({
    db,
    temporal: await connectClient(config, temporalAddress()),
    config,
    log: createLogger(config.logLevel, { component: 'webhook-relay' }),
  });
  await worker.run();
}

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');

// Under `encore run` the worker lives in this service, polling the same task queue as `npm run worker`.
startEncoreWorker(database).catch((err) => {
  console.error('Temporal worker stopped:', err);
  process.exit(1);
});

export default new Service('temporal');
