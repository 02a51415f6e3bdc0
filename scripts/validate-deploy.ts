/**
 * `npm run validate:deploy`: what can be checked of the deployment files on a machine that cannot
 * build or run a container (no Docker engine here), each against a third party's rules:
 *   - Dockerfile: dockerfile-utils' linter (the one behind the VS Code Docker extension);
 *   - deploy/compose.yaml: the Compose Specification's JSON schema, as compose-go ships it (the Go
 *     module Docker Compose is built on, fetched through the Go module proxy);
 *   - the Helm chart: `helm lint --strict` and `helm template` with each values file of
 *     deploy/helm/fees-api/ci, every rendered manifest validated against the Kubernetes JSON
 *     schemas of kubernetes-models (and the Prometheus Operator's for the ServiceMonitor); the
 *     defaults alone must fail, naming what is missing;
 *   - the process commands in all three equal host/process-commands.ts (what `npm run cluster` runs).
 * Not checked here: that the image builds and the containers start (docs/deployment.md).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { appRoot } from '../core/app-root';
import { findGoTool, HELM, onPath } from '../host/go-tools';
import { PROCESS_COMMANDS, type Role } from '../host/process-commands';

/** The compose-go release whose schema is the spec's; one that builds with this machine's Go. */
const COMPOSE_GO = 'github.com/compose-spec/compose-go/v2@v2.16.2';
const root = appRoot();
const chart = path.join(root, 'deploy', 'helm', 'fees-api');
// A seller, as production requires one (the chart's schema): for the render that must fail on Temporal alone.
const SELLER_SET = 'env.SELLER_NAME=S,env.SELLER_ADDRESS_LINE1=L,env.SELLER_CITY=C,env.SELLER_POSTAL_CODE=P1,env.SELLER_COUNTRY=DE';
const problems: string[] = [];
const ok = (what: string) => console.log(`ok    ${what}`);
const fail = (what: string, detail: unknown) =>
  problems.push(`${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail, null, 2)}`);
const same = (a: readonly string[] | undefined, b: readonly string[]) => JSON.stringify(a) === JSON.stringify(b);

/** The image's default command (exec form) and the roles compose and the chart run it as. */
export function dockerfileCommand(text: string): string[] | undefined {
  const cmd = text
    .split('\n')
    .filter((l) => l.startsWith('CMD '))
    .pop();
  return cmd ? (JSON.parse(cmd.slice(4)) as string[]) : undefined;
}

export function composeCommands(compose: { services: Record<string, { command?: string[] }> }): Partial<Record<Role, string[]>> {
  const roles: Record<string, Role> = { api: 'api', worker: 'worker', migrate: 'migrate', 'temporal-setup': 'temporal-setup' };
  return Object.fromEntries(Object.entries(roles).map(([service, role]) => [role, compose.services[service]?.command]));
}

function dockerfile(): void {
  const text = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const diagnostics = lintDockerfile(text);
  if (diagnostics.length > 0)
    fail(
      'Dockerfile (dockerfile-utils lint)',
      diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
    );
  else ok('Dockerfile: dockerfile-utils lint, no problem');
  if (!same(dockerfileCommand(text), PROCESS_COMMANDS.api))
    fail('Dockerfile CMD', `${dockerfileCommand(text)} is not ${PROCESS_COMMANDS.api}`);
}

function composeSchemaPath(): string {
  const go = onPath('go');
  if (!go) throw new Error('Go is needed to fetch the Compose Specification schema (compose-go) through the Go module proxy');
  const out = execFileSync(go, ['mod', 'download', '-json', COMPOSE_GO], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  return path.join((JSON.parse(out) as { Dir: string }).Dir, 'schema', 'compose-spec.json');
}

function compose(): void {
  const file = path.join(root, 'deploy', 'compose.yaml');
  const doc = parseYaml(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, { command?: string[] }> };
  const schemaFile = composeSchemaPath();
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const valid = ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8')));
  if (!valid(doc)) fail('deploy/compose.yaml (Compose Specification schema)', valid.errors);
  else ok(`deploy/compose.yaml: valid against ${COMPOSE_GO}'s compose-spec.json`);
  for (const [role, command] of Object.entries(composeCommands(doc))) {
    if (!same(command, PROCESS_COMMANDS[role as Role]))
      fail(`deploy/compose.yaml service ${role}`, `command ${command} is not ${PROCESS_COMMANDS[role as Role]}`);
  }
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: { template?: { metadata?: { labels?: Record<string, string> }; spec: { containers: { command?: string[] }[] } } };
}

/** The kubernetes-models class of a manifest: kubernetes-models/<group/version>/<Kind>. */
function modelOf(m: Manifest): new (data: unknown) => { validate: () => void } {
  const groupVersion = m.apiVersion;
  const pkg = groupVersion === 'monitoring.coreos.com/v1' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(`${pkg}/${groupVersion}/${m.kind}`) as Record<string, new (data: unknown) => { validate: () => void }>;
  return mod[m.kind];
}

let helmPath: string | undefined;
function helm(...args: string[]): { code: number; out: string } {
  helmPath ??= findGoTool(HELM, process.env.HELM_PATH, path.join(root, '.data', 'bin'), console.log);
  if (!helmPath) throw new Error('Helm was not found and could not be built (go install helm.sh/helm/v4/cmd/helm@v4.3.2)');
  try {
    return { code: 0, out: execFileSync(helmPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function helmChart(): void {
  const valuesDir = path.join(chart, 'ci');
  for (const values of readdirSync(valuesDir).filter((f) => f.endsWith('.yaml'))) {
    const valuesFile = path.join(valuesDir, values);
    const lint = helm('lint', '--strict', chart, '-f', valuesFile);
    if (lint.code !== 0) fail(`helm lint --strict -f ci/${values}`, lint.out);
    else ok(`helm lint --strict -f ci/${values}`);
    const rendered = helm('template', 'fees', chart, '-f', valuesFile, '--namespace', 'billing');
    if (rendered.code !== 0) {
      fail(`helm template -f ci/${values}`, rendered.out);
      continue;
    }
    const manifests = parseAllDocuments(rendered.out)
      .map((d) => d.toJS() as Manifest | null)
      .filter((m): m is Manifest => m !== null);
    for (const m of manifests) {
      try {
        new (modelOf(m))(m).validate();
      } catch (err) {
        fail(`${values}: ${m.kind} ${m.metadata.name} (Kubernetes schema)`, (err as Error).message);
      }
      const template = m.spec?.template;
      const role = template?.metadata?.labels?.['app.kubernetes.io/component'] as Role | undefined;
      if (role && !same(template!.spec.containers[0].command, PROCESS_COMMANDS[role])) {
        fail(`${values}: ${m.kind} ${m.metadata.name}`, `command ${template!.spec.containers[0].command} is not ${PROCESS_COMMANDS[role]}`);
      }
    }
    ok(
      `helm template -f ci/${values}: ${manifests.length} manifests (${manifests.map((m) => m.kind).join(', ')}) valid against the Kubernetes schemas`,
    );
  }
  // The defaults name no seller, and point at no Temporal and no database: rendering says so
  // (the schema first, then the templates) rather than deploying nothing useful.
  const bare = helm('template', 'fees', chart);
  if (bare.code === 0 || !bare.out.includes("missing properties 'SELLER_NAME'")) fail('helm template with the defaults alone', bare.out);
  else ok(`helm template with the defaults alone fails: "missing properties 'SELLER_NAME', ..."`);
  const sellerOnly = helm('template', 'fees', chart, '--set', SELLER_SET);
  if (sellerOnly.code === 0 || !sellerOnly.out.includes('temporal.address is required'))
    fail('helm template with a seller alone', sellerOnly.out);
  else ok('helm template with a seller alone fails: "temporal.address is required"');
}

if (require.main === module) {
  dockerfile();
  compose();
  helmChart();
  if (problems.length > 0) {
    console.error(`\n${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  console.log('\nDeployment files valid (the image is not built and no container is run here: docs/deployment.md).');
}
