/**
 * The contract check (helpers/contract.ts) refuses answers the OpenAPI document does not describe:
 * a server that serves the real document and answers off it makes each request fail.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiArtifacts } from '../../host/api-artifacts';
import { answersChecked, holdToContract } from '../helpers/contract';
import { call, startStack } from '../helpers/stack';

const document = apiArtifacts().openapi;
const bill = { bill_id: 'b-1', status: 'open' }; // far from a whole Bill

// What the impostor answers, by path.
const answers: Record<string, { status: number; headers: Record<string, string>; body: string }> = {
  '/bills/b-1': { status: 200, headers: { 'x-request-id': 'r1', 'content-type': 'application/json' }, body: JSON.stringify(bill) },
  '/bills': { status: 201, headers: { 'x-request-id': 'r2', 'content-type': 'application/json' }, body: '{}' },
  '/bills/b-2': {
    status: 404,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'not_found', message: 'no', details: null }),
  },
  '/bills/b-3': { status: 404, headers: { 'x-request-id': 'r3', 'content-type': 'text/plain' }, body: 'not found' },
  '/bills/b-4': {
    status: 400,
    headers: { 'x-request-id': 'r4', 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'teapot', message: 'x', details: null }),
  },
  '/bills/b-5': {
    status: 404,
    headers: { 'x-request-id': 'r5', 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'not_found', message: 'no', details: null }),
  },
  '/bills/b-6': { status: 200, headers: { 'x-request-id': 'r6' }, body: '' },
};

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/openapi.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
    const a = answers[req.url!.split('?')[0]];
    res.writeHead(a.status, a.headers).end(a.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  holdToContract(url);
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('an answer the OpenAPI document does not describe', () => {
  it.each([
    ['a body that misses required fields', 'GET', '/bills/b-1', /body/],
    ['an undocumented status', 'POST', '/bills', /status 201 is not among/],
    ['no X-Request-Id', 'GET', '/bills/b-2', /required headers missing: X-Request-Id/],
    ['an undocumented content type', 'GET', '/bills/b-3', /content type text\/plain/],
    ['an error code that is not one', 'GET', '/bills/b-4', /body/],
    ['no body where the document has one', 'GET', '/bills/b-6', /empty body/],
  ])('fails the request: %s', async (_what, method, p, message) => {
    await expect(fetch(url + p, { method })).rejects.toThrow(message);
  });

  it('lets a described answer through', async () => {
    expect((await fetch(`${url}/bills/b-5`)).status).toBe(404);
  });
});

describe('the service under test', () => {
  it('has every answer checked, through call() and plain fetch alike', async () => {
    const stack = await startStack();
    try {
      const before = answersChecked();
      expect((await call(stack, 'GET', '/bills/nobody')).status).toBe(404);
      expect((await fetch(`${stack.url}/bills?limit=1`)).status).toBe(200);
      expect(answersChecked()).toBe(before + 2);
    } finally {
      await stack.stop();
    }
  });
});
