/** The webhook rules that need no stack: address ranges, backoff, signatures, secrets, input. */
import { Webhook } from 'standardwebhooks';
import { refusedAddress } from '../../webhooks/addresses';
import { backoffMs, signedHeaders } from '../../webhooks/delivery';
import { SecretBox, generateSecret } from '../../webhooks/secrets';
import { createWebhookInput, eventTypes, updateWebhookInput } from '../../webhooks/validation';

describe('receiver addresses', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.100.100.200', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['fe80::1', 'linkLocal'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a00:1', 'rfc6052'],
  ])('refuses %s (%s)', (address, range) => {
    expect(refusedAddress(address)).toBe(range);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])('allows the public address %s', (address) => {
    expect(refusedAddress(address)).toBeNull();
  });
});

describe('backoff', () => {
  it('doubles up to the maximum, with jitter in the upper half', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 1000, 5000, () => 1))).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 3].map((n) => backoffMs(n, 1000, 5000, () => 0))).toEqual([500, 1000, 2000]);
    expect(backoffMs(10_000, 1000, 5000, () => 0.5)).toBe(3750);
  });
});

describe('signatures', () => {
  it('verify with the Standard Webhooks reference library, with every secret signing', () => {
    const [a, b] = [generateSecret(), generateSecret()];
    const payload = JSON.stringify({ id: 'evt_1', type: 'ping', created_at: '2026-12-01T00:00:00.000Z', data: {} });
    const headers = signedHeaders([a, b], 'evt_1', payload, new Date());
    expect(headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);
    expect(new Webhook(a).verify(payload, headers)).toEqual(JSON.parse(payload));
    expect(new Webhook(b).verify(payload, headers)).toEqual(JSON.parse(payload));
    expect(() => new Webhook(generateSecret()).verify(payload, headers)).toThrow();
    expect(() => new Webhook(a).verify(payload.replace('ping', 'pong'), headers)).toThrow();
  });

  it('seals secrets so only the same key opens them', () => {
    const box = new SecretBox(Buffer.alloc(32, 3));
    const secret = generateSecret();
    const sealed = box.seal(secret);
    expect(sealed).not.toContain(secret.slice(6));
    expect(box.seal(secret)).not.toBe(sealed);
    expect(box.open(sealed)).toBe(secret);
    expect(() => new SecretBox(Buffer.alloc(32, 4)).open(sealed)).toThrow(/cannot be opened/);
  });
});

describe('webhook input', () => {
  it('takes https only in production, and known event types or "*" alone', () => {
    expect(createWebhookInput({ url: 'http://example.com/h', events: ['*'] }, { httpsOnly: false }).url).toBe('http://example.com/h');
    expect(() => createWebhookInput({ url: 'http://example.com/h', events: ['*'] }, { httpsOnly: true })).toThrow(/https/);
    expect(eventTypes(['bill.closed', 'invoice.sent', 'bill.closed'])).toEqual(['bill.closed', 'invoice.sent']);
    expect(() => eventTypes(['*', 'bill.closed'])).toThrow(/events/);
    expect(() => eventTypes(['ping'])).toThrow(/events/);
  });

  it('normalises the URL as URL writes it, and refuses credentials, fragments and other schemes', () => {
    const rules = { httpsOnly: false };
    expect(createWebhookInput({ url: 'HTTP://Example.COM:80/a b', events: ['*'], description: null }, rules)).toEqual({
      url: 'http://example.com/a%20b',
      events: ['*'],
      description: null,
    });
    for (const url of ['ftp://example.com/h', 'http://u:p@example.com/h', 'http://example.com/h#x', 'http://example.com/\u0000']) {
      expect(() => createWebhookInput({ url, events: ['*'] }, rules)).toThrow(/^url /);
    }
  });

  it('changes only what a PATCH names, and refuses one that names nothing', () => {
    expect(updateWebhookInput({ enabled: false }, { httpsOnly: false })).toEqual({ enabled: false });
    expect(updateWebhookInput({ description: null }, { httpsOnly: false })).toEqual({ description: null });
    expect(() => updateWebhookInput({}, { httpsOnly: false })).toThrow(/must change at least one of/);
  });
});
