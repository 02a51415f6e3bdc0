/**
 * The standalone host on stub dependencies in a process of its own, through the requests that
 * reach what it loads lazily (the explorer, a schema compiled, a refusal mapped): for the check
 * that serving loads no TypeScript compiler (tests/unit/api-artifacts.test.ts). Prints the statuses.
 */
import { buildServer } from '../../host/server';
import { stubDeps } from './stub-deps';

async function main(): Promise<void> {
  const app = buildServer(stubDeps(), { logLevel: 'silent', checks: {} });
  const statuses: number[] = [];
  for (const [method, url, payload] of [
    ['GET', '/openapi.json', undefined],
    ['GET', '/docs/json', undefined],
    ['POST', '/bills/b-1/line-items', { amount: 0 }],
    ['GET', '/bills?limit=ten', undefined],
    ['POST', '/bills', { billing_period_end: '2031-01-01T00:00:00Z' }],
  ] as const) {
    statuses.push((await app.inject({ method, url, ...(payload ? { payload } : {}) })).statusCode);
  }
  await app.close();
  console.log(JSON.stringify(statuses));
}

void main();
