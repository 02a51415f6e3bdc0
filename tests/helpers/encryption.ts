/**
 * `npm run test:encrypted`: the whole suite with payload encryption on (FEES_TEST_ENCRYPT=1). The
 * run's key, made once in global setup, reaches every stack and every process a test starts, as
 * one deployment's processes share their keys.
 */
import { randomBytes } from 'node:crypto';
import type { DataConverter } from '@temporalio/common';
import { loadConfig } from '../../core/config';
import { dataConverter } from '../../core/payload-codec';

/** In global setup: a key for the run when it asks for encryption. */
export function chooseSuiteEncryption(): void {
  if (process.env.FEES_TEST_ENCRYPT === '1' && !process.env.FEES_TEST_PAYLOAD_ENCRYPTION_KEYS) {
    process.env.FEES_TEST_PAYLOAD_ENCRYPTION_KEYS = `suite=${randomBytes(32).toString('base64')}`;
  }
}

/** The settings each stack and started process adds: none, or the run's key. */
export function suiteEncryptionEnv(): Record<string, string> {
  const keys = process.env.FEES_TEST_PAYLOAD_ENCRYPTION_KEYS;
  return keys ? { PAYLOAD_ENCRYPTION_KEYS: keys } : {};
}

/** What replays of the run's own histories decode with (undefined: plaintext). */
export function suiteDataConverter(): DataConverter | undefined {
  return dataConverter(loadConfig(suiteEncryptionEnv()));
}
