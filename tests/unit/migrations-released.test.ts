/**
 * Migrations are append-only from 1.0.0 (docs/compatibility.md): a database migrated by a release
 * has recorded each file's version as applied and never runs it again, so a released file that
 * changed would leave that database with another schema than a fresh one. A schema change is a new
 * file with the next number. When a release is cut, its new files join RELEASED.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const DIR = path.resolve(__dirname, '..', '..', 'migrations');

/** Every released migration file and the sha256 of its bytes. */
const RELEASED: Record<string, string> = {
  '1_initial_schema.up.sql': '339df191bb5f5644c62d2358ab1549ce82b6b1bc698a239e47373e3bd9d8e3c4',
};

const versionOf = (file: string) => Number(/^(\d+)_/.exec(file)?.[1]);
const sha256 = (file: string) =>
  createHash('sha256')
    .update(readFileSync(path.join(DIR, file)))
    .digest('hex');

it('keeps every released migration as it was released', () => {
  const files = readdirSync(DIR);
  for (const [file, hash] of Object.entries(RELEASED)) {
    expect(files).toContain(file);
    expect({ file, sha256: sha256(file) }).toEqual({ file, sha256: hash });
  }
});

it('numbers a new migration after every released one', () => {
  const newest = Math.max(...Object.keys(RELEASED).map(versionOf));
  const added = readdirSync(DIR).filter((f) => f.endsWith('.sql') && !(f in RELEASED));
  expect(added.filter((f) => !(versionOf(f) > newest))).toEqual([]);
});
