/**
 * What the host reads at start (dist/api, made by `npm run build`): a missing or stale build stops
 * it with one line saying what to run, and serving never loads the TypeScript compiler or the
 * schema generator, which stay in the build (scripts/).
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ApiArtifactsError, ARTIFACTS_DIR, readApiArtifacts, sha256 } from '../../host/api-artifacts';
import { ensureApi } from '../../scripts/build-api';

const root = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);
// tsx's loader by its path: a process may run from a directory without node_modules.
const TSX = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

beforeAll(() => {
  ensureApi(root);
}, 60_000);

describe('a build the host can start on', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'api-artifacts-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A root holding the real build, made from one source file whose content is `source`. */
  function rootWith(source: string, builtFrom: string): string {
    cpSync(path.join(root, ARTIFACTS_DIR), path.join(dir, ARTIFACTS_DIR), { recursive: true });
    mkdirSync(path.join(dir, 'bills'));
    writeFileSync(path.join(dir, 'bills', 'requests.ts'), source);
    writeFileSync(path.join(dir, ARTIFACTS_DIR, 'manifest.json'), JSON.stringify({ sources: { 'bills/requests.ts': sha256(builtFrom) } }));
    return dir;
  }

  it('is read when its sources are the ones it was built from', () => {
    const artifacts = readApiArtifacts(rootWith('export {};\n', 'export {};\n'));
    expect(artifacts.openapi.openapi).toBe('3.1.0');
    expect(Object.keys(artifacts.requests.routes)).toContain('POST /bills');
  });

  it('is refused, naming the source, when a source changed since', () => {
    expect(() => readApiArtifacts(rootWith('export {}; // edited\n', 'export {};\n'))).toThrow(
      new ApiArtifactsError('dist/api is out of date (bills/requests.ts changed since it was built): run npm run build'),
    );
  });

  it('is refused when it is not there', () => {
    expect(() => readApiArtifacts(dir)).toThrow(
      /^dist\/api \(the request schemas and the OpenAPI document\) is missing: run npm run build$/,
    );
  });

  it('stops `host/main.ts api` before anything starts, with that one line', async () => {
    const stale = rootWith('export {}; // edited\n', 'export {};\n');
    // This project's root as appRoot() finds it (what it reads at start is read from there), with the packages.
    writeFileSync(path.join(stale, 'encore.app'), '{}');
    writeFileSync(path.join(stale, 'package.json'), readFileSync(path.join(root, 'package.json')));
    symlinkSync(path.join(root, 'node_modules'), path.join(stale, 'node_modules'));
    const failed = await run(process.execPath, ['--import', TSX, path.join(root, 'host', 'main.ts'), 'api'], {
      cwd: stale,
      env: { ...process.env, DATABASE_URL: 'postgres://127.0.0.1:1/none' },
    }).then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect(failed!.stderr.trim()).toBe(
      'Start-up failed: dist/api is out of date (bills/requests.ts changed since it was built): run npm run build',
    );
  }, 60_000);
});

describe('serving', () => {
  const probe = path.join(root, 'tests', 'helpers', 'compiler-probe.cjs');
  const loadedBy = async (args: string[], env: Record<string, string> = {}) => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'probe-')), 'loaded.json');
    const result = await run(process.execPath, ['--require', probe, '--import', TSX, ...args], {
      cwd: root,
      env: { ...process.env, PROBE_OUT: out, ...env },
    }).then(
      (r) => r,
      (err: { stdout: string; stderr: string }) => err,
    );
    return { ...result, ...(JSON.parse(readFileSync(out, 'utf8')) as { loaded: string[]; cached: string[] }) };
  };

  it('loads no TypeScript compiler nor schema generator: the server answering requests', async () => {
    const served = await loadedBy([path.join(root, 'tests', 'helpers', 'serve-on-stubs.ts')]);
    // The document, the explorer, two refusals and a request that passed its checks.
    expect(JSON.parse(served.stdout)).toEqual([200, 200, 400, 400, 503]);
    expect([served.loaded, served.cached]).toEqual([[], []]);
  }, 60_000);

  it('loads none starting `host/main.ts api` (every module it imports), nor does the probe miss a load', async () => {
    const started = await loadedBy([path.join(root, 'host', 'main.ts'), 'api'], { DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    expect(started.stderr).toMatch(/Start-up failed: .*ECONNREFUSED/);
    expect([started.loaded, started.cached]).toEqual([[], []]);
    // The probe sees a load when there is one: the build's module loads both.
    const build = await loadedBy(['-e', "require('./scripts/api/declarations')"]);
    expect(build.cached.map((f) => f.replace(/^.*node_modules[\\/]/, '').split(/[\\/]/)[0])).toEqual(
      expect.arrayContaining(['typescript', 'ts-json-schema-generator']),
    );
  }, 60_000);
});
