/**
 * What a newcomer meets when something is off: a start-up failure that names its cause and the
 * fix, a client that stops sending mid-request, Ctrl-C in a terminal, a body too large or of the
 * wrong type. Each against the real thing: `npm start`'s process, the Fastify host on a socket.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../core/config';
import { buildServer, closeWithin } from '../../host/server';
import { findTemporalCli } from '../../host/temporal-dev';
import { freePort } from '../helpers/ports';
import { startProcess } from '../helpers/processes';
import { runLogStream } from '../helpers/run-logs';
import { call, startStack, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  // Short deadlines, so a stalled client is answered within the test.
  stack = await startStack({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000' });
});
afterAll(() => stack.stop());

/** Writes `text` on a raw connection and resolves with everything the server sent before closing it, and when. */
function rawExchange(url: string, text: string): Promise<{ answer: string; afterMs: number }> {
  const { port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(text));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve({ answer, afterMs: Date.now() - started }));
    socket.on('error', reject);
  });
}

describe('a client that stops sending', () => {
  it('gets 408 with the error body when its body never arrives, and its connection closed', async () => {
    // Content-Length 1000, then 11 bytes and silence.
    const { answer, afterMs } = await rawExchange(
      stack.url,
      'POST /bills HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"bill_id":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'deadline_exceeded', details: null });
    // Within the request deadline and Node's check interval (a second), not whenever the client likes.
    expect(afterMs).toBeLessThan(6_000);
  });

  it('cannot hold a shutdown: the server closes within its bound and cuts the connection', async () => {
    const config = loadConfig({ ...process.env, DATABASE_URL: stack.config.databaseUrl, TEMPORAL_ADDRESS: stack.config.temporal.address });
    const app = buildServer({ ...stack.deps, config }, { logLevel: 'silent', logStream: runLogStream('service') });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as net.AddressInfo;
    const stalled = rawExchange(
      `http://127.0.0.1:${port}`,
      'POST /bills HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
    );
    await new Promise((r) => setTimeout(r, 200)); // the request has reached the server
    const started = Date.now();
    await closeWithin(app, 1_000);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await stalled).answer).not.toMatch(/^HTTP\/1\.1 2/);
  });
});

describe('a body the API does not take', () => {
  it('answers 413 for a body over the limit and 415 for a content type it does not read, in the error shape, writing nothing', async () => {
    const big = await call(stack, 'POST', '/bills', JSON.stringify({ description: 'x'.repeat(1024 * 1024 + 10) }));
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ code: 'invalid_argument', message: expect.any(String), details: { reason: 'FST_ERR_CTP_BODY_TOO_LARGE' } });
    const res = await fetch(`${stack.url}/bills`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'bill please' });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({
      code: 'invalid_argument',
      message: expect.any(String),
      details: { reason: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' },
    });
    expect((await stack.db.query('SELECT count(*)::int AS n FROM bills')).rows[0].n).toBe(0);
  });
});

describe('npm start', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'fees-hygiene-'));
    chmodSync(dataDir, 0o755); // as root, Postgres runs as the postgres user and must reach it
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const envFor = async (over: Record<string, string> = {}) => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    PORT: String(await freePort()),
    EMBEDDED_PG_PORT: String(await freePort()),
    TEMPORAL_DEV_PORT: String(await freePort()),
    TEMPORAL_DEV_UI_PORT: String(await freePort()),
    TEMPORAL_CLI_PATH: findTemporalCli(loadConfig({}))!,
    LOG_LEVEL: 'warn',
    ...over,
  });

  it('names a taken Postgres port and the variable that moves it, never `undefined`', async () => {
    const holder = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const service = startProcess('host/main.ts', ['all'], { env: await envFor({ EMBEDDED_PG_PORT: String(taken) }) });
      expect(await service.exited).toBe(1);
      expect(service.output()).toContain(`Start-up failed: port ${taken} is taken by another process`);
      expect(service.output()).toContain('set EMBEDDED_PG_PORT to a free port');
      expect(service.output()).not.toContain('undefined');
    } finally {
      holder.close();
    }
  }, 60_000);

  it("stops in order on a terminal's Ctrl-C (the whole process group): API, worker, relay, Temporal, Postgres", async () => {
    // A terminal signals its foreground process group: started in a group of its own here, signalled as one.
    const service = startProcess('host/main.ts', ['all'], { env: await envFor(), nodeArgs: ['--max-old-space-size=1024'], group: true });
    await service.waitFor('(all) is up', 120_000);
    const code = await service.stop('SIGINT');
    const out = service.output();
    expect(code === 0 ? code : out).toBe(0);
    const order = ['stopped HTTP server', 'stopped worker', 'stopped webhook relay', 'stopped Temporal dev server', 'stopped Postgres'];
    const at = order.map((line) => out.indexOf(line));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect(at).toEqual([...at].sort((a, b) => a - b));
    // Nothing stopped under the worker while it drained.
    expect(out).not.toMatch(/ECONNREFUSED|Connection refused|connection error/i);
  }, 180_000);
});
