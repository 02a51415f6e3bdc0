import path from 'node:path';
import { clientFromForwardedFor } from '../../core/auth';

/** A seller, which production requires. */
const SELLER = {
  SELLER_NAME: 'Example GmbH',
  SELLER_ADDRESS_LINE1: 'Hauptstraße 5',
  SELLER_CITY: 'München',
  SELLER_POSTAL_CODE: '80331',
  SELLER_COUNTRY: 'DE',
};
import { ConfigError, loadConfig } from '../../core/config';

const KEY = Buffer.alloc(32, 1).toString('base64');

/** What loadConfig reports for `env`, one problem a line; none when it loads. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const [head, ...lines] = err.message.split('\n');
    expect(head).toBe('Invalid configuration:');
    return lines.map((line) => {
      expect(line.startsWith('  - ')).toBe(true);
      return line.slice(4);
    });
  }
}

describe('configuration', () => {
  it('has working defaults for a fresh machine', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 4000,
      databaseUrl: undefined,
      temporal: { address: undefined, namespace: 'default', taskQueue: 'fees' },
    });
    expect(c.idempotencyTtlHours).toBeGreaterThanOrEqual(24);
  });

  it('reports every bad value at once, one line each', () => {
    const run = () => loadConfig({ PORT: 'eighty', IDEMPOTENCY_TTL_HOURS: '1', DATABASE_URL: 'mysql://x', TEMPORAL_TLS: 'maybe' });
    expect(run).toThrow(ConfigError);
    try {
      run();
    } catch (err) {
      const lines = (err as Error).message.split('\n').filter((l) => l.startsWith('  - '));
      expect(lines).toHaveLength(4);
      expect((err as Error).message).toMatch(/PORT="eighty"/);
    }
  });

  it('checks the invoice settings, and never echoes an SMTP URL that may hold a password', () => {
    const bad = {
      SMTP_URL: 'http://user:hunter2@mail.example:25',
      INVOICE_NUMBER_PREFIX: 'inv-',
      INVOICE_FROM: 'not an address',
      SMTP_TIMEOUT_MS: '60000',
      POSTPROCESS_ACTIVITY_TIMEOUT_MS: '30000',
    };
    let message = '';
    try {
      loadConfig(bad);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(4);
    expect(message).toMatch(/SMTP_URL must be a smtp: or smtps: URL/);
    expect(message).toMatch(/INVOICE_NUMBER_PREFIX/);
    expect(message).toMatch(/INVOICE_FROM/);
    expect(message).toMatch(/SMTP_TIMEOUT_MS \(60000\) must be below POSTPROCESS_ACTIVITY_TIMEOUT_MS/);
    expect(message).not.toContain('hunter2');

    const good = loadConfig({ SMTP_URL: 'smtps://u:p@mail.example:465', INVOICE_FROM: 'Billing <billing@example.com>' });
    expect(good.smtp.url).toBe('smtps://u:p@mail.example:465');
    expect(good.invoice).toEqual({ numberPrefix: 'INV', from: 'Billing <billing@example.com>', pdfMaxLineItems: 1000 });
    expect(() => loadConfig({ INVOICE_NUMBER_PREFIX: 'CN' })).toThrow(/must not be CN/);
  });

  it('requires authentication in production and refuses to start open there', () => {
    expect(loadConfig({}).auth.required).toBe(false);
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(loadConfig({ NODE_ENV: 'production', ...SELLER, WEBHOOK_SECRETS_KEY: key }).auth.required).toBe(true);
    expect(() => loadConfig({ NODE_ENV: 'production', ...SELLER, WEBHOOK_SECRETS_KEY: key, AUTH_REQUIRED: 'false' })).toThrow(
      /AUTH_REQUIRED=false is refused with NODE_ENV=production/,
    );
    expect(loadConfig({ AUTH_REQUIRED: 'true' }).auth).toMatchObject({ required: true, healthPublic: true, metricsPublic: true });
  });
});

describe('reading the environment', () => {
  it('reads an empty variable as unset, defaults that follow other settings included', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      ...SELLER,
      WEBHOOK_SECRETS_KEY: KEY,
      PORT: '',
      DATABASE_URL: '',
      AUTH_REQUIRED: '',
      WEBHOOK_ALLOW_PRIVATE: '',
      IDEMPOTENCY_LOCK_MS: '',
      TRUST_PROXY: '',
    });
    expect(c).toMatchObject({ port: 4000, databaseUrl: undefined, idempotencyLockMs: 20_000, trustProxy: false });
    expect(c.auth.required).toBe(true);
    expect(c.webhooks.allowPrivate).toBe(false);
  });

  it('takes IDEMPOTENCY_LOCK_MS as twice UPDATE_TIMEOUT_MS unless it is set', () => {
    expect(loadConfig({ UPDATE_TIMEOUT_MS: '30000' }).idempotencyLockMs).toBe(60_000);
    expect(loadConfig({ UPDATE_TIMEOUT_MS: '30000', IDEMPOTENCY_LOCK_MS: '90000' }).idempotencyLockMs).toBe(90_000);
  });

  it.each([
    ['1', true],
    ['true', true],
    ['YES', true],
    ['0', false],
    ['False', false],
    ['no', false],
  ])('reads the boolean %s as %s', (value, expected) => {
    expect(loadConfig({ TEMPORAL_TLS: value }).temporal.tls).toBe(expected);
  });

  it('refuses any other boolean, naming the variable and its value', () => {
    expect(problemsOf({ HEALTH_PUBLIC: 'on' })).toEqual(['HEALTH_PUBLIC="on" must be true or false']);
  });

  it('takes integers within their range and names the range of one outside it', () => {
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
    for (const value of ['abc', '1.5', '-1', '65536']) {
      expect(problemsOf({ PORT: value })).toEqual([`PORT=${JSON.stringify(value)} must be an integer from 0 to 65535`]);
    }
  });

  it('takes postgres: and postgresql: database URLs, and never echoes one that may hold a password', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://db.internal/fees' }).databaseUrl).toBe('postgresql://db.internal/fees');
    expect(problemsOf({ DATABASE_URL: 'http://fees:hunter2@db.internal/fees' })).toEqual([
      'DATABASE_URL must be a postgres: or postgresql: URL',
    ]);
    expect(problemsOf({ DATABASE_URL: 'not a url' })).toEqual(['DATABASE_URL must be a postgres: or postgresql: URL']);
  });

  it('never echoes a bad webhook secrets key', () => {
    expect(problemsOf({ WEBHOOK_SECRETS_KEY: 'c2hvcnQ=' }).join('\n')).not.toContain('c2hvcnQ=');
  });

  it("takes log levels from their lists, the Temporal SDK's in any case", () => {
    expect(loadConfig({ LOG_LEVEL: 'debug', TEMPORAL_LOG_LEVEL: 'info' })).toMatchObject({ logLevel: 'debug', temporalLogLevel: 'INFO' });
    expect(problemsOf({ LOG_LEVEL: 'verbose', TEMPORAL_LOG_LEVEL: 'verbose' })).toEqual([
      'LOG_LEVEL="verbose" must be one of trace, debug, info, warn, error, fatal, silent',
      'TEMPORAL_LOG_LEVEL="verbose" must be one of TRACE, DEBUG, INFO, WARN, ERROR',
    ]);
  });

  it('takes the Temporal metrics address as host:port', () => {
    expect(loadConfig({ TEMPORAL_METRICS_ADDRESS: '127.0.0.1:9464' }).temporalMetricsAddress).toBe('127.0.0.1:9464');
    expect(problemsOf({ TEMPORAL_METRICS_ADDRESS: '9464' })).toEqual(['TEMPORAL_METRICS_ADDRESS="9464" must be host:port']);
  });

  it('makes DATA_DIR absolute', () => {
    expect(loadConfig({ DATA_DIR: 'state/here' }).dataDir).toBe(path.resolve('state/here'));
  });
});

describe('rules between settings', () => {
  it.each([
    [
      'an idempotency lock shorter than twice the update timeout',
      { IDEMPOTENCY_LOCK_MS: '19999' },
      { IDEMPOTENCY_LOCK_MS: '20000' },
      'IDEMPOTENCY_LOCK_MS (19999) must be at least twice UPDATE_TIMEOUT_MS (10000)',
    ],
    [
      'a bill retry interval that would shrink',
      { BILL_RETRY_INITIAL_MS: '10001' },
      { BILL_RETRY_INITIAL_MS: '10000' },
      'BILL_RETRY_MAX_INTERVAL_MS must not be below BILL_RETRY_INITIAL_MS',
    ],
    [
      'a post-process retry interval that would shrink',
      { POSTPROCESS_RETRY_MAX_INTERVAL_MS: '999' },
      { POSTPROCESS_RETRY_MAX_INTERVAL_MS: '1000' },
      'POSTPROCESS_RETRY_MAX_INTERVAL_MS must not be below POSTPROCESS_RETRY_INITIAL_MS',
    ],
    [
      'a webhook retry interval that would shrink',
      { WEBHOOK_RETRY_MAX_INTERVAL_MS: '4999' },
      { WEBHOOK_RETRY_MAX_INTERVAL_MS: '5000' },
      'WEBHOOK_RETRY_MAX_INTERVAL_MS must not be below WEBHOOK_RETRY_INITIAL_MS',
    ],
    [
      'an SMTP timeout as long as the post-process attempt',
      { SMTP_TIMEOUT_MS: '60000' },
      { SMTP_TIMEOUT_MS: '59999' },
      'SMTP_TIMEOUT_MS (60000) must be below POSTPROCESS_ACTIVITY_TIMEOUT_MS (60000)',
    ],
    [
      'a TLS certificate without its key',
      { TEMPORAL_TLS_CERT_PATH: '/tls/client.pem' },
      { TEMPORAL_TLS_CERT_PATH: '/tls/client.pem', TEMPORAL_TLS_KEY_PATH: '/tls/client.key' },
      'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together',
    ],
    [
      'a TLS key without its certificate',
      { TEMPORAL_TLS_KEY_PATH: '/tls/client.key' },
      { TEMPORAL_TLS_CERT_PATH: '/tls/client.pem', TEMPORAL_TLS_KEY_PATH: '/tls/client.key' },
      'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together',
    ],
  ])('refuse %s, and take the nearest setting that is fine', (_, bad, fine, problem) => {
    expect(problemsOf(bad)).toEqual([problem]);
    expect(problemsOf(fine)).toEqual([]);
  });

  it('still run beside a bad value, reading it as its default', () => {
    expect(problemsOf({ UPDATE_TIMEOUT_MS: 'ten seconds', IDEMPOTENCY_LOCK_MS: '5000' })).toEqual([
      'UPDATE_TIMEOUT_MS="ten seconds" must be an integer from 100 to 600000',
      'IDEMPOTENCY_LOCK_MS (5000) must be at least twice UPDATE_TIMEOUT_MS (10000)',
    ]);
  });

  it('do not report again a variable whose own value is bad', () => {
    expect(problemsOf({ NODE_ENV: 'production', ...SELLER, WEBHOOK_SECRETS_KEY: 'c2hvcnQ=' })).toEqual([
      'WEBHOOK_SECRETS_KEY must be 32 bytes in base64 (openssl rand -base64 32)',
    ]);
    expect(problemsOf({ SMTP_TIMEOUT_MS: 'soon', POSTPROCESS_ACTIVITY_TIMEOUT_MS: '30000' })).toEqual([
      'SMTP_TIMEOUT_MS="soon" must be an integer from 100 to 600000',
    ]);
  });
});

describe('webhooks', () => {
  it('need a secrets key in production, refuse receivers on private addresses there and allow them elsewhere', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/WEBHOOK_SECRETS_KEY is required with NODE_ENV=production/);
    expect(() => loadConfig({ WEBHOOK_SECRETS_KEY: 'c2hvcnQ=' })).toThrow(/WEBHOOK_SECRETS_KEY must be 32 bytes in base64/);
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(loadConfig({ NODE_ENV: 'production', ...SELLER, WEBHOOK_SECRETS_KEY: key }).webhooks).toMatchObject({
      allowPrivate: false,
      timeoutMs: 10_000,
      retryForMs: 3 * 86_400_000,
      disableAfterMs: 3 * 86_400_000,
      secretOverlapMs: 86_400_000,
    });
    expect(loadConfig({}).webhooks.allowPrivate).toBe(true);
    expect(
      loadConfig({ NODE_ENV: 'production', ...SELLER, WEBHOOK_SECRETS_KEY: key, WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.allowPrivate,
    ).toBe(true);
  });
});

describe('TRUST_PROXY', () => {
  it('is off by default, and takes a hop count or addresses and CIDR ranges', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, ::1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1', '::1']);
  });

  it.each(['true', '10.0.0.0/33', 'proxy.internal', '1.2.3', '11'])('refuses %s', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
  });
});

describe('clientFromForwardedFor', () => {
  it('reads the client the trusted proxies saw, from the right, never what the caller wrote first', () => {
    expect(clientFromForwardedFor('6.6.6.6, 203.0.113.9')).toBe('203.0.113.9');
    expect(clientFromForwardedFor('6.6.6.6, 203.0.113.9, 10.0.0.2', 2)).toBe('203.0.113.9');
    expect(clientFromForwardedFor('203.0.113.9', 2)).toBeUndefined();
    expect(clientFromForwardedFor(undefined)).toBeUndefined();
  });
});

describe('the seller', () => {
  it('is a demo seller on the defaults, and production requires a real one', () => {
    expect(loadConfig({}).seller.name).toBeUndefined();
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(problemsOf({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: key })).toEqual([
      'SELLER_NAME is required with NODE_ENV=production: invoices are issued in its name',
    ]);
  });
  it('needs an address with its name, and checks the country, the VAT number, the IBAN and the BIC', () => {
    expect(problemsOf({ SELLER_NAME: 'X GmbH', SELLER_COUNTRY: 'DE' })).toEqual([
      "SELLER_ADDRESS_LINE1 is required with SELLER_NAME: an invoice carries the seller's address",
      "SELLER_CITY is required with SELLER_NAME: an invoice carries the seller's address",
      "SELLER_POSTAL_CODE is required with SELLER_NAME: an invoice carries the seller's address",
    ]);
    expect(problemsOf({ SELLER_CITY: 'Berlin' })).toEqual([
      'SELLER_NAME is required when other SELLER_* settings are set (the demo seller is used only when none is)',
    ]);
    expect(problemsOf({ ...SELLER, SELLER_COUNTRY: 'XX' })).toEqual([
      'SELLER_COUNTRY="XX" must be an ISO 3166-1 alpha-2 country code in capitals, e.g. DE',
    ]);
    expect(problemsOf({ ...SELLER, SELLER_TAX_ID: 'DE123456789' })).toEqual([
      'SELLER_TAX_ID is not a valid VAT number of DE: its check digits do not match',
    ]);
    expect(problemsOf({ ...SELLER, SELLER_IBAN: 'DE89 3704 0044 0532 0130 01', SELLER_BIC: 'NOPE' })).toEqual([
      'SELLER_IBAN="DE89 3704 0044 0532 0130 01" must be a valid IBAN (its check digits)',
      'SELLER_BIC="NOPE" must be a valid BIC (8 or 11 characters)',
    ]);
    expect(problemsOf({ ...SELLER, SELLER_LOGO_PATH: '/nonexistent/logo.png' })).toEqual([
      'SELLER_LOGO_PATH="/nonexistent/logo.png" must be the path of a readable PNG or JPEG file',
    ]);
    const ok = loadConfig({ ...SELLER, SELLER_TAX_ID: 'de 123 456 788', SELLER_IBAN: 'DE89 3704 0044 0532 0130 00' }).seller;
    expect(ok).toMatchObject({ name: 'Example GmbH', taxId: 'de 123 456 788', iban: 'DE89370400440532013000' });
  });
});
