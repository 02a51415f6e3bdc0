import { rmSync } from 'node:fs';
import { dropDatabases } from './databases';
import type { DevServer } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const env = (globalThis as Record<string, unknown>).__feesTestEnv as DevServer | undefined;
  await env?.teardown();
  const prefix = process.env.FEES_TEST_DATABASE_PREFIX;
  if (prefix && !process.env.KEEP_TEST_DATABASE) await dropDatabases(prefix);
  if (process.env.FEES_TEST_TMP) rmSync(process.env.FEES_TEST_TMP, { recursive: true, force: true });
}
