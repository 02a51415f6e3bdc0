/**
 * `npm run test:unit` selects the jest project `unit`: it must exist, hold every unit test and
 * nothing that needs Postgres or Temporal; and the integration tests, which count whole tables of
 * one shared database, run one file at a time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readConfigs } from 'jest-config';

const root = path.resolve(__dirname, '..', '..');

it('has a unit project without global set-up, which test:unit selects, and one worker', async () => {
  const { globalConfig, configs } = await readConfigs({ $0: '', _: [] } as never, [root]);
  const unit = configs.find((c) => c.displayName?.name === 'unit');
  const integration = configs.find((c) => c.displayName?.name === 'integration');
  expect(unit).toBeDefined();
  expect(unit!.globalSetup).toBeFalsy();
  expect(unit!.testMatch).toEqual([expect.stringMatching(/tests\/unit\//)]);
  expect(integration!.globalSetup).toMatch(/global-setup/);
  expect(globalConfig.maxWorkers).toBe(1);
  const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
  expect(scripts['test:unit']).toMatch(/--selectProjects unit\b/);
});
