/**
 * All configuration, read once from the environment and validated up front so a bad value stops
 * start-up with one clear line per problem instead of surfacing later as a runtime failure.
 */
import { isIPv6 } from 'node:net';
import path from 'node:path';

export interface Config {
  /** NODE_ENV=production: refuses to start without authentication. */
  production: boolean;
  port: number;
  /** `npm run worker` serves /healthz, /readyz and /metrics here (0: no HTTP server). */
  workerPort: number;
  host: string;
  /**
   * Which proxies in front are trusted to say who the client is (X-Forwarded-For): none (false),
   * the last N hops, or these addresses and CIDR ranges. It picks the address that failed
   * authentication is throttled by, and what request logs show.
   */
  trustProxy: false | number | string[];
  dataDir: string;
  /** Unset: start an embedded Postgres under dataDir. */
  databaseUrl: string | undefined;
  embeddedPostgresPort: number;
  dbPoolSize: number;
  temporal: {
    /** Unset: start the Temporal dev server under dataDir. */
    address: string | undefined;
    namespace: string;
    taskQueue: string;
    tls: boolean;
    tlsCertPath: string | undefined;
    tlsKeyPath: string | undefined;
    apiKey: string | undefined;
    cliPath: string | undefined;
    devServerPort: number;
    devServerUiPort: number;
  };
  auth: {
    /** Off only in development: every endpoint is open (start-up says so loudly). */
    required: boolean;
    cacheMs: number;
    maxFailures: number;
    failureWindowS: number;
    /** /healthz and /readyz without a key (load balancers, orchestrators). */
    healthPublic: boolean;
    /** /metrics without a key (a scraper inside the network); otherwise it needs `admin`. */
    metricsPublic: boolean;
  };
  /** Where the Temporal SDK's Prometheus exporter listens; /metrics includes what it reports. */
  temporalMetricsAddress: string | undefined;
  /** The bill workflow's database activities: per-attempt timeout and retry backoff (no attempt limit). */
  billActivities: {
    timeoutMs: number;
    retryInitialMs: number;
    retryMaxIntervalMs: number;
    /** One attempt of a ledger write (a local activity): below the workflow task timeout of 10 s. */
    localTimeoutMs: number;
  };
  /** Worker tuning; 0 leaves the Temporal SDK's default. */
  worker: {
    /** Workflows kept in memory between tasks (a miss replays the history). */
    maxCachedWorkflows: number;
    /** Concurrent workflow task polls (queries arrive as workflow tasks too). */
    workflowTaskPollers: number;
    activityTaskPollers: number;
    maxConcurrentWorkflowTasks: number;
    maxConcurrentActivities: number;
  };
  listing: {
    billsMaxLimit: number;
    lineItemsMaxLimit: number;
  };
  /** How long an update (add, close, create) may wait for a worker before answering 503. */
  updateTimeoutMs: number;
  /** Deadline of the live-totals query of a single bill. */
  queryTimeoutMs: number;
  /** Deadline of the per-bill live queries while listing; slower bills fall back to stored. */
  listQueryTimeoutMs: number;
  idempotencyTtlHours: number;
  /** A request holding a key longer than this is presumed dead and its key may be taken over. */
  idempotencyLockMs: number;
  /** Continue-as-new after this many line items in one run (0 = only when Temporal suggests). */
  continueAsNewAfterItems: number;
  /** Post-process (invoice) activities: per-attempt timeout and retry policy. */
  postProcess: {
    activityTimeoutMs: number;
    retryInitialMs: number;
    retryMaxIntervalMs: number;
    /** Attempts per step before the invoice is marked failed (an operator can retry it). */
    maxAttempts: number;
  };
  invoice: {
    /** Numbers look like `${prefix}-${year}-000001`; one gap-free sequence per prefix and year. */
    numberPrefix: string;
    /** The From header of invoice emails. */
    from: string;
    /** Line items listed in the PDF; a longer bill lists these and summarises the rest. */
    pdfMaxLineItems: number;
  };
  smtp: {
    /** smtp://user:pass@host:587 or smtps://...; unset: invoices are written to `${dataDir}/outbox`. */
    url: string | undefined;
    timeoutMs: number;
  };
  webhooks: {
    /**
     * WEBHOOK_SECRETS_KEY (32 bytes, base64): encrypts signing secrets at rest. Required in
     * production; in development a key is generated once into `${dataDir}/webhook-secrets.key`.
     */
    secretsKey: string | undefined;
    /** Receivers on loopback, private, link-local or metadata addresses (never by default in production). */
    allowPrivate: boolean;
    /** One delivery attempt: connect, send and answer. */
    timeoutMs: number;
    retryInitialMs: number;
    retryMaxIntervalMs: number;
    /** A delivery is retried for this long, then marked failed. */
    retryForMs: number;
    /** An endpoint whose attempts have all failed for this long is disabled. */
    disableAfterMs: number;
    /** After a rotation the previous secret signs alongside the new one for this long. */
    secretOverlapMs: number;
    /** Bytes of a receiver's answer kept with the delivery. */
    responseBodyLimit: number;
    /** The relay starts waiting deliveries on a notification from Postgres, and at least this often. */
    relaySweepMs: number;
    /** Events (and their delivery records) are kept this long once nothing is pending for them. */
    eventRetentionDays: number;
  };
  logLevel: string;
  /** Level of the Temporal SDK's own log lines (worker state, bundling). */
  temporalLogLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  str(name: string, fallback: string): string {
    const v = this.env[name];
    return v === undefined || v === '' ? fallback : v;
  }

  optional(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
    if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
    this.problems.push(`${name}=${JSON.stringify(raw)} must be true or false`);
    return fallback;
  }

  url(name: string, protocols: string[]): string | undefined {
    const raw = this.optional(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error();
    } catch {
      this.problems.push(`${name} must be a ${protocols.join(' or ')} URL`);
    }
    return raw;
  }
}

export class ConfigError extends Error {}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** `false`/`off`, a hop count, or a comma list of addresses and CIDR ranges; never "trust everyone". */
function parseTrustProxy(value: string, problems: string[]): false | number | string[] {
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'false' || v === 'off' || v === '0') return false;
  if (/^\d+$/.test(v)) {
    // Past a few hops it is "trust everyone" by another name.
    if (Number(v) <= 10) return Number(v);
    problems.push('TRUST_PROXY hops must be at most 10');
    return false;
  }
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const valid = (e: string) => {
    const [address, bits, extra] = e.split('/');
    if (extra !== undefined) return false;
    const max = IPV4.test(address) ? 32 : isIPv6(address) ? 128 : -1;
    return max > 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
  };
  if (v === 'true' || entries.length === 0 || !entries.every(valid)) {
    problems.push(
      "TRUST_PROXY must be off, a number of proxy hops, or a comma list of proxy addresses or CIDR ranges (true, trusting any caller's X-Forwarded-For, is refused)",
    );
    return false;
  }
  return entries;
}

/** Where `npm run infra` (or `npm start`) puts Postgres when DATABASE_URL is not set. */
export const embeddedDatabaseUrl = (config: Config) => `postgres://postgres:postgres@127.0.0.1:${config.embeddedPostgresPort}/fees`;

export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const production = r.str('NODE_ENV', 'development') === 'production';
  const updateTimeoutMs = r.int('UPDATE_TIMEOUT_MS', 10_000, 100, 600_000);
  const config: Config = {
    production,
    port: r.int('PORT', 4000, 0, 65535),
    workerPort: r.int('WORKER_PORT', 4001, 0, 65535),
    host: r.str('HOST', '127.0.0.1'),
    trustProxy: parseTrustProxy(r.str('TRUST_PROXY', 'false'), r.problems),
    dataDir: path.resolve(r.str('DATA_DIR', '.data')),
    databaseUrl: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    embeddedPostgresPort: r.int('EMBEDDED_PG_PORT', 5433, 1, 65535),
    dbPoolSize: r.int('DB_POOL_SIZE', 10, 1, 200),
    temporal: {
      address: r.optional('TEMPORAL_ADDRESS'),
      namespace: r.str('TEMPORAL_NAMESPACE', 'default'),
      taskQueue: r.str('TEMPORAL_TASK_QUEUE', 'fees'),
      tls: r.bool('TEMPORAL_TLS', false),
      tlsCertPath: r.optional('TEMPORAL_TLS_CERT_PATH'),
      tlsKeyPath: r.optional('TEMPORAL_TLS_KEY_PATH'),
      apiKey: r.optional('TEMPORAL_API_KEY'),
      cliPath: r.optional('TEMPORAL_CLI_PATH'),
      devServerPort: r.int('TEMPORAL_DEV_PORT', 7233, 1, 65535),
      devServerUiPort: r.int('TEMPORAL_DEV_UI_PORT', 8233, 1, 65535),
    },
    auth: {
      required: r.bool('AUTH_REQUIRED', production),
      cacheMs: r.int('AUTH_CACHE_MS', 10_000, 0, 3_600_000),
      maxFailures: r.int('AUTH_MAX_FAILURES', 10, 1, 1_000_000),
      failureWindowS: r.int('AUTH_FAILURE_WINDOW_S', 60, 1, 86_400),
      healthPublic: r.bool('HEALTH_PUBLIC', true),
      metricsPublic: r.bool('METRICS_PUBLIC', true),
    },
    temporalMetricsAddress: r.optional('TEMPORAL_METRICS_ADDRESS'),
    billActivities: {
      timeoutMs: r.int('BILL_ACTIVITY_TIMEOUT_MS', 30_000, 1_000, 3_600_000),
      retryInitialMs: r.int('BILL_RETRY_INITIAL_MS', 200, 10, 3_600_000),
      retryMaxIntervalMs: r.int('BILL_RETRY_MAX_INTERVAL_MS', 10_000, 10, 3_600_000),
      // A local activity's attempt runs inside the workflow task; past the task's 10 s timeout the
      // task would time out around it.
      localTimeoutMs: r.int('BILL_LOCAL_ACTIVITY_TIMEOUT_MS', 5_000, 100, 9_000),
    },
    worker: {
      maxCachedWorkflows: r.int('WORKER_MAX_CACHED_WORKFLOWS', 0, 0, 1_000_000),
      workflowTaskPollers: r.int('WORKER_WORKFLOW_TASK_POLLERS', 0, 0, 1_000),
      activityTaskPollers: r.int('WORKER_ACTIVITY_TASK_POLLERS', 0, 0, 1_000),
      maxConcurrentWorkflowTasks: r.int('WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', 0, 0, 10_000),
      maxConcurrentActivities: r.int('WORKER_MAX_CONCURRENT_ACTIVITIES', 0, 0, 10_000),
    },
    listing: {
      billsMaxLimit: r.int('LIST_BILLS_MAX_LIMIT', 100, 1, 1_000),
      lineItemsMaxLimit: r.int('LIST_LINE_ITEMS_MAX_LIMIT', 1_000, 1, 10_000),
    },
    updateTimeoutMs,
    queryTimeoutMs: r.int('QUERY_TIMEOUT_MS', 2_000, 50, 60_000),
    listQueryTimeoutMs: r.int('LIST_QUERY_TIMEOUT_MS', 500, 50, 60_000),
    idempotencyTtlHours: r.int('IDEMPOTENCY_TTL_HOURS', 24, 24, 24 * 90),
    // Held no longer than needed: after an API crash, its clients' retries wait this long.
    idempotencyLockMs: r.int('IDEMPOTENCY_LOCK_MS', 2 * updateTimeoutMs, 1_000, 3_600_000),
    continueAsNewAfterItems: r.int('BILL_CONTINUE_AS_NEW_AFTER', 0, 0, 10_000_000),
    postProcess: {
      activityTimeoutMs: r.int('POSTPROCESS_ACTIVITY_TIMEOUT_MS', 60_000, 1_000, 3_600_000),
      retryInitialMs: r.int('POSTPROCESS_RETRY_INITIAL_MS', 1_000, 10, 3_600_000),
      retryMaxIntervalMs: r.int('POSTPROCESS_RETRY_MAX_INTERVAL_MS', 60_000, 10, 86_400_000),
      maxAttempts: r.int('POSTPROCESS_MAX_ATTEMPTS', 10, 1, 1_000),
    },
    invoice: {
      numberPrefix: r.str('INVOICE_NUMBER_PREFIX', 'INV'),
      from: r.str('INVOICE_FROM', 'Fees API <invoices@fees-api.localhost>'),
      pdfMaxLineItems: r.int('INVOICE_PDF_MAX_LINE_ITEMS', 1_000, 1, 100_000),
    },
    smtp: {
      url: r.url('SMTP_URL', ['smtp:', 'smtps:']),
      timeoutMs: r.int('SMTP_TIMEOUT_MS', 30_000, 100, 600_000),
    },
    webhooks: {
      secretsKey: r.optional('WEBHOOK_SECRETS_KEY'),
      allowPrivate: r.bool('WEBHOOK_ALLOW_PRIVATE', !production),
      timeoutMs: r.int('WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
      retryInitialMs: r.int('WEBHOOK_RETRY_INITIAL_MS', 5_000, 10, 3_600_000),
      retryMaxIntervalMs: r.int('WEBHOOK_RETRY_MAX_INTERVAL_MS', 4 * 3_600_000, 10, 86_400_000),
      retryForMs: r.int('WEBHOOK_RETRY_FOR_MS', 3 * 86_400_000, 1_000, 30 * 86_400_000),
      disableAfterMs: r.int('WEBHOOK_DISABLE_AFTER_MS', 3 * 86_400_000, 1_000, 30 * 86_400_000),
      secretOverlapMs: r.int('WEBHOOK_SECRET_OVERLAP_MS', 86_400_000, 0, 30 * 86_400_000),
      responseBodyLimit: r.int('WEBHOOK_RESPONSE_BODY_LIMIT', 1_024, 0, 65_536),
      relaySweepMs: r.int('WEBHOOK_RELAY_SWEEP_MS', 5_000, 50, 600_000),
      eventRetentionDays: r.int('WEBHOOK_EVENT_RETENTION_DAYS', 30, 1, 3_650),
    },
    logLevel: r.str('LOG_LEVEL', 'info'),
    temporalLogLevel: r.str('TEMPORAL_LOG_LEVEL', 'WARN').toUpperCase() as Config['temporalLogLevel'],
  };
  if (!['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'].includes(config.temporalLogLevel)) {
    r.problems.push('TEMPORAL_LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR');
  }
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(config.logLevel)) {
    r.problems.push('LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent');
  }
  if (config.idempotencyLockMs < config.updateTimeoutMs * 2) {
    // A key's lock must outlast the request holding it, or a duplicate could run beside it.
    r.problems.push(
      `IDEMPOTENCY_LOCK_MS (${config.idempotencyLockMs}) must be at least twice UPDATE_TIMEOUT_MS (${config.updateTimeoutMs})`,
    );
  }
  if (!/^[A-Z][A-Z0-9]{0,15}$/.test(config.invoice.numberPrefix)) {
    r.problems.push('INVOICE_NUMBER_PREFIX must be 1-16 upper-case letters and digits, starting with a letter');
  }
  // Credit notes number from CN-<year>: a shared counter would leave gaps in both series.
  if (config.invoice.numberPrefix === 'CN') r.problems.push('INVOICE_NUMBER_PREFIX must not be CN: credit notes are numbered CN-<year>');
  // "Name <address>" or a bare address.
  const fromAddress = /<([^<>]*)>\s*$/.exec(config.invoice.from)?.[1] ?? config.invoice.from.trim();
  if (!/^[^@\s<>]+@[^@\s<>]+$/.test(fromAddress)) {
    r.problems.push('INVOICE_FROM must be an email address, optionally with a name: "Fees API <invoices@example.com>"');
  }
  if (production && !config.auth.required) {
    r.problems.push('AUTH_REQUIRED=false is refused with NODE_ENV=production: a billing API must not run open');
  }
  if (config.temporalMetricsAddress !== undefined && !/^[^:\s]+:\d{1,5}$/.test(config.temporalMetricsAddress)) {
    r.problems.push('TEMPORAL_METRICS_ADDRESS must be host:port');
  }
  if (config.billActivities.retryMaxIntervalMs < config.billActivities.retryInitialMs) {
    r.problems.push('BILL_RETRY_MAX_INTERVAL_MS must not be below BILL_RETRY_INITIAL_MS');
  }
  if (config.postProcess.retryMaxIntervalMs < config.postProcess.retryInitialMs) {
    r.problems.push('POSTPROCESS_RETRY_MAX_INTERVAL_MS must not be below POSTPROCESS_RETRY_INITIAL_MS');
  }
  if (config.smtp.timeoutMs >= config.postProcess.activityTimeoutMs) {
    // A send still waiting on SMTP when its attempt times out would run beside its retry.
    r.problems.push(
      `SMTP_TIMEOUT_MS (${config.smtp.timeoutMs}) must be below POSTPROCESS_ACTIVITY_TIMEOUT_MS (${config.postProcess.activityTimeoutMs})`,
    );
  }
  const secretsKey = config.webhooks.secretsKey;
  if (secretsKey !== undefined && Buffer.from(secretsKey, 'base64').length !== 32) {
    r.problems.push('WEBHOOK_SECRETS_KEY must be 32 bytes in base64 (openssl rand -base64 32)');
  }
  if (production && secretsKey === undefined) {
    r.problems.push('WEBHOOK_SECRETS_KEY is required with NODE_ENV=production: it encrypts webhook signing secrets at rest');
  }
  if (config.webhooks.retryMaxIntervalMs < config.webhooks.retryInitialMs) {
    r.problems.push('WEBHOOK_RETRY_MAX_INTERVAL_MS must not be below WEBHOOK_RETRY_INITIAL_MS');
  }
  if ((config.temporal.tlsCertPath === undefined) !== (config.temporal.tlsKeyPath === undefined)) {
    r.problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  if (r.problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  - ${r.problems.join('\n  - ')}`);
  }
  return config;
}
