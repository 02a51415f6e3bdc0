/**
 * Encrypted payloads: what the service hands Temporal (workflow inputs and results, updates,
 * queries, activity arguments, summaries) is sealed with AES-256-GCM before it leaves the process,
 * so Temporal's database, its operators and its UI see ciphertext. The metadata names the
 * encoding and the key, as Temporal's encryption samples do, so its UI and CLI can decode through
 * our codec endpoint (host/codec.ts) and a rotation leaves older payloads readable.
 *
 * Sealed: the whole payload (its own metadata too, so not even its encoding shows), as bytes of
 * the Payload message. The key id is bound as additional authenticated data: a payload relabelled
 * with another key id fails to open rather than open under the wrong key's name.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Config } from './config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const PayloadMessage = temporal.api.common.v1.Payload;

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());

export class PayloadKeyError extends Error {}

export class AesGcmCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;
  private readonly current: { id: string; key: Buffer };

  /** `keys[0]` encrypts; every key decrypts. */
  constructor(keys: readonly { id: string; key: Buffer }[]) {
    if (keys.length === 0) throw new PayloadKeyError('no payload encryption key');
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    this.current = keys[0];
  }

  get currentKeyId(): string {
    return this.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
      cipher.setAAD(Buffer.from(this.current.id));
      const sealed = Buffer.concat([iv, cipher.update(PayloadMessage.encode(payload).finish()), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.current.id) },
        data: sealed,
      };
    });
  }

  /** Payloads not sealed by a codec like this one pass through: histories from before encryption was on stay readable. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]);
      const key = this.keys.get(id);
      if (!key) throw new PayloadKeyError(`payload sealed with key "${id}", which PAYLOAD_ENCRYPTION_KEYS does not hold`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadKeyError(`sealed payload too short (${data.length} bytes)`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let opened: Buffer;
      try {
        opened = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadKeyError(`payload sealed with key "${id}" does not open with it (altered, or another key under that id)`);
      }
      return PayloadMessage.decode(opened) as Payload;
    });
  }
}

/** The codec of the configuration; undefined when encryption is off. */
export function payloadCodec(config: Pick<Config, 'payloadKeys'>): AesGcmCodec | undefined {
  return config.payloadKeys ? new AesGcmCodec(config.payloadKeys) : undefined;
}

/** What every client and the worker convert payloads with. */
export function dataConverter(config: Pick<Config, 'payloadKeys'>): DataConverter | undefined {
  const codec = payloadCodec(config);
  return codec ? { payloadCodecs: [codec] } : undefined;
}
