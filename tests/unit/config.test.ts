import { ConfigError, loadConfig } from '../../core/config';

describe('configuration', () => {
  it('has working defaults for a fresh machine', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 4000, databaseUrl: undefined, temporal: { address: undefined, namespace: 'default', taskQueue: 'fees' } });
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
});
