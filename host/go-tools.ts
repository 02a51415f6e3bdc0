/**
 * The Temporal binaries the host runs: the CLI (its dev server, for `npm start`), the server and its
 * SQL schema tool (for `npm run cluster`). Each is taken from its configured path, else from PATH
 * under the name its release archive uses, else from Go's bin directory, else built once with
 * `go install` from the Go module proxy (minutes, the first time only).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface GoTool {
  /** What it is, for messages. */
  what: string;
  /** `go install` target. */
  module: string;
  /** The file `go install` writes (named after the package's folder). */
  built: string;
  /** Names it has on PATH when installed from a release archive. */
  onPath: string[];
  /** `--version` (or `versionArgs`) prints this when it is the binary we want (another `server` may sit in GOPATH/bin). */
  version: RegExp;
  versionArgs?: string[];
  /** The variable that points at it. */
  variable: string;
}

export const TEMPORAL_CLI: GoTool = {
  what: 'the Temporal CLI',
  module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  built: 'temporal',
  onPath: ['temporal'],
  version: /^temporal version/,
  variable: 'TEMPORAL_CLI_PATH',
};

/** The release whose server the CLI v1.5.1 dev server embeds: tests and cluster run the same one. */
export const TEMPORAL_SERVER: GoTool = {
  what: 'the Temporal server',
  module: 'go.temporal.io/server/cmd/server@v1.29.1',
  built: 'server',
  onPath: ['temporal-server'],
  version: /^temporal version 1\.29\.1\b/,
  variable: 'TEMPORAL_SERVER_PATH',
};

export const TEMPORAL_SQL_TOOL: GoTool = {
  what: "the Temporal server's SQL schema tool",
  module: 'go.temporal.io/server/cmd/tools/sql@v1.29.1',
  built: 'sql',
  onPath: ['temporal-sql-tool'],
  version: /^temporal-sql-tool version 1\.29\.1\b/,
  variable: 'TEMPORAL_SQL_TOOL_PATH',
};

/** `npm run validate:deploy` lints and renders the Helm chart with it. */
export const HELM: GoTool = {
  what: 'Helm',
  module: 'helm.sh/helm/v4/cmd/helm@v4.3.2',
  built: 'helm',
  onPath: ['helm'],
  version: /^v4\./,
  versionArgs: ['version', '--short'],
  variable: 'HELM_PATH',
};

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function onPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, name))
    .find(isExecutable);
}

function isTheTool(file: string, tool: GoTool): boolean {
  if (!isExecutable(file)) return false;
  const run = spawnSync(file, tool.versionArgs ?? ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return tool.version.test(`${run.stdout ?? ''}`.trim());
}

/** What to do when a tool is missing: one line per way. */
export const howToInstall = (tool: GoTool) =>
  `${tool.what} was not found and could not be built. Install it one of these ways, then run the command again:
  - with Go (https://go.dev/dl/, 1.25 or newer): go install ${tool.module}
  - or a release binary, then set ${tool.variable}=/path/to/it`;

/**
 * Where `tool` is: `configured` (its variable), PATH, Go's bin directory, or built there now (into
 * `fallbackDir` when Go's bin directory holds another binary of the same name). Undefined without
 * Go.
 */
export function findGoTool(
  tool: GoTool,
  configured: string | undefined,
  fallbackDir: string,
  log: (line: string) => void,
): string | undefined {
  if (configured) {
    if (!isExecutable(configured)) throw new Error(`${tool.variable}=${configured} is not an executable file`);
    return configured;
  }
  for (const name of tool.onPath) {
    const found = onPath(name);
    if (found && isTheTool(found, tool)) return found;
  }
  const go = onPath('go');
  if (!go) return undefined;
  const gopath = execFileSync(go, ['env', 'GOPATH'], { encoding: 'utf8' }).trim().split(path.delimiter)[0];
  for (const dir of [path.join(gopath, 'bin'), fallbackDir]) {
    if (isTheTool(path.join(dir, tool.built), tool)) return path.join(dir, tool.built);
  }
  // Never over another program that happens to share the name.
  const gobin = existsSync(path.join(gopath, 'bin', tool.built)) ? fallbackDir : path.join(gopath, 'bin');
  mkdirSync(gobin, { recursive: true });
  log(`Building ${tool.what} with Go (first time only, takes a few minutes): go install ${tool.module}`);
  const result = spawnSync(go, ['install', tool.module], { stdio: 'inherit', env: { ...process.env, GOBIN: gobin } });
  const built = path.join(gobin, tool.built);
  return result.status === 0 && isExecutable(built) ? built : undefined;
}
