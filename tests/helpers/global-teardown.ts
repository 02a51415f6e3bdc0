import pg from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ADMIN_URL } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const env = (globalThis as Record<string, unknown>).__feesTestEnv as TestWorkflowEnvironment | undefined;
  await env?.teardown();
  const dbName = process.env.FEES_TEST_DATABASE_NAME;
  if (dbName && !process.env.KEEP_TEST_DATABASE) {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}
