/**
 * Where the replay fixtures live and what each release records (docs/compatibility.md). Each
 * release records every history below once, on its own code, into `histories/<version>/`; the
 * replay test replays the fixtures of the current release and of the one before it against the
 * code under test, so a change that would break a bill started by either fails CI.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const HISTORIES_DIR = path.join(__dirname, 'histories');

const ROOT = path.resolve(__dirname, '..', '..');

/** The release the code in this checkout is (package.json). */
export const RELEASE: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

/** Released versions, newest first, as CHANGELOG.md lists them (`## [1.0.0] - 2026-12-07`). */
export function releasedVersions(): string[] {
  const changelog = readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8');
  return [...changelog.matchAll(/^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$/gm)].map((m) => m[1]);
}

/**
 * Every history a release records, by file name: together they take each workflow through every
 * path it has (what each does: tests/replay/record-histories.ts).
 */
export const RECORDED = [
  'bill-closed-by-request',
  'bill-closed-by-timer',
  'bill-continued-as-new-first-run',
  'bill-continued-as-new-last-run',
  'bill-draft-finalized-by-timer',
  'bill-draft-finalized-on-request',
  'bill-rejected-updates',
  'bill-totals-mismatch',
  'series-renewed',
  'series-cancelled',
  'invoice-paid',
  'invoice-voided',
  'invoice-failed',
  'invoice-retried',
  'webhook-delivery-retried',
] as const;

export type Recorded = (typeof RECORDED)[number];

export const fixturePath = (release: string, name: string) => path.join(HISTORIES_DIR, release, `${name}.json`);
