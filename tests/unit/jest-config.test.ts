/**
 * The jest projects the scripts select: `unit` (pure code, no global set-up), `integration` (the
 * README's test command, files in parallel) and `drills` (the fault drills and the benchmark's smoke
 * check, \`npm run test:drills\`), which the default test command leaves out.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readConfigs } from 'jest-config';

const root = path.resolve(__dirname, '..', '..');

it('has a unit project without set-up, integration and drills projects on the stack, and the scripts that select them', async () => {
  const { globalConfig, configs } = await readConfigs({ $0: '', _: [] } as never, [root]);
  const project = (name: string) => configs.find((c) => c.displayName?.name === name)!;
  expect(project('unit').globalSetup).toBeFalsy();
  expect(project('unit').testMatch).toEqual([expect.stringMatching(/tests\/unit\//)]);
  for (const name of ['integration', 'drills']) {
    expect(project(name).globalSetup).toMatch(/global-setup/);
    expect(project(name).setupFilesAfterEnv).toEqual([expect.stringMatching(/per-file/), expect.stringMatching(/contract/)]);
  }
  expect(project('drills').testMatch).toEqual([expect.stringMatching(/tests\/drills\//)]);
  expect(globalConfig.maxWorkers).toBeGreaterThan(1);
  const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
  expect(scripts['test:unit']).toMatch(/--selectProjects unit\b/);
  expect(scripts.test).toMatch(/--selectProjects unit integration\b/);
  expect(scripts['test:drills']).toMatch(/--selectProjects drills\b/);
});
