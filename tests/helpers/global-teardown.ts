import { rmSync } from 'node:fs';
import { dropDatabase, type DevServer } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const env = (globalThis as Record<string, unknown>).__feesTestEnv as DevServer | undefined;
  await env?.teardown();
  const dbName = process.env.FEES_TEST_DATABASE_NAME;
  if (dbName && !process.env.KEEP_TEST_DATABASE) await dropDatabase(dbName);
  if (process.env.FEES_TEST_TMP) rmSync(process.env.FEES_TEST_TMP, { recursive: true, force: true });
}
