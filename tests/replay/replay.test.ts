/**
 * The compatibility policy (docs/compatibility.md), held: bills started by the previous release keep
 * running on this one. Every fixture of the current release and of the one before it replays
 * against the code under test, so a workflow change that would break a running bill (a command
 * added, removed or reordered without patched()) fails here; and the current release has recorded
 * every history its workflows can make.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Runtime, Worker } from '@temporalio/worker';
import { sdkRunLogger } from '../helpers/run-logs';
import { HISTORIES_DIR, RECORDED, RELEASE, fixturePath, releasedVersions } from './fixtures';
import { historyFromFile } from './history-file';

const released = releasedVersions();
/** The releases whose bills may still be running: this one and the one before. */
const supported = released.slice(0, 2);

describe('the fixtures', () => {
  it('belong to the release in package.json, which CHANGELOG.md lists as released', () => {
    expect(released[0]).toBe(RELEASE);
  });

  it('hold every history the current release records', () => {
    expect(RECORDED.filter((name) => !existsSync(fixturePath(RELEASE, name)))).toEqual([]);
  });

  it('are kept for the current and the previous release only', () => {
    expect(readdirSync(HISTORIES_DIR).sort()).toEqual([...supported].sort());
  });
});

it('replays every history of the supported releases with the current workflow code', async () => {
  try {
    Runtime.install({ logger: sdkRunLogger() });
  } catch {
    // installed by an earlier test in this process
  }
  const histories = supported.flatMap((release) =>
    readdirSync(path.join(HISTORIES_DIR, release))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => ({
        workflowId: `${release}/${f.replace(/\.json$/, '')}`,
        history: historyFromFile(readFileSync(path.join(HISTORIES_DIR, release, f), 'utf8')),
      })),
  );
  expect(histories.length).toBeGreaterThanOrEqual(RECORDED.length);
  const outcomes: [string, string | undefined][] = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! } }, histories)) {
    outcomes.push([r.workflowId, r.error ? String(r.error) : undefined]);
  }
  expect(outcomes).toEqual(histories.map((h) => [h.workflowId, undefined]));
});
