/**
 * The payload codec (core/payload-codec.ts): AES-256-GCM, the key id in the metadata, every
 * configured key decrypting so that a rotation leaves older payloads readable, and its settings.
 */
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../core/config';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, PayloadKeyError, payloadCodec } from '../../core/payload-codec';

const key1 = { id: 'k1', key: randomBytes(32) };
const key2 = { id: 'k2', key: randomBytes(32) };
const line = { amount: 1234, currency: 'USD', description: 'storage in Tbilisi', customer_email: 'ana@example.com' };
const plain = (value: unknown) => defaultPayloadConverter.toPayload(value);
const decoded = (p: Payload) => defaultPayloadConverter.fromPayload(p);
const asText = (p: Payload) =>
  Buffer.concat([...Object.values(p.metadata ?? {}), p.data ?? new Uint8Array()].map((b) => Buffer.from(b))).toString('latin1');

it('seals a payload: no byte of the value shows, and the metadata names the encoding and the key', async () => {
  const [sealed] = await new AesGcmCodec([key1]).encode([plain(line)]);
  expect(Buffer.from(sealed.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
  expect(Buffer.from(sealed.metadata![KEY_ID_METADATA]!).toString()).toBe('k1');
  for (const clear of ['1234', 'USD', 'Tbilisi', 'ana@example.com', 'json/plain']) expect(asText(sealed)).not.toContain(clear);
  expect(decoded((await new AesGcmCodec([key1]).decode([sealed]))[0])).toEqual(line);
});

it('opens a payload sealed under key 1 after key 2 becomes current, and seals new ones under key 2', async () => {
  const [old] = await new AesGcmCodec([key1]).encode([plain(line)]);
  const rotated = new AesGcmCodec([key2, key1]);
  expect(decoded((await rotated.decode([old]))[0])).toEqual(line);
  const [fresh] = await rotated.encode([plain(line)]);
  expect(Buffer.from(fresh.metadata![KEY_ID_METADATA]!).toString()).toBe('k2');
  // Key 1 retired: what it sealed no longer opens, and the error names the key.
  await expect(new AesGcmCodec([key2]).decode([old])).rejects.toThrow(
    new PayloadKeyError('payload sealed with key "k1", which PAYLOAD_ENCRYPTION_KEYS does not hold'),
  );
});

it('refuses a payload altered, or relabelled with another key id', async () => {
  const codec = new AesGcmCodec([key1, { id: 'k9', key: key1.key }]);
  const [sealed] = await codec.encode([plain(line)]);
  const flipped = Buffer.from(sealed.data!);
  flipped[20] ^= 1;
  await expect(codec.decode([{ ...sealed, data: flipped }])).rejects.toThrow(/does not open/);
  // Same key bytes under another id: the id is authenticated, so it still fails.
  await expect(codec.decode([{ ...sealed, metadata: { ...sealed.metadata, [KEY_ID_METADATA]: Buffer.from('k9') } }])).rejects.toThrow(
    /does not open/,
  );
});

it('passes plaintext payloads through, so histories from before encryption stay readable', async () => {
  const before = plain(line);
  expect(await new AesGcmCodec([key1]).decode([before])).toEqual([before]);
});

it('reads PAYLOAD_ENCRYPTION_KEYS as id=key pairs, the first current, and refuses a bad list without echoing it', () => {
  const list = `k2=${key2.key.toString('base64')}, k1=${key1.key.toString('base64')}`;
  expect(payloadCodec(loadConfig({ PAYLOAD_ENCRYPTION_KEYS: list }))!.currentKeyId).toBe('k2');
  expect(payloadCodec(loadConfig({}))).toBeUndefined();
  for (const bad of [
    'k1',
    `k1=${randomBytes(16).toString('base64')}`,
    `k 1=${key1.key.toString('base64')}`,
    `${list},k1=${key1.key.toString('base64')}`,
  ]) {
    expect(() => loadConfig({ PAYLOAD_ENCRYPTION_KEYS: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ PAYLOAD_ENCRYPTION_KEYS: bad })).toThrow(
      /^Invalid configuration:\n {2}- PAYLOAD_ENCRYPTION_KEYS must be id=key pairs/,
    );
    try {
      loadConfig({ PAYLOAD_ENCRYPTION_KEYS: bad });
    } catch (err) {
      expect((err as Error).message).not.toContain(key1.key.toString('base64'));
    }
  }
});

it('needs a force time above the grace time', () => {
  expect(() => loadConfig({ WORKER_SHUTDOWN_GRACE_TIME_MS: '5000', WORKER_SHUTDOWN_FORCE_TIME_MS: '5000' })).toThrow(
    /WORKER_SHUTDOWN_FORCE_TIME_MS \(5000\) must be above WORKER_SHUTDOWN_GRACE_TIME_MS \(5000\)/,
  );
});
