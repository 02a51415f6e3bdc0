import { Service } from 'encore.dev/service';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { startEncoreWorker } from '../core/encore';

// Under `encore run` the worker lives in this service, polling the same task queue as `npm run worker`.
startEncoreWorker(SQLDatabase.named('fees')).catch((err) => {
  console.error('Temporal worker stopped:', err);
  process.exit(1);
});

export default new Service('temporal');
