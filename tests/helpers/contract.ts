/**
 * Every answer the integration tests receive from the service is held to the OpenAPI document that
 * server itself serves at /openapi.json: a documented status (exactly, or its 4XX/5XX range), a
 * documented content type, a body valid against its schema, and the documented headers (present
 * when required, valid when present). openapi-backend finds the operation and validates; a
 * response the document does not describe fails the request, and so the test that sent it.
 *
 * Installed for the integration tests (jest.config.js, setupFilesAfterEnv): it wraps the global
 * fetch, which `call`, the typed client and the tests' own requests all use. A server is held to it
 * once registered with `holdToContract(url)`; startStack does that for every stack.
 */
import { OpenAPIBackend, type Operation } from 'openapi-backend';

/** Served by the standalone host beside the API, and outside its contract (docs/observability.md). */
const OUTSIDE_THE_API = /^\/(healthz|readyz|metrics|codec|openapi\.json|docs)(\/|$)/;

const realFetch = globalThis.fetch;
let checked = 0;

/** How many answers have been checked so far (a test holds the check to being wired in). */
export const answersChecked = () => checked;

/**
 * From now on, every answer from this server's origin is checked against its document (fetched on
 * the first answer, so a server may be registered before it is up).
 */
export function holdToContract(url: string): void {
  const origin = new URL(url).origin;
  if (!contracts.has(origin)) contracts.set(origin, null);
}

const contracts = new Map<string, Promise<OpenAPIBackend> | null>();

function contractOf(origin: string): Promise<OpenAPIBackend> | undefined {
  if (!contracts.has(origin)) return undefined;
  let contract = contracts.get(origin);
  if (!contract) {
    contract = (async () => {
      const definition = (await (await realFetch(`${origin}/openapi.json`)).json()) as ConstructorParameters<
        typeof OpenAPIBackend
      >[0]['definition'];
      // Quick: the document is OpenAPI 3.1, which the library's own document check does not know;
      // its schema validation of responses (ajv) is what is used here.
      const api = new OpenAPIBackend({ definition, quick: true, validate: true, ajvOpts: { strict: false, allErrors: true } });
      await api.init();
      return api;
    })();
    contracts.set(origin, contract);
  }
  return contract;
}

class ContractViolation extends Error {
  constructor(what: string, method: string, url: URL, status: number, detail: unknown) {
    super(
      `${method} ${url.pathname}${url.search} answered ${status}, which the OpenAPI document does not describe: ${what}\n${JSON.stringify(detail, null, 2)}`,
    );
    this.name = 'ContractViolation';
  }
}

type DocResponse = { headers?: Record<string, { required?: boolean }>; content?: Record<string, unknown> };

async function check(api: OpenAPIBackend, method: string, url: URL, res: Response): Promise<void> {
  checked++;
  const status = res.status;
  const text = await res.text();
  const headers = Object.fromEntries(res.headers.entries());
  const type = headers['content-type']?.split(';')[0].trim();
  const fail = (what: string, detail: unknown = null) => {
    throw new ContractViolation(what, method, url, status, detail);
  };
  let operation = api.matchOperation({
    method: method.toLowerCase(),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
  });
  if (!operation) {
    // No endpoint at this path: the answer must still be one any endpoint gives for a refusal.
    if (status < 400 || status >= 500) fail('a path no operation has, answered other than a 4xx');
    operation = api.getOperations()[0];
  }
  const responses = (operation as Operation & { responses: Record<string, DocResponse> }).responses;
  const key = [String(status), `${Math.floor(status / 100)}XX`, 'default'].find((k) => k in responses);
  if (!key) return fail(`status ${status} is not among ${Object.keys(responses).join(', ')}`);
  const documented = responses[key];
  const content = documented.content ?? {};
  if (text.length > 0 && !(type && type in content))
    fail(`content type ${type} (documented: ${Object.keys(content).join(', ') || 'none'})`);
  if (text.length === 0 && Object.keys(content).length > 0 && method !== 'HEAD') fail('an empty body where the document has one');
  const missing = Object.entries(documented.headers ?? {})
    .filter(([name, h]) => h.required && !(name.toLowerCase() in headers))
    .map(([n]) => n);
  if (missing.length) fail(`required headers missing: ${missing.join(', ')}`, headers);
  const headerCheck = api.validateResponseHeaders(headers, operation, { statusCode: status, setMatchType: 'any' as never });
  if (headerCheck.errors) fail('headers', headerCheck.errors);
  if (type === 'application/json') {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      fail('a body that is not JSON', text.slice(0, 200));
    }
    const bodyCheck = api.validateResponse(body, operation, status);
    if (bodyCheck.errors) fail('body', { errors: bodyCheck.errors, body });
  }
}

globalThis.fetch = async function contractFetch(input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> {
  const res = await realFetch(input, init);
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const contract = contractOf(url.origin);
  if (contract && !OUTSIDE_THE_API.test(url.pathname)) {
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    await check(await contract, method, url, res.clone());
  }
  return res;
} as typeof fetch;
