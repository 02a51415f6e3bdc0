/**
 * Signing secrets: generated here, shown to the client once, and stored only encrypted
 * (AES-256-GCM under WEBHOOK_SECRETS_KEY), so a database dump alone cannot sign a delivery.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../core/config';

const FORMAT = 'v1';

/** A Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the webhook secrets key must be 32 bytes');
  }

  seal(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64'), cipher.getAuthTag().toString('base64'), sealed.toString('base64')].join('.');
  }

  open(stored: string): string {
    const [format, iv, tag, sealed] = stored.split('.');
    if (format !== FORMAT || !sealed) throw new Error('not a sealed webhook secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      // Not the key it was sealed with (WEBHOOK_SECRETS_KEY changed): say so, never what was read.
      throw new Error('the webhook secret cannot be opened with this WEBHOOK_SECRETS_KEY');
    }
  }
}

/**
 * The key from WEBHOOK_SECRETS_KEY; outside production without one, a key generated once into
 * the data directory (readable by its owner only), so `npm start` needs no setup. Production
 * refuses to start without the variable (core/config.ts).
 */
export function secretBoxOf(config: Config): SecretBox {
  if (config.webhooks.secretsKey) return new SecretBox(Buffer.from(config.webhooks.secretsKey, 'base64'));
  if (config.production) throw new Error('WEBHOOK_SECRETS_KEY is required in production');
  const file = path.join(config.dataDir, 'webhook-secrets.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err; // another process wrote it first
    }
    chmodSync(file, 0o600);
  }
  return new SecretBox(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
}
