/**
 * Temporary directories for tests, all inside the run's own directory (made by global setup), which
 * global teardown removes: a test run leaves nothing behind in the system's temp directory.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function testTempDir(prefix: string): string {
  return mkdtempSync(path.join(process.env.FEES_TEST_TMP ?? os.tmpdir(), prefix));
}
