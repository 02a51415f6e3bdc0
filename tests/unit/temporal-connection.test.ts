/**
 * How the worker and the API connect to a Temporal that is not the embedded dev server: plain, TLS,
 * mTLS with a client certificate, or Temporal Cloud's API key (core/temporal.ts). The options are
 * what the SDK's Connection.connect receives.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../core/config';
import { connectionOptions } from '../../core/temporal';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fees-tls-'));
const cert = path.join(dir, 'client.pem');
const key = path.join(dir, 'client.key');
writeFileSync(cert, 'CERTIFICATE BYTES');
writeFileSync(key, 'KEY BYTES');

const optionsFor = (env: Record<string, string>) =>
  connectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'temporal.example:7233', ...env }), 'temporal.example:7233');

it('connects in plain text by default', () => {
  expect(optionsFor({})).toEqual({ address: 'temporal.example:7233', tls: undefined, apiKey: undefined, metadata: undefined });
});

it('uses TLS when asked, without a client certificate', () => {
  expect(optionsFor({ TEMPORAL_TLS: 'true' }).tls).toBe(true);
});

it('presents the client certificate and key it reads from their files (mTLS)', () => {
  const { tls } = optionsFor({ TEMPORAL_TLS_CERT_PATH: cert, TEMPORAL_TLS_KEY_PATH: key });
  expect(tls).toEqual({ clientCertPair: { crt: Buffer.from('CERTIFICATE BYTES'), key: Buffer.from('KEY BYTES') } });
});

it('sends an API key over TLS with the namespace header Temporal Cloud routes by', () => {
  expect(optionsFor({ TEMPORAL_API_KEY: 'cloud-key', TEMPORAL_NAMESPACE: 'fees.a1b2c' })).toEqual({
    address: 'temporal.example:7233',
    tls: true,
    apiKey: 'cloud-key',
    metadata: { 'temporal-namespace': 'fees.a1b2c' },
  });
});

it('refuses a certificate without its key, and a key without its certificate', () => {
  for (const env of [{ TEMPORAL_TLS_CERT_PATH: cert }, { TEMPORAL_TLS_KEY_PATH: key }]) {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(/TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together/);
  }
});

it("trusts a self-hosted cluster's own CA and checks its certificate against the name given", () => {
  const ca = path.join(dir, 'ca.pem');
  writeFileSync(ca, 'CA BYTES');
  expect(optionsFor({ TEMPORAL_TLS_SERVER_CA_PATH: ca, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' }).tls).toEqual({
    serverRootCACertificate: Buffer.from('CA BYTES'),
    serverNameOverride: 'temporal.internal',
  });
  expect(optionsFor({ TEMPORAL_TLS_SERVER_CA_PATH: ca, TEMPORAL_TLS_CERT_PATH: cert, TEMPORAL_TLS_KEY_PATH: key }).tls).toEqual({
    clientCertPair: { crt: Buffer.from('CERTIFICATE BYTES'), key: Buffer.from('KEY BYTES') },
    serverRootCACertificate: Buffer.from('CA BYTES'),
  });
});
