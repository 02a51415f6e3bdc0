/**
 * All configuration, declared once as a schema of the environment: each setting names its variable,
 * type, default and range, and `Config` is what the schema returns. Read once and validated up front
 * so a bad value stops start-up with one clear line per problem instead of surfacing later as a
 * runtime failure.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { isBic, isCountryCode, normalizeIban, taxIdProblem } from './parties';

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {}

/** The variable a setting is read from; a secret one (it may hold a password) is never echoed in errors. */
const variables = z.registry<{ name: string; secret: boolean }>();
function variable<T extends z.ZodType>(name: string, schema: T, secret?: 'secret'): T {
  variables.add(schema, { name, secret: secret === 'secret' });
  return schema;
}

const text = z.string();
// Unset allowed, no default. Not .optional() alone, which would make the key optional in Config: it is
// always there, `T | undefined`.
const maybe = <T extends z.ZodType>(schema: T) => schema.optional().transform((value) => value);
const flag = z.stringbool({ truthy: ['1', 'true', 'yes'], falsy: ['0', 'false', 'no'], error: 'must be true or false' });
// Number() as ever, so ' 8 ' and '1e3' count as integers too.
const integer = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be an integer from ${min} to ${max}` })
    .int()
    .min(min)
    .max(max);
const oneOf = <const T extends readonly string[]>(values: T) => z.enum(values, { error: `must be one of ${values.join(', ')}` });
const url = (...protocols: string[]) =>
  text.refine((raw) => protocols.includes(URL.parse(raw)?.protocol ?? ''), `must be a ${protocols.join(' or ')} URL`);
const hostPort = text.regex(/^[^:\s]+:\d{1,5}$/, 'must be host:port');
/** "Name <address>" or a bare address. */
const mailbox = text.refine(
  (from) => /^[^@\s<>]+@[^@\s<>]+$/.test(/<([^<>]*)>\s*$/.exec(from)?.[1] ?? from.trim()),
  'must be an email address, optionally with a name: "Fees API <invoices@example.com>"',
);
const invoicePrefix = text
  .regex(/^[A-Z][A-Z0-9]{0,15}$/, 'must be 1-16 upper-case letters and digits, starting with a letter')
  // Credit notes number from CN-<year>: a shared counter would leave gaps in both series.
  .refine((prefix) => prefix !== 'CN', 'must not be CN: credit notes are numbered CN-<year>');
/** A 256-bit key as base64 text (WEBHOOK_SECRETS_KEY, each of PAYLOAD_ENCRYPTION_KEYS). */
const is32Bytes = (base64: string) => Buffer.from(base64, 'base64').length === 32;
const key32 = text.refine(is32Bytes, 'must be 32 bytes in base64 (openssl rand -base64 32)');
const country = text.refine(isCountryCode, 'must be an ISO 3166-1 alpha-2 country code in capitals, e.g. DE');
/** A logo for invoices: a PNG or JPEG file (checked by its first bytes, so a typo fails at start-up). */
const imageFile = text.refine((file) => {
  try {
    const head = readFileSync(file).subarray(0, 4);
    return head.toString('hex') === '89504e47' || head.subarray(0, 3).toString('hex') === 'ffd8ff';
  } catch {
    return false;
  }
}, 'must be the path of a readable PNG or JPEG file');
/** A comma-separated list, blanks around entries and empty entries dropped. */
const commaList = (list: string) =>
  list
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);

const settings = z.object({
  /** NODE_ENV=production: refuses to start without authentication or a webhook secrets key. */
  production: variable(
    'NODE_ENV',
    maybe(text).transform((env) => env === 'production'),
  ),
  /** The HTTP API, its explorer, probes and metrics (0: any free port). */
  port: variable('PORT', integer(0, 65535).default(4000)),
  /** `npm run worker` serves /healthz, /readyz and /metrics here (0: no HTTP server). */
  workerPort: variable('WORKER_PORT', integer(0, 65535).default(4001)),
  /** Where both listen; 0.0.0.0 accepts other machines. */
  host: variable('HOST', text.default('127.0.0.1')),
  /** How long a client may take, so a slow or stalled one cannot hold a connection (or a shutdown) for ever. */
  http: z.object({
    /** To send a request's headers. */
    headersTimeoutMs: variable('HTTP_HEADERS_TIMEOUT_MS', integer(1_000, 600_000).default(10_000)),
    /** To send a whole request, headers and body: past it the answer is 408 and the connection closes. */
    requestTimeoutMs: variable('HTTP_REQUEST_TIMEOUT_MS', integer(1_000, 600_000).default(30_000)),
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutMs: variable('HTTP_KEEP_ALIVE_TIMEOUT_MS', integer(1_000, 600_000).default(5_000)),
    /** On SIGTERM, in-flight requests finish within this (past the update deadline); then their connections are closed. */
    shutdownTimeoutMs: variable('HTTP_SHUTDOWN_TIMEOUT_MS', integer(1_000, 600_000).default(20_000)),
  }),
  /**
   * Which proxies in front are trusted to say who the client is (X-Forwarded-For): none (false),
   * the last N hops, or these addresses and CIDR ranges. It picks the address that failed
   * authentication is throttled by, and what request logs show.
   */
  trustProxy: variable('TRUST_PROXY', text.default('false').transform(parseTrustProxy)),
  /** State of the embedded Postgres, the Temporal dev server and the invoice outbox; made absolute. */
  dataDir: variable(
    'DATA_DIR',
    text.default('.data').transform((dir) => path.resolve(dir)),
  ),
  /** Unset: start an embedded Postgres under dataDir. */
  databaseUrl: variable('DATABASE_URL', maybe(url('postgres:', 'postgresql:')), 'secret'),
  /** The embedded Postgres's port (`npm start`, `npm run infra`, and ours in `npm run cluster`). */
  embeddedPostgresPort: variable('EMBEDDED_PG_PORT', integer(1, 65535).default(5433)),
  /**
   * At start, `apply` pending migrations (under an advisory lock: processes may start together), or
   * only `verify` that the database is at this release's migration and stop if not, where one job
   * migrates before the processes start (`npm run cluster`, the Helm chart).
   */
  migrations: variable('MIGRATIONS', oneOf(['apply', 'verify'] as const).default('apply')),
  /** Postgres connections per process. */
  dbPoolSize: variable('DB_POOL_SIZE', integer(1, 200).default(10)),
  temporal: z.object({
    /** Unset: start the Temporal dev server under dataDir. */
    address: variable('TEMPORAL_ADDRESS', maybe(text)),
    /** On a Temporal of its own it must hold our search attributes (the worker checks at start). */
    namespace: variable('TEMPORAL_NAMESPACE', text.default('default')),
    /** Of the worker, and of every workflow the service starts. */
    taskQueue: variable('TEMPORAL_TASK_QUEUE', text.default('fees')),
    /** Also implied by an API key or a client certificate. */
    tls: variable('TEMPORAL_TLS', flag.default(false)),
    /** mTLS client certificate; set with its key. */
    tlsCertPath: variable('TEMPORAL_TLS_CERT_PATH', maybe(text)),
    /** The certificate's private key. */
    tlsKeyPath: variable('TEMPORAL_TLS_KEY_PATH', maybe(text)),
    /** Temporal Cloud's API key. */
    apiKey: variable('TEMPORAL_API_KEY', maybe(text), 'secret'),
    /** The CA that signed the server's certificate, for a self-hosted cluster with its own CA (PEM); implies TLS. */
    tlsServerCaPath: variable('TEMPORAL_TLS_SERVER_CA_PATH', maybe(text)),
    /** The name the server's certificate is checked against, when it is not the address's host (a load balancer, an IP). */
    tlsServerName: variable('TEMPORAL_TLS_SERVER_NAME', maybe(text)),
    /** The `temporal` binary run as the dev server; unset: looked for on PATH, then built or downloaded. */
    cliPath: variable('TEMPORAL_CLI_PATH', maybe(text)),
    /** The dev server's gRPC port. */
    devServerPort: variable('TEMPORAL_DEV_PORT', integer(1, 65535).default(7233)),
    /** The dev server's web UI. */
    devServerUiPort: variable('TEMPORAL_DEV_UI_PORT', integer(1, 65535).default(8233)),
    /**
     * How long a worker may hold a workflow task before Temporal gives it to another: how long a
     * workflow stalls when its worker dies mid-task. Temporal's default; the tests and drills that
     * kill workers shorten it.
     */
    workflowTaskTimeoutMs: variable('TEMPORAL_WORKFLOW_TASK_TIMEOUT_MS', integer(1_000, 60_000).default(10_000)),
  }),
  /** `npm run cluster`: the Temporal server (not the dev server) on a Postgres of its own. */
  cluster: z.object({
    /** The Temporal server's frontend, where clients connect; its other services take the next ports. */
    temporalPort: variable('CLUSTER_TEMPORAL_PORT', integer(1, 65525).default(7233)),
    /** The first of its four membership ports. */
    membershipPort: variable('CLUSTER_MEMBERSHIP_PORT', integer(1, 65525).default(6933)),
    /** Its Prometheus metrics. */
    metricsPort: variable('CLUSTER_TEMPORAL_METRICS_PORT', integer(1, 65535).default(8000)),
    /** Temporal's own embedded Postgres (its databases temporal and temporal_visibility). */
    temporalPostgresPort: variable('CLUSTER_TEMPORAL_PG_PORT', integer(1, 65535).default(5434)),
    /** Fixed when the cluster's schema is first set up: the unit Temporal partitions history by. */
    historyShards: variable('CLUSTER_HISTORY_SHARDS', integer(1, 16_384).default(4)),
    /** The Temporal server binary; unset: `temporal-server` on PATH, else built with Go. */
    serverPath: variable('TEMPORAL_SERVER_PATH', maybe(text)),
    /** Its SQL schema tool; unset: `temporal-sql-tool` on PATH, else built with Go. */
    sqlToolPath: variable('TEMPORAL_SQL_TOOL_PATH', maybe(text)),
  }),
  auth: z.object({
    /** Off only in development: every endpoint is open (start-up says so loudly). Unset: on with NODE_ENV=production. */
    required: variable('AUTH_REQUIRED', maybe(flag)),
    /** How long a process trusts a key it has looked up: a revocation takes effect within it. */
    cacheMs: variable('AUTH_CACHE_MS', integer(0, 3_600_000).default(10_000)),
    /** Failed attempts per address, and per key id presented, within the window before further failures get 429. */
    maxFailures: variable('AUTH_MAX_FAILURES', integer(1, 1_000_000).default(10)),
    /** The window those failures are counted in. */
    failureWindowS: variable('AUTH_FAILURE_WINDOW_S', integer(1, 86_400).default(60)),
    /** /healthz and /readyz without a key (load balancers, orchestrators). */
    healthPublic: variable('HEALTH_PUBLIC', flag.default(true)),
    /** /metrics without a key (a scraper inside the network); otherwise it needs `admin`. */
    metricsPublic: variable('METRICS_PUBLIC', flag.default(true)),
  }),
  /** Where the Temporal SDK's Prometheus exporter listens; /metrics includes what it reports. Unset: a free loopback port. */
  temporalMetricsAddress: variable('TEMPORAL_METRICS_ADDRESS', maybe(hostPort)),
  /** The bill workflow's database activities: per-attempt timeout and retry backoff (no attempt limit). */
  billActivities: z.object({
    /** One attempt of a regular activity (close, cancel). */
    timeoutMs: variable('BILL_ACTIVITY_TIMEOUT_MS', integer(1_000, 3_600_000).default(30_000)),
    /** First retry interval, doubled per attempt: an outage delays a bill, never drops it. */
    retryInitialMs: variable('BILL_RETRY_INITIAL_MS', integer(10, 3_600_000).default(200)),
    /** The interval stops growing here. */
    retryMaxIntervalMs: variable('BILL_RETRY_MAX_INTERVAL_MS', integer(10, 3_600_000).default(10_000)),
    /** One attempt of a ledger write, a local activity: it runs inside the workflow task, so below that task's timeout. */
    localTimeoutMs: variable('BILL_LOCAL_ACTIVITY_TIMEOUT_MS', integer(100, 59_000).default(5_000)),
  }),
  /** Worker tuning; 0 leaves the Temporal SDK's default. */
  worker: z.object({
    /** Workflows kept in memory between tasks (a miss replays the history); the SDK sizes it from the heap. */
    maxCachedWorkflows: variable('WORKER_MAX_CACHED_WORKFLOWS', integer(0, 1_000_000).default(0)),
    /** Concurrent workflow task polls (queries arrive as workflow tasks too). */
    workflowTaskPollers: variable('WORKER_WORKFLOW_TASK_POLLERS', integer(0, 1_000).default(0)),
    /** Concurrent activity task polls. */
    activityTaskPollers: variable('WORKER_ACTIVITY_TASK_POLLERS', integer(0, 1_000).default(0)),
    /** Workflow task slots. */
    maxConcurrentWorkflowTasks: variable('WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', integer(0, 10_000).default(0)),
    /** Activity task slots. */
    maxConcurrentActivities: variable('WORKER_MAX_CONCURRENT_ACTIVITIES', integer(0, 10_000).default(0)),
    /**
     * How long a workflow's next task waits on the queue of the worker that ran its last one
     * before any worker may take it: how long a workflow stalls after its worker dies (the SDK's
     * default, 10 s, when 0). The tests and drills that kill workers shorten it.
     */
    stickyQueueTimeoutMs: variable('WORKER_STICKY_QUEUE_TIMEOUT_MS', integer(0, 600_000).default(0)),
    /**
     * On SIGTERM the worker stops polling and lets running tasks finish for this long; then it
     * cancels its activities. Below the orchestrator's own grace period (Kubernetes: 30 s).
     */
    shutdownGraceTimeMs: variable('WORKER_SHUTDOWN_GRACE_TIME_MS', integer(0, 3_600_000).default(15_000)),
    /**
     * Past this, the worker stops even if an activity ignores its cancellation (its attempt times
     * out on the server and is retried elsewhere): a stuck call never holds a shutdown for ever.
     */
    shutdownForceTimeMs: variable('WORKER_SHUTDOWN_FORCE_TIME_MS', integer(1_000, 3_600_000).default(25_000)),
  }),
  /**
   * Encryption of what the service hands Temporal (workflow inputs and results, updates, queries,
   * activity arguments, summaries): \`id=base64key\` pairs, comma-separated, each key 32 bytes
   * (AES-256-GCM). The first encrypts; all decrypt, so a rotation puts the new key first and keeps
   * the old ones while histories written with them live. Unset: payloads are plaintext.
   */
  payloadKeys: variable('PAYLOAD_ENCRYPTION_KEYS', maybe(text.transform(parsePayloadKeys)), 'secret'),
  /** Web origins (the Temporal UI's) allowed to call /codec/encode and /codec/decode from a browser. */
  codecCorsOrigins: variable('CODEC_CORS_ORIGINS', text.default('').transform(commaList)),
  listing: z.object({
    /** Largest page of GET /bills. */
    billsMaxLimit: variable('LIST_BILLS_MAX_LIMIT', integer(1, 1_000).default(100)),
    /** Largest page of a bill's line items. */
    lineItemsMaxLimit: variable('LIST_LINE_ITEMS_MAX_LIMIT', integer(1, 10_000).default(1_000)),
  }),
  /** How long an update (add, close, create) may wait for a worker before answering 503. */
  updateTimeoutMs: variable('UPDATE_TIMEOUT_MS', integer(100, 600_000).default(10_000)),
  /** Deadline of the live-totals query of a single bill. */
  queryTimeoutMs: variable('QUERY_TIMEOUT_MS', integer(50, 60_000).default(2_000)),
  /** Deadline of the per-bill live queries while listing; slower bills fall back to stored. */
  listQueryTimeoutMs: variable('LIST_QUERY_TIMEOUT_MS', integer(50, 60_000).default(500)),
  /** How long an idempotency key is kept: at least a day of client retries. */
  idempotencyTtlHours: variable('IDEMPOTENCY_TTL_HOURS', integer(24, 24 * 90).default(24)),
  /**
   * A request holding a key longer than this is presumed dead and its key may be taken over. Held no
   * longer than needed: after an API crash, its clients' retries wait this long. Unset: 2 × updateTimeoutMs.
   */
  idempotencyLockMs: variable('IDEMPOTENCY_LOCK_MS', maybe(integer(1_000, 3_600_000))),
  /** Continue-as-new after this many line items in one run (0 = only when Temporal suggests). */
  continueAsNewAfterItems: variable('BILL_CONTINUE_AS_NEW_AFTER', integer(0, 10_000_000).default(0)),
  /** Post-process (invoice) activities: per-attempt timeout and retry policy. */
  postProcess: z.object({
    /** One attempt of an invoice step. */
    activityTimeoutMs: variable('POSTPROCESS_ACTIVITY_TIMEOUT_MS', integer(1_000, 3_600_000).default(60_000)),
    /** First retry interval, doubled per attempt. */
    retryInitialMs: variable('POSTPROCESS_RETRY_INITIAL_MS', integer(10, 3_600_000).default(1_000)),
    /** The interval stops growing here. */
    retryMaxIntervalMs: variable('POSTPROCESS_RETRY_MAX_INTERVAL_MS', integer(10, 86_400_000).default(60_000)),
    /** Attempts per step before the invoice is marked failed (an operator can retry it). */
    maxAttempts: variable('POSTPROCESS_MAX_ATTEMPTS', integer(1, 1_000).default(10)),
  }),
  invoice: z.object({
    /** Numbers look like `${prefix}-${year}-000001`; one gap-free sequence per prefix and year. */
    numberPrefix: variable('INVOICE_NUMBER_PREFIX', invoicePrefix.default('INV')),
    /** The From header of invoice emails; its name is printed on the PDF. */
    from: variable('INVOICE_FROM', mailbox.default('Fees API <invoices@fees-api.localhost>')),
    /** Line items listed in the PDF; a longer bill lists these and summarises the rest. */
    pdfMaxLineItems: variable('INVOICE_PDF_MAX_LINE_ITEMS', integer(1, 100_000).default(1_000)),
  }),
  /**
   * The issuer printed on every invoice and e-invoice. Unset, a demo seller (which says so) stands
   * in, so the service starts on its defaults; NODE_ENV=production requires a real one.
   */
  seller: z.object({
    /** Legal name. Setting it requires the address (line 1, city, postal code, country). */
    name: variable('SELLER_NAME', maybe(text.trim().min(1).max(200))),
    addressLine1: variable('SELLER_ADDRESS_LINE1', maybe(text.trim().min(1).max(200))),
    addressLine2: variable('SELLER_ADDRESS_LINE2', maybe(text.trim().min(1).max(200))),
    city: variable('SELLER_CITY', maybe(text.trim().min(1).max(100))),
    postalCode: variable('SELLER_POSTAL_CODE', maybe(text.trim().min(1).max(20))),
    region: variable('SELLER_REGION', maybe(text.trim().min(1).max(100))),
    country: variable('SELLER_COUNTRY', maybe(country)),
    /** VAT number (checked against SELLER_COUNTRY's pattern and check digits where known). */
    taxId: variable('SELLER_TAX_ID', maybe(text.trim().min(1).max(50))),
    /** Printed as the seller's contact; unset: the address of INVOICE_FROM. */
    email: variable('SELLER_EMAIL', maybe(mailbox)),
    /** How to pay, printed on the invoice: a free text, and/or a bank account. */
    paymentInstructions: variable('SELLER_PAYMENT_INSTRUCTIONS', maybe(text.trim().min(1).max(500))),
    bankName: variable('SELLER_BANK_NAME', maybe(text.trim().min(1).max(100))),
    iban: variable(
      'SELLER_IBAN',
      maybe(
        text.transform((iban, ctx) => {
          const normal = normalizeIban(iban);
          if (normal) return normal;
          ctx.issues.push({ code: 'custom', input: iban, message: 'must be a valid IBAN (its check digits)' });
          return z.NEVER;
        }),
      ),
    ),
    bic: variable('SELLER_BIC', maybe(text.refine(isBic, 'must be a valid BIC (8 or 11 characters)'))),
    /** A PNG or JPEG printed at the top of invoices. */
    logoPath: variable('SELLER_LOGO_PATH', maybe(imageFile)),
  }),
  smtp: z.object({
    /** smtp://user:pass@host:587 or smtps://...; unset: invoices are written to `${dataDir}/outbox`. */
    url: variable('SMTP_URL', maybe(url('smtp:', 'smtps:')), 'secret'),
    /** Connect, greeting and socket timeout. */
    timeoutMs: variable('SMTP_TIMEOUT_MS', integer(100, 600_000).default(30_000)),
  }),
  webhooks: z.object({
    /** Encrypts signing secrets at rest. Outside production, unset: a key is generated once into `${dataDir}/webhook-secrets.key`. */
    secretsKey: variable('WEBHOOK_SECRETS_KEY', maybe(key32), 'secret'),
    /** Receivers on loopback, private, link-local or metadata addresses. Unset: allowed except in production. */
    allowPrivate: variable('WEBHOOK_ALLOW_PRIVATE', maybe(flag)),
    /** One delivery attempt: connect, send and answer. */
    timeoutMs: variable('WEBHOOK_TIMEOUT_MS', integer(100, 60_000).default(10_000)),
    /** First retry interval, doubled per attempt (jittered). */
    retryInitialMs: variable('WEBHOOK_RETRY_INITIAL_MS', integer(10, 3_600_000).default(5_000)),
    /** The interval stops growing here. */
    retryMaxIntervalMs: variable('WEBHOOK_RETRY_MAX_INTERVAL_MS', integer(10, 86_400_000).default(4 * 3_600_000)),
    /** A delivery is retried for this long, then marked failed. */
    retryForMs: variable('WEBHOOK_RETRY_FOR_MS', integer(1_000, 30 * 86_400_000).default(3 * 86_400_000)),
    /** An endpoint whose attempts have all failed for this long is disabled. */
    disableAfterMs: variable('WEBHOOK_DISABLE_AFTER_MS', integer(1_000, 30 * 86_400_000).default(3 * 86_400_000)),
    /** After a rotation the previous secret signs alongside the new one for this long. */
    secretOverlapMs: variable('WEBHOOK_SECRET_OVERLAP_MS', integer(0, 30 * 86_400_000).default(86_400_000)),
    /** Bytes of a receiver's answer kept with the delivery. */
    responseBodyLimit: variable('WEBHOOK_RESPONSE_BODY_LIMIT', integer(0, 65_536).default(1_024)),
    /** The relay starts waiting deliveries on a notification from Postgres, and at least this often. */
    relaySweepMs: variable('WEBHOOK_RELAY_SWEEP_MS', integer(50, 600_000).default(5_000)),
    /** Events (and their delivery records) are kept this long once nothing is pending for them. */
    eventRetentionDays: variable('WEBHOOK_EVENT_RETENTION_DAYS', integer(1, 3_650).default(30)),
  }),
  /** Level of our own log lines. */
  logLevel: variable('LOG_LEVEL', oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info')),
  /** Level of the Temporal SDK's own log lines (worker state, bundling), in any case. */
  temporalLogLevel: variable(
    'TEMPORAL_LOG_LEVEL',
    text
      .toUpperCase()
      .pipe(oneOf(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']))
      .default('WARN'),
  ),
});

/** The defaults that follow other settings. */
const schema = settings.transform((c) => ({
  ...c,
  auth: { ...c.auth, required: c.auth.required ?? c.production },
  idempotencyLockMs: c.idempotencyLockMs ?? 2 * c.updateTimeoutMs,
  webhooks: { ...c.webhooks, allowPrivate: c.webhooks.allowPrivate ?? !c.production },
}));

export type Config = z.output<typeof schema>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** `false`/`off`, a hop count, or a comma list of addresses and CIDR ranges; never "trust everyone". */
function parseTrustProxy(value: string, ctx: z.core.$RefinementCtx): false | number | string[] {
  const refuse = (message: string) => {
    ctx.issues.push({ code: 'custom', input: value, message });
    return z.NEVER;
  };
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'false' || v === 'off' || v === '0') return false;
  // Past a few hops it is "trust everyone" by another name.
  if (/^\d+$/.test(v)) return Number(v) <= 10 ? Number(v) : refuse('must be at most 10 proxy hops');
  const entries = commaList(value);
  const valid = (e: string) => {
    const [address, bits, extra] = e.split('/');
    if (extra !== undefined) return false;
    const max = IPV4.test(address) ? 32 : isIPv6(address) ? 128 : -1;
    return max > 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
  };
  if (v === 'true' || entries.length === 0 || !entries.every(valid)) {
    return refuse(
      "must be off, a number of proxy hops, or a comma list of proxy addresses or CIDR ranges (true, trusting any caller's X-Forwarded-For, is refused)",
    );
  }
  return entries;
}

/** \`id=base64,id=base64\`: ids of letters, digits, dot, dash and underscore; 32-byte keys; no id twice. */
function parsePayloadKeys(list: string, ctx: z.core.$RefinementCtx): { id: string; key: Buffer }[] {
  const pairs = commaList(list).map((entry) => {
    const at = entry.indexOf('=');
    return { id: entry.slice(0, Math.max(at, 0)), key: entry.slice(at + 1) };
  });
  const ids = pairs.map((k) => k.id);
  if (
    pairs.length === 0 ||
    pairs.some((k) => !/^[A-Za-z0-9._-]{1,64}$/.test(k.id) || !is32Bytes(k.key)) ||
    new Set(ids).size !== ids.length
  ) {
    ctx.issues.push({
      code: 'custom',
      input: '',
      message:
        'must be id=key pairs, comma-separated: each id 1-64 letters, digits, . _ -, each key 32 bytes in base64 (openssl rand -base64 32), no id twice',
    });
    return z.NEVER;
  }
  return pairs.map(({ id, key }) => ({ id, key: Buffer.from(key, 'base64') }));
}

/** The rules between settings. A bad value is read as its default by now, so these still run beside its report. */
/** An invoice must name its seller with an address; a VAT number must fit the seller's country. */
function sellerProblems(c: Config): string[] {
  const s = c.seller;
  if (s.name === undefined) {
    const set = Object.entries(s).filter(([, value]) => value !== undefined);
    if (set.length > 0) return [`SELLER_NAME is required when other SELLER_* settings are set (the demo seller is used only when none is)`];
    return c.production ? ['SELLER_NAME is required with NODE_ENV=production: invoices are issued in its name'] : [];
  }
  const missing = (['addressLine1', 'city', 'postalCode', 'country'] as const).filter((k) => s[k] === undefined);
  const problems = missing.map(
    (k) => `${variableAt(['seller', k]).name} is required with SELLER_NAME: an invoice carries the seller's address`,
  );
  if (s.taxId !== undefined && s.country !== undefined) {
    const problem = taxIdProblem(s.taxId, s.country);
    if (problem) problems.push(`SELLER_TAX_ID ${problem}`);
  }
  return problems;
}

function crossFieldProblems(c: Config): string[] {
  const problems: string[] = [];
  // A key's lock must outlast the request holding it, or a duplicate could run beside it.
  if (c.idempotencyLockMs < c.updateTimeoutMs * 2) {
    problems.push(`IDEMPOTENCY_LOCK_MS (${c.idempotencyLockMs}) must be at least twice UPDATE_TIMEOUT_MS (${c.updateTimeoutMs})`);
  }
  if (c.production && !c.auth.required) {
    problems.push('AUTH_REQUIRED=false is refused with NODE_ENV=production: a billing API must not run open');
  }
  problems.push(...sellerProblems(c));
  if (c.production && c.webhooks.secretsKey === undefined) {
    problems.push('WEBHOOK_SECRETS_KEY is required with NODE_ENV=production: it encrypts webhook signing secrets at rest');
  }
  for (const [prefix, retry] of [
    ['BILL', c.billActivities],
    ['POSTPROCESS', c.postProcess],
    ['WEBHOOK', c.webhooks],
  ] as const) {
    if (retry.retryMaxIntervalMs < retry.retryInitialMs) {
      problems.push(`${prefix}_RETRY_MAX_INTERVAL_MS must not be below ${prefix}_RETRY_INITIAL_MS`);
    }
  }
  // A send still waiting on SMTP when its attempt times out would run beside its retry.
  if (c.smtp.timeoutMs >= c.postProcess.activityTimeoutMs) {
    problems.push(
      `SMTP_TIMEOUT_MS (${c.smtp.timeoutMs}) must be below POSTPROCESS_ACTIVITY_TIMEOUT_MS (${c.postProcess.activityTimeoutMs})`,
    );
  }
  // Node refuses a headers deadline past the whole request's.
  if (c.http.headersTimeoutMs > c.http.requestTimeoutMs) {
    problems.push(
      `HTTP_HEADERS_TIMEOUT_MS (${c.http.headersTimeoutMs}) must not be above HTTP_REQUEST_TIMEOUT_MS (${c.http.requestTimeoutMs})`,
    );
  }
  // A ledger write runs inside its workflow task: past the task's timeout the task would time out around it.
  if (c.billActivities.localTimeoutMs >= c.temporal.workflowTaskTimeoutMs) {
    problems.push(
      `BILL_LOCAL_ACTIVITY_TIMEOUT_MS (${c.billActivities.localTimeoutMs}) must be below TEMPORAL_WORKFLOW_TASK_TIMEOUT_MS (${c.temporal.workflowTaskTimeoutMs})`,
    );
  }
  if (c.worker.shutdownForceTimeMs <= c.worker.shutdownGraceTimeMs) {
    problems.push(
      `WORKER_SHUTDOWN_FORCE_TIME_MS (${c.worker.shutdownForceTimeMs}) must be above WORKER_SHUTDOWN_GRACE_TIME_MS (${c.worker.shutdownGraceTimeMs})`,
    );
  }
  if ((c.temporal.tlsCertPath === undefined) !== (c.temporal.tlsKeyPath === undefined)) {
    problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  return problems;
}

/** The schema's input: each setting's variable in its place, an empty string read as unset. */
function read(shape: z.core.$ZodShape, env: Env): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(shape).map(([key, setting]) => {
      const v = variables.get(setting);
      return [key, v ? env[v.name] || undefined : read((setting as z.ZodObject).shape, env)];
    }),
  );
}

/** The variable of the setting at `path` in Config. */
const variableAt = (path: PropertyKey[]) =>
  variables.get(path.reduce<z.core.$ZodType>((group, key) => (group as z.ZodObject).shape[key as string], settings))!;

/** Where `npm run infra` (or `npm start`) puts Postgres when DATABASE_URL is not set. */
export const embeddedDatabaseUrl = (config: Config) => `postgres://postgres:postgres@127.0.0.1:${config.embeddedPostgresPort}/fees`;

export function loadConfig(env: Env = process.env): Config {
  const parsed = schema.safeParse(read(settings.shape, env));
  const bad = (parsed.error?.issues ?? []).map((issue) => ({ ...variableAt(issue.path), message: issue.message }));
  // A bad value is reported, then read as unset: the cross-field rules still see a whole configuration.
  const unset = Object.fromEntries(bad.map(({ name }) => [name, undefined]));
  const config = parsed.data ?? schema.parse(read(settings.shape, { ...env, ...unset }));
  // Each rule's message opens with the variable it blames; one already reported was only a stand-in there.
  const reported = new Set(bad.map(({ name }) => name));
  const problems = [
    ...bad.map(({ name, secret, message }) => `${name}${secret ? '' : `=${JSON.stringify(env[name])}`} ${message}`),
    ...crossFieldProblems(config).filter((problem) => !reported.has(problem.split(/[ =]/)[0])),
  ];
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return config;
}
