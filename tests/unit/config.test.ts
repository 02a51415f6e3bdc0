import { clientFromForwardedFor } from '../../core/auth';
import { ConfigError, loadConfig } from '../../core/config';

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
    expect(loadConfig({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: key }).auth.required).toBe(true);
    expect(() => loadConfig({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: key, AUTH_REQUIRED: 'false' })).toThrow(
      /AUTH_REQUIRED=false is refused with NODE_ENV=production/,
    );
    expect(loadConfig({ AUTH_REQUIRED: 'true' }).auth).toMatchObject({ required: true, healthPublic: true, metricsPublic: true });
  });
});

describe('webhooks', () => {
  it('need a secrets key in production, refuse receivers on private addresses there and allow them elsewhere', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/WEBHOOK_SECRETS_KEY is required with NODE_ENV=production/);
    expect(() => loadConfig({ WEBHOOK_SECRETS_KEY: 'c2hvcnQ=' })).toThrow(/WEBHOOK_SECRETS_KEY must be 32 bytes in base64/);
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(loadConfig({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: key }).webhooks).toMatchObject({
      allowPrivate: false,
      timeoutMs: 10_000,
      retryForMs: 3 * 86_400_000,
      disableAfterMs: 3 * 86_400_000,
      secretOverlapMs: 86_400_000,
    });
    expect(loadConfig({}).webhooks.allowPrivate).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production', WEBHOOK_SECRETS_KEY: key, WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.allowPrivate).toBe(
      true,
    );
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
