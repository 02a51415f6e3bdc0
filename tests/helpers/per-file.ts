/**
 * What each integration test file gets of its own, so files run in parallel (jest workers) without
 * seeing each other: a copy of the run's migrated database, and a folder for the logs of its
 * service, SDK and child processes (helpers/run-logs.ts), which helpers/log-reporter.js prints if the
 * file fails. Installed with setupFilesAfterEnv (jest.config.js); global teardown drops the copies.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { createDatabase } from './databases';

const testPath = expect.getState().testPath!;

/** The log folder of a test file: the reporter derives the same name from the file's path. */
process.env.FEES_TEST_LOG_DIR = path.join(process.env.FEES_TEST_TMP!, 'logs', fileSlug(testPath));

beforeAll(async () => {
  const name = `${process.env.FEES_TEST_DATABASE_PREFIX}_${createHash('sha1').update(testPath).digest('hex').slice(0, 10)}`;
  process.env.FEES_TEST_DATABASE_URL = await createDatabase(name, process.env.FEES_TEST_DATABASE_TEMPLATE);
});

function fileSlug(file: string): string {
  return path.relative(path.resolve(__dirname, '..'), file).replace(/[^A-Za-z0-9]+/g, '-');
}
