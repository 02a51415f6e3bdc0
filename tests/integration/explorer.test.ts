/**
 * The API explorer as a person uses it, with authentication on: the OpenAPI document over HTTP,
 * then Swagger UI at /docs in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), authorizing with an API key and creating a bill through the page.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { insertApiKey } from '../../core/auth';
import type { OpenApiDocument } from '../../host/api-artifacts';
import { routes } from '../../host/routes';
import { call, inSeconds, startStack, uid, type Stack } from '../helpers/stack';

const root = path.resolve(__dirname, '..', '..');
const SCREENSHOT = path.join(root, 'test-output', 'explorer-docs.png');

/** CHROMIUM_PATH, or `chromium` on the PATH. A missing browser fails the test: CI installs it. */
function chromiumPath(): string {
  const candidates = process.env.CHROMIUM_PATH
    ? [process.env.CHROMIUM_PATH]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, 'chromium'));
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(
      `Chromium not found (looked for ${candidates.join(', ') || 'chromium on an empty PATH'}). The explorer test ` +
        "needs Debian's chromium: apt-get install -y --no-install-recommends chromium (as .ci/run does), or set CHROMIUM_PATH.",
    );
  }
  return found;
}

let stack: Stack;
let browser: Browser | undefined;

beforeAll(async () => {
  stack = await startStack({ AUTH_REQUIRED: 'true' });
});
afterAll(async () => {
  await browser?.close();
  await stack.stop();
});

describe('the OpenAPI document', () => {
  it('is served at /openapi.json without an API key, documenting every route', async () => {
    const reply = await call<OpenApiDocument>(stack, 'GET', '/openapi.json');
    expect(reply.status).toBe(200);
    expect(reply.body.openapi).toBe('3.1.0');
    for (const route of routes) {
      const operation = reply.body.paths[route.path.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase() as 'get' | 'post'];
      expect(operation).toMatchObject({ 'x-required-scope': route.scope, security: [{ bearerAuth: [] }] });
    }
    // The explorer shows the very same document.
    expect((await call(stack, 'GET', '/docs/json')).body).toEqual(reply.body);
    // While the API itself still wants a key.
    expect((await call(stack, 'GET', '/bills')).status).toBe(401);
  });
});

describe('the explorer page', () => {
  it('creates a bill with an API key and an idempotency key, and shows the answer', async () => {
    const executablePath = chromiumPath();
    const { key: apiKey } = await insertApiKey(stack.db, 'explorer test', ['bills:read', 'bills:write']);
    const idempotencyKey = uid('explorer');
    const body = { billing_period_end: inSeconds(3600), currency: 'USD', description: 'created in the API explorer' };

    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${stack.url}/docs`);

    await page.getByRole('button', { name: 'Authorize' }).first().click();
    const dialog = page.locator('.dialog-ux');
    await dialog.getByRole('textbox').fill(apiKey);
    await dialog.getByRole('button', { name: 'Apply credentials' }).click();
    await dialog.getByRole('button', { name: 'Close', exact: true }).click();

    const createBill = page.locator('.opblock-post').filter({ has: page.locator('.opblock-summary-path[data-path="/bills"]') });
    await createBill.locator('.opblock-summary').click();
    await createBill.getByRole('button', { name: 'Try it out' }).click();
    await createBill.locator('input[placeholder="X-Idempotency-Key"]').fill(idempotencyKey);
    await createBill.locator('textarea.body-param__text').fill(JSON.stringify(body, null, 2));
    await createBill.getByRole('button', { name: 'Execute' }).click();

    const answer = createBill.locator('.live-responses-table .response').first();
    await expect(answer.locator('.response-col_status').textContent({ timeout: 20_000 })).resolves.toContain('200');
    const shown = (await answer.locator('.response-col_description pre').first().textContent()) ?? '';
    expect(shown).toContain('"status": "open"');
    // The page sent the key as a bearer token: it shows the request it made.
    await expect(createBill.locator('.curl-command').textContent()).resolves.toContain(`Bearer ${apiKey}`);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await createBill.screenshot({ path: SCREENSHOT });

    const billId = /"bill_id": "([^"]+)"/.exec(shown)?.[1];
    expect(billId).toBeDefined();
    const auth = { authorization: `Bearer ${apiKey}` };
    const stored = await call(stack, 'GET', `/bills/${billId}`, undefined, auth);
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ bill_id: billId, status: 'open', description: body.description });
    // The page sent the idempotency key too: repeating its request returns the same bill.
    const repeat = await call(stack, 'POST', '/bills', body, { ...auth, 'X-Idempotency-Key': idempotencyKey });
    expect(repeat.body.bill_id).toBe(billId);
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
