/**
 * Operators find bills in Temporal's own tools: the queries of docs/operations.md ("Finding bills
 * in Temporal"), through the client's workflow.list and through the Temporal CLI as typed there,
 * against the run's dev server (started with the --search-attribute flags of `npm start`).
 */
import { loadConfig } from '../../core/config';
import { billWorkflowId, getBillQuery } from '../../bills/messages';
import { BillStatusKey } from '../../bills/search-attributes';
import { postProcessWorkflowId } from '../../invoices/messages';
import { findTemporalCli } from '../../host/temporal-dev';
import { createWorker } from '../../temporal/worker';
import { runCommand } from '../helpers/processes';
import { call, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

let stack: Stack;
const since = new Date().toISOString();

beforeAll(async () => {
  // Invoices go to a port nobody listens on, one attempt: they fail, as an operator would find them.
  // Runs continue as new after two items: each run is a row of its own in Temporal's list.
  // Payloads in plaintext even in the encrypted run: with encryption on, the customer's email is
  // left out of the search attributes (tests/integration/payload-encryption.test.ts).
  stack = await startStack({
    SMTP_URL: 'smtp://127.0.0.1:9',
    POSTPROCESS_MAX_ATTEMPTS: '1',
    BILL_CONTINUE_AS_NEW_AFTER: '2',
    PAYLOAD_ENCRYPTION_KEYS: '',
  });
});

afterAll(async () => {
  await stack?.stop();
});

async function ok(method: string, path: string, body?: unknown): Promise<any> {
  const r = await call(stack, method, path, body);
  expect(r.status).toBe(200);
  return r.body;
}

async function count(query: string): Promise<number> {
  let n = 0;
  for await (const _ of stack.deps.temporal.workflow.list({ query })) n++;
  return n;
}

/** Visibility follows a moment behind the workflows: wait for the count the query should reach. */
async function expectCount(query: string, expected: number): Promise<void> {
  await eventually(async () => (await count(query)) === expected, 15_000).catch(async () => {
    throw new Error(`${query}: ${await count(query)} workflows, expected ${expected}`);
  });
}

/** The Temporal CLI, as docs/operations.md types it, against the run's dev server. */
async function temporalCli(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCommand(findTemporalCli(loadConfig())!, [...args, '--address', stack.config.temporal.address!]);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  return stdout;
}

/** The same query with the Temporal CLI. */
async function cliCount(query: string): Promise<number> {
  const out = await temporalCli('workflow', 'list', '--query', query, '--output', 'json');
  return out.trim() === '' ? 0 : (JSON.parse(out) as unknown[]).length;
}

it("finds one customer's bills by status and currency, and the failed invoices", async () => {
  const customer = `ops-${uid()}@example.com`;
  const closed = uid();
  await ok('POST', '/bills', { bill_id: closed, billing_period_end: inSeconds(3600), customer_email: customer });
  await ok('POST', `/bills/${closed}/line-items`, { amount: 100, currency: 'USD', description: 'a' });
  await ok('POST', `/bills/${closed}/line-items`, { amount: 5, currency: 'EUR', description: 'b' });
  const closedHandle = stack.deps.temporal.workflow.getHandle(billWorkflowId(closed));
  await eventually(async () => (await closedHandle.query(getBillQuery)).continued_as_new === 1);
  await ok('POST', `/bills/${closed}/close`);
  const gbp = uid();
  await ok('POST', '/bills', { bill_id: gbp, billing_period_end: inSeconds(3600), customer_email: customer, currency: 'GBP' });
  await ok('POST', `/bills/${gbp}/line-items`, { amount: 7, currency: 'GBP', description: 'c' });
  const usd = uid();
  await ok('POST', '/bills', { bill_id: usd, billing_period_end: inSeconds(3600), customer_email: customer });
  await ok('POST', `/bills/${usd}/line-items`, { amount: 1, currency: 'USD', description: 'd' });
  // Its email fails (no mail server here): the invoice is `failed`, its run lives on as the
  // invoice's lifecycle.
  await eventually(async () => (await ok('GET', `/bills/${closed}`)).invoice?.status === 'failed', 40_000);

  // Every run is listed; the run that continued as new keeps the values it had then.
  await expectCount(`BillCustomer="${customer}"`, 4);
  const ofCustomer = `BillCustomer="${customer}" AND ExecutionStatus!="ContinuedAsNew"`;
  await expectCount(ofCustomer, 3);
  await expectCount(`BillCustomer="${customer}" AND BillStatus="open" AND ExecutionStatus="Running"`, 2);
  await expectCount(`${ofCustomer} AND BillStatus="closed"`, 1);
  await expectCount(`${ofCustomer} AND BillCurrencies="EUR"`, 1);
  await expectCount(`${ofCustomer} AND BillCurrencies="USD"`, 2);
  await expectCount(`${ofCustomer} AND BillCurrencies="GBP" AND BillPolicy="usage_based"`, 1);
  const failed = `WorkflowType="closedBillPostProcessWorkflow" AND InvoiceStatus="failed" AND StartTime > "${since}"`;
  await expectCount(failed, 1);

  // The CLI reads the same, with the queries as the docs type them.
  expect(await cliCount(ofCustomer)).toBe(3);
  expect(await cliCount(failed)).toBe(1);

  // Each row says what it is.
  const handle = stack.deps.temporal.workflow.getHandle(billWorkflowId(usd));
  const description = await handle.describe();
  expect(await description.staticSummary()).toBe(
    `bill ${usd} for ${customer}, ${description.startTime.toISOString().slice(0, 10)} to ${inSeconds(3600).slice(0, 10)}`,
  );
  expect(description.typedSearchAttributes.get(BillStatusKey)).toBe('open');
  expect(await (await stack.deps.temporal.workflow.getHandle(postProcessWorkflowId(closed)).describe()).staticSummary()).toContain(closed);
});

it('finds an open bill past its period end: a timer that no worker has fired', async () => {
  const customer = `stuck-${uid()}@example.com`;
  const billId = uid();
  const end = inSeconds(3);
  await ok('POST', '/bills', { bill_id: billId, billing_period_end: end, customer_email: customer });
  await stack.stopWorker();
  try {
    // The query an operator types compares BillPeriodEnd with the time it is sent: it finds the bill
    // once its period has ended (its timer is then due, and no worker fires it). Polled from then
    // on, because visibility follows a moment behind.
    const stuck = () =>
      `BillStatus="open" AND ExecutionStatus="Running" AND BillPeriodEnd < "${new Date().toISOString()}" AND BillCustomer="${customer}"`;
    await eventually(async () => Date.now() > Date.parse(end) && (await count(stuck())) === 1, 15_000);
    expect(await cliCount(stuck())).toBe(1);
  } finally {
    await stack.startWorker();
  }
  // The worker is back: the timer fires, the bill closes and leaves the query.
  await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'closed', 30_000);
  await expectCount(`BillStatus="open" AND ExecutionStatus="Running" AND BillCustomer="${customer}"`, 0);
  await expectCount(`BillStatus="closed" AND BillCustomer="${customer}"`, 1);
});

it('refuses to start a worker on a namespace without them, naming the commands that add them', async () => {
  const namespace = `bare-${uid()}`;
  await temporalCli('operator', 'namespace', 'create', '--namespace', namespace);
  const config = { ...stack.config, temporal: { ...stack.config.temporal, namespace } };
  await expect(createWorker({ config, address: config.temporal.address!, db: stack.db })).rejects.toThrow(
    new RegExp(
      `namespace ${namespace} lacks search attributes[^]*temporal operator search-attribute create --address \\S+ --namespace ${namespace} --name BillStatus --type Keyword[^]*--name BillCurrencies --type KeywordList[^]*--name InvoiceStatus --type Keyword`,
    ),
  );
});
