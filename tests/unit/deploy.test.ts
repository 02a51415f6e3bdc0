/**
 * The image, the compose file and the Helm chart run exactly the commands `npm run cluster` runs
 * natively (host/process-commands.ts). `npm run validate:deploy` checks the files against their
 * schemas and linters (it needs Go and Helm); this holds the commands without either.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PROCESS_COMMANDS, type Role } from '../../host/process-commands';
import { composeCommands, dockerfileCommand } from '../../scripts/validate-deploy';

const root = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

it("the image's default command is the API's", () => {
  expect(dockerfileCommand(read('Dockerfile'))).toEqual(PROCESS_COMMANDS.api);
});

it('the compose services run each role with its command', () => {
  expect(composeCommands(parse(read('deploy/compose.yaml'), { merge: true }))).toEqual(PROCESS_COMMANDS);
});

it("the chart's templates run each role with its command", () => {
  const templates: Record<Role, string> = {
    api: 'deployment-api.yaml',
    worker: 'deployment-worker.yaml',
    migrate: 'job-migrate.yaml',
    'temporal-setup': 'job-temporal-setup.yaml',
  };
  for (const [role, file] of Object.entries(templates)) {
    const line = read(`deploy/helm/fees-api/templates/${file}`).match(/^\s+command: (\[.*\])$/m);
    expect({ role, command: line && JSON.parse(line[1]) }).toEqual({ role, command: PROCESS_COMMANDS[role as Role] });
  }
});

it('the image holds every folder of the service: each Encore service, and the layers around them', () => {
  const services = readdirSync(root).filter((d) => existsSync(path.join(root, d, 'encore.service.ts')));
  const copied = [...read('Dockerfile').matchAll(/^COPY --from=build \/app\/(\S+) \.\/\S+$/gm)].map((m) => m[1]);
  expect(services.length).toBeGreaterThan(4);
  for (const folder of [...services, 'core', 'host', 'client', 'migrations']) expect(copied).toContain(folder);
});
